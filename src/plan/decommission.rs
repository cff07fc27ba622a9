//! Decommissioning: a server (or a whole pool, front-end or edge) that the
//! published topology still lists but the spec no longer has is destroyed
//! — its services stopped (a gateway drains on SIGTERM), the files xfed
//! placed removed, as its manifest lists them — as Terraform destroys what
//! left the configuration. The published topology is the record of what
//! xfed deployed; DNS records of the server leave with the spec's desired
//! DNS.
//!
//! Pure: which servers are gone, what removing them takes and whether the
//! plan may do it are decided from values the engine read. The engine
//! connects to the gone servers and reads their manifests; `apply/` runs
//! the stage.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::kind::ResourceKind;
use super::plan::Plan;
use super::resource::{Desired, FileSpec, ManifestEntry, Observed, Phase, Resource};
use super::stage::{Stage, StageKind};
use crate::spec::{Origin, Role};
use crate::topology::{SshRecord, Topology};

/// A server the published topology lists and the spec does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoneServer {
    pub fqdn: String,
    pub role: Role,
    /// Its pool, as published.
    pub pool: String,
    /// How it was reached (`None`: a document published before xfed
    /// recorded it; the engine falls back to `fallback_host`).
    pub ssh: Option<SshRecord>,
    /// The address to reach it on when the record has no `ssh`: an edge's
    /// internal listener's address (the spec's default for an edge
    /// server), a front-end's name.
    pub fallback_host: String,
    /// `address:port` of what xfed runs there, as published: an edge's
    /// external and internal listeners, a front-end pool's XMPP server.
    pub listeners: Vec<String>,
}

impl GoneServer {
    /// What runs there, as the plan names it.
    fn service(&self) -> &'static str {
        match self.role {
            Role::Edge => "its gateway",
            Role::Frontend => "its XMPP server",
        }
    }
}

/// One server the plan destroys, as the plan file and the JSON form carry
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decommission {
    pub server: String,
    /// A plan saved before front-ends were decommissioned names edges only.
    #[serde(default = "edge")]
    pub role: Role,
    pub pool: String,
    /// What xfed placed there and is left on it: read from its manifest
    /// when it answered, else what the record says runs there.
    pub left: Vec<String>,
    /// Why it could not be reached; `None`: reached, and its removal is in
    /// the plan's `decommission` stage, or forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
    /// Gone for good (`--forget`): not contacted, nothing on it touched;
    /// the record just stops listing it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forgotten: bool,
}

fn edge() -> Role {
    Role::Edge
}

impl Decommission {
    /// `edge/edge2.contoso.example`: the address the plan shows.
    pub fn address(&self) -> String {
        format!("{}/{}", self.role.prefix(), self.server)
    }
}

/// The servers of `published` that `in_spec` (every server FQDN of the
/// spec, any role, any pool) no longer has, front-ends first. A server
/// that moved to another pool is not gone: its own manifest handles what
/// it no longer needs.
pub fn gone_servers(published: &Topology, in_spec: &[&str]) -> Vec<GoneServer> {
    let frontends = published.frontend_pools.iter().flat_map(|p| {
        p.servers.iter().map(move |fqdn| GoneServer {
            fqdn: fqdn.clone(),
            role: Role::Frontend,
            pool: p.name.clone(),
            ssh: p.ssh.get(fqdn).cloned(),
            fallback_host: fqdn.clone(),
            listeners: p.xmpp_server.iter().cloned().collect(),
        })
    });
    let edges = published.edge_pools.iter().flat_map(|p| {
        p.servers.iter().map(move |s| GoneServer {
            fqdn: s.fqdn.clone(),
            role: Role::Edge,
            pool: p.name.clone(),
            ssh: s.ssh.clone(),
            fallback_host: host_of(&s.internal),
            listeners: vec![s.external.address.clone(), s.internal.clone()],
        })
    });
    frontends
        .chain(edges)
        .filter(|g| !in_spec.contains(&g.fqdn.as_str()))
        .collect()
}

/// Splits `gone` into the servers `forget` names, as the plan reports them
/// (with what the record says is left on them), and the rest. A name in
/// `forget` that is not a gone server is refused: forgetting must never
/// hide a typo, nor drop a server the spec still has.
pub fn forget(
    gone: Vec<GoneServer>,
    forget: &[String],
    manifest_path: &str,
) -> Result<(Vec<Decommission>, Vec<GoneServer>), String> {
    if let Some(name) = forget.iter().find(|f| !gone.iter().any(|g| g.fqdn == **f)) {
        let listed: Vec<String> = gone.iter().map(|g| format!("`{}`", g.fqdn)).collect();
        return Err(format!(
            "`--forget {name}` names no server that left the spec; nothing was changed\nhint: {}",
            if listed.is_empty() {
                "no server has left it".to_string()
            } else {
                format!("these have: {}", listed.join(", "))
            }
        ));
    }
    let (forgotten, rest): (Vec<GoneServer>, Vec<GoneServer>) =
        gone.into_iter().partition(|g| forget.contains(&g.fqdn));
    let forgotten = forgotten
        .iter()
        .map(|g| Decommission {
            server: g.fqdn.clone(),
            role: g.role.clone(),
            pool: g.pool.clone(),
            left: left_unreached(g, manifest_path),
            unreachable: None,
            forgotten: true,
        })
        .collect();
    Ok((forgotten, rest))
}

/// The host of `address:port` (`[v6]:port` unbracketed).
fn host_of(address: &str) -> String {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

/// What removing `gone` takes, from its manifest (`manifest_text`, the
/// content of `manifest_path` on it; `None`: absent, nothing left): its
/// services stopped first, then its certificates, binaries and files, the
/// manifest itself last, so a removal cut short is planned again.
pub fn resources(
    gone: &GoneServer,
    manifest_path: &str,
    manifest_text: Option<&str>,
    origin: &Origin,
) -> Result<Vec<Resource>, String> {
    let Some(text) = manifest_text else {
        return Ok(Vec::new());
    };
    let entries: Vec<ManifestEntry> = serde_json::from_str(text)
        .map_err(|e| format!("`{}:{manifest_path}` is not a manifest: {e}", gone.fqdn))?;
    let resource = |address: String, desired: Desired| {
        let phase = match (desired.kind(), &gone.role) {
            (ResourceKind::Service, Role::Frontend) => Phase::Frontend,
            (ResourceKind::Service, Role::Edge) => Phase::Edge,
            _ => Phase::Restart,
        };
        Resource {
            address,
            host: gone.fqdn.clone(),
            role: gone.role.clone(),
            pool: gone.pool.clone(),
            phase,
            desired,
            origin: origin.clone(),
            notifies: None,
        }
    };
    let mut out: Vec<Resource> = entries
        .iter()
        .map(|e| resource(e.address().to_string(), e.to_gone()))
        .collect();
    // Stable: services (phase Edge) before the rest, manifest order kept.
    out.sort_by_key(|r| r.phase);
    out.push(resource(
        format!(
            "{}/{}/{}/file:{manifest_path}",
            gone.role.prefix(),
            gone.pool.as_str(),
            gone.fqdn
        ),
        Desired::Gone(Box::new(Desired::File(FileSpec::at(manifest_path)))),
    ));
    Ok(out)
}

/// What is left on a server that could not be reached, from the record.
pub fn left_unreached(gone: &GoneServer, manifest_path: &str) -> Vec<String> {
    let running = if gone.listeners.is_empty() {
        gone.service().to_string()
    } else {
        format!(
            "{}, listening on {}",
            gone.service(),
            gone.listeners.join(" and ")
        )
    };
    vec![
        running,
        format!("every file its manifest `{manifest_path}` lists"),
    ]
}

/// Decides the removals and puts them first in the plan, as the stage
/// `decommission`: the servers are cleaned before the front-ends publish
/// the topology that forgets them, so a removal that fails leaves the
/// record intact and the next plan destroys the rest. `record` names
/// where the plan found them.
pub fn add_stage(
    plan: &mut Plan,
    gone: &[Resource],
    observed: &HashMap<String, Observed>,
    record: &str,
) {
    static MISSING: Observed = Observed::File(None);
    if gone.is_empty() {
        return;
    }
    let first = plan.changes.len();
    let mut hosts: Vec<String> = Vec::new();
    for r in gone {
        let mut c = super::diff::decide(
            r,
            observed.get(&r.address).unwrap_or(&MISSING),
            &super::diff::Notifications::default(),
        );
        c.reason = format!("{} left the spec", r.host);
        c.origin = record.to_string();
        plan.changes.push(c);
        if !hosts.contains(&r.host) {
            hosts.push(r.host.clone());
        }
    }
    plan.stages.insert(
        0,
        Stage {
            kind: StageKind::Decommission,
            hosts,
            changes: (first..plan.changes.len()).collect(),
            health_gate: false,
        },
    );
}

/// Why the plan's destroys must not be applied: a server that could not be
/// reached (always), or more than one server without `allow_destroy`.
pub fn refusals(plan: &Plan, allow_destroy: bool) -> Vec<String> {
    let mut why = Vec::new();
    let destroyed: Vec<&Decommission> = plan.decommission.iter().filter(|d| !d.forgotten).collect();
    for d in &destroyed {
        if let Some(e) = &d.unreachable {
            let mut s = format!(
                "{} left the spec but cannot be decommissioned: {e}; left on it:",
                d.address()
            );
            for l in &d.left {
                let _ = write!(s, "\n    {l}");
            }
            why.push(s);
        }
    }
    let n = destroyed.len();
    if n > 1 && !allow_destroy {
        let names: Vec<String> = destroyed.iter().map(|d| d.address()).collect();
        why.push(format!(
            "the plan destroys {n} servers ({}); destroying more than one needs --allow-destroy",
            names.join(", ")
        ));
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{EdgePool, EdgeServer, External, Srv};

    fn server(fqdn: &str, n: u8, ssh: bool) -> EdgeServer {
        EdgeServer {
            fqdn: fqdn.into(),
            internal: format!("203.0.113.{n}:23456"),
            external: External {
                fqdn: format!("xmpp{n}.contoso.example"),
                address: format!("198.51.100.{n}:5269"),
            },
            ssh: ssh.then(|| SshRecord {
                host: format!("203.0.113.{n}"),
                port: 2222,
                user: "deploy".into(),
            }),
        }
    }

    fn published(pools: Vec<(&str, Vec<EdgeServer>)>) -> Topology {
        Topology {
            version: String::new(),
            sip_domains: Vec::new(),
            xmpp_domains: Vec::new(),
            sites: Vec::new(),
            frontend_pools: Vec::new(),
            edge_pools: pools
                .into_iter()
                .map(|(name, servers)| EdgePool {
                    name: name.into(),
                    site: "hq".into(),
                    xmpp_federation: true,
                    srv: Srv {
                        priority: 10,
                        weight: 100,
                    },
                    servers,
                })
                .collect(),
            policies: Vec::new(),
            grants: Vec::new(),
            partners: Vec::new(),
        }
    }

    fn origin() -> Origin {
        Origin {
            file: "published".into(),
            line: 0,
            col: 0,
            field: String::new(),
        }
    }

    #[test]
    fn a_server_the_spec_no_longer_has_is_gone_and_one_that_moved_is_not() {
        let t = published(vec![
            ("edge-hq", vec![server("edge1", 101, true)]),
            (
                "edge-dr",
                vec![server("edge2", 102, true), server("edge3", 103, false)],
            ),
        ]);
        // edge3 moved to another pool of the spec; edge-dr is gone.
        let gone = gone_servers(&t, &["fe1", "edge1", "edge3"]);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].fqdn, "edge2");
        assert_eq!(gone[0].pool, "edge-dr");
        assert_eq!(gone[0].ssh.as_ref().map(|s| s.port), Some(2222));
        assert!(gone_servers(&t, &["edge1", "edge2", "edge3"]).is_empty());
    }

    #[test]
    fn an_old_record_without_ssh_falls_back_to_the_internal_address() {
        let t = published(vec![("edge-hq", vec![server("edge3", 103, false)])]);
        let gone = gone_servers(&t, &[]);
        assert_eq!(gone[0].ssh, None);
        assert_eq!(gone[0].fallback_host, "203.0.113.103");
        assert_eq!(
            left_unreached(&gone[0], "/m.json")[0],
            "its gateway, listening on 198.51.100.103:5269 and 203.0.113.103:23456"
        );
        // A document written before `ssh` existed still reads.
        let mut v = t.to_value();
        let s = &mut v["edge_pools"][0]["servers"][0];
        assert!(s.get("ssh").is_none(), "{s}");
        assert!(Topology::parse(&v.to_string()).is_ok());
    }

    #[test]
    fn removal_stops_the_gateway_first_and_the_manifest_goes_last() {
        let gone = &gone_servers(
            &published(vec![("edge-hq", vec![server("edge2", 102, true)])]),
            &[],
        )[0];
        let manifest = r#"[
          {"kind":"file","address":"edge/edge-hq/edge2/file:/etc/xfed/gateway.toml","path":"/etc/xfed/gateway.toml"},
          {"kind":"service","address":"edge/edge-hq/edge2/service:xfed-gateway","name":"xfed-gateway","manager":"direct","pid_file":"/var/lib/xfed/run/xfed-gateway.pid"},
          {"kind":"binary","address":"edge/edge-hq/edge2/binary:/opt/xfed/bin/xfed-gateway","path":"/opt/xfed/bin/xfed-gateway"}
        ]"#;
        let m = "/var/lib/xfed/managed.json";
        let r = resources(gone, m, Some(manifest), &origin()).expect("a manifest");
        let kinds: Vec<ResourceKind> = r.iter().map(|r| r.desired.kind()).collect();
        assert_eq!(
            kinds,
            [
                ResourceKind::Service,
                ResourceKind::File,
                ResourceKind::Binary,
                ResourceKind::File
            ]
        );
        assert!(r.iter().all(|r| matches!(r.desired, Desired::Gone(_))));
        assert_eq!(
            r.last().map(|r| r.address.as_str()),
            Some("edge/edge-hq/edge2/file:/var/lib/xfed/managed.json")
        );
        // Nothing left: nothing to do. A broken manifest names the host.
        assert_eq!(resources(gone, m, None, &origin()), Ok(Vec::new()));
        let e = resources(gone, m, Some("{"), &origin()).expect_err("broken");
        assert!(e.contains("edge2:/var/lib/xfed/managed.json"), "{e}");

        let mut plan = crate::plan::build(&[], &HashMap::new(), &[], 1);
        add_stage(
            &mut plan,
            &r,
            &HashMap::new(),
            "fe1:/etc/xfed/topology.json",
        );
        assert_eq!(plan.stages[0].kind, StageKind::Decommission);
        assert!(
            plan.changes
                .iter()
                .all(|c| c.action == crate::plan::Action::Delete)
        );
        assert_eq!(plan.summary().destroy, 4);
    }

    #[test]
    fn a_front_end_that_left_is_gone_with_its_xmpp_server_stopped_first() {
        let mut t = published(vec![("edge-hq", vec![server("edge1", 101, true)])]);
        let pool = |name: &str, fqdn: &str, ssh: bool| crate::topology::FrontendPool {
            name: name.into(),
            servers: vec![fqdn.into()],
            users: Vec::new(),
            xmpp_server: Some("203.0.113.12:5269".into()),
            ssh: ssh
                .then(|| {
                    (
                        fqdn.to_string(),
                        SshRecord {
                            host: "203.0.113.12".into(),
                            port: 22,
                            user: "root".into(),
                        },
                    )
                })
                .into_iter()
                .collect(),
        };
        t.frontend_pools = vec![pool("fe-hq", "fe1", true), pool("fe-dr", "fe2", true)];
        let gone = gone_servers(&t, &["fe1", "edge1"]);
        assert_eq!(gone.len(), 1, "{gone:?}");
        assert_eq!(
            (gone[0].fqdn.as_str(), &gone[0].role),
            ("fe2", &Role::Frontend)
        );
        assert_eq!(
            gone[0].ssh.as_ref().map(|s| s.host.as_str()),
            Some("203.0.113.12")
        );
        assert_eq!(
            left_unreached(&gone[0], "/m.json")[0],
            "its XMPP server, listening on 203.0.113.12:5269"
        );
        // Without a record of how it was reached: its name.
        t.frontend_pools = vec![pool("fe-dr", "fe2", false)];
        assert_eq!(gone_servers(&t, &[])[0].fallback_host, "fe2");

        let manifest = r#"[
          {"kind":"file","address":"fe/fe-dr/fe2/file:/etc/xfed/prosody/prosody.cfg.lua","path":"/etc/xfed/prosody/prosody.cfg.lua"},
          {"kind":"service","address":"fe/fe-dr/fe2/service:xfed-prosody","name":"xfed-prosody","manager":"direct","pid_file":"/var/lib/xfed/prosody/xfed-prosody.pid"}
        ]"#;
        let r = resources(
            &gone[0],
            "/var/lib/xfed/managed.json",
            Some(manifest),
            &origin(),
        )
        .expect("a manifest");
        let addresses: Vec<&str> = r.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(
            addresses,
            [
                "fe/fe-dr/fe2/service:xfed-prosody",
                "fe/fe-dr/fe2/file:/etc/xfed/prosody/prosody.cfg.lua",
                "fe/fe-dr/fe2/file:/var/lib/xfed/managed.json",
            ]
        );
        assert!(r.iter().all(|r| r.role == Role::Frontend));
        let d = Decommission {
            server: "fe2".into(),
            role: Role::Frontend,
            pool: "fe-dr".into(),
            left: Vec::new(),
            unreachable: None,
            forgotten: false,
        };
        assert_eq!(d.address(), "fe/fe2");
        // A plan saved before front-ends were decommissioned reads as edges.
        let old: Decommission =
            serde_json::from_str(r#"{"server":"edge2","pool":"edge-hq","left":[]}"#)
                .expect("an old plan's entry");
        assert_eq!(old.address(), "edge/edge2");
    }

    fn destroying(servers: &[(&str, Option<&str>)]) -> Plan {
        let mut plan = crate::plan::build(&[], &HashMap::new(), &[], 1);
        plan.decommission = servers
            .iter()
            .map(|(s, unreachable)| Decommission {
                server: s.to_string(),
                role: Role::Edge,
                pool: "edge-hq".into(),
                left: vec!["its gateway".into()],
                unreachable: unreachable.map(str::to_string),
                forgotten: false,
            })
            .collect();
        plan
    }

    #[test]
    fn destroying_more_than_one_server_needs_allow_destroy() {
        assert!(refusals(&destroying(&[]), false).is_empty());
        assert!(refusals(&destroying(&[("edge2", None)]), false).is_empty());
        let two = destroying(&[("edge2", None), ("edge3", None)]);
        let why = refusals(&two, false);
        assert_eq!(why.len(), 1);
        assert!(why[0].contains("destroys 2 servers"), "{why:?}");
        assert!(why[0].contains("edge/edge3"), "{why:?}");
        assert!(why[0].contains("--allow-destroy"), "{why:?}");
        assert!(refusals(&two, true).is_empty());
    }

    #[test]
    fn a_forgotten_server_is_neither_contacted_nor_refused_and_a_typo_is() {
        let t = published(vec![(
            "edge-hq",
            vec![server("edge2", 102, true), server("edge9", 109, true)],
        )]);
        let gone = gone_servers(&t, &[]);
        let m = "/var/lib/xfed/managed.json";
        let (forgotten, rest) = forget(gone.clone(), &["edge9".into()], m).expect("edge9 left");
        assert_eq!(
            rest.iter().map(|g| g.fqdn.as_str()).collect::<Vec<_>>(),
            ["edge2"]
        );
        assert_eq!(forgotten.len(), 1);
        assert!(forgotten[0].forgotten && forgotten[0].unreachable.is_none());
        assert!(
            forgotten[0].left[0].contains("198.51.100.109:5269"),
            "{forgotten:?}"
        );
        // Forgotten servers count for no destroy: edge2 alone needs no flag,
        // even beside a forgotten server the record says is unreachable.
        let mut plan = destroying(&[("edge2", None)]);
        plan.decommission.extend(forgotten);
        assert!(
            refusals(&plan, false).is_empty(),
            "{:?}",
            refusals(&plan, false)
        );
        // Only a server that left the spec can be forgotten.
        let e = forget(gone, &["edge1".into()], m).expect_err("edge1 is not gone");
        assert!(
            e.starts_with(
                "`--forget edge1` names no server that left the spec; nothing was changed"
            ),
            "{e}"
        );
        assert!(e.contains("`edge2`, `edge9`"), "{e}");
    }

    #[test]
    fn a_server_that_cannot_be_reached_is_refused_with_what_is_left_on_it() {
        let p = destroying(&[("edge2", Some("connection refused"))]);
        for allow in [false, true] {
            let why = refusals(&p, allow);
            assert_eq!(why.len(), 1);
            assert!(why[0].contains("edge/edge2"), "{why:?}");
            assert!(why[0].contains("connection refused"), "{why:?}");
            assert!(why[0].contains("its gateway"), "{why:?}");
        }
    }
}

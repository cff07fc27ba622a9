//! Reading the servers that left the spec: the published topology names
//! them and how they were reached; each is connected to with the spec's
//! SSH credentials at its recorded address, and its manifest read. What
//! to do with them is `plan::decommission`'s decision.
//!
//! Never fails the run: a server that cannot be reached or read is
//! reported in the plan with what is left on it.

use std::collections::{BTreeMap, HashMap};

use super::fanout::fan_out;
use super::hosts::{ConnectOptions, Host, ssh_config};
use super::prepare::observe_each;
use crate::plan::decommission::{self, Decommission, GoneServer};
use crate::plan::{Desired, FileSpec, Observed, Phase, Resource};
use crate::spec::{Origin, Spec};
use crate::transport::SshTransport;

/// The gone servers as read: the hosts reached (for `apply`), the
/// removals they need with their observations, and every server's entry.
#[derive(Debug, Default)]
pub struct GoneRead {
    pub hosts: BTreeMap<String, Host>,
    pub resources: Vec<Resource>,
    pub observed: HashMap<String, Observed>,
    pub servers: Vec<Decommission>,
}

/// Connects to each gone server and reads its manifest at
/// `manifest_path`. `record` names the published document (the origin
/// the plan shows).
pub async fn read_gone(
    spec: &Spec,
    gone: Vec<GoneServer>,
    manifest_path: &str,
    record: &str,
    opts: ConnectOptions,
) -> GoneRead {
    let mut out = GoneRead::default();
    // Every server of a spec shares its credentials; only the address,
    // port and login are per server, and those come from the record.
    let Some(base) = spec.servers().next().map(|s| s.ssh.clone()) else {
        return out;
    };
    let jobs = gone.iter().map(|g| {
        let mut target = base.clone();
        match &g.ssh {
            Some(r) => {
                target.host = r.host.clone();
                target.port = r.port;
                target.user = r.user.clone();
            }
            None => target.host = g.fallback_host.clone(),
        }
        let config = ssh_config(&g.fqdn, &target, opts.accept_new_host_keys);
        let job = async move {
            tokio::task::spawn_blocking(move || SshTransport::connect(config))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        };
        (g.fqdn.clone(), job)
    });
    let mut reached = BTreeMap::new();
    let mut failed: HashMap<String, String> = HashMap::new();
    for (fqdn, r) in fan_out(jobs, opts.parallelism).await {
        match r {
            Ok(Ok(t)) => {
                reached.insert(fqdn.clone(), Host::new(fqdn, Box::new(t)));
            }
            Ok(Err(e)) => {
                failed.insert(fqdn, e.to_string());
            }
            Err(p) => {
                failed.insert(fqdn, p.to_string());
            }
        }
    }

    let origin = Origin {
        file: record.into(),
        line: 0,
        col: 0,
        field: String::new(),
    };
    let manifests: Vec<Resource> = gone
        .iter()
        .filter(|g| reached.contains_key(&g.fqdn))
        .map(|g| Resource {
            address: format!("decommission/{}/manifest", g.fqdn),
            host: g.fqdn.clone(),
            role: g.role.clone(),
            pool: g.pool.clone(),
            phase: Phase::Restart,
            desired: Desired::File(FileSpec::at(manifest_path)),
            origin: origin.clone(),
            notifies: None,
        })
        .collect();
    let mut texts: HashMap<String, Option<String>> = HashMap::new();
    for (host, r) in observe_each(&reached, &manifests, opts.parallelism, false).await {
        match r {
            Ok((_, o)) => {
                let text = o.into_values().find_map(|x| match x {
                    Observed::File(Some(f)) => Some(f.content.unwrap_or_default()),
                    _ => None,
                });
                texts.insert(host, text);
            }
            Err(e) => {
                failed.insert(host.clone(), e.to_string());
                reached.remove(&host);
            }
        }
    }

    for g in &gone {
        if let Some(why) = failed.get(&g.fqdn) {
            out.servers.push(Decommission {
                server: g.fqdn.clone(),
                role: g.role.clone(),
                pool: g.pool.clone(),
                left: decommission::left_unreached(g, manifest_path),
                unreachable: Some(why.clone()),
                forgotten: false,
            });
            continue;
        }
        let text = texts.get(&g.fqdn).cloned().flatten();
        match decommission::resources(g, manifest_path, text.as_deref(), &origin) {
            // Nothing xfed placed is left: nothing to destroy.
            Ok(r) if r.is_empty() => {
                reached.remove(&g.fqdn);
            }
            Ok(r) => {
                out.servers.push(Decommission {
                    server: g.fqdn.clone(),
                    role: g.role.clone(),
                    pool: g.pool.clone(),
                    left: r
                        .iter()
                        .map(|x| crate::plan::short_address(&x.address))
                        .collect(),
                    unreachable: None,
                    forgotten: false,
                });
                for x in &r {
                    out.observed.insert(x.address.clone(), Observed::File(None));
                }
                out.resources.extend(r);
            }
            Err(why) => out.servers.push(Decommission {
                server: g.fqdn.clone(),
                role: g.role.clone(),
                pool: g.pool.clone(),
                left: decommission::left_unreached(g, manifest_path),
                unreachable: Some(why),
                forgotten: false,
            }),
        }
    }
    reached.retain(|h, _| out.resources.iter().any(|r| &r.host == h));
    out.hosts = reached;
    out
}

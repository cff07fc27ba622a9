//! `--target KIND:NAME`: a plan restricted to some resources and what they
//! need (Terraform's `-target`, Ansible's `--limit`), so an urgent fix on
//! one pool does not drag every pending change elsewhere into the same
//! apply. What is left out is listed, and the plan says it is partial.
//!
//! The restriction is a pure function of the full plan: the world is read
//! as for any plan, then only the targeted changes are kept.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::change::Change;
use super::kind::ResourceKind;
use super::plan::Plan;
use super::stage::Stage;

/// One `--target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Target {
    /// Every change on the servers of a front-end or edge pool.
    Pool(String),
    /// Every change on one server.
    Server(String),
    /// A certificate on every server of its pool, and the reload of the
    /// gateways that present it.
    Certificate(String),
    /// A partner: its topology object, and the files that carry the
    /// partner list (the front-ends' topology, the gateways' policy), with
    /// the gateways' reload.
    Partner(String),
    /// The records xfed owns in one DNS zone.
    Zone(String),
    /// Policies, grants, partners and routes, and the files that publish
    /// them.
    Topology,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        let t = match s.split_once(':') {
            Some(("pool", n)) if !n.is_empty() => Target::Pool(n.into()),
            Some(("server", n)) if !n.is_empty() => Target::Server(n.into()),
            Some(("certificate", n)) if !n.is_empty() => Target::Certificate(n.into()),
            Some(("partner", n)) if !n.is_empty() => Target::Partner(n.into()),
            Some(("zone", n)) if !n.is_empty() => {
                Target::Zone(format!("{}.", n.trim_end_matches('.')))
            }
            None if s == "topology" => Target::Topology,
            _ => {
                return Err(format!(
                    "`{s}` is not a target xfed knows: expected `pool:NAME`, `server:FQDN`, `certificate:NAME`, `partner:DOMAIN`, `zone:NAME` or `topology`"
                ));
            }
        };
        Ok(t)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pool(n) => write!(f, "pool:{n}"),
            Target::Server(n) => write!(f, "server:{n}"),
            Target::Certificate(n) => write!(f, "certificate:{n}"),
            Target::Partner(n) => write!(f, "partner:{n}"),
            Target::Zone(n) => write!(f, "zone:{n}"),
            Target::Topology => f.write_str("topology"),
        }
    }
}

/// What a target needs beyond the changes it names.
fn carries_topology(c: &Change) -> bool {
    c.kind == ResourceKind::File
        && (c.address.ends_with("/topology.json") || c.address.ends_with("/policy.toml"))
}

impl Target {
    /// `("server", "edge1.contoso.example")`; `None` for `topology`.
    fn kind_and_name(&self) -> Option<(&'static str, &str)> {
        match self {
            Target::Pool(n) => Some(("pool", n)),
            Target::Server(n) => Some(("server", n)),
            Target::Certificate(n) => Some(("certificate", n)),
            Target::Partner(n) => Some(("partner", n)),
            Target::Zone(n) => Some(("zone", n)),
            Target::Topology => None,
        }
    }

    /// Whether `c` is named by this target, directly.
    fn names(&self, c: &Change, pools_of_hosts: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Target::Pool(p) => {
                !c.host.is_empty()
                    && (c.pool == *p || pools_of_hosts(&c.host).as_deref() == Some(p.as_str()))
            }
            Target::Server(h) => c.host == *h,
            Target::Certificate(n) => {
                c.kind == ResourceKind::Certificate
                    && c.address.ends_with(&format!("/certificate:{n}"))
            }
            Target::Partner(d) => {
                c.address == format!("topology/partner:{d}") || carries_topology(c)
            }
            Target::Zone(z) => c.address.starts_with(&format!("dns/{z}/")),
            Target::Topology => c.address.starts_with("topology/") || carries_topology(c),
        }
    }
}

/// Keeps the changes the targets name, and on the same hosts the services
/// they restart or reload; everything else leaves the plan and is listed
/// in `skipped` (the changes that would have done something). Stages keep
/// their order; a stage left with nothing is dropped.
pub fn restrict(
    plan: Plan,
    targets: &[Target],
    pool_of_host: &dyn Fn(&str) -> Option<String>,
) -> Plan {
    if targets.is_empty() {
        return plan;
    }
    let named: Vec<bool> = plan
        .changes
        .iter()
        .map(|c| targets.iter().any(|t| t.names(c, pool_of_host)))
        .collect();
    // A kept write on a host needs that host's service to pick it up.
    let touched: Vec<&str> = plan
        .changes
        .iter()
        .zip(&named)
        .filter(|(c, keep)| **keep && c.action.is_change() && !c.host.is_empty())
        .map(|(c, _)| c.host.as_str())
        .collect();
    let keep: Vec<bool> = plan
        .changes
        .iter()
        .zip(&named)
        .map(|(c, n)| *n || (c.kind == ResourceKind::Service && touched.contains(&c.host.as_str())))
        .collect();

    let mut index = vec![None; plan.changes.len()];
    let mut changes = Vec::new();
    let mut skipped = plan.skipped;
    for (i, (c, k)) in plan.changes.into_iter().zip(&keep).enumerate() {
        if *k {
            index[i] = Some(changes.len());
            changes.push(c);
        } else if c.action.is_change() {
            skipped.push(c.address);
        }
    }
    let stages: Vec<Stage> = plan
        .stages
        .into_iter()
        .filter_map(|s| {
            let kept: Vec<usize> = s.changes.iter().filter_map(|&i| index[i]).collect();
            (!kept.is_empty()).then_some(Stage { changes: kept, ..s })
        })
        .collect();
    let mut all_targets = plan.targets;
    all_targets.extend(targets.iter().cloned());
    Plan {
        changes,
        stages,
        access: plan.access,
        targets: all_targets,
        skipped,
        decommission: plan.decommission,
    }
}

/// Every target names something the spec has: `known(kind)` gives the
/// names of a kind (`pool`, `server`, `certificate`, `partner`, `zone`).
///
/// A server or pool the spec does not have may be one that left it (a
/// destroy to target); those are returned, to be checked against the
/// published record once it is read (`check_gone`).
pub fn check(
    targets: &[Target],
    known: &dyn Fn(&str) -> Vec<String>,
) -> Result<Vec<Target>, String> {
    let mut awaiting = Vec::new();
    for t in targets {
        let Some((kind, name)) = t.kind_and_name() else {
            continue;
        };
        let names = known(kind);
        if names.iter().any(|x| x == name) {
            continue;
        }
        if matches!(t, Target::Server(_) | Target::Pool(_)) {
            awaiting.push(t.clone());
            continue;
        }
        return Err(format!(
            "`--target {t}` names no {kind} of the spec; nothing was contacted\nhint: the spec has {}",
            what_the_spec_has(&format!("{kind}:"), names.iter().map(String::as_str))
        ));
    }
    Ok(awaiting)
}

/// The targets `check` left for the record: each must name a server or
/// pool the published topology lists and the spec no longer has (`gone`,
/// by kind), or nothing was meant by it.
pub fn check_gone(
    awaiting: &[Target],
    known: &dyn Fn(&str) -> Vec<String>,
    gone: &dyn Fn(&str) -> Vec<String>,
) -> Result<(), String> {
    for t in awaiting {
        let Some((kind, name)) = t.kind_and_name() else {
            continue;
        };
        if !gone(kind).iter().any(|x| x == name) {
            let names = known(kind);
            return Err(format!(
                "`--target {t}` names no {kind} of the spec, nor one that left it; nothing was changed\nhint: the spec has {}",
                what_the_spec_has(&format!("{kind}:"), names.iter().map(String::as_str))
            ));
        }
    }
    Ok(())
}

/// `` `pool:a`, `pool:b` ``, or "nothing of that kind": the hint of a
/// target that names nothing.
pub(super) fn what_the_spec_has<'a>(prefix: &str, names: impl Iterator<Item = &'a str>) -> String {
    let listed: Vec<String> = names.map(|x| format!("`{prefix}{x}`")).collect();
    if listed.is_empty() {
        "nothing of that kind".into()
    } else {
        listed.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_back() {
        for s in [
            "pool:edge-br",
            "server:edge1.contoso.example",
            "certificate:edge-hq-external",
            "partner:fabrikam.example",
            "zone:contoso.example.",
            "topology",
        ] {
            let t: Target = s.parse().expect("a target");
            assert_eq!(t.to_string(), s);
        }
        assert_eq!(
            "zone:contoso.example".parse::<Target>(),
            Ok(Target::Zone("contoso.example.".into()))
        );
        assert!("host:x".parse::<Target>().is_err());
        assert!("pool:".parse::<Target>().is_err());
    }

    fn known(kind: &str) -> Vec<String> {
        match kind {
            "server" => vec!["edge1".into()],
            "pool" => vec!["edge-hq".into()],
            "partner" => vec!["fabrikam.example".into()],
            _ => Vec::new(),
        }
    }

    #[test]
    fn a_server_or_pool_the_spec_lacks_waits_for_the_record_and_anything_else_is_refused_at_once() {
        let t = |s: &str| s.parse::<Target>().expect("a target");
        let targets = [
            t("server:edge1"),
            t("server:edge2"),
            t("pool:edge-dr"),
            t("topology"),
        ];
        assert_eq!(
            check(&targets, &known),
            Ok(vec![t("server:edge2"), t("pool:edge-dr")])
        );
        let e = check(&[t("partner:litware.example")], &known).expect_err("unknown partner");
        assert!(e.contains("nothing was contacted"), "{e}");
        assert!(e.contains("`partner:fabrikam.example`"), "{e}");

        // The record lists edge2 in pool edge-dr: both name what left.
        let gone = |kind: &str| match kind {
            "server" => vec!["edge2".to_string()],
            "pool" => vec!["edge-dr".to_string()],
            _ => Vec::new(),
        };
        assert_eq!(
            check_gone(&[t("server:edge2"), t("pool:edge-dr")], &known, &gone),
            Ok(())
        );
        let e = check_gone(&[t("server:edge9")], &known, &gone).expect_err("a typo");
        assert!(
            e.starts_with("`--target server:edge9` names no server of the spec, nor one that left it; nothing was changed"),
            "{e}"
        );
        assert!(e.contains("`server:edge1`"), "{e}");
    }
}

//! Plan assembly: the stages that do not come from host resources — DNS
//! and the published topology — put into a plan in the manual order, and
//! what hosts' manifests list that the spec no longer has.
//!
//! Pure: everything it needs (the decided DNS plan, the published
//! topology as read, the manifests' contents) comes in as values from
//! the engine.

use std::collections::HashMap;

use super::dns_plan::DnsPlan;
use super::kind::ResourceKind;
use super::plan::Plan;
use super::resource::{Desired, ManifestEntry, Observed, Phase, Resource};
use super::stage::{Stage, StageKind};
use crate::spec::{Role, Spec};
use crate::topology::Topology;

/// DNS changes run after the edge pools and before the policies, as the
/// manual procedure does; they are one stage, written zone by zone.
pub fn add_dns_stage(plan: &mut Plan, dns: &DnsPlan) {
    let first = plan.changes.len();
    let changes = dns.changes();
    let zones: Vec<String> = dns.zones.iter().map(|z| z.zone.clone()).collect();
    plan.changes.extend(changes);
    let stage = Stage {
        kind: StageKind::Dns,
        hosts: zones,
        changes: (first..plan.changes.len()).collect(),
        health_gate: false,
    };
    let at = plan
        .stages
        .iter()
        .position(|s| matches!(s.kind, StageKind::Policies | StageKind::Verify))
        .unwrap_or(plan.stages.len());
    plan.stages.insert(at, stage);
}

/// The topology document each front-end holds, as read.
pub fn published_topologies(
    resources: &[Resource],
    observed: &HashMap<String, Observed>,
) -> Vec<(String, Option<Topology>)> {
    resources
        .iter()
        .filter(|r| r.role == Role::Frontend)
        .filter(|r| matches!(&r.desired, Desired::File(f) if f.path.ends_with("/topology.json")))
        .map(|r| {
            let doc = match observed.get(&r.address) {
                Some(Observed::File(Some(f))) => {
                    f.content.as_deref().and_then(|c| Topology::parse(c).ok())
                }
                _ => None,
            };
            (r.host.clone(), doc)
        })
        .collect()
}

/// Policies, grants, partners and routes, decided against the topology
/// published on the front-ends (the first front-end in spec order that has
/// one; the others' copies are `file` changes of their own). They run as
/// the "policies and routes" stage, after DNS and before verification.
pub fn add_topology_stage(plan: &mut Plan, spec: &Spec, want: &Topology, live: Option<&Topology>) {
    let mut origins = super::topology::Origins::new();
    for p in &spec.policies {
        origins.insert(
            format!("topology/policy:{}", p.identity),
            p.origin.to_string(),
        );
    }
    for g in &spec.grants {
        origins.insert(format!("topology/grant:{}", g.policy), g.origin.to_string());
    }
    for p in &spec.partners {
        origins.insert(
            format!("topology/partner:{}", p.domain),
            p.origin.to_string(),
        );
    }
    for s in &spec.sites {
        origins.insert(format!("topology/route:{}", s.name), s.origin.to_string());
    }
    let t = super::topology::plan_topology(want, live, &origins);
    plan.access = t.access;
    if t.changes.is_empty() {
        return;
    }
    let first = plan.changes.len();
    plan.changes.extend(t.changes);
    let stage = Stage {
        kind: StageKind::Policies,
        hosts: spec
            .frontend_pools
            .iter()
            .flat_map(|p| p.servers.iter().map(|s| s.fqdn.clone()))
            .collect(),
        changes: (first..plan.changes.len()).collect(),
        health_gate: false,
    };
    let at = plan
        .stages
        .iter()
        .position(|s| s.kind == StageKind::Verify)
        .unwrap_or(plan.stages.len());
    plan.stages.insert(at, stage);
}

/// What hosts' manifests list but the spec no longer has: to be removed.
pub fn gone_resources(
    manifest: &str,
    resources: &[Resource],
    observed: &HashMap<String, Observed>,
) -> Vec<Resource> {
    let mut gone = Vec::new();
    for r in resources {
        let Desired::File(f) = &r.desired else {
            continue;
        };
        if f.path != manifest {
            continue;
        }
        let Some(Observed::File(Some(fact))) = observed.get(&r.address) else {
            continue;
        };
        let text = fact.content.as_deref().unwrap_or("[]");
        let Ok(entries) = serde_json::from_str::<Vec<ManifestEntry>>(text) else {
            continue;
        };
        for e in entries {
            // Still desired, or the same thing under a new address (the
            // server moved to another pool): not gone.
            let same_target = |d: &Resource| {
                d.host == r.host
                    && match (&d.desired, &e) {
                        (Desired::File(f), ManifestEntry::File { path, .. }) => &f.path == path,
                        (Desired::Binary(b), ManifestEntry::Binary { path, .. }) => &b.path == path,
                        (Desired::Service(s), ManifestEntry::Service { name, .. }) => {
                            &s.name == name
                        }
                        // Another certificate now writes the same files
                        // (the server's new pool has its own, at the
                        // usage's paths): removing the old one would
                        // delete the new one's key.
                        (
                            Desired::Certificate(c),
                            ManifestEntry::Certificate {
                                cert_path,
                                key_path,
                                ..
                            },
                        ) => &c.cert_path == cert_path || &c.key_path == key_path,
                        _ => false,
                    }
            };
            if resources
                .iter()
                .any(|d| d.address == e.address() || same_target(d))
            {
                continue;
            }
            let desired = e.to_gone();
            // Services stop before their files go (on a front-end, the
            // XMPP server xfed managed there).
            let phase = match (&r.role, desired.kind()) {
                (Role::Frontend, ResourceKind::Service) => Phase::Frontend,
                (Role::Edge, ResourceKind::Service) => Phase::Edge,
                (_, _) => Phase::Restart,
            };
            gone.push(Resource {
                address: e.address().to_string(),
                host: r.host.clone(),
                role: r.role.clone(),
                pool: r.pool.clone(),
                phase,
                desired,
                origin: r.origin.clone(),
                notifies: None,
            });
        }
    }
    gone
}

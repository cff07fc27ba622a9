//! The plan as a value (Terraform's `internal/plans`): every decided change
//! and the stages they run in. Building it is pure; applying it is
//! `apply/`'s job; `drift` is a plan that is only looked at.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::action::Action;
use super::change::Change;
use super::diff::{Notifications, decide};
use super::reload_scope::notify_for;
use super::replace::Replace;
use super::resource::{Desired, Observed, Phase, Resource};
use super::stage::{Stage, StageKind};

/// The service `--replace gateway:SERVER` restarts.
const GATEWAY_SERVICE: &str = "xfed-gateway";
use crate::spec::Role;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub stages: Vec<Stage>,
    /// Users whose effective external access the plan changes.
    #[serde(default)]
    pub access: Vec<super::access::AccessChange>,
    /// `--target`s this plan is restricted to; empty: the whole spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<super::target::Target>,
    /// Changes the targets left out (addresses); the plan is partial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Servers the published topology lists and the spec no longer has:
    /// destroyed by the `decommission` stage, or reported unreachable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decommission: Vec<super::decommission::Decommission>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Delete => s.destroy += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::NoOp => {}
            }
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action.is_change()) || !self.decommission.is_empty()
    }

    /// Changes that do something, in execution order.
    pub fn actionable(&self) -> impl Iterator<Item = &Change> {
        self.stages
            .iter()
            .flat_map(|s| s.changes.iter())
            .map(|&i| &self.changes[i])
            .filter(|c| c.action.is_change())
    }
}

/// Decides every resource and orders the changes, every edge pool in
/// `edge_pools` order, `serial` servers at a time.
pub fn build(
    resources: &[Resource],
    observed: &HashMap<String, Observed>,
    edge_pools: &[String],
    serial: usize,
) -> Plan {
    let rollout: Vec<(String, usize)> = edge_pools.iter().map(|p| (p.clone(), serial)).collect();
    build_rollout(resources, observed, &rollout, &[])
}

/// Decides every resource and orders the changes.
///
/// `observed` is keyed by resource address; a resource without an
/// observation is a bug in the caller. `rollout` gives the edge pools in
/// the order they roll, each with how many of its servers change at a time;
/// `replace` what the operator asked to replace although nothing differs.
pub fn build_rollout(
    resources: &[Resource],
    observed: &HashMap<String, Observed>,
    rollout: &[(String, usize)],
    replace: &[Replace],
) -> Plan {
    let mut decided: Vec<Option<Change>> = resources
        .iter()
        .map(|r| match r.desired {
            Desired::Service(_) => None,
            _ => Some(decide(
                r,
                observation(r, observed),
                &Notifications::default(),
            )),
        })
        .collect();

    // Replacements asked for: a certificate in sync is replaced anyway.
    for (r, c) in resources.iter().zip(decided.iter_mut()) {
        if let (Desired::Certificate(spec), Some(c)) = (&r.desired, c.as_mut())
            && let Some(t) = replace
                .iter()
                .find(|t| matches!(t, Replace::Certificate(n) if *n == spec.name))
            && !c.action.is_change()
        {
            c.action = Action::Replace;
            c.reason = t.reason();
        }
    }

    // Handlers: what changed asks its service to restart or reload, once.
    let mut notes: HashMap<&str, Notifications> = HashMap::new();
    for r in resources {
        if let Desired::Service(s) = &r.desired
            && let Some(t) = replace.iter().find(
                |t| matches!(t, Replace::Gateway(h) if *h == r.host && s.name == GATEWAY_SERVICE),
            )
        {
            notes.entry(r.address.as_str()).or_default().requested = Some(t.reason());
        }
    }
    for (r, c) in resources.iter().zip(&decided) {
        let Some(c) = c else { continue };
        if let Some((service, how)) = &r.notifies
            && c.action.is_change()
        {
            // A file whose consumer reloads what changed asks for less.
            let how = match (&r.desired, observation(r, observed)) {
                (Desired::File(f), Observed::File(fact)) => notify_for(
                    *how,
                    f.reload_scope,
                    fact.as_ref().and_then(|fact| fact.content.as_deref()),
                    &f.content,
                ),
                _ => *how,
            };
            notes
                .entry(service.as_str())
                .or_default()
                .add(how, short_address(&r.address));
        }
        if let Desired::Listener(l) = &r.desired
            && c.reason == "not listening"
        {
            notes
                .entry(l.service.as_str())
                .or_default()
                .silent_listeners
                .push(format!("{}:{}", l.address, l.port));
        }
    }
    let empty = Notifications::default();
    let changes: Vec<Change> = resources
        .iter()
        .zip(decided)
        .map(|(r, c)| {
            c.unwrap_or_else(|| {
                let n = notes.get(r.address.as_str()).unwrap_or(&empty);
                decide(r, observation(r, observed), n)
            })
        })
        .collect();

    let stages = order(resources, rollout);
    Plan {
        changes,
        stages,
        access: Vec::new(),
        targets: Vec::new(),
        skipped: Vec::new(),
        decommission: Vec::new(),
    }
}

fn observation<'a>(r: &Resource, observed: &'a HashMap<String, Observed>) -> &'a Observed {
    static MISSING: Observed = Observed::File(None);
    observed.get(&r.address).unwrap_or(&MISSING)
}

/// `edge/edge-hq/edge1.contoso.example/file:/etc/xfed/gateway.toml` →
/// `file:/etc/xfed/gateway.toml`.
pub fn short_address(address: &str) -> String {
    [
        "/file:",
        "/binary:",
        "/service:",
        "/listener:",
        "/certificate:",
        "/user:",
    ]
    .iter()
    .filter_map(|k| address.find(k))
    .min()
    .map_or_else(|| address.to_string(), |i| address[i + 1..].to_string())
}

/// The stages, in the seed's order: all front-ends together; then each
/// edge pool, `serial` servers at a time, each batch doing edge →
/// certificates → restart and passing its health gate before the next;
/// then DNS, policies and routes; then verification of every listener.
fn order(resources: &[Resource], rollout: &[(String, usize)]) -> Vec<Stage> {
    let mut stages = Vec::new();
    let by_phase = |pred: &dyn Fn(&Resource) -> bool| -> Vec<usize> {
        let mut idx: Vec<usize> = (0..resources.len())
            .filter(|&i| pred(&resources[i]))
            .collect();
        // stable: by host, then phase, then expansion order
        idx.sort_by_key(|&i| (resources[i].phase, i));
        idx
    };
    let hosts_of = |idx: &[usize]| -> Vec<String> {
        let mut hosts: Vec<String> = Vec::new();
        for &i in idx {
            if !hosts.contains(&resources[i].host) {
                hosts.push(resources[i].host.clone());
            }
        }
        hosts
    };

    // A front-end's files, its certificate, then its managed XMPP
    // server's restart or reload.
    let fe = by_phase(&|r| {
        r.role == Role::Frontend
            && matches!(
                r.phase,
                Phase::Frontend | Phase::Certificates | Phase::Restart
            )
    });
    if !fe.is_empty() {
        stages.push(Stage {
            kind: StageKind::Frontend,
            hosts: hosts_of(&fe),
            changes: fe,
            health_gate: false,
        });
    }

    for (pool, serial) in rollout {
        let serial = (*serial).max(1);
        let mut servers: Vec<&str> = Vec::new();
        for r in resources
            .iter()
            .filter(|r| r.role == Role::Edge && &r.pool == pool)
        {
            if !servers.contains(&r.host.as_str()) {
                servers.push(&r.host);
            }
        }
        let batches: Vec<&[&str]> = servers.chunks(serial).collect();
        let n = batches.len();
        for (b, batch) in batches.into_iter().enumerate() {
            let idx = by_phase(&|r| {
                r.role == Role::Edge
                    && batch.contains(&r.host.as_str())
                    && matches!(r.phase, Phase::Edge | Phase::Certificates | Phase::Restart)
            });
            let mut idx_by_host: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for i in idx {
                let h = batch
                    .iter()
                    .position(|h| *h == resources[i].host)
                    .unwrap_or(0);
                idx_by_host.entry(h).or_default().push(i);
            }
            let idx: Vec<usize> = idx_by_host.into_values().flatten().collect();
            stages.push(Stage {
                kind: StageKind::EdgeBatch {
                    pool: pool.clone(),
                    batch: b + 1,
                    of: n,
                },
                hosts: batch.iter().map(|h| h.to_string()).collect(),
                changes: idx,
                health_gate: true,
            });
        }
    }

    for (phase, kind) in [
        (Phase::Dns, StageKind::Dns),
        (Phase::Policies, StageKind::Policies),
        (Phase::Verify, StageKind::Verify),
    ] {
        let idx = by_phase(&|r| r.phase == phase);
        if !idx.is_empty() {
            stages.push(Stage {
                kind,
                hosts: hosts_of(&idx),
                changes: idx,
                health_gate: false,
            });
        }
    }
    stages
}

//! The run: build → connect → facts → expand → observe → plan. Everything
//! `plan`, `drift` and `apply` share, with the I/O done concurrently across
//! hosts and the deciding left to the pure `plan::build`.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::build::{self, BuildError};
use super::hosts::{ConnectOptions, Host, connect_all};
use super::observe::{ObserveError, observe_host, observe_host_with_facts};
use super::progress::Progress;
use crate::dns::DnsPlan;
use crate::modules::{self, Artifact, ExpandError, HostFacts};
use crate::plan::{self, Desired, ManifestEntry, Observed, Phase, Plan, Resource};
use crate::providers::dns::{self as dns_provider, DnsProvider};
use crate::spec::{Role, Spec};
use crate::transport::{Facts, TransportError};

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub parallelism: usize,
    pub accept_new_host_keys: bool,
    /// Let one plan change more than `dns.max_change` of a zone.
    pub allow_mass_change: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallelism: 20,
            accept_new_host_keys: false,
            allow_mass_change: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Expand(#[from] ExpandError),
    #[error("{}", unreachable_message(.0))]
    Unreachable(Vec<(String, TransportError)>),
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error(transparent)]
    Dns(#[from] dns_provider::DnsError),
}

fn unreachable_message(failed: &[(String, TransportError)]) -> String {
    let mut s = format!(
        "{} host{} could not be reached; nothing was changed:",
        failed.len(),
        if failed.len() == 1 { "" } else { "s" }
    );
    for (h, e) in failed {
        s.push_str(&format!("\n  {h}: {e}"));
    }
    s
}

/// Everything a plan was made from, ready for `apply`.
#[derive(Debug)]
pub struct Prepared {
    pub spec: Spec,
    /// The DNS provider and what it would change, when the spec has `dns`.
    pub dns: Option<DnsRun>,
    pub options: Options,
    pub hosts: BTreeMap<String, Host>,
    pub facts: HashMap<String, Facts>,
    pub resources: Vec<Resource>,
    pub plan: Plan,
    /// The live state the plan was made from, by resource address.
    pub observed: HashMap<String, Observed>,
    pub timings: Vec<(&'static str, f64)>,
}

/// The DNS side of a run: records are not on hosts but behind a provider.
pub struct DnsRun {
    pub provider: Box<dyn DnsProvider>,
    pub plan: DnsPlan,
}

impl std::fmt::Debug for DnsRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsRun")
            .field("provider", &self.provider.describe())
            .finish_non_exhaustive()
    }
}

async fn plan_dns(spec: &Spec) -> Result<Option<DnsRun>, EngineError> {
    let Some(dns) = &spec.dns else {
        return Ok(None);
    };
    let provider =
        dns_provider::provider_for(&dns.provider).map_err(|e| EngineError::Dns(e.into()))?;
    let plan = dns_provider::plan_dns(spec, provider.as_ref())
        .await
        .map_err(EngineError::Dns)?;
    Ok(Some(DnsRun { provider, plan }))
}

pub async fn prepare(
    spec: Spec,
    opts: Options,
    progress: &Progress,
) -> Result<Prepared, EngineError> {
    let mut timings = Vec::new();
    let t0 = Instant::now();
    let needs_gateway = spec.edge_pools.iter().any(|p| p.xmpp_federation);
    let spec_dir = spec
        .file
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let package = spec.gateway.package.clone();

    // Build and connect at the same time: both take a while.
    let build = async move {
        if !needs_gateway {
            return Ok::<_, BuildError>(None);
        }
        tokio::task::spawn_blocking(move || {
            let ws = build::workspace(&spec_dir)?;
            build::build_gateway(&ws, &package).map(Some)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    };
    let connect_opts = ConnectOptions {
        accept_new_host_keys: opts.accept_new_host_keys,
        parallelism: opts.parallelism,
    };
    let n = spec.servers().count();
    progress.line(
        "",
        format!("connecting to {n} host{}", if n == 1 { "" } else { "s" }),
    );
    let (artifact, (hosts, failed)) = tokio::join!(build, connect_all(&spec, None, connect_opts));
    timings.push(("build+connect", t0.elapsed().as_secs_f64()));
    let artifact = artifact?;
    if !failed.is_empty() {
        return Err(EngineError::Unreachable(failed));
    }

    let mut artifacts: HashMap<String, Artifact> = HashMap::new();
    if let Some(a) = artifact {
        artifacts.insert("gateway".into(), a);
    }

    // Facts and observation share one round trip per host. Expansion needs
    // one fact (systemd or not, for `service_manager: auto`), so it first
    // assumes no systemd; hosts that turn out to run it are expanded again
    // and observed once more (production hosts with systemd pay one extra
    // round trip; the rest none).
    let t2 = Instant::now();
    let mut host_facts: HashMap<String, HostFacts> = HashMap::new();
    let mut resources = modules::expand(&spec, &artifacts, &host_facts)?;
    // The DNS provider is read while the hosts are.
    let (observation, dns) = tokio::join!(
        observe_all(&hosts, &resources, opts.parallelism, true),
        plan_dns(&spec)
    );
    let (facts, mut observed) = observation?;
    let dns = dns?;
    for (h, f) in &facts {
        host_facts.insert(
            h.clone(),
            HostFacts {
                systemd: f.systemd_pid1,
            },
        );
    }
    let systemd_auto: Vec<String> =
        if spec.gateway.service_manager == crate::spec::ServiceManager::Auto {
            facts
                .iter()
                .filter(|(_, f)| f.systemd_pid1)
                .map(|(h, _)| h.clone())
                .collect()
        } else {
            Vec::new()
        };
    if !systemd_auto.is_empty() {
        resources = modules::expand(&spec, &artifacts, &host_facts)?;
        let again: BTreeMap<String, Host> = hosts
            .iter()
            .filter(|(h, _)| systemd_auto.contains(h))
            .map(|(h, x)| (h.clone(), x.clone()))
            .collect();
        let (_, more) = observe_all(&again, &resources, opts.parallelism, false).await?;
        observed.extend(more);
    }
    timings.push(("facts+observe", t2.elapsed().as_secs_f64()));
    let edge_hosts: Vec<&str> = spec
        .edge_pools
        .iter()
        .filter(|p| p.xmpp_federation)
        .flat_map(|p| p.servers.iter().map(|s| s.server.fqdn.as_str()))
        .collect();
    for h in edge_hosts {
        if let Some(f) = facts.get(h)
            && f.arch != build::local_arch()
        {
            return Err(BuildError::Arch {
                host: h.into(),
                arch: f.arch.clone(),
                local: build::local_arch().into(),
            }
            .into());
        }
    }
    let gone = gone_resources(&spec, &resources, &observed);
    resources.extend(gone);

    let pools: Vec<String> = spec.edge_pools.iter().map(|p| p.name.clone()).collect();
    let mut plan = plan::build(&resources, &observed, &pools, spec.rollout.serial as usize);
    if let Some(d) = &dns {
        add_dns_stage(&mut plan, d);
    }
    let published = published_topologies(&resources, &observed);
    add_topology_stage(
        &mut plan,
        &spec,
        published.iter().find_map(|(_, t)| t.as_ref()),
    );

    Ok(Prepared {
        spec,
        dns,
        options: opts,
        hosts,
        facts,
        resources,
        plan,
        observed,
        timings,
    })
}

/// DNS changes run after the edge pools and before the policies, as the
/// manual procedure does; they are one stage, written zone by zone.
fn add_dns_stage(plan: &mut Plan, d: &DnsRun) {
    let first = plan.changes.len();
    let changes = d.plan.changes();
    let zones: Vec<String> = d.plan.zones.iter().map(|z| z.zone.clone()).collect();
    plan.changes.extend(changes);
    let stage = plan::Stage {
        name: "dns".into(),
        pool: None,
        hosts: zones,
        changes: (first..plan.changes.len()).collect(),
        health_gate: false,
    };
    let at = plan
        .stages
        .iter()
        .position(|s| s.name == "policies and routes" || s.name == "verify")
        .unwrap_or(plan.stages.len());
    plan.stages.insert(at, stage);
}

/// The topology document each front-end holds, as read.
fn published_topologies(
    resources: &[Resource],
    observed: &HashMap<String, Observed>,
) -> Vec<(String, Option<crate::topology::Topology>)> {
    resources
        .iter()
        .filter(|r| r.role == Role::Frontend)
        .filter(|r| matches!(&r.desired, Desired::File(f) if f.path.ends_with("/topology.json")))
        .map(|r| {
            let doc = match observed.get(&r.address) {
                Some(Observed::File(Some(f))) => f
                    .content
                    .as_deref()
                    .and_then(|c| crate::topology::Topology::parse(c).ok()),
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
fn add_topology_stage(plan: &mut Plan, spec: &Spec, live: Option<&crate::topology::Topology>) {
    let mut origins = plan::topology::Origins::new();
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
    let t = plan::topology::plan_topology(&crate::topology::build(spec), live, &origins);
    plan.access = t.access;
    if t.changes.is_empty() {
        return;
    }
    let first = plan.changes.len();
    plan.changes.extend(t.changes);
    let stage = plan::Stage {
        name: "policies and routes".into(),
        pool: None,
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
        .position(|s| s.name == "verify")
        .unwrap_or(plan.stages.len());
    plan.stages.insert(at, stage);
}

/// What hosts' manifests list but the spec no longer has: to be removed.
fn gone_resources(
    spec: &Spec,
    resources: &[Resource],
    observed: &HashMap<String, Observed>,
) -> Vec<Resource> {
    let manifest = modules::expand::manifest_path(spec);
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
            // Services stop before their files go.
            let phase = match (&r.role, desired.kind()) {
                (Role::Frontend, _) => Phase::Frontend,
                (Role::Edge, "service") => Phase::Edge,
                (Role::Edge, _) => Phase::Restart,
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

/// One host's observation: its facts (when asked) and every resource's
/// live state.
pub type HostObservation = (Option<Facts>, HashMap<String, Observed>);

/// Observes each host's share of `resources` (and, with `facts`, its facts
/// in the same round trip), `parallelism` hosts at a time; every host
/// answers, with its observation or why there is none.
pub async fn observe_each(
    hosts: &BTreeMap<String, Host>,
    resources: &[Resource],
    parallelism: usize,
    facts: bool,
) -> Vec<(String, Result<HostObservation, ObserveError>)> {
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(parallelism.max(1)));
    let mut tasks = Vec::new();
    for (fqdn, h) in hosts {
        let mine: Vec<Resource> = resources
            .iter()
            .filter(|r| &r.host == fqdn)
            .cloned()
            .collect();
        let (h, sem, host) = (h.clone(), sem.clone(), fqdn.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = h
                .with(move |t| {
                    let refs: Vec<&Resource> = mine.iter().collect();
                    if facts {
                        observe_host_with_facts(t, &refs).map(|(f, o)| (Some(f), o))
                    } else {
                        observe_host(t, &refs).map(|o| (None, o))
                    }
                })
                .await;
            (host, r)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        match t.await {
            Ok(x) => out.push(x),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out
}

/// Every host's observation, or the first host's error.
pub async fn observe_all(
    hosts: &BTreeMap<String, Host>,
    resources: &[Resource],
    parallelism: usize,
    facts: bool,
) -> Result<(HashMap<String, Facts>, HashMap<String, Observed>), EngineError> {
    let mut all_facts = HashMap::new();
    let mut out = HashMap::new();
    for (host, r) in observe_each(hosts, resources, parallelism, facts).await {
        let (f, o) = r?;
        if let Some(f) = f {
            all_facts.insert(host, f);
        }
        out.extend(o);
    }
    Ok((all_facts, out))
}

//! The run: build → connect → facts → expand → observe → plan. Everything
//! `plan`, `drift`, `apply` and `verify` share, with the I/O done
//! concurrently across hosts and the deciding left to the pure
//! `plan::build` and `plan::assemble`.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::build::{self, BuildError};
use super::fanout::fan_out;
use super::hosts::{ConnectOptions, Host};
use super::libc_check;
use super::observe::{ObserveError, observe_host, observe_host_with_facts};
use super::read::{ReadOptions, Scope, WorldRead, read_world};
use super::readiness::{self, Login, NotReady, NotReadyReport, Wants};
use crate::modules::{self, ExpandError};
use crate::output::Progress;
use crate::plan::{self, DnsPlan, Observed, Plan, Replace, Resource, Target, assemble};
use crate::providers::dns::{self as dns_provider, DnsProvider};
use crate::spec::Spec;
use crate::transport::{Facts, TransportError};

#[derive(Debug, Clone)]
pub struct Options {
    pub parallelism: usize,
    pub accept_new_host_keys: bool,
    /// Let one plan change more than `dns.max_change` of a zone.
    pub allow_mass_change: bool,
    /// What to replace although nothing differs (`--replace`).
    pub replace: Vec<Replace>,
    /// What the plan is restricted to (`--target`); empty: everything.
    pub targets: Vec<Target>,
    /// Servers that left the spec and are gone for good (`--forget`): the
    /// record drops them without their being contacted.
    pub forget: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallelism: 20,
            accept_new_host_keys: false,
            allow_mass_change: false,
            replace: Vec::new(),
            targets: Vec::new(),
            forget: Vec::new(),
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
    /// A `--replace` target the spec does not have.
    #[error("{0}")]
    Replace(String),
    /// A `--target` the spec does not have.
    #[error("{0}")]
    Target(String),
    /// Hosts that cannot be deployed to as they are, each with the fix.
    #[error(transparent)]
    NotReady(#[from] super::readiness::NotReadyReport),
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
    /// The version of the topology the spec gives: what every front-end
    /// must publish and every gateway must report in `/status`.
    pub topology_version: String,
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

/// The names of one kind of target the spec has.
fn known(spec: &Spec, kind: &str) -> Vec<String> {
    match kind {
        "pool" => spec
            .frontend_pools
            .iter()
            .map(|p| p.name.clone())
            .chain(spec.edge_pools.iter().map(|p| p.name.clone()))
            .collect(),
        "server" => spec.servers().map(|s| s.fqdn.clone()).collect(),
        "certificate" => spec.certificates.iter().map(|c| c.name.clone()).collect(),
        "partner" => spec.partners.iter().map(|p| p.domain.clone()).collect(),
        "zone" => spec
            .dns
            .iter()
            .flat_map(|d| d.zones.iter().map(|z| z.name.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Every `--replace` target names a certificate or a gateway server the
/// spec has; checked before anything is contacted.
fn check_replace(spec: &Spec, replace: &[Replace]) -> Result<(), EngineError> {
    let certificates: Vec<&str> = spec.certificates.iter().map(|c| c.name.as_str()).collect();
    let gateways: Vec<&str> = spec
        .edge_pools
        .iter()
        .filter(|p| p.xmpp_federation)
        .flat_map(|p| p.servers.iter().map(|s| s.server.fqdn.as_str()))
        .collect();
    plan::replace::check(replace, &certificates, &gateways).map_err(EngineError::Replace)
}

/// The edge pools in the order they roll, each with its batch size. The
/// pool that carries the traffic changes last: pools without federation
/// first, then the XMPP pools from the highest SRV priority number (the
/// last fallback) to the lowest (the primary), spec order among equals.
pub fn rollout_order(spec: &Spec) -> Vec<(String, usize)> {
    let mut pools: Vec<_> = spec.edge_pools.iter().collect();
    pools.sort_by_key(|p| {
        (
            p.xmpp_federation,
            std::cmp::Reverse(if p.xmpp_federation { p.srv_priority } else { 0 }),
        )
    });
    pools
        .into_iter()
        .map(|p| (p.name.clone(), spec.rollout.serial.batch(p.servers.len())))
        .collect()
}

async fn read_dns(spec: &Spec) -> Result<Option<DnsRun>, EngineError> {
    let Some(dns) = &spec.dns else {
        return Ok(None);
    };
    let provider =
        dns_provider::provider_for(&dns.provider).map_err(|e| EngineError::Dns(e.into()))?;
    let plan = super::dns::read_and_plan(spec, provider.as_ref())
        .await
        .map_err(EngineError::Dns)?;
    Ok(Some(DnsRun { provider, plan }))
}

pub async fn prepare(
    spec: Spec,
    opts: Options,
    progress: &Progress,
) -> Result<Prepared, EngineError> {
    check_replace(&spec, &opts.replace)?;
    let awaiting_record = plan::target::check(&opts.targets, &|kind| known(&spec, kind))
        .map_err(EngineError::Target)?;
    let mut timings = Vec::new();
    let t0 = Instant::now();
    let read_opts = ReadOptions {
        scope: Scope::Everything,
        connect: ConnectOptions {
            accept_new_host_keys: opts.accept_new_host_keys,
            parallelism: opts.parallelism,
        },
        facts: true,
    };
    // The DNS provider is read while the hosts are.
    let (world, dns) = tokio::join!(
        read_world(&spec, read_opts, progress, &|_| true),
        read_dns(&spec)
    );
    let WorldRead {
        hosts,
        unreachable,
        built,
        mut resources,
        facts,
        observed: per_host,
    } = world?;
    timings.push(("build+connect+observe", t0.elapsed().as_secs_f64()));
    if !unreachable.is_empty() {
        return Err(EngineError::Unreachable(unreachable));
    }
    let mut observed = HashMap::new();
    // A host that cannot be deployed to as it is (no sudo rights, no
    // systemd where asked, a foreign architecture, a port taken) is
    // reported with every other such host, before anything changes.
    let mut not_ready = Vec::new();
    for (host, o) in per_host {
        match o {
            Ok(o) => observed.extend(o),
            Err(ObserveError::Transport(e)) => {
                let login = spec.servers().find(|s| s.fqdn == host).map(|s| Login {
                    user: s.ssh.user.clone(),
                    sudo: s.ssh.become_ == crate::spec::Become::Sudo,
                });
                match login.as_ref().and_then(|l| readiness::classify(l, &e)) {
                    Some(problem) => not_ready.push(NotReady { host, problem }),
                    None => return Err(ObserveError::Transport(e).into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    let edge_hosts: Vec<&str> = spec
        .edge_pools
        .iter()
        .filter(|p| p.xmpp_federation)
        .flat_map(|p| p.servers.iter().map(|s| s.server.fqdn.as_str()))
        .collect();
    not_ready.extend(readiness::check(
        &edge_hosts,
        Wants {
            systemd: spec.gateway.service_manager == crate::spec::ServiceManager::Systemd,
            arch: build::local_arch(),
        },
        &facts,
        &resources,
        &observed,
    ));
    if !not_ready.is_empty() {
        return Err(NotReadyReport(not_ready).into());
    }
    let built = built?;
    let dns = dns?;
    // The binary must also find a glibc as new as the one it was linked
    // against, or it fails at its first start behind the health gate.
    if let Some(artifact) = &built {
        let needs =
            libc_check::glibc_needed_by(&artifact.path).map_err(|message| BuildError::Elf {
                path: artifact.path.display().to_string(),
                message,
            })?;
        let edges: Vec<(String, Option<crate::transport::GlibcVersion>)> = edge_hosts
            .iter()
            .filter_map(|h| facts.get(*h).map(|f| (h.to_string(), f.glibc)))
            .collect();
        libc_check::check(needs, &artifact.path.display().to_string(), &edges)
            .map_err(BuildError::from)?;
    }
    let manifest = modules::expand::manifest_path(&spec);
    let gone = assemble::gone_resources(&manifest, &resources, &observed);
    resources.extend(gone);

    let mut plan = plan::build_rollout(&resources, &observed, &rollout_order(&spec), &opts.replace);
    if let Some(d) = &dns {
        assemble::add_dns_stage(&mut plan, &d.plan);
    }
    let published = assemble::published_topologies(&resources, &observed);
    let topology = crate::topology::build(&spec);
    let topology_version = topology.version.clone();
    let record = published
        .iter()
        .find_map(|(host, t)| t.as_ref().map(|t| (host, t)));
    assemble::add_topology_stage(&mut plan, &spec, &topology, record.map(|(_, t)| t));

    // What the record lists and the spec no longer has is destroyed.
    let mut hosts = hosts;
    let in_spec: Vec<&str> = spec.servers().map(|s| s.fqdn.as_str()).collect();
    let gone = record.map_or_else(Vec::new, |(_, t)| {
        plan::decommission::gone_servers(t, &in_spec)
    });
    // A target the spec does not name must name a server or pool that left it.
    plan::target::check_gone(
        &awaiting_record,
        &|kind| known(&spec, kind),
        &|kind| match kind {
            "server" => gone.iter().map(|g| g.fqdn.clone()).collect(),
            "pool" => gone.iter().map(|g| g.pool.clone()).collect(),
            _ => Vec::new(),
        },
    )
    .map_err(EngineError::Target)?;
    let (forgotten, gone) =
        plan::decommission::forget(gone, &opts.forget, &manifest).map_err(EngineError::Target)?;
    plan.decommission = forgotten;
    if let Some((fe, _)) = record
        && !gone.is_empty()
    {
        let t1 = Instant::now();
        let where_ = format!(
            "{fe}:{}/topology.json (the published topology)",
            spec.gateway.config_dir
        );
        let read =
            super::decommission::read_gone(&spec, gone, &manifest, &where_, read_opts.connect)
                .await;
        plan::decommission::add_stage(&mut plan, &read.resources, &read.observed, &where_);
        plan.decommission.extend(read.servers);
        observed.extend(read.observed);
        resources.extend(read.resources);
        hosts.extend(read.hosts);
        timings.push(("decommission", t1.elapsed().as_secs_f64()));
    }
    let mut dns = dns;
    if !opts.targets.is_empty() {
        let pool_of: HashMap<String, String> = spec
            .servers()
            .map(|s| (s.fqdn.clone(), s.pool.clone()))
            .collect();
        plan = plan::target::restrict(plan, &opts.targets, &|h| pool_of.get(h).cloned());
        // A destroy the targets left out is not reported as planned; one
        // they name that cannot be reached still refuses the apply.
        let kept: Vec<String> = plan.changes.iter().map(|c| c.host.clone()).collect();
        plan.decommission.retain(|d| {
            kept.contains(&d.server)
                || (d.forgotten && opts.targets.contains(&Target::Topology))
                || (d.unreachable.is_some()
                    && opts.targets.iter().any(|t| match t {
                        Target::Server(s) => *s == d.server,
                        Target::Pool(p) => *p == d.pool,
                        _ => false,
                    }))
        });
        // Zones no target names are not written, whatever they hold.
        if let Some(d) = dns.as_mut() {
            d.plan.zones.retain(|z| {
                opts.targets
                    .iter()
                    .any(|t| matches!(t, Target::Zone(n) if *n == z.zone))
            });
        }
    }

    Ok(Prepared {
        spec,
        dns,
        options: opts,
        hosts,
        facts,
        resources,
        plan,
        observed,
        topology_version,
        timings,
    })
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
    let jobs = hosts.iter().map(|(fqdn, h)| {
        let mine: Vec<Resource> = resources
            .iter()
            .filter(|r| &r.host == fqdn)
            .cloned()
            .collect();
        let h = h.clone();
        let job = async move {
            h.with(move |t| {
                let refs: Vec<&Resource> = mine.iter().collect();
                if facts {
                    observe_host_with_facts(t, &refs).map(|(f, o)| (Some(f), o))
                } else {
                    observe_host(t, &refs).map(|o| (None, o))
                }
            })
            .await
        };
        (fqdn.clone(), job)
    });
    fan_out(jobs, parallelism)
        .await
        .into_iter()
        .map(|(host, r)| {
            let r = r.unwrap_or_else(|p| Err(ObserveError::Panicked(p)));
            (host, r)
        })
        .collect()
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

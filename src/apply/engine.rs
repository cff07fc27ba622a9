//! The run: build → connect → facts → expand → observe → plan. Everything
//! `plan`, `drift` and `apply` share, with the I/O done concurrently across
//! hosts and the deciding left to the pure `plan::build`.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::build::{self, BuildError};
use super::hosts::{ConnectOptions, Host, connect_all};
use super::observe::{ObserveError, observe_host};
use super::progress::Progress;
use crate::modules::{self, Artifact, ExpandError, HostFacts};
use crate::plan::{self, Desired, ManifestEntry, Observed, Phase, Plan, Resource};
use crate::spec::{Role, Spec};
use crate::transport::{Facts, TransportError, gather_facts};

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub parallelism: usize,
    pub accept_new_host_keys: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallelism: 20,
            accept_new_host_keys: false,
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
    #[error("gathering facts on `{host}` failed: {source}")]
    Facts {
        host: String,
        source: TransportError,
    },
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
    pub hosts: BTreeMap<String, Host>,
    pub facts: HashMap<String, Facts>,
    pub resources: Vec<Resource>,
    pub plan: Plan,
    pub timings: Vec<(&'static str, f64)>,
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

    let t1 = Instant::now();
    let facts = gather_all(&hosts).await?;
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
    timings.push(("facts", t1.elapsed().as_secs_f64()));

    let mut artifacts: HashMap<String, Artifact> = HashMap::new();
    if let Some(a) = artifact {
        artifacts.insert("gateway".into(), a);
    }
    let host_facts: HashMap<String, HostFacts> = facts
        .iter()
        .map(|(h, f)| {
            (
                h.clone(),
                HostFacts {
                    systemd: f.systemd_pid1,
                },
            )
        })
        .collect();
    let mut resources = modules::expand(&spec, &artifacts, &host_facts)?;

    let t2 = Instant::now();
    let observed = observe_all(&hosts, &resources, opts.parallelism).await?;
    timings.push(("observe", t2.elapsed().as_secs_f64()));
    let gone = gone_resources(&spec, &resources, &observed);
    resources.extend(gone);

    let pools: Vec<String> = spec.edge_pools.iter().map(|p| p.name.clone()).collect();
    let plan = plan::build(&resources, &observed, &pools, spec.rollout.serial as usize);
    Ok(Prepared {
        spec,
        hosts,
        facts,
        resources,
        plan,
        timings,
    })
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

async fn gather_all(hosts: &BTreeMap<String, Host>) -> Result<HashMap<String, Facts>, EngineError> {
    let tasks: Vec<_> = hosts
        .values()
        .map(|h| {
            let h = h.clone();
            tokio::spawn(async move {
                let fqdn = h.fqdn.clone();
                (fqdn, h.with(|t| gather_facts(t)).await)
            })
        })
        .collect();
    let mut out = HashMap::new();
    for t in tasks {
        let Ok((host, r)) = t.await else { continue };
        out.insert(
            host.clone(),
            r.map_err(|source| EngineError::Facts { host, source })?,
        );
    }
    Ok(out)
}

/// Observes every host's resources, `parallelism` hosts at a time.
pub async fn observe_all(
    hosts: &BTreeMap<String, Host>,
    resources: &[Resource],
    parallelism: usize,
) -> Result<HashMap<String, crate::plan::Observed>, EngineError> {
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(parallelism.max(1)));
    let mut tasks = Vec::new();
    for (fqdn, h) in hosts {
        let mine: Vec<Resource> = resources
            .iter()
            .filter(|r| &r.host == fqdn)
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let h = h.clone();
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            h.with(move |t| {
                let refs: Vec<&Resource> = mine.iter().collect();
                observe_host(t, &refs)
            })
            .await
        }));
    }
    let mut out = HashMap::new();
    for t in tasks {
        if let Ok(r) = t.await {
            out.extend(r?);
        }
    }
    Ok(out)
}

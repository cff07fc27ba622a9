//! The read pipeline, once: build the gateway and connect at the same
//! time, expand the modules, observe every host (its facts in the same
//! round trip), and expand again for hosts whose facts change the
//! expansion (`service_manager: auto` on a host that runs systemd).
//!
//! It never fails on one host: an unreachable host, a host that could not
//! be read, a build that failed are all part of the [`WorldRead`]. Each
//! caller decides what that means — `plan` refuses to go on, `doctor`
//! reports it as a finding, `cert` names the host.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::build::{self, BuildError};
use super::hosts::{ConnectOptions, Host, connect_all};
use super::observe::ObserveError;
use super::prepare::{EngineError, HostObservation, observe_each};
use crate::modules::{self, Artifact, ExpandError, HostFacts};
use crate::output::Progress;
use crate::plan::{Observed, Resource};
use crate::spec::{ServiceManager, Spec};
use crate::transport::{Facts, TransportError};

/// Which resources a reading is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything the modules expand to, the gateway built for it.
    Everything,
    /// Only the certificate resources, on the hosts that hold them; nothing
    /// is built (`xfed cert`).
    Certificates,
}

/// The spec's certificate resources (without the gateway's notify): what
/// `xfed cert` reads.
pub fn certificate_resources(spec: &Spec) -> Vec<Resource> {
    modules::expand::certificate_resources(spec)
}

/// What to read and how.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    pub scope: Scope,
    pub connect: ConnectOptions,
    /// Read the hosts' facts (architecture, systemd) too.
    pub facts: bool,
}

/// The world as read: what answered, and what did not, host by host.
#[derive(Debug)]
pub struct WorldRead {
    pub hosts: BTreeMap<String, Host>,
    pub unreachable: Vec<(String, TransportError)>,
    /// The gateway built for this run (`None`: the spec needs none, or the
    /// scope builds nothing).
    pub built: Result<Option<Artifact>, BuildError>,
    pub resources: Vec<Resource>,
    pub facts: HashMap<String, Facts>,
    /// Every reached host's observation, or why it could not be read.
    pub observed: BTreeMap<String, Result<HashMap<String, Observed>, ObserveError>>,
}

impl WorldRead {
    /// Every observation of every host that was read, by resource address.
    pub fn observations(&self) -> HashMap<String, Observed> {
        self.observed
            .values()
            .filter_map(|o| o.as_ref().ok())
            .flat_map(|o| o.iter().map(|(a, x)| (a.clone(), x.clone())))
            .collect()
    }
}

/// Reads the world for `spec`. `keep` chooses which expanded resources are
/// observed (and kept); an expansion error ([`EngineError::Expand`]) is
/// the only error, as it is a fault of the spec or the modules, not of a
/// host.
pub async fn read_world(
    spec: &Spec,
    opts: ReadOptions,
    progress: &Progress,
    keep: &(dyn Fn(&Resource) -> bool + Sync),
) -> Result<WorldRead, EngineError> {
    let needs_gateway =
        opts.scope == Scope::Everything && spec.edge_pools.iter().any(|p| p.xmpp_federation);
    let spec_dir = spec.file.parent().map(PathBuf::from).unwrap_or_default();
    let package = spec.gateway.package.clone();
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

    let certificates = match opts.scope {
        Scope::Certificates => Some(modules::expand::certificate_resources(spec)),
        Scope::Everything => None,
    };
    let only: Option<Vec<String>> = certificates
        .as_ref()
        .map(|c| c.iter().map(|r| r.host.clone()).collect());
    let n = only.as_ref().map_or_else(
        || spec.servers().count(),
        |o| spec.servers().filter(|s| o.contains(&s.fqdn)).count(),
    );
    progress.line(
        "",
        format!("connecting to {n} host{}", if n == 1 { "" } else { "s" }),
    );
    let (built, (hosts, unreachable)) =
        tokio::join!(build, connect_all(spec, only.as_deref(), opts.connect));

    let mut artifacts: HashMap<String, Artifact> = HashMap::new();
    match &built {
        Ok(Some(a)) => {
            artifacts.insert("gateway".into(), a.clone());
        }
        Ok(None) => {}
        // Expansion needs an artifact: a placeholder that matches no
        // binary, so every binary reads as out of date.
        Err(_) => {
            artifacts.insert(
                "gateway".into(),
                Artifact {
                    path: PathBuf::new(),
                    sha256: String::new(),
                    size: 0,
                },
            );
        }
    }
    let expand = |facts: &HashMap<String, HostFacts>| -> Result<Vec<Resource>, ExpandError> {
        let mut r = match &certificates {
            Some(c) => c.clone(),
            None => modules::expand(spec, &artifacts, facts)?,
        };
        r.retain(|x| keep(x));
        Ok(r)
    };

    let mut resources = expand(&HashMap::new())?;
    let first = observe_each(&hosts, &resources, opts.connect.parallelism, opts.facts).await;
    let mut facts = HashMap::new();
    let mut observed = BTreeMap::new();
    for (host, r) in first {
        observed.insert(
            host.clone(),
            r.map(|(f, o): HostObservation| {
                if let Some(f) = f {
                    facts.insert(host, f);
                }
                o
            }),
        );
    }

    // `service_manager: auto`: a host that runs systemd gets a unit, so
    // its share is expanded and read once more. Hosts without systemd —
    // the lab, containers — pay nothing.
    let systemd: HashMap<String, HostFacts> = if opts.scope == Scope::Everything
        && spec.gateway.service_manager == ServiceManager::Auto
    {
        facts
            .iter()
            .filter(|(_, f)| f.systemd_pid1)
            .map(|(h, _)| (h.clone(), HostFacts { systemd: true }))
            .collect()
    } else {
        HashMap::new()
    };
    if !systemd.is_empty() {
        resources = expand(&systemd)?;
        let again: BTreeMap<String, Host> = hosts
            .iter()
            .filter(|(h, _)| systemd.contains_key(*h))
            .map(|(h, x)| (h.clone(), x.clone()))
            .collect();
        for (host, r) in observe_each(&again, &resources, opts.connect.parallelism, false).await {
            let merged = match (observed.remove(&host), r) {
                (Some(Ok(mut before)), Ok((_, more))) => {
                    before.extend(more);
                    Ok(before)
                }
                (_, Err(e)) | (Some(Err(e)), _) => Err(e),
                (None, Ok((_, more))) => Ok(more),
            };
            observed.insert(host, merged);
        }
    }

    Ok(WorldRead {
        hosts,
        unreachable,
        built,
        resources,
        facts,
        observed,
    })
}

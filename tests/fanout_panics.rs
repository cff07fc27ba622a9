//! A host whose task panics is that host's failure, never a host that
//! quietly drops out: for the lock, the observation, the apply and the
//! verify rows. The fault is injected at the transport, the one seam every
//! host operation crosses: a transport whose every command panics.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use xfed::apply::{self, ApplyError, lock::Lease};
use xfed::engine::hosts::Host;
use xfed::engine::observe::ObserveError;
use xfed::engine::{self, Options, Prepared};
use xfed::modules::{self, Artifact};
use xfed::output::Progress;
use xfed::plan::{self, Desired};
use xfed::spec::{self, MapInputs, Source};
use xfed::transport::{Command, Output, Transport, TransportError};

const BASE: &str = include_str!("fixtures/base.yaml");
const EDGE: &str = "edge1.contoso.example";

/// Every command on this host panics, as a bug in xfed's code for one
/// host would.
struct Panicking(String);

impl Transport for Panicking {
    fn host(&self) -> &str {
        &self.0
    }

    fn run(&mut self, _cmd: &Command) -> Result<Output, TransportError> {
        panic!("injected fault on {}", self.0)
    }
}

/// A run of the base spec whose every host panics, with the plan made
/// from nothing observed (everything to create).
fn prepared() -> Prepared {
    let mut inputs = MapInputs::default();
    inputs
        .env
        .insert("PDNS_API_KEY".into(), "pdns-test-key".into());
    let spec = match spec::load(&Source::new("spec.yaml", BASE), Arc::new(inputs)) {
        Ok(l) => l.spec,
        Err(e) => panic!("the base fixture loads: {e}"),
    };
    let artifacts: HashMap<String, Artifact> = [(
        "gateway".to_string(),
        Artifact {
            path: PathBuf::from("/nonexistent/xfed-gateway"),
            sha256: "b".repeat(64),
            size: 1,
        },
    )]
    .into();
    let resources: Vec<_> = modules::expand(&spec, &artifacts, &HashMap::new())
        .expect("the base fixture expands")
        .into_iter()
        // Files and listeners only: enough to reach the host, nothing that
        // issues a certificate.
        .filter(|r| matches!(r.desired, Desired::File(_) | Desired::Listener(_)))
        .collect();
    let hosts: BTreeMap<String, Host> = spec
        .servers()
        .map(|s| {
            (
                s.fqdn.clone(),
                Host::new(s.fqdn.clone(), Box::new(Panicking(s.fqdn.clone()))),
            )
        })
        .collect();
    let observed = HashMap::new();
    let plan = plan::build(&resources, &observed, &["edge-hq".into()], 1);
    Prepared {
        spec,
        dns: None,
        options: Options::default(),
        hosts,
        facts: HashMap::new(),
        resources,
        plan,
        observed,
        topology_version: "0".repeat(16),
        timings: Vec::new(),
    }
}

fn quiet(p: &Prepared) -> Progress {
    Progress::new(p.spec.redactor.clone(), true)
}

#[tokio::test]
async fn a_lock_task_that_panics_is_not_a_lock_taken() {
    let p = prepared();
    let err = apply::lock_all(&p, &Lease::new(60), &quiet(&p))
        .await
        .expect_err("no lock can be taken on a host whose task panicked");
    match err {
        ApplyError::Task { host, source } => {
            assert!(p.hosts.contains_key(&host), "{host}");
            assert!(source.message.contains("injected fault"), "{source}");
        }
        other => panic!("expected the host's task failure, got {other}"),
    }
}

#[tokio::test]
async fn an_observation_that_panics_is_that_hosts_error() {
    let p = prepared();
    let out = engine::observe_each(&p.hosts, &p.resources, 4, true).await;
    assert_eq!(out.len(), p.hosts.len(), "every host answers");
    for (host, r) in out {
        match r {
            Err(ObserveError::Panicked(e)) => assert!(e.message.contains(&host), "{e}"),
            other => panic!("{host}: expected a panicked observation, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_apply_task_that_panics_fails_the_stage_with_that_host() {
    let p = prepared();
    let err = apply::execute(&p, &p.plan, &quiet(&p))
        .await
        .expect_err("the stage fails");
    match err {
        ApplyError::Failed { failed, .. } => {
            assert!(
                failed
                    .iter()
                    .any(|(h, e)| p.hosts.contains_key(h) && e.contains("panicked")),
                "{failed:?}"
            );
        }
        other => panic!("expected the stage to fail, got {other}"),
    }
}

#[tokio::test]
async fn a_verify_task_that_panics_fails_every_row_of_that_host() {
    let p = prepared();
    let rows = xfed::verify::verify_listeners(&p, false).await;
    let listeners = p
        .resources
        .iter()
        .filter(|r| r.host == EDGE && matches!(r.desired, Desired::Listener(_)))
        .count();
    assert!(listeners > 0);
    let mine: Vec<_> = rows.iter().filter(|r| r.host == EDGE).collect();
    assert_eq!(mine.len(), listeners, "no row goes missing: {rows:?}");
    assert!(
        mine.iter().all(|r| !r.ok && r.state.contains("panicked")),
        "{mine:?}"
    );
}

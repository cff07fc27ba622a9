//! Apply: run a plan's stages in order, hosts of a stage in parallel.
//!
//! Every write is atomic (the transport's temp-file-and-rename), every
//! changed file and binary is first copied aside (`*.xfed-prev`), so a
//! host that fails its health gate is put back on its previous version and
//! the rollout stops there: each host ends on its old or its new version,
//! never half-written, and a second apply converges.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::lock::{self, Acquire, Lease};
use super::service::run_op;
use super::step_error::StepError;
use crate::engine::hosts::Host;
use crate::engine::observe::listens;
use crate::engine::probe;
use crate::engine::{Prepared, TaskPanicked, fan_out};
use crate::output::Progress;
use crate::plan::{Action, Change, Desired, ListenerKind, Plan, Resource, ServiceOp, StageKind};
use crate::providers::issuer::{self, IssueContext, Issued};
use crate::transport::{Command, Transport, TransportError, WriteOpts};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{}", lock_message(.0))]
    Locked(Vec<(String, Lease, Option<String>)>),
    #[error("apply stopped at stage `{stage}`:\n{}\n{}", failures(.failed), done_summary(.done, .not_done))]
    Failed {
        stage: String,
        failed: Vec<(String, String)>,
        done: Vec<String>,
        not_done: Vec<String>,
    },
    #[error(
        "apply finished, but {} server(s) failed their health gate and were rolled back (within `rollout.max_fail_percentage`):\n{}\nhint: fix the cause and run apply again; it continues from the live state",
        .failed.len(),
        failures(.failed)
    )]
    FailedWithinBudget {
        failed: Vec<(String, String)>,
        done: Vec<String>,
    },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("`{host}`: {source}")]
    Task {
        host: String,
        #[source]
        source: TaskPanicked,
    },
}

fn lock_message(held: &[(String, Lease, Option<String>)]) -> String {
    let mut s = String::from("another apply holds the lock; nothing was changed:");
    for (host, l, stale) in held {
        s.push_str(&format!(
            "\n  {host}: lock {} held by {}@{} (pid {}) since {}",
            l.id, l.user, l.machine, l.pid, l.since_unix
        ));
        if let Some(why) = stale {
            s.push_str(&format!(" — STALE: {why}"));
        }
    }
    if let Some((_, l, _)) = held.first() {
        s.push_str(&format!(
            "\nhint: if no apply is running, clear it with `xfed unlock SPEC {}`",
            l.id
        ));
    }
    s
}

fn failures(failed: &[(String, String)]) -> String {
    failed
        .iter()
        .map(|(h, e)| format!("  {h}: {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn done_summary(done: &[String], not_done: &[String]) -> String {
    let mut s = format!("done ({}):", done.len());
    for d in done {
        s.push_str(&format!("\n  ✓ {d}"));
    }
    s.push_str(&format!("\nnot done ({}):", not_done.len()));
    for d in not_done {
        s.push_str(&format!("\n  · {d}"));
    }
    s.push_str("\nhint: fix the cause and run apply again; it continues from the live state");
    s
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct Report {
    pub done: Vec<String>,
}

pub fn lock_path(p: &Prepared) -> String {
    format!("{}/xfed.lock", p.spec.gateway.state_dir)
}

/// Takes the lease on every host of the run, or none. A lease whose holder
/// is provably gone (an apply on this machine that was killed, or that
/// could not release a host it lost) is taken over and reported; any other
/// held lease stops the apply.
pub async fn lock_all(p: &Prepared, lease: &Lease, progress: &Progress) -> Result<(), ApplyError> {
    let path = lock_path(p);
    let jobs = p.hosts.values().map(|h| {
        let (h, path, lease, fqdn) = (h.clone(), path.clone(), lease.clone(), h.fqdn.clone());
        let job = async move {
            h.with(move |t| -> Result<Option<(Lease, bool)>, TransportError> {
                match lock::acquire(t, &path, &lease)? {
                    Acquire::Acquired => Ok(None),
                    Acquire::Held(old) if old.holder_gone(&lease.machine) => {
                        let won = lock::take_over(t, &path, &old.id, &lease)?;
                        Ok(Some((old, won)))
                    }
                    Acquire::Held(old) => Ok(Some((old, false))),
                }
            })
            .await
        };
        (fqdn, job)
    });
    let now = lock::now_unix();
    let mut held = Vec::new();
    let mut err = None;
    for (host, r) in fan_out(jobs, p.options.parallelism).await {
        let r = match r {
            Ok(r) => r.map_err(ApplyError::from),
            Err(source) => Err(ApplyError::Task {
                host: host.clone(),
                source,
            }),
        };
        match r {
            Ok(None) => {}
            Ok(Some((old, true))) => progress.line(
                &host,
                format!(
                    "stale lock {} of {}@{} (pid {}, gone) taken over",
                    old.id, old.user, old.machine, old.pid
                ),
            ),
            Ok(Some((old, false))) => {
                let stale = old.stale_because(now, &lease.machine);
                held.push((host, old, stale));
            }
            Err(e) => err = Some(e),
        }
    }
    if !held.is_empty() || err.is_some() {
        unlock_all(p, &lease.id).await;
        if let Some(e) = err {
            return Err(e);
        }
        return Err(ApplyError::Locked(held));
    }
    Ok(())
}

/// Releases the lease everywhere it can; returns the hosts where it could
/// not (a host lost during the run keeps it until the next apply).
pub async fn unlock_all(p: &Prepared, id: &str) -> Vec<String> {
    let path = lock_path(p);
    let jobs = p.hosts.values().map(|h| {
        let (h, path, id, fqdn) = (h.clone(), path.clone(), id.to_string(), h.fqdn.clone());
        let job = async move { h.with(move |t| lock::release(t, &path, &id)).await };
        (fqdn, job)
    });
    fan_out(jobs, p.options.parallelism)
        .await
        .into_iter()
        .filter(|(_, r)| !matches!(r, Ok(Ok(_))))
        .map(|(host, _)| host)
        .collect()
}

/// Runs the plan. The caller holds the lock.
pub async fn execute(p: &Prepared, plan: &Plan, progress: &Progress) -> Result<Report, ApplyError> {
    let by_address: HashMap<&str, &Resource> = p
        .resources
        .iter()
        .map(|r| (r.address.as_str(), r))
        .collect();
    let mut report = Report::default();
    let gate = p.spec.rollout.health_gate_timeout;
    let issuing = std::sync::Arc::new(IssueContext::from_spec(&p.spec));
    // (pool, host, why): failures the pool's failure budget absorbed.
    let mut tolerated: Vec<(String, String, String)> = Vec::new();

    for (si, stage) in plan.stages.iter().enumerate() {
        // DNS and the topology objects live off the hosts: each is one
        // step of its own, done or failed as a whole.
        if matches!(stage.kind, StageKind::Dns | StageKind::Policies) {
            let changed: Vec<&Change> = stage
                .changes
                .iter()
                .map(|&i| &plan.changes[i])
                .filter(|c| c.action.is_change())
                .collect();
            if changed.is_empty() {
                continue;
            }
            progress.line(
                "",
                format!("stage {}: {}", stage.kind, stage.hosts.join(", ")),
            );
            let outcome = if stage.kind == StageKind::Dns {
                apply_dns_stage(p, progress).await
            } else {
                confirm_topology(p, progress).await
            };
            if let Err(failed) = outcome {
                return Err(ApplyError::Failed {
                    stage: stage.name(),
                    failed,
                    done: report.done,
                    not_done: plan.stages[si..]
                        .iter()
                        .flat_map(|s| s.changes.iter())
                        .map(|&i| &plan.changes[i])
                        .filter(|c| c.action.is_change())
                        .map(|c| c.address.clone())
                        .collect(),
                });
            }
            for c in changed {
                progress.line(
                    "",
                    format!("{} {} ({})", verb(c.action), c.address, c.reason),
                );
                report.done.push(c.address.clone());
            }
            continue;
        }
        let mut per_host: BTreeMap<String, Vec<(Change, Resource)>> = BTreeMap::new();
        for &i in &stage.changes {
            let c = &plan.changes[i];
            if let Some(r) = by_address.get(c.address.as_str()) {
                per_host
                    .entry(c.host.clone())
                    .or_default()
                    .push((c.clone(), (*r).clone()));
            }
        }
        if !per_host
            .values()
            .flatten()
            .any(|(c, _)| c.action.is_change())
        {
            continue;
        }
        progress.line(
            "",
            format!("stage {}: {}", stage.kind, stage.hosts.join(", ")),
        );
        let mut jobs = Vec::new();
        let mut failed = Vec::new();
        for (host, items) in per_host {
            let Some(h) = p.hosts.get(&host).cloned() else {
                failed.push((host, "not connected in this run".to_string()));
                continue;
            };
            let listeners: Vec<Resource> = p
                .resources
                .iter()
                .filter(|r| r.host == host && matches!(r.desired, Desired::Listener(_)))
                .cloned()
                .collect();
            let progress = progress.clone();
            let health_gate = stage.health_gate;
            let domain = (
                p.spec.xmpp_domains.first().cloned().unwrap_or_default(),
                p.spec.partners.first().map(|x| x.domain.clone()),
            );
            let issuing = issuing.clone();
            let job = async move {
                apply_host(
                    &h,
                    items,
                    listeners,
                    health_gate,
                    gate,
                    domain,
                    &progress,
                    &issuing,
                )
                .await
            };
            jobs.push((host, job));
        }
        for (host, r) in fan_out(jobs, p.options.parallelism).await {
            match r {
                Ok(Ok(done)) => report.done.extend(done),
                Ok(Err((done, e))) => {
                    report.done.extend(done);
                    failed.push((host, e));
                }
                Err(panicked) => failed.push((host, panicked.to_string())),
            }
        }
        // A pool's failures within `rollout.max_fail_percentage` are
        // tolerated (each host was rolled back by its gate) and the rollout
        // goes on; one more stops it, as Ansible's `max_fail_percentage`.
        if let Some(pool) = stage.pool()
            && !failed.is_empty()
        {
            let servers = p.spec.edge_pool(pool).map_or(0, |x| x.servers.len());
            let so_far = tolerated.iter().filter(|(q, _, _)| q == pool).count() + failed.len();
            if so_far <= p.spec.rollout.failure_budget(servers) {
                for (host, e) in failed.drain(..) {
                    progress.line(
                        &host,
                        format!(
                            "failed, within the failure budget ({so_far} of {servers} in `{pool}`, rollout.max_fail_percentage {}%); the rollout goes on",
                            p.spec.rollout.max_fail_percentage
                        ),
                    );
                    tolerated.push((pool.to_string(), host, e));
                }
            } else {
                failed.extend(
                    tolerated
                        .iter()
                        .filter(|(q, _, _)| q == pool)
                        .map(|(_, h, e)| (h.clone(), e.clone())),
                );
            }
        }
        if !failed.is_empty() {
            let not_done: Vec<String> = plan.stages[si..]
                .iter()
                .flat_map(|s| s.changes.iter())
                .map(|&i| &plan.changes[i])
                .filter(|c| c.action.is_change() && !report.done.contains(&c.address))
                .map(|c| c.address.clone())
                .collect();
            return Err(ApplyError::Failed {
                stage: stage.name(),
                failed,
                done: report.done,
                not_done,
            });
        }
    }
    if !tolerated.is_empty() {
        return Err(ApplyError::FailedWithinBudget {
            failed: tolerated.into_iter().map(|(_, h, e)| (h, e)).collect(),
            done: report.done,
        });
    }
    Ok(report)
}

type HostResult = Result<Vec<String>, (Vec<String>, String)>;

#[allow(clippy::too_many_arguments)]
async fn apply_host(
    h: &Host,
    items: Vec<(Change, Resource)>,
    listeners: Vec<Resource>,
    health_gate: bool,
    gate: Duration,
    (domain, partner): (String, Option<String>),
    progress: &Progress,
    issuing: &IssueContext,
) -> HostResult {
    let mut expect = Expect {
        domain,
        partner,
        ..Expect::default()
    };
    for (_, r) in &items {
        match &r.desired {
            Desired::Binary(b) => expect.binary = Some(b.sha256.clone()),
            Desired::File(f) if r.notifies.is_some() => expect.files.push((
                f.path.clone(),
                crate::digest::sha256_hex(f.content.as_bytes()),
            )),
            _ => {}
        }
    }
    let changed: Vec<(Change, Resource)> = items
        .into_iter()
        .filter(|(c, _)| c.action.is_change())
        .collect();
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    // Certificates are issued before anything is written to the host: a
    // CA that fails leaves this host as it was.
    let mut issued: HashMap<String, Issued> = HashMap::new();
    for (c, r) in &changed {
        if let Desired::Certificate(spec) = &r.desired
            && c.action != Action::Update
        {
            let placeholder = c.action == Action::Create;
            match issuer::issue(issuing, spec, &h.fqdn, placeholder).await {
                Ok(m) => {
                    issued.insert(c.address.clone(), m);
                }
                Err(e) => return Err((Vec::new(), format!("{}: {e}", short(&c.address)))),
            }
        }
    }
    let progress = progress.clone();
    let host = h.fqdn.clone();
    let (p1, host1) = (progress.clone(), host.clone());
    let (done, written, service_spec) = h
        .with(move |t| {
            let (progress, host) = (p1, host1);
            let mut done = Vec::new();
            let mut written: Vec<(String, bool)> = Vec::new(); // (path, had a previous version)
            let fail = |done: Vec<String>, e: String| Err((done, e));
            let at = |address: &str, e: StepError| format!("{}: {e}", short(address));

            // Keep the current version of everything about to be replaced.
            let paths: Vec<String> = changed
                .iter()
                .flat_map(|(_, r)| match &r.desired {
                    Desired::File(f) => vec![f.path.clone()],
                    Desired::Binary(b) => vec![b.path.clone()],
                    Desired::Certificate(c) => vec![c.cert_path.clone(), c.key_path.clone()],
                    _ => Vec::new(),
                })
                .collect();
            let had_prev = match backup(t, &paths) {
                Ok(v) => v,
                Err(e) => return fail(done, e.to_string()),
            };

            let mut service: Option<(crate::plan::ServiceSpec, ServiceOp)> = None;
            for (c, r) in &changed {
                let result: Result<(), StepError> = match &r.desired {
                    Desired::File(f) => t
                        .write_file(
                            &f.path,
                            f.content.as_bytes(),
                            &file_opts(f.mode, &format!("{}:{}", f.owner, f.group)),
                        )
                        .map_err(StepError::from),
                    Desired::User(u) => t
                        .ensure_system_user(&u.name, &u.home)
                        .map_err(StepError::from),
                    Desired::Binary(b) => write_binary(t, b),
                    Desired::Service(s) => {
                        service = c.service_op.map(|op| (s.clone(), op));
                        Ok(())
                    }
                    Desired::Listener(_) => Ok(()),
                    Desired::Certificate(spec) => match issued.remove(&c.address) {
                        Some(m) => install_certificate(t, spec, m, &progress, &host),
                        // Only the key's owner and mode change.
                        None if c.action == Action::Update => t
                            .set_access(&spec.key_path, &key_opts(spec))
                            .map_err(StepError::from),
                        None => Err(StepError::NotIssued),
                    },
                    Desired::Gone(inner) => remove(t, inner),
                };
                match result {
                    Ok(()) => {
                        if let Desired::File(f) = &r.desired {
                            written.push((f.path.clone(), had_prev.contains(&f.path)));
                        }
                        if let Desired::Binary(b) = &r.desired {
                            written.push((b.path.clone(), had_prev.contains(&b.path)));
                        }
                        if let Desired::Certificate(cs) = &r.desired {
                            for path in [&cs.cert_path, &cs.key_path] {
                                written.push((path.clone(), had_prev.contains(path)));
                            }
                        }
                        if !matches!(r.desired, Desired::Service(_)) {
                            progress.line(
                                &host,
                                format!("{} {} ({})", verb(c.action), short(&c.address), c.reason),
                            );
                            done.push(c.address.clone());
                        }
                    }
                    Err(e) => {
                        let _ = restore(t, &written);
                        return fail(done, at(&c.address, e));
                    }
                }
            }

            if let Some((s, op)) = &service {
                progress.line(&host, format!("{} service {}", op_name(*op), s.name));
                if let Err(e) = run_op(t, s, *op, gate) {
                    let why = format!("{} of `{}` failed: {e}", op_name(*op), s.name);
                    return fail(Vec::new(), rollback(t, &written, s, &why, &progress, &host));
                }
                if let Some((c, _)) = changed
                    .iter()
                    .find(|(_, r)| matches!(r.desired, Desired::Service(_)))
                {
                    done.push(c.address.clone());
                }
            }

            let service_spec = service.map(|(s, _)| s).or_else(|| {
                changed.iter().find_map(|(_, r)| match &r.desired {
                    Desired::Service(s) => Some(s.clone()),
                    _ => None,
                })
            });
            Ok((done, written, service_spec))
        })
        .await?;

    if health_gate && !listeners.is_empty() {
        if let Err(e) = gate_check(h, &listeners, &expect, gate).await {
            let why = format!("health gate failed: {e}");
            let msg = match service_spec {
                Some(s) => {
                    let (p2, host2) = (progress.clone(), host.clone());
                    h.with(move |t| rollback(t, &written, &s, &why, &p2, &host2))
                        .await
                }
                None => why,
            };
            return Err((Vec::new(), msg));
        }
        progress.line(
            &host,
            "health gate passed: listeners answer, /status shows what was pushed",
        );
    }
    Ok(done)
}

/// What the gateway must report once the host's changes are in: the
/// binary's hash and the hash of each config file by path.
#[derive(Debug, Clone, Default)]
struct Expect {
    binary: Option<String>,
    files: Vec<(String, String)>,
    domain: String,
    partner: Option<String>,
}

/// The health gate: on the host, `ss` shows every listener; from the
/// orchestrator, each XMPP listener answers a stream header and completes
/// STARTTLS when it offers it, and `/status` reports the binary, config and
/// policy just pushed. Polled until `limit`.
async fn gate_check(
    h: &Host,
    listeners: &[Resource],
    expect: &Expect,
    limit: Duration,
) -> Result<(), StepError> {
    let deadline = Instant::now() + limit;
    loop {
        let ls = listeners.to_vec();
        let on_host = h.with(move |t| health(t, &ls, Duration::ZERO)).await;
        let outcome = match on_host {
            Err(e) => Err(e),
            Ok(()) => probe_all(listeners, expect).await,
        };
        let last = match outcome {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(StepError::GateTimeout {
                secs: limit.as_secs(),
                last: Box::new(last),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn probe_all(listeners: &[Resource], expect: &Expect) -> Result<(), StepError> {
    let probe_limit = Duration::from_secs(3);
    for r in listeners {
        let Desired::Listener(l) = &r.desired else {
            continue;
        };
        let addr = std::net::SocketAddr::new(l.address, l.port);
        if l.name == ListenerKind::Admin {
            let st = probe::gateway_status(addr, probe_limit)
                .await
                .map_err(StepError::Probe)?;
            if let Some(b) = &expect.binary
                && st.binary_sha256.as_deref() != Some(b.as_str())
            {
                return Err(StepError::Probe(format!(
                    "/status on {addr} reports binary {:?}, pushed {}",
                    st.binary_sha256,
                    &b[..12]
                )));
            }
            for (path, sha) in &expect.files {
                let reported = if st.config_path.as_deref() == Some(path.as_str()) {
                    &st.config_sha256
                } else if st.policy_file.as_deref() == Some(path.as_str()) {
                    &st.policy_sha256
                } else {
                    continue;
                };
                if reported.as_deref() != Some(sha.as_str()) {
                    return Err(StepError::Probe(format!(
                        "/status on {addr} has not loaded the pushed `{path}` yet"
                    )));
                }
            }
        } else {
            let (to, from) =
                probe::stream_addresses(l.name, &expect.domain, expect.partner.as_deref());
            let p = probe::xmpp_starttls(addr, &to, from.as_deref(), probe_limit).await;
            if !p.stream {
                return Err(StepError::Probe(format!(
                    "{} {addr}: {}",
                    l.name,
                    p.error.unwrap_or_else(|| "no XMPP stream".into())
                )));
            }
            if p.starttls_offered && !p.tls {
                return Err(StepError::Probe(format!(
                    "{} {addr}: {}",
                    l.name,
                    p.error.unwrap_or_else(|| "TLS failed".into())
                )));
            }
        }
    }
    Ok(())
}

fn op_name(op: ServiceOp) -> &'static str {
    match op {
        ServiceOp::Start => "start",
        ServiceOp::Restart => "restart",
        ServiceOp::Reload => "reload",
    }
}

/// Writes the DNS plan through its provider, zone by zone.
async fn apply_dns_stage(p: &Prepared, progress: &Progress) -> Result<(), Vec<(String, String)>> {
    let Some(d) = &p.dns else { return Ok(()) };
    match super::dns::apply_dns(d.provider.as_ref(), &d.plan, p.options.allow_mass_change).await {
        Ok(zones) => {
            progress.line("", format!("dns: wrote {}", zones.join(", ")));
            Ok(())
        }
        Err(e) => Err(vec![(d.provider.describe(), e.to_string())]),
    }
}

/// Policies, grants, partners and routes are published by the front-ends'
/// `topology.json` and the gateways' `policy.toml` (written and reloaded in
/// the stages before); they are in force once every gateway of an XMPP
/// pool reports the spec's topology version in `/status`.
async fn confirm_topology(p: &Prepared, progress: &Progress) -> Result<(), Vec<(String, String)>> {
    let want = p.topology_version.clone();
    let limit = Duration::from_secs(5);
    let mut failed = Vec::new();
    for pool in p.spec.edge_pools.iter().filter(|x| x.xmpp_federation) {
        for s in &pool.servers {
            let admin = std::net::SocketAddr::new(s.internal_address, p.spec.gateway.admin_port);
            match probe::gateway_status(admin, limit).await {
                Ok(st) if st.topology_version.as_deref() == Some(want.as_str()) => {
                    progress.line(&s.server.fqdn, format!("gateway enforces topology {want}"));
                }
                Ok(st) => failed.push((
                    s.server.fqdn.clone(),
                    format!(
                        "the gateway reports topology {}, not {want}",
                        st.topology_version.as_deref().unwrap_or("(none)")
                    ),
                )),
                Err(e) => failed.push((s.server.fqdn.clone(), format!("/status: {e}"))),
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed)
    }
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Delete => "destroyed",
        Action::NoOp => "kept",
    }
}

fn short(address: &str) -> String {
    crate::plan::plan::short_address(address)
}

fn file_opts(mode: u32, owner: &str) -> WriteOpts {
    WriteOpts::default()
        .mode(mode)
        .owner(owner)
        .create_dirs(true)
}

/// Copies each existing path to `PATH.xfed-prev`; returns those that existed.
const BACKUP: &str = r#"
for f in "$@"; do
  if [ -f "$f" ]; then cp -p -- "$f" "$f.xfed-prev" && echo "$f"; fi
done
"#;

fn backup(t: &mut dyn Transport, paths: &[String]) -> Result<Vec<String>, TransportError> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let out = t.run_ok(
        &Command::new("sh")
            .args(["-c", BACKUP, "xfed-backup"])
            .args(paths.iter().cloned())
            .label("backup"),
    )?;
    Ok(out.stdout_text().lines().map(str::to_string).collect())
}

/// Puts every written path back: the previous version where there was one,
/// nothing where there was none.
const RESTORE: &str = r#"
while [ $# -ge 2 ]; do
  f=$1; had=$2; shift 2
  if [ "$had" = 1 ]; then mv -f -- "$f.xfed-prev" "$f"; else rm -f -- "$f"; fi
done
"#;

fn restore(t: &mut dyn Transport, written: &[(String, bool)]) -> Result<(), TransportError> {
    if written.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new("sh")
        .args(["-c", RESTORE, "xfed-restore"])
        .label("rollback");
    for (p, had) in written {
        cmd = cmd.arg(p.clone()).arg(if *had { "1" } else { "0" });
    }
    t.run_ok(&cmd).map(drop)
}

fn rollback(
    t: &mut dyn Transport,
    written: &[(String, bool)],
    s: &crate::plan::ServiceSpec,
    why: &str,
    progress: &Progress,
    host: &str,
) -> String {
    progress.line(host, format!("{why}; rolling back to the previous version"));
    let restored = restore(t, written);
    let restarted = if written.iter().any(|(_, had)| *had) {
        run_op(t, s, ServiceOp::Restart, Duration::from_secs(15))
    } else {
        super::service::direct_stop(t, s)
    };
    match (restored, restarted) {
        (Ok(()), Ok(())) => format!("{why}; rolled back to the previous version"),
        (r1, r2) => format!(
            "{why}; ROLLBACK INCOMPLETE: {}",
            [r1.err(), r2.err()]
                .into_iter()
                .flatten()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// Removes what left the spec: stops a service (and disables its unit), or
/// deletes a file with its kept previous version.
fn remove(t: &mut dyn Transport, what: &Desired) -> Result<(), StepError> {
    match what {
        Desired::Service(s) => match s.manager {
            crate::plan::Manager::Direct => super::service::direct_stop(t, s),
            crate::plan::Manager::Systemd => t
                .run_ok(&Command::new("systemctl").args([
                    "disable",
                    "--now",
                    &format!("{}.service", s.name),
                ]))
                .map(drop),
        }
        .map_err(StepError::from),
        Desired::File(crate::plan::FileSpec { path, .. })
        | Desired::Binary(crate::plan::BinarySpec { path, .. }) => {
            t.remove_file(path)?;
            t.remove_file(&format!("{path}.xfed-prev"))?;
            t.remove_file(&format!("{path}.xfed-sha256"))?;
            Ok(())
        }
        Desired::Certificate(c) => {
            for path in [
                c.cert_path.clone(),
                c.key_path.clone(),
                c.issuer_path(),
                c.csr_path(),
                c.pending_key_path(),
            ] {
                t.remove_file(&path)?;
                t.remove_file(&format!("{path}.xfed-prev"))?;
            }
            Ok(())
        }
        // Users stay (see `ManifestEntry::of`).
        Desired::Listener(_) | Desired::User(_) | Desired::Gone(_) => Ok(()),
    }
}

/// How a certificate's key is written: see `CertSpec::key_access`.
fn key_opts(c: &crate::certs::CertSpec) -> WriteOpts {
    let (owner, mode) = c.key_owner_mode();
    file_opts(mode, &owner)
}

/// Writes what issuing produced: a certificate with its key (key 0600, or
/// 0640 root:GROUP when the certificate names the group of the service
/// that reads it; chain 0644; each atomically, key first) and the issuer
/// marker; or a request (CSR and its pending key), with a placeholder when
/// nothing is installed yet. A request is not a failure: that certificate
/// waits for the CA while the rollout goes on.
fn install_certificate(
    t: &mut dyn Transport,
    c: &crate::certs::CertSpec,
    issued: Issued,
    progress: &Progress,
    host: &str,
) -> Result<(), StepError> {
    let write = |t: &mut dyn Transport, path: &str, data: &[u8], opts: &WriteOpts| {
        t.write_file(path, data, opts)
            .map_err(|source| StepError::Write {
                path: path.to_string(),
                source: Box::new(source),
            })
    };
    let public = file_opts(0o644, "root:root");
    let private = key_opts(c);
    let w = |t: &mut dyn Transport, path: &str, data: &[u8]| write(t, path, data, &public);
    let wk = |t: &mut dyn Transport, path: &str, data: &[u8]| write(t, path, data, &private);
    match issued {
        Issued::Certificate { key, chain } => {
            wk(t, &c.key_path, key.expose().as_bytes())?;
            w(t, &c.cert_path, chain.as_bytes())?;
            w(
                t,
                &c.issuer_path(),
                format!("{}\n", c.issuer_id()).as_bytes(),
            )?;
            for p in [c.csr_path(), c.pending_key_path()] {
                t.remove_file(&p)?;
            }
            Ok(())
        }
        Issued::Request {
            key,
            csr,
            placeholder,
            request_path,
        } => {
            wk(t, &c.pending_key_path(), key.expose().as_bytes())?;
            w(t, &c.csr_path(), csr.as_bytes())?;
            if let Some(p) = placeholder {
                wk(t, &c.key_path, key.expose().as_bytes())?;
                w(t, &c.cert_path, p.as_bytes())?;
            }
            progress.line(
                host,
                format!(
                    "certificate `{}` waits for the CA: request written to {} (`xfed cert show-request`); install the answer with `xfed cert import`",
                    c.name,
                    request_path.display()
                ),
            );
            Ok(())
        }
    }
}

const SHA_CACHE: &str = r#"
id=$(stat -L -c '%d:%i:%s:%.9Y:%.9Z' -- "$1") && printf '%s %s\n' "$id" "$2" > "$1.xfed-sha256.tmp" && mv -f -- "$1.xfed-sha256.tmp" "$1.xfed-sha256"
"#;

fn write_binary(t: &mut dyn Transport, b: &crate::plan::BinarySpec) -> Result<(), StepError> {
    let data = std::fs::read(&b.source).map_err(|source| StepError::ReadLocal {
        path: b.source.display().to_string(),
        source,
    })?;
    let sha = crate::digest::sha256_hex(&data);
    if sha != b.sha256 {
        return Err(StepError::ArtifactChanged {
            path: b.source.display().to_string(),
        });
    }
    t.write_file(&b.path, &data, &file_opts(b.mode, "root"))?;
    match t.stat(&b.path)? {
        Some(st) if st.sha256.as_deref() == Some(b.sha256.as_str()) => {}
        _ => return Err(StepError::UploadMismatch),
    }
    // Remember the verified hash with the file's identity, so observing it
    // later needs a stat, not a hash (see observe.rs).
    t.run_ok(
        &Command::new("sh")
            .args(["-c", SHA_CACHE, "xfed-sha-cache", &b.path, &b.sha256])
            .label("sha cache"),
    )
    .map(drop)
    .map_err(StepError::from)
}

/// Waits until every listener of the host answers (`ss` on the host).
fn health(
    t: &mut dyn Transport,
    listeners: &[Resource],
    timeout: Duration,
) -> Result<(), StepError> {
    let start = Instant::now();
    let mut missing: Vec<String>;
    loop {
        let out = t
            // `state listening`, not -l: see the observe script.
            .run_ok(
                &Command::new("ss")
                    .args(["-tnH", "state", "listening"])
                    .label("health"),
            )?
            .stdout_text();
        let sockets: Vec<String> = out
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
            .collect();
        missing = listeners
            .iter()
            .filter_map(|r| match &r.desired {
                Desired::Listener(l) if !listens(&sockets, &l.address.to_string(), l.port) => {
                    Some(format!("{} {}:{}", l.name, l.address, l.port))
                }
                _ => None,
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(StepError::NotListening {
                secs: timeout.as_secs(),
                missing,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

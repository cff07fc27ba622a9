//! Apply: run a plan's stages in order, hosts of a stage in parallel.
//!
//! Every write is atomic (the transport's temp-file-and-rename), every
//! changed file and binary is first copied aside (`*.xfed-prev`), so a
//! host that fails its health gate is put back on its previous version and
//! the rollout stops there: each host ends on its old or its new version,
//! never half-written, and a second apply converges.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::engine::Prepared;
use super::hosts::Host;
use super::lock::{self, Acquire, Lease};
use super::observe::{listens, observe_host};
use super::progress::Progress;
use super::service::run_op;
use crate::plan::{Action, Change, Desired, Observed, Plan, Resource, ServiceOp};
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
    #[error(transparent)]
    Transport(#[from] TransportError),
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
    let tasks: Vec<_> = p
        .hosts
        .values()
        .map(|h| {
            let (h, path, lease) = (h.clone(), path.clone(), lease.clone());
            tokio::spawn(async move {
                let fqdn = h.fqdn.clone();
                let r = h
                    .with(move |t| -> Result<Option<(Lease, bool)>, TransportError> {
                        match lock::acquire(t, &path, &lease)? {
                            Acquire::Acquired => Ok(None),
                            Acquire::Held(old) if old.holder_gone(&lease.machine) => {
                                let won = lock::take_over(t, &path, &old.id, &lease)?;
                                Ok(Some((old, won)))
                            }
                            Acquire::Held(old) => Ok(Some((old, false))),
                        }
                    })
                    .await;
                (fqdn, r)
            })
        })
        .collect();
    let now = lock::now_unix();
    let mut held = Vec::new();
    let mut err = None;
    for t in tasks {
        let Ok((host, r)) = t.await else { continue };
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
            return Err(e.into());
        }
        return Err(ApplyError::Locked(held));
    }
    Ok(())
}

/// Releases the lease everywhere it can; returns the hosts where it could
/// not (a host lost during the run keeps it until the next apply).
pub async fn unlock_all(p: &Prepared, id: &str) -> Vec<String> {
    let path = lock_path(p);
    let tasks: Vec<_> = p
        .hosts
        .values()
        .map(|h| {
            let (h, path, id) = (h.clone(), path.clone(), id.to_string());
            tokio::spawn(async move {
                (
                    h.fqdn.clone(),
                    h.with(move |t| lock::release(t, &path, &id)).await,
                )
            })
        })
        .collect();
    let mut kept = Vec::new();
    for t in tasks {
        if let Ok((host, Err(_))) = t.await {
            kept.push(host);
        }
    }
    kept
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
    let issuing = std::sync::Arc::new(crate::certs::issue::IssueContext::from_spec(&p.spec));

    for (si, stage) in plan.stages.iter().enumerate() {
        // DNS and the topology objects live off the hosts: each is one
        // step of its own, done or failed as a whole.
        if stage.name == "dns" || stage.name == "policies and routes" {
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
                format!("stage {}: {}", stage.name, stage.hosts.join(", ")),
            );
            let outcome = if stage.name == "dns" {
                apply_dns_stage(p, progress).await
            } else {
                confirm_topology(p, progress).await
            };
            if let Err(failed) = outcome {
                return Err(ApplyError::Failed {
                    stage: stage.name.clone(),
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
            format!("stage {}: {}", stage.name, stage.hosts.join(", ")),
        );
        let mut tasks = Vec::new();
        for (host, items) in per_host {
            let Some(h) = p.hosts.get(&host).cloned() else {
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
            tasks.push(tokio::spawn(async move {
                let r = apply_host(
                    &h,
                    items,
                    listeners,
                    health_gate,
                    gate,
                    domain,
                    &progress,
                    &issuing,
                )
                .await;
                (host, r)
            }));
        }
        let mut failed = Vec::new();
        for t in tasks {
            let Ok((host, r)) = t.await else { continue };
            match r {
                Ok(done) => report.done.extend(done),
                Err((done, e)) => {
                    report.done.extend(done);
                    failed.push((host, e));
                }
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
                stage: stage.name.clone(),
                failed,
                done: report.done,
                not_done,
            });
        }
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
    issuing: &crate::certs::issue::IssueContext,
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
                crate::plan::diff::sha256_hex(f.content.as_bytes()),
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
    let mut issued: HashMap<String, crate::certs::issue::Issued> = HashMap::new();
    for (c, r) in &changed {
        if let Desired::Certificate(spec) = &r.desired {
            let placeholder = c.action == Action::Create;
            match crate::certs::issue::issue(issuing, spec, &h.fqdn, placeholder).await {
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
                let result: Result<(), String> = match &r.desired {
                    Desired::File(f) => t
                        .write_file(&f.path, f.content.as_bytes(), &file_opts(f.mode, &f.owner))
                        .map_err(|e| e.to_string()),
                    Desired::Binary(b) => write_binary(t, b),
                    Desired::Service(s) => {
                        service = c.service_op.map(|op| (s.clone(), op));
                        Ok(())
                    }
                    Desired::Listener(_) => Ok(()),
                    Desired::Certificate(spec) => match issued.remove(&c.address) {
                        Some(m) => install_certificate(t, spec, m, &progress, &host),
                        None => Err("no certificate was issued".into()),
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
                        return fail(done, format!("{}: {e}", short(&c.address)));
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
) -> Result<(), String> {
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
            return Err(format!("after {}s: {last}", limit.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn probe_all(listeners: &[Resource], expect: &Expect) -> Result<(), String> {
    let probe_limit = Duration::from_secs(3);
    for r in listeners {
        let Desired::Listener(l) = &r.desired else {
            continue;
        };
        let addr = std::net::SocketAddr::new(l.address, l.port);
        if l.name == "admin" {
            let st = super::probe::gateway_status(addr, probe_limit).await?;
            if let Some(b) = &expect.binary
                && st.binary_sha256.as_deref() != Some(b.as_str())
            {
                return Err(format!(
                    "/status on {addr} reports binary {:?}, pushed {}",
                    st.binary_sha256,
                    &b[..12]
                ));
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
                    return Err(format!(
                        "/status on {addr} has not loaded the pushed `{path}` yet"
                    ));
                }
            }
        } else {
            let (to, from) =
                super::probe::stream_addresses(&l.name, &expect.domain, expect.partner.as_deref());
            let p = super::probe::xmpp_starttls(addr, &to, from.as_deref(), probe_limit).await;
            if !p.stream {
                return Err(format!(
                    "{} {addr}: {}",
                    l.name,
                    p.error.unwrap_or_else(|| "no XMPP stream".into())
                ));
            }
            if p.starttls_offered && !p.tls {
                return Err(format!(
                    "{} {addr}: {}",
                    l.name,
                    p.error.unwrap_or_else(|| "TLS failed".into())
                ));
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
    match crate::providers::dns::apply_dns(
        d.provider.as_ref(),
        &d.plan,
        p.options.allow_mass_change,
    )
    .await
    {
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
    let want = crate::topology::build(&p.spec).version;
    let limit = Duration::from_secs(5);
    let mut failed = Vec::new();
    for pool in p.spec.edge_pools.iter().filter(|x| x.xmpp_federation) {
        for s in &pool.servers {
            let admin = std::net::SocketAddr::new(s.internal_address, p.spec.gateway.admin_port);
            match super::probe::gateway_status(admin, limit).await {
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
fn remove(t: &mut dyn Transport, what: &Desired) -> Result<(), String> {
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
        .map_err(|e| e.to_string()),
        Desired::File(crate::plan::FileSpec { path, .. })
        | Desired::Binary(crate::plan::BinarySpec { path, .. }) => {
            t.remove_file(path).map_err(|e| e.to_string())?;
            t.remove_file(&format!("{path}.xfed-prev"))
                .map_err(|e| e.to_string())?;
            t.remove_file(&format!("{path}.xfed-sha256"))
                .map_err(|e| e.to_string())?;
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
                t.remove_file(&path).map_err(|e| e.to_string())?;
                t.remove_file(&format!("{path}.xfed-prev"))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Desired::Listener(_) | Desired::Gone(_) => Ok(()),
    }
}

/// Writes what issuing produced: a certificate with its key (key 0600,
/// chain 0644, each atomically, key first) and the issuer marker; or a
/// request (CSR and its pending key), with a placeholder when nothing is
/// installed yet. A request is not a failure: that certificate waits for
/// the CA while the rollout goes on.
fn install_certificate(
    t: &mut dyn Transport,
    c: &crate::certs::CertSpec,
    issued: crate::certs::issue::Issued,
    progress: &Progress,
    host: &str,
) -> Result<(), String> {
    use crate::certs::issue::Issued;
    let w = |t: &mut dyn Transport, path: &str, data: &[u8], mode: u32| {
        t.write_file(path, data, &file_opts(mode, "root"))
            .map_err(|e| format!("`{path}`: {e}"))
    };
    match issued {
        Issued::Certificate { key, chain } => {
            w(t, &c.key_path, key.expose().as_bytes(), 0o600)?;
            w(t, &c.cert_path, chain.as_bytes(), 0o644)?;
            w(
                t,
                &c.issuer_path(),
                format!("{}\n", c.issuer_id()).as_bytes(),
                0o644,
            )?;
            for p in [c.csr_path(), c.pending_key_path()] {
                t.remove_file(&p).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Issued::Request {
            key,
            csr,
            placeholder,
            request_path,
        } => {
            w(t, &c.pending_key_path(), key.expose().as_bytes(), 0o600)?;
            w(t, &c.csr_path(), csr.as_bytes(), 0o644)?;
            if let Some(p) = placeholder {
                w(t, &c.key_path, key.expose().as_bytes(), 0o600)?;
                w(t, &c.cert_path, p.as_bytes(), 0o644)?;
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

fn write_binary(t: &mut dyn Transport, b: &crate::plan::BinarySpec) -> Result<(), String> {
    let data = std::fs::read(&b.source)
        .map_err(|e| format!("cannot read `{}`: {e}", b.source.display()))?;
    let sha = crate::plan::diff::sha256_hex(&data);
    if sha != b.sha256 {
        return Err(format!(
            "`{}` changed since the plan was made",
            b.source.display()
        ));
    }
    t.write_file(&b.path, &data, &file_opts(b.mode, "root"))
        .map_err(|e| e.to_string())?;
    match t.stat(&b.path).map_err(|e| e.to_string())? {
        Some(st) if st.sha256.as_deref() == Some(b.sha256.as_str()) => {}
        _ => {
            return Err(
                "the binary on the host does not have the expected sha256 after upload".into(),
            );
        }
    }
    // Remember the verified hash with the file's identity, so observing it
    // later needs a stat, not a hash (see observe.rs).
    t.run_ok(
        &Command::new("sh")
            .args(["-c", SHA_CACHE, "xfed-sha-cache", &b.path, &b.sha256])
            .label("sha cache"),
    )
    .map(drop)
    .map_err(|e| e.to_string())
}

/// Waits until every listener of the host answers (`ss` on the host).
fn health(t: &mut dyn Transport, listeners: &[Resource], timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    let mut missing: Vec<String>;
    loop {
        let out = t
            // `state listening`, not -l: see the observe script.
            .run_ok(
                &Command::new("ss")
                    .args(["-tnH", "state", "listening"])
                    .label("health"),
            )
            .map_err(|e| e.to_string())?
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
            return Err(format!(
                "not listening after {}s: {}",
                timeout.as_secs(),
                missing.join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One row of the verify table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRow {
    pub host: String,
    pub listener: String,
    pub address: String,
    pub ok: bool,
    /// "listening, STARTTLS ok", or what failed.
    pub state: String,
    pub cert_names: Vec<String>,
    pub cert_not_after: Option<i64>,
    /// What `/status` says the gateway enforces (admin listeners only).
    pub topology_version: Option<String>,
}

/// The verify phase: every listener of every host, seen on the host (`ss`)
/// and from the orchestrator (XMPP stream + STARTTLS, or `/status`).
///
/// `fresh`: nothing was changed since `p` observed the hosts, so the
/// sockets they listed then are still the answer and no host is asked
/// again (a no-op apply, `xfed verify`).
pub async fn verify_listeners(p: &Prepared, fresh: bool) -> Vec<VerifyRow> {
    let domain = p.spec.xmpp_domains.first().cloned().unwrap_or_default();
    let partner = p.spec.partners.first().map(|x| x.domain.clone());
    let mut tasks = Vec::new();
    for (fqdn, h) in &p.hosts {
        let mine: Vec<Resource> = p
            .resources
            .iter()
            .filter(|r| &r.host == fqdn && matches!(r.desired, Desired::Listener(_)))
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let (h, fqdn, domain, partner) = (h.clone(), fqdn.clone(), domain.clone(), partner.clone());
        let seen: Option<HashMap<String, Observed>> = fresh.then(|| {
            mine.iter()
                .filter_map(|r| Some((r.address.clone(), p.observed.get(&r.address)?.clone())))
                .collect()
        });
        tasks.push(tokio::spawn(async move {
            verify_host(&h, &fqdn, mine, seen, &domain, partner.as_deref()).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        if let Ok(rows) = t.await {
            out.extend(rows);
        }
    }
    out
}

async fn verify_host(
    h: &Host,
    fqdn: &str,
    mine: Vec<Resource>,
    seen: Option<HashMap<String, Observed>>,
    domain: &str,
    partner: Option<&str>,
) -> Vec<VerifyRow> {
    let mut out = Vec::new();
    {
        let observed = match seen {
            Some(seen) => Ok(seen),
            None => {
                let mine = mine.clone();
                h.with(move |t| {
                    let refs: Vec<&Resource> = mine.iter().collect();
                    observe_host(t, &refs)
                })
                .await
            }
        };
        for r in &mine {
            let Desired::Listener(l) = &r.desired else {
                continue;
            };
            let addr = std::net::SocketAddr::new(l.address, l.port);
            let on_host = matches!(
                observed.as_ref().ok().and_then(|o| o.get(&r.address)),
                Some(Observed::Listener(f)) if f.listening
            );
            let mut row = VerifyRow {
                host: fqdn.to_string(),
                listener: l.name.clone(),
                address: addr.to_string(),
                ok: false,
                state: String::new(),
                cert_names: Vec::new(),
                cert_not_after: None,
                topology_version: None,
            };
            if !on_host {
                row.state = "not listening on the host (ss)".into();
            } else if l.name == "admin" {
                match super::probe::gateway_status(addr, Duration::from_secs(3)).await {
                    Ok(st) => {
                        row.ok = true;
                        row.topology_version = st.topology_version.clone();
                        row.state = format!(
                            "listening, /status: binary {}",
                            st.binary_sha256
                                .as_deref()
                                .map_or("?", |b| &b[..b.len().min(12)])
                        );
                    }
                    Err(e) => row.state = e,
                }
            } else {
                let (to, from) = super::probe::stream_addresses(&l.name, domain, partner);
                let pr =
                    super::probe::xmpp_starttls(addr, &to, from.as_deref(), Duration::from_secs(3))
                        .await;
                row.cert_names = pr.cert_names.clone();
                row.cert_not_after = pr.cert_not_after;
                (row.ok, row.state) = match (pr.stream, pr.starttls_offered, pr.tls) {
                    (true, true, true) => (true, "listening, XMPP STARTTLS ok".into()),
                    (true, false, _) => (
                        true,
                        format!(
                            "listening, XMPP stream ok, no TLS: {}",
                            pr.error.unwrap_or_default()
                        ),
                    ),
                    _ => (false, pr.error.unwrap_or_else(|| "no XMPP stream".into())),
                };
            }
            out.push(row);
        }
    }
    out
}

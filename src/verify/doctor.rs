//! `xfed doctor`: the Lync guide's XMPP troubleshooting section as code.
//! Read-only checks, in the guide's order, each giving one [`Finding`] per
//! relevant host — what was seen and, when it is wrong, the fix:
//!
//! 1. `ssh` — the host answers over SSH with a host key known_hosts has;
//! 2. `gateway binary` — installed, and the sha256 xfed builds now;
//! 3. `gateway service` — running (if not, the last lines of its log);
//! 4. `gateway privilege` — the running gateway is not root and holds no
//!    capability (`/proc/PID/status`), and its keys and configuration are
//!    owned by root, writable by nobody else and not world-readable;
//! 5. `listener` — bound on the host (`ss`) and answering from here (XMPP
//!    STARTTLS, the admin `/status`);
//! 6. `xmpp route` — every site's route, in the topology published on its
//!    front-ends, names an existing edge pool with XMPP federation;
//! 7. `topology` — published, identical on every front-end and the one the
//!    spec gives;
//! 8. `certificate` — the one the external listener serves covers every
//!    XMPP domain and is neither expired nor inside its renewal window;
//! 9. `dialback` — where a partner may use server dialback, the gateway's
//!    dialback results since it started: failures explained, with the fix;
//! 10. `dns` — `_xmpp-server._tcp.<domain>` SRV answers as specified.
//!
//! This file owns the judging, and it is pure: facts in ([`World`]),
//! findings out ([`judge`]), so every verdict is tested without a network.
//! Reading the facts is [`gather`]'s job (one SSH round trip per host
//! through `engine::read_world`, the probes of `engine::probe`, `verify::dns`);
//! printing is [`render`]'s. Nothing here or there changes anything: a
//! doctor that repairs would hide what it found.
//!
//! A host that cannot be reached (or read) fails check 1 and its later
//! checks are reported as skipped; the other hosts are checked as usual.

pub mod gather;
pub mod render;

use std::net::SocketAddr;

use serde::Serialize;

use crate::certs::parse::CertInfo;
use crate::digest::sha256_hex;
use crate::engine::probe::{DialbackCounts, GatewayStatus, XmppProbe};
use crate::plan::ListenerKind;
use crate::plan::{FileFact, Manager, ServiceFact};
use crate::spec::{RenewBefore, Role};
use crate::verify::dns::VerifyRow;

pub use gather::{DoctorError, Options, run};

/// The checks, in the order they run and are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Check {
    #[serde(rename = "ssh")]
    Ssh,
    #[serde(rename = "gateway binary")]
    Binary,
    #[serde(rename = "gateway service")]
    Service,
    #[serde(rename = "gateway privilege")]
    Privilege,
    #[serde(rename = "listener")]
    Listener,
    #[serde(rename = "xmpp route")]
    Route,
    #[serde(rename = "topology")]
    Topology,
    #[serde(rename = "certificate")]
    Certificate,
    #[serde(rename = "dialback")]
    Dialback,
    #[serde(rename = "dns")]
    Dns,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Ssh => "ssh",
            Check::Binary => "gateway binary",
            Check::Service => "gateway service",
            Check::Privilege => "gateway privilege",
            Check::Listener => "listener",
            Check::Route => "xmpp route",
            Check::Topology => "topology",
            Check::Certificate => "certificate",
            Check::Dialback => "dialback",
            Check::Dns => "dns",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Works, but needs attention soon (e.g. a certificate due for renewal).
    Warn,
    Fail,
    /// Not checked because an earlier check of the host failed.
    Skip,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One check on one host: the line doctor prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: Check,
    /// The server's FQDN, or the name server asked for `dns`.
    pub host: String,
    pub status: Status,
    /// What was seen.
    pub seen: String,
    /// What to do about it; `None` when nothing needs doing.
    pub fix: Option<String>,
    /// Log lines that explain a failure (a stopped service's last lines).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
}

impl Finding {
    fn new(check: Check, host: &str, status: Status, seen: impl Into<String>) -> Finding {
        Finding {
            check,
            host: host.to_string(),
            status,
            seen: seen.into(),
            fix: None,
            log: Vec::new(),
        }
    }

    fn pass(check: Check, host: &str, seen: impl Into<String>) -> Finding {
        Finding::new(check, host, Status::Pass, seen)
    }

    fn fail(check: Check, host: &str, seen: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding::new(check, host, Status::Fail, seen).with_fix(fix)
    }

    fn warn(check: Check, host: &str, seen: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding::new(check, host, Status::Warn, seen).with_fix(fix)
    }

    fn with_fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
}

/// Exit 0 territory: every check passed, warnings allowed.
pub fn healthy(findings: &[Finding]) -> bool {
    findings
        .iter()
        .all(|f| matches!(f.status, Status::Pass | Status::Warn))
}

/// Everything doctor read, and what the spec says it should be.
#[derive(Debug, Clone)]
pub struct World {
    pub now_unix: i64,
    pub xmpp_domains: Vec<String>,
    pub sites: Vec<SiteRoute>,
    pub edge_pools: Vec<PoolFacts>,
    /// sha256 of the gateway xfed builds now, or why it could not build it.
    pub built: Result<String, String>,
    /// Every server of the spec, front-ends first, in spec order.
    pub hosts: Vec<HostFacts>,
    /// `verify::dns` rows; `None` when the spec has no `dns` section.
    pub dns: Option<Vec<VerifyRow>>,
    /// The partners that may authenticate by dialback (`auth` dialback or
    /// either); none: the dialback check is not made.
    pub dialback_partners: Vec<String>,
}

/// A site of the spec and the edge pool it routes XMPP federation to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRoute {
    pub name: String,
    pub frontend_pool: String,
    pub xmpp_route: String,
}

/// An edge pool of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolFacts {
    pub name: String,
    pub xmpp_federation: bool,
    pub servers: usize,
}

/// One server: how it was reached and what it holds.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub fqdn: String,
    pub role: Role,
    pub pool: String,
    /// `root@203.0.113.11:22`, as connected to.
    pub target: String,
    /// The known_hosts file its key is checked against.
    pub known_hosts: String,
    /// The spec has the gateway run here (a server of an XMPP pool).
    pub runs_gateway: bool,
    pub reach: Reach,
    /// Read when `runs_gateway` and the host was reached.
    pub gateway: Option<GatewayFacts>,
    /// Read on a reached front-end.
    pub topology: Option<TopologyFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Ok,
    /// Connecting failed: the transport's message, `hint:` included (for
    /// host keys it names the fingerprint).
    Unreachable(String),
    /// Connected, but reading the host's state failed.
    Unreadable(String),
}

#[derive(Debug, Clone)]
pub struct GatewayFacts {
    pub binary_path: String,
    /// What is at `binary_path`; `None`: nothing.
    pub binary: Option<FileFact>,
    pub service_name: String,
    pub manager: Manager,
    pub pid_file: String,
    pub log_file: String,
    pub running: ServiceFact,
    /// The log's last lines, read only when the service is not running.
    pub log: Option<Result<Vec<String>, String>>,
    pub listeners: Vec<ListenerFacts>,
    /// The pool's external certificate, when the spec has one.
    pub certificate: Option<CertFacts>,
    /// Its dialback counters (`/metrics`), read when a partner may use
    /// dialback.
    pub dialback: Option<Result<DialbackCounts, String>>,
    /// What the running gateway holds, read only while it runs.
    pub privilege: Option<Result<PrivilegeFacts, String>>,
    /// The user the spec has the gateway run as.
    pub user: Option<String>,
}

/// The running gateway's credentials and the files it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeFacts {
    /// Effective uid (`Uid:` of `/proc/PID/status`, second field).
    pub uid: u32,
    /// Its name on the host, when it has one.
    pub user: Option<String>,
    /// `CapPrm:` and `CapEff:` of `/proc/PID/status`.
    pub cap_prm: u64,
    pub cap_eff: u64,
    /// The gateway's configuration and key files: path, mode, owner, group.
    pub files: Vec<FileAccess>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAccess {
    pub path: String,
    pub mode: u32,
    pub owner: String,
    pub group: String,
}

impl FileAccess {
    /// Why this file gives the gateway (or anyone) more than it should,
    /// if it does: the gateway must not be able to change what it is
    /// told, and nobody else may read its keys.
    fn problem(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.owner != "root" {
            why.push(format!("owned by `{}`, not root", self.owner));
        }
        if self.mode & 0o022 != 0 {
            why.push("writable by its group or by everyone".to_string());
        }
        if self.mode & 0o004 != 0 {
            why.push("readable by everyone".to_string());
        }
        (!why.is_empty()).then(|| {
            format!(
                "`{}` ({:04o} {}:{}) is {}",
                self.path,
                self.mode,
                self.owner,
                self.group,
                why.join(", ")
            )
        })
    }
}

#[derive(Debug, Clone)]
pub struct ListenerFacts {
    pub name: ListenerKind,
    pub address: SocketAddr,
    /// `ss -ltn` on the host shows it.
    pub bound: bool,
    pub probe: Probe,
}

/// What the orchestrator saw of a listener.
#[derive(Debug, Clone)]
pub enum Probe {
    Xmpp(XmppProbe),
    Status(Result<GatewayStatus, String>),
}

#[derive(Debug, Clone)]
pub struct CertFacts {
    pub name: String,
    pub cert_path: String,
    pub renew_before: RenewBefore,
    /// The installed chain's leaf, or why there is none.
    pub installed: Result<CertInfo, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyFacts {
    pub path: String,
    /// The published document; `None`: nothing at `path`.
    pub content: Option<String>,
    /// The document the spec gives (what `xfed apply` publishes).
    pub desired: String,
}

const APPLY: &str = "run `xfed apply`";

fn short_sha(s: &str) -> &str {
    &s[..s.len().min(12)]
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Every check for every relevant host, in check order, hosts in spec order.
pub fn judge(w: &World) -> Vec<Finding> {
    let mut out = Vec::new();
    for h in &w.hosts {
        out.push(ssh(h));
    }
    for h in w.hosts.iter().filter(|h| h.runs_gateway) {
        out.push(per_gateway(h, Check::Binary, |g| binary(w, h, g)));
    }
    for h in w.hosts.iter().filter(|h| h.runs_gateway) {
        out.push(per_gateway(h, Check::Service, |g| service(w, h, g)));
    }
    for h in w.hosts.iter().filter(|h| h.runs_gateway) {
        out.push(per_gateway(h, Check::Privilege, |g| privilege(h, g)));
    }
    for h in w.hosts.iter().filter(|h| h.runs_gateway) {
        match (&h.reach, &h.gateway) {
            (Reach::Ok, Some(g)) => out.extend(g.listeners.iter().map(|l| listener(h, g, l))),
            _ => out.push(skipped(h, Check::Listener)),
        }
    }
    out.extend(routes(w));
    out.extend(topology(w));
    for h in w.hosts.iter().filter(|h| h.runs_gateway) {
        out.push(per_gateway(h, Check::Certificate, |g| certificate(w, h, g)));
    }
    if !w.dialback_partners.is_empty() {
        for h in w.hosts.iter().filter(|h| h.runs_gateway) {
            out.push(per_gateway(h, Check::Dialback, |g| dialback(w, h, g)));
        }
    }
    out.extend(dns(w));
    out
}

/// The gateway's dialback results since it started. Counters only grow
/// until a restart, so a failure is a warning: it happened, and says what
/// to look at, but the next stream may well work.
fn dialback(w: &World, h: &HostFacts, g: &GatewayFacts) -> Finding {
    let c = match &g.dialback {
        Some(Ok(c)) => *c,
        Some(Err(e)) => {
            return Finding::fail(
                Check::Dialback,
                &h.fqdn,
                format!("cannot read the gateway's /metrics: {e}"),
                "see the `listener` check of its admin listener",
            );
        }
        None => {
            return Finding::new(
                Check::Dialback,
                &h.fqdn,
                Status::Skip,
                "not checked: the gateway's admin listener was not probed",
            );
        }
    };
    let [in_ok, in_invalid, in_error] = c.inbound;
    let [out_ok, out_invalid, out_error] = c.outbound;
    let ours = w
        .xmpp_domains
        .first()
        .map_or("<our domain>", String::as_str);
    let mut seen = Vec::new();
    let mut fix = Vec::new();
    if in_error > 0 {
        seen.push(format!(
            "{} could not be checked with the partner's authoritative server (unreachable, no `_xmpp-server._tcp` SRV record, or no answer)",
            plural(in_error as usize, "partner key")
        ));
        fix.push(format!(
            "from the edge, `dig SRV _xmpp-server._tcp.<partner domain>` must answer and port 5269 of its target be reachable (partners that may use dialback: {})",
            w.dialback_partners.join(", ")
        ));
    }
    if in_invalid > 0 {
        seen.push(format!(
            "{} refused: the partner's own server says it did not issue it (a forged `db:result`, or the partner changed its secret mid-stream)",
            plural(in_invalid as usize, "partner key")
        ));
        fix.push("nothing on our side if it was forged; otherwise the partner must check its dialback secret".into());
    }
    if out_invalid > 0 || c.answered_invalid > 0 {
        seen.push(format!(
            "partners refused {} of our keys and {} `db:verify` got `invalid` here",
            out_invalid, c.answered_invalid
        ));
        fix.push(format!(
            "every server behind `_xmpp-server._tcp.{ours}` must be one of these gateways with the same dialback secret: {APPLY}, and see the `dns` check for other SRV targets"
        ));
    }
    if out_error > 0 {
        seen.push(format!(
            "partners could not check {out_error} of our keys (they could not reach us to verify)"
        ));
        fix.push(format!(
            "`_xmpp-server._tcp.{ours}` must be published (see `dns`) and port 5269 of every edge reachable from outside"
        ));
    }
    let counts = format!("since start: {in_ok} partner keys verified, {out_ok} of ours accepted");
    if seen.is_empty() {
        Finding::pass(Check::Dialback, &h.fqdn, format!("{counts}, no failure"))
    } else {
        Finding::warn(
            Check::Dialback,
            &h.fqdn,
            format!("{counts}; {}", seen.join("; ")),
            fix.join("; "),
        )
    }
}

fn skipped(h: &HostFacts, check: Check) -> Finding {
    let why = match &h.reach {
        Reach::Unreadable(_) => "its state could not be read",
        _ => "it could not be reached",
    };
    Finding::new(
        check,
        &h.fqdn,
        Status::Skip,
        format!("not checked: {why} (see `ssh`)"),
    )
}

fn per_gateway(h: &HostFacts, check: Check, f: impl FnOnce(&GatewayFacts) -> Finding) -> Finding {
    match (&h.reach, &h.gateway) {
        (Reach::Ok, Some(g)) => f(g),
        _ => skipped(h, check),
    }
}

/// Splits a transport message into what happened and its `hint:`.
fn split_hint(message: &str) -> (String, Option<String>) {
    match message.split_once("\nhint: ") {
        Some((what, hint)) => (what.replace('\n', " "), Some(hint.replace('\n', " "))),
        None => (message.replace('\n', " "), None),
    }
}

fn ssh(h: &HostFacts) -> Finding {
    match &h.reach {
        Reach::Ok => Finding::pass(
            Check::Ssh,
            &h.fqdn,
            format!(
                "{}: connected; host key known (`{}`)",
                h.target, h.known_hosts
            ),
        ),
        Reach::Unreachable(message) => {
            let (what, hint) = split_hint(message);
            let fix = hint.unwrap_or_else(|| {
                format!(
                    "check that `{}` is up and its sshd answers at {}",
                    h.fqdn, h.target
                )
            });
            Finding::fail(Check::Ssh, &h.fqdn, what, fix)
        }
        Reach::Unreadable(message) => {
            let (what, hint) = split_hint(message);
            Finding::fail(
                Check::Ssh,
                &h.fqdn,
                format!("connected, but reading its state failed: {what}"),
                hint.unwrap_or_else(|| {
                    "check that the login user can read /etc/xfed and /var/lib/xfed (or set `become: sudo`)".into()
                }),
            )
        }
    }
}

fn binary(w: &World, h: &HostFacts, g: &GatewayFacts) -> Finding {
    let path = &g.binary_path;
    let Some(fact) = &g.binary else {
        return Finding::fail(
            Check::Binary,
            &h.fqdn,
            format!("not installed: nothing at `{path}`"),
            format!("{APPLY}: it installs the gateway"),
        );
    };
    match &w.built {
        Err(why) => Finding::fail(
            Check::Binary,
            &h.fqdn,
            format!(
                "`{path}` has sha256 {}, but xfed could not build the gateway to compare: {why}",
                short_sha(&fact.sha256)
            ),
            "fix the gateway's build (`cargo build -p xfed-gateway`), then run `xfed doctor` again",
        ),
        Ok(built) if *built == fact.sha256 => Finding::pass(
            Check::Binary,
            &h.fqdn,
            format!(
                "`{path}`: sha256 {}, the gateway xfed builds now",
                short_sha(built)
            ),
        ),
        Ok(built) => Finding::fail(
            Check::Binary,
            &h.fqdn,
            format!(
                "`{path}` has sha256 {}, but xfed builds {}",
                short_sha(&fact.sha256),
                short_sha(built)
            ),
            format!("{APPLY}: it installs the current build and restarts the gateway"),
        ),
    }
}

fn manager_text(g: &GatewayFacts) -> String {
    match g.manager {
        Manager::Direct => format!("pid file `{}`", g.pid_file),
        Manager::Systemd => format!("systemd unit `{}.service`", g.service_name),
    }
}

fn service(w: &World, h: &HostFacts, g: &GatewayFacts) -> Finding {
    if g.running.running {
        let pid = g.running.pid.map_or("?".into(), |p| p.to_string());
        // `running_sha256` is set only when the process does not run the
        // installed file itself.
        if let (Some(running), Ok(built)) = (&g.running.running_sha256, &w.built)
            && running != built
        {
            return Finding::fail(
                Check::Service,
                &h.fqdn,
                format!(
                    "running (pid {pid}), but on an old program (sha256 {}), not the installed one",
                    short_sha(running)
                ),
                format!("{APPLY}: it restarts the gateway on the current binary"),
            );
        }
        return Finding::pass(
            Check::Service,
            &h.fqdn,
            format!("running, pid {pid} ({})", manager_text(g)),
        );
    }
    let why = match g.manager {
        Manager::Direct => format!("the pid file `{}` names no live process", g.pid_file),
        Manager::Systemd => format!("systemd unit `{}.service` is not active", g.service_name),
    };
    let source = match g.manager {
        Manager::Direct => format!("`{}`", g.log_file),
        Manager::Systemd => format!("`journalctl -u {}.service`", g.service_name),
    };
    let (seen_log, log) = match &g.log {
        Some(Ok(lines)) if !lines.is_empty() => (
            format!(
                "; the last {} of {source} follow",
                plural(lines.len(), "line")
            ),
            lines.clone(),
        ),
        Some(Ok(_)) => (format!("; {source} is empty"), Vec::new()),
        Some(Err(e)) => (format!("; {source} could not be read: {e}"), Vec::new()),
        None => (String::new(), Vec::new()),
    };
    let mut f = Finding::fail(
        Check::Service,
        &h.fqdn,
        format!("not running: {why}{seen_log}"),
        format!("{APPLY}: it starts the gateway again (the log says why it stopped)"),
    );
    f.log = log;
    f
}

fn privilege(h: &HostFacts, g: &GatewayFacts) -> Finding {
    let check = Check::Privilege;
    let Some(read) = &g.privilege else {
        return Finding::new(
            check,
            &h.fqdn,
            Status::Skip,
            "not checked: the gateway is not running (see `gateway service`)",
        );
    };
    let p = match read {
        Ok(p) => p,
        Err(e) => {
            return Finding::fail(
                check,
                &h.fqdn,
                format!("could not read the running gateway's credentials: {e}"),
                "check that the login user may read /proc (or set `become: sudo`)",
            );
        }
    };
    let who = match &p.user {
        Some(u) => format!("`{u}` (uid {})", p.uid),
        None => format!("uid {}", p.uid),
    };
    let wanted = g.user.as_deref().unwrap_or("its own user");
    let mut wrong = Vec::new();
    if p.uid == 0 {
        wrong.push("runs as root (uid 0)".to_string());
    }
    if p.cap_prm != 0 || p.cap_eff != 0 {
        wrong.push(format!(
            "holds capabilities (CapPrm {:016x}, CapEff {:016x})",
            p.cap_prm, p.cap_eff
        ));
    }
    let files: Vec<String> = p.files.iter().filter_map(FileAccess::problem).collect();
    if !wrong.is_empty() {
        return Finding::fail(
            check,
            &h.fqdn,
            format!("the gateway {}", wrong.join(" and ")),
            format!("{APPLY}: it restarts the gateway as `{wanted}`, without capabilities"),
        );
    }
    if !files.is_empty() {
        return Finding::fail(
            check,
            &h.fqdn,
            format!("runs as {who}, but {}", files.join("; ")),
            format!(
                "{APPLY}: it rewrites the gateway's files 0640 root:{wanted}; a key it does not manage: `chown root:{wanted}` and `chmod 0640` it"
            ),
        );
    }
    Finding::pass(
        check,
        &h.fqdn,
        format!(
            "runs as {who} with no capabilities; {} owned by root, not writable by it, not world-readable",
            plural(p.files.len(), "key and config file")
        ),
    )
}

fn listener(h: &HostFacts, g: &GatewayFacts, l: &ListenerFacts) -> Finding {
    let at = format!("{} {}", l.name, l.address);
    let down_fix = if g.running.running {
        format!(
            "{APPLY}: it restarts the gateway with its listeners; if that does not help, read its log"
        )
    } else {
        format!("{APPLY}: it starts the gateway (see `gateway service`)")
    };
    let from_here = match &l.probe {
        Probe::Xmpp(p) => {
            if !p.stream {
                Err(p.error.clone().unwrap_or_else(|| "no XMPP stream".into()))
            } else if p.starttls_offered && !p.tls {
                Err(format!(
                    "STARTTLS offered, but TLS failed: {}",
                    p.error.clone().unwrap_or_default()
                ))
            } else if p.tls {
                Ok("XMPP stream, STARTTLS and TLS ok".to_string())
            } else {
                Ok("XMPP stream ok, no STARTTLS offered".to_string())
            }
        }
        Probe::Status(Ok(st)) => Ok(format!(
            "/status answers: binary {}, topology {}; partner streams: {}",
            st.binary_sha256.as_deref().map_or("?", short_sha),
            st.topology_version.as_deref().unwrap_or("?"),
            st.partner_streams_text()
        )),
        Probe::Status(Err(e)) => Err(e.clone()),
    };
    match (l.bound, from_here) {
        (true, Ok(seen)) => {
            let plain_external = l.name == ListenerKind::External
                && matches!(&l.probe, Probe::Xmpp(p) if !p.starttls_offered);
            if plain_external {
                Finding::warn(
                    Check::Listener,
                    &h.fqdn,
                    format!("{at}: bound (ss); from here: {seen}"),
                    "give the pool an external certificate (`certificates:`) and run `xfed apply`: partners that require TLS cannot federate",
                )
            } else {
                Finding::pass(
                    Check::Listener,
                    &h.fqdn,
                    format!("{at}: bound (ss); from here: {seen}"),
                )
            }
        }
        (true, Err(e)) => Finding::fail(
            Check::Listener,
            &h.fqdn,
            format!("{at}: bound on the host (ss), but from here: {e}"),
            format!(
                "check that nothing (firewall, routing) blocks {} between here and the edge, then the gateway's log",
                l.address
            ),
        ),
        (false, Ok(seen)) => Finding::fail(
            Check::Listener,
            &h.fqdn,
            format!(
                "{at}: not bound on the host (ss -ltn), yet something answers from here: {seen}"
            ),
            format!(
                "find what else listens on {} (`ss -ltnp` on the host)",
                l.address
            ),
        ),
        (false, Err(e)) => Finding::fail(
            Check::Listener,
            &h.fqdn,
            format!("{at}: not bound on the host (ss -ltn); from here: {e}"),
            down_fix,
        ),
    }
}

/// What the gateways of one edge pool carry, from their `/status`.
struct Carried {
    /// Streams from our own XMPP server (the front-ends' route).
    frontend: usize,
    /// `fabrikam.example in by EXTERNAL`, one per partner stream.
    partners: Vec<String>,
}

/// `None` when no gateway of `pool` answered `/status`.
fn carried(w: &World, pool: &str) -> Option<Carried> {
    let statuses: Vec<&GatewayStatus> = w
        .hosts
        .iter()
        .filter(|h| h.role == Role::Edge && h.pool == pool)
        .filter_map(|h| h.gateway.as_ref())
        .flat_map(|g| g.listeners.iter())
        .filter_map(|l| match &l.probe {
            Probe::Status(Ok(s)) => Some(s),
            _ => None,
        })
        .collect();
    if statuses.is_empty() {
        return None;
    }
    Some(Carried {
        frontend: statuses.iter().map(|s| s.frontend_streams).sum(),
        partners: statuses
            .iter()
            .filter(|s| !s.partner_streams.is_empty())
            .map(|s| s.partner_streams_text())
            .collect(),
    })
}

/// A published topology document, read as far as the route check needs.
fn parse_topology(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

fn routes(w: &World) -> Vec<Finding> {
    let mut out = Vec::new();
    for site in &w.sites {
        let fes: Vec<&HostFacts> = w
            .hosts
            .iter()
            .filter(|h| h.role == Role::Frontend && h.pool == site.frontend_pool)
            .collect();
        for h in fes {
            out.push(route(w, site, h));
        }
    }
    out
}

fn route(w: &World, site: &SiteRoute, h: &HostFacts) -> Finding {
    let (Reach::Ok, Some(t)) = (&h.reach, &h.topology) else {
        return skipped(h, Check::Route);
    };
    let name = &site.name;
    let want = &site.xmpp_route;
    let publish = format!("{APPLY}: it publishes the spec's topology (site `{name}` → `{want}`)");
    // The spec's own route first: validation guarantees it, but doctor
    // says so rather than assumes.
    match w.edge_pools.iter().find(|p| &p.name == want) {
        None => {
            return Finding::fail(
                Check::Route,
                &h.fqdn,
                format!(
                    "site `{name}`: the spec routes to edge pool `{want}`, which does not exist"
                ),
                "set the site's `xmpp_route` to an edge pool with `xmpp_federation: true`",
            );
        }
        Some(p) if !p.xmpp_federation => {
            return Finding::fail(
                Check::Route,
                &h.fqdn,
                format!(
                    "site `{name}`: the spec routes to edge pool `{want}`, which has no XMPP federation"
                ),
                format!(
                    "set `xmpp_federation: true` on `{want}`, or route the site to a pool that has it"
                ),
            );
        }
        Some(_) => {}
    }
    let Some(text) = &t.content else {
        return Finding::fail(
            Check::Route,
            &h.fqdn,
            format!(
                "site `{name}`: no route here, no topology is published (`{}`)",
                t.path
            ),
            publish,
        );
    };
    let doc = match parse_topology(text) {
        Ok(d) => d,
        Err(e) => {
            return Finding::fail(
                Check::Route,
                &h.fqdn,
                format!(
                    "site `{name}`: the published topology `{}` is unreadable: {e}",
                    t.path
                ),
                publish,
            );
        }
    };
    let sites = doc["sites"].as_array().cloned().unwrap_or_default();
    let Some(published) = sites.iter().find(|s| s["name"].as_str() == Some(name)) else {
        return Finding::fail(
            Check::Route,
            &h.fqdn,
            format!("site `{name}` is not in the published topology"),
            publish,
        );
    };
    let Some(got) = published["xmpp_route"].as_str().filter(|r| !r.is_empty()) else {
        return Finding::fail(
            Check::Route,
            &h.fqdn,
            format!("site `{name}`: no XMPP federation route is set in the published topology"),
            publish,
        );
    };
    let pools = doc["edge_pools"].as_array().cloned().unwrap_or_default();
    let pool = pools.iter().find(|p| p["name"].as_str() == Some(got));
    let servers = |p: &serde_json::Value| p["servers"].as_array().map_or(0, Vec::len);
    match pool {
        _ if got != want => Finding::fail(
            Check::Route,
            &h.fqdn,
            format!("site `{name}` routes to `{got}`, but the spec says `{want}`"),
            publish,
        ),
        None => Finding::fail(
            Check::Route,
            &h.fqdn,
            format!(
                "site `{name}` routes to `{got}`, which the published topology has no edge pool for"
            ),
            publish,
        ),
        Some(p) if p["xmpp_federation"].as_bool() != Some(true) => Finding::fail(
            Check::Route,
            &h.fqdn,
            format!(
                "site `{name}` routes to `{got}`, which has no XMPP federation in the published topology"
            ),
            publish,
        ),
        Some(p) => {
            let routed = format!(
                "site `{name}` → edge pool `{got}` (XMPP federation, {})",
                plural(servers(p), "server")
            );
            match carried(w, got) {
                // No gateway of the pool answered /status: the listener
                // checks say why; the route itself is as the spec says.
                None => Finding::pass(Check::Route, &h.fqdn, routed),
                Some(c) if c.frontend > 0 || !c.partners.is_empty() => Finding::pass(
                    Check::Route,
                    &h.fqdn,
                    format!(
                        "{routed}; carrying now: {} from our server, partner streams: {}",
                        plural(c.frontend, "stream"),
                        if c.partners.is_empty() {
                            "none".to_string()
                        } else {
                            c.partners.join(", ")
                        }
                    ),
                ),
                Some(_) => Finding::warn(
                    Check::Route,
                    &h.fqdn,
                    format!(
                        "{routed}, but the route carries nothing now: no gateway of `{got}` has a stream from our XMPP server or with a partner"
                    ),
                    format!(
                        "send a message from a user of site `{name}` to a partner and run doctor again (idle streams close by themselves); if the route still carries nothing, the front-end's server does not use it: check its route table (`routes.json` beside its config, for a server xfed manages) and its log for `mod_xfed_route`"
                    ),
                ),
            }
        }
    }
}

fn version_of(text: &str) -> String {
    parse_topology(text)
        .ok()
        .and_then(|d| d["version"].as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn topology(w: &World) -> Vec<Finding> {
    let fes: Vec<&HostFacts> = w
        .hosts
        .iter()
        .filter(|h| h.role == Role::Frontend)
        .collect();
    // (host, content sha256, version) of every front-end that was read.
    let published: Vec<(&str, String, String)> = fes
        .iter()
        .filter_map(|h| {
            let t = h.topology.as_ref()?;
            let c = t.content.as_ref()?;
            Some((h.fqdn.as_str(), sha256_hex(c.as_bytes()), version_of(c)))
        })
        .collect();
    let mut out = Vec::new();
    for h in &fes {
        let (Reach::Ok, Some(t)) = (&h.reach, &h.topology) else {
            out.push(skipped(h, Check::Topology));
            continue;
        };
        let want_sha = sha256_hex(t.desired.as_bytes());
        let want_version = version_of(&t.desired);
        let Some(content) = &t.content else {
            out.push(Finding::fail(
                Check::Topology,
                &h.fqdn,
                format!("not published: nothing at `{}`", t.path),
                format!("{APPLY}: it publishes the topology to every front-end"),
            ));
            continue;
        };
        let sha = sha256_hex(content.as_bytes());
        let version = version_of(content);
        let others: Vec<String> = published
            .iter()
            .filter(|(o, s, _)| *o != h.fqdn && *s != sha)
            .map(|(o, _, v)| format!("`{o}` has {v}"))
            .collect();
        let missing = fes.len() - published.len();
        let f = if sha != want_sha {
            Finding::fail(
                Check::Topology,
                &h.fqdn,
                format!(
                    "version {version} (sha256 {}) is published, but the spec gives {want_version}{}",
                    short_sha(&sha),
                    if others.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", others.join(", "))
                    }
                ),
                format!("{APPLY}: it publishes the spec's topology to every front-end"),
            )
        } else if !others.is_empty() || missing > 0 {
            // This copy is the right one: the others fail on their own lines.
            let mut seen = format!(
                "version {version} (sha256 {}), as the spec gives",
                short_sha(&sha)
            );
            if !others.is_empty() {
                seen.push_str(&format!("; differs on: {}", others.join(", ")));
            }
            if missing > 0 {
                seen.push_str(&format!(
                    "; {} without a readable copy",
                    plural(missing, "front-end")
                ));
            }
            Finding::pass(Check::Topology, &h.fqdn, seen)
        } else {
            Finding::pass(
                Check::Topology,
                &h.fqdn,
                format!(
                    "version {version} (sha256 {}), as the spec gives{}",
                    short_sha(&sha),
                    match fes.len() {
                        1 => ", on the only front-end".to_string(),
                        n => format!(", identical on all {n} front-ends"),
                    }
                ),
            )
        };
        out.push(f);
    }
    out
}

/// Whether certificate name `name` covers `domain` (exact, or a
/// `*.parent` wildcard for one label).
fn covers(name: &str, domain: &str) -> bool {
    let (name, domain) = (name.to_ascii_lowercase(), domain.to_ascii_lowercase());
    if name == domain {
        return true;
    }
    match (name.strip_prefix("*."), domain.split_once('.')) {
        (Some(parent), Some((label, rest))) => !label.is_empty() && parent == rest,
        _ => false,
    }
}

fn certificate(w: &World, h: &HostFacts, g: &GatewayFacts) -> Finding {
    let served = g.listeners.iter().find_map(|l| match &l.probe {
        Probe::Xmpp(p) if l.name == ListenerKind::External => Some((l, p)),
        _ => None,
    });
    let installed = g.certificate.as_ref().map(|c| match &c.installed {
        Ok(i) => format!(
            "installed at `{}`: {}, {} days left",
            c.cert_path,
            i.sans.join(", "),
            (i.not_after - w.now_unix).div_euclid(86_400)
        ),
        Err(e) => format!("none installed at `{}`: {e}", c.cert_path),
    });
    let Some((l, p)) = served.filter(|(_, p)| p.tls) else {
        let why = match served {
            None => "the gateway has no external listener".to_string(),
            Some((l, p)) => format!(
                "the external listener {} did not complete TLS ({})",
                l.address,
                p.error.as_deref().unwrap_or("no STARTTLS")
            ),
        };
        return match &installed {
            None => Finding::fail(
                Check::Certificate,
                &h.fqdn,
                format!(
                    "no certificate is served: {why}, and the spec has none for pool `{}`",
                    h.pool
                ),
                format!(
                    "add a certificate for pool `{}` (`certificates:`) and run `xfed apply`",
                    h.pool
                ),
            ),
            Some(inst) => Finding::new(
                Check::Certificate,
                &h.fqdn,
                Status::Skip,
                format!("no certificate seen from here: {why} (see `listener`); {inst}"),
            ),
        };
    };
    let names = &p.cert_names;
    let missing: Vec<&String> = w
        .xmpp_domains
        .iter()
        .filter(|d| !names.iter().any(|n| covers(n, d)))
        .collect();
    let renew_fix = format!("{APPLY}: it renews the certificate and reloads the gateway");
    if !missing.is_empty() {
        return Finding::fail(
            Check::Certificate,
            &h.fqdn,
            format!(
                "{} serves a certificate for [{}], which does not cover {}",
                l.address,
                names.join(", "),
                missing
                    .iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("{APPLY}: it issues a certificate with every XMPP domain among its names"),
        );
    }
    let Some(not_after) = p.cert_not_after else {
        return Finding::fail(
            Check::Certificate,
            &h.fqdn,
            format!(
                "{} serves a certificate whose expiry cannot be read",
                l.address
            ),
            renew_fix,
        );
    };
    let days = (not_after - w.now_unix).div_euclid(86_400);
    let covering = format!(
        "{} serves [{}], covering {}",
        l.address,
        names.join(", "),
        w.xmpp_domains.join(", ")
    );
    if not_after <= w.now_unix {
        return Finding::fail(
            Check::Certificate,
            &h.fqdn,
            format!("{covering}; EXPIRED {} days ago", -days),
            renew_fix,
        );
    }
    // The renewal window needs the certificate's start, which the served
    // leaf only gives through the installed copy of the same certificate.
    let same = g.certificate.as_ref().and_then(|c| {
        c.installed
            .as_ref()
            .ok()
            .map(|i| (c, i, i.not_after == not_after))
    });
    match same {
        Some((c, i, false)) => {
            let reload = match g.manager {
                Manager::Direct => format!("`kill -HUP $(cat {})` on the host", g.pid_file),
                Manager::Systemd => format!("`systemctl reload {}` on the host", g.service_name),
            };
            Finding::warn(
                Check::Certificate,
                &h.fqdn,
                format!(
                    "{covering}, {days} days left; but it is not the certificate installed at `{}` ({} days left): the gateway has not loaded it",
                    c.cert_path,
                    (i.not_after - w.now_unix).div_euclid(86_400)
                ),
                format!("reload the gateway: {reload}"),
            )
        }
        Some((c, i, true)) => {
            let r = crate::certs::renewal(i.not_before, not_after, w.now_unix, c.renew_before);
            let window = (r.window_opens - w.now_unix).div_euclid(86_400);
            if r.due {
                Finding::warn(
                    Check::Certificate,
                    &h.fqdn,
                    format!(
                        "{covering}, {days} days left: inside its renewal window (renew {} before expiry)",
                        crate::certs::renewal::describe(c.renew_before)
                    ),
                    renew_fix,
                )
            } else {
                Finding::pass(
                    Check::Certificate,
                    &h.fqdn,
                    format!("{covering}; {days} days left, renewal due in {window} days"),
                )
            }
        }
        None => Finding::pass(
            Check::Certificate,
            &h.fqdn,
            format!("{covering}; {days} days left"),
        ),
    }
}

fn dns(w: &World) -> Vec<Finding> {
    let fix =
        "run `xfed apply`: it writes the records the spec gives (`xfed plan` shows the difference)";
    let Some(rows) = &w.dns else {
        return w
            .xmpp_domains
            .iter()
            .map(|d| {
                Finding::warn(
                    Check::Dns,
                    "",
                    format!("the spec has no `dns` section: xfed does not manage `_xmpp-server._tcp.{d}`"),
                    format!("check it by hand: `dig SRV _xmpp-server._tcp.{d}`, or add a `dns` section"),
                )
            })
            .collect();
    };
    let mut out: Vec<Finding> = rows
        .iter()
        .filter(|r| {
            r.check.starts_with("SRV ")
                || r.check.starts_with("zone ")
                || r.check.starts_with("SOA serial ")
        })
        .map(|r| {
            let seen = format!(
                "{}: {}",
                r.check,
                r.detail.replace("\n  hint: ", "\nhint: ")
            );
            if r.ok {
                Finding::pass(Check::Dns, &r.server, seen.replace('\n', " "))
            } else {
                // verify's own hint, when it has one, is the fix
                let (seen, hint) = split_hint(&seen);
                Finding::fail(
                    Check::Dns,
                    &r.server,
                    seen,
                    hint.unwrap_or_else(|| fix.into()),
                )
            }
        })
        .collect();
    for d in &w.xmpp_domains {
        let name = format!("SRV _xmpp-server._tcp.{}.", d.trim_end_matches('.'));
        if !rows.iter().any(|r| r.check.eq_ignore_ascii_case(&name)) {
            out.push(Finding::warn(
                Check::Dns,
                "",
                format!("the spec's DNS has no `{}` record to check", &name[4..]),
                "give the domain an edge pool with `xmpp_federation: true` in a declared zone",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(tls: bool, names: &[&str], not_after: Option<i64>) -> XmppProbe {
        XmppProbe {
            tcp: true,
            stream: true,
            starttls_offered: true,
            tls,
            cert_names: names.iter().map(|s| s.to_string()).collect(),
            cert_not_after: not_after,
            client_cert_requested: false,
            sasl_external: None,
            error: None,
        }
    }

    fn refused() -> XmppProbe {
        XmppProbe {
            tcp: false,
            stream: false,
            starttls_offered: false,
            tls: false,
            cert_names: Vec::new(),
            cert_not_after: None,
            client_cert_requested: false,
            sasl_external: None,
            error: Some("TCP connect: Connection refused (os error 111)".into()),
        }
    }

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn leaf(not_before: i64, not_after: i64) -> CertInfo {
        CertInfo {
            subject: "CN=contoso.example".into(),
            issuer: "CN=CA".into(),
            sans: vec!["contoso.example".into(), "xmpp1.contoso.example".into()],
            not_before,
            not_after,
            key_alg: "rsa".into(),
            key_bits: 2048,
            spki: Vec::new(),
            serial: "01".into(),
            fingerprint: "ff".repeat(32),
            is_ca: false,
        }
    }

    fn gateway(running: bool) -> GatewayFacts {
        let not_after = NOW + 300 * DAY;
        GatewayFacts {
            binary_path: "/opt/xfed/bin/xfed-gateway".into(),
            binary: Some(FileFact {
                mode: 0o755,
                owner: "root".into(),
                group: "root".into(),
                size: 1,
                sha256: "a".repeat(64),
                content: None,
            }),
            service_name: "xfed-gateway".into(),
            manager: Manager::Direct,
            pid_file: "/var/lib/xfed/run/xfed-gateway.pid".into(),
            log_file: "/var/lib/xfed/log/xfed-gateway.log".into(),
            running: ServiceFact {
                running,
                pid: running.then_some(77),
                running_sha256: None,
                running_user: None,
            },
            log: (!running).then(|| {
                Ok(vec![
                    "listening on 198.51.100.101:5269".into(),
                    "SIGTERM: draining".into(),
                ])
            }),
            listeners: vec![
                ListenerFacts {
                    name: ListenerKind::External,
                    address: "198.51.100.101:5269".parse().expect("addr"),
                    bound: running,
                    probe: Probe::Xmpp(if running {
                        probe(
                            true,
                            &["contoso.example", "xmpp1.contoso.example"],
                            Some(not_after),
                        )
                    } else {
                        refused()
                    }),
                },
                ListenerFacts {
                    name: ListenerKind::Internal,
                    address: "203.0.113.101:23456".parse().expect("addr"),
                    bound: running,
                    probe: Probe::Xmpp(if running {
                        probe(true, &[], None)
                    } else {
                        refused()
                    }),
                },
            ],
            certificate: Some(CertFacts {
                name: "edge-hq-external".into(),
                cert_path: "/etc/xfed/tls/external.crt".into(),
                renew_before: RenewBefore::Fraction(1.0 / 3.0),
                installed: Ok(leaf(NOW - 65 * DAY, not_after)),
            }),
            dialback: None,
            privilege: running.then(|| Ok(unprivileged())),
            user: Some("xfed-gateway".into()),
        }
    }

    fn unprivileged() -> PrivilegeFacts {
        let file = |path: &str| FileAccess {
            path: path.into(),
            mode: 0o640,
            owner: "root".into(),
            group: "xfed-gateway".into(),
        };
        PrivilegeFacts {
            uid: 999,
            user: Some("xfed-gateway".into()),
            cap_prm: 0,
            cap_eff: 0,
            files: vec![
                file("/etc/xfed/gateway.toml"),
                file("/etc/xfed/policy.toml"),
                file("/etc/xfed/tls/external.key"),
            ],
        }
    }

    fn privilege_of(p: PrivilegeFacts) -> Finding {
        let mut w = world();
        let mut g = gateway(true);
        g.privilege = Some(Ok(p));
        w.hosts[1].gateway = Some(g);
        find(&judge(&w), Check::Privilege, "edge1.contoso.example")
    }

    #[test]
    fn an_unprivileged_gateway_passes_the_privilege_check() {
        let f = privilege_of(unprivileged());
        assert_eq!(f.status, Status::Pass, "{f:?}");
        assert!(f.seen.contains("`xfed-gateway` (uid 999)"), "{}", f.seen);
        assert!(f.seen.contains("3 key and config files"), "{}", f.seen);
    }

    #[test]
    fn a_gateway_running_as_root_or_with_capabilities_fails() {
        let mut p = unprivileged();
        p.uid = 0;
        p.user = Some("root".into());
        let f = privilege_of(p);
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.seen.contains("runs as root (uid 0)"), "{}", f.seen);
        assert!(
            f.fix
                .as_deref()
                .is_some_and(|x| x.contains("xfed apply") && x.contains("`xfed-gateway`")),
            "{f:?}"
        );
        let mut p = unprivileged();
        p.cap_eff = 0x400;
        p.cap_prm = 0x400;
        let f = privilege_of(p);
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.seen.contains("holds capabilities"), "{}", f.seen);
    }

    #[test]
    fn a_key_readable_by_everyone_or_writable_by_the_gateway_fails() {
        for (mode, owner, why) in [
            (0o644, "root", "readable by everyone"),
            (0o660, "root", "writable by its group"),
            (0o600, "xfed-gateway", "owned by `xfed-gateway`, not root"),
        ] {
            let mut p = unprivileged();
            p.files[2].mode = mode;
            p.files[2].owner = owner.into();
            let f = privilege_of(p);
            assert_eq!(f.status, Status::Fail, "{mode:o} {owner}: {f:?}");
            assert!(f.seen.contains("/etc/xfed/tls/external.key"), "{}", f.seen);
            assert!(f.seen.contains(why), "{}", f.seen);
        }
        // 0600 root:root is fine too (a key the gateway does not read).
        let mut p = unprivileged();
        p.files[2].mode = 0o600;
        p.files[2].group = "root".into();
        assert_eq!(privilege_of(p).status, Status::Pass);
    }

    #[test]
    fn a_stopped_gateway_skips_the_privilege_check() {
        let mut w = world();
        w.hosts[1].gateway = Some(gateway(false));
        let f = find(&judge(&w), Check::Privilege, "edge1.contoso.example");
        assert_eq!(f.status, Status::Skip, "{f:?}");
    }

    fn topo(version: &str, route: &str) -> String {
        serde_json::json!({
            "sites": [{ "name": "hq", "frontend_pool": "fe-hq", "xmpp_route": route }],
            "edge_pools": [
                { "name": "edge-hq", "xmpp_federation": true, "servers": [{}, {}] },
                { "name": "edge-old", "xmpp_federation": false, "servers": [] }
            ],
            "version": version,
        })
        .to_string()
    }

    fn host(fqdn: &str, role: Role, pool: &str) -> HostFacts {
        HostFacts {
            fqdn: fqdn.into(),
            role: role.clone(),
            pool: pool.into(),
            target: "root@203.0.113.11:22".into(),
            known_hosts: "/keys/known_hosts".into(),
            runs_gateway: role == Role::Edge,
            reach: Reach::Ok,
            gateway: (role == Role::Edge).then(|| gateway(true)),
            topology: (role == Role::Frontend).then(|| TopologyFacts {
                path: "/etc/xfed/topology.json".into(),
                content: Some(topo("v1", "edge-hq")),
                desired: topo("v1", "edge-hq"),
            }),
        }
    }

    fn world() -> World {
        World {
            now_unix: NOW,
            xmpp_domains: vec!["contoso.example".into()],
            sites: vec![SiteRoute {
                name: "hq".into(),
                frontend_pool: "fe-hq".into(),
                xmpp_route: "edge-hq".into(),
            }],
            edge_pools: vec![PoolFacts {
                name: "edge-hq".into(),
                xmpp_federation: true,
                servers: 2,
            }],
            built: Ok("a".repeat(64)),
            hosts: vec![
                host("fe1.contoso.example", Role::Frontend, "fe-hq"),
                host("edge1.contoso.example", Role::Edge, "edge-hq"),
            ],
            dns: Some(vec![VerifyRow {
                check: "SRV _xmpp-server._tcp.contoso.example.".into(),
                server: "198.51.100.53:53".into(),
                ok: true,
                detail: "10 100 5269 xmpp1.contoso.example. (ttl 300)".into(),
            }]),
            dialback_partners: Vec::new(),
        }
    }

    fn find(f: &[Finding], check: Check, host: &str) -> Finding {
        f.iter()
            .find(|x| x.check == check && x.host == host)
            .cloned()
            .unwrap_or_else(|| panic!("no {check:?} finding for {host}: {f:#?}"))
    }

    /// The admin listener's `/status` says, per partner stream, which way
    /// it goes and how it was authenticated.
    #[test]
    fn the_admin_listener_shows_how_each_partner_stream_was_authenticated() {
        use crate::engine::probe::{Direction, GatewayStatus, PartnerStream, StreamAuth};
        let mut w = world();
        if let Some(g) = w.hosts[1].gateway.as_mut() {
            g.listeners.push(ListenerFacts {
                name: ListenerKind::Admin,
                address: "203.0.113.101:8089".parse().expect("addr"),
                bound: true,
                probe: Probe::Status(Ok(GatewayStatus {
                    binary_sha256: Some("a".repeat(64)),
                    topology_version: Some("417980d416c3be86".into()),
                    partner_streams: vec![
                        PartnerStream {
                            direction: Direction::Inbound,
                            domain: "fabrikam.example".into(),
                            auth: Some(StreamAuth::Dialback),
                        },
                        PartnerStream {
                            direction: Direction::Outbound,
                            domain: "litware.example".into(),
                            auth: Some(StreamAuth::External),
                        },
                    ],
                    ..GatewayStatus::default()
                })),
            });
        }
        let f = judge(&w);
        let admin = f
            .iter()
            .find(|x| x.check == Check::Listener && x.seen.starts_with("admin "))
            .expect("admin finding");
        assert_eq!(admin.status, Status::Pass);
        assert_eq!(
            admin.seen,
            "admin 203.0.113.101:8089: bound (ss); from here: /status answers: binary aaaaaaaaaaaa, topology 417980d416c3be86; partner streams: fabrikam.example in by dialback, litware.example out by EXTERNAL"
        );
    }

    /// The route check says what the routed pool carries, from its
    /// gateways' `/status`, and explains a route that carries nothing.
    #[test]
    fn a_route_that_carries_nothing_is_explained_and_one_that_carries_is_shown() {
        use crate::engine::probe::{Direction, GatewayStatus, PartnerStream, StreamAuth};
        let with_status = |status: GatewayStatus| {
            let mut w = world();
            if let Some(g) = w.hosts[1].gateway.as_mut() {
                g.listeners.push(ListenerFacts {
                    name: ListenerKind::Admin,
                    address: "203.0.113.101:8089".parse().expect("addr"),
                    bound: true,
                    probe: Probe::Status(Ok(status)),
                });
            }
            find(&judge(&w), Check::Route, "fe1.contoso.example")
        };
        // No /status from the pool: the route as the spec has it.
        let f = find(&judge(&world()), Check::Route, "fe1.contoso.example");
        assert_eq!(f.status, Status::Pass, "{f:?}");

        let idle = with_status(GatewayStatus::default());
        assert_eq!(idle.status, Status::Warn, "{idle:?}");
        assert!(
            idle.seen.ends_with("but the route carries nothing now: no gateway of `edge-hq` has a stream from our XMPP server or with a partner"),
            "{idle:?}"
        );
        assert!(
            idle.fix.as_deref().is_some_and(
                |f| f.starts_with("send a message from a user of site `hq` to a partner")
            ),
            "{idle:?}"
        );

        let busy = with_status(GatewayStatus {
            frontend_streams: 1,
            partner_streams: vec![PartnerStream {
                direction: Direction::Outbound,
                domain: "fabrikam.example".into(),
                auth: Some(StreamAuth::External),
            }],
            ..GatewayStatus::default()
        });
        assert_eq!(busy.status, Status::Pass, "{busy:?}");
        assert_eq!(
            busy.seen,
            "site `hq` → edge pool `edge-hq` (XMPP federation, 2 servers); carrying now: 1 stream from our server, partner streams: fabrikam.example out by EXTERNAL"
        );
    }

    /// Dialback failures counted by the gateway, each explained with what
    /// to do; none is a pass; no partner by dialback, no check.
    #[test]
    fn dialback_failures_are_explained_with_the_fix() {
        let mut w = world();
        assert!(!judge(&w).iter().any(|f| f.check == Check::Dialback));
        w.dialback_partners = vec!["fabrikam.example".into()];
        if let Some(g) = w.hosts[1].gateway.as_mut() {
            g.dialback = Some(Ok(DialbackCounts {
                inbound: [3, 0, 0],
                outbound: [2, 0, 0],
                answered_invalid: 0,
            }));
        }
        let ok = find(&judge(&w), Check::Dialback, "edge1.contoso.example");
        assert_eq!(ok.status, Status::Pass);
        assert_eq!(
            ok.seen,
            "since start: 3 partner keys verified, 2 of ours accepted, no failure"
        );
        if let Some(g) = w.hosts[1].gateway.as_mut() {
            g.dialback = Some(Ok(DialbackCounts {
                inbound: [3, 0, 2],
                outbound: [2, 1, 0],
                answered_invalid: 0,
            }));
        }
        let f = find(&judge(&w), Check::Dialback, "edge1.contoso.example");
        assert_eq!(f.status, Status::Warn);
        assert_eq!(
            f.seen,
            "since start: 3 partner keys verified, 2 of ours accepted; 2 partner keys could not be checked with the partner's authoritative server (unreachable, no `_xmpp-server._tcp` SRV record, or no answer); partners refused 1 of our keys and 0 `db:verify` got `invalid` here"
        );
        assert_eq!(
            f.fix.as_deref(),
            Some(
                "from the edge, `dig SRV _xmpp-server._tcp.<partner domain>` must answer and port 5269 of its target be reachable (partners that may use dialback: fabrikam.example); every server behind `_xmpp-server._tcp.contoso.example` must be one of these gateways with the same dialback secret: run `xfed apply`, and see the `dns` check for other SRV targets"
            )
        );
        let order: Vec<Check> = judge(&w).iter().map(|x| x.check).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(
            order, sorted,
            "dialback comes after certificate, before dns"
        );
    }

    #[test]
    fn a_healthy_world_passes_every_check_in_order() {
        let f = judge(&world());
        assert!(healthy(&f), "{f:#?}");
        assert!(f.iter().all(|x| x.status == Status::Pass), "{f:#?}");
        let order: Vec<Check> = f.iter().map(|x| x.check).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "checks come in the guide's order");
        assert_eq!(order.first(), Some(&Check::Ssh));
        assert_eq!(order.last(), Some(&Check::Dns));
        assert!(order.contains(&Check::Route) && order.contains(&Check::Topology));
    }

    #[test]
    fn a_stopped_gateway_fails_with_its_log_and_the_fix() {
        let mut w = world();
        w.hosts[1].gateway = Some(gateway(false));
        let f = judge(&w);
        assert!(!healthy(&f));
        let s = find(&f, Check::Service, "edge1.contoso.example");
        assert_eq!(s.status, Status::Fail);
        assert!(s.seen.starts_with("not running"), "{}", s.seen);
        assert_eq!(s.log.len(), 2);
        assert!(s.fix.as_deref().is_some_and(|x| x.contains("xfed apply")));
        let l = find(&f, Check::Listener, "edge1.contoso.example");
        assert_eq!(l.status, Status::Fail);
        assert!(l.seen.contains("not bound"), "{}", l.seen);
        // The certificate cannot be seen from outside; it is skipped, not failed.
        let c = find(&f, Check::Certificate, "edge1.contoso.example");
        assert_eq!(c.status, Status::Skip, "{c:?}");
        assert!(c.seen.contains("installed at"), "{}", c.seen);
    }

    #[test]
    fn the_doctor_table_of_a_healthy_world() {
        insta::assert_snapshot!(render::human(&judge(&world()), false));
    }

    #[test]
    fn the_doctor_table_of_a_stopped_gateway_with_its_log_and_the_fix() {
        let mut w = world();
        w.hosts[1].gateway = Some(gateway(false));
        insta::assert_snapshot!(render::human(&judge(&w), false));
    }

    #[test]
    fn an_unreachable_host_fails_ssh_with_the_hint_and_its_other_checks_are_skipped() {
        let mut w = world();
        w.hosts[1].reach = Reach::Unreachable(
            "host key of `edge1` at `203.0.113.101:22` is not in `/keys/known_hosts`: ssh-ed25519 SHA256:abc\nhint: verify it, then add it with `ssh-keyscan`".into(),
        );
        w.hosts[1].gateway = None;
        let f = judge(&w);
        let s = find(&f, Check::Ssh, "edge1.contoso.example");
        assert_eq!(s.status, Status::Fail);
        assert!(s.seen.contains("SHA256:abc"), "{}", s.seen);
        assert!(s.fix.as_deref().is_some_and(|x| x.contains("ssh-keyscan")));
        for check in [
            Check::Binary,
            Check::Service,
            Check::Listener,
            Check::Certificate,
        ] {
            assert_eq!(
                find(&f, check, "edge1.contoso.example").status,
                Status::Skip
            );
        }
        // The front-end is still checked.
        assert_eq!(
            find(&f, Check::Topology, "fe1.contoso.example").status,
            Status::Pass
        );
    }

    #[test]
    fn an_outdated_binary_and_an_old_running_program_fail() {
        let mut w = world();
        w.built = Ok("b".repeat(64));
        if let Some(g) = w.hosts[1].gateway.as_mut() {
            g.running.running_sha256 = Some("c".repeat(64));
        }
        let f = judge(&w);
        let b = find(&f, Check::Binary, "edge1.contoso.example");
        assert_eq!(b.status, Status::Fail);
        assert!(
            b.seen.contains("aaaaaaaaaaaa") && b.seen.contains("bbbbbbbbbbbb"),
            "{}",
            b.seen
        );
        let s = find(&f, Check::Service, "edge1.contoso.example");
        assert_eq!(s.status, Status::Fail);
        assert!(s.seen.contains("old program"), "{}", s.seen);
    }

    #[test]
    fn a_route_elsewhere_or_to_a_pool_without_xmpp_fails_and_a_missing_topology_too() {
        let mut w = world();
        let cases = [
            (
                Some(topo("v1", "edge-old")),
                "routes to `edge-old`, but the spec says `edge-hq`",
            ),
            (
                Some(r#"{"sites":[{"name":"hq","xmpp_route":null}],"version":"v0"}"#.into()),
                "no XMPP federation route is set",
            ),
            (None, "no topology is published"),
        ];
        for (content, expect) in cases {
            if let Some(t) = w.hosts[0].topology.as_mut() {
                t.content = content;
            }
            let f = judge(&w);
            let r = find(&f, Check::Route, "fe1.contoso.example");
            assert_eq!(r.status, Status::Fail, "{r:?}");
            assert!(r.seen.contains(expect), "{}", r.seen);
            assert!(r.fix.as_deref().is_some_and(|x| x.contains("xfed apply")));
            assert_eq!(
                find(&f, Check::Topology, "fe1.contoso.example").status,
                Status::Fail
            );
        }
    }

    #[test]
    fn front_ends_with_different_topologies_fail_the_one_that_differs() {
        let mut w = world();
        let mut fe2 = host("fe2.contoso.example", Role::Frontend, "fe-hq");
        if let Some(t) = fe2.topology.as_mut() {
            t.content = Some(topo("v0", "edge-hq"));
        }
        w.hosts.insert(1, fe2);
        let f = judge(&w);
        let one = find(&f, Check::Topology, "fe1.contoso.example");
        let two = find(&f, Check::Topology, "fe2.contoso.example");
        assert_eq!(one.status, Status::Pass, "{one:?}");
        assert!(
            one.seen
                .contains("differs on: `fe2.contoso.example` has v0"),
            "{}",
            one.seen
        );
        assert_eq!(two.status, Status::Fail, "{two:?}");
        assert!(
            two.seen.contains("version v0") && two.seen.contains("the spec gives v1"),
            "{}",
            two.seen
        );
        // The route itself is right on both.
        assert_eq!(
            find(&f, Check::Route, "fe2.contoso.example").status,
            Status::Pass
        );
    }

    #[test]
    fn certificates_are_judged_by_names_expiry_and_renewal_window() {
        let set = |w: &mut World, names: &[&str], not_after: i64, installed_after: i64| {
            if let Some(g) = w.hosts[1].gateway.as_mut() {
                g.listeners[0].probe = Probe::Xmpp(probe(true, names, Some(not_after)));
                if let Some(c) = g.certificate.as_mut() {
                    c.installed = Ok(leaf(NOW - 65 * DAY, installed_after));
                }
            }
        };
        let status = |w: &World| find(&judge(w), Check::Certificate, "edge1.contoso.example");
        let mut w = world();
        let ok = status(&w);
        assert_eq!(ok.status, Status::Pass, "{ok:?}");
        assert!(ok.seen.contains("300 days left"), "{}", ok.seen);

        set(
            &mut w,
            &["xmpp1.contoso.example"],
            NOW + 300 * DAY,
            NOW + 300 * DAY,
        );
        let f = status(&w);
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.seen.contains("does not cover `contoso.example`"),
            "{}",
            f.seen
        );

        set(&mut w, &["*.example"], NOW + 300 * DAY, NOW + 300 * DAY);
        assert_eq!(
            status(&w).status,
            Status::Pass,
            "a wildcard covers one label"
        );

        set(&mut w, &["contoso.example"], NOW - DAY, NOW - DAY);
        let f = status(&w);
        assert_eq!(f.status, Status::Fail);
        assert!(f.seen.contains("EXPIRED"), "{}", f.seen);

        // 65 days into a 95-day lifetime: inside the last third.
        set(&mut w, &["contoso.example"], NOW + 30 * DAY, NOW + 30 * DAY);
        let f = status(&w);
        assert_eq!(f.status, Status::Warn, "{f:?}");
        assert!(f.seen.contains("renewal window"), "{}", f.seen);
        assert!(healthy(&judge(&w)), "a warning still exits 0");

        set(
            &mut w,
            &["contoso.example"],
            NOW + 300 * DAY,
            NOW + 200 * DAY,
        );
        let f = status(&w);
        assert_eq!(f.status, Status::Warn, "{f:?}");
        assert!(f.seen.contains("has not loaded it"), "{}", f.seen);
    }

    #[test]
    fn dns_rows_become_findings_and_a_missing_srv_is_named() {
        let mut w = world();
        w.dns = Some(vec![VerifyRow {
            check: "SRV _xmpp-server._tcp.contoso.example.".into(),
            server: "198.51.100.53:53".into(),
            ok: false,
            detail: "10 100 5269 xmpp2.contoso.example. missing from the answer".into(),
        }]);
        let f = judge(&w);
        let d = find(&f, Check::Dns, "198.51.100.53:53");
        assert_eq!(d.status, Status::Fail);
        assert!(
            d.seen.contains("xmpp2.contoso.example. missing"),
            "{}",
            d.seen
        );
        // Name servers that serve different zones: a lame or stale server.
        w.dns = Some(vec![crate::verify::dns::serial_agreement(
            "contoso.example.",
            &[
                ("198.51.100.55:53".parse().expect("addr"), Ok(Some(7))),
                ("198.51.100.56:53".parse().expect("addr"), Ok(None)),
            ],
        )]);
        let f = judge(&w);
        let d = find(&f, Check::Dns, "198.51.100.55:53, 198.51.100.56:53");
        assert_eq!(d.status, Status::Fail);
        assert!(d.seen.contains("a lame server"), "{}", d.seen);
        let fix = d.fix.clone().unwrap_or_default();
        assert!(fix.contains("missed a transfer"), "{fix}");
        // A bogus answer through the resolver: verify's hint is the fix.
        let srv = crate::dns::rrset::RRset::new(
            "_xmpp-server._tcp.contoso.example.",
            "SRV",
            300,
            vec!["10 100 5269 xmpp1.contoso.example.".into()],
        );
        w.dns = Some(vec![crate::verify::dns::judge_recursive(
            &srv,
            "198.51.100.58:53".parse().expect("addr"),
            Ok(crate::providers::dns::resolver::RecursiveAnswer {
                rcode: "SERVFAIL".into(),
                authentic: false,
                records: Vec::new(),
            }),
        )]);
        let f = judge(&w);
        let d = find(&f, Check::Dns, "198.51.100.58:53");
        assert_eq!(d.status, Status::Fail);
        assert!(d.seen.contains("bogus"), "{}", d.seen);
        let fix = d.fix.clone().unwrap_or_default();
        assert!(fix.contains("DS record in its parent zone"), "{fix}");
        w.dns = Some(Vec::new());
        let d = find(&judge(&w), Check::Dns, "");
        assert_eq!(d.status, Status::Warn);
        w.dns = None;
        assert!(
            find(&judge(&w), Check::Dns, "")
                .seen
                .contains("no `dns` section")
        );
    }
}

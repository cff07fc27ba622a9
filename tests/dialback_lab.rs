//! Dialback (XEP-0220) through the gateways xfed deploys, with a real
//! partner: the lab's fabrikam (Prosody) with its `mod_dialback` loaded,
//! and `auth: dialback` for it in the spec, so neither side may use its
//! certificate to authenticate. xfed renders the organisation's dialback
//! secret to every gateway (root's file, readable by the gateway's group
//! only, whose content no output of xfed shows); fabrikam's messages reach
//! our internal server through the
//! gateways, ours reach fabrikam, and `/status` and `xfed verify` say both
//! streams were authenticated by dialback. Rotating the secret (a new
//! value, then naming and removing `previous_secret`) is a reload: the
//! gateways keep their PIDs, and a key made with the previous secret
//! verifies at every edge while it is named and not after.
//!
//! The same both ways with litware (ejabberd 23.01), whose
//! `mod_s2s_dialback` the test adds and removes with `ejabberdctl
//! reload_config` (the lab's litware takes certificates only): ejabberd
//! falls back to dialback when the gateway offers it no EXTERNAL, and its
//! own log says so; with litware's `auth: external` a dialback stream
//! from it is refused (`not-authorized`) and nothing it carries reaches
//! the internal server.
//!
//! And as a partner in the wild that authenticates by dialback is set up:
//! each partner for the length of a test with a self-signed certificate
//! for its domain (in no trust of ours), fabrikam with `s2s_secure_auth =
//! false`. With dialback allowed in the spec, messages cross both ways,
//! the gateways reaching the partner over TLS although its certificate is
//! its own and both streams authenticated by dialback (the partners' own
//! state and logs say so); with the lab's `auth: external`, the partner
//! server's own new stream is refused (`not-authorized`) and nothing
//! reaches the internal server. Every change to a partner is undone when
//! the test ends, however it ends.
//!
//!   XFED_LAB=1 tests/lab/lab exec -- cargo test --test dialback_lab

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::internal::InternalServer;
use common::lab::{Lab, Role};
use common::partners::{Partner, lua_str};
use common::prosody::PROSODYCTL;
use common::xfed::{
    TestSpec, apply_ok, assert_in_sync, gateway_admin, gateway_pid, lab_spec, lab_spec_with, reset,
    xfed,
};

const SECRET: &str = "lab-dialback-secret-5b0e7c29a4d1f3";
const ROTATED: &str = "lab-dialback-secret-rotated-91c4e2";

/// Runs Lua in fabrikam's Prosody (its admin shell).
fn shell(p: &Partner, lua: &str) -> String {
    let out = Command::new(PROSODYCTL)
        .arg("--config")
        .arg(&p.config)
        .arg("shell")
        .arg(lua)
        .output()
        .unwrap_or_else(|e| panic!("{}: cannot run prosodyctl: {e}", p.domain));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}: `{lua}` failed:\n{text}",
        p.domain
    );
    text
}

/// Runs Lua in the partner's Prosody whatever comes of it (closing
/// sessions that may not exist, unloading a module that may not be loaded).
fn shell_quiet(p: &Partner, lua: &str) {
    let _ = Command::new(PROSODYCTL)
        .arg("--config")
        .arg(&p.config)
        .arg("shell")
        .arg(lua)
        .output();
}

/// fabrikam with dialback for as long as this lives; its S2S streams to
/// us closed on both edges of the change, so each test starts afresh.
struct DialbackOn<'a>(&'a Partner);

impl<'a> DialbackOn<'a> {
    fn new(p: &'a Partner) -> DialbackOn<'a> {
        let unload = format!("module:unload('dialback', {})", lua_str(&p.domain));
        shell_quiet(p, &unload);
        let loaded = shell(
            p,
            &format!("module:load('dialback', {})", lua_str(&p.domain)),
        );
        assert!(loaded.contains("OK"), "{loaded}");
        shell_quiet(p, "s2s:closeall('contoso.example')");
        DialbackOn(p)
    }
}

impl Drop for DialbackOn<'_> {
    fn drop(&mut self) {
        let p = self.0;
        shell_quiet(
            p,
            &format!("module:unload('dialback', {})", lua_str(&p.domain)),
        );
        shell_quiet(p, "s2s:closeall('contoso.example')");
    }
}

/// litware's ejabberd with `mod_s2s_dialback` for as long as this lives:
/// the module is added to its configuration and `ejabberdctl
/// reload_config` starts it (ejabberd then offers dialback beside SASL
/// EXTERNAL and falls back to it when EXTERNAL is not offered); its S2S
/// connections are closed on both edges of the change.
struct EjabberdDialbackOn<'a> {
    partner: &'a Partner,
    original: String,
}

const EJABBERD_MODULES_END: &str = "  mod_roster: {}\n";

impl<'a> EjabberdDialbackOn<'a> {
    fn new(p: &'a Partner) -> EjabberdDialbackOn<'a> {
        let original = std::fs::read_to_string(&p.config).expect("ejabberd.yml");
        assert!(
            original.ends_with(EJABBERD_MODULES_END) && !original.contains("mod_s2s_dialback"),
            "{}: its modules are no longer last in ejabberd.yml",
            p.domain
        );
        std::fs::write(&p.config, format!("{original}  mod_s2s_dialback: {{}}\n"))
            .expect("ejabberd.yml with dialback");
        let on = EjabberdDialbackOn {
            partner: p,
            original,
        };
        on.ctl(&["reload_config"]);
        on.ctl(&["stop_s2s_connections"]);
        on
    }

    fn ctl(&self, args: &[&str]) {
        let out = self
            .partner
            .command("ejabberdctl")
            .args(args)
            .output()
            .expect("ejabberdctl");
        assert!(
            out.status.success(),
            "{}: ejabberdctl {args:?}: {}{}",
            self.partner.domain,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for EjabberdDialbackOn<'_> {
    fn drop(&mut self) {
        let p = self.partner;
        let _ = std::fs::write(&p.config, &self.original);
        for args in [["reload_config"].as_slice(), &["stop_s2s_connections"]] {
            let _ = p.command("ejabberdctl").args(args).output();
        }
    }
}

/// A certificate for `p`'s domain and server name signed by its own key
/// (in no trust store of ours or the lab's), serverAuth and clientAuth as
/// S2S uses it both ways: `(certificate, key)` in PEM.
fn self_signed(p: &Partner) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec![p.domain.clone(), p.fqdn.clone()])
        .expect("certificate names");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, p.domain.clone());
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    // A validity that ends before 2038: ejabberd's certificate timers
    // crash on rcgen's default end, year 4096.
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    (cert.pem(), key.serialize_pem())
}

/// The certificate `p`'s server presents on its S2S port (STARTTLS), in
/// PEM, as a peer sees it.
fn presented_certificate(p: &Partner) -> String {
    let out = p
        .command("openssl")
        .args(["s_client", "-starttls", "xmpp-server", "-xmpphost"])
        .arg(&p.domain)
        .arg("-connect")
        .arg(format!("{}:5269", p.external))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    match (text.find(begin), text.find(end)) {
        (Some(b), Some(e)) if b < e => text[b..e + end.len()].to_string(),
        _ => panic!(
            "{}: no certificate on its S2S port:\n{text}{}",
            p.domain,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Whether two PEM certificates are the same (line breaks aside).
fn same_pem(a: &str, b: &str) -> bool {
    let flat = |s: &str| s.split_whitespace().collect::<String>();
    flat(a) == flat(b)
}

/// fabrikam's Prosody with a self-signed certificate for its domain (the
/// file its `certificates` directory holds for it, replaced in place) and
/// `s2s_secure_auth = false`, as a server in the wild that authenticates
/// by dialback is set up, for as long as this lives; the configuration is
/// reloaded and `mod_s2s` and `mod_tls` reloaded so both take effect, and
/// everything is put back on drop.
struct ProsodySelfSigned<'a> {
    partner: &'a Partner,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    original: (Vec<u8>, Vec<u8>, String),
    /// The self-signed certificate (PEM).
    pem: String,
}

const PROSODY_SECURE_AUTH: &str = "\ns2s_secure_auth = true\n";

impl<'a> ProsodySelfSigned<'a> {
    fn new(p: &'a Partner) -> ProsodySelfSigned<'a> {
        let certs = p
            .config
            .parent()
            .expect("the config's directory")
            .join("certs");
        let cert = certs.join(format!("{}.crt", p.domain));
        let key = certs.join(format!("{}.key", p.domain));
        let config = std::fs::read_to_string(&p.config).expect("prosody.cfg.lua");
        assert!(
            config.contains(PROSODY_SECURE_AUTH),
            "{}: its configuration no longer sets s2s_secure_auth = true",
            p.domain
        );
        let original = (
            std::fs::read(&cert).expect("partner certificate"),
            std::fs::read(&key).expect("partner key"),
            config.clone(),
        );
        let (pem, key_pem) = self_signed(p);
        // Written in place: the files keep their owner and mode.
        std::fs::write(&cert, &pem).expect("self-signed certificate");
        std::fs::write(&key, key_pem).expect("self-signed key");
        std::fs::write(
            &p.config,
            config.replacen(PROSODY_SECURE_AUTH, "\ns2s_secure_auth = false\n", 1),
        )
        .expect("prosody.cfg.lua without secure auth");
        let on = ProsodySelfSigned {
            partner: p,
            cert,
            key,
            original,
            pem,
        };
        Self::reload(p);
        assert!(
            same_pem(&presented_certificate(p), &on.pem),
            "{}: its server does not present the self-signed certificate",
            p.domain
        );
        on
    }

    /// The configuration and certificates read again, and the modules
    /// that hold them reloaded; the S2S streams with us closed.
    fn reload(p: &Partner) {
        for lua in [
            "config:reload()".to_string(),
            "module:reload('s2s')".to_string(),
            format!("module:reload('tls', {})", lua_str(&p.domain)),
        ] {
            let said = shell(p, &lua);
            assert!(said.contains("OK"), "{}: `{lua}`: {said}", p.domain);
        }
        shell_quiet(p, "s2s:closeall('contoso.example')");
    }
}

impl Drop for ProsodySelfSigned<'_> {
    fn drop(&mut self) {
        let p = self.partner;
        let (cert, key, config) = &self.original;
        let _ = std::fs::write(&self.cert, cert);
        let _ = std::fs::write(&self.key, key);
        let _ = std::fs::write(&p.config, config);
        for lua in [
            "config:reload()".to_string(),
            "module:reload('s2s')".to_string(),
            format!("module:reload('tls', {})", lua_str(&p.domain)),
            "s2s:closeall('contoso.example')".to_string(),
        ] {
            shell_quiet(p, &lua);
        }
    }
}

/// litware's ejabberd with a self-signed certificate for its domain for as
/// long as this lives: the files its `certfiles` name are replaced in
/// place (ejabberd keeps a certificate it loaded from a file no longer
/// named) and `ejabberdctl reload_config` loads them; put back on drop.
struct EjabberdSelfSigned<'a> {
    partner: &'a Partner,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    original: (Vec<u8>, Vec<u8>),
    pem: String,
}

impl<'a> EjabberdSelfSigned<'a> {
    fn new(p: &'a Partner) -> EjabberdSelfSigned<'a> {
        let etc = p.config.parent().expect("the config's directory");
        let config = std::fs::read_to_string(&p.config).expect("ejabberd.yml");
        let (cert, key) = (
            etc.join(format!("{}.crt", p.domain)),
            etc.join(format!("{}.key", p.domain)),
        );
        for file in ["crt", "key"] {
            let named = format!("  - /etc/ejabberd/{}.{file}\n", p.domain);
            assert!(
                config.contains(&named),
                "{}: ejabberd.yml lacks `{named}`",
                p.domain
            );
        }
        let original = (
            std::fs::read(&cert).expect("partner certificate"),
            std::fs::read(&key).expect("partner key"),
        );
        let (pem, key_pem) = self_signed(p);
        std::fs::write(&cert, &pem).expect("self-signed certificate");
        std::fs::write(&key, key_pem).expect("self-signed key");
        let on = EjabberdSelfSigned {
            partner: p,
            cert,
            key,
            original,
            pem,
        };
        for args in [["reload_config"], ["stop_s2s_connections"]] {
            let out = p
                .command("ejabberdctl")
                .args(args)
                .output()
                .expect("ejabberdctl");
            assert!(
                out.status.success(),
                "{}: ejabberdctl {args:?}: {}{}",
                p.domain,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            same_pem(&presented_certificate(p), &on.pem),
            "{}: its server does not present the self-signed certificate",
            p.domain
        );
        on
    }
}

impl Drop for EjabberdSelfSigned<'_> {
    fn drop(&mut self) {
        let p = self.partner;
        let _ = std::fs::write(&self.cert, &self.original.0);
        let _ = std::fs::write(&self.key, &self.original.1);
        for args in [["reload_config"], ["stop_s2s_connections"]] {
            let _ = p.command("ejabberdctl").args(args).output();
        }
    }
}

/// Every edge gateway's log lines from `from` on (per edge, as returned by
/// [`edge_log_sizes`]).
fn edge_log_since(lab: &Lab, from: &[usize]) -> Vec<String> {
    lab.hosts_with(Role::Edge)
        .zip(from.iter().copied().chain(std::iter::repeat(0)))
        .flat_map(|(h, start)| {
            let text = std::fs::read_to_string(edge_log(lab, &h.name)).unwrap_or_default();
            let start = start.min(text.len());
            text[start..]
                .lines()
                .map(|l| format!("{}: {l}", h.name))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every edge gateway's log size now.
fn edge_log_sizes(lab: &Lab) -> Vec<usize> {
    lab.hosts_with(Role::Edge)
        .map(|h| {
            std::fs::metadata(edge_log(lab, &h.name))
                .map(|m| m.len() as usize)
                .unwrap_or(0)
        })
        .collect()
}

fn edge_log(lab: &Lab, host: &str) -> std::path::PathBuf {
    lab.dir
        .join("hosts")
        .join(host)
        .join("fs/var-lib-xfed/log/xfed-gateway.log")
}

/// Waits (bounded) until an edge's log, from `from` on, has a line that
/// `pred` accepts; returns it.
fn wait_edge_log(lab: &Lab, from: &[usize], what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = edge_log_since(lab, from);
        if let Some(l) = lines.iter().find(|l| pred(l)) {
            return l.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no edge logged {what} in 30 s; they logged:\n{}",
            lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// playbooks/lab.yaml with fabrikam by dialback and the secret from a
/// file beside the spec.
fn dialback_spec(lab: &Lab) -> TestSpec {
    dialback_spec_for(lab, "fabrikam.example")
}

/// playbooks/lab.yaml with the partner `domain` by dialback and the
/// secret from a file beside the spec.
fn dialback_spec_for(lab: &Lab, domain: &str) -> TestSpec {
    auth_spec_for(lab, domain, "dialback")
}

/// playbooks/lab.yaml with `auth` for the partner `domain` and the
/// dialback secret from a file beside the spec.
fn auth_spec_for(lab: &Lab, domain: &str, auth: &'static str) -> TestSpec {
    let domain = domain.to_string();
    lab_spec_with(lab, move |text, dir| {
        std::fs::write(dir.join("dialback.secret"), format!("{SECRET}\n")).expect("secret");
        let partner = format!(
            "  - domain: {domain}\n    kind: federated\n    tls: required\n    auth: external\n"
        );
        let gateway = "gateway:\n  service_manager: direct\n";
        assert!(
            text.contains(&partner) && text.contains(gateway),
            "playbooks/lab.yaml changed"
        );
        text.replacen(
            &partner,
            &partner.replace("auth: external", &format!("auth: {auth}")),
            1,
        )
        .replacen(
            gateway,
            &format!("{gateway}  dialback:\n    secret: \"{{{{ file('dialback.secret') }}}}\"\n"),
            1,
        )
    })
}

/// Every edge's `/status` relay streams: (edge, direction, peer, auth).
fn streams(lab: &Lab) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for h in lab.hosts_with(Role::Edge) {
        let text = gateway_admin(lab, h, "/status");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        for s in v["relay"]["inbound"].as_array().into_iter().flatten() {
            out.push((
                h.fqdn.clone(),
                "inbound".into(),
                s["domain"].as_str().unwrap_or_default().into(),
                s["auth"].as_str().unwrap_or_default().into(),
            ));
        }
        for s in v["relay"]["outbound"].as_array().into_iter().flatten() {
            let to = s["pair"]
                .as_str()
                .and_then(|p| p.split_once("->"))
                .map(|(_, to)| to.to_string())
                .unwrap_or_default();
            out.push((
                h.fqdn.clone(),
                "outbound".into(),
                to,
                s["auth"].as_str().unwrap_or_default().into(),
            ));
        }
    }
    out
}

fn wait_stream(lab: &Lab, direction: &str, peer: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = streams(lab);
        if let Some(s) = all.iter().find(|s| s.1 == direction && s.2 == peer) {
            return s.3.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {direction} stream with {peer} in /status: {all:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (bounded) until no edge's `/status` lists a stream with `peer`.
fn wait_no_stream(lab: &Lab, peer: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = streams(lab);
        if !all.iter().any(|s| s.2 == peer) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "streams with {peer} still in /status after 30 s: {all:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many `db:verify` the edges answered `valid` with their current
/// secret, from their logs.
fn verify_answers(lab: &Lab) -> usize {
    lab.hosts_with(Role::Edge)
        .map(|h| {
            let log = lab
                .dir
                .join("hosts")
                .join(&h.name)
                .join("fs/var-lib-xfed/log/xfed-gateway.log");
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .filter(|l| {
                    l.contains("event=dialback_verify_answered")
                        && l.contains("result=valid")
                        && l.contains("secret=current")
                })
                .count()
        })
        .sum()
}

/// Opens a stream from `partner`'s network to the gateway on `edge` (TLS
/// by STARTTLS, as a partner's server does, with no client certificate),
/// sends `xml` after the stream header claiming `partner`'s domain, and
/// returns what the gateway said once `done` holds or the stream ended;
/// bounded by 15 s.
fn exchange(partner: &Partner, edge: &str, xml: &str, done: impl Fn(&str) -> bool) -> String {
    use std::io::{Read, Write};
    let mut child = partner
        .command("openssl")
        .args(["s_client", "-quiet", "-starttls", "xmpp-server"])
        .args(["-xmpphost", "contoso.example", "-connect"])
        .arg(format!("{edge}:5269"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = child.stdin.take().expect("stdin");
    write!(
        stdin,
        "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
         xmlns:db='jabber:server:dialback' from='{}' to='contoso.example' version='1.0'>{xml}",
        partner.domain
    )
    .and_then(|()| stdin.flush())
    .expect("write to s_client");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = String::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(bytes) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{edge}: no answer in 15 s; the gateway said:\n{seen}");
            }
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    seen
}

/// Asks the gateway on `edge`, from fabrikam's network as fabrikam's
/// server does when it checks a key it was given, whether `key` is one
/// of ours for fabrikam's stream `id`: the `type` of its `db:verify`
/// answer (`valid` or `invalid`).
fn db_verify(fabrikam: &Partner, edge: &str, id: &str, key: &str) -> String {
    let answer_tag = |seen: &str| {
        let at = seen.find("<db:verify ")?;
        let end = seen[at..].find('>')?;
        Some(seen[at..at + end].to_string())
    };
    let seen = exchange(
        fabrikam,
        edge,
        &format!(
            "<db:verify from='fabrikam.example' to='contoso.example' id='{id}'>{key}</db:verify>"
        ),
        |seen| answer_tag(seen).is_some(),
    );
    let tag = answer_tag(&seen).unwrap_or_else(|| panic!("{edge}: no db:verify answer:\n{seen}"));
    ["valid", "invalid"]
        .into_iter()
        .find(|t| tag.contains(&format!("type='{t}'")))
        .unwrap_or_else(|| panic!("{edge}: answer without a type: {tag}"))
        .to_string()
}

/// A key the way an edge makes it with `secret` for fabrikam's stream `id`.
fn key_with(secret: &str, id: &str) -> String {
    xfed_gateway::dialback::Secrets::from_bytes(secret.as_bytes(), None).issue(
        &xfed_gateway::dialback::DialbackKey {
            receiving: "fabrikam.example",
            originating: "contoso.example",
            stream_id: id,
        },
    )
}

/// Plans and applies `spec` after a change of the dialback secrets: the
/// plan reloads the gateways and never restarts them, no secret is in
/// xfed's output, and every gateway keeps its PID.
fn apply_as_reload(lab: &Lab, spec: &TestSpec, what: &str) {
    let pids: Vec<String> = lab
        .hosts_with(Role::Edge)
        .map(|h| gateway_pid(lab, h))
        .collect();
    let plan = xfed(lab, &["plan", spec.path()]);
    assert!(
        plan.stdout
            .contains("service:xfed-gateway will be updated in-place (reload)")
            && !plan.stdout.contains("(restart)"),
        "{what}: {plan:?}"
    );
    let applied = apply_ok(lab, spec);
    for run in [&plan, &applied] {
        for secret in [SECRET, ROTATED] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{what}: a secret in xfed's output:\n{run:?}"
            );
        }
    }
    let after: Vec<String> = lab
        .hosts_with(Role::Edge)
        .map(|h| gateway_pid(lab, h))
        .collect();
    assert_eq!(pids, after, "{what} restarted a gateway");
    assert_in_sync(lab, spec);
}

/// A body no earlier run can have left in a store.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{tag} {nanos}")
}

#[test]
fn fabrikam_federates_by_dialback_through_the_gateways_both_ways() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let fabrikam = lab.partner("fabrikam");
    let _dialback = DialbackOn::new(fabrikam);

    let spec = dialback_spec(lab);
    let plan = xfed(lab, &["plan", spec.path()]);
    assert!(
        plan.stdout.contains("auth: (none) → dialback"),
        "the plan shows the partner's auth:\n{plan:?}"
    );
    let applied = apply_ok(lab, &spec);
    assert_in_sync(lab, &spec);
    for run in [&plan, &applied] {
        assert!(
            !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
            "the secret in xfed's output:\n{run:?}"
        );
    }
    assert!(
        plan.stdout.contains("(sensitive) content changes"),
        "{plan:?}"
    );
    // Every gateway has the organisation's one secret, readable by root and
    // the gateway's group only.
    for h in lab.hosts_with(Role::Edge) {
        let seen = lab.ssh_ok(
            h,
            "stat -c '%a %U %G' /etc/xfed/dialback.secret && cat /etc/xfed/dialback.secret",
        );
        assert_eq!(
            seen,
            format!("640 root xfed-gateway\n{SECRET}\n"),
            "{}",
            h.fqdn
        );
    }

    // fabrikam → alice: fabrikam's server authenticates its stream by
    // dialback (the gateway verifies its key with fabrikam's own server).
    let internal = InternalServer::of(lab);
    internal.register("alice");
    crosses_both_ways_by_dialback(lab, &internal, fabrikam, "carol", "fabrikam by dialback");

    // What the operator sees: verify names each partner stream and how.
    let verify = xfed(lab, &["verify", spec.path()]);
    assert!(
        verify.stdout.contains("fabrikam.example in by dialback"),
        "{verify:?}"
    );
    assert!(!verify.stdout.contains(SECRET) && !verify.stderr.contains(SECRET));
    // doctor: the gateways' dialback results, none failed.
    let doctor = xfed(lab, &["doctor", spec.path()]);
    let lines: Vec<&str> = doctor
        .stdout
        .lines()
        .filter(|l| l.contains(" dialback "))
        .collect();
    assert_eq!(lines.len(), 2, "one dialback line per edge:\n{doctor:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("PASS") && l.ends_with("no failure"))
            && lines.iter().any(|l| !l.contains("0 partner keys verified")),
        "{doctor:?}"
    );

    // A new secret value is a reload: the gateways keep their PIDs and
    // make and check keys with the new one from then on (fabrikam checks
    // the key of a fresh stream against whichever edge it reaches).
    let pids: Vec<String> = lab
        .hosts_with(Role::Edge)
        .map(|h| gateway_pid(lab, h))
        .collect();
    std::fs::write(
        spec.dir.path().join("dialback.secret"),
        format!("{ROTATED}\n"),
    )
    .expect("new secret");
    let plan = xfed(lab, &["plan", spec.path()]);
    assert!(
        plan.stdout
            .contains("service:xfed-gateway will be updated in-place (reload)")
            && !plan.stdout.contains("(restart)"),
        "{plan:?}"
    );
    let applied = apply_ok(lab, &spec);
    for run in [&plan, &applied] {
        for secret in [SECRET, ROTATED] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "a secret in xfed's output:\n{run:?}"
            );
        }
    }
    let after: Vec<String> = lab
        .hosts_with(Role::Edge)
        .map(|h| gateway_pid(lab, h))
        .collect();
    assert_eq!(pids, after, "a new dialback secret restarted a gateway");
    for h in lab.hosts_with(Role::Edge) {
        let seen = lab.ssh_ok(h, "cat /etc/xfed/dialback.secret");
        assert_eq!(seen, format!("{ROTATED}\n"), "{}", h.fqdn);
    }
    // fabrikam closes its streams with us; the gateway holds off a
    // partner whose stream just ended for a few seconds (bouncing what it
    // is given meanwhile), so a message is sent again until one arrives.
    let answers_before = verify_answers(lab);
    shell_quiet(fabrikam, "s2s:closeall('contoso.example')");
    let deadline = Instant::now() + Duration::from_secs(60);
    'delivered: loop {
        let again = unique("dialback to carol after the new secret");
        internal.send("alice@contoso.example", "carol@fabrikam.example", &again);
        let tried = Instant::now();
        while tried.elapsed() < Duration::from_secs(3) {
            if fabrikam.received("carol").iter().any(|m| m.body == again) {
                break 'delivered;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            Instant::now() < deadline,
            "nothing reached carol after the new secret; fabrikam's log ends:\n{}",
            fabrikam.log_tail(20)
        );
    }
    assert_eq!(wait_stream(lab, "outbound", "fabrikam.example"), "dialback");
    assert!(
        verify_answers(lab) > answers_before,
        "no edge answered fabrikam's check of a key after the new secret"
    );

    // Rotation without a flag day: naming the secret the new one replaced
    // as `previous_secret` is a reload as well; while it is named, every
    // edge still verifies a key made with it (one a partner may hold from
    // before the change), and once it is removed, no edge does.
    std::fs::write(
        spec.dir.path().join("dialback.previous"),
        format!("{SECRET}\n"),
    )
    .expect("previous secret");
    let text = std::fs::read_to_string(&spec.path).expect("spec");
    let secret_line = "    secret: \"{{ file('dialback.secret') }}\"\n";
    let previous_line = "    previous_secret: \"{{ file('dialback.previous') }}\"\n";
    assert!(text.contains(secret_line), "{text}");
    std::fs::write(
        &spec.path,
        text.replacen(secret_line, &format!("{secret_line}{previous_line}"), 1),
    )
    .expect("spec with the previous secret");
    apply_as_reload(lab, &spec, "naming the previous secret");
    let edges: Vec<String> = lab
        .hosts_with(Role::Edge)
        .map(|h| h.external.clone().expect("an edge's external address"))
        .collect();
    for (n, edge) in edges.iter().enumerate() {
        let id = format!("rotation-old-{n}");
        assert_eq!(
            db_verify(fabrikam, edge, &id, &key_with(SECRET, &id)),
            "valid",
            "{edge}: a key of the previous secret while it is named"
        );
        let id = format!("rotation-new-{n}");
        assert_eq!(
            db_verify(fabrikam, edge, &id, &key_with(ROTATED, &id)),
            "valid",
            "{edge}: a key of the current secret"
        );
    }

    std::fs::write(&spec.path, text).expect("spec without the previous secret");
    apply_as_reload(lab, &spec, "removing the previous secret");
    for h in lab.hosts_with(Role::Edge) {
        let gone = lab.ssh_ok(
            h,
            "test -e /etc/xfed/dialback.previous && echo present || echo gone",
        );
        assert_eq!(gone.trim(), "gone", "{}", h.fqdn);
    }
    for (n, edge) in edges.iter().enumerate() {
        let id = format!("rotation-over-{n}");
        assert_eq!(
            db_verify(fabrikam, edge, &id, &key_with(SECRET, &id)),
            "invalid",
            "{edge}: a key of the previous secret once it is removed"
        );
        assert_eq!(
            db_verify(fabrikam, edge, &id, &key_with(ROTATED, &id)),
            "valid",
            "{edge}: a key of the current secret"
        );
    }
}

#[test]
fn litware_federates_by_dialback_through_the_gateways_both_ways() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let litware = lab.partner("litware");
    let _dialback = EjabberdDialbackOn::new(litware);
    let log_start = litware.log_text().len();

    let spec = dialback_spec_for(lab, "litware.example");
    let plan = xfed(lab, &["plan", spec.path()]);
    assert!(
        plan.stdout.contains("auth: (none) → dialback"),
        "the plan shows the partner's auth:\n{plan:?}"
    );
    apply_ok(lab, &spec);
    assert_in_sync(lab, &spec);

    // litware → alice: the gateway offers litware no EXTERNAL, ejabberd
    // falls back to dialback, and the gateway verifies its key with
    // litware's own server.
    let internal = InternalServer::of(lab);
    internal.register("alice");
    crosses_both_ways_by_dialback(lab, &internal, litware, "dave", "litware by dialback");

    // ejabberd's own account of both streams, from this run's part of
    // its log: each authenticated by dialback, none by certificate.
    let log = wait_log_lines(
        litware,
        log_start,
        &[
            "Accepted outbound s2s dialback authentication litware.example -> contoso.example",
            "Accepted inbound s2s dialback authentication contoso.example -> litware.example",
        ],
    );
    let log = log.as_str();
    assert!(
        !log.contains("Accepted inbound s2s EXTERNAL authentication contoso.example")
            && !log.contains("Accepted outbound s2s EXTERNAL authentication litware.example"),
        "a stream with litware was authenticated by certificate:\n{log}"
    );

    // Dialback not allowed (the lab's own `auth: external` for litware):
    // a stream that authenticates by dialback is refused, and nothing it
    // carries reaches the internal server.
    let external = lab_spec(lab, |text| text);
    apply_ok(lab, &external);
    let forged = unique("dialback not allowed");
    for h in lab.hosts_with(Role::Edge) {
        let edge = h.external.clone().expect("an edge's external address");
        let said = exchange(
            litware,
            &edge,
            &format!(
                "<db:result from='litware.example' to='contoso.example'>{}</db:result>\
                 <message from='dave@litware.example' to='alice@contoso.example' type='chat'>\
                 <body>{forged}</body></message>",
                key_with(SECRET, "any")
            ),
            |seen| seen.contains("</stream:stream>"),
        );
        assert!(
            said.contains("<not-authorized") && !said.contains("type='valid'"),
            "{edge}: {said}"
        );
    }
    assert!(
        !internal.offline("alice").contains(&forged),
        "a message of a refused dialback stream reached alice"
    );
}

#[test]
fn fabrikam_with_a_self_signed_certificate_federates_by_dialback_only_when_allowed() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let fabrikam = lab.partner("fabrikam");
    // Dropped in reverse: dialback off, then its own certificate back.
    let _self_signed = ProsodySelfSigned::new(fabrikam);
    let _dialback = DialbackOn::new(fabrikam);

    // Dialback allowed: messages cross both ways, each stream
    // authenticated by dialback (the gateway cannot offer EXTERNAL for a
    // certificate outside its partner trust, and reaches fabrikam over TLS
    // although its certificate is its own).
    let spec = dialback_spec(lab);
    apply_ok(lab, &spec);
    assert_in_sync(lab, &spec);
    let internal = InternalServer::of(lab);
    internal.register("alice");
    crosses_both_ways_by_dialback(lab, &internal, fabrikam, "carol", "self-signed fabrikam");
    // fabrikam's own account: its streams with us encrypted, none by
    // SASL, its own by dialback (Prosody marks the dialback of the
    // stream it initiated `Completed`).
    let sessions = shell(fabrikam, "s2s:show()");
    eprintln!("fabrikam's S2S sessions:\n{sessions}");
    let ours: Vec<&str> = sessions
        .lines()
        .filter(|l| l.contains("contoso.example"))
        .collect();
    assert!(
        ours.len() >= 2
            && ours
                .iter()
                .all(|l| l.contains("TLS") && !l.contains("Succeeded"))
            && ours.iter().any(|l| l.contains("Completed")),
        "{sessions}"
    );

    // `auth: either` (EXTERNAL preferred, dialback allowed): fabrikam's
    // certificate is in no trust of ours, so the gateway offers it no
    // EXTERNAL and its fresh stream is authenticated by dialback.
    let either = auth_spec_for(lab, "fabrikam.example", "either");
    apply_ok(lab, &either);
    assert_in_sync(lab, &either);
    shell_quiet(fabrikam, "s2s:closeall('contoso.example')");
    wait_no_stream(lab, "fabrikam.example");
    let to_alice = unique("self-signed fabrikam to alice, auth either");
    fabrikam.send("carol", "alice@contoso.example", &to_alice);
    let stored = internal.wait_offline("alice", &to_alice);
    assert!(stored.contains("carol@fabrikam.example"), "{stored}");
    assert_eq!(wait_stream(lab, "inbound", "fabrikam.example"), "dialback");

    // Dialback not allowed (the lab's own `auth: external` for fabrikam):
    // fabrikam's server tries again on a fresh stream, the gateway refuses
    // its dialback with `not-authorized`, and alice gets nothing.
    let external = lab_spec(lab, |text| text);
    apply_ok(lab, &external);
    shell_quiet(fabrikam, "s2s:closeall('contoso.example')");
    wait_no_stream(lab, "fabrikam.example");
    refused_at_the_edge(
        lab,
        &internal,
        fabrikam,
        "carol",
        "fabrikam.example",
        // The gateway closed fabrikam's stream, not-authorized.
        |l| l.contains("Session closed by remote with error: not-authorized"),
    );
}

#[test]
fn litware_with_a_self_signed_certificate_federates_by_dialback_only_when_allowed() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let litware = lab.partner("litware");
    let _self_signed = EjabberdSelfSigned::new(litware);
    let dialback = EjabberdDialbackOn::new(litware);
    let log_start = litware.log_text().len();

    // Dialback allowed: both ways, by dialback.
    let spec = dialback_spec_for(lab, "litware.example");
    apply_ok(lab, &spec);
    assert_in_sync(lab, &spec);
    let internal = InternalServer::of(lab);
    internal.register("alice");
    crosses_both_ways_by_dialback(lab, &internal, litware, "dave", "self-signed litware");
    wait_log_lines(
        litware,
        log_start,
        &[
            "Accepted outbound s2s dialback authentication litware.example -> contoso.example",
            "Accepted inbound s2s dialback authentication contoso.example -> litware.example",
        ],
    );

    // `auth: either`: litware's certificate is in no trust of ours, so
    // the gateway offers it no EXTERNAL and ejabberd's fresh stream is
    // authenticated by dialback.
    let either = auth_spec_for(lab, "litware.example", "either");
    apply_ok(lab, &either);
    assert_in_sync(lab, &either);
    dialback.ctl(&["stop_s2s_connections"]);
    wait_no_stream(lab, "litware.example");
    let log_start = litware.log_text().len();
    let to_alice = unique("self-signed litware to alice, auth either");
    litware.send("dave", "alice@contoso.example", &to_alice);
    let stored = internal.wait_offline("alice", &to_alice);
    assert!(stored.contains("dave@litware.example"), "{stored}");
    assert_eq!(wait_stream(lab, "inbound", "litware.example"), "dialback");
    let log = litware.log_text();
    let log = &log[log_start.min(log.len())..];
    assert!(
        log.contains(
            "Accepted outbound s2s dialback authentication litware.example -> contoso.example"
        ),
        "{log}"
    );

    // Dialback not allowed: ejabberd's own new stream is refused (it
    // tries dialback although the gateway offers none), its log says the
    // peer closed it `not-authorized`, and nothing it carries reaches
    // alice. (ejabberd then holds off contoso.example for minutes; the
    // drops below stop its S2S connections, which ends that.)
    let external = lab_spec(lab, |text| text);
    apply_ok(lab, &external);
    dialback.ctl(&["stop_s2s_connections"]);
    wait_no_stream(lab, "litware.example");
    refused_at_the_edge(
        lab,
        &internal,
        litware,
        "dave",
        "litware.example",
        // ejabberd's account of its failed stream: the peer closed it.
        |l| {
            l.contains(
                "Failed to establish outbound s2s connection litware.example -> contoso.example",
            ) && l.contains("Stream closed by peer")
                && l.contains("(not-authorized)")
        },
    );
}

/// With `auth: external` for `domain` (the lab's own spec), a message from
/// the partner's `local` opens a fresh stream that wants dialback: the
/// gateways refuse it (their log names the rule), the partner's own log
/// says so (`partner_says` finds the line, bounded 30 s), no inbound
/// stream with it is left, and nothing it carried reaches alice.
fn refused_at_the_edge(
    lab: &Lab,
    internal: &InternalServer,
    partner: &Partner,
    local: &str,
    domain: &str,
    partner_says: impl Fn(&str) -> bool,
) {
    let since = edge_log_sizes(lab);
    let log_start = partner.log_text().len();
    let refused = unique(&format!("self-signed {domain}, dialback not allowed"));
    partner.send(local, "alice@contoso.example", &refused);
    let line = wait_edge_log(
        lab,
        &since,
        &format!("a refused dialback from {domain}"),
        |l| l.contains("event=dialback_refused") && l.contains(&format!("from={domain}")),
    );
    assert!(line.contains("auth = \\\"external\\\""), "{line}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = partner.log_text();
        let log = &log[log_start.min(log.len())..];
        if log.lines().any(&partner_says) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{domain}'s log never says it was refused:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !streams(lab)
            .iter()
            .any(|s| s.1 == "inbound" && s.2 == domain),
        "an inbound {domain} stream after the refusal: {:?}",
        streams(lab)
    );
    assert!(
        !internal.offline("alice").contains(&refused),
        "a message of a refused dialback stream reached alice"
    );
}

/// litware's log from `start` on, once it holds every one of `lines`:
/// ejabberd writes its account of a stream a moment after the stanza it
/// carried is delivered, so the log is read until then (bounded, 10 s).
fn wait_log_lines(litware: &Partner, start: usize, lines: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = litware.log_text();
        let log = log[start.min(log.len())..].to_string();
        let missing: Vec<&&str> = lines.iter().filter(|l| !log.contains(**l)).collect();
        if missing.is_empty() {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "litware's log lacks {missing:?} after 10 s:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `user@<partner>` → alice and alice → `user`, each found in the
/// receiving server's own store, and both streams with the partner
/// authenticated by dialback: inbound the gateway verified the partner's
/// key with the partner's own server; outbound the partner checked ours
/// with whichever edge its SRV lookup of contoso.example gave.
fn crosses_both_ways_by_dialback(
    lab: &Lab,
    internal: &InternalServer,
    partner: &Partner,
    user: &str,
    tag: &str,
) {
    let jid = format!("{user}@{}", partner.domain);
    let to_alice = unique(&format!("{tag} to alice"));
    partner.send(user, "alice@contoso.example", &to_alice);
    let stored = internal.wait_offline("alice", &to_alice);
    assert!(stored.contains(&jid), "{stored}");
    assert_eq!(wait_stream(lab, "inbound", &partner.domain), "dialback");

    let to_user = unique(&format!("alice to {tag}"));
    internal.send("alice@contoso.example", &jid, &to_user);
    let got = partner.wait_received(user, &to_user);
    assert!(got.from.starts_with("alice@contoso.example"), "{got:?}");
    assert_eq!(wait_stream(lab, "outbound", &partner.domain), "dialback");
}

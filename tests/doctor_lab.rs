//! `xfed doctor` and `xfed graph` against the real lab, through the real
//! `xfed` binary: a deployed lab passes every check; a gateway stopped by
//! hand is named, with its log and the fix, and `xfed apply` repairs it;
//! unknown and changed host keys are reported with their fingerprint
//! while the other hosts are still checked; the plan is drawn as DOT and
//! as a real SVG. The world is checked with tools we did not write (`ss`
//! over ssh, `openssl s_client -starttls xmpp-server`, `ssh-keygen`).
//!
//! Run inside the lab: `tests/lab/lab exec -- cargo test --test doctor_lab`.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::lab::{Host, Lab, Role};
use common::xfed::{Run, apply_ok, lab_spec_with as spec, path_str, xfed};

const PID_FILE: &str = "/var/lib/xfed/run/xfed-gateway.pid";

/// `xfed doctor --format json`: the exit code and the findings.
fn doctor_json(lab: &Lab, spec: &Path) -> (Run, Vec<serde_json::Value>) {
    let r = xfed(lab, &["doctor", "--format", "json", "-q", path_str(spec)]);
    let findings: Vec<serde_json::Value> = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("doctor's JSON does not parse ({e}): {r:?}"));
    for f in &findings {
        for key in ["check", "host", "status", "seen", "fix"] {
            assert!(f.get(key).is_some(), "finding without `{key}`: {f}");
        }
    }
    (r, findings)
}

/// Every check doctor has, each seen at least once.
const CHECKS: [&str; 9] = [
    "ssh",
    "gateway binary",
    "gateway service",
    "gateway privilege",
    "listener",
    "xmpp route",
    "topology",
    "certificate",
    "dns",
];

fn assert_all_pass(lab: &Lab, spec: &Path) {
    let human = xfed(lab, &["doctor", path_str(spec)]);
    assert_eq!(human.code, 0, "{human:?}");
    let lines: Vec<&str> = human.stdout.lines().take_while(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "{human:?}");
    // A freshly applied lab has carried no message yet: the route check
    // may warn that it carries nothing (its only warning); all else passes.
    let idle_route =
        |l: &str| l.starts_with("WARN  xmpp route") && l.contains("the route carries nothing now");
    for l in &lines {
        assert!(
            l.starts_with("PASS  ") || idle_route(l),
            "every line passes: {l}\n{human:?}"
        );
    }
    for check in CHECKS {
        assert!(
            lines.iter().any(|l| l[6..].starts_with(check)),
            "no `{check}` line: {human:?}"
        );
    }
    assert!(human.stdout.contains(" failed, 0 skipped."), "{human:?}");
    let (r, findings) = doctor_json(lab, spec);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(findings.len(), lines.len(), "{r:?}");
    for f in &findings {
        let idle = f["check"] == "xmpp route"
            && f["seen"]
                .as_str()
                .is_some_and(|s| s.contains("the route carries nothing now"));
        assert!(
            f["status"] == "pass" || (idle && f["status"] == "warn"),
            "{f}"
        );
    }
}

/// The start of doctor's line for `check` on `host`, as it prints it
/// (status, check and host in columns; the lab's longest host name sets
/// the host column, so only the check column is padded here, to its
/// longest name, `gateway privilege`).
fn row(status: &str, check: &str, host: &str) -> String {
    format!("{status:<4}  {check:<17}  {host}")
}

fn edges(lab: &Lab) -> Vec<&Host> {
    lab.hosts_with(Role::Edge).collect()
}

/// `ss -ltnH` on the host, over ssh.
fn sockets(lab: &Lab, h: &Host) -> String {
    lab.ssh_ok(h, "ss -ltnH")
}

/// `openssl s_client -starttls xmpp-server` to an edge's external listener,
/// from the controller namespace (where a partner's server would stand).
fn openssl_starttls(lab: &Lab, h: &Host) -> Output {
    let ext = h
        .external
        .as_deref()
        .expect("an edge has an external address");
    lab.command("openssl")
        .args([
            "s_client",
            "-brief",
            "-starttls",
            "xmpp-server",
            "-xmpphost",
            "contoso.example",
            "-connect",
            &format!("{ext}:5269"),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl")
}

fn assert_listening(lab: &Lab, h: &Host) {
    let ext = h.external.as_deref().expect("external address");
    let ss = sockets(lab, h);
    assert!(ss.contains(&format!("{ext}:5269")), "{}: {ss}", h.name);
    assert!(
        ss.contains(&format!("{}:23456", h.internal)),
        "{}: {ss}",
        h.name
    );
    let tls = openssl_starttls(lab, h);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&tls.stdout),
        String::from_utf8_lossy(&tls.stderr)
    );
    assert!(
        tls.status.success(),
        "openssl s_client to {} ({}): {text}",
        h.name,
        tls.status
    );
    assert!(text.contains("CONNECTION ESTABLISHED"), "{text}");
    assert!(text.contains("CN = contoso.example"), "{text}");
}

#[test]
fn doctor_passes_on_the_deployed_lab_names_a_stopped_gateway_and_passes_again_after_apply() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let s = spec(lab, |t, _| t);
    apply_ok(lab, &s);
    for h in edges(lab) {
        assert_listening(lab, h);
    }
    assert_all_pass(lab, &s.path);

    // Stop edge1's gateway by hand, as a crash would.
    let edge1 = lab.host("edge1");
    let pid = lab
        .ssh_ok(edge1, &format!("cat {PID_FILE}"))
        .trim()
        .to_string();
    assert!(pid.parse::<u32>().is_ok(), "pid file holds `{pid}`");
    lab.ssh_ok(
        edge1,
        &format!(
            "kill {pid}; for i in $(seq 1 200); do kill -0 {pid} 2>/dev/null || exit 0; sleep 0.05; done; exit 1"
        ),
    );
    let ext = edge1.external.as_deref().expect("external address");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sockets(lab, edge1).contains(&format!("{ext}:5269")) {
        assert!(Instant::now() < deadline, "5269 still bound after the kill");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!openssl_starttls(lab, edge1).status.success());

    let r = xfed(lab, &["doctor", path_str(&s.path)]);
    assert_eq!(r.code, 1, "{r:?}");
    let service = r
        .stdout
        .lines()
        .find(|l| l.starts_with(&row("FAIL", "gateway service", "edge1.contoso.example")))
        .unwrap_or_else(|| panic!("no failed service line for edge1: {r:?}"));
    assert!(service.contains("not running"), "{service}");
    assert!(service.contains("fix: run `xfed apply`"), "{service}");
    let log: Vec<&str> = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with(&row("FAIL", "gateway service", "edge1")))
        .skip(1)
        .take_while(|l| l.starts_with("      | "))
        .collect();
    assert!(!log.is_empty(), "the gateway's log lines follow: {r:?}");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with(&row("FAIL", "listener", "edge1"))
                && l.contains("edge1.contoso.example")
                && l.contains(&format!("external {ext}:5269"))
                && l.contains("not bound")),
        "{r:?}"
    );
    // edge2 is untouched and still passes.
    assert!(
        r.stdout.lines().any(|l| l.starts_with(&row(
            "PASS",
            "gateway service",
            "edge2.contoso.example"
        ))),
        "{r:?}"
    );
    let (j, findings) = doctor_json(lab, &s.path);
    assert_eq!(j.code, 1, "{j:?}");
    let down = findings
        .iter()
        .find(|f| f["check"] == "gateway service" && f["host"] == "edge1.contoso.example")
        .expect("a service finding for edge1");
    assert_eq!(down["status"], "fail", "{down}");
    assert!(
        down["log"].as_array().is_some_and(|l| !l.is_empty()),
        "{down}"
    );
    // Doctor changed nothing: the gateway is still down.
    assert!(!sockets(lab, edge1).contains(&format!("{ext}:5269")));

    let applied = apply_ok(lab, &s);
    assert!(
        applied.stdout.contains("service:xfed-gateway"),
        "apply starts the gateway again: {applied:?}"
    );
    for h in edges(lab) {
        assert_listening(lab, h);
    }
    assert_all_pass(lab, &s.path);
}

/// `ssh-keygen -lf` of one known_hosts line: `SHA256:…`.
fn fingerprint(line: &str, dir: &Path) -> String {
    let f = dir.join("one_key");
    std::fs::write(&f, format!("{line}\n")).expect("write key");
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&f)
        .output()
        .expect("ssh-keygen");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_string()
}

#[test]
fn unknown_and_changed_host_keys_are_named_and_the_other_hosts_still_checked() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let real = std::fs::read_to_string(&lab.known_hosts).expect("known_hosts");
    let line_of = |h: &Host| {
        real.lines()
            .find(|l| l.starts_with(&format!("{} ", h.internal)))
            .unwrap_or_else(|| panic!("no known_hosts line for {}", h.name))
            .to_string()
    };
    let (fe1, edge1, edge2) = (lab.host("fe1"), lab.host("edge1"), lab.host("edge2"));
    // edge1's entry holds fe1's key (changed), edge2 has none (unknown).
    let fe1_key = line_of(fe1).split_once(' ').expect("a key").1.to_string();
    let known = format!("{}\n{} {fe1_key}\n", line_of(fe1), edge1.internal);
    let s = spec(lab, |t, dir| {
        let kh = dir.join("known_hosts");
        std::fs::write(&kh, &known).expect("write known_hosts");
        t.replace(
            "known_hosts: \"{{ lab }}/keys/known_hosts\"",
            &format!("known_hosts: \"{}\"", kh.display()),
        )
    });
    let kh = s.dir.path().join("known_hosts");
    let text = std::fs::read_to_string(&s.path).expect("spec");
    assert!(
        text.contains(&kh.display().to_string()),
        "playbooks/lab.yaml changed"
    );

    let r = xfed(lab, &["doctor", path_str(&s.path)]);
    assert_eq!(r.code, 1, "{r:?}");
    let line = |status: &str, check: &str, host: &str| -> String {
        let prefix = row(status, check, host);
        r.stdout
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no line `{prefix}`: {r:?}"))
            .to_string()
    };
    let changed = line("FAIL", "ssh", "edge1.contoso.example");
    assert!(changed.contains("HOST KEY MISMATCH"), "{changed}");
    assert!(
        changed.contains(&fingerprint(&line_of(edge1), s.dir.path())),
        "names the key it presented: {changed}"
    );
    assert!(changed.contains("ssh-keygen -R"), "{changed}");
    let unknown = line("FAIL", "ssh", "edge2.contoso.example");
    assert!(
        unknown.contains(&fingerprint(&line_of(edge2), s.dir.path())),
        "{unknown}"
    );
    assert!(unknown.contains("ssh-keyscan"), "{unknown}");
    for check in [
        "gateway binary",
        "gateway service",
        "listener",
        "certificate",
    ] {
        for host in ["edge1.contoso.example", "edge2.contoso.example"] {
            let l = line("SKIP", check, host);
            assert!(l.contains("see `ssh`"), "{l}");
        }
    }
    // The front-end was reached and checked as usual.
    line("PASS", "ssh", "fe1.contoso.example");
    for check in ["xmpp route", "topology"] {
        assert!(
            r.stdout.lines().any(|l| {
                l.get(6..).is_some_and(|rest| {
                    rest.starts_with(&row("", check, "fe1.contoso.example")[6..])
                }) && !l.starts_with("SKIP")
            }),
            "{check} on fe1 is checked: {r:?}"
        );
    }
    // Doctor trusts nothing new: known_hosts is as it was.
    assert_eq!(std::fs::read_to_string(&kh).expect("known_hosts"), known);
}

#[test]
fn graph_draws_the_lab_plan_as_dot_and_as_real_svg() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let s = spec(lab, |t, _| t);
    let r = xfed(lab, &["graph", "-q", path_str(&s.path)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("// xfed graph"), "{r:?}");
    assert!(r.stdout.contains("digraph xfed_plan {"), "{r:?}");
    let stages: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("label=\"stage "))
        .collect();
    assert!(stages[0].starts_with("1: front-end"), "{stages:?}");
    assert!(stages[1].starts_with("2: edge-hq 1/2"), "{stages:?}");
    assert!(stages[2].starts_with("3: edge-hq 2/2"), "{stages:?}");
    assert!(stages.iter().any(|s| s.contains(": dns")), "{stages:?}");
    assert!(
        stages.last().is_some_and(|s| s.contains(": verify")),
        "{stages:?}"
    );
    assert!(
        r.stdout.contains("health gate\\nedge1.contoso.example"),
        "{r:?}"
    );

    assert!(
        Command::new("sh")
            .args(["-c", "command -v dot"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "Graphviz is missing: run tests/lab/install-deps"
    );
    let svg = xfed(lab, &["graph", "--format", "svg", "-q", path_str(&s.path)]);
    assert_eq!(svg.code, 0, "{svg:?}");
    let root = svg
        .stdout
        .find("<svg")
        .unwrap_or_else(|| panic!("no <svg root: {svg:?}"));
    assert!(svg.stdout[..root].starts_with("<?xml"), "{svg:?}");
    assert!(svg.stdout.trim_end().ends_with("</svg>"), "{svg:?}");
    assert!(svg.stdout.contains("stage 1: front&#45;end"), "{svg:?}");
    assert!(svg.stdout.contains("service:xfed&#45;gateway"), "{svg:?}");
}

//! The engine against the real lab, through the real `xfed` binary: plan,
//! apply, drift, stale plans, host keys, the rollout order across pools, a
//! host lost mid-rollout and an apply killed mid-run. The world is checked
//! with tools we did not write (`ssh`, `sha256sum`, `ss`, `curl`).
//!
//! Run inside the lab's controller namespace (tests/run does):
//! `tests/lab/lab exec -- cargo test --test engine_lab`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::lab::{Host, Lab, Role};
use common::xfed::{
    apply_ok, assert_in_sync, gateway_pid, lab_spec, lab_spec_hosts, path_str, reset, xfed,
    xfed_command,
};

/// A spec for this lab, made from playbooks/lab.yaml, written to a temp dir.
fn two_pools(text: String) -> String {
    text.replace(
        "  - name: hq\n    frontend_pool: fe-hq\n    xmpp_route: edge-hq\n",
        "  - name: hq\n    frontend_pool: fe-hq\n    xmpp_route: edge-hq\n  - name: dr\n    frontend_pool: fe-hq\n    xmpp_route: edge-dr\n",
    )
    .replace(
        "      - fqdn: edge2.{{ domain }}\n",
        "  - name: edge-dr\n    site: dr\n    xmpp_federation: true\n    srv: { priority: 20, weight: 100 }\n    servers:\n      - fqdn: edge2.{{ domain }}\n",
    )
    // edge-dr relays to the front-end's server too: it needs its own
    // internal certificate, from the same CA as edge-hq's.
    .replace(
        "  - name: fe-hq-internal\n",
        &format!("{EDGE_DR_INTERNAL}  - name: fe-hq-internal\n"),
    )
}

/// edge-dr's internal certificate, as `two_pools` adds it.
const EDGE_DR_INTERNAL: &str = "  - name: edge-dr-internal\n    pool: edge-dr\n    usage: internal\n    key: { algorithm: ecdsa, bits: 256 }\n    issuer:\n      kind: internal_ca\n      ca_cert: \"{{ lab }}/internal/ca.pem\"\n      ca_key: \"{{ file(lab ~ '/internal/ca.key') }}\"\n";

fn edges(lab: &Lab) -> Vec<&Host> {
    lab.hosts_with(Role::Edge).collect()
}

fn sha256_on(lab: &Lab, h: &Host, path: &str) -> String {
    lab.ssh_ok(h, &format!("sha256sum {path} | cut -d' ' -f1"))
        .trim()
        .to_string()
}

fn local_sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn fresh_lab_plan_apply_then_nothing_to_do() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let s = lab_spec(lab, |t| t);

    let plan = xfed(lab, &["plan", "--detailed-exitcode", s.path()]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout.contains(" to change, 0 to destroy."),
        "{plan:?}"
    );
    assert!(
        plan.stdout
            .contains("+ edge/edge-hq/edge1.contoso.example/file:/etc/xfed/gateway.toml"),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains("#   from "),
        "each change names its spec line: {plan:?}"
    );

    let applied = apply_ok(lab, &s);
    assert!(
        applied.stdout.contains("Apply complete! Resources: "),
        "{applied:?}"
    );

    // DNS, asked with a tool we did not write: one SRV per edge server on
    // 5269, each target resolving to its external address.
    let dig = |q: &[&str]| -> String {
        let out = lab
            .command("dig")
            .args(["+short", "@198.51.100.53"])
            .args(q)
            .output()
            .expect("dig");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut srv: Vec<String> = dig(&["SRV", "_xmpp-server._tcp.contoso.example"])
        .lines()
        .map(str::to_string)
        .collect();
    srv.sort();
    assert_eq!(
        srv,
        vec![
            "10 100 5269 xmpp1.contoso.example.",
            "10 100 5269 xmpp2.contoso.example."
        ]
    );
    assert_eq!(
        dig(&["A", "xmpp1.contoso.example"]).trim(),
        "198.51.100.101"
    );

    // The world, seen with our own eyes.
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/gateway/release/xfed-gateway");
    for h in edges(lab) {
        assert_eq!(
            sha256_on(lab, h, "/opt/xfed/bin/xfed-gateway"),
            local_sha256(&built),
            "{}",
            h.name
        );
        let listening = lab.ssh_ok(h, "ss -ltnH");
        let ext = h.external.as_deref().expect("edge has an external address");
        assert!(
            listening.contains(&format!("{ext}:5269")),
            "{}: {listening}",
            h.name
        );
        assert!(
            listening.contains(&format!("{}:23456", h.internal)),
            "{}: {listening}",
            h.name
        );
        let status = lab
            .command("curl")
            .args(["-sf", &format!("http://{}:8089/status", h.internal)])
            .output()
            .expect("curl");
        let status: serde_json::Value =
            serde_json::from_slice(&status.stdout).expect("status JSON");
        assert_eq!(
            status["config_sha256"],
            sha256_on(lab, h, "/etc/xfed/gateway.toml"),
            "{}",
            h.name
        );
        assert_eq!(status["binary_sha256"], local_sha256(&built), "{}", h.name);
    }
    let fe = lab.host("fe1");
    let topo: serde_json::Value =
        serde_json::from_str(&lab.ssh_ok(fe, "cat /etc/xfed/topology.json"))
            .expect("topology JSON");
    assert_eq!(topo["sites"][0]["xmpp_route"], "edge-hq");

    assert_in_sync(lab, &s);
    assert!(!applied.stdout.contains("FAIL"), "{applied:?}");
}

#[test]
fn hand_made_changes_are_drift_with_their_diff_and_apply_repairs_them() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let s = lab_spec(lab, |t| t);
    apply_ok(lab, &s);
    let edge2 = lab.host("edge2");

    // An edited config file.
    lab.ssh_ok(
        edge2,
        "sed -i 's/^port = 23456/port = 23457/' /etc/xfed/gateway.toml",
    );
    let d = xfed(lab, &["drift", s.path()]);
    assert_eq!(d.code, 2, "{d:?}");
    assert!(
        d.stdout
            .contains("--- edge2.contoso.example:/etc/xfed/gateway.toml"),
        "{d:?}"
    );
    assert!(
        d.stdout.contains("-port = 23457") && d.stdout.contains("+port = 23456"),
        "{d:?}"
    );
    assert!(
        d.stdout
            .contains("service:xfed-gateway will be updated in-place (restart)"),
        "{d:?}"
    );
    let junit = xfed(lab, &["drift", "--format", "junit", s.path()]);
    assert_eq!(junit.code, 2);
    assert!(
        junit.stdout.contains("failures=\"2\"") && junit.stdout.contains("<failure"),
        "{junit:?}"
    );
    let gh = xfed(lab, &["drift", "--format", "github", s.path()]);
    assert!(
        gh.stdout.contains("::error file=") && gh.stdout.contains("gateway.toml"),
        "{gh:?}"
    );

    // A stopped service and a replaced binary on the other edge.
    let edge1 = lab.host("edge1");
    lab.ssh_ok(edge1, "kill $(cat /var/lib/xfed/run/xfed-gateway.pid); sleep 0.5; cp /bin/true /opt/xfed/bin/xfed-gateway");
    let d = xfed(lab, &["drift", "--format", "json", s.path()]);
    assert_eq!(d.code, 2, "{d:?}");
    let v: serde_json::Value = serde_json::from_str(&d.stdout).expect("json");
    let reasons: Vec<String> = v["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["action"] != "noop" && c["host"] == "edge1.contoso.example")
        .map(|c| {
            format!(
                "{} {}",
                c["kind"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec!["binary sha256 differs", "service not running"],
        "{d:?}"
    );

    apply_ok(lab, &s);
    let d = xfed(lab, &["drift", s.path()]);
    assert_eq!(d.code, 0, "{d:?}");
}

#[test]
fn unknown_host_key_is_refused_and_nothing_changes() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let edge2 = lab.host("edge2");
    let known = std::fs::read_to_string(&lab.known_hosts).expect("known_hosts");
    let without: String = known
        .lines()
        .filter(|l| !l.starts_with(&format!("{} ", edge2.internal)))
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, without).expect("write");
    let kh_str = kh.display().to_string();
    let s = lab_spec(lab, |t| {
        t.replace(
            "known_hosts: \"{{ lab }}/keys/known_hosts\"",
            &format!("known_hosts: \"{kh_str}\""),
        )
    });

    let r = xfed(lab, &["apply", "--auto-approve", s.path()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("edge2.contoso.example"), "{r:?}");
    assert!(
        r.stderr.contains("SHA256:"),
        "the refusal shows the fingerprint: {r:?}"
    );
    assert!(r.stderr.contains("nothing was changed"), "{r:?}");
    for h in &lab.hosts {
        assert_eq!(
            lab.ssh_ok(h, "ls -A /etc/xfed /opt/xfed").trim(),
            "/etc/xfed:\n\n/opt/xfed:",
            "{}",
            h.name
        );
    }
    // And known_hosts was not touched without --accept-new-host-keys.
    assert!(
        !std::fs::read_to_string(&kh)
            .expect("read")
            .contains(&edge2.internal)
    );
}

/// Starts `xfed apply` and returns once its progress shows `marker`.
fn apply_until(lab: &Lab, spec: &Path, marker: &str) -> (Child, Vec<String>) {
    let mut child = xfed_command(lab, &["apply", "--auto-approve", path_str(spec)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn xfed");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = Vec::new();
    let mut reader = BufReader::new(stderr);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("read progress");
        assert!(
            n > 0 && Instant::now() < deadline,
            "xfed ended before `{marker}`: {lines:#?}"
        );
        let hit = line.contains(marker);
        lines.push(line);
        if hit {
            break;
        }
    }
    // Keep draining so xfed never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    (child, lines)
}

fn sshd_pids(h: &Host) -> Vec<u32> {
    let out = Command::new("ip")
        .args(["netns", "pids", &h.netns])
        .output()
        .expect("ip netns pids");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|p| p.trim().parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sshd")
        })
        .collect()
}

fn lab_up(lab: &Lab) {
    let st = Command::new(common::lab::script())
        .arg("up")
        .env("XFED_LAB_PREFIX", &lab.prefix)
        .env("XFED_LAB_DIR", &lab.dir)
        .status()
        .expect("lab up");
    assert!(st.success());
}

#[test]
fn a_host_lost_mid_rollout_stops_the_apply_and_the_next_apply_converges() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let s = lab_spec(lab, two_pools);
    let edge1 = lab.host("edge1");

    // The backup pool (edge-dr, SRV priority 20) rolls first; the primary
    // (edge-hq, 10), which carries the traffic, last.
    let (mut child, lines) = apply_until(lab, &s.path, "stage edge-dr 1/1");
    assert!(
        !lines.iter().any(|l| l.contains("stage edge-hq")),
        "the primary pool rolls after the backup: {lines:#?}"
    );
    // edge1's sshd goes away (listener and sessions), as a crashed host's would.
    for pid in sshd_pids(edge1) {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1));

    let edge2 = lab.host("edge2");
    let rolled_out = lab.ssh_ok(edge2, "ss -ltnH").contains(":5269");
    // The lab whole again before anything can fail: the tests after this
    // one need edge1.
    lab_up(lab);
    assert!(rolled_out, "pool edge-dr was rolled out");
    assert_eq!(
        lab.ssh_ok(edge1, "ls -A /opt/xfed /etc/xfed").trim(),
        "/etc/xfed:\n\n/opt/xfed:",
        "pool edge-hq was left untouched"
    );

    apply_ok(lab, &s);
    assert_in_sync(lab, &s);
}

#[test]
fn a_killed_apply_leaves_a_stale_lock_that_the_next_apply_reports_and_takes_over() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let s = lab_spec(lab, |t| t);

    let (mut child, _) = apply_until(lab, &s.path, "stage front-end");
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let fe = lab.host("fe1");
    let left = lab.ssh_ok(fe, "cat /var/lib/xfed/xfed.lock");
    assert!(
        left.contains(&format!("\"pid\":{}", child.id())),
        "the killed apply left its lease: {left}"
    );

    let r = apply_ok(lab, &s);
    assert!(
        r.stderr.contains("stale lock") && r.stderr.contains("taken over"),
        "{r:?}"
    );
    assert_in_sync(lab, &s);
    assert_eq!(
        lab.ssh(fe, "test -e /var/lib/xfed/xfed.lock").status.code(),
        Some(1),
        "released after the apply"
    );
}

#[test]
fn a_lock_held_elsewhere_stops_apply_until_unlocked() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let s = lab_spec(lab, |t| t);
    apply_ok(lab, &s);
    let edge1 = lab.host("edge1");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    lab.ssh_ok(
        edge1,
        &format!(
            "printf '%s\\n' '{{\"id\":\"feedc0de0001\",\"user\":\"ops\",\"machine\":\"ci-runner-7\",\"pid\":4242,\"since_unix\":{now},\"ttl_secs\":900}}' > /var/lib/xfed/xfed.lock"
        ),
    );
    lab.ssh_ok(edge1, "echo '# drift' >> /etc/xfed/policy.toml");

    let r = xfed(lab, &["apply", "--auto-approve", s.path()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("lock feedc0de0001 held by ops@ci-runner-7 (pid 4242)"),
        "{r:?}"
    );
    assert!(r.stderr.contains("xfed unlock SPEC feedc0de0001"), "{r:?}");
    assert!(
        lab.ssh_ok(edge1, "cat /etc/xfed/policy.toml")
            .contains("# drift"),
        "nothing was changed"
    );

    let u = xfed(lab, &["unlock", s.path(), "feedc0de0001"]);
    assert_eq!(u.code, 0, "{u:?}");
    apply_ok(lab, &s);
    assert_in_sync(lab, &s);
}

#[test]
fn a_saved_plan_is_refused_once_the_world_moved_on() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let s = lab_spec(lab, |t| t);
    apply_ok(lab, &s);
    let edge1 = lab.host("edge1");
    lab.ssh_ok(edge1, "echo '# hand edit' >> /etc/xfed/policy.toml");
    let dir = tempfile::tempdir().expect("tempdir");
    let plan_file = dir.path().join("edge.tfplan");

    let p = xfed(lab, &["plan", "--out", path_str(&plan_file), s.path()]);
    assert_eq!(p.code, 0, "{p:?}");
    assert!(
        p.stdout.contains("(reload)"),
        "a policy edit reloads, not restarts: {p:?}"
    );
    let saved = std::fs::read_to_string(&plan_file).expect("plan file");
    assert!(
        !saved.contains(&lab.dns.api_key()),
        "no secret in the plan file"
    );

    lab.ssh_ok(edge1, "echo '# another hand edit' >> /etc/xfed/policy.toml");
    let r = xfed(lab, &["apply", path_str(&plan_file)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("stale plan"), "{r:?}");
    assert!(
        lab.ssh_ok(edge1, "cat /etc/xfed/policy.toml")
            .contains("# another hand edit"),
        "nothing was changed"
    );

    let p = xfed(lab, &["plan", "--out", path_str(&plan_file), s.path()]);
    assert_eq!(p.code, 0, "{p:?}");
    let r = xfed(lab, &["apply", path_str(&plan_file)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_in_sync(lab, &s);
}

#[test]
fn what_leaves_the_spec_is_removed_from_the_host() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let s = lab_spec(lab, two_pools);
    apply_ok(lab, &s);
    let edge2 = lab.host("edge2");
    assert!(lab.ssh_ok(edge2, "ss -ltnH").contains(":5269"));

    // edge-dr stops federating (and needs no internal certificate); site
    // dr now routes through edge-hq.
    let smaller = lab_spec(lab, |t| {
        two_pools(t)
            .replace(EDGE_DR_INTERNAL, "")
            .replace("    xmpp_route: edge-dr\n", "    xmpp_route: edge-hq\n")
            .replace(
                "    site: dr\n    xmpp_federation: true\n",
                "    site: dr\n    xmpp_federation: false\n",
            )
    });
    let plan = xfed(lab, &["plan", "--detailed-exitcode", smaller.path()]);
    assert_eq!(plan.code, 2, "{plan:?}");
    for gone in [
        "service:xfed-gateway",
        "binary:/opt/xfed/bin/xfed-gateway",
        "file:/etc/xfed/gateway.toml",
        "file:/etc/xfed/policy.toml",
        "file:/etc/xfed/tls/internal-ca.crt",
        "file:/etc/xfed/tls/partner-ca.crt",
        "certificate:edge-dr-internal",
    ] {
        let line = format!("  - edge/edge-dr/edge2.contoso.example/{gone}");
        assert!(plan.stdout.contains(&line), "missing `{line}`: {plan:?}");
    }
    assert!(
        plan.stdout
            .contains("will be destroyed: no longer in the spec"),
        "{plan:?}"
    );
    assert!(plan.stdout.contains("7 to destroy."), "{plan:?}");

    apply_ok(lab, &smaller);
    assert!(
        !lab.ssh_ok(edge2, "ss -ltnH").contains(":5269"),
        "the gateway on edge2 is stopped"
    );
    // Every file xfed placed is gone (the directories may stay, empty).
    assert_eq!(
        lab.ssh_ok(edge2, "find /opt/xfed/bin /etc/xfed ! -type d")
            .trim(),
        ""
    );
    assert_in_sync(lab, &smaller);
}

/// Regression: moving a server to another pool changed its resources'
/// addresses, and the old addresses in its manifest were taken for
/// removed resources — the gateway was deleted right after being written.
#[test]
fn regression_a_server_moved_to_another_pool_keeps_its_gateway() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    apply_ok(lab, &lab_spec(lab, two_pools));
    let s = lab_spec(lab, |t| t);
    let plan = xfed(lab, &["plan", s.path()]);
    // The server's resources move with it, its internal certificate too
    // (edge-hq's takes the same files); only the site `dr` (its route)
    // leaves the topology.
    assert!(!plan.stdout.contains("  - edge/"), "{plan:?}");
    assert!(plan.stdout.contains("  - topology/route:dr"), "{plan:?}");
    apply_ok(lab, &s);
    let edge2 = lab.host("edge2");
    assert!(
        lab.ssh_ok(edge2, "ss -ltnH").contains(":5269"),
        "edge2 still serves"
    );
    assert_in_sync(lab, &s);
}

#[test]
fn a_second_apply_restarts_nothing_and_a_policy_change_only_reloads() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let s = lab_spec(lab, |t| t);
    apply_ok(lab, &s);
    let edge1 = lab.host("edge1");
    let pid = gateway_pid(lab, edge1);

    let again = apply_ok(lab, &s);
    assert!(again.stdout.contains("No changes."), "{again:?}");
    assert_eq!(
        gateway_pid(lab, edge1),
        pid,
        "a no-op apply restarted the gateway"
    );

    // A partner more: policy.toml changes, the gateway reloads in place.
    let more = lab_spec(lab, |t| {
        t.replace(
            "partners:\n",
            "partners:\n  - domain: northwind.example\n    kind: trusted\n",
        )
    });
    let plan = xfed(lab, &["plan", more.path()]);
    assert!(
        plan.stdout
            .contains("service:xfed-gateway will be updated in-place (reload)"),
        "{plan:?}"
    );
    assert!(!plan.stdout.contains("(restart)"), "{plan:?}");
    let r = apply_ok(lab, &more);
    assert!(r.stderr.contains("reload service xfed-gateway"), "{r:?}");
    assert_eq!(
        gateway_pid(lab, edge1),
        pid,
        "a policy change must not restart the gateway"
    );
    let status = lab
        .command("curl")
        .args(["-sf", &format!("http://{}:8089/status", edge1.internal)])
        .output()
        .expect("curl");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["partners"], 3, "{status}");
    assert_eq!(
        status["policy_sha256"],
        sha256_on(lab, edge1, "/etc/xfed/policy.toml")
    );
}

#[test]
fn a_server_failing_its_health_gate_is_rolled_back_and_the_next_is_untouched() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let s = lab_spec(lab, |t| t);
    apply_ok(lab, &s);
    let (edge1, edge2) = (lab.host("edge1"), lab.host("edge2"));
    let old_config = sha256_on(lab, edge1, "/etc/xfed/gateway.toml");
    let edge2_config = sha256_on(lab, edge2, "/etc/xfed/gateway.toml");
    let edge2_pid = gateway_pid(lab, edge2);

    // edge1's internal listener moves to an address the host does not have:
    // the new gateway cannot bind it.
    let broken = lab_spec(lab, |t| {
        t.replace(
            "internal: { address: 203.0.113.101 }",
            "internal: { address: 203.0.113.201 }\n        ssh: { host: 203.0.113.101 }",
        )
    });
    let r = xfed(lab, &["apply", "--auto-approve", broken.path()]);
    assert_eq!(r.code, 1, "a rollback is never success: {r:?}");
    assert!(
        r.stderr.contains("rolled back to the previous version"),
        "{r:?}"
    );
    assert!(r.stderr.contains("edge1.contoso.example"), "{r:?}");

    // edge1 serves its old version again; edge2 was not touched.
    assert_eq!(sha256_on(lab, edge1, "/etc/xfed/gateway.toml"), old_config);
    let ext = edge1.external.as_deref().expect("external");
    let served = lab
        .command("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("{ext}:5269"),
            "-starttls",
            "xmpp-server",
            "-xmpphost",
            "contoso.example",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&served.stdout).to_string()
        + &String::from_utf8_lossy(&served.stderr);
    assert!(
        text.contains("CONNECTED"),
        "edge1 answers on 5269 again: {text}"
    );
    assert!(
        lab.ssh_ok(edge1, "ss -ltnH")
            .contains(&format!("{}:23456", edge1.internal))
    );
    assert_eq!(
        sha256_on(lab, edge2, "/etc/xfed/gateway.toml"),
        edge2_config
    );
    assert_eq!(gateway_pid(lab, edge2), edge2_pid);
    // The front-ends were published before the edge stage failed; going
    // back to the previous spec converges everything again.
    apply_ok(lab, &s);
    assert_in_sync(lab, &s);
}

/// Logins `h`'s sshd has accepted so far (its log, LogLevel VERBOSE).
fn logins(lab: &Lab, h: &Host) -> usize {
    std::fs::read_to_string(lab.dir.join("hosts").join(&h.name).join("sshd.log"))
        .unwrap_or_default()
        .matches("Accepted publickey")
        .count()
}

/// `xfed ARGS…` with the keeper directory of this test, not the user's.
fn xfed_kept(lab: &Lab, runtime: &Path, args: &[&str]) -> common::xfed::Run {
    let out = xfed_command(lab, args)
        .env("XDG_RUNTIME_DIR", runtime)
        .output()
        .expect("run xfed");
    common::xfed::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `ssh-keeper status` once the keeper has seen every run detach (at most
/// 10 s), or the last status read.
fn keeper_status_when_no_run_attached(lab: &Lab, runtime: &Path) -> common::xfed::Run {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = xfed_kept(lab, runtime, &["ssh-keeper", "status"]);
        if status.stdout.contains(" 0 run(s) attached") || std::time::Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Stops the test's keeper however the test ends.
struct StopKeeper<'a>(&'a Lab, &'a Path);

impl Drop for StopKeeper<'_> {
    fn drop(&mut self) {
        xfed_kept(self.0, self.1, &["ssh-keeper", "stop"]);
    }
}

#[test]
fn kept_sessions_are_reused_by_the_next_run_and_their_host_keys_rechecked() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let runtime = tempfile::tempdir().expect("tempdir");
    let rt = runtime.path();
    let _stop = StopKeeper(lab, rt);
    // A known_hosts of the test's own, to take a key out of later.
    let kh = rt.join("known_hosts");
    std::fs::copy(&lab.known_hosts, &kh).expect("copy known_hosts");
    let kh_str = kh.display().to_string();
    let s = lab_spec(lab, |t| {
        t.replace(
            "known_hosts: \"{{ lab }}/keys/known_hosts\"",
            &format!("known_hosts: \"{kh_str}\"\n  persist_secs: 30"),
        )
    });
    let edge1 = lab.host("edge1");
    let edge2 = lab.host("edge2");

    let before = logins(lab, edge1);
    let first = xfed_kept(lab, rt, &["plan", s.path()]);
    assert!(first.code == 0 || first.code == 2, "{first:?}");
    assert_eq!(logins(lab, edge1), before + 1, "the keeper logs in once");
    // The keeper takes a run's sessions back when it sees the run's
    // connection close, which may come a moment after the run exited.
    let status = keeper_status_when_no_run_attached(lab, rt);
    assert!(
        status
            .stdout
            .contains(&format!("{} idle session(s)", lab_spec_hosts(lab).len())),
        "{status:?}"
    );

    let second = xfed_kept(lab, rt, &["plan", s.path()]);
    assert_eq!(second.code, first.code, "{second:?}");
    assert_eq!(second.stdout, first.stdout, "the same plan either way");
    assert_eq!(
        logins(lab, edge1),
        before + 1,
        "the second run logs in nowhere"
    );

    // A key taken out of known_hosts after the session was opened: the run
    // refuses the kept session and reports the host as unknown, exactly as
    // without a keeper; the other hosts still use theirs.
    let without: String = std::fs::read_to_string(&kh)
        .expect("read")
        .lines()
        .filter(|l| !l.starts_with(&format!("{} ", edge2.internal)))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&kh, without).expect("write known_hosts");
    let third = xfed_kept(lab, rt, &["plan", s.path()]);
    assert_eq!(third.code, 1, "{third:?}");
    assert!(
        third.stderr.contains("edge2.contoso.example") && third.stderr.contains("SHA256:"),
        "{third:?}"
    );
    assert_eq!(logins(lab, edge1), before + 1, "{third:?}");

    let stop = xfed_kept(lab, rt, &["ssh-keeper", "stop"]);
    assert_eq!(stop.stdout.trim(), "ssh keeper stopped", "{stop:?}");
    let gone = xfed_kept(lab, rt, &["ssh-keeper", "status"]);
    assert_eq!(gone.stdout.trim(), "no ssh keeper runs", "{gone:?}");
}

#[test]
fn an_unused_keeper_exits_by_itself() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let runtime = tempfile::tempdir().expect("tempdir");
    let rt = runtime.path();
    let _stop = StopKeeper(lab, rt);
    let s = lab_spec(lab, |t| {
        t.replace(
            "  connect_timeout_secs: 5\n",
            "  connect_timeout_secs: 5\n  persist_secs: 1\n",
        )
    });
    let r = xfed_kept(lab, rt, &["plan", s.path()]);
    assert!(r.code == 0 || r.code == 2, "{r:?}");
    let socket = std::fs::read_dir(rt.join("xfed"))
        .expect("keeper dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "sock"))
        .expect("the keeper's socket");
    // Idle for 1 s, it expires its sessions and removes its socket; allow
    // generous slack on a loaded machine, polling rather than sleeping long.
    let deadline = Instant::now() + Duration::from_secs(30);
    while socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the keeper outlived its idle time"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let gone = xfed_kept(lab, rt, &["ssh-keeper", "status"]);
    assert_eq!(gone.stdout.trim(), "no ssh keeper runs", "{gone:?}");
}

/// `rollout.max_fail_percentage: 25` on a pool of four: the first server
/// that fails its health gate is rolled back and the rollout goes on; the
/// second is one more than a quarter of the pool, so the rollout stops
/// there, both failed servers rolled back, and the apply exits 1.
#[test]
fn a_failure_budget_lets_a_pool_go_on_until_it_is_spent() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let st = Command::new(common::lab::script())
        .args(["up", "--edges", "4"])
        .env("XFED_LAB_PREFIX", &lab.prefix)
        .env("XFED_LAB_DIR", &lab.dir)
        .status()
        .expect("lab up --edges 4");
    assert!(st.success());
    let four = Lab::open(&lab.dir).expect("the lab with four edges");
    reset(&four);

    // edge2 and edge4 are told to listen inside on an address they do not
    // have: their new gateway cannot bind it, so their gate fails.
    let broken = |i: u32| {
        format!(
            "      - fqdn: edge{i}.{{{{ domain }}}}\n        internal: {{ address: 203.0.113.{} }}\n        ssh: {{ host: 203.0.113.{} }}\n        external: {{ fqdn: \"xmpp{i}.{{{{ domain }}}}\", address: 198.51.100.{} }}\n",
            200 + i,
            100 + i,
            100 + i
        )
    };
    let good = |i: u32| {
        format!(
            "      - fqdn: edge{i}.{{{{ domain }}}}\n        internal: {{ address: 203.0.113.{} }}\n        external: {{ fqdn: \"xmpp{i}.{{{{ domain }}}}\", address: 198.51.100.{} }}\n",
            100 + i,
            100 + i
        )
    };
    let s = lab_spec(lab, |t| {
        t.replace(
            "      - fqdn: edge2.{{ domain }}\n        internal: { address: 203.0.113.102 }\n        external: { fqdn: \"xmpp2.{{ domain }}\", address: 198.51.100.102 }\n",
            &(broken(2) + &good(3) + &broken(4)),
        )
        .replace(
            "rollout:\n  serial: 1\n  health_gate_timeout_secs: 20\n",
            "rollout:\n  serial: 1\n  health_gate_timeout_secs: 5\n  max_fail_percentage: 25\n",
        )
    });
    let r = xfed(lab, &["apply", "--auto-approve", path_str(&s.path)]);
    let listening = |name: &str| four.ssh_ok(four.host(name), "ss -ltnH").contains(":5269");
    let (e1, e2, e3, e4) = (
        listening("edge1"),
        listening("edge2"),
        listening("edge3"),
        listening("edge4"),
    );
    // The lab as the other tests expect it, before anything can fail.
    reset(&four);
    lab_up(lab);

    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("within the failure budget (1 of 4 in `edge-hq`"),
        "edge2's failure is absorbed: {r:?}"
    );
    assert!(
        r.stderr.contains("apply stopped at stage `edge-hq 4/4`"),
        "the second failure stops the rollout: {r:?}"
    );
    assert!(
        r.stderr.contains("edge2.contoso.example") && r.stderr.contains("edge4.contoso.example"),
        "{r:?}"
    );
    assert!(e1 && e3, "edge1 and edge3 were rolled out");
    assert!(!e2 && !e4, "edge2 and edge4 were rolled back");
}

/// `--target pool:NAME`: an urgent fix on one pool without the changes
/// pending on the other. Both pools' configs are edited by hand; the
/// targeted plan shows only edge-dr's and names edge-hq's as skipped; the
/// targeted apply repairs edge2 only (edge1's file and gateway untouched).
#[test]
fn a_targeted_apply_changes_only_the_targeted_pool() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let s = lab_spec(lab, two_pools);
    apply_ok(lab, &s);
    let (edge1, edge2) = (lab.host("edge1"), lab.host("edge2"));
    for h in [edge1, edge2] {
        lab.ssh_ok(h, "echo '# edited by hand' >> /etc/xfed/gateway.toml");
    }
    let edited1 = sha256_on(lab, edge1, "/etc/xfed/gateway.toml");
    let pid1 = gateway_pid(lab, edge1);

    let p = xfed(
        lab,
        &[
            "plan",
            "--detailed-exitcode",
            "--target",
            "pool:edge-dr",
            s.path(),
        ],
    );
    assert_eq!(p.code, 2, "{p:?}");
    assert!(
        p.stdout
            .contains("~ edge/edge-dr/edge2.contoso.example/file:/etc/xfed/gateway.toml"),
        "{p:?}"
    );
    assert!(
        !p.stdout
            .contains("~ edge/edge-hq/edge1.contoso.example/file:"),
        "edge-hq's change is not planned: {p:?}"
    );
    assert!(
        p.stdout.contains("restricted to pool:edge-dr")
            && p.stdout
                .contains("  · edge/edge-hq/edge1.contoso.example/file:/etc/xfed/gateway.toml"),
        "the skipped change is named: {p:?}"
    );
    let bad = xfed(lab, &["plan", "--target", "pool:edge-xx", s.path()]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("`pool:edge-dr`"), "{bad:?}");

    let a = xfed(
        lab,
        &[
            "apply",
            "--auto-approve",
            "--target",
            "pool:edge-dr",
            s.path(),
        ],
    );
    assert_eq!(a.code, 0, "{a:?}");
    assert!(!a.stderr.contains("edge1.contoso.example: "), "{a:?}");
    assert_eq!(sha256_on(lab, edge1, "/etc/xfed/gateway.toml"), edited1);
    assert_eq!(gateway_pid(lab, edge1), pid1);
    let d = xfed(lab, &["drift", "--target", "pool:edge-dr", s.path()]);
    assert_eq!(d.code, 0, "edge-dr is in sync: {d:?}");

    // The untargeted apply carries the rest.
    apply_ok(lab, &s);
    assert_in_sync(lab, &s);
}

/// `gateway.limits.stream_establishment_timeout_secs: 5` reaches the
/// gateways: a peer that sends a stream header and nothing else is cut
/// after 5 s, not the gateway's default 30.
#[test]
fn the_stream_establishment_timeout_from_the_spec_cuts_a_silent_peer() {
    use std::io::{Read, Write};
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let s = lab_spec(lab, |t| {
        t.replace(
            "gateway:\n  service_manager: direct\n",
            "gateway:\n  service_manager: direct\n  limits:\n    stream_establishment_timeout_secs: 5\n",
        )
    });
    apply_ok(lab, &s);
    let ext = lab
        .host("edge1")
        .external
        .clone()
        .expect("external address");
    let mut c = std::net::TcpStream::connect((ext.as_str(), 5269)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let start = Instant::now();
    c.write_all(
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='contoso.example' version='1.0'>",
    )
    .expect("header");
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "no close within 20 s: {e}; got {}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    let after = start.elapsed().as_secs_f64();
    assert!(
        (4.0..=6.0).contains(&after),
        "cut after {after:.2} s: {}",
        String::from_utf8_lossy(&seen)
    );
    assert!(
        String::from_utf8_lossy(&seen).contains("connection-timeout"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
}

/// Three XMPP edge pools, one edge each, whose spec order (edge-hq 20,
/// edge-dr 10, edge-ap 30) is neither their SRV priority order nor its
/// reverse, as `three_pools` writes them.
fn three_pools(text: String) -> String {
    let server = |i: u32| {
        format!(
            "      - fqdn: edge{i}.{{{{ domain }}}}\n        internal: {{ address: 203.0.113.{} }}\n        external: {{ fqdn: \"xmpp{i}.{{{{ domain }}}}\", address: 198.51.100.{} }}\n",
            100 + i,
            100 + i
        )
    };
    let pool = |name: &str, site: &str, priority: u32, i: u32| {
        format!(
            "  - name: {name}\n    site: {site}\n    xmpp_federation: true\n    srv: {{ priority: {priority}, weight: 100 }}\n    servers:\n{}",
            server(i)
        )
    };
    text.replace(
        "  - name: hq\n    frontend_pool: fe-hq\n    xmpp_route: edge-hq\n",
        "  - name: hq\n    frontend_pool: fe-hq\n    xmpp_route: edge-hq\n  - name: dr\n    frontend_pool: fe-hq\n    xmpp_route: edge-dr\n  - name: ap\n    frontend_pool: fe-hq\n    xmpp_route: edge-ap\n",
    )
    .replace(
        &format!(
            "    srv: {{ priority: 10, weight: 100 }}\n    servers:\n{}{}",
            server(1),
            server(2)
        ),
        &format!(
            "    srv: {{ priority: 20, weight: 100 }}\n    servers:\n{}{}{}",
            server(1),
            pool("edge-dr", "dr", 10, 2),
            pool("edge-ap", "ap", 30, 3)
        ),
    )
    // Each pool relays to the front-end's server: its own internal
    // certificate, from the same CA as edge-hq's.
    .replace(
        "  - name: fe-hq-internal\n",
        &format!(
            "{EDGE_DR_INTERNAL}{}  - name: fe-hq-internal\n",
            EDGE_DR_INTERNAL.replace("edge-dr", "edge-ap")
        ),
    )
}

/// Backup pools change first and the pool carrying the traffic last: on a
/// fresh lab with three pools, apply's progress shows each pool's stage,
/// its gateway started and its health gate passed, from the last fallback
/// (priority 30) to the primary (10); the gateways' own start times on the
/// edges (from their kernel's process table) are in that order too.
#[test]
fn three_pools_roll_from_the_last_fallback_to_the_primary() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let st = Command::new(common::lab::script())
        .args(["up", "--edges", "3"])
        .env("XFED_LAB_PREFIX", &lab.prefix)
        .env("XFED_LAB_DIR", &lab.dir)
        .status()
        .expect("lab up --edges 3");
    assert!(st.success());
    let three = Lab::open(&lab.dir).expect("the lab with three edges");
    // Nothing deployed, so every pool's gateway is started by this apply.
    reset(&three);
    let s = lab_spec(lab, three_pools);
    let r = xfed(lab, &["apply", "--auto-approve", path_str(&s.path)]);
    // The gateway's start, in clock ticks since boot (field 22 of
    // /proc/PID/stat; one kernel, so comparable across the edges).
    let started = |name: &str| -> Option<u64> {
        let out = three.ssh(
            three.host(name),
            "pid=$(tr -cd 0-9 < /var/lib/xfed/run/xfed-gateway.pid) && cut -d' ' -f22 /proc/$pid/stat",
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    let starts = [started("edge3"), started("edge1"), started("edge2")];
    // The lab as the other tests expect it, before anything can fail.
    reset(&three);
    lab_up(lab);

    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    let at = |what: &str| {
        lines
            .iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no progress line with `{what}`:\n{}", r.stderr))
    };
    let order = [
        ("edge-ap", "edge3.contoso.example"),
        ("edge-hq", "edge1.contoso.example"),
        ("edge-dr", "edge2.contoso.example"),
    ];
    let mut previous_gate = 0;
    for (pool, host) in order {
        let stage = at(&format!("stage {pool} 1/1: {host}"));
        let start = at(&format!("{host}: start service"));
        let gate = at(&format!("{host}: health gate passed"));
        assert!(
            previous_gate < stage && stage < start && start < gate,
            "`{pool}` is rolled after the pool before it is gated, and its gateway started in its own stage:\n{}",
            r.stderr
        );
        previous_gate = gate;
    }
    let starts: Vec<u64> = starts
        .iter()
        .map(|s| s.expect("each edge runs its gateway after the apply"))
        .collect();
    assert!(
        starts[0] < starts[1] && starts[1] < starts[2],
        "gateway start ticks edge3, edge1, edge2: {starts:?}"
    );
}

//! Running the real `xfed` binary against the lab, as a user would: a
//! spec made from `playbooks/lab.yaml`, each run's exit code and output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::lab::{DEFAULT_DIR, Host, Lab};

/// One run of `xfed`.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A spec file in a temporary directory (removed with it).
pub struct TestSpec {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TestSpec {
    pub fn path(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `playbooks/lab.yaml` pointed at `lab`, with `edit` applied to its text.
pub fn lab_spec(lab: &Lab, edit: impl Fn(String) -> String) -> TestSpec {
    lab_spec_with(lab, |text, _| edit(text))
}

/// The same, `edit` also given the spec's directory (for files beside it).
pub fn lab_spec_with(lab: &Lab, edit: impl Fn(String, &Path) -> String) -> TestSpec {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/lab.yaml"))
            .expect("read playbooks/lab.yaml");
    let text = text.replace(
        &format!("lab: {DEFAULT_DIR}"),
        &format!("lab: {}", lab.dir.display()),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lab.yaml");
    std::fs::write(&path, edit(text, dir.path())).expect("write spec");
    TestSpec { dir, path }
}

/// The lab's hosts that playbooks/lab.yaml deploys to, in the lab's
/// order (the lab has more: fe2 is for the tests that make two sites).
pub fn lab_spec_hosts(lab: &Lab) -> Vec<&Host> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/lab.yaml"))
            .expect("read playbooks/lab.yaml");
    lab.hosts
        .iter()
        .filter(|h| text.contains(&format!("fqdn: {}.{{{{ domain }}}}", h.name)))
        .collect()
}

/// The lab spec made two sites: hq (fe1, its route to edge-hq = edge1,
/// SRV priority 10) and dr (fe2 with its own managed Prosody and user dan,
/// its route to edge-dr = edge2, priority 20), each pool with its own
/// certificates (partners verify the edges, the front-ends and the edges
/// verify each other).
pub fn two_sites(t: String) -> String {
    let section = |name: &str| {
        t.split(&format!("  - name: {name}\n"))
            .nth(1)
            .and_then(|rest| rest.split("\n  - ").next())
            .and_then(|entry| entry.split("\n\n").next())
            .unwrap_or_else(|| panic!("certificate {name} in the lab spec"))
            .to_string()
    };
    let certificates = format!(
        "  - name: edge-dr-external\n{}\n  - name: edge-dr-internal\n{}\n  - name: fe-dr-internal\n{}\n",
        section("edge-hq-external").replace("pool: edge-hq", "pool: edge-dr"),
        section("edge-hq-internal").replace("pool: edge-hq", "pool: edge-dr"),
        section("fe-hq-internal").replace("pool: fe-hq", "pool: fe-dr"),
    );
    t.replace(
        "    xmpp_route: edge-hq\n",
        "    xmpp_route: edge-hq\n  - name: dr\n    frontend_pool: fe-dr\n    xmpp_route: edge-dr\n",
    )
    .replace(
        "    xmpp_server: { address: 203.0.113.11, managed: prosody }\n",
        "    xmpp_server: { address: 203.0.113.11, managed: prosody }\n  - name: fe-dr\n    servers:\n      - fqdn: fe2.{{ domain }}\n        address: 203.0.113.12\n    users: [\"dan@{{ domain }}\"]\n    xmpp_server: { address: 203.0.113.12, managed: prosody }\n",
    )
    .replace(
        "      - fqdn: edge2.{{ domain }}\n",
        "  - name: edge-dr\n    site: dr\n    xmpp_federation: true\n    srv: { priority: 20, weight: 100 }\n    servers:\n      - fqdn: edge2.{{ domain }}\n",
    )
    .replace("  - name: fe-hq-internal\n", &format!("{certificates}  - name: fe-hq-internal\n"))
}

/// `text` (a lab spec) without the partner `domain`: its list entry, up to
/// the next entry or the next top-level key, whatever its settings are.
pub fn without_partner(text: &str, domain: &str) -> String {
    let head = format!("  - domain: {domain}\n");
    let start = text
        .find(&head)
        .unwrap_or_else(|| panic!("no partner {domain} in the spec"));
    let rest = &text[start + head.len()..];
    let end = rest
        .find("\n  - ")
        .map(|i| i + 1)
        .into_iter()
        .chain(rest.find("\n\n").map(|i| i + 1))
        .min()
        .unwrap_or(rest.len());
    format!("{}{}", &text[..start], &rest[end..])
}

/// `xfed ARGS…` in the lab's controller namespace, without colour, to be
/// run or spawned.
pub fn xfed_command(lab: &Lab, args: &[&str]) -> Command {
    let mut c = lab.command(env!("CARGO_BIN_EXE_xfed"));
    c.args(args)
        .env("XFED_WORKSPACE", env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_NET_OFFLINE", "true")
        .env("NO_COLOR", "1");
    c
}

/// `xfed ARGS…` run to its end.
pub fn xfed(lab: &Lab, args: &[&str]) -> Run {
    let out: Output = xfed_command(lab, args).output().expect("run xfed");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn apply_ok(lab: &Lab, spec: &TestSpec) -> Run {
    let r = xfed(lab, &["apply", "--auto-approve", spec.path()]);
    assert_eq!(r.code, 0, "apply failed: {r:?}");
    r
}

pub fn assert_in_sync(lab: &Lab, spec: &TestSpec) {
    let r = xfed(lab, &["plan", "--detailed-exitcode", spec.path()]);
    assert_eq!(r.code, 0, "expected no changes: {r:?}");
    assert!(r.stdout.contains("No changes."), "{r:?}");
}

/// Every host back to nothing deployed: the services xfed started
/// (the gateway on edges, Prosody on front-ends) stopped, xfed dirs empty.
pub fn reset(lab: &Lab) {
    for h in &lab.hosts {
        lab.ssh_ok(
            h,
            "for f in /var/lib/xfed/run/xfed-gateway.pid /var/lib/xfed/prosody/xfed-prosody.pid; do \
               pid=$(cat \"$f\" 2>/dev/null | tr -cd 0-9); [ -n \"$pid\" ] || continue; \
               kill \"$pid\" 2>/dev/null; \
               for i in $(seq 1 100); do kill -0 \"$pid\" 2>/dev/null || break; sleep 0.05; done; \
             done; \
             rm -rf /etc/xfed/* /etc/xfed/.[!.]* /opt/xfed/* /var/lib/xfed/*; true",
        );
    }
}

/// The gateway's pid on `host`, from its pid file.
pub fn gateway_pid(lab: &Lab, host: &super::lab::Host) -> String {
    lab.ssh_ok(host, "cat /var/lib/xfed/run/xfed-gateway.pid")
        .trim()
        .to_string()
}

/// A command of the lab's controller namespace, its stdout.
pub fn lab_stdout(lab: &Lab, program: &str, args: &[&str]) -> String {
    let out = lab.command(program).args(args).output().expect(program);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The sum over every edge of the gateway's `/metrics` lines that start
/// with `prefix` (a counter and its labels).
pub fn gateway_metric(lab: &Lab, prefix: &str) -> f64 {
    lab.hosts_with(super::lab::Role::Edge)
        .map(|h| gateway_metric_on(lab, h, prefix))
        .sum()
}

/// The body of `GET path` on `host`'s gateway admin listener ("" when it
/// does not answer within 5 s).
pub fn gateway_admin(lab: &Lab, host: &Host, path: &str) -> String {
    lab_stdout(
        lab,
        "curl",
        &[
            "-s",
            "--max-time",
            "5",
            &format!("http://{}:8089{path}", host.internal),
        ],
    )
}

/// The same on one edge.
pub fn gateway_metric_on(lab: &Lab, host: &Host, prefix: &str) -> f64 {
    gateway_admin(lab, host, "/metrics")
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

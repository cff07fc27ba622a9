//! `tests/lab/lab` against its contract (tests/lab/README.md).
//!
//! Brings up a second lab beside the default one — prefix `xfedt`, its own
//! state dir — checks it with tools we did not write (ssh, ps, dig, curl),
//! crashes a host and lets `up` repair it, shrinks it, takes it down and
//! checks that nothing of it is left. The default `xfed` lab, which other
//! tests use meanwhile, is not touched.
//!
//! Runs as root (with the lab's packages) or when `XFED_LAB=1`; skips loudly
//! otherwise. From a root shell or, as CI does, inside the default lab:
//!   cargo test --test lab_lifecycle -- --nocapture
//!   tests/lab/lab exec -- cargo test --test lab_lifecycle -- --nocapture
//! `--nocapture` shows the `MEASURE` lines (up/down times).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use common::lab::{self, Lab, Role};

const PREFIX: &str = "xfedt";
/// Argument of a `sleep` started on fe1 over ssh, to find it again from here.
const DAEMON_MARK: &str = "7777.777";

/// The lab under test. `lab down` and the state dir removed on drop, so a
/// failed assertion leaves no namespaces or sshds behind.
struct Instance {
    dir: PathBuf,
}

impl Instance {
    /// A fixed dir (not a random one): if an earlier run was killed before
    /// it could clean up, this run's `down` still finds its PID records.
    fn create() -> Instance {
        let target_tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // hosts get a private /tmp, so the script refuses state dirs below it
        let dir = if target_tmp.starts_with("/tmp") {
            PathBuf::from("/var/tmp/xfed-lab-xfedt")
        } else {
            target_tmp.join("lab-xfedt")
        };
        let inst = Instance { dir };
        if inst.dir.exists() {
            inst.run_ok(&["down"]);
            fs::remove_dir_all(&inst.dir).expect("remove the old state dir");
        }
        fs::create_dir_all(&inst.dir).expect("create the state dir");
        inst
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(lab::script())
            .args(args)
            .env("XFED_LAB_PREFIX", PREFIX)
            .env("XFED_LAB_DIR", &self.dir)
            .output()
            .expect("start tests/lab/lab")
    }

    fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "lab {args:?}: {}\n{text}", out.status);
        text
    }

    /// `lab up`, timed.
    fn up(&self, args: &[&str]) -> Lab {
        let t0 = Instant::now();
        let text = self.run_ok(&[&["up"], args].concat());
        eprintln!(
            "MEASURE lab up {args:?}: {:.2} s ({})",
            t0.elapsed().as_secs_f64(),
            text.trim()
        );
        Lab::open(&self.dir).expect("inventory after up")
    }

    /// Every PID record of the script, `PID STARTTIME`, by file.
    fn pid_records(&self) -> BTreeMap<PathBuf, (u32, String)> {
        let mut files = vec![self.dir.join("pdns/server.pid")];
        for host in fs::read_dir(self.dir.join("hosts"))
            .expect("hosts dir")
            .flatten()
        {
            files.push(host.path().join("sshd.pid"));
            files.push(host.path().join("launcher.pid"));
        }
        for partner in ["fabrikam", "litware"] {
            let dir = self.dir.join("partners").join(partner);
            files.push(dir.join("server.pid"));
            files.push(dir.join("launcher.pid"));
        }
        for server in ["bind", "knot"] {
            let dir = self.dir.join("rfc2136").join(server);
            files.push(dir.join("server.pid"));
            files.push(dir.join("pebble.pid"));
        }
        files.push(self.dir.join("rfc2136/unbound/server.pid"));
        files
            .into_iter()
            .filter_map(|f| {
                let text = fs::read_to_string(&f).ok()?;
                let (pid, start) = text.trim().split_once(' ')?;
                Some((f, (pid.parse().ok()?, start.to_string())))
            })
            .collect()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let out = self.run(&["down"]);
        if !out.status.success() {
            eprintln!(
                "cleanup: lab down failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return; // keep the dir: its PID records are what a later down needs
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Whether a process with this PID and start time still runs (a zombie
/// waiting for its parent does not).
fn running(pid: u32, start: &str) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return false;
    };
    let fields: Vec<&str> = rest.split(' ').collect();
    fields.first() != Some(&"Z") && fields.get(19) == Some(&start)
}

/// PIDs of processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

fn our_namespaces() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.retain(|n| n.starts_with(&format!("{PREFIX}-")));
    names.sort();
    names
}

/// The zones `up` makes: one per partner organisation.
const PARTNER_ZONES: [&str; 2] = ["fabrikam.example.", "litware.example."];

/// Names of the zones in a PowerDNS API zone list, sorted.
fn zone_names(body: &str) -> Vec<String> {
    let zones: Vec<serde_json::Value> = serde_json::from_str(body).expect("zone list JSON");
    let mut names: Vec<String> = zones
        .iter()
        .filter_map(|z| z["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

fn partner_pids(lab: &Lab) -> BTreeMap<String, u32> {
    lab.partners
        .iter()
        .map(|p| (p.name.clone(), p.pid))
        .collect()
}

fn pids(lab: &Lab) -> BTreeMap<String, u32> {
    lab.hosts
        .iter()
        .map(|h| (h.name.clone(), h.sshd_pid))
        .collect()
}

/// Runs `program args` in the controller namespace of `lab`.
fn in_controller(lab: &Lab, program: &str, args: &[&str]) -> Output {
    lab.command(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("start {program}: {e}"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn lab_up_builds_the_contracted_lab_and_down_leaves_nothing() {
    if !lab::can_build_labs() {
        return;
    }
    // one run of this test at a time on the machine: the prefix names
    // machine-wide namespaces
    let _serial = lab::lock_file(Path::new("/run/lock/xfed-lab.xfedt.test.lock"));
    let inst = Instance::create();

    let lab = inst.up(&["--frontends", "1", "--edges", "2"]);

    // --- layout, per the README's table
    let layout: Vec<_> = lab
        .hosts
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                h.role,
                h.fqdn.as_str(),
                h.netns.as_str(),
                h.internal.as_str(),
                h.external.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        layout,
        [
            (
                "fe1",
                Role::Frontend,
                "fe1.contoso.example",
                "xfedt-fe1",
                "203.0.113.11",
                None
            ),
            (
                "edge1",
                Role::Edge,
                "edge1.contoso.example",
                "xfedt-edge1",
                "203.0.113.101",
                Some("198.51.100.101")
            ),
            (
                "edge2",
                Role::Edge,
                "edge2.contoso.example",
                "xfedt-edge2",
                "203.0.113.102",
                Some("198.51.100.102")
            ),
        ]
    );
    assert_eq!(lab.controller_netns, "xfedt-lab");
    assert_eq!(
        our_namespaces(),
        [
            "xfedt-bind",
            "xfedt-dns",
            "xfedt-edge1",
            "xfedt-edge2",
            "xfedt-fabrikam",
            "xfedt-fe1",
            "xfedt-knot",
            "xfedt-lab",
            "xfedt-litware",
            "xfedt-res"
        ]
    );
    let routes = stdout(&in_controller(&lab, "ip", &["-4", "route", "show"]));
    assert!(
        !routes.contains("default"),
        "the controller must have no way out:\n{routes}"
    );
    let known_hosts = fs::read_to_string(&lab.known_hosts).expect("known_hosts");
    for (line, host) in known_hosts.lines().zip(&lab.hosts) {
        assert!(
            line.starts_with(&format!("{} ssh-ed25519 AAAA", host.internal)),
            "known_hosts line `{line}`"
        );
    }
    assert_eq!(known_hosts.lines().count(), lab.hosts.len());

    // --- every host answers over ssh, host key checked, with its own name
    for host in &lab.hosts {
        assert_eq!(lab.ssh_ok(host, "hostname").trim(), host.fqdn);
    }

    // --- a wrong or missing host key is refused
    let fe1 = lab.host("fe1");
    let edge1 = lab.host("edge1");
    let edge1_key = known_hosts
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{} ", edge1.internal)))
        .expect("edge1 in known_hosts");
    let wrong = inst.dir.join("wrong_known_hosts");
    fs::write(&wrong, format!("{} {edge1_key}\n", fe1.internal)).expect("write");
    let empty = inst.dir.join("empty_known_hosts");
    fs::write(&empty, "").expect("write");
    for (kh, what) in [(&wrong, "edge1's key for fe1"), (&empty, "no key")] {
        let out = lab.ssh_command_with(fe1, kh, "true").output().expect("ssh");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(255),
            "ssh with {what} must fail: {err}"
        );
        assert!(
            err.contains("Host key verification failed"),
            "ssh with {what}: {err}"
        );
    }

    // --- hosts are isolated: files, /tmp, processes; own PID 1
    lab.ssh_ok(
        fe1,
        &format!(
            "for d in /etc/xfed /opt/xfed /var/lib/xfed /tmp; do echo fe1 > $d/marker; done; \
             setsid sleep {DAEMON_MARK} </dev/null >/dev/null 2>&1 &"
        ),
    );
    let fe1_view = lab.ssh_ok(
        fe1,
        "cat /proc/1/comm; cat /etc/xfed/marker /tmp/marker; ps -eo args",
    );
    assert!(
        fe1_view.starts_with("sshd\nfe1\nfe1\n"),
        "fe1 sees:\n{fe1_view}"
    );
    assert!(
        fe1_view.contains(&format!("sleep {DAEMON_MARK}")),
        "fe1 sees:\n{fe1_view}"
    );
    assert!(
        fe1_view.lines().count() < 15,
        "fe1 must see only its own processes:\n{fe1_view}"
    );
    for host in [edge1, lab.host("edge2")] {
        let view = lab.ssh_ok(
            host,
            "cat /proc/1/comm; for d in /etc/xfed /opt/xfed /var/lib/xfed /tmp; do \
             test ! -e $d/marker || echo \"sees $d/marker\"; done; ps -eo args",
        );
        assert!(
            view.starts_with("sshd\n"),
            "{}: PID 1 is not sshd:\n{view}",
            host.name
        );
        assert!(
            !view.contains("sees "),
            "{} sees fe1's files:\n{view}",
            host.name
        );
        assert!(
            !view.contains(DAEMON_MARK),
            "{} sees fe1's processes:\n{view}",
            host.name
        );
    }
    for (dir, sub) in [
        ("/etc/xfed", "etc-xfed"),
        ("/opt/xfed", "opt-xfed"),
        ("/var/lib/xfed", "var-lib-xfed"),
        ("/tmp", "tmp"),
    ] {
        assert!(
            !Path::new(dir).join("marker").exists(),
            "fe1's {dir}/marker leaked into the machine"
        );
        let kept = inst.dir.join("hosts/fe1/fs").join(sub).join("marker");
        assert_eq!(
            fs::read_to_string(&kept).ok().as_deref(),
            Some("fe1\n"),
            "{}",
            kept.display()
        );
    }

    // --- one L2 network: fe1 reaches edge1's sshd; front-ends have no external network
    let reach = lab.ssh_ok(
        fe1,
        &format!(
            "exec 3<>/dev/tcp/{}/22 && head -c 8 <&3; echo; \
             (exec 3<>/dev/tcp/198.51.100.101/22) 2>&1 || true",
            edge1.internal
        ),
    );
    assert!(reach.starts_with("SSH-2.0-"), "fe1 -> edge1:22: {reach}");
    assert!(
        reach.contains("unreachable"),
        "fe1 must not reach the external network: {reach}"
    );

    // --- PowerDNS: the API wants its key, no zones after up, DNS answers on both addresses
    let key_mode = fs::metadata(&lab.dns.api_key_file)
        .expect("api-key")
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600, "api-key mode");
    let zones = format!("{}/api/v1/servers/localhost/zones", lab.dns.api);
    let header = format!("X-API-Key: {}", lab.dns.api_key());
    let code = stdout(&in_controller(
        &lab,
        "curl",
        &["-sS", "-o", "/dev/null", "-w", "%{http_code}", &zones],
    ));
    assert_eq!(code, "401", "API without key");
    let body = stdout(&in_controller(
        &lab,
        "curl",
        &["-sS", "-f", "-H", &header, &zones],
    ));
    assert_eq!(zone_names(&body), PARTNER_ZONES, "zones after up");
    let created = in_controller(
        &lab,
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &header,
            "-X",
            "POST",
            &zones,
            "-d",
            r#"{"name":"contoso.example.","kind":"Native","nameservers":["ns1.contoso.example."]}"#,
        ],
    );
    assert_eq!(
        stdout(&created),
        "201",
        "create zone: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    for server in [&lab.dns.internal, &lab.dns.external] {
        let out = in_controller(
            &lab,
            "dig",
            &[
                "+short",
                "+time=2",
                "+tries=1",
                "+norec",
                &format!("@{server}"),
                "contoso.example",
                "SOA",
            ],
        );
        let soa = stdout(&out);
        assert!(
            soa.starts_with("ns1.contoso.example. hostmaster.contoso.example. "),
            "SOA from {server}: {soa:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // --- status: all up
    let status = inst.run(&["status"]);
    assert!(status.status.success(), "status: {}", stdout(&status));

    // --- up again keeps everything that runs
    let again = inst.up(&["--frontends", "1", "--edges", "2"]);
    assert_eq!(
        pids(&again),
        pids(&lab),
        "a second up must keep running hosts"
    );
    assert_eq!(again.dns.pid, lab.dns.pid);
    assert_eq!(
        partner_pids(&again),
        partner_pids(&lab),
        "a second up must keep running partners"
    );

    // --- a crashed host: status says so, up re-creates only it, with the same host key
    // (and a crashed partner: its server is its PID 1)
    let edge2 = lab.host("edge2");
    for pid in [edge2.sshd_pid, lab.partner("litware").pid] {
        let killed = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
    }
    let status = inst.run(&["status"]);
    assert_eq!(
        status.status.code(),
        Some(1),
        "status with edge2 and litware down: {}",
        stdout(&status)
    );
    let healed = inst.up(&["--frontends", "1", "--edges", "2"]);
    let (before, after) = (pids(&lab), pids(&healed));
    assert_ne!(after["edge2"], before["edge2"], "edge2 must be re-created");
    assert_eq!(
        (after["fe1"], after["edge1"]),
        (before["fe1"], before["edge1"]),
        "others must be kept"
    );
    let (before, after) = (partner_pids(&lab), partner_pids(&healed));
    assert_ne!(
        after["litware"], before["litware"],
        "litware must be re-created"
    );
    assert_eq!(
        after["fabrikam"], before["fabrikam"],
        "fabrikam must be kept"
    );
    assert_eq!(
        fs::read_to_string(&healed.known_hosts).expect("known_hosts"),
        known_hosts
    );
    assert_eq!(
        healed.ssh_ok(healed.host("edge2"), "hostname").trim(),
        "edge2.contoso.example"
    );

    // --- a smaller lab: edge2 goes away
    let records = inst.pid_records();
    let edge2_pid = healed.host("edge2").sshd_pid;
    let small = inst.up(&["--frontends", "1", "--edges", "1"]);
    assert_eq!(small.hosts.len(), 2);
    assert!(!our_namespaces().contains(&"xfedt-edge2".to_string()));
    let (pid, start) = &records[&inst.dir.join("hosts/edge2/sshd.pid")];
    assert_eq!(*pid, edge2_pid);
    assert!(!running(*pid, start), "edge2's sshd survived the shrink");

    // --- without partners: their namespaces, servers and zones go
    let records = inst.pid_records();
    let alone = inst.up(&["--frontends", "1", "--edges", "1", "--no-partners"]);
    assert!(alone.partners.is_empty() && alone.partner_ca.is_none());
    assert_eq!(
        our_namespaces(),
        [
            "xfedt-bind",
            "xfedt-dns",
            "xfedt-edge1",
            "xfedt-fe1",
            "xfedt-knot",
            "xfedt-lab",
            "xfedt-res"
        ]
    );
    for partner in ["fabrikam", "litware"] {
        let (pid, start) = &records[&inst.dir.join("partners").join(partner).join("server.pid")];
        assert!(
            !running(*pid, start),
            "{partner}'s server survived --no-partners"
        );
    }
    let body = stdout(&in_controller(
        &alone,
        "curl",
        &["-sS", "-f", "-H", &header, &zones],
    ));
    assert_eq!(
        zone_names(&body),
        ["contoso.example."],
        "zones without partners"
    );

    // --- down: no namespace, no recorded process, no daemon started on a host
    let records = inst.pid_records();
    assert!(records.len() >= 5, "PID records: {records:?}");
    let t0 = Instant::now();
    inst.run_ok(&["down"]);
    eprintln!("MEASURE lab down: {:.2} s", t0.elapsed().as_secs_f64());
    assert_eq!(
        our_namespaces(),
        Vec::<String>::new(),
        "namespaces left after down"
    );
    for (file, (pid, start)) in &records {
        assert!(
            !running(*pid, start),
            "{} ({pid}) still runs after down",
            file.display()
        );
    }
    assert_eq!(
        processes_with(&format!("sleep {DAEMON_MARK}")),
        Vec::<String>::new(),
        "daemon survived down"
    );
    assert!(!inst.dir.join("inventory.json").exists());
    for kept in [
        "keys/id_ed25519",
        "keys/id_ed25519.pub",
        "hosts/fe1/ssh_host_ed25519_key",
        "pdns/api-key",
        "rfc2136/bind/tsig.secret",
        "rfc2136/knot/tsig.secret",
    ] {
        assert!(inst.dir.join(kept).exists(), "down must keep {kept}");
    }
    assert!(
        !inst.dir.join("hosts/fe1/fs").exists(),
        "down must remove the hosts' files"
    );

    // --- up after down reuses the keys: same known_hosts, same API key
    let api_key = lab.dns.api_key();
    let reborn = inst.up(&["--frontends", "1", "--edges", "2"]);
    assert_eq!(
        fs::read_to_string(&reborn.known_hosts).expect("known_hosts"),
        known_hosts
    );
    assert_eq!(reborn.dns.api_key(), api_key);
    let body = stdout(&in_controller(
        &reborn,
        "curl",
        &["-sS", "-f", "-H", &header, &zones],
    ));
    assert_eq!(zone_names(&body), PARTNER_ZONES, "zones after down + up");
    inst.run_ok(&["down"]);
    assert_eq!(our_namespaces(), Vec::<String>::new());
}

/// The default lab through the harness, as every other lab test sees it:
/// each host answers over ssh with its name, PowerDNS answers queries.
#[test]
fn default_lab_answers_through_the_harness() {
    let Some(lab) = Lab::get() else {
        return;
    };
    let _serial = lab.lock();
    for host in &lab.hosts {
        assert_eq!(lab.ssh_ok(host, "hostname").trim(), host.fqdn);
    }
    let out = in_controller(
        lab,
        "dig",
        &[
            "+time=2",
            "+tries=1",
            &format!("@{}", lab.dns.internal),
            "contoso.example",
            "SOA",
        ],
    );
    assert!(
        stdout(&out).contains("->>HEADER<<-"),
        "no DNS answer: {out:?}"
    );
}

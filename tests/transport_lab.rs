//! `transport` against real OpenSSH servers in the lab (tests/lab/README.md).
//!
//! Run inside the controller namespace:
//! `tests/lab/lab exec -- cargo test --test transport_lab -- --nocapture`
//! (`--nocapture` shows the timings, lines starting with `MEASURE`).
//! Without a reachable lab these tests skip loudly; with `XFED_LAB=1` a
//! missing lab is a failure.
//!
//! Everything written on a host goes under /tmp/xfed-transport-test (each
//! lab host has a private /tmp). The results are checked with tools we did
//! not write: `sha256sum`, `stat`, `ssh-keygen`.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::lab::{Host, Lab, Role};

use xfed::transport::{
    Become, Command, FileKind, SshAuth, SshConfig, SshTransport, Transport, TransportError,
    WriteOpts, gather_facts,
};

const WORK: &str = "/tmp/xfed-transport-test";

/// Two hosts to work with: the first edges (203.0.113.101, .102), else
/// whatever the lab has.
fn two_hosts(lab: &Lab) -> (&Host, &Host) {
    let mut hosts: Vec<&Host> = lab.hosts_with(Role::Edge).collect();
    hosts.extend(lab.hosts.iter().filter(|h| h.role != Role::Edge));
    match hosts[..] {
        [a, b, ..] => (a, b),
        _ => panic!(
            "transport lab tests need 2 hosts, the lab has {}",
            hosts.len()
        ),
    }
}

fn config(lab: &Lab, host: &Host) -> SshConfig {
    let mut c = SshConfig::new(
        host.fqdn.clone(),
        host.internal.clone(),
        "root",
        SshAuth::KeyFile {
            path: lab.key.clone(),
            passphrase: None,
        },
        lab.known_hosts.clone(),
    );
    c.connect_timeout = Duration::from_secs(5);
    c.command_timeout = Duration::from_secs(60);
    c
}

fn connect(lab: &Lab, host: &Host) -> SshTransport {
    SshTransport::connect(config(lab, host))
        .unwrap_or_else(|e| panic!("connect to {}: {e}", host.name))
}

/// `<type> <base64>` of the host's key from the lab's known_hosts.
fn host_key(lab: &Lab, host: &Host) -> String {
    let text = std::fs::read_to_string(&lab.known_hosts).expect("lab known_hosts");
    text.lines()
        .find_map(|l| {
            let (name, key) = l.split_once(' ')?;
            (name == host.internal).then(|| key.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no known_hosts line for {}", host.internal))
}

/// The lab (skipped loudly without one, failed under `XFED_LAB=1`), held
/// exclusively for this test.
macro_rules! lab {
    () => {{
        let Some(lab) = Lab::get() else { return };
        (lab, lab.lock())
    }};
}

fn sh(script: &str) -> Command {
    Command::new("sh").arg("-c").arg(script)
}

/// `SHA256:…` of a key line, as ssh-keygen computes it.
fn ssh_keygen_fingerprint(key_line: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("k.pub");
    std::fs::write(&f, format!("{key_line}\n")).expect("write");
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&f)
        .output()
        .expect("ssh-keygen");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("ssh-keygen -lf said {text:?}"))
        .to_string()
}

fn temp_known_hosts(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("known_hosts");
    std::fs::write(&p, text).expect("write known_hosts");
    p
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

// ---------------------------------------------------------------------------

#[test]
fn connect_and_run_with_status_stdout_stderr() {
    let (lab, _g) = lab!();
    let host = two_hosts(lab).0;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let t = connect(lab, host);
        times.push(t0.elapsed());
        drop(t);
    }
    times.sort();
    eprintln!(
        "MEASURE connect+auth (ed25519 key): median {} (min {}, max {})",
        ms(times[2]),
        ms(times[0]),
        ms(times[4])
    );

    let mut t = connect(lab, host);
    assert_eq!(t.host(), host.fqdn);
    let out = t.run(&sh("echo out; echo err >&2; exit 7")).expect("runs");
    assert_eq!(
        (out.status, out.stdout.as_slice(), out.stderr.as_slice()),
        (7, &b"out\n"[..], &b"err\n"[..])
    );

    let out = t.run(&Command::new("uname").arg("-n")).expect("uname");
    assert_eq!(out.stdout_text().trim(), host.fqdn, "wrong host answered");

    let err = t.run_ok(&sh("echo broken >&2; exit 3")).expect_err("fails");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("`{}`", host.fqdn)) && msg.contains("exit status 3: broken"),
        "{msg}"
    );

    // Arguments arrive exactly as given: no shell interpretation remotely.
    let nasty = ["a b", "it's", "$(id)", "`id`", "*", "", "x\ny", "--", "~"];
    let out = t
        .run(&Command::new("printf").arg(r"%s\0").args(nasty))
        .expect("printf");
    let got: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
    let want: Vec<&[u8]> = nasty
        .iter()
        .map(|s| s.as_bytes())
        .chain([&b""[..]])
        .collect();
    assert_eq!(got, want);

    let out = t.run(&sh("kill -KILL $$")).expect("runs");
    assert_eq!(out.status, 128 + 9, "killed by a signal");

    let n = 50;
    let t0 = Instant::now();
    for _ in 0..n {
        assert!(t.run(&Command::new("true")).expect("true").success());
    }
    eprintln!(
        "MEASURE exec round trip (`true`, reused session): {} each over {n}",
        ms(t0.elapsed() / n)
    );
}

#[test]
fn large_outputs_on_both_streams_do_not_stall() {
    let (lab, _g) = lab!();
    let mut t = connect(lab, two_hosts(lab).0);
    // 3 MB on stderr *before* stdout: more than the 2 MiB channel window.
    let out = t
        .run(
            &sh("head -c 3000000 /dev/zero >&2; head -c 3000000 /dev/zero; echo done >&2")
                .timeout(Duration::from_secs(20)),
        )
        .expect("runs");
    assert_eq!((out.stdout.len(), out.stderr.len()), (3_000_000, 3_000_005));
    // Big stdin and big stdout at the same time.
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let out = t
        .run(
            &Command::new("cat")
                .stdin(data.clone())
                .timeout(Duration::from_secs(20)),
        )
        .expect("cat");
    assert!(out.stdout == data, "cat echoed {} bytes", out.stdout.len());
}

#[test]
fn file_round_trip_with_mode_owner_and_atomic_replace() {
    let (lab, _g) = lab!();
    let mut t = connect(lab, two_hosts(lab).0);
    let path = format!("{WORK}/round/trip/gateway.toml");
    t.run(&Command::new("rm").args(["-rf", WORK]))
        .expect("clean");

    assert_eq!(t.read_file(&path).expect("read"), None);
    assert_eq!(t.stat(&path).expect("stat"), None);
    assert!(!t.remove_file(&path).expect("remove"));

    let opts = WriteOpts::default()
        .mode(0o640)
        .owner("nobody:nogroup")
        .create_dirs(true);
    t.write_file(&path, b"listen = 5269\n", &opts)
        .expect("write");
    assert_eq!(
        t.read_file(&path).expect("read").as_deref(),
        Some(&b"listen = 5269\n"[..])
    );
    let st = t.stat(&path).expect("stat").expect("exists");
    assert_eq!(st.kind, FileKind::File);
    assert_eq!((st.mode, st.size), (0o640, 14));
    assert_eq!(
        (st.owner.as_deref(), st.group.as_deref()),
        (Some("nobody"), Some("nogroup"))
    );
    // Checked with the host's own tools.
    let out = t
        .run_ok(&Command::new("stat").args(["-c", "%a %U:%G %i", &path]))
        .expect("stat");
    let native = out.stdout_text();
    let fields: Vec<&str> = native.split_whitespace().collect();
    assert_eq!(&fields[..2], ["640", "nobody:nogroup"]);
    let old_inode = fields[2].to_string();
    let out = t
        .run_ok(&Command::new("sha256sum").arg(&path))
        .expect("sha256sum");
    assert_eq!(
        st.sha256.as_deref(),
        out.stdout_text().split_whitespace().next()
    );

    // Atomic replace: a reader holding the old file keeps the old content,
    // the path gets a new inode with the new content and mode.
    t.run_ok(&sh(&format!(
        "(exec 3< '{path}'; sleep 1; cat <&3 > {WORK}/held-open.txt) </dev/null >/dev/null 2>&1 &"
    )))
    .expect("hold the old file open");
    t.write_file(&path, b"listen = 5270\n", &WriteOpts::default().mode(0o600))
        .expect("replace");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        t.read_file(&format!("{WORK}/held-open.txt"))
            .expect("read")
            .as_deref(),
        Some(&b"listen = 5269\n"[..]),
        "a reader of the old file saw the new content"
    );
    let out = t
        .run_ok(&Command::new("stat").args(["-c", "%a %U %i", &path]))
        .expect("stat");
    let native = out.stdout_text();
    let fields: Vec<&str> = native.split_whitespace().collect();
    assert_eq!(&fields[..2], ["600", "root"]);
    assert_ne!(fields[2], old_inode, "replaced in place instead of renamed");
    assert_eq!(
        t.read_file(&path).expect("read").as_deref(),
        Some(&b"listen = 5270\n"[..])
    );
    // No temp files left next to it.
    let out = t
        .run_ok(&Command::new("ls").args(["-A", &format!("{WORK}/round/trip")]))
        .expect("ls");
    assert_eq!(out.stdout_text(), "gateway.toml\n");

    assert!(t.remove_file(&path).expect("remove"));
    assert_eq!(t.stat(&path).expect("stat"), None);
}

#[test]
fn atomic_replace_is_never_seen_half_written() {
    let (lab, _g) = lab!();
    let mut writer = connect(lab, two_hosts(lab).0);
    let mut reader = connect(lab, two_hosts(lab).0);
    let path = format!("{WORK}/atomic.bin");
    let a = vec![b'a'; 2_000_000];
    let b = vec![b'b'; 2_000_000];
    writer
        .write_file(&path, &a, &WriteOpts::default().create_dirs(true))
        .expect("write a");
    // A remote loop reads the file continuously while we replace it; every
    // read must be all-a or all-b.
    let watcher = std::thread::spawn(move || {
        reader
            .run(&sh(&format!(
                "n=0; while [ $n -lt 100 ]; do cat '{path}' > {WORK}/snap; c=$(tr -d a < {WORK}/snap | wc -c); \
                 d=$(tr -d b < {WORK}/snap | wc -c); if [ $c -ne 0 ] && [ $d -ne 0 ]; then echo TORN; fi; n=$((n+1)); done"
            )).timeout(Duration::from_secs(60)))
            .expect("watch")
    });
    for i in 0..10 {
        let data = if i % 2 == 0 { &b } else { &a };
        writer
            .write_file(&format!("{WORK}/atomic.bin"), data, &WriteOpts::default())
            .expect("replace");
    }
    let out = watcher.join().expect("watcher");
    assert!(
        !out.stdout_text().contains("TORN"),
        "a reader saw a half-written file"
    );
}

#[test]
fn write_file_timings() {
    let (lab, _g) = lab!();
    let mut t = connect(lab, two_hosts(lab).0);
    t.run(&Command::new("mkdir").args(["-p", WORK]))
        .expect("mkdir");
    for (label, size) in [("10 KB", 10_000usize), ("10 MB", 10_000_000)] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
        let path = format!("{WORK}/perf-{size}.bin");
        let mut times = Vec::new();
        for _ in 0..5 {
            let t0 = Instant::now();
            t.write_file(&path, &data, &WriteOpts::default())
                .expect("write");
            times.push(t0.elapsed());
        }
        times.sort();
        let st = t.stat(&path).expect("stat").expect("exists");
        let want = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&data))
        };
        assert_eq!(st.sha256.as_deref(), Some(want.as_str()));
        let t0 = Instant::now();
        let back = t.read_file(&path).expect("read").expect("exists");
        let read_time = t0.elapsed();
        assert!(back == data);
        let t0 = Instant::now();
        t.stat(&path).expect("stat");
        let stat_time = t0.elapsed();
        eprintln!(
            "MEASURE write_file {label}: median {} (min {}, max {}); read_file {}; stat (incl. sha256) {}",
            ms(times[2]),
            ms(times[0]),
            ms(times[4]),
            ms(read_time),
            ms(stat_time)
        );
    }
}

#[test]
fn facts_in_one_round_trip() {
    let (lab, _g) = lab!();
    let host = two_hosts(lab).0;
    let mut t = connect(lab, host);
    let t0 = Instant::now();
    let f = gather_facts(&mut t).expect("facts");
    let first = t0.elapsed();
    let t0 = Instant::now();
    let again = gather_facts(&mut t).expect("facts");
    eprintln!(
        "MEASURE gather_facts: {} (first command on a new session: {}) -> {f:?}",
        ms(t0.elapsed()),
        ms(first)
    );
    assert_eq!(f, again);
    assert_eq!(f.hostname, host.fqdn);
    let arch = std::process::Command::new("uname")
        .arg("-m")
        .output()
        .expect("uname");
    assert_eq!(f.arch, String::from_utf8_lossy(&arch.stdout).trim());
    assert!(!f.os_id.is_empty());
    assert!(!f.systemd_pid1, "lab hosts have no systemd");
}

#[test]
fn unknown_host_key_is_refused_with_its_fingerprint() {
    let (lab, _g) = lab!();
    let host = two_hosts(lab).0;
    let dir = tempfile::tempdir().expect("tempdir");
    let other = two_hosts(lab).1;
    let kh = temp_known_hosts(
        dir.path(),
        &format!("{} {}\n", other.internal, host_key(lab, other)),
    );
    let mut cfg = config(lab, host);
    cfg.known_hosts = kh.clone();
    let err = SshTransport::connect(cfg).expect_err("must refuse");
    let msg = err.to_string();
    let fp = ssh_keygen_fingerprint(&host_key(lab, host));
    assert!(
        matches!(err, TransportError::HostKeyUnknown { .. }),
        "{msg}"
    );
    assert!(msg.contains(&fp), "fingerprint {fp} missing: {msg}");
    assert!(
        msg.contains("--accept-new-host-keys") && msg.contains("ssh-keyscan"),
        "{msg}"
    );
    assert!(msg.contains(&host.fqdn), "{msg}");
    // Nothing was written.
    assert_eq!(std::fs::read_to_string(&kh).expect("kh").lines().count(), 1);
}

#[test]
fn changed_host_key_is_refused_even_with_accept_new() {
    let (lab, _g) = lab!();
    let host = two_hosts(lab).0;
    let impostor_key = host_key(lab, two_hosts(lab).1);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!("# other stuff\n{} {impostor_key}\n", host.internal);
    let kh = temp_known_hosts(dir.path(), &text);
    let mut cfg = config(lab, host);
    cfg.known_hosts = kh.clone();
    cfg.accept_new_host_keys = true;
    let err = SshTransport::connect(cfg).expect_err("must refuse");
    let msg = err.to_string();
    assert!(
        matches!(err, TransportError::HostKeyMismatch { .. }),
        "{msg}"
    );
    assert!(msg.starts_with("HOST KEY MISMATCH"), "{msg}");
    assert!(
        msg.contains(&ssh_keygen_fingerprint(&host_key(lab, host))),
        "{msg}"
    );
    assert!(msg.contains("(line 2)"), "{msg}");
    assert!(err.is_host_key_error());
    assert_eq!(
        std::fs::read_to_string(&kh).expect("kh"),
        text,
        "known_hosts must not change"
    );
}

#[test]
fn accept_new_appends_then_connects_strictly() {
    let (lab, _g) = lab!();
    let host = two_hosts(lab).0;
    let dir = tempfile::tempdir().expect("tempdir");
    let kh = dir.path().join("known_hosts"); // does not exist yet
    let mut cfg = config(lab, host);
    cfg.known_hosts = kh.clone();
    cfg.accept_new_host_keys = true;
    let mut t = SshTransport::connect(cfg.clone()).expect("trust on first use");
    assert!(t.run(&Command::new("true")).expect("runs").success());
    let text = std::fs::read_to_string(&kh).expect("written");
    assert_eq!(text, format!("{} {}\n", host.internal, host_key(lab, host)));
    cfg.accept_new_host_keys = false;
    SshTransport::connect(cfg).expect("strict connect with the learned key");
}

#[test]
fn wrong_client_key_fails_auth_with_hint() {
    let (lab, _g) = lab!();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("id_stranger");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let mut cfg = config(lab, two_hosts(lab).0);
    cfg.auth = SshAuth::KeyFile {
        path: key,
        passphrase: None,
    };
    let err = SshTransport::connect(cfg).expect_err("unauthorized key");
    let msg = err.to_string();
    assert!(matches!(err, TransportError::Auth { .. }), "{msg}");
    assert!(msg.contains("authorized_keys"), "{msg}");
}

/// A second sshd on port 2222 of a lab host, offering ed25519 *and* ECDSA
/// host keys, started through the transport itself. Covers `[ip]:port`
/// entries and the libssh2 pitfall: known_hosts with only the ECDSA key must
/// negotiate ECDSA, not fail with a mismatch on ed25519.
#[test]
fn ecdsa_only_known_hosts_and_non_standard_port() {
    let (lab, _g) = lab!();
    let host = two_hosts(lab).0;
    let mut t = connect(lab, host);
    let d = format!("{WORK}/sshd2222");
    let pubkey = std::fs::read_to_string(lab.key.with_extension("pub")).expect("client pub key");
    t.run_ok(&Command::new("rm").args(["-rf", &d]))
        .expect("clean");
    t.write_file(
        &format!("{d}/authorized_keys"),
        pubkey.as_bytes(),
        &WriteOpts::default().mode(0o600).create_dirs(true),
    )
    .expect("authorized_keys");
    let sshd_config = format!(
        "ListenAddress {ip}:2222\nHostKey {d}/ed25519\nHostKey {d}/ecdsa\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
        ip = host.internal
    );
    t.write_file(
        &format!("{d}/sshd_config"),
        sshd_config.as_bytes(),
        &WriteOpts::default(),
    )
    .expect("sshd_config");
    t.run_ok(&sh(&format!(
        "ssh-keygen -q -t ed25519 -N '' -f {d}/ed25519 && ssh-keygen -q -t ecdsa -N '' -f {d}/ecdsa && mkdir -p /run/sshd && /usr/sbin/sshd -f {d}/sshd_config -E {d}/log"
    )))
    .expect("start second sshd");
    let stop = |t: &mut SshTransport| {
        let _ = t.run(&sh(&format!("kill $(cat {d}/sshd.pid)")));
    };

    let ecdsa = t
        .read_file(&format!("{d}/ecdsa.pub"))
        .expect("read")
        .expect("ecdsa.pub");
    let ecdsa = String::from_utf8_lossy(&ecdsa);
    let ecdsa: Vec<&str> = ecdsa.split_whitespace().take(2).collect();
    let dir = tempfile::tempdir().expect("tempdir");

    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Only the ECDSA key, filed under [ip]:2222.
        let kh = temp_known_hosts(
            dir.path(),
            &format!("[{}]:2222 {} {}\n", host.internal, ecdsa[0], ecdsa[1]),
        );
        let mut cfg = config(lab, host);
        cfg.port = 2222;
        cfg.known_hosts = kh;
        let mut t2 = SshTransport::connect(cfg.clone()).expect("ECDSA negotiated and matched");
        assert_eq!(
            t2.run(&Command::new("uname").arg("-n"))
                .expect("runs")
                .stdout_text()
                .trim(),
            host.fqdn
        );

        // The port-22 entry (plain ip) does not vouch for port 2222.
        cfg.known_hosts = temp_known_hosts(
            dir.path(),
            &format!("{} {}\n", host.internal, host_key(lab, host)),
        );
        let err = SshTransport::connect(cfg).expect_err("plain entry is for port 22 only");
        assert!(
            matches!(err, TransportError::HostKeyUnknown { .. }),
            "{err}"
        );

        // Port 22 offers only ed25519; known_hosts only has an ECDSA key for
        // it: refuse, naming the types, rather than silently using ed25519.
        let mut cfg = config(lab, host);
        cfg.known_hosts = temp_known_hosts(
            dir.path(),
            &format!("{} {} {}\n", host.internal, ecdsa[0], ecdsa[1]),
        );
        let err = SshTransport::connect(cfg).expect_err("no common host key type");
        assert!(
            matches!(err, TransportError::HostKeyAlgorithms { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("ecdsa-sha2-nistp256"), "{err}");
    }));
    stop(&mut t);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn command_timeout_stops_the_command_and_keeps_the_session() {
    let (lab, _g) = lab!();
    let mut t = connect(lab, two_hosts(lab).0);
    let t0 = Instant::now();
    let err = t
        .run(&sh("sleep 30; : xfed-timeout-marker").timeout(Duration::from_secs(1)))
        .expect_err("times out");
    let took = t0.elapsed();
    eprintln!("MEASURE command timeout 1 s fired after {}", ms(took));
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(2500),
        "took {took:?}"
    );
    // Same session still works, and the remote command is gone.
    std::thread::sleep(Duration::from_millis(300));
    let out = t
        // `[x]` keeps pgrep's own command line (and its wrappers) from matching.
        .run(&Command::new("pgrep").args(["-f", "[x]fed-timeout-marker"]))
        .expect("session reusable after a timeout");
    assert_eq!(out.status, 1, "command survived its timeout: {out:?}");
}

#[test]
fn connect_errors_are_quick_and_clear() {
    let (lab, _g) = lab!();
    // Port 1 on a live host: refused at once.
    let mut cfg = config(lab, two_hosts(lab).0);
    cfg.port = 1;
    let t0 = Instant::now();
    let err = SshTransport::connect(cfg).expect_err("nothing listens on port 1");
    assert!(matches!(err, TransportError::Connect { .. }), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(err.to_string().contains(":1`"), "{err}");

    // An address where nobody answers: the connect timeout applies.
    let mut cfg = config(lab, two_hosts(lab).0);
    cfg.address = "203.0.113.250".into();
    cfg.connect_timeout = Duration::from_secs(1);
    let t0 = Instant::now();
    let err = SshTransport::connect(cfg).expect_err("nobody there");
    let took = t0.elapsed();
    eprintln!("MEASURE connect timeout 1 s fired after {}", ms(took));
    assert!(
        matches!(err, TransportError::ConnectTimeout { .. }),
        "{err}"
    );
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

#[test]
fn session_killed_while_idle_is_reopened() {
    let (lab, _g) = lab!();
    let host = two_hosts(lab).0;
    let mut victim = connect(lab, host);
    // The shell's parent is the remote `timeout` wrapper, whose parent is
    // the sshd process serving this session.
    let out = victim.run_ok(&sh("ps -o ppid= -p $PPID")).expect("pid");
    let session_pid = out.stdout_text().trim().to_string();
    let mut killer = connect(lab, host);
    killer
        .run_ok(&Command::new("kill").arg(&session_pid))
        .expect("kill the victim's sshd session");
    std::thread::sleep(Duration::from_millis(200));
    let out = victim
        .run(&Command::new("echo").arg("again"))
        .expect("reconnected transparently");
    assert_eq!(out.stdout, b"again\n");
}

/// `become: sudo` end to end. Needs a non-root login with passwordless sudo
/// on the lab hosts, named in `XFED_LAB_SUDO_USER` (and optionally one whose
/// sudo asks for a password, `XFED_LAB_SUDO_PASSWORD_USER`); skipped
/// otherwise.
#[test]
fn become_sudo_runs_reads_and_writes_as_root() {
    let (lab, _g) = lab!();
    let Ok(user) = std::env::var("XFED_LAB_SUDO_USER") else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: become_sudo_runs_reads_and_writes_as_root needs XFED_LAB_SUDO_USER (a lab login with NOPASSWD sudo)"
        );
        return;
    };
    let host = two_hosts(lab).0;
    let mut cfg = config(lab, host);
    cfg.user = user.clone();
    let mut plain = SshTransport::connect(cfg.clone()).expect("connect as the sudo user");
    cfg.escalation = Become::Sudo;
    let mut t = SshTransport::connect(cfg.clone()).expect("connect with become");

    let out = t.run_ok(&Command::new("id").arg("-u")).expect("id");
    assert_eq!(out.stdout_text().trim(), "0");
    let out = plain.run_ok(&Command::new("id").arg("-un")).expect("id");
    assert_eq!(out.stdout_text().trim(), user);

    let path = format!("{WORK}/sudo/secret.conf");
    t.write_file(
        &path,
        b"only root reads this\n",
        &WriteOpts::default()
            .mode(0o600)
            .owner("root:root")
            .create_dirs(true),
    )
    .expect("write under sudo");
    let st = t.stat(&path).expect("stat").expect("exists");
    assert_eq!((st.mode, st.owner.as_deref()), (0o600, Some("root")));
    assert_eq!(
        t.read_file(&path).expect("read under sudo").as_deref(),
        Some(&b"only root reads this\n"[..])
    );
    // Without become the same read is refused: sudo really was used.
    let err = plain
        .read_file(&path)
        .expect_err("not readable as the user");
    assert!(err.to_string().contains("Permission denied"), "{err}");

    // A timeout under sudo still stops the command (timeout runs as root).
    let err = t
        .run(&sh("sleep 30; : xfed-sudo-timeout-marker").timeout(Duration::from_secs(1)))
        .expect_err("times out");
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    std::thread::sleep(Duration::from_millis(300));
    let out = t
        .run(&Command::new("pgrep").args(["-f", "[x]fed-sudo-timeout-marker"]))
        .expect("pgrep");
    assert_eq!(out.status, 1, "command survived: {out:?}");
    assert!(t.remove_file(&path).expect("remove"));

    if let Ok(user) = std::env::var("XFED_LAB_SUDO_PASSWORD_USER") {
        cfg.user = user;
        let mut t = SshTransport::connect(cfg).expect("connect");
        let err = t
            .run_ok(&Command::new("true"))
            .expect_err("sudo wants a password");
        let msg = err.to_string();
        assert!(
            msg.contains("a password is required") && msg.contains("NOPASSWD"),
            "{msg}"
        );
    }
}

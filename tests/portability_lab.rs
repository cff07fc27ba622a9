//! The gateway built here must run on the edge's C library: against the real
//! lab, through the real `xfed` binary.
//!
//! The lab's hosts share this machine's glibc, so a plan goes through. To
//! have a real lab host report an older glibc, the test changes that host
//! the way an administrator's login environment would: its root's
//! `~/.bashrc` (private to the host) puts a directory first on `PATH` whose
//! `getconf` answers `glibc 2.17` (CentOS 7's), or nothing at all (as on a
//! musl host). xfed itself is untouched and reads the fact over SSH as it
//! reads any other. Both files are removed again, whatever the test's
//! outcome.
//!
//! Run inside the lab's controller namespace (tests/run does):
//! `tests/lab/lab exec -- cargo test --test portability_lab`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::lab::{Host, Lab, Role};
use common::xfed::{lab_spec, reset, xfed};

/// The stand-in `getconf`'s directory in the host's `/root`, and the
/// marker of the `.bashrc` line that puts it first on `PATH` (before the
/// interactive-only part of Debian's `.bashrc`, which bash reads for
/// commands run over ssh).
const BIN: &str = ".xfed-test-libc";
const MARK: &str = "# xfed portability_lab";

/// A host whose `getconf GNU_LIBC_VERSION` prints `answer` (or, with
/// `None`, nothing, as musl's does) until dropped. The files are written
/// into the host's private `/root` through the lab's state dir.
struct ReportsLibc {
    home: PathBuf,
    bashrc: Option<Vec<u8>>,
}

impl ReportsLibc {
    fn new(lab: &Lab, host: &Host, answer: Option<&str>) -> Self {
        let home = lab.dir.join("hosts").join(&host.name).join("fs/root");
        let bashrc = std::fs::read(home.join(".bashrc")).ok();
        let guard = ReportsLibc {
            home: home.clone(),
            bashrc: bashrc.clone(),
        };
        let answer = match answer {
            Some(a) => format!("echo '{a}'; exit 0"),
            None => "echo \"getconf: $1: invalid variable\" >&2; exit 1".into(),
        };
        std::fs::create_dir_all(home.join(BIN)).expect("mkdir");
        let getconf = home.join(BIN).join("getconf");
        std::fs::write(
            &getconf,
            format!(
                "#!/bin/sh\nif [ \"$1\" = GNU_LIBC_VERSION ]; then {answer}; fi\nexec /usr/bin/getconf \"$@\"\n"
            ),
        )
        .expect("write getconf");
        std::fs::set_permissions(&getconf, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut text = format!("PATH=/root/{BIN}:$PATH {MARK}\n").into_bytes();
        text.extend(bashrc.unwrap_or_default());
        std::fs::write(home.join(".bashrc"), text).expect("write .bashrc");
        guard
    }
}

impl Drop for ReportsLibc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.home.join(BIN));
        let bashrc = self.home.join(".bashrc");
        let _ = match &self.bashrc {
            Some(text) => std::fs::write(&bashrc, text),
            None => std::fs::remove_file(&bashrc),
        };
    }
}

/// What xfed could change on a host: every file under its directories,
/// with size and modification time (the gateway's log left out).
fn host_state(lab: &Lab, h: &Host) -> String {
    lab.ssh_ok(
        h,
        "find /etc/xfed /opt/xfed /var/lib/xfed -path /var/lib/xfed/log -prune -o -printf '%p %y %s %m %T@\\n' | sort",
    )
}

/// The zone as PowerDNS serves it through its API (status and body).
fn zone(lab: &Lab) -> String {
    let out = lab
        .command("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-H",
            &format!("X-API-Key: {}", lab.dns.api_key()),
            &format!(
                "{}/api/v1/servers/localhost/zones/contoso.example.",
                lab.dns.api
            ),
        ])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The newest `GLIBC_2.x` the built gateway names, read with `strings`-like
/// scanning of its bytes (not with xfed's ELF reader).
fn newest_glibc_in(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read the gateway");
    let mut newest: Option<(u32, u32)> = None;
    for at in 0..bytes.len().saturating_sub(8) {
        if let Some(tail) = bytes[at..].strip_prefix(b"GLIBC_2.") {
            let digits: String = tail
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .map(|b| *b as char)
                .collect();
            if let Ok(minor) = digits.parse::<u32>() {
                newest = newest.max(Some((2, minor)));
            }
        }
    }
    let (major, minor) = newest.expect("the gateway names a glibc version");
    format!("{major}.{minor}")
}

#[test]
fn the_lab_plans_and_an_edge_with_an_older_or_no_glibc_is_refused() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let s = lab_spec(lab, |t| t);

    // The lab's edges run this machine's glibc: nothing to refuse.
    let plan = xfed(lab, &["plan", "--detailed-exitcode", s.path()]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(!plan.stderr.contains("glibc"), "{plan:?}");

    let gateway = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/gateway/release/xfed-gateway");
    let needs = newest_glibc_in(&gateway);

    let edges: Vec<&Host> = lab.hosts_with(Role::Edge).collect();
    let (old, none) = (edges[1], edges[0]);
    let before: Vec<String> = lab.hosts.iter().map(|h| host_state(lab, h)).collect();
    let zone_before = zone(lab);
    {
        let _old = ReportsLibc::new(lab, old, Some("glibc 2.17"));
        let _none = ReportsLibc::new(lab, none, None);
        // What the host now says, through the same login xfed uses.
        assert_eq!(
            lab.ssh_ok(old, "getconf GNU_LIBC_VERSION").trim(),
            "glibc 2.17"
        );

        let plan = xfed(lab, &["plan", s.path()]);
        assert_eq!(plan.code, 1, "{plan:?}");
        let err = &plan.stderr;
        assert!(
            err.contains(&format!(
                "needs glibc {needs} or newer, which 2 edge servers lack"
            )),
            "the binary's requirement is named: {plan:?}"
        );
        assert!(
            err.contains(&format!(
                "{}: glibc 2.17, older than the {needs} the gateway needs",
                old.fqdn
            )),
            "the host and its glibc are named: {plan:?}"
        );
        assert!(
            err.contains(&format!("{}: unknown C library", none.fqdn)),
            "{plan:?}"
        );
        assert!(
            err.contains("hint: build on a machine whose glibc is 2.17 or older"),
            "{plan:?}"
        );
        assert!(!plan.stdout.contains("Plan:"), "no plan is shown: {plan:?}");
        eprintln!("refused as expected:\n{}", plan.stderr);
    }
    let after: Vec<String> = lab.hosts.iter().map(|h| host_state(lab, h)).collect();
    assert_eq!(before, after, "nothing changed on any host");
    assert_eq!(zone(lab), zone_before, "the zone was not touched");

    // The hosts are themselves again: the plan goes through.
    let plan = xfed(lab, &["plan", "--detailed-exitcode", s.path()]);
    assert_eq!(plan.code, 2, "{plan:?}");
}

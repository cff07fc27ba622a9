//! `xfed hosts scan` against the real lab, through the real binary: the
//! fingerprints it prints are the ones `ssh-keygen -lf` gives for each
//! host's own public host key (kept in the lab's state dir), it writes
//! nothing without `--write`, with `--write` a following `plan` connects
//! without `--accept-new-host-keys`, and a changed key is refused.
//!
//! Run inside the lab's controller namespace (tests/run does):
//! `tests/lab/lab exec -- cargo test --test hosts_scan_lab`.

mod common;

use std::path::Path;
use std::process::Command;

use common::lab::{Host, Lab};
use common::xfed::{lab_spec_hosts, lab_spec_with, path_str, xfed};

/// `ssh-keygen -lf` of the host's public host key: `(bits, fingerprint,
/// type)`, e.g. `("256", "SHA256:…", "(ED25519)")`.
fn keygen(lab: &Lab, h: &Host) -> (String, String, String) {
    let pubkey = lab
        .dir
        .join("hosts")
        .join(&h.name)
        .join("ssh_host_ed25519_key.pub");
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&pubkey)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let f: Vec<&str> = text.split_whitespace().collect();
    (
        f[0].to_string(),
        f[1].to_string(),
        f[f.len() - 1].to_string(),
    )
}

/// The line `hosts scan` prints for `h`'s key, without its state.
fn expected_line(lab: &Lab, h: &Host) -> String {
    let (bits, fp, kind) = keygen(lab, h);
    format!("  {bits} {fp} {} {kind}  ", h.internal)
}

/// The lab spec with its known_hosts at `known_hosts` (relative to the
/// spec's directory, or absolute).
fn spec_with_known_hosts(lab: &Lab, known_hosts: &str) -> common::xfed::TestSpec {
    let kh = known_hosts.to_string();
    lab_spec_with(lab, move |t, _| {
        let t2 = t.replace(
            "known_hosts: \"{{ lab }}/keys/known_hosts\"",
            &format!("known_hosts: \"{kh}\""),
        );
        assert_ne!(t, t2, "the lab spec names its known_hosts");
        t2
    })
}

#[test]
fn scan_prints_ssh_keygen_fingerprints_writes_only_when_asked_and_then_plan_connects() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();

    // The lab's own known_hosts has every host: all match, nothing written.
    let s = spec_with_known_hosts(lab, path_str(&lab.known_hosts));
    let before = std::fs::read(&lab.known_hosts).expect("read known_hosts");
    let scan = xfed(lab, &["hosts", "scan", s.path()]);
    assert_eq!(scan.code, 0, "{scan:?}");
    for h in lab_spec_hosts(lab) {
        let line = expected_line(lab, h);
        assert!(
            scan.stdout
                .contains(&format!("{}  {}:22\n{line}match", h.fqdn, h.internal)),
            "{} should show `{line}match`: {scan:?}",
            h.name
        );
    }
    assert_eq!(std::fs::read(&lab.known_hosts).expect("read"), before);

    // An empty known_hosts: every key is new; without --write nothing is
    // written, and plan refuses the unknown hosts.
    let dir = tempfile::tempdir().expect("tempdir");
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, "").expect("empty known_hosts");
    let s = spec_with_known_hosts(lab, path_str(&kh));
    let scan = xfed(lab, &["hosts", "scan", s.path()]);
    assert_eq!(scan.code, 0, "{scan:?}");
    for h in lab_spec_hosts(lab) {
        let line = expected_line(lab, h);
        assert!(
            scan.stdout.contains(&format!("{line}new\n")),
            "{}: {scan:?}",
            h.name
        );
    }
    assert!(scan.stderr.contains("--write"), "{scan:?}");
    assert_eq!(std::fs::read(&kh).expect("read"), b"", "nothing written");
    let plan = xfed(lab, &["plan", s.path()]);
    assert_eq!(plan.code, 1, "unknown host keys are refused: {plan:?}");

    // --write: the keys are recorded; `ssh-keygen -lf` of the file lists
    // each host's key under its address, and plan connects.
    let scan = xfed(lab, &["hosts", "scan", "--write", s.path()]);
    assert_eq!(scan.code, 0, "{scan:?}");
    assert!(
        scan.stdout.contains(&format!(
            "Wrote {} new keys to known_hosts.",
            lab_spec_hosts(lab).len()
        )),
        "{scan:?}"
    );
    let listed = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&kh)
        .output()
        .expect("ssh-keygen");
    let listed = String::from_utf8_lossy(&listed.stdout);
    for h in lab_spec_hosts(lab) {
        let (bits, fp, kind) = keygen(lab, h);
        assert!(
            listed.contains(&format!("{bits} {fp} {} {kind}", h.internal)),
            "{}: {listed}",
            h.name
        );
    }
    let plan = xfed(lab, &["plan", "--detailed-exitcode", s.path()]);
    assert!(
        plan.code == 0 || plan.code == 2,
        "plan connects with the scanned keys: {plan:?}"
    );
    // A second scan finds them all on file and writes nothing more.
    let written = std::fs::read(&kh).expect("read");
    let scan = xfed(lab, &["hosts", "scan", "--write", s.path()]);
    assert_eq!(scan.code, 0, "{scan:?}");
    assert!(scan.stdout.contains("Wrote 0 new keys"), "{scan:?}");
    assert_eq!(std::fs::read(&kh).expect("read"), written);
}

#[test]
fn a_changed_host_key_is_shown_and_never_replaced() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let hosts: Vec<&Host> = lab_spec_hosts(lab);
    let (victim, other) = (hosts[0], hosts[1]);
    // known_hosts files `victim`'s address with `other`'s key: as if the
    // victim's key had changed since it was recorded.
    let other_key = std::fs::read_to_string(
        lab.dir
            .join("hosts")
            .join(&other.name)
            .join("ssh_host_ed25519_key.pub"),
    )
    .expect("read pub");
    let fields: Vec<&str> = other_key.split_whitespace().collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let kh = dir.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!("{} {} {}\n", victim.internal, fields[0], fields[1]),
    )
    .expect("write");
    let before = std::fs::read(&kh).expect("read");
    let s = spec_with_known_hosts(lab, path_str(&kh));

    let scan = xfed(lab, &["hosts", "scan", s.path()]);
    assert_eq!(scan.code, 1, "{scan:?}");
    let (_, victim_fp, _) = keygen(lab, victim);
    let (_, other_fp, _) = keygen(lab, other);
    assert!(
        scan.stdout.contains(&format!(
            "{}CHANGED: known_hosts line 1 has {other_fp}",
            expected_line(lab, victim)
        )),
        "{scan:?}"
    );

    let scan = xfed(lab, &["hosts", "scan", "--write", s.path()]);
    assert_eq!(scan.code, 1, "{scan:?}");
    assert!(scan.stderr.contains("nothing was written"), "{scan:?}");
    assert!(
        scan.stderr.contains(&victim_fp) && scan.stderr.contains(&other_fp),
        "both fingerprints are named: {scan:?}"
    );
    assert_eq!(std::fs::read(&kh).expect("read"), before, "nothing written");
    assert!(Path::new(&kh).exists());
}

//! The gateway holds no privilege on the edge, checked in the real lab
//! through the real `xfed` binary and tools we did not write: after
//! apply, every edge's gateway runs as `xfed-gateway` (uid ≠ 0) with no
//! capability (`/proc/PID/status`), its keys and configuration are
//! 0600/0640 root:xfed-gateway, that user cannot write its binary or
//! configuration (tried as it, with `setpriv`), a second apply changes
//! nothing and `xfed doctor` passes its privilege check. And a host whose
//! login user may not use sudo (`become: sudo`) is reported by `plan` and
//! `apply` as not ready, with the fix, while the other hosts stay as they
//! were.
//!
//! The user is created inside the lab hosts, whose /etc is an overlay of
//! their own: the machine's /etc/passwd never learns of it (checked).
//!
//! Run inside the lab: `tests/lab/lab exec -- cargo test --test privilege_lab`.

mod common;

use common::lab::{Host, Lab, Role};
use common::xfed::{TestSpec, apply_ok, gateway_pid, lab_spec, reset, xfed};

const USER: &str = "xfed-gateway";
const NO_SUDO: &str = "xfednosudo";

/// Users and sudoers rules are made on lab hosts only where the host's
/// /etc is the lab's overlay, never the machine's own.
fn assert_own_etc(lab: &Lab, h: &Host) {
    let mount = lab.ssh_ok(h, "findmnt -n -o FSTYPE,SOURCE /etc");
    assert_eq!(
        mount.split_whitespace().collect::<Vec<_>>(),
        ["overlay", "lab-etc"],
        "{}: /etc is not the lab's overlay; `tests/lab/lab up` re-creates the host",
        h.name
    );
}

fn edges(lab: &Lab) -> Vec<&Host> {
    lab.hosts_with(Role::Edge).collect()
}

/// The fields of `/proc/PID/status` line `key` (`Uid:` → four ids).
fn status_field(status: &str, key: &str) -> Vec<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no `{key}` in:\n{status}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Runs `script` on `h` as the gateway's user (its uid, gid and groups),
/// as the gateway itself would; returns whether it succeeded and stderr.
fn as_gateway_user(lab: &Lab, h: &Host, script: &str) -> (bool, String) {
    let out = lab.ssh(
        h,
        &format!(
            "setpriv --reuid={USER} --regid={USER} --init-groups -- sh -c {}",
            common::internal::sh_quote(script)
        ),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_unprivileged(lab: &Lab, h: &Host) {
    let pid = gateway_pid(lab, h);
    let status = lab.ssh_ok(h, &format!("cat /proc/{pid}/status"));
    let uids = status_field(&status, "Uid:");
    let gids = status_field(&status, "Gid:");
    assert_eq!(uids.len(), 4, "{status}");
    for id in uids.iter().chain(&gids) {
        assert_ne!(id, "0", "{}: a root id in\n{status}", h.name);
    }
    for cap in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(
            status_field(&status, cap),
            ["0000000000000000"],
            "{}: {cap}\n{status}",
            h.name
        );
    }
    assert_eq!(status_field(&status, "NoNewPrivs:"), ["1"], "{status}");
    // The uid is the user's, by the host's own passwd.
    let entry = lab.ssh_ok(h, &format!("getent passwd {USER}"));
    let uid = entry.split(':').nth(2).expect("uid field");
    assert_eq!(uids[1], uid, "{}: {entry}", h.name);

    // Keys 0600/0640 and configuration 0640, root:xfed-gateway; the
    // binary root's and not group- or world-writable.
    let listing = lab.ssh_ok(
        h,
        "stat -c '%n %a %U %G' /etc/xfed/tls/external.key /etc/xfed/tls/internal.key \
         /etc/xfed/gateway.toml /etc/xfed/policy.toml /opt/xfed/bin/xfed-gateway",
    );
    for line in listing.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let [path, mode, owner, group] = f[..] else {
            panic!("{line}")
        };
        assert_eq!(owner, "root", "{}: {line}", h.name);
        if path.ends_with(".key") {
            assert!(mode == "600" || mode == "640", "{}: {line}", h.name);
            assert_eq!(group, USER, "{}: {line}", h.name);
        } else if path.ends_with(".toml") {
            assert_eq!((mode, group), ("640", USER), "{}: {line}", h.name);
        } else {
            assert_eq!((mode, group), ("755", "root"), "{}: {line}", h.name);
        }
    }

    // As the gateway's user: it reads its configuration and keys (the
    // control: this really is that user) ...
    let (ok, err) = as_gateway_user(
        lab,
        h,
        "cat /etc/xfed/gateway.toml /etc/xfed/tls/external.key >/dev/null",
    );
    assert!(
        ok,
        "{}: the gateway's user cannot read its files: {err}",
        h.name
    );
    // ... but cannot change its binary, its configuration, its keys, or
    // put a file beside them.
    for target in [
        "/opt/xfed/bin/xfed-gateway",
        "/etc/xfed/gateway.toml",
        "/etc/xfed/policy.toml",
        "/etc/xfed/tls/external.key",
        "/etc/xfed/extra.toml",
        "/opt/xfed/bin/other",
    ] {
        let (ok, err) = as_gateway_user(lab, h, &format!(": >> {target}"));
        assert!(!ok, "{}: {USER} could write {target}", h.name);
        assert!(err.contains("Permission denied"), "{}: {err}", h.name);
    }
    let (ok, _) = as_gateway_user(lab, h, "chmod 0666 /etc/xfed/gateway.toml");
    assert!(!ok, "{}: {USER} could chmod its config", h.name);
    // Anyone else cannot read the key at all.
    let out = lab.ssh(
        h,
        "setpriv --reuid=nobody --regid=nogroup --clear-groups -- cat /etc/xfed/tls/external.key",
    );
    assert!(!out.status.success(), "{}: nobody read the key", h.name);
}

#[test]
fn every_gateway_runs_unprivileged_and_a_second_apply_changes_nothing() {
    let Some(lab) = Lab::get() else { return };
    let _lock = lab.lock();
    for h in edges(lab) {
        assert_own_etc(lab, h);
    }
    reset(lab);
    let spec = lab_spec(lab, |t| t);
    // The user may be left from an earlier run (users stay, see
    // `ManifestEntry::of`): apply creates it or finds it.
    apply_ok(lab, &spec);
    for h in edges(lab) {
        assert_unprivileged(lab, h);
    }
    let pids: Vec<String> = edges(lab).iter().map(|h| gateway_pid(lab, h)).collect();

    let second = xfed(lab, &["apply", "--auto-approve", spec.path()]);
    assert_eq!(second.code, 0, "{second:?}");
    assert!(
        second
            .stdout
            .contains("No changes. The live world matches the spec."),
        "{second:?}"
    );
    let after: Vec<String> = edges(lab).iter().map(|h| gateway_pid(lab, h)).collect();
    assert_eq!(pids, after, "the second apply restarted a gateway");

    let doctor = xfed(lab, &["doctor", spec.path()]);
    for h in edges(lab) {
        assert!(
            doctor
                .stdout
                .lines()
                .any(|l| l.starts_with("PASS  gateway privilege")
                    && l.contains(&h.name)
                    && l.contains(&format!("runs as `{USER}`"))),
            "{}: {doctor:?}",
            h.name
        );
    }

    // An edge deployed before its gateway ran unprivileged has its keys
    // 0600 root:root, which the gateway's user cannot read: the plan sets
    // their access in place (no new certificate), and the restarted
    // gateway passes its health gate.
    let edge1 = lab.host("edge1");
    lab.ssh_ok(
        edge1,
        "chown root:root /etc/xfed/tls/*.key && chmod 0600 /etc/xfed/tls/*.key",
    );
    let cert_before = lab.ssh_ok(edge1, "sha256sum /etc/xfed/tls/external.crt");
    let plan = xfed(lab, &["plan", spec.path()]);
    assert!(
        plan.stdout.contains(&format!(
            "the key file is root:root:600, not root:{USER}:640: its access is set in place"
        )),
        "{plan:?}"
    );
    apply_ok(lab, &spec);
    let keys = lab.ssh_ok(edge1, "stat -c '%U:%G:%a' /etc/xfed/tls/*.key");
    assert!(
        keys.lines().all(|l| l == format!("root:{USER}:640")),
        "{keys}"
    );
    assert_eq!(
        lab.ssh_ok(edge1, "sha256sum /etc/xfed/tls/external.crt"),
        cert_before,
        "the certificate itself was kept"
    );
    assert_unprivileged(lab, edge1);

    // The user lives in the hosts' own /etc, not in the machine's.
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    assert!(
        !passwd.lines().any(|l| l.starts_with(&format!("{USER}:"))),
        "the machine's /etc/passwd has {USER}"
    );
}

/// The lab spec with `become: sudo`, edge2 logged into as a user without
/// sudo rights.
fn spec_with_a_user_without_sudo(lab: &Lab) -> TestSpec {
    lab_spec(lab, |t| {
        t.replacen(
            "  connect_timeout_secs: 5\n",
            "  connect_timeout_secs: 5\n  become: sudo\n",
            1,
        )
        .replacen(
            "        internal: { address: 203.0.113.102 }\n",
            &format!("        internal: {{ address: 203.0.113.102 }}\n        ssh: {{ user: {NO_SUDO} }}\n"),
            1,
        )
    })
}

#[test]
fn a_host_without_sudo_rights_is_not_ready_and_no_other_host_is_touched() {
    let Some(lab) = Lab::get() else { return };
    let _lock = lab.lock();
    for h in edges(lab) {
        assert_own_etc(lab, h);
    }
    reset(lab);
    let good = lab_spec(lab, |t| t);
    apply_ok(lab, &good);
    let edge1 = lab.host("edge1");
    let edge2 = lab.host("edge2");
    // A login user on edge2 that sudo does not know (a password of `*`
    // locks nothing for key logins).
    lab.ssh_ok(
        edge2,
        &format!(
            "getent passwd {NO_SUDO} >/dev/null || useradd -M -d /tmp -s /bin/sh -p '*' {NO_SUDO}"
        ),
    );
    // A change is due on edge1: if anything ran there, it would be undone.
    lab.ssh_ok(edge1, "echo '# edited by hand' >> /etc/xfed/policy.toml");
    let policy_before = lab.ssh_ok(edge1, "sha256sum /etc/xfed/policy.toml");
    let pid_before = gateway_pid(lab, edge1);

    let spec = spec_with_a_user_without_sudo(lab);
    for args in [
        vec!["plan", spec.path()],
        vec!["apply", "--auto-approve", spec.path()],
    ] {
        let r = xfed(lab, &args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr
                .contains("1 host is not ready; nothing was changed on any host:"),
            "{args:?}: {r:?}"
        );
        assert!(
            r.stderr.contains(&format!(
                "edge2.contoso.example: `become: sudo`, but sudo refuses `{NO_SUDO}` without a password"
            )),
            "{args:?}: {r:?}"
        );
        assert!(
            r.stderr.contains(&format!(
                "fix: as root on the host: `echo '{NO_SUDO} ALL=(root) NOPASSWD: ALL' > /etc/sudoers.d/xfed"
            )),
            "{args:?}: {r:?}"
        );
        assert!(!r.stderr.contains("edge1.contoso.example:"), "{r:?}");
    }
    assert_eq!(
        lab.ssh_ok(edge1, "sha256sum /etc/xfed/policy.toml"),
        policy_before,
        "edge1 was changed"
    );
    assert_eq!(
        gateway_pid(lab, edge1),
        pid_before,
        "edge1's gateway was restarted"
    );

    // The fix as the message gives it, in the host's own /etc: then the
    // same spec plans again (edge1's hand edit shows as a change).
    lab.ssh_ok(
        edge2,
        &format!("echo '{NO_SUDO} ALL=(root) NOPASSWD: ALL' > /etc/sudoers.d/xfed-test && chmod 0440 /etc/sudoers.d/xfed-test"),
    );
    let r = xfed(lab, &["plan", "--detailed-exitcode", spec.path()]);
    lab.ssh_ok(edge2, "rm -f /etc/sudoers.d/xfed-test");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("policy.toml"), "{r:?}");
    apply_ok(lab, &good);
}

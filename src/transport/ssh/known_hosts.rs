//! `KnownHosts`: which host keys are trusted for which host, read the way
//! OpenSSH reads a known_hosts file.
//!
//! Why not just libssh2's `KnownHosts::check_port`: (1) it does not tell us
//! which key types a host has, and libssh2 does not adapt its host-key
//! algorithm to them, so a host known by its ECDSA key but also offering
//! ed25519 is reported as a mismatch (notes §1); we must set the algorithm
//! preference before the handshake. (2) it lets a plain `host` entry vouch for
//! any port, where OpenSSH uses `[host]:port` for ports other than 22. (3) one
//! line it cannot parse makes it ignore the rest of the file.
//!
//! So each line is parsed here, and libssh2 only answers "does this line name
//! this host?" (plain, `[host]:port` and hashed `|1|…` names, IPv6 forms),
//! one line at a time. The decision (match, unknown, mismatch, revoked) is
//! made here. `@cert-authority` lines are ignored (no certificate support);
//! a key listed `@revoked` is refused for every host.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ssh2::{CheckResult, KnownHostFileKind, Session};

use super::host_key::HostKey;

/// Serialises appends from the per-host threads of one xfed process.
static APPEND_LOCK: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
struct Entry {
    /// 1-based line number, for messages.
    line: usize,
    marker: Marker,
    /// The line without its marker, as libssh2 parses it.
    text: String,
    /// Key type field as written (`ssh-ed25519`, `ssh-rsa`, …).
    key_type: String,
    key: HostKey,
}

/// What known_hosts says about the key a host presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Match,
    /// No entry for this host name at all.
    NotFound,
    /// Entries exist for this host, none with this key (their line numbers).
    Mismatch {
        lines: Vec<usize>,
    },
    /// The key is listed `@revoked` (on this line).
    Revoked {
        line: usize,
    },
}

/// Where one key a host offers stands with known_hosts (`xfed hosts scan`):
/// unlike [`Verdict`], a key of a type not on file for the host is new,
/// not a mismatch, as the host may offer several types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStatus {
    /// On file for this host (on this line).
    Match { line: usize },
    /// No key of this type is on file for this host.
    New,
    /// Another key of the same type is on file for this host (on this line).
    Changed { line: usize, on_file: HostKey },
    /// The key is listed `@revoked` (on this line).
    Revoked { line: usize },
}

/// A parsed known_hosts file.
#[derive(Debug, Clone)]
pub(crate) struct KnownHosts {
    path: PathBuf,
    entries: Vec<Entry>,
}

impl KnownHosts {
    /// Reads `path`; a missing file is an empty one (every host unknown).
    pub(crate) fn load(path: &Path) -> io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Self::parse(path, &String::from_utf8_lossy(&bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::parse(path, "")),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn parse(path: &Path, text: &str) -> Self {
        let entries = text
            .lines()
            .enumerate()
            .filter_map(|(i, line)| parse_line(i + 1, line))
            .collect();
        KnownHosts {
            path: path.to_path_buf(),
            entries,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The name a host is filed under: `host` for port 22, `[host]:port`
    /// otherwise (OpenSSH's convention, IPv6 literals included).
    pub(crate) fn host_name(address: &str, port: u16) -> String {
        if port == 22 {
            address.to_string()
        } else {
            format!("[{address}]:{port}")
        }
    }

    /// Entries (not markers) whose host field names `name`.
    fn entries_for<'a>(&'a self, sess: &Session, name: &str) -> Vec<&'a Entry> {
        self.entries
            .iter()
            .filter(|e| e.marker == Marker::None && line_names(sess, e, name))
            .collect()
    }

    /// Key types on file for `name`, in libssh2 host-key method names, in
    /// the order libssh2 prefers them (`supported`). Empty when nothing
    /// usable is on file, i.e. no restriction.
    pub(crate) fn host_key_prefs(
        &self,
        sess: &Session,
        name: &str,
        supported: &[&str],
    ) -> Vec<String> {
        let mut wanted: Vec<&str> = Vec::new();
        for e in self.entries_for(sess, name) {
            match e.key_type.as_str() {
                // One RSA key serves all three signature algorithms.
                "ssh-rsa" => wanted.extend(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]),
                other => wanted.push(other),
            }
        }
        supported
            .iter()
            .filter(|alg| wanted.contains(alg))
            .map(|alg| alg.to_string())
            .collect()
    }

    /// Key types on file for `name`, as written, for messages.
    pub(crate) fn known_types(&self, sess: &Session, name: &str) -> Vec<String> {
        let mut types: Vec<String> = Vec::new();
        for e in self.entries_for(sess, name) {
            if !types.contains(&e.key_type) {
                types.push(e.key_type.clone());
            }
        }
        types
    }

    /// Decides whether `presented` is the key on file for `name`.
    pub(crate) fn verify(&self, sess: &Session, name: &str, presented: &HostKey) -> Verdict {
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key == *presented)
        {
            return Verdict::Revoked { line: e.line };
        }
        let for_host = self.entries_for(sess, name);
        if for_host.iter().any(|e| e.key == *presented) {
            Verdict::Match
        } else if for_host.is_empty() {
            Verdict::NotFound
        } else {
            Verdict::Mismatch {
                lines: for_host.iter().map(|e| e.line).collect(),
            }
        }
    }

    /// Where `key`, offered by the host filed as `name`, stands.
    pub(crate) fn status(&self, sess: &Session, name: &str, key: &HostKey) -> KeyStatus {
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key == *key)
        {
            return KeyStatus::Revoked { line: e.line };
        }
        let for_host = self.entries_for(sess, name);
        if let Some(e) = for_host.iter().find(|e| e.key == *key) {
            return KeyStatus::Match { line: e.line };
        }
        match for_host.iter().find(|e| e.key.key_type() == key.key_type()) {
            Some(e) => KeyStatus::Changed {
                line: e.line,
                on_file: e.key.clone(),
            },
            None => KeyStatus::New,
        }
    }

    /// Trust on first use: appends `name keytype base64` to the file
    /// (created 0600 if missing), adding a newline first if the last line
    /// lacks one.
    pub(crate) fn append(path: &Path, name: &str, key: &HostKey) -> io::Result<()> {
        let _guard = APPEND_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let needs_newline = match std::fs::read(path) {
            Ok(bytes) => !bytes.is_empty() && !bytes.ends_with(b"\n"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        let line = format!(
            "{}{name} {} {}\n",
            if needs_newline { "\n" } else { "" },
            key.key_type(),
            key.to_base64()
        );
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(line.as_bytes())?;
        file.sync_all()
    }
}

fn parse_line(line: usize, raw: &str) -> Option<Entry> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    let (marker, rest) = match trimmed.split_once(char::is_whitespace) {
        Some(("@revoked", rest)) => (Marker::Revoked, rest.trim_start()),
        Some(("@cert-authority", rest)) => (Marker::CertAuthority, rest.trim_start()),
        Some((m, _)) if m.starts_with('@') => return None,
        _ => (Marker::None, trimmed),
    };
    let mut fields = rest.split_whitespace();
    let (_hosts, key_type, key) = (fields.next()?, fields.next()?, fields.next()?);
    Some(Entry {
        line,
        marker,
        text: rest.to_string(),
        key_type: key_type.to_string(),
        key: HostKey::from_base64(key)?,
    })
}

/// Whether this entry's host field names `name`, as libssh2 matches names
/// (port -1: the name is compared as given, so `[h]:p` only matches `[h]:p`).
fn line_names(sess: &Session, entry: &Entry, name: &str) -> bool {
    if name.contains('\0') {
        return false;
    }
    let Ok(mut one) = sess.known_hosts() else {
        return false;
    };
    if one
        .read_str(&entry.text, KnownHostFileKind::OpenSSH)
        .is_err()
    {
        return false;
    }
    matches!(one.check(name, entry.key.blob()), CheckResult::Match)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIMdFl7mAX7hd/16vixk1tQsYPDuPv0iL3BKf8abX/Myl";
    const EC: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOUqGjFkhQn21gDy3d2PvAQfvS3jDlQBEslUUVAWFNBBYt82U7zkxgtpGVS2qYZJFnxG5uLTN6e72xdHvmR7RNM=";
    // libssh2 1.11's preference order for host keys.
    const SUPPORTED: &[&str] = &[
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",
    ];

    fn sess() -> Session {
        Session::new().expect("libssh2 session")
    }

    fn kh(text: &str) -> KnownHosts {
        KnownHosts::parse(Path::new("/kh"), text)
    }

    fn key(b64: &str) -> HostKey {
        HostKey::from_base64(b64).expect("key")
    }

    #[test]
    fn prefs_follow_the_entries_for_that_host_only() {
        let s = sess();
        let k = kh(&format!(
            "# comment\n\n203.0.113.101 ecdsa-sha2-nistp256 {EC}\n203.0.113.102 ssh-ed25519 {ED}\n"
        ));
        assert_eq!(
            k.host_key_prefs(&s, "203.0.113.101", SUPPORTED),
            ["ecdsa-sha2-nistp256"]
        );
        assert_eq!(
            k.host_key_prefs(&s, "203.0.113.102", SUPPORTED),
            ["ssh-ed25519"]
        );
        assert!(k.host_key_prefs(&s, "203.0.113.103", SUPPORTED).is_empty());
    }

    #[test]
    fn rsa_entry_allows_all_rsa_signatures_in_libssh2_order() {
        let s = sess();
        // Any valid blob will do for name matching; the type field is what counts.
        let k = kh(&format!("h ssh-rsa {ED}\nh ecdsa-sha2-nistp256 {EC}\n"));
        assert_eq!(
            k.host_key_prefs(&s, "h", SUPPORTED),
            [
                "ecdsa-sha2-nistp256",
                "rsa-sha2-512",
                "rsa-sha2-256",
                "ssh-rsa"
            ]
        );
    }

    #[test]
    fn non_standard_ports_use_bracketed_names_like_openssh() {
        let s = sess();
        let k = kh(&format!(
            "[203.0.113.101]:2222 ecdsa-sha2-nistp256 {EC}\n203.0.113.101 ssh-ed25519 {ED}\n"
        ));
        let on_2222 = KnownHosts::host_name("203.0.113.101", 2222);
        assert_eq!(on_2222, "[203.0.113.101]:2222");
        assert_eq!(
            k.host_key_prefs(&s, &on_2222, SUPPORTED),
            ["ecdsa-sha2-nistp256"]
        );
        assert_eq!(k.verify(&s, &on_2222, &key(EC)), Verdict::Match);
        // The plain entry does not vouch for port 2222, nor the bracketed one for 22.
        assert_eq!(
            k.verify(&s, &on_2222, &key(ED)),
            Verdict::Mismatch { lines: vec![1] }
        );
        let on_22 = KnownHosts::host_name("203.0.113.101", 22);
        assert_eq!(
            k.verify(&s, &on_22, &key(EC)),
            Verdict::Mismatch { lines: vec![2] }
        );
        assert_eq!(
            KnownHosts::host_name("2001:db8::1", 2222),
            "[2001:db8::1]:2222"
        );
    }

    #[test]
    fn hashed_entries_and_name_lists_match() {
        let s = sess();
        // `ssh-keygen -H` of "203.0.113.101 ssh-ed25519 …" and
        // "[203.0.113.101]:2222 ecdsa-sha2-nistp256 …".
        let k = kh(&format!(
            "|1|YODxXd4v/kL4dos/BoptWu2vQN8=|Jd2LRz0PljPngPCsNAOUWnLoDh4= ssh-ed25519 {ED}\n\
             |1|t57D7vfIryFKO87Xe7/53G1SV3U=|i5703fsqupUQ0F4SSzS3tQXr2DA= ecdsa-sha2-nistp256 {EC}\n\
             edge1.contoso.example,198.51.100.7 ecdsa-sha2-nistp256 {EC}\n"
        ));
        assert_eq!(
            k.host_key_prefs(&s, "203.0.113.101", SUPPORTED),
            ["ssh-ed25519"]
        );
        assert_eq!(
            k.host_key_prefs(&s, "[203.0.113.101]:2222", SUPPORTED),
            ["ecdsa-sha2-nistp256"]
        );
        assert_eq!(k.verify(&s, "203.0.113.101", &key(ED)), Verdict::Match);
        assert_eq!(k.verify(&s, "198.51.100.7", &key(EC)), Verdict::Match);
        assert_eq!(
            k.verify(&s, "edge1.contoso.example", &key(EC)),
            Verdict::Match
        );
    }

    #[test]
    fn verdicts() {
        let s = sess();
        let k = kh(&format!(
            "h1 ssh-ed25519 {ED}\n@revoked * ecdsa-sha2-nistp256 {EC}\n"
        ));
        assert_eq!(k.verify(&s, "h1", &key(ED)), Verdict::Match);
        assert_eq!(k.verify(&s, "h2", &key(ED)), Verdict::NotFound);
        assert_eq!(k.verify(&s, "h1", &key(EC)), Verdict::Revoked { line: 2 });
        let k = kh(&format!("h1 ssh-ed25519 {ED}\n"));
        assert_eq!(
            k.verify(&s, "h1", &key(EC)),
            Verdict::Mismatch { lines: vec![1] }
        );
        assert_eq!(k.known_types(&s, "h1"), ["ssh-ed25519"]);
    }

    #[test]
    fn scan_statuses_tell_a_new_type_from_a_changed_key() {
        let s = sess();
        let k = kh(&format!(
            "h1 ssh-ed25519 {ED}\nh2 ecdsa-sha2-nistp256 {EC}\n@revoked * ssh-ed25519 {ED}\n"
        ));
        assert_eq!(k.status(&s, "h2", &key(EC)), KeyStatus::Match { line: 2 });
        assert_eq!(k.status(&s, "h3", &key(EC)), KeyStatus::New);
        // h1 is on file with ed25519 only: its ECDSA key is new, not a mismatch.
        assert_eq!(k.status(&s, "h1", &key(EC)), KeyStatus::New);
        assert_eq!(k.status(&s, "h1", &key(ED)), KeyStatus::Revoked { line: 3 });
        // Another ECDSA key for h2 than the one on file: changed.
        let other_ec = kh(&format!("h2 ecdsa-sha2-nistp256 {EC}\n"));
        let swapped = HostKey::from_base64(EC).map(|k| {
            let mut b = k.blob().to_vec();
            let last = b.len() - 1;
            b[last] ^= 1;
            HostKey::from_blob(&b)
        });
        let swapped = swapped.expect("key");
        assert_eq!(
            other_ec.status(&s, "h2", &swapped),
            KeyStatus::Changed {
                line: 1,
                on_file: key(EC)
            }
        );
    }

    #[test]
    fn bad_lines_do_not_hide_good_ones() {
        let s = sess();
        let k = kh(&format!(
            "garbage\nh1 ssh-ed25519 !!notbase64!!\n@cert-authority *.example ssh-ed25519 {ED}\n@weird h1 x y\nh1 ssh-ed25519 {ED}\n"
        ));
        assert_eq!(k.verify(&s, "h1", &key(ED)), Verdict::Match);
        assert_eq!(k.verify(&s, "x.example", &key(ED)), Verdict::NotFound);
    }

    #[test]
    fn append_then_match() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, format!("h1 ssh-ed25519 {ED}")).expect("write"); // no final newline
        KnownHosts::append(&path, "[h2]:2222", &key(EC)).expect("append");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            format!("h1 ssh-ed25519 {ED}\n[h2]:2222 ecdsa-sha2-nistp256 {EC}\n")
        );
        let k = KnownHosts::load(&path).expect("load");
        assert_eq!(k.verify(&sess(), "[h2]:2222", &key(EC)), Verdict::Match);

        let fresh = dir.path().join("new_known_hosts");
        assert_eq!(
            KnownHosts::load(&fresh)
                .expect("missing is empty")
                .entries
                .len(),
            0
        );
        KnownHosts::append(&fresh, "h3", &key(ED)).expect("create");
        let mode = std::fs::metadata(&fresh).expect("meta");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
    }
}

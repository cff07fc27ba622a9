//! `TransportError`: every way reaching or acting on a host can fail.
//!
//! Each message names the host, says what was being done, and ends with a
//! `hint:` where there is a fix (style §8). Messages carry a trimmed excerpt
//! of stderr, never stdin or file contents, which may be secret. Host-key
//! errors are deliberately loud: they are the only defence against a
//! man-in-the-middle, and no option turns a mismatch into a warning.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::command::Command;
use super::output::Output;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot resolve `{address}` (host `{host}`): {source}")]
    Resolve {
        host: String,
        address: String,
        source: io::Error,
    },

    #[error(
        "cannot connect to `{host}` at `{address}`: {source}\nhint: check that sshd runs there and the address and port are right"
    )]
    Connect {
        host: String,
        address: String,
        source: io::Error,
    },

    #[error(
        "connecting to `{host}` at `{address}` timed out after {after:?}\nhint: check the address and that nothing (firewall, routing) drops the packets"
    )]
    ConnectTimeout {
        host: String,
        address: String,
        after: Duration,
    },

    #[error("SSH handshake with `{host}` at `{address}` failed: {source}")]
    Handshake {
        host: String,
        address: String,
        source: ssh2::Error,
    },

    #[error(
        "SSH handshake with `{host}` at `{address}` failed: `{}` holds only {} key(s) for it and the server offers none of those types\nhint: the host's keys may have been replaced; verify the new key out of band, then update `{}`",
        known_hosts.display(),
        known_types.join(", "),
        known_hosts.display()
    )]
    HostKeyAlgorithms {
        host: String,
        address: String,
        known_hosts: PathBuf,
        known_types: Vec<String>,
    },

    #[error(
        "host key of `{}` at `{}` is not in `{}`: {} {}\nhint: verify the fingerprint out of band (e.g. `ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub` on the host), then add it with `ssh-keyscan`, or rerun with `--accept-new-host-keys` to trust keys of hosts seen for the first time",
        report.host,
        report.address,
        report.known_hosts.display(),
        report.key_type,
        report.fingerprint,
        report.short_type()
    )]
    HostKeyUnknown { report: Box<HostKeyReport> },

    #[error(
        "HOST KEY MISMATCH for `{}` at `{}`: it presented {} {}, which differs from the key(s) for it in `{}`{}. Someone may be intercepting the connection (man-in-the-middle), or the host was reinstalled. Refusing to connect.\nhint: verify the new key out of band; only then remove the old entry with `ssh-keygen -R {} -f {}` and add the new one",
        report.host,
        report.address,
        report.key_type,
        report.fingerprint,
        report.known_hosts.display(),
        lines_suffix(lines),
        report.known_hosts_name(),
        report.known_hosts.display()
    )]
    HostKeyMismatch {
        report: Box<HostKeyReport>,
        /// Lines of known_hosts that hold other keys for this host.
        lines: Vec<usize>,
    },

    #[error(
        "host key of `{}` at `{}` is marked @revoked in `{}` (line {line}): {} {}. Refusing to connect.",
        report.host,
        report.address,
        report.known_hosts.display(),
        report.key_type,
        report.fingerprint
    )]
    HostKeyRevoked {
        report: Box<HostKeyReport>,
        line: usize,
    },

    #[error("cannot {action} known_hosts file `{}`: {source}", path.display())]
    KnownHosts {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },

    #[error(
        "authentication as `{user}` on `{host}` failed ({method}): {source}\nhint: check that the key is readable (and its passphrase, if any), or for ssh-agent that SSH_AUTH_SOCK is set (`ssh-add -l`), and that the public key is in ~{user}/.ssh/authorized_keys on the host"
    )]
    Auth {
        host: String,
        user: String,
        /// `key `/path`` or `ssh-agent`.
        method: String,
        source: ssh2::Error,
    },

    #[error("on `{host}`: the connection task panicked: {message}")]
    Panicked { host: String, message: String },
    #[error("SSH error on `{host}` during {op}: {source}")]
    Ssh {
        host: String,
        op: String,
        source: ssh2::Error,
    },

    #[error("on `{host}`: cannot {op}: {source}")]
    Io {
        host: String,
        op: String,
        source: io::Error,
    },

    #[error(
        "{command} on `{host}` timed out after {after:?}; it was sent SIGTERM\nhint: raise the command timeout if the command is just slow"
    )]
    Timeout {
        host: String,
        command: String,
        after: Duration,
    },

    #[error(
        "{command} on `{host}` failed with exit status {status}{}{}",
        stderr_suffix(stderr),
        hint_suffix(hint)
    )]
    CommandFailed {
        host: String,
        command: String,
        status: i32,
        stderr: String,
        hint: Option<String>,
    },

    #[error("{command} on `{host}`: invalid argument: {message}")]
    InvalidArgument {
        host: String,
        command: String,
        message: String,
    },

    #[error("{command} on `{host}` gave output xfed cannot read: {message}")]
    UnexpectedOutput {
        host: String,
        command: String,
        message: String,
    },
}

/// The key a host presented, and the file it was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyReport {
    pub host: String,
    /// `address:port` as connected to.
    pub address: String,
    pub known_hosts: PathBuf,
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, …
    pub key_type: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

impl HostKeyReport {
    /// `ed25519`, `ecdsa`, `rsa`: the part of the host key file name.
    fn short_type(&self) -> &str {
        let t = self.key_type.trim_start_matches("ssh-");
        t.split('-').next().unwrap_or(t)
    }

    /// The known_hosts name for `ssh-keygen -R`: `host` for port 22,
    /// `'[host]:port'` (quoted: brackets are globs) otherwise.
    fn known_hosts_name(&self) -> String {
        let Some((host, port)) = self.address.rsplit_once(':') else {
            return self.address.clone();
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if port == "22" {
            host.to_string()
        } else {
            format!("'[{host}]:{port}'")
        }
    }
}

impl TransportError {
    /// The error for a command that ran and exited non-zero, with a hint for
    /// the failures we can recognise (sudo without NOPASSWD, missing tools).
    pub fn command_failed(host: &str, cmd: &Command, out: &Output) -> Self {
        let stderr = out.stderr_excerpt();
        let hint = if stderr.contains("sudo: a password is required")
            || stderr.contains("sudo: a terminal is required")
        {
            Some("`become: sudo` needs passwordless sudo: add a NOPASSWD rule for this user to sudoers".into())
        } else if out.status == 127 {
            Some("a program is missing on the host; install it or check PATH".into())
        } else {
            None
        };
        TransportError::CommandFailed {
            host: host.to_string(),
            command: cmd.describe(),
            status: out.status,
            stderr,
            hint,
        }
    }

    /// True for host-key problems: the engine must never retry or downgrade these.
    pub fn is_host_key_error(&self) -> bool {
        matches!(
            self,
            TransportError::HostKeyUnknown { .. }
                | TransportError::HostKeyMismatch { .. }
                | TransportError::HostKeyRevoked { .. }
                | TransportError::HostKeyAlgorithms { .. }
        )
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|h| format!("\nhint: {h}"))
        .unwrap_or_default()
}

fn lines_suffix(lines: &[usize]) -> String {
    match lines {
        [] => String::new(),
        [one] => format!(" (line {one})"),
        many => format!(
            " (lines {})",
            many.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stays_small() {
        // clippy::result_large_err: big payloads are boxed.
        assert!(std::mem::size_of::<TransportError>() <= 112);
    }

    #[test]
    fn command_failed_recognises_sudo_password_prompt() {
        let out = Output {
            status: 1,
            stdout: b"SECRET-STDOUT".to_vec(),
            stderr: b"sudo: a password is required\n".to_vec(),
        };
        let cmd = Command::new("sudo").stdin(b"SECRET-STDIN".to_vec());
        let msg = TransportError::command_failed("edge1", &cmd, &out).to_string();
        assert!(msg.contains("`edge1`"), "{msg}");
        assert!(
            msg.contains("exit status 1: sudo: a password is required"),
            "{msg}"
        );
        assert!(
            msg.contains("hint: `become: sudo` needs passwordless sudo"),
            "{msg}"
        );
        assert!(!msg.contains("SECRET"), "{msg}");
    }

    #[test]
    fn mismatch_message_is_loud_and_names_lines() {
        let mut report = HostKeyReport {
            host: "edge1.contoso.example".into(),
            address: "203.0.113.101:22".into(),
            known_hosts: "/k".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:abc".into(),
        };
        let e = TransportError::HostKeyMismatch {
            report: Box::new(report.clone()),
            lines: vec![3, 7],
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("HOST KEY MISMATCH for `edge1.contoso.example`"),
            "{msg}"
        );
        assert!(msg.contains("presented ssh-ed25519 SHA256:abc"), "{msg}");
        assert!(msg.contains("(lines 3, 7)"), "{msg}");
        assert!(msg.contains("ssh-keygen -R 203.0.113.101 -f /k"), "{msg}");
        assert!(e.is_host_key_error());
        report.address = "[2001:db8::1]:2222".into();
        assert_eq!(report.known_hosts_name(), "'[2001:db8::1]:2222'");
        report.key_type = "ecdsa-sha2-nistp256".into();
        let e = TransportError::HostKeyUnknown {
            report: Box::new(report),
        };
        assert!(e.to_string().contains("ssh_host_ecdsa_key.pub"), "{e}");
    }
}

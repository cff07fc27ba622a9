//! `SshConfig`: everything needed to reach one host over SSH, already
//! resolved from the spec (no defaults are looked up later, no `~/.ssh/config`
//! is read: what the spec says is what happens).

use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;
use crate::transport::Become;

/// Default limit for TCP connect, handshake and authentication together.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit for one command when `Command::timeout` is not set.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshAuth {
    /// A private key file (OpenSSH or PEM format); libssh2 derives the
    /// public half.
    KeyFile {
        path: PathBuf,
        /// Never printed (`Secret`).
        passphrase: Option<Secret>,
    },
    /// The keys of the ssh-agent at `$SSH_AUTH_SOCK`.
    Agent,
}

/// Connection settings for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfig {
    /// Name used in messages (`edge1.contoso.example`).
    pub host: String,
    /// DNS name or IP literal to connect to. It is also the name looked up
    /// in known_hosts (`[address]:port` when the port is not 22).
    pub address: String,
    pub port: u16,
    pub user: String,
    pub auth: SshAuth,
    pub known_hosts: PathBuf,
    /// Trust on first use: append the key of a host that has no entry at all.
    /// A changed key is refused regardless.
    pub accept_new_host_keys: bool,
    /// `become: sudo`; ignored when `user` is root.
    pub escalation: Become,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Keep the session open for this long after the run, for the next
    /// run to reuse (`keeper`); `None`: close it when the run ends.
    pub persist: Option<Duration>,
}

impl SshConfig {
    /// Port 22, strict host keys, no `become`, default timeouts.
    pub fn new(
        host: impl Into<String>,
        address: impl Into<String>,
        user: impl Into<String>,
        auth: SshAuth,
        known_hosts: impl Into<PathBuf>,
    ) -> Self {
        SshConfig {
            host: host.into(),
            address: address.into(),
            port: 22,
            user: user.into(),
            auth,
            known_hosts: known_hosts.into(),
            accept_new_host_keys: false,
            escalation: Become::None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            persist: None,
        }
    }

    /// `address:port`, bracketing IPv6 literals, for messages.
    pub fn endpoint(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }

    pub(crate) fn is_root(&self) -> bool {
        self.user == "root"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_never_shows() {
        let auth = SshAuth::KeyFile {
            path: "/k".into(),
            passphrase: Some(Secret::new("hunter2")),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
    }

    #[test]
    fn endpoint_brackets_ipv6() {
        let mut c = SshConfig::new("h", "2001:db8::1", "root", SshAuth::Agent, "/kh");
        assert_eq!(c.endpoint(), "[2001:db8::1]:22");
        c.address = "203.0.113.101".into();
        c.port = 2222;
        assert_eq!(c.endpoint(), "203.0.113.101:2222");
    }
}

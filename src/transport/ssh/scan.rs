//! `HostScan`: every host key a server offers, fetched before
//! authenticating (as `ssh-keyscan` does), each with where it stands in
//! known_hosts. First contact for `xfed hosts scan`: the operator compares
//! the fingerprints with the servers' own and only then records them.
//!
//! One handshake per key type (ed25519, the three ECDSA curves, RSA): the
//! server presents a single key per handshake, the one of the type both
//! sides prefer, so each type is asked for alone; a type the server lacks
//! ends in a key-exchange failure and is skipped. Nothing is authenticated
//! and nothing is run on the host. Recording a key is a separate call,
//! [`record`], never done here.

use std::path::Path;

use ssh2::{ErrorCode, MethodType, Session};

use super::config::SshConfig;
use super::connection::tcp_connect;
use super::host_key::HostKey;
use super::known_hosts::{KeyStatus, KnownHosts};
use crate::transport::error::TransportError;

/// libssh2's LIBSSH2_ERROR_KEX_FAILURE: no common algorithm (the server
/// has no key of the type asked for).
const KEX_FAILURE: i32 = -5;
/// libssh2's LIBSSH2_ERROR_TIMEOUT and LIBSSH2_ERROR_SOCKET_TIMEOUT.
const TIMEOUTS: [i32; 2] = [-9, -30];

/// Host-key algorithms asked for, one handshake each; one RSA key serves
/// all three RSA signature algorithms.
const FAMILIES: &[&[&str]] = &[
    &["ssh-ed25519"],
    &["ecdsa-sha2-nistp256"],
    &["ecdsa-sha2-nistp384"],
    &["ecdsa-sha2-nistp521"],
    &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
];

/// One key a host offers and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedKey {
    pub key: HostKey,
    pub status: KeyStatus,
}

/// What one host offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostScan {
    /// The name the host is filed under in known_hosts (`address`, or
    /// `[address]:port` off port 22).
    pub name: String,
    pub keys: Vec<ScannedKey>,
}

impl HostScan {
    /// Fetches every host key the server at `cfg`'s address offers and
    /// compares each with `cfg.known_hosts` (a missing file is empty).
    pub fn fetch(cfg: &SshConfig) -> Result<HostScan, TransportError> {
        let known_hosts =
            KnownHosts::load(&cfg.known_hosts).map_err(|source| TransportError::KnownHosts {
                path: cfg.known_hosts.clone(),
                action: "read",
                source,
            })?;
        let name = KnownHosts::host_name(&cfg.address, cfg.port);
        let probe = Session::new().map_err(|e| ssh_err(cfg, "session setup", e))?;
        let supported = probe
            .supported_algs(MethodType::HostKey)
            .map_err(|e| ssh_err(cfg, "listing host-key algorithms", e))?;
        let mut keys: Vec<ScannedKey> = Vec::new();
        for family in FAMILIES {
            let algs: Vec<&str> = family
                .iter()
                .copied()
                .filter(|a| supported.contains(a))
                .collect();
            if algs.is_empty() {
                continue;
            }
            if let Some(key) = offered(cfg, &algs.join(","))?
                && !keys.iter().any(|k| k.key == key)
            {
                let status = known_hosts.status(&probe, &name, &key);
                keys.push(ScannedKey { key, status });
            }
        }
        Ok(HostScan { name, keys })
    }
}

/// The key the server presents when only `algs` are allowed; `None` when
/// it has no key of that type.
fn offered(cfg: &SshConfig, algs: &str) -> Result<Option<HostKey>, TransportError> {
    let tcp = tcp_connect(cfg)?;
    let mut sess = Session::new().map_err(|e| ssh_err(cfg, "session setup", e))?;
    sess.set_tcp_stream(tcp);
    sess.set_blocking(true);
    sess.set_timeout(u32::try_from(cfg.connect_timeout.as_millis()).unwrap_or(u32::MAX));
    sess.method_pref(MethodType::HostKey, algs)
        .map_err(|e| ssh_err(cfg, "setting host-key algorithms", e))?;
    match sess.handshake() {
        Ok(()) => {}
        Err(e) if e.code() == ErrorCode::Session(KEX_FAILURE) => return Ok(None),
        Err(e) => {
            return Err(match e.code() {
                ErrorCode::Session(code) if TIMEOUTS.contains(&code) => {
                    TransportError::ConnectTimeout {
                        host: cfg.host.clone(),
                        address: cfg.endpoint(),
                        after: cfg.connect_timeout,
                    }
                }
                _ => TransportError::Handshake {
                    host: cfg.host.clone(),
                    address: cfg.endpoint(),
                    source: e,
                },
            });
        }
    }
    let key = sess.host_key().map(|(blob, _)| HostKey::from_blob(blob));
    let _ = sess.disconnect(None, "xfed hosts scan done", None);
    Ok(key)
}

/// Appends `name key` to the known_hosts file at `path` (created 0600).
pub fn record(path: &Path, name: &str, key: &HostKey) -> Result<(), TransportError> {
    KnownHosts::append(path, name, key).map_err(|source| TransportError::KnownHosts {
        path: path.to_path_buf(),
        action: "append to",
        source,
    })
}

fn ssh_err(cfg: &SshConfig, op: &str, source: ssh2::Error) -> TransportError {
    TransportError::Ssh {
        host: cfg.host.clone(),
        op: op.to_string(),
        source,
    }
}

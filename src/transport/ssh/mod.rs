//! ssh: the `Transport` for remote hosts, on libssh2 (`ssh2`).
//!
//! Owns the SSH session lifecycle (connect, host-key trust, authentication,
//! reconnect) and nothing about what is run: commands arrive as argument
//! lists and are quoted by `quote.rs`. One `SshTransport` per host, one
//! session per transport, used from one thread (libssh2 sessions are not safe
//! to share between threads, notes §1).

mod config;
mod connection;
mod host_key;
pub mod keeper;
mod known_hosts;
mod scan;
mod transport;

pub use config::{DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, SshAuth, SshConfig};
pub use host_key::HostKey;
pub use known_hosts::KeyStatus;
pub use scan::{HostScan, ScannedKey, record};
pub use transport::SshTransport;

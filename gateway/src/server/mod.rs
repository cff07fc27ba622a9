//! The daemon around the protocol core: listeners, connections, admin
//! HTTP, metrics, reload and drain.
//!
//! Owns all sockets, timers and signals. Protocol decisions are delegated
//! to `stream`; configuration validation to `config` and `tls`.

mod access;
mod admin;
mod admin_waiters;
mod connection;
mod daemon;
mod generation;
mod limiter;
mod metrics;
mod partner_limiter;
mod pid_file;
mod pre_auth;
mod query;
mod read_buffer;
mod relay;
mod s2s_listener;
mod shared;
mod status;
mod tracker;

pub use daemon::{Daemon, DaemonError};
pub use generation::Generation;
pub use status::{ListenerStatus, OutboundStatus, RelayStatus, Status, TlsStatus};

//! xfed-gateway: the XMPP server-to-server edge daemon that xfed deploys.
//!
//! Owns: the configuration model (`config`), TLS material (`tls`), the
//! restricted XML framing of a stream (`xml`), the per-connection XMPP
//! stream state machine (`stream`), per-user external access policy
//! resolution (`policy`) and the daemon around them (`server`: listeners,
//! admin HTTP, the relay's outbound streams, reload and drain). The binary
//! (`main.rs`) only parses arguments, picks the allocator and maps errors
//! to exit codes.
//!
//! The protocol core (`xml`, `stream`) and `policy` do no I/O: it is fed bytes and
//! returns bytes, directives and events, so every protocol rule is
//! unit-tested without a socket. Streams are terminated on both sides of
//! the edge: TLS, SASL EXTERNAL or server dialback (`dialback`: the
//! organisation's secrets and XEP-0185 keys), then each stanza checked
//! against the stream's authenticated domain and the user's access policy
//! before it is relayed.
#![forbid(unsafe_code)]

pub mod cli;
pub mod clock;
pub mod config;
pub mod dialback;
pub mod log;
pub mod policy;
pub mod server;
pub mod stream;
pub mod tls;
pub mod xml;

/// The gateway's version, as reported by `--version` and `/status`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

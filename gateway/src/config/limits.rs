//! `[limits]`: the bounds applied to every inbound stream.
//!
//! Owns defaults and ranges. The values are enforced by `xml::Framer`
//! (bytes, depth) and `server::Connection` (timeouts, connection counts).

use super::problem::Problem;
use super::reader::Fields;
use std::time::Duration;

/// Resolved `[limits]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest top-level element (stanza) after authentication, in bytes.
    pub max_stanza_bytes: usize,
    /// Largest top-level element (and stream header) before authentication.
    pub max_unauthenticated_stanza_bytes: usize,
    /// Deepest element nesting inside a stanza (the stanza itself is depth 1).
    pub max_depth: usize,
    /// Most elements in one top-level element before authentication (the
    /// element itself included): each costs a node whatever its bytes.
    pub max_unauthenticated_elements: usize,
    /// Connections not yet authenticated, per S2S listener; more are
    /// closed at accept and counted (`pre_auth_budget`).
    pub max_unauthenticated_connections: u32,
    /// Time allowed for each stream header and for the TLS handshake.
    pub header_timeout: Duration,
    /// Time allowed from accept until the stream is authenticated: the
    /// pre-auth deadline, far shorter than `idle_timeout` by default (a
    /// stranger's connection is held 30 s, not 10 min).
    pub negotiation_timeout: Duration,
    /// Longest silence on an established stream before it is closed.
    pub idle_timeout: Duration,
    /// Silence after which the gateway sends a whitespace keepalive on an
    /// established S2S stream (both directions) with a partner whose
    /// `keepalive` is on; below `idle_timeout`. Not written, it is 60 s, or
    /// half of `idle_timeout` when that is shorter.
    pub keepalive_interval: Duration,
    /// Concurrent connections per S2S listener (listeners may override).
    pub max_connections: u32,
    /// Concurrent connections per source IP per S2S listener (listeners may override).
    pub max_connections_per_ip: u32,
    /// Concurrent authenticated streams per partner domain on the external
    /// listener; a stream authenticated beyond it is closed with a stream
    /// error and counted. Counted per domain, not per address, so a
    /// partner with many servers (or one cycling addresses) holds no more.
    pub max_connections_per_partner: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 262_144,
            max_unauthenticated_stanza_bytes: 10_000,
            max_depth: 32,
            max_unauthenticated_elements: 32,
            max_unauthenticated_connections: 2_000,
            header_timeout: Duration::from_secs(15),
            negotiation_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            keepalive_interval: Duration::from_secs(60),
            max_connections: 10_000,
            max_connections_per_ip: 64,
            max_connections_per_partner: 1_000,
        }
    }
}

/// Upper bound for any connection count.
pub(crate) const MAX_CONNECTIONS: u64 = 1_000_000;

/// Every `[limits]` setting and its bounds, inclusive: one table, read by
/// the loader and by xfed when it checks a spec (`check_limit`).
pub const LIMIT_BOUNDS: &[(&str, u64, u64)] = &[
    ("max_stanza_bytes", 10_000, 16 * 1024 * 1024),
    ("max_unauthenticated_stanza_bytes", 1_000, 16 * 1024 * 1024),
    ("max_depth", 2, 1024),
    ("max_unauthenticated_elements", 4, 100_000),
    ("max_unauthenticated_connections", 1, MAX_CONNECTIONS),
    ("header_timeout_secs", 1, 600),
    ("negotiation_timeout_secs", 1, 3600),
    ("idle_timeout_secs", 1, 86_400),
    ("keepalive_interval_secs", 10, 3600),
    ("max_connections", 1, MAX_CONNECTIONS),
    ("max_connections_per_ip", 1, MAX_CONNECTIONS),
    ("max_connections_per_partner", 1, MAX_CONNECTIONS),
];

/// Whether `value` is allowed for the `[limits]` setting `name`, with the
/// loader's own message when it is not.
pub fn check_limit(name: &str, value: u64) -> Result<(), String> {
    let (min, max) = bounds(name);
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "`limits.{name}`: expected an integer from {min} to {max}, found {value}"
        ))
    }
}

fn bounds(name: &str) -> (u64, u64) {
    LIMIT_BOUNDS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or((0, u64::MAX), |(_, lo, hi)| (*lo, *hi))
}

impl Limits {
    pub(crate) fn read(fields: Option<Fields<'_>>, out: &mut Vec<Problem>) -> Limits {
        let mut limits = Limits::default();
        let Some(mut f) = fields else {
            return limits;
        };
        let secs = |v: u64| Duration::from_secs(v);
        if let Some(v) = f.integer(
            "max_stanza_bytes",
            bounds("max_stanza_bytes").0,
            bounds("max_stanza_bytes").1,
            out,
        ) {
            limits.max_stanza_bytes = to_usize(v);
        }
        if let Some(v) = f.integer(
            "max_unauthenticated_stanza_bytes",
            bounds("max_unauthenticated_stanza_bytes").0,
            bounds("max_unauthenticated_stanza_bytes").1,
            out,
        ) {
            limits.max_unauthenticated_stanza_bytes = to_usize(v);
        }
        if let Some(v) = f.integer(
            "max_depth",
            bounds("max_depth").0,
            bounds("max_depth").1,
            out,
        ) {
            limits.max_depth = to_usize(v);
        }
        if let Some(v) = f.integer(
            "max_unauthenticated_elements",
            bounds("max_unauthenticated_elements").0,
            bounds("max_unauthenticated_elements").1,
            out,
        ) {
            limits.max_unauthenticated_elements = to_usize(v);
        }
        if let Some(v) = f.integer(
            "max_unauthenticated_connections",
            bounds("max_unauthenticated_connections").0,
            bounds("max_unauthenticated_connections").1,
            out,
        ) {
            limits.max_unauthenticated_connections = to_u32(v);
        }
        if let Some(v) = f.integer(
            "header_timeout_secs",
            bounds("header_timeout_secs").0,
            bounds("header_timeout_secs").1,
            out,
        ) {
            limits.header_timeout = secs(v);
        }
        if let Some(v) = f.integer(
            "negotiation_timeout_secs",
            bounds("negotiation_timeout_secs").0,
            bounds("negotiation_timeout_secs").1,
            out,
        ) {
            limits.negotiation_timeout = secs(v);
        }
        if let Some(v) = f.integer(
            "idle_timeout_secs",
            bounds("idle_timeout_secs").0,
            bounds("idle_timeout_secs").1,
            out,
        ) {
            limits.idle_timeout = secs(v);
        }
        let keepalive = f.integer(
            "keepalive_interval_secs",
            bounds("keepalive_interval_secs").0,
            bounds("keepalive_interval_secs").1,
            out,
        );
        if let Some(v) = f.integer(
            "max_connections",
            bounds("max_connections").0,
            bounds("max_connections").1,
            out,
        ) {
            limits.max_connections = to_u32(v);
        }
        if let Some(v) = f.integer(
            "max_connections_per_ip",
            bounds("max_connections_per_ip").0,
            bounds("max_connections_per_ip").1,
            out,
        ) {
            limits.max_connections_per_ip = to_u32(v);
        }
        if let Some(v) = f.integer(
            "max_connections_per_partner",
            bounds("max_connections_per_partner").0,
            bounds("max_connections_per_partner").1,
            out,
        ) {
            limits.max_connections_per_partner = to_u32(v);
        }
        if limits.max_unauthenticated_stanza_bytes > limits.max_stanza_bytes {
            out.push(
                Problem::new(
                    f.path_of("max_unauthenticated_stanza_bytes"),
                    format!(
                        "is {} but must not exceed `limits.max_stanza_bytes` ({})",
                        limits.max_unauthenticated_stanza_bytes, limits.max_stanza_bytes
                    ),
                )
                .hint("the limit before authentication is the smaller one"),
            );
        }
        match keepalive {
            Some(v) => limits.keepalive_interval = secs(v),
            None => {
                limits.keepalive_interval = limits.keepalive_interval.min(limits.idle_timeout / 2);
            }
        }
        if keepalive.is_some() && limits.keepalive_interval >= limits.idle_timeout {
            out.push(
                Problem::new(
                    f.path_of("keepalive_interval_secs"),
                    format!(
                        "is {} but must be below `limits.idle_timeout_secs` ({})",
                        limits.keepalive_interval.as_secs(),
                        limits.idle_timeout.as_secs()
                    ),
                )
                .hint("a keepalive keeps a stream from looking idle only if it comes first"),
            );
        }
        f.finish(out);
        limits
    }
}

pub(crate) fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

pub(crate) fn to_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

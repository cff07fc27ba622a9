//! Counters behind `/metrics` and `/status`.
//!
//! Plain atomics, pre-declared per listener and per stream error
//! condition, so recording is lock-free on the connection path and the
//! exposition never has to discover label sets.

use crate::stream::{Condition, Refusal};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a connection was refused at accept time, or (per partner) once
/// its stream was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The listener's `max_connections` was reached.
    MaxConnections,
    /// The source address's `max_connections_per_ip` was reached.
    MaxConnectionsPerIp,
    /// The budget of connections not yet authenticated was reached.
    PreAuthBudget,
    /// The partner domain the stream authenticated as already had
    /// `max_connections_per_partner` streams (closed after authentication,
    /// with a stream error).
    MaxConnectionsPerPartner,
    /// Admin listener: an idle connection (no request yet) closed to make
    /// room for a new one.
    IdleEvicted,
}

impl Rejection {
    /// Label value in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::MaxConnections => "max_connections",
            Rejection::MaxConnectionsPerIp => "max_connections_per_ip",
            Rejection::PreAuthBudget => "pre_auth_budget",
            Rejection::MaxConnectionsPerPartner => "max_connections_per_partner",
            Rejection::IdleEvicted => "idle_evicted",
        }
    }

    /// Every reason, in exposition order.
    pub const ALL: [Rejection; 5] = [
        Rejection::MaxConnections,
        Rejection::MaxConnectionsPerIp,
        Rejection::PreAuthBudget,
        Rejection::MaxConnectionsPerPartner,
        Rejection::IdleEvicted,
    ];

    fn index(self) -> usize {
        match self {
            Rejection::MaxConnections => 0,
            Rejection::MaxConnectionsPerIp => 1,
            Rejection::PreAuthBudget => 2,
            Rejection::IdleEvicted => 3,
            Rejection::MaxConnectionsPerPartner => 4,
        }
    }
}

/// Counters of one listener.
#[derive(Debug, Default)]
pub struct ListenerMetrics {
    /// Connections accepted (and admitted) since start.
    pub connections_total: AtomicU64,
    /// Refused (or evicted), indexed by `Rejection::index`.
    pub rejected: [AtomicU64; Rejection::ALL.len()],
    /// Completed TLS handshakes.
    pub tls_ok: AtomicU64,
    /// Failed or timed-out TLS handshakes.
    pub tls_failed: AtomicU64,
    /// Stream errors sent, indexed by `Condition::index`.
    pub stream_errors: [AtomicU64; Condition::ALL.len()],
    /// Streams refused (or closed at reload) by the peer rule, indexed by
    /// `Refusal::index`.
    pub refusals: [AtomicU64; Refusal::ALL.len()],
}

impl ListenerMetrics {
    /// Counts a refused connection.
    pub fn rejected(&self, why: Rejection) {
        inc(&self.rejected[why.index()]);
    }

    /// Counts a stream error sent.
    pub fn stream_error(&self, condition: Condition) {
        inc(&self.stream_errors[condition.index()]);
    }

    /// Counts a stream refused by the peer rule.
    pub fn refused(&self, why: Refusal) {
        inc(&self.refusals[why.index()]);
    }

    /// Total refused connections.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(get).sum()
    }
}

/// All counters of the daemon.
#[derive(Debug, Default)]
pub struct Metrics {
    /// The external S2S listener.
    pub external: ListenerMetrics,
    /// The internal S2S listener.
    pub internal: ListenerMetrics,
    /// The admin HTTP listener.
    pub admin: ListenerMetrics,
    /// Successful reloads.
    pub reloads_ok: AtomicU64,
    /// Rejected reloads.
    pub reloads_failed: AtomicU64,
}

/// A listener's metrics and current connection count, for exposition.
#[derive(Debug)]
pub struct ListenerSample<'a> {
    /// Listener name.
    pub name: &'static str,
    /// Its counters.
    pub metrics: &'a ListenerMetrics,
    /// Open connections now.
    pub current: u64,
    /// Certificate expiry, Unix seconds, if a certificate is installed.
    pub not_after: Option<i64>,
}

/// Identity labels for `xfed_gateway_info`.
#[derive(Debug)]
pub struct InfoLabels<'a> {
    /// Gateway version.
    pub version: &'a str,
    /// Config file hash.
    pub config_sha256: &'a str,
    /// Policy file hash, if partners and policies are in a policy file.
    pub policy_sha256: Option<&'a str>,
    /// Topology version, if configured.
    pub topology_version: Option<&'a str>,
    /// Process start, Unix seconds.
    pub started_at: i64,
    /// 1 while draining.
    pub draining: bool,
}

impl Metrics {
    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self, info: &InfoLabels<'_>, listeners: &[ListenerSample<'_>]) -> String {
        let mut out = String::with_capacity(4096);
        let topology = info.topology_version.unwrap_or("");
        family(
            &mut out,
            "xfed_gateway_info",
            "gauge",
            "Version and loaded configuration.",
        );
        let _ = writeln!(
            out,
            "xfed_gateway_info{{version=\"{}\",config_sha256=\"{}\",policy_sha256=\"{}\",topology_version=\"{}\"}} 1",
            label(info.version),
            label(info.config_sha256),
            label(info.policy_sha256.unwrap_or("")),
            label(topology)
        );
        family(
            &mut out,
            "xfed_gateway_start_time_seconds",
            "gauge",
            "Unix time the process started.",
        );
        let _ = writeln!(out, "xfed_gateway_start_time_seconds {}", info.started_at);
        family(
            &mut out,
            "xfed_gateway_draining",
            "gauge",
            "1 while shutting down.",
        );
        let _ = writeln!(out, "xfed_gateway_draining {}", u8::from(info.draining));

        family(
            &mut out,
            "xfed_gateway_connections",
            "gauge",
            "Open connections.",
        );
        for l in listeners {
            let _ = writeln!(
                out,
                "xfed_gateway_connections{{listener=\"{}\"}} {}",
                l.name, l.current
            );
        }
        family(
            &mut out,
            "xfed_gateway_connections_total",
            "counter",
            "Connections accepted.",
        );
        for l in listeners {
            let _ = writeln!(
                out,
                "xfed_gateway_connections_total{{listener=\"{}\"}} {}",
                l.name,
                get(&l.metrics.connections_total)
            );
        }
        family(
            &mut out,
            "xfed_gateway_connections_rejected_total",
            "counter",
            "Connections closed because a limit was reached: at accept, or once authenticated for the per-partner limit (admin: also idle ones evicted).",
        );
        for l in listeners {
            for why in Rejection::ALL {
                let n = &l.metrics.rejected[why.index()];
                let _ = writeln!(
                    out,
                    "xfed_gateway_connections_rejected_total{{listener=\"{}\",reason=\"{}\"}} {}",
                    l.name,
                    why.as_str(),
                    get(n)
                );
            }
        }
        let s2s: Vec<&ListenerSample<'_>> =
            listeners.iter().filter(|l| l.name != "admin").collect();
        family(
            &mut out,
            "xfed_gateway_stream_errors_total",
            "counter",
            "Stream errors sent, by condition.",
        );
        for l in &s2s {
            for c in Condition::ALL {
                let _ = writeln!(
                    out,
                    "xfed_gateway_stream_errors_total{{listener=\"{}\",condition=\"{}\"}} {}",
                    l.name,
                    c.as_str(),
                    get(&l.metrics.stream_errors[c.index()])
                );
            }
        }
        family(
            &mut out,
            "xfed_gateway_streams_refused_total",
            "counter",
            "Streams refused, or closed at reload, because the peer is not a configured partner.",
        );
        // Only the external listener has a partner allow-list.
        for l in s2s.iter().filter(|l| l.name == "external") {
            for why in Refusal::ALL {
                let _ = writeln!(
                    out,
                    "xfed_gateway_streams_refused_total{{listener=\"{}\",reason=\"{}\"}} {}",
                    l.name,
                    why.as_str(),
                    get(&l.metrics.refusals[why.index()])
                );
            }
        }
        family(
            &mut out,
            "xfed_gateway_tls_handshakes_total",
            "counter",
            "TLS handshakes, by result.",
        );
        for l in &s2s {
            for (result, n) in [("ok", &l.metrics.tls_ok), ("failed", &l.metrics.tls_failed)] {
                let _ = writeln!(
                    out,
                    "xfed_gateway_tls_handshakes_total{{listener=\"{}\",result=\"{result}\"}} {}",
                    l.name,
                    get(n)
                );
            }
        }
        family(
            &mut out,
            "xfed_gateway_certificate_not_after_seconds",
            "gauge",
            "Expiry of the installed certificate (absent when none is installed).",
        );
        for l in &s2s {
            if let Some(t) = l.not_after {
                let _ = writeln!(
                    out,
                    "xfed_gateway_certificate_not_after_seconds{{listener=\"{}\"}} {t}",
                    l.name
                );
            }
        }
        family(
            &mut out,
            "xfed_gateway_reloads_total",
            "counter",
            "Configuration reloads (SIGHUP), by result.",
        );
        let _ = writeln!(
            out,
            "xfed_gateway_reloads_total{{result=\"ok\"}} {}",
            get(&self.reloads_ok)
        );
        let _ = writeln!(
            out,
            "xfed_gateway_reloads_total{{result=\"failed\"}} {}",
            get(&self.reloads_failed)
        );
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Increments a counter.
pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Reads a counter.
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

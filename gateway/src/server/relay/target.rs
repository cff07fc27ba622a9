//! Where an outbound stream connects: the pure part of RFC 6120 §3.2.
//!
//! Owns the ordering of SRV targets (by priority, lowest first; within a
//! priority, higher weight first, so the order is deterministic, as
//! Prosody's is), the "no service" rule (a single target `.`), the
//! fallback to the domain itself on 5269 when there is no SRV record, and
//! the nameservers of a resolv.conf. Resolution itself is in `resolve`.

use std::net::IpAddr;

/// The port when there is no SRV record (RFC 6120 §3.2.2).
pub const DEFAULT_PORT: u16 = 5269;

/// One SRV record of `_xmpp-server._tcp.<domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Among equal priorities, higher is tried first here.
    pub weight: u16,
    /// Port on the target.
    pub port: u16,
    /// Target host (trailing dot allowed; `.` alone means no service).
    pub target: String,
}

/// The hosts to try, in order, or `None` when the domain says it offers
/// no XMPP server service. `records` empty means "no SRV record".
pub fn targets(domain: &str, mut records: Vec<SrvRecord>) -> Option<Vec<(String, u16)>> {
    if records.is_empty() {
        return Some(vec![(domain.to_string(), DEFAULT_PORT)]);
    }
    if records.len() == 1 && records[0].target.trim_end_matches('.').is_empty() {
        return None;
    }
    records.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
    Some(
        records
            .into_iter()
            .map(|r| (r.target.trim_end_matches('.').to_ascii_lowercase(), r.port))
            .filter(|(host, _)| !host.is_empty())
            .collect(),
    )
}

/// The `nameserver` addresses of a resolv.conf, in file order.
pub fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        // A zone index (`fe80::1%eth0`) is not supported by IpAddr; skip those.
        .filter_map(|addr| addr.parse().ok())
        .collect()
}

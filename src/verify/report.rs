//! The verify table a person reads after `apply` and `verify`: listeners,
//! then the topology each server holds, then DNS. Pure: rows in, text and
//! the number of failed rows out, so it is snapshot-tested from a fixed
//! world.

use super::dns::VerifyRow as DnsRow;
use super::listeners::VerifyRow;
use super::topology::TopologyRow;

/// Everything the table shows.
#[derive(Debug, Clone, Copy)]
pub struct VerifyReport<'a> {
    pub listeners: &'a [VerifyRow],
    pub topology: &'a [TopologyRow],
    /// The topology version the spec gives.
    pub want_topology: &'a str,
    /// `None`: the spec has no `dns`.
    pub dns: Option<&'a [DnsRow]>,
    /// For "days left" of a certificate.
    pub now_unix: i64,
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok" } else { "FAIL" }
}

/// The table, and how many of its rows failed.
pub fn render(r: &VerifyReport<'_>) -> (String, usize) {
    let mut failed = 0;
    let mut text = String::from("\nVerify:\n");
    text.push_str(&format!(
        "  {:<4} {:<24} {:<9} {:<22} {:<40} {}\n",
        "", "SERVER", "LISTENER", "ADDRESS", "STATE", "CERTIFICATE"
    ));
    for row in r.listeners {
        failed += usize::from(!row.ok);
        let cert = if row.cert_names.is_empty() {
            "-".to_string()
        } else {
            let days = row.cert_not_after.map(|t| (t - r.now_unix) / 86_400);
            format!(
                "{} ({} days left)",
                row.cert_names.join(","),
                days.map_or("?".into(), |d| d.to_string())
            )
        };
        text.push_str(&format!(
            "  {:<4} {:<24} {:<9} {:<22} {:<40} {cert}\n",
            mark(row.ok),
            row.host,
            row.listener.to_string(),
            row.address,
            row.state
        ));
    }
    if !r.topology.is_empty() {
        text.push_str(&format!(
            "\n  {:<4} {:<24} {:<9} {}\n",
            "", "SERVER", "ROLE", "TOPOLOGY"
        ));
        for row in r.topology {
            failed += usize::from(!row.ok);
            let note = if row.ok {
                String::new()
            } else {
                format!(" (want {})", r.want_topology)
            };
            text.push_str(&format!(
                "  {:<4} {:<24} {:<9} {}{note}\n",
                mark(row.ok),
                row.server,
                row.role,
                row.seen
            ));
        }
    }
    if let Some(dns) = r.dns {
        text.push_str(&format!(
            "\n  {:<4} {:<62} {:<20} {}\n",
            "", "DNS CHECK", "SERVER", "DETAIL"
        ));
        for row in dns {
            failed += usize::from(!row.ok);
            text.push_str(&format!(
                "  {:<4} {:<62} {:<20} {}\n",
                mark(row.ok),
                row.check,
                row.server,
                row.detail
            ));
        }
    }
    (text, failed)
}

//! Plan-time cross-checks between the federation SRV records and the rest
//! of the spec: what DNS promises must match what the edge serves.
//!
//! - every SRV target is a name in the external edge certificate's SANs,
//!   or the certificate covers the XMPP domain (RFC 6120 §13.7.2: outside
//!   servers check the domain; some also accept the SRV target);
//! - the SRV port equals the external listener port of the edge servers
//!   it points at;
//! - the failover order is explicit: pools of different sites never share
//!   an SRV priority.
//!
//! Pure: no I/O.

use std::collections::BTreeMap;

use super::desired::{ZoneRecords, xmpp_srv_name};
use super::finding::Finding;
use super::rrset::normalise_name;
use crate::spec::{CertUsage, EdgePool, Spec};

/// Whether a certificate SAN (`xmpp1.contoso.example`, `*.contoso.example`)
/// covers `name` (absolute or not).
pub fn san_covers(san: &str, name: &str) -> bool {
    let san = san.trim_end_matches('.').to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match san.strip_prefix("*.") {
        Some(suffix) => name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => san == name,
    }
}

/// Cross-checks for `zones` (from [`super::desired::derive`]).
pub fn cross_checks(spec: &Spec, zones: &[ZoneRecords]) -> Vec<Finding> {
    let mut out = Vec::new();
    let federation: Vec<&EdgePool> = spec
        .edge_pools
        .iter()
        .filter(|p| p.xmpp_federation)
        .collect();

    for domain in &spec.xmpp_domains {
        let name = xmpp_srv_name(domain);
        let Some(srv) = zones
            .iter()
            .flat_map(|z| z.rrsets.iter())
            .find(|r| r.rrset.name == name && r.rrset.rtype == "SRV")
        else {
            continue;
        };
        for content in &srv.rrset.records {
            let f: Vec<&str> = content.split_whitespace().collect();
            let [_, _, port, target] = f.as_slice() else {
                continue;
            };
            if *target == "." {
                continue;
            }
            let port: u16 = port.parse().unwrap_or(0);
            let pointed: Vec<(&EdgePool, _)> = federation
                .iter()
                .flat_map(|p| p.servers.iter().map(move |s| (*p, s)))
                .filter(|(_, s)| normalise_name(&s.external_fqdn) == *target)
                .collect();
            if pointed.is_empty() {
                out.push(Finding::warning(
                    srv.origin.clone(),
                    format!(
                        "`{name}` points at `{target}`, which is not the external FQDN of any \
                         XMPP federation edge server"
                    ),
                ));
            }
            for (pool, s) in &pointed {
                if s.external_port != port {
                    out.push(
                        Finding::error(
                            s.server.origin.to_string(),
                            format!(
                                "`{name}` sends outside servers to `{target}` port {port}, but edge \
                                 server `{}` listens on port {}",
                                s.server.fqdn, s.external_port
                            ),
                        )
                        .with_hint("make the SRV record's port and the server's `external.port` agree"),
                    );
                }
                let certs: Vec<_> = spec
                    .certificates
                    .iter()
                    .filter(|c| c.pool == pool.name && c.usage == CertUsage::External)
                    .collect();
                if certs.is_empty() {
                    out.push(Finding::warning(
                        pool.origin.to_string(),
                        format!(
                            "edge pool `{}` has no external certificate: outside servers cannot \
                             verify `{target}`",
                            pool.name
                        ),
                    ));
                }
                for c in certs {
                    let covered = c
                        .sans
                        .iter()
                        .any(|san| san_covers(san, target) || san_covers(san, domain));
                    if !covered {
                        out.push(
                            Finding::error(
                                c.origin.to_string(),
                                format!(
                                    "certificate `{}` of edge pool `{}` covers neither the SRV target \
                                     `{}` nor the XMPP domain `{domain}`",
                                    c.name,
                                    pool.name,
                                    target.trim_end_matches('.')
                                ),
                            )
                            .with_hint(format!(
                                "add `{domain}` to the certificate's SANs (`sans.xmpp_domains`)"
                            )),
                        );
                    }
                }
            }
        }
    }

    // Failover order: one priority per site.
    let mut by_priority: BTreeMap<u16, Vec<&EdgePool>> = BTreeMap::new();
    for p in &federation {
        by_priority.entry(p.srv_priority).or_default().push(p);
    }
    for (prio, pools) in by_priority {
        let first = pools[0];
        if let Some(other) = pools.iter().find(|p| p.site != first.site) {
            out.push(
                Finding::error(
                    other.origin.to_string(),
                    format!(
                        "edge pools `{}` (site `{}`) and `{}` (site `{}`) share SRV priority {prio}: \
                         the failover order between the sites is not explicit",
                        first.name, first.site, other.name, other.site
                    ),
                )
                .with_hint(format!("give `{}` its own `srv.priority`", other.name)),
            );
        }
    }
    out
}

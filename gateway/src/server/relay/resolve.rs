//! DNS for outbound streams to partners without a `proxy`: the SRV lookup
//! of `_xmpp-server._tcp.<domain>` and the addresses of its targets, with
//! hickory-resolver on the system's resolv.conf nameservers.
//!
//! The decisions (order, "no service", fallback) are `target`'s; this file
//! only asks DNS.

use super::target::{SrvRecord, nameservers, targets};
use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use std::net::{IpAddr, SocketAddr};

/// Why a partner's addresses could not be found.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// DNS failed.
    #[error("DNS lookup for `{name}` failed: {message}")]
    Dns {
        /// What was looked up.
        name: String,
        /// The resolver's message.
        message: String,
    },
    /// The SRV record says there is no XMPP server service.
    #[error("`{0}` offers no XMPP server service (SRV target `.`)")]
    NoService(String),
    /// No target had an address.
    #[error("no address found for `{0}`")]
    NoAddress(String),
}

/// The addresses to try for `domain`, in order.
pub async fn partner_addresses(domain: &str) -> Result<Vec<SocketAddr>, ResolveError> {
    let resolver = resolver().map_err(|message| ResolveError::Dns {
        name: domain.to_string(),
        message,
    })?;
    let srv_name = format!("_xmpp-server._tcp.{domain}.");
    let records = match resolver.lookup(srv_name.as_str(), RecordType::SRV).await {
        Ok(lookup) => lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some(SrvRecord {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    target: srv.target.to_ascii(),
                }),
                _ => None,
            })
            .collect(),
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Vec::new(),
        Err(e) => {
            return Err(ResolveError::Dns {
                name: srv_name,
                message: e.to_string(),
            });
        }
    };
    let hosts = targets(domain, records).ok_or_else(|| ResolveError::NoService(domain.into()))?;
    let mut addresses = Vec::new();
    for (host, port) in hosts {
        if let Ok(ip) = host.parse::<IpAddr>() {
            addresses.push(SocketAddr::new(ip, port));
            continue;
        }
        if let Ok(ips) = resolver.lookup_ip(format!("{host}.").as_str()).await {
            addresses.extend(ips.iter().map(|ip| SocketAddr::new(ip, port)));
        }
    }
    if addresses.is_empty() {
        return Err(ResolveError::NoAddress(domain.to_string()));
    }
    Ok(addresses)
}

fn resolver() -> Result<Resolver<TokioRuntimeProvider>, String> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut servers = nameservers(&conf);
    if servers.is_empty() {
        // resolv.conf(5): without a nameserver line, the local one.
        servers.push(IpAddr::from([127, 0, 0, 1]));
    }
    let config = ResolverConfig::from_name_servers(
        servers
            .into_iter()
            .map(NameServerConfig::udp_and_tcp)
            .collect(),
    );
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .build()
        .map_err(|e| e.to_string())
}

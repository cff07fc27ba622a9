//! The resolver xfed checks DNS with: one authoritative server asked
//! directly (UDP, then TCP), no resolv.conf, no hosts file, no recursion,
//! and no cache — with hickory's default cache a record just changed in
//! PowerDNS is seen stale.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};

/// A resolver that asks only `ns` (UDP, then TCP), without cache, hosts
/// file or recursion.
pub fn resolver_for(ns: SocketAddr) -> TokioResolver {
    let mut udp = ConnectionConfig::udp();
    udp.port = ns.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = ns.port();
    let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
        ns.ip(),
        true,
        vec![udp, tcp],
    )]);
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.timeout = Duration::from_secs(2);
    opts.attempts = 2;
    opts.recursion_desired = false;
    opts.ndots = 0;
    let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
    *builder.options_mut() = opts;
    builder.build().unwrap_or_else(|_| {
        // Building only fails for TLS/HTTPS transports, which are not used.
        Resolver::builder_with_config(ResolverConfig::default(), TokioRuntimeProvider::default())
            .build()
            .expect("a plain UDP/TCP resolver always builds")
    })
}

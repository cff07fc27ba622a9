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

/// What a recursive resolver answered: its code, whether it vouches for the
/// answer having validated (the AD bit), and the records of the asked type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecursiveAnswer {
    /// `NOERROR`, `SERVFAIL` (a validation failure: bogus), `NXDOMAIN`, …
    pub rcode: String,
    pub authentic: bool,
    /// Record contents in the canonical text of `RRset`, sorted.
    pub records: Vec<String>,
}

/// Asks the recursive resolver `resolver` for `name`/`rtype` as a partner's
/// server would (recursion desired, DNSSEC OK), over TCP.
pub async fn ask_recursive(
    resolver: SocketAddr,
    name: &str,
    rtype: &str,
) -> Result<RecursiveAnswer, String> {
    use futures_util::StreamExt;
    use hickory_net::tcp::TcpClientStream;
    use hickory_net::xfer::{DnsExchange, DnsHandle, DnsMultiplexer};
    use hickory_proto::op::{DnsRequest, DnsRequestOptions, Edns, Message, Query};
    use hickory_proto::rr::{Name, RecordType};

    let record_type: RecordType = rtype
        .parse()
        .map_err(|_| format!("`{rtype}` is not a record type"))?;
    let qname = Name::from_ascii(name).map_err(|e| format!("`{name}`: {e}"))?;
    let timeout = Duration::from_secs(5);
    let (stream, handle) = TcpClientStream::new(
        resolver,
        None,
        Some(timeout),
        TokioRuntimeProvider::default(),
    );
    let stream = tokio::time::timeout(timeout, stream)
        .await
        .map_err(|_| format!("{resolver}: timed out"))?
        .map_err(|e| format!("{resolver}: {e}"))?;
    let (exchange, bg) = DnsExchange::<TokioRuntimeProvider>::from_stream(
        DnsMultiplexer::new(stream, handle).with_timeout(timeout),
    );
    tokio::spawn(bg);
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.metadata.authentic_data = true;
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true).set_max_payload(1232);
    msg.edns = Some(edns);
    msg.add_query(Query::query(qname.clone(), record_type));
    let mut options = DnsRequestOptions::default();
    options.use_edns = true;
    let resp = tokio::time::timeout(timeout, exchange.send(DnsRequest::new(msg, options)).next())
        .await
        .map_err(|_| format!("{resolver}: no answer within 5 s"))?
        .ok_or_else(|| format!("{resolver}: the connection closed"))?
        .map_err(|e| format!("{resolver}: {e}"))?;
    let want = crate::dns::rrset::normalise_name(name);
    let mut records: Vec<String> = resp
        .answers
        .iter()
        .filter(|r| {
            r.record_type() == record_type
                && crate::dns::rrset::normalise_name(&r.name.to_ascii()) == want
        })
        .map(|r| crate::dns::rrset::normalise_content(rtype, &r.data.to_string()))
        .collect();
    records.sort();
    records.dedup();
    Ok(RecursiveAnswer {
        rcode: format!("{:?}", resp.metadata.response_code).to_ascii_uppercase(),
        authentic: resp.metadata.authentic_data,
        records,
    })
}

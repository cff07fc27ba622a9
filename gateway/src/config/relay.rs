//! `[relay]` and the `proxy` of a partner: where the gateway connects out.
//!
//! Owns the shape of the relay settings (the internal server's address, the
//! partners' trust anchors, connect timeout and queue bound) and of a
//! `host:port` written in config. Which certificates the relay presents is
//! not configured here: it reuses `[internal]` and `[external]` (see
//! README, "Relay"). Reading the CA file is done by `tls`, like every other
//! certificate file, under the field name `relay.partner_ca`.

use super::problem::Problem;
use super::reader::Fields;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Default `connect_timeout_secs`.
const CONNECT_TIMEOUT_SECS: u64 = 10;
/// Default `max_queued_stanzas`.
const MAX_QUEUED: u64 = 1000;

/// A `host:port` to connect to: an IP literal (`[v6]:port`) or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerAddress {
    /// The host: an IP address or a DNS name (lowercase, no trailing dot).
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl ServerAddress {
    /// Parses `host:port` (`[::1]:5269` for IPv6), or says what is wrong.
    pub fn parse(raw: &str) -> Result<ServerAddress, String> {
        let expected = || format!("`{raw}` is not `host:port`");
        let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
            let (ip, port) = rest.split_once("]:").ok_or_else(expected)?;
            ip.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("`{ip}` is not an IPv6 address"))?;
            (ip.to_string(), port)
        } else {
            let (host, port) = raw.rsplit_once(':').ok_or_else(expected)?;
            if host.contains(':') {
                return Err(format!(
                    "`{raw}`: write an IPv6 address in brackets, `[{host}]:{port}`"
                ));
            }
            if host.parse::<std::net::Ipv4Addr>().is_err() {
                super::domain::normalize_domain(host)?;
            }
            (host.to_ascii_lowercase(), port)
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{port}` is not a port from 1 to 65535"))?;
        Ok(ServerAddress { host, port })
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A resolved `[relay]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// The organisation's internal XMPP server (S2S port).
    pub internal_server: ServerAddress,
    /// PEM trust anchors for partners' certificates (client and server).
    pub partner_ca: PathBuf,
    /// Time allowed for a TCP connect, and for each step of an outbound
    /// stream's negotiation.
    pub connect_timeout: Duration,
    /// Stanzas an outbound stream holds while it is being set up.
    pub max_queued_stanzas: usize,
}

impl RelayConfig {
    pub(crate) fn read(fields: Option<Fields<'_>>, out: &mut Vec<Problem>) -> Option<RelayConfig> {
        let mut f = fields?;
        let internal_server =
            f.required_string("internal_server", out).and_then(|raw| {
                match ServerAddress::parse(&raw) {
                    Ok(address) => Some(address),
                    Err(e) => {
                        out.push(Problem::new(f.path_of("internal_server"), e).hint(
                            "write the internal server's S2S address, e.g. \"10.0.1.10:5269\"",
                        ));
                        None
                    }
                }
            });
        let partner_ca = f.required_string("partner_ca", out).map(PathBuf::from);
        let connect_timeout = Duration::from_secs(
            f.integer("connect_timeout_secs", 1, 300, out)
                .unwrap_or(CONNECT_TIMEOUT_SECS),
        );
        let max_queued_stanzas = f
            .integer("max_queued_stanzas", 1, 100_000, out)
            .unwrap_or(MAX_QUEUED);
        f.finish(out);
        Some(RelayConfig {
            internal_server: internal_server?,
            partner_ca: partner_ca?,
            connect_timeout,
            max_queued_stanzas: super::limits::to_usize(max_queued_stanzas),
        })
    }
}

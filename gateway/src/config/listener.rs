//! `[external]`, `[internal]` and `[admin]`: where the gateway listens and
//! with which certificate.
//!
//! Owns address/port parsing and the cert/key/client_ca pairing rules. The
//! PEM files themselves are read by `tls::ListenerTls`, so a config can be
//! checked for shape without touching certificate files.

use super::limits::{Limits, MAX_CONNECTIONS, to_u32};
use super::problem::Problem;
use super::reader::Fields;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Which S2S listener a section configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// Port 5269 facing partner servers on the internet.
    External,
    /// Port 23456 facing the organisation's own XMPP servers.
    Internal,
}

impl ListenerKind {
    /// Both kinds, in the order they are bound and reported.
    pub const ALL: [ListenerKind; 2] = [ListenerKind::External, ListenerKind::Internal];

    /// The section name, also used in logs, metrics and `/status`.
    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::External => "external",
            ListenerKind::Internal => "internal",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            ListenerKind::External => 5269,
            ListenerKind::Internal => 23456,
        }
    }
}

/// A certificate chain file and its private key file (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePaths {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A resolved S2S listener section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Which listener this is.
    pub kind: ListenerKind,
    /// Address and port to bind (port 0 picks a free port, for tests).
    pub address: SocketAddr,
    /// The certificate to offer; `None` until one is installed.
    pub certificate: Option<CertificatePaths>,
    /// CA bundle that client certificates must chain to (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// Concurrent connections on this listener.
    pub max_connections: u32,
    /// Concurrent connections from one source IP on this listener.
    pub max_connections_per_ip: u32,
}

impl ListenerConfig {
    pub(crate) fn read(
        kind: ListenerKind,
        fields: Option<Fields<'_>>,
        limits: &Limits,
        out: &mut Vec<Problem>,
    ) -> Option<ListenerConfig> {
        let Some(mut f) = fields else {
            out.push(
                Problem::new(kind.name(), "section is required")
                    .hint(format!("add `[{}]` with at least `address`", kind.name())),
            );
            return None;
        };
        let address = read_address(&mut f, kind.default_port(), out);
        let cert = f.string("cert", out).map(PathBuf::from);
        let key = f.string("key", out).map(PathBuf::from);
        let client_ca = if kind == ListenerKind::Internal {
            f.string("client_ca", out).map(PathBuf::from)
        } else {
            None
        };
        let max_connections = f
            .integer("max_connections", 1, MAX_CONNECTIONS, out)
            .map_or(limits.max_connections, to_u32);
        let max_connections_per_ip = f
            .integer("max_connections_per_ip", 1, MAX_CONNECTIONS, out)
            .map_or(limits.max_connections_per_ip, to_u32);
        let certificate = match (cert, key) {
            (Some(cert), Some(key)) => Some(CertificatePaths { cert, key }),
            (None, None) => None,
            (Some(_), None) => {
                out.push(
                    Problem::new(f.path_of("key"), "is required when `cert` is set")
                        .hint("set both `cert` and `key`, or neither"),
                );
                None
            }
            (None, Some(_)) => {
                out.push(
                    Problem::new(f.path_of("cert"), "is required when `key` is set")
                        .hint("set both `cert` and `key`, or neither"),
                );
                None
            }
        };
        if client_ca.is_some() && certificate.is_none() {
            out.push(
                Problem::new(
                    f.path_of("client_ca"),
                    "mutual TLS needs a server certificate",
                )
                .hint("set `cert` and `key` too, or remove `client_ca`"),
            );
        }
        f.finish(out);
        Some(ListenerConfig {
            kind,
            address: address?,
            certificate,
            client_ca,
            max_connections,
            max_connections_per_ip,
        })
    }
}

/// A resolved `[admin]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Address and port of the HTTP admin listener.
    pub address: SocketAddr,
}

impl AdminConfig {
    /// Reads `[admin]`; the address defaults to the internal listener's.
    pub(crate) fn read(
        fields: Option<Fields<'_>>,
        internal: Option<&ListenerConfig>,
        out: &mut Vec<Problem>,
    ) -> Option<AdminConfig> {
        const PORT: u16 = 8089;
        let fallback = internal.map(|l| SocketAddr::new(l.address.ip(), PORT));
        let Some(mut f) = fields else {
            return fallback.map(|address| AdminConfig { address });
        };
        let ip = match f.string("address", out) {
            Some(raw) => parse_ip(&f, &raw, out),
            None => fallback.map(|a| a.ip()),
        };
        let port = f.integer("port", 0, 65_535, out).map_or(PORT, port_of);
        f.finish(out);
        Some(AdminConfig {
            address: SocketAddr::new(ip?, port),
        })
    }
}

fn read_address(
    f: &mut Fields<'_>,
    default_port: u16,
    out: &mut Vec<Problem>,
) -> Option<SocketAddr> {
    let raw = f.required_string("address", out);
    let port = f
        .integer("port", 0, 65_535, out)
        .map_or(default_port, port_of);
    let ip = parse_ip(f, &raw?, out)?;
    Some(SocketAddr::new(ip, port))
}

fn parse_ip(f: &Fields<'_>, raw: &str, out: &mut Vec<Problem>) -> Option<IpAddr> {
    match raw.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            out.push(
                Problem::new(
                    f.path_of("address"),
                    format!("`{raw}` is not an IP address"),
                )
                .hint("use the IP address of the interface, e.g. `198.51.100.10` or `::`"),
            );
            None
        }
    }
}

fn port_of(v: u64) -> u16 {
    u16::try_from(v).unwrap_or(0)
}

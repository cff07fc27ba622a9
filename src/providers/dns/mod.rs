//! DNS providers: the [`DnsProvider`] trait, its PowerDNS and RFC 2136
//! (dynamic update with TSIG) implementations,
//! the errors of the DNS phase, and the checking resolver.
//!
//! Owns every byte xfed sends to or reads from a DNS provider's API. Does
//! not decide anything: what to change is `plan::dns_plan` (pure), fed by
//! `engine::dns` with what the provider read; what to refuse and when a
//! zone is stale is `apply::dns`.
//!
//! [`provider_for`] gives the provider the spec's `dns.provider` names.

pub mod powerdns;
pub mod resolver;
pub mod rfc2136;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::dns::rrset::{RRset, RRsetOp};
use crate::spec::DnsApi;

pub use powerdns::PowerDns;
pub use rfc2136::Rfc2136;

/// A boxed future, so [`DnsProvider`] can be used as `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A DNS provider's API, zone by zone. Names and contents are normalised
/// ([`RRset`]); implementations translate.
pub trait DnsProvider: Send + Sync + fmt::Debug {
    /// For messages: `PowerDNS `http://…` (server `localhost`)`.
    fn describe(&self) -> String;

    /// Every RRset of `zone` (absolute name), or `None` when the zone does
    /// not exist. Reads only.
    fn read_zone<'a>(
        &'a self,
        zone: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<RRset>>, ProviderError>>;

    /// Creates `zone` holding `rrsets`, in one request.
    fn create_zone<'a>(
        &'a self,
        zone: &'a str,
        rrsets: &'a [RRset],
    ) -> BoxFuture<'a, Result<(), ProviderError>>;

    /// Applies `ops` to `zone` — all or nothing where the provider allows
    /// (PowerDNS does).
    fn apply<'a>(
        &'a self,
        zone: &'a str,
        ops: &'a [RRsetOp],
    ) -> BoxFuture<'a, Result<(), ProviderError>>;

    /// [`Self::apply`], on condition that every RRset `ops` touch is still
    /// as in `expected` (the zone as read, at the names the plan touches).
    /// Providers whose protocol carries conditions (RFC 2136
    /// prerequisites) have the server check it, atomically with the write;
    /// others rely on the caller's re-read.
    fn apply_expecting<'a>(
        &'a self,
        zone: &'a str,
        ops: &'a [RRsetOp],
        expected: &'a [RRset],
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        let _ = expected;
        self.apply(zone, ops)
    }
}

/// What went wrong talking to a provider. Never carries the API key.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(
        "cannot reach the DNS API at `{url}`: {detail}\n  hint: check that the DNS server is up and \
         that `dns.provider.api_url` is right"
    )]
    Unreachable { url: String, detail: String },
    #[error(
        "the DNS API at `{url}` rejected the API key (HTTP {status})\n  hint: check \
         `dns.provider.api_key` against the server's `api-key`"
    )]
    Unauthorized { url: String, status: u16 },
    #[error(
        "the DNS API at `{url}` has no server `{server_id}`\n  hint: set `dns.provider.server_id` \
         (PowerDNS calls its own server `localhost`)"
    )]
    ServerNotFound { url: String, server_id: String },
    #[error("zone `{zone}` does not exist on `{url}`")]
    ZoneNotFound { zone: String, url: String },
    #[error("zone `{zone}` already exists on `{url}`\n  hint: plan again")]
    ZoneExists { zone: String, url: String },
    #[error("the DNS server refused the change to zone `{zone}` (HTTP {status}): {message}")]
    Rejected {
        zone: String,
        status: u16,
        message: String,
    },
    #[error("unexpected answer from the DNS API {what}: HTTP {status}: {body}")]
    Unexpected {
        what: String,
        status: u16,
        body: String,
    },
    #[error("cannot read the DNS API's answer for {what}: {detail}")]
    Decode { what: String, detail: String },
    #[error("invalid DNS provider settings: {detail}")]
    Config { detail: String },
    #[error(
        "cannot reach the DNS server: {detail}\n  hint: check that the DNS server is up and that \
         `dns.provider.servers` is right"
    )]
    DnsUnreachable { detail: String },
    #[error("{what} failed: {detail}")]
    DnsFailed {
        /// `AXFR of `zone.` at 192.0.2.53:53`
        what: String,
        detail: String,
    },
    #[error(
        "the DNS server rejected the TSIG signature of the {what} ({codes})\n  hint: check \
         `dns.provider.tsig` (name, algorithm and secret) against the server's key"
    )]
    TsigRejected {
        /// `AXFR of `zone.` at 192.0.2.53:53 with key `xfed` (hmac-sha256)`
        what: String,
        /// The server's codes: `NOTAUTH/BADSIG`.
        codes: String,
    },
    #[error(
        "the DNS server refused the UPDATE of zone `{zone}`: a prerequisite failed ({codes}), a \
         record changed since it was read; nothing was written"
    )]
    PrerequisiteFailed {
        zone: String,
        /// `NXRRSET from 192.0.2.53:53`
        codes: String,
    },
}

/// What the DNS phase can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(
        "zone `{zone}` does not exist on {provider}\n  hint: create it, or set \
         `dns.provider.create_zones: true`"
    )]
    ZoneMissing { zone: String, provider: String },
    #[error("refusing to apply the DNS changes:\n{}", .reasons.join("\n"))]
    Refused { reasons: Vec<String> },
    #[error(
        "zone `{zone}` changed on the DNS server since the plan was made; nothing was written to it\n  \
         hint: plan again"
    )]
    Stale { zone: String },
    #[error(
        "stale plan: zone `{zone}` changed on the DNS server since it was read; nothing was \
         written to it{}: {source}\n  hint: plan again",
        written_note(.written)
    )]
    StaleUpdate {
        zone: String,
        /// Zones fully written before this one failed.
        written: Vec<String>,
        #[source]
        source: ProviderError,
    },
    #[error(
        "writing zone `{zone}` failed, nothing of it was written{}: {source}",
        written_note(.written)
    )]
    Write {
        zone: String,
        /// Zones fully written before this one failed.
        written: Vec<String>,
        #[source]
        source: ProviderError,
    },
}

fn written_note(written: &[String]) -> String {
    if written.is_empty() {
        String::new()
    } else {
        format!(" (zones written before it: {})", written.join(", "))
    }
}

/// The provider `dns.provider` names.
pub fn provider_for(
    provider: &crate::spec::DnsProvider,
) -> Result<Box<dyn DnsProvider>, ProviderError> {
    match &provider.api {
        DnsApi::Powerdns { .. } => Ok(Box::new(PowerDns::from_spec(provider)?)),
        DnsApi::Rfc2136(settings) => Ok(Box::new(Rfc2136::new(settings)?)),
    }
}

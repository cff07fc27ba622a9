//! DNS providers: the [`DnsProvider`] trait, its PowerDNS implementation,
//! and the async entry points the engine calls for the DNS phase.
//!
//! Owns every byte xfed sends to or reads from a DNS provider's API. Does
//! not decide anything: what to change is `crate::dns` (pure), which this
//! module feeds with what it read.
//!
//! Entry points:
//! - [`provider_for`]: the provider the spec's `dns.provider` names;
//! - [`plan_dns`]: reads every declared zone (never writes) and returns the
//!   [`DnsPlan`] — `dns_record`/`dns_zone` changes for the `Dns` phase,
//!   refusals, unmanaged records; `drift` is this plan, looked at;
//! - [`apply_dns`]: refuses what must be refused, re-reads each zone to
//!   make sure it has not moved since the plan, then writes each zone in
//!   one atomic request (zones one after another).

pub mod powerdns;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::dns::plan::{DnsPlan, ZoneObservation, build, zone_fingerprint};
use crate::dns::rrset::{RRset, RRsetOp};
use crate::spec::{DnsProviderKind, Spec};

pub use powerdns::PowerDns;

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
    match provider.kind {
        DnsProviderKind::Powerdns => Ok(Box::new(PowerDns::from_spec(provider)?)),
    }
}

/// Reads every zone the spec declares and decides them (no writes). A spec
/// without `dns` gives an empty plan.
pub async fn plan_dns(spec: &Spec, provider: &dyn DnsProvider) -> Result<DnsPlan, DnsError> {
    let Some(dns) = &spec.dns else {
        return Ok(build(spec, &[]));
    };
    let mut observations = Vec::new();
    for z in &dns.zones {
        let rrsets = provider.read_zone(&z.name).await?;
        if rrsets.is_none() && !dns.provider.create_zones {
            return Err(DnsError::ZoneMissing {
                zone: z.name.clone(),
                provider: provider.describe(),
            });
        }
        observations.push(ZoneObservation {
            zone: z.name.clone(),
            rrsets,
        });
    }
    Ok(build(spec, &observations))
}

/// Carries out `plan`. Refuses the whole plan when
/// [`DnsPlan::refusals`] says so; each zone is re-read first and skipped
/// with [`DnsError::Stale`] if it moved since the plan; each zone is
/// written in one request. Returns the zones written.
pub async fn apply_dns(
    provider: &dyn DnsProvider,
    plan: &DnsPlan,
    allow_mass_change: bool,
) -> Result<Vec<String>, DnsError> {
    let reasons = plan.refusals(allow_mass_change);
    if !reasons.is_empty() {
        return Err(DnsError::Refused { reasons });
    }
    let mut written = Vec::new();
    for z in plan.zones.iter().filter(|z| z.writes()) {
        let now = provider.read_zone(&z.zone).await?;
        // A zone planned for creation may have been created since, empty of
        // what the plan writes: by an ACME order of this very apply, which
        // publishes its DNS-01 record in it first. Then it is written to.
        let created_since = z.create_zone
            && now.as_deref().is_some_and(|rrsets| {
                zone_fingerprint(Some(rrsets), &z.touched)
                    == zone_fingerprint(Some(&[]), &z.touched)
            });
        if !created_since && zone_fingerprint(now.as_deref(), &z.touched) != z.observed_sha256 {
            return Err(DnsError::Stale {
                zone: z.zone.clone(),
            });
        }
        let result = if z.create_zone && !created_since {
            provider.create_zone(&z.zone, &z.initial_rrsets()).await
        } else {
            provider.apply(&z.zone, &z.decision.ops).await
        };
        if let Err(source) = result {
            return Err(DnsError::Write {
                zone: z.zone.clone(),
                written,
                source,
            });
        }
        written.push(z.zone.clone());
    }
    Ok(written)
}

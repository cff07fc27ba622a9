//! ACME (RFC 8555) with DNS-01, through instant-acme.
//!
//! For each name: publish `_acme-challenge.NAME` TXT through a
//! [`TxtPublisher`], wait until every authoritative server of its zone
//! answers it, tell the CA; then finalise with our own CSR, fetch the
//! chain, and remove the TXT records again (also when the order failed).
//!
//! The DNS side is a small trait, [`TxtPublisher`]; [`ProviderTxt`]
//! implements it over the spec's [`DnsProvider`], so tests of the order
//! logic need no DNS server.
//!
//! Requests the CA answers with `badNonce`, `429`, `503`, another 5xx or a
//! broken connection are retried under `providers::retry`'s policy, each
//! retry shown in the progress; a request that must not act twice (answer
//! a challenge, finalize) is repeated after an unclear failure only once
//! the CA's state shows the first try did not take.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use instant_acme::{
    self as acme, Account, AuthorizationStatus, ChallengeStatus, ChallengeType, Identifier,
    NewAccount, NewOrder, Order, OrderStatus, RetryPolicy,
};

use crate::dns::rrset::{RRset, RRsetOp, txt_content};
use crate::providers::dns::DnsProvider;
use crate::providers::retry::{self, Decision, Fault, Replay, RetryNotice};

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("ACME server `{directory}`: {detail}")]
    Server { directory: String, detail: String },
    #[error(
        "no DNS zone of the spec holds `{name}`\n  hint: add its zone under `dns.zones`, so the DNS-01 TXT record can be published"
    )]
    NoZone { name: String },
    #[error("DNS-01 for `{name}`: {detail}")]
    Dns { name: String, detail: String },
}

/// Publishing the challenge records. Names are absolute (trailing dot).
pub trait TxtPublisher: Send + Sync {
    /// Makes sure `zone` exists (creating it when allowed).
    fn ensure_zone(&self, zone: &str) -> impl Future<Output = Result<(), String>> + Send;
    /// Replaces the TXT RRset `name` with `values`.
    fn set_txt(
        &self,
        zone: &str,
        name: &str,
        values: &[String],
    ) -> impl Future<Output = Result<(), String>> + Send;
    fn delete_txt(&self, zone: &str, name: &str)
    -> impl Future<Output = Result<(), String>> + Send;
}

/// The zone a name is published in, and the servers that answer for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRef {
    /// Absolute, trailing dot.
    pub name: String,
    pub nameservers: Vec<SocketAddr>,
}

/// The longest of `zones` that `fqdn` (absolute) falls in.
pub fn zone_for<'a>(fqdn: &str, zones: &'a [ZoneRef]) -> Option<&'a ZoneRef> {
    zones
        .iter()
        .filter(|z| fqdn == z.name || fqdn.ends_with(&format!(".{}", z.name)))
        .max_by_key(|z| z.name.len())
}

/// What one order needs.
#[derive(Debug)]
pub struct AcmeOrder<'a> {
    pub directory: &'a str,
    /// CA bundle for the ACME server's own HTTPS (a test CA); else the
    /// system's roots.
    pub ca_bundle: Option<&'a Path>,
    pub contact: &'a [String],
    pub names: &'a [String],
    pub csr_der: &'a [u8],
    pub zones: &'a [ZoneRef],
    /// How long to wait for the authoritative servers to answer a record.
    pub propagation_timeout: Duration,
    /// The host the certificate is for, to label retries in the progress.
    pub host: &'a str,
}

/// Runs one DNS-01 order; returns the PEM chain, leaf first.
///
/// Every request is retried by [`RetryPolicy::STANDARD`] on top of
/// instant-acme's own handling. instant-acme 0.8 sends every POST through
/// one function that tries at most three nonces on `badNonce`, then returns
/// the CA's error — no request path escapes it, but three rejections in a
/// row do happen: at pebble's 5 % that is 1 POST in 8,000, and one apply of
/// the lab makes some 30 (two orders of four names), about 1 apply in 250
/// (the 1 in 45 once seen is within chance for a single failure). At 50 %
/// it is 1 POST in 8 and nearly every apply failed. The CA's answer is only
/// the fresh nonce to try again with (RFC 8555 §6.5), so the step is tried
/// again. instant-acme drops the `Retry-After` of an error answer, so a
/// `429` or `503` waits by backoff; its polling loops honour `Retry-After`
/// themselves.
pub async fn issue_dns01<P: TxtPublisher>(
    order: &AcmeOrder<'_>,
    dns: &P,
) -> Result<String, AcmeError> {
    let server = |detail: String| AcmeError::Server {
        directory: order.directory.to_string(),
        detail,
    };
    let mut tries = Tries::new(order);
    let contact: Vec<&str> = order.contact.iter().map(String::as_str).collect();
    // Retried even after a broken connection: each try makes a fresh
    // account key, so a first try that went through leaves an account that
    // nothing ever signs with, and no authority over our names.
    let account = loop {
        let builder = match order.ca_bundle {
            Some(p) => Account::builder_with_root(p),
            None => Account::builder(),
        }
        .map_err(|e| server(e.to_string()))?;
        let created = builder
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                order.directory.to_string(),
                None,
            )
            .await;
        match created {
            Ok((account, _credentials)) => break account,
            Err(e) => {
                tries
                    .again("create the account", e, Replay::Idempotent)
                    .await?;
            }
        }
    };
    let ids: Vec<Identifier> = order
        .names
        .iter()
        .map(|n| Identifier::Dns(n.clone()))
        .collect();
    // Likewise: a duplicate order stays pending until the CA expires it and
    // changes nothing of the one we go on with.
    let mut acme = loop {
        match account.new_order(&NewOrder::new(&ids)).await {
            Ok(o) => break o,
            Err(e) => {
                tries
                    .again("place the order", e, Replay::Idempotent)
                    .await?;
            }
        }
    };

    let mut published: Vec<(String, String, Vec<String>)> = Vec::new(); // zone, name, values
    let result = async {
        authorize(&mut acme, order, dns, &mut published, &mut tries).await?;
        let poll = RetryPolicy::new().timeout(Duration::from_secs(60));
        let status = loop {
            match acme.poll_ready(&poll).await {
                Ok(s) => break s,
                Err(e) => {
                    tries.again("poll the order", e, Replay::Idempotent).await?;
                }
            }
        };
        if status != OrderStatus::Ready {
            return Err(server(format!("the order ended {status:?}")));
        }
        finalize(&mut acme, order.csr_der, &mut tries).await?;
        loop {
            match acme.poll_certificate(&poll).await {
                Ok(chain) => return Ok(chain),
                Err(e) => {
                    tries
                        .again("fetch the certificate", e, Replay::Idempotent)
                        .await?;
                }
            }
        }
    }
    .await;
    for (zone, name, _) in &published {
        // Best effort: a record left behind is harmless and replaced next time.
        let _ = dns.delete_txt(zone, name).await;
    }
    result
}

/// Publishes and answers the DNS-01 challenge of every pending
/// authorization. After a failed request the authorizations are walked
/// again from the start: instant-acme's stream has moved past the one that
/// failed. Those already answered are remembered by URL and skipped; one
/// whose answer may or may not have reached the CA is re-read first and
/// answered again only while its challenge is still pending. The walks are
/// bounded by [`Tries`]: each new walk follows a retry it counted.
async fn authorize<P: TxtPublisher>(
    acme: &mut Order,
    order: &AcmeOrder<'_>,
    dns: &P,
    published: &mut Vec<(String, String, Vec<String>)>,
    tries: &mut Tries<'_>,
) -> Result<(), AcmeError> {
    let server = |detail: String| AcmeError::Server {
        directory: order.directory.to_string(),
        detail,
    };
    let mut answered: HashSet<String> = HashSet::new();
    let mut recheck: HashSet<String> = HashSet::new();
    'walk: loop {
        let mut authzs = acme.authorizations();
        while let Some(a) = authzs.next().await {
            let mut authz = match a {
                Ok(a) => a,
                Err(e) => {
                    tries
                        .again("fetch an authorization", e, Replay::Idempotent)
                        .await?;
                    continue 'walk;
                }
            };
            let url = authz.url().to_string();
            if answered.contains(&url) {
                continue;
            }
            if recheck.contains(&url) {
                if let Err(e) = authz.refresh().await {
                    tries
                        .again("re-read an authorization", e, Replay::Idempotent)
                        .await?;
                    continue 'walk;
                }
                recheck.remove(&url);
            }
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                s => return Err(server(format!("an authorization is {s:?}"))),
            }
            let mut ch = authz
                .challenge(ChallengeType::Dns01)
                .ok_or_else(|| server("the CA offers no dns-01 challenge".into()))?;
            if ch.status != ChallengeStatus::Pending {
                // our earlier answer reached the CA after all
                answered.insert(url);
                continue;
            }
            let name = ch.identifier().to_string();
            let fqdn = format!("_acme-challenge.{}.", name.trim_end_matches('.'));
            let value = ch.key_authorization().dns_value();
            let zone = zone_for(&fqdn, order.zones)
                .ok_or_else(|| AcmeError::NoZone { name: name.clone() })?;
            let dns_err = |detail: String| AcmeError::Dns {
                name: name.clone(),
                detail,
            };
            let values = match published.iter_mut().find(|(_, n, _)| n == &fqdn) {
                Some((_, _, v)) => {
                    if !v.contains(&value) {
                        v.push(value.clone());
                    }
                    v.clone()
                }
                None => {
                    dns.ensure_zone(&zone.name).await.map_err(dns_err)?;
                    published.push((zone.name.clone(), fqdn.clone(), vec![value.clone()]));
                    vec![value.clone()]
                }
            };
            dns.set_txt(&zone.name, &fqdn, &values)
                .await
                .map_err(dns_err)?;
            wait_for_txt(&fqdn, &value, &zone.nameservers, order.propagation_timeout)
                .await
                .map_err(dns_err)?;
            // Answering twice is refused once the challenge has moved on, so
            // after a try that may have arrived it is re-read first.
            match ch.set_ready().await {
                Ok(()) => {
                    answered.insert(url);
                }
                Err(e) => {
                    let what = format!("answer the challenge for `{name}`");
                    if tries.again(&what, e, Replay::Once).await? == Next::Check {
                        recheck.insert(url);
                    }
                    continue 'walk;
                }
            }
        }
        return Ok(());
    }
}

/// Finalizes with our CSR. Finalizing an order twice is refused, so after
/// a try that may have arrived the order is re-read: still `ready`, the
/// first try did not take and is repeated; `processing` or `valid`, it did.
async fn finalize(
    acme: &mut Order,
    csr_der: &[u8],
    tries: &mut Tries<'_>,
) -> Result<(), AcmeError> {
    loop {
        let Err(e) = acme.finalize_csr(csr_der).await else {
            return Ok(());
        };
        if tries.again("finalize the order", e, Replay::Once).await? == Next::Send {
            continue;
        }
        loop {
            match acme.refresh().await {
                Ok(state) if state.status == OrderStatus::Ready => break,
                Ok(_) => return Ok(()),
                Err(e) => {
                    tries
                        .again("re-read the order", e, Replay::Idempotent)
                        .await?;
                }
            }
        }
    }
}

/// How to go on after a retried request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Send it again.
    Send,
    /// Look at the CA's state first: the failed try may have taken effect.
    Check,
}

/// The tries of one order's requests, counted per request, each failure
/// judged by [`RetryPolicy::STANDARD`] and every retry reported.
struct Tries<'a> {
    order: &'a AcmeOrder<'a>,
    peer: String,
    counts: HashMap<String, u32>,
}

impl<'a> Tries<'a> {
    fn new(order: &'a AcmeOrder<'a>) -> Tries<'a> {
        Tries {
            order,
            peer: format!("ACME `{}`", order.directory),
            counts: HashMap::new(),
        }
    }

    /// After `what` failed with `e`: waits and says how to go on, or gives
    /// up with the error.
    async fn again(
        &mut self,
        what: &str,
        e: acme::Error,
        replay: Replay,
    ) -> Result<Next, AcmeError> {
        let policy = retry::RetryPolicy::STANDARD;
        let attempt = self.counts.entry(what.to_string()).or_insert(0);
        *attempt += 1;
        let (delay, next) = match policy.decide(*attempt, &fault_of(&e), replay) {
            Decision::GiveUp => {
                return Err(AcmeError::Server {
                    directory: self.order.directory.to_string(),
                    detail: if *attempt > 1 {
                        format!("{what} (after {attempt} tries): {e}")
                    } else {
                        format!("{what}: {e}")
                    },
                });
            }
            Decision::Retry(d) => (d, Next::Send),
            Decision::CheckThenRetry(d) => (d, Next::Check),
        };
        retry::report(&RetryNotice {
            host: self.order.host,
            peer: &self.peer,
            request: what,
            why: &e.to_string(),
            attempt: *attempt + 1,
            attempts: policy.attempts,
            checking: next == Next::Check,
            delay,
        });
        tokio::time::sleep(delay).await;
        Ok(next)
    }
}

/// How an instant-acme error counts for retrying.
fn fault_of(e: &acme::Error) -> Fault {
    match e {
        acme::Error::Api(p) => problem_fault(p.r#type.as_deref(), p.status),
        acme::Error::Other(inner) => transport_fault(inner.as_ref()),
        acme::Error::Hyper(inner) => transport_fault(inner),
        _ => Fault::Permanent,
    }
}

/// The transport: hyper's errors come boxed, their kind only in the
/// chain. A refused connection means no CA there (said at once); anything
/// else broke a request that may have arrived.
fn transport_fault(e: &(dyn std::error::Error + 'static)) -> Fault {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return Fault::Permanent;
        }
        source = s.source();
    }
    Fault::Broken
}

/// An ACME problem document (RFC 8555 §6.7) as a fault.
fn problem_fault(kind: Option<&str>, status: Option<u16>) -> Fault {
    match (kind, status) {
        (Some("urn:ietf:params:acme:error:badNonce"), _) => Fault::BadNonce,
        (Some("urn:ietf:params:acme:error:rateLimited"), _) => Fault::Busy {
            status: 429,
            retry_after: None,
        },
        (_, Some(s @ (429 | 503))) => Fault::Busy {
            status: s,
            retry_after: None,
        },
        (_, Some(s)) if (500..600).contains(&s) => Fault::ServerError { status: s },
        _ => Fault::Permanent,
    }
}

/// Polls every authoritative server until it answers `value` at `fqdn`.
async fn wait_for_txt(
    fqdn: &str,
    value: &str,
    nameservers: &[SocketAddr],
    timeout: Duration,
) -> Result<(), String> {
    use hickory_resolver::proto::rr::{RData, RecordType};
    let deadline = Instant::now() + timeout;
    for ns in nameservers {
        let resolver = crate::providers::dns::resolver::resolver_for(*ns);
        loop {
            let seen = match resolver.lookup(fqdn, RecordType::TXT).await {
                Ok(l) => l.answers().iter().any(|r| match &r.data {
                    RData::TXT(t) => t.txt_data.iter().any(|s| s.as_ref() == value.as_bytes()),
                    _ => false,
                }),
                Err(_) => false,
            };
            if seen {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the authoritative server {ns} does not answer the TXT record after {}s",
                    timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// The challenge records go through the spec's DNS provider, the same one
/// that writes the SRV and A records.
#[derive(Debug)]
pub struct ProviderTxt<'a> {
    pub provider: &'a dyn DnsProvider,
    pub create_zones: bool,
}

impl TxtPublisher for ProviderTxt<'_> {
    async fn ensure_zone(&self, zone: &str) -> Result<(), String> {
        if self
            .provider
            .read_zone(zone)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Ok(());
        }
        if !self.create_zones {
            return Err(format!(
                "zone `{zone}` does not exist\n  hint: create it, or set `dns.provider.create_zones: true`"
            ));
        }
        self.provider
            .create_zone(zone, &[])
            .await
            .map_err(|e| e.to_string())
    }

    async fn set_txt(&self, zone: &str, name: &str, values: &[String]) -> Result<(), String> {
        let records = values.iter().map(|v| txt_content(v)).collect();
        let op = RRsetOp::Replace(RRset::new(name, "TXT", 60, records));
        self.provider
            .apply(zone, &[op])
            .await
            .map_err(|e| e.to_string())
    }

    async fn delete_txt(&self, zone: &str, name: &str) -> Result<(), String> {
        let op = RRsetOp::Delete {
            name: name.to_string(),
            rtype: "TXT".to_string(),
        };
        self.provider
            .apply(zone, &[op])
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_nonce_rate_limits_and_server_errors_are_retried_other_problems_are_not() {
        let f = |t: &str, s| problem_fault(Some(t), Some(s));
        assert_eq!(
            f("urn:ietf:params:acme:error:badNonce", 400),
            Fault::BadNonce
        );
        assert_eq!(
            f("urn:ietf:params:acme:error:rateLimited", 429),
            Fault::Busy {
                status: 429,
                retry_after: None
            }
        );
        assert_eq!(
            f("about:blank", 503),
            Fault::Busy {
                status: 503,
                retry_after: None
            }
        );
        assert_eq!(
            f("urn:ietf:params:acme:error:serverInternal", 500),
            Fault::ServerError { status: 500 }
        );
        for permanent in [
            ("urn:ietf:params:acme:error:unauthorized", 403),
            ("urn:ietf:params:acme:error:orderNotReady", 403),
            ("urn:ietf:params:acme:error:malformed", 400),
        ] {
            assert_eq!(f(permanent.0, permanent.1), Fault::Permanent);
        }
        assert_eq!(problem_fault(None, None), Fault::Permanent);
    }

    #[test]
    fn a_refused_connection_fails_at_once_a_reset_one_is_retried() {
        let refused = acme::Error::Other(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(fault_of(&refused), Fault::Permanent);
        let reset = acme::Error::Other(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(fault_of(&reset), Fault::Broken);
        assert_eq!(
            fault_of(&acme::Error::Str("no nonce found")),
            Fault::Permanent
        );
    }
}

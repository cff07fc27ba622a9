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

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};

use crate::dns::rrset::{RRset, RRsetOp, txt_content};
use crate::providers::dns::DnsProvider;

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
}

/// Runs one DNS-01 order; returns the PEM chain, leaf first.
pub async fn issue_dns01<P: TxtPublisher>(
    order: &AcmeOrder<'_>,
    dns: &P,
) -> Result<String, AcmeError> {
    let server = |detail: String| AcmeError::Server {
        directory: order.directory.to_string(),
        detail,
    };
    let builder = match order.ca_bundle {
        Some(p) => Account::builder_with_root(p),
        None => Account::builder(),
    }
    .map_err(|e| server(e.to_string()))?;
    let contact: Vec<&str> = order.contact.iter().map(String::as_str).collect();
    let (account, _credentials) = builder
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            order.directory.to_string(),
            None,
        )
        .await
        .map_err(|e| server(format!("cannot create the account: {e}")))?;
    let ids: Vec<Identifier> = order
        .names
        .iter()
        .map(|n| Identifier::Dns(n.clone()))
        .collect();
    let mut acme = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(|e| server(format!("cannot place the order: {e}")))?;

    let mut published: Vec<(String, String, Vec<String>)> = Vec::new(); // zone, name, values
    let result = async {
        let mut authzs = acme.authorizations();
        while let Some(a) = authzs.next().await {
            let mut authz = a.map_err(|e| server(e.to_string()))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                s => return Err(server(format!("an authorization is {s:?}"))),
            }
            let mut ch = authz
                .challenge(ChallengeType::Dns01)
                .ok_or_else(|| server("the CA offers no dns-01 challenge".into()))?;
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
                    v.push(value.clone());
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
            ch.set_ready().await.map_err(|e| server(e.to_string()))?;
        }
        let retry = RetryPolicy::new().timeout(Duration::from_secs(60));
        let status = acme
            .poll_ready(&retry)
            .await
            .map_err(|e| server(e.to_string()))?;
        if status != OrderStatus::Ready {
            return Err(server(format!("the order ended {status:?}")));
        }
        acme.finalize_csr(order.csr_der)
            .await
            .map_err(|e| server(format!("finalize: {e}")))?;
        acme.poll_certificate(&retry)
            .await
            .map_err(|e| server(format!("fetching the certificate: {e}")))
    }
    .await;
    for (zone, name, _) in &published {
        // Best effort: a record left behind is harmless and replaced next time.
        let _ = dns.delete_txt(zone, name).await;
    }
    result
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

//! The DNS stage of an apply: refuse what must be refused, re-read each
//! zone to make sure it has not moved since the plan, then write each zone
//! in one atomic request (zones one after another).

use crate::dns::rrset::RRset;
use crate::plan::dns_plan::{DnsPlan, zone_fingerprint};
use crate::providers::dns::{DnsError, DnsProvider, ProviderError};

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
            // What the zone holds at the names the plan touches, as just
            // read: a provider that can, has the server hold the write to it.
            let expected: Vec<RRset> = now
                .iter()
                .flatten()
                .filter(|r| z.touched.contains(&r.name))
                .cloned()
                .collect();
            provider
                .apply_expecting(&z.zone, &z.decision.ops, &expected)
                .await
        };
        if let Err(source @ ProviderError::PrerequisiteFailed { .. }) = result {
            return Err(DnsError::StaleUpdate {
                zone: z.zone.clone(),
                written,
                source,
            });
        }
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

//! The DNS side of the read pipeline: every zone the spec declares, read
//! through its provider (never written), decided by the pure
//! `plan::dns_plan::build`. `drift` is this plan, looked at.

use crate::plan::dns_plan::{DnsPlan, ZoneObservation, build};
use crate::providers::dns::{DnsError, DnsProvider};
use crate::spec::Spec;

/// Reads every zone the spec declares and decides them (no writes). A spec
/// without `dns` gives an empty plan.
pub async fn read_and_plan(spec: &Spec, provider: &dyn DnsProvider) -> Result<DnsPlan, DnsError> {
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

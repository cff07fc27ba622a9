//! [`DnsPlan`]: every declared zone decided — its `dns_record` changes, the
//! provider operations behind them, what is refused and why, and the
//! unmanaged records left alone. A value: building it is pure
//! ([`build`]); `engine::dns::read_and_plan` reads the zones and calls it,
//! `apply::dns::apply_dns` carries it out.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::dns_decide::{ZoneDecision, decide};
use super::{Action, Change, Phase};
use crate::digest::sha256_hex;
use crate::dns::checks::cross_checks;
use crate::dns::desired::{derive, xmpp_srv_name, zone_for};
use crate::dns::finding::Finding;
use crate::dns::guard::{mass_change_guard, no_target_check};
use crate::dns::owner::{managed_set, marker_name};
use crate::dns::rrset::{RRset, RRsetOp};
use crate::spec::{Spec, View};

/// What a provider returned for one zone; `rrsets: None` when the zone
/// does not exist there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneObservation {
    pub zone: String,
    pub rrsets: Option<Vec<RRset>>,
}

/// One zone, decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZonePlan {
    pub zone: String,
    pub view: View,
    /// The zone does not exist yet: apply creates it, records included, in
    /// one request.
    pub create_zone: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone_change: Option<Change>,
    pub decision: ZoneDecision,
    /// sha256 of the zone as read (SOA left out: every write bumps its
    /// serial); apply refuses to write when the zone no longer matches.
    pub observed_sha256: String,
    /// The names `observed_sha256` covers (see [`zone_fingerprint`]).
    pub touched: BTreeSet<String>,
    /// The mass-change guard's refusal, if it trips.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
    /// No-target refusals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub no_target: Vec<String>,
}

impl ZonePlan {
    /// Whether applying this zone sends anything to the provider.
    pub fn writes(&self) -> bool {
        self.create_zone || !self.decision.ops.is_empty()
    }

    /// The RRsets a new zone is created with.
    pub fn initial_rrsets(&self) -> Vec<RRset> {
        self.decision
            .ops
            .iter()
            .filter_map(|op| match op {
                RRsetOp::Replace(r) => Some(r.clone()),
                RRsetOp::Delete { .. } => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsPlan {
    pub zones: Vec<ZonePlan>,
    /// Derivation problems and cross-check results.
    pub findings: Vec<Finding>,
}

impl DnsPlan {
    /// Every change, zones in spec order: the zone's creation first, then
    /// its records in `(name, type)` order; no-ops included.
    pub fn changes(&self) -> Vec<Change> {
        self.zones
            .iter()
            .flat_map(|z| z.zone_change.iter().chain(z.decision.changes.iter()))
            .cloned()
            .collect()
    }

    pub fn has_changes(&self) -> bool {
        self.zones
            .iter()
            .any(|z| z.create_zone || z.decision.changes.iter().any(|c| c.action.is_change()))
    }

    /// Why this plan must not be applied: error findings, no-target checks,
    /// and — unless `allow_mass_change` — the mass-change guard.
    pub fn refusals(&self, allow_mass_change: bool) -> Vec<String> {
        let mut out: Vec<String> = self
            .findings
            .iter()
            .filter(|f| f.is_error())
            .map(ToString::to_string)
            .collect();
        for z in &self.zones {
            out.extend(z.no_target.iter().cloned());
            if !allow_mass_change {
                out.extend(z.guard.iter().cloned());
            }
        }
        out
    }

    /// Records in the zones that xfed leaves alone, with their zone.
    pub fn unmanaged(&self) -> Vec<(String, RRset)> {
        self.zones
            .iter()
            .flat_map(|z| {
                z.decision
                    .unmanaged
                    .iter()
                    .map(|r| (z.zone.clone(), r.clone()))
            })
            .collect()
    }
}

/// sha256 over the RRsets of a zone that a plan touches, as read, in any
/// order: those at the `names` it writes or manages (ownership markers
/// included). Records elsewhere in the zone — hand-made ones, or the
/// short-lived `_acme-challenge` TXT records an ACME order publishes while
/// the rollout runs — do not make a plan stale. `None` = the zone is absent.
pub fn zone_fingerprint(rrsets: Option<&[RRset]>, names: &BTreeSet<String>) -> String {
    let Some(rrsets) = rrsets else {
        return sha256_hex(b"absent");
    };
    let mut sets: Vec<RRset> = rrsets
        .iter()
        .filter(|r| r.rtype != "SOA" && names.contains(&r.name))
        .map(|r| RRset::new(&r.name, &r.rtype, r.ttl, r.records.clone()))
        .collect();
    sets.sort();
    sha256_hex(serde_json::to_string(&sets).unwrap_or_default().as_bytes())
}

/// The names a zone's plan depends on: every desired RRset, every RRset
/// it writes or deletes, every managed one, and their ownership markers.
fn touched_names<'a>(
    desired: impl IntoIterator<Item = &'a RRset>,
    decision: &ZoneDecision,
    observed: &[RRset],
) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = desired.into_iter().map(|r| r.name.clone()).collect();
    for op in &decision.ops {
        names.insert(match op {
            RRsetOp::Replace(r) => r.name.clone(),
            RRsetOp::Delete { name, .. } => name.clone(),
        });
    }
    names.extend(managed_set(observed).into_iter().map(|(name, _)| name));
    let markers: Vec<String> = names.iter().map(|n| marker_name(n)).collect();
    names.extend(markers);
    names
}

/// Decides every declared zone of `spec` against `observations` (a zone
/// missing from them counts as absent and is planned for creation; whether
/// creating is allowed is the caller's decision, see
/// `DnsProvider.create_zones`).
pub fn build(spec: &Spec, observations: &[ZoneObservation]) -> DnsPlan {
    let derived = derive(spec);
    let mut findings = derived.findings.clone();
    findings.extend(cross_checks(spec, &derived.zones));
    let max_change = spec.dns.as_ref().map_or(0.3, |d| d.max_change);

    let mut zones = Vec::new();
    for zr in &derived.zones {
        let observed = observations
            .iter()
            .find(|o| o.zone == zr.zone)
            .and_then(|o| o.rrsets.as_deref());
        let decision = decide(&zr.zone, &zr.rrsets, observed.unwrap_or(&[]), None);
        let create_zone = observed.is_none();
        let zone_origin = spec
            .dns
            .as_ref()
            .and_then(|d| d.zones.iter().find(|z| z.name == zr.zone))
            .map(|z| z.origin.to_string())
            .unwrap_or_default();
        let zone_change = create_zone.then(|| Change {
            address: format!("dns/{}/zone", zr.zone),
            host: String::new(),
            pool: String::new(),
            phase: Phase::Dns,
            kind: super::ResourceKind::DnsZone,
            action: Action::Create,
            reason: "absent on the DNS server (`create_zones` is set)".into(),
            diff: None,
            attrs: Vec::new(),
            service_op: None,
            origin: zone_origin,
            observed: zone_fingerprint(None, &BTreeSet::new()),
            desired: sha256_hex(zr.zone.as_bytes()),
        });
        let guard = mass_change_guard(
            &zr.zone,
            decision.managed_before,
            decision.updated,
            decision.deleted,
            max_change,
        )
        .err();
        let mut no_target = Vec::new();
        for domain in &spec.xmpp_domains {
            let name = xmpp_srv_name(domain);
            if zone_for(spec, &name, View::External) != Some(zr.zone.as_str()) {
                continue;
            }
            let after = zr
                .rrsets
                .iter()
                .map(|d| &d.rrset)
                .find(|r| r.name == name && r.rtype == "SRV")
                .or_else(|| {
                    decision
                        .unmanaged
                        .iter()
                        .find(|r| r.name == name && r.rtype == "SRV")
                });
            if let Err(e) = no_target_check(&name, after) {
                no_target.push(e);
            }
        }
        let touched = touched_names(
            zr.rrsets.iter().map(|d| &d.rrset),
            &decision,
            observed.unwrap_or(&[]),
        );
        zones.push(ZonePlan {
            zone: zr.zone.clone(),
            view: zr.view,
            create_zone,
            zone_change,
            observed_sha256: zone_fingerprint(observed, &touched),
            touched,
            decision,
            guard,
            no_target,
        });
    }
    DnsPlan { zones, findings }
}

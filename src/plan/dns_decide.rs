//! Decisions for one zone: desired RRsets + the zone's observed RRsets →
//! `dns_record` [`Change`]s, the provider operations that carry them out,
//! and the unmanaged records left alone (facts are read first, by the
//! engine; deciding is this pure function).
//!
//! Pure and deterministic: the same inputs give the same changes, in
//! `(name, type)` order.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::diff::text_diff;
use super::{Action, AttrChange, Change, Phase};
use crate::digest::sha256_hex;
use crate::dns::desired::DesiredRRset;
use crate::dns::owner::{is_marker_name, managed_set, markers_for};
use crate::dns::rrset::{RRset, RRsetOp, normalise_name};

/// The `kind` of every record change.
pub const KIND: super::ResourceKind = super::ResourceKind::DnsRecord;

/// What one zone needs, decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneDecision {
    /// One per desired or managed RRset, no-ops included, `(name, type)` order.
    pub changes: Vec<Change>,
    /// Everything to send to the provider (records and ownership markers);
    /// empty when nothing changes.
    pub ops: Vec<RRsetOp>,
    /// Records in the zone xfed does not manage and leaves alone (SOA and
    /// the apex NS records are not listed).
    pub unmanaged: Vec<RRset>,
    /// RRsets xfed managed before this plan.
    pub managed_before: usize,
    /// Managed (or adopted) RRsets whose records or TTL change.
    pub updated: usize,
    pub deleted: usize,
    pub created: usize,
}

/// `dns/<zone>/<TYPE>:<name>`
pub fn address(zone: &str, rrset_name: &str, rtype: &str) -> String {
    format!("dns/{zone}/{rtype}:{rrset_name}")
}

fn fingerprint<T: Serialize>(value: &T) -> String {
    sha256_hex(serde_json::to_string(value).unwrap_or_default().as_bytes())
}

/// Fingerprint of what was observed for one RRset (`None`: absent).
pub fn observed_fingerprint(observed: Option<&RRset>, managed: bool) -> String {
    fingerprint(&serde_json::json!({ "rrset": observed, "managed": managed }))
}

/// Fingerprint of what is desired for one RRset (`None`: to be deleted).
pub fn desired_fingerprint(desired: Option<&RRset>) -> String {
    fingerprint(&serde_json::json!({ "rrset": desired }))
}

fn normalised(r: &RRset) -> RRset {
    RRset::new(&r.name, &r.rtype, r.ttl, r.records.clone())
}

fn change(zone: &str, key: &(String, String), action: Action, reason: String) -> Change {
    Change {
        address: address(zone, &key.0, &key.1),
        host: String::new(),
        pool: String::new(),
        phase: Phase::Dns,
        kind: KIND,
        action,
        reason,
        diff: None,
        attrs: Vec::new(),
        service_op: None,
        origin: String::new(),
        observed: String::new(),
        desired: String::new(),
    }
}

/// Decides one zone.
///
/// `observed` is every RRset the provider returned for `zone` (markers
/// included); `managed` is what the markers declare, see
/// [`crate::dns::owner::managed_set`] — pass `None` to have it read from
/// `observed`.
pub fn decide(
    zone: &str,
    desired: &[DesiredRRset],
    observed: &[RRset],
    managed: Option<&BTreeSet<(String, String)>>,
) -> ZoneDecision {
    let zone = normalise_name(zone);
    let observed: Vec<RRset> = observed.iter().map(normalised).collect();
    let from_markers;
    let managed = match managed {
        Some(m) => m,
        None => {
            from_markers = managed_set(&observed);
            &from_markers
        }
    };
    let records: BTreeMap<(String, String), &RRset> = observed
        .iter()
        .filter(|r| !is_marker_name(&r.name) && r.rtype != "SOA")
        .map(|r| (r.key(), r))
        .collect();
    let wanted: BTreeMap<(String, String), &DesiredRRset> =
        desired.iter().map(|d| (d.rrset.key(), d)).collect();

    let mut d = ZoneDecision {
        changes: Vec::new(),
        ops: Vec::new(),
        unmanaged: Vec::new(),
        managed_before: managed.len(),
        updated: 0,
        deleted: 0,
        created: 0,
    };

    let keys: BTreeSet<&(String, String)> = wanted.keys().chain(managed.iter()).collect();
    for key in keys {
        let obs = records.get(key).copied();
        let is_managed = managed.contains(key);
        let label = address(&zone, &key.0, &key.1);
        let mut c = change(&zone, key, Action::NoOp, String::new());
        c.observed = observed_fingerprint(obs, is_managed);
        match (wanted.get(key), obs) {
            (Some(want), None) => {
                let want_set = &want.rrset;
                c.action = Action::Create;
                c.reason = if is_managed {
                    "absent (deleted outside xfed)".into()
                } else {
                    "absent".into()
                };
                c.diff = Some(text_diff("", &want_set.zone_lines(), &label, false));
                d.ops.push(RRsetOp::Replace(want_set.clone()));
                d.created += 1;
            }
            (Some(want), Some(have)) => {
                let want_set = &want.rrset;
                let records_differ = have.records != want_set.records;
                let ttl_differs = have.ttl != want_set.ttl;
                let what = match (records_differ, ttl_differs) {
                    (true, true) => Some("records and ttl differ"),
                    (true, false) => Some("records differ"),
                    (false, true) => Some("ttl differs"),
                    (false, false) => None,
                };
                match (what, is_managed) {
                    (None, true) => c.reason = "records match".into(),
                    (None, false) => {
                        c.action = Action::Update;
                        c.reason = "exists but is not managed by xfed: records match, \
                                    it will be adopted (ownership marker added)"
                            .into();
                    }
                    (Some(what), managed) => {
                        c.action = Action::Update;
                        c.reason = if managed {
                            what.to_string()
                        } else {
                            format!(
                                "exists but is not managed by xfed and {what}: it will be adopted and overwritten"
                            )
                        };
                        if records_differ {
                            c.diff = Some(text_diff(
                                &have.zone_lines(),
                                &want_set.zone_lines(),
                                &label,
                                false,
                            ));
                        }
                        if ttl_differs {
                            c.attrs.push(AttrChange {
                                name: "ttl".into(),
                                before: have.ttl.to_string(),
                                after: want_set.ttl.to_string(),
                            });
                        }
                        d.ops.push(RRsetOp::Replace(want_set.clone()));
                        d.updated += 1;
                    }
                }
            }
            (None, Some(have)) => {
                // Managed, no longer wanted.
                c.action = Action::Delete;
                c.reason = "no longer in the spec".into();
                c.diff = Some(text_diff(&have.zone_lines(), "", &label, false));
                d.ops.push(RRsetOp::Delete {
                    name: key.0.clone(),
                    rtype: key.1.clone(),
                });
                d.deleted += 1;
            }
            (None, None) => {
                // Managed, no longer wanted, already gone: only the marker
                // entry goes (below); nothing to show.
                continue;
            }
        }
        if let Some(want) = wanted.get(key) {
            c.origin = want.origin.clone();
            c.desired = desired_fingerprint(Some(&want.rrset));
        } else {
            c.desired = desired_fingerprint(None);
        }
        d.changes.push(c);
    }

    for (key, r) in &records {
        if wanted.contains_key(key) || managed.contains(key) {
            continue;
        }
        let apex_infra = r.name == zone && r.rtype == "NS";
        if !apex_infra {
            d.unmanaged.push((*r).clone());
        }
    }

    // Markers: after this plan xfed manages exactly the desired RRsets.
    // Sent only along with record changes or when they are out of date.
    let after: BTreeSet<(String, String)> = wanted.keys().cloned().collect();
    let want_markers = markers_for(&after);
    let have_markers: BTreeMap<&str, &RRset> = observed
        .iter()
        .filter(|r| is_marker_name(&r.name) && r.rtype == "TXT")
        .map(|r| (r.name.as_str(), r))
        .collect();
    for (name, m) in &want_markers {
        if have_markers
            .get(name.as_str())
            .map(|h| h.records != m.records)
            != Some(false)
        {
            d.ops.push(RRsetOp::Replace(m.clone()));
        }
    }
    for (name, m) in &have_markers {
        // A TXT RRset at a marker name without a marker record is not ours.
        let ours = !managed_set(std::slice::from_ref(*m)).is_empty();
        if ours && !want_markers.contains_key(*name) {
            d.ops.push(RRsetOp::Delete {
                name: name.to_string(),
                rtype: "TXT".into(),
            });
        }
    }
    d
}

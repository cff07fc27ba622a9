//! DNS decisions without a network: records derived from a spec, the
//! normalisation that keeps applied records from showing as diffs, the
//! changes for a zone, the ownership marker, the safety thresholds and the
//! plan-time cross-checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use xfed::dns::Level;
use xfed::dns::desired::{derive, desired, xmpp_srv_name};
use xfed::dns::guard::{GUARD_MIN_MANAGED, mass_change_guard, no_target_check};
use xfed::dns::owner::{managed_set, marker_name};
use xfed::dns::rrset::{RRset, RRsetOp, normalise_content, normalise_name, parse_txt, txt_content};
use xfed::plan::dns_decide::decide;
use xfed::plan::dns_plan::{DnsPlan, ZoneObservation, build};
use xfed::plan::{Action, Phase};
use xfed::spec::{self, MapInputs, Source, Spec, View};

const ZONE: &str = "contoso.example.";
const SRV: &str = "_xmpp-server._tcp.contoso.example.";

/// One site, one federation pool of two edges; an external and an internal
/// (split-horizon) zone. `extra` is appended under `dns:`.
fn spec_text(extra_dns: &str) -> String {
    format!(
        r#"version: 1
sip_domains: [contoso.example]
xmpp_domains: [contoso.example]
ssh: {{ identity_file: /keys/id_ed25519, known_hosts: /keys/known_hosts }}
sites:
  - {{ name: hq, frontend_pool: fe-hq, xmpp_route: edge-hq }}
frontend_pools:
  - name: fe-hq
    servers: [{{ fqdn: fe1.corp.contoso.example, address: 203.0.113.11 }}]
edge_pools:
  - name: edge-hq
    site: hq
    xmpp_federation: true
    srv: {{ priority: 10, weight: 100 }}
    servers:
      - fqdn: edge1.corp.contoso.example
        internal: {{ address: 203.0.113.101 }}
        external: {{ fqdn: XMPP1.contoso.example, address: 198.51.100.101 }}
      - fqdn: edge2.corp.contoso.example
        internal: {{ address: 203.0.113.102 }}
        external: {{ fqdn: xmpp2.contoso.example, address: 198.51.100.102 }}
certificates:
  - {{ name: edge-ext, pool: edge-hq, issuer: {{ kind: csr }} }}
dns:
  provider:
    kind: powerdns
    api_url: http://203.0.113.53:8081
    api_key: "{{{{ env('PDNS_API_KEY') }}}}"
  zones:
    - {{ name: contoso.example, nameservers: ["198.51.100.53"] }}
    - {{ name: corp.contoso.example, view: internal, nameservers: ["203.0.113.53"] }}
{extra_dns}"#
    )
}

fn load(text: &str) -> Spec {
    let mut inputs = MapInputs::default();
    inputs
        .env
        .insert("PDNS_API_KEY".into(), "pdns-test-key".into());
    match spec::load(&Source::new("spec.yaml", text), Arc::new(inputs)) {
        Ok(l) => l.spec,
        Err(e) => panic!("spec does not load:\n{e}"),
    }
}

fn base() -> Spec {
    load(&spec_text(""))
}

/// `(name, type) → records` of one zone of `desired`.
fn table(spec: &Spec, zone: &str) -> BTreeMap<(String, String), (u32, Vec<String>)> {
    desired(spec)
        .into_iter()
        .find(|z| z.zone == zone)
        .unwrap_or_else(|| panic!("no zone {zone}"))
        .rrsets
        .into_iter()
        .map(|d| (d.rrset.key(), (d.rrset.ttl, d.rrset.records)))
        .collect()
}

fn key(name: &str, rtype: &str) -> (String, String) {
    (name.to_string(), rtype.to_string())
}

/// What a provider would hold after `ops`.
fn applied(observed: &[RRset], ops: &[RRsetOp]) -> Vec<RRset> {
    let mut zone: BTreeMap<(String, String), RRset> =
        observed.iter().map(|r| (r.key(), r.clone())).collect();
    for op in ops {
        match op {
            RRsetOp::Replace(r) => {
                zone.insert(r.key(), r.clone());
            }
            RRsetOp::Delete { name, rtype } => {
                zone.remove(&key(name, rtype));
            }
        }
    }
    zone.into_values().collect()
}

fn soa() -> RRset {
    RRset::new(
        ZONE,
        "SOA",
        3600,
        vec!["ns1.contoso.example. hostmaster.contoso.example. 1 10800 3600 604800 3600".into()],
    )
}

const CORP: &str = "corp.contoso.example.";

/// Plans `spec` against `zones` (zone → RRsets). The internal zone, when
/// not given, is as the spec wants it, so tests see only the external one.
fn plan(spec: &Spec, zones: &[(&str, Vec<RRset>)]) -> DnsPlan {
    let mut obs: Vec<ZoneObservation> = zones
        .iter()
        .map(|(z, r)| ZoneObservation {
            zone: z.to_string(),
            rrsets: Some(r.clone()),
        })
        .collect();
    if !zones.iter().any(|(z, _)| *z == CORP) {
        let empty = ZoneObservation {
            zone: CORP.into(),
            rrsets: Some(Vec::new()),
        };
        let first = build(spec, &[obs.clone(), vec![empty]].concat());
        let corp = first.zones.iter().find(|z| z.zone == CORP);
        obs.push(ZoneObservation {
            zone: CORP.into(),
            rrsets: Some(corp.map_or_else(Vec::new, |z| applied(&[], &z.decision.ops))),
        });
    }
    build(spec, &obs)
}

/// The zone as it is after applying the plan for `spec` to `observed`.
fn after_apply(spec: &Spec, observed: Vec<RRset>) -> Vec<RRset> {
    let p = plan(spec, &[(ZONE, observed.clone())]);
    applied(&observed, &p.zones[0].decision.ops)
}

// ---------------------------------------------------------------- derivation

#[test]
fn one_pool_gives_one_srv_record_per_server_and_the_external_a_records() {
    let t = table(&base(), ZONE);
    assert_eq!(
        t[&key(SRV, "SRV")],
        (
            300,
            vec![
                "10 100 5269 xmpp1.contoso.example.".to_string(),
                "10 100 5269 xmpp2.contoso.example.".to_string()
            ]
        )
    );
    assert_eq!(
        t[&key("xmpp1.contoso.example.", "A")],
        (300, vec!["198.51.100.101".to_string()])
    );
    assert_eq!(
        t[&key("xmpp2.contoso.example.", "A")],
        (300, vec!["198.51.100.102".to_string()])
    );
    assert_eq!(t.len(), 3, "{t:#?}");
}

#[test]
fn internal_addresses_go_to_the_internal_view_zone_only() {
    let spec = base();
    let t = table(&spec, CORP);
    assert_eq!(
        t[&key("edge1.corp.contoso.example.", "A")],
        (300, vec!["203.0.113.101".to_string()])
    );
    assert_eq!(t.len(), 2, "{t:#?}");
    let ext = table(&spec, ZONE);
    assert!(
        ext.values()
            .all(|(_, recs)| recs.iter().all(|r| !r.contains("203.0.113."))),
        "internal address leaked into the external zone: {ext:#?}"
    );
    let zones = desired(&spec);
    assert_eq!(zones[1].view, View::Internal);
}

#[test]
fn multi_site_gives_each_pool_its_own_priority() {
    let text = spec_text("").replace(
        "certificates:",
        r#"  - name: edge-dub
    site: hq
    xmpp_federation: true
    srv: { priority: 20, weight: 50, ttl: 600 }
    servers:
      - fqdn: edge3.corp.contoso.example
        internal: { address: 203.0.113.103 }
        external: { fqdn: xmpp-eu.contoso.example, address: 2001:db8::3, port: 5270 }
certificates:"#,
    );
    let spec = load(&text);
    let t = table(&spec, ZONE);
    let (ttl, srv) = &t[&key(SRV, "SRV")];
    assert_eq!(
        srv,
        &vec![
            "10 100 5269 xmpp1.contoso.example.".to_string(),
            "10 100 5269 xmpp2.contoso.example.".to_string(),
            "20 50 5270 xmpp-eu.contoso.example.".to_string(),
        ]
    );
    assert_eq!(*ttl, 300, "the lowest TTL of the merged records wins");
    assert!(
        derive(&spec)
            .findings
            .iter()
            .any(|f| f.level == Level::Warning && f.message.contains("different TTLs")),
        "{:#?}",
        derive(&spec).findings
    );
    assert_eq!(
        t[&key("xmpp-eu.contoso.example.", "AAAA")].1,
        vec!["2001:db8::3".to_string()]
    );
}

#[test]
fn explicit_records_are_added_normalised() {
    let spec = load(&spec_text(
        r#"  records:
    - { zone: contoso.example, name: "@", type: TXT, value: "v=xmpp \"quoted\"" }
    - { zone: contoso.example, name: chat, type: CNAME, value: XMPP1.contoso.example }
    - { zone: contoso.example, name: v6, type: AAAA, value: "2001:0db8:0:0::1", ttl: 60 }
    - { zone: contoso.example, name: "_xmpp-server._tcp", type: SRV, priority: 30, weight: 0, port: 5269, target: backup.contoso.example }
"#,
    ));
    let t = table(&spec, ZONE);
    assert_eq!(
        t[&key(ZONE, "TXT")].1,
        vec![r#""v=xmpp \"quoted\"""#.to_string()]
    );
    assert_eq!(
        t[&key("chat.contoso.example.", "CNAME")].1,
        vec!["xmpp1.contoso.example.".to_string()]
    );
    assert_eq!(
        t[&key("v6.contoso.example.", "AAAA")],
        (60, vec!["2001:db8::1".to_string()])
    );
    assert!(
        t[&key(SRV, "SRV")]
            .1
            .contains(&"30 0 5269 backup.contoso.example.".to_string())
    );
}

// ------------------------------------------------------------- normalisation

#[test]
fn contents_are_normalised_as_powerdns_returns_them() {
    assert_eq!(
        normalise_name("XMPP1.Contoso.Example"),
        "xmpp1.contoso.example."
    );
    assert_eq!(normalise_name("a.example."), "a.example.");
    assert_eq!(
        normalise_content("SRV", " 10  100 5269 XMPP1.contoso.example"),
        "10 100 5269 xmpp1.contoso.example."
    );
    assert_eq!(normalise_content("AAAA", "2001:0DB8:0:0::1"), "2001:db8::1");
    assert_eq!(
        normalise_content("CNAME", "Target.Example"),
        "target.example."
    );
    assert_eq!(normalise_content("TXT", r#""a" "b""#), r#""a" "b""#);
    assert_eq!(normalise_content("TXT", r#""caf\195\169""#), "\"café\"");
    assert_eq!(normalise_content("TXT", "bare words"), r#""bare" "words""#);
    assert_eq!(normalise_content("SRV", "garbage"), "garbage");
}

#[test]
fn txt_values_are_quoted_escaped_and_split_at_255_bytes() {
    assert_eq!(txt_content(r#"a "q" b\c"#), r#""a \"q\" b\\c""#);
    let long = "x".repeat(300);
    let c = txt_content(&long);
    let parts = parse_txt(&c).unwrap_or_default();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].len(), 255);
    assert_eq!(parts.concat(), long.as_bytes());
    // Round trip: what we write reads back identical.
    assert_eq!(normalise_content("TXT", &c), c);
    assert_eq!(txt_content(""), "\"\"");
}

#[test]
fn rrsets_sort_and_deduplicate_their_records() {
    let r = RRset::new(
        "Host.Example",
        "a",
        60,
        vec!["10.0.0.2".into(), "10.0.0.1".into(), "10.0.0.2".into()],
    );
    assert_eq!(r.name, "host.example.");
    assert_eq!(r.rtype, "A");
    assert_eq!(r.records, vec!["10.0.0.1", "10.0.0.2"]);
}

// ------------------------------------------------------------------ changes

#[test]
fn an_empty_zone_gets_every_record_created_with_markers() {
    let spec = base();
    let p = plan(&spec, &[(ZONE, vec![soa()])]);
    let z = &p.zones[0];
    let acts: Vec<(String, Action)> = z
        .decision
        .changes
        .iter()
        .map(|c| (c.address.clone(), c.action))
        .collect();
    assert_eq!(
        acts,
        vec![
            (format!("dns/{ZONE}/SRV:{SRV}"), Action::Create),
            (
                "dns/contoso.example./A:xmpp1.contoso.example.".into(),
                Action::Create
            ),
            (
                "dns/contoso.example./A:xmpp2.contoso.example.".into(),
                Action::Create
            ),
        ]
    );
    let c = &z.decision.changes[0];
    assert_eq!(c.kind, "dns_record");
    assert_eq!(c.phase, Phase::Dns);
    assert_eq!(c.host, "");
    assert_eq!(c.reason, "absent");
    assert_eq!(c.origin, "spec.yaml:11", "the edge pool");
    assert_eq!(c.observed.len(), 64);
    let diff = c.diff.clone().unwrap_or_default();
    assert!(
        diff.contains(&format!(
            "+{SRV} 300 IN SRV 10 100 5269 xmpp1.contoso.example."
        )),
        "{diff}"
    );
    // Records and their markers go in one batch.
    let markers: Vec<&RRset> = z
        .decision
        .ops
        .iter()
        .filter_map(|op| match op {
            RRsetOp::Replace(r) if r.name.starts_with("_xfed-owner.") => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(markers.len(), 3);
    assert_eq!(markers[0].name, marker_name(SRV));
    assert_eq!(markers[0].records, vec![r#""xfed-managed type=SRV""#]);
    assert!(
        z.decision.unmanaged.is_empty(),
        "{:?}",
        z.decision.unmanaged
    );
    assert!(p.refusals(false).is_empty(), "{:?}", p.refusals(false));
}

#[test]
fn a_second_plan_after_apply_is_empty() {
    let spec = base();
    let zone = after_apply(&spec, vec![soa()]);
    let p = plan(&spec, &[(ZONE, zone)]);
    assert!(!p.has_changes(), "{:#?}", p.changes());
    assert!(
        p.zones[0].decision.ops.is_empty(),
        "{:?}",
        p.zones[0].decision.ops
    );
    assert!(
        p.changes()
            .iter()
            .filter(|c| c.address.contains("/SRV:"))
            .all(|c| c.reason == "records match")
    );
}

#[test]
fn provider_spelling_of_the_same_records_is_no_diff() {
    // As PowerDNS might return records written by hand: other case, other
    // order, no trailing dot on the target.
    let spec = base();
    let mut zone = after_apply(&spec, vec![soa()]);
    for r in zone.iter_mut().filter(|r| r.rtype == "SRV") {
        r.name = r.name.to_uppercase();
        r.records = vec![
            "10 100 5269 XMPP2.contoso.example".into(),
            "10   100 5269 xmpp1.CONTOSO.example.".into(),
        ];
    }
    let p = plan(&spec, &[(ZONE, zone)]);
    assert!(!p.has_changes(), "{:#?}", p.changes());
}

#[test]
fn a_hand_edit_is_drift_with_a_diff() {
    let spec = base();
    let mut zone = after_apply(&spec, vec![soa()]);
    for r in zone.iter_mut().filter(|r| r.rtype == "SRV") {
        r.records = vec!["10 100 5269 evil.example.".into()];
        r.ttl = 60;
    }
    let p = plan(&spec, &[(ZONE, zone)]);
    let c = p
        .changes()
        .into_iter()
        .find(|c| c.action.is_change())
        .unwrap_or_else(|| panic!("no change"));
    assert_eq!(c.address, format!("dns/{ZONE}/SRV:{SRV}"));
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.reason, "records and ttl differ");
    let diff = c.diff.unwrap_or_default();
    assert!(
        diff.contains(&format!("-{SRV} 60 IN SRV 10 100 5269 evil.example.")),
        "{diff}"
    );
    assert!(
        diff.contains(&format!(
            "+{SRV} 300 IN SRV 10 100 5269 xmpp1.contoso.example."
        )),
        "{diff}"
    );
    assert_eq!(c.attrs[0].name, "ttl");
    assert_eq!(
        (c.attrs[0].before.as_str(), c.attrs[0].after.as_str()),
        ("60", "300")
    );
}

#[test]
fn unmanaged_records_are_reported_never_touched() {
    let spec = base();
    let mut zone = after_apply(&spec, vec![soa()]);
    let hand = RRset::new("www.contoso.example.", "A", 300, vec!["192.0.2.80".into()]);
    let ns = RRset::new(ZONE, "NS", 3600, vec!["ns1.contoso.example.".into()]);
    zone.push(hand.clone());
    zone.push(ns);
    let p = plan(&spec, &[(ZONE, zone)]);
    assert!(!p.has_changes(), "{:#?}", p.changes());
    assert_eq!(p.unmanaged(), vec![(ZONE.to_string(), hand.clone())]);
    // Even when every derived record leaves the spec.
    let mut zone2 = after_apply(&spec, vec![soa()]);
    zone2.push(hand.clone());
    let d = decide(ZONE, &[], &zone2, None);
    assert_eq!(d.deleted, 3);
    assert!(
        d.ops.iter().all(
            |op| !matches!(op, RRsetOp::Delete { name, .. } if name == "www.contoso.example.")
        ),
        "{:?}",
        d.ops
    );
    assert_eq!(d.unmanaged, vec![hand]);
}

#[test]
fn managed_records_no_longer_desired_are_deleted_with_their_markers() {
    let spec = base();
    let zone = after_apply(&spec, vec![soa()]);
    assert_eq!(managed_set(&zone).len(), 3);
    let mut smaller = spec.clone();
    smaller.edge_pools[0].servers.pop();
    let p = plan(&smaller, &[(ZONE, zone.clone())]);
    let changed: Vec<(String, Action, String)> = p
        .changes()
        .into_iter()
        .filter(|c| c.action.is_change())
        .map(|c| (c.address, c.action, c.reason))
        .collect();
    assert_eq!(
        changed,
        vec![
            (
                format!("dns/{ZONE}/SRV:{SRV}"),
                Action::Update,
                "records differ".into()
            ),
            (
                "dns/contoso.example./A:xmpp2.contoso.example.".into(),
                Action::Delete,
                "no longer in the spec".into()
            ),
        ]
    );
    let after = applied(&zone, &p.zones[0].decision.ops);
    assert_eq!(managed_set(&after).len(), 2);
    assert!(
        !after.iter().any(|r| r.name.contains("xmpp2")),
        "{after:#?}"
    );
}

#[test]
fn a_hand_made_record_the_spec_wants_is_adopted() {
    let spec = base();
    let srv = RRset::new(
        SRV,
        "SRV",
        300,
        vec![
            "10 100 5269 xmpp1.contoso.example.".into(),
            "10 100 5269 xmpp2.contoso.example.".into(),
        ],
    );
    let p = plan(&spec, &[(ZONE, vec![soa(), srv])]);
    let c = &p.zones[0].decision.changes[0];
    assert_eq!(c.action, Action::Update);
    assert!(c.reason.contains("adopted"), "{}", c.reason);
    assert!(c.diff.is_none());
}

#[test]
fn a_missing_zone_is_planned_for_creation() {
    let spec = base();
    let p = build(
        &spec,
        &[
            ZoneObservation {
                zone: ZONE.into(),
                rrsets: None,
            },
            ZoneObservation {
                zone: CORP.into(),
                rrsets: Some(Vec::new()),
            },
        ],
    );
    let z = &p.zones[0];
    assert!(z.create_zone);
    let zc = z
        .zone_change
        .clone()
        .unwrap_or_else(|| panic!("no zone change"));
    assert_eq!(zc.kind, "dns_zone");
    assert_eq!(zc.action, Action::Create);
    assert_eq!(z.initial_rrsets().len(), 6, "3 RRsets and 3 markers");
    assert_eq!(p.changes()[0].address, format!("dns/{ZONE}/zone"));
}

#[test]
fn fingerprints_follow_the_observed_and_desired_state() {
    let spec = base();
    let zone = after_apply(&spec, vec![soa()]);
    let a = plan(&spec, &[(ZONE, zone.clone())]).changes();
    let b = plan(&spec, &[(ZONE, zone.clone())]).changes();
    assert_eq!(a, b, "deterministic");
    let mut edited = zone;
    for r in edited
        .iter_mut()
        .filter(|r| r.name == "xmpp1.contoso.example.")
    {
        r.records = vec!["192.0.2.1".into()];
    }
    let c = plan(&spec, &[(ZONE, edited)]).changes();
    let find = |v: &[xfed::plan::Change], n: &str| {
        v.iter()
            .find(|c| c.address.ends_with(n))
            .cloned()
            .unwrap_or_else(|| panic!("{n}"))
    };
    let (before, after) = (
        find(&a, "A:xmpp1.contoso.example."),
        find(&c, "A:xmpp1.contoso.example."),
    );
    assert_ne!(before.observed, after.observed);
    assert_eq!(before.desired, after.desired);
    assert_eq!(
        find(&a, "A:xmpp2.contoso.example.").observed,
        find(&c, "A:xmpp2.contoso.example.").observed
    );
}

// ------------------------------------------------------------------- safety

#[test]
fn the_mass_change_guard_trips_above_the_share() {
    assert!(
        mass_change_guard(ZONE, 10, 3, 0, 0.3).is_ok(),
        "30% is allowed"
    );
    let e = mass_change_guard(ZONE, 10, 2, 2, 0.3)
        .err()
        .unwrap_or_default();
    assert!(e.contains("updates 2 and deletes 2 of the 10"), "{e}");
    assert!(e.contains("40%") && e.contains("30%"), "{e}");
    assert!(e.contains("--allow-mass-change"), "{e}");
    assert!(mass_change_guard(ZONE, 20, 0, 10, 0.5).is_ok());
    assert!(mass_change_guard(ZONE, 20, 0, 11, 0.5).is_err());
    // Small zones are exempt (octoDNS's minimum): one SRV edit in a zone
    // of three records would otherwise always trip.
    assert!(mass_change_guard(ZONE, GUARD_MIN_MANAGED - 1, 9, 0, 0.3).is_ok());
}

#[test]
fn a_plan_deleting_most_managed_records_is_refused_unless_allowed() {
    let extra: String = (0..12)
        .map(|i| {
            format!("    - {{ zone: contoso.example, name: h{i}, type: A, value: 192.0.2.{i} }}\n")
        })
        .collect();
    let big = load(&spec_text(&format!("  records:\n{extra}")));
    let zone = after_apply(&big, vec![soa()]);
    assert_eq!(managed_set(&zone).len(), 15);
    let p = plan(&base(), &[(ZONE, zone)]);
    assert_eq!(p.zones[0].decision.deleted, 12);
    let refusals = p.refusals(false);
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(
        refusals[0].contains("deletes 12 of the 15"),
        "{}",
        refusals[0]
    );
    assert!(p.refusals(true).is_empty());
}

#[test]
fn srv_without_a_target_is_refused() {
    assert!(no_target_check(SRV, None).is_err());
    let dot = RRset::new(SRV, "SRV", 300, vec!["0 0 0 .".into()]);
    let e = no_target_check(SRV, Some(&dot)).err().unwrap_or_default();
    assert!(e.contains("no target"), "{e}");
    let ok = RRset::new(
        SRV,
        "SRV",
        300,
        vec!["10 100 5269 xmpp1.contoso.example.".into()],
    );
    assert!(no_target_check(SRV, Some(&ok)).is_ok());

    // A spec whose federation pool stopped federating.
    let mut spec = base();
    spec.edge_pools[0].xmpp_federation = false;
    let zone = after_apply(&base(), vec![soa()]);
    let p = plan(&spec, &[(ZONE, zone)]);
    let r = p.refusals(true);
    assert!(r.iter().any(|r| r.contains("no target")), "{r:?}");
}

// ------------------------------------------------------------- cross-checks

#[test]
fn cross_checks_pass_for_a_consistent_spec() {
    let f = derive(&base()).findings;
    assert!(f.is_empty(), "{f:#?}");
    let p = plan(&base(), &[(ZONE, vec![soa()])]);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
}

#[test]
fn a_certificate_covering_neither_target_nor_domain_is_an_error() {
    let mut spec = base();
    spec.certificates[0].sans = vec!["sip.contoso.example".into()];
    let p = plan(&spec, &[(ZONE, vec![soa()])]);
    let errors: Vec<String> = p
        .findings
        .iter()
        .filter(|f| f.is_error())
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].contains("covers neither the SRV target `xmpp1.contoso.example` nor the XMPP domain `contoso.example`"),
        "{}",
        errors[0]
    );
    assert!(!p.refusals(true).is_empty());
    // A wildcard covering the targets is enough.
    spec.certificates[0].sans = vec!["*.contoso.example".into()];
    let p = plan(&spec, &[(ZONE, vec![soa()])]);
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
}

#[test]
fn an_srv_port_other_than_the_listener_port_is_an_error() {
    let spec = load(&spec_text(
        r#"  records:
    - { zone: contoso.example, name: "_xmpp-server._tcp", type: SRV, priority: 5, weight: 0, port: 5222, target: xmpp1.contoso.example }
"#,
    ));
    let f: Vec<String> = derive(&spec)
        .findings
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(f.is_empty(), "{f:#?}");
    let p = plan(&spec, &[(ZONE, vec![soa()])]);
    let msgs: Vec<String> = p.findings.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert!(
        msgs[0].contains(
            "port 5222, but edge server `edge1.corp.contoso.example` listens on port 5269"
        ),
        "{}",
        msgs[0]
    );
}

#[test]
fn pools_of_two_sites_sharing_a_priority_make_failover_implicit() {
    let text = spec_text("")
        .replace(
            "  - { name: hq, frontend_pool: fe-hq, xmpp_route: edge-hq }",
            "  - { name: hq, frontend_pool: fe-hq, xmpp_route: edge-hq }\n  - { name: dub, frontend_pool: fe-hq, xmpp_route: edge-dub }",
        )
        .replace(
            "certificates:",
            r#"  - name: edge-dub
    site: dub
    xmpp_federation: true
    srv: { priority: 20 }
    servers:
      - fqdn: edge3.corp.contoso.example
        internal: { address: 203.0.113.103 }
        external: { fqdn: xmpp3.contoso.example, address: 198.51.100.103 }
certificates:"#,
        );
    let mut spec = load(&text);
    let p = plan(&spec, &[(ZONE, vec![soa()])]);
    // edge-dub has no certificate: a warning, nothing more.
    assert!(
        p.findings.iter().all(|f| !f.is_error()),
        "{:#?}",
        p.findings
    );
    spec.edge_pools[1].srv_priority = 10; // the resolver refuses this spec; force it
    let p = plan(&spec, &[(ZONE, vec![soa()])]);
    let e: Vec<String> = p
        .findings
        .iter()
        .filter(|f| f.is_error())
        .map(ToString::to_string)
        .collect();
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].contains("share SRV priority 10"), "{}", e[0]);
    assert_eq!(xmpp_srv_name("Contoso.Example"), SRV);
}

//! DNS against the lab's real PowerDNS (tests/lab/README.md): the provider
//! reads and writes zones through its HTTP API, the decisions run on what it
//! returns, and the result is checked by resolution — with hickory (our
//! verifier) and with `dig`, a tool we did not write.
//!
//! Each test takes `lab.lock()` and works in a zone of its own
//! (`t<N>.contoso.example.`), deleted before and after; the main flow uses
//! `contoso.example.` from playbooks/lab.yaml, which is never deleted.

mod common;

use std::sync::Arc;

use common::lab::Lab;
use xfed::apply::dns::apply_dns;
use xfed::dns::rrset::{RRset, RRsetOp};
use xfed::engine::dns::read_and_plan as plan_dns;
use xfed::plan::Action;
use xfed::plan::dns_plan::{DnsPlan, build};
use xfed::providers::dns::{DnsError, DnsProvider, PowerDns, ProviderError};
use xfed::secret::Secret;
use xfed::spec::{self, MapInputs, Source, Spec};
use xfed::verify::dns::{VerifyRow, verify_dns};

const NS: &str = "198.51.100.53";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"))
}

/// A pool of `servers` federation edges: `(name, site, priority, [(n, external ip)])`.
type Pool<'a> = (&'a str, &'a str, u16, &'a [(u8, &'a str)]);

/// A spec for `domain` (zone and XMPP domain) with `pools`, `records`
/// appended under `dns.records`, reaching PowerDNS at `api_url`.
fn spec_for(
    domain: &str,
    pools: &[Pool<'_>],
    records: &str,
    create_zones: bool,
    api_url: &str,
    key: &str,
) -> Spec {
    let mut sites = String::new();
    let mut edge = String::new();
    for (name, site, prio, servers) in pools {
        if !sites.contains(&format!("name: {site},")) {
            sites += &format!("  - {{ name: {site}, frontend_pool: fe, xmpp_route: {name} }}\n");
        }
        edge += &format!(
            "  - name: {name}\n    site: {site}\n    xmpp_federation: true\n    srv: {{ priority: {prio}, weight: 100, ttl: 120 }}\n    servers:\n"
        );
        for (n, ip) in *servers {
            edge += &format!(
                "      - fqdn: edge{n}.{domain}\n        internal: {{ address: 203.0.113.{} }}\n        external: {{ fqdn: xmpp{n}.{domain}, address: {ip} }}\n",
                100 + u16::from(*n)
            );
        }
    }
    let text = format!(
        r#"version: 1
sip_domains: [{domain}]
xmpp_domains: [{domain}]
ssh: {{ identity_file: /keys/id_ed25519, known_hosts: /keys/known_hosts }}
sites:
{sites}frontend_pools:
  - name: fe
    servers: [{{ fqdn: fe1.{domain}, address: 203.0.113.11 }}]
edge_pools:
{edge}dns:
  provider:
    kind: powerdns
    api_url: {api_url}
    api_key: "{{{{ env('PDNS_API_KEY') }}}}"
    create_zones: {create_zones}
  zones:
    - {{ name: {domain}, nameservers: ["{NS}"] }}
{records}"#
    );
    let mut inputs = MapInputs::default();
    inputs.env.insert("PDNS_API_KEY".into(), key.into());
    match spec::load(
        &Source::new(format!("{domain}.yaml"), text),
        Arc::new(inputs),
    ) {
        Ok(l) => l.spec,
        Err(e) => panic!("spec does not load:\n{e}"),
    }
}

const ONE_POOL: &[Pool<'_>] = &[(
    "edge-hq",
    "hq",
    10,
    &[(1, "198.51.100.101"), (2, "198.51.100.102")],
)];

fn lab_spec(lab: &Lab, domain: &str, pools: &[Pool<'_>], records: &str) -> Spec {
    spec_for(
        domain,
        pools,
        records,
        true,
        &lab.dns.api,
        &lab.dns.api_key(),
    )
}

fn provider(lab: &Lab) -> PowerDns {
    PowerDns::new(&lab.dns.api, &Secret::new(lab.dns.api_key()), "localhost")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Deletes the test's zone now (a leftover of a crashed run) and on drop.
struct Zone<'a> {
    lab: &'a Lab,
    name: String,
}

impl<'a> Zone<'a> {
    fn fresh(lab: &'a Lab, name: &str) -> Zone<'a> {
        let z = Zone {
            lab,
            name: name.to_string(),
        };
        z.delete();
        z
    }

    fn delete(&self) {
        rt().block_on(async {
            provider(self.lab)
                .delete_zone(&self.name)
                .await
                .unwrap_or_else(|e| panic!("delete zone {}: {e}", self.name))
        });
    }
}

impl Drop for Zone<'_> {
    fn drop(&mut self) {
        self.delete();
    }
}

fn plan(spec: &Spec, p: &dyn DnsProvider) -> DnsPlan {
    rt().block_on(plan_dns(spec, p))
        .unwrap_or_else(|e| panic!("plan: {e}"))
}

fn apply(spec: &Spec, p: &dyn DnsProvider) -> DnsPlan {
    let plan = plan(spec, p);
    rt().block_on(apply_dns(p, &plan, false))
        .unwrap_or_else(|e| panic!("apply: {e}"));
    plan
}

fn read(p: &dyn DnsProvider, zone: &str) -> Option<Vec<RRset>> {
    rt().block_on(p.read_zone(zone))
        .unwrap_or_else(|e| panic!("read {zone}: {e}"))
}

/// `dig +short +norec @NS TYPE NAME`, sorted lines.
fn dig(lab: &Lab, rtype: &str, name: &str) -> Vec<String> {
    let out = lab
        .command("dig")
        .args([
            "+short",
            "+norec",
            "+time=2",
            "+tries=1",
            &format!("@{NS}"),
            rtype,
            name,
        ])
        .output()
        .unwrap_or_else(|e| panic!("dig: {e}"));
    assert!(out.status.success(), "dig {rtype} {name}: {out:?}");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// The lab's PowerDNS API by hand (curl), as an operator would edit a zone.
fn curl_patch(lab: &Lab, zone: &str, body: &str) {
    let key_header = format!("X-API-Key: {}", lab.dns.api_key());
    let out = lab
        .command("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PATCH",
            "-H",
        ])
        .arg(&key_header)
        .arg("--data")
        .arg(body)
        .arg(format!(
            "{}/api/v1/servers/localhost/zones/{zone}",
            lab.dns.api
        ))
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "204",
        "curl PATCH: {out:?}"
    );
}

fn failed(rows: &[VerifyRow]) -> Vec<&VerifyRow> {
    rows.iter().filter(|r| !r.ok).collect()
}

fn changed(plan: &DnsPlan) -> Vec<(String, Action)> {
    plan.changes()
        .into_iter()
        .filter(|c| c.action.is_change())
        .map(|c| (c.address, c.action))
        .collect()
}

#[test]
fn lab_playbook_apply_publishes_srv_and_a_and_a_second_plan_is_empty() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    // playbooks/lab.yaml pointed at this lab's state dir (its API key file)
    let file = common::xfed::lab_spec(lab, |text| text);
    let loaded = spec::load_file(&file.path).unwrap_or_else(|e| panic!("lab.yaml: {e}"));
    let spec = loaded.spec;
    let p = xfed::providers::dns::provider_for(
        &spec
            .dns
            .as_ref()
            .unwrap_or_else(|| panic!("no dns"))
            .provider,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let first = apply(&spec, p.as_ref());
    assert!(
        first.findings.iter().all(|f| !f.is_error()),
        "{:#?}",
        first.findings
    );

    assert_eq!(
        dig(lab, "SRV", "_xmpp-server._tcp.contoso.example"),
        vec![
            "10 100 5269 xmpp1.contoso.example.",
            "10 100 5269 xmpp2.contoso.example."
        ]
    );
    assert_eq!(
        dig(lab, "A", "xmpp1.contoso.example"),
        vec!["198.51.100.101"]
    );
    assert_eq!(
        dig(lab, "A", "xmpp2.contoso.example"),
        vec!["198.51.100.102"]
    );

    let second = plan(&spec, p.as_ref());
    assert!(!second.has_changes(), "{:#?}", changed(&second));

    let rows = rt().block_on(verify_dns(&spec));
    assert!(
        rows.iter()
            .any(|r| r.check == "SRV target xmpp1.contoso.example." && r.ok),
        "{rows:#?}"
    );
    assert!(failed(&rows).is_empty(), "{rows:#?}");
}

/// Regression: on a fresh lab, the ACME order of the edge stage created
/// the zone (to publish its DNS-01 record) before the DNS stage ran, and
/// the DNS stage refused the zone as changed since the plan.
#[test]
fn regression_a_zone_created_after_the_plan_by_an_acme_order_is_written_to() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let zone = Zone::fresh(lab, "t9.contoso.example.");
    let spec = lab_spec(lab, "t9.contoso.example", ONE_POOL, "");
    let p = provider(lab);
    let planned = plan(&spec, &p);
    assert!(planned.zones[0].create_zone);
    // What an ACME order does meanwhile: the zone, a challenge, cleaned up.
    rt().block_on(async {
        p.create_zone(&zone.name, &[]).await.expect("create");
        let txt = RRset::new(
            "_acme-challenge.t9.contoso.example.",
            "TXT",
            60,
            vec!["\"token\"".into()],
        );
        p.apply(&zone.name, &[RRsetOp::Replace(txt)])
            .await
            .expect("txt");
    });
    rt().block_on(apply_dns(&p, &planned, false))
        .unwrap_or_else(|e| panic!("apply: {e}"));
    assert_eq!(
        dig(lab, "SRV", "_xmpp-server._tcp.t9.contoso.example"),
        vec![
            "10 100 5269 xmpp1.t9.contoso.example.",
            "10 100 5269 xmpp2.t9.contoso.example."
        ]
    );
    assert!(!plan(&spec, &p).has_changes());

    // A record the plan would write, made behind its back, is still stale.
    drop(zone);
    let zone = Zone::fresh(lab, "t9.contoso.example.");
    let planned = plan(&spec, &p);
    rt().block_on(async {
        p.create_zone(&zone.name, &[]).await.expect("create");
        let a = RRset::new(
            "xmpp1.t9.contoso.example.",
            "A",
            300,
            vec!["198.51.100.9".into()],
        );
        p.apply(&zone.name, &[RRsetOp::Replace(a)])
            .await
            .expect("a");
    });
    let err = rt()
        .block_on(apply_dns(&p, &planned, false))
        .expect_err("stale");
    assert!(
        err.to_string()
            .contains("changed on the DNS server since the plan"),
        "{err}"
    );
    drop(zone);
}

#[test]
fn a_new_zone_is_created_with_its_records_and_verified() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let zone = Zone::fresh(lab, "t1.contoso.example.");
    let spec = lab_spec(lab, "t1.contoso.example", ONE_POOL, "");
    let p = provider(lab);
    let first = apply(&spec, &p);
    assert!(first.zones[0].create_zone);
    assert_eq!(
        changed(&first),
        vec![
            ("dns/t1.contoso.example./zone".into(), Action::Create),
            (
                "dns/t1.contoso.example./SRV:_xmpp-server._tcp.t1.contoso.example.".into(),
                Action::Create
            ),
            (
                "dns/t1.contoso.example./A:xmpp1.t1.contoso.example.".into(),
                Action::Create
            ),
            (
                "dns/t1.contoso.example./A:xmpp2.t1.contoso.example.".into(),
                Action::Create
            ),
        ]
    );
    assert_eq!(
        dig(lab, "SRV", "_xmpp-server._tcp.t1.contoso.example"),
        vec![
            "10 100 5269 xmpp1.t1.contoso.example.",
            "10 100 5269 xmpp2.t1.contoso.example."
        ]
    );
    assert_eq!(
        dig(
            lab,
            "TXT",
            "_xfed-owner._xmpp-server._tcp.t1.contoso.example"
        ),
        vec!["\"xfed-managed type=SRV\""]
    );
    let second = plan(&spec, &p);
    assert!(!second.has_changes(), "{:#?}", changed(&second));
    let rows = rt().block_on(verify_dns(&spec));
    assert!(failed(&rows).is_empty(), "{rows:#?}");
    // 2 SRV records + 2 targets + 2 A RRsets
    assert_eq!(rows.len(), 6, "{rows:#?}");
    drop(zone);
}

#[test]
fn multi_site_gives_one_srv_per_pool_with_distinct_priorities() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let _zone = Zone::fresh(lab, "t2.contoso.example.");
    let pools: &[Pool<'_>] = &[
        ("edge-us", "redmond", 10, &[(1, "198.51.100.101")]),
        ("edge-eu", "dublin", 20, &[(2, "198.51.100.102")]),
        ("edge-ap", "singapore", 30, &[(3, "198.51.100.103")]),
    ];
    let spec = lab_spec(lab, "t2.contoso.example", pools, "");
    let p = provider(lab);
    apply(&spec, &p);
    assert_eq!(
        dig(lab, "SRV", "_xmpp-server._tcp.t2.contoso.example"),
        vec![
            "10 100 5269 xmpp1.t2.contoso.example.",
            "20 100 5269 xmpp2.t2.contoso.example.",
            "30 100 5269 xmpp3.t2.contoso.example.",
        ]
    );
    let rows = rt().block_on(verify_dns(&spec));
    assert!(failed(&rows).is_empty(), "{rows:#?}");
    assert!(!plan(&spec, &p).has_changes());
}

#[test]
fn a_record_edited_by_hand_shows_as_drift_and_apply_restores_it() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let _zone = Zone::fresh(lab, "t3.contoso.example.");
    let spec = lab_spec(lab, "t3.contoso.example", ONE_POOL, "");
    let p = provider(lab);
    apply(&spec, &p);

    curl_patch(
        lab,
        "t3.contoso.example.",
        r#"{"rrsets":[{"name":"_xmpp-server._tcp.t3.contoso.example.","type":"SRV","ttl":120,"changetype":"REPLACE",
            "records":[{"content":"10 100 5269 xmpp1.t3.contoso.example.","disabled":false},
                       {"content":"10 100 5222 evil.example.","disabled":false}]}]}"#,
    );
    let drift = plan(&spec, &p);
    let c = drift
        .changes()
        .into_iter()
        .find(|c| c.action.is_change())
        .unwrap_or_else(|| panic!("the hand edit is not seen"));
    assert_eq!(
        c.address,
        "dns/t3.contoso.example./SRV:_xmpp-server._tcp.t3.contoso.example."
    );
    assert_eq!(
        (c.action, c.reason.as_str()),
        (Action::Update, "records differ")
    );
    let diff = c.diff.unwrap_or_default();
    assert!(
        diff.contains(
            "-_xmpp-server._tcp.t3.contoso.example. 120 IN SRV 10 100 5222 evil.example."
        ),
        "{diff}"
    );
    assert!(diff.contains("+_xmpp-server._tcp.t3.contoso.example. 120 IN SRV 10 100 5269 xmpp2.t3.contoso.example."), "{diff}");

    // Resolution sees it too.
    let rows = rt().block_on(verify_dns(&spec));
    let bad: Vec<String> = failed(&rows).iter().map(|r| r.detail.clone()).collect();
    assert_eq!(
        bad,
        vec![
            "10 100 5269 xmpp2.t3.contoso.example. missing from the answer".to_string(),
            "10 100 5222 evil.example. answered but not desired".to_string(),
        ]
    );

    rt().block_on(apply_dns(&p, &drift, false))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        dig(lab, "SRV", "_xmpp-server._tcp.t3.contoso.example"),
        vec![
            "10 100 5269 xmpp1.t3.contoso.example.",
            "10 100 5269 xmpp2.t3.contoso.example."
        ]
    );
    assert!(failed(&rt().block_on(verify_dns(&spec))).is_empty());
}

#[test]
fn a_plan_older_than_a_hand_edit_is_refused_as_stale() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let _zone = Zone::fresh(lab, "t4.contoso.example.");
    let p = provider(lab);
    apply(&lab_spec(lab, "t4.contoso.example", ONE_POOL, ""), &p);
    let smaller: &[Pool<'_>] = &[("edge-hq", "hq", 10, &[(1, "198.51.100.101")])];
    let spec = lab_spec(lab, "t4.contoso.example", smaller, "");
    let old = plan(&spec, &p);
    curl_patch(
        lab,
        "t4.contoso.example.",
        r#"{"rrsets":[{"name":"xmpp1.t4.contoso.example.","type":"A","ttl":300,"changetype":"REPLACE",
            "records":[{"content":"192.0.2.99","disabled":false}]}]}"#,
    );
    let err = rt().block_on(apply_dns(&p, &old, false)).err();
    assert!(matches!(err, Some(DnsError::Stale { .. })), "{err:?}");
    assert_eq!(
        dig(lab, "A", "xmpp2.t4.contoso.example"),
        vec!["198.51.100.102"],
        "nothing written"
    );
}

#[test]
fn an_unmanaged_record_in_the_zone_is_never_touched() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let zone = "t5.contoso.example.";
    let _zone = Zone::fresh(lab, zone);
    let p = provider(lab);
    let hand = RRset::new(
        "www.t5.contoso.example.",
        "A",
        300,
        vec!["192.0.2.80".into()],
    );
    let hand_txt = RRset::new(zone, "TXT", 300, vec!["\"v=spf1 -all\"".into()]);
    rt().block_on(p.create_zone(zone, &[hand.clone(), hand_txt.clone()]))
        .unwrap_or_else(|e| panic!("{e}"));

    let spec = lab_spec(lab, "t5.contoso.example", ONE_POOL, "");
    let first = apply(&spec, &p);
    assert_eq!(
        first.unmanaged(),
        vec![
            (zone.to_string(), hand_txt.clone()),
            (zone.to_string(), hand.clone())
        ]
    );
    // The spec shrinks: xfed deletes what it made, nothing else.
    let smaller: &[Pool<'_>] = &[("edge-hq", "hq", 10, &[(1, "198.51.100.101")])];
    let spec = lab_spec(lab, "t5.contoso.example", smaller, "");
    let second = apply(&spec, &p);
    assert_eq!(
        changed(&second),
        vec![
            (
                "dns/t5.contoso.example./SRV:_xmpp-server._tcp.t5.contoso.example.".into(),
                Action::Update
            ),
            (
                "dns/t5.contoso.example./A:xmpp2.t5.contoso.example.".into(),
                Action::Delete
            ),
        ]
    );
    assert!(dig(lab, "A", "xmpp2.t5.contoso.example").is_empty());
    assert_eq!(dig(lab, "A", "www.t5.contoso.example"), vec!["192.0.2.80"]);
    assert_eq!(
        dig(lab, "TXT", "t5.contoso.example"),
        vec!["\"v=spf1 -all\""]
    );
    let now = read(&p, zone).unwrap_or_default();
    assert!(now.contains(&hand) && now.contains(&hand_txt), "{now:#?}");
    assert!(!plan(&spec, &p).has_changes());
}

#[test]
fn a_wrong_api_key_is_a_clear_error_and_nothing_is_written() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let zone = "t6.contoso.example.";
    let _zone = Zone::fresh(lab, zone);
    let wrong_key = "wrong-key-0123456789";
    let spec = spec_for(
        "t6.contoso.example",
        ONE_POOL,
        "",
        true,
        &lab.dns.api,
        wrong_key,
    );
    let bad = PowerDns::from_spec(&spec.dns.as_ref().unwrap_or_else(|| panic!("dns")).provider)
        .unwrap_or_else(|e| panic!("{e}"));

    let err = rt()
        .block_on(plan_dns(&spec, &bad))
        .err()
        .unwrap_or_else(|| panic!("no error"));
    let text = err.to_string();
    assert!(
        matches!(
            err,
            DnsError::Provider(ProviderError::Unauthorized { status: 401, .. })
        ),
        "{err:?}"
    );
    assert!(text.contains("rejected the API key (HTTP 401)"), "{text}");
    assert!(
        text.contains("hint: check `dns.provider.api_key`"),
        "{text}"
    );
    assert!(
        !text.contains(wrong_key) && !format!("{err:?} {bad:?}").contains(wrong_key),
        "{text}"
    );

    // A plan made with the right key, applied with the wrong one.
    let good = provider(lab);
    let made = plan(&lab_spec(lab, "t6.contoso.example", ONE_POOL, ""), &good);
    let err = rt().block_on(apply_dns(&bad, &made, false)).err();
    assert!(
        matches!(
            err,
            Some(DnsError::Provider(ProviderError::Unauthorized { .. }))
        ),
        "{err:?}"
    );
    assert!(read(&good, zone).is_none(), "the zone must not exist");
}

#[test]
fn an_unreachable_api_is_a_clear_error() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let key = lab.dns.api_key();
    for (url, expect) in [
        ("http://203.0.113.53:1", "Connection refused"),
        ("http://203.0.113.250:8081", "timed out"),
    ] {
        let spec = spec_for("t7.contoso.example", ONE_POOL, "", true, url, &key);
        let p = PowerDns::from_spec(&spec.dns.as_ref().unwrap_or_else(|| panic!("dns")).provider)
            .unwrap_or_else(|e| panic!("{e}"));
        let started = std::time::Instant::now();
        let err = rt()
            .block_on(plan_dns(&spec, &p))
            .err()
            .unwrap_or_else(|| panic!("no error"));
        let text = err.to_string();
        assert!(
            matches!(err, DnsError::Provider(ProviderError::Unreachable { .. })),
            "{err:?}"
        );
        assert!(
            text.starts_with(&format!("cannot reach the DNS API at `{url}`")),
            "{text}"
        );
        assert!(text.contains(expect), "{text}");
        assert!(text.contains("hint:"), "{text}");
        assert!(!text.contains(&key), "{text}");
        assert!(
            started.elapsed().as_secs() < 10,
            "took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_rejected_batch_writes_nothing_and_says_why() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let zone = "t8.contoso.example.";
    let _zone = Zone::fresh(lab, zone);
    let p = provider(lab);
    rt().block_on(p.create_zone(zone, &[]))
        .unwrap_or_else(|e| panic!("{e}"));
    let ops = vec![
        RRsetOp::Replace(RRset::new(
            "ok.t8.contoso.example.",
            "A",
            60,
            vec!["192.0.2.1".into()],
        )),
        RRsetOp::Replace(RRset::new(
            "elsewhere.example.",
            "A",
            60,
            vec!["192.0.2.2".into()],
        )),
    ];
    let err = rt().block_on(p.apply(zone, &ops)).err();
    let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(
        matches!(err, Some(ProviderError::Rejected { status: 422, .. })),
        "{err:?}"
    );
    assert!(text.contains("Name is out of zone"), "{text}");
    assert!(
        dig(lab, "A", "ok.t8.contoso.example").is_empty(),
        "half-written"
    );

    // A zone that does not exist, without create_zones.
    let spec = spec_for(
        "t9.contoso.example",
        ONE_POOL,
        "",
        false,
        &lab.dns.api,
        &lab.dns.api_key(),
    );
    let err = rt().block_on(plan_dns(&spec, &p)).err();
    let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(matches!(err, Some(DnsError::ZoneMissing { .. })), "{err:?}");
    assert!(text.contains("create_zones: true"), "{text}");
    // A wrong server id.
    let other = PowerDns::new(&lab.dns.api, &Secret::new(lab.dns.api_key()), "nosuch")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = rt().block_on(other.read_zone(zone)).err();
    assert!(
        matches!(err, Some(ProviderError::ServerNotFound { .. })),
        "{err:?}"
    );
}

#[test]
fn the_mass_change_guard_trips_and_can_be_overridden() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let zone = "t10.contoso.example.";
    let _zone = Zone::fresh(lab, zone);
    let records: String = (1..=12)
        .map(|i| {
            format!(
                "    - {{ zone: t10.contoso.example, name: h{i}, type: A, value: 192.0.2.{i} }}\n"
            )
        })
        .collect();
    let p = provider(lab);
    let full = lab_spec(
        lab,
        "t10.contoso.example",
        ONE_POOL,
        &format!("  records:\n{records}"),
    );
    apply(&full, &p);
    let before = read(&p, zone);

    let bare = lab_spec(lab, "t10.contoso.example", ONE_POOL, "");
    let risky = plan(&bare, &p);
    let reasons = risky.refusals(false);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("deletes 12 of the 15 record sets"),
        "{}",
        reasons[0]
    );
    let err = rt().block_on(apply_dns(&p, &risky, false)).err();
    assert!(matches!(err, Some(DnsError::Refused { .. })), "{err:?}");
    assert_eq!(read(&p, zone), before, "nothing written");
    assert_eq!(dig(lab, "A", "h1.t10.contoso.example"), vec!["192.0.2.1"]);

    rt().block_on(apply_dns(&p, &risky, true))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(dig(lab, "A", "h1.t10.contoso.example").is_empty());
    assert!(!plan(&bare, &p).has_changes());
    // The pure plan agrees with what the provider now holds.
    let now = build(
        &bare,
        &[xfed::plan::ZoneObservation {
            zone: zone.into(),
            rrsets: read(&p, zone),
        }],
    );
    assert!(!now.has_changes());
}

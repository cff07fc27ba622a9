//! DNS through RFC 2136 (dynamic update) and AXFR signed with TSIG, against
//! the lab's real BIND 9 and Knot (tests/lab/README.md): every test runs on
//! both servers. Records are checked by resolution — with hickory (xfed's
//! verifier) and with `dig` — and hand edits are made with `nsupdate`, tools
//! we did not write.
//!
//! Each test works in a zone of its own (`r<N>.contoso.example.`, which both
//! servers serve), emptied of everything but its SOA and NS first; the
//! servers differ, so the BIND and Knot halves never meet.

mod common;

use std::sync::Arc;

use common::lab::{Lab, Rfc2136Server};
use xfed::apply::dns::apply_dns;
use xfed::dns::rrset::{RRset, RRsetOp};
use xfed::engine::dns::read_and_plan as plan_dns;
use xfed::plan::Action;
use xfed::plan::dns_plan::DnsPlan;
use xfed::providers::dns::{DnsError, DnsProvider, ProviderError};
use xfed::spec::{self, MapInputs, Source, Spec};
use xfed::verify::dns::verify_dns;
use xfed::verify::doctor::{Check, Status, World, judge};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"))
}

/// A spec for `domain` (zone and XMPP domain) with one federation pool of
/// two edges and `records` under `dns.records`, writing through `server`
/// with `secret` as its TSIG key.
fn spec_for(server: &Rfc2136Server, domain: &str, records: &str, secret: &str) -> Spec {
    spec_with(server, domain, records, secret, 2)
}

/// [`spec_for`] with `edges` edges (1 or 2).
fn spec_with(server: &Rfc2136Server, domain: &str, records: &str, secret: &str, edges: u8) -> Spec {
    load(domain, spec_text(server, domain, records, edges), secret)
}

/// The spec's text, its TSIG secret from `env('TSIG_SECRET')`.
fn spec_text(server: &Rfc2136Server, domain: &str, records: &str, edges: u8) -> String {
    let edges: String = (1..=edges)
        .map(|n| {
            format!(
                "      - fqdn: edge{n}.{domain}\n        internal: {{ address: 203.0.113.{} }}\n        external: {{ fqdn: xmpp{n}.{domain}, address: 198.51.100.{} }}\n",
                100 + n,
                100 + n
            )
        })
        .collect();
    format!(
        r#"version: 1
sip_domains: [{domain}]
xmpp_domains: [{domain}]
ssh: {{ identity_file: /keys/id_ed25519, known_hosts: /keys/known_hosts }}
sites:
  - {{ name: hq, frontend_pool: fe, xmpp_route: edge-hq }}
frontend_pools:
  - name: fe
    servers: [{{ fqdn: fe1.{domain}, address: 203.0.113.11 }}]
edge_pools:
  - name: edge-hq
    site: hq
    xmpp_federation: true
    srv: {{ priority: 10, weight: 100, ttl: 120 }}
    servers:
{edges}dns:
  provider:
    kind: rfc2136
    servers: ["{ext}:53"]
    tsig:
      name: {key}
      algorithm: {alg}
      secret: "{{{{ env('TSIG_SECRET') }}}}"
  zones:
    - {{ name: {domain}, nameservers: ["{ext}"] }}
{records}"#,
        ext = server.external,
        key = server.tsig.name,
        alg = server.tsig.algorithm,
    )
}

/// `text` loaded with `secret` as `TSIG_SECRET`.
fn load(domain: &str, text: String, secret: &str) -> Spec {
    let mut inputs = MapInputs::default();
    inputs.env.insert("TSIG_SECRET".into(), secret.into());
    match spec::load(
        &Source::new(format!("{domain}.yaml"), text),
        Arc::new(inputs),
    ) {
        Ok(l) => l.spec,
        Err(e) => panic!("spec does not load:\n{e}"),
    }
}

fn lab_spec(server: &Rfc2136Server, domain: &str, records: &str) -> Spec {
    spec_for(server, domain, records, &server.tsig.secret())
}

fn provider_of(spec: &Spec) -> Box<dyn DnsProvider> {
    let dns = spec.dns.as_ref().expect("dns");
    xfed::providers::dns::provider_for(&dns.provider).unwrap_or_else(|e| panic!("{e}"))
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

fn read(p: &dyn DnsProvider, zone: &str) -> Vec<RRset> {
    rt().block_on(p.read_zone(zone))
        .unwrap_or_else(|e| panic!("read {zone}: {e}"))
        .unwrap_or_else(|| panic!("zone {zone} is not served"))
}

/// Everything but the apex SOA and NS, as the lab wrote the zone.
fn empty_zone(p: &dyn DnsProvider, zone: &str) {
    let ops: Vec<RRsetOp> = read(p, zone)
        .into_iter()
        .filter(|r| !(r.name == zone && (r.rtype == "SOA" || r.rtype == "NS")))
        .map(|r| RRsetOp::Delete {
            name: r.name,
            rtype: r.rtype,
        })
        .collect();
    rt().block_on(p.apply(zone, &ops))
        .unwrap_or_else(|e| panic!("empty {zone}: {e}"));
}

/// `dig +short +norec @SERVER TYPE NAME`, sorted lines.
fn dig(lab: &Lab, server: &Rfc2136Server, rtype: &str, name: &str) -> Vec<String> {
    let out = lab
        .command("dig")
        .args([
            "+short",
            "+norec",
            "+time=2",
            "+tries=1",
            &format!("@{}", server.external),
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

/// A hand edit, as an operator makes one: `nsupdate` with the server's key.
fn nsupdate(lab: &Lab, server: &Rfc2136Server, zone: &str, lines: &[&str]) {
    let script = format!(
        "server {}\nzone {zone}\n{}\nsend\n",
        server.external,
        lines.join("\n")
    );
    let key = format!(
        "{}:{}:{}",
        server.tsig.algorithm,
        server.tsig.name,
        server.tsig.secret()
    );
    let mut child = lab
        .command("nsupdate")
        .args(["-y", &key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("nsupdate: {e}"));
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("nsupdate");
    assert!(out.status.success(), "nsupdate {script}: {out:?}");
}

/// `dig` as a partner's host runs it: inside fabrikam's namespaces (the
/// external network only, as any outside resolver client), asking `at`
/// (`+norec` for an authoritative server). The answer section's records of
/// type `rtype` as `(ttl, rdata)`, sorted by rdata.
fn dig_from_partner(
    lab: &Lab,
    at: &str,
    recurse: bool,
    rtype: &str,
    name: &str,
) -> Vec<(u32, String)> {
    let out = lab
        .partner("fabrikam")
        .command("dig")
        .args([
            "+noall",
            "+answer",
            "+time=2",
            "+tries=1",
            if recurse { "+rec" } else { "+norec" },
            &format!("@{at}"),
            rtype,
            name,
        ])
        .output()
        .unwrap_or_else(|e| panic!("dig in fabrikam: {e}"));
    assert!(out.status.success(), "dig @{at} {rtype} {name}: {out:?}");
    // `name. TTL IN TYPE rdata…`
    let mut records: Vec<(u32, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 4 && f[3] == rtype)
                .then(|| (f[1].parse().unwrap_or(u32::MAX), f[4..].join(" ")))
        })
        .collect();
    records.sort_by(|a, b| a.1.cmp(&b.1));
    records
}

fn rdata(records: &[(u32, String)]) -> Vec<&str> {
    records.iter().map(|(_, r)| r.as_str()).collect()
}

fn servers(lab: &Lab) -> Vec<&Rfc2136Server> {
    assert_eq!(
        lab.rfc2136
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["bind", "knot"],
        "the lab has BIND and Knot (tests/lab/lab up)"
    );
    lab.rfc2136.iter().collect()
}

fn changed(plan: &DnsPlan) -> Vec<(String, Action)> {
    plan.changes()
        .into_iter()
        .filter(|c| c.action.is_change())
        .map(|c| (c.address, c.action))
        .collect()
}

/// Each server in the zone the lab's unbound sends to it (r1 to Knot, r9
/// to BIND: both serve every `r<N>`), so what apply wrote is seen as a
/// partner sees it: `dig` on a partner host, through unbound and directly
/// at the server.
#[test]
fn apply_publishes_srv_and_a_by_update_and_a_second_plan_is_empty() {
    let Some(lab) = Lab::get() else { return };
    let Some(rec) = lab.recursive.as_ref() else {
        panic!("the lab has no recursive resolver (tests/lab/lab up)")
    };
    for server in servers(lab) {
        let zone = rec.unsigned_zone(&server.name);
        let domain = zone.trim_end_matches('.');
        let spec = lab_spec(server, domain, "");
        let p = provider_of(&spec);
        empty_zone(p.as_ref(), zone);
        let first = apply(&spec, p.as_ref());
        assert!(
            changed(&first).iter().any(|(a, act)| a
                .ends_with(&format!("SRV:_xmpp-server._tcp.{zone}"))
                && *act == Action::Create),
            "{}: {:?}",
            server.name,
            changed(&first)
        );
        // As the spec gives them: the pool's `srv` (priority 10, weight
        // 100, ttl 120) on 5269 to each edge's external name, and that
        // name's A record the edge's external address.
        let srv_name = format!("_xmpp-server._tcp.{domain}");
        let want_srv = [
            format!("10 100 5269 xmpp1.{domain}."),
            format!("10 100 5269 xmpp2.{domain}."),
        ];
        let want_a = [("xmpp1", "198.51.100.101"), ("xmpp2", "198.51.100.102")];
        for (at, recurse, how) in [
            (rec.external.as_str(), true, "through unbound"),
            (server.external.as_str(), false, "directly"),
        ] {
            let srv = dig_from_partner(lab, at, recurse, "SRV", &srv_name);
            assert_eq!(rdata(&srv), want_srv, "{} {how}: {srv:?}", server.name);
            for (host, address) in want_a {
                let a = dig_from_partner(lab, at, recurse, "A", &format!("{host}.{domain}"));
                assert_eq!(rdata(&a), [address], "{} {how}: {host}: {a:?}", server.name);
            }
            if !recurse {
                // unbound caps TTLs at 0; the server itself serves the spec's
                assert!(
                    srv.iter().all(|(ttl, _)| *ttl == 120),
                    "{}: {srv:?}",
                    server.name
                );
            }
        }
        // the controller's view (no partner resolver involved) agrees
        assert_eq!(
            dig(lab, server, "SRV", &srv_name),
            want_srv,
            "{}",
            server.name
        );
        // ownership markers went in the same UPDATE
        assert_eq!(
            dig(
                lab,
                server,
                "TXT",
                &format!("_xfed-owner._xmpp-server._tcp.{domain}")
            ),
            vec!["\"xfed-managed type=SRV\""]
        );
        // xfed's verifier agrees
        let rows = rt().block_on(verify_dns(&spec));
        let bad: Vec<_> = rows.iter().filter(|r| !r.ok).collect();
        assert!(
            !rows.is_empty() && bad.is_empty(),
            "{}: {bad:?}",
            server.name
        );
        // read back by AXFR, nothing differs
        let second = plan(&spec, p.as_ref());
        assert!(
            !second.has_changes(),
            "{}: {:?}",
            server.name,
            changed(&second)
        );
    }
}

#[test]
fn a_hand_added_record_survives_and_a_hand_edit_is_drift_that_apply_repairs() {
    let Some(lab) = Lab::get() else { return };
    for server in servers(lab) {
        let zone = "r2.contoso.example.";
        let spec = lab_spec(server, "r2.contoso.example", "");
        let p = provider_of(&spec);
        empty_zone(p.as_ref(), zone);
        apply(&spec, p.as_ref());

        nsupdate(
            lab,
            server,
            zone,
            &[
                "update add mail.r2.contoso.example. 600 IN A 192.0.2.25",
                "update delete xmpp1.r2.contoso.example. A",
                "update add xmpp1.r2.contoso.example. 300 IN A 192.0.2.66",
            ],
        );
        let drift = plan(&spec, p.as_ref());
        assert_eq!(
            changed(&drift),
            vec![(
                "dns/r2.contoso.example./A:xmpp1.r2.contoso.example.".to_string(),
                Action::Update
            )],
            "{}",
            server.name
        );
        assert!(
            drift
                .unmanaged()
                .iter()
                .any(|(_, r)| r.name == "mail.r2.contoso.example."),
            "{}: the hand-made record is reported as unmanaged",
            server.name
        );
        rt().block_on(apply_dns(p.as_ref(), &drift, false))
            .unwrap_or_else(|e| panic!("{}: {e}", server.name));
        assert_eq!(
            dig(lab, server, "A", "xmpp1.r2.contoso.example"),
            vec!["198.51.100.101"],
            "{}: repaired",
            server.name
        );
        assert_eq!(
            dig(lab, server, "A", "mail.r2.contoso.example"),
            vec!["192.0.2.25"],
            "{}: the unrelated record survives",
            server.name
        );
        assert!(!plan(&spec, p.as_ref()).has_changes(), "{}", server.name);
    }
}

#[test]
fn the_mass_change_guard_trips_and_nothing_is_written() {
    let Some(lab) = Lab::get() else { return };
    for server in servers(lab) {
        let zone = "r3.contoso.example.";
        let records: String = (1..=12)
            .map(|i| {
                format!(
                    "    - {{ zone: r3.contoso.example, name: h{i}, type: A, value: 192.0.2.{i} }}\n"
                )
            })
            .collect();
        let full = lab_spec(
            server,
            "r3.contoso.example",
            &format!("  records:\n{records}"),
        );
        let p = provider_of(&full);
        empty_zone(p.as_ref(), zone);
        apply(&full, p.as_ref());
        let before = read(p.as_ref(), zone);

        let bare = lab_spec(server, "r3.contoso.example", "");
        let risky = plan(&bare, p.as_ref());
        let reasons = risky.refusals(false);
        assert_eq!(reasons.len(), 1, "{}: {reasons:?}", server.name);
        assert!(
            reasons[0].contains("deletes 12 of the 15 record sets"),
            "{}",
            reasons[0]
        );
        let err = rt().block_on(apply_dns(p.as_ref(), &risky, false)).err();
        assert!(matches!(err, Some(DnsError::Refused { .. })), "{err:?}");
        assert_eq!(
            read(p.as_ref(), zone),
            before,
            "{}: nothing written",
            server.name
        );
        assert_eq!(
            dig(lab, server, "A", "h1.r3.contoso.example"),
            vec!["192.0.2.1"]
        );
        rt().block_on(apply_dns(p.as_ref(), &risky, true))
            .unwrap_or_else(|e| panic!("{}: {e}", server.name));
        assert!(dig(lab, server, "A", "h1.r3.contoso.example").is_empty());
        assert!(!plan(&bare, p.as_ref()).has_changes());
    }
}

#[test]
fn a_record_changed_after_the_read_fails_the_updates_prerequisite_and_nothing_is_written() {
    let Some(lab) = Lab::get() else { return };
    for server in servers(lab) {
        let zone = "r4.contoso.example.";
        let spec = lab_spec(server, "r4.contoso.example", "");
        let p = provider_of(&spec);
        empty_zone(p.as_ref(), zone);
        apply(&spec, p.as_ref());

        // The plan drops edge2; then someone edits xmpp1 behind xfed's back.
        let spec2 = spec_with(server, "r4.contoso.example", "", &server.tsig.secret(), 1);
        let old = plan(&spec2, p.as_ref());
        let read_then = read(p.as_ref(), zone);
        assert!(old.has_changes());
        nsupdate(
            lab,
            server,
            zone,
            &[
                "update delete _xmpp-server._tcp.r4.contoso.example. SRV",
                "update add _xmpp-server._tcp.r4.contoso.example. 120 IN SRV 10 100 5269 other.example.",
            ],
        );
        let after_edit = read(p.as_ref(), zone);

        // The server itself refuses the UPDATE made from the older read.
        let z = &old.zones[0];
        let expected: Vec<RRset> = read_then
            .into_iter()
            .filter(|r| z.touched.contains(&r.name))
            .collect();
        let err = rt()
            .block_on(p.apply_expecting(zone, &z.decision.ops, &expected))
            .err();
        assert!(
            matches!(err, Some(ProviderError::PrerequisiteFailed { .. })),
            "{}: {err:?}",
            server.name
        );
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("NXRRSET") && text.contains("nothing was written"),
            "{text}"
        );
        assert_eq!(
            read(p.as_ref(), zone),
            after_edit,
            "{}: nothing written",
            server.name
        );

        // Through apply, the re-read sees the edit first: a stale plan.
        let err = rt().block_on(apply_dns(p.as_ref(), &old, false)).err();
        assert!(matches!(err, Some(DnsError::Stale { .. })), "{err:?}");
        assert_eq!(
            dig(lab, server, "A", "xmpp2.r4.contoso.example"),
            vec!["198.51.100.102"],
            "{}: nothing written",
            server.name
        );
    }
}

#[test]
fn a_wrong_tsig_secret_is_named_by_the_servers_codes_masked_and_writes_nothing() {
    let Some(lab) = Lab::get() else { return };
    for server in servers(lab) {
        let zone = "r5.contoso.example.";
        let good = lab_spec(server, "r5.contoso.example", "");
        let gp = provider_of(&good);
        empty_zone(gp.as_ref(), zone);
        let before = read(gp.as_ref(), zone);

        // a well-formed key of the right length that the server does not have
        let wrong = if server.tsig.algorithm == "hmac-sha512" {
            "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
        } else {
            "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
        };
        let bad = spec_for(server, "r5.contoso.example", "", wrong);
        let bp = provider_of(&bad);
        let err = rt()
            .block_on(plan_dns(&bad, bp.as_ref()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| panic!("{}: a wrong key read the zone", server.name));
        assert!(
            err.contains("NOTAUTH/BADSIG") && err.contains(&server.tsig.name),
            "{}: {err}",
            server.name
        );
        assert!(!err.contains(wrong) && !err.contains(&server.tsig.secret()));

        let op = RRsetOp::Replace(RRset::new(
            "evil.r5.contoso.example.",
            "A",
            300,
            vec!["192.0.2.66".into()],
        ));
        let err = rt()
            .block_on(bp.apply(zone, &[op]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| panic!("{}: a wrong key wrote", server.name));
        assert!(err.contains("NOTAUTH/BADSIG"), "{}: {err}", server.name);
        assert!(!err.contains(wrong));
        assert_eq!(
            read(gp.as_ref(), zone),
            before,
            "{}: nothing written",
            server.name
        );
        assert!(dig(lab, server, "A", "evil.r5.contoso.example").is_empty());
        // the provider's Debug never shows the key either
        assert!(!format!("{bp:?}").contains(wrong));
    }
}

#[test]
fn a_zone_the_server_does_not_serve_is_missing_not_an_error_of_the_key() {
    let Some(lab) = Lab::get() else { return };
    for server in servers(lab) {
        let spec = lab_spec(server, "nowhere.contoso.example", "");
        let p = provider_of(&spec);
        let err = rt().block_on(plan_dns(&spec, p.as_ref())).err();
        assert!(
            matches!(err, Some(DnsError::ZoneMissing { .. })),
            "{}: {err:?}",
            server.name
        );
    }
}

/// ACME DNS-01 with the challenge published by UPDATE in a BIND zone: the
/// lab's second pebble validates by asking BIND, and issues.
#[test]
fn pebble_issues_through_dns01_records_written_into_bind() {
    use xfed::providers::issuer::acme::{AcmeOrder, ProviderTxt, ZoneRef, issue_dns01};
    let Some(lab) = Lab::get() else { return };
    let server = servers(lab)[0];
    let acme = server
        .acme
        .as_ref()
        .expect("the lab's BIND has a pebble (tests/lab/lab up)");
    let zone = "r6.contoso.example.";
    let spec = lab_spec(server, "r6.contoso.example", "");
    let p = provider_of(&spec);
    empty_zone(p.as_ref(), zone);

    let names = vec![
        "sip.r6.contoso.example".to_string(),
        "xmpp1.r6.contoso.example".to_string(),
    ];
    let key = rcgen::KeyPair::generate().expect("key");
    let csr = rcgen::CertificateParams::new(names.clone())
        .expect("params")
        .serialize_request(&key)
        .expect("csr");
    let zones = vec![ZoneRef {
        name: zone.into(),
        nameservers: vec![format!("{}:53", server.external).parse().expect("addr")],
    }];
    let order = AcmeOrder {
        directory: &acme.directory,
        ca_bundle: Some(&acme.ca_bundle),
        contact: &[],
        names: &names,
        csr_der: csr.der(),
        zones: &zones,
        propagation_timeout: std::time::Duration::from_secs(20),
        host: "edge1",
    };
    let txt = ProviderTxt {
        provider: p.as_ref(),
        create_zones: false,
    };
    let chain = rt()
        .block_on(issue_dns01(&order, &txt))
        .unwrap_or_else(|e| panic!("ACME through BIND: {e}"));
    let dir = tempfile::tempdir().expect("tmp");
    let pem = dir.path().join("chain.pem");
    std::fs::write(&pem, &chain).expect("write");
    let text = common::pki::openssl(&[
        "x509",
        "-in",
        pem.to_str().expect("utf-8"),
        "-noout",
        "-text",
    ]);
    assert!(
        text.contains("Issuer: CN = Pebble Intermediate CA"),
        "{text}"
    );
    assert!(text.contains("DNS:sip.r6.contoso.example"), "{text}");
    assert!(text.contains("DNS:xmpp1.r6.contoso.example"), "{text}");
    // the challenge records are gone again
    assert!(dig(lab, server, "TXT", "_acme-challenge.sip.r6.contoso.example").is_empty());
    assert!(
        !read(p.as_ref(), zone)
            .iter()
            .any(|r| r.name.starts_with("_acme-challenge")),
        "challenge records left in the zone"
    );
}

/// Median of `runs` timings of `f`, in milliseconds.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = std::time::Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[runs / 2]
}

/// The zone's 1,000 unrelated A records (`b<i>.<zone>`), and 50 changes to
/// them (`round` picks their addresses).
fn bench_records(zone: &str, round: u8) -> (Vec<RRset>, Vec<RRsetOp>) {
    let rec = |i: u32, last: u8| {
        RRset::new(
            &format!("b{i}.{zone}"),
            "A",
            300,
            vec![format!("10.{}.{}.{last}", i / 256, i % 256)],
        )
    };
    let all = (0..1000).map(|i| rec(i, 1)).collect();
    let changes = (0..50)
        .map(|i| RRsetOp::Replace(rec(i * 20, 2 + round)))
        .collect();
    (all, changes)
}

/// Figures for tests/bench/dns-axfr, not a test: reading a zone of 1,000
/// records and writing 50 changes to it in one request, through BIND and
/// Knot (AXFR + UPDATE with TSIG) and PowerDNS (HTTP API), medians of 7.
#[test]
#[ignore = "a benchmark: tests/bench/dns-axfr runs it"]
fn dns_provider_figures() {
    let Some(lab) = Lab::get() else { return };
    let runs = 7;
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    // PowerDNS first: the reference the ratios are taken against.
    {
        let _serial = lab.lock();
        let zone = "bench.contoso.example.";
        let p = xfed::providers::dns::PowerDns::new(
            &lab.dns.api,
            &xfed::secret::Secret::new(lab.dns.api_key()),
            "localhost",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        rt().block_on(p.delete_zone(zone)).expect("delete");
        let (all, _) = bench_records(zone, 0);
        rt().block_on(p.create_zone(zone, &all)).expect("create");
        assert!(read(&p, zone).len() >= 1000);
        let read_ms = median_ms(runs, || {
            read(&p, zone);
        });
        let mut round = 0;
        let write_ms = median_ms(runs, || {
            round += 1;
            let (_, changes) = bench_records(zone, round);
            rt().block_on(p.apply(zone, &changes)).expect("write");
        });
        rt().block_on(p.delete_zone(zone)).expect("delete");
        rows.push(("PowerDNS (HTTP API)".into(), read_ms, write_ms));
    }
    for server in servers(lab) {
        let zone = "r7.contoso.example.";
        let spec = lab_spec(server, "r7.contoso.example", "");
        let p = provider_of(&spec);
        empty_zone(p.as_ref(), zone);
        let (all, _) = bench_records(zone, 0);
        // in steps: 1,000 records do not fit in one UPDATE message
        let ops: Vec<RRsetOp> = all.into_iter().map(RRsetOp::Replace).collect();
        let err = rt()
            .block_on(p.apply(zone, &ops))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("do not fit in one UPDATE message")),
            "{err:?}"
        );
        for chunk in ops.chunks(200) {
            rt().block_on(p.apply(zone, chunk)).expect("load");
        }
        assert!(read(p.as_ref(), zone).len() >= 1000);
        let read_ms = median_ms(runs, || {
            read(p.as_ref(), zone);
        });
        let mut round = 0;
        let write_ms = median_ms(runs, || {
            round += 1;
            let (_, changes) = bench_records(zone, round);
            rt().block_on(p.apply(zone, &changes)).expect("write");
        });
        empty_zone(p.as_ref(), zone);
        rows.push((
            format!(
                "{} (AXFR + UPDATE, TSIG {})",
                server.name, server.tsig.algorithm
            ),
            read_ms,
            write_ms,
        ));
    }
    let (base_read, base_write) = (rows[0].1, rows[0].2);
    println!(
        "FIGURES {:<40} {:>14} {:>8} {:>16} {:>8}",
        "provider", "read 1000 (ms)", "ratio", "write 50 (ms)", "ratio"
    );
    for (name, r, w) in &rows {
        println!(
            "FIGURES {name:<40} {r:>14.1} {:>8.2} {w:>16.1} {:>8.2}",
            r / base_read,
            w / base_write
        );
    }
}

/// playbooks/lab.yaml with its DNS in the lab's BIND (both zones) and its
/// ACME CA the pebble that validates through BIND; `secret` is the TSIG
/// secret's template (`file(…)` or `env(…)`).
fn lab_playbook_on_bind(lab: &Lab, secret: &str) -> common::xfed::TestSpec {
    let bind = servers(lab)[0];
    let acme = bind.acme.as_ref().expect("the lab's BIND has a pebble");
    let provider = "    kind: powerdns\n    api_url: http://203.0.113.53:8081\n    api_key: \"{{ file(lab ~ '/pdns/api-key') }}\"\n    create_zones: true\n";
    let directory = "directory: https://203.0.113.54:14000/dir";
    let secret = secret.to_string();
    let (ext, int) = (bind.external.clone(), bind.internal.clone());
    let (key, alg, dir) = (
        bind.tsig.name.clone(),
        bind.tsig.algorithm.clone(),
        acme.directory.clone(),
    );
    common::xfed::lab_spec(lab, move |text| {
        for part in [
            provider,
            directory,
            "[\"198.51.100.53\"]",
            "[\"203.0.113.53\"]",
        ] {
            assert!(text.contains(part), "playbooks/lab.yaml changed: {part}");
        }
        text.replace(
            provider,
            &format!(
                "    kind: rfc2136\n    servers: [\"{ext}\"]\n    tsig:\n      name: {key}\n      algorithm: {alg}\n      secret: \"{secret}\"\n"
            ),
        )
        .replace(directory, &format!("directory: {dir}"))
        .replace("[\"198.51.100.53\"]", &format!("[\"{ext}\"]"))
        .replace("[\"203.0.113.53\"]", &format!("[\"{int}\"]"))
    })
}

/// The whole lab deployment with BIND as its DNS, through the real `xfed`
/// binary: apply publishes the records by UPDATE and gets the edge
/// certificate from pebble by DNS-01 through BIND; a second plan is empty;
/// a wrong key exits 1 naming the server's codes with the secret masked;
/// a plan saved before a hand edit is refused as stale and writes nothing.
#[test]
fn the_lab_playbook_on_bind_applies_issues_by_acme_and_guards_its_writes() {
    use common::xfed::{reset, xfed};
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let bind = servers(lab)[0];
    let file = "{{ file(lab ~ '/rfc2136/bind/tsig.secret') }}";
    let s = lab_playbook_on_bind(lab, file);
    // both zones as the server started them
    let probe = lab_spec(bind, "contoso.example", "");
    let p = provider_of(&probe);
    empty_zone(p.as_ref(), "contoso.example.");
    empty_zone(p.as_ref(), "internal.contoso.example.");

    let r = xfed(lab, &["apply", "--auto-approve", s.path()]);
    assert_eq!(r.code, 0, "apply failed: {r:?}");
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("dns: wrote contoso.example."),
        "{r:?}"
    );
    assert_eq!(
        dig(lab, bind, "SRV", "_xmpp-server._tcp.contoso.example"),
        vec![
            "10 100 5269 xmpp1.contoso.example.",
            "10 100 5269 xmpp2.contoso.example."
        ]
    );
    assert!(dig(lab, bind, "TXT", "_acme-challenge.contoso.example").is_empty());
    let edge = lab.hosts.iter().find(|h| h.name == "edge1").expect("edge1");
    let issuer = lab.ssh_ok(
        edge,
        "openssl x509 -in /etc/xfed/tls/external.crt -noout -issuer",
    );
    assert!(issuer.contains("Pebble Intermediate CA"), "{issuer}");
    let again = xfed(lab, &["plan", "--detailed-exitcode", s.path()]);
    assert_eq!(again.code, 0, "expected no changes: {again:?}");

    // A wrong key: exit 1, the server's codes named, the secret nowhere.
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=";
    let bad = lab_playbook_on_bind(lab, "{{ env('XFED_TEST_TSIG') }}");
    let out = common::xfed::xfed_command(lab, &["plan", bad.path()])
        .env("XFED_TEST_TSIG", wrong)
        .output()
        .expect("xfed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("NOTAUTH/BADSIG"), "{text}");
    assert!(
        !text.contains(wrong) && !text.contains(&bind.tsig.secret()),
        "{text}"
    );

    // A plan saved before a hand edit is stale; nothing is written.
    let smaller = lab_playbook_on_bind(lab, file);
    let yaml = std::fs::read_to_string(smaller.path()).expect("read");
    let srv = "srv: { priority: 10, weight: 100 }";
    assert!(yaml.contains(srv), "playbooks/lab.yaml changed");
    std::fs::write(
        smaller.path(),
        yaml.replace(srv, "srv: { priority: 10, weight: 50 }"),
    )
    .expect("write");
    let saved = smaller.dir.path().join("plan.json");
    let planned = xfed(
        lab,
        &[
            "plan",
            "--out",
            saved.to_str().expect("utf-8"),
            smaller.path(),
        ],
    );
    assert!(planned.code == 0 || planned.code == 2, "{planned:?}");
    nsupdate(
        lab,
        bind,
        "contoso.example.",
        &[
            "update delete xmpp2.contoso.example. A",
            "update add xmpp2.contoso.example. 300 IN A 192.0.2.77",
        ],
    );
    let before = read(p.as_ref(), "contoso.example.");
    let stale = xfed(
        lab,
        &["apply", "--auto-approve", saved.to_str().expect("utf-8")],
    );
    assert_ne!(stale.code, 0, "{stale:?}");
    assert!(
        format!("{}{}", stale.stdout, stale.stderr).contains("stale plan"),
        "{stale:?}"
    );
    assert_eq!(
        read(p.as_ref(), "contoso.example."),
        before,
        "nothing written"
    );
    // repaired by the next apply of the spec
    let r = xfed(lab, &["apply", "--auto-approve", s.path()]);
    assert_eq!(r.code, 0, "apply failed: {r:?}");
    assert_eq!(
        dig(lab, bind, "A", "xmpp2.contoso.example"),
        vec!["198.51.100.102"]
    );
}

/// `verify` asks every name server of a zone for its SOA serial: BIND on
/// both its addresses agrees with itself; BIND and Knot each serving the
/// zone on their own (nobody transfers between them) do not, and verify
/// says which serves what.
#[test]
fn verify_reports_whether_every_name_server_serves_the_same_serial() {
    let Some(lab) = Lab::get() else { return };
    let (bind, knot) = (servers(lab)[0], servers(lab)[1]);
    let zone = "r8.contoso.example.";
    let spec = lab_spec(bind, "r8.contoso.example", "");
    let p = provider_of(&spec);
    empty_zone(p.as_ref(), zone);
    let kspec = lab_spec(knot, "r8.contoso.example", "");
    empty_zone(provider_of(&kspec).as_ref(), zone);
    apply(&spec, p.as_ref());
    let serial = |s: &Rfc2136Server| {
        rt().block_on(xfed::verify::dns::soa_serial(
            format!("{}:53", s.external).parse().expect("addr"),
            zone,
        ))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("{} has no SOA for {zone}", s.name))
    };
    // one more write on BIND if the serials happen to be equal
    if serial(bind) == serial(knot) {
        nsupdate(
            lab,
            bind,
            zone,
            &["update add x.r8.contoso.example. 300 IN A 192.0.2.8"],
        );
    }
    let row = |nameservers: &str| {
        let text = spec_text(bind, "r8.contoso.example", "", 2).replace(
            &format!("nameservers: [\"{}\"]", bind.external),
            &format!("nameservers: [{nameservers}]"),
        );
        let spec = load("r8.contoso.example", text, &bind.tsig.secret());
        rt().block_on(verify_dns(&spec))
            .into_iter()
            .find(|r| r.check == format!("SOA serial {zone}"))
            .unwrap_or_else(|| panic!("no SOA row for {nameservers}"))
    };
    let same = row(&format!("\"{}\", \"{}\"", bind.external, bind.internal));
    assert!(same.ok, "{same:?}");
    let apart = row(&format!("\"{}\", \"{}\"", bind.external, knot.external));
    assert!(!apart.ok, "{apart:?}");
    assert!(
        apart
            .detail
            .contains(&format!("{}:53 {}", bind.external, serial(bind)))
            && apart
                .detail
                .contains(&format!("{}:53 {}", knot.external, serial(knot))),
        "{}",
        apart.detail
    );
}

/// `dns.resolver`: verify also asks the lab's unbound, a validating
/// recursive resolver, as a partner's server would. The zone Knot signs
/// answers validated (AD) through its DS in the signed parent; its SRV
/// written by UPDATE is re-signed by Knot. A DS that no longer matches the
/// child's key makes the answer bogus, and verify says so.
#[test]
fn verify_through_the_validating_resolver_reports_the_signed_zones_answer_as_validated() {
    let Some(lab) = Lab::get() else { return };
    let Some(rec) = lab.recursive.as_ref() else {
        panic!("the lab has no recursive resolver (tests/lab/lab up)")
    };
    let knot = servers(lab)[1];
    let zone = rec.signed_zone.as_str();
    let domain = zone.trim_end_matches('.');
    let text = spec_text(knot, domain, "", 2).replace(
        "dns:\n",
        &format!("dns:\n  resolver: \"{}\"\n", rec.external),
    );
    let spec = load(domain, text, &knot.tsig.secret());
    let p = provider_of(&spec);
    empty_zone(p.as_ref(), zone);
    apply(&spec, p.as_ref());
    let rows = rt().block_on(verify_dns(&spec));
    let via = rows
        .iter()
        .find(|r| r.check.ends_with("via resolver"))
        .unwrap_or_else(|| panic!("no row through the resolver: {rows:?}"));
    assert!(via.ok, "{via:?}");
    assert!(via.detail.ends_with("; validated (AD)"), "{via:?}");
    assert!(
        via.detail.contains(&format!("10 100 5269 xmpp1.{domain}.")),
        "{via:?}"
    );
    // dig agrees: the resolver sets AD on the answer
    let out = lab
        .command("dig")
        .args([
            "+dnssec",
            "+time=2",
            "+tries=1",
            &format!("@{}", rec.external),
            "SRV",
            &format!("_xmpp-server._tcp.{domain}"),
        ])
        .output()
        .expect("dig");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with(";; flags:") && l.contains(" ad")),
        "{text}"
    );

    // Break the chain: the DS in the parent no longer matches the child's
    // key. The resolver's answer is bogus (SERVFAIL), and verify says so.
    let parent = rec.parent_zone.as_str();
    let pspec = lab_spec(knot, parent.trim_end_matches('.'), "");
    let pp = provider_of(&pspec);
    let ds = read(pp.as_ref(), parent)
        .into_iter()
        .find(|r| r.name == zone && r.rtype == "DS")
        .unwrap_or_else(|| panic!("no DS for {zone} in {parent}"));
    let mut wrong = ds.clone();
    wrong.records = ds
        .records
        .iter()
        .map(|c| {
            let mut f: Vec<String> = c.split_whitespace().map(str::to_string).collect();
            let digest = f.last_mut().expect("digest");
            *digest = "00".repeat(digest.len() / 2);
            f.join(" ")
        })
        .collect();
    rt().block_on(pp.apply(parent, &[RRsetOp::Replace(wrong)]))
        .unwrap_or_else(|e| panic!("{e}"));
    // The resolver may still hold the child's key it validated a moment
    // ago: ask until it notices (bounded).
    let via_row = |rows: &[xfed::verify::dns::VerifyRow]| {
        rows.iter()
            .find(|r| r.check.ends_with("via resolver"))
            .cloned()
            .unwrap_or_else(|| panic!("no row through the resolver: {rows:?}"))
    };
    let until = |want_ok: bool, limit: u64| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(limit);
        loop {
            let rows = rt().block_on(verify_dns(&spec));
            if via_row(&rows).ok == want_ok || std::time::Instant::now() > deadline {
                return rows;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    };
    let rows = until(false, 30);
    let restore = rt().block_on(pp.apply(parent, &[RRsetOp::Replace(ds)]));
    let via = via_row(&rows);
    assert!(!via.ok, "{via:?}");
    assert!(
        via.detail.contains("SERVFAIL") && via.detail.contains("bogus"),
        "{via:?}"
    );
    // doctor, fed the same rows, explains it and names the fix
    let world = World {
        now_unix: 0,
        xmpp_domains: vec![domain.to_string()],
        sites: Vec::new(),
        edge_pools: Vec::new(),
        built: Ok(String::new()),
        hosts: Vec::new(),
        dns: Some(rows.clone()),
        dialback_partners: Vec::new(),
    };
    let findings = judge(&world);
    let bogus = findings
        .iter()
        .find(|f| f.check == Check::Dns && f.status == Status::Fail)
        .unwrap_or_else(|| panic!("doctor found no DNS failure: {findings:?}"));
    assert!(bogus.seen.contains("bogus"), "{bogus:?}");
    let fix = bogus.fix.clone().unwrap_or_default();
    assert!(fix.contains("DS record in its parent zone"), "{bogus:?}");
    // the authoritative server itself still answers right: only the chain broke
    assert!(
        rows.iter()
            .filter(|r| !r.check.ends_with("via resolver"))
            .all(|r| r.ok),
        "{rows:?}"
    );
    restore.unwrap_or_else(|e| panic!("restore the DS: {e}"));
    // unbound keeps a key it found bad for 60 s before it looks again
    let rows = until(true, 90);
    assert!(rows.iter().all(|r| r.ok), "{rows:?}");
}

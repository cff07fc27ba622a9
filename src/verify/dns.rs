//! DNS verification by resolution: ask each zone's authoritative servers
//! (the spec's `dns.zones[].nameservers`) directly with hickory-resolver —
//! no resolv.conf, no cache, no recursion — and compare the answers with
//! the desired records (`crate::dns::desired`).
//!
//! For the federation SRV records it checks, per server: every desired SRV
//! record is in the answer (target, port, priority, weight), nothing else
//! is, the TTL matches, and every SRV target resolves to the external
//! address of the edge servers behind it. Every other desired RRset gets
//! one row (records and TTL). Zones without `nameservers` cannot be
//! verified and say so in a failing row.
//!
//! A zone with several name servers also gets one row saying whether they
//! all serve the same SOA serial: a secondary that missed a transfer, or a
//! second primary nobody writes to, answers something else than the server
//! xfed wrote.
//!
//! The resolver is `providers::dns::resolver`: no cache, one server.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{RData, RecordType};
use serde::Serialize;

use crate::dns::desired::{XMPP_SRV_PREFIX, derive, zone_for};
use crate::dns::rrset::{RRset, encode_txt_strings, normalise_name};
use crate::providers::dns::resolver::{RecursiveAnswer, ask_recursive, resolver_for};
use crate::spec::{Spec, View};

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyRow {
    /// What was checked: `SRV _xmpp-server._tcp.contoso.example.`,
    /// `SRV target xmpp1.contoso.example.`, `A xmpp1.contoso.example.`.
    pub check: String,
    /// The name server asked, `198.51.100.53:53`; empty when none was.
    pub server: String,
    pub ok: bool,
    /// What was found, or why it failed.
    pub detail: String,
}

impl VerifyRow {
    fn new(check: String, server: SocketAddr, ok: bool, detail: String) -> VerifyRow {
        VerifyRow {
            check,
            server: server.to_string(),
            ok,
            detail,
        }
    }
}

/// What an SRV RRset must look like, and where its targets must point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvExpectation {
    pub rrset: RRset,
    pub targets: Vec<TargetExpectation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetExpectation {
    /// Absolute name.
    pub name: String,
    /// Every address the target must resolve to (A and AAAA together).
    pub addresses: BTreeSet<IpAddr>,
    /// The authoritative server to ask for the target.
    pub nameserver: SocketAddr,
}

fn content(data: &RData) -> Option<String> {
    Some(match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(c) => normalise_name(&c.0.to_ascii()),
        RData::SRV(s) => format!(
            "{} {} {} {}",
            s.priority,
            s.weight,
            s.port,
            normalise_name(&s.target.to_ascii())
        ),
        RData::TXT(t) => {
            let strings: Vec<Vec<u8>> = t.txt_data.iter().map(|s| s.to_vec()).collect();
            encode_txt_strings(&strings)
        }
        _ => return None,
    })
}

/// The RRset `name`/`rtype` as `resolver`'s server answers it; `None` when
/// it has none (NXDOMAIN or no data).
pub async fn query(
    resolver: &TokioResolver,
    name: &str,
    rtype: &str,
) -> Result<Option<RRset>, String> {
    let record_type: RecordType = rtype
        .parse()
        .map_err(|_| format!("`{rtype}` is not a record type"))?;
    let name = normalise_name(name);
    match resolver.lookup(name.as_str(), record_type).await {
        Ok(lookup) => {
            let mut ttl = None;
            let mut records = Vec::new();
            for rec in lookup.answers() {
                if rec.record_type() != record_type || normalise_name(&rec.name.to_ascii()) != name
                {
                    continue;
                }
                if let Some(c) = content(&rec.data) {
                    ttl = Some(ttl.map_or(rec.ttl, |t: u32| t.min(rec.ttl)));
                    records.push(c);
                }
            }
            Ok(ttl.map(|ttl| RRset::new(&name, rtype, ttl, records)))
        }
        Err(e) if e.is_no_records_found() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// One row: does `ns` answer `expected` exactly (records and TTL)?
pub async fn verify_rrset(ns: SocketAddr, expected: &RRset) -> VerifyRow {
    let check = format!("{} {}", expected.rtype, expected.name);
    let resolver = resolver_for(ns);
    match query(&resolver, &expected.name, &expected.rtype).await {
        Err(e) => VerifyRow::new(check, ns, false, format!("query failed: {e}")),
        Ok(None) => VerifyRow::new(check, ns, false, "no such record".into()),
        Ok(Some(got)) if got.records != expected.records => VerifyRow::new(
            check,
            ns,
            false,
            format!(
                "answers [{}], expected [{}]",
                got.records.join(", "),
                expected.records.join(", ")
            ),
        ),
        Ok(Some(got)) if got.ttl != expected.ttl => VerifyRow::new(
            check,
            ns,
            false,
            format!("ttl {}, expected {}", got.ttl, expected.ttl),
        ),
        Ok(Some(got)) => VerifyRow::new(check, ns, true, got.records.join(", ")),
    }
}

/// Per-record rows for an SRV RRset at `ns`, then one row per target.
pub async fn verify_srv(ns: SocketAddr, expected: &SrvExpectation) -> Vec<VerifyRow> {
    let want = &expected.rrset;
    let check = format!("SRV {}", want.name);
    let resolver = resolver_for(ns);
    let mut rows = Vec::new();
    let got = match query(&resolver, &want.name, "SRV").await {
        Err(e) => {
            rows.push(VerifyRow::new(
                check,
                ns,
                false,
                format!("query failed: {e}"),
            ));
            return rows;
        }
        Ok(got) => got,
    };
    let got_records: Vec<String> = got.as_ref().map(|g| g.records.clone()).unwrap_or_default();
    for r in &want.records {
        let found = got_records.contains(r);
        rows.push(VerifyRow::new(
            check.clone(),
            ns,
            found,
            if found {
                format!("{r} (ttl {})", got.as_ref().map_or(0, |g| g.ttl))
            } else {
                format!("{r} missing from the answer")
            },
        ));
    }
    for r in got_records.iter().filter(|r| !want.records.contains(r)) {
        rows.push(VerifyRow::new(
            check.clone(),
            ns,
            false,
            format!("{r} answered but not desired"),
        ));
    }
    if let Some(g) = &got
        && g.ttl != want.ttl
    {
        rows.push(VerifyRow::new(
            check.clone(),
            ns,
            false,
            format!("ttl {}, expected {}", g.ttl, want.ttl),
        ));
    }
    for t in &expected.targets {
        rows.push(verify_target(t).await);
    }
    rows
}

async fn verify_target(t: &TargetExpectation) -> VerifyRow {
    let check = format!("SRV target {}", t.name);
    let resolver = resolver_for(t.nameserver);
    let mut got = BTreeSet::new();
    for rtype in ["A", "AAAA"] {
        match query(&resolver, &t.name, rtype).await {
            Ok(Some(r)) => got.extend(r.records.iter().filter_map(|c| c.parse::<IpAddr>().ok())),
            Ok(None) => {}
            Err(e) => {
                return VerifyRow::new(
                    check,
                    t.nameserver,
                    false,
                    format!("{rtype} query failed: {e}"),
                );
            }
        }
    }
    let list = |s: &BTreeSet<IpAddr>| {
        s.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if got == t.addresses {
        VerifyRow::new(
            check,
            t.nameserver,
            true,
            format!("resolves to {}", list(&got)),
        )
    } else if got.is_empty() {
        VerifyRow::new(
            check,
            t.nameserver,
            false,
            format!("does not resolve; expected {}", list(&t.addresses)),
        )
    } else {
        VerifyRow::new(
            check,
            t.nameserver,
            false,
            format!(
                "resolves to {}, expected {}",
                list(&got),
                list(&t.addresses)
            ),
        )
    }
}

/// The SOA serial `ns` serves for `zone`; `None` when it has no SOA there.
pub async fn soa_serial(ns: SocketAddr, zone: &str) -> Result<Option<u32>, String> {
    let resolver = resolver_for(ns);
    match resolver
        .lookup(normalise_name(zone).as_str(), RecordType::SOA)
        .await
    {
        Ok(lookup) => Ok(lookup.answers().iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })),
        Err(e) if e.is_no_records_found() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The row saying whether every name server of `zone` serves the same SOA
/// serial, from what each answered. Pure.
pub fn serial_agreement(
    zone: &str,
    answers: &[(SocketAddr, Result<Option<u32>, String>)],
) -> VerifyRow {
    let servers: Vec<String> = answers.iter().map(|(ns, _)| ns.to_string()).collect();
    let shown: Vec<String> = answers
        .iter()
        .map(|(ns, a)| match a {
            Ok(Some(serial)) => format!("{ns} {serial}"),
            Ok(None) => format!("{ns} no SOA (not authoritative: a lame server)"),
            Err(e) => format!("{ns} failed: {e}"),
        })
        .collect();
    let serials: BTreeSet<Option<u32>> = answers
        .iter()
        .map(|(_, a)| a.as_ref().ok().copied().flatten())
        .collect();
    let agree = serials.len() == 1 && serials.iter().all(Option::is_some);
    VerifyRow {
        check: format!("SOA serial {zone}"),
        server: servers.join(", "),
        ok: agree,
        detail: if agree {
            format!(
                "all {} name servers serve serial {}",
                answers.len(),
                serials.iter().flatten().next().copied().unwrap_or_default()
            )
        } else {
            format!(
                "the name servers do not serve the same zone: {}\n  hint: a secondary that \
                 missed a transfer, or a server nobody writes to; partners may get either answer",
                shown.join("; ")
            )
        },
    }
}

/// The row for an SRV RRset as the recursive resolver `resolver` answered
/// it: the records must be the desired ones; whether the answer validated
/// (the AD bit) is said either way. A SERVFAIL is a bogus answer (DNSSEC
/// validation failed) or a lame delegation (no server answers). Pure.
pub fn judge_recursive(
    expected: &RRset,
    resolver: SocketAddr,
    answer: Result<RecursiveAnswer, String>,
) -> VerifyRow {
    let check = format!("{} {} via resolver", expected.rtype, expected.name);
    let row = |ok, detail| VerifyRow::new(check.clone(), resolver, ok, detail);
    let a = match answer {
        Err(e) => return row(false, format!("query failed: {e}")),
        Ok(a) => a,
    };
    if a.rcode == "SERVFAIL" {
        return row(
            false,
            "the resolver answered SERVFAIL: the answer is bogus (DNSSEC validation failed) \
             or the zone is lame (none of its servers answers for it); partners using such a \
             resolver cannot find this domain\n  hint: check the zone's signatures and the DS \
             record in its parent zone, and that every name server serves the zone"
                .into(),
        );
    }
    let validated = if a.authentic {
        "validated (AD)"
    } else {
        "not validated (no AD: the zone is unsigned or the resolver has no trust anchor for it)"
    };
    if a.records != expected.records {
        return row(
            false,
            format!(
                "{} answered [{}], desired [{}]; {validated}",
                a.rcode,
                a.records.join(", "),
                expected.records.join(", ")
            ),
        );
    }
    row(true, format!("{}; {validated}", a.records.join(", ")))
}

/// Verifies every desired record of every declared zone at each of the
/// zone's name servers.
pub async fn verify_dns(spec: &Spec) -> Vec<VerifyRow> {
    verify_zones(spec, &|_| true).await
}

/// `verify_dns` for the zones `wanted` names (`contoso.example.`): a
/// targeted apply judges what it may have written, not the zones it left.
pub async fn verify_zones(spec: &Spec, wanted: &dyn Fn(&str) -> bool) -> Vec<VerifyRow> {
    let derived = derive(spec);
    let mut rows = Vec::new();
    for zone in derived.zones.iter().filter(|z| wanted(&z.zone)) {
        if zone.nameservers.is_empty() {
            rows.push(VerifyRow {
                check: format!("zone {}", zone.zone),
                server: String::new(),
                ok: false,
                detail: "no name servers declared: DNS verification asks the zone's authoritative \
                         servers directly\n  hint: list them under `dns.zones[].nameservers`, \
                         e.g. `[\"198.51.100.53\"]`"
                    .into(),
            });
            continue;
        }
        if zone.nameservers.len() > 1 {
            let mut answers = Vec::new();
            for &ns in &zone.nameservers {
                answers.push((ns, soa_serial(ns, &zone.zone).await));
            }
            rows.push(serial_agreement(&zone.zone, &answers));
        }
        if let Some(resolver) = spec.dns.as_ref().and_then(|d| d.resolver)
            && zone.view == View::External
        {
            for d in &zone.rrsets {
                let r = &d.rrset;
                if r.rtype == "SRV" && r.name.starts_with(XMPP_SRV_PREFIX) {
                    let answer = ask_recursive(resolver, &r.name, "SRV").await;
                    rows.push(judge_recursive(r, resolver, answer));
                }
            }
        }
        for &ns in &zone.nameservers {
            for d in &zone.rrsets {
                let r = &d.rrset;
                if r.rtype == "SRV" && r.name.starts_with(XMPP_SRV_PREFIX) {
                    let expectation = srv_expectation(spec, &derived.zones, r, ns);
                    rows.extend(verify_srv(ns, &expectation).await);
                } else {
                    rows.push(verify_rrset(ns, r).await);
                }
            }
        }
    }
    rows
}

/// Where each target of `srv` must point: the external addresses of the
/// edge servers with that external FQDN, else the desired A/AAAA records of
/// that name; asked at the first name server of the target's zone, else `ns`.
fn srv_expectation(
    spec: &Spec,
    zones: &[crate::dns::ZoneRecords],
    srv: &RRset,
    ns: SocketAddr,
) -> SrvExpectation {
    let mut targets = Vec::new();
    let names: BTreeSet<String> = srv
        .records
        .iter()
        .filter_map(|c| c.split_whitespace().nth(3).map(str::to_string))
        .filter(|t| t != ".")
        .collect();
    for name in names {
        let mut addresses: BTreeSet<IpAddr> = spec
            .edge_pools
            .iter()
            .flat_map(|p| p.servers.iter())
            .filter(|s| normalise_name(&s.external_fqdn) == name)
            .map(|s| s.external_address)
            .collect();
        if addresses.is_empty() {
            addresses = zones
                .iter()
                .flat_map(|z| z.rrsets.iter())
                .filter(|d| {
                    d.rrset.name == name && (d.rrset.rtype == "A" || d.rrset.rtype == "AAAA")
                })
                .flat_map(|d| d.rrset.records.iter().filter_map(|c| c.parse().ok()))
                .collect();
        }
        let nameserver = zone_for(spec, &name, View::External)
            .and_then(|z| zones.iter().find(|zr| zr.zone == z))
            .and_then(|zr| zr.nameservers.first().copied())
            .unwrap_or(ns);
        targets.push(TargetExpectation {
            name,
            addresses,
            nameserver,
        });
    }
    SrvExpectation {
        rrset: srv.clone(),
        targets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(last: u8) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, last], 53))
    }

    #[test]
    fn a_resolvers_answer_says_whether_it_validated_and_servfail_is_bogus_or_lame() {
        let srv = RRset::new(
            "_xmpp-server._tcp.contoso.example.",
            "SRV",
            300,
            vec!["10 100 5269 xmpp1.contoso.example.".into()],
        );
        let answer = |rcode: &str, authentic, records: &[&str]| {
            Ok(RecursiveAnswer {
                rcode: rcode.into(),
                authentic,
                records: records.iter().map(|r| r.to_string()).collect(),
            })
        };
        let good = ["10 100 5269 xmpp1.contoso.example."];
        let signed = judge_recursive(&srv, ns(58), answer("NOERROR", true, &good));
        assert!(signed.ok);
        assert!(
            signed.detail.ends_with("validated (AD)"),
            "{}",
            signed.detail
        );
        assert_eq!(
            signed.check,
            "SRV _xmpp-server._tcp.contoso.example. via resolver"
        );
        let unsigned = judge_recursive(&srv, ns(58), answer("NOERROR", false, &good));
        assert!(unsigned.ok);
        assert!(
            unsigned.detail.contains("not validated"),
            "{}",
            unsigned.detail
        );
        let bogus = judge_recursive(&srv, ns(58), answer("SERVFAIL", false, &[]));
        assert!(!bogus.ok);
        assert!(bogus.detail.contains("bogus") && bogus.detail.contains("lame"));
        let wrong = judge_recursive(&srv, ns(58), answer("NOERROR", true, &["0 0 0 ."]));
        assert!(!wrong.ok);
        assert!(wrong.detail.contains("desired ["), "{}", wrong.detail);
    }

    #[test]
    fn name_servers_agree_only_when_all_serve_one_serial() {
        let same = serial_agreement(
            "contoso.example.",
            &[(ns(55), Ok(Some(7))), (ns(56), Ok(Some(7)))],
        );
        assert!(same.ok);
        assert_eq!(same.detail, "all 2 name servers serve serial 7");
        assert_eq!(same.server, "198.51.100.55:53, 198.51.100.56:53");

        let apart = serial_agreement(
            "contoso.example.",
            &[(ns(55), Ok(Some(7))), (ns(56), Ok(Some(3)))],
        );
        assert!(!apart.ok);
        assert!(
            apart
                .detail
                .contains("198.51.100.55:53 7; 198.51.100.56:53 3"),
            "{}",
            apart.detail
        );

        let lame = serial_agreement(
            "contoso.example.",
            &[(ns(55), Ok(Some(7))), (ns(56), Ok(None))],
        );
        assert!(!lame.ok);
        assert!(lame.detail.contains("a lame server"), "{}", lame.detail);

        let failed = serial_agreement(
            "contoso.example.",
            &[
                (ns(55), Err("timed out".into())),
                (ns(56), Err("timed out".into())),
            ],
        );
        assert!(!failed.ok, "two failures are no agreement");
    }
}

//! Desired records: what the spec says each declared zone must contain.
//!
//! Derived, in this order (step 23 of the manual procedure):
//! - for every XMPP domain `d` and every edge pool with `xmpp_federation`:
//!   one SRV record per server at `_xmpp-server._tcp.<d>.` →
//!   `<pool priority> <pool weight> <server external port> <external fqdn>.`,
//!   TTL the pool's `srv.ttl` — so every pool contributes its own priority
//!   and outside servers fail over pool by pool;
//! - for every edge server: an A (or AAAA) record of its external FQDN →
//!   its external address, in the external zone holding that name;
//! - for every edge server whose FQDN lies in a declared `internal` view
//!   zone: an A/AAAA record of that FQDN → its internal address (the split
//!   horizon); internal addresses never go into an external zone;
//! - every explicit record of `dns.records`, in the zone it names.
//!
//! A name belongs to the longest declared zone of the right view that
//! contains it. Records of one `(name, type)` merge into one RRset; if their
//! TTLs differ the lowest wins (with a warning: an RRset has one TTL).
//! Pure: no I/O.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::finding::Finding;
use super::rrset::{RRset, in_zone, normalise_name, srv_content, txt_content};
use crate::spec::{RecordData, Spec, View};

/// First labels of the XMPP server-to-server SRV name.
pub const XMPP_SRV_PREFIX: &str = "_xmpp-server._tcp.";

/// `_xmpp-server._tcp.<domain>.`
pub fn xmpp_srv_name(domain: &str) -> String {
    normalise_name(&format!("{XMPP_SRV_PREFIX}{domain}"))
}

/// One RRset the spec wants, with the spec lines it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredRRset {
    pub rrset: RRset,
    /// `file:line` of every spec object contributing a record, joined by `, `.
    pub origin: String,
}

/// The desired content of one declared zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneRecords {
    /// Absolute, lower case, trailing dot.
    pub zone: String,
    pub view: View,
    /// Authoritative servers to verify against (may be empty).
    pub nameservers: Vec<SocketAddr>,
    /// Sorted by `(name, type)`.
    pub rrsets: Vec<DesiredRRset>,
}

/// Desired records and the problems met while deriving them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Derived {
    pub zones: Vec<ZoneRecords>,
    pub findings: Vec<Finding>,
}

/// The desired records of every declared zone, in spec order (empty when
/// the spec has no `dns`). See [`derive`] for the problems found on the way.
pub fn desired(spec: &Spec) -> Vec<ZoneRecords> {
    derive(spec).zones
}

#[derive(Default)]
struct Acc {
    ttls: Vec<(u32, String)>,
    records: Vec<String>,
    origins: Vec<String>,
}

/// The longest declared zone of `view` that holds `name`.
pub fn zone_for<'a>(spec: &'a Spec, name: &str, view: View) -> Option<&'a str> {
    spec.dns.as_ref().and_then(|dns| {
        dns.zones
            .iter()
            .filter(|z| z.view == view && in_zone(name, &z.name))
            .max_by_key(|z| z.name.len())
            .map(|z| z.name.as_str())
    })
}

fn address_record(ip: IpAddr) -> (&'static str, String) {
    match ip {
        IpAddr::V4(a) => ("A", a.to_string()),
        IpAddr::V6(a) => ("AAAA", a.to_string()),
    }
}

/// [`desired`] plus findings: names outside every zone, TTL conflicts, a
/// CNAME beside other data.
pub fn derive(spec: &Spec) -> Derived {
    let Some(dns) = &spec.dns else {
        return Derived {
            zones: Vec::new(),
            findings: Vec::new(),
        };
    };
    let mut findings = Vec::new();
    // (zone, name, type) → records
    let mut acc: BTreeMap<(String, String, String), Acc> = BTreeMap::new();
    let mut add =
        |zone: &str, name: &str, rtype: &str, ttl: u32, content: String, origin: String| {
            let a = acc
                .entry((zone.to_string(), normalise_name(name), rtype.to_string()))
                .or_default();
            a.ttls.push((ttl, origin.clone()));
            a.records.push(content);
            if !a.origins.contains(&origin) {
                a.origins.push(origin);
            }
        };

    for domain in &spec.xmpp_domains {
        let name = xmpp_srv_name(domain);
        let pools: Vec<_> = spec
            .edge_pools
            .iter()
            .filter(|p| p.xmpp_federation)
            .collect();
        if pools.is_empty() {
            continue;
        }
        let Some(zone) = zone_for(spec, &name, View::External) else {
            findings.push(
                Finding::error(
                    pools[0].origin.to_string(),
                    format!("no declared external zone holds `{name}`: the federation SRV record cannot be published"),
                )
                .with_hint(format!("declare the zone of `{domain}` under `dns.zones`")),
            );
            continue;
        };
        for pool in pools {
            for s in &pool.servers {
                add(
                    zone,
                    &name,
                    "SRV",
                    pool.srv_ttl,
                    srv_content(
                        pool.srv_priority,
                        pool.srv_weight,
                        s.external_port,
                        &s.external_fqdn,
                    ),
                    pool.origin.to_string(),
                );
            }
        }
    }

    for pool in &spec.edge_pools {
        for s in &pool.servers {
            let origin = s.server.origin.to_string();
            let ext = normalise_name(&s.external_fqdn);
            let (rtype, content) = address_record(s.external_address);
            match zone_for(spec, &ext, View::External) {
                Some(zone) => add(zone, &ext, rtype, dns.ttl, content, origin.clone()),
                None if pool.xmpp_federation => findings.push(
                    Finding::warning(
                        origin.clone(),
                        format!(
                            "`{ext}` (an SRV target) lies outside every declared external zone: \
                             xfed does not manage its {rtype} record"
                        ),
                    )
                    .with_hint(
                        "declare its zone under `dns.zones`, or publish the record elsewhere",
                    ),
                ),
                None => {}
            }
            let internal = normalise_name(&s.server.fqdn);
            if let Some(zone) = zone_for(spec, &internal, View::Internal) {
                let (rtype, content) = address_record(s.internal_address);
                add(zone, &internal, rtype, dns.ttl, content, origin);
            }
        }
    }

    for r in &dns.records {
        let zone = normalise_name(&r.zone);
        let (rtype, content) = match &r.data {
            RecordData::A { address } => ("A", address.to_string()),
            RecordData::Aaaa { address } => ("AAAA", address.to_string()),
            RecordData::Cname { target } => ("CNAME", normalise_name(target)),
            RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } => ("SRV", srv_content(*priority, *weight, *port, target)),
            RecordData::Txt { text } => ("TXT", txt_content(text)),
        };
        add(&zone, &r.name, rtype, r.ttl, content, r.origin.to_string());
    }

    let mut zones: Vec<ZoneRecords> = dns
        .zones
        .iter()
        .map(|z| ZoneRecords {
            zone: z.name.clone(),
            view: z.view,
            nameservers: z.nameservers.clone(),
            rrsets: Vec::new(),
        })
        .collect();
    for ((zone, name, rtype), a) in acc {
        let ttl = a.ttls.iter().map(|(t, _)| *t).min().unwrap_or(dns.ttl);
        if a.ttls.iter().any(|(t, _)| *t != ttl) {
            let list: Vec<String> = a.ttls.iter().map(|(t, o)| format!("{t} ({o})")).collect();
            findings.push(
                Finding::warning(
                    a.origins[0].clone(),
                    format!(
                        "the records of `{name}` {rtype} ask for different TTLs: {}; an RRset has one TTL, {ttl} is used",
                        list.join(", ")
                    ),
                )
                .with_hint("give them the same TTL"),
            );
        }
        let Some(z) = zones.iter_mut().find(|z| z.zone == zone) else {
            continue; // a record of an undeclared zone: the spec resolver reports it
        };
        z.rrsets.push(DesiredRRset {
            rrset: RRset::new(&name, &rtype, ttl, a.records),
            origin: a.origins.join(", "),
        });
    }
    for z in &zones {
        for c in z.rrsets.iter().filter(|r| r.rrset.rtype == "CNAME") {
            if z.rrsets
                .iter()
                .any(|o| o.rrset.name == c.rrset.name && o.rrset.rtype != "CNAME")
            {
                findings.push(Finding::error(
                    c.origin.clone(),
                    format!(
                        "`{}` has a CNAME and other records; a CNAME cannot share its name",
                        c.rrset.name
                    ),
                ));
            }
            if c.rrset.records.len() > 1 {
                findings.push(Finding::error(
                    c.origin.clone(),
                    format!("`{}` has more than one CNAME target", c.rrset.name),
                ));
            }
        }
    }
    zones
        .iter_mut()
        .for_each(|z| z.rrsets.sort_by_key(|r| r.rrset.key()));
    Derived { zones, findings }
}

//! Policies, grants, partners and per-site XMPP routes as objects of the
//! plan, not only lines of a file: each is read from a topology document
//! (the desired one, and the one published on the front-ends, which is the
//! source of truth as the Lync management store is) and decided
//! attribute by attribute, so a plan says
//! `~ topology/policy:FedPic  enable_xmpp_access: false → true`.
//!
//! Pure. Publishing is the front-end module's `topology.json` and the
//! gateway's `policy.toml`; these changes are what that publishing means.

use std::collections::BTreeMap;

use super::action::Action;
use super::change::{AttrChange, Change};
use super::kind::ResourceKind;
use super::resource::Phase;
use crate::digest::sha256_hex;
use crate::spec::Users;
use crate::topology::{AccessChange, Topology, access_changes};

/// One object of a topology document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyObject {
    /// `policy`, `grant`, `partner`, `route`.
    pub kind: ResourceKind,
    /// The policy identity, granted policy, partner domain or site name.
    pub key: String,
    pub attrs: BTreeMap<String, String>,
}

impl TopologyObject {
    pub fn address(&self) -> String {
        format!("topology/{}:{}", self.kind, self.key)
    }
}

fn attrs<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Every policy, grant, partner and route of `doc`, in document order.
pub fn objects(doc: &Topology) -> Vec<TopologyObject> {
    let mut out = Vec::new();
    for p in &doc.policies {
        out.push(TopologyObject {
            kind: ResourceKind::Policy,
            key: p.identity.clone(),
            attrs: attrs([
                (
                    "enable_federation_access",
                    p.enable_federation_access.to_string(),
                ),
                (
                    "enable_public_cloud_access",
                    p.enable_public_cloud_access.to_string(),
                ),
                ("enable_xmpp_access", p.enable_xmpp_access.to_string()),
            ]),
        });
    }
    for g in &doc.grants {
        let users = match &g.users {
            Users::All => "all".to_string(),
            Users::List(l) => l.join(", "),
        };
        out.push(TopologyObject {
            kind: ResourceKind::Grant,
            key: g.policy.clone(),
            attrs: attrs([("users", users)]),
        });
    }
    for p in &doc.partners {
        let mut a = attrs([
            ("kind", p.kind.as_str().to_string()),
            ("tls", p.tls.as_str().to_string()),
            ("auth", p.auth.as_str().to_string()),
            ("keepalive", p.keepalive.to_string()),
        ]);
        if !p.additional_domains.is_empty() {
            a.insert("additional_domains".into(), p.additional_domains.join(", "));
        }
        if let Some(proxy) = &p.proxy {
            a.insert("proxy".into(), proxy.clone());
        }
        out.push(TopologyObject {
            kind: ResourceKind::Partner,
            key: p.domain.clone(),
            attrs: a,
        });
    }
    for s in &doc.sites {
        out.push(TopologyObject {
            kind: ResourceKind::Route,
            key: s.name.clone(),
            attrs: attrs([("xmpp_route", s.xmpp_route.clone())]),
        });
    }
    out
}

/// Where each desired object comes from in the spec (`file:line`).
pub type Origins = BTreeMap<String, String>;

/// Desired `doc` against the `live` one published on the front-ends
/// (`None`: none has it yet): one change per object, no-ops included;
/// objects only live are deleted.
pub fn decide_objects(
    desired: &Topology,
    live: Option<&Topology>,
    origins: &Origins,
) -> Vec<Change> {
    let want = objects(desired);
    let have = live.map(objects).unwrap_or_default();
    let change = |o: &TopologyObject, action: Action, reason: String, attrs: Vec<AttrChange>| {
        let fp = |x: Option<&TopologyObject>| {
            sha256_hex(format!("{:?}", x.map(|x| &x.attrs)).as_bytes())
        };
        Change {
            address: o.address(),
            host: String::new(),
            pool: String::new(),
            phase: Phase::Policies,
            kind: o.kind,
            action,
            reason,
            diff: None,
            attrs,
            service_op: None,
            origin: origins.get(&o.address()).cloned().unwrap_or_default(),
            observed: fp(have.iter().find(|h| h.address() == o.address())),
            desired: fp(want.iter().find(|w| w.address() == o.address())),
        }
    };
    let mut out = Vec::new();
    for w in &want {
        let Some(h) = have.iter().find(|h| h.address() == w.address()) else {
            let attrs = w
                .attrs
                .iter()
                .map(|(k, v)| AttrChange {
                    name: k.clone(),
                    before: String::new(),
                    after: v.clone(),
                })
                .collect();
            out.push(change(
                w,
                Action::Create,
                "not in the published topology".into(),
                attrs,
            ));
            continue;
        };
        // An attribute only one side has (a proxy set or removed) is a
        // change from or to nothing.
        let names: std::collections::BTreeSet<&String> =
            w.attrs.keys().chain(h.attrs.keys()).collect();
        let attrs: Vec<AttrChange> = names
            .into_iter()
            .filter(|k| h.attrs.get(*k) != w.attrs.get(*k))
            .map(|k| AttrChange {
                name: k.clone(),
                before: h.attrs.get(k).cloned().unwrap_or_default(),
                after: w.attrs.get(k).cloned().unwrap_or_default(),
            })
            .collect();
        if attrs.is_empty() {
            out.push(change(
                w,
                Action::NoOp,
                "published as specified".into(),
                attrs,
            ));
        } else {
            let names: Vec<&str> = attrs.iter().map(|a| a.name.as_str()).collect();
            let mut reason = format!("{} changed", names.join(", "));
            if w.kind == ResourceKind::Route {
                reason.push_str(&moved_path(desired, &w.key));
            }
            out.push(change(w, Action::Update, reason, attrs));
        }
    }
    for h in have
        .iter()
        .filter(|h| !want.iter().any(|w| w.address() == h.address()))
    {
        out.push(change(
            h,
            Action::Delete,
            "no longer in the spec".into(),
            Vec::new(),
        ));
    }
    out
}

/// Whose outbound path a change of `site`'s route moves: the users homed
/// on the site (the first, in spec order, that its front-end pool serves,
/// as the gateways' policy files have it).
fn moved_path(doc: &Topology, site: &str) -> String {
    let Some(s) = doc.sites.iter().find(|s| s.name == site) else {
        return String::new();
    };
    let home = doc
        .sites
        .iter()
        .find(|o| o.frontend_pool == s.frontend_pool);
    let users: &[String] = match doc
        .frontend_pools
        .iter()
        .find(|p| p.name == s.frontend_pool)
    {
        Some(p) if home.is_some_and(|h| h.name == s.name) => &p.users,
        _ => &[],
    };
    if users.is_empty() {
        return format!(": no user is homed on site `{site}`");
    }
    format!(
        ": the path of {} to every partner moves to `{}`",
        users.join(", "),
        s.xmpp_route
    )
}

/// The objects' changes and whose access they move, together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyPlan {
    pub changes: Vec<Change>,
    pub access: Vec<AccessChange>,
}

pub fn plan_topology(
    desired: &Topology,
    live: Option<&Topology>,
    origins: &Origins,
) -> TopologyPlan {
    TopologyPlan {
        changes: decide_objects(desired, live, origins),
        access: access_changes(live, desired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{PartnerAuth, PartnerKind, PolicyScope, TlsRequirement};
    use crate::topology::{FrontendPool, Grant, Partner, Policy, Site};

    fn partner(domain: &str) -> Partner {
        Partner {
            domain: domain.into(),
            kind: PartnerKind::Federated,
            tls: TlsRequirement::Required,
            auth: PartnerAuth::External,
            additional_domains: Vec::new(),
            keepalive: true,
            proxy: None,
        }
    }

    fn doc(xmpp: bool, route: &str) -> Topology {
        Topology {
            version: String::new(),
            sip_domains: Vec::new(),
            xmpp_domains: Vec::new(),
            sites: vec![Site {
                name: "hq".into(),
                frontend_pool: "fe-hq".into(),
                xmpp_route: route.into(),
            }],
            frontend_pools: vec![FrontendPool {
                name: "fe-hq".into(),
                servers: vec!["fe1.contoso.example".into()],
                users: vec!["alice@contoso.example".into()],
                xmpp_server: None,
                ssh: Default::default(),
            }],
            edge_pools: Vec::new(),
            policies: vec![Policy {
                identity: "FedPic".into(),
                scope: PolicyScope::Named("FedPic".into()),
                enable_federation_access: true,
                enable_public_cloud_access: false,
                enable_xmpp_access: xmpp,
            }],
            grants: vec![Grant {
                policy: "FedPic".into(),
                users: Users::All,
            }],
            partners: vec![partner("fabrikam.example")],
        }
    }

    #[test]
    fn one_flag_changed_is_one_update_with_only_that_attribute() {
        let changes = decide_objects(
            &doc(true, "edge-hq"),
            Some(&doc(false, "edge-hq")),
            &Origins::new(),
        );
        let changed: Vec<&Change> = changes.iter().filter(|c| c.action.is_change()).collect();
        assert_eq!(changed.len(), 1, "{changes:#?}");
        assert_eq!(changed[0].address, "topology/policy:FedPic");
        assert_eq!(changed[0].action, Action::Update);
        assert_eq!(
            changed[0].attrs,
            vec![AttrChange {
                name: "enable_xmpp_access".into(),
                before: "false".into(),
                after: "true".into()
            }]
        );
        assert_eq!(changes.len(), 4);
    }

    #[test]
    fn a_moved_route_is_one_route_update_and_a_removed_partner_a_delete() {
        let mut live = doc(true, "edge-hq");
        live.partners.push(partner("old.example"));
        let changes = decide_objects(&doc(true, "edge-eu"), Some(&live), &Origins::new());
        let changed: Vec<(&str, Action)> = changes
            .iter()
            .filter(|c| c.action.is_change())
            .map(|c| (c.address.as_str(), c.action))
            .collect();
        assert_eq!(
            changed,
            vec![
                ("topology/route:hq", Action::Update),
                ("topology/partner:old.example", Action::Delete)
            ]
        );
        let route = changes
            .iter()
            .find(|c| c.address == "topology/route:hq")
            .expect("route");
        assert_eq!(
            (
                route.attrs[0].before.as_str(),
                route.attrs[0].after.as_str()
            ),
            ("edge-hq", "edge-eu")
        );
        assert_eq!(
            route.reason,
            "xmpp_route changed: the path of alice@contoso.example to every partner moves to `edge-eu`"
        );
    }

    #[test]
    fn nothing_published_is_every_object_created() {
        let changes = decide_objects(&doc(true, "edge-hq"), None, &Origins::new());
        assert!(
            changes.iter().all(|c| c.action == Action::Create),
            "{changes:#?}"
        );
    }

    #[test]
    fn a_partner_auth_change_is_an_update_of_that_attribute() {
        let mut want = doc(true, "edge-hq");
        want.partners[0].auth = PartnerAuth::Either;
        want.partners[0].additional_domains = vec!["conference.fabrikam.example".into()];
        let changes = decide_objects(&want, Some(&doc(true, "edge-hq")), &Origins::new());
        let partner = changes
            .iter()
            .find(|c| c.address == "topology/partner:fabrikam.example")
            .expect("partner");
        assert_eq!(partner.action, Action::Update);
        let attrs: Vec<(&str, &str, &str)> = partner
            .attrs
            .iter()
            .map(|a| (a.name.as_str(), a.before.as_str(), a.after.as_str()))
            .collect();
        assert_eq!(
            attrs,
            vec![
                ("additional_domains", "", "conference.fabrikam.example"),
                ("auth", "external", "either"),
            ]
        );
    }

    #[test]
    fn a_removed_proxy_is_a_change_to_nothing() {
        let mut live = doc(true, "edge-hq");
        live.partners[0].proxy = Some("xmpp.fabrikam.example:5269".into());
        let changes = decide_objects(&doc(true, "edge-hq"), Some(&live), &Origins::new());
        let partner = changes
            .iter()
            .find(|c| c.address == "topology/partner:fabrikam.example")
            .expect("partner");
        assert_eq!(partner.action, Action::Update);
        assert_eq!(
            partner.attrs,
            vec![AttrChange {
                name: "proxy".into(),
                before: "xmpp.fabrikam.example:5269".into(),
                after: String::new(),
            }]
        );
    }

    /// A document published before partners had `auth` (with the
    /// `dialback` flag no gateway enforced) reads as what the gateways did:
    /// EXTERNAL only, keepalives on.
    #[test]
    fn a_document_published_with_the_old_dialback_flag_reads_as_external() {
        let mut value = doc(true, "edge-hq").to_value();
        let partner = &mut value["partners"][0];
        let p = partner.as_object_mut().expect("a partner is an object");
        p.remove("auth");
        p.remove("keepalive");
        p.insert("dialback".into(), serde_json::Value::Bool(true));
        let old = Topology::parse(&value.to_string()).expect("parses");
        assert_eq!(old.partners[0], doc(true, "edge-hq").partners[0]);
    }
}

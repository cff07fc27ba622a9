//! xfed's effective access (`topology::access`) against the table of cases
//! the gateway's own resolution is tested against too
//! (`gateway/tests/effective_access.rs`): one fixture, two crates, so the
//! plan's "whose access changes" and the gateway's enforcement cannot
//! drift apart: the policy that applies, and, per partner kind, whether
//! the user may reach such a partner and which flag decided.

use serde_json::Value;
use xfed::spec::{PartnerKind, PolicyScope, Users};
use xfed::topology::access::{DEFAULT_POLICY, effective, home_site};
use xfed::topology::{FrontendPool, Grant, Policy, Site, Topology};
use xfed_gateway::config::PolicyScope as GatewayScope;

const CASES: &str = include_str!("fixtures/effective_access.json");

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn flag(flags: &Value, i: usize) -> bool {
    flags[i].as_bool().expect("flags are three booleans")
}

/// A case as the topology xfed publishes: each site served by a front-end
/// pool of its own that homes the site's users.
fn topology(domains: &Value, case: &Value) -> Topology {
    let list = |key: &str| case[key].as_array().cloned().unwrap_or_default();
    let sites = list("sites");
    Topology {
        version: String::new(),
        sip_domains: Vec::new(),
        xmpp_domains: strings(domains),
        sites: sites
            .iter()
            .enumerate()
            .map(|(i, s)| Site {
                name: s["name"].as_str().expect("name").into(),
                frontend_pool: format!("pool-{i}"),
                xmpp_route: String::new(),
            })
            .collect(),
        frontend_pools: sites
            .iter()
            .enumerate()
            .map(|(i, s)| FrontendPool {
                name: format!("pool-{i}"),
                servers: Vec::new(),
                users: strings(&s["users"]),
                xmpp_server: None,
                ssh: Default::default(),
            })
            .collect(),
        edge_pools: Vec::new(),
        policies: list("policies")
            .iter()
            .map(|p| {
                let identity = p["identity"].as_str().expect("identity").to_string();
                // The identity means what the gateway's rule says, as in
                // the spec's resolution.
                let scope = match GatewayScope::of_identity(&identity).expect("valid identity") {
                    GatewayScope::Global => PolicyScope::Global,
                    GatewayScope::Site(s) => PolicyScope::Site(s),
                    GatewayScope::User => PolicyScope::Named(identity.clone()),
                };
                Policy {
                    identity,
                    scope,
                    enable_federation_access: flag(&p["flags"], 0),
                    enable_public_cloud_access: flag(&p["flags"], 1),
                    enable_xmpp_access: flag(&p["flags"], 2),
                }
            })
            .collect(),
        grants: list("grants")
            .iter()
            .map(|g| Grant {
                policy: g["policy"].as_str().expect("policy").into(),
                users: if g["all"] == Value::Bool(true) {
                    Users::All
                } else {
                    Users::List(strings(&g["users"]))
                },
            })
            .collect(),
        partners: Vec::new(),
    }
}

#[test]
fn effective_access_matches_the_shared_table() {
    let table: Value = serde_json::from_str(CASES).expect("the fixture is JSON");
    let cases = table["cases"].as_array().expect("cases");
    assert!(cases.len() >= 10, "the table has its cases");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases {
        let doc = topology(&table["domains"], case);
        let user = case["user"].as_str().expect("user");
        let e = effective(&doc, user);
        let want = &case["expect"];
        let got = (
            (e.policy != DEFAULT_POLICY).then(|| e.policy.clone()),
            e.source.as_str(),
            home_site(&doc, user).map(str::to_string),
            [
                e.enable_federation_access,
                e.enable_public_cloud_access,
                e.enable_xmpp_access,
            ],
        );
        let expected = (
            want["policy"].as_str().map(str::to_string),
            want["source"].as_str().expect("source"),
            want["site"].as_str().map(str::to_string),
            [0, 1, 2].map(|i| flag(&want["flags"], i)),
        );
        if got != expected {
            failures.push(format!(
                "{}:\n  expected {expected:?}\n  got      {got:?}",
                case["name"]
            ));
        }
        let Some(kinds) = case.get("partner_kinds") else {
            continue;
        };
        checked += 1;
        for kind in PartnerKind::ALL {
            let want = &kinds[kind.as_str()];
            let want = (
                want["allowed"].as_bool().expect("allowed"),
                want["decided_by"].as_str().expect("decided_by"),
            );
            let access = e.access(kind);
            let got = (access.allowed, access.decided_by.as_str());
            // The plan's JSON carries the same, derived once.
            let published = e.partner_kinds.get(&kind).copied();
            if got != want || published != Some(access) {
                failures.push(format!(
                    "{} ({}):\n  expected {want:?}\n  got      {got:?} (published {published:?})",
                    case["name"],
                    kind.as_str()
                ));
            }
        }
    }
    assert!(checked >= 8, "the table has its partner-kind cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

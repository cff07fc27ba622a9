//! The gateway's policy resolution (`policy::PolicyIndex`) against the
//! table of cases xfed's own computation is tested against too
//! (`tests/effective_access.rs` at the workspace root): one fixture, two
//! crates. Each case becomes a configuration the way xfed renders one, is
//! loaded by the real loader, and is resolved for the case's user; where
//! the case says what each partner kind may do, one partner of every kind
//! is configured and the per-stanza verdict is checked against it too.

use std::path::Path;

use serde_json::{Value, json};
use xfed_gateway::config::{Config, PartnerKind};
use xfed_gateway::policy::{DenialCause, Direction, PolicyIndex, Verdict, decide};

const CASES: &str = include_str!("../../tests/fixtures/effective_access.json");

fn flag(flags: &Value, i: usize) -> bool {
    flags[i].as_bool().expect("flags are three booleans")
}

/// The partner of `kind` every case's configuration has.
fn partner_domain(kind: PartnerKind) -> String {
    format!("{}.partner.example", kind.as_str().replace('_', "-"))
}

/// A case as a configuration file: listeners, the case's domains and its
/// policies, grants and sites, serialized by the TOML writer.
fn config(domains: &Value, case: &Value) -> Config {
    let list = |key: &str| case[key].as_array().cloned().unwrap_or_default();
    let policies: Vec<Value> = list("policies")
        .iter()
        .map(|p| {
            json!({
                "identity": p["identity"],
                "enable_federation_access": flag(&p["flags"], 0),
                "enable_public_cloud_access": flag(&p["flags"], 1),
                "enable_xmpp_access": flag(&p["flags"], 2),
            })
        })
        .collect();
    let grants: Vec<Value> = list("grants")
        .iter()
        .map(|g| match g.get("all") {
            Some(all) => json!({ "policy": g["policy"], "all": all }),
            None => json!({ "policy": g["policy"], "users": g["users"] }),
        })
        .collect();
    let partners: Vec<Value> = PartnerKind::ALL
        .iter()
        .map(|kind| json!({ "domain": partner_domain(*kind), "kind": kind.as_str() }))
        .collect();
    let doc = json!({
        "domains": domains,
        "external": { "address": "127.0.0.1" },
        "internal": { "address": "127.0.0.2" },
        "partners": partners,
        "policies": policies,
        "grants": grants,
        "sites": list("sites"),
    });
    let text = toml::to_string(&doc).expect("serializes");
    Config::parse(Path::new("/etc/xfed/gateway.toml"), text.as_bytes())
        .unwrap_or_else(|e| panic!("{}: {e}\n{text}", case["name"]))
}

#[test]
fn policy_resolution_matches_the_shared_table() {
    let table: Value = serde_json::from_str(CASES).expect("the fixture is JSON");
    let cases = table["cases"].as_array().expect("cases");
    assert!(cases.len() >= 10, "the table has its cases");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases {
        let index = PolicyIndex::new(&config(&table["domains"], case));
        let user = case["user"].as_str().expect("user");
        let e = index
            .resolve(user)
            .unwrap_or_else(|err| panic!("{}: {err}", case["name"]));
        let want = &case["expect"];
        let got = (
            e.identity.clone(),
            e.source.as_str(),
            e.site.clone(),
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
            // The stanza verdict, both ways, agrees with the kind's decision.
            let verdicts =
                [Direction::Inbound, Direction::Outbound].map(|direction| {
                    match decide(
                        &index,
                        direction,
                        user,
                        &partner_domain(kind),
                        "message",
                        true,
                    ) {
                        Verdict::Allowed => (true, None),
                        Verdict::Denied { cause, .. } => (false, Some(cause)),
                    }
                });
            let verdict_want = (
                want.0,
                (!want.0).then(|| {
                    DenialCause::ALL
                        .into_iter()
                        .find(|c| c.as_str() == want.1)
                        .expect("a flag's name")
                }),
            );
            if got != want || verdicts != [verdict_want; 2] {
                failures.push(format!(
                    "{} ({}):\n  expected {want:?}\n  got      {got:?}, verdicts {verdicts:?}",
                    case["name"],
                    kind.as_str()
                ));
            }
        }
    }
    assert!(checked >= 8, "the table has its partner-kind cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

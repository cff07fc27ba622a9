//! The gateway's policy resolution (`policy::PolicyIndex`) against the
//! table of cases xfed's own computation is tested against too
//! (`tests/effective_access.rs` at the workspace root): one fixture, two
//! crates. Each case becomes a configuration the way xfed renders one, is
//! loaded by the real loader, and is resolved for the case's user.

use std::path::Path;

use serde_json::{Value, json};
use xfed_gateway::config::Config;
use xfed_gateway::policy::PolicyIndex;

const CASES: &str = include_str!("../../tests/fixtures/effective_access.json");

fn flag(flags: &Value, i: usize) -> bool {
    flags[i].as_bool().expect("flags are three booleans")
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
    let doc = json!({
        "domains": domains,
        "external": { "address": "127.0.0.1" },
        "internal": { "address": "127.0.0.2" },
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
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

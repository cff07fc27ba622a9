//! Effective external access: which policy applies to a user, read from a
//! published topology document. Pure, so the plan can say whose access a
//! change moves before anything is applied.
//!
//! The precedence is Lync's: a grant naming the user, then a grant to all
//! users, then the policy of the site the user is homed on (through the
//! front-end pool), then `global`, then the built-in default with every
//! flag off. The gateway resolves the same way when it enforces
//! (`gateway/src/policy`); the two are kept equal by their own tests.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where the effective policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    UserGrant,
    AllUsersGrant,
    Site,
    Global,
    Default,
}

/// One user's effective policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effective {
    /// The policy's identity; `(default)` when none applies.
    pub policy: String,
    pub source: Source,
    pub enable_federation_access: bool,
    pub enable_public_cloud_access: bool,
    pub enable_xmpp_access: bool,
}

impl Effective {
    /// What a person reads: `XMPP federation allowed (FedPic, granted)`.
    pub fn describe(&self) -> String {
        let how = match self.source {
            Source::UserGrant => "granted to the user",
            Source::AllUsersGrant => "granted to all users",
            Source::Site => "site policy",
            Source::Global => "global policy",
            Source::Default => "no policy applies",
        };
        format!(
            "XMPP federation {} (policy `{}`, {how})",
            if self.enable_xmpp_access {
                "allowed"
            } else {
                "denied"
            },
            self.policy
        )
    }
}

fn flag(p: &Value, name: &str) -> bool {
    p[name].as_bool().unwrap_or(false)
}

fn policy_named<'a>(doc: &'a Value, identity: &str) -> Option<&'a Value> {
    doc["policies"].as_array()?.iter().find(|p| {
        p["identity"]
            .as_str()
            .is_some_and(|i| i.eq_ignore_ascii_case(identity))
    })
}

/// The site `user` is homed on: the site whose front-end pool lists them.
pub fn home_site(doc: &Value, user: &str) -> Option<String> {
    let pool = doc["frontend_pools"].as_array()?.iter().find(|p| {
        p["users"]
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u.as_str() == Some(user)))
    })?;
    let pool = pool["name"].as_str()?;
    doc["sites"]
        .as_array()?
        .iter()
        .find(|s| s["frontend_pool"].as_str() == Some(pool))
        .and_then(|s| s["name"].as_str())
        .map(str::to_string)
}

/// The effective policy of `user` (lower-case `user@domain`) under `doc`.
pub fn effective(doc: &Value, user: &str) -> Effective {
    let grants = doc["grants"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let granted = |pred: &dyn Fn(&Value) -> bool| {
        grants
            .iter()
            .filter(|g| pred(&g["users"]))
            .find_map(|g| g["policy"].as_str())
            .and_then(|name| policy_named(doc, name))
    };
    let by_user = granted(&|u| {
        u["list"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x.as_str() == Some(user)))
    });
    let by_all = || granted(&|u| u.as_str() == Some("all"));
    let by_site =
        || home_site(doc, user).and_then(|site| policy_named(doc, &format!("site:{site}")));
    let found = by_user
        .map(|p| (p, Source::UserGrant))
        .or_else(|| by_all().map(|p| (p, Source::AllUsersGrant)))
        .or_else(|| by_site().map(|p| (p, Source::Site)))
        .or_else(|| policy_named(doc, "global").map(|p| (p, Source::Global)));
    match found {
        Some((p, source)) => Effective {
            policy: p["identity"].as_str().unwrap_or_default().to_string(),
            source,
            enable_federation_access: flag(p, "enable_federation_access"),
            enable_public_cloud_access: flag(p, "enable_public_cloud_access"),
            enable_xmpp_access: flag(p, "enable_xmpp_access"),
        },
        None => Effective {
            policy: "(default)".into(),
            source: Source::Default,
            enable_federation_access: false,
            enable_public_cloud_access: false,
            enable_xmpp_access: false,
        },
    }
}

/// Every user a document names: homed on a pool or granted a policy.
pub fn known_users(doc: &Value) -> Vec<String> {
    let mut users: Vec<String> = Vec::new();
    let lists = doc["frontend_pools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| &p["users"])
        .chain(
            doc["grants"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| &g["users"]["list"]),
        );
    for list in lists {
        for u in list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !users.iter().any(|x| x == u) {
                users.push(u.to_string());
            }
        }
    }
    users.sort();
    users
}

/// A user whose effective access differs between two documents. The
/// pseudo-user `(every other user)` stands for everyone the documents do
/// not name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessChange {
    pub user: String,
    pub before: Option<Effective>,
    pub after: Effective,
}

/// Whose effective access changes from `live` (absent: nothing published)
/// to `desired`. A change of policy identity with equal flags counts too:
/// the user is then governed by another object.
pub fn access_changes(live: Option<&Value>, desired: &Value) -> Vec<AccessChange> {
    const OTHERS: &str = "(every other user)";
    let mut users = known_users(desired);
    if let Some(l) = live {
        for u in known_users(l) {
            if !users.contains(&u) {
                users.push(u);
            }
        }
    }
    users.sort();
    // Nobody is named `(every other user)`: `effective` resolves it like
    // any user without a grant or a home.
    users.push(OTHERS.into());
    users
        .into_iter()
        .filter_map(|u| {
            let after = effective(desired, &u);
            let before = live.map(|l| effective(l, &u));
            (before.as_ref() != Some(&after)).then_some(AccessChange {
                user: u,
                before,
                after,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(policies: Value, grants: Value) -> Value {
        json!({
            "sites": [{ "name": "hq", "frontend_pool": "fe-hq" }, { "name": "eu", "frontend_pool": "fe-eu" }],
            "frontend_pools": [
                { "name": "fe-hq", "users": ["alice@contoso.example", "bob@contoso.example"] },
                { "name": "fe-eu", "users": ["carol@contoso.example"] }
            ],
            "policies": policies,
            "grants": grants,
        })
    }

    fn policy(identity: &str, xmpp: bool) -> Value {
        json!({ "identity": identity, "enable_federation_access": true,
                "enable_public_cloud_access": false, "enable_xmpp_access": xmpp })
    }

    #[test]
    fn precedence_is_user_grant_then_all_then_site_then_global_then_default() {
        let all = doc(
            json!([
                policy("global", false),
                policy("site:hq", true),
                policy("Vip", true),
                policy("Wide", false)
            ]),
            json!([{ "policy": "Vip", "users": { "list": ["bob@contoso.example"] } },
                   { "policy": "Wide", "users": "all" }]),
        );
        let cases = [
            ("bob@contoso.example", "Vip", Source::UserGrant),
            ("alice@contoso.example", "Wide", Source::AllUsersGrant),
            ("carol@contoso.example", "Wide", Source::AllUsersGrant),
        ];
        for (user, policy, source) in cases {
            let e = effective(&all, user);
            assert_eq!((e.policy.as_str(), e.source), (policy, source), "{user}");
        }
        let no_all = doc(
            json!([
                policy("global", false),
                policy("site:hq", true),
                policy("Vip", true)
            ]),
            json!([{ "policy": "Vip", "users": { "list": ["bob@contoso.example"] } }]),
        );
        assert_eq!(
            effective(&no_all, "alice@contoso.example").source,
            Source::Site
        );
        assert!(effective(&no_all, "alice@contoso.example").enable_xmpp_access);
        assert_eq!(
            effective(&no_all, "carol@contoso.example").source,
            Source::Global
        );
        assert!(!effective(&no_all, "carol@contoso.example").enable_xmpp_access);
        assert_eq!(
            effective(&no_all, "dave@contoso.example").source,
            Source::Global
        );
        let nothing = doc(json!([]), json!([]));
        let e = effective(&nothing, "alice@contoso.example");
        assert_eq!((e.source, e.enable_xmpp_access), (Source::Default, false));
    }

    #[test]
    fn a_pool_serving_two_sites_homes_its_users_on_the_first() {
        let mut d = doc(
            json!([policy("site:eu", false), policy("site:dr", true)]),
            json!([]),
        );
        d["sites"] = json!([
            { "name": "eu", "frontend_pool": "fe-eu" },
            { "name": "dr", "frontend_pool": "fe-eu" }
        ]);
        assert_eq!(
            home_site(&d, "carol@contoso.example").as_deref(),
            Some("eu")
        );
        assert_eq!(effective(&d, "carol@contoso.example").policy, "site:eu");
    }

    #[test]
    fn a_flag_change_names_exactly_the_users_it_moves() {
        let before = doc(
            json!([policy("global", true), policy("site:eu", false)]),
            json!([]),
        );
        let after = doc(
            json!([policy("global", true), policy("site:eu", true)]),
            json!([]),
        );
        let moved: Vec<String> = access_changes(Some(&before), &after)
            .into_iter()
            .map(|c| c.user)
            .collect();
        assert_eq!(moved, vec!["carol@contoso.example"]);
        assert!(access_changes(Some(&after), &after).is_empty());
        // Nothing published yet: everyone is new, the others included.
        let fresh = access_changes(None, &after);
        assert_eq!(fresh.len(), 4);
        assert_eq!(fresh[3].user, "(every other user)");
    }
}

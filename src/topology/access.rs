//! Effective external access: which policy applies to a user under a
//! [`Topology`], and whose access differs between two of them. Pure, so
//! the plan can say whose access a change moves before anything is
//! applied.
//!
//! The precedence is Lync's, and the gateway's (`xfed_gateway::policy`):
//! a grant naming the user, then a grant to all users, then the policy of
//! the site the user is homed on (the first site, in document order, served
//! by the front-end pool listing the user, as the gateway's `[[sites]]`
//! has it), then `global`, then the built-in default with every flag off.
//! Names are compared exactly, as the gateway compares them. What a
//! policy means for a partner depends on the partner's kind, as in Lync:
//! `enable_xmpp_access`, then `enable_federation_access` for federated and
//! trusted partners or `enable_public_cloud_access` for public ones; the
//! first flag found off decides. Both implementations are tested against
//! one table of cases, `tests/fixtures/effective_access.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::document::{Policy, Topology};
use crate::spec::{PartnerKind, PolicyScope, Users};

/// One flag of an external access policy (the gateway's `AccessFlag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccessFlag {
    #[serde(rename = "enable_xmpp_access")]
    Xmpp,
    #[serde(rename = "enable_federation_access")]
    Federation,
    #[serde(rename = "enable_public_cloud_access")]
    PublicCloud,
}

impl AccessFlag {
    /// The flag's name in the spec and the gateway's policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessFlag::Xmpp => "enable_xmpp_access",
            AccessFlag::Federation => "enable_federation_access",
            AccessFlag::PublicCloud => "enable_public_cloud_access",
        }
    }

    /// The flag a partner of `kind` needs besides `enable_xmpp_access`.
    pub fn for_kind(kind: PartnerKind) -> AccessFlag {
        match kind {
            PartnerKind::Federated | PartnerKind::Trusted => AccessFlag::Federation,
            PartnerKind::PublicVerified | PartnerKind::PublicUnverified => AccessFlag::PublicCloud,
        }
    }
}

impl std::fmt::Display for AccessFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a user may exchange stanzas with partners of one kind, and the
/// flag that decided: the first needed flag that is off, or the kind's own
/// flag when all are on (the gateway's `/access` reports the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartnerAccess {
    pub allowed: bool,
    pub decided_by: AccessFlag,
}

impl PartnerAccess {
    /// What a person reads: ``allowed (`enable_federation_access` on)``.
    pub fn describe(&self) -> String {
        if self.allowed {
            format!("allowed (`{}` on)", self.decided_by)
        } else {
            format!("refused (`{}` off)", self.decided_by)
        }
    }
}

/// Where the effective policy came from (the gateway's `PolicySource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    UserGrant,
    AllUsersGrant,
    Site,
    Global,
    Default,
}

impl Source {
    /// The name the gateway's `/access` reports, e.g. `user_grant`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::UserGrant => "user_grant",
            Source::AllUsersGrant => "all_users_grant",
            Source::Site => "site",
            Source::Global => "global",
            Source::Default => "default",
        }
    }
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
    /// What the flags mean for each partner kind (derived from them).
    #[serde(default)]
    pub partner_kinds: BTreeMap<PartnerKind, PartnerAccess>,
}

/// The identity `Effective` names when no policy applies.
pub const DEFAULT_POLICY: &str = "(default)";

impl Effective {
    fn of(p: &Policy, source: Source) -> Effective {
        Effective {
            policy: p.identity.clone(),
            source,
            enable_federation_access: p.enable_federation_access,
            enable_public_cloud_access: p.enable_public_cloud_access,
            enable_xmpp_access: p.enable_xmpp_access,
            partner_kinds: BTreeMap::new(),
        }
        .with_partner_kinds()
    }

    fn default_policy() -> Effective {
        Effective {
            policy: DEFAULT_POLICY.into(),
            source: Source::Default,
            enable_federation_access: false,
            enable_public_cloud_access: false,
            enable_xmpp_access: false,
            partner_kinds: BTreeMap::new(),
        }
        .with_partner_kinds()
    }

    fn with_partner_kinds(mut self) -> Effective {
        self.partner_kinds = PartnerKind::ALL
            .into_iter()
            .map(|kind| (kind, self.access(kind)))
            .collect();
        self
    }

    /// The value of one flag.
    pub fn flag(&self, flag: AccessFlag) -> bool {
        match flag {
            AccessFlag::Xmpp => self.enable_xmpp_access,
            AccessFlag::Federation => self.enable_federation_access,
            AccessFlag::PublicCloud => self.enable_public_cloud_access,
        }
    }

    /// Whether the user may exchange stanzas with a partner of `kind`:
    /// `enable_xmpp_access`, then the kind's own flag; the first one off
    /// decides.
    pub fn access(&self, kind: PartnerKind) -> PartnerAccess {
        let own = AccessFlag::for_kind(kind);
        match [AccessFlag::Xmpp, own]
            .into_iter()
            .find(|&flag| !self.flag(flag))
        {
            Some(flag) => PartnerAccess {
                allowed: false,
                decided_by: flag,
            },
            None => PartnerAccess {
                allowed: true,
                decided_by: own,
            },
        }
    }

    /// What a person reads: ``policy `FedPic` (granted to all users)``.
    pub fn describe(&self) -> String {
        let how = match self.source {
            Source::UserGrant => "granted to the user",
            Source::AllUsersGrant => "granted to all users",
            Source::Site => "site policy",
            Source::Global => "global policy",
            Source::Default => "no policy applies",
        };
        format!("policy `{}` ({how})", self.policy)
    }
}

/// The partner kinds that depend on the same flag, in report order:
/// federated and trusted partners (`enable_federation_access`), then
/// public ones (`enable_public_cloud_access`).
pub fn kind_groups() -> Vec<(AccessFlag, Vec<PartnerKind>)> {
    let mut groups: Vec<(AccessFlag, Vec<PartnerKind>)> = Vec::new();
    for kind in PartnerKind::ALL {
        let flag = AccessFlag::for_kind(kind);
        match groups.iter_mut().find(|(f, _)| *f == flag) {
            Some((_, kinds)) => kinds.push(kind),
            None => groups.push((flag, vec![kind])),
        }
    }
    groups
}

/// The site `user` is homed on: the first site served by the first
/// front-end pool that lists them.
pub fn home_site<'t>(doc: &'t Topology, user: &str) -> Option<&'t str> {
    let pool = doc
        .frontend_pools
        .iter()
        .find(|p| p.users.iter().any(|u| u == user))?;
    doc.sites
        .iter()
        .find(|s| s.frontend_pool == pool.name)
        .map(|s| s.name.as_str())
}

/// The effective policy of `user` (a bare JID in normal form) under `doc`.
pub fn effective(doc: &Topology, user: &str) -> Effective {
    let defined = |identity: &str| doc.policies.iter().find(|p| p.identity == identity);
    // A grant of an undefined policy grants nothing (the gateway skips it).
    let granted = |covers: &dyn Fn(&Users) -> bool| {
        doc.grants
            .iter()
            .filter(|g| covers(&g.users))
            .find_map(|g| defined(&g.policy))
    };
    let by_user = || granted(&|u| matches!(u, Users::List(l) if l.iter().any(|x| x == user)));
    let by_all = || granted(&|u| *u == Users::All);
    let by_site = || {
        let site = home_site(doc, user)?;
        doc.policies
            .iter()
            .find(|p| matches!(&p.scope, PolicyScope::Site(s) if s == site))
    };
    let global = || doc.policies.iter().find(|p| p.scope == PolicyScope::Global);
    by_user()
        .map(|p| Effective::of(p, Source::UserGrant))
        .or_else(|| by_all().map(|p| Effective::of(p, Source::AllUsersGrant)))
        .or_else(|| by_site().map(|p| Effective::of(p, Source::Site)))
        .or_else(|| global().map(|p| Effective::of(p, Source::Global)))
        .unwrap_or_else(Effective::default_policy)
}

/// Every user a document names: homed on a pool or granted a policy.
pub fn known_users(doc: &Topology) -> Vec<String> {
    let mut users: Vec<String> = doc
        .frontend_pools
        .iter()
        .flat_map(|p| p.users.iter())
        .chain(doc.grants.iter().flat_map(|g| match &g.users {
            Users::List(l) => l.as_slice(),
            Users::All => &[],
        }))
        .cloned()
        .collect();
    users.sort();
    users.dedup();
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

/// The pseudo-user of [`AccessChange`] for everyone not named.
pub const OTHER_USERS: &str = "(every other user)";

/// Whose effective access changes from `live` (absent: nothing published)
/// to `desired`. A change of policy identity with equal flags counts too:
/// the user is then governed by another object.
pub fn access_changes(live: Option<&Topology>, desired: &Topology) -> Vec<AccessChange> {
    let mut users = known_users(desired);
    if let Some(l) = live {
        users.extend(known_users(l));
        users.sort();
        users.dedup();
    }
    // Nobody is named `(every other user)`: `effective` resolves it like
    // any user without a grant or a home.
    users.push(OTHER_USERS.into());
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
    use crate::topology::document::{FrontendPool, Grant, Site};

    fn doc(policies: Vec<Policy>, grants: Vec<Grant>) -> Topology {
        let site = |name: &str, pool: &str| Site {
            name: name.into(),
            frontend_pool: pool.into(),
            xmpp_route: String::new(),
        };
        let pool = |name: &str, users: &[&str]| FrontendPool {
            name: name.into(),
            servers: Vec::new(),
            users: users.iter().map(|u| u.to_string()).collect(),
            xmpp_server: None,
            ssh: Default::default(),
        };
        Topology {
            version: String::new(),
            sip_domains: Vec::new(),
            xmpp_domains: vec!["contoso.example".into()],
            sites: vec![site("hq", "fe-hq"), site("eu", "fe-eu")],
            frontend_pools: vec![
                pool("fe-hq", &["alice@contoso.example", "bob@contoso.example"]),
                pool("fe-eu", &["carol@contoso.example"]),
            ],
            edge_pools: Vec::new(),
            policies,
            grants,
            partners: Vec::new(),
        }
    }

    fn policy(identity: &str, xmpp: bool) -> Policy {
        let scope = if identity == "global" {
            PolicyScope::Global
        } else if let Some(site) = identity.strip_prefix("site:") {
            PolicyScope::Site(site.into())
        } else {
            PolicyScope::Named(identity.into())
        };
        Policy {
            identity: identity.into(),
            scope,
            enable_federation_access: true,
            enable_public_cloud_access: false,
            enable_xmpp_access: xmpp,
        }
    }

    fn grant(policy: &str, users: &[&str]) -> Grant {
        Grant {
            policy: policy.into(),
            users: Users::List(users.iter().map(|u| u.to_string()).collect()),
        }
    }

    #[test]
    fn a_pool_serving_two_sites_homes_its_users_on_the_first() {
        let mut d = doc(
            vec![policy("site:eu", false), policy("site:dr", true)],
            vec![],
        );
        d.sites = vec![
            Site {
                name: "eu".into(),
                frontend_pool: "fe-eu".into(),
                xmpp_route: String::new(),
            },
            Site {
                name: "dr".into(),
                frontend_pool: "fe-eu".into(),
                xmpp_route: String::new(),
            },
        ];
        assert_eq!(home_site(&d, "carol@contoso.example"), Some("eu"));
        assert_eq!(effective(&d, "carol@contoso.example").policy, "site:eu");
    }

    #[test]
    fn a_grant_of_an_undefined_policy_grants_nothing() {
        let d = doc(
            vec![policy("global", false), policy("Wide", true)],
            vec![
                grant("Missing", &["alice@contoso.example"]),
                Grant {
                    policy: "Wide".into(),
                    users: Users::All,
                },
            ],
        );
        let e = effective(&d, "alice@contoso.example");
        assert_eq!(
            (e.policy.as_str(), e.source),
            ("Wide", Source::AllUsersGrant)
        );
    }

    #[test]
    fn a_flag_change_names_exactly_the_users_it_moves() {
        let before = doc(
            vec![policy("global", true), policy("site:eu", false)],
            vec![],
        );
        let after = doc(
            vec![policy("global", true), policy("site:eu", true)],
            vec![],
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
        assert_eq!(fresh[3].user, OTHER_USERS);
    }
}

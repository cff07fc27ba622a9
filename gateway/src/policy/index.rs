//! The policies of one configuration, indexed by user for resolution.
//!
//! Built once per configuration generation (the lists it indexes can hold
//! thousands of users, and relaying will resolve per stanza), then only read.

use super::access_error::AccessError;
use super::effective::EffectivePolicy;
use super::source::PolicySource;
use crate::config::{BareJid, Config, Grantees, PartnerKind, Policy, PolicyScope};
use std::collections::HashMap;

/// Everything precedence needs, by user.
#[derive(Debug, Clone, Default)]
pub struct PolicyIndex {
    domains: Vec<String>,
    policies: Vec<Policy>,
    /// User → index in `policies` of the policy granted to them by name.
    granted: HashMap<BareJid, usize>,
    /// The policy granted with `all = true`.
    all_users: Option<usize>,
    /// User → home site.
    home_sites: HashMap<BareJid, String>,
    /// Site name → its `site:NAME` policy.
    site_policies: HashMap<String, usize>,
    /// The `global` policy.
    global: Option<usize>,
    /// Partner domain (`domain` or one of `additional_domains`) → its kind.
    partners: HashMap<String, PartnerKind>,
}

impl PolicyIndex {
    /// Indexes `config`. Where the config reader would have refused an
    /// ambiguity (two grants for one user, two home sites), the first in
    /// file order wins, so the result never depends on hashing.
    pub fn new(config: &Config) -> PolicyIndex {
        let policies = config.policies.clone();
        let position = |identity: &str| policies.iter().position(|p| p.identity == identity);
        let mut granted = HashMap::new();
        let mut all_users = None;
        for grant in &config.grants {
            let Some(i) = position(&grant.policy) else {
                continue;
            };
            match &grant.grantees {
                Grantees::All => {
                    all_users = all_users.or(Some(i));
                }
                Grantees::Users(users) => {
                    for user in users {
                        granted.entry(user.clone()).or_insert(i);
                    }
                }
            }
        }
        let mut home_sites = HashMap::new();
        for site in &config.sites {
            for user in &site.users {
                home_sites
                    .entry(user.clone())
                    .or_insert_with(|| site.name.clone());
            }
        }
        let mut site_policies = HashMap::new();
        let mut global = None;
        for (i, p) in policies.iter().enumerate() {
            match &p.scope {
                PolicyScope::Site(name) => {
                    site_policies.entry(name.clone()).or_insert(i);
                }
                PolicyScope::Global => global = global.or(Some(i)),
                PolicyScope::User => {}
            }
        }
        let mut partners = HashMap::new();
        for partner in &config.partners {
            for domain in std::iter::once(&partner.domain).chain(&partner.additional_domains) {
                partners.entry(domain.clone()).or_insert(partner.kind);
            }
        }
        PolicyIndex {
            partners,
            domains: config.domains.clone(),
            policies,
            granted,
            all_users,
            home_sites,
            site_policies,
            global,
        }
    }

    /// The effective policy of the user `address` names (a bare or full
    /// JID, any case, a trailing dot allowed).
    pub fn resolve(&self, address: &str) -> Result<EffectivePolicy, AccessError> {
        let user = BareJid::from_address(address).map_err(|source| AccessError::InvalidUser {
            user: address.to_string(),
            source,
        })?;
        self.resolve_user(user)
    }

    /// The effective policy of `user`, or why it has none.
    pub fn resolve_user(&self, user: BareJid) -> Result<EffectivePolicy, AccessError> {
        if !self.domains.iter().any(|d| d == user.domain()) {
            return Err(AccessError::NotOurs {
                user,
                domains: self.domains.clone(),
            });
        }
        let site = self.home_sites.get(&user).cloned();
        let site_policy = site
            .as_ref()
            .and_then(|name| self.site_policies.get(name).copied());
        let winner = [
            (PolicySource::UserGrant, self.granted.get(&user).copied()),
            (PolicySource::AllUsersGrant, self.all_users),
            (PolicySource::Site, site_policy),
            (PolicySource::Global, self.global),
        ]
        .into_iter()
        .find_map(|(source, i)| Some((source, self.policies.get(i?)?)));
        Ok(match winner {
            Some((source, policy)) => EffectivePolicy::of(user, site, source, policy),
            None => EffectivePolicy::default_for(user, site),
        })
    }

    /// The site `[[sites]]` homes `user` on, if any.
    pub fn home_site(&self, user: &BareJid) -> Option<&str> {
        self.home_sites.get(user).map(String::as_str)
    }

    /// The kind of the partner `domain` (normalised, as a stream's
    /// addresses are), or `None` when it is not one of `[[partners]]`.
    pub fn partner_kind(&self, domain: &str) -> Option<PartnerKind> {
        self.partners.get(domain).copied()
    }

    /// Number of users homed on a site.
    pub fn site_users(&self) -> usize {
        self.home_sites.len()
    }

    /// Number of users named by a grant.
    pub fn granted_users(&self) -> usize {
        self.granted.len()
    }
}

//! One user's effective external access policy.

use super::access_flag::{AccessFlag, PartnerAccess};
use super::source::PolicySource;
use crate::config::{BareJid, PartnerKind, Policy};

/// The policy that applies to one of our users, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectivePolicy {
    /// The user (bare, normalised).
    pub user: BareJid,
    /// The applying policy's `identity`; `None` for the built-in default.
    pub identity: Option<String>,
    /// The precedence level it won at.
    pub source: PolicySource,
    /// The user's home site, if `[[sites]]` homes them (reported even when
    /// a grant outranks the site's policy).
    pub site: Option<String>,
    /// Communication with federated partners.
    pub enable_federation_access: bool,
    /// Communication with public cloud services.
    pub enable_public_cloud_access: bool,
    /// Communication with XMPP partners.
    pub enable_xmpp_access: bool,
}

impl EffectivePolicy {
    /// `policy` applying to `user` from `source`.
    pub(crate) fn of(
        user: BareJid,
        site: Option<String>,
        source: PolicySource,
        policy: &Policy,
    ) -> EffectivePolicy {
        EffectivePolicy {
            user,
            identity: Some(policy.identity.clone()),
            source,
            site,
            enable_federation_access: policy.enable_federation_access,
            enable_public_cloud_access: policy.enable_public_cloud_access,
            enable_xmpp_access: policy.enable_xmpp_access,
        }
    }

    /// The built-in default: no policy configured applies, nothing is allowed.
    pub(crate) fn default_for(user: BareJid, site: Option<String>) -> EffectivePolicy {
        EffectivePolicy {
            user,
            identity: None,
            source: PolicySource::Default,
            site,
            enable_federation_access: false,
            enable_public_cloud_access: false,
            enable_xmpp_access: false,
        }
    }

    /// Whether `enable_xmpp_access` is on: necessary for every partner,
    /// sufficient for none (see [`EffectivePolicy::access`]).
    pub fn xmpp_federation_allowed(&self) -> bool {
        self.enable_xmpp_access
    }

    /// The value of one flag.
    pub fn flag(&self, flag: AccessFlag) -> bool {
        match flag {
            AccessFlag::Xmpp => self.enable_xmpp_access,
            AccessFlag::Federation => self.enable_federation_access,
            AccessFlag::PublicCloud => self.enable_public_cloud_access,
        }
    }

    /// Whether the user may exchange stanzas with a partner of `kind`, as
    /// Lync has it: `enable_xmpp_access`, and then the kind's own flag
    /// (`enable_federation_access` for federated and trusted partners,
    /// `enable_public_cloud_access` for public ones).
    pub fn access(&self, kind: PartnerKind) -> PartnerAccess {
        [AccessFlag::Xmpp, AccessFlag::for_kind(kind)]
            .into_iter()
            .find(|&flag| !self.flag(flag))
            .map_or(
                PartnerAccess {
                    allowed: true,
                    decided_by: AccessFlag::for_kind(kind),
                },
                |flag| PartnerAccess {
                    allowed: false,
                    decided_by: flag,
                },
            )
    }
}

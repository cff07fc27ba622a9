//! The three switches of an external access policy, and which of them a
//! partner's kind depends on (Lync's ExternalAccessPolicy).

use crate::config::PartnerKind;

/// One flag of an external access policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccessFlag {
    /// `enable_xmpp_access`: communication with XMPP partners at all.
    Xmpp,
    /// `enable_federation_access`: federated and trusted partners.
    Federation,
    /// `enable_public_cloud_access`: public providers, verified or not.
    PublicCloud,
}

impl AccessFlag {
    /// Every flag, in report order.
    pub const ALL: [AccessFlag; 3] = [
        AccessFlag::Xmpp,
        AccessFlag::Federation,
        AccessFlag::PublicCloud,
    ];

    /// The flag's name in the policy file, `/access`, the log and `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessFlag::Xmpp => "enable_xmpp_access",
            AccessFlag::Federation => "enable_federation_access",
            AccessFlag::PublicCloud => "enable_public_cloud_access",
        }
    }

    /// The flag a partner of `kind` needs besides `enable_xmpp_access`:
    /// federation for `federated` and `trusted`, public cloud for
    /// `public_verified` and `public_unverified`.
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

/// Whether a user may exchange stanzas with a partner of some kind, and
/// the flag that decided it: the first flag found off, or, when every
/// needed flag is on, the kind's own flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartnerAccess {
    /// Allowed or not.
    pub allowed: bool,
    /// The flag that decided.
    pub decided_by: AccessFlag,
}

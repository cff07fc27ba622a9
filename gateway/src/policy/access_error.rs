//! Why no effective policy can be given for an address.

use crate::config::{BareJid, JidError};

/// Why an address has no effective policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The address is not a user's JID at all.
    #[error("{source}")]
    InvalidUser {
        /// As given.
        user: String,
        /// What is wrong with it.
        source: JidError,
    },
    /// A user of a domain the gateway does not front: not ours to decide.
    #[error("`{user}` is not one of our users: `{}` is not in `domains` ({})", user.domain(), domains.join(", "))]
    NotOurs {
        /// The user, normalised.
        user: BareJid,
        /// Our domains.
        domains: Vec<String>,
    },
}

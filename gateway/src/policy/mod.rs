//! External access policy resolution: which policy applies to one of our
//! users, and why.
//!
//! Owns the precedence Lync applies to ExternalAccessPolicy, as a pure
//! function of the loaded configuration: a grant naming the user, else a
//! grant to all users, else the policy of the user's home site
//! (`[[sites]]`), else the `global` policy, else the built-in default with
//! every flag false. It reads no files and opens no sockets; the
//! configuration arrives validated (at most one explicit grant per user,
//! one grant to all, one home site per user, every granted policy defined).
//! `/access` reports it, and the stream layer consults the same index for
//! every relayed stanza's local user and partner (`decide`; README,
//! "Per-user policy"): `enable_xmpp_access`, then the flag of the
//! partner's kind ([`AccessFlag::for_kind`]).

mod access_error;
mod access_flag;
mod effective;
mod index;
mod source;
mod verdict;

pub use access_error::AccessError;
pub use access_flag::{AccessFlag, PartnerAccess};
pub use effective::EffectivePolicy;
pub use index::PolicyIndex;
pub use source::PolicySource;
pub use verdict::{DenialCause, DenialReply, Direction, Verdict, decide};

#[cfg(test)]
mod tests;

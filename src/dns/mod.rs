//! DNS records for XMPP federation, the pure domain rules: which records
//! the spec wants, how xfed marks the records it owns, and what must be
//! refused. No I/O here, and no plan vocabulary: deciding a zone into
//! [`crate::plan::Change`]s is `plan::dns_decide`/`plan::dns_plan`,
//! reading zones is `engine::dns`, writing them `apply::dns` through a
//! `providers::dns` provider, resolving the result `verify::dns`.
//!
//! The pieces:
//! - [`rrset`]: the [`RRset`] value and normalisation (names absolute and
//!   lower case, content exactly as PowerDNS returns it);
//! - [`desired`]: records derived from the edge pools plus explicit ones,
//!   zone by zone ([`desired::desired`]);
//! - [`owner`]: the ownership-marker scheme that keeps xfed's hands off
//!   records it did not write;
//! - [`guard`] and [`checks`]: the mass-change guard, the no-target check
//!   and the plan-time cross-checks against certificates and listeners,
//!   each a [`Finding`].

pub mod checks;
pub mod desired;
pub mod finding;
pub mod guard;
pub mod owner;
pub mod rrset;

pub use checks::cross_checks;
pub use desired::{Derived, DesiredRRset, ZoneRecords, derive, desired};
pub use finding::{Finding, Level};
pub use guard::{mass_change_guard, no_target_check};
pub use owner::managed_set;
pub use rrset::{RRset, RRsetOp};

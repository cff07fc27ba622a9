//! DNS records for XMPP federation (design.md §1 step 23), the pure part:
//! which records the spec wants, how they compare with a zone's, and what
//! must be refused. No I/O here — `providers::dns` reads and writes zones
//! (and holds the async entry points), `verify::dns` resolves the result.
//!
//! The pieces, in pipeline order:
//! - [`rrset`]: the [`RRset`] value and normalisation (names absolute and
//!   lower case, content exactly as PowerDNS returns it);
//! - [`desired`]: records derived from the edge pools plus explicit ones,
//!   zone by zone ([`desired::desired`]);
//! - [`owner`]: the ownership-marker scheme that keeps xfed's hands off
//!   records it did not write;
//! - [`decide`]: one zone's desired + observed RRsets → `dns_record`
//!   [`crate::plan::Change`]s and provider operations;
//! - [`guard`] and [`checks`]: the mass-change guard, the no-target check
//!   and the plan-time cross-checks against certificates and listeners;
//! - [`plan`]: [`DnsPlan`], every zone decided.
//!
//! Entry points for the engine:
//! ```ignore
//! let provider = xfed::providers::dns::provider_for(&spec)?;      // Box<dyn DnsProvider>
//! let plan = xfed::providers::dns::plan_dns(&spec, provider.as_ref()).await?; // reads only
//! plan.changes();                       // Vec<Change>, kind dns_record / dns_zone, Phase::Dns
//! plan.refusals(allow_mass_change);     // non-empty → do not apply
//! xfed::providers::dns::apply_dns(provider.as_ref(), &plan, allow_mass_change).await?;
//! xfed::verify::dns::verify_dns(&spec).await;  // Vec<VerifyRow>
//! ```

pub mod checks;
pub mod decide;
pub mod desired;
pub mod finding;
pub mod guard;
pub mod owner;
pub mod plan;
pub mod rrset;

pub use checks::cross_checks;
pub use decide::{ZoneDecision, decide};
pub use desired::{Derived, DesiredRRset, ZoneRecords, derive, desired};
pub use finding::{Finding, Level};
pub use guard::{mass_change_guard, no_target_check};
pub use owner::managed_set;
pub use plan::{DnsPlan, ZoneObservation, ZonePlan, build};
pub use rrset::{RRset, RRsetOp};

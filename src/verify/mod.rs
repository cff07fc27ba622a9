//! Verify: probes of the deployed result as a user (or an outside XMPP
//! server) would see it — `listeners` (every listener on the host and from
//! outside), `topology` (every server holds the spec's topology), `dns`
//! (the records at their authoritative servers) and `doctor` (the Lync
//! troubleshooting guide's checks, in its order). Reads only, through
//! `engine/`; never changes anything.

pub mod dns;
pub mod doctor;
pub mod listeners;
pub mod report;
pub mod topology;

pub use listeners::{VerifyRow, verify_listeners};

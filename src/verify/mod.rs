//! Verify: probes of the deployed result from outside, as a user (or an
//! outside XMPP server) would see it. Reads only; never changes anything.
//! `dns` resolves the zone's records at their authoritative servers;
//! `topology` checks every server holds the topology the spec gives.

pub mod dns;
pub mod doctor;
pub mod topology;

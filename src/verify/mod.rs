//! Verify: probes of the deployed result from outside, as a user (or an
//! outside XMPP server) would see it. Reads only; never changes anything.
//! `dns` resolves the zone's records at their authoritative servers.

pub mod dns;

//! Issuers: where a certificate's chain comes from — a CSR waiting for a
//! public CA, an internal CA that signs in memory, or an ACME CA reached
//! with DNS-01 through the DNS provider ([`acme`]). [`issue`] produces the
//! material for one certificate on one host.

pub mod acme;
pub mod issue;

pub use issue::{IssueContext, Issued, issue};

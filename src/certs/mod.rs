//! Certificates, the pure domain rules: the edge's external and internal
//! certificates from desired state to what a chain must hold.
//!
//! Tested without a network:
//! - [`dn`]: the subject DN from the spec (`CN`, `O`, `OU`, `L`, `ST`, `C`);
//! - [`key`]: key generation per [`KeySpec`](crate::spec::KeySpec);
//! - [`build`]: CSRs, CA signing and placeholders with rcgen;
//! - [`parse`]: reading certificates and CSRs with x509-parser;
//! - [`renewal`]: when a certificate is due for renewal;
//! - [`resource`]: the `certificate` resource's desired state and facts.
//!
//! Deciding a certificate into a change is `plan::certificate`; issuing one
//! (a CSR for a public CA, an internal CA, ACME) is `providers::issuer`;
//! `xfed cert` is `commands::cert`.
//!
//! Key material never leaves memory except towards the host it belongs to;
//! every private key is registered with the spec's `Redactor` as soon as it
//! exists, so no output can carry it.

pub mod build;
pub mod dn;
pub mod key;
pub mod parse;
pub mod renewal;
pub mod resource;

pub use renewal::{Renewal, renewal};
pub use resource::{CertFact, CertSpec, CertState};

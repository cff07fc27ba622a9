//! Certificates (design.md §1 steps 6–21): the edge's external and internal
//! certificates, from desired state to an installed, renewed chain.
//!
//! The pure part lives here and is tested without a network:
//! - [`dn`]: the subject DN from the spec (`CN`, `O`, `OU`, `L`, `ST`, `C`);
//! - [`key`]: key generation per [`KeySpec`](crate::spec::KeySpec);
//! - [`build`]: CSRs, CA signing and placeholders with rcgen;
//! - [`parse`]: reading certificates and CSRs with x509-parser;
//! - [`renewal`]: when a certificate is due for renewal;
//! - [`resource`]: the `certificate` resource's desired state and facts;
//! - [`decide`]: desired + facts → a [`crate::plan::Change`].
//!
//! The I/O edge sits beside it and is named so: [`issue`] produces the
//! material for one certificate (an internal CA signs in memory, ACME talks
//! to the CA through [`acme`]), [`commands`] backs `xfed cert`.
//!
//! Key material never leaves memory except towards the host it belongs to;
//! every private key is registered with the spec's `Redactor` as soon as it
//! exists, so no output can carry it.

pub mod acme;
pub mod build;
pub mod commands;
pub mod decide;
pub mod dn;
pub mod issue;
pub mod key;
pub mod parse;
pub mod renewal;
pub mod resource;

pub use decide::decide_certificate;
pub use renewal::{Renewal, renewal};
pub use resource::{CertFact, CertSpec, CertState};

//! xfed: a declarative plan/apply orchestrator for an XMPP federation edge.
//!
//! The pipeline (design.md §2): `spec` loads and resolves the YAML, `modules`
//! expand it into primitive resources, `transport` and `providers` read the
//! live world, `plan` decides and renders the changes, `apply` carries them
//! out and `verify` probes the result. The core (`spec`, `plan`) does no I/O.

pub mod apply;
pub mod certs;
pub mod dns;
pub mod modules;
pub mod plan;
pub mod providers;
pub mod secret;
pub mod spec;
pub mod topology;
pub mod transport;
pub mod verify;

//! Modules: the Rust side of `modules/NAME/` — manifest loading and the
//! expansion of a spec into primitive resources for every host of a role.
//!
//! A module never reaches into another's internals; it sees the resolved
//! spec and the facts handed to it, nothing else. Certificates expand here
//! too (`certificate` resources on the edge servers of their pool); DNS
//! records do not: they live behind a provider, not on a host, and are
//! decided in `plan::dns_plan`.

pub mod expand;
pub mod library;
pub mod manifest;

pub use expand::{Artifact, ExpandError, HostFacts, expand, topology};

//! Modules: the Rust side of `modules/NAME/` — manifest loading and the
//! expansion of a spec into primitive resources for every host of a role.
//!
//! A module never reaches into another's internals; it sees the resolved
//! spec and the facts handed to it, nothing else. Certificates and DNS
//! records will expand here as further kinds (their own issues).

pub mod contract;
pub mod expand;
pub mod library;
pub mod manifest;
mod toml_filter;

pub use expand::{Artifact, ExpandError, HostFacts, expand, topology};

//! Modules: the Rust side of `modules/NAME/` — manifest loading and the
//! expansion of a spec into primitive resources for every host of a role.
//!
//! A module never reaches into another's internals; it sees the resolved
//! spec, the typed topology built from it and the facts handed to it,
//! nothing else. Every value a template writes into a consumer's format is
//! escaped by a filter (`toml`, `lua`, `tojson`), and a file a consumer can check
//! is loaded by that consumer's own code as rendered (`contract`) before
//! it is planned. Certificates expand here too (`certificate` resources on
//! the servers of their pool: edge servers, or the front-ends of a pool
//! whose XMPP server xfed manages); DNS records do not: they live behind a
//! provider, not on a host, and are decided in `plan::dns_plan`.

pub mod contract;
pub mod expand;
pub mod library;
mod lua_filter;
pub mod manifest;
mod toml_filter;

pub use expand::{Artifact, ExpandError, HostFacts, expand};

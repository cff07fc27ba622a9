//! The published topology: one typed document, the contract between xfed,
//! the front-ends (which hold it as `topology.json`, the source of truth as
//! the Lync management store is) and the gateways (whose `policy.toml`
//! mirrors its policies, grants, partners and sites).
//!
//! Owns the document's shape ([`Topology`], built from a resolved spec,
//! serialized to JSON for the front-ends and read back by the same type)
//! and the one computation of a user's effective external access
//! ([`access`]); and each front-end pool's outbound route to the edge
//! ([`RouteTable`]), for the XMPP server xfed manages there. Pure: it uses `spec` and nothing else of ours, and never
//! reads a file or a host; what was published is handed to it as text.

pub mod access;
pub mod document;
pub mod route_table;

pub use access::{AccessChange, Effective, Source, access_changes, effective};
pub use document::{
    EdgePool, EdgeServer, External, FrontendPool, Grant, Partner, Policy, Site, Srv, SshRecord,
    Topology, build,
};
pub use route_table::{RouteTable, RouteTarget};

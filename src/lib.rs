//! xfed: a declarative plan/apply orchestrator for an XMPP federation edge.
//!
//! The layers, top to bottom (docs/architecture.md; `tests/arrows.rs`
//! fails when an arrow points back up):
//! - `commands`: one file per CLI command; `main.rs` only parses and
//!   dispatches;
//! - `apply` (carries out a plan) and `verify` (probes the result);
//! - `engine`: the read pipeline, once — connect, build, expand, observe;
//! - `modules` (manifests → resources) and `providers` (DNS, issuers);
//! - `output`: the progress printer and the renderers;
//! - `plan`: the pure core — resources, decisions, stages, saved plans;
//! - `certs`, `dns`: pure domain rules; `spec`: YAML → resolved spec;
//! - `transport`: SSH and local execution behind one trait; `secret`.

pub mod apply;
pub mod certs;
pub mod commands;
pub mod digest;
pub mod dns;
pub mod engine;
pub mod modules;
pub mod output;
pub mod plan;
pub mod providers;
pub mod secret;
pub mod spec;
pub mod topology;
pub mod transport;
pub mod verify;

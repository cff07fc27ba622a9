//! Plan: resources, decisions, ordering and rendering — the pure core.
//!
//! Owns what a change *is* and how it is shown. Must not do I/O: facts come
//! in as values from `apply::observe`, and the plan goes out as a value to
//! `apply::execute` or to a renderer.

/// Effective access is computed once, by the topology; the plan reports it.
pub use crate::topology::access;
pub mod action;
pub mod change;
pub mod diff;
pub mod graph;
#[allow(clippy::module_inception)]
pub mod plan;
pub mod render;
pub mod resource;
pub mod saved;
pub mod topology;

pub use action::Action;
pub use change::{AttrChange, Change, ServiceOp};
pub use plan::{Plan, Stage, Summary, build};
pub use resource::*;

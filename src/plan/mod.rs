//! Plan: resources, decisions and ordering — the pure core.
//!
//! Owns what a change *is*: the closed [`Action`] and [`StageKind`] enums,
//! [`Change`], the diff of every resource kind (files, binaries, services,
//! listeners in `diff`; certificates in `certificate`; DNS zones in
//! `dns_decide`/`dns_plan`; the published topology in `topology` and
//! `access`; servers that left the spec in `decommission`), the stages (`plan`, `assemble`) and saved plans. Must not do
//! I/O: facts come in as values from `engine/`, and the plan goes out as a
//! value to `apply/` or to a renderer in `output/`.

/// Effective access is computed once, by the topology; the plan reports it.
pub use crate::topology::access;
pub mod action;
pub mod assemble;
pub mod certificate;
pub mod change;
pub mod decommission;
pub mod diff;
pub mod dns_decide;
pub mod dns_plan;
pub mod kind;
pub mod listener;
#[allow(clippy::module_inception)]
pub mod plan;
pub mod reload_scope;
pub mod replace;
pub mod resource;
pub mod saved;
pub mod stage;
pub mod target;
pub mod topology;

pub use action::Action;
pub use certificate::decide_certificate;
pub use change::{AttrChange, Change, ServiceOp};
pub use decommission::Decommission;
pub use dns_plan::{DnsPlan, ZoneObservation, ZonePlan};
pub use kind::ResourceKind;
pub use listener::ListenerKind;
pub use plan::{Plan, Summary, build, build_rollout, short_address};
pub use reload_scope::{ReloadScope, notify_for};
pub use replace::Replace;
pub use resource::*;
pub use stage::{Stage, StageKind};
pub use target::Target;

//! Apply: carries out a plan — the ops per resource kind, rolling health
//! gates and rollback, the DNS writes, and the apply lock.
//!
//! Decisions are not made here (that is `plan/`) and the world is read
//! through `engine/`; this layer changes the world as the plan says,
//! nothing more.

pub mod dns;
pub mod execute;
pub mod lock;
pub mod service;
pub mod step_error;

pub use execute::{ApplyError, Report, execute, lock_all, unlock_all};

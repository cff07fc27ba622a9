//! Apply: the I/O side of a run — building the gateway, connecting, facts,
//! observation, the lock, and carrying out a plan with rolling health
//! gates and rollback.
//!
//! Decisions are not made here (that is `plan/`); this layer reads the
//! world for the planner and changes it as the plan says, nothing more.

pub mod build;
pub mod engine;
pub mod execute;
pub mod hosts;
pub mod lock;
pub mod observe;
pub mod probe;
pub mod progress;
pub mod service;

pub use engine::{EngineError, Options, Prepared, prepare};
pub use execute::{ApplyError, Report, VerifyRow, execute, lock_all, unlock_all, verify_listeners};
pub use progress::Progress;

//! Engine: the read pipeline, written once — connect to every host, build
//! the gateway, gather facts, expand the modules, observe every resource,
//! read the DNS zones, and hand the pure planner what it needs.
//!
//! `plan`, `drift`, `apply`, `verify`, `doctor` and `cert` all read the
//! world through here. The engine never changes a host: writes belong to
//! `apply/`. Every per-host task runs through [`fanout`], so a task that
//! panics is that host's failure, never a silently missing host.

pub mod build;
pub mod clock;
pub mod decommission;
pub mod dns;
pub mod fanout;
pub mod hosts;
pub mod libc_check;
pub mod notices;
pub mod observe;
pub mod prepare;
pub mod probe;
pub mod read;
pub mod readiness;

pub use fanout::TaskPanicked;
pub use fanout::fan_out;
pub use prepare::{DnsRun, EngineError, Options, Prepared, observe_all, observe_each, prepare};
pub use read::{ReadOptions, Scope, WorldRead, read_world};

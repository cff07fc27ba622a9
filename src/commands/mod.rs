//! Commands: one file per `xfed` subcommand, each with its clap arguments
//! and a `run` that returns an [`ExitStatus`]. `main.rs` only parses and
//! dispatches here.
//!
//! A command wires the layers together — load the spec, read the world
//! through `engine`, act through `apply` or `verify`, print through
//! `output` — and decides nothing a lower layer could.

pub mod apply;
pub mod cert;
pub mod doctor;
pub mod drift;
pub mod graph;
pub mod hosts;
pub mod plan;
pub mod schema;
pub mod ssh_keeper;
pub mod unlock;
pub mod validate;
pub mod verify;

mod error;
mod exit;
mod run;

pub use error::{CommandError, report};
pub use exit::ExitStatus;
pub use run::{Format, RunArgs};

//! What a command can fail with: the layers' own errors, passed through,
//! and the refusals a command makes itself. Printed by `main.rs` with the
//! chain of causes, each after a colon.

use crate::apply::ApplyError;
use crate::engine::EngineError;
use crate::spec::LoadError;
use crate::verify::doctor::DoctorError;

use super::cert::CertCommandError;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Cert(#[from] CertCommandError),
    #[error(transparent)]
    Doctor(#[from] DoctorError),
    /// The command refuses to go on; the message says why and what to do.
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl CommandError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CommandError {
        let what = what.into();
        move |source| CommandError::Io { what, source }
    }
}

/// `error`, then each cause after a colon (as `anyhow`'s `{:#}` prints it).
pub fn report(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

pub type Result<T> = std::result::Result<T, CommandError>;

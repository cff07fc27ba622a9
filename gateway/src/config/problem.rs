//! Configuration errors: every problem names the field it is about.
//!
//! Validation collects all problems before reporting, so an operator fixes a
//! config in one round trip. Messages follow the project style: the field in
//! backticks, what was expected, and a `hint:` where there is a fix.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with one field of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the field, e.g. `limits.max_stanza_bytes` or `partners[2].tls`.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// How to fix it, when there is an obvious fix.
    pub hint: Option<String>,
}

impl Problem {
    /// A problem without a hint.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            field: field.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file `{path}` is not valid TOML: {message}")]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// The TOML parser's message (includes line and column).
        message: String,
    },
    /// The file is valid TOML but some fields are wrong.
    #[error("config file `{path}` has {} problem(s):{}", problems.len(), ProblemList(problems))]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems as (field, message) pairs, for one log line each.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ConfigError::Read { source, .. } => vec![Problem::new("(file)", source.to_string())],
            ConfigError::Syntax { message, .. } => {
                vec![Problem::new("(syntax)", message.replace('\n', " "))]
            }
            ConfigError::Invalid { problems, .. } => problems.clone(),
        }
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

//! [`Finding`]: one problem found while deriving or cross-checking DNS
//! records at plan time, pointing at the spec line it comes from.
//!
//! Errors make [`super::DnsPlan::refusals`] refuse the plan; warnings are
//! shown and do not block.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub level: Level,
    /// `file:line` of the spec object concerned; empty when none.
    pub origin: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hint: Option<String>,
}

impl Finding {
    pub fn error(origin: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            level: Level::Error,
            origin: origin.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(origin: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            level: Level::Warning,
            ..Finding::error(origin, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Finding {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }
}

/// `file:line: error: message` and a `hint:` line, as spec diagnostics read.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        if self.origin.is_empty() {
            write!(f, "{level}: {}", self.message)?;
        } else {
            write!(f, "{}: {level}: {}", self.origin, self.message)?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

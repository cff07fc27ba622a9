//! The exit status of every command, defined once: what CI gates on.

use std::process::ExitCode;

/// How a command ended (Terraform's `-detailed-exitcode` convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done; nothing to change; all checks passed.
    Success,
    /// An error, a refusal, or a failed check.
    Failure,
    /// Changes present (`plan --detailed-exitcode`, `drift`).
    Changes,
}

impl ExitStatus {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Changes => 2,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        ExitCode::from(s.code())
    }
}

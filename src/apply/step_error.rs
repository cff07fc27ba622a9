//! What one step of an apply on one host can fail with. Each variant says
//! what failed in words an operator acts on; the apply's report lists them
//! per host, after the stage's name.

use crate::providers::issuer::issue::IssueError;
use crate::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Transport(Box<TransportError>),
    /// Writing one file failed (the path is named; the transport says why).
    #[error("`{path}`: {source}")]
    Write {
        path: String,
        #[source]
        source: Box<TransportError>,
    },
    #[error("cannot read `{path}`: {source}")]
    ReadLocal {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` changed since the plan was made")]
    ArtifactChanged { path: String },
    #[error("the binary on the host does not have the expected sha256 after upload")]
    UploadMismatch,
    #[error("no certificate was issued")]
    NotIssued,
    #[error(transparent)]
    Issue(Box<IssueError>),
    /// The host never showed these listeners within the gate's time.
    #[error("not listening after {secs}s: {}", .missing.join(", "))]
    NotListening { secs: u64, missing: Vec<String> },
    /// A probe from the orchestrator did not get the answer it needs.
    #[error("{0}")]
    Probe(String),
    #[error("after {secs}s: {last}")]
    GateTimeout {
        secs: u64,
        #[source]
        last: Box<StepError>,
    },
}

// Boxed: a transport error carries a host-key report, and a step's result
// travels through every call of the apply.
impl From<TransportError> for StepError {
    fn from(e: TransportError) -> StepError {
        StepError::Transport(Box::new(e))
    }
}

impl From<IssueError> for StepError {
    fn from(e: IssueError) -> StepError {
        StepError::Issue(Box::new(e))
    }
}

//! One decided change: what happens to a resource, why, and the diff.

use serde::{Deserialize, Serialize};

use super::action::Action;
use super::resource::Phase;

/// What to do with a service once files are in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceOp {
    Start,
    Restart,
    Reload,
}

/// An attribute that changes, e.g. `mode: 0644 → 0640`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrChange {
    pub name: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub address: String,
    pub host: String,
    pub pool: String,
    pub phase: Phase,
    pub kind: super::kind::ResourceKind,
    pub action: Action,
    /// Why: "absent", "content differs", "sha256 matches", …
    pub reason: String,
    /// Unified diff of text content (secrets masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attrs: Vec<AttrChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_op: Option<ServiceOp>,
    /// `file:line` of the spec object that causes this resource.
    pub origin: String,
    /// sha256 over the observed state this decision was made from; a saved
    /// plan is stale when it no longer matches.
    pub observed: String,
    /// sha256 over the desired state.
    pub desired: String,
}

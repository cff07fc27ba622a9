//! Saved plans (`plan -out FILE`): the plan plus what it was made from, so
//! `apply FILE` can refuse it when the world or the spec moved on.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::plan::Plan;

/// 2: stages carry a typed `kind` instead of a display name.
pub const FORMAT: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Marks the file as an xfed plan, and its format version.
    pub xfed_plan: u32,
    pub xfed_version: String,
    pub spec: PathBuf,
    pub spec_sha256: String,
    pub created_unix: u64,
    /// What `--replace` asked for; `apply` plans again with the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<super::replace::Replace>,
    /// The plan was made with `--allow-destroy`: it may destroy more than
    /// one server that left the spec.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_destroy: bool,
    pub plan: Plan,
}

/// Why a saved plan no longer describes what `apply` would do: each
/// resource it touches must have been observed in the same state and be
/// desired the same way, and nothing else may need a change now.
pub fn staleness(saved: &Plan, now: &Plan) -> Vec<String> {
    let mut why = Vec::new();
    for c in saved.changes.iter().filter(|c| c.action.is_change()) {
        match now.changes.iter().find(|n| n.address == c.address) {
            None => why.push(format!("{}: no longer in the spec", c.address)),
            Some(n) if n.observed != c.observed => why.push(format!(
                "{}: changed on the host since the plan was made",
                c.address
            )),
            Some(n) if n.desired != c.desired || n.action != c.action => {
                why.push(format!("{}: would now be changed differently", c.address))
            }
            Some(_) => {}
        }
    }
    for n in now.changes.iter().filter(|n| n.action.is_change()) {
        if !saved
            .changes
            .iter()
            .any(|c| c.address == n.address && c.action.is_change())
        {
            why.push(format!(
                "{}: needs a change the plan does not have ({})",
                n.address, n.reason
            ));
        }
    }
    why
}

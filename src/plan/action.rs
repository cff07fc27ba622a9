//! The closed set of things a plan can do to a resource.

use serde::{Deserialize, Serialize};

/// What happens to one resource, Terraform's vocabulary and symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    /// The symbol a Terraform user expects in front of the address.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }

    /// "will be created" and friends.
    pub fn verb(self) -> &'static str {
        match self {
            Action::NoOp => "is up to date",
            Action::Create => "will be created",
            Action::Update => "will be updated in-place",
            Action::Replace => "will be replaced",
            Action::Delete => "will be destroyed",
        }
    }

    pub fn is_change(self) -> bool {
        self != Action::NoOp
    }
}

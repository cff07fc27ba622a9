//! A stage of a plan: a group of hosts changed together. Stages run one
//! after another, in the manual procedure's order (decommission of what
//! left the spec → front-end → each edge pool in batches → DNS → policies
//! and routes → verify).
//!
//! What a stage *is* is a closed enum, [`StageKind`]: code branches on the
//! kind, never on the text a person reads.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a stage changes; its `Display` is the name a person reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StageKind {
    /// Servers that left the spec, each destroyed: its gateway stopped,
    /// the files xfed placed there removed.
    Decommission,
    /// Every front-end server at once.
    Frontend,
    /// One batch of an edge pool's servers (`batch` of `of`, from 1),
    /// behind a health gate.
    EdgeBatch {
        pool: String,
        batch: usize,
        of: usize,
    },
    /// The DNS provider's zones.
    Dns,
    /// Policies, grants, partners and routes in the published topology.
    Policies,
    /// Every listener checked.
    Verify,
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageKind::Decommission => f.write_str("decommission"),
            StageKind::Frontend => f.write_str("front-end"),
            StageKind::EdgeBatch { pool, batch, of } => write!(f, "{pool} {batch}/{of}"),
            StageKind::Dns => f.write_str("dns"),
            StageKind::Policies => f.write_str("policies and routes"),
            StageKind::Verify => f.write_str("verify"),
        }
    }
}

/// A group of hosts changed together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    #[serde(flatten)]
    pub kind: StageKind,
    /// Hosts (for DNS: zones) the stage touches.
    pub hosts: Vec<String>,
    /// Indices into [`Plan::changes`](super::Plan::changes), in execution
    /// order per host.
    pub changes: Vec<usize>,
    /// Whether each host's listeners must answer before the next stage.
    pub health_gate: bool,
}

impl Stage {
    /// The edge pool this stage rolls, if it is an edge batch.
    pub fn pool(&self) -> Option<&str> {
        match &self.kind {
            StageKind::EdgeBatch { pool, .. } => Some(pool),
            _ => None,
        }
    }

    /// The name a person reads: "front-end", "edge-hq 1/2", "dns", …
    pub fn name(&self) -> String {
        self.kind.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_json() {
        let s = Stage {
            kind: StageKind::EdgeBatch {
                pool: "edge-hq".into(),
                batch: 1,
                of: 2,
            },
            hosts: vec!["edge1".into()],
            changes: vec![0],
            health_gate: true,
        };
        assert_eq!(s.name(), "edge-hq 1/2");
        assert_eq!(s.pool(), Some("edge-hq"));
        let json = serde_json::to_value(&s).unwrap_or_default();
        assert_eq!(json["kind"], "edge_batch");
        assert_eq!(json["pool"], "edge-hq");
        let back: Stage = serde_json::from_value(json).expect("a stage reads back");
        assert_eq!(back, s);
        assert_eq!(StageKind::Policies.to_string(), "policies and routes");
    }
}

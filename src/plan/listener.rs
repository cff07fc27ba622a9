//! What a listener is for. The gateway has three, and the code that
//! probes, judges or reports them branches on this closed enum, never on
//! the name a module manifest spells.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A gateway listener's role; the manifest's `listener_check.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerKind {
    /// XMPP S2S towards the partners (5269), with the external certificate.
    External,
    /// XMPP S2S towards the internal server (23456).
    Internal,
    /// The admin HTTP listener: `/healthz`, `/status`, `/metrics`.
    Admin,
}

impl ListenerKind {
    /// Whether the listener speaks XMPP (and can be probed with a stream).
    pub fn is_xmpp(self) -> bool {
        !matches!(self, ListenerKind::Admin)
    }
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListenerKind::External => "external",
            ListenerKind::Internal => "internal",
            ListenerKind::Admin => "admin",
        })
    }
}

//! The per-user decision on one relayed stanza (README, "Per-user policy").
//!
//! Pure: the local user's resolution in, a verdict out. The local user is
//! the stanza's `to` when it comes from a partner (inbound) and its `from`
//! when it comes from our own server (outbound). A stanza addressed to or
//! from a bare domain (server-to-server traffic such as pings and disco of
//! the server itself) belongs to no user and is relayed.

use super::index::PolicyIndex;
use crate::config::BareJid;

/// Which way a stanza crosses the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From a partner to our server (external listener).
    Inbound,
    /// From our server to a partner (internal listener).
    Outbound,
}

impl Direction {
    /// Both, for metrics.
    pub const ALL: [Direction; 2] = [Direction::Inbound, Direction::Outbound];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// What the sender of a refused stanza is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialReply {
    /// `<service-unavailable/>` to the partner (hides whether the user exists).
    ServiceUnavailable,
    /// `<policy-violation/>` back to our own server.
    PolicyViolation,
}

/// The decision on one stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Relay it.
    Allowed,
    /// Do not relay it; answer with `reply`, or drop it silently (`None`).
    Denied {
        /// The user whose policy refused it (bare, normalised), for the log.
        user: String,
        /// The error to send back, if any.
        reply: Option<DenialReply>,
    },
}

impl Verdict {
    /// Label value in `/metrics`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied { .. } => "denied",
        }
    }
}

/// Decides on a stanza named `name` (`message`, `presence`, `iq`) whose
/// local user is `local` (a JID of ours), going `direction`;
/// `answerable` says whether the stanza may get an error reply at all.
pub fn decide(
    index: &PolicyIndex,
    direction: Direction,
    local: &str,
    name: &str,
    answerable: bool,
) -> Verdict {
    let bare = local.split_once('/').map_or(local, |(bare, _)| bare);
    if !bare.contains('@') {
        return Verdict::Allowed;
    }
    let (user, allowed) = match BareJid::from_address(local) {
        Ok(user) => {
            let allowed = index
                .resolve_user(user.clone())
                .is_ok_and(|p| p.xmpp_federation_allowed());
            (user.to_string(), allowed)
        }
        // Not a JID we can name: nobody's policy allows it.
        Err(_) => (bare.to_string(), false),
    };
    if allowed {
        return Verdict::Allowed;
    }
    let reply = (answerable && name != "presence").then_some(match direction {
        Direction::Inbound => DenialReply::ServiceUnavailable,
        Direction::Outbound => DenialReply::PolicyViolation,
    });
    Verdict::Denied { user, reply }
}

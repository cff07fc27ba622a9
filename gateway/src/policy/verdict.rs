//! The per-user decision on one relayed stanza (README, "Per-user policy").
//!
//! Pure: the local user's resolution and the partner's kind in, a verdict
//! out. The local user is the stanza's `to` when it comes from a partner
//! (inbound) and its `from` when it comes from our own server (outbound);
//! the partner is the other end's domain. A stanza addressed to or from a
//! bare domain (server-to-server traffic such as pings and disco of the
//! server itself) belongs to no user and is relayed. Otherwise the user's
//! effective policy needs `enable_xmpp_access` and the flag of the
//! partner's kind ([`EffectivePolicy::access`](super::EffectivePolicy::access)),
//! and a refusal names what decided it.

use super::access_flag::AccessFlag;
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

/// Why a stanza was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenialCause {
    /// The user's effective policy has `flag` off.
    Decided {
        /// The flag that decided.
        flag: AccessFlag,
    },
    /// The local address is not a JID of one of our users: nobody's
    /// policy allows it.
    NotOurUser,
    /// The remote domain is not one of `[[partners]]` (a stream admits
    /// only partners, so this means a reload removed it mid-stream).
    NotAPartner,
}

impl DenialCause {
    /// Every cause, in `/metrics` order.
    pub const ALL: [DenialCause; 5] = [
        DenialCause::Decided {
            flag: AccessFlag::Xmpp,
        },
        DenialCause::Decided {
            flag: AccessFlag::Federation,
        },
        DenialCause::Decided {
            flag: AccessFlag::PublicCloud,
        },
        DenialCause::NotOurUser,
        DenialCause::NotAPartner,
    ];

    /// Label value in the log and `/metrics`: the flag's name, or
    /// `not_our_user` / `not_a_partner`.
    pub fn as_str(self) -> &'static str {
        match self {
            DenialCause::Decided { flag } => flag.as_str(),
            DenialCause::NotOurUser => "not_our_user",
            DenialCause::NotAPartner => "not_a_partner",
        }
    }
}

impl std::fmt::Display for DenialCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
        /// What decided.
        cause: DenialCause,
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
/// local user is `local` (a JID of ours) and whose other end is the
/// partner domain `partner` (normalised), going `direction`;
/// `answerable` says whether the stanza may get an error reply at all.
pub fn decide(
    index: &PolicyIndex,
    direction: Direction,
    local: &str,
    partner: &str,
    name: &str,
    answerable: bool,
) -> Verdict {
    let bare = local.split_once('/').map_or(local, |(bare, _)| bare);
    if !bare.contains('@') {
        return Verdict::Allowed;
    }
    let (user, cause) = match BareJid::from_address(local) {
        Ok(user) => {
            let cause = match (
                index.resolve_user(user.clone()),
                index.partner_kind(partner),
            ) {
                (Err(_), _) => Some(DenialCause::NotOurUser),
                (Ok(_), None) => Some(DenialCause::NotAPartner),
                (Ok(policy), Some(kind)) => {
                    let access = policy.access(kind);
                    (!access.allowed).then_some(DenialCause::Decided {
                        flag: access.decided_by,
                    })
                }
            };
            (user.to_string(), cause)
        }
        // Not a JID we can name: nobody's policy allows it.
        Err(_) => (bare.to_string(), Some(DenialCause::NotOurUser)),
    };
    let Some(cause) = cause else {
        return Verdict::Allowed;
    };
    let reply = (answerable && name != "presence").then_some(match direction {
        Direction::Inbound => DenialReply::ServiceUnavailable,
        Direction::Outbound => DenialReply::PolicyViolation,
    });
    Verdict::Denied { user, cause, reply }
}

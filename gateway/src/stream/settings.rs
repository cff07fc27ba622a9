//! What a stream needs to know about its listener: which domains it
//! answers for, which it admits as peers, limits, and whether TLS can be
//! offered. Built once per listener per configuration generation.
//!
//! Owns the peer rule (`admit`): on the external listener a header may
//! claim only a configured partner (RFC 6120 gives `policy-violation` for a
//! local policy like this one); on the internal listener only one of our
//! own servers (`invalid-from`).
//!
//! The rule judges the domain a peer *claims*, so a header that claims
//! none is admitted: servers of the RFC 3920 era leave `from` out, and so
//! does `openssl s_client -starttls xmpp-server`, which must be able to show
//! our certificate; identity is established by SASL EXTERNAL, not by the
//! header, and EXTERNAL is offered only for an admitted `from` whose
//! certificate is valid for it. A `from`-less stream can negotiate TLS and
//! nothing more: it is never offered EXTERNAL, and every stanza on it is
//! refused with `not-authorized`, so it reaches nothing.

use super::error::StreamError;
use super::header::PeerHeader;
use crate::config::{Config, Limits, ListenerKind, PartnerAuth};
use crate::dialback::Secrets;
use crate::policy::PolicyIndex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Per-listener stream settings.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// The listener these streams arrive on.
    pub listener: ListenerKind,
    /// Domains a header's `to` may name (the domains the gateway speaks for here).
    pub local_domains: Vec<String>,
    /// Domains a header's `from`, if it has one, must be one of
    /// (normalised); `None` = any valid domain. Built from the config it is
    /// always set: the partners on the external listener, our `domains` on
    /// the internal one.
    pub peer_domains: Option<Vec<String>>,
    /// Byte, depth and time limits.
    pub limits: Limits,
    /// Whether a certificate is installed (STARTTLS can be offered).
    pub tls_available: bool,
    /// Whether relaying is configured: only then is SASL EXTERNAL offered
    /// (authenticating a stream that leads nowhere would be a lie).
    pub relay: bool,
    /// Users' effective policies, for the per-stanza decision; a reload
    /// hands open streams the new index with the new settings.
    pub policy: Arc<PolicyIndex>,
    /// Each partner domain's `auth` and `keepalive` (external listener:
    /// the peers; internal listener: the domains we stand in for).
    pub partners: HashMap<String, (PartnerAuth, bool)>,
    /// The dialback secrets, to answer `db:verify` (external listener).
    pub dialback: Option<Arc<Secrets>>,
    /// Whitespace keepalive interval on established streams.
    pub keepalive_interval: Duration,
}

impl StreamSettings {
    /// Settings for `listener` under `config`.
    ///
    /// External streams come from partners to our `domains`. Internal
    /// streams come from our own servers (`from` ∈ `domains`) to a partner
    /// domain the gateway stands in for (`to` ∈ partners).
    pub fn new(
        config: &Config,
        listener: ListenerKind,
        tls_available: bool,
        policy: Arc<PolicyIndex>,
    ) -> StreamSettings {
        let partners = config.partner_domains();
        let partner_rules = config
            .partners
            .iter()
            .flat_map(|p| {
                p.domains()
                    .map(|d| (d.to_string(), (p.auth, p.keepalive)))
                    .collect::<Vec<_>>()
            })
            .collect();
        let (local_domains, peer_domains) = match listener {
            ListenerKind::External => (config.domains.clone(), partners),
            ListenerKind::Internal => (partners, config.domains.clone()),
        };
        StreamSettings {
            listener,
            local_domains,
            peer_domains: Some(peer_domains),
            limits: config.limits.clone(),
            tls_available,
            relay: config.relay.is_some(),
            policy,
            partners: partner_rules,
            dialback: None,
            keepalive_interval: config.limits.keepalive_interval,
        }
    }

    /// These settings with the dialback secrets that answer `db:verify`.
    pub fn with_dialback(mut self, secrets: Option<Arc<Secrets>>) -> StreamSettings {
        self.dialback = secrets;
        self
    }

    /// How partner `domain` may authenticate, if it is a partner.
    pub fn auth_of(&self, domain: &str) -> Option<PartnerAuth> {
        self.partners.get(domain).map(|(auth, _)| *auth)
    }

    /// Whether streams with partner `domain` get keepalives.
    pub fn keepalive_for(&self, domain: &str) -> bool {
        self.partners.get(domain).is_some_and(|(_, k)| *k)
    }

    /// Whether the peer of a validated header may open a stream here.
    ///
    /// Judges the `from` the header claims: one outside `peer_domains` is
    /// refused. A header without `from` is admitted on either listener (RFC
    /// 6120 lets it omit `from`): it may negotiate STARTTLS or TLS and
    /// nothing more, since every stanza after TLS is refused with
    /// `not-authorized` until authentication exists. The identity proved at
    /// authentication (SASL EXTERNAL or dialback) must pass
    /// this same rule before anything is relayed.
    pub fn admit(&self, peer: &PeerHeader) -> Result<(), StreamError> {
        let (Some(allowed), Some(from)) = (&self.peer_domains, &peer.from) else {
            return Ok(());
        };
        if allowed.contains(from) {
            return Ok(());
        }
        Err(match self.listener {
            ListenerKind::External => StreamError::NotPartner {
                from: from.clone(),
                to: peer.to.clone(),
            },
            ListenerKind::Internal => {
                StreamError::InvalidFrom(format!("`{from}` may not use this listener"))
            }
        })
    }
}

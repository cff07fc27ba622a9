//! What a stream needs to know about its listener: which domains it
//! answers for, which it accepts as peers, limits, and whether TLS can be
//! offered. Built once per listener per configuration generation.

use crate::config::{Config, Limits, ListenerKind};

/// Per-listener stream settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// The listener these streams arrive on.
    pub listener: ListenerKind,
    /// Domains a header's `to` may name (the domains the gateway speaks for here).
    pub local_domains: Vec<String>,
    /// Domains a header's `from` must be one of; `None` = any valid domain.
    pub peer_domains: Option<Vec<String>>,
    /// Byte, depth and time limits.
    pub limits: Limits,
    /// Whether a certificate is installed (STARTTLS can be offered).
    pub tls_available: bool,
}

impl StreamSettings {
    /// Settings for `listener` under `config`.
    ///
    /// External streams come from partners to our `domains`. Internal
    /// streams come from our own servers (`from` ∈ `domains`) to a partner
    /// domain the gateway stands in for (`to` ∈ partners).
    pub fn new(config: &Config, listener: ListenerKind, tls_available: bool) -> StreamSettings {
        let partners: Vec<String> = config.partners.iter().map(|p| p.domain.clone()).collect();
        let (local_domains, peer_domains) = match listener {
            ListenerKind::External => (config.domains.clone(), None),
            ListenerKind::Internal => (partners, Some(config.domains.clone())),
        };
        StreamSettings {
            listener,
            local_domains,
            peer_domains,
            limits: config.limits.clone(),
            tls_available,
        }
    }
}

//! One loaded configuration with everything derived from it: stream
//! settings and TLS acceptors per listener, and the policy index.
//!
//! Built completely (every file read, every certificate parsed) before it
//! replaces the previous one, so a reload either fully applies or not at
//! all. Connections keep the generation they were accepted under.

use crate::config::{Config, ConfigError, ListenerKind, Problem};
use crate::dialback::Secrets;
use crate::policy::PolicyIndex;
use crate::stream::StreamSettings;
use crate::tls::{ListenerTls, RelayTls};
use std::sync::Arc;
use tokio_rustls::rustls::RootCertStore;

/// Per-listener derived state.
#[derive(Debug)]
pub struct ListenerState {
    /// What its streams accept and enforce.
    pub settings: Arc<StreamSettings>,
    /// Its TLS acceptor, if a certificate is installed.
    pub tls: Option<ListenerTls>,
    /// Trust anchors a peer's client certificate must chain to for SASL
    /// EXTERNAL (`relay.partner_ca` outside, `internal.client_ca` inside);
    /// `None` without `[relay]`: nothing is offered.
    pub peer_roots: Option<Arc<RootCertStore>>,
}

/// A configuration ready to serve.
#[derive(Debug)]
pub struct Generation {
    /// The validated configuration.
    pub config: Config,
    /// External listener state.
    pub external: ListenerState,
    /// Internal listener state.
    pub internal: ListenerState,
    /// Users' effective external access policies.
    pub policy: Arc<PolicyIndex>,
    /// The relay's client TLS, with `[relay]`.
    pub relay: Option<RelayTls>,
    /// The dialback secrets, with `[dialback]`.
    pub dialback: Option<Arc<Secrets>>,
}

impl Generation {
    /// Loads certificates for `config`. Returns the generation and
    /// non-fatal warnings (missing or mismatched certificates), or every
    /// problem found.
    pub fn prepare(config: Config) -> Result<(Generation, Vec<String>), ConfigError> {
        let mut problems: Vec<Problem> = Vec::new();
        let mut warnings = Vec::new();
        let mut states = Vec::with_capacity(2);
        let now = crate::clock::unix_now();
        let policy = Arc::new(PolicyIndex::new(&config));
        let dialback = match &config.dialback {
            None => None,
            Some(d) => match Secrets::load(d) {
                Ok(s) => Some(Arc::new(s)),
                Err(p) => {
                    problems.extend(p);
                    None
                }
            },
        };
        for kind in ListenerKind::ALL {
            let listener = config.listener(kind);
            let tls = match ListenerTls::load(listener) {
                Ok(tls) => tls,
                Err(p) => {
                    problems.extend(p);
                    None
                }
            };
            match &tls {
                None if listener.certificate.is_none() => warnings.push(format!(
                    "`{}` has no certificate: streams are answered and then closed with \
                     internal-server-error until `cert` and `key` are set (then SIGHUP)",
                    kind.name()
                )),
                None => {}
                Some(tls) => {
                    // The external certificate must name our domains; the
                    // internal one stands in for partner domains.
                    let domains: Vec<String> = match kind {
                        ListenerKind::External => config.domains.clone(),
                        ListenerKind::Internal => Vec::new(),
                    };
                    for w in tls.certificate.warnings(&domains, now) {
                        warnings.push(format!("`{}.cert` {w}", kind.name()));
                    }
                }
            }
            let settings = Arc::new(
                StreamSettings::new(&config, kind, tls.is_some(), policy.clone()).with_dialback(
                    match kind {
                        ListenerKind::External => dialback.clone(),
                        ListenerKind::Internal => None,
                    },
                ),
            );
            states.push(ListenerState {
                settings,
                tls,
                peer_roots: None,
            });
        }
        let relay = if problems.is_empty() {
            RelayTls::load(&config).unwrap_or_else(|p| {
                problems.extend(p);
                None
            })
        } else {
            None
        };
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: config.path.clone(),
                problems,
            });
        }
        let internal = states.pop();
        let external = states.pop();
        let (Some(mut external), Some(mut internal)) = (external, internal) else {
            return Err(ConfigError::Invalid {
                path: config.path.clone(),
                problems: vec![Problem::new(
                    "(listeners)",
                    "internal error: listener state missing",
                )],
            });
        };
        if let Some(relay) = &relay {
            external.peer_roots = Some(relay.partner_roots.clone());
            internal.peer_roots = Some(relay.internal_roots.clone());
        }
        Ok((
            Generation {
                policy,
                relay,
                dialback,
                config,
                external,
                internal,
            },
            warnings,
        ))
    }

    /// The state of listener `kind`.
    pub fn listener(&self, kind: ListenerKind) -> &ListenerState {
        match kind {
            ListenerKind::External => &self.external,
            ListenerKind::Internal => &self.internal,
        }
    }
}

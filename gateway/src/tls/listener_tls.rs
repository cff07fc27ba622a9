//! The TLS side of one S2S listener: acceptor plus what is reported about it.
//!
//! Built from a `ListenerConfig` at startup and on every reload. A listener
//! without `cert`/`key` has no `ListenerTls`; the stream layer then refuses
//! streams with `internal-server-error` after the header (see README).

use super::certificate::{Certificate, read_roots};
use super::certificate_info::CertificateInfo;
use super::client_verifier::PeerCertificatePolicy;
use crate::config::{ListenerConfig, Problem};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::server::{ServerConfig, ServerSessionMemoryCache};

/// How client certificates are handled, as reported in `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Requested, not required (judged by the stream layer).
    Optional,
    /// Required and verified against `client_ca`.
    Required,
}

impl ClientAuth {
    /// Name used in `/status`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "required",
        }
    }
}

/// A listener's TLS acceptor and certificate facts.
#[derive(Clone)]
pub struct ListenerTls {
    /// Performs server-side handshakes.
    pub acceptor: TlsAcceptor,
    /// The certificate it serves.
    pub certificate: CertificateInfo,
    /// Client-certificate policy.
    pub client_auth: ClientAuth,
}

impl std::fmt::Debug for ListenerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerTls")
            .field("certificate", &self.certificate)
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

impl ListenerTls {
    /// Loads the listener's certificate (and client CA); `Ok(None)` when none is configured.
    pub fn load(listener: &ListenerConfig) -> Result<Option<ListenerTls>, Vec<Problem>> {
        let section = listener.kind.name();
        let Some(paths) = &listener.certificate else {
            return Ok(None);
        };
        let mut problems = Vec::new();
        let certificate = Certificate::load(section, paths)
            .map_err(|p| problems.extend(p))
            .ok();
        let policy = match &listener.client_ca {
            None => Some(PeerCertificatePolicy::Requested),
            Some(path) => read_roots(path, &format!("{section}.client_ca"), &mut problems)
                .map(PeerCertificatePolicy::required),
        };
        let (Some(certificate), Some(policy)) = (certificate, policy) else {
            return Err(problems);
        };
        let client_auth = match policy {
            PeerCertificatePolicy::Requested => ClientAuth::Optional,
            PeerCertificatePolicy::Required { .. } => ClientAuth::Required,
        };
        let config = server_config(&certificate, policy).map_err(|e| {
            vec![Problem::new(
                format!("{section}.cert"),
                format!("cannot be used for TLS: {e}"),
            )]
        })?;
        Ok(Some(ListenerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate: certificate.info,
            client_auth,
        }))
    }
}

fn server_config(
    certificate: &Certificate,
    policy: PeerCertificatePolicy,
) -> Result<ServerConfig, tokio_rustls::rustls::Error> {
    let provider: Arc<CryptoProvider> = super::provider();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(policy))
        .with_cert_resolver(Arc::new(
            tokio_rustls::rustls::sign::SingleCertAndKey::from(certificate.key.clone()),
        ));
    // Bounded resumption cache; tickets would outlive a certificate reload.
    config.session_storage = ServerSessionMemoryCache::new(1024);
    Ok(config)
}

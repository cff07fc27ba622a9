//! The TLS side of the relay's outbound streams, and the partners' trust
//! anchors for inbound SASL EXTERNAL.
//!
//! Owns two client configurations built from the identity material the
//! listeners already have (no certificate fields of its own): towards the
//! internal server the `[internal]` certificate (whose names cover every
//! partner domain) is the client certificate and `internal.client_ca`
//! verifies the server; towards a partner the `[external]` certificate is
//! the client certificate and `relay.partner_ca` verifies the server. Built
//! with each generation, so a reload applies to streams opened after it.

use super::certificate::{Certificate, read_roots};
use crate::config::{Config, Problem};
use std::sync::Arc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::ResolvesClientCert;
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, SignatureScheme};

/// Client TLS for both outbound directions.
#[derive(Clone)]
pub struct RelayTls {
    /// Gateway → internal server (speaking for a partner).
    pub to_internal: TlsConnector,
    /// Gateway → partner (speaking for one of our domains).
    pub to_partners: TlsConnector,
    /// Gateway → a partner that authenticates by dialback, and → a
    /// partner's authoritative server to verify its key: encrypted, the
    /// server certificate not judged (see `unverified_server`).
    pub to_dialback_partners: TlsConnector,
    /// `relay.partner_ca`: verifies partners' client certificates inbound.
    pub partner_roots: Arc<RootCertStore>,
    /// `internal.client_ca`: verifies the internal server's client certificate.
    pub internal_roots: Arc<RootCertStore>,
}

impl std::fmt::Debug for RelayTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayTls").finish_non_exhaustive()
    }
}

impl RelayTls {
    /// Loads the relay's TLS material; `Ok(None)` without `[relay]`.
    pub fn load(config: &Config) -> Result<Option<RelayTls>, Vec<Problem>> {
        let Some(relay) = &config.relay else {
            return Ok(None);
        };
        let mut problems = Vec::new();
        let partner_roots = read_roots(&relay.partner_ca, "relay.partner_ca", &mut problems);
        let internal_roots = config
            .internal
            .client_ca
            .as_ref()
            .and_then(|path| read_roots(path, "internal.client_ca", &mut problems));
        let internal_cert = config.internal.certificate.as_ref().and_then(|paths| {
            Certificate::load("internal", paths)
                .map_err(|p| problems.extend(p))
                .ok()
        });
        let external_cert = config.external.certificate.as_ref().and_then(|paths| {
            Certificate::load("external", paths)
                .map_err(|p| problems.extend(p))
                .ok()
        });
        let (Some(partner_roots), Some(internal_roots), Some(internal_cert)) =
            (partner_roots, internal_roots, internal_cert)
        else {
            return Err(problems);
        };
        let to_internal =
            client_config(internal_roots.clone(), Some(&internal_cert)).map_err(|e| {
                vec![Problem::new(
                    "internal.cert",
                    format!("cannot be used as a TLS client certificate: {e}"),
                )]
            })?;
        let to_partners =
            client_config(partner_roots.clone(), external_cert.as_ref()).map_err(|e| {
                vec![Problem::new(
                    "external.cert",
                    format!("cannot be used as a TLS client certificate: {e}"),
                )]
            })?;
        let to_dialback_partners =
            unverified_client_config(external_cert.as_ref()).map_err(|e| {
                vec![Problem::new(
                    "external.cert",
                    format!("cannot be used as a TLS client certificate: {e}"),
                )]
            })?;
        Ok(Some(RelayTls {
            to_dialback_partners: TlsConnector::from(Arc::new(to_dialback_partners)),
            to_internal: TlsConnector::from(Arc::new(to_internal)),
            to_partners: TlsConnector::from(Arc::new(to_partners)),
            partner_roots: Arc::new(partner_roots),
            internal_roots: Arc::new(internal_roots),
        }))
    }
}

fn client_config(
    roots: RootCertStore,
    certificate: Option<&Certificate>,
) -> Result<ClientConfig, tokio_rustls::rustls::Error> {
    let builder = ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(match certificate {
        Some(certificate) => {
            builder.with_client_cert_resolver(Arc::new(FixedClientCert(certificate.key.clone())))
        }
        None => builder.with_no_client_auth(),
    })
}

fn unverified_client_config(
    certificate: Option<&Certificate>,
) -> Result<ClientConfig, tokio_rustls::rustls::Error> {
    let builder = ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(super::unverified_server::UnverifiedServer(
            super::provider(),
        )));
    Ok(match certificate {
        Some(certificate) => {
            builder.with_client_cert_resolver(Arc::new(FixedClientCert(certificate.key.clone())))
        }
        None => builder.with_no_client_auth(),
    })
}

/// Presents one certificate whatever the server asks for.
#[derive(Debug)]
struct FixedClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for FixedClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

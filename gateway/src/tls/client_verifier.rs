//! Which client certificates a listener asks for and accepts during the
//! TLS handshake.
//!
//! Two policies. `Requested` (external listener): ask for a certificate but
//! accept any, or none, as long as the peer proves it holds the key; whether
//! the certificate is valid for the stream's `from` domain is decided by
//! the stream layer (SASL EXTERNAL), as Prosody does — rejecting in the
//! handshake would also lock out dialback-only partners. `Required`
//! (internal listener with `client_ca`): mutual TLS against our own CA,
//! accepting either the clientAuth or the serverAuth EKU, because XMPP
//! servers present their server certificate as client certificate and
//! public CAs stopped adding clientAuth (Let's Encrypt's default profile
//! dropped it in February 2026).

use super::provider;
use std::sync::Arc;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{verify_tls12_signature, verify_tls13_signature};
use tokio_rustls::rustls::pki_types::{CertificateDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, RootCertStore,
    SignatureScheme,
};

/// Client-certificate policy of one listener.
#[derive(Debug)]
pub enum PeerCertificatePolicy {
    /// Ask for a certificate; accept any or none (judged later by the stream).
    Requested,
    /// Demand a certificate that chains to one of `roots`.
    Required {
        /// Trust anchors from `client_ca`.
        roots: RootCertStore,
        /// Their subjects, sent as hints in the CertificateRequest.
        hints: Vec<DistinguishedName>,
    },
}

impl PeerCertificatePolicy {
    /// Mutual TLS against the CA certificates in `roots`.
    pub fn required(roots: RootCertStore) -> PeerCertificatePolicy {
        let hints = roots.subjects();
        PeerCertificatePolicy::Required { roots, hints }
    }
}

impl ClientCertVerifier for PeerCertificatePolicy {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        matches!(self, PeerCertificatePolicy::Required { .. })
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        match self {
            PeerCertificatePolicy::Requested => &[],
            PeerCertificatePolicy::Required { hints, .. } => hints,
        }
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let PeerCertificatePolicy::Required { roots, .. } = self else {
            webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
            return Ok(ClientCertVerified::assertion());
        };
        verify_chain(roots, end_entity, intermediates, now)
            .map(|()| ClientCertVerified::assertion())
            .map_err(pki_error)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Whether `end_entity` chains to `roots` for either EKU a server may
/// present as client certificate: clientAuth, or serverAuth only (public
/// CAs stopped adding clientAuth; Prosody ignores the purpose too).
pub fn verify_chain(
    roots: &RootCertStore,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<(), webpki::Error> {
    let cert = webpki::EndEntityCert::try_from(end_entity)?;
    let algs = provider().signature_verification_algorithms.all;
    let verify =
        |usage| cert.verify_for_usage(algs, &roots.roots, intermediates, now, usage, None, None);
    match verify(webpki::KeyUsage::client_auth()) {
        Ok(_) => Ok(()),
        Err(webpki::Error::RequiredEkuNotFoundContext(_)) => {
            verify(webpki::KeyUsage::server_auth()).map(|_| ())
        }
        Err(e) => Err(e),
    }
}

fn pki_error(e: webpki::Error) -> Error {
    use webpki::Error as E;
    let kind = match e {
        E::BadDer | E::BadDerTime => CertificateError::BadEncoding,
        E::CertExpired { .. } => CertificateError::Expired,
        E::CertNotValidYet { .. } => CertificateError::NotValidYet,
        E::UnknownIssuer => CertificateError::UnknownIssuer,
        E::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        E::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    };
    Error::InvalidCertificate(kind)
}

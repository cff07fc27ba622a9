//! What a peer's TLS client certificate proves: the names it is valid for.
//!
//! Owns the check behind SASL EXTERNAL (RFC 6120 §6, XEP-0178): after the
//! handshake, the presented chain is verified against the listener's trust
//! anchors (any EKU a server presents, see `verify_chain`) and the leaf's
//! names are kept. Whether those names cover the stream's `from` is the
//! stream layer's decision (`PeerIdentity::covers`), made per header.

use super::certificate_info::CertificateInfo;
use super::client_verifier::verify_chain;
use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::{CertificateDer, UnixTime};

/// A client certificate that chains to the listener's trust anchors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The leaf's dNSName SANs (the CN only when there are none).
    pub names: Vec<String>,
}

impl PeerIdentity {
    /// The identity `chain` (leaf first) proves under `roots`, or `None`
    /// when there is no chain or it does not verify.
    pub fn verify(
        roots: &RootCertStore,
        chain: Option<&[CertificateDer<'_>]>,
    ) -> Option<PeerIdentity> {
        let (leaf, intermediates) = chain?.split_first()?;
        verify_chain(roots, leaf, intermediates, UnixTime::now()).ok()?;
        let info = CertificateInfo::from_der(leaf).ok()?;
        Some(PeerIdentity {
            names: info.subject_names,
        })
    }

    /// An identity with `names`, for tests and the fuzz target.
    pub fn with_names(names: &[&str]) -> PeerIdentity {
        PeerIdentity {
            names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether a name matches `domain` exactly or by a left-most `*.` wildcard.
    pub fn covers(&self, domain: &str) -> bool {
        CertificateInfo::covers_name(&self.names, domain)
    }
}

//! TLS material for the S2S listeners: certificates, client-certificate
//! policy and the rustls server configuration built from them.
//!
//! One crypto stack (rustls on aws-lc-rs) serves TLS and the stream-id
//! randomness. Loading happens at startup and on SIGHUP, never per
//! connection; a connection clones the acceptor of the generation it was
//! accepted under, so a reload never touches established sessions.

mod certificate;
mod certificate_info;
mod client_verifier;
mod listener_tls;
mod peer_identity;
mod relay_tls;
mod unverified_server;

pub use certificate::Certificate;
pub use certificate_info::CertificateInfo;
pub use client_verifier::PeerCertificatePolicy;
pub use listener_tls::{ClientAuth, ListenerTls};
pub use peer_identity::PeerIdentity;
pub use relay_tls::RelayTls;

use std::sync::{Arc, OnceLock};
use tokio_rustls::rustls::crypto::CryptoProvider;

/// The process-wide crypto provider (aws-lc-rs).
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// Fills `buf` from the provider's CSPRNG.
///
/// # Panics
/// Only if the operating system's random source fails, in which case no
/// TLS could be offered either.
#[allow(clippy::expect_used)]
pub fn fill_random(buf: &mut [u8]) {
    provider()
        .secure_random
        .fill(buf)
        .expect("the system random number generator failed");
}

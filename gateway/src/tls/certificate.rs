//! A listener's certificate chain and private key, loaded from PEM files.
//!
//! Owns: reading the two files, checking that the key matches the leaf,
//! and reporting every failure against the config field (`external.cert`,
//! `internal.key`, …) so a bad file is a config error, not a crash.

use super::certificate_info::CertificateInfo;
use crate::config::{CertificatePaths, Problem};
use std::sync::Arc;
use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::sign::CertifiedKey;

/// A loaded, self-consistent certificate chain and key.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
    /// What is reported about the leaf.
    pub info: CertificateInfo,
}

impl Certificate {
    /// Loads `paths`; problems name `{section}.cert` / `{section}.key`.
    pub fn load(section: &str, paths: &CertificatePaths) -> Result<Certificate, Vec<Problem>> {
        let cert_field = format!("{section}.cert");
        let key_field = format!("{section}.key");
        let mut problems = Vec::new();
        let chain = read_chain(&paths.cert, &cert_field, &mut problems);
        let key = match PrivateKeyDer::from_pem_file(&paths.key) {
            Ok(key) => Some(key),
            Err(e) => {
                problems.push(Problem::new(
                    &key_field,
                    format!(
                        "cannot load a private key from `{}`: {e}",
                        paths.key.display()
                    ),
                ));
                None
            }
        };
        let (Some(chain), Some(key)) = (chain, key) else {
            return Err(problems);
        };
        let info = match CertificateInfo::from_der(&chain[0]) {
            Ok(info) => info,
            Err(e) => return Err(vec![Problem::new(cert_field, e)]),
        };
        match CertifiedKey::from_der(chain, key, &super::provider()) {
            Ok(key) => Ok(Certificate {
                key: Arc::new(key),
                info,
            }),
            Err(e) => Err(vec![
                Problem::new(
                    key_field,
                    format!(
                        "does not fit the certificate in `{}`: {e}",
                        paths.cert.display()
                    ),
                )
                .hint("install the key that the certificate was issued for"),
            ]),
        }
    }
}

/// Reads a PEM bundle of certificates; used for chains and CA bundles.
pub(crate) fn read_chain(
    path: &std::path::Path,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<CertificateDer<'static>>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            problems.push(Problem::new(
                field,
                format!("cannot read `{}`: {e}", path.display()),
            ));
            return None;
        }
    };
    match CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>() {
        Ok(chain) if chain.is_empty() => {
            problems.push(
                Problem::new(
                    field,
                    format!("`{}` holds no PEM certificate", path.display()),
                )
                .hint("expected -----BEGIN CERTIFICATE----- blocks"),
            );
            None
        }
        Ok(chain) => Some(chain),
        Err(e) => {
            problems.push(Problem::new(
                field,
                format!("`{}` is not valid PEM: {e}", path.display()),
            ));
            None
        }
    }
}

/// Reads a PEM bundle as trust anchors; every certificate in it must be
/// usable as one (a problem of `field` otherwise).
pub(crate) fn read_roots(
    path: &std::path::Path,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Option<RootCertStore> {
    let certs = read_chain(path, field, problems)?;
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 || ignored > 0 {
        problems.push(Problem::new(
            field,
            format!(
                "`{}`: {ignored} certificate(s) are not usable as trust anchors",
                path.display()
            ),
        ));
        return None;
    }
    Some(roots)
}

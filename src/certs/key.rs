//! Private keys per [`KeySpec`]: RSA needs rcgen's aws-lc-rs backend.

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, RsaKeySize};

use crate::spec::KeySpec;

/// A fresh key. The caller registers its PEM with the spec's redactor.
pub fn generate(spec: KeySpec) -> Result<KeyPair, rcgen::Error> {
    let size = match spec {
        KeySpec::EcdsaP256 => return KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
        KeySpec::Rsa2048 => RsaKeySize::_2048,
        KeySpec::Rsa3072 => RsaKeySize::_3072,
        KeySpec::Rsa4096 => RsaKeySize::_4096,
    };
    KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, size)
}

/// `rsa 2048`, `ecdsa 256`: how plans and `cert list` name a key.
pub fn describe(spec: KeySpec) -> String {
    let (alg, bits) = parts(spec);
    format!("{alg} {bits}")
}

pub fn parts(spec: KeySpec) -> (&'static str, u32) {
    match spec {
        KeySpec::Rsa2048 => ("rsa", 2048),
        KeySpec::Rsa3072 => ("rsa", 3072),
        KeySpec::Rsa4096 => ("rsa", 4096),
        KeySpec::EcdsaP256 => ("ecdsa", 256),
    }
}

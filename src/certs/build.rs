//! Making certificates with rcgen: CSRs, certificates signed by an internal
//! CA, and the placeholder a host serves while its CSR waits for the CA.
//!
//! Pure apart from the clock and serial numbers, which come in as values.

use rcgen::{
    CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use time::OffsetDateTime;

use super::dn::distinguished_name;
use crate::spec::{KeySpec, Subject};

/// The issuer CN of a placeholder: recognised by `decide` and `cert list`.
pub const PLACEHOLDER_CN: &str = "xfed placeholder, waiting for the CA";

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot build the certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("invalid time: {0}")]
    Time(String),
}

fn params(subject: &Subject, sans: &[String]) -> Result<CertificateParams, BuildError> {
    let mut p = CertificateParams::new(sans.to_vec())?;
    p.distinguished_name = distinguished_name(subject);
    Ok(p)
}

fn at(unix: i64) -> Result<OffsetDateTime, BuildError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|e| BuildError::Time(e.to_string()))
}

/// A CSR (PEM) for `subject` and `sans`, signed by `key`.
pub fn csr_pem(key: &KeyPair, subject: &Subject, sans: &[String]) -> Result<String, BuildError> {
    Ok(params(subject, sans)?.serialize_request(key)?.pem()?)
}

/// A CSR (DER), for ACME's finalize.
pub fn csr_der(key: &KeyPair, subject: &Subject, sans: &[String]) -> Result<Vec<u8>, BuildError> {
    Ok(params(subject, sans)?
        .serialize_request(key)?
        .der()
        .to_vec())
}

/// Leaf certificate parameters every signer here shares: a positive
/// 16-byte serial, key usages for the key type, serverAuth and clientAuth
/// (S2S streams authenticate both ways).
fn leaf_params(
    subject: &Subject,
    sans: &[String],
    key: KeySpec,
    not_before: i64,
    not_after: i64,
    serial: [u8; 16],
) -> Result<CertificateParams, BuildError> {
    let mut p = params(subject, sans)?;
    p.not_before = at(not_before)?;
    p.not_after = at(not_after)?;
    let mut s = serial;
    s[0] &= 0x7f;
    s[0] |= 0x01;
    p.serial_number = Some(SerialNumber::from_slice(&s));
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = match key {
        KeySpec::EcdsaP256 => vec![KeyUsagePurpose::DigitalSignature],
        _ => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ],
    };
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// What an internal CA signs.
#[derive(Debug)]
pub struct SignRequest<'a> {
    pub subject: &'a Subject,
    pub sans: &'a [String],
    pub key_spec: KeySpec,
    pub validity_days: u32,
    pub now: i64,
    pub serial: [u8; 16],
}

/// Signs `key`'s certificate with the CA (`ca_cert_pem`, `ca_key`);
/// returns the chain PEM: leaf, then the CA certificate.
pub fn sign_with_ca(
    key: &KeyPair,
    req: &SignRequest<'_>,
    ca_cert_pem: &str,
    ca_key: KeyPair,
) -> Result<String, BuildError> {
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key)?;
    // Backdated a little: clocks of peers differ.
    let not_before = req.now - 300;
    let not_after = req.now + i64::from(req.validity_days) * 86_400;
    let p = leaf_params(
        req.subject,
        req.sans,
        req.key_spec,
        not_before,
        not_after,
        req.serial,
    )?;
    let leaf = p.signed_by(key, &issuer)?;
    let mut chain = leaf.pem();
    let ca = ca_cert_pem.trim_end();
    chain.push_str(ca);
    chain.push('\n');
    Ok(chain)
}

/// A short-lived self-signed certificate for `key`, so the gateway can
/// start while the real one is with the CA. Its issuer says what it is.
pub fn placeholder(
    key: &KeyPair,
    subject: &Subject,
    sans: &[String],
    key_spec: KeySpec,
    now: i64,
    serial: [u8; 16],
) -> Result<String, BuildError> {
    let mut p = leaf_params(
        subject,
        sans,
        key_spec,
        now - 300,
        now + 30 * 86_400,
        serial,
    )?;
    // Self-signed: subject = issuer, so the marker goes in the subject's
    // organisation while the CN stays the host's name.
    p.distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, PLACEHOLDER_CN);
    p.use_authority_key_identifier_extension = false;
    Ok(p.self_signed(key)?.pem())
}

/// A serial number from the clock and the key: unique per certificate
/// without a random source of its own.
pub fn serial_for(key: &KeyPair, now_nanos: u128) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(key.public_key_pem().as_bytes());
    h.update(now_nanos.to_be_bytes());
    let d = h.finalize();
    let mut s = [0u8; 16];
    s.copy_from_slice(&d[..16]);
    s
}

/// A throwaway client identity for a probe: a fresh P-256 key and a
/// certificate for `domain`, signed by the internal CA, valid for ten
/// minutes. It stands where a front-end stands (same CA, same domain), so
/// what a gateway offers it is what it offers the front-end. Returns the
/// chain (leaf, CA) and the key (PKCS#8), both DER, never written anywhere.
pub fn probe_identity(
    ca_cert_pem: &str,
    ca_key: KeyPair,
    domain: &str,
    now: i64,
    now_nanos: u128,
) -> Result<(Vec<Vec<u8>>, Vec<u8>), BuildError> {
    let key = super::key::generate(KeySpec::EcdsaP256)?;
    let serial = serial_for(&key, now_nanos);
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key)?;
    let subject = Subject {
        common_name: domain.to_string(),
        organization: None,
        organizational_unit: None,
        locality: None,
        state: None,
        country: None,
    };
    let p = leaf_params(
        &subject,
        &[domain.to_string()],
        KeySpec::EcdsaP256,
        now - 300,
        now + 600,
        serial,
    )?;
    let leaf = p.signed_by(&key, &issuer)?;
    let mut chain = vec![leaf.der().to_vec()];
    chain.extend(
        x509_parser::pem::Pem::iter_from_buffer(ca_cert_pem.as_bytes())
            .filter_map(Result::ok)
            .filter(|p| p.label == "CERTIFICATE")
            .map(|p| p.contents),
    );
    Ok((chain, key.serialize_der()))
}

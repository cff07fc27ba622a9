//! Reading certificates and CSRs (x509-parser: rcgen cannot parse).

use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, GeneralName, Pem, X509CertificationRequest};
use x509_parser::public_key::PublicKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// `CN=…, O=…, C=…`
    pub subject: String,
    pub issuer: String,
    /// DNS names, lower case, sorted.
    pub sans: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    /// `rsa` or `ecdsa`.
    pub key_alg: String,
    pub key_bits: u32,
    /// DER SubjectPublicKeyInfo: what a key or CSR must match.
    pub spki: Vec<u8>,
    pub serial: String,
    /// sha256 of the DER certificate, hex.
    pub fingerprint: String,
    pub is_ca: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrInfo {
    pub subject: String,
    pub sans: Vec<String>,
    pub key_alg: String,
    pub key_bits: u32,
    pub spki: Vec<u8>,
}

fn first_pem(pem: &[u8], label: &str) -> Result<Pem, String> {
    for p in Pem::iter_from_buffer(pem) {
        let p = p.map_err(|e| format!("not PEM: {e}"))?;
        if p.label == label {
            return Ok(p);
        }
    }
    Err(format!("no `{label}` PEM block"))
}

fn key_of(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> (String, u32) {
    match spki.parsed() {
        Ok(PublicKey::RSA(r)) => ("rsa".into(), r.key_size() as u32),
        Ok(PublicKey::EC(p)) => ("ecdsa".into(), p.key_size() as u32),
        _ => ("unknown".into(), 0),
    }
}

fn dns_names<'a>(names: impl Iterator<Item = &'a GeneralName<'a>>) -> Vec<String> {
    let mut v: Vec<String> = names
        .filter_map(|g| match g {
            GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Every certificate of a PEM bundle, in order (leaf first for a chain).
pub fn certificates(pem: &[u8]) -> Result<Vec<CertInfo>, String> {
    let mut out = Vec::new();
    for p in Pem::iter_from_buffer(pem) {
        let p = p.map_err(|e| format!("not PEM: {e}"))?;
        if p.label != "CERTIFICATE" {
            continue;
        }
        let cert = p
            .parse_x509()
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let sans = match cert.subject_alternative_name() {
            Ok(Some(san)) => dns_names(san.value.general_names.iter()),
            _ => Vec::new(),
        };
        let (key_alg, key_bits) = key_of(cert.public_key());
        out.push(CertInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            sans,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            key_alg,
            key_bits,
            spki: cert.public_key().raw.to_vec(),
            serial: cert.raw_serial_as_string(),
            fingerprint: hex::encode(Sha256::digest(&p.contents)),
            is_ca: cert.is_ca(),
        });
    }
    if out.is_empty() {
        return Err("no certificate in the PEM".into());
    }
    Ok(out)
}

/// The leaf (first certificate) of a PEM chain.
pub fn leaf(pem: &[u8]) -> Result<CertInfo, String> {
    certificates(pem).map(|mut v| v.remove(0))
}

/// A PEM CSR: subject, requested DNS names, public key.
pub fn csr(pem: &[u8]) -> Result<CsrInfo, String> {
    let p = first_pem(pem, "CERTIFICATE REQUEST")?;
    let (_, req) =
        X509CertificationRequest::from_der(&p.contents).map_err(|e| format!("not a CSR: {e}"))?;
    let info = &req.certification_request_info;
    let mut names = Vec::new();
    if let Some(exts) = req.requested_extensions() {
        for e in exts {
            if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) = e {
                names.extend(dns_names(san.general_names.iter()));
            }
        }
    }
    names.sort();
    names.dedup();
    let (key_alg, key_bits) = key_of(&info.subject_pki);
    Ok(CsrInfo {
        subject: info.subject.to_string(),
        sans: names,
        key_alg,
        key_bits,
        spki: info.subject_pki.raw.to_vec(),
    })
}

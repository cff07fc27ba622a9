//! What `/status`, `/metrics` and the logs say about a certificate.
//!
//! Owns the extraction from DER (x509-parser): SHA-256 fingerprint of the
//! leaf, its DNS names, its validity window, and whether it covers a domain.

use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Facts about a leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Lowercase hex SHA-256 of the leaf certificate's DER.
    pub fingerprint_sha256: String,
    /// DNS subjectAltNames, or the subject CN when there are none.
    pub subject_names: Vec<String>,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
}

impl CertificateInfo {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertificateInfo, String> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::DNSName(dns) = name {
                    names.push(dns.to_ascii_lowercase());
                }
            }
        }
        if names.is_empty() {
            names.extend(
                cert.subject()
                    .iter_common_name()
                    .filter_map(|cn| cn.as_str().ok())
                    .map(str::to_ascii_lowercase),
            );
        }
        Ok(CertificateInfo {
            fingerprint_sha256: hex::encode(Sha256::digest(der)),
            subject_names: names,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// Whether one of the names matches `domain` (exactly, or by a left-most `*.` wildcard).
    pub fn covers(&self, domain: &str) -> bool {
        CertificateInfo::covers_name(&self.subject_names, domain)
    }

    /// Whether one of `names` matches `domain` (exactly, or by a left-most `*.` wildcard).
    pub fn covers_name(names: &[String], domain: &str) -> bool {
        names.iter().any(|name| {
            name == domain
                || name
                    .strip_prefix("*.")
                    .and_then(|suffix| domain.split_once('.').map(|(_, rest)| rest == suffix))
                    .unwrap_or(false)
        })
    }

    /// Human-readable reasons this certificate will not serve `domains` at `now`.
    pub fn warnings(&self, domains: &[String], now: i64) -> Vec<String> {
        let mut warnings = Vec::new();
        if now > self.not_after {
            warnings.push(format!(
                "expired at {}",
                crate::clock::rfc3339_secs(self.not_after)
            ));
        } else if now < self.not_before {
            warnings.push(format!(
                "not valid before {}",
                crate::clock::rfc3339_secs(self.not_before)
            ));
        }
        for domain in domains {
            if !self.covers(domain) {
                warnings.push(format!("does not cover domain `{domain}`"));
            }
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(names: &[&str]) -> CertificateInfo {
        CertificateInfo {
            fingerprint_sha256: String::new(),
            subject_names: names.iter().map(|s| s.to_string()).collect(),
            not_before: 0,
            not_after: 100,
        }
    }

    #[test]
    fn wildcards_cover_one_label_only() {
        let i = info(&["*.contoso.example"]);
        assert!(i.covers("xmpp.contoso.example"));
        assert!(!i.covers("contoso.example"));
        assert!(!i.covers("a.b.contoso.example"));
    }

    #[test]
    fn warns_about_expiry_and_missing_domains() {
        let w = info(&["contoso.example"])
            .warnings(&["contoso.example".into(), "fabrikam.example".into()], 200);
        assert_eq!(w.len(), 2, "{w:?}");
    }
}

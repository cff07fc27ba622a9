//! The `certificate` resource: what one edge server should have installed
//! for one spec certificate, and what the host says it has.
//!
//! Files on the host, for a certificate whose chain is at `DIR/NAME.crt`:
//! `DIR/NAME.key` (0600, the key of the installed chain), `DIR/NAME.issuer`
//! (which issuer made it, so an issuer change is seen), and while a CSR
//! waits for its CA, `DIR/NAME.csr` with its key in `DIR/NAME.pending.key`.

use serde::{Deserialize, Serialize};

use crate::spec::{CertUsage, Issuer, KeySpec, RenewBefore, Subject};

#[derive(Debug, Clone, PartialEq)]
pub struct CertSpec {
    /// The spec's certificate name.
    pub name: String,
    pub usage: CertUsage,
    /// PEM chain, leaf first (0644).
    pub cert_path: String,
    /// PEM private key (0600).
    pub key_path: String,
    pub key: KeySpec,
    pub subject: Subject,
    pub sans: Vec<String>,
    pub issuer: Issuer,
    pub renew_before: RenewBefore,
    pub exportable: bool,
    pub friendly_name: Option<String>,
    /// The group whose service reads the key (the gateway's user): the
    /// key is then 0640 root:GROUP instead of 0600 root:root.
    pub key_group: Option<String>,
}

impl CertSpec {
    /// The key file's `owner:group:mode` as apply installs it: readable
    /// by root and, for a service that runs unprivileged, its group.
    pub fn key_access(&self) -> String {
        let (owner, mode) = self.key_owner_mode();
        format!("{owner}:{mode:o}")
    }

    /// The same as `owner:group` and mode.
    pub fn key_owner_mode(&self) -> (String, u32) {
        match &self.key_group {
            Some(g) => (format!("root:{g}"), 0o640),
            None => ("root:root".to_string(), 0o600),
        }
    }

    fn sibling(&self, ext: &str) -> String {
        let stem = self
            .cert_path
            .rsplit_once('.')
            .filter(|(_, e)| !e.contains('/'))
            .map_or(self.cert_path.as_str(), |(s, _)| s);
        format!("{stem}.{ext}")
    }

    /// The pending CSR on the host (csr issuer).
    pub fn csr_path(&self) -> String {
        self.sibling("csr")
    }

    /// The key of the pending CSR, until the CA's answer is imported.
    pub fn pending_key_path(&self) -> String {
        self.sibling("pending.key")
    }

    /// One line naming the issuer that made the installed chain.
    pub fn issuer_path(&self) -> String {
        self.sibling("issuer")
    }

    /// What `issuer_path` holds for this spec: `csr`, `internal_ca:PATH`,
    /// `acme:DIRECTORY`.
    pub fn issuer_id(&self) -> String {
        issuer_id(&self.issuer)
    }

    pub fn issuer_kind(&self) -> &'static str {
        match self.issuer {
            Issuer::Csr { .. } => "csr",
            Issuer::InternalCa { .. } => "internal_ca",
            Issuer::Acme { .. } => "acme",
        }
    }
}

pub fn issuer_id(issuer: &Issuer) -> String {
    match issuer {
        Issuer::Csr { .. } => "csr".into(),
        Issuer::InternalCa { ca_cert, .. } => format!("internal_ca:{}", ca_cert.display()),
        Issuer::Acme { directory, .. } => format!("acme:{directory}"),
    }
}

/// What the host has. Public material only: the key itself is never read,
/// only whether its public half matches the certificate's (compared on
/// the host).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertFact {
    /// The host's clock when observed (unix seconds): renewal is decided
    /// against it. Not part of the observed state's fingerprint.
    pub now_unix: i64,
    /// The installed chain (PEM), if any.
    pub chain: Option<String>,
    pub key_present: bool,
    /// Whether the key's public half is the certificate's; `None` when
    /// either is missing or the host cannot tell.
    pub key_matches: Option<bool>,
    /// The contents of the issuer marker.
    pub issuer: Option<String>,
    /// A CSR waiting for its CA (PEM), with its key present.
    pub pending_csr: Option<String>,
    /// The key file's `owner:group:mode` (octal), when present.
    pub key_access: Option<String>,
}

impl CertFact {
    /// The state that matters for a saved plan (the clock left out).
    pub fn state_fingerprint(&self) -> String {
        let v = (
            &self.chain,
            self.key_present,
            self.key_matches,
            &self.issuer,
            &self.pending_csr,
            &self.key_access,
        );
        crate::digest::sha256_hex(serde_json::to_string(&v).unwrap_or_default().as_bytes())
    }
}

/// A certificate's state, as `cert list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertState {
    /// Nothing installed.
    Missing,
    /// A CSR waits for its CA.
    WaitingForCa,
    /// Installed and up to date.
    Valid,
    /// Inside the renewal window.
    RenewalDue,
    Expired,
    /// Installed, but names, subject, key or issuer differ from the spec.
    Outdated,
    /// The key on the host is not the certificate's.
    KeyMismatch,
}

impl CertState {
    pub fn label(self) -> &'static str {
        match self {
            CertState::Missing => "missing",
            CertState::WaitingForCa => "waiting for the CA",
            CertState::Valid => "valid",
            CertState::RenewalDue => "renewal due",
            CertState::Expired => "expired",
            CertState::Outdated => "differs from the spec",
            CertState::KeyMismatch => "key and certificate mismatch",
        }
    }
}

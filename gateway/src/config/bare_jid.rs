//! Bare JIDs (`local@domain`) naming our users, in config and in queries.
//!
//! Owns the one normal form users are compared in, so a grant, a site's
//! user list and a looked-up address agree: the localpart lowercased (the
//! case mapping of RFC 7622's UsernameCaseMapped profile, without the rest
//! of PRECIS, which would need a Unicode table crate) and the domain as
//! `normalize_domain` has it. The config form must be bare and canonical;
//! the address form (`from_address`) drops a resource and a trailing dot,
//! as a peer or an operator may write them. It knows nothing of which
//! domains are ours: callers check that.

use super::domain::{normalize_domain, normalize_jid_domain};
use std::fmt;

/// Longest localpart RFC 7622 §3.3 allows, in bytes.
const MAX_LOCAL_BYTES: usize = 1023;
/// Characters RFC 7622 §3.3.1 excludes from a localpart.
const FORBIDDEN_IN_LOCAL: [char; 8] = ['"', '&', '\'', '/', ':', '<', '>', '@'];

/// A user's bare JID in normal form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BareJid {
    jid: String,
    at: usize,
}

/// Why a string is not a bare JID of a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JidError {
    /// Nothing at all.
    #[error("is empty")]
    Empty,
    /// No `@`: a domain, not a user.
    #[error("`{raw}` is not a user's JID (expected `user@domain`)")]
    NoLocalpart {
        /// As given.
        raw: String,
    },
    /// The localpart is empty, too long or has a forbidden character.
    #[error("`{raw}` has an invalid local part")]
    InvalidLocalpart {
        /// As given.
        raw: String,
    },
    /// The domainpart is not a domain name.
    #[error("`{raw}` has an invalid domain: {reason}")]
    InvalidDomain {
        /// As given.
        raw: String,
        /// What `normalize_domain` said.
        reason: String,
    },
    /// A resource where only a bare JID may be written (config).
    #[error("`{raw}` has a resource; write the bare JID `{bare}`")]
    Resource {
        /// As given.
        raw: String,
        /// What it should have been.
        bare: String,
    },
    /// A `/` with nothing after it.
    #[error("`{raw}` has an empty resource")]
    EmptyResource {
        /// As given.
        raw: String,
    },
}

impl BareJid {
    /// A bare JID as written in the config: `local@domain`, no resource,
    /// no trailing dot (any case).
    pub fn parse(raw: &str) -> Result<BareJid, JidError> {
        if let Some((bare, _)) = raw.split_once('/') {
            return Err(JidError::Resource {
                raw: raw.to_string(),
                bare: bare.to_string(),
            });
        }
        BareJid::build(raw, raw, normalize_domain)
    }

    /// The user a full or bare JID names: `local@domain[/resource]`, the
    /// resource dropped and a trailing dot on the domain stripped.
    pub fn from_address(raw: &str) -> Result<BareJid, JidError> {
        // RFC 7622 §3.1: the resource starts at the first `/`, and `@`
        // only separates a localpart before it.
        let bare = match raw.split_once('/') {
            Some((_, "")) => {
                return Err(JidError::EmptyResource {
                    raw: raw.to_string(),
                });
            }
            Some((bare, _)) => bare,
            None => raw,
        };
        BareJid::build(raw, bare, normalize_jid_domain)
    }

    fn build(
        raw: &str,
        bare: &str,
        domain_rule: fn(&str) -> Result<String, String>,
    ) -> Result<BareJid, JidError> {
        if raw.is_empty() {
            return Err(JidError::Empty);
        }
        let Some((local, domain)) = bare.split_once('@') else {
            return Err(JidError::NoLocalpart {
                raw: raw.to_string(),
            });
        };
        let valid_local = !local.is_empty()
            && local.len() <= MAX_LOCAL_BYTES
            && !local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || FORBIDDEN_IN_LOCAL.contains(&c));
        if !valid_local {
            return Err(JidError::InvalidLocalpart {
                raw: raw.to_string(),
            });
        }
        let domain = domain_rule(domain).map_err(|reason| JidError::InvalidDomain {
            raw: raw.to_string(),
            reason,
        })?;
        let local = local.to_lowercase();
        Ok(BareJid {
            at: local.len(),
            jid: format!("{local}@{domain}"),
        })
    }

    /// The localpart (lowercase).
    pub fn local(&self) -> &str {
        &self.jid[..self.at]
    }

    /// The domainpart (lowercase, no trailing dot).
    pub fn domain(&self) -> &str {
        &self.jid[self.at + 1..]
    }

    /// `local@domain`.
    pub fn as_str(&self) -> &str {
        &self.jid
    }
}

impl fmt::Display for BareJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.jid)
    }
}

#[cfg(test)]
mod tests {
    use super::{BareJid, JidError};

    #[test]
    fn config_form_is_bare_and_normalised() {
        let jid = BareJid::parse("Alice@Contoso.Example").expect("valid");
        assert_eq!(jid.as_str(), "alice@contoso.example");
        assert_eq!(jid.local(), "alice");
        assert_eq!(jid.domain(), "contoso.example");
        assert_eq!(
            BareJid::parse("alice+ops@contoso.example")
                .expect("valid")
                .local(),
            "alice+ops"
        );
        assert!(matches!(
            BareJid::parse("alice@contoso.example/phone"),
            Err(JidError::Resource { .. })
        ));
        assert!(matches!(
            BareJid::parse("alice@contoso.example."),
            Err(JidError::InvalidDomain { .. })
        ));
    }

    #[test]
    fn address_form_drops_the_resource_and_a_trailing_dot() {
        for raw in [
            "alice@contoso.example",
            "ALICE@CONTOSO.EXAMPLE",
            "alice@contoso.example.",
            "alice@contoso.example/phone",
            "Alice@Contoso.Example./a/b@c",
        ] {
            let jid = BareJid::from_address(raw).expect(raw);
            assert_eq!(jid.as_str(), "alice@contoso.example", "{raw}");
        }
        assert_eq!(
            BareJid::from_address("Ünal@contoso.example")
                .expect("valid")
                .local(),
            "ünal"
        );
    }

    /// The variant's name, to compare kinds of error in a table.
    fn kind(e: &JidError) -> &'static str {
        match e {
            JidError::Empty => "empty",
            JidError::NoLocalpart { .. } => "no localpart",
            JidError::InvalidLocalpart { .. } => "invalid localpart",
            JidError::InvalidDomain { .. } => "invalid domain",
            JidError::Resource { .. } => "resource",
            JidError::EmptyResource { .. } => "empty resource",
        }
    }

    #[test]
    fn what_is_not_a_user_is_refused() {
        let cases = [
            ("", "empty"),
            ("contoso.example", "no localpart"),
            ("contoso.example/alice@x", "no localpart"),
            ("@contoso.example", "invalid localpart"),
            ("al ice@contoso.example", "invalid localpart"),
            ("a\"b@contoso.example", "invalid localpart"),
            ("a\u{7}b@contoso.example", "invalid localpart"),
            ("a@b@contoso.example", "invalid domain"),
            ("alice@", "invalid domain"),
            ("alice@bad domain", "invalid domain"),
            ("alice@contoso.example/", "empty resource"),
        ];
        for (raw, expected) in cases {
            let err = BareJid::from_address(raw).expect_err(raw);
            assert_eq!(kind(&err), expected, "{raw:?}: {err:?}");
        }
        let long = format!("{}@contoso.example", "a".repeat(1024));
        assert_eq!(
            BareJid::from_address(&long).map_err(|e| kind(&e)),
            Err("invalid localpart")
        );
    }
}

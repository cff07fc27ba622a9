//! The certificate decision: desired [`CertSpec`] + [`CertFact`] → a
//! [`Change`]. Pure: the clock is the host's, carried in the fact.
//!
//! A certificate is replaced, never edited: any difference in names,
//! subject, key or issuer, a key that is not the certificate's, or expiry
//! inside the renewal window means a new key and certificate. For the
//! `csr` issuer a matching request already waiting for its CA is a no-op:
//! nothing more can happen until `xfed cert import`.

use crate::certs::build::PLACEHOLDER_CN;
use crate::certs::dn::dn_string;
use crate::certs::key;
use crate::certs::parse::{self, CertInfo, CsrInfo};
use crate::certs::renewal::{self, renewal};
use crate::certs::resource::{CertFact, CertSpec, CertState};
use crate::digest::sha256_hex;
use crate::plan::{Action, AttrChange, Change, Resource};
use crate::spec::Issuer;

/// The desired state's fingerprint, for saved plans.
pub fn desired_fingerprint(spec: &CertSpec) -> String {
    let v = (
        &spec.cert_path,
        &spec.key_path,
        key::describe(spec.key),
        dn_string(&spec.subject),
        &spec.sans,
        spec.issuer_id(),
        renewal::describe(spec.renew_before),
    );
    sha256_hex(serde_json::to_string(&v).unwrap_or_default().as_bytes())
}

/// What differs between the spec and an installed certificate or a
/// pending request, as attribute changes.
fn differences(
    spec: &CertSpec,
    subject: &str,
    sans: &[String],
    alg: &str,
    bits: u32,
) -> Vec<AttrChange> {
    let mut attrs = Vec::new();
    if sans != spec.sans.as_slice() {
        let added: Vec<&str> = spec
            .sans
            .iter()
            .filter(|s| !sans.contains(s))
            .map(String::as_str)
            .collect();
        let removed: Vec<&str> = sans
            .iter()
            .filter(|s| !spec.sans.contains(s))
            .map(String::as_str)
            .collect();
        if !added.is_empty() {
            attrs.push(AttrChange {
                name: "sans added".into(),
                before: String::new(),
                after: added.join(", "),
            });
        }
        if !removed.is_empty() {
            attrs.push(AttrChange {
                name: "sans removed".into(),
                before: removed.join(", "),
                after: "(none)".into(),
            });
        }
    }
    // An ACME CA writes the subject itself (Let's Encrypt and pebble keep
    // one name as CN and drop O, OU, L, ST, C): only names and key can be
    // asked of it.
    let want_subject = dn_string(&spec.subject);
    if !matches!(spec.issuer, Issuer::Acme { .. }) && subject != want_subject {
        attrs.push(AttrChange {
            name: "subject".into(),
            before: subject.into(),
            after: want_subject,
        });
    }
    let (want_alg, want_bits) = key::parts(spec.key);
    if alg != want_alg || bits != want_bits {
        attrs.push(AttrChange {
            name: "key".into(),
            before: format!("{alg} {bits}"),
            after: key::describe(spec.key),
        });
    }
    attrs
}

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| format!("{}", t.date()))
        .unwrap_or_else(|_| unix.to_string())
}

/// What the host has, read into a state and the reasons for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub state: CertState,
    pub leaf: Option<CertInfo>,
    pub pending: Option<CsrInfo>,
    /// Why the state is what it is, for plans and `cert list`.
    pub reason: String,
    pub attrs: Vec<AttrChange>,
}

fn is_placeholder(c: &CertInfo) -> bool {
    c.issuer.contains(PLACEHOLDER_CN)
}

/// Judges what the host has against the spec.
pub fn assess(spec: &CertSpec, fact: &CertFact) -> Assessment {
    let leaf = fact
        .chain
        .as_deref()
        .and_then(|c| parse::leaf(c.as_bytes()).ok());
    let pending = fact
        .pending_csr
        .as_deref()
        .and_then(|c| parse::csr(c.as_bytes()).ok());
    let request_matches = pending
        .as_ref()
        .is_some_and(|p| differences(spec, &p.subject, &p.sans, &p.key_alg, p.key_bits).is_empty());
    let waiting = matches!(spec.issuer, Issuer::Csr { .. }) && request_matches;
    let mut a = Assessment {
        state: CertState::Missing,
        leaf: leaf.clone(),
        pending,
        reason: String::new(),
        attrs: Vec::new(),
    };
    let request_path = match &spec.issuer {
        Issuer::Csr { request_path } => request_path.display().to_string(),
        _ => String::new(),
    };
    let waiting_reason = |what: &str| {
        format!(
            "{what}; waiting for the CA: the request is in `{request_path}` (`xfed cert show-request`), then `xfed cert import`"
        )
    };

    let Some(c) = leaf.filter(|c| !is_placeholder(c)) else {
        if waiting {
            a.state = CertState::WaitingForCa;
            a.reason = waiting_reason("not issued yet");
        } else {
            a.reason = match (
                &fact.chain,
                fact.chain.as_deref().map(|c| parse::leaf(c.as_bytes())),
            ) {
                (None, _) => "absent".into(),
                (Some(_), Some(Err(e))) => format!("the installed file is unreadable: {e}"),
                _ => "only a placeholder is installed".into(),
            };
        }
        return a;
    };

    let mut attrs = differences(spec, &c.subject, &c.sans, &c.key_alg, c.key_bits);
    let want_issuer = spec.issuer_id();
    if fact.issuer.as_deref() != Some(want_issuer.as_str()) {
        attrs.push(AttrChange {
            name: "issuer".into(),
            before: fact.issuer.clone().unwrap_or_else(|| "unknown".into()),
            after: want_issuer,
        });
    }
    let r = renewal(c.not_before, c.not_after, fact.now_unix, spec.renew_before);
    let (state, reason) = if fact.key_matches == Some(false) || !fact.key_present {
        let why = if fact.key_present {
            "the key on the host does not match the certificate"
        } else {
            "the certificate's key is missing on the host"
        };
        (CertState::KeyMismatch, why.to_string())
    } else if !attrs.is_empty() {
        let names: Vec<&str> = attrs.iter().map(|a| a.name.as_str()).collect();
        let sans_changed = names.iter().any(|n| n.starts_with("sans"));
        let what = if sans_changed {
            "the names changed: a new certificate".to_string()
        } else {
            format!("{} changed", names.join(" and "))
        };
        (CertState::Outdated, what)
    } else if r.expired {
        (
            CertState::Expired,
            format!("expired on {}", date(c.not_after)),
        )
    } else if r.due {
        attrs.push(AttrChange {
            name: "not_after".into(),
            before: date(c.not_after),
            after: "renewed".into(),
        });
        (
            CertState::RenewalDue,
            format!(
                "expires {} ({} days left), inside the renewal window ({} before expiry)",
                date(c.not_after),
                r.days_left,
                renewal::describe(spec.renew_before)
            ),
        )
    } else {
        (
            CertState::Valid,
            format!(
                "valid until {} ({} days left); names, subject, key and issuer match",
                date(c.not_after),
                r.days_left
            ),
        )
    };
    a.attrs = attrs;
    if state != CertState::Valid && waiting {
        a.state = CertState::WaitingForCa;
        a.reason = waiting_reason(&reason);
    } else {
        a.state = state;
        a.reason = reason;
    }
    a
}

/// Decides one certificate resource.
pub fn decide_certificate(r: &Resource, spec: &CertSpec, fact: &CertFact) -> Change {
    let mut a = assess(spec, fact);
    let mut action = match a.state {
        CertState::Valid | CertState::WaitingForCa => Action::NoOp,
        CertState::Missing => Action::Create,
        _ => Action::Replace,
    };
    // A certificate that needs nothing else but whose key has the wrong
    // owner or mode (installed before its service ran unprivileged): only
    // the key's access changes, in place, no new certificate.
    let want_access = spec.key_access();
    if a.state == CertState::Valid
        && let Some(have) = fact.key_access.as_ref().filter(|h| **h != want_access)
    {
        action = Action::Update;
        a.reason = format!("the key file is {have}, not {want_access}: its access is set in place");
        a.attrs = vec![AttrChange {
            name: "key_access".into(),
            before: have.clone(),
            after: want_access,
        }];
    }
    let mut attrs = a.attrs;
    if a.state == CertState::Missing {
        attrs = vec![
            AttrChange {
                name: "subject".into(),
                before: String::new(),
                after: dn_string(&spec.subject),
            },
            AttrChange {
                name: "sans".into(),
                before: String::new(),
                after: spec.sans.join(", "),
            },
            AttrChange {
                name: "key".into(),
                before: String::new(),
                after: key::describe(spec.key),
            },
            AttrChange {
                name: "issuer".into(),
                before: String::new(),
                after: spec.issuer_id(),
            },
        ];
    }
    let mut reason = a.reason;
    if action.is_change() && action != Action::Update && matches!(spec.issuer, Issuer::Csr { .. }) {
        reason.push_str("; apply writes a new key and CSR, then waits for the CA");
    }
    Change {
        address: r.address.clone(),
        host: r.host.clone(),
        pool: r.pool.clone(),
        phase: r.phase,
        kind: crate::plan::ResourceKind::Certificate,
        action,
        reason,
        diff: None,
        attrs: if action.is_change() {
            attrs
        } else {
            Vec::new()
        },
        service_op: None,
        origin: r.origin.to_string(),
        observed: fact.state_fingerprint(),
        desired: desired_fingerprint(spec),
    }
}

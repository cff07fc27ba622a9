//! `GET /access?user=JID[&partner=DOMAIN]`: a user's effective external
//! access policy, as JSON, from the current generation's `PolicyIndex`,
//! with what it means for each partner kind (allowed or not, and the flag
//! that decided) and, when `partner` is given, for that partner.
//!
//! Field names are a contract like `/status`'s: add, never rename. Errors
//! are JSON too, with a stable `error` code: `400` for a query that names
//! no user or not a user's JID (or a `partner` that is not a domain),
//! `404` for a user outside our `domains` (not ours to decide) or a domain
//! that is not one of `[[partners]]`.

use super::admin::Response;
use super::query::parse_query;
use crate::config::{PartnerKind, normalize_jid_domain};
use crate::policy::{AccessError, EffectivePolicy, PartnerAccess, PolicyIndex};
use serde::Serialize;
use std::collections::BTreeMap;

/// The `/access` body for one user.
#[derive(Debug, Serialize)]
pub struct AccessReport<'a> {
    /// The user, bare and normalised.
    pub user: &'a str,
    /// The applying policy's identity; null for the built-in default.
    pub policy: Option<&'a str>,
    /// Why it applies: `user_grant`, `all_users_grant`, `site`, `global`, `default`.
    pub source: &'static str,
    /// The user's home site from `[[sites]]`, or null.
    pub site: Option<&'a str>,
    /// The policy's flags.
    pub enable_federation_access: bool,
    /// The policy's flags.
    pub enable_public_cloud_access: bool,
    /// The policy's flags.
    pub enable_xmpp_access: bool,
    /// `enable_xmpp_access`: needed for every partner, enough for none.
    pub xmpp_federation_allowed: bool,
    /// By partner kind (`federated`, `trusted`, `public_verified`,
    /// `public_unverified`): allowed or not, and the flag that decided.
    pub partner_kinds: BTreeMap<&'static str, KindReport>,
    /// The partner the query names, if it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<PartnerReport>,
}

/// What a policy means for partners of one kind.
#[derive(Debug, Serialize)]
pub struct KindReport {
    /// Whether stanzas may cross.
    pub allowed: bool,
    /// The flag that decided: the first needed flag that is off, or the
    /// kind's own flag when all are on.
    pub decided_by: &'static str,
}

impl KindReport {
    fn of(access: PartnerAccess) -> KindReport {
        KindReport {
            allowed: access.allowed,
            decided_by: access.decided_by.as_str(),
        }
    }
}

/// What a policy means for one partner.
#[derive(Debug, Serialize)]
pub struct PartnerReport {
    /// The partner's domain, normalised.
    pub domain: String,
    /// Its kind.
    pub kind: &'static str,
    /// Whether stanzas may cross.
    pub allowed: bool,
    /// The flag that decided.
    pub decided_by: &'static str,
}

impl<'a> AccessReport<'a> {
    fn of(p: &'a EffectivePolicy) -> AccessReport<'a> {
        AccessReport {
            user: p.user.as_str(),
            policy: p.identity.as_deref(),
            source: p.source.as_str(),
            site: p.site.as_deref(),
            enable_federation_access: p.enable_federation_access,
            enable_public_cloud_access: p.enable_public_cloud_access,
            enable_xmpp_access: p.enable_xmpp_access,
            xmpp_federation_allowed: p.xmpp_federation_allowed(),
            partner_kinds: PartnerKind::ALL
                .into_iter()
                .map(|kind| (kind.as_str(), KindReport::of(p.access(kind))))
                .collect(),
            partner: None,
        }
    }
}

/// An error body.
#[derive(Debug, Serialize)]
struct AccessFailure<'a> {
    error: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'static str>,
}

const HINT: &str = "ask for a bare JID of one of our users: /access?user=alice%40contoso.example";
const PARTNER_HINT: &str = "name one partner domain from `[[partners]]`: /access?user=alice%40contoso.example&partner=fabrikam.example";

/// Answers `/access` with `query` (the text after `?`, if any).
pub fn respond(query: Option<&str>, policy: &PolicyIndex) -> Response {
    let params = match parse_query(query.unwrap_or("")) {
        Ok(params) => params,
        Err(e) => return failure(400, "invalid_query", e.to_string(), None, Some(HINT)),
    };
    let mut users = params.iter().filter(|(k, _)| k == "user").map(|(_, v)| v);
    let (Some(user), None) = (users.next(), users.next()) else {
        let message = if params.iter().any(|(k, _)| k == "user") {
            "`user` is given more than once"
        } else {
            "the query names no `user`"
        };
        return failure(400, "missing_user", message.to_string(), None, Some(HINT));
    };
    let mut partners = params
        .iter()
        .filter(|(k, _)| k == "partner")
        .map(|(_, v)| v);
    let partner = match (partners.next(), partners.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => {
            return failure(
                400,
                "invalid_partner",
                "`partner` is given more than once".to_string(),
                None,
                Some(PARTNER_HINT),
            );
        }
        (Some(raw), None) => match normalize_jid_domain(raw) {
            Ok(domain) => match policy.partner_kind(&domain) {
                Some(kind) => Some((domain, kind)),
                None => {
                    return failure(
                        404,
                        "not_a_partner",
                        format!("`{domain}` is not one of the partners"),
                        None,
                        Some(PARTNER_HINT),
                    );
                }
            },
            Err(e) => {
                return failure(
                    400,
                    "invalid_partner",
                    format!("`partner` {e}"),
                    None,
                    Some(PARTNER_HINT),
                );
            }
        },
    };
    let error = match policy.resolve(user) {
        Ok(effective) => {
            let mut report = AccessReport::of(&effective);
            report.partner = partner.map(|(domain, kind)| {
                let access = effective.access(kind);
                PartnerReport {
                    domain,
                    kind: kind.as_str(),
                    allowed: access.allowed,
                    decided_by: access.decided_by.as_str(),
                }
            });
            return json(200, &report);
        }
        Err(error) => error,
    };
    let message = error.to_string();
    match &error {
        AccessError::InvalidUser { .. } => {
            failure(400, "invalid_user", message, Some(user), Some(HINT))
        }
        AccessError::NotOurs { user: jid, .. } => {
            failure(404, "not_our_user", message, Some(jid.as_str()), None)
        }
    }
}

fn failure(
    status: u16,
    error: &'static str,
    message: String,
    user: Option<&str>,
    hint: Option<&'static str>,
) -> Response {
    json(
        status,
        &AccessFailure {
            error,
            message,
            user,
            hint,
        },
    )
}

fn json<T: Serialize>(status: u16, body: &T) -> Response {
    match serde_json::to_string(body) {
        Ok(mut text) => {
            text.push('\n');
            Response {
                status,
                content_type: "application/json",
                body: text,
            }
        }
        Err(e) => Response {
            status: 500,
            content_type: "text/plain; charset=utf-8",
            body: format!("{e}\n"),
        },
    }
}

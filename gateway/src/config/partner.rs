//! `[[partners]]`: the outside XMPP domains the organisation federates with.
//!
//! Their domains (`domain` and `additional_domains`) are the external
//! listener's allow-list (enforced by `stream::StreamSettings::admit`);
//! `auth` says how their streams authenticate (SASL EXTERNAL, dialback or
//! either), `keepalive` whether idle streams with them get whitespace; a
//! partner's kind decides which policy flag a user needs to exchange
//! stanzas with it (`policy::AccessFlag`).

use super::domain::normalize_domain;
use super::partner_auth::PartnerAuth;
use super::problem::Problem;
use super::reader::Fields;
use super::relay::ServerAddress;

/// What kind of partner a domain is, as in Lync's federation model: a
/// user needs `enable_federation_access` for federated and trusted
/// partners, `enable_public_cloud_access` for public ones (both besides
/// `enable_xmpp_access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerKind {
    /// An explicitly federated organisation (the default).
    Federated,
    /// A partner trusted beyond federation (e.g. a sister organisation).
    Trusted,
    /// A public provider whose identity has been verified.
    PublicVerified,
    /// A public provider whose identity is not verified.
    PublicUnverified,
}

impl PartnerKind {
    /// Every kind, in report order.
    pub const ALL: [PartnerKind; 4] = [
        PartnerKind::Federated,
        PartnerKind::Trusted,
        PartnerKind::PublicVerified,
        PartnerKind::PublicUnverified,
    ];

    /// The config value, also used in `/status` and `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerKind::Federated => "federated",
            PartnerKind::Trusted => "trusted",
            PartnerKind::PublicVerified => "public_verified",
            PartnerKind::PublicUnverified => "public_unverified",
        }
    }

    fn parse(s: &str) -> Option<PartnerKind> {
        PartnerKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How a partner must secure its streams. Only `required` exists: the
/// gateway never carries S2S traffic in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerTls {
    /// STARTTLS (or Direct TLS) before anything else.
    Required,
}

/// One federated partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// The partner's XMPP domain (lowercase).
    pub domain: String,
    /// What kind of partner it is.
    pub kind: PartnerKind,
    /// TLS requirement.
    pub tls: PartnerTls,
    /// How its streams authenticate, both directions.
    pub auth: PartnerAuth,
    /// Other domains of the same partner (e.g. its `conference.` MUC
    /// service), lowercase, under the same rules as `domain`.
    pub additional_domains: Vec<String>,
    /// Whether idle streams with this partner get whitespace keepalives
    /// every `limits.keepalive_interval_secs`.
    pub keepalive: bool,
    /// Where the relay connects for this partner instead of resolving its
    /// `_xmpp-server._tcp` SRV record.
    pub proxy: Option<ServerAddress>,
}

impl Partner {
    pub(crate) fn read(mut f: Fields<'_>, out: &mut Vec<Problem>) -> Option<Partner> {
        let domain = f.required_string("domain", out).and_then(|raw| {
            normalize_domain(&raw)
                .map_err(|e| out.push(Problem::new(f.path_of("domain"), e)))
                .ok()
        });
        let kind = match f.string("kind", out) {
            None => Some(PartnerKind::Federated),
            Some(raw) => {
                let kind = PartnerKind::parse(&raw);
                if kind.is_none() {
                    out.push(
                        Problem::new(f.path_of("kind"), format!("`{raw}` is not a partner kind"))
                            .hint(
                                "use \"federated\", \"trusted\", \"public_verified\" or \"public_unverified\"",
                            ),
                    );
                }
                kind
            }
        };
        let tls = match f.string("tls", out).as_deref() {
            None | Some("required") => Some(PartnerTls::Required),
            Some(other) => {
                out.push(
                    Problem::new(f.path_of("tls"), format!("`{other}` is not supported")).hint(
                        "the only value is \"required\": S2S traffic is never sent in the clear",
                    ),
                );
                None
            }
        };
        if f.present("dialback") {
            out.push(
                Problem::new(f.path_of("dialback"), "was replaced by `auth`").hint(
                    "use auth = \"dialback\" or auth = \"either\" (EXTERNAL preferred) for \
                     `dialback = true`, auth = \"external\" for `dialback = false`",
                ),
            );
        }
        let auth = match f.string("auth", out) {
            None => Some(PartnerAuth::External),
            Some(raw) => {
                let auth = PartnerAuth::parse(&raw);
                if auth.is_none() {
                    out.push(
                        Problem::new(f.path_of("auth"), format!("`{raw}` is not a way to authenticate"))
                            .hint("use \"external\" (SASL EXTERNAL), \"dialback\" (XEP-0220) or \"either\""),
                    );
                }
                auth
            }
        };
        let mut additional_domains = Vec::new();
        for (i, raw) in f
            .string_list("additional_domains", out)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            match normalize_domain(raw) {
                Ok(d) => additional_domains.push(d),
                Err(e) => out.push(Problem::new(
                    format!("{}[{i}]", f.path_of("additional_domains")),
                    e,
                )),
            }
        }
        let keepalive = f.bool("keepalive", out).unwrap_or(true);
        let proxy = f.string("proxy", out).and_then(|raw| {
            ServerAddress::parse(&raw)
                .map_err(|e| {
                    out.push(
                        Problem::new(f.path_of("proxy"), e)
                            .hint("write where to connect for this partner, e.g. \"xmpp.partner.example:5269\""),
                    )
                })
                .ok()
        });
        f.finish(out);
        Some(Partner {
            domain: domain?,
            kind: kind?,
            tls: tls?,
            auth: auth?,
            additional_domains,
            keepalive,
            proxy,
        })
    }

    /// `domain` then `additional_domains`.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.domain.as_str())
            .chain(self.additional_domains.iter().map(String::as_str))
    }

    /// Whether `domain` (normalised) is one of this partner's domains.
    pub fn covers(&self, domain: &str) -> bool {
        self.domains().any(|d| d == domain)
    }
}

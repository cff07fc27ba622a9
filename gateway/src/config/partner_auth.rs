//! A partner's `auth`: how its streams authenticate, as Lync's partner
//! negotiation settings (`SaslNegotiation`, `SupportDialbackNegotiation`).

/// How a partner's streams authenticate, in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerAuth {
    /// SASL EXTERNAL only: inbound the partner presents a certificate that
    /// chains to `relay.partner_ca` and names its domain; outbound the
    /// gateway authenticates with its own certificate (the default).
    External,
    /// Server dialback (XEP-0220) only, after TLS, both directions.
    Dialback,
    /// EXTERNAL when it is offered and valid, dialback otherwise.
    Either,
}

impl PartnerAuth {
    /// Every value, in documentation order.
    pub const ALL: [PartnerAuth; 3] = [
        PartnerAuth::External,
        PartnerAuth::Dialback,
        PartnerAuth::Either,
    ];

    /// The config value.
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerAuth::External => "external",
            PartnerAuth::Dialback => "dialback",
            PartnerAuth::Either => "either",
        }
    }

    /// Parses a config value.
    pub fn parse(s: &str) -> Option<PartnerAuth> {
        PartnerAuth::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether SASL EXTERNAL may authenticate this partner's streams.
    pub fn allows_external(self) -> bool {
        matches!(self, PartnerAuth::External | PartnerAuth::Either)
    }

    /// Whether dialback may authenticate this partner's streams (and so a
    /// dialback secret is needed).
    pub fn allows_dialback(self) -> bool {
        matches!(self, PartnerAuth::Dialback | PartnerAuth::Either)
    }
}

//! Stanzas on an authenticated stream: their addresses, and the error
//! replies the gateway generates for them.
//!
//! Pure functions over [`Element`]: the domain of a JID, the address
//! checks of RFC 6120 §8.1.1–8.1.2 and §13.8 as a receiving server applies
//! them (the `from` domain is the authenticated one, the `to` domain one
//! this listener serves), which stanzas may be answered with an error at
//! all (never an error or a result: that is how bounce loops start), and
//! the error stanza itself (RFC 6120 §8.3), which carries no payload of the
//! original (a body is never echoed across the edge).

use super::error::StreamError;
use super::header::NS_SERVER;
use crate::config::normalize_jid_domain;
use crate::xml::{Element, NS_XML, Namespace, Node};

/// `urn:ietf:params:xml:ns:xmpp-stanzas`
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// A stanza to relay, with the domain pair that selects its outbound stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The sending domain (normalised): the outbound header's `from`.
    pub from_domain: String,
    /// The receiving domain (normalised): the outbound header's `to`.
    pub to_domain: String,
    /// The stanza, namespace-resolved (re-serialised when written).
    pub stanza: Element,
}

/// A stanza error condition the gateway generates (RFC 6120 §8.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StanzaCondition {
    /// The recipient's policy refuses partners (does not reveal whether the user exists).
    ServiceUnavailable,
    /// Our own user's policy refuses the outbound stanza.
    PolicyViolation,
    /// The next hop could not be reached.
    RemoteServerNotFound,
    /// The next hop did not answer in time.
    RemoteServerTimeout,
}

impl StanzaCondition {
    /// The element name.
    pub fn as_str(self) -> &'static str {
        match self {
            StanzaCondition::ServiceUnavailable => "service-unavailable",
            StanzaCondition::PolicyViolation => "policy-violation",
            StanzaCondition::RemoteServerNotFound => "remote-server-not-found",
            StanzaCondition::RemoteServerTimeout => "remote-server-timeout",
        }
    }

    /// The error `type` RFC 6120 §8.3.3 gives it.
    fn error_type(self) -> &'static str {
        match self {
            StanzaCondition::ServiceUnavailable | StanzaCondition::RemoteServerNotFound => "cancel",
            StanzaCondition::PolicyViolation => "modify",
            StanzaCondition::RemoteServerTimeout => "wait",
        }
    }
}

/// The domainpart of `jid` (`local@domain/resource`), normalised.
pub fn jid_domain(jid: &str) -> Result<String, String> {
    let bare = jid.split_once('/').map_or(jid, |(bare, _)| bare);
    let domain = bare.split_once('@').map_or(bare, |(_, domain)| domain);
    normalize_jid_domain(domain)
}

/// Checks a stanza's addresses on a stream authenticated for `authenticated`;
/// `served` are the domains its `to` may name. Returns (from, to) domains.
pub fn check_addresses(
    stanza: &Element,
    authenticated: &str,
    served: &[String],
) -> Result<(String, String), StreamError> {
    let (Some(from), Some(to)) = (stanza.attr("from"), stanza.attr("to")) else {
        return Err(StreamError::ImproperAddressing(stanza.name.clone()));
    };
    let from_domain = jid_domain(from).map_err(StreamError::InvalidFrom)?;
    if from_domain != authenticated {
        return Err(StreamError::InvalidFrom(format!(
            "`{from_domain}` is not the domain this stream authenticated (`{authenticated}`)"
        )));
    }
    let to_domain = jid_domain(to)
        .ok()
        .filter(|d| served.contains(d))
        .ok_or_else(|| StreamError::HostUnknown(Some(to.to_string())))?;
    Ok((from_domain, to_domain))
}

/// Whether an error may be sent back for `stanza`: `iq` get/set, and
/// `message`/`presence` that are not errors (never an error or a result,
/// so two gateways can never bounce at each other).
pub fn expects_error_reply(stanza: &Element) -> bool {
    let kind = stanza.attr("type").unwrap_or("");
    match stanza.name.as_str() {
        "iq" => matches!(kind, "get" | "set"),
        "message" | "presence" => kind != "error",
        _ => false,
    }
}

/// Adds `xml:lang='lang'` unless the stanza has its own.
pub fn with_lang(mut stanza: Element, lang: &str) -> Element {
    if stanza.attr_ns(NS_XML, "lang").is_none() {
        stanza.attrs.push((
            Namespace::from_static(NS_XML),
            "lang".to_string(),
            lang.to_string(),
        ));
    }
    stanza
}

/// The error reply to `stanza` (addresses swapped, same name and `id`),
/// routed from its `to` domain back to its `from` domain.
pub fn error_reply(stanza: &Element, condition: StanzaCondition) -> Option<Routed> {
    let from = stanza.attr("from")?;
    let to = stanza.attr("to")?;
    let mut attrs = vec![
        (Namespace::NONE, "from".to_string(), to.to_string()),
        (Namespace::NONE, "to".to_string(), from.to_string()),
        (Namespace::NONE, "type".to_string(), "error".to_string()),
    ];
    if let Some(id) = stanza.attr("id") {
        attrs.push((Namespace::NONE, "id".to_string(), id.to_string()));
    }
    let error = Element {
        ns: Namespace::from_static(NS_SERVER),
        name: "error".to_string(),
        attrs: vec![(
            Namespace::NONE,
            "type".to_string(),
            condition.error_type().to_string(),
        )],
        children: vec![Node::Element(Element {
            ns: Namespace::from_static(NS_STANZAS),
            name: condition.as_str().to_string(),
            attrs: Vec::new(),
            children: Vec::new(),
        })],
    };
    Some(Routed {
        from_domain: jid_domain(to).ok()?,
        to_domain: jid_domain(from).ok()?,
        stanza: Element {
            ns: Namespace::from_static(NS_SERVER),
            name: stanza.name.clone(),
            attrs,
            children: vec![Node::Element(error)],
        },
    })
}

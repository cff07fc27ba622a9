//! Stream headers: checking the one we receive, writing the one we send.
//!
//! Owns the rules of RFC 6120 §4.7 as they apply to a receiving S2S
//! server: streams namespace, `jabber:server` content namespace, version
//! 1.x, a `to` we serve, a well-formed `from`. Domains are compared as RFC
//! 7622 says (any case, a trailing dot stripped). Whether that `from` may
//! use the listener is the peer rule's business (`StreamSettings::admit`).

use super::error::StreamError;
use super::settings::StreamSettings;
use super::stream_id::StreamId;
use crate::config::normalize_jid_domain;
use crate::xml::{StreamOpen, escape_attr};

/// `http://etherx.jabber.org/streams`
pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
/// `jabber:server`, the S2S content namespace.
pub const NS_SERVER: &str = "jabber:server";
/// `jabber:server:dialback` (XEP-0220), declared on every header we send.
pub const NS_DIALBACK: &str = "jabber:server:dialback";

/// A received header that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHeader {
    /// The domain the peer wants to reach (normalised; one we serve).
    pub to: String,
    /// The domain the peer claims to be (normalised), if it said.
    pub from: Option<String>,
    /// The stream's default language (`xml:lang`), if it declared one.
    pub lang: Option<String>,
}

impl PeerHeader {
    /// Checks `open` against the listener's settings.
    pub fn validate(
        open: &StreamOpen,
        settings: &StreamSettings,
    ) -> Result<PeerHeader, StreamError> {
        let element = &open.element;
        if element.ns != NS_STREAMS {
            return Err(StreamError::InvalidNamespace(format!(
                "root element namespace is {:?}, expected {NS_STREAMS:?}",
                element.ns
            )));
        }
        if element.name != "stream" {
            return Err(StreamError::NotAStream(element.name.clone()));
        }
        if open.default_ns.as_deref() != Some(NS_SERVER) {
            return Err(StreamError::InvalidNamespace(format!(
                "content namespace is {:?}, expected {NS_SERVER:?}",
                open.default_ns.as_deref().unwrap_or("")
            )));
        }
        let version = element.attr("version");
        let major = version
            .and_then(|v| v.split_once('.'))
            .map(|(major, _)| major.trim());
        if major != Some("1") {
            return Err(StreamError::UnsupportedVersion(version.map(str::to_string)));
        }
        let to = element.attr("to").map(str::trim).filter(|t| !t.is_empty());
        let Some(to_raw) = to else {
            return Err(StreamError::HostUnknown(None));
        };
        let to = normalize_jid_domain(to_raw)
            .ok()
            .filter(|d| settings.local_domains.contains(d))
            .ok_or_else(|| StreamError::HostUnknown(Some(to_raw.to_string())))?;
        let from = match element.attr("from") {
            None => None,
            Some(raw) => Some(normalize_jid_domain(raw).map_err(StreamError::InvalidFrom)?),
        };
        let lang = element
            .attr_ns(crate::xml::NS_XML, "lang")
            .filter(|l| !l.is_empty())
            .map(str::to_string);
        Ok(PeerHeader { to, from, lang })
    }
}

/// The header the gateway answers with. `from` is the domain it speaks
/// for (absent when the peer's `to` was refused), `to` the peer's `from`.
pub fn response_header(id: &StreamId, from: Option<&str>, to: Option<&str>) -> String {
    let mut header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_SERVER}' xmlns:stream='{NS_STREAMS}' \
         xmlns:db='{NS_DIALBACK}' id='{id}' version='1.0' xml:lang='en'"
    );
    if let Some(from) = from {
        header.push_str(&format!(" from='{}'", escape_attr(from)));
    }
    if let Some(to) = to {
        header.push_str(&format!(" to='{}'", escape_attr(to)));
    }
    header.push('>');
    header
}

//! XMPP stream semantics for the gateway's receiving side.
//!
//! Owns: header validation, admission by the listener's peer rule (the
//! external listener's partner allow-list), feature negotiation (STARTTLS,
//! then SASL EXTERNAL for a peer whose certificate is valid for its `from`,
//! or dialback for a partner allowed to use it), the checks on every stanza of an authenticated stream
//! (addresses, the user's access policy) that decide whether it is relayed
//! (`StreamEvent::Relay`) or denied, and the mapping of every protocol
//! violation to a stream error. Built on `xml::Framer`; does no I/O (see
//! `machine`).

mod condition;
mod error;
mod header;
mod machine;
mod mechanism;
mod refusal;
mod settings;
mod stanza;
mod stream_id;

pub use condition::Condition;
pub use error::StreamError;
pub use header::{NS_DIALBACK, NS_SERVER, NS_STREAMS, PeerHeader, response_header};
pub use machine::{
    Directive, NS_DIALBACK_FEATURE, NS_SASL, NS_TLS, Phase, StreamEvent, StreamMachine,
};
pub use mechanism::{DialbackOutcome, Mechanism};
pub use refusal::Refusal;
pub use settings::StreamSettings;
pub use stanza::{
    NS_STANZAS, Routed, StanzaCondition, check_addresses, error_reply, expects_error_reply,
    jid_domain, with_lang,
};
pub use stream_id::StreamId;

#[cfg(test)]
mod dialback_tests;
#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod tests;

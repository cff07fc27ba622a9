//! XMPP stream semantics for the gateway's receiving side.
//!
//! Owns: header validation, admission by the listener's peer rule (the
//! external listener's partner allow-list), feature negotiation (STARTTLS
//! now; SASL EXTERNAL and dialback later), the mapping of every protocol
//! violation to a stream error. Built on `xml::Framer`; does no I/O (see `machine`).

mod condition;
mod error;
mod header;
mod machine;
mod refusal;
mod settings;
mod stream_id;

pub use condition::Condition;
pub use error::StreamError;
pub use header::{NS_DIALBACK, NS_SERVER, NS_STREAMS, PeerHeader, response_header};
pub use machine::{Directive, NS_TLS, Phase, StreamMachine};
pub use refusal::Refusal;
pub use settings::StreamSettings;
pub use stream_id::StreamId;

#[cfg(test)]
mod tests;

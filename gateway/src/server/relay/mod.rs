//! The relay: outbound streams and the router that feeds them.
//!
//! Owns every connection the gateway opens (to the internal server, to
//! partners), the routing of stanzas that inbound streams accepted, and
//! the error replies for stanzas that cannot be delivered. Inbound streams
//! are `connection`'s; the decisions on their stanzas are `stream`'s.

mod handshake;
mod outbound;
mod resolve;
mod retry;
mod router;
mod stats;
mod target;
mod verify;

pub use router::Router;
pub use stats::{InboundStream, RelayStats};
pub use verify::VerifyRequest;

#[cfg(test)]
mod tests;

//! Stream IDs: fresh, unpredictable, never repeated (RFC 6120 §4.7.3).
//!
//! 128 random bits from the TLS stack's CSPRNG, hex-encoded. Dialback keys
//! (XEP-0185) will be bound to these, so predictability would be a hole.

use std::fmt;

/// The `id` of a stream header the gateway sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamId(String);

impl StreamId {
    /// A new random ID.
    pub fn random() -> StreamId {
        let mut bytes = [0u8; 16];
        crate::tls::fill_random(&mut bytes);
        StreamId(hex::encode(bytes))
    }

    /// The ID text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

//! The one content digest xfed uses — SHA-256, lower-case hex — for file
//! and binary identities, plan fingerprints and saved plans. The bottom
//! layer: it uses nothing of ours.

use sha2::{Digest, Sha256};

/// SHA-256 of `data`, as 64 lower-case hex digits.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

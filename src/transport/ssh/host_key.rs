//! `HostKey`: a server's public key as SSH sends it (the wire blob), with
//! the two things a person needs to check it: its type name and its
//! fingerprint in `ssh-keygen -l` form (`SHA256:` + unpadded base64).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};

/// A public host key in SSH wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    blob: Vec<u8>,
}

impl HostKey {
    pub fn from_blob(blob: &[u8]) -> Self {
        HostKey {
            blob: blob.to_vec(),
        }
    }

    /// Decodes the base64 key field of a known_hosts or `.pub` line.
    pub fn from_base64(text: &str) -> Option<Self> {
        STANDARD
            .decode(text)
            .ok()
            .filter(|b| !b.is_empty())
            .map(|blob| HostKey { blob })
    }

    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.blob)
    }

    /// The algorithm name inside the blob (`ssh-ed25519`,
    /// `ecdsa-sha2-nistp256`, `ssh-rsa`, …), `unknown` if malformed.
    pub fn key_type(&self) -> String {
        let name = self
            .blob
            .get(..4)
            .and_then(|len| <[u8; 4]>::try_from(len).ok())
            .map(|len| u32::from_be_bytes(len) as usize)
            .and_then(|len| self.blob.get(4..4usize.checked_add(len)?))
            .and_then(|name| std::str::from_utf8(name).ok());
        name.unwrap_or("unknown").to_string()
    }

    /// `SHA256:…` exactly as `ssh-keygen -lf` prints it.
    pub fn fingerprint(&self) -> String {
        format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(&self.blob))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with ssh-keygen; fingerprints from `ssh-keygen -lf`.
    const ED25519: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIMdFl7mAX7hd/16vixk1tQsYPDuPv0iL3BKf8abX/Myl";
    const ECDSA: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOUqGjFkhQn21gDy3d2PvAQfvS3jDlQBEslUUVAWFNBBYt82U7zkxgtpGVS2qYZJFnxG5uLTN6e72xdHvmR7RNM=";

    #[test]
    fn fingerprint_matches_ssh_keygen() {
        let k = HostKey::from_base64(ED25519).expect("decodes");
        assert_eq!(k.key_type(), "ssh-ed25519");
        assert_eq!(
            k.fingerprint(),
            "SHA256:KOIPPfyjj7WBWX9yRTR1rScg88IW3xrN+YUruIhaEd4"
        );
        let k = HostKey::from_base64(ECDSA).expect("decodes");
        assert_eq!(k.key_type(), "ecdsa-sha2-nistp256");
        assert_eq!(
            k.fingerprint(),
            "SHA256:yUZ4D0Yewvbr041Si+iIvYqGRhEl2sUtFytt5aXCNFc"
        );
        assert_eq!(k.to_base64(), ECDSA);
    }

    #[test]
    fn malformed_blobs() {
        assert_eq!(HostKey::from_base64("not base64!"), None);
        assert_eq!(HostKey::from_base64(""), None);
        assert_eq!(
            HostKey::from_blob(&[0, 0, 0, 9, b'x']).key_type(),
            "unknown"
        );
        assert_eq!(HostKey::from_blob(&[0xff; 4]).key_type(), "unknown");
    }
}

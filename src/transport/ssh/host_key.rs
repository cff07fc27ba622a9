//! `HostKey`: a server's public key as SSH sends it (the wire blob), with
//! the things a person needs to check it: its type name, its size and its
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

    /// The blob's SSH strings (length-prefixed fields), as far as they parse.
    fn fields(&self) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut rest = self.blob.as_slice();
        while let Some(len) = rest.get(..4).and_then(|l| <[u8; 4]>::try_from(l).ok()) {
            let len = u32::from_be_bytes(len) as usize;
            let Some(field) = rest.get(4..4usize.saturating_add(len)) else {
                break;
            };
            out.push(field);
            rest = &rest[4 + len..];
        }
        out
    }

    /// The key size in bits as `ssh-keygen -l` gives it: 256 for ed25519,
    /// the curve's for ECDSA, the modulus's for RSA; 0 if unknown.
    pub fn bits(&self) -> usize {
        match self.key_type().as_str() {
            "ssh-ed25519" => 256,
            "ecdsa-sha2-nistp256" => 256,
            "ecdsa-sha2-nistp384" => 384,
            "ecdsa-sha2-nistp521" => 521,
            // string "ssh-rsa", mpint e, mpint n.
            "ssh-rsa" => self.fields().get(2).map_or(0, |n| {
                let n: &[u8] = n;
                let start = n.iter().position(|b| *b != 0).unwrap_or(n.len());
                let n = &n[start..];
                n.first().map_or(0, |top| {
                    (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
                })
            }),
            _ => 0,
        }
    }

    /// The family `ssh-keygen -l` names in parentheses: `ED25519`, `ECDSA`,
    /// `RSA`, `DSA`, or the type name itself.
    pub fn family(&self) -> String {
        let t = self.key_type();
        match t.as_str() {
            "ssh-ed25519" => "ED25519".into(),
            "ssh-rsa" => "RSA".into(),
            "ssh-dss" => "DSA".into(),
            t if t.starts_with("ecdsa-sha2-") => "ECDSA".into(),
            _ => t,
        }
    }

    /// One line as `ssh-keygen -lf` prints it for this key with `comment`
    /// (for a known_hosts file the comment is the host name):
    /// `256 SHA256:… 203.0.113.101 (ED25519)`.
    pub fn keygen_line(&self, comment: &str) -> String {
        format!(
            "{} {} {comment} ({})",
            self.bits(),
            self.fingerprint(),
            self.family()
        )
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

    const RSA3072: &str = "AAAAB3NzaC1yc2EAAAADAQABAAABgQCpx7fZOOeCH1aTSkNLZwfpiGOORHnC5vcgmF0ZTks6i5F5xj0vEACxqm0YKsX+hpFOVJ47ufMQ+LcaVTxDJ8R2MqDjb5SGhaFsZ8q+ngVGVAcrB6V3UktDO7gbYzOPOmOHqYxyltI+1bGNY097UxP9J88f9iB96FjZNcNGxrJqjNGbY4dfdzowbXqA4ee+tbMVykdFT4sg9qzl49Mwm7qhem+4H83mmynWaMILxfxIgVR/Lb1DFgdZvv8DYucGH9LaNir/1JU044tVT0yw9niP8zqOotWIOx3kqif7VpsRnH7nB6WF6bFvPa+7pN39C+iALbQeil1XtP5Wk0ZjzViyrIDCvCSS2Fz9bvRLxSQqKeTYiaB8HzQH2DoV3wzXhf7bJgCZNOoD5qyNu9kjMaENQItrw1O6C4Y+vOnLR5bYEhsfCWeoCX1A7or/aSnsCXPNvdesY8ExWp62g3O93y4MIdDxT3gpAGnL3hdSRZmkShdhgnpGddPVYw0D3U1z1wk=";
    const RSA3072_FP: &str = "SHA256:UQ/dhc3qUiDpaaGEKP0Gf8xtAIh4tSZyqJdEG+RgT6U";

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
    fn keygen_lines_match_ssh_keygen() {
        // `ssh-keygen -lf` of a known_hosts file holding these keys.
        let k = HostKey::from_base64(ED25519).expect("decodes");
        assert_eq!(
            k.keygen_line("203.0.113.101"),
            "256 SHA256:KOIPPfyjj7WBWX9yRTR1rScg88IW3xrN+YUruIhaEd4 203.0.113.101 (ED25519)"
        );
        let k = HostKey::from_base64(ECDSA).expect("decodes");
        assert_eq!(
            k.keygen_line("h"),
            "256 SHA256:yUZ4D0Yewvbr041Si+iIvYqGRhEl2sUtFytt5aXCNFc h (ECDSA)"
        );
        // `ssh-keygen -t rsa -b 3072`: a 3072-bit modulus with its sign byte.
        let k = HostKey::from_base64(RSA3072).expect("decodes");
        assert_eq!(k.family(), "RSA");
        assert_eq!(k.bits(), 3072);
        assert_eq!(k.keygen_line("h"), format!("3072 {RSA3072_FP} h (RSA)"));
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

//! `Output`: what a finished command left behind.
//!
//! A non-zero status is data, not an error: `Transport::run` returns it and the
//! caller decides (`Transport::run_ok` turns it into
//! `TransportError::CommandFailed`). A command killed by a signal reports
//! `128 + signal number`, as a shell does, on every transport.

use std::fmt;

/// Exit status and captured output of a command.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Output {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// stdout as text (lossy), for commands whose output is text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (lossy), trimmed and cut to a size that fits a message.
    pub fn stderr_excerpt(&self) -> String {
        excerpt(&self.stderr)
    }
}

/// Longest stderr excerpt kept in an error: its start (what failed) and its
/// end (a log's last lines, where the cause usually is); the middle is cut.
const MAX_EXCERPT: usize = 1000;
const EXCERPT_HEAD: usize = 300;

pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= MAX_EXCERPT {
        return text.to_string();
    }
    let head: String = chars[..EXCERPT_HEAD].iter().collect();
    let tail: String = chars[chars.len() - (MAX_EXCERPT - EXCERPT_HEAD)..]
        .iter()
        .collect();
    format!(
        "{head}… ({} bytes in all, the middle cut) …{tail}",
        bytes.len()
    )
}

impl fmt::Debug for Output {
    // Readable text instead of byte arrays; long output is cut.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("status", &self.status)
            .field("stdout", &excerpt(&self.stdout))
            .field("stderr", &excerpt(&self.stderr))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_trims_and_cuts() {
        assert_eq!(excerpt(b"  oops\n"), "oops");
        let mut long = b"start-up failed:".to_vec();
        long.extend(vec![b'e'; 5000]);
        long.extend(b"the cause");
        let e = excerpt(&long);
        assert!(e.starts_with("start-up failed:"), "{e}");
        assert!(e.contains("(5025 bytes in all, the middle cut)"), "{e}");
        assert!(e.ends_with("the cause"), "{e}");
        assert!(e.len() < 1100);
    }
}

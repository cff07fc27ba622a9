//! The buffer one connection reads its socket into.
//!
//! Owns its size, which follows the traffic rather than the stream's
//! state: 1 KiB while nothing flows, 8 KiB once a read fills the small one
//! on an authenticated stream (data is arriving faster than 1 KiB at a
//! time), and 1 KiB again after `QUIET` without a read. Before
//! authentication it never grows, so a stranger's connection holds 1 KiB.
//! An idle authenticated S2S stream is the common case at scale (10,000 of
//! them should fit in 200 MiB), and 8 KiB each held for nothing was a
//! third of its memory. It does not decide when to read or what the bytes
//! mean: `connection` does.

use std::time::Duration;

/// The size until data flows on an authenticated stream, and when it stops.
pub const SMALL: usize = 1024;
/// The size while data flows on an authenticated stream; with the
/// framer's limits this bounds the memory of a busy one.
pub const LARGE: usize = 8 * 1024;
/// Silence after which a large buffer is given back.
pub const QUIET: Duration = Duration::from_secs(5);

/// A connection's read buffer.
#[derive(Debug)]
pub struct ReadBuffer {
    buf: Vec<u8>,
}

impl ReadBuffer {
    /// A small buffer.
    pub fn new() -> ReadBuffer {
        ReadBuffer {
            buf: vec![0u8; SMALL],
        }
    }

    /// Where the next read goes.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The first `n` bytes of the last read.
    pub fn filled(&self, n: usize) -> &[u8] {
        &self.buf[..n.min(self.buf.len())]
    }

    /// Whether it is large, so `shrink` after `QUIET` would free memory.
    pub fn is_large(&self) -> bool {
        self.buf.len() > SMALL
    }

    /// After a read of `n` bytes (already consumed by the caller): grows
    /// to `LARGE` when the read filled the buffer on an authenticated
    /// stream, since more is probably waiting.
    pub fn after_read(&mut self, n: usize, authenticated: bool) {
        if authenticated && n == self.buf.len() && self.buf.len() < LARGE {
            self.buf = vec![0u8; LARGE];
        }
    }

    /// Back to `SMALL`, freeing the large buffer (the peer went quiet).
    pub fn shrink(&mut self) {
        if self.is_large() {
            self.buf = vec![0u8; SMALL];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_small() {
        let mut buf = ReadBuffer::new();
        assert_eq!(buf.space().len(), SMALL);
        assert!(!buf.is_large());
    }

    #[test]
    fn never_grows_before_authentication() {
        let mut buf = ReadBuffer::new();
        buf.after_read(SMALL, false);
        assert_eq!(buf.space().len(), SMALL);
    }

    #[test]
    fn an_idle_authenticated_stream_stays_small() {
        // The SASL exchange and the restarted header are short reads.
        let mut buf = ReadBuffer::new();
        buf.after_read(200, true);
        buf.after_read(SMALL - 1, true);
        assert_eq!(buf.space().len(), SMALL);
    }

    #[test]
    fn a_full_read_when_authenticated_grows_it_and_quiet_shrinks_it() {
        let mut buf = ReadBuffer::new();
        buf.after_read(SMALL, true);
        assert_eq!(buf.space().len(), LARGE);
        assert!(buf.is_large());
        // Further full reads do not grow it past LARGE.
        buf.after_read(LARGE, true);
        assert_eq!(buf.space().len(), LARGE);
        buf.shrink();
        assert_eq!(buf.space().len(), SMALL);
        assert!(!buf.is_large());
        assert_eq!(buf.space().len(), SMALL);
    }

    #[test]
    fn filled_is_bounded_by_the_buffer() {
        let mut buf = ReadBuffer::new();
        buf.space()[..3].copy_from_slice(b"abc");
        assert_eq!(buf.filled(3), b"abc");
        assert_eq!(buf.filled(SMALL * 4).len(), SMALL);
    }
}

//! How long a pair whose outbound stream failed is left alone.
//!
//! Bounds reconnect attempts: after a failure the router answers the
//! pair's stanzas at once (with the failure's condition) instead of
//! connecting again, for a delay that doubles with each consecutive
//! failure, from 5 s up to 300 s (ejabberd's `s2s_max_retry_delay`). A
//! stream that gets established resets the count.

use std::time::Duration;

/// The first delay.
pub const FIRST: Duration = Duration::from_secs(5);
/// The longest delay.
pub const MAX: Duration = Duration::from_secs(300);

/// The delay after `failures` consecutive failures (1 or more).
pub fn delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(MAX)
}

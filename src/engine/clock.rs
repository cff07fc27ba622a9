//! The one place a run reads the wall clock, so the pure core never does:
//! certificates' days left, saved plans' timestamps, lock leases and the
//! doctor's `now` all take it from here, as a value.

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it): for
/// serial numbers that must differ between two runs in the same second.
pub fn now_unix_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

//! When a certificate is renewed: once the share of its lifetime (default
//! a third) or the number of days the spec names is all that remains.

use crate::spec::RenewBefore;

const DAY: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// Renew now.
    pub due: bool,
    pub expired: bool,
    /// Whole days until not-after (negative once expired).
    pub days_left: i64,
    /// Unix time the renewal window opens.
    pub window_opens: i64,
}

/// The renewal decision for a certificate valid from `not_before` to
/// `not_after`, at `now` (all unix seconds).
pub fn renewal(not_before: i64, not_after: i64, now: i64, before: RenewBefore) -> Renewal {
    let lifetime = (not_after - not_before).max(0);
    let margin = match before {
        RenewBefore::Fraction(f) => (lifetime as f64 * f.clamp(0.0, 1.0)).round() as i64,
        RenewBefore::Days(d) => i64::from(d) * DAY,
    };
    let window_opens = not_after - margin;
    Renewal {
        due: now >= window_opens,
        expired: now >= not_after,
        days_left: (not_after - now).div_euclid(DAY),
        window_opens,
    }
}

/// `33%` / `30d`, as the spec writes it.
pub fn describe(before: RenewBefore) -> String {
    match before {
        RenewBefore::Fraction(f) => format!("{}% of the lifetime", (f * 100.0).round()),
        RenewBefore::Days(d) => format!("{d} days"),
    }
}

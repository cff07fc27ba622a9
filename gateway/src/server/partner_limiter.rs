//! Admission control once a stream is authenticated: a cap on concurrent
//! authenticated inbound streams per partner domain.
//!
//! Owns the counts; a `PartnerSlot` held by the connection gives its place
//! back on drop, so a stream that ends by any path (error, early return,
//! a panicking task) cannot leak one. It decides nothing else: closing the
//! refused stream, counting and logging it are the connection's.
//!
//! The accept-time caps (`limiter`) cannot do this: the partner domain is
//! known only once SASL EXTERNAL or dialback has proved it, and counting
//! by domain is what stops a partner with many addresses (or one cycling
//! them) from holding more than its share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Authenticated inbound streams per partner domain, on one listener.
#[derive(Debug, Default)]
pub struct PartnerLimiter {
    per_partner: Mutex<HashMap<String, u32>>,
}

/// One authenticated stream's place in its partner's count.
#[derive(Debug)]
pub struct PartnerSlot {
    limiter: Arc<PartnerLimiter>,
    partner: String,
}

impl PartnerLimiter {
    /// A place for a stream of `partner` if fewer than `max` are held;
    /// `None` when the partner already has `max` streams.
    pub fn try_acquire(self: &Arc<Self>, partner: &str, max: u32) -> Option<PartnerSlot> {
        let mut counts = self
            .per_partner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(partner.to_string()).or_insert(0);
        if *n >= max {
            if *n == 0 {
                counts.remove(partner);
            }
            return None;
        }
        *n += 1;
        Some(PartnerSlot {
            limiter: self.clone(),
            partner: partner.to_string(),
        })
    }

    /// Streams `partner` holds now.
    pub fn current(&self, partner: &str) -> u32 {
        self.per_partner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(partner)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for PartnerSlot {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .per_partner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.partner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.partner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_partner_alone_and_frees_on_drop() {
        let l = Arc::new(PartnerLimiter::default());
        let a1 = l.try_acquire("a.example", 2).expect("first");
        let _a2 = l.try_acquire("a.example", 2).expect("second");
        assert!(l.try_acquire("a.example", 2).is_none(), "third refused");
        let _b = l.try_acquire("b.example", 2).expect("another partner");
        assert_eq!(l.current("a.example"), 2);
        drop(a1);
        assert_eq!(l.current("a.example"), 1);
        assert!(l.try_acquire("a.example", 2).is_some());
    }

    #[test]
    fn a_panicking_holder_gives_its_place_back() {
        let l = Arc::new(PartnerLimiter::default());
        let inner = l.clone();
        let joined = std::thread::spawn(move || {
            let _slot = inner.try_acquire("a.example", 1);
            panic!("the connection task fails");
        })
        .join();
        assert!(joined.is_err());
        assert_eq!(l.current("a.example"), 0);
        assert!(l.try_acquire("a.example", 1).is_some());
    }
}

//! The budget of connections not yet authenticated, per S2S listener.
//!
//! Owns one count per listener and the permits that hold a place in it.
//! A connection takes a permit at accept and gives it back when its
//! stream is authenticated or ends, so the memory strangers can make the
//! gateway hold is this budget times the per-connection bound (the
//! unauthenticated element limits plus one read). It decides nothing
//! else: refusing and counting is the accept loop's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Connections not yet authenticated on one listener.
#[derive(Debug, Default)]
pub struct PreAuthBudget {
    count: Arc<AtomicU32>,
}

/// A place in the budget, given back on drop.
#[derive(Debug)]
pub struct PreAuthPermit {
    count: Arc<AtomicU32>,
}

impl PreAuthBudget {
    /// A place, if fewer than `limit` are taken.
    pub fn try_enter(&self, limit: u32) -> Option<PreAuthPermit> {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| PreAuthPermit {
                count: self.count.clone(),
            })
    }

    /// Places taken now.
    pub fn current(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }
}

impl Drop for PreAuthPermit {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::PreAuthBudget;

    #[test]
    fn places_are_refused_at_the_limit_and_given_back_on_drop() {
        let budget = PreAuthBudget::default();
        let first = budget.try_enter(2);
        let second = budget.try_enter(2);
        assert!(first.is_some() && second.is_some());
        assert!(budget.try_enter(2).is_none());
        assert_eq!(budget.current(), 2);
        drop(first);
        assert_eq!(budget.current(), 1);
        assert!(budget.try_enter(2).is_some());
        assert_eq!(budget.current(), 1, "the permit was dropped at once");
    }
}

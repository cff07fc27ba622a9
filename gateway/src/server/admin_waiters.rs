//! The admin listener's budget of connections that have not sent their
//! request yet.
//!
//! Owns a small FIFO of such connections. When it is full, the oldest one
//! is told to close to make room for the newcomer, so idle connections can
//! never hold every slot and starve `/healthz` (a probe sends its request
//! at once and leaves the FIFO within a round trip). It must not touch a
//! connection whose request was read: those are answered and closed by
//! their own task within the write deadline.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The FIFO of connections waiting for their request head.
#[derive(Debug)]
pub struct HeadWaiters {
    waiting: Mutex<VecDeque<(u64, Arc<Notify>)>>,
    next: AtomicU64,
    capacity: usize,
}

/// One connection's place in the FIFO; leaving it (drop) frees the slot.
#[derive(Debug)]
pub struct Waiting {
    owner: Arc<HeadWaiters>,
    id: u64,
    evict: Arc<Notify>,
}

impl HeadWaiters {
    /// A FIFO of at most `capacity` waiting connections.
    pub fn new(capacity: usize) -> Arc<HeadWaiters> {
        Arc::new(HeadWaiters {
            waiting: Mutex::default(),
            next: AtomicU64::new(0),
            capacity: capacity.max(1),
        })
    }

    /// Enters a new connection; returns its place and whether an older
    /// one was evicted to make room.
    pub fn enter(self: &Arc<Self>) -> (Waiting, bool) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let evict = Arc::new(Notify::new());
        let mut waiting = self.lock();
        let evicted = if waiting.len() >= self.capacity {
            waiting.pop_front().map(|(_, oldest)| oldest)
        } else {
            None
        };
        waiting.push_back((id, evict.clone()));
        drop(waiting);
        let was_evicted = evicted.is_some();
        if let Some(oldest) = evicted {
            // Stored as a permit if the task is not waiting on it yet.
            oldest.notify_one();
        }
        (
            Waiting {
                owner: self.clone(),
                id,
                evict,
            },
            was_evicted,
        )
    }

    /// Connections waiting now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, Arc<Notify>)>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Waiting {
    /// Completes when a newer connection evicted this one.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut waiting = self.owner.lock();
        if let Some(at) = waiting.iter().position(|(id, _)| *id == self.id) {
            waiting.remove(at);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::HeadWaiters;

    #[tokio::test]
    async fn a_full_fifo_evicts_its_oldest_and_leaving_frees_a_slot() {
        let waiters = HeadWaiters::new(2);
        let (first, evicted) = waiters.enter();
        assert!(!evicted);
        let (second, evicted) = waiters.enter();
        assert!(!evicted);
        let (third, evicted) = waiters.enter();
        assert!(evicted);
        // The oldest is told (the permit waits for it), the others are not.
        tokio::time::timeout(std::time::Duration::from_secs(5), first.evicted())
            .await
            .unwrap();
        assert_eq!(waiters.len(), 2);
        drop(second);
        assert_eq!(waiters.len(), 1);
        let (_fourth, evicted) = waiters.enter();
        assert!(!evicted);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(10), third.evicted())
                .await
                .is_err()
        );
    }
}

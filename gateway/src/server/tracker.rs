//! Counts live connection tasks so shutdown can wait for them to finish.
//!
//! A minimal `TaskTracker`: each task holds a `TaskToken`; `wait_idle`
//! resolves when none is left. Used for the SIGTERM grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    live: AtomicUsize,
    idle: Notify,
}

/// Tracks live tasks.
#[derive(Debug, Clone, Default)]
pub struct TaskTracker {
    inner: Arc<Inner>,
}

/// Held by one live task.
#[derive(Debug)]
pub struct TaskToken {
    inner: Arc<Inner>,
}

impl TaskTracker {
    /// Registers a task.
    pub fn token(&self) -> TaskToken {
        self.inner.live.fetch_add(1, Ordering::SeqCst);
        TaskToken {
            inner: self.inner.clone(),
        }
    }

    /// Tasks still live.
    pub fn live(&self) -> usize {
        self.inner.live.load(Ordering::SeqCst)
    }

    /// Resolves once no task is live.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.live() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TaskToken {
    fn drop(&mut self) {
        if self.inner.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

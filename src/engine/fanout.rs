//! The per-host fan-out, written once: one tokio task per host, at most
//! `parallelism` running at a time, every host answering in input order.
//!
//! A task that panics is not a host that vanished: its slot comes back as
//! [`TaskPanicked`] with the panic's message, and every caller turns that
//! into the host's failure (a lock not taken, an apply failed, a verify
//! row that says so). Nothing here knows what the work is.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;

/// A host's task ended in a panic (or was cancelled) instead of returning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("xfed's task for this host panicked: {message}")]
pub struct TaskPanicked {
    pub message: String,
}

/// Runs every job, at most `parallelism` at a time (at least one), and
/// returns each key with its job's result, in the order given.
pub async fn fan_out<K, T, Fut>(
    jobs: impl IntoIterator<Item = (K, Fut)>,
    parallelism: usize,
) -> Vec<(K, Result<T, TaskPanicked>)>
where
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let sem = Arc::new(Semaphore::new(parallelism.max(1)));
    let tasks: Vec<(K, tokio::task::JoinHandle<T>)> = jobs
        .into_iter()
        .map(|(key, job)| {
            let sem = sem.clone();
            let task = tokio::spawn(async move {
                // The semaphore is never closed, so a permit always comes.
                let _permit = sem.acquire_owned().await;
                job.await
            });
            (key, task)
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for (key, task) in tasks {
        let result = task.await.map_err(|e| TaskPanicked {
            message: if e.is_panic() {
                panic_message(e.into_panic())
            } else {
                "the task was cancelled".into()
            },
        });
        out.push((key, result));
    }
    out
}

/// The text a panic was raised with, when it was a string.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast::<&'static str>()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| "(a panic without a message)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_that_hosts_failure_and_the_others_answer() {
        let jobs = ["a", "b", "c"].map(|h| {
            (h, async move {
                if h == "b" {
                    panic!("boom on {h}");
                }
                h.len()
            })
        });
        let out = fan_out(jobs, 2).await;
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], ("a", Ok(1)));
        assert_eq!(
            out[1],
            (
                "b",
                Err(TaskPanicked {
                    message: "boom on b".into()
                })
            )
        );
        assert_eq!(out[2], ("c", Ok(1)));
    }

    #[tokio::test]
    async fn never_more_than_parallelism_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs = (0..8).map(|i| {
            let (running, most) = (running.clone(), most.clone());
            (i, async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        let out = fan_out(jobs, 3).await;
        assert_eq!(out.len(), 8);
        assert!(most.load(Ordering::SeqCst) <= 3);
    }
}

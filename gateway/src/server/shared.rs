//! State shared by every task of the daemon: the current generation,
//! counters, connection limiters and the facts `/status` reports.
//!
//! The generation sits in a `watch` channel: its lock is held only to
//! clone an `Arc`, and open connections subscribe to learn of a reload (so
//! a stream whose peer the new partner list drops can be closed).
//! Nothing waits on I/O while holding it.

use super::generation::Generation;
use super::limiter::ConnectionLimiter;
use super::metrics::{ListenerMetrics, Metrics};
use super::partner_limiter::PartnerLimiter;
use super::pre_auth::PreAuthBudget;
use super::relay::RelayStats;
use crate::config::ListenerKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use tokio::sync::watch;

/// Daemon-wide state.
#[derive(Debug)]
pub struct Shared {
    current: watch::Sender<Arc<Generation>>,
    /// Counters.
    pub metrics: Metrics,
    /// The relay's counters and outbound streams.
    pub relay: RelayStats,
    /// Admission control per S2S listener.
    pub external_limiter: Arc<ConnectionLimiter>,
    /// Admission control of the internal listener.
    pub internal_limiter: Arc<ConnectionLimiter>,
    /// Admission control of the admin listener.
    pub admin_limiter: Arc<ConnectionLimiter>,
    /// Authenticated streams per partner domain, external listener.
    pub partner_limiter: Arc<PartnerLimiter>,
    /// Connections not yet authenticated: external, internal.
    pub pre_auth: [PreAuthBudget; 2],
    /// Addresses actually bound: external, internal, admin.
    pub bound: [SocketAddr; 3],
    /// SHA-256 of the running executable, if readable.
    pub binary_sha256: Option<String>,
    /// Unix time the process started.
    pub started_at: i64,
    reloaded_at: AtomicI64,
    draining: AtomicBool,
}

impl Shared {
    /// State for a freshly bound daemon.
    pub fn new(
        generation: Generation,
        bound: [SocketAddr; 3],
        binary_sha256: Option<String>,
    ) -> Shared {
        Shared {
            current: watch::Sender::new(Arc::new(generation)),
            metrics: Metrics::default(),
            relay: RelayStats::default(),
            external_limiter: Arc::default(),
            internal_limiter: Arc::default(),
            admin_limiter: Arc::default(),
            partner_limiter: Arc::default(),
            pre_auth: Default::default(),
            bound,
            binary_sha256,
            started_at: crate::clock::unix_now(),
            reloaded_at: AtomicI64::new(0),
            draining: AtomicBool::new(false),
        }
    }

    /// The generation new connections are served with.
    pub fn current(&self) -> Arc<Generation> {
        self.current.borrow().clone()
    }

    /// A receiver that sees every later generation. Take the connection's
    /// generation from it (`borrow_and_update`), so no reload falls
    /// between the two.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Generation>> {
        self.current.subscribe()
    }

    /// Makes `generation` current. Connections already open keep theirs,
    /// and are told (see `subscribe`) so they can apply its peer rule.
    pub fn replace(&self, generation: Generation) {
        self.current.send_replace(Arc::new(generation));
        self.reloaded_at
            .store(crate::clock::unix_now(), Ordering::Relaxed);
    }

    /// Unix time of the last successful reload.
    pub fn reloaded_at(&self) -> Option<i64> {
        match self.reloaded_at.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// Marks the daemon as shutting down.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Whether the daemon is shutting down.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Counters of S2S listener `kind`.
    pub fn listener_metrics(&self, kind: ListenerKind) -> &ListenerMetrics {
        match kind {
            ListenerKind::External => &self.metrics.external,
            ListenerKind::Internal => &self.metrics.internal,
        }
    }

    /// Budget of unauthenticated connections of S2S listener `kind`.
    pub fn pre_auth_budget(&self, kind: ListenerKind) -> &PreAuthBudget {
        match kind {
            ListenerKind::External => &self.pre_auth[0],
            ListenerKind::Internal => &self.pre_auth[1],
        }
    }

    /// Limiter of S2S listener `kind`.
    pub fn limiter(&self, kind: ListenerKind) -> &Arc<ConnectionLimiter> {
        match kind {
            ListenerKind::External => &self.external_limiter,
            ListenerKind::Internal => &self.internal_limiter,
        }
    }

    /// Bound address of S2S listener `kind`.
    pub fn bound_address(&self, kind: ListenerKind) -> SocketAddr {
        match kind {
            ListenerKind::External => self.bound[0],
            ListenerKind::Internal => self.bound[1],
        }
    }
}

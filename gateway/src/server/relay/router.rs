//! Routes relayed stanzas to outbound streams, one per (from-domain,
//! to-domain) pair, created on first need and reused.
//!
//! Owns the table of outbound streams and the bounded queue in front of
//! each: a stanza for a pair without a stream starts one (it is queued
//! while that stream connects), a full queue or a missing relay
//! configuration answers the sender at once, and so does a pair whose
//! stream failed recently (`retry`: attempts are bounded). Answers (`bounce`) go back
//! through `route` on the reverse path; only stanzas that may get an error
//! reply are answered, and error stanzas never are, so bounces cannot
//! loop. Which leg a pair takes is decided from the current generation: to
//! one of our domains → the internal server; to a partner → that partner.

use super::outbound::{Destination, Outbound};
use super::stats::Leg;
use crate::server::shared::Shared;
use crate::server::tracker::TaskTracker;
use crate::stream::{Routed, StanzaCondition, error_reply, expects_error_reply};
use crate::xml::Element;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// An outbound stream's pair and instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairKey {
    /// Header `from`.
    pub from: String,
    /// Header `to`.
    pub to: String,
    /// Which stream of this pair (a later one replaces a dead one).
    pub instance: u64,
}

impl PairKey {
    fn pair(&self) -> (String, String) {
        (self.from.clone(), self.to.clone())
    }

    /// `from->to`, as `/status` lists it.
    pub fn label(&self) -> String {
        format!("{}->{}", self.from, self.to)
    }
}

/// A pair's entry in the table.
#[derive(Debug)]
enum Slot {
    /// A stream is connecting or established.
    Live {
        instance: u64,
        queue: mpsc::Sender<Element>,
        /// Consecutive failures before it (0 once it is established).
        failures: u32,
    },
    /// The last stream failed; stanzas are answered until `until`.
    Failed {
        until: Instant,
        failures: u32,
        condition: StanzaCondition,
    },
}

/// The outbound streams by (from, to).
type Table = HashMap<(String, String), Slot>;

/// The relay's stanza router.
#[derive(Debug)]
pub struct Router {
    /// Daemon state: the current generation, counters.
    pub shared: Arc<Shared>,
    streams: Mutex<Table>,
    instances: AtomicU64,
    shutdown: watch::Receiver<bool>,
    tracker: TaskTracker,
}

impl Router {
    /// A router whose streams stop on `shutdown` and are tracked by `tracker`.
    pub fn new(
        shared: Arc<Shared>,
        shutdown: watch::Receiver<bool>,
        tracker: TaskTracker,
    ) -> Arc<Router> {
        Arc::new(Router {
            shared,
            streams: Mutex::default(),
            instances: AtomicU64::new(0),
            shutdown,
            tracker,
        })
    }

    /// Sends `routed` on its pair's outbound stream, starting one if needed.
    pub fn route(self: &Arc<Self>, routed: Routed) {
        let Routed {
            from_domain,
            to_domain,
            stanza,
        } = routed;
        let pair = (from_domain, to_domain);
        let mut streams = self.lock();
        let (stanza, failures) = match streams.get(&pair) {
            None => (stanza, 0),
            Some(Slot::Failed {
                until,
                failures,
                condition,
            }) => {
                if Instant::now() < *until {
                    let condition = *condition;
                    drop(streams);
                    self.bounce(&stanza, condition);
                    return;
                }
                (stanza, *failures)
            }
            Some(Slot::Live {
                queue, failures, ..
            }) => match queue.try_send(stanza) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(stanza)) => {
                    drop(streams);
                    self.bounce(&stanza, StanzaCondition::RemoteServerTimeout);
                    return;
                }
                // The stream ended between its last stanza and this one.
                Err(mpsc::error::TrySendError::Closed(stanza)) => (stanza, *failures),
            },
        };
        let Some((outbound, bound)) = self.outbound_for(&pair) else {
            drop(streams);
            self.bounce(&stanza, StanzaCondition::RemoteServerNotFound);
            return;
        };
        let (queue, rx) = mpsc::channel(bound);
        // A fresh channel has room for one.
        let _ = queue.try_send(stanza);
        streams.insert(
            pair,
            Slot::Live {
                instance: outbound.key.instance,
                queue,
                failures,
            },
        );
        drop(streams);
        tokio::spawn(outbound.run(rx, self.tracker.token()));
    }

    /// The outbound stream to start for `pair` and its queue bound, or
    /// `None` when it cannot be started (no `[relay]`, draining, or a
    /// `to` that is neither ours nor a partner's).
    fn outbound_for(self: &Arc<Self>, pair: &(String, String)) -> Option<(Outbound, usize)> {
        if *self.shutdown.borrow() {
            return None;
        }
        let generation = self.shared.current();
        let config = &generation.config;
        let (relay, tls) = (config.relay.as_ref()?, generation.relay.as_ref()?);
        let (from, to) = pair;
        let (leg, destination, connector) = if config.domains.contains(to) {
            (
                Leg::Internal,
                Destination::Fixed(relay.internal_server.clone()),
                tls.to_internal.clone(),
            )
        } else {
            let partner = config.partners.iter().find(|p| &p.domain == to)?;
            let destination = match &partner.proxy {
                Some(proxy) => Destination::Fixed(proxy.clone()),
                None => Destination::Srv(partner.domain.clone()),
            };
            (Leg::Partner, destination, tls.to_partners.clone())
        };
        let outbound = Outbound {
            router: self.clone(),
            key: PairKey {
                from: from.clone(),
                to: to.clone(),
                instance: self.instances.fetch_add(1, Ordering::Relaxed),
            },
            leg,
            destination,
            connector,
            connect_timeout: relay.connect_timeout,
            idle: config.limits.idle_timeout,
            write_timeout: config.limits.header_timeout,
            shutdown: self.shutdown.clone(),
        };
        Some((outbound, relay.max_queued_stanzas))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `key`'s stream is established: its pair's failure count resets.
    pub fn established(&self, key: &PairKey) {
        if let Some(Slot::Live {
            instance, failures, ..
        }) = self.lock().get_mut(&key.pair())
            && *instance == key.instance
        {
            *failures = 0;
        }
    }

    /// `key`'s stream ended: by our choice (`failed` is `None`; the pair is
    /// forgotten) or by a failure (the pair is answered with `condition`
    /// for the retry delay). Only that instance's entry is touched.
    pub fn ended(&self, key: &PairKey, failed: Option<StanzaCondition>) {
        let mut streams = self.lock();
        let pair = key.pair();
        let Some(Slot::Live {
            instance, failures, ..
        }) = streams.get(&pair)
        else {
            return;
        };
        if *instance != key.instance {
            return;
        }
        match failed {
            None => {
                streams.remove(&pair);
            }
            Some(condition) => {
                let failures = failures.saturating_add(1);
                let until = Instant::now() + super::retry::delay(failures);
                streams.insert(
                    pair,
                    Slot::Failed {
                        until,
                        failures,
                        condition,
                    },
                );
            }
        }
    }

    /// Answers `stanza` with `condition` on the reverse path, if it may be answered.
    pub fn bounce(self: &Arc<Self>, stanza: &Element, condition: StanzaCondition) {
        if !expects_error_reply(stanza) {
            return;
        }
        if let Some(reply) = error_reply(stanza, condition) {
            self.shared.relay.bounced(condition);
            self.route(reply);
        }
    }
}

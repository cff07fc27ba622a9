//! Routes relayed stanzas to outbound streams, one per (from-domain,
//! to-domain) pair, created on first need and reused.
//!
//! Owns the table of outbound streams and the bounded queue in front of
//! each: a stanza for a pair without a stream starts one (it is queued
//! while that stream connects). A full queue makes the sending connection
//! wait (backpressure: it stops reading, so TCP slows its peer); only a
//! missing route, a pair whose stream failed recently (`retry`: attempts
//! are bounded) or a stream that ends with stanzas queued answers the
//! sender, and every such bounce is logged and counted per partner.
//! Answers (`bounce`) go back on the reverse path without waiting
//! (`offer`); only stanzas that may get an error reply are answered, and
//! error stanzas never are, so bounces cannot loop. Which leg a pair takes is decided from the current generation: to
//! one of our domains → the internal server; to a partner → that partner.

use super::handshake::OutboundAuth;
use super::outbound::{Destination, Outbound};
use super::stats::Leg;
use crate::config::{BareJid, ServerAddress};
use crate::event;
use crate::server::shared::Shared;
use crate::server::tracker::TaskTracker;
use crate::stream::{Routed, StanzaCondition, error_reply, expects_error_reply};
use crate::xml::Element;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Which outbound stream a relayed stanza takes: its (from, to) domains
/// and, towards one of our domains, the XMPP server of the recipient's
/// home site when `[[sites]]` names one (`home`); `None` is
/// `relay.internal_server`. Two users of one domain homed on two sites'
/// servers are two streams.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pair {
    /// Header `from`.
    pub from: String,
    /// Header `to`.
    pub to: String,
    /// The home site's server, towards our domains.
    pub home: Option<ServerAddress>,
}

impl Pair {
    /// `from->to`, and ` via host:port` for a home site's server, as
    /// `/status` lists it.
    pub fn label(&self) -> String {
        match &self.home {
            None => format!("{}->{}", self.from, self.to),
            Some(server) => format!("{}->{} via {server}", self.from, self.to),
        }
    }
}

/// An outbound stream's pair and instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PairKey {
    /// Its pair.
    pub pair: Pair,
    /// Which stream of this pair (a later one replaces a dead one).
    pub instance: u64,
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

/// The outbound streams by pair.
type Table = HashMap<Pair, Slot>;

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

    /// Sends `routed` on its pair's outbound stream, starting one if
    /// needed; waits while that stream's queue is full. The caller is the
    /// connection that read the stanza: while it waits it reads nothing
    /// more, so TCP flow control slows the sender instead of a stanza being
    /// lost. A stanza is answered (`bounce`) only when its destination
    /// cannot be reached: no route, a recent failure, or its stream ended.
    pub async fn route(self: &Arc<Self>, routed: Routed) {
        let pair = self.pair_of(&routed);
        let mut stanza = routed.stanza;
        // A stream that ended between the lookup and the send is replaced
        // once; if the replacement ends too, the destination is failing.
        for _ in 0..2 {
            let queue = match self.queue_for(&pair) {
                Ok(queue) => queue,
                Err(refused) => {
                    self.bounce(&pair, &stanza, refused.condition, refused.reason);
                    return;
                }
            };
            match queue.send(stanza).await {
                Ok(()) => return,
                Err(mpsc::error::SendError(back)) => stanza = back,
            }
        }
        self.bounce(
            &pair,
            &stanza,
            StanzaCondition::RemoteServerNotFound,
            BounceReason::StreamEnded,
        );
    }

    /// Sends an error reply without waiting: it is generated by the relay
    /// itself (often by an outbound stream's task, which must not wait on
    /// another stream's queue, or two streams failing towards each other
    /// could wait on each other forever). A reply that finds its queue
    /// full is dropped, logged and counted.
    fn offer(self: &Arc<Self>, routed: Routed) {
        let pair = self.pair_of(&routed);
        let stanza = routed.stanza;
        let dropped = match self.queue_for(&pair) {
            Ok(queue) => match queue.try_send(stanza) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => "queue_full",
                Err(mpsc::error::TrySendError::Closed(_)) => "stream_ended",
            },
            Err(refused) => refused.reason.as_str(),
        };
        self.shared.relay.reply_dropped();
        event!(
            Warn,
            "error_reply_dropped",
            from = pair.from,
            to = pair.to,
            reason = dropped,
        );
    }

    /// The queue of `pair`'s live stream, starting a stream if there is
    /// none (or the last one ended); or why the pair cannot be served now.
    fn queue_for(self: &Arc<Self>, pair: &Pair) -> Result<mpsc::Sender<Element>, Refused> {
        let mut streams = self.lock();
        let failures = match streams.get(pair) {
            None => 0,
            Some(Slot::Failed {
                until,
                failures,
                condition,
            }) => {
                if Instant::now() < *until {
                    return Err(Refused {
                        condition: *condition,
                        reason: BounceReason::RetryDelay,
                    });
                }
                *failures
            }
            Some(Slot::Live {
                queue, failures, ..
            }) => {
                if !queue.is_closed() {
                    return Ok(queue.clone());
                }
                // The stream ended between its last stanza and this one.
                *failures
            }
        };
        let Some((outbound, bound)) = self.outbound_for(pair) else {
            return Err(Refused {
                condition: StanzaCondition::RemoteServerNotFound,
                reason: BounceReason::NoRoute,
            });
        };
        let (queue, rx) = mpsc::channel(bound);
        streams.insert(
            pair.clone(),
            Slot::Live {
                instance: outbound.key.instance,
                queue: queue.clone(),
                failures,
            },
        );
        drop(streams);
        tokio::spawn(outbound.run(rx, self.tracker.token()));
        Ok(queue)
    }

    /// The outbound stream to start for `pair` and its queue bound, or
    /// `None` when it cannot be started (no `[relay]`, draining, or a
    /// `to` that is neither ours nor a partner's).
    fn outbound_for(self: &Arc<Self>, pair: &Pair) -> Option<(Outbound, usize)> {
        if *self.shutdown.borrow() {
            return None;
        }
        let generation = self.shared.current();
        let config = &generation.config;
        let (relay, tls) = (config.relay.as_ref()?, generation.relay.as_ref()?);
        let to = &pair.to;
        let (leg, destination, connector, auth, keepalive) = if config.domains.contains(to) {
            let server = pair.home.as_ref().unwrap_or(&relay.internal_server);
            (
                Leg::Internal,
                Destination::Fixed(server.clone()),
                tls.to_internal.clone(),
                OutboundAuth::External,
                None,
            )
        } else {
            let partner = config.partner_of(to)?;
            let destination = match &partner.proxy {
                Some(proxy) => Destination::Fixed(proxy.clone()),
                None => Destination::Srv(to.clone()),
            };
            let auth = OutboundAuth::of(partner.auth, generation.dialback.as_ref());
            // A partner that may use dialback is not held to
            // `relay.partner_ca`: dialback authenticates through DNS.
            let connector = match auth {
                OutboundAuth::External => tls.to_partners.clone(),
                OutboundAuth::Dialback(_) | OutboundAuth::Either(_) => {
                    tls.to_dialback_partners.clone()
                }
            };
            let keepalive = partner
                .keepalive
                .then_some(config.limits.keepalive_interval);
            (Leg::Partner, destination, connector, auth, keepalive)
        };
        let outbound = Outbound {
            router: self.clone(),
            key: PairKey {
                pair: pair.clone(),
                instance: self.instances.fetch_add(1, Ordering::Relaxed),
            },
            leg,
            destination,
            connector,
            auth,
            keepalive,
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
        }) = self.lock().get_mut(&key.pair)
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
        let pair = &key.pair;
        let Some(Slot::Live {
            instance, failures, ..
        }) = streams.get(pair)
        else {
            return;
        };
        if *instance != key.instance {
            return;
        }
        match failed {
            None => {
                streams.remove(pair);
            }
            Some(condition) => {
                let failures = failures.saturating_add(1);
                let until = Instant::now() + super::retry::delay(failures);
                streams.insert(
                    pair.clone(),
                    Slot::Failed {
                        until,
                        failures,
                        condition,
                    },
                );
            }
        }
    }

    /// `stanza`, from `pair`, cannot be delivered: logs and counts it and
    /// answers it with `condition` on the reverse path if it may be
    /// answered (never an error, so answers cannot loop).
    pub fn bounce(
        self: &Arc<Self>,
        pair: &Pair,
        stanza: &Element,
        condition: StanzaCondition,
        reason: BounceReason,
    ) {
        let partner = self.partner_of(pair);
        let reply = expects_error_reply(stanza)
            .then(|| error_reply(stanza, condition))
            .flatten();
        self.shared
            .relay
            .bounced(&partner, condition, reason, reply.is_some());
        event!(
            Warn,
            "stanza_bounced",
            from = pair.from,
            to = pair.to,
            partner = partner,
            stanza = stanza.name,
            condition = condition.as_str(),
            reason = reason.as_str(),
            reply = if reply.is_some() { "error" } else { "none" },
        );
        if let Some(reply) = reply {
            self.offer(reply);
        }
    }

    /// The partner side of `pair`: whichever domain is not ours.
    fn partner_of(&self, pair: &Pair) -> String {
        let generation = self.shared.current();
        if generation.config.domains.contains(&pair.to) {
            pair.from.clone()
        } else {
            pair.to.clone()
        }
    }

    /// The pair `routed` takes: towards one of our domains, through the
    /// server of its recipient's home site if `[[sites]]` names one other
    /// than `relay.internal_server` (the same server is the same stream).
    fn pair_of(&self, routed: &Routed) -> Pair {
        let generation = self.shared.current();
        let home = if generation.config.domains.contains(&routed.to_domain) {
            routed
                .stanza
                .attr("to")
                .and_then(|to| BareJid::from_address(to).ok())
                .and_then(|user| generation.policy.home_site(&user))
                .and_then(|site| generation.config.sites.iter().find(|s| s.name == site))
                .and_then(|site| site.internal_server.as_ref())
                .filter(|server| {
                    generation
                        .config
                        .relay
                        .as_ref()
                        .is_some_and(|r| r.internal_server != **server)
                })
                .cloned()
        } else {
            None
        };
        Pair {
            from: routed.from_domain.clone(),
            to: routed.to_domain.clone(),
            home,
        }
    }
}

/// Why a stanza cannot be queued now.
#[derive(Debug, Clone, Copy)]
struct Refused {
    condition: StanzaCondition,
    reason: BounceReason,
}

/// Why a stanza was not delivered; a label of the bounce counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BounceReason {
    /// No `[relay]`, draining, or a `to` that is neither ours nor a partner's.
    NoRoute,
    /// The pair's last stream failed; no new attempt before the retry delay.
    RetryDelay,
    /// Queued on a stream that failed before sending it.
    StreamEnded,
    /// The write to the next hop failed or timed out.
    WriteFailed,
}

impl BounceReason {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            BounceReason::NoRoute => "no_route",
            BounceReason::RetryDelay => "retry_delay",
            BounceReason::StreamEnded => "stream_ended",
            BounceReason::WriteFailed => "write_failed",
        }
    }
}

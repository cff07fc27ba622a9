//! The relay's counters and the table of outbound streams, behind
//! `/metrics` and `/status`.
//!
//! Atomics for counts; one small mutex-held map for the outbound streams,
//! touched only when a stream is created, established or ends (never per
//! stanza).

use super::router::BounceReason;
use crate::policy::{DenialCause, Direction};
use crate::stream::StanzaCondition;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which side an outbound stream leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Leg {
    /// Gateway → the internal server (carrying a partner's stanzas).
    Internal,
    /// Gateway → a partner (carrying our server's stanzas).
    Partner,
}

impl Leg {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Leg::Internal => "internal",
            Leg::Partner => "partner",
        }
    }

    fn index(self) -> usize {
        match self {
            Leg::Internal => 0,
            Leg::Partner => 1,
        }
    }
}

/// Where an outbound stream is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundState {
    /// Connecting and negotiating; stanzas are queued.
    Connecting,
    /// Authenticated; stanzas flow.
    Established,
}

impl OutboundState {
    /// Name in `/status`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundState::Connecting => "connecting",
            OutboundState::Established => "established",
        }
    }
}

/// Counters of the relay.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Outbound streams by `from->to`, with their leg and state.
    outbound: Mutex<BTreeMap<String, (Leg, OutboundState)>>,
    /// Outbound setups established, by leg.
    established: [AtomicU64; 2],
    /// Outbound setups failed (or established streams lost), by leg.
    failed: [AtomicU64; 2],
    /// Stanzas by direction (inbound, outbound) and verdict (allowed, denied).
    stanzas: [[AtomicU64; 2]; 2],
    /// Stanzas refused by policy, by direction and cause (`DenialCause::ALL` order).
    denied: [[AtomicU64; DenialCause::ALL.len()]; 2],
    /// Error replies generated for undeliverable stanzas, by condition.
    bounced: [AtomicU64; 2],
    /// Undeliverable stanzas by (partner, condition, reason), answered or
    /// not. Partners come from the configuration, so the map is small.
    undelivered: Mutex<BTreeMap<(String, &'static str, &'static str), u64>>,
    /// Error replies dropped because their own queue was full or gone.
    replies_dropped: AtomicU64,
    /// SASL EXTERNAL results by listener (external, internal) and result (success, failure).
    sasl: [[AtomicU64; 2]; 2],
    /// Authenticated inbound streams open now, by listener.
    authenticated: [AtomicU64; 2],
    /// Dialback results, [inbound (we verified), outbound (we were
    /// answered)][valid, invalid, error].
    dialback: [[AtomicU64; 3]; 2],
    /// `db:verify` answered as authoritative server, [valid, invalid].
    verify_answered: [AtomicU64; 2],
    /// How each outbound stream authenticated, by pair.
    outbound_auth: Mutex<BTreeMap<String, crate::stream::Mechanism>>,
    /// Authenticated inbound streams: id → (listener, peer domain, how).
    inbound: Mutex<BTreeMap<u64, InboundStream>>,
    inbound_ids: AtomicU64,
}

/// An authenticated inbound stream, for `/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundStream {
    /// The listener it arrived on.
    pub listener: crate::config::ListenerKind,
    /// The authenticated peer domain.
    pub domain: String,
    /// How it authenticated.
    pub auth: crate::stream::Mechanism,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Index of a listener for the per-listener arrays: external 0, internal 1.
fn listener_index(listener: crate::config::ListenerKind) -> usize {
    match listener {
        crate::config::ListenerKind::External => 0,
        crate::config::ListenerKind::Internal => 1,
    }
}

impl RelayStats {
    /// Records the state of the outbound stream `pair`.
    pub fn set_outbound(&self, pair: &str, leg: Leg, state: OutboundState) {
        lock(&self.outbound).insert(pair.to_string(), (leg, state));
        if state == OutboundState::Established {
            inc(&self.established[leg.index()]);
        }
    }

    /// The outbound stream `pair` ended; `failed` when it did not end by our choice.
    /// Records how the outbound stream of `pair` authenticated.
    pub fn set_outbound_auth(&self, pair: &str, mechanism: crate::stream::Mechanism) {
        lock(&self.outbound_auth).insert(pair.to_string(), mechanism);
    }

    /// How the outbound stream of `pair` authenticated, once it did.
    pub fn outbound_auth(&self, pair: &str) -> Option<crate::stream::Mechanism> {
        lock(&self.outbound_auth).get(pair).copied()
    }

    /// Counts a dialback result: `outbound` = the answer to our
    /// `db:result`; else our verification of a partner's.
    pub fn dialback(&self, outbound: bool, outcome: crate::stream::DialbackOutcome) {
        let o = crate::stream::DialbackOutcome::ALL
            .iter()
            .position(|x| *x == outcome)
            .unwrap_or(2);
        inc(&self.dialback[usize::from(outbound)][o]);
    }

    /// Counts a `db:verify` we answered.
    pub fn verify_answered(&self, valid: bool) {
        inc(&self.verify_answered[usize::from(!valid)]);
    }

    /// Registers an authenticated inbound stream; returns its id.
    pub fn inbound_opened(&self, stream: InboundStream) -> u64 {
        let id = self.inbound_ids.fetch_add(1, Ordering::Relaxed);
        lock(&self.inbound).insert(id, stream);
        id
    }

    /// Forgets an inbound stream.
    pub fn inbound_closed(&self, id: u64) {
        lock(&self.inbound).remove(&id);
    }

    /// The authenticated inbound streams.
    pub fn inbound(&self) -> Vec<InboundStream> {
        lock(&self.inbound).values().cloned().collect()
    }

    pub fn remove_outbound(&self, pair: &str, leg: Leg, failed: bool) {
        lock(&self.outbound).remove(pair);
        lock(&self.outbound_auth).remove(pair);
        if failed {
            inc(&self.failed[leg.index()]);
        }
    }

    /// The outbound streams now: `from->to` → (leg, state).
    pub fn outbound(&self) -> BTreeMap<String, (Leg, OutboundState)> {
        lock(&self.outbound).clone()
    }

    /// Counts a stanza decision: relayed (`allowed`) or refused by policy.
    pub fn stanza(&self, direction: Direction, allowed: bool) {
        let d = usize::from(direction == Direction::Outbound);
        inc(&self.stanzas[d][usize::from(!allowed)]);
    }

    /// Counts a stanza refused by policy, by what decided.
    pub fn denied(&self, direction: Direction, cause: DenialCause) {
        let d = usize::from(direction == Direction::Outbound);
        if let Some(c) = DenialCause::ALL.iter().position(|&x| x == cause) {
            inc(&self.denied[d][c]);
        }
    }

    /// Counts an undeliverable stanza to or from `partner`, and its
    /// error reply when it gets one.
    pub fn bounced(
        &self,
        partner: &str,
        condition: StanzaCondition,
        reason: BounceReason,
        replied: bool,
    ) {
        if replied {
            inc(&self.bounced[usize::from(condition == StanzaCondition::RemoteServerTimeout)]);
        }
        *lock(&self.undelivered)
            .entry((partner.to_string(), condition.as_str(), reason.as_str()))
            .or_default() += 1;
    }

    /// Counts an error reply that could not be queued.
    pub fn reply_dropped(&self) {
        inc(&self.replies_dropped);
    }

    /// Undeliverable stanzas counted so far, all partners and causes.
    pub fn undelivered_total(&self) -> u64 {
        lock(&self.undelivered).values().sum()
    }

    /// Counts a SASL result; a success also opens an authenticated stream.
    pub fn sasl(&self, listener: crate::config::ListenerKind, success: bool) {
        let l = listener_index(listener);
        inc(&self.sasl[l][usize::from(!success)]);
        if success {
            inc(&self.authenticated[l]);
        }
    }

    /// An authenticated inbound stream on `listener` ended.
    /// A stream authenticated other than by SASL EXTERNAL (dialback).
    pub fn authenticated_opened(&self, listener: crate::config::ListenerKind) {
        inc(&self.authenticated[listener_index(listener)]);
    }

    pub fn authenticated_closed(&self, listener: crate::config::ListenerKind) {
        self.authenticated[listener_index(listener)].fetch_sub(1, Ordering::Relaxed);
    }

    /// Authenticated inbound streams open on `listener`.
    pub fn authenticated(&self, listener: crate::config::ListenerKind) -> u64 {
        get(&self.authenticated[listener_index(listener)])
    }

    /// Appends the relay families to a Prometheus exposition.
    pub fn render(&self, out: &mut String) {
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            out,
            "xfed_gateway_outbound_streams",
            "gauge",
            "Outbound streams now, by leg and state.",
        );
        let table = self.outbound();
        for leg in [Leg::Internal, Leg::Partner] {
            for state in [OutboundState::Connecting, OutboundState::Established] {
                let n = table
                    .values()
                    .filter(|(l, s)| *l == leg && *s == state)
                    .count();
                let _ = writeln!(
                    out,
                    "xfed_gateway_outbound_streams{{leg=\"{}\",state=\"{}\"}} {n}",
                    leg.as_str(),
                    state.as_str()
                );
            }
        }
        family(
            out,
            "xfed_gateway_outbound_connections_total",
            "counter",
            "Outbound streams set up, or failed (setup or later), by leg.",
        );
        for leg in [Leg::Internal, Leg::Partner] {
            for (result, n) in [("established", &self.established), ("failed", &self.failed)] {
                let _ = writeln!(
                    out,
                    "xfed_gateway_outbound_connections_total{{leg=\"{}\",result=\"{result}\"}} {}",
                    leg.as_str(),
                    get(&n[leg.index()])
                );
            }
        }
        family(
            out,
            "xfed_gateway_dialback_total",
            "counter",
            "Dialback results: inbound = our verification of a partner's key with its \
             authoritative server, outbound = the partner's answer to our key.",
        );
        for (d, direction) in ["inbound", "outbound"].iter().enumerate() {
            for (o, outcome) in crate::stream::DialbackOutcome::ALL.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "xfed_gateway_dialback_total{{direction=\"{direction}\",result=\"{}\"}} {}",
                    outcome.as_str(),
                    get(&self.dialback[d][o])
                );
            }
        }
        family(
            out,
            "xfed_gateway_dialback_verify_answered_total",
            "counter",
            "db:verify requests answered as the authoritative server, by answer.",
        );
        for (i, answer) in ["valid", "invalid"].iter().enumerate() {
            let _ = writeln!(
                out,
                "xfed_gateway_dialback_verify_answered_total{{result=\"{answer}\"}} {}",
                get(&self.verify_answered[i])
            );
        }
        family(
            out,
            "xfed_gateway_stanzas_total",
            "counter",
            "Stanzas on authenticated streams, by direction and policy verdict.",
        );
        for direction in Direction::ALL {
            let d = usize::from(direction == Direction::Outbound);
            for (v, verdict) in ["allowed", "denied"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "xfed_gateway_stanzas_total{{direction=\"{}\",verdict=\"{verdict}\"}} {}",
                    direction.as_str(),
                    get(&self.stanzas[d][v])
                );
            }
        }
        family(
            out,
            "xfed_gateway_stanzas_denied_total",
            "counter",
            "Stanzas refused by policy, by direction and cause (the policy flag that is off, not_our_user or not_a_partner).",
        );
        for direction in Direction::ALL {
            let d = usize::from(direction == Direction::Outbound);
            for (c, cause) in DenialCause::ALL.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "xfed_gateway_stanzas_denied_total{{direction=\"{}\",cause=\"{}\"}} {}",
                    direction.as_str(),
                    cause.as_str(),
                    get(&self.denied[d][c])
                );
            }
        }
        family(
            out,
            "xfed_gateway_stanzas_bounced_total",
            "counter",
            "Error replies for stanzas whose next hop failed, by condition.",
        );
        for (i, condition) in [
            StanzaCondition::RemoteServerNotFound,
            StanzaCondition::RemoteServerTimeout,
        ]
        .iter()
        .enumerate()
        {
            let _ = writeln!(
                out,
                "xfed_gateway_stanzas_bounced_total{{condition=\"{}\"}} {}",
                condition.as_str(),
                get(&self.bounced[i])
            );
        }
        family(
            out,
            "xfed_gateway_stanzas_undelivered_total",
            "counter",
            "Stanzas that could not be delivered, by partner, condition and reason.",
        );
        for ((partner, condition, reason), n) in lock(&self.undelivered).iter() {
            let _ = writeln!(
                out,
                "xfed_gateway_stanzas_undelivered_total{{partner=\"{partner}\",condition=\"{condition}\",reason=\"{reason}\"}} {n}"
            );
        }
        family(
            out,
            "xfed_gateway_error_replies_dropped_total",
            "counter",
            "Error replies for undeliverable stanzas dropped because their own path was full or gone.",
        );
        let _ = writeln!(
            out,
            "xfed_gateway_error_replies_dropped_total {}",
            get(&self.replies_dropped)
        );
        family(
            out,
            "xfed_gateway_sasl_total",
            "counter",
            "SASL EXTERNAL attempts on inbound streams, by listener and result.",
        );
        family(
            out,
            "xfed_gateway_authenticated_streams",
            "gauge",
            "Authenticated inbound streams now, by listener.",
        );
        for (l, listener) in ["external", "internal"].iter().enumerate() {
            for (r, result) in ["success", "failure"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "xfed_gateway_sasl_total{{listener=\"{listener}\",result=\"{result}\"}} {}",
                    get(&self.sasl[l][r])
                );
            }
            let _ = writeln!(
                out,
                "xfed_gateway_authenticated_streams{{listener=\"{listener}\"}} {}",
                get(&self.authenticated[l])
            );
        }
    }
}

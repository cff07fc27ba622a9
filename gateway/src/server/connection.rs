//! Drives one S2S connection: socket I/O, TLS upgrade and deadlines around
//! a `StreamMachine`.
//!
//! Owns every timer of a connection: the header deadline (absolute from the
//! start of each header wait, so a peer trickling bytes cannot stretch it),
//! the TLS handshake deadline, the negotiation deadline (accept → auth) and
//! the idle timeout; and the write timeout, so a peer that stops reading
//! cannot pin a task. The protocol itself lives in `stream`.
//!
//! A connection is served under the generation it was accepted with, for
//! its whole life, except for one thing: when a reload makes a new
//! generation current, its peer rule is handed to the machine, which closes
//! the stream if the peer is no longer admitted (a partner removed from the
//! list gets `<policy-violation/>` at once, not at its next reconnect).

use super::generation::Generation;
use super::limiter::Permit;
use super::metrics::{Rejection, inc};
use super::partner_limiter::PartnerSlot;
use super::pre_auth::PreAuthPermit;
use super::read_buffer::{QUIET, ReadBuffer};
use super::relay::{InboundStream, Router, VerifyRequest};
use super::shared::Shared;
use super::tracker::TaskToken;
use crate::config::ListenerKind;
use crate::dialback::KeyCheck;
use crate::event;
use crate::policy::Direction;
use crate::stream::{
    DialbackOutcome, Directive, Mechanism, Phase, StreamError, StreamEvent, StreamMachine,
};
use crate::tls::PeerIdentity;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

/// First byte of a TLS handshake record: the peer speaks Direct TLS.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// One accepted S2S connection.
#[derive(Debug)]
pub struct Connection {
    /// The peer's address.
    peer: SocketAddr,
    /// The listener it arrived on.
    listener: ListenerKind,
    /// The configuration it is served under, for its whole life.
    generation: Arc<Generation>,
    /// Every later generation, for its peer rule.
    generations: watch::Receiver<Arc<Generation>>,
    /// Counters and limits.
    shared: Arc<Shared>,
    /// Where relayed stanzas go.
    router: Arc<Router>,
    /// Becomes `true` when the daemon drains.
    shutdown: watch::Receiver<bool>,
    /// Whether a reload closed the stream (its peer no longer admitted).
    revoked: bool,
    /// Whether the stream error has been counted and logged.
    recorded: bool,
    /// Its place in the unauthenticated budget, until authenticated.
    pre_auth: Option<PreAuthPermit>,
    /// Its entry in `/status` once authenticated.
    inbound_id: Option<u64>,
    /// Its place in its partner's count once authenticated (external
    /// listener), given back when the connection is dropped however it ends.
    partner_slot: Option<PartnerSlot>,
    /// The dialback verification in progress: the partner domain and the
    /// task asking its authoritative server.
    verifying: Option<(String, AbortOnDrop)>,
}

/// A spawned verification, aborted if the connection ends first.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<DialbackOutcome>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How one leg of the connection (plain or TLS) ended.
enum Leg {
    StartTls,
    Closed,
}

struct Deadlines {
    header: Duration,
    negotiation: Instant,
    idle: Duration,
    keepalive: Duration,
}

impl Connection {
    /// A connection from `peer` served under `generation`, the value last
    /// seen by `generations` (so that receiver reports only later reloads).
    pub fn new(
        peer: SocketAddr,
        listener: ListenerKind,
        generation: Arc<Generation>,
        generations: watch::Receiver<Arc<Generation>>,
        shared: Arc<Shared>,
        router: Arc<Router>,
        shutdown: watch::Receiver<bool>,
    ) -> Connection {
        Connection {
            peer,
            listener,
            generation,
            generations,
            shared,
            router,
            shutdown,
            revoked: false,
            recorded: false,
            pre_auth: None,
            inbound_id: None,
            partner_slot: None,
            verifying: None,
        }
    }

    /// Serves the connection on `socket` to its end. `permit` and `token`
    /// are released on return, `pre_auth` once the stream is authenticated.
    pub async fn run(
        mut self,
        mut socket: TcpStream,
        _permit: Permit,
        pre_auth: PreAuthPermit,
        _token: TaskToken,
    ) {
        self.pre_auth = Some(pre_auth);
        let state = self.generation.listener(self.listener);
        let limits = &state.settings.limits;
        let deadlines = Deadlines {
            header: limits.header_timeout,
            negotiation: Instant::now() + limits.negotiation_timeout,
            idle: limits.idle_timeout,
            keepalive: limits.keepalive_interval,
        };
        let tls = state.tls.clone();
        let mut machine = StreamMachine::new(state.settings.clone());
        event!(
            Debug,
            "connection_accepted",
            listener = self.listener.name(),
            peer = self.peer
        );

        // Direct TLS (XEP-0368) or STARTTLS: the first byte tells. The wait
        // counts against the first header's deadline.
        let first_header = Instant::now() + deadlines.header;
        let mut first = [0u8; 1];
        let direct_tls = tokio::select! {
            peeked = timeout_at(first_header, socket.peek(&mut first)) => {
                matches!(peeked, Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD)
            }
            // `drive` sees the flag and answers with system-shutdown.
            _ = self.shutdown.changed() => false,
        };
        if direct_tls {
            let Some(tls) = tls else {
                // Cannot speak TLS without a certificate; nothing XMPP to say.
                return;
            };
            // Boxed, here and below: the task's future is as large as its
            // largest await, and a connection that never gets this far
            // should not carry a TLS handshake's state.
            if let Some(mut stream) =
                Box::pin(self.handshake(&tls.acceptor, socket, deadlines.header)).await
            {
                let identity = self.identity(&stream);
                machine = StreamMachine::new_secure(
                    self.generation.listener(self.listener).settings.clone(),
                    identity,
                );
                let header = Instant::now() + deadlines.header;
                Box::pin(self.drive(&mut stream, &mut machine, header, &deadlines)).await;
            }
        } else {
            match Box::pin(self.drive(&mut socket, &mut machine, first_header, &deadlines)).await {
                Leg::Closed => {}
                Leg::StartTls => {
                    let Some(tls) = tls else {
                        return;
                    };
                    if let Some(mut stream) =
                        Box::pin(self.handshake(&tls.acceptor, socket, deadlines.header)).await
                    {
                        machine.tls_established(self.identity(&stream));
                        let header = Instant::now() + deadlines.header;
                        Box::pin(self.drive(&mut stream, &mut machine, header, &deadlines)).await;
                    }
                }
            }
        }
        self.finish(&machine);
    }

    /// What the peer's client certificate proves under the listener's
    /// trust anchors (none without `[relay]`).
    fn identity(
        &self,
        stream: &tokio_rustls::server::TlsStream<TcpStream>,
    ) -> Option<PeerIdentity> {
        let roots = self
            .generation
            .listener(self.listener)
            .peer_roots
            .as_ref()?;
        let (_, session) = stream.get_ref();
        PeerIdentity::verify(roots, session.peer_certificates())
    }

    /// Server-side TLS handshake, bounded by `limit`; abandoned on shutdown.
    async fn handshake(
        &mut self,
        acceptor: &tokio_rustls::TlsAcceptor,
        socket: TcpStream,
        limit: Duration,
    ) -> Option<Box<tokio_rustls::server::TlsStream<TcpStream>>> {
        let shared = self.shared.clone();
        let metrics = shared.listener_metrics(self.listener);
        let result = tokio::select! {
            result = timeout(limit, acceptor.accept(socket)) => result,
            _ = self.shutdown.changed() => return None,
        };
        match result {
            Ok(Ok(stream)) => {
                inc(&metrics.tls_ok);
                let (_, session) = stream.get_ref();
                event!(
                    Debug,
                    "tls_established",
                    listener = self.listener.name(),
                    peer = self.peer,
                    sni = session.server_name().unwrap_or("-"),
                    client_certificate = if session.peer_certificates().is_some() {
                        "yes"
                    } else {
                        "no"
                    },
                );
                Some(Box::new(stream))
            }
            Ok(Err(e)) => {
                inc(&metrics.tls_failed);
                event!(
                    Debug,
                    "tls_failed",
                    listener = self.listener.name(),
                    peer = self.peer,
                    error = e
                );
                None
            }
            Err(_) => {
                inc(&metrics.tls_failed);
                event!(
                    Debug,
                    "tls_failed",
                    listener = self.listener.name(),
                    peer = self.peer,
                    error = "timeout"
                );
                None
            }
        }
    }

    /// Runs the machine over `io` until it closes or asks for TLS.
    async fn drive<S>(
        &mut self,
        io: &mut S,
        machine: &mut StreamMachine,
        header_deadline: Instant,
        deadlines: &Deadlines,
    ) -> Leg
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        // Small until data flows on an authenticated stream, and again
        // once it stops: a stranger's or an idle stream holds little.
        let mut buf = ReadBuffer::new();
        let mut header_deadline = header_deadline;
        let mut last_phase = machine.phase();
        // Idle is silence from the peer: our own keepalives do not count.
        let mut last_read = Instant::now();
        let mut last_write = Instant::now();
        let mut directive = if *self.shutdown.borrow() {
            machine.shut_down()
        } else {
            Directive::Continue
        };
        loop {
            if directive == Directive::Close {
                // Counted before the peer can read the error, so whoever
                // sees it and then asks /metrics finds it counted.
                self.record(machine);
            }
            let out = machine.take_output();
            if !out.is_empty() {
                let write = async {
                    io.write_all(&out).await?;
                    io.flush().await
                };
                if !matches!(timeout(deadlines.header, write).await, Ok(Ok(()))) {
                    return Leg::Closed;
                }
                last_write = Instant::now();
            }
            match directive {
                Directive::StartTls => return Leg::StartTls,
                Directive::Close => {
                    let _ = timeout(deadlines.header, io.shutdown()).await;
                    return Leg::Closed;
                }
                Directive::Continue => {}
            }
            let phase = machine.phase();
            if phase == Phase::AwaitHeader && last_phase != Phase::AwaitHeader {
                // The restart after SASL: a new header wait.
                header_deadline = Instant::now() + deadlines.header;
            }
            last_phase = phase;
            let deadline = match phase {
                Phase::AwaitHeader => header_deadline,
                Phase::Established => last_read + deadlines.idle,
                // Until authenticated the negotiation deadline applies;
                // idle applies on top.
                _ => deadlines.negotiation.min(last_read + deadlines.idle),
            };
            // Whitespace keepalives to a partner whose entry asks for them,
            // on an established external stream.
            let keepalive_at = (phase == Phase::Established
                && self.listener == ListenerKind::External
                && machine.keepalive())
            .then_some(last_write + deadlines.keepalive);
            let shrink_at = buf.is_large().then_some(last_read + QUIET);
            directive = tokio::select! {
                read = io.read(buf.space()) => match read {
                    Ok(0) | Err(_) => machine.end_of_input(),
                    Ok(n) => {
                        last_read = Instant::now();
                        let directive = self.receive(machine, buf.filled(n));
                        buf.after_read(n, machine.authenticated().is_some());
                        directive
                    }
                },
                () = async {
                    match shrink_at {
                        Some(at) => sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    buf.shrink();
                    Directive::Continue
                }
                outcome = async {
                    match self.verifying.as_mut() {
                        Some((_, task)) => (&mut task.0).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let (from, _) = self.verifying.take().unzip();
                    let outcome = outcome.unwrap_or(DialbackOutcome::Error);
                    machine.dialback_verified(&from.unwrap_or_default(), outcome)
                }
                () = async {
                    match keepalive_at {
                        Some(at) => sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let write = async {
                        io.write_all(b" ").await?;
                        io.flush().await
                    };
                    if !matches!(timeout(deadlines.header, write).await, Ok(Ok(()))) {
                        return Leg::Closed;
                    }
                    last_write = Instant::now();
                    Directive::Continue
                }
                () = sleep_until(deadline) => machine.timed_out(),
                _ = self.shutdown.changed() => machine.shut_down(),
                // The sender lives in `Shared`, which this connection holds,
                // so `changed` cannot fail while it runs.
                Ok(()) = self.generations.changed() => self.reconfigure(machine),
            };
            if self.handle_events(machine).await == Directive::Close {
                directive = Directive::Close;
            }
        }
    }

    /// Acts on what the machine decided: counts, logs, relays. Relaying
    /// waits while the destination's queue is full; nothing more is read
    /// from this connection meanwhile, which is the backpressure on its peer.
    /// `Close` when an event closed the stream (the per-partner limit).
    async fn handle_events(&mut self, machine: &mut StreamMachine) -> Directive {
        let stats = &self.shared.relay;
        let mut directive = Directive::Continue;
        for stream_event in machine.take_events() {
            match stream_event {
                StreamEvent::Authenticated { domain, mechanism } => {
                    self.pre_auth = None;
                    match mechanism {
                        Mechanism::External => stats.sasl(self.listener, true),
                        Mechanism::Dialback => stats.authenticated_opened(self.listener),
                    }
                    if self.listener == ListenerKind::External {
                        self.partner_slot = self.admit_partner(&domain);
                        if self.partner_slot.is_none() {
                            directive = machine.over_partner_limit(
                                self.generation.config.limits.max_connections_per_partner,
                            );
                            // What the peer pipelined after authenticating
                            // belongs to the refused stream: not relayed.
                            break;
                        }
                    }
                    event!(
                        Info,
                        "stream_authenticated",
                        listener = self.listener.name(),
                        peer = self.peer,
                        domain = domain,
                        mechanism = match mechanism {
                            Mechanism::External => "EXTERNAL",
                            Mechanism::Dialback => "dialback",
                        },
                    );
                    self.inbound_id = Some(stats.inbound_opened(InboundStream {
                        listener: self.listener,
                        domain,
                        auth: mechanism,
                    }));
                }
                StreamEvent::VerifyDialback {
                    from,
                    to,
                    stream_id,
                    key,
                } => {
                    event!(
                        Info,
                        "dialback_requested",
                        listener = self.listener.name(),
                        peer = self.peer,
                        from = from,
                        to = to,
                    );
                    let router = self.router.clone();
                    let request = VerifyRequest {
                        from: from.clone(),
                        to,
                        stream_id,
                        key,
                    };
                    let task = tokio::spawn(async move { router.verify_dialback(request).await });
                    self.verifying = Some((from, AbortOnDrop(task)));
                }
                StreamEvent::DialbackAnswered { from, outcome } => {
                    event!(
                        Info,
                        if outcome == DialbackOutcome::Valid {
                            "dialback_accepted"
                        } else {
                            "dialback_refused"
                        },
                        listener = self.listener.name(),
                        peer = self.peer,
                        from = from,
                        result = outcome.as_str(),
                    );
                }
                StreamEvent::VerifyAnswered { from, to, check } => {
                    stats.verify_answered(check != KeyCheck::Invalid);
                    event!(
                        Info,
                        "dialback_verify_answered",
                        listener = self.listener.name(),
                        peer = self.peer,
                        from = from,
                        to = to,
                        result = if check == KeyCheck::Invalid {
                            "invalid"
                        } else {
                            "valid"
                        },
                        secret = match check {
                            KeyCheck::Current => "current",
                            KeyCheck::Previous => "previous",
                            KeyCheck::Invalid => "none",
                        },
                    );
                }
                StreamEvent::AuthFailed { reason } => {
                    stats.sasl(self.listener, false);
                    event!(
                        Info,
                        "sasl_failed",
                        listener = self.listener.name(),
                        peer = self.peer,
                        reason = reason,
                    );
                }
                StreamEvent::Relay(routed) => {
                    let direction = match self.listener {
                        ListenerKind::External => Direction::Inbound,
                        ListenerKind::Internal => Direction::Outbound,
                    };
                    stats.stanza(direction, true);
                    self.router.route(routed).await;
                }
                StreamEvent::Denied {
                    direction,
                    user,
                    cause,
                    stanza,
                    reply,
                } => {
                    stats.stanza(direction, false);
                    stats.denied(direction, cause);
                    event!(
                        Info,
                        "stanza_denied",
                        listener = self.listener.name(),
                        direction = direction.as_str(),
                        user = user,
                        stanza = stanza,
                        verdict = "denied",
                        cause = cause.as_str(),
                        reply = reply.as_ref().map_or("none", |_| "error"),
                    );
                    if let Some(reply) = reply {
                        self.router.route(reply).await;
                    }
                }
            }
        }
        directive
    }

    /// A place in `partner`'s count of authenticated streams (external
    /// listener only: internal servers are ours, not partners). `None`,
    /// counted and logged, when the partner already holds as many as
    /// `limits.max_connections_per_partner` allows under the generation
    /// this connection was accepted with.
    fn admit_partner(&self, partner: &str) -> Option<PartnerSlot> {
        let limit = self.generation.config.limits.max_connections_per_partner;
        match self.shared.partner_limiter.try_acquire(partner, limit) {
            Some(slot) => Some(slot),
            None => {
                let why = Rejection::MaxConnectionsPerPartner;
                self.shared.listener_metrics(self.listener).rejected(why);
                // Policy, not noise: a partner's operator asking why a
                // stream was closed is answered by this line.
                event!(
                    Info,
                    "stream_refused",
                    listener = self.listener.name(),
                    peer = self.peer,
                    partner = partner,
                    reason = why.as_str(),
                    limit = limit,
                );
                None
            }
        }
    }

    /// Feeds `data`, under the latest generation's rules: a reload that
    /// completed before these bytes were read applies to them, whichever
    /// of the two the select above saw first.
    fn receive(&mut self, machine: &mut StreamMachine, data: &[u8]) -> Directive {
        if self.generations.has_changed().unwrap_or(false) {
            let directive = self.reconfigure(machine);
            if directive == Directive::Close {
                return directive;
            }
        }
        machine.receive(data)
    }

    /// A reload made a new generation current: its peer rule judges the stream.
    fn reconfigure(&mut self, machine: &mut StreamMachine) -> Directive {
        let settings = self
            .generations
            .borrow_and_update()
            .listener(self.listener)
            .settings
            .clone();
        let directive = machine.reconfigured(settings);
        self.revoked = directive == Directive::Close && machine.error().is_some();
        directive
    }

    /// Counts and logs the stream error the machine closed with, once.
    fn record(&mut self, machine: &StreamMachine) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        if let Some(error) = machine.error() {
            let metrics = self.shared.listener_metrics(self.listener);
            metrics.stream_error(error.condition());
            if let (Some(refusal), StreamError::NotPartner { from, to }) = (error.refusal(), error)
            {
                metrics.refused(refusal);
                // Policy, not protocol noise: an operator looks for these
                // when a partner says it cannot reach us.
                event!(
                    Info,
                    if self.revoked {
                        "stream_revoked"
                    } else {
                        "stream_refused"
                    },
                    listener = self.listener.name(),
                    peer = self.peer,
                    from = from,
                    to = to,
                    reason = refusal,
                );
            }
            if let StreamError::DialbackRefused(why) = error {
                event!(
                    Info,
                    "dialback_refused",
                    listener = self.listener.name(),
                    peer = self.peer,
                    from = machine
                        .peer()
                        .and_then(|p| p.from.as_deref())
                        .unwrap_or("-"),
                    reason = why,
                );
            }
            event!(
                Debug,
                "stream_error",
                listener = self.listener.name(),
                peer = self.peer,
                condition = error.condition(),
                reason = error,
            );
        }
    }

    fn finish(&mut self, machine: &StreamMachine) {
        self.record(machine);
        if machine.authenticated().is_some() {
            self.shared.relay.authenticated_closed(self.listener);
        }
        if let Some(id) = self.inbound_id.take() {
            self.shared.relay.inbound_closed(id);
        }
        event!(
            Debug,
            "connection_closed",
            listener = self.listener.name(),
            peer = self.peer,
            secure = machine.is_secure(),
        );
    }
}

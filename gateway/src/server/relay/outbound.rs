//! One outbound stream: gateway → internal server, or gateway → partner,
//! for one (from-domain, to-domain) pair.
//!
//! Owns its connection's life: find the addresses (the internal server,
//! the partner's `proxy`, or its SRV records), negotiate (`handshake`),
//! then write the stanzas the router queues, re-serialised; read only to
//! notice a stream error or close. It ends when idle, on drain (closing
//! the stream cleanly), when the peer closes it cleanly (not a failure:
//! stanzas queued behind the close are routed again, to a new stream), or
//! when the connection fails; stanzas it could not
//! deliver are answered through the router (`bounce`). One connection
//! attempt per stream; after a failure the router waits (`retry`) before
//! it starts another for the pair.

use super::handshake::{
    Authenticated, HandshakeError, OutboundAuth, establish, stream_error_condition,
};
use super::resolve::partner_addresses;
use super::router::{BounceReason, PairKey, Router};
use super::stats::{Leg, OutboundState};
use crate::config::ServerAddress;
use crate::event;
use crate::server::tracker::TaskToken;
use crate::stream::{NS_SERVER, NS_STREAMS, Routed, StanzaCondition};
use crate::xml::{Element, Frame, to_xml};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, split};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout};

/// How the stream finds its peer.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A configured `host:port` (the internal server, a partner's `proxy`).
    Fixed(ServerAddress),
    /// The partner's `_xmpp-server._tcp` SRV records.
    Srv(String),
}

/// Everything one outbound stream needs, fixed when it starts.
pub struct Outbound {
    /// The router that created it (for bounces and to be forgotten).
    pub router: Arc<Router>,
    /// Its pair and identity in the router's table.
    pub key: PairKey,
    /// Which leg it is.
    pub leg: Leg,
    /// Where to connect.
    pub destination: Destination,
    /// TLS client configuration for this leg.
    pub connector: tokio_rustls::TlsConnector,
    /// How the stream authenticates.
    pub auth: OutboundAuth,
    /// Whitespace after this long without writing, if set.
    pub keepalive: Option<Duration>,
    /// `relay.connect_timeout_secs`.
    pub connect_timeout: Duration,
    /// Close after this long without a stanza.
    pub idle: Duration,
    /// Bound on every write.
    pub write_timeout: Duration,
    /// Becomes `true` when the daemon drains.
    pub shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("key", &self.key)
            .field("leg", &self.leg)
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

/// How the stream ended.
enum End {
    /// Closed by us (idle, drain): not a failure.
    Closed,
    /// Closed cleanly by the peer once established (its idle timeout,
    /// `</stream:stream>` or a clean TLS close): not a failure either;
    /// the next stanza for the pair opens a new stream at once.
    ClosedByPeer,
    /// Could not be set up, or was lost.
    Failed(StanzaCondition),
}

impl Outbound {
    /// Runs the stream to its end; `queue` holds the stanzas to send.
    pub async fn run(mut self, mut queue: mpsc::Receiver<Element>, _token: TaskToken) {
        let pair = self.key.pair.label();
        let router = self.router.clone();
        let stats = &router.shared.relay;
        let mut shutdown = self.shutdown.clone();
        stats.set_outbound(&pair, self.leg, OutboundState::Connecting);
        let started = std::time::Instant::now();
        let end = tokio::select! {
            setup = self.setup() => match setup {
                Ok(stream) => {
                    event!(
                        Info,
                        "outbound_established",
                        leg = self.leg.as_str(),
                        from = self.key.pair.from,
                        to = self.key.pair.to,
                        address = stream.address,
                        auth = stream.mechanism.as_str(),
                        millis = started.elapsed().as_millis(),
                    );
                    if matches!(self.auth, OutboundAuth::Dialback(_) | OutboundAuth::Either(_))
                        && self.leg == Leg::Partner
                        && stream.mechanism == crate::stream::Mechanism::Dialback
                    {
                        stats.dialback(true, crate::stream::DialbackOutcome::Valid);
                    }
                    stats.set_outbound_auth(&pair, stream.mechanism);
                    stats.set_outbound(&pair, self.leg, OutboundState::Established);
                    router.established(&self.key);
                    self.pump(stream, &mut queue).await
                }
                Err(e) => {
                    if let HandshakeError::Dialback(answer) = &e {
                        stats.dialback(
                            true,
                            if answer == "invalid" {
                                crate::stream::DialbackOutcome::Invalid
                            } else {
                                crate::stream::DialbackOutcome::Error
                            },
                        );
                    }
                    event!(
                        Info,
                        "outbound_failed",
                        leg = self.leg.as_str(),
                        from = self.key.pair.from,
                        to = self.key.pair.to,
                        error = e,
                    );
                    End::Failed(if e.is_timeout() {
                        StanzaCondition::RemoteServerTimeout
                    } else {
                        StanzaCondition::RemoteServerNotFound
                    })
                }
            },
            // Draining: nothing will be delivered; the reverse path is closing too.
            _ = shutdown.changed() => End::Closed,
        };
        let failed = match end {
            End::Failed(condition) => Some(condition),
            End::Closed | End::ClosedByPeer => None,
        };
        // No new stanza reaches this queue from here on.
        self.router.ended(&self.key, failed);
        queue.close();
        let condition = failed.unwrap_or(StanzaCondition::RemoteServerNotFound);
        let domains = (self.key.pair.from.clone(), self.key.pair.to.clone());
        if matches!(end, End::ClosedByPeer) {
            // Stanzas queued behind the close go on a new stream, in order.
            stats.remove_outbound(&pair, self.leg, false);
            while let Ok(stanza) = queue.try_recv() {
                self.router
                    .route(Routed {
                        from_domain: domains.0.clone(),
                        to_domain: domains.1.clone(),
                        stanza,
                    })
                    .await;
            }
            return;
        }
        while let Ok(stanza) = queue.try_recv() {
            self.router.bounce(
                &self.key.pair,
                &stanza,
                condition,
                BounceReason::StreamEnded,
            );
        }
        stats.remove_outbound(&pair, self.leg, failed.is_some());
    }

    async fn setup(&self) -> Result<Authenticated, HandshakeError> {
        let addresses = self.addresses().await?;
        establish(
            &addresses,
            &self.key.pair.from,
            &self.key.pair.to,
            &self.connector,
            self.connect_timeout,
            &self.auth,
        )
        .await
    }

    async fn addresses(&self) -> Result<Vec<SocketAddr>, HandshakeError> {
        addresses_of(&self.destination, self.connect_timeout).await
    }

    /// Writes queued stanzas until idle, drain or failure.
    async fn pump(&mut self, stream: Authenticated, queue: &mut mpsc::Receiver<Element>) -> End {
        let Authenticated {
            tls, mut reader, ..
        } = stream;
        let (mut read, mut write) = split(tls);
        let mut idle_until = Instant::now() + self.idle;
        // Far in the future when keepalives are off.
        let keepalive = self.keepalive.unwrap_or(Duration::from_secs(86_400 * 365));
        let mut keepalive_at = Instant::now() + keepalive;
        let end = loop {
            tokio::select! {
                stanza = queue.recv() => {
                    let Some(stanza) = stanza else { break End::Closed };
                    let batch = Batch::take(stanza, queue);
                    let sent = timeout(self.write_timeout, async {
                        write.write_all(batch.xml.as_bytes()).await?;
                        write.flush().await
                    })
                    .await;
                    if !matches!(sent, Ok(Ok(()))) {
                        for stanza in &batch.stanzas {
                            self.router.bounce(
                                &self.key.pair,
                                stanza,
                                StanzaCondition::RemoteServerNotFound,
                                BounceReason::WriteFailed,
                            );
                        }
                        self.lost("write failed");
                        break End::Failed(StanzaCondition::RemoteServerNotFound);
                    }
                    idle_until = Instant::now() + self.idle;
                    keepalive_at = Instant::now() + keepalive;
                }
                () = sleep_until(keepalive_at) => {
                    let sent = timeout(self.write_timeout, async {
                        write.write_all(b" ").await?;
                        write.flush().await
                    })
                    .await;
                    if !matches!(sent, Ok(Ok(()))) {
                        self.lost("keepalive write failed");
                        break End::Failed(StanzaCondition::RemoteServerNotFound);
                    }
                    keepalive_at = Instant::now() + keepalive;
                }
                frame = reader.next(&mut read) => match frame {
                    Ok(Some(Frame::Element(e))) if e.is(NS_STREAMS, "error") => {
                        self.lost(&format!("stream error `{}`", stream_error_condition(&e)));
                        break End::Failed(StanzaCondition::RemoteServerNotFound);
                    }
                    // Anything else a receiving server may send on our
                    // stream (keepalives are whitespace) is not ours to act on.
                    Ok(Some(Frame::Element(_) | Frame::StreamOpen(_))) => {}
                    // A clean close of an established stream (the peer's
                    // idle timeout) is not a failure: no retry delay.
                    Ok(Some(Frame::StreamClose) | None) => break End::ClosedByPeer,
                    Err(_) => {
                        self.lost("connection lost");
                        break End::Failed(StanzaCondition::RemoteServerNotFound);
                    }
                },
                () = sleep_until(idle_until) => break End::Closed,
                _ = self.shutdown.changed() => break End::Closed,
            }
        };
        if matches!(end, End::Closed | End::ClosedByPeer) {
            // Forgotten first, so a stanza arriving now opens a new stream.
            self.router.ended(&self.key, None);
            let _ = timeout(self.write_timeout, async {
                write.write_all(b"</stream:stream>").await?;
                write.flush().await?;
                write.shutdown().await
            })
            .await;
            event!(
                Debug,
                "outbound_closed",
                leg = self.leg.as_str(),
                from = self.key.pair.from,
                to = self.key.pair.to,
                by = if matches!(end, End::ClosedByPeer) {
                    "peer"
                } else {
                    "us"
                },
            );
        }
        end
    }

    fn lost(&self, why: &str) {
        event!(
            Info,
            "outbound_failed",
            leg = self.leg.as_str(),
            from = self.key.pair.from,
            to = self.key.pair.to,
            error = why,
        );
    }
}

/// The addresses to try for `destination`, resolved within `timeout`.
pub async fn addresses_of(
    destination: &Destination,
    timeout_after: Duration,
) -> Result<Vec<SocketAddr>, HandshakeError> {
    let timeout_ = timeout_after;
    let found = match destination {
        Destination::Fixed(address) => {
            let lookup = tokio::net::lookup_host((address.host.as_str(), address.port));
            match timeout(timeout_, lookup).await {
                Err(_) => return Err(HandshakeError::Timeout("resolving")),
                Ok(Err(e)) => {
                    return Err(HandshakeError::Connect {
                        addresses: address.to_string(),
                        last: e.to_string(),
                    });
                }
                Ok(Ok(found)) => found.collect(),
            }
        }
        Destination::Srv(domain) => match timeout(timeout_, partner_addresses(domain)).await {
            Err(_) => return Err(HandshakeError::Timeout("resolving")),
            Ok(Err(e)) => {
                return Err(HandshakeError::Connect {
                    addresses: domain.clone(),
                    last: e.to_string(),
                });
            }
            Ok(Ok(found)) => found,
        },
    };
    Ok(found)
}

/// The stanzas already queued when the stream wakes, written as one TLS
/// write and one flush: under load that is one record and one system call
/// for many stanzas instead of one each, and at one stanza at a time it is
/// exactly the old path. Bounded so one write stays small.
struct Batch {
    /// What was taken, kept until written (bounced if the write fails).
    stanzas: Vec<Element>,
    /// Their serialisation, in queue order.
    xml: String,
}

impl Batch {
    /// At most this many stanzas per write.
    const MAX_STANZAS: usize = 64;
    /// Stop adding once the serialisation reaches this many bytes.
    const MAX_BYTES: usize = 64 * 1024;

    fn take(first: Element, queue: &mut mpsc::Receiver<Element>) -> Batch {
        let mut xml = to_xml(&first, NS_SERVER);
        let mut stanzas = vec![first];
        while stanzas.len() < Self::MAX_STANZAS && xml.len() < Self::MAX_BYTES {
            let Ok(next) = queue.try_recv() else { break };
            xml.push_str(&to_xml(&next, NS_SERVER));
            stanzas.push(next);
        }
        Batch { stanzas, xml }
    }
}

#[cfg(test)]
mod tests {
    use super::Batch;
    use crate::stream::NS_SERVER;
    use crate::xml::{Element, Namespace, Node};
    use tokio::sync::mpsc;

    fn message(n: usize, body: &str) -> Element {
        Element {
            ns: Namespace::from_static(NS_SERVER),
            name: "message".into(),
            attrs: vec![(Namespace::NONE, "id".into(), n.to_string())],
            children: vec![Node::Text(body.into())],
        }
    }

    fn ids(batch: &Batch) -> Vec<String> {
        let ids = batch
            .stanzas
            .iter()
            .map(|s| s.attr("id").expect("id").to_string());
        ids.collect()
    }

    #[test]
    fn a_batch_takes_what_is_queued_in_order_up_to_its_bound() {
        let (tx, mut rx) = mpsc::channel(200);
        for n in 1..100 {
            tx.try_send(message(n, "hi")).expect("room");
        }
        let first = Batch::take(message(0, "hi"), &mut rx);
        assert_eq!(
            ids(&first),
            (0..64).map(|n| n.to_string()).collect::<Vec<_>>()
        );
        assert!(
            first
                .xml
                .starts_with("<message id='0'>hi</message><message id='1'>")
        );
        assert_eq!(first.xml.matches("<message").count(), 64);
        let next = rx.try_recv().expect("queued");
        let second = Batch::take(next, &mut rx);
        assert_eq!(
            ids(&second),
            (64..100).map(|n| n.to_string()).collect::<Vec<_>>()
        );
        assert!(rx.try_recv().is_err(), "everything was taken");
    }

    #[test]
    fn a_batch_stops_adding_once_it_is_large() {
        let (tx, mut rx) = mpsc::channel(10);
        let body = "x".repeat(40 * 1024);
        for n in 1..4 {
            tx.try_send(message(n, &body)).expect("room");
        }
        let batch = Batch::take(message(0, &body), &mut rx);
        assert_eq!(ids(&batch), ["0", "1"], "the second crossed 64 KiB");
        assert_eq!(rx.try_recv().expect("queued").attr("id"), Some("2"));
    }

    #[test]
    fn a_lone_stanza_is_written_alone() {
        let (_tx, mut rx) = mpsc::channel(1);
        let batch = Batch::take(message(7, "hi"), &mut rx);
        assert_eq!(ids(&batch), ["7"]);
        assert_eq!(batch.xml, "<message id='7'>hi</message>");
    }
}

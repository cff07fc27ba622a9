//! The initiating side of one S2S stream: header, STARTTLS, then SASL
//! EXTERNAL and a restart (RFC 6120 §4–6, XEP-0178) or dialback (XEP-0220:
//! `db:result` with a key from the organisation's secret, answered by the
//! receiving server once it verified the key with our authoritative
//! server, i.e. an edge's external listener), as the relay speaks it to
//! the internal server and to partners.
//!
//! Owns the client's view of negotiation and nothing else: it fails closed
//! (no STARTTLS offered, no EXTERNAL offered, any `<stream:error>` or
//! `<failure/>` is a failure), bounds every read by a deadline, and hands
//! back the authenticated TLS stream with a framer positioned after the
//! final `<stream:features/>`. Headers, ids and features are this hop's
//! own; nothing here comes from the stream whose stanzas will ride on it.

use crate::config::PartnerAuth;
use crate::dialback::{DialbackKey, Secrets};
use crate::stream::{Mechanism, NS_DIALBACK, NS_SASL, NS_STREAMS, NS_TLS};
use crate::xml::{Element, Frame, Framer, escape_attr};
use base64::Engine as _;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

/// Largest element accepted from the receiving server during negotiation.
const NEGOTIATION_BYTES: usize = 10_000;
const MAX_DEPTH: usize = 16;

/// Why an outbound stream could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Every address refused or timed out.
    #[error("cannot connect to {addresses}: {last}")]
    Connect {
        /// What was tried.
        addresses: String,
        /// The last error.
        last: String,
    },
    /// A deadline passed.
    #[error("timed out during {0}")]
    Timeout(&'static str),
    /// The peer broke the protocol or closed the connection.
    #[error("{0}")]
    Protocol(String),
    /// The peer sent a stream error.
    #[error("stream error `{0}`")]
    StreamError(String),
    /// STARTTLS was not offered: never continue in the clear.
    #[error("the receiving server does not offer STARTTLS")]
    NoStartTls,
    /// The TLS handshake failed (certificate not valid for the domain, …).
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    /// SASL EXTERNAL was not offered or was refused.
    #[error("SASL EXTERNAL {0}")]
    Auth(&'static str),
    /// The receiving server did not confirm our dialback key.
    #[error("dialback: the receiving server answered `{0}`")]
    Dialback(String),
}

/// How an outbound stream authenticates.
#[derive(Debug, Clone)]
pub enum OutboundAuth {
    /// SASL EXTERNAL only.
    External,
    /// Dialback only, keys from these secrets.
    Dialback(Arc<Secrets>),
    /// EXTERNAL when offered, else dialback.
    Either(Arc<Secrets>),
}

impl OutboundAuth {
    /// The partner's `auth` with the secrets (without them, EXTERNAL only:
    /// the loader refuses dialback without `[dialback]`).
    pub fn of(auth: PartnerAuth, secrets: Option<&Arc<Secrets>>) -> OutboundAuth {
        match (auth, secrets) {
            (PartnerAuth::Dialback, Some(s)) => OutboundAuth::Dialback(s.clone()),
            (PartnerAuth::Either, Some(s)) => OutboundAuth::Either(s.clone()),
            _ => OutboundAuth::External,
        }
    }

    fn secrets(&self) -> Option<&Arc<Secrets>> {
        match self {
            OutboundAuth::External => None,
            OutboundAuth::Dialback(s) | OutboundAuth::Either(s) => Some(s),
        }
    }
}

impl HandshakeError {
    /// Whether the failure was a timeout (bounced as `remote-server-timeout`).
    pub fn is_timeout(&self) -> bool {
        matches!(self, HandshakeError::Timeout(_))
    }
}

/// Reads frames from a stream, bounded by a deadline.
#[derive(Debug)]
pub struct FrameReader {
    framer: Framer,
    buf: Box<[u8]>,
}

impl FrameReader {
    /// A reader for a new stream with the negotiation limits.
    pub fn new() -> FrameReader {
        FrameReader::with_limit(NEGOTIATION_BYTES)
    }

    /// A reader whose elements may be `max_bytes` long.
    pub fn with_limit(max_bytes: usize) -> FrameReader {
        FrameReader {
            framer: Framer::new(max_bytes, MAX_DEPTH),
            buf: vec![0u8; 8192].into_boxed_slice(),
        }
    }

    /// The next frame, reading as needed; `None` at end of input.
    pub async fn next<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
    ) -> Result<Option<Frame>, HandshakeError> {
        loop {
            match self.framer.next_frame() {
                Ok(Some(frame)) => return Ok(Some(frame)),
                Ok(None) => {}
                Err(e) => return Err(HandshakeError::Protocol(e.to_string())),
            }
            let n = io
                .read(&mut self.buf)
                .await
                .map_err(|e| HandshakeError::Protocol(e.to_string()))?;
            if n == 0 {
                return Ok(None);
            }
            self.framer.push(&self.buf[..n]);
        }
    }

    async fn expect<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        deadline: Instant,
        step: &'static str,
    ) -> Result<Frame, HandshakeError> {
        match timeout_at(deadline, self.next(io)).await {
            Err(_) => Err(HandshakeError::Timeout(step)),
            Ok(Err(e)) => Err(e),
            Ok(Ok(None)) => Err(HandshakeError::Protocol(format!(
                "connection closed during {step}"
            ))),
            Ok(Ok(Some(Frame::StreamClose))) => Err(HandshakeError::Protocol(format!(
                "stream closed during {step}"
            ))),
            Ok(Ok(Some(Frame::Element(e)))) if e.is(NS_STREAMS, "error") => {
                Err(HandshakeError::StreamError(stream_error_condition(&e)))
            }
            Ok(Ok(Some(frame))) => Ok(frame),
        }
    }

    /// Reads the receiving server's header and then its features.
    async fn header_and_features<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        deadline: Instant,
    ) -> Result<Element, HandshakeError> {
        self.header_id_and_features(io, deadline)
            .await
            .map(|(_, features)| features)
    }

    /// Reads the receiving server's header (returning its stream id) and
    /// then its features.
    pub async fn header_id_and_features<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        deadline: Instant,
    ) -> Result<(String, Element), HandshakeError> {
        let id = match self.expect(io, deadline, "the stream header").await? {
            Frame::StreamOpen(open) if open.element.is(NS_STREAMS, "stream") => {
                open.element.attr("id").unwrap_or_default().to_string()
            }
            _ => return Err(HandshakeError::Protocol("no stream header".into())),
        };
        match self.expect(io, deadline, "the stream features").await? {
            Frame::Element(e) if e.is(NS_STREAMS, "features") => Ok((id, e)),
            Frame::Element(e) => Err(HandshakeError::Protocol(format!(
                "expected <stream:features/>, got `{}`",
                e.name
            ))),
            _ => Err(HandshakeError::Protocol(
                "expected <stream:features/>".into(),
            )),
        }
    }
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader::new()
    }
}

/// The condition element of a `<stream:error>`.
pub fn stream_error_condition(error: &Element) -> String {
    error
        .child_elements()
        .find(|c| c.ns == "urn:ietf:params:xml:ns:xmpp-streams" && c.name != "text")
        .map_or_else(|| "undefined-condition".to_string(), |c| c.name.clone())
}

/// The initiating header from `from` to `to`.
pub fn initiating_header(from: &str, to: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='{NS_STREAMS}' \
         xmlns:db='{NS_DIALBACK}' from='{}' to='{}' version='1.0' xml:lang='en'>",
        escape_attr(from),
        escape_attr(to)
    )
}

/// An authenticated outbound stream.
#[derive(Debug)]
pub struct Authenticated {
    /// The TLS connection.
    pub tls: TlsStream<TcpStream>,
    /// Positioned after the last features.
    pub reader: FrameReader,
    /// The address connected to.
    pub address: SocketAddr,
    /// How it authenticated.
    pub mechanism: Mechanism,
}

/// Connects to the first of `addresses` that answers (each within
/// `timeout`), then negotiates `from` → `to` with `auth`, again within
/// `timeout` (and dialback's verification within one more).
pub async fn establish(
    addresses: &[SocketAddr],
    from: &str,
    to: &str,
    connector: &TlsConnector,
    timeout: std::time::Duration,
    auth: &OutboundAuth,
) -> Result<Authenticated, HandshakeError> {
    let (tcp, address) = connect(addresses, timeout).await?;
    let deadline = Instant::now() + timeout;
    let header = initiating_header(from, to);
    let mut tls = start_tls(tcp, &header, to, connector, deadline).await?;

    let mut reader = FrameReader::new();
    write(&mut tls, &header, deadline).await?;
    let (stream_id, features) = reader.header_id_and_features(&mut tls, deadline).await?;
    let external = features
        .child_elements()
        .filter(|c| c.is(NS_SASL, "mechanisms"))
        .flat_map(Element::child_elements)
        .any(|m| m.is(NS_SASL, "mechanism") && text(m).trim() == "EXTERNAL");
    let secrets = match (auth, external) {
        (OutboundAuth::External | OutboundAuth::Either(_), true) => None,
        (OutboundAuth::External, false) => return Err(HandshakeError::Auth("is not offered")),
        (_, _) => auth.secrets(),
    };
    if let Some(secrets) = secrets {
        let key = secrets.issue(&DialbackKey {
            receiving: to,
            originating: from,
            stream_id: &stream_id,
        });
        write(
            &mut tls,
            &format!(
                "<db:result from='{}' to='{}'>{key}</db:result>",
                escape_attr(from),
                escape_attr(to)
            ),
            deadline,
        )
        .await?;
        // The receiving server now asks our authoritative server (an
        // edge's external listener): allow it one more `timeout`.
        let verdict_deadline = Instant::now() + timeout;
        loop {
            match reader
                .expect(&mut tls, verdict_deadline, "dialback verification")
                .await?
            {
                Frame::Element(e) if e.is(NS_DIALBACK, "result") => match e.attr("type") {
                    Some("valid") => break,
                    other => {
                        return Err(HandshakeError::Dialback(
                            other.unwrap_or("(no type)").to_string(),
                        ));
                    }
                },
                // Nothing else is expected here; a receiving server's
                // other elements are not ours to act on.
                _ => {}
            }
        }
        return Ok(Authenticated {
            tls,
            reader,
            address,
            mechanism: Mechanism::Dialback,
        });
    }
    let authzid = base64::engine::general_purpose::STANDARD.encode(from);
    write(
        &mut tls,
        &format!("<auth xmlns='{NS_SASL}' mechanism='EXTERNAL'>{authzid}</auth>"),
        deadline,
    )
    .await?;
    match reader.expect(&mut tls, deadline, "SASL").await? {
        Frame::Element(e) if e.is(NS_SASL, "success") => {}
        _ => return Err(HandshakeError::Auth("was refused")),
    }

    let mut reader = FrameReader::with_limit(NEGOTIATION_BYTES);
    write(&mut tls, &header, deadline).await?;
    reader.header_and_features(&mut tls, deadline).await?;
    Ok(Authenticated {
        tls,
        reader,
        address,
        mechanism: Mechanism::External,
    })
}

/// Connects to the first of `addresses` that answers within `timeout`.
pub async fn connect(
    addresses: &[SocketAddr],
    timeout: std::time::Duration,
) -> Result<(TcpStream, SocketAddr), HandshakeError> {
    let mut last = String::from("no address");
    let mut tcp = None;
    for address in addresses {
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(socket)) => {
                tcp = Some((socket, *address));
                break;
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "timed out".to_string(),
        }
    }
    let Some((tcp, address)) = tcp else {
        let addresses = addresses
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(if last == "timed out" {
            HandshakeError::Timeout("connect")
        } else {
            HandshakeError::Connect { addresses, last }
        });
    };
    let _ = tcp.set_nodelay(true);
    Ok((tcp, address))
}

/// Sends `header` in the clear, requires STARTTLS and runs the TLS
/// handshake for `to`.
pub async fn start_tls(
    mut tcp: TcpStream,
    header: &str,
    to: &str,
    connector: &TlsConnector,
    deadline: Instant,
) -> Result<TlsStream<TcpStream>, HandshakeError> {
    let mut reader = FrameReader::new();
    write(&mut tcp, header, deadline).await?;
    let features = reader.header_and_features(&mut tcp, deadline).await?;
    if !features.child_elements().any(|c| c.is(NS_TLS, "starttls")) {
        return Err(HandshakeError::NoStartTls);
    }
    write(&mut tcp, &format!("<starttls xmlns='{NS_TLS}'/>"), deadline).await?;
    match reader.expect(&mut tcp, deadline, "STARTTLS").await? {
        Frame::Element(e) if e.is(NS_TLS, "proceed") => {}
        _ => return Err(HandshakeError::NoStartTls),
    }
    let name = ServerName::try_from(to.to_string())
        .map_err(|e| HandshakeError::Protocol(format!("`{to}` is not a server name: {e}")))?;
    match timeout_at(deadline, connector.connect(name, tcp)).await {
        Err(_) => Err(HandshakeError::Timeout("the TLS handshake")),
        Ok(Err(e)) => Err(HandshakeError::Tls(e)),
        Ok(Ok(tls)) => Ok(tls),
    }
}

/// Writes `data` before `deadline`.
pub async fn write_str<S: AsyncWrite + Unpin>(
    io: &mut S,
    data: &str,
    deadline: Instant,
) -> Result<(), HandshakeError> {
    write(io, data, deadline).await
}

async fn write<S: AsyncWrite + Unpin>(
    io: &mut S,
    data: &str,
    deadline: Instant,
) -> Result<(), HandshakeError> {
    let write = async {
        io.write_all(data.as_bytes()).await?;
        io.flush().await
    };
    match timeout_at(deadline, write).await {
        Err(_) => Err(HandshakeError::Timeout("writing")),
        Ok(Err(e)) => Err(HandshakeError::Protocol(e.to_string())),
        Ok(Ok(())) => Ok(()),
    }
}

fn text(e: &Element) -> String {
    e.children
        .iter()
        .filter_map(|n| match n {
            crate::xml::Node::Text(t) => Some(t.as_str()),
            crate::xml::Node::Element(_) => None,
        })
        .collect()
}

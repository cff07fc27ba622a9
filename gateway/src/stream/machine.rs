//! The per-connection XMPP stream state machine (receiving side).
//!
//! Sans-I/O: the connection driver feeds it bytes and events (end of
//! input, timeout, shutdown, TLS established) and writes out what it
//! returns; the machine never touches a socket or a clock. That keeps every
//! protocol rule unit-testable and lets later releases add phases (SASL
//! EXTERNAL, dialback, relaying) without touching the I/O code.
//!
//! A header is answered only once it validates and its peer is admitted by
//! the listener's peer rule; a refused peer gets our header (naming the
//! domain it asked for) and then the error. After a reload the driver hands
//! over the new settings (`reconfigured`): their peer rule judges the open
//! stream and every later header, while limits stay as the stream began.
//!
//! Phases in this release:
//! `AwaitHeader` → (plain) `AwaitStartTls` → `TlsPending` → [driver does
//! TLS] → `AwaitHeader` (secure) → `Negotiating`. Direct TLS connections
//! start in the secure `AwaitHeader`. Any error writes our header (if not
//! yet sent), a `<stream:error>` and `</stream:stream>`, and ends in
//! `Closed`.

use super::condition::Condition;
use super::error::StreamError;
use super::header::{NS_SERVER, PeerHeader, response_header};
use super::settings::StreamSettings;
use super::stream_id::StreamId;
use crate::xml::{Element, Frame, Framer, escape_text};
use std::sync::Arc;

/// `urn:ietf:params:xml:ns:xmpp-tls`
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

/// Where a stream is in its negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the initiating (or restarted) stream header.
    AwaitHeader,
    /// Header answered with STARTTLS required; only `<starttls/>` is allowed.
    AwaitStartTls,
    /// `<proceed/>` written; the driver must now run the TLS handshake.
    TlsPending,
    /// Secure and features sent; not authenticated (no mechanism offered yet).
    Negotiating,
    /// Finished; the driver flushes output and closes.
    Closed,
}

/// What the driver must do after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Write the output, keep reading.
    Continue,
    /// Write the output, then run the server-side TLS handshake and call
    /// `tls_established`.
    StartTls,
    /// Write the output, then close the connection.
    Close,
}

/// One stream's protocol state.
#[derive(Debug)]
pub struct StreamMachine {
    settings: Arc<StreamSettings>,
    /// Whose peer rule admits headers: `settings` until a reload replaces it.
    admission: Arc<StreamSettings>,
    phase: Phase,
    framer: Framer,
    out: Vec<u8>,
    secure: bool,
    header_sent: bool,
    stream_id: Option<StreamId>,
    peer: Option<PeerHeader>,
    error: Option<StreamError>,
}

impl StreamMachine {
    /// A stream on a plain TCP connection (STARTTLS follows).
    pub fn new(settings: Arc<StreamSettings>) -> StreamMachine {
        let framer = new_framer(&settings);
        StreamMachine {
            admission: settings.clone(),
            settings,
            phase: Phase::AwaitHeader,
            framer,
            out: Vec::new(),
            secure: false,
            header_sent: false,
            stream_id: None,
            peer: None,
            error: None,
        }
    }

    /// A stream whose connection began with a TLS handshake (Direct TLS).
    pub fn new_secure(settings: Arc<StreamSettings>) -> StreamMachine {
        let mut machine = StreamMachine::new(settings);
        machine.secure = true;
        machine
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether TLS is active.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The error the stream was closed with, if any.
    pub fn error(&self) -> Option<&StreamError> {
        self.error.as_ref()
    }

    /// The validated peer header of the current stream, if any.
    pub fn peer(&self) -> Option<&PeerHeader> {
        self.peer.as_ref()
    }

    /// The ID of the header we sent last.
    pub fn stream_id(&self) -> Option<&StreamId> {
        self.stream_id.as_ref()
    }

    /// Takes the bytes to write to the peer.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Feeds received bytes.
    pub fn receive(&mut self, data: &[u8]) -> Directive {
        match self.phase {
            Phase::Closed => return Directive::Close,
            Phase::TlsPending => return self.fail(StreamError::PipelinedAfterStartTls),
            _ => {}
        }
        self.framer.push(data);
        loop {
            match self.framer.next_frame() {
                Ok(Some(frame)) => match self.on_frame(frame) {
                    Directive::Continue => continue,
                    other => return other,
                },
                Ok(None) => return Directive::Continue,
                Err(e) => return self.fail(e.into()),
            }
        }
    }

    /// The peer closed its side of the connection.
    pub fn end_of_input(&mut self) -> Directive {
        self.phase = Phase::Closed;
        Directive::Close
    }

    /// A header, handshake, negotiation or idle deadline passed.
    pub fn timed_out(&mut self) -> Directive {
        self.fail(StreamError::Timeout)
    }

    /// The gateway is draining.
    pub fn shut_down(&mut self) -> Directive {
        self.fail(StreamError::Shutdown)
    }

    /// The listener's configuration was reloaded. `settings` (of the same
    /// listener) judge this stream's peer now and every later header; a
    /// peer they do not admit is sent the refusal and the stream closes.
    /// Limits, domains served and TLS stay as the stream started with.
    pub fn reconfigured(&mut self, settings: Arc<StreamSettings>) -> Directive {
        if self.phase == Phase::Closed {
            return Directive::Close;
        }
        self.admission = settings;
        let refused = self.peer.as_ref().map(|peer| self.admission.admit(peer));
        match refused {
            Some(Err(e)) => self.fail(e),
            _ => Directive::Continue,
        }
    }

    /// The driver completed the TLS handshake: the stream restarts.
    pub fn tls_established(&mut self) {
        self.secure = true;
        self.header_sent = false;
        self.peer = None;
        self.framer = new_framer(&self.settings);
        self.phase = Phase::AwaitHeader;
    }

    fn on_frame(&mut self, frame: Frame) -> Directive {
        match (self.phase, frame) {
            (Phase::AwaitHeader, Frame::StreamOpen(open)) => {
                match PeerHeader::validate(&open, &self.settings) {
                    Ok(peer) => match self.admission.admit(&peer) {
                        Ok(()) => self.open_stream(peer),
                        Err(e) => {
                            // Our header names the domain it asked for and
                            // answers the domain it claims.
                            self.peer = Some(peer);
                            self.fail(e)
                        }
                    },
                    Err(e) => self.fail(e),
                }
            }
            (_, Frame::StreamClose) => {
                if !self.header_sent {
                    self.send_header();
                }
                self.out.extend_from_slice(b"</stream:stream>");
                self.phase = Phase::Closed;
                Directive::Close
            }
            (Phase::AwaitStartTls, Frame::Element(e)) if e.is(NS_TLS, "starttls") => {
                self.start_tls()
            }
            (Phase::AwaitStartTls, Frame::Element(e)) => match client_namespace(&e) {
                Some(err) => self.fail(err),
                None => self.fail(StreamError::TlsRequired(e.name)),
            },
            // Relaying, and the per-user policy decision with it, starts in
            // an authenticated phase after this one (README, "Per-user policy").
            (Phase::Negotiating, Frame::Element(e)) => match client_namespace(&e) {
                Some(err) => self.fail(err),
                None if is_stanza(&e) => self.fail(StreamError::NotAuthorized(e.name)),
                None => self.fail(StreamError::UnsupportedStanzaType(e.name)),
            },
            // A second header within one stream cannot be produced by the
            // framer; anything else here is a state the driver should not
            // have fed.
            (_, Frame::StreamOpen(_) | Frame::Element(_)) => {
                self.fail(StreamError::NotWellFormed("unexpected element".into()))
            }
        }
    }

    fn open_stream(&mut self, peer: PeerHeader) -> Directive {
        self.peer = Some(peer);
        self.send_header();
        if self.secure {
            // Authentication mechanisms (SASL EXTERNAL, dialback) join here.
            self.out.extend_from_slice(b"<stream:features/>");
            self.phase = Phase::Negotiating;
            return Directive::Continue;
        }
        if !self.settings.tls_available {
            return self.fail(StreamError::NoCertificate);
        }
        self.out.extend_from_slice(
            format!("<stream:features><starttls xmlns='{NS_TLS}'><required/></starttls></stream:features>").as_bytes(),
        );
        self.phase = Phase::AwaitStartTls;
        Directive::Continue
    }

    fn start_tls(&mut self) -> Directive {
        // Anything after <starttls/> in the clear would be processed as if
        // it had come over TLS (CVE-2011-0411 class): refuse it.
        let pipelined = self.framer.has_partial_token()
            || self
                .framer
                .buffered()
                .iter()
                .any(|b| !b.is_ascii_whitespace());
        if pipelined {
            return self.fail(StreamError::PipelinedAfterStartTls);
        }
        self.out
            .extend_from_slice(format!("<proceed xmlns='{NS_TLS}'/>").as_bytes());
        self.phase = Phase::TlsPending;
        Directive::StartTls
    }

    fn send_header(&mut self) {
        let id = StreamId::random();
        let from = self.peer.as_ref().map(|p| p.to.as_str());
        let to = self.peer.as_ref().and_then(|p| p.from.as_deref());
        self.out
            .extend_from_slice(response_header(&id, from, to).as_bytes());
        self.stream_id = Some(id);
        self.header_sent = true;
    }

    fn fail(&mut self, error: StreamError) -> Directive {
        if self.phase == Phase::Closed {
            return Directive::Close;
        }
        if !self.header_sent {
            self.send_header();
        }
        let condition = error.condition();
        let mut xml = format!(
            "<stream:error><{condition} xmlns='{NS_STREAM_ERRORS}'/><text xmlns='{NS_STREAM_ERRORS}' xml:lang='en'>{}</text>",
            escape_text(&error.peer_text())
        );
        if let Some(app) = error.app_condition() {
            xml.push_str(app);
        }
        xml.push_str("</stream:error></stream:stream>");
        self.out.extend_from_slice(xml.as_bytes());
        self.error = Some(error);
        self.phase = Phase::Closed;
        Directive::Close
    }

    /// The condition the stream was closed with, if it was closed by an error.
    pub fn condition(&self) -> Option<Condition> {
        self.error.as_ref().map(StreamError::condition)
    }
}

fn new_framer(settings: &StreamSettings) -> Framer {
    // Until authenticated, the small limit applies (header included).
    Framer::new(
        settings.limits.max_unauthenticated_stanza_bytes,
        settings.limits.max_depth,
    )
}

fn is_stanza(e: &Element) -> bool {
    e.ns == NS_SERVER && matches!(e.name.as_str(), "message" | "presence" | "iq")
}

/// A top-level element in a client (or no) namespace on an S2S stream.
fn client_namespace(e: &Element) -> Option<StreamError> {
    matches!(
        e.ns.as_str(),
        "jabber:client" | "jabber:component:accept" | ""
    )
    .then(|| StreamError::InvalidNamespace(format!("`{}` in namespace {:?}", e.name, e.ns)))
}

//! The per-connection XMPP stream state machine (receiving side).
//!
//! Sans-I/O: the connection driver feeds it bytes and events (end of
//! input, timeout, shutdown, TLS established) and writes out what it
//! returns; the machine never touches a socket or a clock. That keeps every
//! protocol rule unit-testable: header, STARTTLS, SASL EXTERNAL and the
//! established phase (each stanza relayed or denied, as events for the
//! driver) are phases of this one machine.
//!
//! A header is answered only once it validates and its peer is admitted by
//! the listener's peer rule; a refused peer gets our header (naming the
//! domain it asked for) and then the error. After a reload the driver hands
//! over the new settings (`reconfigured`): their peer rule judges the open
//! stream and every later header, while limits stay as the stream began.
//!
//! Phases:
//! `AwaitHeader` → (plain) `AwaitStartTls` → `TlsPending` → [driver does
//! TLS] → `AwaitHeader` (secure) → `Negotiating` → [SASL EXTERNAL
//! `<success/>`] → `AwaitHeader` (authenticated) → `Established`. Direct
//! TLS connections start in the secure `AwaitHeader`. Any error writes our
//! header (if not yet sent), a `<stream:error>` and `</stream:stream>`, and
//! ends in `Closed`.
//!
//! SASL EXTERNAL (RFC 6120 §6, XEP-0178) is offered only when relaying is
//! configured, the driver handed over a client certificate that chains to
//! the listener's trust anchors (`PeerIdentity`), the header names a `from`
//! the listener's peer rule admits, the certificate is valid for it and the
//! partner's `auth` allows EXTERNAL.
//!
//! Dialback (XEP-0220), external listener only and only after TLS: a
//! `db:result` from a partner whose `auth` allows dialback becomes
//! [`StreamEvent::VerifyDialback`]; the driver asks the partner's
//! authoritative server and reports back with [`StreamMachine::dialback_verified`],
//! which answers the pending request (and only it) and, when valid,
//! authenticates the domain on this stream without a restart. A second
//! `db:result`, one for a partner that must use EXTERNAL, or any typed
//! (answer) element arriving on a receiving stream is refused with
//! `not-authorized`. A `db:verify` (we are the authoritative server for a
//! key the gateway issued) is answered at once from the secrets:
//! `valid` for a key made with the current or the previous secret,
//! `invalid` otherwise. `db:*` elements are never relayed.
//! In `Established` every stanza's addresses are checked against the
//! authenticated pair, then the per-user policy decides (README, "Per-user
//! policy"); what to relay or answer is handed to the driver as
//! [`StreamEvent`]s, never written on this (inbound) stream.

use super::condition::Condition;
use super::error::StreamError;
use super::header::{NS_DIALBACK, NS_SERVER, PeerHeader, response_header};
use super::mechanism::{DialbackOutcome, Mechanism};
use super::settings::StreamSettings;
use super::stanza::{
    Routed, StanzaCondition, check_addresses, error_reply, expects_error_reply, with_lang,
};
use super::stream_id::StreamId;
use crate::config::{ListenerKind, normalize_domain, normalize_jid_domain};
use crate::dialback::{DialbackKey, KeyCheck};
use crate::policy::{DenialCause, DenialReply, Direction, Verdict, decide};
use crate::tls::PeerIdentity;
use crate::xml::{Element, Frame, Framer, escape_attr, escape_text};
use std::sync::Arc;

/// `urn:ietf:params:xml:ns:xmpp-tls`
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// `urn:ietf:params:xml:ns:xmpp-sasl`
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// `urn:xmpp:features:dialback`, the dialback stream feature.
pub const NS_DIALBACK_FEATURE: &str = "urn:xmpp:features:dialback";
/// Longest dialback key accepted (XEP-0185 keys are 64 hex digits).
const MAX_KEY_BYTES: usize = 1024;
const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// The language stamped on stanzas when neither they nor the stream name one.
const DEFAULT_LANG: &str = "en";

/// Where a stream is in its negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the initiating (or restarted) stream header.
    AwaitHeader,
    /// Header answered with STARTTLS required; only `<starttls/>` is allowed.
    AwaitStartTls,
    /// `<proceed/>` written; the driver must now run the TLS handshake.
    TlsPending,
    /// Secure and features sent; not authenticated (EXTERNAL offered or not).
    Negotiating,
    /// Authenticated for one (from, to) pair; stanzas are relayed.
    Established,
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

/// What happened on the stream that the driver must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The stream is authenticated for `domain`.
    Authenticated {
        /// The peer's proven domain.
        domain: String,
        /// How.
        mechanism: Mechanism,
    },
    /// A `db:result` to verify with `from`'s authoritative server; answer
    /// with [`StreamMachine::dialback_verified`].
    VerifyDialback {
        /// The originating (partner) domain.
        from: String,
        /// Our domain it wants to reach.
        to: String,
        /// The id of this stream, which the key is bound to.
        stream_id: String,
        /// The key to verify.
        key: String,
    },
    /// The pending `db:result` was answered.
    DialbackAnswered {
        /// The partner domain.
        from: String,
        /// What the authoritative server said.
        outcome: DialbackOutcome,
    },
    /// A `db:verify` was answered (we are the authoritative server).
    VerifyAnswered {
        /// The receiving server asking.
        from: String,
        /// Our domain the key claims.
        to: String,
        /// Whether a key of ours, and made with which secret.
        check: KeyCheck,
    },
    /// SASL EXTERNAL failed (the stream is closing).
    AuthFailed {
        /// Why, for the log.
        reason: &'static str,
    },
    /// A stanza the policy allows: relay it.
    Relay(Routed),
    /// A stanza the policy refuses; `reply` (if any) goes back to its sender.
    Denied {
        /// Which way it was going.
        direction: Direction,
        /// The local user whose policy refused it.
        user: String,
        /// What decided (the flag that is off, for a user of ours).
        cause: DenialCause,
        /// `message`, `presence` or `iq`.
        stanza: String,
        /// The error to route back to the sender.
        reply: Option<Routed>,
    },
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
    /// What the client certificate proves (set by the driver after TLS).
    identity: Option<PeerIdentity>,
    /// Whether EXTERNAL was offered on the current stream.
    external_offered: bool,
    /// The domain SASL EXTERNAL or dialback proved.
    authenticated: Option<String>,
    /// How it was proved.
    mechanism: Option<Mechanism>,
    /// The inbound dialback request: none yet, pending, or answered.
    dialback: DialbackState,
    events: Vec<StreamEvent>,
}

/// Where a receiving stream's one dialback request is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DialbackState {
    /// No `db:result` received.
    None,
    /// Being verified: (from, to).
    Pending(String, String),
    /// Answered (valid, invalid or error); another is refused.
    Answered,
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
            identity: None,
            external_offered: false,
            authenticated: None,
            mechanism: None,
            dialback: DialbackState::None,
            events: Vec::new(),
        }
    }

    /// A stream whose connection began with a TLS handshake (Direct TLS);
    /// `identity` is what the client certificate proves, if anything.
    pub fn new_secure(
        settings: Arc<StreamSettings>,
        identity: Option<PeerIdentity>,
    ) -> StreamMachine {
        let mut machine = StreamMachine::new(settings);
        machine.secure = true;
        machine.identity = identity;
        machine
    }

    /// The domain the stream authenticated, once SASL succeeded.
    pub fn authenticated(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }

    /// How the stream was authenticated, once it is.
    pub fn mechanism(&self) -> Option<Mechanism> {
        self.mechanism
    }

    /// Whether the authenticated peer's partner entry asks for keepalives.
    pub fn keepalive(&self) -> bool {
        self.authenticated
            .as_deref()
            .is_some_and(|d| self.admission.keepalive_for(d))
    }

    /// The listener's settings this stream started with.
    pub fn settings(&self) -> &Arc<StreamSettings> {
        &self.settings
    }

    /// The driver verified the pending `db:result` for `from` with its
    /// authoritative server: answers it (XEP-0220 §2.4 step 4). Valid
    /// authenticates `from` on this stream; invalid refuses the stream;
    /// error leaves it unauthenticated but open (§2.4: a dialback error
    /// is not a stream error). Ignored if no request for `from` is pending.
    pub fn dialback_verified(&mut self, from: &str, outcome: DialbackOutcome) -> Directive {
        let DialbackState::Pending(pending_from, to) = &self.dialback else {
            return if self.phase == Phase::Closed {
                Directive::Close
            } else {
                Directive::Continue
            };
        };
        if pending_from != from || self.phase == Phase::Closed {
            return Directive::Continue;
        }
        let (from, to) = (pending_from.clone(), to.clone());
        self.dialback = DialbackState::Answered;
        self.events.push(StreamEvent::DialbackAnswered {
            from: from.clone(),
            outcome,
        });
        let attrs = format!(
            "from='{}' to='{}' type='{}'",
            escape_attr(&to),
            escape_attr(&from),
            outcome.as_str()
        );
        match outcome {
            DialbackOutcome::Valid => {
                self.out
                    .extend_from_slice(format!("<db:result {attrs}/>").as_bytes());
                self.framer
                    .set_max_bytes(self.settings.limits.max_stanza_bytes);
                self.events.push(StreamEvent::Authenticated {
                    domain: from.clone(),
                    mechanism: Mechanism::Dialback,
                });
                self.authenticated = Some(from);
                self.mechanism = Some(Mechanism::Dialback);
                self.phase = Phase::Established;
                Directive::Continue
            }
            DialbackOutcome::Invalid => {
                self.out
                    .extend_from_slice(format!("<db:result {attrs}/>").as_bytes());
                self.fail(StreamError::DialbackRefused(format!(
                    "the authoritative server of `{from}` did not confirm the key"
                )))
            }
            DialbackOutcome::Error => {
                self.out.extend_from_slice(
                    format!(
                        "<db:result {attrs}><error type='cancel'><remote-server-not-found \
                         xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>"
                    )
                    .as_bytes(),
                );
                Directive::Continue
            }
        }
    }

    /// Takes what the driver must act on (relays, denials, auth results).
    pub fn take_events(&mut self) -> Vec<StreamEvent> {
        std::mem::take(&mut self.events)
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

    /// The driver refuses the stream just authenticated: its partner holds
    /// `limit` streams already. The stream error follows whatever the
    /// authentication wrote (SASL `<success/>` or the dialback result), so
    /// the partner reads why the stream it thought it had is closed.
    pub fn over_partner_limit(&mut self, limit: u32) -> Directive {
        let partner = self.authenticated.clone().unwrap_or_default();
        self.fail(StreamError::PartnerLimit { partner, limit })
    }

    /// The driver completed the TLS handshake: the stream restarts.
    /// `identity` is what the client certificate proves, if anything.
    pub fn tls_established(&mut self, identity: Option<PeerIdentity>) {
        self.identity = identity;
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
                    Ok(peer) if self.authenticated.is_some() && peer.from != self.authenticated => {
                        self.peer = Some(peer);
                        self.fail(StreamError::InvalidFrom(
                            "the restarted stream names another `from` than the one authenticated"
                                .into(),
                        ))
                    }
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
            (Phase::Negotiating, Frame::Element(e)) if e.is(NS_SASL, "auth") => self.sasl_auth(&e),
            (Phase::Negotiating | Phase::Established, Frame::Element(e))
                if e.is(NS_DIALBACK, "result") =>
            {
                self.db_result(&e)
            }
            (Phase::Negotiating | Phase::Established, Frame::Element(e))
                if e.is(NS_DIALBACK, "verify") =>
            {
                self.db_verify(&e)
            }
            (Phase::Negotiating, Frame::Element(e)) => match client_namespace(&e) {
                Some(err) => self.fail(err),
                None if is_stanza(&e) => self.fail(StreamError::NotAuthorized(e.name)),
                None => self.fail(StreamError::UnsupportedStanzaType(e.name)),
            },
            (Phase::Established, Frame::Element(e)) => match client_namespace(&e) {
                Some(err) => self.fail(err),
                None if is_stanza(&e) => self.stanza(e),
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
        if self.authenticated.is_some() {
            self.out.extend_from_slice(b"<stream:features/>");
            self.phase = Phase::Established;
            return Directive::Continue;
        }
        if self.secure {
            self.external_offered = self.can_offer_external();
            let mut features = String::from("<stream:features>");
            if self.external_offered {
                features.push_str(&format!(
                    "<mechanisms xmlns='{NS_SASL}'><mechanism>EXTERNAL</mechanism></mechanisms>"
                ));
            }
            if self.can_offer_dialback() {
                features.push_str(&format!("<dialback xmlns='{NS_DIALBACK_FEATURE}'/>"));
            }
            if features.len() == "<stream:features>".len() {
                features = String::from("<stream:features/>");
            } else {
                features.push_str("</stream:features>");
            }
            self.out.extend_from_slice(features.as_bytes());
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

    /// EXTERNAL is offered when relaying is on and the certificate, which
    /// chains to the listener's anchors, is valid for the admitted `from`.
    fn can_offer_external(&self) -> bool {
        let (Some(identity), Some(from)) = (
            &self.identity,
            self.peer.as_ref().and_then(|p| p.from.as_deref()),
        ) else {
            return false;
        };
        self.settings.relay
            && identity.covers(from)
            && (self.settings.listener == ListenerKind::Internal
                || self
                    .admission
                    .auth_of(from)
                    .is_some_and(|a| a.allows_external()))
    }

    /// Dialback is offered on the external listener with relaying on, to a
    /// header whose `from` is a partner allowed to use it.
    fn can_offer_dialback(&self) -> bool {
        let Some(from) = self.peer.as_ref().and_then(|p| p.from.as_deref()) else {
            return false;
        };
        self.settings.listener == ListenerKind::External
            && self.settings.relay
            && self
                .admission
                .auth_of(from)
                .is_some_and(|a| a.allows_dialback())
    }

    /// `<db:result/>` (XEP-0220 §2.1.1): a partner asks to be authenticated.
    fn db_result(&mut self, e: &Element) -> Directive {
        if e.attr("type").is_some() {
            return self.fail(StreamError::DialbackRefused(
                "a dialback answer on a receiving stream (unsolicited)".into(),
            ));
        }
        if self.settings.listener != ListenerKind::External || !self.settings.relay {
            return self.fail(StreamError::UnsupportedStanzaType(e.name.clone()));
        }
        if self.dialback != DialbackState::None || self.authenticated.is_some() {
            return self.fail(StreamError::DialbackRefused(
                "a second db:result on one stream".into(),
            ));
        }
        let (Some(from), Some(to)) = (
            e.attr("from").and_then(|d| normalize_domain(d).ok()),
            e.attr("to").and_then(|d| normalize_domain(d).ok()),
        ) else {
            return self.fail(StreamError::ImproperAddressing(e.name.clone()));
        };
        if !self.settings.local_domains.contains(&to) {
            return self.fail(StreamError::HostUnknown(Some(to)));
        }
        let header_from = self.peer.as_ref().and_then(|p| p.from.clone());
        if header_from.as_ref().is_some_and(|h| *h != from) {
            return self.fail(StreamError::InvalidFrom(format!(
                "db:result from `{from}` on a stream from another domain"
            )));
        }
        match self.admission.auth_of(&from) {
            None => {
                return self.fail(StreamError::NotPartner {
                    from,
                    to: to.clone(),
                });
            }
            Some(auth) if !auth.allows_dialback() => {
                return self.fail(StreamError::DialbackRefused(format!(
                    "partner `{from}` has auth = \"{}\": it must authenticate with SASL EXTERNAL",
                    auth.as_str()
                )));
            }
            Some(_) => {}
        }
        let key = text_of(e).trim().to_string();
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return self.fail(StreamError::DialbackRefused(
                "an empty or oversized key".into(),
            ));
        }
        let Some(stream_id) = self.stream_id.as_ref().map(|id| id.as_str().to_string()) else {
            return self.fail(StreamError::NotWellFormed("no stream header".into()));
        };
        self.dialback = DialbackState::Pending(from.clone(), to.clone());
        self.events.push(StreamEvent::VerifyDialback {
            from,
            to,
            stream_id,
            key,
        });
        Directive::Continue
    }

    /// `<db:verify/>` (XEP-0220 §2.1.2): a receiving server asks whether
    /// we issued a key. Answered from the secrets, on this stream.
    fn db_verify(&mut self, e: &Element) -> Directive {
        if e.attr("type").is_some() {
            return self.fail(StreamError::DialbackRefused(
                "a db:verify answer on a receiving stream (unsolicited)".into(),
            ));
        }
        if self.settings.listener != ListenerKind::External {
            return self.fail(StreamError::UnsupportedStanzaType(e.name.clone()));
        }
        let (Some(from), Some(to), Some(id)) = (
            e.attr("from").and_then(|d| normalize_domain(d).ok()),
            e.attr("to").and_then(|d| normalize_domain(d).ok()),
            e.attr("id"),
        ) else {
            return self.fail(StreamError::ImproperAddressing(e.name.clone()));
        };
        let key = text_of(e);
        let check = match &self.settings.dialback {
            Some(secrets)
                if self.settings.local_domains.contains(&to)
                    && self.admission.auth_of(&from).is_some()
                    && key.len() <= MAX_KEY_BYTES =>
            {
                secrets.check(
                    &DialbackKey {
                        receiving: &from,
                        originating: &to,
                        stream_id: id,
                    },
                    &key,
                )
            }
            _ => KeyCheck::Invalid,
        };
        let verdict = if check == KeyCheck::Invalid {
            "invalid"
        } else {
            "valid"
        };
        self.out.extend_from_slice(
            format!(
                "<db:verify from='{}' to='{}' id='{}' type='{verdict}'/>",
                escape_attr(&to),
                escape_attr(&from),
                escape_attr(id)
            )
            .as_bytes(),
        );
        self.events
            .push(StreamEvent::VerifyAnswered { from, to, check });
        Directive::Continue
    }

    /// `<auth/>`: success for EXTERNAL with an empty (`=`) authzid or one
    /// naming the stream's `from`; anything else fails and the stream closes.
    fn sasl_auth(&mut self, auth: &Element) -> Directive {
        let from = self.peer.as_ref().and_then(|p| p.from.clone());
        let verdict = match (&from, self.external_offered) {
            (Some(from), true) if auth.attr("mechanism") == Some("EXTERNAL") => {
                if authzid_matches(&text_of(auth), from) {
                    Ok(from.clone())
                } else {
                    Err(("not-authorized", "authzid is not the stream's from"))
                }
            }
            (_, true) => Err(("invalid-mechanism", "mechanism other than EXTERNAL")),
            (_, false) => Err(("not-authorized", "no mechanism was offered")),
        };
        match verdict {
            Ok(domain) => {
                self.out
                    .extend_from_slice(format!("<success xmlns='{NS_SASL}'/>").as_bytes());
                self.events.push(StreamEvent::Authenticated {
                    domain: domain.clone(),
                    mechanism: Mechanism::External,
                });
                self.authenticated = Some(domain);
                self.mechanism = Some(Mechanism::External);
                // The stream restarts, now with the authenticated limits.
                self.header_sent = false;
                self.peer = None;
                self.framer = Framer::new(
                    self.settings.limits.max_stanza_bytes,
                    self.settings.limits.max_depth,
                );
                self.phase = Phase::AwaitHeader;
                Directive::Continue
            }
            Err((condition, reason)) => {
                // RFC 6120 §6.4.5: <failure/>; the initiating side may not
                // retry here: we close the stream after it.
                self.out.extend_from_slice(
                    format!("<failure xmlns='{NS_SASL}'><{condition}/></failure></stream:stream>")
                        .as_bytes(),
                );
                self.events.push(StreamEvent::AuthFailed { reason });
                self.phase = Phase::Closed;
                Directive::Close
            }
        }
    }

    /// A stanza on the established stream: addresses, then the policy.
    fn stanza(&mut self, stanza: Element) -> Directive {
        let Some(authenticated) = self.authenticated.clone() else {
            return self.fail(StreamError::NotAuthorized(stanza.name));
        };
        // The latest settings: a reload's partners and policies apply to
        // the open stream.
        let settings = self.admission.clone();
        let (from_domain, to_domain) =
            match check_addresses(&stanza, &authenticated, &settings.local_domains) {
                Ok(pair) => pair,
                Err(e) => return self.fail(e),
            };
        let lang = self
            .peer
            .as_ref()
            .and_then(|p| p.lang.as_deref())
            .unwrap_or(DEFAULT_LANG);
        let stanza = with_lang(stanza, lang);
        let (direction, local, partner) = match settings.listener {
            ListenerKind::External => (Direction::Inbound, stanza.attr("to"), &from_domain),
            ListenerKind::Internal => (Direction::Outbound, stanza.attr("from"), &to_domain),
        };
        let verdict = decide(
            &settings.policy,
            direction,
            local.unwrap_or(""),
            partner,
            &stanza.name,
            expects_error_reply(&stanza),
        );
        self.events.push(match verdict {
            Verdict::Allowed => StreamEvent::Relay(Routed {
                from_domain,
                to_domain,
                stanza,
            }),
            Verdict::Denied { user, cause, reply } => StreamEvent::Denied {
                direction,
                user,
                cause,
                reply: reply.and_then(|r| {
                    error_reply(
                        &stanza,
                        match r {
                            DenialReply::ServiceUnavailable => StanzaCondition::ServiceUnavailable,
                            DenialReply::PolicyViolation => StanzaCondition::PolicyViolation,
                        },
                    )
                }),
                stanza: stanza.name,
            },
        });
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
    Framer::unauthenticated(
        settings.limits.max_unauthenticated_stanza_bytes,
        settings.limits.max_depth,
        settings.limits.max_unauthenticated_elements,
    )
}

/// The character data directly inside `e`.
fn text_of(e: &Element) -> String {
    e.children
        .iter()
        .filter_map(|n| match n {
            crate::xml::Node::Text(t) => Some(t.as_str()),
            crate::xml::Node::Element(_) => None,
        })
        .collect::<String>()
}

/// XEP-0178 §3: the authzid is empty (`=` or nothing) or base64 of the
/// stream's `from`.
fn authzid_matches(text: &str, from: &str) -> bool {
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return true;
    }
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|authzid| normalize_jid_domain(&authzid).ok())
        .is_some_and(|authzid| authzid == from)
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

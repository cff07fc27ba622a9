//! The checks behind the `stream` fuzz target (see `../README.md`).
//!
//! One input drives one connection. Its first two bytes choose what is
//! driven and how the rest is cut into reads; the rest is what the peer
//! sends:
//!
//! * byte 0, bits 0-1: `0` the bare `xml::Framer`, `1` a `StreamMachine` on
//!   the external listener, `2` on the internal listener, `3` an external
//!   Direct TLS stream (`new_secure`);
//!   bit 2: no certificate installed (`tls_available = false`); with one,
//!   relaying is on and the peer's TLS client certificate is valid for the
//!   listener's peer domain, so SASL EXTERNAL and the established phase
//!   are reached; the partner's `auth` is `either`, so dialback is reached
//!   too: a `db:result` is answered at once with valid, invalid or error
//!   (chosen by bits 4-5 and the read's length) as the driver would after
//!   asking the authoritative server, and `db:verify` is answered from a
//!   fixed secret (a seed holds a key made with it);
//!   bit 3: do *not* complete TLS after `Directive::StartTls` (the next read
//!   then arrives while the handshake is pending);
//!   bits 4-5: what ends the input: nothing, end of input, a timeout, or
//!   shutdown;
//!   bits 6-7: the limit profile ([`LIMITS`]).
//! * byte 1: `0` feeds everything in one read; otherwise it seeds the
//!   pseudo-random read sizes (low 3 bits: the largest read, 1 to 8192).
//!
//! Checked, besides "no panic": every byte the machine writes parses as a
//! well-formed stream (a fresh stream after each TLS restart) with our
//! header first and a new id each time; a stream error names exactly one
//! defined condition, matches `StreamMachine::condition`, and is followed
//! by `</stream:stream>` at the very end of the output; directives agree
//! with the phase; a closed machine writes nothing more; every element the
//! framer delivers fits the byte and depth limits; nothing is relayed or
//! denied before SASL EXTERNAL or dialback succeeded; dialback only after
//! TLS, one verification at a time, and a valid answer authenticates that
//! domain, an invalid one closes the stream; framing errors are
//! sticky; the framer's input buffer never holds more than the last read;
//! and the heap held while a connection is processed stays within
//! [`HEAP_FACTOR`] × the byte limit (measured by [`CountingAlloc`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use xfed_gateway::config::{Limits, ListenerKind, PartnerAuth};
use xfed_gateway::dialback::Secrets;
use xfed_gateway::stream::{Condition, Directive, NS_SERVER, NS_STREAMS, Phase, StreamMachine};
use xfed_gateway::stream::{
    DialbackOutcome, Mechanism, NS_DIALBACK, NS_SASL, NS_TLS, StreamEvent, StreamSettings,
};
use xfed_gateway::tls::PeerIdentity;
use xfed_gateway::xml::{Element, Frame, Framer, FramingError, Node};

/// (max unauthenticated element bytes, max depth) per profile. The first
/// three are the smallest values the configuration accepts and two in
/// between; the last is the shipped default.
pub const LIMITS: [(usize, usize); 4] = [(1_000, 2), (2_000, 4), (4_000, 8), (10_000, 32)];

/// Heap a connection may hold at its peak, per byte of the element limit
/// (plus [`HEAP_SLACK`]). An element is kept as a tree of `Element`s and
/// owned strings (namespace URIs shared, one per declaration) until it is
/// complete, which costs a constant factor over its wire size (about 40×
/// for `<a/><a/>…`); anything growing faster than linearly in the limit
/// trips this.
pub const HEAP_FACTOR: usize = 128;
/// Fixed heap allowance per connection (parser tables, output, the
/// harness's own view of the output).
pub const HEAP_SLACK: usize = PEER_LIMIT + 64 * 1024;

/// The domain the external listener serves and the internal listener's peer.
const OURS: &str = "contoso.example";
/// A partner domain (the internal listener stands in for it).
const PARTNER: &str = "partner.example";

/// Every condition `<stream:error>` may carry (RFC 6120 §4.9.3).
const RFC6120_CONDITIONS: [&str; 25] = [
    "bad-format",
    "bad-namespace-prefix",
    "conflict",
    "connection-timeout",
    "host-gone",
    "host-unknown",
    "improper-addressing",
    "internal-server-error",
    "invalid-from",
    "invalid-namespace",
    "invalid-xml",
    "not-authorized",
    "not-well-formed",
    "policy-violation",
    "remote-connection-failed",
    "reset",
    "resource-constraint",
    "restricted-xml",
    "see-other-host",
    "system-shutdown",
    "undefined-condition",
    "unsupported-encoding",
    "unsupported-feature",
    "unsupported-stanza-type",
    "unsupported-version",
];
const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting live bytes and their peak. Install it
/// with `#[global_allocator]` in the fuzz binary.
#[derive(Debug)]
pub struct CountingAlloc;

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(by: usize) {
    LIVE.fetch_sub(by, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged and only updates counters on the side.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc`; the caller upholds `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        p
    }
}

/// Starts a heap measurement: returns the live bytes now and resets the peak.
fn heap_mark() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// Peak heap growth since `mark` (0 when `CountingAlloc` is not installed).
fn heap_growth(mark: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(mark)
}

/// What one input asks for (see the module docs).
#[derive(Debug, Clone, Copy)]
struct Plan {
    target: u8,
    tls_available: bool,
    complete_tls: bool,
    end: u8,
    max_bytes: usize,
    max_depth: usize,
    chunk_seed: u8,
}

impl Plan {
    fn decode(mode: u8, chunk_seed: u8) -> Plan {
        let (max_bytes, max_depth) = LIMITS[usize::from(mode >> 6)];
        Plan {
            target: mode & 3,
            tls_available: mode & 4 == 0,
            complete_tls: mode & 8 == 0,
            end: (mode >> 4) & 3,
            max_bytes,
            max_depth,
            chunk_seed,
        }
    }
}

/// Cuts `data` into reads as `seed` says.
fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    if seed == 0 || data.is_empty() {
        return vec![data];
    }
    let largest = [1usize, 2, 3, 7, 16, 64, 512, 8192][usize::from(seed & 7)];
    let mut state = u32::from(seed).wrapping_mul(0x9E37_79B9) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        // xorshift32
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let len = (state as usize % largest + 1).min(rest.len());
        let (head, tail) = rest.split_at(len);
        out.push(head);
        rest = tail;
    }
    out
}

/// Runs one fuzz input. Panics when a property does not hold.
pub fn run(data: &[u8]) {
    let [mode, seed, payload @ ..] = data else {
        return;
    };
    WARM_UP.call_once(warm_up);
    let plan = Plan::decode(*mode, *seed);
    let reads = chunks(payload, plan.chunk_seed);
    let mark = heap_mark();
    match plan.target {
        0 => drive_framer(&plan, &reads),
        1 => drive_machine(&plan, &reads, ListenerKind::External, false),
        2 => drive_machine(&plan, &reads, ListenerKind::Internal, false),
        _ => drive_machine(&plan, &reads, ListenerKind::External, true),
    }
    let growth = heap_growth(mark);
    let bound = HEAP_FACTOR * plan.max_bytes + HEAP_SLACK;
    assert!(
        growth <= bound,
        "a connection held {growth} heap bytes at its peak, over {bound} \
         ({HEAP_FACTOR} x the {}-byte element limit + {HEAP_SLACK})",
        plan.max_bytes
    );
}

static WARM_UP: Once = Once::new();

/// Runs a valid opening once so that lazily built process-wide state (the
/// crypto provider behind stream ids) is not counted against an input.
fn warm_up() {
    let plan = Plan::decode(b'q', 0);
    let opening = concat!(
        "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' ",
        "to='contoso.example' from='partner.example' version='1.0'>",
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    );
    drive_machine(&plan, &[opening.as_bytes()], ListenerKind::External, false);
}

/// The bare framer: frames, limits, sticky errors, bounded buffering.
fn drive_framer(plan: &Plan, reads: &[&[u8]]) {
    let mut framer = Framer::new(plan.max_bytes, plan.max_depth);
    let mut opened = false;
    for read in reads {
        framer.push(read);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    check_frame(plan, &frame, opened);
                    match frame {
                        Frame::StreamOpen(_) => opened = true,
                        Frame::Element(_) => {}
                        Frame::StreamClose => {
                            // Nothing follows the root element's end.
                            assert_eq!(
                                framer.next_frame(),
                                Ok(None),
                                "a frame after the stream end"
                            );
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    check_framing_error(plan, &e);
                    assert_eq!(
                        framer.next_frame(),
                        Err(e.clone()),
                        "framing errors are sticky"
                    );
                    framer.push(b"<a/>");
                    assert_eq!(framer.next_frame(), Err(e), "framing errors are sticky");
                    return;
                }
            }
        }
        // "Call next_frame until it returns Ok(None) before pushing more,
        // so the buffer stays bounded by one read."
        assert!(
            framer.buffered().len() <= read.len(),
            "the framer holds {} unparsed bytes after a read of {}",
            framer.buffered().len(),
            read.len()
        );
    }
}

fn check_framing_error(plan: &Plan, e: &FramingError) {
    match e {
        FramingError::TooBig { limit } => assert_eq!(*limit, plan.max_bytes),
        FramingError::TooDeep { limit } => assert_eq!(*limit, plan.max_depth),
        _ => {}
    }
}

/// A frame the framer delivered fits the limits it was given.
fn check_frame(plan: &Plan, frame: &Frame, opened: bool) {
    match frame {
        Frame::StreamOpen(open) => {
            assert!(!opened, "a second stream header in one stream");
            assert!(
                open.element.children.is_empty(),
                "the header frame has children"
            );
            let size = content_bytes(&open.element);
            assert!(
                size <= plan.max_bytes,
                "a {size}-byte header passed the {}-byte limit",
                plan.max_bytes
            );
        }
        Frame::Element(e) => {
            assert!(opened, "an element before the stream header");
            let size = content_bytes(e);
            assert!(
                size <= plan.max_bytes,
                "a {size}-byte element passed the {}-byte limit",
                plan.max_bytes
            );
            let depth = depth(e);
            assert!(
                depth <= plan.max_depth,
                "an element {depth} deep passed the depth limit {}",
                plan.max_depth
            );
        }
        Frame::StreamClose => assert!(opened, "a stream end before the stream header"),
    }
}

/// A lower bound on the wire size of `e`: decoded names, attribute values
/// and text never take more bytes than the markup they came from.
fn content_bytes(e: &Element) -> usize {
    let attrs: usize = e.attrs.iter().map(|(_, n, v)| n.len() + v.len()).sum();
    let children: usize = e
        .children
        .iter()
        .map(|c| match c {
            Node::Element(child) => content_bytes(child),
            Node::Text(t) => t.len(),
        })
        .sum();
    e.name.len() + attrs + children
}

/// Nesting depth, `e` itself being 1.
fn depth(e: &Element) -> usize {
    1 + e.child_elements().map(depth).max().unwrap_or(0)
}

fn settings(plan: &Plan, listener: ListenerKind) -> Arc<StreamSettings> {
    // The same limit after SASL EXTERNAL as before it, so the heap bound
    // (a multiple of the limit) holds on established streams too.
    let limits = Limits {
        max_unauthenticated_stanza_bytes: plan.max_bytes,
        max_stanza_bytes: plan.max_bytes,
        max_depth: plan.max_depth,
        ..Limits::default()
    };
    let (local_domains, peer_domains) = match listener {
        ListenerKind::External => (vec![OURS.to_string()], None),
        ListenerKind::Internal => (vec![PARTNER.to_string()], Some(vec![OURS.to_string()])),
    };
    Arc::new(StreamSettings {
        listener,
        local_domains,
        peer_domains,
        limits,
        tls_available: plan.tls_available,
        relay: plan.tls_available,
        policy: Arc::default(),
        // The partner may use EXTERNAL or dialback, so both `db:result`
        // (answered below) and `db:verify` (answered from this secret)
        // are reached.
        partners: [(PARTNER.to_string(), (PartnerAuth::Either, true))]
            .into_iter()
            .collect(),
        dialback: Some(Arc::new(Secrets::from_bytes(
            FUZZ_DIALBACK_SECRET,
            Some(b"fuzz-previous"),
        ))),
        keepalive_interval: std::time::Duration::from_secs(60),
    })
}

/// The dialback secret of the fuzzed streams (a seed holds a key made
/// with it, so `db:verify` reaches the `valid` answer too).
const FUZZ_DIALBACK_SECRET: &[u8] = b"fuzz-secret";

/// What the peer's client certificate proves: its listener's peer domain.
fn identity(listener: ListenerKind) -> Option<PeerIdentity> {
    Some(PeerIdentity::with_names(&[match listener {
        ListenerKind::External => PARTNER,
        ListenerKind::Internal => OURS,
    }]))
}

/// A `StreamMachine` driven like `server::Connection` drives it.
fn drive_machine(plan: &Plan, reads: &[&[u8]], listener: ListenerKind, direct_tls: bool) {
    let settings = settings(plan, listener);
    let mut machine = if direct_tls {
        StreamMachine::new_secure(settings, identity(listener))
    } else {
        StreamMachine::new(settings)
    };
    let mut peer = PeerView::new();
    // Output per call: our header and features, or a stream error whose
    // text may quote (escaped) what the peer sent.
    let max_output = 8 * 1024 + 6 * plan.max_bytes;
    let mut closed_by = None;
    for read in reads {
        let before = machine.phase();
        let directive = machine.receive(read);
        let out = machine.take_output();
        assert!(
            out.len() <= max_output,
            "{} bytes written for one read",
            out.len()
        );
        peer.read(&out);
        let mut verify = None;
        for event in machine.take_events() {
            if matches!(event, StreamEvent::Relay(_) | StreamEvent::Denied { .. }) {
                assert!(
                    machine.authenticated().is_some(),
                    "a stanza decided before authentication"
                );
            }
            if let StreamEvent::VerifyDialback { from, .. } = event {
                assert!(machine.is_secure(), "dialback in the clear");
                assert!(verify.is_none(), "two verifications from one read");
                verify = Some(from);
            }
        }
        // The authoritative server's answer, as the driver reports it:
        // chosen by the input (the ending bits and the read's length).
        let directive = match verify {
            Some(from) if directive == Directive::Continue => {
                let outcome = DialbackOutcome::ALL[(usize::from(plan.end) + read.len()) % 3];
                let answered = machine.dialback_verified(&from, outcome);
                let out = machine.take_output();
                peer.read(&out);
                match outcome {
                    DialbackOutcome::Valid => {
                        assert_eq!(answered, Directive::Continue);
                        assert_eq!(machine.authenticated(), Some(from.as_str()));
                        assert_eq!(machine.mechanism(), Some(Mechanism::Dialback));
                        assert_eq!(machine.phase(), Phase::Established);
                    }
                    DialbackOutcome::Invalid => {
                        assert_eq!(answered, Directive::Close);
                        assert_eq!(machine.authenticated(), None);
                    }
                    DialbackOutcome::Error => {
                        assert_eq!(answered, Directive::Continue);
                        assert_eq!(machine.authenticated(), None);
                    }
                }
                machine.take_events();
                answered
            }
            _ => directive,
        };
        match directive {
            Directive::Continue => {
                assert!(
                    matches!(
                        machine.phase(),
                        Phase::AwaitHeader
                            | Phase::AwaitStartTls
                            | Phase::Negotiating
                            | Phase::Established
                    ),
                    "Continue in phase {:?}",
                    machine.phase()
                );
                assert!(machine.error().is_none());
            }
            Directive::StartTls => {
                // One read may carry the header and `<starttls/>`.
                assert!(
                    matches!(before, Phase::AwaitHeader | Phase::AwaitStartTls),
                    "STARTTLS from phase {before:?}"
                );
                assert_eq!(machine.phase(), Phase::TlsPending);
                assert!(!machine.is_secure(), "STARTTLS on a secure stream");
                assert!(
                    out.ends_with(format!("<proceed xmlns='{NS_TLS}'/>").as_bytes()),
                    "STARTTLS without <proceed/>"
                );
                if plan.complete_tls {
                    machine.tls_established(identity(listener));
                    assert!(machine.is_secure());
                    assert_eq!(machine.phase(), Phase::AwaitHeader);
                    peer.restart();
                }
            }
            Directive::Close => {
                closed_by = Some(Ending::Receive);
                break;
            }
        }
        if machine.phase() == Phase::Negotiating {
            assert!(machine.is_secure(), "negotiating in the clear");
        }
    }
    if closed_by.is_none() {
        let directive = match plan.end {
            0 => None,
            1 => Some((machine.end_of_input(), Ending::EndOfInput)),
            2 => Some((
                machine.timed_out(),
                Ending::Event(Condition::ConnectionTimeout),
            )),
            _ => Some((
                machine.shut_down(),
                Ending::Event(Condition::SystemShutdown),
            )),
        };
        if let Some((directive, ending)) = directive {
            assert_eq!(directive, Directive::Close);
            let out = machine.take_output();
            if matches!(ending, Ending::EndOfInput) {
                assert!(out.is_empty(), "output after the peer's end of input");
            }
            peer.read(&out);
            closed_by = Some(ending);
        }
    }
    let Some(ending) = closed_by else {
        return;
    };
    assert_eq!(machine.phase(), Phase::Closed);
    if let Ending::Event(condition) = ending {
        assert_eq!(machine.condition(), Some(condition));
    }
    // A closed machine stays closed and silent.
    assert_eq!(machine.receive(b"<a/>"), Directive::Close);
    assert_eq!(machine.timed_out(), Directive::Close);
    assert_eq!(machine.shut_down(), Directive::Close);
    assert!(machine.take_output().is_empty(), "output after Close");
    match (ending, machine.error()) {
        (Ending::EndOfInput, None) => {}
        (_, None) => {
            // The peer closed the stream: we close ours.
            assert!(peer.closed, "stream closed without </stream:stream>");
            assert!(
                peer.error.is_none(),
                "a stream error the machine does not report"
            );
        }
        (_, Some(_)) => {
            let condition = machine.condition().map(Condition::as_str);
            assert_eq!(
                peer.error.as_deref(),
                condition,
                "the stream error written differs from the one reported"
            );
            assert!(peer.closed, "a stream error without </stream:stream>");
        }
    }
    if peer.closed {
        assert!(
            peer.ends_with_close,
            "bytes after </stream:stream>: {:?}",
            String::from_utf8_lossy(&peer.tail)
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum Ending {
    /// `receive` returned `Close`.
    Receive,
    EndOfInput,
    /// A timeout or shutdown, which must close with this condition.
    Event(Condition),
}

/// The largest element the harness expects the machine to write. (rxml
/// reserves a token buffer of the framer's limit up front, so this is also
/// heap the harness itself holds.)
const PEER_LIMIT: usize = 64 * 1024;

/// The peer's reading of what the machine writes, one stream (document)
/// per TLS restart.
#[derive(Debug)]
struct PeerView {
    framer: Framer,
    header: bool,
    ids: Vec<String>,
    error: Option<String>,
    closed: bool,
    ends_with_close: bool,
    tail: Vec<u8>,
}

impl PeerView {
    fn new() -> PeerView {
        PeerView {
            framer: Framer::new(PEER_LIMIT, 16),
            header: false,
            ids: Vec::new(),
            error: None,
            closed: false,
            ends_with_close: false,
            tail: Vec::new(),
        }
    }

    /// The TLS handshake happened: a new stream begins.
    fn restart(&mut self) {
        assert!(self.header, "TLS restart before our header was sent");
        assert!(
            !self.closed && self.error.is_none(),
            "TLS restart on a closed stream"
        );
        self.framer = Framer::new(PEER_LIMIT, 16);
        self.header = false;
    }

    fn read(&mut self, out: &[u8]) {
        if out.is_empty() {
            return;
        }
        // After SASL <success/> the stream restarts within the same output.
        let success = format!("<success xmlns='{NS_SASL}'/>");
        if let Some(at) = find(out, success.as_bytes()) {
            let end = at + success.len();
            self.read_stream(&out[..end]);
            self.restart();
            self.read_stream(&out[end..]);
            return;
        }
        self.read_stream(out);
    }

    fn read_stream(&mut self, out: &[u8]) {
        if out.is_empty() {
            return;
        }
        assert!(!self.closed, "output after </stream:stream>");
        self.tail.clear();
        self.tail
            .extend_from_slice(&out[out.len().saturating_sub(32)..]);
        self.framer.push(out);
        loop {
            let frame = match self.framer.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => panic!(
                    "the machine wrote XML that is not well-formed ({e}): {:?}",
                    String::from_utf8_lossy(out)
                ),
            };
            match frame {
                Frame::StreamOpen(open) => {
                    assert!(!self.header);
                    let e = &open.element;
                    assert!(
                        e.is(NS_STREAMS, "stream"),
                        "our root is {}:{}",
                        e.ns,
                        e.name
                    );
                    assert_eq!(open.default_ns.as_deref(), Some(NS_SERVER));
                    assert_eq!(e.attr("version"), Some("1.0"));
                    let id = e.attr("id").unwrap_or_default();
                    assert!(
                        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                        "stream id {id:?}"
                    );
                    assert!(!self.ids.iter().any(|i| i == id), "stream id reused");
                    self.ids.push(id.to_string());
                    self.header = true;
                }
                Frame::Element(e) => {
                    assert!(self.header);
                    assert!(self.error.is_none(), "an element after <stream:error>");
                    if e.is(NS_STREAMS, "error") {
                        self.error = Some(stream_error_condition(&e));
                    } else if e.is(NS_DIALBACK, "result") || e.is(NS_DIALBACK, "verify") {
                        // Our dialback answers: typed, addressed, no key echoed.
                        let kinds: &[&str] = if e.name == "result" {
                            &["valid", "invalid", "error"]
                        } else {
                            &["valid", "invalid"]
                        };
                        assert!(
                            e.attr("type").is_some_and(|t| kinds.contains(&t)),
                            "dialback answer of type {:?}",
                            e.attr("type")
                        );
                        assert!(e.attr("from").is_some() && e.attr("to").is_some());
                        assert!(
                            !e.children.iter().any(|c| matches!(c, Node::Text(_))),
                            "a dialback answer with text"
                        );
                    } else {
                        assert!(
                            e.is(NS_STREAMS, "features")
                                || e.is(NS_TLS, "proceed")
                                || e.is(NS_SASL, "success")
                                || e.is(NS_SASL, "failure"),
                            "unexpected element {}:{}",
                            e.ns,
                            e.name
                        );
                    }
                }
                Frame::StreamClose => {
                    self.closed = true;
                }
            }
        }
        if self.closed {
            self.ends_with_close = out.ends_with(b"</stream:stream>");
        }
    }
}

/// The position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The one defined condition of a `<stream:error>`.
fn stream_error_condition(e: &Element) -> String {
    let conditions: Vec<&Element> = e
        .child_elements()
        .filter(|c| c.ns == NS_STREAM_ERRORS && c.name != "text")
        .collect();
    assert_eq!(
        conditions.len(),
        1,
        "stream error with {} conditions",
        conditions.len()
    );
    let name = conditions[0].name.clone();
    assert!(
        RFC6120_CONDITIONS.contains(&name.as_str()),
        "undefined stream error condition {name}"
    );
    name
}

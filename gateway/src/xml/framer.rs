//! Turns the bytes of one XML stream into frames — the stream header,
//! complete top-level elements, the stream end — while enforcing the
//! byte and depth limits.
//!
//! Owns: restricted XML (rxml refuses DTDs, entities, PIs and comments by
//! construction), per-element byte accounting *while the element is still
//! arriving* (an attacker never gets to make us buffer more than the
//! limit plus one read), nesting depth, and stream-level text. It does no
//! I/O and knows nothing of XMPP beyond "the root element is the stream".
//! A stream restart (after STARTTLS or SASL) uses a fresh `Framer`.
//!
//! An idle stream holds no XML parser: rxml reserves its whole token
//! limit (the element limit, 256 KiB by default once authenticated) as
//! soon as it reads a token, and keeps it for the parser's life. So when
//! every byte received is consumed and the stream sits between top-level
//! elements, the parser is dropped, and rebuilt in the same state (by
//! opening the same root) when bytes arrive again. 10,000 idle streams
//! holding 256 KiB of address space each left jemalloc with gigabytes to
//! map, and metadata for it that is never given back.
//!
//! Memory stays linear in the byte limit: namespace declarations are
//! attributes on the wire, so they count against the element (or header)
//! that carries them, and each is stored once, as a [`Namespace`] every
//! element and attribute in its scope shares (never copied per element).
//! Namespace lookups and duplicate-attribute checks are hash-based, so the
//! CPU time per element is linear too.

use super::element::{Element, Node};
use super::namespace::Namespace;
use rxml::Error as XmlError;
use rxml::error::EndOrError;
use rxml::parser::{Options, Parse, RawEvent, RawParser, RawQName, WithOptions, XMLNS_XML};
use std::collections::{HashMap, HashSet};

/// One unit of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The root element's start tag.
    StreamOpen(StreamOpen),
    /// A complete child of the root (stanza or nonza).
    Element(Element),
    /// The root element's end tag.
    StreamClose,
}

/// The stream header as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOpen {
    /// Name, namespace and attributes of the root element (no children).
    pub element: Element,
    /// The default namespace declared on it (`xmlns='…'`), if any.
    pub default_ns: Option<String>,
}

/// Why a stream's bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// Not well-formed or not namespace-well-formed XML.
    #[error("XML is not well-formed: {0}")]
    NotWellFormed(String),
    /// A construct XMPP forbids (comment, PI, DTD, entity declaration).
    #[error("restricted XML: {0}")]
    Restricted(String),
    /// A top-level element (or the header) exceeded the byte limit.
    #[error("element exceeds {limit} bytes")]
    TooBig {
        /// The limit in force.
        limit: usize,
    },
    /// Elements nested deeper than the limit.
    #[error("element nesting exceeds depth {limit}")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// A top-level element holding more elements (itself included) than
    /// the limit.
    #[error("element holds more than {limit} elements")]
    TooManyElements {
        /// The limit in force.
        limit: usize,
    },
    /// An XML declaration naming an encoding other than UTF-8.
    #[error("only UTF-8 is allowed")]
    UnsupportedEncoding,
    /// Character data directly inside the stream element.
    #[error("text at stream level")]
    TextAtStreamLevel,
}

/// Incremental parser of one stream (see module docs).
#[derive(Debug)]
pub struct Framer {
    /// `None` while idle between top-level elements (see the module docs),
    /// rebuilt when bytes arrive. Boxed: the parser itself is 344 bytes.
    raw: Option<Box<RawParser>>,
    /// The token limit `raw` was built with.
    token_limit: usize,
    /// A token limit `raw` must be rebuilt with at the next boundary
    /// between top-level elements (see `set_max_bytes`).
    retune: Option<usize>,
    /// Whether `raw` has consumed any byte.
    fed: bool,
    /// The stream element's raw name (`stream:stream`), to rebuild `raw`.
    root: Option<String>,
    input: Vec<u8>,
    pos: usize,
    max_bytes: usize,
    max_depth: usize,
    /// Most elements in one top-level element (itself included).
    max_elements: usize,
    /// Elements of the top-level element being received.
    unit_elements: usize,
    /// Bytes accounted to the unit being received (header or top-level element).
    unit_bytes: usize,
    /// Bytes consumed by the parser but not yet reported in an event.
    pending: usize,
    /// The start tag being read: raw name and raw attributes.
    head: Option<(RawQName, Vec<(RawQName, String)>)>,
    /// The prefixes each open element declares ("" = the default
    /// namespace), outermost first; the stream element is the first.
    scopes: Vec<Vec<String>>,
    /// The bindings in force: prefix ("" = default) → its declarations
    /// in the open elements, innermost last. A prefix with none is absent.
    bindings: HashMap<String, Vec<Namespace>>,
    /// Elements under construction below the stream element, outermost first.
    stack: Vec<Element>,
    /// Whether any non-whitespace byte has been seen.
    started: bool,
    closed: bool,
    poisoned: Option<FramingError>,
}

impl Framer {
    /// A parser for a new stream; `max_bytes` bounds each top-level element
    /// and the header, `max_depth` the nesting inside a top-level element.
    pub fn new(max_bytes: usize, max_depth: usize) -> Framer {
        Framer::with_token_limit(max_bytes, max_depth, token_limit(max_bytes))
    }

    /// A parser for a stream not yet authenticated: as `new`, and at most
    /// `max_elements` elements per top-level element, and names and
    /// attribute values of at most `UNAUTHENTICATED_TOKEN` bytes. Both
    /// bound the memory a peer can make us hold by what it sent: every
    /// element costs a node of fixed size whatever its bytes (`<a/>` is 4
    /// bytes), and the parser reserves its token limit up front for every
    /// connection that sends a byte.
    pub fn unauthenticated(max_bytes: usize, max_depth: usize, max_elements: usize) -> Framer {
        let mut framer = Framer::with_token_limit(
            max_bytes,
            max_depth,
            token_limit(max_bytes).min(UNAUTHENTICATED_TOKEN),
        );
        framer.max_elements = max_elements;
        framer
    }

    fn with_token_limit(max_bytes: usize, max_depth: usize, token_limit: usize) -> Framer {
        Framer {
            raw: Some(Box::new(raw_parser_with_token_limit(token_limit))),
            token_limit,
            retune: None,
            fed: false,
            root: None,
            input: Vec::new(),
            pos: 0,
            max_bytes,
            max_depth,
            max_elements: usize::MAX,
            unit_elements: 0,
            unit_bytes: 0,
            pending: 0,
            head: None,
            scopes: Vec::new(),
            bindings: HashMap::new(),
            stack: Vec::new(),
            started: false,
            closed: false,
            poisoned: None,
        }
    }

    /// Changes the per-element byte limit (e.g. once the stream is
    /// authenticated by dialback, which does not restart the stream).
    ///
    /// The byte count of the element in progress is checked against the
    /// new limit at once. rxml's per-token limit (a name or attribute value
    /// may be as long as a whole element) is fixed when its parser is
    /// built, so the parser is rebuilt with `max_bytes + 1` at the first
    /// point where no element and no token is in progress: right away when
    /// called between top-level elements (where the stream layer changes
    /// limits) or before any byte, else after the element in progress (or
    /// the header) ends. Until then a token longer than the old limit is
    /// still refused as `TooBig`.
    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
        // Authenticated limits: no element count beyond the byte limit.
        self.max_elements = usize::MAX;
        let limit = token_limit(max_bytes);
        self.retune = (limit != self.token_limit).then_some(limit);
        self.retune_at_boundary();
    }

    /// Rebuilds the parser with the token limit `set_max_bytes` asked for,
    /// if one is pending and the parser is between top-level elements.
    fn retune_at_boundary(&mut self) {
        let Some(limit) = self.retune else {
            return;
        };
        if !self.idle() {
            return;
        }
        match self.rebuilt(limit) {
            Rebuilt::Parser(raw) => {
                self.raw = Some(raw);
                self.retune = None;
                self.token_limit = limit;
            }
            // Only if the root's name is longer than the new limit (a
            // lowered one, which `check_size` enforces anyway): keep the
            // parser we have.
            Rebuilt::Failed => self.retune = None,
            Rebuilt::NotYet => {}
        }
    }

    /// No element, no start tag and no token in progress.
    fn idle(&self) -> bool {
        self.pending == 0
            && self.head.is_none()
            && self.stack.is_empty()
            && !self.closed
            && self.poisoned.is_none()
    }

    /// A fresh parser with `limit`, in the state the current one is in
    /// (which must be `idle`).
    fn rebuilt(&self, limit: usize) -> Rebuilt {
        let prime = match (&self.root, self.fed) {
            // Nothing parsed yet: a fresh parser is all it takes.
            (None, false) => None,
            // Inside the stream element, between children: bring a fresh
            // parser to the same state by opening the same root (its name
            // must match `</stream:stream>`). Nothing of it is reported.
            (Some(root), _) if self.scopes.len() == 1 => Some(format!("<{root}>")),
            // In the prolog or the header: wait for the header to end.
            _ => return Rebuilt::NotYet,
        };
        let mut raw = raw_parser_with_token_limit(limit);
        if let Some(tag) = prime {
            let mut rest = tag.as_bytes();
            loop {
                match raw.parse(&mut rest, false) {
                    Ok(Some(RawEvent::ElementHeadClose(_))) => break,
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return Rebuilt::Failed,
                }
            }
        }
        Rebuilt::Parser(Box::new(raw))
    }

    /// Drops the parser when it sits between top-level elements with
    /// every byte consumed: an idle stream keeps none of its reservation.
    fn release_if_idle(&mut self) {
        if self.retune.is_none()
            && self.root.is_some()
            && self.scopes.len() == 1
            && self.pos == self.input.len()
            && self.idle()
        {
            self.raw = None;
        }
    }

    /// Whether the parser is dropped (an idle stream between elements).
    pub fn is_released(&self) -> bool {
        self.raw.is_none()
    }

    /// Appends received bytes. Call `next_frame` until it returns `Ok(None)`
    /// before pushing more, so the buffer stays bounded by one read.
    pub fn push(&mut self, mut data: &[u8]) {
        if !self.started {
            // XML allows whitespace before the root element when there is no
            // XML declaration (peers send keepalives right after TLS); rxml
            // does not, so it never sees it.
            let skip = data.iter().take_while(|b| b.is_ascii_whitespace()).count();
            data = &data[skip..];
            self.started = !data.is_empty();
        }
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        if self.input.is_empty() && self.input.capacity() > data.len() {
            // Sized by this read, not the largest one ever seen.
            self.input = Vec::new();
        }
        self.input.extend_from_slice(data);
    }

    /// Bytes received but not yet consumed by the parser. Together with
    /// `has_partial_token` this tells whether anything was pipelined after
    /// an element (refused after `<starttls/>`).
    pub fn buffered(&self) -> &[u8] {
        &self.input[self.pos..]
    }

    /// Whether the parser holds the start of a token beyond `buffered()`.
    pub fn has_partial_token(&self) -> bool {
        self.pending > 0
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        let result = self.next_inner();
        if let Err(e) = &result {
            self.poisoned = Some(e.clone());
        }
        result
    }

    fn next_inner(&mut self) -> Result<Option<Frame>, FramingError> {
        while !self.closed {
            if self.retune.is_some() {
                self.retune_at_boundary();
            }
            if self.raw.is_none() && self.pos == self.input.len() {
                // Released and nothing new: stay released.
                self.check_size()?;
                self.input = Vec::new();
                self.pos = 0;
                return Ok(None);
            }
            let raw = match self.raw.take() {
                Some(raw) => raw,
                None => match self.rebuilt(self.token_limit) {
                    Rebuilt::Parser(raw) => raw,
                    // Released only where rebuilding with the same limit
                    // works (the root was parsed under it).
                    Rebuilt::Failed | Rebuilt::NotYet => {
                        return Err(FramingError::NotWellFormed(
                            "cannot resume the stream's parser".into(),
                        ));
                    }
                },
            };
            let raw = self.raw.insert(raw);
            let mut slice: &[u8] = &self.input[self.pos..];
            let before = slice.len();
            let result = raw.parse(&mut slice, false);
            let consumed = before - slice.len();
            self.pos += consumed;
            self.pending += consumed;
            self.fed |= consumed > 0;
            let event = match result {
                Ok(Some(event)) => event,
                Ok(None) | Err(EndOrError::NeedMoreData) => {
                    self.check_size()?;
                    if self.pos == self.input.len() {
                        // All consumed: an idle stream holds no input
                        // buffer, and no parser between elements.
                        self.release_if_idle();
                        self.input = Vec::new();
                        self.pos = 0;
                    }
                    return Ok(None);
                }
                Err(EndOrError::Error(e)) => return Err(classify(e, self.max_bytes)),
            };
            let len = event.metrics().len();
            self.pending = self.pending.saturating_sub(len);
            let frame = self.on_event(event, len)?;
            self.check_size()?;
            if frame.is_some() {
                return Ok(frame);
            }
        }
        Ok(None)
    }

    fn check_size(&self) -> Result<(), FramingError> {
        if self.unit_bytes + self.pending > self.max_bytes {
            return Err(FramingError::TooBig {
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Depth of open elements, the stream element being 1.
    fn depth(&self) -> usize {
        self.scopes.len() + usize::from(self.head.is_some())
    }

    fn on_event(&mut self, event: RawEvent, len: usize) -> Result<Option<Frame>, FramingError> {
        match event {
            RawEvent::XmlDeclaration(..) => {
                self.unit_bytes += len;
                Ok(None)
            }
            RawEvent::ElementHeadOpen(_, qname) => {
                if self.scopes.len() == 1 {
                    // A new top-level element starts its own count.
                    self.unit_bytes = 0;
                    self.unit_elements = 0;
                }
                self.unit_bytes += len;
                if !self.scopes.is_empty() {
                    self.unit_elements += 1;
                    if self.unit_elements > self.max_elements {
                        return Err(FramingError::TooManyElements {
                            limit: self.max_elements,
                        });
                    }
                }
                self.head = Some((qname, Vec::new()));
                // Depth inside a top-level element: the stanza itself is 1.
                if self.depth() > self.max_depth + 1 {
                    return Err(FramingError::TooDeep {
                        limit: self.max_depth,
                    });
                }
                Ok(None)
            }
            RawEvent::Attribute(_, qname, value) => {
                // Namespace declarations included: they are attributes on
                // the wire and cost the element that carries them.
                self.unit_bytes += len;
                if let Some((_, attrs)) = &mut self.head {
                    attrs.push((qname, value));
                }
                Ok(None)
            }
            RawEvent::ElementHeadClose(_) => {
                self.unit_bytes += len;
                let Some((qname, attrs)) = self.head.take() else {
                    return Err(FramingError::NotWellFormed(
                        "start tag end without start".into(),
                    ));
                };
                self.open_element(qname, attrs)
            }
            RawEvent::ElementFoot(_) => {
                self.unit_bytes += len;
                self.close_scope();
                if self.scopes.is_empty() {
                    self.closed = true;
                    return Ok(Some(Frame::StreamClose));
                }
                let Some(mut element) = self.stack.pop() else {
                    return Ok(None);
                };
                // Complete: no spare capacity kept (a vector grown by
                // doubling holds up to twice what it needs, per element).
                element.children.shrink_to_fit();
                for child in &mut element.children {
                    if let Node::Text(text) = child {
                        text.shrink_to_fit();
                    }
                }
                match self.stack.last_mut() {
                    Some(parent) => {
                        parent.children.push(Node::Element(element));
                        Ok(None)
                    }
                    None => {
                        self.unit_bytes = 0;
                        Ok(Some(Frame::Element(element)))
                    }
                }
            }
            RawEvent::Text(_, text) => {
                match self.stack.last_mut() {
                    Some(top) => {
                        self.unit_bytes += len;
                        match top.children.last_mut() {
                            Some(Node::Text(prev)) => {
                                // Grows by an eighth, not double: an
                                // unfinished text holds little more than
                                // its bytes, and copies stay linear.
                                if prev.capacity() - prev.len() < text.len() {
                                    prev.reserve_exact(text.len().max(prev.len() / 8));
                                }
                                prev.push_str(&text);
                            }
                            _ => top.children.push(Node::Text(text.to_string())),
                        }
                    }
                    None => {
                        if !text.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) {
                            return Err(FramingError::TextAtStreamLevel);
                        }
                    }
                }
                Ok(None)
            }
        }
    }

    /// Resolves namespaces of a complete start tag (Namespaces in XML 1.0).
    fn open_element(
        &mut self,
        (prefix, local): RawQName,
        raw_attrs: Vec<(RawQName, String)>,
    ) -> Result<Option<Frame>, FramingError> {
        let mut decls: Vec<(String, Namespace)> = Vec::new();
        let mut plain: Vec<(RawQName, String)> = Vec::with_capacity(raw_attrs.len());
        for ((a_prefix, a_local), value) in raw_attrs {
            let declared = match a_prefix.as_ref().map(|p| p.as_str()) {
                None if a_local.as_str() == "xmlns" => "",
                Some("xmlns") => a_local.as_str(),
                _ => {
                    plain.push(((a_prefix, a_local), value));
                    continue;
                }
            };
            // Stored once here; everything in scope shares it.
            decls.push((declared.to_string(), Namespace::from(value)));
        }
        if decls.len() > 1 {
            let mut seen = HashSet::with_capacity(decls.len());
            if let Some((p, _)) = decls.iter().find(|(p, _)| !seen.insert(p.as_str())) {
                return Err(duplicate(if p.is_empty() { "xmlns" } else { p }));
            }
        }
        // On the stream element: reported in `StreamOpen`.
        let default_ns = if self.scopes.is_empty() {
            decls
                .iter()
                .find(|(p, _)| p.is_empty())
                .map(|(_, uri)| uri.to_string())
        } else {
            None
        };
        let mut scope = Vec::with_capacity(decls.len());
        for (declared, uri) in decls {
            self.bindings.entry(declared.clone()).or_default().push(uri);
            scope.push(declared);
        }
        self.scopes.push(scope);
        let ns = match &prefix {
            None => self
                .bindings
                .get("")
                .and_then(|uris| uris.last())
                .cloned()
                .unwrap_or_default(),
            Some(p) => self
                .lookup(p.as_str())
                .ok_or_else(|| undeclared(p.as_str()))?,
        };
        let mut attrs = Vec::with_capacity(plain.len());
        for ((a_prefix, a_local), value) in plain {
            let a_ns = match a_prefix {
                None => Namespace::NONE,
                Some(p) => self
                    .lookup(p.as_str())
                    .ok_or_else(|| undeclared(p.as_str()))?,
            };
            attrs.push((a_ns, a_local.as_str().to_string(), value));
        }
        if attrs.len() > 1 {
            let mut seen = HashSet::with_capacity(attrs.len());
            if let Some((_, dup, _)) = attrs
                .iter()
                .find(|(n, l, _)| !seen.insert((n.as_str(), l.as_str())))
            {
                return Err(duplicate(dup));
            }
        }
        if self.scopes.len() == 1 {
            // Kept to rebuild the parser in the same state (`set_max_bytes`).
            self.root = Some(match &prefix {
                Some(p) => format!("{p}:{local}"),
                None => local.as_str().to_string(),
            });
        }
        let element = Element {
            ns,
            name: local.as_str().to_string(),
            attrs,
            children: Vec::new(),
        };
        if self.scopes.len() == 1 {
            // The header is complete: the next unit starts from zero.
            self.unit_bytes = 0;
            return Ok(Some(Frame::StreamOpen(StreamOpen {
                element,
                default_ns,
            })));
        }
        self.stack.push(element);
        Ok(None)
    }

    /// Ends the innermost open element's namespace declarations.
    fn close_scope(&mut self) {
        for declared in self.scopes.pop().unwrap_or_default() {
            if let Some(uris) = self.bindings.get_mut(&declared) {
                uris.pop();
                if uris.is_empty() {
                    self.bindings.remove(&declared);
                }
            }
        }
        if self.scopes.len() == 1 && self.bindings.capacity() > 64 {
            // Back between top-level elements: do not keep a table sized
            // for a past element's declarations for the rest of the stream.
            self.bindings.shrink_to_fit();
        }
    }

    /// The namespace bound to `prefix` in the open elements.
    fn lookup(&self, prefix: &str) -> Option<Namespace> {
        if prefix == "xml" {
            return Some(Namespace::from_static(XMLNS_XML));
        }
        self.bindings
            .get(prefix)
            .and_then(|uris| uris.last())
            // `xmlns:p=''` does not bind `p` (XML 1.0 namespaces forbid it).
            .filter(|uri| !uri.is_empty())
            .cloned()
    }
}

/// rxml's token limit for an element limit: a token longer than a whole
/// element is reported as an oversized element (see `classify`).
/// The token limit before authentication: the longest domain name (RFC
/// 7622: 1023 bytes) fits, and before authentication attributes carry
/// domains (headers, dialback), never full JIDs (stanzas are refused);
/// text is not limited by it (it is passed on in chunks).
const UNAUTHENTICATED_TOKEN: usize = 1024;

fn token_limit(max_bytes: usize) -> usize {
    max_bytes.saturating_add(1)
}

/// What rebuilding the parser in its current state gave.
enum Rebuilt {
    Parser(Box<RawParser>),
    /// The root's name is longer than the limit.
    Failed,
    /// In the prolog or the header: not a state a fresh parser can reach.
    NotYet,
}

fn raw_parser_with_token_limit(max_token_length: usize) -> RawParser {
    let options = Options {
        max_token_length,
        ..Options::default()
    };
    let mut raw = RawParser::with_options(options);
    raw.set_text_buffering(false);
    raw
}

fn duplicate(name: &str) -> FramingError {
    FramingError::NotWellFormed(format!("duplicate attribute `{name}`"))
}

fn undeclared(prefix: &str) -> FramingError {
    FramingError::NotWellFormed(format!("undeclared namespace prefix `{prefix}`"))
}

/// Maps rxml's errors onto the distinctions XMPP makes. rxml's messages
/// are not a stable API; `xml::tests` pins each mapping, so an rxml
/// upgrade that changes them fails a test instead of a condition.
fn classify(e: XmlError, max_bytes: usize) -> FramingError {
    match e {
        // The token limit is one more than the element limit (see
        // `Framer::set_max_bytes` for when a new limit reaches it), so a
        // token over it means an element over it.
        XmlError::RestrictedXml(what) if what.contains("long") => {
            FramingError::TooBig { limit: max_bytes }
        }
        XmlError::RestrictedXml(what) if what.contains("encoding") => {
            FramingError::UnsupportedEncoding
        }
        XmlError::RestrictedXml(what) => FramingError::Restricted(what.to_string()),
        // `<!DOCTYPE …>`: rxml has no DTD support; `<!` that does not open a
        // comment or CDATA section is a markup declaration.
        XmlError::InvalidSyntax(what) if what.contains("cdata or comment") => {
            FramingError::Restricted("document type declaration".to_string())
        }
        XmlError::UndeclaredEntity => FramingError::Restricted(e.to_string()),
        other => FramingError::NotWellFormed(other.to_string()),
    }
}

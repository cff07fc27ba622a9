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

use super::element::{Element, Node};
use rxml::Error as XmlError;
use rxml::error::EndOrError;
use rxml::parser::{Options, Parse, RawEvent, RawParser, RawQName, WithOptions, XMLNS_XML};

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
    raw: RawParser,
    input: Vec<u8>,
    pos: usize,
    max_bytes: usize,
    max_depth: usize,
    /// Bytes accounted to the unit being received (header or top-level element).
    unit_bytes: usize,
    /// Bytes consumed by the parser but not yet reported in an event.
    pending: usize,
    /// The start tag being read: raw name and raw attributes.
    head: Option<(RawQName, Vec<(RawQName, String)>)>,
    /// Namespace declarations per open element (`None` prefix = default).
    scopes: Vec<Vec<(Option<String>, String)>>,
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
        // A token longer than a whole element is reported as an oversized
        // element (see `classify`).
        let options = Options {
            max_token_length: max_bytes.saturating_add(1),
            ..Options::default()
        };
        let mut raw = RawParser::with_options(options);
        raw.set_text_buffering(false);
        Framer {
            raw,
            input: Vec::new(),
            pos: 0,
            max_bytes,
            max_depth,
            unit_bytes: 0,
            pending: 0,
            head: None,
            scopes: Vec::new(),
            stack: Vec::new(),
            started: false,
            closed: false,
            poisoned: None,
        }
    }

    /// Changes the per-element byte limit (e.g. once the stream is authenticated).
    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
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
            let mut slice: &[u8] = &self.input[self.pos..];
            let before = slice.len();
            let result = self.raw.parse(&mut slice, false);
            let consumed = before - slice.len();
            self.pos += consumed;
            self.pending += consumed;
            let event = match result {
                Ok(Some(event)) => event,
                Ok(None) | Err(EndOrError::NeedMoreData) => {
                    self.check_size()?;
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
                }
                self.unit_bytes += len;
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
                self.scopes.pop();
                if self.scopes.is_empty() {
                    self.closed = true;
                    return Ok(Some(Frame::StreamClose));
                }
                let Some(element) = self.stack.pop() else {
                    return Ok(None);
                };
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
                            Some(Node::Text(prev)) => prev.push_str(&text),
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
        let mut decls: Vec<(Option<String>, String)> = Vec::new();
        let mut plain: Vec<(RawQName, String)> = Vec::with_capacity(raw_attrs.len());
        for ((a_prefix, a_local), value) in raw_attrs {
            match a_prefix.as_ref().map(|p| p.as_str()) {
                None if a_local.as_str() == "xmlns" => decls.push((None, value)),
                Some("xmlns") => decls.push((Some(a_local.as_str().to_string()), value)),
                _ => plain.push(((a_prefix, a_local), value)),
            }
        }
        self.scopes.push(decls);
        let ns = match &prefix {
            None => self.lookup(None).unwrap_or_default(),
            Some(p) => self
                .lookup(Some(p.as_str()))
                .ok_or_else(|| undeclared(p.as_str()))?,
        };
        let mut attrs = Vec::with_capacity(plain.len());
        for ((a_prefix, a_local), value) in plain {
            let a_ns = match a_prefix {
                None => String::new(),
                Some(p) => self
                    .lookup(Some(p.as_str()))
                    .ok_or_else(|| undeclared(p.as_str()))?,
            };
            if attrs
                .iter()
                .any(|(n, l, _): &(String, String, String)| *n == a_ns && l == a_local.as_str())
            {
                return Err(FramingError::NotWellFormed(format!(
                    "duplicate attribute `{a_local}`"
                )));
            }
            attrs.push((a_ns, a_local.as_str().to_string(), value));
        }
        let element = Element {
            ns,
            name: local.as_str().to_string(),
            attrs,
            children: Vec::new(),
        };
        if self.scopes.len() == 1 {
            let default_ns = self.scopes[0]
                .iter()
                .find(|(p, _)| p.is_none())
                .map(|(_, uri)| uri.clone());
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

    /// The namespace bound to `prefix` (`None` = default) in the open scopes.
    fn lookup(&self, prefix: Option<&str>) -> Option<String> {
        if prefix == Some("xml") {
            return Some(XMLNS_XML.to_string());
        }
        self.scopes
            .iter()
            .rev()
            .flat_map(|scope| scope.iter())
            .find(|(p, _)| p.as_deref() == prefix)
            .map(|(_, uri)| uri.clone())
            .filter(|uri| !uri.is_empty() || prefix.is_none())
    }
}

fn undeclared(prefix: &str) -> FramingError {
    FramingError::NotWellFormed(format!("undeclared namespace prefix `{prefix}`"))
}

/// Maps rxml's errors onto the distinctions XMPP makes. rxml's messages
/// are not a stable API; `xml::tests` pins each mapping, so an rxml
/// upgrade that changes them fails a test instead of a condition.
fn classify(e: XmlError, max_bytes: usize) -> FramingError {
    match e {
        // The token limit is one more than the element limit, so a token
        // over it means an element over it.
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

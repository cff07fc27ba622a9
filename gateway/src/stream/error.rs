//! Protocol errors of one stream, as a typed enum that maps to the stream
//! error sent to the peer.
//!
//! The `Display` text is for our logs; `peer_text` is what the peer reads,
//! kept generic so nothing internal leaks across the edge (a refused
//! non-partner is told only its own claim and the domain it asked for).

use super::condition::Condition;
use super::refusal::Refusal;
use crate::xml::FramingError;

/// Why the gateway closes a stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// Malformed XML.
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    /// Forbidden XML construct.
    #[error("restricted XML: {0}")]
    RestrictedXml(String),
    /// Non-UTF-8 encoding declared.
    #[error("unsupported encoding")]
    UnsupportedEncoding,
    /// Text directly inside the stream element.
    #[error("text at stream level")]
    TextAtStreamLevel,
    /// A top-level element or the header exceeded the byte limit.
    #[error("element exceeds {limit} bytes")]
    StanzaTooBig {
        /// The limit in force.
        limit: usize,
    },
    /// Nesting exceeded the depth limit.
    #[error("element nesting exceeds depth {limit}")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// A top-level element held more elements than allowed (before
    /// authentication).
    #[error("element holds more than {limit} elements")]
    TooManyElements {
        /// The limit in force.
        limit: usize,
    },
    /// Root element is not `stream` in the streams namespace, or the
    /// default namespace is not `jabber:server`, or a top-level element is
    /// in a client namespace.
    #[error("invalid namespace: {0}")]
    InvalidNamespace(String),
    /// The root element is in the streams namespace but not named `stream`.
    #[error("root element is `{0}`, not `stream`")]
    NotAStream(String),
    /// No `version` or a major version other than 1.
    #[error("unsupported stream version {0:?}")]
    UnsupportedVersion(Option<String>),
    /// The `to` domain is missing or not served here.
    #[error("host unknown: {0:?}")]
    HostUnknown(Option<String>),
    /// The `from` domain is invalid or may not use this listener.
    #[error("invalid from: {0}")]
    InvalidFrom(String),
    /// External listener: `from` is not a configured partner.
    #[error("{}", not_partner_text(from, to))]
    NotPartner {
        /// The peer's `from` (normalised).
        from: String,
        /// The domain of ours it wanted to reach.
        to: String,
    },
    /// Anything but `<starttls/>` before TLS.
    #[error("`{0}` sent before STARTTLS")]
    TlsRequired(String),
    /// Bytes pipelined after `<starttls/>` (STARTTLS command injection).
    #[error("data pipelined after <starttls/>")]
    PipelinedAfterStartTls,
    /// A stanza on a stream that is not authenticated.
    #[error("stanza `{0}` before authentication")]
    NotAuthorized(String),
    /// A dialback element this stream may not send (before TLS is the
    /// TLS rule's; unsolicited, repeated, for a partner that must use SASL
    /// EXTERNAL, or a key the authoritative server did not confirm).
    #[error("dialback refused: {0}")]
    DialbackRefused(String),
    /// A stanza between servers without `to` or `from`.
    #[error("`{0}` without `to` or `from`")]
    ImproperAddressing(String),
    /// A top-level element that is not offered in this phase.
    #[error("unsupported element `{0}`")]
    UnsupportedStanzaType(String),
    /// The listener has no certificate, so TLS cannot be offered.
    #[error("no certificate installed")]
    NoCertificate,
    /// The partner the stream authenticated as already holds as many
    /// streams as `limits.max_connections_per_partner` allows.
    #[error("`{partner}` already has {limit} authenticated streams, the most allowed")]
    PartnerLimit {
        /// The authenticated partner domain.
        partner: String,
        /// The limit in force.
        limit: u32,
    },
    /// Header, handshake, negotiation or idle timeout.
    #[error("timed out")]
    Timeout,
    /// The gateway is draining.
    #[error("shutting down")]
    Shutdown,
}

impl StreamError {
    /// The RFC 6120 condition sent to the peer.
    pub fn condition(&self) -> Condition {
        match self {
            StreamError::NotWellFormed(_) => Condition::NotWellFormed,
            StreamError::RestrictedXml(_) => Condition::RestrictedXml,
            StreamError::UnsupportedEncoding => Condition::UnsupportedEncoding,
            StreamError::TextAtStreamLevel | StreamError::NotAStream(_) => Condition::BadFormat,
            StreamError::StanzaTooBig { .. }
            | StreamError::TooDeep { .. }
            | StreamError::TooManyElements { .. }
            | StreamError::TlsRequired(_)
            | StreamError::PipelinedAfterStartTls
            | StreamError::NotPartner { .. } => Condition::PolicyViolation,
            // <policy-violation/>, not <resource-constraint/>: the gateway
            // is not short of anything (other partners are admitted); the
            // partner exceeded a limit configured for it, a local policy in
            // RFC 6120 §4.9.3.14's words. Resource-constraint (§4.9.3.17)
            // would tell the partner's operator we are overloaded, and a
            // prompt retry would then look reasonable to it.
            StreamError::PartnerLimit { .. } => Condition::PolicyViolation,
            StreamError::InvalidNamespace(_) => Condition::InvalidNamespace,
            StreamError::UnsupportedVersion(_) => Condition::UnsupportedVersion,
            StreamError::HostUnknown(_) => Condition::HostUnknown,
            StreamError::InvalidFrom(_) => Condition::InvalidFrom,
            StreamError::NotAuthorized(_) | StreamError::DialbackRefused(_) => {
                Condition::NotAuthorized
            }
            StreamError::ImproperAddressing(_) => Condition::ImproperAddressing,
            StreamError::UnsupportedStanzaType(_) => Condition::UnsupportedStanzaType,
            StreamError::NoCertificate => Condition::InternalServerError,
            StreamError::Timeout => Condition::ConnectionTimeout,
            StreamError::Shutdown => Condition::SystemShutdown,
        }
    }

    /// The admission rule that refused the stream, if that is why it closed.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            StreamError::NotPartner { .. } => Some(Refusal::NotPartner),
            _ => None,
        }
    }

    /// An application-specific condition element, if any.
    pub fn app_condition(&self) -> Option<&'static str> {
        match self {
            StreamError::StanzaTooBig { .. } | StreamError::TooManyElements { .. } => {
                Some("<stanza-too-big xmlns='urn:xmpp:errors'/>")
            }
            _ => None,
        }
    }

    /// Human-readable text for the peer (never internal detail).
    pub fn peer_text(&self) -> String {
        match self {
            StreamError::StanzaTooBig { limit } => format!("element larger than {limit} bytes"),
            StreamError::TooDeep { limit } => format!("elements nested deeper than {limit}"),
            StreamError::TooManyElements { limit } => {
                format!("more than {limit} elements in one element before authentication")
            }
            StreamError::TlsRequired(_) => "STARTTLS is required".to_string(),
            StreamError::PipelinedAfterStartTls => {
                "data sent after <starttls/> before TLS".to_string()
            }
            StreamError::NotAuthorized(_) => "stream is not authenticated".to_string(),
            StreamError::DialbackRefused(_) => "dialback is not accepted here".to_string(),
            StreamError::NoCertificate => "no certificate installed".to_string(),
            StreamError::HostUnknown(None) => "the stream header names no domain".to_string(),
            StreamError::HostUnknown(Some(d)) => format!("this service does not serve {d}"),
            StreamError::InvalidNamespace(_)
            | StreamError::UnsupportedVersion(_)
            | StreamError::InvalidFrom(_)
            | StreamError::UnsupportedStanzaType(_)
            | StreamError::ImproperAddressing(_)
            | StreamError::NotAStream(_)
            | StreamError::TextAtStreamLevel
            | StreamError::UnsupportedEncoding
            | StreamError::NotPartner { .. } => self.to_string(),
            StreamError::NotWellFormed(_) => "XML is not well-formed".to_string(),
            StreamError::RestrictedXml(_) => {
                "DTDs, comments, processing instructions and entities are not allowed".to_string()
            }
            StreamError::PartnerLimit { partner, .. } => {
                format!("`{partner}` has reached its limit of concurrent streams here")
            }
            StreamError::Timeout => "timed out".to_string(),
            StreamError::Shutdown => "the service is shutting down".to_string(),
        }
    }
}

/// What a refused non-partner reads (and what we log): it names only the
/// peer's own claim and the domain it asked for, nothing internal.
fn not_partner_text(from: &str, to: &str) -> String {
    format!("`{from}` is not a federated partner of `{to}`")
}

impl From<FramingError> for StreamError {
    fn from(e: FramingError) -> StreamError {
        match e {
            FramingError::NotWellFormed(m) => StreamError::NotWellFormed(m),
            FramingError::Restricted(m) => StreamError::RestrictedXml(m),
            FramingError::UnsupportedEncoding => StreamError::UnsupportedEncoding,
            FramingError::TooBig { limit } => StreamError::StanzaTooBig { limit },
            FramingError::TooDeep { limit } => StreamError::TooDeep { limit },
            FramingError::TooManyElements { limit } => StreamError::TooManyElements { limit },
            FramingError::TextAtStreamLevel => StreamError::TextAtStreamLevel,
        }
    }
}

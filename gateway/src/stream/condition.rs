//! The stream error conditions of RFC 6120 §4.9.3 that the gateway sends.
//!
//! A closed set so metrics can pre-declare one counter per condition.

/// A defined stream error condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    /// XML that is well-formed but cannot be processed (text at stream level).
    BadFormat,
    /// No header, handshake or traffic within the time allowed.
    ConnectionTimeout,
    /// The `to` domain is not served on this listener.
    HostUnknown,
    /// The gateway cannot serve the stream (no certificate installed).
    InternalServerError,
    /// A stanza without `to` or `from`.
    ImproperAddressing,
    /// The `from` domain may not use this listener.
    InvalidFrom,
    /// Wrong stream or content namespace.
    InvalidNamespace,
    /// A stanza before the stream was authenticated.
    NotAuthorized,
    /// Malformed XML.
    NotWellFormed,
    /// A local policy was violated (TLS required, stanza too big, …).
    PolicyViolation,
    /// DTD, comment, processing instruction or entity declaration.
    RestrictedXml,
    /// The gateway is shutting down.
    SystemShutdown,
    /// An encoding other than UTF-8.
    UnsupportedEncoding,
    /// A top-level element that is not offered on this stream.
    UnsupportedStanzaType,
    /// A stream version other than 1.x.
    UnsupportedVersion,
}

impl Condition {
    /// Every condition, for metrics.
    pub const ALL: [Condition; 15] = [
        Condition::BadFormat,
        Condition::ConnectionTimeout,
        Condition::HostUnknown,
        Condition::InternalServerError,
        Condition::ImproperAddressing,
        Condition::InvalidFrom,
        Condition::InvalidNamespace,
        Condition::NotAuthorized,
        Condition::NotWellFormed,
        Condition::PolicyViolation,
        Condition::RestrictedXml,
        Condition::SystemShutdown,
        Condition::UnsupportedEncoding,
        Condition::UnsupportedStanzaType,
        Condition::UnsupportedVersion,
    ];

    /// The element name, e.g. `host-unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::BadFormat => "bad-format",
            Condition::ConnectionTimeout => "connection-timeout",
            Condition::HostUnknown => "host-unknown",
            Condition::InternalServerError => "internal-server-error",
            Condition::ImproperAddressing => "improper-addressing",
            Condition::InvalidFrom => "invalid-from",
            Condition::InvalidNamespace => "invalid-namespace",
            Condition::NotAuthorized => "not-authorized",
            Condition::NotWellFormed => "not-well-formed",
            Condition::PolicyViolation => "policy-violation",
            Condition::RestrictedXml => "restricted-xml",
            Condition::SystemShutdown => "system-shutdown",
            Condition::UnsupportedEncoding => "unsupported-encoding",
            Condition::UnsupportedStanzaType => "unsupported-stanza-type",
            Condition::UnsupportedVersion => "unsupported-version",
        }
    }

    /// Index into `ALL`.
    pub fn index(self) -> usize {
        Condition::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

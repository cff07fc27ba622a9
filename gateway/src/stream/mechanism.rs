//! How a stream was authenticated, as reported in logs, `/status` and
//! `/metrics`.

/// The mechanism that authenticated a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// SASL EXTERNAL with a certificate valid for the domain (XEP-0178).
    External,
    /// Server dialback (XEP-0220), verified with the authoritative server.
    Dialback,
}

impl Mechanism {
    /// The value in logs and `/status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::External => "external",
            Mechanism::Dialback => "dialback",
        }
    }
}

/// What the authoritative server said about a dialback key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialbackOutcome {
    /// It issued the key: the domain is authenticated on the stream.
    Valid,
    /// It did not: the stream is refused.
    Invalid,
    /// It could not be asked (unreachable, no SRV, timeout, protocol).
    Error,
}

impl DialbackOutcome {
    /// Every outcome, in metrics order.
    pub const ALL: [DialbackOutcome; 3] = [
        DialbackOutcome::Valid,
        DialbackOutcome::Invalid,
        DialbackOutcome::Error,
    ];

    /// The `type` attribute of the answer, and the metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            DialbackOutcome::Valid => "valid",
            DialbackOutcome::Invalid => "invalid",
            DialbackOutcome::Error => "error",
        }
    }
}

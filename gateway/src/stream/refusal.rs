//! Why a stream was refused admission by its listener's peer rule, as a
//! closed set so `/metrics` can pre-declare one counter per reason.
//!
//! Only refusals by policy are here (the external listener's partner
//! allow-list); protocol errors are counted by `Condition`.

/// A reason a stream header was refused (or an open stream closed at reload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// `from` names a domain that is not a configured partner.
    NotPartner,
}

impl Refusal {
    /// Every reason, for metrics.
    pub const ALL: [Refusal; 1] = [Refusal::NotPartner];

    /// The label value, e.g. `not_partner`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NotPartner => "not_partner",
        }
    }

    /// Index into `ALL`.
    pub fn index(self) -> usize {
        match self {
            Refusal::NotPartner => 0,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

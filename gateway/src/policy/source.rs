//! Why a policy is a user's effective one: the precedence level it won at.

/// The level of precedence an effective policy comes from, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicySource {
    /// A `[[grants]]` entry naming the user.
    UserGrant,
    /// The `[[grants]]` entry with `all = true`.
    AllUsersGrant,
    /// The `site:NAME` policy of the user's home site.
    Site,
    /// The `global` policy.
    Global,
    /// No policy applies and none is global: every flag false.
    Default,
}

impl PolicySource {
    /// The value reported by `/access`, e.g. `user_grant`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicySource::UserGrant => "user_grant",
            PolicySource::AllUsersGrant => "all_users_grant",
            PolicySource::Site => "site",
            PolicySource::Global => "global",
            PolicySource::Default => "default",
        }
    }
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

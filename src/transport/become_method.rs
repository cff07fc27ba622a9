//! `Become`: how commands gain root on a host where we log in as someone else.
//!
//! The spec's `become: sudo`. It is applied in exactly one place, to the
//! argument list, before the transport quotes it: every command (including
//! the file scripts, so writes work too) becomes `sudo -n -- ARGV…`. `-n`
//! makes sudo fail at once instead of waiting for a password nobody will type.
//! Logged in as root, there is nothing to become and the prefix is skipped.

/// Privilege escalation for every command run on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Become {
    /// Run commands as the login user.
    #[default]
    None,
    /// Run commands through `sudo -n --` (passwordless sudo required).
    Sudo,
}

impl Become {
    /// The argument list to execute for `argv` when the login user is or is
    /// not root.
    pub fn wrap(self, argv: &[String], is_root: bool) -> Vec<String> {
        match self {
            Become::Sudo if !is_root => ["sudo", "-n", "--"]
                .into_iter()
                .map(String::from)
                .chain(argv.iter().cloned())
                .collect(),
            _ => argv.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_prefixes_unless_root() {
        let argv = vec!["cat".to_string(), "/etc/shadow".to_string()];
        assert_eq!(
            Become::Sudo.wrap(&argv, false),
            ["sudo", "-n", "--", "cat", "/etc/shadow"]
        );
        assert_eq!(Become::Sudo.wrap(&argv, true), argv);
        assert_eq!(Become::None.wrap(&argv, false), argv);
    }
}

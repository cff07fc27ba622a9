//! When a changed file that asks its service to restart may ask for a
//! reload instead: the file's consumer says which of its changes a reload
//! applies in full, and a change confined to those is planned as a reload
//! (the process and its streams stay).
//!
//! Pure: it compares the observed text with the rendered one. When the
//! observed text is unknown (a new file, or a sensitive one whose content
//! never travels back), the file's own notification stands.

use serde::{Deserialize, Serialize};

use super::resource::Notify;

/// Whose rule decides which changes a reload applies; named in a module's
/// manifest (`reload_applies: gateway_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadScope {
    /// `xfed-gateway`'s main file: its `[dialback]` section (the secrets'
    /// files) is reloaded on SIGHUP, the rest needs a restart.
    GatewayConfig,
}

impl ReloadScope {
    /// Whether the consumer's reload applies every difference between
    /// `before` and `after`.
    pub fn applies(self, before: &str, after: &str) -> bool {
        match self {
            ReloadScope::GatewayConfig => xfed_gateway::config::reload_applies(before, after),
        }
    }
}

/// What a changed file asks of its service: `declared` unless it is a
/// restart and `scope` says a reload applies the whole change from
/// `before` (the observed text, when known) to `after`.
pub fn notify_for(
    declared: Notify,
    scope: Option<ReloadScope>,
    before: Option<&str>,
    after: &str,
) -> Notify {
    match (declared, scope, before) {
        (Notify::Restart, Some(scope), Some(before)) if scope.applies(before, after) => {
            Notify::Reload
        }
        _ => declared,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = "domains = [\"contoso.example\"]\npolicy_file = \"policy.toml\"\n\n[dialback]\nsecret_file = \"/etc/xfed/dialback.secret\"\n";

    fn rotating() -> String {
        format!("{MAIN}previous_secret_file = \"/etc/xfed/dialback.previous\"\n")
    }

    #[test]
    fn a_rotation_of_the_dialback_secrets_is_a_reload() {
        let scope = Some(ReloadScope::GatewayConfig);
        let start = notify_for(Notify::Restart, scope, Some(MAIN), &rotating());
        let end = notify_for(Notify::Restart, scope, Some(&rotating()), MAIN);
        assert_eq!((start, end), (Notify::Reload, Notify::Reload));
    }

    #[test]
    fn anything_else_keeps_what_the_file_declares() {
        let scope = Some(ReloadScope::GatewayConfig);
        let other = MAIN.replace("policy.toml", "other.toml");
        assert_eq!(
            notify_for(Notify::Restart, scope, Some(MAIN), &other),
            Notify::Restart
        );
        // Unknown before (absent, or never sent back): the declared one.
        assert_eq!(
            notify_for(Notify::Restart, scope, None, &rotating()),
            Notify::Restart
        );
        // No scope: the declared one.
        assert_eq!(
            notify_for(Notify::Restart, None, Some(MAIN), &rotating()),
            Notify::Restart
        );
        // A reload never becomes a restart here.
        assert_eq!(
            notify_for(Notify::Reload, scope, Some(MAIN), &other),
            Notify::Reload
        );
    }
}

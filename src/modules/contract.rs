//! The contract with the gateway, checked on what was rendered: the
//! gateway's own configuration loader (`xfed_gateway::config`) runs on the
//! text of `gateway.toml` and the `policy.toml` it names, as rendered for
//! one host, before anything is planned or pushed.
//!
//! The spec is checked with the same rules value by value at `validate`
//! (`spec/resolve.rs`); this is the belt to those braces, for what only
//! the whole file shows (a template that renders a key twice, a
//! cross-reference the spec does not check). Pure: the policy file is
//! looked up among the rendered files, never read from disk.

use std::path::Path;

use xfed_gateway::config::Config;

/// Why the gateway would refuse a rendered configuration: its own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{file}` rendered for `{host}` would be refused by the gateway: {message}")]
pub struct ContractError {
    pub host: String,
    pub file: String,
    /// The gateway loader's message, every problem with its field.
    pub message: String,
}

/// Loads the main configuration `text` (at `path` on `host`) as the gateway
/// does at start; `rendered` gives the text of another file rendered for
/// the same host by its remote path (the `policy_file`).
pub fn check_gateway_config(
    host: &str,
    path: &str,
    text: &str,
    rendered: &dyn Fn(&Path) -> Option<String>,
) -> Result<(), ContractError> {
    let mut read = |p: &Path| {
        rendered(p).map(String::into_bytes).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no module renders this file for this host",
            )
        })
    };
    Config::parse_with(Path::new(path), text.as_bytes(), &mut read)
        .map(|_| ())
        .map_err(|e| ContractError {
            host: host.to_string(),
            file: path.to_string(),
            message: e.to_string(),
        })
}

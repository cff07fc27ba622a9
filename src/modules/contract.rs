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

#[cfg(test)]
mod tests {
    use super::check_gateway_config;
    use std::path::Path;

    const MAIN: &str = "domains = [\"contoso.example\"]\n\
        policy_file = \"/etc/xfed/policy.toml\"\n\
        [external]\naddress = \"198.51.100.1\"\n\
        [internal]\naddress = \"203.0.113.1\"\n\
        [admin]\naddress = \"203.0.113.1\"\nport = 8089\n";

    /// The user, had it reached a rendered file: refused with the
    /// gateway's own field and message, naming the host and the file.
    #[test]
    fn a_file_the_gateway_would_refuse_is_an_error_with_its_message() {
        let policy = "[[sites]]\nname = \"hq\"\n\
            users = [\"alice@contoso.example\", \"x$(touch${IFS}/tmp/p)@contoso.example\"]\n";
        let rendered = |p: &Path| (p == Path::new("/etc/xfed/policy.toml")).then(|| policy.into());
        let err = check_gateway_config(
            "edge1.contoso.example",
            "/etc/xfed/gateway.toml",
            MAIN,
            &rendered,
        )
        .expect_err("refused");
        let text = err.to_string();
        assert!(
            text.starts_with(
                "`/etc/xfed/gateway.toml` rendered for `edge1.contoso.example` would be refused by the gateway: "
            ),
            "{text}"
        );
        assert!(
            text.contains("`policy_file:sites[0].users[1]`: `x$(touch${IFS}/tmp/p)@contoso.example` has a resource"),
            "{text}"
        );
    }

    #[test]
    fn a_policy_file_no_module_renders_is_a_problem_of_policy_file() {
        let err = check_gateway_config("edge1", "/etc/xfed/gateway.toml", MAIN, &|_| None)
            .expect_err("refused");
        assert!(
            err.message
                .contains("`policy_file`: cannot read `/etc/xfed/policy.toml`"),
            "{err}"
        );
        let ok = check_gateway_config("edge1", "/etc/xfed/gateway.toml", MAIN, &|_| {
            Some(String::new())
        });
        assert_eq!(ok, Ok(()));
    }
}

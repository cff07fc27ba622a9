//! Command-line arguments of `xfed-gateway`.
//!
//! Four forms, hand-parsed (a daemon with two flags does not need an
//! argument-parsing framework): run, check a config, version, help.

use std::ffi::OsString;
use std::path::PathBuf;

/// Usage text for `--help` and usage errors.
pub const USAGE: &str = "\
usage: xfed-gateway [--config PATH]       run the gateway (default config: /etc/xfed/gateway.toml)
       xfed-gateway --check-config PATH   validate PATH (and its certificates) and exit
       xfed-gateway --version | --help

exit status: 0 ok, 1 runtime failure (e.g. a port cannot be bound), 64 invalid configuration or usage
signals: SIGHUP reloads configuration and certificates; SIGTERM/SIGINT drain and exit";

/// What the invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the daemon with this config file.
    Run(PathBuf),
    /// Validate this config file and exit.
    Check(PathBuf),
    /// Print the version.
    Version,
    /// Print usage.
    Help,
}

/// A command line that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// A flag that needs a value was last.
    #[error("`{0}` needs a path")]
    MissingValue(String),
    /// An unknown argument.
    #[error("unknown argument `{0}`")]
    Unknown(String),
    /// Two commands at once.
    #[error("`{0}` cannot be combined with `{1}`")]
    Conflict(String, String),
}

impl Command {
    /// Parses the arguments after the program name.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, CliError> {
        let mut args = args.into_iter().map(|a| a.to_string_lossy().into_owned());
        let mut command: Option<(String, Command)> = None;
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let next = match flag.as_str() {
                "--config" | "-c" | "--check-config" => {
                    let value = match inline {
                        Some(v) => v,
                        None => args
                            .next()
                            .ok_or_else(|| CliError::MissingValue(flag.clone()))?,
                    };
                    if flag == "--check-config" {
                        Command::Check(PathBuf::from(value))
                    } else {
                        Command::Run(PathBuf::from(value))
                    }
                }
                "--version" | "-V" => Command::Version,
                "--help" | "-h" => Command::Help,
                _ => return Err(CliError::Unknown(arg)),
            };
            if let Some((previous, _)) = &command {
                return Err(CliError::Conflict(previous.clone(), flag));
            }
            command = Some((flag, next));
        }
        Ok(command.map_or_else(
            || Command::Run(PathBuf::from(crate::config::DEFAULT_PATH)),
            |(_, c)| c,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, CliError> {
        Command::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn forms() {
        assert_eq!(
            parse(&[]),
            Ok(Command::Run("/etc/xfed/gateway.toml".into()))
        );
        assert_eq!(
            parse(&["--config", "/x.toml"]),
            Ok(Command::Run("/x.toml".into()))
        );
        assert_eq!(
            parse(&["--config=/x.toml"]),
            Ok(Command::Run("/x.toml".into()))
        );
        assert_eq!(
            parse(&["--check-config", "/x.toml"]),
            Ok(Command::Check("/x.toml".into()))
        );
        assert_eq!(parse(&["--version"]), Ok(Command::Version));
        assert!(matches!(
            parse(&["--config"]),
            Err(CliError::MissingValue(_))
        ));
        assert!(matches!(
            parse(&["--frobnicate"]),
            Err(CliError::Unknown(_))
        ));
        assert!(matches!(
            parse(&["--config", "a", "--check-config", "b"]),
            Err(CliError::Conflict(..))
        ));
    }
}

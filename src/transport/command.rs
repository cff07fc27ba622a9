//! `Command`: what the engine asks a host to run.
//!
//! An argument list, never a shell line (style §5): the transport decides how
//! it reaches the host (`exec` locally, `quote::shell_join` over SSH). Secrets
//! travel in `stdin`, which is never printed, logged or put in an error; the
//! argument list may appear in messages, so it must not hold secrets.

use std::fmt;
use std::time::Duration;

use super::quote::shell_join;

/// Longest command rendering put into a message; scripts are much longer.
const MAX_DISPLAY: usize = 160;

/// A program and its arguments, with optional stdin and timeout.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// Program first, then its arguments. Appears in messages: no secrets.
    pub argv: Vec<String>,
    /// Bytes fed to the program's stdin; stdin is empty (EOF) when `None`.
    /// Never shown anywhere.
    pub stdin: Option<Vec<u8>>,
    /// Overrides the transport's default command timeout.
    pub timeout: Option<Duration>,
    /// Short description used in messages instead of the argument list
    /// (e.g. "write `/etc/xfed/gateway.toml`" rather than a whole script).
    pub label: Option<String>,
}

impl Command {
    pub fn new(program: impl Into<String>) -> Self {
        Command {
            argv: vec![program.into()],
            stdin: None,
            timeout: None,
            label: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.argv.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// How the command is named in messages: its label, or the quoted
    /// argument list cut to a readable length.
    pub fn describe(&self) -> String {
        if let Some(label) = &self.label {
            return label.clone();
        }
        let line = shell_join(&self.argv).unwrap_or_else(|_| format!("{:?}", self.argv));
        if line.chars().count() <= MAX_DISPLAY {
            format!("`{line}`")
        } else {
            let cut: String = line.chars().take(MAX_DISPLAY).collect();
            format!("`{cut}…`")
        }
    }
}

impl fmt::Debug for Command {
    // Hand-written so stdin (possibly a key or a password) never shows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("argv", &self.argv)
            .field(
                "stdin",
                &self.stdin.as_ref().map(|d| format!("<{} bytes>", d.len())),
            )
            .field("timeout", &self.timeout)
            .field("label", &self.label)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_debug_hide_stdin() {
        let cmd = Command::new("ss")
            .arg("-ltn")
            .args(["state", "listening"])
            .stdin(b"hunter2".to_vec())
            .timeout(Duration::from_secs(3));
        assert_eq!(cmd.argv, ["ss", "-ltn", "state", "listening"]);
        let dbg = format!("{cmd:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("<7 bytes>"), "{dbg}");
        assert_eq!(cmd.describe(), "`ss -ltn state listening`");
    }

    #[test]
    fn describe_prefers_label_and_cuts_long_lines() {
        let cmd = Command::new("sh").arg("x".repeat(500));
        assert!(cmd.describe().ends_with("…`"));
        assert!(cmd.describe().chars().count() < MAX_DISPLAY + 5);
        assert_eq!(cmd.label("read `/etc/x`").describe(), "read `/etc/x`");
    }
}

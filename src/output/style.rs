//! Colour, decided once: only on a terminal, never with `NO_COLOR`. A
//! person reads every output without colour too.

use std::io::IsTerminal;

use crate::plan::Action;

/// Colours only when asked (a terminal without NO_COLOR); plain otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn paint(&self, action: Action, text: &str) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match action {
            Action::Create => "32",
            Action::Update => "33",
            Action::Replace => "35",
            Action::Delete => "31",
            Action::NoOp => return text.to_string(),
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    pub fn line(&self, line: &str) -> String {
        if !self.color {
            return line.to_string();
        }
        if line.starts_with('+') && !line.starts_with("+++") {
            format!("\x1b[32m{line}\x1b[0m")
        } else if line.starts_with('-') && !line.starts_with("---") {
            format!("\x1b[31m{line}\x1b[0m")
        } else {
            line.to_string()
        }
    }
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset.
    pub fn for_stdout() -> Style {
        Style {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

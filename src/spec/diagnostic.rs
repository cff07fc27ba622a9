//! Spec diagnostics: one problem, where it is, what was expected, the fix.
//!
//! Rendering follows rustc/just: `file:line:col: error: message`, the
//! offending line with a caret under the value, then `expected` and `hint`
//! lines. Validation collects every diagnostic before it reports, so a user
//! fixes a spec in one round.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use serde::Serialize;

use super::source::{Pos, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    /// The field path in serde notation, e.g. `sites[0].xmpp_route`.
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The offending source line, for rendering.
    #[serde(skip)]
    snippet: Option<String>,
}

impl Diagnostic {
    pub fn error(src: &Source, field: &str, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Error, src, field, pos, message)
    }

    pub fn warning(src: &Source, field: &str, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Warning, src, field, pos, message)
    }

    fn new(
        severity: Severity,
        src: &Source,
        field: &str,
        pos: Pos,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            file: src.path().to_path_buf(),
            line: pos.line,
            col: pos.col,
            field: field.to_string(),
            message: message.into(),
            expected: None,
            hint: None,
            snippet: src.line(pos.line).map(str::to_string),
        }
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Diagnostic {
        self.expected = Some(expected.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    pub fn maybe_hint(self, hint: Option<String>) -> Diagnostic {
        match hint {
            Some(h) => self.hint(h),
            None => self,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(
            f,
            "{}:{}:{}: {level}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )?;
        let gutter = " ".repeat(self.line.to_string().len());
        if let Some(line) = &self.snippet {
            writeln!(f, "{gutter} |")?;
            writeln!(f, "{} | {line}", self.line)?;
            let start = self.col.saturating_sub(1);
            let width = underline_width(line, start);
            let mut marker = String::new();
            let _ = write!(
                marker,
                "{gutter} | {}{}",
                " ".repeat(char_width(line, start)),
                "^".repeat(width)
            );
            if let Some(expected) = &self.expected {
                let _ = write!(marker, " expected {expected}");
            }
            writeln!(f, "{marker}")?;
        } else if let Some(expected) = &self.expected {
            writeln!(f, "{gutter} = expected {expected}")?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "{gutter} = hint: {hint}")?;
        }
        Ok(())
    }
}

/// Columns are characters; the caret line must align for non-ASCII too.
fn char_width(line: &str, chars: usize) -> usize {
    line.chars().take(chars).count()
}

/// Underline the token that starts at `start`: a quoted string to its closing
/// quote, anything else to the next blank or flow delimiter.
fn underline_width(line: &str, start: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(start).collect();
    let Some(&first) = rest.first() else {
        return 1;
    };
    let n = if first == '"' {
        // A double-quoted YAML scalar ends at the first quote not escaped
        // by a backslash (`"Fed\"Pic"` is one token).
        let mut escaped = false;
        rest.iter()
            .skip(1)
            .position(|&c| {
                let end = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                end
            })
            .map_or(rest.len(), |i| i + 2)
    } else if first == '\'' {
        rest.iter()
            .skip(1)
            .position(|&c| c == first)
            .map_or(rest.len(), |i| i + 2)
    } else {
        // Inside a flow collection (`[a, b]`, `{ k: v }`) a plain scalar ends
        // at a delimiter; in block style it runs to the end of the line.
        let in_flow = line.chars().take(start).any(|c| c == '[' || c == '{');
        let end = rest
            .iter()
            .enumerate()
            .position(|(i, &c)| {
                (in_flow && (c == ',' || c == ']' || c == '}'))
                    || (c == '#' && i > 0 && rest[i - 1].is_whitespace())
            })
            .unwrap_or(rest.len());
        rest[..end]
            .iter()
            .collect::<String>()
            .trim_end()
            .chars()
            .count()
    };
    n.max(1)
}

/// Every diagnostic of one validation run, errors first, in file order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.0.len() - self.errors()
    }

    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            (a.severity, a.line, a.col, &a.message).cmp(&(b.severity, b.line, b.col, &b.message))
        });
        self.0.dedup();
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to `name` by edit distance, if it is close enough
/// to be a plausible typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(name, c);
        if score > 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{}`?", c.escape_debug()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_snippet_caret_and_hint() {
        let src = Source::new(
            "spec.yaml",
            "sites:\n  - name: hq\n    xmpp_route: edge-dr\n",
        );
        let d = Diagnostic::error(
            &src,
            "sites[0].xmpp_route",
            Pos { line: 3, col: 17 },
            "no such edge pool",
        )
        .expected("the name of an edge pool")
        .hint("did you mean `edge-hq`?");
        assert_eq!(
            d.to_string(),
            "spec.yaml:3:17: error: no such edge pool\n  |\n3 |     xmpp_route: edge-dr\n  |                 ^^^^^^^ expected the name of an edge pool\n  = hint: did you mean `edge-hq`?\n"
        );
    }

    #[test]
    fn did_you_mean_picks_the_nearest_plausible_name() {
        assert_eq!(
            did_you_mean("edge-hg", ["edge-hq", "edge-dr"]).as_deref(),
            Some("did you mean `edge-hq`?")
        );
        assert_eq!(did_you_mean("zzz", ["edge-hq"]), None);
    }
}

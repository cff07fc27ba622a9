//! The one place where an argument list becomes a shell command line.
//!
//! SSH can only run a string, which the remote login shell parses. Everything
//! xfed runs remotely is an argument list (`Command::argv`), and this module is
//! the only code that turns one into a string: each word is POSIX
//! single-quoted, so no value from a spec can ever be read as shell syntax
//! (deploy-rs shows what `format!` into a shell line leads to). Nothing else in
//! the crate may build shell lines; scripts that need shell features are fixed
//! constants run as `sh -c SCRIPT NAME ARG…`, with values as positional
//! arguments.
//!
//! Non-UTF-8 cannot occur (arguments are `String`s); a NUL byte cannot be
//! passed through any exec, so it is rejected here rather than truncated.

use std::fmt;

/// An argument that no shell or `exec` can carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteError {
    /// The argument list is empty: there is no program to run.
    Empty,
    /// Argument number `index` (0 = program) contains a NUL byte.
    Nul { index: usize },
}

impl fmt::Display for QuoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuoteError::Empty => write!(f, "empty argument list"),
            QuoteError::Nul { index } => write!(f, "argument {index} contains a NUL byte"),
        }
    }
}

impl std::error::Error for QuoteError {}

/// Checks that `argv` can be executed: not empty, no NUL byte anywhere.
pub fn check_argv(argv: &[String]) -> Result<(), QuoteError> {
    if argv.is_empty() {
        return Err(QuoteError::Empty);
    }
    match argv.iter().position(|a| a.contains('\0')) {
        Some(index) => Err(QuoteError::Nul { index }),
        None => Ok(()),
    }
}

/// Joins `argv` into one POSIX shell command line that the shell splits back
/// into exactly these words, with no expansion of any kind.
pub fn shell_join(argv: &[String]) -> Result<String, QuoteError> {
    check_argv(argv)?;
    let mut line = String::with_capacity(argv.iter().map(|a| a.len() + 3).sum());
    for (i, word) in argv.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        push_quoted(&mut line, word);
    }
    Ok(line)
}

/// Bare words stay readable in logs; anything else is single-quoted.
/// `=` is not in the set (a leading `NAME=` word is an assignment, and zsh
/// expands a leading `=`), nor are `~`, `#`, `^`, `!`, braces or globs.
fn is_safe(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:,+@%".contains(&b))
}

fn push_quoted(out: &mut String, word: &str) {
    if is_safe(word) {
        out.push_str(word);
        return;
    }
    // Inside single quotes every byte is literal except `'` itself, which is
    // written as: close quote, escaped quote, reopen quote.
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str(r"'\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(words: &[&str]) -> String {
        let argv: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        shell_join(&argv).expect("quotable")
    }

    /// Runs the joined line through a real `sh` that prints each word it
    /// received NUL-terminated, and checks they come back byte for byte.
    fn round_trip(words: &[&str]) {
        let mut argv = vec!["printf".to_string(), r"%s\0".to_string()];
        argv.extend(words.iter().map(|s| s.to_string()));
        let line = shell_join(&argv).expect("quotable");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "sh failed on {line:?}");
        let mut expected = Vec::new();
        for w in words {
            expected.extend_from_slice(w.as_bytes());
            expected.push(0);
        }
        assert_eq!(out.stdout, expected, "line was {line:?}");
    }

    #[test]
    fn safe_words_stay_bare() {
        assert_eq!(
            join(&["ss", "-ltn", "/etc/xfed/a.toml", "user@host:22"]),
            "ss -ltn /etc/xfed/a.toml user@host:22"
        );
    }

    #[test]
    fn unsafe_words_are_single_quoted() {
        assert_eq!(join(&["echo", "a b"]), "echo 'a b'");
        assert_eq!(join(&["echo", ""]), "echo ''");
        assert_eq!(join(&["echo", "it's"]), r"echo 'it'\''s'");
        assert_eq!(join(&["echo", "$(id)"]), "echo '$(id)'");
        assert_eq!(join(&["A=b", "c"]), "'A=b' c");
        assert_eq!(join(&["~root"]), "'~root'");
    }

    #[test]
    fn nasty_inputs_survive_a_real_shell() {
        round_trip(&[
            "",
            " ",
            "a b",
            "'",
            "''",
            "it's",
            "\"double\"",
            "back\\slash",
            "$(touch /tmp/xfed-quote-pwned)",
            "`id`",
            "$HOME",
            "${IFS}",
            "line1\nline2",
            "tab\there",
            "*",
            "?",
            "[a]",
            "~",
            "#comment",
            "a;b",
            "a|b",
            "a&b",
            "!",
            "{a,b}",
            "=x",
            "-n",
            "--",
            "üñí©ødé",
            "\u{1b}[31mred",
        ]);
        assert!(!std::path::Path::new("/tmp/xfed-quote-pwned").exists());
    }

    #[test]
    fn nul_and_empty_are_rejected() {
        assert_eq!(shell_join(&[]), Err(QuoteError::Empty));
        assert_eq!(
            shell_join(&["echo".into(), "a\0b".into()]),
            Err(QuoteError::Nul { index: 1 })
        );
    }
}

//! The organisation's dialback secrets, read from the files `[dialback]`
//! names. Read with the certificates, before anything is bound and on
//! every reload; a missing or empty file is a problem of its field. The
//! contents never appear in `Debug`, a message or a log line.

use super::key::{DialbackKey, KeyCheck};
use crate::config::{DialbackConfig, Problem};
use std::fmt;
use std::path::Path;

/// The current secret and, during a rotation, the previous one.
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("current", &"(masked)")
            .field("previous", &self.previous.as_ref().map(|_| "(masked)"))
            .finish()
    }
}

impl Secrets {
    /// Reads the files `config` names, or says which are unusable.
    pub fn load(config: &DialbackConfig) -> Result<Secrets, Vec<Problem>> {
        let mut problems = Vec::new();
        let current = read_secret(&config.secret_file, "dialback.secret_file", &mut problems);
        let previous = config
            .previous_secret_file
            .as_ref()
            .and_then(|path| read_secret(path, "dialback.previous_secret_file", &mut problems));
        match current {
            Some(current) if problems.is_empty() => Ok(Secrets { current, previous }),
            _ => Err(problems),
        }
    }

    /// Secrets given directly (tests, benchmarks, fuzzing).
    pub fn from_bytes(current: &[u8], previous: Option<&[u8]>) -> Secrets {
        Secrets {
            current: current.to_vec(),
            previous: previous.map(<[u8]>::to_vec),
        }
    }

    /// A new key, made with the current secret.
    pub fn issue(&self, key: &DialbackKey<'_>) -> String {
        key.make(&self.current)
    }

    /// Which secret, if any, made `presented` for `key`.
    pub fn check(&self, key: &DialbackKey<'_>, presented: &str) -> KeyCheck {
        if key.matches(&self.current, presented) {
            KeyCheck::Current
        } else if self
            .previous
            .as_ref()
            .is_some_and(|p| key.matches(p, presented))
        {
            KeyCheck::Previous
        } else {
            KeyCheck::Invalid
        }
    }
}

/// The file's first line, trimmed; a problem of `field` when it cannot be
/// read or is empty. The message names the path, never the contents.
fn read_secret(path: &Path, field: &str, out: &mut Vec<Problem>) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
            let line = line.trim_ascii();
            if line.is_empty() {
                out.push(
                    Problem::new(field, format!("`{}` is empty", path.display()))
                        .hint("write the organisation's dialback secret on its first line"),
                );
                return None;
            }
            Some(line.to_vec())
        }
        Err(e) => {
            out.push(
                Problem::new(field, format!("cannot read `{}`: {e}", path.display())).hint(
                    "xfed renders it from gateway.dialback in the spec; deploy it or fix the path",
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, current: &str, previous: Option<&str>) -> DialbackConfig {
        let c = dir.join("current");
        std::fs::write(&c, current).expect("test setup");
        let p = previous.map(|text| {
            let p = dir.join("previous");
            std::fs::write(&p, text).expect("test setup");
            p
        });
        DialbackConfig {
            secret_file: c,
            previous_secret_file: p,
        }
    }

    const KEY: DialbackKey<'static> = DialbackKey {
        receiving: "fabrikam.example",
        originating: "contoso.example",
        stream_id: "abc",
    };

    #[test]
    fn rotation_accepts_both_and_issues_with_current() {
        let dir = tempfile::tempdir().expect("test setup");
        let s = Secrets::load(&config(dir.path(), "new\n", Some("old"))).expect("test setup");
        let old = Secrets::from_bytes(b"old", None).issue(&KEY);
        assert_eq!(s.check(&KEY, &s.issue(&KEY)), KeyCheck::Current);
        assert_eq!(s.check(&KEY, &old), KeyCheck::Previous);
        assert_eq!(s.check(&KEY, "00"), KeyCheck::Invalid);
        let s = Secrets::load(&config(dir.path(), "new", None)).expect("test setup");
        assert_eq!(s.check(&KEY, &old), KeyCheck::Invalid);
        assert!(!format!("{s:?}").contains("new"));
    }

    #[test]
    fn empty_or_missing_file_names_the_field_not_the_contents() {
        let dir = tempfile::tempdir().expect("test setup");
        let problems = Secrets::load(&config(dir.path(), " \n", None)).expect_err("refused");
        assert_eq!(problems[0].field, "dialback.secret_file");
        let mut c = config(dir.path(), "topsecret", None);
        c.previous_secret_file = Some(dir.path().join("absent"));
        let problems = Secrets::load(&c).expect_err("refused");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "dialback.previous_secret_file");
        assert!(!format!("{problems:?}").contains("topsecret"));
    }
}

//! Secrets: values that must never reach output, logs or plan files.
//!
//! A spec brings secrets in only through `env("NAME")` and `file("PATH")`.
//! They travel as [`Secret`], whose `Debug`, `Display` and `Serialize` all
//! print `(sensitive)`, and every secret value is also registered with the
//! run's [`Redactor`], which scrubs any text on its way out (a secret that
//! ended up inside a rendered config file or an error from a remote command
//! is masked all the same).

use std::fmt;
use std::sync::{Arc, RwLock};

pub const MASK: &str = "(sensitive)";

/// A secret value. Only [`Secret::expose`] gives the value back.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that needs it (an HTTP header, a
    /// file written on a host). Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

/// Every secret value known to this run; scrubs them out of text.
#[derive(Clone, Default)]
pub struct Redactor {
    values: Arc<RwLock<Vec<String>>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.values.read().map(|v| v.len()).unwrap_or(0);
        write!(f, "Redactor({n} secrets)")
    }
}

impl Redactor {
    /// Registers a secret. Values shorter than 4 characters are not
    /// registered: masking every "a" or "1" in output would hide more than
    /// it protects, and such values are no secrets anyway.
    pub fn add(&self, value: &str) {
        let mut parts: Vec<&str> = vec![value];
        // A multi-line secret (a PEM key) may be printed one line at a time.
        parts.extend(value.lines().map(str::trim).filter(|l| l.len() >= 16));
        if let Ok(mut values) = self.values.write() {
            for p in parts {
                if p.len() >= 4 && !values.iter().any(|v| v == p) {
                    values.push(p.to_string());
                }
            }
            // Longest first, so a secret containing another is masked whole.
            values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    pub fn contains_secret(&self, text: &str) -> bool {
        self.values
            .read()
            .map(|v| v.iter().any(|s| text.contains(s.as_str())))
            .unwrap_or(false)
    }

    /// `text` with every known secret replaced by `(sensitive)`.
    pub fn redact(&self, text: &str) -> String {
        let Ok(values) = self.values.read() else {
            return text.to_string();
        };
        let mut out = text.to_string();
        for v in values.iter() {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("hunter2-api-key");
        assert_eq!(format!("{s} {s:?}"), "(sensitive) (sensitive)");
        assert_eq!(
            serde_json::to_string(&s).unwrap_or_default(),
            "\"(sensitive)\""
        );
        assert_eq!(s.expose(), "hunter2-api-key");
    }

    #[test]
    fn redactor_masks_whole_values_and_long_lines_of_multiline_ones() {
        let r = Redactor::default();
        r.add("key-123456");
        r.add("-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----");
        assert_eq!(r.redact("api key-123456 used"), "api (sensitive) used");
        assert_eq!(
            r.redact("line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
            "line: (sensitive)"
        );
        assert!(r.contains_secret("xx key-123456"));
        assert!(!r.contains_secret("nothing"));
    }
}

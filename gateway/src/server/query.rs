//! The query string of an admin request, percent-decoded.
//!
//! Owns RFC 3986 percent-decoding: `%XX` is the byte XX, anything else is
//! itself. `+` stays `+` (it is a space only in HTML form encoding, and it
//! is a legal character of a JID's localpart), so a space must be written
//! `%20`. A bad escape or bytes that are not UTF-8 are refused rather than
//! guessed at.

/// Why a query string cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// `%` not followed by two hex digits.
    #[error("`{escape}` is not a percent-escape (expected `%` and two hex digits)")]
    BadEscape {
        /// The offending text, up to three characters.
        escape: String,
    },
    /// The decoded bytes are not UTF-8.
    #[error("`{raw}` does not decode to UTF-8")]
    NotUtf8 {
        /// The parameter as sent.
        raw: String,
    },
}

/// `key=value` pairs of `query` (the part after `?`), decoded, in order.
/// A pair without `=` has an empty value; empty pairs (`a=1&&b=2`) are skipped.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, QueryError> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(key)?, percent_decode(value)?))
        })
        .collect()
}

/// Decodes `%XX` escapes.
pub fn percent_decode(raw: &str) -> Result<String, QueryError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let byte = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        let Some(byte) = byte else {
            return Err(QueryError::BadEscape {
                escape: raw[i..].chars().take(3).collect(),
            });
        };
        out.push(byte);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| QueryError::NotUtf8 {
        raw: raw.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes_only() {
        assert_eq!(
            percent_decode("alice%40contoso.example").as_deref(),
            Ok("alice@contoso.example")
        );
        assert_eq!(percent_decode("a%2Fb%2fc").as_deref(), Ok("a/b/c"));
        assert_eq!(percent_decode("a+b").as_deref(), Ok("a+b"));
        assert_eq!(percent_decode("a%20b").as_deref(), Ok("a b"));
        assert_eq!(percent_decode("%C3%BCnal").as_deref(), Ok("ünal"));
        assert_eq!(percent_decode("ünal").as_deref(), Ok("ünal"));
        assert_eq!(percent_decode("%25").as_deref(), Ok("%"));
        assert_eq!(percent_decode("").as_deref(), Ok(""));
    }

    #[test]
    fn refuses_bad_escapes_and_non_utf8() {
        for (raw, escape) in [
            ("a%4", "%4"),
            ("a%", "%"),
            ("%zz", "%zz"),
            ("%4g1", "%4g"),
            ("%ü", "%ü"),
        ] {
            assert_eq!(
                percent_decode(raw),
                Err(QueryError::BadEscape {
                    escape: escape.to_string()
                }),
                "{raw}"
            );
        }
        assert!(matches!(
            percent_decode("%ff"),
            Err(QueryError::NotUtf8 { .. })
        ));
    }

    #[test]
    fn splits_pairs_in_order() {
        assert_eq!(
            parse_query("user=alice%40contoso.example&x&&y=%3D"),
            Ok(vec![
                ("user".to_string(), "alice@contoso.example".to_string()),
                ("x".to_string(), String::new()),
                ("y".to_string(), "=".to_string()),
            ])
        );
        assert_eq!(parse_query(""), Ok(vec![]));
    }
}

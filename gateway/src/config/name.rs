//! Names of sites and policies: the one rule both sides of the contract
//! use (xfed checks its spec with it before it renders the policy file).
//!
//! A name is 1 to 64 letters or digits (of any script), `-`, `_` or `.`.
//! It is compared exactly. Narrow on purpose: a name travels into the
//! policy file, `/access` and `/status` answers, log lines and metric
//! labels, and a name that needs no escaping in any of them cannot break
//! one. It checks syntax only; which sites exist is checked by the caller.

/// Longest name, in characters.
const MAX_NAME_CHARS: usize = 64;

/// Why `raw` is not a site or policy name, or `Ok`; `what` names the
/// thing in the message (`site name`, `policy name`).
pub fn check_name(raw: &str, what: &str) -> Result<(), String> {
    let shown = raw.escape_debug();
    if raw.is_empty() {
        return Err(format!("is empty; a {what} is required"));
    }
    if raw.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "`{shown}` is not a {what}: longer than {MAX_NAME_CHARS} characters"
        ));
    }
    if let Some(c) = raw
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "`{shown}` is not a {what}: {} is not allowed (letters, digits, `-`, `_` and `.` are)",
            describe(c)
        ));
    }
    Ok(())
}

/// A character as a person reads it in a message.
fn describe(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        '\n' | '\r' => "a line break".to_string(),
        '\t' => "a tab".to_string(),
        c if c.is_control() || c.is_whitespace() => format!("U+{:04X}", u32::from(c)),
        c => format!("`{c}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn letters_digits_and_three_marks_of_any_script() {
        for ok in ["hq", "FedPic", "site-2.eu_west", "Dublin", "東京", "Zürich"] {
            assert_eq!(check_name(ok, "site name"), Ok(()), "{ok}");
        }
    }

    #[test]
    fn what_needs_escaping_anywhere_is_refused() {
        let cases = [
            ("", "is empty; a site name is required"),
            (
                "du blin",
                "`du blin` is not a site name: a space is not allowed (letters, digits, `-`, `_` and `.` are)",
            ),
            (
                "h\"q",
                "`h\\\"q` is not a site name: `\"` is not allowed (letters, digits, `-`, `_` and `.` are)",
            ),
            (
                "Fed\nPic",
                "`Fed\\nPic` is not a site name: a line break is not allowed (letters, digits, `-`, `_` and `.` are)",
            ),
            (
                "a:b",
                "`a:b` is not a site name: `:` is not allowed (letters, digits, `-`, `_` and `.` are)",
            ),
            (
                "a\u{7f}",
                "`a\\u{7f}` is not a site name: U+007F is not allowed (letters, digits, `-`, `_` and `.` are)",
            ),
        ];
        for (raw, message) in cases {
            assert_eq!(
                check_name(raw, "site name"),
                Err(message.to_string()),
                "{raw:?}"
            );
        }
        assert!(check_name(&"a".repeat(65), "site name").is_err());
        assert!(check_name(&"a".repeat(64), "site name").is_ok());
    }
}

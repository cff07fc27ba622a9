//! The `toml` template filter: a value as a TOML value, escaped by a TOML
//! serializer, for every value a TOML template writes.
//!
//! Why not `tojson`: a TOML basic string takes JSON's `\"`, `\\`, `\n` and
//! `\uXXXX` escapes, but JSON leaves U+007F (DEL) raw, which TOML forbids
//! in a string, and JSON has `null`, which TOML has not. Serializing with
//! the TOML writer leaves nothing to get right by hand; a value TOML
//! cannot hold (null) is a template error, not a broken file.

use minijinja::{Error, ErrorKind, Value};
use serde::Serialize;

/// `{{ x | toml }}`: `x` as a TOML value (string, integer, boolean,
/// array or inline table).
pub fn toml(value: &Value) -> Result<Value, Error> {
    let mut out = String::new();
    value
        .serialize(toml::ser::ValueSerializer::new(&mut out))
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("cannot write {value:?} as a TOML value: {e}"),
            )
        })?;
    Ok(Value::from_safe_string(out))
}

#[cfg(test)]
mod tests {
    use super::toml;
    use minijinja::Value;

    /// Each hostile string round-trips through a TOML document unchanged.
    #[test]
    fn strings_survive_a_toml_document() {
        let hostile = [
            "Fed\"Pic\nx = 1",
            "back\\slash",
            "tab\there",
            "del\u{7f}and\u{0}nul\u{1b}esc",
            "'single' and \"\"\"triple\"\"\"",
            "Zürich 東京 🎉",
            "line\r\nbreaks\u{2028}",
            "]] [[sites]] # not a table",
        ];
        for s in hostile {
            let v = toml(&Value::from(s)).expect("serializes");
            let doc = format!("key = {v}\n");
            let table: ::toml::Table =
                ::toml::from_str(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(table["key"].as_str(), Some(s), "{doc}");
            assert_eq!(table.len(), 1);
        }
    }

    #[test]
    fn lists_and_booleans_are_inline_values_and_null_is_refused() {
        let v = toml(&Value::from(vec!["a\"b", "c"])).expect("list");
        let table: ::toml::Table = ::toml::from_str(&format!("k = {v}")).expect("toml");
        assert_eq!(table["k"].as_array().map(Vec::len), Some(2));
        assert_eq!(toml(&Value::from(true)).expect("bool").to_string(), "true");
        assert!(toml(&Value::from(())).is_err());
    }
}

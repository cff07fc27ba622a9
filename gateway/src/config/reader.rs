//! Typed reading of a TOML table with field paths, for validation messages.
//!
//! Owns: "is this key present, of the right type, in range, and is every
//! key known". It records problems instead of stopping at the first, and
//! suggests the nearest known key for a misspelt one. It knows nothing of
//! the gateway's fields; `config/mod.rs` and the section files do.

use super::problem::Problem;
use toml::{Table, Value};

/// A TOML table being read, with the dotted path that names it.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    path: String,
    table: &'a Table,
    known: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(path: impl Into<String>, table: &'a Table) -> Fields<'a> {
        Fields {
            path: path.into(),
            table,
            known: Vec::new(),
        }
    }

    /// The dotted path of `key` in this table. A path ending in `:` is a
    /// file prefix (`policy_file:`) and takes the key without a dot.
    pub(crate) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() || self.path.ends_with(':') {
            format!("{}{key}", self.path)
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.table.get(key)
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &Value, out: &mut Vec<Problem>) {
        out.push(Problem::new(
            self.path_of(key),
            format!("expected {expected}, found {}", describe(found)),
        ));
    }

    /// Whether `key` is present (it then counts as known).
    pub(crate) fn present(&mut self, key: &'static str) -> bool {
        self.get(key).is_some()
    }

    /// An optional string.
    pub(crate) fn string(&mut self, key: &'static str, out: &mut Vec<Problem>) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong_type(key, "a string", other, out);
                None
            }
        }
    }

    /// A string that must be present.
    pub(crate) fn required_string(
        &mut self,
        key: &'static str,
        out: &mut Vec<Problem>,
    ) -> Option<String> {
        if !self.table.contains_key(key) {
            self.known.push(key);
            out.push(Problem::new(self.path_of(key), "is required"));
            return None;
        }
        self.string(key, out)
    }

    /// An optional boolean.
    pub(crate) fn bool(&mut self, key: &'static str, out: &mut Vec<Problem>) -> Option<bool> {
        match self.get(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(key, "true or false", other, out);
                None
            }
        }
    }

    /// An optional integer in `min..=max`.
    pub(crate) fn integer(
        &mut self,
        key: &'static str,
        min: u64,
        max: u64,
        out: &mut Vec<Problem>,
    ) -> Option<u64> {
        match self.get(key)? {
            Value::Integer(i) => match u64::try_from(*i) {
                Ok(v) if (min..=max).contains(&v) => Some(v),
                _ => {
                    out.push(Problem::new(
                        self.path_of(key),
                        format!("expected an integer from {min} to {max}, found {i}"),
                    ));
                    None
                }
            },
            other => {
                self.wrong_type(key, &format!("an integer from {min} to {max}"), other, out);
                None
            }
        }
    }

    /// An optional list of strings.
    pub(crate) fn string_list(
        &mut self,
        key: &'static str,
        out: &mut Vec<Problem>,
    ) -> Option<Vec<String>> {
        let value = self.get(key)?;
        let Value::Array(items) = value else {
            self.wrong_type(key, "a list of strings", value, out);
            return None;
        };
        let mut strings = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => strings.push(s.clone()),
                other => out.push(Problem::new(
                    format!("{}[{i}]", self.path_of(key)),
                    format!("expected a string, found {}", describe(other)),
                )),
            }
        }
        Some(strings)
    }

    /// An optional sub-table (`[section]`).
    pub(crate) fn table(
        &mut self,
        key: &'static str,
        out: &mut Vec<Problem>,
    ) -> Option<Fields<'a>> {
        match self.get(key)? {
            Value::Table(t) => Some(Fields::new(self.path_of(key), t)),
            other => {
                self.wrong_type(key, "a table", other, out);
                None
            }
        }
    }

    /// An optional array of tables (`[[section]]`); missing means empty.
    pub(crate) fn tables(&mut self, key: &'static str, out: &mut Vec<Problem>) -> Vec<Fields<'a>> {
        let Some(value) = self.get(key) else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.wrong_type(key, "an array of tables ([[...]])", value, out);
            return Vec::new();
        };
        let mut tables = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::Table(t) => {
                    tables.push(Fields::new(format!("{}[{i}]", self.path_of(key)), t))
                }
                other => out.push(Problem::new(
                    format!("{}[{i}]", self.path_of(key)),
                    format!("expected a table, found {}", describe(other)),
                )),
            }
        }
        tables
    }

    /// Reports every key that no reader asked for, with the nearest known name.
    pub(crate) fn finish(self, out: &mut Vec<Problem>) {
        for key in self.table.keys() {
            if self.known.contains(&key.as_str()) {
                continue;
            }
            let mut problem = Problem::new(self.path_of(key), "unknown field");
            if let Some(near) = nearest(key, &self.known) {
                problem = problem.hint(format!("did you mean `{}`?", self.path_of(near)));
            } else {
                let mut known = self.known.clone();
                known.sort_unstable();
                known.dedup();
                problem = problem.hint(format!("known fields here: {}", known.join(", ")));
            }
            out.push(problem);
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(x) => format!("the number {x}"),
        Value::Boolean(b) => format!("{b}"),
        Value::Datetime(d) => format!("the date {d}"),
        Value::Array(_) => "a list".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

/// The known key closest to `key` by edit distance, if it is close enough to be a typo.
fn nearest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(
            nearest("max_stanza_byte", &["max_stanza_bytes", "max_depth"]),
            Some("max_stanza_bytes")
        );
        assert_eq!(nearest("colour", &["max_stanza_bytes", "max_depth"]), None);
    }
}

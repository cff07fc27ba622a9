//! The spec's source text and an index from field paths to positions.
//!
//! serde only reports the position of the first type error, and the resolved
//! model has no positions at all, so every later check would otherwise be
//! unable to point into the YAML. This walks the document once with a YAML
//! event parser and remembers where each field path (`sites[0].xmpp_route`,
//! the notation serde_yaml uses too) starts. It does no I/O: the caller reads
//! the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column in the spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, col: 1 };
}

/// Where a field path appears: the key (for "unknown field" and "missing
/// field") and the value (for "this value is wrong").
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Option<Pos>,
    value: Pos,
}

/// One spec file: its path, its text and the position index.
#[derive(Debug, Clone)]
pub struct Source {
    path: PathBuf,
    text: String,
    index: HashMap<String, Entry>,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Source {
        let text = text.into();
        let mut builder = IndexBuilder::default();
        // A syntax error leaves the index partial; serde reports the error itself.
        let _ = Parser::new_from_str(&text).load(&mut builder, false);
        Source {
            path: path.into(),
            text,
            index: builder.index,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The 1-based line `n` without its line break.
    pub fn line(&self, n: usize) -> Option<&str> {
        self.text.lines().nth(n.checked_sub(1)?)
    }

    /// Position of the value at `path`, falling back to the nearest ancestor
    /// that exists (a missing field points at the mapping that lacks it).
    pub fn value_pos(&self, path: &str) -> Pos {
        self.lookup(path, |e| e.value)
    }

    /// Position of the key at `path` (the value when it has no key, e.g. a
    /// sequence element), with the same fallback.
    pub fn key_pos(&self, path: &str) -> Pos {
        self.lookup(path, |e| e.key.unwrap_or(e.value))
    }

    pub fn has(&self, path: &str) -> bool {
        self.index.contains_key(path)
    }

    fn lookup(&self, path: &str, pick: impl Fn(&Entry) -> Pos) -> Pos {
        let mut p = path;
        loop {
            if let Some(e) = self.index.get(p) {
                return pick(e);
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.index.get("").map(|e| e.value).unwrap_or(Pos::START),
            }
        }
    }
}

#[derive(Debug)]
enum Frame {
    Map {
        key: Option<String>,
        expect_key: bool,
    },
    Seq {
        index: usize,
    },
}

#[derive(Default)]
struct IndexBuilder {
    stack: Vec<Frame>,
    index: HashMap<String, Entry>,
}

impl IndexBuilder {
    fn path(&self) -> String {
        self.stack_path(self.stack.len())
    }

    /// The path made of the first `depth` frames.
    fn stack_path(&self, depth: usize) -> String {
        let mut out = String::new();
        for frame in &self.stack[..depth] {
            match frame {
                Frame::Map { key: Some(k), .. } => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Frame::Map { key: None, .. } => {}
                Frame::Seq { index } => {
                    out.push('[');
                    out.push_str(&index.to_string());
                    out.push(']');
                }
            }
        }
        out
    }

    fn value_at(&mut self, mark: Marker) {
        let pos = to_pos(mark);
        let path = self.path();
        self.index
            .entry(path)
            .and_modify(|e| e.value = pos)
            .or_insert(Entry {
                key: None,
                value: pos,
            });
    }

    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { expect_key, .. }) => *expect_key = true,
            Some(Frame::Seq { index }) => *index += 1,
            None => {}
        }
    }
}

fn to_pos(mark: Marker) -> Pos {
    Pos {
        line: mark.line(),
        col: mark.col() + 1,
    }
}

impl MarkedEventReceiver for IndexBuilder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map { key, expect_key }) = self.stack.last_mut()
                    && *expect_key
                {
                    let first_key = key.is_none();
                    *key = Some(value);
                    *expect_key = false;
                    if first_key {
                        // yaml-rust2 marks a block mapping's start after its
                        // first key; the mapping starts at that key.
                        let map_path = self.stack_path(self.stack.len() - 1);
                        if let Some(e) = self.index.get_mut(&map_path) {
                            e.value = e.value.min(to_pos(mark));
                        }
                    }
                    let path = self.path();
                    self.index.insert(
                        path,
                        Entry {
                            key: Some(to_pos(mark)),
                            value: to_pos(mark),
                        },
                    );
                } else {
                    self.value_at(mark);
                    self.value_done();
                }
            }
            Event::MappingStart(..) => {
                self.value_at(mark);
                self.stack.push(Frame::Map {
                    key: None,
                    expect_key: true,
                });
            }
            Event::SequenceStart(..) => {
                self.value_at(mark);
                self.stack.push(Frame::Seq { index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            Event::Alias(_) => {
                self.value_at(mark);
                self.value_done();
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "version: 1\nsites:\n  - name: hq\n    xmpp_route: edge-hq\n  - name: dr\nlist: [a, b]\n";

    #[test]
    fn indexes_keys_and_values_by_serde_path() {
        let s = Source::new("t.yaml", DOC);
        assert_eq!(s.value_pos("version"), Pos { line: 1, col: 10 });
        assert_eq!(s.key_pos("sites[0].xmpp_route"), Pos { line: 4, col: 5 });
        assert_eq!(s.value_pos("sites[0].xmpp_route"), Pos { line: 4, col: 17 });
        assert_eq!(s.value_pos("sites[1].name"), Pos { line: 5, col: 11 });
        assert_eq!(s.value_pos("list[1]"), Pos { line: 6, col: 11 });
    }

    #[test]
    fn missing_paths_fall_back_to_the_nearest_ancestor() {
        let s = Source::new("t.yaml", DOC);
        assert_eq!(
            s.value_pos("sites[1].frontend_pool"),
            Pos { line: 5, col: 5 }
        );
        assert_eq!(s.value_pos("nothing.here"), Pos { line: 1, col: 1 });
    }
}

//! `LibcMismatch`: whether the gateway built on this machine can start on
//! the edge servers' C library, decided before anything changes.
//!
//! A binary linked against glibc records, in its ELF version-needed section
//! (`.gnu.version_r`), the symbol versions it needs (`GLIBC_2.34`, …); the
//! dynamic loader refuses to start it on a glibc older than the newest of
//! them ("`GLIBC_2.34` not found"). Built on a newer controller than the
//! edge, the gateway would fail at its first start, behind the health gate.
//! So the newest version the binary needs is read here (with `object`, no
//! external tool), each edge's glibc is read by the facts script, and
//! [`check`] — pure — refuses the plan naming every host that falls short.
//! This module reads the binary and decides; it connects to nothing.

use std::fmt;
use std::path::Path;

use object::read::elf::{FileHeader, SectionTable};
use object::{FileKind, ReadCache, ReadRef, elf};

use crate::transport::GlibcVersion;

/// The edge servers that cannot run the gateway built here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibcMismatch {
    /// The newest glibc the binary needs.
    pub needs: GlibcVersion,
    /// The built binary, for messages.
    pub binary: String,
    /// Each unfit host with its glibc (`None`: no glibc found).
    pub hosts: Vec<(String, Option<GlibcVersion>)>,
}

impl fmt::Display for LibcMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.hosts.len();
        writeln!(
            f,
            "the gateway built here (`{}`) needs glibc {} or newer, which {} edge server{} lack{}; nothing was changed:",
            self.binary,
            self.needs,
            n,
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" },
        )?;
        for (host, has) in &self.hosts {
            match has {
                Some(v) => writeln!(
                    f,
                    "  {host}: glibc {v}, older than the {} the gateway needs",
                    self.needs
                )?,
                None => writeln!(
                    f,
                    "  {host}: unknown C library (`getconf GNU_LIBC_VERSION` named no glibc: musl or another C library), the gateway needs glibc {}",
                    self.needs
                )?,
            }
        }
        let oldest = self.hosts.iter().filter_map(|(_, v)| *v).min();
        match oldest {
            Some(v) => write!(
                f,
                "hint: build on a machine whose glibc is {v} or older (the distribution of the oldest edge server, e.g. in a container of it), or upgrade the edge servers' distribution"
            ),
            None => write!(
                f,
                "hint: run the edge servers on a glibc distribution, or build on a machine whose glibc is no newer than the edge's"
            ),
        }
    }
}

impl std::error::Error for LibcMismatch {}

/// The decision: every edge server whose glibc is older than `needs`, or
/// that has none. A binary that needs no glibc (`needs` is `None`: static,
/// or another C library) runs anywhere its architecture does.
pub fn check(
    needs: Option<GlibcVersion>,
    binary: &str,
    edges: &[(String, Option<GlibcVersion>)],
) -> Result<(), LibcMismatch> {
    let Some(needs) = needs else {
        return Ok(());
    };
    let hosts: Vec<(String, Option<GlibcVersion>)> = edges
        .iter()
        .filter(|(_, has)| has.is_none_or(|v| v < needs))
        .cloned()
        .collect();
    if hosts.is_empty() {
        Ok(())
    } else {
        Err(LibcMismatch {
            needs,
            binary: binary.to_string(),
            hosts,
        })
    }
}

/// The newest glibc the ELF file at `path` needs; `None` when it needs no
/// glibc symbol version at all. Only the headers and the two sections
/// involved are read, not the whole binary.
pub fn glibc_needed_by(path: &Path) -> Result<Option<GlibcVersion>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let cache = ReadCache::new(file);
    glibc_needed(&cache)
}

/// [`glibc_needed_by`] on an ELF file's bytes (32 or 64 bits, either byte
/// order).
pub fn glibc_needed<'data, R: ReadRef<'data>>(data: R) -> Result<Option<GlibcVersion>, String> {
    match FileKind::parse(data).map_err(|e| e.to_string())? {
        FileKind::Elf64 => newest::<elf::FileHeader64<object::Endianness>, R>(data),
        FileKind::Elf32 => newest::<elf::FileHeader32<object::Endianness>, R>(data),
        other => Err(format!("not an ELF file ({other:?})")),
    }
}

fn newest<'data, Elf: FileHeader<Endian = object::Endianness>, R: ReadRef<'data>>(
    data: R,
) -> Result<Option<GlibcVersion>, String> {
    let e = |e: object::Error| e.to_string();
    let header = Elf::parse(data).map_err(e)?;
    let endian = header.endian().map_err(e)?;
    let sections: SectionTable<'data, Elf, R> = header.sections(endian, data).map_err(e)?;
    let Some((mut needed, link)) = sections.gnu_verneed(endian, data).map_err(e)? else {
        return Ok(None);
    };
    let strings = sections.strings(endian, data, link).map_err(e)?;
    let mut newest = None;
    while let Some((_file, mut versions)) = needed.next().map_err(e)? {
        while let Some(aux) = versions.next().map_err(e)? {
            let name = aux.name(endian, strings).map_err(e)?;
            let v = std::str::from_utf8(name)
                .ok()
                .and_then(GlibcVersion::from_symbol_version);
            newest = newest.max(v);
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32) -> Option<GlibcVersion> {
        Some(GlibcVersion::new(major, minor))
    }

    fn edges(list: &[(&str, Option<GlibcVersion>)]) -> Vec<(String, Option<GlibcVersion>)> {
        list.iter().map(|(h, v)| (h.to_string(), *v)).collect()
    }

    #[test]
    fn an_edge_as_new_or_newer_runs_the_gateway() {
        let e = edges(&[("edge1", v(2, 36)), ("edge2", v(2, 39))]);
        assert_eq!(check(v(2, 34), "gw", &e), Ok(()));
        assert_eq!(check(v(2, 36), "gw", &e), Ok(()));
    }

    #[test]
    fn versions_are_compared_as_numbers_not_text() {
        // As text, "2.9" > "2.36"; as glibc releases it is older.
        let e = edges(&[("edge1", v(2, 9))]);
        let refused = check(v(2, 36), "gw", &e).expect_err("2.9 < 2.36");
        assert_eq!(refused.hosts, e);
        assert_eq!(check(v(2, 9), "gw", &edges(&[("edge1", v(2, 36))])), Ok(()));
    }

    #[test]
    fn an_older_or_unknown_libc_is_refused_naming_every_such_host() {
        let e = edges(&[("edge1", v(2, 36)), ("edge2", v(2, 31)), ("edge3", None)]);
        let refused =
            check(v(2, 34), "target/gateway/release/xfed-gateway", &e).expect_err("refused");
        assert_eq!(
            refused.hosts,
            edges(&[("edge2", v(2, 31)), ("edge3", None)])
        );
        let text = refused.to_string();
        assert!(
            text.contains("needs glibc 2.34 or newer, which 2 edge servers lack"),
            "{text}"
        );
        assert!(
            text.contains("edge2: glibc 2.31, older than the 2.34"),
            "{text}"
        );
        assert!(text.contains("edge3: unknown C library"), "{text}");
        assert!(
            text.contains("hint: build on a machine whose glibc is 2.31 or older"),
            "{text}"
        );
        assert!(!text.contains("edge1"), "{text}");
    }

    #[test]
    fn a_binary_that_needs_no_glibc_runs_anywhere() {
        let e = edges(&[("edge1", None), ("edge2", v(2, 17))]);
        assert_eq!(check(None, "gw", &e), Ok(()));
    }

    #[test]
    fn reads_the_newest_glibc_this_test_binary_needs() {
        // The test binary itself is a glibc-linked ELF file of this
        // machine: it needs some GLIBC_2.x, and no newer glibc than the one
        // it runs on.
        let me = std::env::current_exe().expect("current exe");
        let needs = glibc_needed_by(&me).expect("reads").expect("needs glibc");
        assert!(needs >= GlibcVersion::new(2, 2), "{needs}");
        let local = std::process::Command::new("getconf")
            .arg("GNU_LIBC_VERSION")
            .output()
            .expect("getconf");
        let local = GlibcVersion::from_getconf(&String::from_utf8_lossy(&local.stdout))
            .expect("this machine has glibc");
        assert!(needs <= local, "{needs} > {local}");
        // Independently: the newest `GLIBC_x.y` string in the file (the
        // version names sit in its dynamic string table).
        let bytes = std::fs::read(&me).expect("read");
        let mut newest = None;
        for at in 0..bytes.len().saturating_sub(6) {
            if bytes[at..].starts_with(b"GLIBC_2.") {
                let tail = &bytes[at + 6..];
                let end = tail
                    .iter()
                    .position(|b| !(b.is_ascii_digit() || *b == b'.'))
                    .unwrap_or(tail.len());
                let text = String::from_utf8_lossy(&tail[..end]);
                newest = newest.max(GlibcVersion::parse(text.trim_end_matches('.')));
            }
        }
        assert_eq!(Some(needs), newest);
    }

    #[test]
    fn not_an_elf_file_is_an_error() {
        assert!(glibc_needed(&b"#!/bin/sh\necho hi\n"[..]).is_err());
        assert!(glibc_needed(&[][..]).is_err());
    }
}

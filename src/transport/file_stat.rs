//! `FileStat`: what the engine needs to know about a path to decide whether
//! a file resource is up to date (kind, mode, owner, size, content hash).
//!
//! It describes the path itself (lstat): a symlink is reported as a symlink,
//! because `write_file` would replace the link, not its target. Parsing the
//! output of the stat script lives here, next to the type it produces.

/// File type of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// Metadata and content hash of an existing path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    pub kind: FileKind,
    /// Permission bits (0o7777 part of st_mode).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// User name, `None` when the uid has no name on the host.
    pub owner: Option<String>,
    /// Group name, `None` when the gid has no name on the host.
    pub group: Option<String>,
    pub size: u64,
    /// Lowercase hex SHA-256 of the content; regular files only.
    pub sha256: Option<String>,
}

impl FileStat {
    /// Parses `stat -c '%f %u %g %s %U %G'` on the first line, then for a
    /// regular file the `sha256sum` line (`<64 hex>  -`).
    pub(crate) fn parse(text: &str) -> Result<FileStat, String> {
        let mut lines = text.lines();
        let first = lines.next().ok_or("no stat line")?;
        let fields: Vec<&str> = first.split_whitespace().collect();
        let [raw_mode, uid, gid, size, owner, group] = fields[..] else {
            return Err(format!("stat line has {} fields, expected 6", fields.len()));
        };
        let raw_mode = u32::from_str_radix(raw_mode, 16)
            .map_err(|_| format!("mode `{raw_mode}` is not hex"))?;
        let kind = match raw_mode & 0o170000 {
            0o100000 => FileKind::File,
            0o040000 => FileKind::Dir,
            0o120000 => FileKind::Symlink,
            _ => FileKind::Other,
        };
        let num = |s: &str, what: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("{what} `{s}` is not a number"))
        };
        let name = |s: &str| (s != "UNKNOWN").then(|| s.to_string());
        let sha256 = if kind == FileKind::File {
            let line = lines.next().ok_or("no sha256sum line for a regular file")?;
            let hash = line.split_whitespace().next().unwrap_or("");
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("sha256sum line does not start with a 64-digit hex hash".into());
            }
            Some(hash.to_ascii_lowercase())
        } else {
            None
        };
        Ok(FileStat {
            kind,
            mode: raw_mode & 0o7777,
            uid: u32::try_from(num(uid, "uid")?).map_err(|_| "uid out of range")?,
            gid: u32::try_from(num(gid, "gid")?).map_err(|_| "gid out of range")?,
            owner: name(owner),
            group: name(group),
            size: num(size, "size")?,
            sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_regular_file() {
        let s = FileStat::parse(
            "81a4 0 0 5 root root\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  -\n",
        )
        .expect("parses");
        assert_eq!(s.kind, FileKind::File);
        assert_eq!(s.mode, 0o644);
        assert_eq!((s.uid, s.gid, s.size), (0, 0, 5));
        assert_eq!(s.owner.as_deref(), Some("root"));
        assert_eq!(
            s.sha256.as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    #[test]
    fn parses_dir_symlink_and_unknown_owner() {
        let d = FileStat::parse("41ed 1000 1000 4096 UNKNOWN UNKNOWN\n").expect("dir");
        assert_eq!(
            (d.kind, d.mode, d.owner, d.sha256),
            (FileKind::Dir, 0o755, None, None)
        );
        let l = FileStat::parse("a1ff 0 0 7 root root\n").expect("link");
        assert_eq!(l.kind, FileKind::Symlink);
        let s = FileStat::parse("8fed 0 0 1 root root\n");
        assert!(s.is_err(), "regular file without hash line must fail");
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "x", "zz 0 0 1 a b", "81a4 0 0 1 a b\nnot-a-hash  -"] {
            assert!(FileStat::parse(bad).is_err(), "{bad:?}");
        }
    }
}

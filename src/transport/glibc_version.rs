//! `GlibcVersion`: a GNU C library version (`2.36`, `2.2.5`), as a host
//! reports it (`getconf GNU_LIBC_VERSION` prints `glibc 2.36`) and as an
//! ELF binary asks for it (the symbol version `GLIBC_2.34`).
//!
//! Compared numerically, part by part (2.9 < 2.36), never as text. Reads
//! nothing itself: the facts script runs `getconf`, the engine reads the
//! binary.

use std::fmt;

/// `major.minor[.patch]`; a missing patch is 0, so `2.36` = `2.36.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GlibcVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl GlibcVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        GlibcVersion {
            major,
            minor,
            patch: 0,
        }
    }

    /// `2.36` or `2.2.5`; anything else (`2`, `2.x`, `2.36-rc1`) is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let number = |p: Option<&str>| -> Option<u32> {
            let p = p?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        let patch = match parts.next() {
            None => 0,
            p => number(p)?,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(GlibcVersion {
            major,
            minor,
            patch,
        })
    }

    /// What `getconf GNU_LIBC_VERSION` prints on a glibc system (`glibc
    /// 2.36`). A host without glibc (musl, …) prints nothing or an error:
    /// `None`.
    pub fn from_getconf(output: &str) -> Option<Self> {
        let mut words = output.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("glibc"), Some(v), None) => Self::parse(v),
            _ => None,
        }
    }

    /// The glibc release a symbol version of the binary needs:
    /// `GLIBC_2.34` → 2.34. `GLIBC_ABI_DT_RELR` (packed relocations) came
    /// with glibc 2.36. Other names (`GLIBC_PRIVATE`, `GCC_3.0`) say
    /// nothing about the release: `None`.
    pub fn from_symbol_version(name: &str) -> Option<Self> {
        if name == "GLIBC_ABI_DT_RELR" {
            return Some(GlibcVersion::new(2, 36));
        }
        Self::parse(name.strip_prefix("GLIBC_")?)
    }
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if self.patch != 0 {
            write!(f, ".{}", self.patch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> GlibcVersion {
        GlibcVersion::parse(text).expect("version")
    }

    #[test]
    fn compares_numerically() {
        assert!(v("2.9") < v("2.36"));
        assert!(v("2.2.5") < v("2.3"));
        assert!(v("2.2") < v("2.2.5"));
        assert_eq!(v("2.36"), v("2.36.0"));
        assert!(v("2.36") < v("3.0"));
    }

    #[test]
    fn displays_as_glibc_does() {
        assert_eq!(v("2.36").to_string(), "2.36");
        assert_eq!(v("2.2.5").to_string(), "2.2.5");
    }

    #[test]
    fn reads_getconf() {
        assert_eq!(GlibcVersion::from_getconf("glibc 2.36\n"), Some(v("2.36")));
        assert_eq!(GlibcVersion::from_getconf(""), None);
        assert_eq!(
            GlibcVersion::from_getconf("getconf: Unrecognized variable"),
            None
        );
        assert_eq!(GlibcVersion::from_getconf("musl 1.2.4"), None);
        assert_eq!(GlibcVersion::from_getconf("glibc 2.36 extra"), None);
    }

    #[test]
    fn reads_symbol_versions() {
        assert_eq!(
            GlibcVersion::from_symbol_version("GLIBC_2.34"),
            Some(v("2.34"))
        );
        assert_eq!(
            GlibcVersion::from_symbol_version("GLIBC_2.2.5"),
            Some(v("2.2.5"))
        );
        assert_eq!(
            GlibcVersion::from_symbol_version("GLIBC_ABI_DT_RELR"),
            Some(v("2.36"))
        );
        for other in ["GLIBC_PRIVATE", "GCC_3.0", "GLIBC_2", "GLIBC_2.x", ""] {
            assert_eq!(GlibcVersion::from_symbol_version(other), None, "{other}");
        }
    }
}

//! Namespace URIs that are shared, not copied.
//!
//! A namespace declaration (`xmlns='…'`, `xmlns:p='…'`) is stored once, when
//! its start tag is read; every element and attribute in its scope holds a
//! reference-counted handle to that one string. So the namespace memory an
//! element costs is bounded by the declarations it (or the stream header)
//! carries on the wire, whatever the number of elements that inherit them.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// A namespace URI ("" when unqualified). Cloning never copies the string.
///
/// Compares, hashes, prints and dereferences like the `str` it holds.
#[derive(Clone, Default)]
pub struct Namespace(Repr);

#[derive(Clone, Default)]
enum Repr {
    /// No namespace; allocates nothing.
    #[default]
    None,
    /// A URI known at compile time; allocates nothing.
    Static(&'static str),
    /// A URI received from a peer, shared by every element in its scope.
    Shared(Arc<str>),
}

impl Namespace {
    /// No namespace ("").
    pub const NONE: Namespace = Namespace(Repr::None);

    /// A namespace from a constant, without allocating.
    pub const fn from_static(uri: &'static str) -> Namespace {
        Namespace(Repr::Static(uri))
    }

    /// The URI.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::None => "",
            Repr::Static(uri) => uri,
            Repr::Shared(uri) => uri,
        }
    }
}

impl From<&str> for Namespace {
    fn from(uri: &str) -> Namespace {
        if uri.is_empty() {
            Namespace::NONE
        } else {
            Namespace(Repr::Shared(Arc::from(uri)))
        }
    }
}

impl From<String> for Namespace {
    fn from(uri: String) -> Namespace {
        if uri.is_empty() {
            Namespace::NONE
        } else {
            Namespace(Repr::Shared(Arc::from(uri)))
        }
    }
}

impl Deref for Namespace {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Namespace {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Namespace {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Namespace {
    fn eq(&self, other: &Namespace) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Namespace {}

impl Hash for Namespace {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for Namespace {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Namespace {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Namespace {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Namespace> for str {
    fn eq(&self, other: &Namespace) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Namespace> for &str {
    fn eq(&self, other: &Namespace) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Namespace> for String {
    fn eq(&self, other: &Namespace) -> bool {
        self == other.as_str()
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

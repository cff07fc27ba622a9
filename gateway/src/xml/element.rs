//! An owned, namespace-resolved XML element: one stanza or nonza.
//!
//! Deliberately small: the stream layer needs names, namespaces,
//! attributes and text to dispatch, to apply policy and to relay.
//! Namespace URIs are [`Namespace`] handles shared with the declaration
//! they come from, so a subtree never holds more than one copy of each.

use super::namespace::Namespace;

/// A namespace-resolved attribute: (namespace URI or "", local name, value).
pub type Attribute = (Namespace, String, String);

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data (references expanded).
    Text(String),
}

/// An element with its subtree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Namespace URI ("" when unqualified).
    pub ns: Namespace,
    /// Local name.
    pub name: String,
    /// Attributes, in document order.
    pub attrs: Vec<Attribute>,
    /// Children, in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// Whether this is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The value of the unqualified attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(ns, n, _)| ns.is_empty() && n == name)
            .map(|(_, _, v)| v.as_str())
    }

    /// The value of the attribute `{ns}name`.
    pub fn attr_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(a_ns, n, _)| a_ns.as_str() == ns && n == name)
            .map(|(_, _, v)| v.as_str())
    }

    /// The child elements.
    pub fn child_elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }
}

//! Restricted XML for XMPP streams: framing incoming bytes into elements
//! with limits, and escaping what the gateway writes.
//!
//! No I/O here; `stream` decides what the frames mean.

mod element;
mod escape;
mod framer;
mod namespace;
mod writer;

pub use element::{Attribute, Element, Node};
pub use escape::{escape_attr, escape_text};
pub use framer::{Frame, Framer, FramingError, StreamOpen};
pub use namespace::Namespace;
pub use writer::to_xml;

/// `http://www.w3.org/XML/1998/namespace`, the namespace of `xml:lang`.
pub const NS_XML: &str = rxml::parser::XMLNS_XML;

#[cfg(test)]
mod tests;

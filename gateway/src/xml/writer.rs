//! Serialises an [`Element`] so that it means the same on any stream.
//!
//! Owns re-serialisation for relaying: the received element's prefixes
//! depended on the sender's declarations (its stream header's included),
//! so nothing of them is reused. Every element whose namespace differs
//! from its parent's carries its own `xmlns='…'`; attributes in a namespace
//! get a prefix declared on the element that uses it (`xml:` is predefined
//! and never declared); text and attribute values are escaped.

use super::element::{Element, Node};
use super::escape::{escape_attr, escape_text};
use rxml::parser::XMLNS_XML;

/// `element` as XML, inside a parent (or stream) whose default namespace is `parent_ns`.
pub fn to_xml(element: &Element, parent_ns: &str) -> String {
    let mut out = String::with_capacity(256);
    write(element, parent_ns, &mut out);
    out
}

fn write(element: &Element, parent_ns: &str, out: &mut String) {
    out.push('<');
    out.push_str(&element.name);
    if element.ns.as_str() != parent_ns {
        out.push_str(" xmlns='");
        out.push_str(&escape_attr(&element.ns));
        out.push('\'');
    }
    let mut declared: Vec<&str> = Vec::new();
    for (ns, name, value) in &element.attrs {
        out.push(' ');
        if ns.as_str() == XMLNS_XML {
            out.push_str("xml:");
        } else if !ns.is_empty() {
            let index = match declared.iter().position(|d| *d == ns.as_str()) {
                Some(i) => i,
                None => {
                    declared.push(ns.as_str());
                    let i = declared.len() - 1;
                    out.push_str(&format!("xmlns:a{i}='{}' ", escape_attr(ns)));
                    i
                }
            };
            out.push_str(&format!("a{index}:"));
        }
        out.push_str(name);
        out.push_str("='");
        out.push_str(&escape_attr(value));
        out.push('\'');
    }
    if element.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for child in &element.children {
        match child {
            Node::Element(e) => write(e, &element.ns, out),
            Node::Text(t) => out.push_str(&escape_text(t)),
        }
    }
    out.push_str("</");
    out.push_str(&element.name);
    out.push('>');
}

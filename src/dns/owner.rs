//! The ownership marker: how xfed knows which records in a zone are its own.
//!
//! A zone is shared with people and other tools, so xfed touches only what
//! it wrote. Like external-dns's TXT registry and octoDNS's ownership
//! records, every name with records xfed manages gets a companion TXT RRset
//! at `_xfed-owner.<name>`, one record per managed type:
//!
//! ```text
//! _xfed-owner._xmpp-server._tcp.contoso.example. 300 IN TXT "xfed-managed type=SRV"
//! _xfed-owner.xmpp1.contoso.example.             300 IN TXT "xfed-managed type=A"
//! ```
//!
//! - An RRset `(name, type)` is *managed* when the marker at
//!   `_xfed-owner.<name>` lists `type=<type>`. Only managed RRsets are ever
//!   updated or deleted; everything else in the zone is *unmanaged*, left
//!   alone, and reported.
//! - The marker lives at a name of its own, so it never collides with a
//!   TXT RRset xfed manages at the record's name, nor with a CNAME there.
//! - Markers are written in the same atomic request as the records they
//!   describe, so a record and its marker appear and disappear together.
//! - An RRset the spec wants that already exists without a marker (made by
//!   hand before xfed) is *adopted*: shown as an update saying so, then
//!   marked. Nothing without a marker is ever deleted.
//!
//! Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use super::rrset::{RRset, parse_txt, txt_content};

/// First label of every marker name.
pub const MARKER_LABEL: &str = "_xfed-owner";
/// First word of every marker record.
pub const MARKER_TAG: &str = "xfed-managed";
/// TTL of marker RRsets; nobody resolves them.
pub const MARKER_TTL: u32 = 300;

/// `_xfed-owner.<name>`
pub fn marker_name(name: &str) -> String {
    format!("{MARKER_LABEL}.{name}")
}

/// Whether `name` is a marker's name.
pub fn is_marker_name(name: &str) -> bool {
    name.strip_prefix(MARKER_LABEL)
        .is_some_and(|rest| rest.starts_with('.'))
}

/// The record name a marker name speaks for.
pub fn marked_name(marker: &str) -> Option<&str> {
    marker
        .strip_prefix(MARKER_LABEL)
        .and_then(|rest| rest.strip_prefix('.'))
}

/// Content of the marker record for one type: `"xfed-managed type=SRV"`.
pub fn marker_content(rtype: &str) -> String {
    txt_content(&format!("{MARKER_TAG} type={rtype}"))
}

/// The marker RRset for `name`, listing `types`.
pub fn marker_rrset<'a>(name: &str, types: impl IntoIterator<Item = &'a str>) -> RRset {
    RRset::new(
        &marker_name(name),
        "TXT",
        MARKER_TTL,
        types.into_iter().map(marker_content).collect(),
    )
}

/// Every `(name, type)` the markers among `observed` declare managed.
pub fn managed_set(observed: &[RRset]) -> BTreeSet<(String, String)> {
    let mut set = BTreeSet::new();
    for r in observed.iter().filter(|r| r.rtype == "TXT") {
        let Some(name) = marked_name(&r.name) else {
            continue;
        };
        for content in &r.records {
            if let Some(rtype) = marker_type(content) {
                set.insert((name.to_string(), rtype));
            }
        }
    }
    set
}

fn marker_type(content: &str) -> Option<String> {
    let strings = parse_txt(content)?;
    let text = String::from_utf8(strings.concat()).ok()?;
    let mut words = text.split_whitespace();
    if words.next() != Some(MARKER_TAG) {
        return None;
    }
    words
        .find_map(|w| w.strip_prefix("type="))
        .map(str::to_ascii_uppercase)
}

/// The marker RRsets that describe exactly `managed`, by marker name.
pub fn markers_for(managed: &BTreeSet<(String, String)>) -> BTreeMap<String, RRset> {
    let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, rtype) in managed {
        by_name.entry(name).or_default().push(rtype);
    }
    by_name
        .into_iter()
        .map(|(name, types)| (marker_name(name), marker_rrset(name, types)))
        .collect()
}

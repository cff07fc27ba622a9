//! [`RRset`]: the unit xfed reads from and writes to a DNS provider, and the
//! normalisation that makes desired and observed record sets comparable.
//!
//! Every name is absolute, lower case, with a trailing dot; every record's
//! content is in the exact text form PowerDNS's API returns for it (SRV
//! `prio weight port target.`, TXT quoted, CNAME absolute), so a record xfed
//! wrote reads back byte for byte equal and never shows as a diff again.
//! Pure: no I/O.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// One resource record set: all records of one type at one name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RRset {
    /// Absolute, lower case, trailing dot.
    pub name: String,
    /// Upper case: `SRV`, `A`, `AAAA`, `CNAME`, `TXT`, …
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    /// Normalised content, sorted, without duplicates.
    pub records: Vec<String>,
}

impl RRset {
    /// An RRset with its name, type and every record normalised.
    pub fn new(name: &str, rtype: &str, ttl: u32, records: Vec<String>) -> RRset {
        let rtype = rtype.to_ascii_uppercase();
        let mut records: Vec<String> = records
            .iter()
            .map(|c| normalise_content(&rtype, c))
            .collect();
        records.sort();
        records.dedup();
        RRset {
            name: normalise_name(name),
            rtype,
            ttl,
            records,
        }
    }

    /// `(name, type)`: what identifies an RRset in a zone.
    pub fn key(&self) -> (String, String) {
        (self.name.clone(), self.rtype.clone())
    }

    /// Zone-file lines, one per record, for diffs.
    pub fn zone_lines(&self) -> String {
        self.records
            .iter()
            .map(|r| format!("{} {} IN {} {}\n", self.name, self.ttl, self.rtype, r))
            .collect()
    }
}

/// One change to a zone, as a provider applies it. All operations of one
/// zone go to the provider together, in one atomic request where it can.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum RRsetOp {
    /// Make the RRset exactly this (create or overwrite).
    Replace(RRset),
    /// Remove the RRset.
    Delete {
        name: String,
        #[serde(rename = "type")]
        rtype: String,
    },
}

/// `Name.Example` → `name.example.`
pub fn normalise_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

/// `content` of a record of type `rtype` in PowerDNS's canonical text form.
/// Content that does not parse is kept (trimmed), so it shows up in a diff
/// rather than being hidden.
pub fn normalise_content(rtype: &str, content: &str) -> String {
    let content = content.trim();
    let parsed = match rtype {
        "A" => content.parse::<Ipv4Addr>().ok().map(|a| a.to_string()),
        "AAAA" => content.parse::<Ipv6Addr>().ok().map(|a| a.to_string()),
        "CNAME" | "NS" | "PTR" | "DNAME" => Some(normalise_name(content)),
        "SRV" => normalise_srv(content),
        "MX" => {
            let f: Vec<&str> = content.split_whitespace().collect();
            match f.as_slice() {
                [pref, host] => pref
                    .parse::<u16>()
                    .ok()
                    .map(|p| format!("{p} {}", normalise_name(host))),
                _ => None,
            }
        }
        "TXT" | "SPF" => parse_txt(content).map(|s| encode_txt_strings(&s)),
        _ => None,
    };
    parsed.unwrap_or_else(|| content.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn normalise_srv(content: &str) -> Option<String> {
    let f: Vec<&str> = content.split_whitespace().collect();
    let [prio, weight, port, target] = f.as_slice() else {
        return None;
    };
    Some(srv_content(
        prio.parse().ok()?,
        weight.parse().ok()?,
        port.parse().ok()?,
        target,
    ))
}

/// SRV content: `prio weight port target.`
pub fn srv_content(priority: u16, weight: u16, port: u16, target: &str) -> String {
    format!("{priority} {weight} {port} {}", normalise_name(target))
}

/// TXT content for one text value: quoted, split into character-strings of
/// at most 255 bytes (the DNS limit), with `"` and `\` escaped and control
/// bytes written `\DDD`.
pub fn txt_content(text: &str) -> String {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if cur.len() + c.len_utf8() > 255 {
            chunks.push(std::mem::take(&mut cur).into_bytes());
        }
        cur.push(c);
    }
    if !cur.is_empty() || chunks.is_empty() {
        chunks.push(cur.into_bytes());
    }
    encode_txt_strings(&chunks)
}

/// The character-strings of TXT content: `"a b" "c"` → `[a b, c]`.
/// Accepts `\DDD` and `\X` escapes and unquoted words; `None` when a quote
/// is not closed or an escape is cut off.
pub fn parse_txt(content: &str) -> Option<Vec<Vec<u8>>> {
    let bytes = content.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let quoted = bytes[i] == b'"';
        if quoted {
            i += 1;
        }
        let mut s = Vec::new();
        loop {
            let Some(&b) = bytes.get(i) else {
                if quoted {
                    return None;
                }
                break;
            };
            if quoted && b == b'"' {
                i += 1;
                break;
            }
            if !quoted && b.is_ascii_whitespace() {
                break;
            }
            if b == b'\\' {
                let next = *bytes.get(i + 1)?;
                if next.is_ascii_digit() {
                    let digits = bytes.get(i + 1..i + 4)?;
                    let text = std::str::from_utf8(digits).ok()?;
                    s.push(text.parse::<u8>().ok()?);
                    i += 4;
                } else {
                    s.push(next);
                    i += 2;
                }
                continue;
            }
            s.push(b);
            i += 1;
        }
        out.push(s);
    }
    Some(out)
}

/// Character-strings back to canonical TXT content (see [`txt_content`]).
/// UTF-8 text stays as it is, as PowerDNS keeps it; other bytes above 0x7e
/// are escaped.
pub fn encode_txt_strings(strings: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for (n, s) in strings.iter().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push('"');
        match std::str::from_utf8(s) {
            Ok(text) => {
                for c in text.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                            out.push_str(&format!("\\{:03}", c as u32));
                        }
                        c => out.push(c),
                    }
                }
            }
            Err(_) => {
                for &b in s {
                    match b {
                        b'"' => out.push_str("\\\""),
                        b'\\' => out.push_str("\\\\"),
                        0x20..=0x7e => out.push(b as char),
                        b => out.push_str(&format!("\\{b:03}")),
                    }
                }
            }
        }
        out.push('"');
    }
    out
}

/// Whether `name` lies in `zone` (both absolute): equal, or a subdomain.
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

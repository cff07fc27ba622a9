//! The subject distinguished name, built from the spec's `subject`.

use rcgen::{DistinguishedName, DnType, DnValue};

use crate::spec::Subject;

/// `CN, O, OU, L, ST, C` in that order; empty parts left out. `C` is a
/// PrintableString (RFC 5280), the rest UTF8String.
pub fn distinguished_name(s: &Subject) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, s.common_name.as_str());
    let parts = [
        (DnType::OrganizationName, &s.organization),
        (DnType::OrganizationalUnitName, &s.organizational_unit),
        (DnType::LocalityName, &s.locality),
        (DnType::StateOrProvinceName, &s.state),
    ];
    for (t, v) in parts {
        if let Some(v) = v {
            dn.push(t, v.as_str());
        }
    }
    if let Some(c) = &s.country {
        match c.as_str().try_into() {
            Ok(p) => dn.push(DnType::CountryName, DnValue::PrintableString(p)),
            Err(_) => dn.push(DnType::CountryName, c.as_str()),
        }
    }
    dn
}

/// The DN as one line, in the order and form x509-parser prints a
/// certificate's subject (`CN=…, O=…, C=…`), so desired and observed
/// compare as text.
pub fn dn_string(s: &Subject) -> String {
    let mut parts = vec![format!("CN={}", s.common_name)];
    let rest = [
        ("O", &s.organization),
        ("OU", &s.organizational_unit),
        ("L", &s.locality),
        ("ST", &s.state),
        ("C", &s.country),
    ];
    for (k, v) in rest {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join(", ")
}

//! Checks for DNS names and the small value formats of the spec.

/// Why `name` is not a valid DNS host name, or `Ok`. A leading `*.` is
/// accepted when `wildcard` is set (certificate SANs).
pub fn check_dns_name(name: &str, wildcard: bool) -> Result<(), String> {
    let body = match name.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        Some(_) => return Err("a wildcard is not allowed here".into()),
        None => name,
    };
    let body = body.strip_suffix('.').unwrap_or(body);
    if body.is_empty() {
        return Err("the name is empty".into());
    }
    if body.len() > 253 {
        return Err(format!(
            "the name is {} characters long; at most 253 are allowed",
            body.len()
        ));
    }
    for label in body.split('.') {
        if label.is_empty() {
            return Err("the name has an empty label (`..`)".into());
        }
        if label.len() > 63 {
            return Err(format!("label `{label}` is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("`{c}` is not allowed in a DNS name"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label `{label}` starts or ends with `-`"));
        }
    }
    if !body.contains('.') {
        return Err("a fully qualified name has at least two labels".into());
    }
    Ok(())
}

/// `name` made absolute (trailing dot) and lower case.
pub fn absolute(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

/// A record name relative to `zone` (`@` = apex) or already absolute.
pub fn qualify(name: &str, zone: &str) -> String {
    let zone = absolute(zone);
    if name == "@" {
        zone
    } else if name.ends_with('.') {
        name.to_ascii_lowercase()
    } else {
        format!("{}.{zone}", name.to_ascii_lowercase())
    }
}

/// `33%` → fraction 0.33, `30d` → 30 days.
pub fn parse_renew_before(s: &str) -> Option<super::model::RenewBefore> {
    use super::model::RenewBefore;
    if let Some(p) = s.strip_suffix('%') {
        let v: f64 = p.trim().parse().ok()?;
        (v > 0.0 && v < 100.0).then_some(RenewBefore::Fraction(v / 100.0))
    } else if let Some(d) = s.strip_suffix('d') {
        let v: u32 = d.trim().parse().ok()?;
        (v > 0).then_some(RenewBefore::Days(v))
    } else {
        None
    }
}

/// `30%` → 0.3.
pub fn parse_percent(s: &str) -> Option<f64> {
    let v: f64 = s.strip_suffix('%')?.trim().parse().ok()?;
    (v > 0.0 && v <= 100.0).then_some(v / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::model::RenewBefore;

    #[test]
    fn dns_names() {
        assert!(check_dns_name("sip.contoso.example", false).is_ok());
        assert!(check_dns_name("_xmpp-server._tcp.contoso.example.", false).is_ok());
        assert!(check_dns_name("*.contoso.example", true).is_ok());
        assert_eq!(
            check_dns_name("*.contoso.example", false),
            Err("a wildcard is not allowed here".into())
        );
        assert_eq!(
            check_dns_name("bad name.example", false),
            Err("` ` is not allowed in a DNS name".into())
        );
        assert_eq!(
            check_dns_name("a..example", false),
            Err("the name has an empty label (`..`)".into())
        );
        assert_eq!(
            check_dns_name("-a.example", false),
            Err("label `-a` starts or ends with `-`".into())
        );
        assert_eq!(
            check_dns_name("localhost", false),
            Err("a fully qualified name has at least two labels".into())
        );
    }

    #[test]
    fn qualifying_names() {
        assert_eq!(qualify("@", "Contoso.Example"), "contoso.example.");
        assert_eq!(
            qualify("_xmpp-server._tcp", "contoso.example."),
            "_xmpp-server._tcp.contoso.example."
        );
        assert_eq!(
            qualify("X.Other.Example.", "contoso.example"),
            "x.other.example."
        );
    }

    #[test]
    fn renew_before_and_percent() {
        assert_eq!(parse_renew_before("33%"), Some(RenewBefore::Fraction(0.33)));
        assert_eq!(parse_renew_before("30d"), Some(RenewBefore::Days(30)));
        assert_eq!(parse_renew_before("0d"), None);
        assert_eq!(parse_renew_before("soon"), None);
        assert_eq!(parse_percent("30%"), Some(0.3));
        assert_eq!(parse_percent("130%"), None);
    }
}

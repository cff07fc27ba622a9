//! XMPP domain names as the gateway accepts them in config and stream headers.
//!
//! Owns the one syntactic rule both places share: lowercase ASCII DNS names
//! (IDNs in A-label form), compared exactly. A domain as a peer writes it
//! (`normalize_jid_domain`) may end with a dot, which RFC 7622 §3.2 says to
//! strip before comparing; the config must be written without it. It does
//! not resolve anything.

/// Checks `raw` and returns it lowercased, or says what is wrong.
pub fn normalize_domain(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("is empty".to_string());
    }
    if !raw.is_ascii() {
        return Err(format!(
            "`{raw}` is not ASCII; write internationalised names in A-label form (xn--…)"
        ));
    }
    let domain = raw.to_ascii_lowercase();
    if domain.len() > 253 {
        return Err(format!("`{raw}` is longer than 253 characters"));
    }
    if domain.ends_with('.') {
        return Err(format!(
            "`{raw}` ends with a dot; write it without the trailing dot"
        ));
    }
    if domain.parse::<std::net::IpAddr>().is_ok() || domain.starts_with('[') {
        return Err(format!("`{raw}` is an IP address, not a domain name"));
    }
    for label in domain.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(format!(
                "`{raw}` is not a valid domain name (label `{label}`)"
            ));
        }
    }
    Ok(domain)
}

/// A JID's domainpart as a peer writes it (stream headers, addresses):
/// one trailing dot stripped (RFC 7622 §3.2), then [`normalize_domain`].
pub fn normalize_jid_domain(raw: &str) -> Result<String, String> {
    let trimmed = raw.strip_suffix('.').unwrap_or(raw);
    if trimmed.is_empty() {
        return Err("is empty".to_string());
    }
    normalize_domain(trimmed)
}

#[cfg(test)]
mod tests {
    use super::{normalize_domain, normalize_jid_domain};

    #[test]
    fn accepts_and_lowercases_dns_names() {
        assert_eq!(
            normalize_domain("Contoso.Example").as_deref(),
            Ok("contoso.example")
        );
        assert_eq!(
            normalize_domain("xn--bcher-kva.example").as_deref(),
            Ok("xn--bcher-kva.example")
        );
    }

    #[test]
    fn rejects_what_is_not_a_domain() {
        for bad in [
            "",
            "a..b",
            "-a.example",
            "a.example.",
            "10.0.0.1",
            "bü.example",
            "a b",
            "[::1]",
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_peer_may_write_one_trailing_dot() {
        assert_eq!(
            normalize_jid_domain("Fabrikam.Example.").as_deref(),
            Ok("fabrikam.example")
        );
        assert_eq!(
            normalize_jid_domain("fabrikam.example").as_deref(),
            Ok("fabrikam.example")
        );
        for bad in ["", ".", "a.example..", "10.0.0.1.", "a b."] {
            assert!(normalize_jid_domain(bad).is_err(), "{bad:?} accepted");
        }
    }
}

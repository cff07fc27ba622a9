//! `--replace KIND:NAME`: a replacement the operator asks for although
//! nothing differs (Terraform's `-replace`) — a certificate re-issued with
//! a new key after a suspected compromise, a gateway restarted. The plan
//! shows it as a replacement with the reason "requested", and it rolls out
//! like any other change: one server at a time, behind the health gate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One `--replace` target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Replace {
    /// Every installed copy of the certificate of that name: a new key
    /// and certificate on each server of its pool.
    Certificate(String),
    /// The gateway on the server of that FQDN: restarted.
    Gateway(String),
}

impl FromStr for Replace {
    type Err = String;

    fn from_str(s: &str) -> Result<Replace, String> {
        match s.split_once(':') {
            Some(("certificate", name)) if !name.is_empty() => {
                Ok(Replace::Certificate(name.to_string()))
            }
            Some(("gateway", host)) if !host.is_empty() => Ok(Replace::Gateway(host.to_string())),
            _ => Err(format!(
                "`{s}` is not a replacement xfed knows: expected `certificate:NAME` or `gateway:SERVER_FQDN`"
            )),
        }
    }
}

impl fmt::Display for Replace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Replace::Certificate(n) => write!(f, "certificate:{n}"),
            Replace::Gateway(h) => write!(f, "gateway:{h}"),
        }
    }
}

impl Replace {
    /// The reason a replaced resource shows in the plan.
    pub fn reason(&self) -> String {
        format!("replacement requested (--replace {self})")
    }
}

/// Every target names something the spec has; otherwise the message says
/// what it does have.
pub fn check(
    replace: &[Replace],
    certificates: &[&str],
    gateway_servers: &[&str],
) -> Result<(), String> {
    for r in replace {
        let (known, what) = match r {
            Replace::Certificate(n) => (certificates.contains(&n.as_str()), certificates),
            Replace::Gateway(h) => (gateway_servers.contains(&h.as_str()), gateway_servers),
        };
        if !known {
            return Err(format!(
                "`--replace {r}` names nothing in the spec; nothing was contacted\nhint: the spec has {}",
                super::target::what_the_spec_has("", what.iter().copied())
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_back() {
        for s in [
            "certificate:edge-hq-external",
            "gateway:edge1.contoso.example",
        ] {
            let r: Replace = s.parse().expect("a target");
            assert_eq!(r.to_string(), s);
        }
        assert!("pool:edge-hq".parse::<Replace>().is_err());
        assert!("certificate:".parse::<Replace>().is_err());
    }

    #[test]
    fn an_unknown_target_names_what_the_spec_has() {
        let r = [Replace::Certificate("edge-hq-externl".into())];
        let e = check(&r, &["edge-hq-external"], &[]).expect_err("unknown");
        assert!(e.contains("`edge-hq-external`"), "{e}");
        assert!(check(&r[..0], &[], &[]).is_ok());
    }
}

//! What kind of resource a change is about: a closed enum, so code that
//! treats services, listeners or DNS records differently matches on it,
//! and the plan file and JSON output spell it the same way everywhere.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every kind of resource xfed plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    File,
    Binary,
    Service,
    ListenerCheck,
    Certificate,
    User,
    DnsRecord,
    DnsZone,
    Policy,
    Grant,
    Partner,
    Route,
}

impl ResourceKind {
    /// The name the plan, the JSON form and addresses use.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::File => "file",
            ResourceKind::Binary => "binary",
            ResourceKind::Service => "service",
            ResourceKind::ListenerCheck => "listener_check",
            ResourceKind::Certificate => "certificate",
            ResourceKind::User => "user",
            ResourceKind::DnsRecord => "dns_record",
            ResourceKind::DnsZone => "dns_zone",
            ResourceKind::Policy => "policy",
            ResourceKind::Grant => "grant",
            ResourceKind::Partner => "partner",
            ResourceKind::Route => "route",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ResourceKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serialized_name_is_the_displayed_one() {
        for k in [
            ResourceKind::File,
            ResourceKind::ListenerCheck,
            ResourceKind::DnsRecord,
            ResourceKind::Route,
        ] {
            let json = serde_json::to_string(&k).unwrap_or_default();
            assert_eq!(json, format!("\"{k}\""));
        }
    }
}

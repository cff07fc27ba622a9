//! The outbound route of a front-end pool's managed XMPP server: which
//! edge listeners its federation traffic goes to, in which order.
//!
//! Owns the order (the edge pool each site of the front-end pool routes
//! to, in spec order, then every other XMPP edge pool by SRV priority,
//! spec order breaking ties) and the table's shape, which the Prosody
//! plugin `mod_xfed_route.lua` reads as JSON. Pure: built from the
//! resolved spec; it never reads a host or a file.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::spec::Spec;

/// What the managed server on one front-end pool routes, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    /// The partner domains steered to the edge; any other remote domain
    /// is left to the server's own resolution.
    pub partners: Vec<String>,
    /// The edge internal listeners, tried in this order.
    pub targets: Vec<RouteTarget>,
}

/// One edge server's internal listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTarget {
    pub pool: String,
    pub server: String,
    /// `tcp4` or `tcp6`, as Prosody's resolvers name address families.
    pub family: String,
    pub address: String,
    pub port: u16,
}

impl RouteTable {
    /// The table for `frontend_pool` (every partner; the sites' routes
    /// first, then the other XMPP edge pools by SRV priority).
    pub fn build(spec: &Spec, frontend_pool: &str) -> RouteTable {
        let mut pools: Vec<&str> = spec
            .sites
            .iter()
            .filter(|s| s.frontend_pool == frontend_pool)
            .map(|s| s.xmpp_route.as_str())
            .collect();
        pools.dedup();
        let mut fallback: Vec<(u16, usize, &str)> = spec
            .edge_pools
            .iter()
            .enumerate()
            .filter(|(_, p)| p.xmpp_federation && !pools.contains(&p.name.as_str()))
            .map(|(i, p)| (p.srv_priority, i, p.name.as_str()))
            .collect();
        fallback.sort();
        for (_, _, name) in fallback {
            if !pools.contains(&name) {
                pools.push(name);
            }
        }
        let targets = pools
            .iter()
            .filter_map(|name| spec.edge_pool(name))
            .flat_map(|p| {
                p.servers.iter().map(|s| RouteTarget {
                    pool: p.name.clone(),
                    server: s.server.fqdn.clone(),
                    family: match s.internal_address {
                        IpAddr::V4(_) => "tcp4".into(),
                        IpAddr::V6(_) => "tcp6".into(),
                    },
                    address: s.internal_address.to_string(),
                    port: s.internal_port,
                })
            })
            .collect();
        RouteTable {
            partners: spec
                .partners
                .iter()
                .flat_map(|p| p.domains())
                .cloned()
                .collect(),
            targets,
        }
    }

    /// The JSON the plugin reads, one trailing newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into());
        text.push('\n');
        text
    }
}

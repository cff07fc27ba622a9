//! [`Topology`]: the document the front-end module writes to every
//! front-end and xfed reads back to plan policies, grants, partners and
//! routes, and to verify what is published.
//!
//! Its JSON is canonical: the keys of every object are written sorted (the
//! form the document had when it was built untyped, so its version did not
//! move with the change to a type), and the version is the first 16 hex
//! digits of the SHA-256 of the document without its version. It holds no
//! secret: every field is safe to print in a plan.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::spec::{PartnerAuth, PartnerKind, PolicyScope, Spec, TlsRequirement, Users};

/// The published topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// Content hash of the rest (16 hex digits); empty while it is computed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    pub sip_domains: Vec<String>,
    pub xmpp_domains: Vec<String>,
    pub sites: Vec<Site>,
    pub frontend_pools: Vec<FrontendPool>,
    pub edge_pools: Vec<EdgePool>,
    pub policies: Vec<Policy>,
    pub grants: Vec<Grant>,
    pub partners: Vec<Partner>,
}

/// A site: its users' front-end pool and its XMPP federation route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub name: String,
    pub frontend_pool: String,
    /// The edge pool its XMPP federation goes through.
    pub xmpp_route: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontendPool {
    pub name: String,
    /// The servers' FQDNs.
    pub servers: Vec<String>,
    /// Users homed here, in the gateway's normal form of a bare JID.
    pub users: Vec<String>,
    /// `host:port` of the internal XMPP server partners are relayed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmpp_server: Option<String>,
    /// How xfed reached each server (by FQDN) when it published this
    /// document: what it needs to decommission one once it leaves the
    /// spec. A document published before this field existed has none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ssh: BTreeMap<String, SshRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgePool {
    pub name: String,
    pub site: String,
    pub xmpp_federation: bool,
    pub srv: Srv,
    pub servers: Vec<EdgeServer>,
}

/// The pool's `_xmpp-server._tcp` SRV priority and weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeServer {
    pub fqdn: String,
    /// `address:port` of the listener facing the organisation.
    pub internal: String,
    pub external: External,
    /// How xfed reached the server when it published this document: what
    /// it needs to decommission the server once it leaves the spec. A
    /// document published before this field existed has none; the server
    /// is then reached on its internal address with the spec's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshRecord>,
}

/// Where a server's SSH daemon was: address, port and login. No secret:
/// the key and the known hosts stay the spec's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshRecord {
    pub host: String,
    pub port: u16,
    pub user: String,
}

impl SshRecord {
    /// What a spec's SSH target says of where it connects.
    pub fn of(target: &crate::spec::SshTarget) -> SshRecord {
        SshRecord {
            host: target.host.clone(),
            port: target.port,
            user: target.user.clone(),
        }
    }
}

/// The listener facing the internet: the name partners resolve, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct External {
    pub fqdn: String,
    /// `address:port`.
    pub address: String,
}

/// An external access policy (Lync's ExternalAccessPolicy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `global`, `site:NAME` or a per-user policy's name.
    pub identity: String,
    pub scope: PolicyScope,
    pub enable_federation_access: bool,
    pub enable_public_cloud_access: bool,
    pub enable_xmpp_access: bool,
}

/// A per-user policy given to users, or to all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The granted policy's identity.
    pub policy: String,
    pub users: Users,
}

/// A federated partner domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    pub domain: String,
    pub kind: PartnerKind,
    pub tls: TlsRequirement,
    /// How its streams authenticate. A document published before this
    /// field existed had no enforced authentication but EXTERNAL.
    #[serde(default)]
    pub auth: PartnerAuth,
    /// More domains of the partner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_domains: Vec<String>,
    /// Whitespace keepalives on idle streams.
    #[serde(default = "keepalive_default")]
    pub keepalive: bool,
    /// `host:port` the relay connects to instead of resolving SRV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

fn keepalive_default() -> bool {
    true
}

/// The topology a spec publishes, versioned by its content.
pub fn build(spec: &Spec) -> Topology {
    let mut t = Topology {
        version: String::new(),
        sip_domains: spec.sip_domains.clone(),
        xmpp_domains: spec.xmpp_domains.clone(),
        sites: spec
            .sites
            .iter()
            .map(|s| Site {
                name: s.name.clone(),
                frontend_pool: s.frontend_pool.clone(),
                xmpp_route: s.xmpp_route.clone(),
            })
            .collect(),
        frontend_pools: spec
            .frontend_pools
            .iter()
            .map(|p| FrontendPool {
                name: p.name.clone(),
                servers: p.servers.iter().map(|s| s.fqdn.clone()).collect(),
                users: p.users.clone(),
                xmpp_server: p.xmpp_server.as_ref().map(|x| x.endpoint()),
                ssh: p
                    .servers
                    .iter()
                    .map(|s| (s.fqdn.clone(), SshRecord::of(&s.ssh)))
                    .collect(),
            })
            .collect(),
        edge_pools: spec
            .edge_pools
            .iter()
            .map(|p| EdgePool {
                name: p.name.clone(),
                site: p.site.clone(),
                xmpp_federation: p.xmpp_federation,
                srv: Srv {
                    priority: p.srv_priority,
                    weight: p.srv_weight,
                },
                servers: p
                    .servers
                    .iter()
                    .map(|s| EdgeServer {
                        fqdn: s.server.fqdn.clone(),
                        internal: format!("{}:{}", s.internal_address, s.internal_port),
                        external: External {
                            fqdn: s.external_fqdn.clone(),
                            address: format!("{}:{}", s.external_address, s.external_port),
                        },
                        ssh: Some(SshRecord::of(&s.server.ssh)),
                    })
                    .collect(),
            })
            .collect(),
        policies: spec
            .policies
            .iter()
            .map(|p| Policy {
                identity: p.identity.clone(),
                scope: p.scope.clone(),
                enable_federation_access: p.enable_federation_access,
                enable_public_cloud_access: p.enable_public_cloud_access,
                enable_xmpp_access: p.enable_xmpp_access,
            })
            .collect(),
        grants: spec
            .grants
            .iter()
            .map(|g| Grant {
                policy: g.policy.clone(),
                users: g.users.clone(),
            })
            .collect(),
        partners: spec
            .partners
            .iter()
            .map(|p| Partner {
                domain: p.domain.clone(),
                kind: p.kind,
                tls: p.tls,
                auth: p.auth,
                additional_domains: p.additional_domains.clone(),
                keepalive: p.keepalive,
                proxy: p.proxy.clone(),
            })
            .collect(),
    };
    t.version = t.content_version();
    t
}

impl Topology {
    /// The canonical JSON value, every object's keys sorted: what the
    /// front-end module's template writes (`topology | tojson`).
    pub fn to_value(&self) -> serde_json::Value {
        // Every field is a string, number, bool, list or struct of them:
        // serializing cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// A published document read back, or why it is not one.
    pub fn parse(text: &str) -> Result<Topology, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The version this content has: what `build` stores in `version`.
    pub fn content_version(&self) -> String {
        let body = Topology {
            version: String::new(),
            ..self.clone()
        };
        let text = serde_json::to_string(&body.to_value()).unwrap_or_default();
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }

    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name == name)
    }

    pub fn edge_pool(&self, name: &str) -> Option<&EdgePool> {
        self.edge_pools.iter().find(|p| p.name == name)
    }
}

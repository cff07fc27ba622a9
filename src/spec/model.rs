//! The resolved spec (stage two): defaults merged, templates rendered,
//! every reference checked. Only these types reach `plan/` and `modules/`.
//!
//! Each object keeps its [`Origin`] so the plan can say which spec line
//! causes a change. Secrets are [`Secret`]s, never plain strings.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::source::Pos;
use crate::secret::{Redactor, Secret};

/// Where in the spec an object was declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    /// serde path, e.g. `edge_pools[0].servers[1]`.
    pub field: String,
}

impl Origin {
    pub fn new(file: PathBuf, pos: Pos, field: impl Into<String>) -> Origin {
        Origin {
            file,
            line: pos.line,
            col: pos.col,
            field: field.into(),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub file: PathBuf,
    pub sip_domains: Vec<String>,
    pub xmpp_domains: Vec<String>,
    pub sites: Vec<Site>,
    pub frontend_pools: Vec<FrontendPool>,
    pub edge_pools: Vec<EdgePool>,
    pub certificates: Vec<Certificate>,
    pub dns: Option<Dns>,
    pub policies: Vec<Policy>,
    pub grants: Vec<Grant>,
    pub partners: Vec<Partner>,
    pub gateway: Gateway,
    pub rollout: Rollout,
    /// Every secret value of this spec, for scrubbing output.
    pub redactor: Redactor,
}

impl Spec {
    pub fn edge_pool(&self, name: &str) -> Option<&EdgePool> {
        self.edge_pools.iter().find(|p| p.name == name)
    }

    pub fn frontend_pool(&self, name: &str) -> Option<&FrontendPool> {
        self.frontend_pools.iter().find(|p| p.name == name)
    }

    /// The front-end pool whose XMPP server the edge pool `edge_pool`
    /// relays to (see [`relay_frontend`]). None: it relays nothing.
    pub fn relay_frontend(&self, edge_pool: &str) -> Option<&FrontendPool> {
        let edge = self.edge_pools.iter().find(|p| p.name == edge_pool)?;
        relay_frontend(&self.sites, &self.frontend_pools, edge)
    }

    /// Every server, front-ends first, in spec order.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.frontend_pools
            .iter()
            .flat_map(|p| p.servers.iter())
            .chain(
                self.edge_pools
                    .iter()
                    .flat_map(|p| p.servers.iter().map(|e| &e.server)),
            )
    }
}

/// The front-end pool whose XMPP server an XMPP edge pool relays the
/// partners' stanzas to (`[relay] internal_server`): its own site's, as a
/// Lync edge pool's next hop is a front-end pool of its site. Users homed
/// on a pool with a server of its own get theirs there instead (the
/// gateway's `[[sites]] internal_server`). It does not depend on the sites' routes:
/// partners reach every XMPP pool of the domain (SRV), the backup pools
/// too, and moving a route must not change what an edge relays inbound.
/// Without an `xmpp_server` there, the first site routed through the pool
/// whose front-end pool has one. None: it relays nothing.
pub fn relay_frontend<'a>(
    sites: &'a [Site],
    frontend_pools: &'a [FrontendPool],
    edge: &EdgePool,
) -> Option<&'a FrontendPool> {
    if !edge.xmpp_federation {
        return None;
    }
    let pool_of = |site: &Site| frontend_pools.iter().find(|f| f.name == site.frontend_pool);
    sites
        .iter()
        .filter(|s| s.name == edge.site)
        .chain(sites.iter().filter(|s| s.xmpp_route == edge.name))
        .filter_map(pool_of)
        .find(|f| f.xmpp_server.is_some())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Site {
    pub name: String,
    pub frontend_pool: String,
    /// Always set and valid after resolution (a site without a route, or
    /// with one to a non-XMPP pool, is a validation error).
    pub xmpp_route: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Frontend,
    Edge,
}

impl Role {
    /// The first part of a resource address on a server of this role
    /// (`fe/fe-hq/fe1.contoso.example/file:…`).
    pub fn prefix(&self) -> &'static str {
        match self {
            Role::Frontend => "fe",
            Role::Edge => "edge",
        }
    }
}

/// How to reach a server over SSH; defaults already merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: SshAuth,
    pub known_hosts: PathBuf,
    #[serde(rename = "become")]
    pub become_: Become,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Sessions kept for reuse by the next run (`ssh.persist_secs`).
    pub persist: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SshAuth {
    KeyFile {
        path: PathBuf,
        passphrase: Option<Secret>,
    },
    Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Become {
    None,
    Sudo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub fqdn: String,
    pub role: Role,
    pub pool: String,
    pub ssh: SshTarget,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FrontendPool {
    pub name: String,
    pub servers: Vec<Server>,
    /// Users homed on this pool, lower-cased `user@domain`.
    pub users: Vec<String>,
    /// The internal XMPP server partners' stanzas are relayed to.
    pub xmpp_server: Option<XmppServer>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XmppServer {
    pub address: String,
    pub port: u16,
    /// Set when xfed manages the server (`modules/internal-xmpp`).
    pub managed: Option<ManagedServer>,
}

/// Which XMPP server xfed manages on a front-end pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagedServer {
    Prosody,
}

impl XmppServer {
    /// `address:port`, bracketing an IPv6 literal.
    pub fn endpoint(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgePool {
    pub name: String,
    pub site: String,
    pub xmpp_federation: bool,
    pub srv_priority: u16,
    pub srv_weight: u16,
    pub srv_ttl: u32,
    pub servers: Vec<EdgeServer>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeServer {
    pub server: Server,
    pub internal_address: IpAddr,
    pub internal_port: u16,
    pub external_fqdn: String,
    pub external_address: IpAddr,
    pub external_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertUsage {
    External,
    Internal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySpec {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EcdsaP256,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub common_name: String,
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    pub locality: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Issuer {
    Csr {
        request_path: PathBuf,
    },
    InternalCa {
        ca_cert: PathBuf,
        ca_key: Secret,
        validity_days: u32,
    },
    Acme {
        directory: String,
        ca_bundle: Option<PathBuf>,
        contact: Vec<String>,
    },
}

/// When to renew: this share of the lifetime, or this long, before expiry.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RenewBefore {
    Fraction(f64),
    Days(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Certificate {
    pub name: String,
    pub pool: String,
    /// Whether `pool` is an edge pool or a front-end pool (the latter only
    /// with `usage: internal`, for a managed XMPP server).
    pub pool_role: Role,
    pub usage: CertUsage,
    pub friendly_name: Option<String>,
    pub key: KeySpec,
    pub exportable: bool,
    pub subject: Subject,
    /// Computed: `sip.<domain>` for SIP domains, the XMPP domains, the
    /// pool's external FQDNs, extras; sorted, deduplicated, lower case.
    pub sans: Vec<String>,
    pub issuer: Issuer,
    pub renew_before: RenewBefore,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct Dns {
    pub provider: DnsProvider,
    pub zones: Vec<Zone>,
    pub records: Vec<Record>,
    pub ttl: u32,
    /// Largest share of a zone's managed records one plan may change.
    pub max_change: f64,
    /// A recursive resolver as partners use one, for `verify`.
    pub resolver: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct DnsProvider {
    pub api: DnsApi,
    pub create_zones: bool,
}

impl DnsProvider {
    pub fn kind(&self) -> DnsProviderKind {
        match self.api {
            DnsApi::Powerdns { .. } => DnsProviderKind::Powerdns,
            DnsApi::Rfc2136(_) => DnsProviderKind::Rfc2136,
        }
    }
}

/// How xfed reaches the DNS server, per provider kind.
#[derive(Debug, Clone)]
pub enum DnsApi {
    /// PowerDNS's HTTP API.
    Powerdns {
        api_url: String,
        api_key: Secret,
        server_id: String,
    },
    /// Dynamic update (RFC 2136) and AXFR, signed with TSIG (RFC 8945).
    Rfc2136(Rfc2136Settings),
}

#[derive(Debug, Clone)]
pub struct Rfc2136Settings {
    /// Primary servers, tried in order for UPDATE (and AXFR without
    /// `read_server`).
    pub servers: Vec<std::net::SocketAddr>,
    pub read_server: Option<std::net::SocketAddr>,
    pub tsig: Tsig,
}

#[derive(Debug, Clone)]
pub struct Tsig {
    /// Lower case, without a trailing dot (`xfed-key`).
    pub name: String,
    pub algorithm: TsigAlgorithm,
    /// Base64, as BIND's and Knot's key files hold it.
    pub secret: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TsigAlgorithm {
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
}

impl Tsig {
    /// The key's bytes from its base64 text (padding optional, blanks
    /// around it ignored); `None` when it is not base64 or empty.
    pub fn decode_key(text: &str) -> Option<Vec<u8>> {
        use base64::Engine;
        let text = text.trim();
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        engine.decode(text).ok().filter(|k| !k.is_empty())
    }
}

impl TsigAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            TsigAlgorithm::HmacSha256 => "hmac-sha256",
            TsigAlgorithm::HmacSha512 => "hmac-sha512",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsProviderKind {
    Powerdns,
    Rfc2136,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    External,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Zone {
    /// Absolute, lower case, trailing dot.
    pub name: String,
    pub view: View,
    pub nameservers: Vec<std::net::SocketAddr>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    pub zone: String,
    /// Absolute, lower case, trailing dot.
    pub name: String,
    pub ttl: u32,
    pub data: RecordData,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
pub enum RecordData {
    A {
        address: std::net::Ipv4Addr,
    },
    Aaaa {
        address: std::net::Ipv6Addr,
    },
    Cname {
        target: String,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Txt {
        text: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", content = "name", rename_all = "lowercase")]
pub enum PolicyScope {
    Global,
    Site(String),
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// As written: `global`, `site:hq`, `FedPic`.
    pub identity: String,
    pub scope: PolicyScope,
    pub enable_federation_access: bool,
    pub enable_public_cloud_access: bool,
    pub enable_xmpp_access: bool,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Users {
    All,
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub policy: String,
    pub users: Users,
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerKind {
    Federated,
    Trusted,
    PublicVerified,
    PublicUnverified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsRequirement {
    Required,
    Optional,
}

impl PartnerKind {
    /// Every kind, in report order.
    pub const ALL: [PartnerKind; 4] = [
        PartnerKind::Federated,
        PartnerKind::Trusted,
        PartnerKind::PublicVerified,
        PartnerKind::PublicUnverified,
    ];

    /// The spec's (and the gateway's) name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerKind::Federated => "federated",
            PartnerKind::Trusted => "trusted",
            PartnerKind::PublicVerified => "public_verified",
            PartnerKind::PublicUnverified => "public_unverified",
        }
    }
}

impl TlsRequirement {
    /// The spec's (and the gateway's) name of the requirement.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsRequirement::Required => "required",
            TlsRequirement::Optional => "optional",
        }
    }
}

/// How a partner's S2S streams authenticate (Lync's SaslNegotiation and
/// SupportDialbackNegotiation together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartnerAuth {
    /// SASL EXTERNAL with a certificate the partner trust vouches for.
    #[default]
    External,
    /// Server dialback (XEP-0220), after TLS.
    Dialback,
    /// EXTERNAL when it works, else dialback.
    Either,
}

impl PartnerAuth {
    /// The spec's (and the gateway's) name.
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerAuth::External => "external",
            PartnerAuth::Dialback => "dialback",
            PartnerAuth::Either => "either",
        }
    }

    /// Whether the partner may authenticate by dialback, which needs the
    /// organisation's dialback secret.
    pub fn may_dialback(self) -> bool {
        self != PartnerAuth::External
    }

    /// Lync's default for a kind: public unverified partners are exactly
    /// the servers that authenticate by dialback.
    pub fn default_for(kind: PartnerKind) -> PartnerAuth {
        match kind {
            PartnerKind::PublicUnverified => PartnerAuth::Either,
            _ => PartnerAuth::External,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partner {
    pub domain: String,
    /// More domains of the same partner, lower case.
    pub additional_domains: Vec<String>,
    pub kind: PartnerKind,
    pub tls: TlsRequirement,
    pub auth: PartnerAuth,
    /// Whitespace keepalives on idle streams.
    pub keepalive: bool,
    /// `host:port` instead of SRV resolution.
    pub proxy: Option<String>,
    pub origin: Origin,
}

impl Partner {
    /// `domain`, then the additional domains.
    pub fn domains(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.domain).chain(&self.additional_domains)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceManager {
    Auto,
    Systemd,
    Direct,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gateway {
    pub package: String,
    pub install_dir: String,
    pub config_dir: String,
    pub state_dir: String,
    pub service_manager: ServiceManager,
    pub admin_port: u16,
    /// The system user (and group of the same name) the gateway runs as.
    pub user: String,
    /// `MemoryMax=` of the gateway's systemd unit, as systemd spells it
    /// (`1G`, `512M`, a number of bytes).
    pub memory_max: String,
    /// Local PEM file of partners' CAs, installed on the gateways.
    pub partner_ca: Option<PathBuf>,
    /// Local PEM file of the CAs of the internal XMPP servers.
    pub internal_ca: Option<PathBuf>,
    /// The gateway's `[limits]` settings the spec sets, by the gateway's
    /// own name (`max_connections`, …), in a fixed order.
    pub limits: Vec<(String, u64)>,
    /// The organisation's dialback secrets, when set.
    pub dialback: Option<DialbackSecrets>,
}

/// `gateway.dialback`: rendered into a file per secret on every gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DialbackSecrets {
    pub secret: Secret,
    pub previous_secret: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollout {
    pub serial: Serial,
    pub health_gate_timeout: Duration,
    /// The share of a pool's servers that may fail their health gate
    /// before the rollout stops (0: the first failure stops it).
    pub max_fail_percentage: u8,
}

/// How many servers of a pool change at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Serial {
    Count(u32),
    /// A share of the pool, 1–100 %.
    Percent(u8),
}

impl Serial {
    /// Servers per batch in a pool of `servers` (at least one, rounded
    /// down as Ansible's `serial: "30%"` is).
    pub fn batch(self, servers: usize) -> usize {
        match self {
            Serial::Count(n) => n as usize,
            Serial::Percent(p) => servers * p as usize / 100,
        }
        .max(1)
    }
}

impl Rollout {
    /// How many of a pool's `servers` may fail their health gate with the
    /// rollout going on (rounded down).
    pub fn failure_budget(&self, servers: usize) -> usize {
        servers * self.max_fail_percentage as usize / 100
    }
}

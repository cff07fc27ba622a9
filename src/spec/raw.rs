//! The raw spec: the YAML exactly as written (stage one of two).
//!
//! Straight from serde, no I/O, no defaults beyond "absent": unknown fields
//! are rejected here so a typo never silently does nothing. Strings are still
//! unrendered templates. `resolve` turns this into the model the planner
//! uses; nothing outside `spec/` sees these types. The JSON Schema that
//! `xfed schema` prints is derived from them, so it cannot drift.

use schemars::JsonSchema;
use serde::Deserialize;

/// An xfed spec, version 1: an XMPP federation edge as code.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    /// Spec format version; must be 1.
    pub version: u32,
    /// Template variables; every string value below may use `{{ name }}`.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, serde_json::Value>")]
    pub vars: serde_yaml::Mapping,
    /// SIP domains; each gives the SAN `sip.<domain>` on edge certificates.
    #[serde(default)]
    pub sip_domains: Vec<String>,
    /// XMPP domains the edge federates for.
    #[serde(default)]
    pub xmpp_domains: Vec<String>,
    /// SSH defaults for every server (a server may override them).
    #[serde(default)]
    pub ssh: RawSsh,
    #[serde(default)]
    pub sites: Vec<RawSite>,
    #[serde(default)]
    pub frontend_pools: Vec<RawFrontendPool>,
    #[serde(default)]
    pub edge_pools: Vec<RawEdgePool>,
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
    pub dns: Option<RawDns>,
    /// External access policies (identity `global`, `site:NAME`, or a name).
    #[serde(default)]
    pub policies: Vec<RawPolicy>,
    /// Grants of named policies to users.
    #[serde(default)]
    pub grants: Vec<RawGrant>,
    /// Federated XMPP partners.
    #[serde(default)]
    pub partners: Vec<RawPartner>,
    #[serde(default)]
    pub gateway: RawGateway,
    #[serde(default)]
    pub rollout: RawRollout,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    /// Login user (default `root`).
    pub user: Option<String>,
    /// SSH port (default 22).
    pub port: Option<u16>,
    /// Private key file; mutually exclusive with `agent: true`.
    pub identity_file: Option<String>,
    /// Passphrase of the key file; must come from `env()` or `file()`.
    pub passphrase: Option<String>,
    /// Authenticate through ssh-agent (`SSH_AUTH_SOCK`).
    pub agent: Option<bool>,
    /// known_hosts file checked strictly (default `~/.ssh/known_hosts`).
    pub known_hosts: Option<String>,
    /// Privilege escalation when the user is not root.
    #[serde(rename = "become")]
    pub become_: Option<RawBecome>,
    pub connect_timeout_secs: Option<u64>,
    pub command_timeout_secs: Option<u64>,
    /// Keep SSH sessions open this many seconds after a run, for the next
    /// run to reuse (as OpenSSH's ControlPersist; 0, the default: close
    /// them when the run ends; at most 3600).
    pub persist_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawBecome {
    None,
    Sudo,
}

/// Per-server SSH overrides.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawServerSsh {
    /// Address or name to connect to (default: the server's internal address).
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub name: String,
    /// The front-end pool that homes this site's users.
    pub frontend_pool: String,
    /// The site's XMPP federation route: an edge pool with `xmpp_federation: true`.
    pub xmpp_route: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFrontendPool {
    pub name: String,
    pub servers: Vec<RawFrontendServer>,
    /// Users homed on this pool (`user@domain`): the site policy of the first
    /// site (in spec order) served by the pool applies to them, unless a
    /// grant gives them another.
    #[serde(default)]
    pub users: Vec<String>,
    /// The pool's internal XMPP server, where the edge gateways of the
    /// sites it serves relay partners' stanzas (without it, nothing is
    /// relayed).
    pub xmpp_server: Option<RawXmppServer>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawXmppServer {
    /// IP address or DNS name.
    pub address: String,
    /// Server-to-server port (default 5269).
    pub port: Option<u16>,
    /// Whether xfed manages the server on every front-end of the pool
    /// (`prosody`: Prosody 0.12, its federation settings and its route to
    /// the edge); unset, the server is the organisation's own business.
    pub managed: Option<RawManagedServer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawManagedServer {
    Prosody,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFrontendServer {
    pub fqdn: String,
    /// Internal address.
    pub address: String,
    #[serde(default)]
    pub ssh: RawServerSsh,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEdgePool {
    pub name: String,
    pub site: String,
    /// Whether this pool federates over XMPP (runs the gateway).
    #[serde(default)]
    pub xmpp_federation: bool,
    #[serde(default)]
    pub srv: RawSrv,
    pub servers: Vec<RawEdgeServer>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSrv {
    /// Lower is preferred; give each site's pool its own for failover (default 10).
    pub priority: Option<u16>,
    /// Share among servers of equal priority (default 100).
    pub weight: Option<u16>,
    pub ttl: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEdgeServer {
    pub fqdn: String,
    #[serde(default)]
    pub ssh: RawServerSsh,
    pub internal: RawInternal,
    pub external: RawExternal,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInternal {
    pub address: String,
    /// Front-end facing port (default 23456).
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExternal {
    /// The name outside servers reach this edge server by.
    pub fqdn: String,
    pub address: String,
    /// XMPP server-to-server port (default 5269).
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    pub name: String,
    /// The edge pool whose servers get this certificate; or, with
    /// `usage: internal`, a front-end pool whose managed XMPP server
    /// presents it to the gateways.
    pub pool: String,
    /// Which listener uses it (default `external`).
    pub usage: Option<RawCertUsage>,
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub key: RawKey,
    /// Whether the private key may be exported from the host (default false).
    #[serde(default)]
    pub exportable: bool,
    #[serde(default)]
    pub subject: RawSubject,
    #[serde(default)]
    pub sans: RawSans,
    pub issuer: RawIssuer,
    /// Renew when this much of the lifetime remains: `33%` (default) or `30d`.
    pub renew_before: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawCertUsage {
    External,
    Internal,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    /// `rsa` (default) or `ecdsa`.
    pub algorithm: Option<RawKeyAlgorithm>,
    /// RSA: 2048 (default), 3072 or 4096. ECDSA: 256 (P-256).
    pub bits: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawKeyAlgorithm {
    Rsa,
    Ecdsa,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSubject {
    /// Default: the external FQDN of the pool's first server.
    pub common_name: Option<String>,
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    pub locality: Option<String>,
    pub state: Option<String>,
    /// Two-letter ISO 3166 code.
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSans {
    /// Each gives `sip.<domain>` (default: the top-level `sip_domains`).
    pub sip_domains: Option<Vec<String>>,
    /// Added as they are (default: the top-level `xmpp_domains`).
    pub xmpp_domains: Option<Vec<String>>,
    /// Further names.
    #[serde(default)]
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    pub kind: RawIssuerKind,
    /// `csr`: where to write the request for the public CA.
    pub request_path: Option<String>,
    /// `internal_ca`: CA certificate (PEM path).
    pub ca_cert: Option<String>,
    /// `internal_ca`: CA private key (PEM), from `file()` or `env()`.
    pub ca_key: Option<String>,
    /// `internal_ca`: days of validity (default 397).
    pub validity_days: Option<u32>,
    /// `acme`: directory URL.
    pub directory: Option<String>,
    /// `acme`: CA bundle that signs the ACME server's HTTPS certificate.
    pub ca_bundle: Option<String>,
    /// `acme`: account contact, e.g. `mailto:ops@contoso.example`.
    #[serde(default)]
    pub contact: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawIssuerKind {
    Csr,
    InternalCa,
    Acme,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    pub provider: RawDnsProvider,
    #[serde(default)]
    pub zones: Vec<RawZone>,
    /// Records beyond those derived from the edge pools.
    #[serde(default)]
    pub records: Vec<RawRecord>,
    /// Default TTL (300).
    pub ttl: Option<u32>,
    /// Share of a zone's managed records one plan may change (default 30%).
    pub max_change: Option<String>,
    /// A validating recursive resolver, `address[:port]`: `verify` also
    /// asks it for the SRV records, as a partner's server would, and reports
    /// whether the answers validated (DNSSEC).
    pub resolver: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDnsProvider {
    pub kind: RawDnsProviderKind,
    /// `powerdns`: the HTTP API's base URL.
    pub api_url: Option<String>,
    /// `powerdns`: API key; must come from `env()` or `file()`.
    pub api_key: Option<String>,
    /// `powerdns`: server id (default `localhost`).
    pub server_id: Option<String>,
    /// `rfc2136`: the primary server(s) UPDATEs go to, `address[:port]`,
    /// tried in order.
    #[serde(default)]
    pub servers: Vec<String>,
    /// `rfc2136`: where the zone is read by AXFR (default: `servers`).
    pub read_server: Option<String>,
    /// `rfc2136`: the TSIG key every AXFR and UPDATE is signed with.
    pub tsig: Option<RawTsig>,
    /// Create zones that do not exist (default false).
    #[serde(default)]
    pub create_zones: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawDnsProviderKind {
    Powerdns,
    Rfc2136,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTsig {
    /// The key's name as the DNS server knows it.
    pub name: String,
    /// `hmac-sha256` (default) or `hmac-sha512`.
    pub algorithm: Option<RawTsigAlgorithm>,
    /// The key, base64; must come from `env()` or `file()`.
    pub secret: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum RawTsigAlgorithm {
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    pub name: String,
    /// `external` (default) or `internal` (split horizon).
    pub view: Option<RawView>,
    /// Authoritative servers to verify against, `address[:port]`.
    #[serde(default)]
    pub nameservers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawView {
    External,
    Internal,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRecord {
    pub zone: String,
    /// Relative to the zone (`@` for the apex) or absolute with a trailing dot.
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: RawRecordType,
    pub ttl: Option<u32>,
    /// A, AAAA, CNAME, TXT: the record data.
    pub value: Option<String>,
    /// SRV fields.
    pub priority: Option<u16>,
    pub weight: Option<u16>,
    pub port: Option<u16>,
    pub target: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum RawRecordType {
    A,
    Aaaa,
    Cname,
    Srv,
    Txt,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// `global`, `site:NAME`, or a name for a per-user policy.
    pub identity: String,
    #[serde(default)]
    pub enable_federation_access: bool,
    #[serde(default)]
    pub enable_public_cloud_access: bool,
    #[serde(default)]
    pub enable_xmpp_access: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    /// A named (per-user) policy.
    pub policy: String,
    /// `all`, or a list of user addresses.
    pub users: RawUsers,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawUsers {
    /// The word `all`.
    All(String),
    List(Vec<String>),
}

/// A federated partner: Lync's `New-CsXmppAllowedPartner`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPartner {
    pub domain: String,
    /// More domains of the same partner (its `conference.` MUC service,
    /// …), admitted as `domain` is (Lync's AdditionalDomains).
    #[serde(default)]
    pub additional_domains: Vec<String>,
    /// Default `federated`.
    pub kind: Option<RawPartnerKind>,
    /// Default `required`, the only value the gateway accepts.
    pub tls: Option<RawTls>,
    /// How the partner's streams authenticate: `external` (SASL EXTERNAL
    /// with a certificate from `gateway.partner_ca`), `dialback`
    /// (XEP-0220), or `either` (EXTERNAL where it works, else dialback).
    /// Default by kind, as Lync's: `either` for `public_unverified`,
    /// `external` for the others.
    pub auth: Option<RawPartnerAuth>,
    /// Send whitespace keepalives on idle streams with this partner
    /// (default true; the interval is `gateway.limits.keepalive_interval_secs`).
    pub keepalive: Option<bool>,
    /// `host:port` the gateways connect to for this partner instead of its
    /// `_xmpp-server._tcp` SRV records (Lync's ProxyFqdn).
    pub proxy: Option<String>,
    /// The key of an older spec format, replaced by `auth`: read only to
    /// refuse it at its line with the replacement.
    #[schemars(skip)]
    pub dialback: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawPartnerAuth {
    External,
    Dialback,
    Either,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawPartnerKind {
    Federated,
    Trusted,
    PublicVerified,
    PublicUnverified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawTls {
    Required,
    Optional,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    /// Cargo package built from `gateway/` (default `xfed-gateway`).
    pub package: Option<String>,
    /// Default `/opt/xfed`.
    pub install_dir: Option<String>,
    /// Default `/etc/xfed`.
    pub config_dir: Option<String>,
    /// Default `/var/lib/xfed`.
    pub state_dir: Option<String>,
    /// `auto` (default), `systemd` or `direct`.
    pub service_manager: Option<RawServiceManager>,
    /// Admin HTTP port on the internal address (default 8089).
    pub admin_port: Option<u16>,
    /// System user the gateway runs as, created by xfed on every edge
    /// server (default `xfed-gateway`); its group may read the gateway's
    /// keys and configuration, nothing more.
    pub user: Option<String>,
    /// The gateway's memory limit under systemd (`MemoryMax=`): bytes
    /// with an optional `K`, `M`, `G` suffix (default `1G`).
    pub memory_max: Option<String>,
    /// PEM file (on this machine) of the CAs that vouch for partners'
    /// certificates; installed on every gateway. Default: the edge's
    /// system bundle, `/etc/ssl/certs/ca-certificates.crt`.
    pub partner_ca: Option<String>,
    /// PEM file (on this machine) of the CAs that vouch for the internal
    /// XMPP servers' certificates (`frontend_pools[].xmpp_server`);
    /// installed on every gateway as its internal listener's client CA.
    pub internal_ca: Option<String>,
    /// The edge's limits, named after Lync's `Set-CsXmppGatewayConfiguration`
    /// settings; each left out keeps the gateway's default.
    #[serde(default)]
    pub limits: RawLimits,
    /// The organisation's server dialback (XEP-0220) secret, shared by
    /// every gateway; required when a partner may use dialback.
    pub dialback: Option<RawDialback>,
}

/// `gateway.dialback`: the secret dialback keys are made from (XEP-0185).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDialback {
    /// The current secret; must come from `env()` or `file()`.
    pub secret: String,
    /// The secret before the current one, while partners may still hold
    /// keys made with it (rotation); must come from `env()` or `file()`.
    pub previous_secret: Option<String>,
}

/// `gateway.limits`: what an edge server accepts.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Concurrent S2S connections per listener (gateway default 10000).
    pub connection_limit: Option<u64>,
    /// Concurrent S2S connections from one address per listener (default 64).
    pub connection_limit_per_address: Option<u64>,
    /// Concurrent authenticated streams from one partner domain (default
    /// 1000); a stream over it is closed once authenticated.
    pub connection_limit_per_partner: Option<u64>,
    /// Seconds from connect until a stream is authenticated (default 30).
    pub stream_establishment_timeout_secs: Option<u64>,
    /// Seconds of silence after which an established stream is closed
    /// (default 600).
    pub stream_inactivity_timeout_secs: Option<u64>,
    /// Largest stanza once authenticated, in bytes (default 262144).
    pub max_stanza_size_bytes: Option<u64>,
    /// Seconds of silence after which a whitespace keepalive is sent to a
    /// partner with `keepalive: true` (default 60); below the inactivity
    /// timeout.
    pub keepalive_interval_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawServiceManager {
    Auto,
    Systemd,
    Direct,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRollout {
    /// Servers of one pool changed at a time: a count (default 1) or a
    /// share of the pool such as `"30%"` (at least one server).
    pub serial: Option<RawSerial>,
    /// Seconds a server has to pass its health gate (default 30).
    pub health_gate_timeout_secs: Option<u64>,
    /// Stop the rollout once more than this share (0–100) of a pool's
    /// servers failed their health gate (default 0: at the first failure).
    pub max_fail_percentage: Option<u8>,
}

/// `serial: 2` or `serial: "30%"`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawSerial {
    Count(u32),
    Share(String),
}

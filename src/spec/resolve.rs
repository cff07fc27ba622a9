//! Raw spec → resolved [`Spec`] (stage two): render templates, merge
//! defaults, check every reference and rule, and collect *every* problem.
//!
//! Nothing here stops at the first error: each check records a
//! [`Diagnostic`] pointing into the YAML and carries on with a placeholder,
//! so one `xfed validate` run lists all there is to fix.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use super::model::*;
use super::names::{absolute, check_dns_name, parse_percent, parse_renew_before, qualify};
use super::raw::*;
use super::source::Source;
use super::template::Renderer;
use crate::secret::Secret;
use xfed_gateway::config as gateway;

/// Longest `ssh.persist_secs`: a kept session is a logged-in root shell
/// away; an hour covers a working session of plans and applies.
const MAX_PERSIST_SECS: u64 = 3600;

/// Shortest dialback secret: keys made from a guessable one can be forged
/// by anyone (XEP-0185).
const MIN_DIALBACK_SECRET: usize = 16;

pub const DEFAULT_INTERNAL_PORT: u16 = 23456;
pub const DEFAULT_EXTERNAL_PORT: u16 = 5269;
pub const DEFAULT_ADMIN_PORT: u16 = 8089;
/// The system user the gateway runs as unless `gateway.user` says otherwise.
pub const DEFAULT_GATEWAY_USER: &str = "xfed-gateway";
/// The gateway's memory limit under systemd unless `gateway.memory_max` says.
pub const DEFAULT_MEMORY_MAX: &str = "1G";

pub(super) struct Resolver<'a> {
    src: &'a Source,
    r: Renderer,
    /// What `~/` stands for, from the caller's inputs.
    home: Option<PathBuf>,
    diags: Diagnostics,
    /// The domains the gateway will front (`xmpp_domains`), once known and
    /// when some edge pool runs it: users must belong to one of them.
    fronted: Option<Vec<String>>,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(src: &'a Source, r: Renderer, home: Option<PathBuf>) -> Resolver<'a> {
        Resolver {
            src,
            r,
            home,
            diags: Diagnostics::default(),
            fronted: None,
        }
    }

    /// A path field: rendered, then `~/x` → `<home>/x`, as ssh does for
    /// its own files.
    fn path(&mut self, value: &str, field: &str) -> PathBuf {
        let path = self.text(value, field);
        match (path.strip_prefix("~/"), &self.home) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => PathBuf::from(path),
        }
    }

    fn origin(&self, field: &str) -> Origin {
        Origin::new(
            self.src.path().to_path_buf(),
            self.src.value_pos(field),
            field,
        )
    }

    fn error(&mut self, field: &str, message: impl Into<String>) -> &mut Diagnostic {
        let d = Diagnostic::error(self.src, field, self.src.value_pos(field), message);
        self.diags.push(d);
        self.diags.0.last_mut().expect("just pushed")
    }

    fn warning(&mut self, field: &str, message: impl Into<String>) -> &mut Diagnostic {
        let d = Diagnostic::warning(self.src, field, self.src.value_pos(field), message);
        self.diags.push(d);
        self.diags.0.last_mut().expect("just pushed")
    }

    /// Renders a non-secret string. A secret in it is an error: it would be
    /// printed in plans.
    fn text(&mut self, value: &str, field: &str) -> String {
        let rendered = self.r.render(value);
        self.missing_secrets(field);
        match rendered {
            Ok(r) if r.sensitive => {
                let d = self.error(
                    field,
                    format!("`{field}` is not a secret field, but its value comes from a secret"),
                );
                d.expected = Some("a plain value".into());
                d.hint = Some("secrets (env(), file()) may only be used in secret fields such as `dns.provider.api_key`".into());
                r.value
            }
            Ok(r) => r.value,
            Err(e) => {
                let d = self.error(field, e.message);
                d.hint = e.hint;
                value.to_string()
            }
        }
    }

    fn opt_text(&mut self, value: &Option<String>, field: &str) -> Option<String> {
        value.as_ref().map(|v| self.text(v, field))
    }

    /// Warns of every secret that was not there for `field` (only when
    /// missing secrets are allowed, as `validate` allows them).
    fn missing_secrets(&mut self, field: &str) {
        for what in self.r.take_missing() {
            let d = self.warning(field, format!("{what}; `{field}` needs it"));
            d.hint = Some(
                "`plan` and `apply` refuse to run without it; `validate --strict` makes this an error"
                    .into(),
            );
        }
    }

    /// Renders a secret field; it must come from `env()` or `file()`.
    fn secret(&mut self, value: &str, field: &str, example: &str) -> Secret {
        let rendered = self.r.render(value);
        self.missing_secrets(field);
        match rendered {
            Ok(r) if r.sensitive => Secret::new(r.value),
            Ok(r) => {
                let d = self.error(
                    field,
                    format!("`{field}` is a secret and is written in the spec as plain text"),
                );
                d.expected = Some("a value from `env(\"NAME\")` or `file(\"PATH\")`".into());
                d.hint = Some(format!("write `{example}`"));
                Secret::new(r.value)
            }
            Err(e) => {
                let d = self.error(field, e.message);
                d.hint = e.hint;
                Secret::new(String::new())
            }
        }
    }

    fn dns_name(&mut self, value: &str, field: &str, wildcard: bool) -> String {
        let before = self.diags.0.len();
        let name = self.text(value, field).to_ascii_lowercase();
        if self.diags.0.len() > before {
            return name; // already reported: the template did not render
        }
        if let Err(why) = check_dns_name(&name, wildcard) {
            self.error(field, format!("`{name}` is not a valid DNS name: {why}"))
                .expected =
                Some("a fully qualified domain name such as `sip.contoso.example`".into());
        }
        name.trim_end_matches('.').to_string()
    }

    /// An XMPP domain (ours or a partner's): the gateway's rule
    /// (`normalize_domain`, one trailing dot allowed as in a JID), then the
    /// spec's own (a fully qualified name, for DNS).
    fn xmpp_domain(&mut self, value: &str, field: &str) -> String {
        let before = self.diags.0.len();
        let text = self.text(value, field);
        if self.diags.0.len() > before {
            return text.to_ascii_lowercase();
        }
        match gateway::normalize_jid_domain(&text) {
            Ok(domain) => self.dns_name(&domain, field, false),
            Err(message) => {
                self.error(field, message).expected =
                    Some("a domain name such as `fabrikam.example`".into());
                text.to_ascii_lowercase()
            }
        }
    }

    /// A pool's name: it is written into addresses, the gateway's config
    /// and the service unit, so it follows the gateway's name rule.
    fn pool_name(&mut self, value: &str, field: &str) -> String {
        let before = self.diags.0.len();
        let name = self.text(value, field);
        if self.diags.0.len() == before
            && let Err(message) = gateway::check_name(&name, "pool name")
        {
            self.error(field, message).hint =
                Some("pool names are written into files and unit names; e.g. `edge-hq`".into());
        }
        name
    }

    fn ip(&mut self, value: &str, field: &str) -> IpAddr {
        let before = self.diags.0.len();
        let text = self.text(value, field);
        if self.diags.0.len() > before {
            return IpAddr::from([0, 0, 0, 0]);
        }
        text.parse().unwrap_or_else(|_| {
            self.error(field, format!("`{text}` is not an IP address"))
                .expected = Some("an IPv4 or IPv6 address such as `198.51.100.10`".into());
            IpAddr::from([0, 0, 0, 0])
        })
    }

    fn persist(&mut self, secs: Option<u64>) -> Option<Duration> {
        match secs {
            None | Some(0) => None,
            Some(s) if s > MAX_PERSIST_SECS => {
                self.error(
                    "ssh.persist_secs",
                    format!("SSH sessions cannot be kept for {s} seconds"),
                )
                .expected = Some(format!(
                    "0 (close them after each run) to {MAX_PERSIST_SECS} seconds"
                ));
                None
            }
            Some(s) => Some(Duration::from_secs(s)),
        }
    }

    fn port(&mut self, port: Option<u16>, default: u16, field: &str) -> u16 {
        match port {
            Some(0) => {
                self.error(field, "port 0 is not a usable port").expected =
                    Some("a port number from 1 to 65535".into());
                default
            }
            Some(p) => p,
            None => default,
        }
    }

    fn duplicates<'n>(&mut self, what: &str, items: impl IntoIterator<Item = (String, &'n str)>) {
        let mut seen: HashMap<String, String> = HashMap::new();
        for (field, name) in items {
            let key = name.to_ascii_lowercase();
            if let Some(first) = seen.get(&key) {
                let line = self.src.value_pos(first).line;
                self.error(&field, format!("duplicate {what} `{name}`"))
                    .hint = Some(format!(
                    "`{name}` is already declared at line {line}; names must be unique"
                ));
            } else {
                seen.insert(key, field);
            }
        }
    }

    fn reference(&mut self, field: &str, what: &str, name: &str, known: &[&str]) -> bool {
        if known.contains(&name) {
            return true;
        }
        let hint = did_you_mean(name, known.iter().copied()).or_else(|| {
            if known.is_empty() {
                Some(format!("declare a {what} first"))
            } else {
                Some(format!(
                    "known {}: {}",
                    plural(what),
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        });
        let d = self.error(field, format!("{what} `{name}` does not exist"));
        d.expected = Some(format!("the name of a declared {what}"));
        d.hint = hint;
        false
    }

    pub(super) fn resolve(mut self, raw: &RawSpec) -> (Option<Spec>, Diagnostics) {
        if raw.version != 1 {
            let d = self.error(
                "version",
                format!("spec version {} is not supported", raw.version),
            );
            d.expected = Some("`version: 1`".into());
        }

        let sip_domains: Vec<String> = raw
            .sip_domains
            .iter()
            .enumerate()
            .map(|(i, d)| self.dns_name(d, &format!("sip_domains[{i}]"), false))
            .collect();
        let xmpp_domains: Vec<String> = raw
            .xmpp_domains
            .iter()
            .enumerate()
            .map(|(i, d)| self.xmpp_domain(d, &format!("xmpp_domains[{i}]")))
            .collect();
        if raw.edge_pools.iter().any(|p| p.xmpp_federation) {
            self.fronted = Some(xmpp_domains.clone());
        }

        let ssh = self.ssh_defaults(&raw.ssh);
        let frontend_pools = self.frontend_pools(raw, &ssh);
        let edge_pools = self.edge_pools(raw, &ssh);
        let sites = self.sites(raw, &frontend_pools, &edge_pools);
        self.all_servers_unique(&frontend_pools, &edge_pools);
        let partners = self.partners(raw);
        let partner_domains: Vec<String> =
            partners.iter().flat_map(|p| p.domains()).cloned().collect();
        let certificates = self.certificates(
            raw,
            (&edge_pools, &frontend_pools),
            &sip_domains,
            &xmpp_domains,
            &partner_domains,
        );
        let dns = raw.dns.as_ref().map(|d| self.dns(d));
        let policies = self.policies(raw, &sites);
        let grants = self.grants(raw, &policies);
        let gateway = self.gateway(&raw.gateway);
        self.dialback_has_its_secret(raw, &partners, &gateway);
        let rollout = self.rollout(&raw.rollout);

        if raw.edge_pools.iter().any(|p| p.xmpp_federation) && xmpp_domains.is_empty() {
            self.error(
                "xmpp_domains",
                "XMPP federation is on for an edge pool, but no XMPP domain is declared",
            )
            .hint = Some("add `xmpp_domains: [contoso.example]`".into());
        }

        self.relay_has_its_trust(
            &sites,
            (&frontend_pools, &edge_pools),
            &certificates,
            &gateway,
        );

        let mut diags = self.diags;
        diags.sort();
        if diags.has_errors() {
            return (None, diags);
        }
        let spec = Spec {
            file: self.src.path().to_path_buf(),
            sip_domains,
            xmpp_domains,
            sites,
            frontend_pools,
            edge_pools,
            certificates,
            dns,
            policies,
            grants,
            partners,
            gateway,
            rollout,
            redactor: self.r.redactor().clone(),
        };
        (Some(spec), diags)
    }

    fn ssh_defaults(&mut self, raw: &RawSsh) -> SshTarget {
        let auth = match (&raw.identity_file, raw.agent) {
            (Some(_), Some(true)) => {
                self.error(
                    "ssh.agent",
                    "`ssh.identity_file` and `ssh.agent: true` are both set",
                )
                .hint = Some("choose one way to authenticate".into());
                SshAuth::Agent
            }
            (Some(path), _) => SshAuth::KeyFile {
                path: self.path(path, "ssh.identity_file"),
                passphrase: raw.passphrase.as_ref().map(|p| {
                    self.secret(
                        p,
                        "ssh.passphrase",
                        "passphrase: \"{{ env('SSH_KEY_PASSPHRASE') }}\"",
                    )
                }),
            },
            (None, Some(true)) => SshAuth::Agent,
            (None, _) => {
                let d = self.error("ssh", "no SSH authentication is configured");
                d.expected = Some("`ssh.identity_file: PATH` or `ssh.agent: true`".into());
                SshAuth::Agent
            }
        };
        let known_hosts = match &raw.known_hosts {
            Some(k) => self.path(k, "ssh.known_hosts"),
            None => self
                .home
                .as_ref()
                .map(|h| h.join(".ssh/known_hosts"))
                .unwrap_or_else(|| PathBuf::from("/root/.ssh/known_hosts")),
        };
        let user = self
            .opt_text(&raw.user, "ssh.user")
            .unwrap_or_else(|| "root".into());
        let become_ = match raw.become_ {
            Some(RawBecome::Sudo) => Become::Sudo,
            Some(RawBecome::None) => Become::None,
            None if user == "root" => Become::None,
            None => Become::Sudo,
        };
        SshTarget {
            host: String::new(),
            port: self.port(raw.port, 22, "ssh.port"),
            user,
            auth,
            known_hosts,
            become_,
            connect_timeout: Duration::from_secs(raw.connect_timeout_secs.unwrap_or(10)),
            command_timeout: Duration::from_secs(raw.command_timeout_secs.unwrap_or(120)),
            persist: self.persist(raw.persist_secs),
        }
    }

    fn server_ssh(
        &mut self,
        defaults: &SshTarget,
        raw: &RawServerSsh,
        address: &str,
        field: &str,
    ) -> SshTarget {
        let mut t = defaults.clone();
        t.host = match &raw.host {
            Some(h) => self.text(h, &format!("{field}.host")),
            None => address.to_string(),
        };
        t.port = self.port(raw.port, defaults.port, &format!("{field}.port"));
        if let Some(u) = &raw.user {
            t.user = self.text(u, &format!("{field}.user"));
        }
        t
    }

    fn frontend_pools(&mut self, raw: &RawSpec, ssh: &SshTarget) -> Vec<FrontendPool> {
        self.duplicates(
            "front-end pool",
            raw.frontend_pools
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("frontend_pools[{i}].name"), p.name.as_str())),
        );
        let mut pools = Vec::new();
        for (i, p) in raw.frontend_pools.iter().enumerate() {
            let base = format!("frontend_pools[{i}]");
            let name = self.pool_name(&p.name, &format!("{base}.name"));
            if p.servers.is_empty() {
                self.error(
                    &format!("{base}.servers"),
                    format!("front-end pool `{name}` has no servers"),
                )
                .expected = Some("at least one server".into());
            }
            let mut servers = Vec::new();
            for (j, s) in p.servers.iter().enumerate() {
                let f = format!("{base}.servers[{j}]");
                let fqdn = self.dns_name(&s.fqdn, &format!("{f}.fqdn"), false);
                let address = self.ip(&s.address, &format!("{f}.address"));
                servers.push(Server {
                    fqdn,
                    role: Role::Frontend,
                    pool: name.clone(),
                    ssh: self.server_ssh(ssh, &s.ssh, &address.to_string(), &format!("{f}.ssh")),
                    origin: self.origin(&f),
                });
            }
            let users: Vec<String> = p
                .users
                .iter()
                .enumerate()
                .map(|(j, u)| self.user_address(u, &format!("{base}.users[{j}]")))
                .collect();
            let xmpp_server = p.xmpp_server.as_ref().map(|x| {
                let f = format!("{base}.xmpp_server");
                let address = self.text(&x.address, &format!("{f}.address"));
                if address.parse::<IpAddr>().is_err() {
                    self.dns_name(&address, &format!("{f}.address"), false);
                    // xfed's Prosody binds this address itself.
                    if x.managed.is_some() {
                        let d = self.error(
                            &format!("{f}.address"),
                            format!(
                                "a managed XMPP server listens on an IP address, not `{address}`"
                            ),
                        );
                        d.expected = Some("an IPv4 or IPv6 address of the pool's servers".into());
                    }
                }
                XmppServer {
                    address,
                    port: self.port(x.port, 5269, &format!("{f}.port")),
                    managed: x.managed.map(|m| match m {
                        RawManagedServer::Prosody => ManagedServer::Prosody,
                    }),
                }
            });
            pools.push(FrontendPool {
                name,
                servers,
                users,
                xmpp_server,
                origin: self.origin(&base),
            });
        }
        self.users_homed_once(&pools);
        pools
    }

    /// A user is homed on one pool only.
    fn users_homed_once(&mut self, pools: &[FrontendPool]) {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (i, p) in pools.iter().enumerate() {
            for (j, u) in p.users.iter().enumerate() {
                match seen.get(u.as_str()) {
                    Some(first) if *first != p.name => {
                        let d = self.error(
                            &format!("frontend_pools[{i}].users[{j}]"),
                            format!("user `{u}` is homed on front-end pool `{first}` already"),
                        );
                        d.expected = Some("each user on one front-end pool".into());
                        d.hint = Some(format!("remove `{u}` from one of the two pools"));
                    }
                    _ => {
                        seen.insert(u.as_str(), p.name.as_str());
                    }
                }
            }
        }
    }

    /// A user address, `user@domain`, in the gateway's normal form
    /// (`BareJid`), and one of the fronted domains' when a gateway runs.
    fn user_address(&mut self, raw: &str, field: &str) -> String {
        let before = self.diags.0.len();
        let text = self.text(raw, field);
        if self.diags.0.len() > before {
            return text;
        }
        let jid = match gateway::BareJid::parse(&text) {
            Ok(jid) => jid,
            Err(e) => {
                self.error(field, e.to_string());
                return text;
            }
        };
        if let Some(domains) = self.fronted.clone()
            && let Err(message) = gateway::our_user(&text, &domains)
        {
            let d = self.error(field, message);
            d.expected = Some("a user of one of the `xmpp_domains`".into());
            d.hint = Some(format!(
                "the gateway fronts the `xmpp_domains` ({}); add `{}` there or list another user",
                domains.join(", "),
                jid.domain()
            ));
        }
        jid.as_str().to_string()
    }

    fn edge_pools(&mut self, raw: &RawSpec, ssh: &SshTarget) -> Vec<EdgePool> {
        self.duplicates(
            "edge pool",
            raw.edge_pools
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("edge_pools[{i}].name"), p.name.as_str())),
        );
        let site_names: Vec<&str> = raw.sites.iter().map(|s| s.name.as_str()).collect();
        let mut pools = Vec::new();
        for (i, p) in raw.edge_pools.iter().enumerate() {
            let base = format!("edge_pools[{i}]");
            let name = self.pool_name(&p.name, &format!("{base}.name"));
            let site = self.text(&p.site, &format!("{base}.site"));
            self.reference(&format!("{base}.site"), "site", &site, &site_names);
            if p.servers.is_empty() {
                self.error(
                    &format!("{base}.servers"),
                    format!("edge pool `{name}` has no servers"),
                )
                .expected = Some("at least one server".into());
            }
            let mut servers = Vec::new();
            for (j, s) in p.servers.iter().enumerate() {
                let f = format!("{base}.servers[{j}]");
                let fqdn = self.dns_name(&s.fqdn, &format!("{f}.fqdn"), false);
                let internal_address =
                    self.ip(&s.internal.address, &format!("{f}.internal.address"));
                let external_address =
                    self.ip(&s.external.address, &format!("{f}.external.address"));
                let internal_port = self.port(
                    s.internal.port,
                    DEFAULT_INTERNAL_PORT,
                    &format!("{f}.internal.port"),
                );
                let external_port = self.port(
                    s.external.port,
                    DEFAULT_EXTERNAL_PORT,
                    &format!("{f}.external.port"),
                );
                let external_fqdn =
                    self.dns_name(&s.external.fqdn, &format!("{f}.external.fqdn"), false);
                servers.push(EdgeServer {
                    server: Server {
                        fqdn,
                        role: Role::Edge,
                        pool: name.clone(),
                        ssh: self.server_ssh(
                            ssh,
                            &s.ssh,
                            &internal_address.to_string(),
                            &format!("{f}.ssh"),
                        ),
                        origin: self.origin(&f),
                    },
                    internal_address,
                    internal_port,
                    external_fqdn,
                    external_address,
                    external_port,
                });
            }
            pools.push(EdgePool {
                name,
                site,
                xmpp_federation: p.xmpp_federation,
                srv_priority: p.srv.priority.unwrap_or(10),
                srv_weight: p.srv.weight.unwrap_or(100),
                srv_ttl: p.srv.ttl.unwrap_or(300),
                servers,
                origin: self.origin(&base),
            });
        }

        // Failover order: XMPP pools of different sites with one priority
        // leave the choice to chance.
        let xmpp: Vec<(usize, &EdgePool)> = pools
            .iter()
            .enumerate()
            .filter(|(_, p)| p.xmpp_federation)
            .collect();
        for (a, (ia, pa)) in xmpp.iter().enumerate() {
            for (ib, pb) in xmpp.iter().skip(a + 1) {
                if pa.site != pb.site && pa.srv_priority == pb.srv_priority {
                    let field = format!("edge_pools[{ib}].srv.priority");
                    let field = if self.src.has(&field) {
                        field
                    } else {
                        format!("edge_pools[{ib}]")
                    };
                    self.warning(
                        &field,
                        format!(
                            "edge pools `{}` and `{}` are in different sites but share SRV priority {}: no failover order",
                            pa.name, pb.name, pa.srv_priority
                        ),
                    )
                    .hint = Some(format!("give `{}` a priority other than {} (edge_pools[{ia}])", pb.name, pa.srv_priority));
                }
            }
        }
        pools
    }

    fn all_servers_unique(&mut self, fe: &[FrontendPool], edge: &[EdgePool]) {
        let mut names: Vec<(String, String)> = Vec::new();
        for (i, p) in fe.iter().enumerate() {
            for (j, s) in p.servers.iter().enumerate() {
                names.push((
                    format!("frontend_pools[{i}].servers[{j}].fqdn"),
                    s.fqdn.clone(),
                ));
            }
        }
        for (i, p) in edge.iter().enumerate() {
            for (j, s) in p.servers.iter().enumerate() {
                names.push((
                    format!("edge_pools[{i}].servers[{j}].fqdn"),
                    s.server.fqdn.clone(),
                ));
            }
        }
        self.duplicates("server", names.iter().map(|(f, n)| (f.clone(), n.as_str())));
    }

    fn sites(&mut self, raw: &RawSpec, fe: &[FrontendPool], edge: &[EdgePool]) -> Vec<Site> {
        self.duplicates(
            "site",
            raw.sites
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("sites[{i}].name"), s.name.as_str())),
        );
        let fe_names: Vec<&str> = fe.iter().map(|p| p.name.as_str()).collect();
        let edge_names: Vec<&str> = edge.iter().map(|p| p.name.as_str()).collect();
        let xmpp_names: Vec<&str> = edge
            .iter()
            .filter(|p| p.xmpp_federation)
            .map(|p| p.name.as_str())
            .collect();
        let mut sites = Vec::new();
        for (i, s) in raw.sites.iter().enumerate() {
            let base = format!("sites[{i}]");
            let name = self.text(&s.name, &format!("{base}.name"));
            if let Err(p) = gateway::Site::check_name(&name) {
                self.error(&format!("{base}.name"), p.message).hint = p.hint;
            }
            let frontend_pool = self.text(&s.frontend_pool, &format!("{base}.frontend_pool"));
            self.reference(
                &format!("{base}.frontend_pool"),
                "front-end pool",
                &frontend_pool,
                &fe_names,
            );
            let route = match &s.xmpp_route {
                None => {
                    let d = self.error(&base, format!("site `{name}` has no XMPP federation route: route destination invalid or not set"));
                    d.expected = Some(
                        "`xmpp_route: EDGE_POOL`, an edge pool with `xmpp_federation: true`".into(),
                    );
                    d.hint = xmpp_names.first().map(|p| format!("add `xmpp_route: {p}`"));
                    String::new()
                }
                Some(r) => {
                    let field = format!("{base}.xmpp_route");
                    let route = self.text(r, &field);
                    if edge_names.contains(&route.as_str()) && !xmpp_names.contains(&route.as_str())
                    {
                        let d = self.error(
                            &field,
                            format!("site `{name}` routes XMPP federation to edge pool `{route}`, which has XMPP federation off"),
                        );
                        d.expected = Some("an edge pool with `xmpp_federation: true`".into());
                        d.hint = Some(match xmpp_names.first() {
                            Some(p) => format!(
                                "route to `{p}`, or set `xmpp_federation: true` on `{route}`"
                            ),
                            None => format!("set `xmpp_federation: true` on `{route}`"),
                        });
                    } else if !edge_names.contains(&route.as_str()) {
                        // Lync's troubleshooter says "route destination
                        // invalid or not set"; say it, and what to route to.
                        let hint = did_you_mean(&route, xmpp_names.iter().copied()).or_else(|| {
                            let pools: Vec<String> =
                                xmpp_names.iter().map(|p| format!("`{p}`")).collect();
                            Some(if pools.is_empty() {
                                "the XMPP federation route destination is invalid: add an edge pool with `xmpp_federation: true`".to_string()
                            } else {
                                format!(
                                    "the XMPP federation route destination is invalid; route `{name}` to {}",
                                    pools.join(" or ")
                                )
                            })
                        });
                        let d = self.error(&field, format!("site `{name}` routes XMPP federation to edge pool `{route}`, which does not exist"));
                        d.expected =
                            Some("the name of an edge pool with `xmpp_federation: true`".into());
                        d.hint = hint;
                    }
                    route
                }
            };
            sites.push(Site {
                name,
                frontend_pool,
                xmpp_route: route,
                origin: self.origin(&base),
            });
        }
        sites
    }

    fn certificates(
        &mut self,
        raw: &RawSpec,
        (pools, frontend_pools): (&[EdgePool], &[FrontendPool]),
        sip_domains: &[String],
        xmpp_domains: &[String],
        partner_domains: &[String],
    ) -> Vec<Certificate> {
        self.duplicates(
            "certificate",
            raw.certificates
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("certificates[{i}].name"), c.name.as_str())),
        );
        let pool_names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
        let mut certs = Vec::new();
        for (i, c) in raw.certificates.iter().enumerate() {
            let base = format!("certificates[{i}]");
            let name = self.text(&c.name, &format!("{base}.name"));
            let pool_name = self.text(&c.pool, &format!("{base}.pool"));
            let pool = pools.iter().find(|p| p.name == pool_name);
            // An edge pool first (the common case); else a front-end pool,
            // whose managed XMPP server presents the certificate.
            let frontend = match pool {
                Some(_) => None,
                None => frontend_pools.iter().find(|p| p.name == pool_name),
            };
            if pool.is_none() && frontend.is_none() {
                self.reference(
                    &format!("{base}.pool"),
                    "edge pool",
                    &pool_name,
                    &pool_names,
                );
            }
            let usage = match c.usage.unwrap_or(RawCertUsage::External) {
                RawCertUsage::External => CertUsage::External,
                RawCertUsage::Internal => CertUsage::Internal,
            };
            if let Some(fe) = frontend
                && usage == CertUsage::External
            {
                let field = if c.usage.is_some() {
                    format!("{base}.usage")
                } else {
                    format!("{base}.pool")
                };
                let d = self.error(
                    &field,
                    format!("certificate `{name}` names front-end pool `{}`, which has no external listener", fe.name),
                );
                d.expected = Some("`usage: internal` for a front-end pool's certificate".into());
                d.hint = Some("a front-end's certificate is its XMPP server's identity towards the gateways' internal listeners: set `usage: internal`".into());
            }

            let key = match (c.key.algorithm.unwrap_or(RawKeyAlgorithm::Rsa), c.key.bits) {
                (RawKeyAlgorithm::Rsa, None | Some(2048)) => KeySpec::Rsa2048,
                (RawKeyAlgorithm::Rsa, Some(3072)) => KeySpec::Rsa3072,
                (RawKeyAlgorithm::Rsa, Some(4096)) => KeySpec::Rsa4096,
                (RawKeyAlgorithm::Ecdsa, None | Some(256)) => KeySpec::EcdsaP256,
                (alg, Some(bits)) => {
                    let expected = match alg {
                        RawKeyAlgorithm::Rsa => "2048, 3072 or 4096 for `rsa`",
                        RawKeyAlgorithm::Ecdsa => "256 (P-256) for `ecdsa`",
                    };
                    self.error(
                        &format!("{base}.key.bits"),
                        format!("key size {bits} is not supported"),
                    )
                    .expected = Some(expected.into());
                    KeySpec::Rsa2048
                }
            };

            // SANs: sip.<domain> for SIP domains, the XMPP domains, the
            // pool's external FQDNs, extras.
            let sip: Vec<String> = match &c.sans.sip_domains {
                Some(list) => list
                    .iter()
                    .enumerate()
                    .map(|(j, d)| self.dns_name(d, &format!("{base}.sans.sip_domains[{j}]"), false))
                    .collect(),
                None => sip_domains.to_vec(),
            };
            let xmpp: Vec<String> = match &c.sans.xmpp_domains {
                Some(list) => list
                    .iter()
                    .enumerate()
                    .map(|(j, d)| {
                        self.dns_name(d, &format!("{base}.sans.xmpp_domains[{j}]"), false)
                    })
                    .collect(),
                None => xmpp_domains.to_vec(),
            };
            let extra: Vec<String> = c
                .sans
                .extra
                .iter()
                .enumerate()
                .map(|(j, d)| self.dns_name(d, &format!("{base}.sans.extra[{j}]"), true))
                .collect();
            let externals: Vec<String> = match (usage, pool) {
                (CertUsage::External, Some(p)) => {
                    p.servers.iter().map(|s| s.external_fqdn.clone()).collect()
                }
                // Towards the internal servers a gateway speaks for the
                // partners (it presents this certificate as them).
                (CertUsage::Internal, Some(p)) => p
                    .servers
                    .iter()
                    .map(|s| s.server.fqdn.clone())
                    .chain(
                        partner_domains
                            .iter()
                            .filter(|_| p.xmpp_federation)
                            .cloned(),
                    )
                    .collect(),
                // A front-end's XMPP server speaks for our domains (the
                // XMPP domains, below) from each of its servers.
                (CertUsage::Internal, None) => frontend
                    .map(|p| p.servers.iter().map(|s| s.fqdn.clone()).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            // The gateway authenticates the front-end by the XMPP domain
            // it claims; SIP names mean nothing there.
            let sip = if frontend.is_some() { Vec::new() } else { sip };
            let sans = compute_sans(&sip, &xmpp, &externals, &extra);

            if let Some(p) = pool
                && p.xmpp_federation
                && usage == CertUsage::External
            {
                for d in xmpp_domains {
                    if !sans.iter().any(|s| s == d) {
                        let field = if c.sans.xmpp_domains.is_some() {
                            format!("{base}.sans.xmpp_domains")
                        } else {
                            format!("{base}.sans")
                        };
                        let e = self.error(
                            &field,
                            format!("certificate `{name}` is for XMPP edge pool `{}` but lacks the XMPP domain `{d}` in its SANs", p.name),
                        );
                        e.expected = Some(format!("`{d}` among the subject alternative names"));
                        e.hint = Some(format!("add `{d}` to `sans.xmpp_domains`"));
                    }
                }
            }

            let cn_default = externals.first().cloned().unwrap_or_else(|| name.clone());
            let country = self.opt_text(&c.subject.country, &format!("{base}.subject.country"));
            if let Some(cc) = &country
                && (cc.len() != 2 || !cc.chars().all(|ch| ch.is_ascii_uppercase()))
            {
                self.error(
                    &format!("{base}.subject.country"),
                    format!("`{cc}` is not a country code"),
                )
                .expected = Some("a two-letter ISO 3166 code in capitals, such as `US`".into());
            }
            let subject = Subject {
                common_name: match &c.subject.common_name {
                    Some(cn) => self.dns_name(cn, &format!("{base}.subject.common_name"), true),
                    None => cn_default,
                },
                organization: self.opt_text(
                    &c.subject.organization,
                    &format!("{base}.subject.organization"),
                ),
                organizational_unit: self.opt_text(
                    &c.subject.organizational_unit,
                    &format!("{base}.subject.organizational_unit"),
                ),
                locality: self.opt_text(&c.subject.locality, &format!("{base}.subject.locality")),
                state: self.opt_text(&c.subject.state, &format!("{base}.subject.state")),
                country,
            };

            let issuer = self.issuer(&c.issuer, &format!("{base}.issuer"), &name);
            let renew_before = match &c.renew_before {
                None => RenewBefore::Fraction(1.0 / 3.0),
                Some(s) => {
                    let text = self.text(s, &format!("{base}.renew_before"));
                    parse_renew_before(&text).unwrap_or_else(|| {
                        self.error(
                            &format!("{base}.renew_before"),
                            format!("`{text}` is not a renewal window"),
                        )
                        .expected = Some(
                            "a share of the lifetime such as `33%`, or days such as `30d`".into(),
                        );
                        RenewBefore::Fraction(1.0 / 3.0)
                    })
                }
            };
            certs.push(Certificate {
                name,
                pool: pool_name,
                pool_role: if frontend.is_some() {
                    Role::Frontend
                } else {
                    Role::Edge
                },
                usage,
                friendly_name: self.opt_text(&c.friendly_name, &format!("{base}.friendly_name")),
                key,
                exportable: c.exportable,
                subject,
                sans,
                issuer,
                renew_before,
                origin: self.origin(&base),
            });
        }
        certs
    }

    fn issuer(&mut self, raw: &RawIssuer, base: &str, cert: &str) -> Issuer {
        let require =
            |this: &mut Self, v: &Option<String>, key: &str, kind: &str| -> Option<String> {
                if v.is_none() {
                    this.error(
                        base,
                        format!("issuer `{kind}` of certificate `{cert}` needs `{key}`"),
                    )
                    .expected = Some(format!("`{key}:` under `issuer:`"));
                }
                v.as_ref().map(|x| this.text(x, &format!("{base}.{key}")))
            };
        let stray = |this: &mut Self, present: &[(&str, bool)], kind: &str| {
            for (key, is) in present {
                if *is {
                    this.error(
                        &format!("{base}.{key}"),
                        format!("`{key}` does not apply to issuer `{kind}`"),
                    )
                    .hint = Some("remove it, or change `kind`".into());
                }
            }
        };
        match raw.kind {
            RawIssuerKind::Csr => {
                stray(
                    self,
                    &[
                        ("ca_cert", raw.ca_cert.is_some()),
                        ("ca_key", raw.ca_key.is_some()),
                        ("directory", raw.directory.is_some()),
                    ],
                    "csr",
                );
                let path = raw
                    .request_path
                    .as_ref()
                    .map(|p| self.text(p, &format!("{base}.request_path")))
                    .unwrap_or_else(|| format!("{cert}.csr"));
                Issuer::Csr {
                    request_path: path.into(),
                }
            }
            RawIssuerKind::InternalCa => {
                stray(
                    self,
                    &[
                        ("directory", raw.directory.is_some()),
                        ("request_path", raw.request_path.is_some()),
                    ],
                    "internal_ca",
                );
                let ca_cert =
                    require(self, &raw.ca_cert, "ca_cert", "internal_ca").unwrap_or_default();
                let ca_key = match &raw.ca_key {
                    Some(k) => self.secret(
                        k,
                        &format!("{base}.ca_key"),
                        "ca_key: \"{{ file('ca.key') }}\"",
                    ),
                    None => {
                        self.error(
                            base,
                            format!("issuer `internal_ca` of certificate `{cert}` needs `ca_key`"),
                        )
                        .expected = Some("`ca_key: \"{{ file('ca.key') }}\"`".into());
                        Secret::new(String::new())
                    }
                };
                Issuer::InternalCa {
                    ca_cert: ca_cert.into(),
                    ca_key,
                    validity_days: raw.validity_days.unwrap_or(397),
                }
            }
            RawIssuerKind::Acme => {
                stray(
                    self,
                    &[
                        ("ca_cert", raw.ca_cert.is_some()),
                        ("ca_key", raw.ca_key.is_some()),
                        ("request_path", raw.request_path.is_some()),
                    ],
                    "acme",
                );
                let directory =
                    require(self, &raw.directory, "directory", "acme").unwrap_or_default();
                if !directory.is_empty() && !directory.starts_with("https://") {
                    self.error(
                        &format!("{base}.directory"),
                        format!("`{directory}` is not an https URL"),
                    )
                    .expected = Some("the ACME directory URL, `https://…/dir`".into());
                }
                Issuer::Acme {
                    directory,
                    ca_bundle: raw
                        .ca_bundle
                        .as_ref()
                        .map(|b| self.text(b, &format!("{base}.ca_bundle")).into()),
                    contact: raw
                        .contact
                        .iter()
                        .enumerate()
                        .map(|(i, c)| self.text(c, &format!("{base}.contact[{i}]")))
                        .collect(),
                }
            }
        }
    }

    /// `ADDRESS` or `ADDRESS:PORT` (port 53 by default).
    fn name_server(&mut self, value: &str, field: &str) -> Option<SocketAddr> {
        let text = self.text(value, field);
        let parsed = text.parse::<SocketAddr>().ok().or_else(|| {
            text.parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
        });
        if parsed.is_none() {
            self.error(field, format!("`{text}` is not a name server address"))
                .expected = Some("`ADDRESS` or `ADDRESS:PORT`, such as `203.0.113.53:53`".into());
        }
        parsed
    }

    fn dns_provider(&mut self, p: &RawDnsProvider) -> DnsProvider {
        let base = "dns.provider";
        let kind = match p.kind {
            RawDnsProviderKind::Powerdns => "powerdns",
            RawDnsProviderKind::Rfc2136 => "rfc2136",
        };
        let stray = |this: &mut Self, present: &[(&str, bool)]| {
            for (key, is) in present {
                if *is {
                    this.error(
                        &format!("{base}.{key}"),
                        format!("`{key}` does not apply to provider `{kind}`"),
                    )
                    .hint = Some("remove it, or change `kind`".into());
                }
            }
        };
        let missing = |this: &mut Self, key: &str, example: &str| {
            this.error(base, format!("provider `{kind}` needs `{key}`"))
                .expected = Some(format!("`{example}` under `provider:`"));
        };
        let api = match p.kind {
            RawDnsProviderKind::Powerdns => {
                stray(
                    self,
                    &[
                        ("servers", !p.servers.is_empty()),
                        ("read_server", p.read_server.is_some()),
                        ("tsig", p.tsig.is_some()),
                    ],
                );
                let api_url = match &p.api_url {
                    Some(u) => self.text(u, "dns.provider.api_url"),
                    None => {
                        missing(self, "api_url", "api_url: http://203.0.113.53:8081");
                        "http://".into()
                    }
                };
                if p.api_url.is_some()
                    && !(api_url.starts_with("http://") || api_url.starts_with("https://"))
                {
                    self.error(
                        "dns.provider.api_url",
                        format!("`{api_url}` is not an HTTP URL"),
                    )
                    .expected = Some("`http://HOST:8081` or `https://…`".into());
                }
                let example = "api_key: \"{{ env('PDNS_API_KEY') }}\"";
                let api_key = match &p.api_key {
                    Some(k) => self.secret(k, "dns.provider.api_key", example),
                    None => {
                        missing(self, "api_key", example);
                        Secret::new(String::new())
                    }
                };
                DnsApi::Powerdns {
                    api_url,
                    api_key,
                    server_id: self
                        .opt_text(&p.server_id, "dns.provider.server_id")
                        .unwrap_or_else(|| "localhost".into()),
                }
            }
            RawDnsProviderKind::Rfc2136 => {
                stray(
                    self,
                    &[
                        ("api_url", p.api_url.is_some()),
                        ("api_key", p.api_key.is_some()),
                        ("server_id", p.server_id.is_some()),
                    ],
                );
                if p.create_zones {
                    self.error(
                        "dns.provider.create_zones",
                        "provider `rfc2136` cannot create zones: dynamic update changes records \
                         of zones the server already serves",
                    )
                    .hint = Some(
                        "create the zone on the DNS server, then remove `create_zones`".into(),
                    );
                }
                if p.servers.is_empty() {
                    missing(self, "servers", "servers: [\"203.0.113.53:53\"]");
                }
                let servers = p
                    .servers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| self.name_server(s, &format!("{base}.servers[{i}]")))
                    .collect();
                let read_server = p
                    .read_server
                    .as_ref()
                    .and_then(|s| self.name_server(s, &format!("{base}.read_server")));
                let tsig = match &p.tsig {
                    Some(t) => self.tsig(t),
                    None => {
                        missing(
                            self,
                            "tsig",
                            "tsig: { name: xfed, algorithm: hmac-sha256, secret: \"{{ file('xfed.key') }}\" }",
                        );
                        Tsig {
                            name: String::new(),
                            algorithm: TsigAlgorithm::HmacSha256,
                            secret: Secret::new(String::new()),
                        }
                    }
                };
                DnsApi::Rfc2136(Rfc2136Settings {
                    servers,
                    read_server,
                    tsig,
                })
            }
        };
        DnsProvider {
            api,
            create_zones: p.create_zones,
        }
    }

    fn tsig(&mut self, t: &RawTsig) -> Tsig {
        let base = "dns.provider.tsig";
        let field = format!("{base}.name");
        let name = self.text(&t.name, &field).to_ascii_lowercase();
        let name = name.trim_end_matches('.').to_string();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.len() > 253 || !name.split('.').all(label_ok) {
            self.error(&field, format!("`{name}` is not a valid TSIG key name"))
                .expected = Some(
                "the key's name as the DNS server's configuration has it, such as `xfed-key`"
                    .into(),
            );
        }
        let secret = self.secret(
            &t.secret,
            &format!("{base}.secret"),
            "secret: \"{{ file('xfed.key') }}\"",
        );
        let value = secret.expose().trim();
        // A secret not set (validate without it) is only warned about.
        if !value.is_empty()
            && !value.contains(super::template::UNSET_SECRET)
            && Tsig::decode_key(value).is_none()
        {
            // Never shows the value: it is the key.
            self.error(&format!("{base}.secret"), "the TSIG secret is not base64")
                .expected = Some(
                "the `secret` of the key as `tsig-keygen` or `keymgr -t` print it (base64)".into(),
            );
        }
        Tsig {
            name,
            algorithm: match t.algorithm.unwrap_or(RawTsigAlgorithm::HmacSha256) {
                RawTsigAlgorithm::HmacSha256 => TsigAlgorithm::HmacSha256,
                RawTsigAlgorithm::HmacSha512 => TsigAlgorithm::HmacSha512,
            },
            secret,
        }
    }

    fn dns(&mut self, raw: &RawDns) -> Dns {
        let provider = self.dns_provider(&raw.provider);
        self.duplicates(
            "zone",
            raw.zones
                .iter()
                .enumerate()
                .map(|(i, z)| (format!("dns.zones[{i}].name"), z.name.as_str())),
        );
        let mut zones = Vec::new();
        for (i, z) in raw.zones.iter().enumerate() {
            let base = format!("dns.zones[{i}]");
            let name = absolute(&self.dns_name(&z.name, &format!("{base}.name"), false));
            let mut nameservers = Vec::new();
            for (j, ns) in z.nameservers.iter().enumerate() {
                let field = format!("{base}.nameservers[{j}]");
                if let Some(a) = self.name_server(ns, &field) {
                    nameservers.push(a);
                }
            }
            zones.push(Zone {
                name,
                view: match z.view.unwrap_or(RawView::External) {
                    RawView::External => View::External,
                    RawView::Internal => View::Internal,
                },
                nameservers,
                origin: self.origin(&base),
            });
        }
        let zone_names: Vec<String> = zones.iter().map(|z| z.name.clone()).collect();
        let ttl = raw.ttl.unwrap_or(300);
        let mut records = Vec::new();
        for (i, r) in raw.records.iter().enumerate() {
            let base = format!("dns.records[{i}]");
            let zone = absolute(&self.text(&r.zone, &format!("{base}.zone")));
            let known: Vec<&str> = zone_names.iter().map(String::as_str).collect();
            self.reference(&format!("{base}.zone"), "zone", &zone, &known);
            let raw_name = self.text(&r.name, &format!("{base}.name"));
            let name = qualify(&raw_name, &zone);
            if let Err(why) = check_dns_name(&name, false) {
                self.error(
                    &format!("{base}.name"),
                    format!("`{name}` is not a valid DNS name: {why}"),
                );
            } else if !name.ends_with(&zone) {
                self.error(
                    &format!("{base}.name"),
                    format!("`{name}` is outside zone `{zone}`"),
                )
                .expected = Some(format!("a name under `{zone}`"));
            }
            let Some(data) = self.record_data(r, &base) else {
                continue;
            };
            records.push(Record {
                zone,
                name,
                ttl: r.ttl.unwrap_or(ttl),
                data,
                origin: self.origin(&base),
            });
        }
        let max_change = match &raw.max_change {
            None => 0.3,
            Some(s) => parse_percent(s).unwrap_or_else(|| {
                self.error("dns.max_change", format!("`{s}` is not a percentage"))
                    .expected = Some("a share such as `30%`".into());
                0.3
            }),
        };
        let resolver = raw
            .resolver
            .as_ref()
            .and_then(|r| self.name_server(r, "dns.resolver"));
        Dns {
            provider,
            zones,
            records,
            ttl,
            max_change,
            resolver,
        }
    }

    fn record_data(&mut self, r: &RawRecord, base: &str) -> Option<RecordData> {
        let value = |this: &mut Self| -> Option<String> {
            match &r.value {
                Some(v) => Some(this.text(v, &format!("{base}.value"))),
                None => {
                    this.error(
                        base,
                        format!("a {} record needs `value`", rtype_name(r.rtype)),
                    )
                    .expected = Some("`value:`".into());
                    None
                }
            }
        };
        let data = match r.rtype {
            RawRecordType::A => {
                let v = value(self)?;
                match v.parse() {
                    Ok(address) => RecordData::A { address },
                    Err(_) => {
                        self.error(
                            &format!("{base}.value"),
                            format!("`{v}` is not an IPv4 address"),
                        )
                        .expected = Some("an IPv4 address for an A record".into());
                        return None;
                    }
                }
            }
            RawRecordType::Aaaa => {
                let v = value(self)?;
                match v.parse() {
                    Ok(address) => RecordData::Aaaa { address },
                    Err(_) => {
                        self.error(
                            &format!("{base}.value"),
                            format!("`{v}` is not an IPv6 address"),
                        )
                        .expected = Some("an IPv6 address for an AAAA record".into());
                        return None;
                    }
                }
            }
            RawRecordType::Cname => {
                let v = value(self)?;
                RecordData::Cname {
                    target: absolute(&self.dns_name(&v, &format!("{base}.value"), false)),
                }
            }
            RawRecordType::Txt => RecordData::Txt { text: value(self)? },
            RawRecordType::Srv => {
                let mut missing = Vec::new();
                if r.port.is_none() {
                    missing.push("port");
                }
                if r.target.is_none() {
                    missing.push("target");
                }
                if !missing.is_empty() {
                    self.error(
                        base,
                        format!("an SRV record needs `{}`", missing.join("` and `")),
                    )
                    .expected = Some("`priority`, `weight`, `port` and `target`".into());
                    return None;
                }
                let target = r.target.as_deref().unwrap_or_default();
                RecordData::Srv {
                    priority: r.priority.unwrap_or(10),
                    weight: r.weight.unwrap_or(100),
                    port: self.port(r.port, 0, &format!("{base}.port")),
                    target: absolute(&self.dns_name(target, &format!("{base}.target"), false)),
                }
            }
        };
        Some(data)
    }

    fn policies(&mut self, raw: &RawSpec, sites: &[Site]) -> Vec<Policy> {
        self.duplicates(
            "policy",
            raw.policies
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("policies[{i}].identity"), p.identity.as_str())),
        );
        let site_names: Vec<&str> = sites.iter().map(|s| s.name.as_str()).collect();
        let mut out = Vec::new();
        for (i, p) in raw.policies.iter().enumerate() {
            let base = format!("policies[{i}]");
            let identity = self.text(&p.identity, &format!("{base}.identity"));
            // The gateway's own rule says what an identity means.
            let scope = match gateway::PolicyScope::of_identity(&identity) {
                Ok(gateway::PolicyScope::Global) => PolicyScope::Global,
                Ok(gateway::PolicyScope::Site(site)) => {
                    self.reference(&format!("{base}.identity"), "site", &site, &site_names);
                    PolicyScope::Site(site)
                }
                Ok(gateway::PolicyScope::User) => PolicyScope::Named(identity.clone()),
                Err(problem) => {
                    let d = self.error(&format!("{base}.identity"), problem.message);
                    d.expected = Some("`global`, `site:NAME`, or a per-user policy name".into());
                    d.hint = problem.hint;
                    PolicyScope::Named(identity.clone())
                }
            };
            out.push(Policy {
                identity,
                scope,
                enable_federation_access: p.enable_federation_access,
                enable_public_cloud_access: p.enable_public_cloud_access,
                enable_xmpp_access: p.enable_xmpp_access,
                origin: self.origin(&base),
            });
        }
        out
    }

    fn grants(&mut self, raw: &RawSpec, policies: &[Policy]) -> Vec<Grant> {
        let known: Vec<&str> = policies.iter().map(|p| p.identity.as_str()).collect();
        let mut out = Vec::new();
        for (i, g) in raw.grants.iter().enumerate() {
            let base = format!("grants[{i}]");
            let policy = self.text(&g.policy, &format!("{base}.policy"));
            if self.reference(&format!("{base}.policy"), "policy", &policy, &known)
                && let Some(p) = policies.iter().find(|p| p.identity == policy)
                && !matches!(p.scope, PolicyScope::Named(_))
            {
                let d = self.error(
                    &format!("{base}.policy"),
                    format!("policy `{policy}` is a global or site policy and cannot be granted"),
                );
                d.expected = Some("a named (per-user) policy".into());
                d.hint = Some(
                    "global and site policies apply by scope; grant a named policy instead".into(),
                );
            }
            let users = match &g.users {
                RawUsers::All(w) if w == "all" => Users::All,
                RawUsers::All(w) => {
                    let d = self.error(
                        &format!("{base}.users"),
                        format!("`{w}` is not a user list"),
                    );
                    d.expected = Some("`all`, or a list of user addresses".into());
                    Users::List(Vec::new())
                }
                RawUsers::List(list) => {
                    let mut users = Vec::new();
                    for (j, u) in list.iter().enumerate() {
                        users.push(self.user_address(u, &format!("{base}.users[{j}]")));
                    }
                    Users::List(users)
                }
            };
            out.push(Grant {
                policy,
                users,
                origin: self.origin(&base),
            });
        }
        self.one_grant_per_user(&out);
        out
    }

    /// A user holds one granted policy, and one grant at most is to all
    /// users: otherwise which policy applies would depend on file order
    /// (the gateway refuses such a policy file too).
    fn one_grant_per_user(&mut self, grants: &[Grant]) {
        let mut all: Option<&str> = None;
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (i, g) in grants.iter().enumerate() {
            match &g.users {
                Users::All => {
                    if let Some(first) = all {
                        let d = self.error(
                            &format!("grants[{i}].users"),
                            format!("policy `{first}` is granted to all users already"),
                        );
                        d.expected = Some("one grant to all users".into());
                        d.hint = Some(if first == g.policy {
                            "remove this grant; it repeats the first".to_string()
                        } else {
                            format!(
                                "keep one of `{first}` and `{}` for all users, grant the other to a list",
                                g.policy
                            )
                        });
                    }
                    all.get_or_insert(g.policy.as_str());
                }
                Users::List(users) => {
                    for (j, u) in users.iter().enumerate() {
                        if let Some(first) = seen.get(u.as_str()) {
                            let d = self.error(
                                &format!("grants[{i}].users[{j}]"),
                                format!("user `{u}` is granted policy `{first}` already"),
                            );
                            d.expected = Some("one granted policy per user".into());
                            d.hint = Some(format!("list `{u}` in one grant, once"));
                        } else {
                            seen.insert(u.as_str(), g.policy.as_str());
                        }
                    }
                }
            }
        }
    }

    fn partners(&mut self, raw: &RawSpec) -> Vec<Partner> {
        let mut out = Vec::new();
        for (i, p) in raw.partners.iter().enumerate() {
            let base = format!("partners[{i}]");
            if let Some(old) = &p.dialback {
                let field = format!("{base}.dialback");
                let with = match (old, p.kind) {
                    (serde_yaml::Value::Bool(true), Some(RawPartnerKind::Trusted)) => {
                        "`auth: external` (a `trusted` partner authenticates by certificate)"
                    }
                    (serde_yaml::Value::Bool(true), _) => "`auth: either` (or `auth: dialback`)",
                    _ => "`auth: external`",
                };
                let d = self.error(
                    &field,
                    format!(
                        "partner `{}`: `dialback` is no longer a partner setting",
                        p.domain
                    ),
                );
                d.expected = Some("`auth: external`, `auth: dialback` or `auth: either`".into());
                d.hint = Some(format!("did you mean `auth:`? write {with} instead"));
            }
            let tls = match p.tls.unwrap_or(RawTls::Required) {
                RawTls::Required => TlsRequirement::Required,
                RawTls::Optional => {
                    let d = self.error(
                        &format!("{base}.tls"),
                        format!("partner `{}`: `tls: optional` is not supported", p.domain),
                    );
                    d.expected = Some("`tls: required`".into());
                    d.hint = Some("the gateway never sends server-to-server traffic in the clear; partners without TLS cannot federate".into());
                    TlsRequirement::Optional
                }
            };
            let kind = match p.kind.unwrap_or(RawPartnerKind::Federated) {
                RawPartnerKind::Federated => PartnerKind::Federated,
                RawPartnerKind::Trusted => PartnerKind::Trusted,
                RawPartnerKind::PublicVerified => PartnerKind::PublicVerified,
                RawPartnerKind::PublicUnverified => PartnerKind::PublicUnverified,
            };
            let auth = match p.auth {
                None => PartnerAuth::default_for(kind),
                Some(RawPartnerAuth::External) => PartnerAuth::External,
                Some(RawPartnerAuth::Dialback) => PartnerAuth::Dialback,
                Some(RawPartnerAuth::Either) => PartnerAuth::Either,
            };
            if kind == PartnerKind::Trusted && auth.may_dialback() {
                let d = self.error(
                    &format!("{base}.auth"),
                    format!(
                        "partner `{}` is `trusted` and may not authenticate by dialback",
                        p.domain
                    ),
                );
                d.expected = Some("`auth: external` for a `trusted` partner".into());
                d.hint = Some("trust beyond federation needs the partner's certificate (SASL EXTERNAL); dialback only proves control of its DNS: use `kind: federated` or `public_unverified` for a partner without a certificate we trust".into());
            }
            let domain = self.partner_domain(&p.domain, &format!("{base}.domain"));
            let additional_domains = p
                .additional_domains
                .iter()
                .enumerate()
                .map(|(j, d)| self.partner_domain(d, &format!("{base}.additional_domains[{j}]")))
                .collect();
            out.push(Partner {
                domain,
                additional_domains,
                kind,
                tls,
                auth,
                keepalive: p.keepalive.unwrap_or(true),
                proxy: p
                    .proxy
                    .as_ref()
                    .map(|x| self.host_port(x, &format!("{base}.proxy"))),
                origin: self.origin(&base),
            });
        }
        self.partner_domains_unique(&out);
        out
    }

    /// A domain belongs to one partner, once: the gateway decides by it
    /// which partner's rules apply to a stream.
    fn partner_domains_unique(&mut self, partners: &[Partner]) {
        let mut seen: HashMap<&str, String> = HashMap::new();
        for (i, p) in partners.iter().enumerate() {
            let fields = std::iter::once(format!("partners[{i}].domain")).chain(
                (0..p.additional_domains.len())
                    .map(|j| format!("partners[{i}].additional_domains[{j}]")),
            );
            for (field, domain) in fields.zip(p.domains()) {
                if let Some(first) = seen.get(domain.as_str()) {
                    let line = self.src.value_pos(first).line;
                    self.error(&field, format!("partner domain `{domain}` is listed twice"))
                        .hint = Some(format!(
                        "`{domain}` is already listed at line {line} (`{first}`); a domain belongs to one partner, once"
                    ));
                } else {
                    seen.insert(domain, field);
                }
            }
        }
    }

    /// Every partner that may use dialback needs the organisation's
    /// dialback secret: refused at the partner, which is what changes.
    fn dialback_has_its_secret(&mut self, raw: &RawSpec, partners: &[Partner], gateway: &Gateway) {
        if gateway.dialback.is_some() {
            return;
        }
        for (i, p) in partners.iter().enumerate() {
            // A trusted partner's dialback is refused already.
            if !p.auth.may_dialback() || p.kind == PartnerKind::Trusted {
                continue;
            }
            let field = if raw.partners[i].auth.is_some() {
                format!("partners[{i}].auth")
            } else {
                format!("partners[{i}]")
            };
            let how = if raw.partners[i].auth.is_some() {
                format!("`auth: {}`", p.auth.as_str())
            } else {
                format!(
                    "`auth: {}` (the default for `{}`)",
                    p.auth.as_str(),
                    p.kind.as_str()
                )
            };
            let d = self.error(
                &field,
                format!(
                    "partner `{}` may use dialback ({how}), but no dialback secret is set",
                    p.domain
                ),
            );
            d.expected = Some("`gateway.dialback.secret`".into());
            d.hint = Some("add `gateway: { dialback: { secret: \"{{ env('XFED_DIALBACK_SECRET') }}\" } }`, or set `auth: external` for a partner with a certificate we trust".into());
        }
    }

    /// A partner's domain: an XMPP domain that is not one of ours (the
    /// gateway refuses a partner among its own `domains`).
    fn partner_domain(&mut self, value: &str, field: &str) -> String {
        let domain = self.xmpp_domain(value, field);
        if let Some(ours) = &self.fronted
            && ours.contains(&domain)
        {
            self.error(
                field,
                format!("`{domain}` is one of our own `xmpp_domains`"),
            )
            .hint = Some("a partner is an outside domain".into());
        }
        domain
    }

    fn gateway(&mut self, raw: &RawGateway) -> Gateway {
        let dir = |this: &mut Self, v: &Option<String>, key: &str, default: &str| -> String {
            let d = v
                .as_ref()
                .map(|x| this.text(x, &format!("gateway.{key}")))
                .unwrap_or_else(|| default.to_string());
            if !d.starts_with('/') {
                this.error(
                    &format!("gateway.{key}"),
                    format!("`{d}` is not an absolute path"),
                )
                .expected = Some("an absolute path on the edge servers".into());
            } else if let Some(c) = d.chars().find(|c| !plain_path_char(*c)) {
                // The directory is written into the systemd unit's
                // `ExecStart=`, where a space splits, `%` expands and a
                // line break starts a new directive.
                let e = this.error(
                    &format!("gateway.{key}"),
                    format!(
                        "`{}` has {c:?}, which a plain path does not",
                        d.escape_debug()
                    ),
                );
                e.expected = Some(
                    "a path of letters, digits and `/`, `.`, `_`, `-`, `+`, such as `/opt/xfed`"
                        .into(),
                );
            }
            d.trim_end_matches('/').to_string()
        };
        Gateway {
            package: self
                .opt_text(&raw.package, "gateway.package")
                .unwrap_or_else(|| "xfed-gateway".into()),
            install_dir: dir(self, &raw.install_dir, "install_dir", "/opt/xfed"),
            config_dir: dir(self, &raw.config_dir, "config_dir", "/etc/xfed"),
            state_dir: dir(self, &raw.state_dir, "state_dir", "/var/lib/xfed"),
            service_manager: match raw.service_manager.unwrap_or(RawServiceManager::Auto) {
                RawServiceManager::Auto => ServiceManager::Auto,
                RawServiceManager::Systemd => ServiceManager::Systemd,
                RawServiceManager::Direct => ServiceManager::Direct,
            },
            admin_port: self.port(raw.admin_port, DEFAULT_ADMIN_PORT, "gateway.admin_port"),
            user: self.gateway_user(&raw.user),
            memory_max: self.memory_max(&raw.memory_max),
            partner_ca: raw
                .partner_ca
                .as_ref()
                .map(|p| self.path(p, "gateway.partner_ca")),
            internal_ca: raw
                .internal_ca
                .as_ref()
                .map(|p| self.path(p, "gateway.internal_ca")),
            limits: self.limits(&raw.limits),
            dialback: raw.dialback.as_ref().map(|d| self.dialback(d)),
        }
    }

    /// `gateway.dialback`: the secrets, each from `env()` or `file()`, one
    /// line the gateway reads back from its file.
    fn dialback(&mut self, raw: &RawDialback) -> DialbackSecrets {
        let one = |this: &mut Self, value: &str, key: &str, name: &str| {
            let field = format!("gateway.dialback.{key}");
            let before = this.diags.0.len();
            let secret = this.secret(
                value,
                &field,
                &format!("{key}: \"{{{{ env('{name}') }}}}\""),
            );
            if this.diags.0.len() == before {
                let v = secret.expose();
                let problem = if v.contains(['\n', '\r']) {
                    Some("has a line break")
                } else if v.trim() != v {
                    Some("begins or ends with white space")
                } else if v.len() < MIN_DIALBACK_SECRET {
                    Some("is too short to be a secret")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    let d = this.error(&field, format!("the dialback secret {problem}"));
                    d.expected = Some(format!(
                        "one line of at least {MIN_DIALBACK_SECRET} characters, without white space at either end"
                    ));
                    d.hint = Some("every gateway makes and checks dialback keys with it; e.g. `openssl rand -hex 32`".into());
                }
            }
            secret
        };
        let secret = one(self, &raw.secret, "secret", "XFED_DIALBACK_SECRET");
        let previous_secret = raw
            .previous_secret
            .as_ref()
            .map(|p| one(self, p, "previous_secret", "XFED_DIALBACK_PREVIOUS_SECRET"));
        if let Some(previous) = &previous_secret
            && previous == &secret
            && secret.expose() != super::template::UNSET_SECRET
        {
            let d = self.warning(
                "gateway.dialback.previous_secret",
                "the previous dialback secret is the current one",
            );
            d.hint = Some("name the secret before the rotation, or remove `previous_secret` once the rotation is over".into());
        }
        DialbackSecrets {
            secret,
            previous_secret,
        }
    }

    /// `gateway.user`: a name `useradd` accepts and nothing can misread
    /// (it goes into the unit's `User=` and `chown`): lower-case letters,
    /// digits, `_` and `-`, starting with a letter or `_`, at most 32
    /// characters; never `root`, which would defeat its purpose.
    fn gateway_user(&mut self, raw: &Option<String>) -> String {
        let Some(name) = self.opt_text(raw, "gateway.user") else {
            return DEFAULT_GATEWAY_USER.into();
        };
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if name == "root" || name == "0" {
            let e = self.error(
                "gateway.user",
                "the gateway must not run as `root`: it parses XML from the whole internet",
            );
            e.expected = Some("an unprivileged system user's name".into());
            e.hint = Some(format!("leave it out for `{DEFAULT_GATEWAY_USER}`"));
        } else if !valid {
            let e = self.error(
                "gateway.user",
                format!("`{}` is not a system user name", name.escape_debug()),
            );
            e.expected = Some(
                "lower-case letters, digits, `_` and `-`, starting with a letter, at most 32 characters"
                    .into(),
            );
        }
        name
    }

    /// `gateway.memory_max`: what systemd's `MemoryMax=` reads as a size.
    fn memory_max(&mut self, raw: &Option<String>) -> String {
        let Some(v) = self.opt_text(raw, "gateway.memory_max") else {
            return DEFAULT_MEMORY_MAX.into();
        };
        let digits = v.trim_end_matches(['K', 'M', 'G', 'T']);
        let ok = !digits.is_empty()
            && digits.len() + 1 >= v.len()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.parse::<u64>().is_ok_and(|n| n > 0);
        if !ok {
            let e = self.error(
                "gateway.memory_max",
                format!("`{}` is not a memory size", v.escape_debug()),
            );
            e.expected = Some(
                "a number of bytes with an optional `K`, `M`, `G` or `T` suffix, such as `512M`"
                    .into(),
            );
        }
        v
    }

    /// `gateway.limits`, mapped to the gateway's `[limits]` and checked with
    /// the gateway's own bounds, at the spec line.
    fn limits(&mut self, raw: &RawLimits) -> Vec<(String, u64)> {
        let settings = [
            ("connection_limit", "max_connections", raw.connection_limit),
            (
                "connection_limit_per_address",
                "max_connections_per_ip",
                raw.connection_limit_per_address,
            ),
            (
                "connection_limit_per_partner",
                "max_connections_per_partner",
                raw.connection_limit_per_partner,
            ),
            (
                "stream_establishment_timeout_secs",
                "negotiation_timeout_secs",
                raw.stream_establishment_timeout_secs,
            ),
            (
                "stream_inactivity_timeout_secs",
                "idle_timeout_secs",
                raw.stream_inactivity_timeout_secs,
            ),
            (
                "max_stanza_size_bytes",
                "max_stanza_bytes",
                raw.max_stanza_size_bytes,
            ),
            (
                "keepalive_interval_secs",
                "keepalive_interval_secs",
                raw.keepalive_interval_secs,
            ),
        ];
        let mut out = Vec::new();
        for (ours, theirs, value) in settings {
            let Some(v) = value else { continue };
            let field = format!("gateway.limits.{ours}");
            match xfed_gateway::config::check_limit(theirs, v) {
                Ok(()) => out.push((theirs.to_string(), v)),
                Err(message) => {
                    let d = self.error(&field, format!("the gateway refuses {v}: {message}"));
                    d.hint =
                        Some("the gateway's own bound; see gateway/gateway.example.toml".into());
                }
            }
        }
        if let Some(interval) = raw.keepalive_interval_secs {
            let idle = raw.stream_inactivity_timeout_secs.unwrap_or_else(|| {
                xfed_gateway::config::Limits::default()
                    .idle_timeout
                    .as_secs()
            });
            if interval >= idle {
                let d = self.error(
                    "gateway.limits.keepalive_interval_secs",
                    format!(
                        "a keepalive every {interval} s comes too late for streams closed after {idle} s of silence"
                    ),
                );
                d.expected = Some(format!(
                    "less than `stream_inactivity_timeout_secs` ({idle})"
                ));
                d.hint = Some("partners with the same idle timeout close the stream before the keepalive is sent".into());
            }
        }
        out
    }

    /// A front-end pool with an `xmpp_server` makes the edge pools that
    /// relay to it (`model::relay_frontend`) speak TLS to it both ways,
    /// which needs the internal certificate (their identity as the
    /// partners) and the CA that vouches for the internal server.
    fn relay_has_its_trust(
        &mut self,
        sites: &[Site],
        (frontend_pools, edge_pools): (&[FrontendPool], &[EdgePool]),
        certificates: &[Certificate],
        gateway: &Gateway,
    ) {
        for (i, p) in frontend_pools.iter().enumerate() {
            let Some(server) = &p.xmpp_server else {
                continue;
            };
            let field = format!("frontend_pools[{i}].xmpp_server");
            if server.managed.is_some()
                && !certificates.iter().any(|c| {
                    c.pool == p.name
                        && c.pool_role == Role::Frontend
                        && c.usage == CertUsage::Internal
                })
            {
                let d = self.error(
                    &format!("{field}.managed"),
                    format!(
                        "the managed XMPP server of front-end pool `{}` has no certificate",
                        p.name
                    ),
                );
                d.expected = Some(format!(
                    "a certificate with `pool: {}` and `usage: internal`",
                    p.name
                ));
                d.hint = Some("the gateways' internal listener requires mutual TLS: the front-end presents this certificate, issued by the internal CA (`issuer: { kind: internal_ca, ... }`)".into());
            }
            let relaying: Vec<&str> = edge_pools
                .iter()
                .filter(|e| {
                    super::model::relay_frontend(sites, frontend_pools, e)
                        .is_some_and(|f| f.name == p.name)
                })
                .map(|e| e.name.as_str())
                .collect();
            for edge in relaying {
                if !certificates.iter().any(|c| {
                    c.pool == edge && c.pool_role == Role::Edge && c.usage == CertUsage::Internal
                }) {
                    let d = self.error(
                        &field,
                        format!("edge pool `{edge}` relays to this XMPP server but has no internal certificate"),
                    );
                    d.expected = Some(format!(
                        "a certificate with `pool: {edge}` and `usage: internal`"
                    ));
                    d.hint = Some("its SANs get the partner domains: the gateway presents it as the partners to the internal server".into());
                }
            }
            if gateway.internal_ca.is_none() {
                let d = self.error(
                    &field,
                    "relaying to an internal XMPP server needs the CA that vouches for it",
                );
                d.expected =
                    Some("`gateway.internal_ca: PATH` (a PEM file on this machine)".into());
            }
        }
    }

    /// `host:port`, the host an IP address (IPv6 in brackets) or a DNS
    /// name: the gateway's rule (`ServerAddress`), then the spec's for a
    /// DNS name (fully qualified).
    fn host_port(&mut self, value: &str, field: &str) -> String {
        let before = self.diags.0.len();
        let text = self.text(value, field);
        if self.diags.0.len() > before {
            return text;
        }
        match gateway::ServerAddress::parse(&text) {
            Ok(a) if a.host.parse::<IpAddr>().is_err() => {
                self.dns_name(&a.host, field, false);
            }
            Ok(_) => {}
            Err(message) => {
                self.error(field, message).expected =
                    Some("a host and a port, such as `xmpp.fabrikam.example:5269`".into());
            }
        }
        text
    }

    fn rollout(&mut self, raw: &RawRollout) -> Rollout {
        let serial = match &raw.serial {
            Some(RawSerial::Count(0)) => {
                self.error(
                    "rollout.serial",
                    "`serial: 0` would never roll anything out",
                )
                .expected = Some("at least 1 server at a time".into());
                Serial::Count(1)
            }
            Some(RawSerial::Count(n)) => Serial::Count(*n),
            Some(RawSerial::Share(s)) => {
                match s
                    .trim()
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<u8>().ok())
                {
                    Some(p @ 1..=100) => Serial::Percent(p),
                    _ => {
                        self.error(
                            "rollout.serial",
                            format!("`{s}` is not a number of servers or a share of a pool"),
                        )
                        .expected = Some(
                            "a whole number of servers (`2`) or a percentage from 1% to 100% (`\"30%\"`)"
                                .into(),
                        );
                        Serial::Count(1)
                    }
                }
            }
            None => Serial::Count(1),
        };
        let max_fail_percentage = match raw.max_fail_percentage {
            Some(p) if p > 100 => {
                self.error(
                    "rollout.max_fail_percentage",
                    format!("{p} is more than all of a pool"),
                )
                .expected = Some("a percentage from 0 to 100".into());
                0
            }
            Some(p) => p,
            None => 0,
        };
        Rollout {
            serial,
            health_gate_timeout: Duration::from_secs(raw.health_gate_timeout_secs.unwrap_or(30)),
            max_fail_percentage,
        }
    }
}

/// A character a directory written into service units and command lines
/// may have without quoting.
fn plain_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+')
}

fn plural(what: &str) -> String {
    match what.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{what}s"),
    }
}

fn rtype_name(t: RawRecordType) -> &'static str {
    match t {
        RawRecordType::A => "A",
        RawRecordType::Aaaa => "AAAA",
        RawRecordType::Cname => "CNAME",
        RawRecordType::Srv => "SRV",
        RawRecordType::Txt => "TXT",
    }
}

/// The certificate's SAN set: `sip.<d>` for SIP domains, XMPP domains,
/// listener FQDNs, extras — lower case, sorted, without duplicates.
pub fn compute_sans(
    sip_domains: &[String],
    xmpp_domains: &[String],
    fqdns: &[String],
    extra: &[String],
) -> Vec<String> {
    let mut set: BTreeMap<String, ()> = BTreeMap::new();
    for d in sip_domains {
        set.insert(format!("sip.{}", d.to_ascii_lowercase()), ());
    }
    for n in xmpp_domains.iter().chain(fqdns).chain(extra) {
        set.insert(n.to_ascii_lowercase().trim_end_matches('.').to_string(), ());
    }
    set.into_keys().collect()
}

#[cfg(test)]
mod tests {
    use super::compute_sans;

    #[test]
    fn sans_are_computed_sorted_and_unique() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            compute_sans(
                &s(&["contoso.example"]),
                &s(&["contoso.example"]),
                &s(&["xmpp1.contoso.example", "XMPP1.contoso.example."]),
                &s(&["extra.contoso.example"])
            ),
            s(&[
                "contoso.example",
                "extra.contoso.example",
                "sip.contoso.example",
                "xmpp1.contoso.example"
            ])
        );
    }
}

//! The gateway's configuration: a main TOML file and, optionally, a policy
//! file it names (`policy_file`) holding `[[partners]]`, `[[policies]]`,
//! `[[grants]]` and `[[sites]]`, both validated completely before anything
//! is bound. xfed deploys the two separately so that partner and
//! policy changes are applied with SIGHUP while listener changes restart.
//!
//! Two stages, as in the orchestrator's spec layer: `reader` walks the raw
//! TOML table recording every problem with its field path, and the section
//! types hold resolved values with defaults applied and cross-references
//! (grant → policy, partner ≠ own domain, one explicit grant and one home
//! site per user, distinct listener addresses) checked. Reading certificate
//! files is not done here but in `tls`, which reports its problems with the
//! same field names. This module never binds, connects or logs.
//!
//! The value rules are public and are the only copy: xfed checks its spec
//! with `normalize_domain`, `our_user`, `check_name`,
//! `PolicyScope::of_identity`, `Site::check_name` and `ServerAddress::parse`,
//! and loads the files it rendered with [`Config::parse_with`] before it
//! pushes them, so a value this module refuses is refused at `xfed validate`.

mod bare_jid;
mod dialback;
mod domain;
mod grant;
mod limits;
mod listener;
mod name;
mod partner;
mod partner_auth;
mod policy;
mod problem;
mod reader;
mod relay;
mod reload_scope;
mod site;

pub use bare_jid::{BareJid, JidError};
pub use dialback::DialbackConfig;
pub use domain::{normalize_domain, normalize_jid_domain};
pub use grant::{Grant, Grantees, our_user};
pub use limits::{LIMIT_BOUNDS, Limits, check_limit};
pub use listener::{AdminConfig, CertificatePaths, ListenerConfig, ListenerKind};
pub use name::check_name;
pub use partner::{Partner, PartnerKind, PartnerTls};
pub use partner_auth::PartnerAuth;
pub use policy::{Policy, PolicyScope};
pub use problem::{ConfigError, Problem};
pub use relay::{RelayConfig, ServerAddress};
pub use reload_scope::{RELOADED_SECTIONS, reload_applies};
pub use site::Site;

use crate::log::Level;
use reader::Fields;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the daemon looks when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/xfed/gateway.toml";

/// Prefix of the field path of every problem found in the policy file, so
/// `policy_file:partners[0].domain` names both the file and the field.
pub const POLICY_FILE_PREFIX: &str = "policy_file:";

/// The sections that move to the policy file when `policy_file` is set.
const POLICY_SECTIONS: [&str; 4] = ["partners", "policies", "grants", "sites"];

/// The policy file a configuration was read with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    /// Its path, resolved against the main file's directory when relative.
    pub path: PathBuf,
    /// SHA-256 (hex) of its bytes, reported in `/status`.
    pub sha256: String,
}

/// Reads the policy file's bytes; the filesystem, or a stand-in in tests.
pub type ReadPolicy<'r> = &'r mut dyn FnMut(&Path) -> std::io::Result<Vec<u8>>;

/// A fully validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// SHA-256 (hex) of the file's bytes, reported in `/status`.
    pub sha256: String,
    /// Where partners, policies, grants and sites came from, if not the main file.
    pub policy_file: Option<PolicyFile>,
    /// The XMPP domains the gateway fronts (lowercase, unique, non-empty).
    pub domains: Vec<String>,
    /// The S2S listener facing the internet.
    pub external: ListenerConfig,
    /// The S2S listener facing the organisation's servers.
    pub internal: ListenerConfig,
    /// The HTTP admin listener.
    pub admin: AdminConfig,
    /// Bounds on every inbound stream.
    pub limits: Limits,
    /// Relaying between partners and the internal server; `None` = this
    /// release's relay is off (streams end after TLS, as before).
    pub relay: Option<RelayConfig>,
    /// Where the dialback secrets are; required when a partner may use dialback.
    pub dialback: Option<DialbackConfig>,
    /// Federated partner domains (from the policy file when set).
    pub partners: Vec<Partner>,
    /// External access policies.
    pub policies: Vec<Policy>,
    /// Policy grants.
    pub grants: Vec<Grant>,
    /// Users' home sites.
    pub sites: Vec<Site>,
    /// Opaque version of the published topology, echoed in `/status`.
    pub topology_version: Option<String>,
    /// File to write the daemon's PID to once bound.
    pub pid_file: Option<PathBuf>,
    /// Grace period for open streams on SIGTERM.
    pub drain: Duration,
    /// Most verbose log level written.
    pub log_level: Level,
}

impl Config {
    /// Reads and validates the file at `path` and the policy file it names.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &bytes)
    }

    /// Validates config file contents; `path` names the file in messages and
    /// anchors a relative `policy_file`, which is read from the filesystem.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Config, ConfigError> {
        Config::parse_with(path, bytes, &mut |p: &Path| std::fs::read(p))
    }

    /// As [`Config::parse`], reading the policy file with `read_policy`.
    pub fn parse_with(
        path: &Path,
        bytes: &[u8],
        read_policy: ReadPolicy<'_>,
    ) -> Result<Config, ConfigError> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let text = std::str::from_utf8(bytes).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: format!("not UTF-8: {e}"),
        })?;
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut problems = Vec::new();
        let config = Config::read(path, sha256, &table, read_policy, &mut problems);
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            }),
        }
    }

    fn read(
        path: &Path,
        sha256: String,
        table: &toml::Table,
        read_policy: ReadPolicy<'_>,
        out: &mut Vec<Problem>,
    ) -> Option<Config> {
        let mut f = Fields::new("", table);
        let domains = read_domains(&mut f, out);
        let policy_path = f
            .string("policy_file", out)
            .and_then(|raw| resolve_policy_path(path, &raw, out));
        let mut topology_version = f.string("topology_version", out);
        let pid_file = f.string("pid_file", out).map(PathBuf::from);
        let drain = Duration::from_secs(f.integer("drain_secs", 0, 3600, out).unwrap_or(10));
        let log_level = match f.string("log_level", out) {
            None => Some(Level::Info),
            Some(name) => {
                let level = Level::parse(&name);
                if level.is_none() {
                    out.push(
                        Problem::new("log_level", format!("`{name}` is not a log level"))
                            .hint("use \"error\", \"warn\", \"info\" or \"debug\""),
                    );
                }
                level
            }
        };
        let limits = Limits::read(f.table("limits", out), out);
        let external = ListenerConfig::read(
            ListenerKind::External,
            f.table("external", out),
            &limits,
            out,
        );
        let internal = ListenerConfig::read(
            ListenerKind::Internal,
            f.table("internal", out),
            &limits,
            out,
        );
        let admin = AdminConfig::read(f.table("admin", out), internal.as_ref(), out);
        let relay = RelayConfig::read(f.table("relay", out), out);
        let dialback = DialbackConfig::read(f.table("dialback", out), out);
        if let (Some(relay), Some(internal)) = (&relay, &internal) {
            check_relay_identity(relay, internal, out);
        }
        let (policy_file, sections) = match policy_path {
            None => (None, PolicySections::read(&mut f, "", &domains, out)),
            Some(policy_path) => {
                for key in POLICY_SECTIONS {
                    if f.present(key) {
                        out.push(
                            Problem::new(key, "must be in `policy_file` when it is set").hint(
                                format!(
                                    "move every [[{key}]] table to {}, or remove `policy_file`",
                                    policy_path.display()
                                ),
                            ),
                        );
                    }
                }
                match read_policy_file(&policy_path, read_policy, out) {
                    Some((sha256, policy_table)) => {
                        let mut pf = Fields::new(POLICY_FILE_PREFIX, &policy_table);
                        let sections =
                            PolicySections::read(&mut pf, POLICY_FILE_PREFIX, &domains, out);
                        // The topology's version changes with its partners
                        // and policies, so it may live here and be reloaded
                        // with them rather than force a restart.
                        if let Some(v) = pf.string("topology_version", out) {
                            if topology_version.is_some() {
                                out.push(
                                    Problem::new("topology_version", "is set in both files")
                                        .hint("keep it in one: the policy file, when there is one"),
                                );
                            }
                            topology_version = Some(v);
                        }
                        pf.finish(out);
                        let file = PolicyFile {
                            path: policy_path,
                            sha256,
                        };
                        (Some(file), sections)
                    }
                    None => (None, PolicySections::default()),
                }
            }
        };
        f.finish(out);
        let prefix = if policy_file.is_some() {
            POLICY_FILE_PREFIX
        } else {
            ""
        };
        if !out.iter().any(|p| p.field.starts_with("dialback")) {
            check_dialback(&sections.partners, dialback.as_ref(), prefix, out);
        }

        if let (Some(e), Some(i), Some(a)) = (&external, &internal, &admin) {
            check_addresses(e, i, a, out);
        }
        Some(Config {
            path: path.to_path_buf(),
            sha256,
            policy_file,
            domains,
            external: external?,
            internal: internal?,
            admin: admin?,
            limits,
            relay,
            dialback,
            partners: sections.partners,
            policies: sections.policies,
            grants: sections.grants,
            sites: sections.sites,
            topology_version,
            pid_file,
            drain,
            log_level: log_level?,
        })
    }

    /// The partner one of whose domains is `domain` (normalised).
    pub fn partner_of(&self, domain: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.covers(domain))
    }

    /// Every partner domain (`domain` and `additional_domains`), in order.
    pub fn partner_domains(&self) -> Vec<String> {
        self.partners
            .iter()
            .flat_map(Partner::domains)
            .map(str::to_string)
            .collect()
    }

    /// The listener section of `kind`.
    pub fn listener(&self, kind: ListenerKind) -> &ListenerConfig {
        match kind {
            ListenerKind::External => &self.external,
            ListenerKind::Internal => &self.internal,
        }
    }
}

fn read_domains(f: &mut Fields<'_>, out: &mut Vec<Problem>) -> Vec<String> {
    let Some(raw) = f.string_list("domains", out) else {
        if !out.iter().any(|p| p.field == "domains") {
            out.push(Problem::new("domains", "is required").hint(
                "list the XMPP domains this gateway fronts, e.g. domains = [\"contoso.example\"]",
            ));
        }
        return Vec::new();
    };
    if raw.is_empty() {
        out.push(Problem::new("domains", "is empty").hint("list at least one XMPP domain"));
    }
    let mut domains = Vec::with_capacity(raw.len());
    for (i, d) in raw.iter().enumerate() {
        match normalize_domain(d) {
            Ok(d) if domains.contains(&d) => {
                out.push(Problem::new(
                    format!("domains[{i}]"),
                    format!("`{d}` is listed twice"),
                ));
            }
            Ok(d) => domains.push(d),
            Err(e) => out.push(Problem::new(format!("domains[{i}]"), e)),
        }
    }
    domains
}

/// `[[partners]]`, `[[policies]]`, `[[grants]]` and `[[sites]]`, from
/// whichever file holds them.
#[derive(Debug, Default)]
struct PolicySections {
    partners: Vec<Partner>,
    policies: Vec<Policy>,
    grants: Vec<Grant>,
    sites: Vec<Site>,
}

impl PolicySections {
    /// Reads and cross-checks the four sections of `f`; `prefix` starts
    /// the field paths of the cross-reference problems (as it does `f`'s).
    fn read(
        f: &mut Fields<'_>,
        prefix: &str,
        domains: &[String],
        out: &mut Vec<Problem>,
    ) -> PolicySections {
        let partners: Vec<Partner> = f
            .tables("partners", out)
            .into_iter()
            .filter_map(|t| Partner::read(t, out))
            .collect();
        let policies: Vec<Policy> = f
            .tables("policies", out)
            .into_iter()
            .filter_map(|t| Policy::read(t, out))
            .collect();
        let grants: Vec<Grant> = f
            .tables("grants", out)
            .into_iter()
            .filter_map(|t| Grant::read(t, domains, out))
            .collect();
        let sites: Vec<Site> = f
            .tables("sites", out)
            .into_iter()
            .filter_map(|t| Site::read(t, domains, out))
            .collect();
        check_partners(&partners, domains, prefix, out);
        check_policies(&policies, &grants, prefix, out);
        check_grantees(&grants, prefix, out);
        check_sites(&sites, prefix, out);
        PolicySections {
            partners,
            policies,
            grants,
            sites,
        }
    }
}

/// `policy_file` as a path: relative paths are relative to the main file's directory.
fn resolve_policy_path(config: &Path, raw: &str, out: &mut Vec<Problem>) -> Option<PathBuf> {
    if raw.trim().is_empty() {
        out.push(
            Problem::new("policy_file", "is empty")
                .hint("name the policy file, or remove `policy_file` to keep partners here"),
        );
        return None;
    }
    let path = Path::new(raw);
    Some(match config.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    })
}

/// Reads and parses the policy file; a failure is a problem of `policy_file`.
fn read_policy_file(
    path: &Path,
    read_policy: ReadPolicy<'_>,
    out: &mut Vec<Problem>,
) -> Option<(String, toml::Table)> {
    let bytes = match read_policy(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            out.push(
                Problem::new(
                    "policy_file",
                    format!("cannot read `{}`: {e}", path.display()),
                )
                .hint("xfed writes it next to the main config; deploy it or fix the path"),
            );
            return None;
        }
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let parsed = std::str::from_utf8(&bytes)
        .map_err(|e| format!("not UTF-8: {e}"))
        .and_then(|text| toml::from_str::<toml::Table>(text).map_err(|e| syntax_message(text, &e)));
    match parsed {
        Ok(table) => Some((sha256, table)),
        Err(message) => {
            out.push(Problem::new(
                "policy_file",
                format!("`{}` is not valid TOML: {message}", path.display()),
            ));
            None
        }
    }
}

/// A TOML error on one line: the parser's message and where it is.
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            format!("{message} at line {line}, column {column}")
        }
        None => message,
    }
}

fn check_partners(partners: &[Partner], domains: &[String], prefix: &str, out: &mut Vec<Problem>) {
    // Every domain of every partner, with the field that names it.
    let mut seen: Vec<(&str, String)> = Vec::new();
    for (i, p) in partners.iter().enumerate() {
        let fields = std::iter::once((p.domain.as_str(), format!("{prefix}partners[{i}].domain")))
            .chain(p.additional_domains.iter().enumerate().map(|(k, d)| {
                (
                    d.as_str(),
                    format!("{prefix}partners[{i}].additional_domains[{k}]"),
                )
            }));
        for (domain, field) in fields {
            if domains.iter().any(|d| d == domain) {
                out.push(
                    Problem::new(field, format!("`{domain}` is one of our own `domains`"))
                        .hint("a partner is an outside domain"),
                );
                continue;
            }
            if let Some((_, first)) = seen.iter().find(|(d, _)| *d == domain) {
                out.push(
                    Problem::new(field, format!("`{domain}` is listed twice")).hint(format!(
                        "it is already `{first}`; a domain belongs to one partner"
                    )),
                );
                continue;
            }
            seen.push((domain, field));
        }
    }
}

/// A partner that may use dialback needs `[dialback]`.
fn check_dialback(
    partners: &[Partner],
    dialback: Option<&DialbackConfig>,
    prefix: &str,
    out: &mut Vec<Problem>,
) {
    if dialback.is_some() {
        return;
    }
    for (i, p) in partners.iter().enumerate() {
        if p.auth.allows_dialback() {
            out.push(
                Problem::new(
                    format!("{prefix}partners[{i}].auth"),
                    format!(
                        "`{}` allows dialback but the main config has no `[dialback]`",
                        p.auth.as_str()
                    ),
                )
                .hint(
                    "add [dialback] with secret_file = \"/etc/xfed/dialback.secret\" (the \
                     organisation's dialback secret), or use auth = \"external\"",
                ),
            );
        }
    }
}

fn check_policies(policies: &[Policy], grants: &[Grant], prefix: &str, out: &mut Vec<Problem>) {
    for (i, p) in policies.iter().enumerate() {
        if policies[..i].iter().any(|q| q.identity == p.identity) {
            out.push(Problem::new(
                format!("{prefix}policies[{i}].identity"),
                format!("`{}` is used by an earlier policy", p.identity),
            ));
            continue;
        }
        if let PolicyScope::Site(site) = &p.scope
            && policies[..i]
                .iter()
                .any(|q| q.scope == PolicyScope::Site(site.clone()))
        {
            out.push(Problem::new(
                format!("{prefix}policies[{i}].identity"),
                format!("a second policy for site `{site}`"),
            ));
        }
        if p.scope == PolicyScope::Global
            && policies[..i].iter().any(|q| q.scope == PolicyScope::Global)
        {
            out.push(
                Problem::new(
                    format!("{prefix}policies[{i}].identity"),
                    "a second global policy",
                )
                .hint("there is one global policy; name a site policy `site:NAME`"),
            );
        }
    }
    for (i, g) in grants.iter().enumerate() {
        let field = format!("{prefix}grants[{i}].policy");
        if let Some(p) = policies.iter().find(|p| p.identity == g.policy) {
            if p.scope != PolicyScope::User {
                out.push(
                    Problem::new(
                        field,
                        format!(
                            "`{}` is a {} policy and cannot be granted",
                            g.policy,
                            p.scope.as_str()
                        ),
                    )
                    .hint("global and site policies apply by scope; grant a per-user policy"),
                );
            }
        } else {
            let known: Vec<&str> = policies.iter().map(|p| p.identity.as_str()).collect();
            out.push(
                Problem::new(field, format!("no policy has identity `{}`", g.policy)).hint(
                    if known.is_empty() {
                        "define it in a [[policies]] table".to_string()
                    } else {
                        format!("defined policies: {}", known.join(", "))
                    },
                ),
            );
        }
    }
}

/// One explicit grant per user and one grant to all users, so precedence
/// never has to choose between two grants of the same level.
fn check_grantees(grants: &[Grant], prefix: &str, out: &mut Vec<Problem>) {
    for (i, g) in grants.iter().enumerate() {
        match &g.grantees {
            Grantees::All => {
                if let Some(j) = grants[..i].iter().position(|h| h.grantees == Grantees::All) {
                    out.push(
                        Problem::new(
                            format!("{prefix}grants[{i}].all"),
                            format!(
                                "a second grant to all users (`grants[{j}]` grants `{}` to all)",
                                grants[j].policy
                            ),
                        )
                        .hint("grant one policy to all users; name users for the others"),
                    );
                }
            }
            Grantees::Users(users) => {
                for (k, user) in users.iter().enumerate() {
                    let earlier = grants[..i].iter().enumerate().find(
                        |(_, h)| matches!(&h.grantees, Grantees::Users(us) if us.contains(user)),
                    );
                    if let Some((j, h)) = earlier {
                        out.push(
                            Problem::new(
                                format!("{prefix}grants[{i}].users[{k}]"),
                                format!(
                                    "`{user}` is already granted `{}` by `grants[{j}]`",
                                    h.policy
                                ),
                            )
                            .hint(
                                "a user has one explicit grant; remove the user from one of them",
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// Distinct site names, and each user homed on one site only.
fn check_sites(sites: &[Site], prefix: &str, out: &mut Vec<Problem>) {
    for (i, site) in sites.iter().enumerate() {
        if sites[..i].iter().any(|s| s.name == site.name) {
            out.push(Problem::new(
                format!("{prefix}sites[{i}].name"),
                format!("`{}` is listed twice", site.name),
            ));
            continue;
        }
        for (k, user) in site.users.iter().enumerate() {
            if let Some(home) = sites[..i].iter().find(|s| s.users.contains(user)) {
                out.push(
                    Problem::new(
                        format!("{prefix}sites[{i}].users[{k}]"),
                        format!(
                            "`{user}` is already homed on site `{}`; a user is homed on one site",
                            home.name
                        ),
                    )
                    .hint(format!(
                        "remove `{user}` from site `{}` or from site `{}`",
                        home.name, site.name
                    )),
                );
            }
        }
    }
}

/// The relay speaks for partners towards the internal server with the
/// `[internal]` certificate and verifies that server with `client_ca`.
fn check_relay_identity(_relay: &RelayConfig, internal: &ListenerConfig, out: &mut Vec<Problem>) {
    if internal.certificate.is_none() {
        out.push(
            Problem::new("relay", "needs `internal.cert` and `internal.key`").hint(
                "the internal certificate (its names cover every partner domain) is the client \
                 certificate the relay presents to the internal server",
            ),
        );
    }
    if internal.client_ca.is_none() {
        out.push(
            Problem::new("relay", "needs `internal.client_ca`").hint(
                "it verifies the internal server's certificate when the relay connects to it",
            ),
        );
    }
}

fn check_addresses(
    external: &ListenerConfig,
    internal: &ListenerConfig,
    admin: &AdminConfig,
    out: &mut Vec<Problem>,
) {
    let named = [
        ("external.port", external.address),
        ("internal.port", internal.address),
        ("admin.port", admin.address),
    ];
    for (i, (field, addr)) in named.iter().enumerate() {
        if addr.port() == 0 {
            continue;
        }
        if let Some((other, _)) = named[..i].iter().find(|(_, a)| {
            a.port() == addr.port()
                && (a.ip() == addr.ip() || a.ip().is_unspecified() || addr.ip().is_unspecified())
        }) {
            out.push(
                Problem::new(*field, format!("{addr} is already used by `{other}`"))
                    .hint("give each listener its own port or address"),
            );
        }
    }
}

#[cfg(test)]
mod tests;

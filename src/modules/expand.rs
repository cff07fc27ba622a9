//! Expansion: spec + module manifests → primitive resources per host.
//!
//! Pure: the build artifacts (hashes of what was built) and host facts come
//! in as values. Every string in a manifest is a minijinja template over
//! the same context the module's templates see.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;
use serde_json::json;

use super::contract::check_gateway_config;
use super::library;
use super::manifest::{FileCheck, Manifest, ManifestResource, ManifestRole};
use crate::certs::CertSpec;
use crate::plan::{
    BinarySpec, Desired, FileSpec, ListenerSpec, Manager, ManifestEntry, Phase, Resource,
    ServiceSpec, UserSpec,
};
use crate::spec::{CertUsage, Origin, Role, ServiceManager, Spec};

#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    #[error("module `{module}`: manifest is invalid: {message}")]
    Manifest { module: String, message: String },
    #[error("module `{module}`: template `{template}` failed for `{host}`: {message}")]
    Template {
        module: String,
        template: String,
        host: String,
        message: String,
    },
    #[error("module `{module}` needs the build artifact `{artifact}`, which was not built")]
    MissingArtifact { module: String, artifact: String },
    #[error("module `{module}`: `{value}` is not a valid {what}")]
    BadValue {
        module: String,
        what: &'static str,
        value: String,
    },
    #[error("module `{module}`: {source}")]
    Contract {
        module: String,
        #[source]
        source: super::contract::ContractError,
    },
    #[error("cannot read `{path}` (`{field}`): {source}")]
    ReadFile {
        field: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// A local build output a `binary` resource ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// What expansion needs to know about a host beyond the spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub systemd: bool,
}

pub fn load_manifests() -> Result<Vec<(Manifest, &'static str)>, ExpandError> {
    library::MODULES
        .iter()
        .map(|name| {
            let text = library::file(&format!("{name}/module.yaml")).ok_or_else(|| {
                ExpandError::Manifest {
                    module: name.to_string(),
                    message: "module.yaml is missing".into(),
                }
            })?;
            let m: Manifest = serde_yaml::from_str(text).map_err(|e| ExpandError::Manifest {
                module: name.to_string(),
                message: e.to_string(),
            })?;
            Ok((m, *name))
        })
        .collect()
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("toml", super::toml_filter::toml);
    env.add_filter("lua", super::lua_filter::lua);
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env
}

#[derive(Serialize)]
struct ServerCtx<'a> {
    fqdn: &'a str,
    role: &'a Role,
    pool: &'a str,
    site: Option<&'a str>,
    internal_address: Option<String>,
    internal_port: Option<u16>,
    external_fqdn: Option<&'a str>,
    external_address: Option<String>,
    external_port: Option<u16>,
}

struct Target<'a> {
    server: ServerCtx<'a>,
    origin: &'a Origin,
}

/// Every resource of every module for every host of its role.
pub fn expand(
    spec: &Spec,
    artifacts: &HashMap<String, Artifact>,
    facts: &HashMap<String, HostFacts>,
) -> Result<Vec<Resource>, ExpandError> {
    let env = environment();
    let topo = crate::topology::build(spec);
    let cas = ca_context(spec)?;
    let mut out = Vec::new();
    for (manifest, name) in load_manifests()? {
        for t in targets(spec, &manifest) {
            let systemd = facts.get(t.server.fqdn).is_some_and(|f| f.systemd);
            let manager = match spec.gateway.service_manager {
                ServiceManager::Systemd => Manager::Systemd,
                ServiceManager::Direct => Manager::Direct,
                ServiceManager::Auto if systemd => Manager::Systemd,
                ServiceManager::Auto => Manager::Direct,
            };
            let ctx = Value::from(minijinja::value::Serde(json!({
                "server": t.server,
                "gateway": spec.gateway,
                "topology": topo.to_value(),
                "topology_version": topo.version,
                "xmpp_domains": spec.xmpp_domains,
                "sip_domains": spec.sip_domains,
                "partners": spec.partners,
                "policies": spec.policies,
                "grants": spec.grants,
                "service_manager": manager,
                "tls": tls_context(spec, t.server.pool),
                "relay": relay_context(spec, t.server.pool),
                "xmpp": xmpp_context(spec, t.server.role, t.server.pool),
                "ca": cas,
                "dialback": dialback_context(spec),
            })));
            expand_host(
                &env,
                &manifest,
                name,
                &t,
                &ctx,
                artifacts,
                manager,
                &spec.redactor,
                &mut out,
            )?;
        }
    }
    add_certificates(spec, &mut out);
    add_manifests(spec, &mut out);
    Ok(out)
}

/// Where a pool's certificate for `usage` lives on its servers.
pub fn cert_paths(spec: &Spec, usage: CertUsage) -> (String, String) {
    let name = match usage {
        CertUsage::External => "external",
        CertUsage::Internal => "internal",
    };
    let dir = format!("{}/tls", spec.gateway.config_dir);
    (format!("{dir}/{name}.crt"), format!("{dir}/{name}.key"))
}

/// `tls.external` / `tls.internal` for the gateway's template: the cert
/// and key paths when the pool has such a certificate, else null.
fn tls_context(spec: &Spec, pool: &str) -> serde_json::Value {
    let paths = |usage: CertUsage| {
        spec.certificates
            .iter()
            .find(|c| c.pool == pool && c.usage == usage)
            .map(|_| {
                let (cert, key) = cert_paths(spec, usage);
                json!({ "cert": cert, "key": key })
            })
            .unwrap_or(serde_json::Value::Null)
    };
    json!({ "external": paths(CertUsage::External), "internal": paths(CertUsage::Internal) })
}

/// Where a front-end pool's managed XMPP server keeps its configuration,
/// certificate and data.
pub fn managed_xmpp_dirs(spec: &Spec) -> (String, String) {
    (
        format!("{}/prosody", spec.gateway.config_dir),
        format!("{}/prosody", spec.gateway.state_dir),
    )
}

/// Where a front-end's certificate (its managed XMPP server's identity
/// towards the gateways) lives.
pub fn frontend_cert_paths(spec: &Spec) -> (String, String) {
    let (dir, _) = managed_xmpp_dirs(spec);
    (
        format!("{dir}/tls/internal.crt"),
        format!("{dir}/tls/internal.key"),
    )
}

/// `xmpp` for the internal-xmpp module: the managed server of the
/// front-end pool `pool` (dirs, listener, certificate, the route table as
/// JSON), or null when the pool's server is not managed.
fn xmpp_context(spec: &Spec, role: &Role, pool: &str) -> serde_json::Value {
    if *role != Role::Frontend {
        return serde_json::Value::Null;
    }
    let Some(server) = spec
        .frontend_pool(pool)
        .and_then(|p| p.xmpp_server.as_ref())
        .filter(|x| x.managed.is_some())
    else {
        return serde_json::Value::Null;
    };
    let (dir, data_dir) = managed_xmpp_dirs(spec);
    let (cert, key) = frontend_cert_paths(spec);
    json!({
        "dir": dir,
        "data_dir": data_dir,
        "address": server.address,
        "port": server.port,
        "cert": cert,
        "key": key,
        "routes": crate::topology::RouteTable::build(spec, pool).to_json(),
    })
}

/// `relay` for the gateway's template: `internal_server` (`host:port`),
/// the XMPP server of the front-end pool of the first site (in spec order)
/// routed through `pool` that names one; null when none does (the gateway
/// then relays nothing).
fn relay_context(spec: &Spec, pool: &str) -> serde_json::Value {
    spec.relay_frontend(pool)
        .and_then(|f| f.xmpp_server.as_ref())
        .map_or(
            serde_json::Value::Null,
            |x| json!({ "internal_server": x.endpoint() }),
        )
}

/// Where the gateways keep the dialback secrets: (current, previous).
pub fn dialback_paths(spec: &Spec) -> (String, String) {
    let dir = &spec.gateway.config_dir;
    (
        format!("{dir}/dialback.secret"),
        format!("{dir}/dialback.previous"),
    )
}

/// `dialback` for the gateway's templates: the secret files' paths
/// (`secret_file`, `previous_secret_file` or null) and, for the secret
/// files' own templates only, their values; null without
/// `gateway.dialback`. The files these values go into are sensitive.
fn dialback_context(spec: &Spec) -> serde_json::Value {
    let Some(d) = &spec.gateway.dialback else {
        return serde_json::Value::Null;
    };
    let (current, previous) = dialback_paths(spec);
    json!({
        "secret_file": current,
        "secret": d.secret.expose(),
        "previous_secret_file": d.previous_secret.as_ref().map(|_| previous),
        "previous_secret": d.previous_secret.as_ref().map(|s| s.expose()),
    })
}

/// `ca.internal` / `ca.partner`: the CA bundles the gateways trust for the
/// internal servers and for partners, read from this machine (`path` on
/// the edge, `pem` its content), or null.
fn ca_context(spec: &Spec) -> Result<serde_json::Value, ExpandError> {
    let dir = format!("{}/tls", spec.gateway.config_dir);
    let read = |local: &Option<PathBuf>, field: &'static str, name: &str| match local {
        None => Ok(serde_json::Value::Null),
        Some(p) => std::fs::read_to_string(p)
            .map(|pem| json!({ "path": format!("{dir}/{name}"), "pem": pem }))
            .map_err(|source| ExpandError::ReadFile {
                field,
                path: p.display().to_string(),
                source,
            }),
    };
    Ok(json!({
        "internal": read(&spec.gateway.internal_ca, "gateway.internal_ca", "internal-ca.crt")?,
        "partner": read(&spec.gateway.partner_ca, "gateway.partner_ca", "partner-ca.crt")?,
    }))
}

/// The certificate resources alone (for `xfed cert`), without the
/// gateway they notify.
pub fn certificate_resources(spec: &Spec) -> Vec<Resource> {
    let mut out = Vec::new();
    add_certificates(spec, &mut out);
    out
}

/// A `certificate` resource per spec certificate per server of its pool,
/// in the certificates phase; a changed one reloads the gateway there.
fn add_certificates(spec: &Spec, out: &mut Vec<Resource>) {
    for c in &spec.certificates {
        if c.pool_role == Role::Frontend {
            add_frontend_certificate(spec, c, out);
            continue;
        }
        let Some(pool) = spec.edge_pool(&c.pool) else {
            continue;
        };
        // One certificate per listener: a second for the same use is not installed.
        if spec
            .certificates
            .iter()
            .find(|x| x.pool == c.pool && x.usage == c.usage)
            .is_some_and(|first| first.name != c.name)
        {
            continue;
        }
        let (cert_path, key_path) = cert_paths(spec, c.usage);
        for s in &pool.servers {
            let host = &s.server.fqdn;
            let gateway = service_address(out, host, "xfed-gateway");
            out.push(Resource {
                address: format!("edge/{}/{host}/certificate:{}", pool.name, c.name),
                host: host.clone(),
                role: Role::Edge,
                pool: pool.name.clone(),
                phase: Phase::Certificates,
                // The gateway reads its keys as its own user's group.
                desired: cert_desired(
                    c,
                    &cert_path,
                    &key_path,
                    pool.xmpp_federation.then(|| spec.gateway.user.clone()),
                ),
                origin: c.origin.clone(),
                notifies: gateway.map(|g| (g, crate::plan::Notify::Reload)),
            });
        }
    }
}

/// The desired state of certificate `c` installed at these paths.
fn cert_desired(
    c: &crate::spec::Certificate,
    cert_path: &str,
    key_path: &str,
    key_group: Option<String>,
) -> Desired {
    Desired::Certificate(Box::new(CertSpec {
        name: c.name.clone(),
        usage: c.usage,
        cert_path: cert_path.to_string(),
        key_path: key_path.to_string(),
        key: c.key,
        subject: c.subject.clone(),
        sans: c.sans.clone(),
        issuer: c.issuer.clone(),
        renew_before: c.renew_before,
        exportable: c.exportable,
        friendly_name: c.friendly_name.clone(),
        key_group,
    }))
}

/// The address of the service `name` expanded on `host`, if any: what a
/// certificate installed there notifies.
fn service_address(out: &[Resource], host: &str, name: &str) -> Option<String> {
    out.iter().find_map(|r| match &r.desired {
        Desired::Service(svc) if r.host == host && svc.name == name => Some(r.address.clone()),
        _ => None,
    })
}

/// A front-end pool's certificate on each of its servers, where its
/// managed XMPP server reads it; a changed one restarts that server.
fn add_frontend_certificate(spec: &Spec, c: &crate::spec::Certificate, out: &mut Vec<Resource>) {
    let Some(pool) = spec.frontend_pool(&c.pool) else {
        return;
    };
    let managed = pool
        .xmpp_server
        .as_ref()
        .is_some_and(|x| x.managed.is_some());
    // One certificate per server: a second for the same pool is not installed.
    if !managed
        || spec
            .certificates
            .iter()
            .find(|x| x.pool == c.pool && x.pool_role == Role::Frontend)
            .is_some_and(|first| first.name != c.name)
    {
        return;
    }
    let (cert_path, key_path) = frontend_cert_paths(spec);
    for s in &pool.servers {
        let host = &s.fqdn;
        let server = service_address(out, host, "xfed-prosody");
        out.push(Resource {
            address: format!("fe/{}/{host}/certificate:{}", pool.name, c.name),
            host: host.clone(),
            role: Role::Frontend,
            pool: pool.name.clone(),
            phase: Phase::Certificates,
            desired: cert_desired(c, &cert_path, &key_path, None),
            origin: c.origin.clone(),
            notifies: server.map(|g| (g, crate::plan::Notify::Restart)),
        });
    }
}

/// Every server gets `<state dir>/managed.json`: what xfed manages there,
/// so what leaves the spec can be removed later. It is an ordinary file
/// resource, planned, diffed and written like any other; a server the
/// modules no longer target gets an empty list.
fn add_manifests(spec: &Spec, out: &mut Vec<Resource>) {
    let path = manifest_path(spec);
    for s in spec.servers() {
        let mut entries: Vec<ManifestEntry> = out
            .iter()
            .filter(|r| r.host == s.fqdn)
            .filter_map(ManifestEntry::of)
            .collect();
        entries.sort_by(|a, b| a.address().cmp(b.address()));
        let mut content = serde_json::to_string_pretty(&entries).unwrap_or_else(|_| "[]".into());
        content.push('\n');
        let (role, phase) = match s.role {
            Role::Frontend => ("fe", Phase::Frontend),
            Role::Edge => ("edge", Phase::Restart),
        };
        out.push(Resource {
            address: format!("{role}/{}/{}/file:{path}", s.pool, s.fqdn),
            host: s.fqdn.clone(),
            role: s.role.clone(),
            pool: s.pool.clone(),
            phase,
            desired: Desired::File(FileSpec {
                path: path.clone(),
                content,
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                sensitive: false,
                reload_scope: None,
            }),
            origin: s.origin.clone(),
            notifies: None,
        });
    }
}

/// Where every host's manifest lives.
pub fn manifest_path(spec: &Spec) -> String {
    format!("{}/managed.json", spec.gateway.state_dir)
}

fn targets<'a>(spec: &'a Spec, m: &Manifest) -> Vec<Target<'a>> {
    match m.role {
        ManifestRole::Frontend => spec
            .frontend_pools
            .iter()
            .filter(|p| {
                !m.only_managed_xmpp || p.xmpp_server.as_ref().is_some_and(|x| x.managed.is_some())
            })
            .flat_map(|p| p.servers.iter())
            .map(|s| Target {
                server: ServerCtx {
                    fqdn: &s.fqdn,
                    role: &s.role,
                    pool: &s.pool,
                    site: spec
                        .sites
                        .iter()
                        .find(|x| x.frontend_pool == s.pool)
                        .map(|x| x.name.as_str()),
                    internal_address: None,
                    internal_port: None,
                    external_fqdn: None,
                    external_address: None,
                    external_port: None,
                },
                origin: &s.origin,
            })
            .collect(),
        ManifestRole::Edge => spec
            .edge_pools
            .iter()
            .filter(|p| !m.only_xmpp_pools || p.xmpp_federation)
            .flat_map(|p| p.servers.iter().map(move |s| (p, s)))
            .map(|(p, s)| Target {
                server: ServerCtx {
                    fqdn: &s.server.fqdn,
                    role: &s.server.role,
                    pool: &p.name,
                    site: Some(&p.site),
                    internal_address: Some(s.internal_address.to_string()),
                    internal_port: Some(s.internal_port),
                    external_fqdn: Some(&s.external_fqdn),
                    external_address: Some(s.external_address.to_string()),
                    external_port: Some(s.external_port),
                },
                origin: &s.server.origin,
            })
            .collect(),
    }
}

#[allow(clippy::too_many_arguments)]
fn expand_host(
    env: &Environment<'static>,
    m: &Manifest,
    module: &str,
    t: &Target<'_>,
    ctx: &Value,
    artifacts: &HashMap<String, Artifact>,
    manager: Manager,
    redactor: &crate::secret::Redactor,
    out: &mut Vec<Resource>,
) -> Result<(), ExpandError> {
    let host = t.server.fqdn;
    let role = t.server.role.clone();
    let prefix = format!("{}/{}/{host}", role.prefix(), t.server.pool);
    let render = |template: &str, what: &str| -> Result<String, ExpandError> {
        env.render_str(template, ctx.clone())
            .map_err(|e| ExpandError::Template {
                module: module.into(),
                template: what.into(),
                host: host.into(),
                message: e.to_string(),
            })
    };
    let render_file = |name: &str| -> Result<String, ExpandError> {
        let path = format!("{module}/{name}");
        let src = library::file(&path).ok_or_else(|| ExpandError::Manifest {
            module: module.into(),
            message: format!("template `{name}` is missing"),
        })?;
        let mut text = render(src, name)?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    };
    let mode = |s: &str| {
        u32::from_str_radix(s.trim_start_matches("0o"), 8).map_err(|_| ExpandError::BadValue {
            module: module.into(),
            what: "file mode",
            value: s.into(),
        })
    };

    // Handler name → service address, for `notify`.
    let mut handlers: BTreeMap<String, String> = BTreeMap::new();
    for r in &m.resources {
        if let ManifestResource::Service { handler, name, .. } = r {
            handlers.insert(handler.clone(), format!("{prefix}/service:{name}"));
        }
    }
    let notify_target = |n: &Option<super::manifest::NotifyRule>| -> Result<_, ExpandError> {
        match n {
            None => Ok(None),
            Some(rule) => handlers
                .get(&rule.handler)
                .map(|a| Some((a.clone(), rule.how)))
                .ok_or_else(|| ExpandError::Manifest {
                    module: module.into(),
                    message: format!(
                        "notify names handler `{}`, which no service declares",
                        rule.handler
                    ),
                }),
        }
    };
    let resource = |address: String, phase: Phase, desired: Desired, notifies| Resource {
        address,
        host: host.to_string(),
        role: role.clone(),
        pool: t.server.pool.to_string(),
        phase,
        desired,
        origin: t.origin.clone(),
        notifies,
    };

    let first = out.len();
    let mut checks: Vec<(FileCheck, String)> = Vec::new();
    for r in &m.resources {
        match r {
            ManifestResource::File {
                path,
                template,
                mode: m_,
                owner,
                group,
                notify,
                when,
                check,
                reload_applies,
                sensitive,
            } => {
                if let Some(cond) = when
                    && !env
                        .compile_expression(cond)
                        .and_then(|e| e.eval(ctx.clone()))
                        .map_err(|e| ExpandError::Template {
                            module: module.into(),
                            template: format!("when: {cond}"),
                            host: host.into(),
                            message: e.to_string(),
                        })?
                        .is_true()
                {
                    continue;
                }
                let path = render(path, "path")?;
                if let Some(check) = check {
                    checks.push((*check, path.clone()));
                }
                let content = render_file(template)?;
                let sensitive = *sensitive || redactor.contains_secret(&content);
                out.push(resource(
                    format!("{prefix}/file:{path}"),
                    m.phase,
                    Desired::File(FileSpec {
                        path,
                        content,
                        mode: mode(m_)?,
                        owner: render(owner, "owner")?,
                        group: render(group, "group")?,
                        sensitive,
                        reload_scope: *reload_applies,
                    }),
                    notify_target(notify)?,
                ));
            }
            ManifestResource::Binary {
                path,
                artifact,
                mode: m_,
                notify,
            } => {
                let a = artifacts
                    .get(artifact)
                    .ok_or_else(|| ExpandError::MissingArtifact {
                        module: module.into(),
                        artifact: artifact.clone(),
                    })?;
                let path = render(path, "path")?;
                out.push(resource(
                    format!("{prefix}/binary:{path}"),
                    m.phase,
                    Desired::Binary(BinarySpec {
                        path,
                        sha256: a.sha256.clone(),
                        size: a.size,
                        source: a.path.clone(),
                        mode: mode(m_)?,
                    }),
                    notify_target(notify)?,
                ));
            }
            ManifestResource::Service {
                handler: _,
                name,
                exec,
                pid_file,
                log_file,
                unit_template,
                binary,
                user,
            } => {
                let address = format!("{prefix}/service:{name}");
                if manager == Manager::Systemd {
                    let unit = format!("/etc/systemd/system/{name}.service");
                    out.push(resource(
                        format!("{prefix}/file:{unit}"),
                        m.phase,
                        Desired::File(FileSpec {
                            path: unit,
                            content: render_file(unit_template)?,
                            mode: 0o644,
                            owner: "root".into(),
                            group: "root".into(),
                            sensitive: false,
                            reload_scope: None,
                        }),
                        Some((address.clone(), crate::plan::Notify::Restart)),
                    ));
                }
                let exec = exec
                    .iter()
                    .map(|a| render(a, "exec"))
                    .collect::<Result<Vec<_>, _>>()?;
                let binary_path = match binary {
                    Some(b) => Some(render(b, "binary")?),
                    None => None,
                };
                let binary_sha = binary_path.as_ref().and_then(|b| {
                    out.iter().find_map(|r| match &r.desired {
                        Desired::Binary(s) if &s.path == b && r.host == host => {
                            Some(s.sha256.clone())
                        }
                        _ => None,
                    })
                });
                out.push(resource(
                    address,
                    Phase::Restart,
                    Desired::Service(ServiceSpec {
                        name: name.clone(),
                        manager,
                        exec,
                        pid_file: render(pid_file, "pid_file")?,
                        log_file: render(log_file, "log_file")?,
                        binary: binary_sha,
                        binary_path,
                        user: match user {
                            Some(u) => Some(render(u, "user")?),
                            None => None,
                        },
                    }),
                    None,
                ));
            }
            ManifestResource::User { name, home } => {
                let name = render(name, "user")?;
                out.push(resource(
                    format!("{prefix}/user:{name}"),
                    m.phase,
                    Desired::User(UserSpec {
                        name,
                        home: render(home, "home")?,
                    }),
                    None,
                ));
            }
            ManifestResource::ListenerCheck {
                name,
                address,
                port,
                service,
            } => {
                let addr = render(address, "address")?;
                let port_s = render(port, "port")?;
                let service_addr = handlers.get(service).cloned().ok_or_else(|| {
                    ExpandError::Manifest {
                        module: module.into(),
                        message: format!(
                            "listener `{name}` names handler `{service}`, which no service declares"
                        ),
                    }
                })?;
                out.push(resource(
                    format!("{prefix}/listener:{name}"),
                    Phase::Verify,
                    Desired::Listener(ListenerSpec {
                        name: *name,
                        address: addr.parse().map_err(|_| ExpandError::BadValue {
                            module: module.into(),
                            what: "listener address",
                            value: addr.clone(),
                        })?,
                        port: port_s.parse().map_err(|_| ExpandError::BadValue {
                            module: module.into(),
                            what: "listener port",
                            value: port_s.clone(),
                        })?,
                        service: service_addr,
                    }),
                    None,
                ));
            }
        }
    }
    // Checked once the module's every file for this host is rendered: the
    // main file names the policy file, rendered after it.
    let rendered = |p: &std::path::Path| {
        out[first..].iter().find_map(|r| match &r.desired {
            Desired::File(f) if std::path::Path::new(&f.path) == p => Some(f.content.clone()),
            _ => None,
        })
    };
    for (check, path) in &checks {
        match check {
            FileCheck::GatewayConfig => {
                let text = rendered(std::path::Path::new(path)).unwrap_or_default();
                check_gateway_config(host, path, &text, &rendered).map_err(|source| {
                    ExpandError::Contract {
                        module: module.into(),
                        source,
                    }
                })?;
            }
        }
    }
    Ok(())
}

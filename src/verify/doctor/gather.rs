//! Reading the facts `xfed doctor` judges — the I/O half of the doctor.
//!
//! The same reads a plan makes, through the same pipeline
//! (`engine::read_world`), and nothing more: the gateway is built (to know
//! the sha256 it must have), every host is connected to with strict
//! host-key checking (never trusting a new key: doctor writes nothing,
//! known_hosts included), and each reached host is read in ONE round trip
//! — the gateway's binary, service, listeners and certificate on an edge,
//! the published topology on a front-end. Only a host whose gateway is down
//! gets a second command: the last lines of its log. The listeners are then
//! probed from here (`engine::probe`) and the SRV records resolved at their
//! authoritative servers (`verify::dns`).
//!
//! Unlike `engine::prepare`, a host that cannot be reached or read does not
//! stop the run: it becomes a fact like any other.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::{
    CertFacts, FileAccess, Finding, GatewayFacts, HostFacts, ListenerFacts, PoolFacts,
    PrivilegeFacts, Probe, Reach, SiteRoute, TopologyFacts, World, judge,
};
use crate::engine::EngineError;
use crate::engine::hosts::{ConnectOptions, Host};
use crate::engine::probe::{gateway_status, stream_addresses, xmpp_starttls};
use crate::engine::{ReadOptions, Scope, WorldRead, fan_out, read_world};
use crate::output::Progress;
use crate::plan::{Desired, ListenerKind, Manager, Observed, Resource};
use crate::spec::{CertUsage, Role, Spec};
use crate::transport::{Command, Transport};

/// How many log lines a stopped service shows.
const LOG_LINES: usize = 20;
/// Longest log line kept (a runaway line must not flood the report).
const LOG_LINE_MAX: usize = 400;
const PROBE_LIMIT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Hosts contacted at once.
    pub parallelism: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Reads the world and judges it: every finding, in check order.
pub async fn run(
    spec: &Spec,
    opts: Options,
    progress: &Progress,
) -> Result<Vec<Finding>, DoctorError> {
    let world = gather(spec, opts, progress).await?;
    Ok(judge(&world))
}

type Observation = Result<HashMap<String, Observed>, String>;

/// Everything [`judge`] needs, read without changing anything.
pub async fn gather(spec: &Spec, opts: Options, progress: &Progress) -> Result<World, DoctorError> {
    let topology_path = format!("{}/topology.json", spec.gateway.config_dir);
    let read_opts = ReadOptions {
        scope: Scope::Everything,
        connect: ConnectOptions {
            accept_new_host_keys: false,
            parallelism: opts.parallelism,
        },
        facts: true,
    };
    let dns = async {
        match spec.dns {
            Some(_) => Some(crate::verify::dns::verify_dns(spec).await),
            None => None,
        }
    };
    let n = spec.servers().count();
    progress.line(
        "",
        format!(
            "doctor: building the gateway, reading {n} host{}, resolving DNS",
            if n == 1 { "" } else { "s" }
        ),
    );
    let keep = |r: &Resource| wanted(r, &topology_path);
    let (world, dns) = tokio::join!(read_world(spec, read_opts, progress, &keep), dns);
    let WorldRead {
        hosts,
        unreachable,
        built,
        resources,
        observed,
        ..
    } = world?;
    let built = match built {
        Ok(Some(a)) => Ok(a.sha256),
        Ok(None) => Err("no edge pool has XMPP federation".to_string()),
        Err(e) => Err(e.to_string()),
    };
    let observed: HashMap<String, Observation> = observed
        .into_iter()
        .map(|(h, o)| (h, o.map_err(|e| e.to_string())))
        .collect();
    let failed = unreachable;

    // Then, per host at once: a stopped service's log, and the probes.
    let domain = spec.xmpp_domains.first().cloned().unwrap_or_default();
    let partner = spec.partners.first().map(|p| p.domain.clone());
    let failed: HashMap<String, String> = failed
        .into_iter()
        .map(|(h, e)| (h, e.to_string()))
        .collect();
    let mut jobs = Vec::new();
    for s in spec.servers() {
        let mine: Vec<Resource> = resources
            .iter()
            .filter(|r| r.host == s.fqdn)
            .cloned()
            .collect();
        let reach = match (failed.get(&s.fqdn), observed.get(&s.fqdn)) {
            (Some(e), _) => Reach::Unreachable(e.clone()),
            (None, Some(Err(e))) => Reach::Unreadable(e.clone()),
            (None, Some(Ok(_))) => Reach::Ok,
            (None, None) => Reach::Unreachable("no connection was made".into()),
        };
        let seen = match observed.get(&s.fqdn) {
            Some(Ok(o)) => o.clone(),
            _ => HashMap::new(),
        };
        let base = HostFacts {
            fqdn: s.fqdn.clone(),
            role: s.role.clone(),
            pool: s.pool.clone(),
            target: format!("{}@{}:{}", s.ssh.user, s.ssh.host, s.ssh.port),
            known_hosts: s.ssh.known_hosts.display().to_string(),
            // Front-ends run services too (a managed XMPP server); only an
            // edge's is the gateway.
            runs_gateway: s.role == Role::Edge
                && mine
                    .iter()
                    .any(|r| matches!(r.desired, Desired::Service(_))),
            reach,
            gateway: None,
            topology: None,
        };
        let host = hosts.get(&s.fqdn).cloned();
        let (domain, partner, topology_path) =
            (domain.clone(), partner.clone(), topology_path.clone());
        let key = base.clone();
        let job = async move {
            complete(
                base,
                host,
                mine,
                seen,
                &topology_path,
                &domain,
                partner.as_deref(),
            )
            .await
        };
        jobs.push((key, job));
    }
    // A host whose checks panicked is judged unreadable, with the panic
    // as the reason; it is never left out of the report.
    let facts: Vec<HostFacts> = fan_out(jobs, opts.parallelism)
        .await
        .into_iter()
        .map(|(base, h)| {
            h.unwrap_or_else(|panicked| HostFacts {
                reach: Reach::Unreadable(panicked.to_string()),
                ..base
            })
        })
        .collect();

    Ok(World {
        now_unix: crate::engine::clock::now_unix() as i64,
        xmpp_domains: spec.xmpp_domains.clone(),
        sites: spec
            .sites
            .iter()
            .map(|s| SiteRoute {
                name: s.name.clone(),
                frontend_pool: s.frontend_pool.clone(),
                xmpp_route: s.xmpp_route.clone(),
            })
            .collect(),
        edge_pools: spec
            .edge_pools
            .iter()
            .map(|p| PoolFacts {
                name: p.name.clone(),
                xmpp_federation: p.xmpp_federation,
                servers: p.servers.len(),
            })
            .collect(),
        built,
        hosts: facts,
        dns,
    })
}

/// What doctor reads of a host: the gateway's pieces, and the topology.
fn wanted(r: &Resource, topology_path: &str) -> bool {
    match &r.desired {
        Desired::Binary(_) | Desired::Service(_) | Desired::Listener(_) => true,
        Desired::Certificate(c) => c.usage == CertUsage::External,
        Desired::File(f) => r.role == Role::Frontend && f.path == topology_path,
        Desired::User(_) | Desired::Gone(_) => false,
    }
}

/// Fills in a reached host's gateway and topology facts: the observation,
/// a stopped service's log, the listeners probed from here.
async fn complete(
    mut h: HostFacts,
    host: Option<Host>,
    mine: Vec<Resource>,
    seen: HashMap<String, Observed>,
    topology_path: &str,
    domain: &str,
    partner: Option<&str>,
) -> HostFacts {
    let Some(host) = host.filter(|_| h.reach == Reach::Ok) else {
        return h;
    };
    if h.role == Role::Frontend {
        h.topology = mine
            .iter()
            .find_map(|r| match (&r.desired, seen.get(&r.address)) {
                (Desired::File(f), Some(Observed::File(fact))) if f.path == topology_path => {
                    Some(TopologyFacts {
                        path: f.path.clone(),
                        content: fact.as_ref().map(|x| x.content.clone().unwrap_or_default()),
                        desired: f.content.clone(),
                    })
                }
                _ => None,
            });
    }
    if h.runs_gateway {
        h.gateway = gateway_facts(&host, &mine, &seen, domain, partner).await;
    }
    h
}

async fn gateway_facts(
    host: &Host,
    mine: &[Resource],
    seen: &HashMap<String, Observed>,
    domain: &str,
    partner: Option<&str>,
) -> Option<GatewayFacts> {
    let (service, running) =
        mine.iter()
            .find_map(|r| match (&r.desired, seen.get(&r.address)) {
                (Desired::Service(s), Some(Observed::Service(f))) => Some((s.clone(), f.clone())),
                _ => None,
            })?;
    let (binary_path, binary) = mine
        .iter()
        .find_map(|r| match (&r.desired, seen.get(&r.address)) {
            (Desired::Binary(b), Some(Observed::Binary(f))) => Some((b.path.clone(), f.clone())),
            _ => None,
        })
        .unwrap_or_else(|| (service.binary_path.clone().unwrap_or_default(), None));
    let certificate = mine
        .iter()
        .find_map(|r| match (&r.desired, seen.get(&r.address)) {
            (Desired::Certificate(c), Some(Observed::Certificate(f))) => Some(CertFacts {
                name: c.name.clone(),
                cert_path: c.cert_path.clone(),
                renew_before: c.renew_before,
                installed: match &f.chain {
                    Some(pem) => crate::certs::parse::leaf(pem.as_bytes()),
                    None => Err("no certificate file".into()),
                },
            }),
            _ => None,
        });
    let log = if running.running {
        None
    } else {
        Some(read_log(host, &service.name, service.manager, &service.log_file).await)
    };
    let privilege = match running.pid.filter(|_| running.running) {
        Some(pid) => Some(read_privilege(host, pid, &config_dir(&service.exec)).await),
        None => None,
    };
    let mut listeners = Vec::new();
    for r in mine {
        let (Desired::Listener(l), Some(Observed::Listener(f))) =
            (&r.desired, seen.get(&r.address))
        else {
            continue;
        };
        let address = SocketAddr::new(l.address, l.port);
        let probe = if l.name == ListenerKind::Admin {
            Probe::Status(gateway_status(address, PROBE_LIMIT).await)
        } else {
            let (to, from) = stream_addresses(l.name, domain, partner);
            Probe::Xmpp(xmpp_starttls(address, &to, from.as_deref(), PROBE_LIMIT).await)
        };
        listeners.push(ListenerFacts {
            name: l.name,
            address,
            bound: f.listening,
            probe,
        });
    }
    Some(GatewayFacts {
        binary_path,
        binary,
        service_name: service.name.clone(),
        manager: service.manager,
        pid_file: service.pid_file.clone(),
        log_file: service.log_file.clone(),
        running,
        log,
        listeners,
        certificate,
        privilege,
        user: service.user.clone(),
    })
}

/// The directory of the file the service's `--config` names (`/etc/xfed`).
fn config_dir(exec: &[String]) -> String {
    exec.iter()
        .skip_while(|a| *a != "--config")
        .nth(1)
        .and_then(|c| std::path::Path::new(c).parent())
        .map(|d| d.display().to_string())
        .unwrap_or_default()
}

/// Reads the running gateway's credentials (`/proc/PID/status`: `Uid`,
/// `CapPrm`, `CapEff`) and the owner and mode of its configuration
/// (`DIR/*.toml`) and keys (`DIR/tls/*.key`). Values are arguments.
const PRIVILEGE: &str = r#"pid=$1; dir=$2
[ -r "/proc/$pid/status" ] || { echo "process $pid is gone" >&2; exit 3; }
uid=
while IFS= read -r l; do
  case $l in
  Uid:*) printf '%s\n' "$l"; set -f; set -- $l; set +f; uid=$3 ;;
  CapPrm:*|CapEff:*) printf '%s\n' "$l" ;;
  esac
done < "/proc/$pid/status"
e=$(getent passwd "$uid" 2>/dev/null) && printf 'Name: %s\n' "${e%%:*}"
[ -n "$dir" ] || exit 0
for f in "$dir"/*.toml "$dir"/tls/*.key; do
  [ -f "$f" ] && stat -c 'File: %a %U %G %n' -- "$f"
done
exit 0"#;

async fn read_privilege(host: &Host, pid: u32, dir: &str) -> Result<PrivilegeFacts, String> {
    let cmd = Command::new("sh")
        .args(["-c", PRIVILEGE, "xfed-privilege", &pid.to_string(), dir])
        .label("read the gateway's credentials");
    let out = host
        .with(move |t: &mut dyn Transport| t.run(&cmd))
        .await
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(out.stderr_excerpt());
    }
    parse_privilege(&out.stdout_text())
}

/// The answer of [`PRIVILEGE`].
pub fn parse_privilege(text: &str) -> Result<PrivilegeFacts, String> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .ok_or_else(|| format!("no `{key}` line"))
    };
    let uid = field("Uid:")?
        .split_whitespace()
        .nth(1)
        .and_then(|u| u.parse().ok())
        .ok_or("bad `Uid:` line")?;
    let cap = |key: &str| -> Result<u64, String> {
        let v = field(key)?;
        u64::from_str_radix(v, 16).map_err(|_| format!("bad `{key}` value `{v}`"))
    };
    let mut files = Vec::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("File: ") else {
            continue;
        };
        let mut f = rest.splitn(4, ' ');
        let (Some(mode), Some(owner), Some(group), Some(path)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            return Err(format!("bad file line `{l}`"));
        };
        files.push(FileAccess {
            path: path.to_string(),
            mode: u32::from_str_radix(mode, 8).map_err(|_| format!("bad mode `{mode}`"))?,
            owner: owner.to_string(),
            group: group.to_string(),
        });
    }
    Ok(PrivilegeFacts {
        uid,
        user: field("Name:").ok().map(str::to_string),
        cap_prm: cap("CapPrm:")?,
        cap_eff: cap("CapEff:")?,
        files,
    })
}

/// The last lines of a service's log: its log file (`direct`), or the
/// journal (systemd).
async fn read_log(
    host: &Host,
    name: &str,
    manager: Manager,
    log_file: &str,
) -> Result<Vec<String>, String> {
    let n = LOG_LINES.to_string();
    let cmd = match manager {
        Manager::Direct => Command::new("tail").args(["-n", &n, "--", log_file]),
        Manager::Systemd => Command::new("journalctl").args([
            "--no-pager",
            "-n",
            &n,
            "-u",
            &format!("{name}.service"),
        ]),
    }
    .label("read the gateway's log");
    let out = host
        .with(move |t: &mut dyn Transport| t.run(&cmd))
        .await
        .map_err(|e| e.to_string())?;
    if !out.success() {
        let why = out.stderr_excerpt();
        return Err(if why.is_empty() {
            format!("exit status {}", out.status)
        } else {
            why
        });
    }
    Ok(out
        .stdout_text()
        .lines()
        .map(|l| {
            let l = l.trim_end();
            if l.chars().count() > LOG_LINE_MAX {
                format!("{}…", l.chars().take(LOG_LINE_MAX).collect::<String>())
            } else {
                l.to_string()
            }
        })
        .collect())
}

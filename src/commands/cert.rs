//! `xfed cert list | show-request | import | export`: the certificate
//! commands. They read only the certificate resources, through the engine's
//! one read pipeline (one round trip per host), and `import` installs the
//! CA's answer after checking it against the pending request.
//!
//! Only `export` reads a private key, for a certificate the spec marks
//! exportable, straight into a new 0600 file; `import` moves the pending
//! key into place on the host itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::certs::build::PLACEHOLDER_CN;
use crate::certs::parse;
use crate::certs::resource::{CertFact, CertSpec, CertState};
use crate::engine::hosts::{ConnectOptions, Host, connect_all};
use crate::engine::{ReadOptions, Scope, read_world};
use crate::output::Progress;
use crate::plan::certificate::assess;
use crate::plan::{Desired, Observed, Resource};
use crate::spec::{Issuer, Spec};
use crate::transport::{Command, Transport, WriteOpts};

#[derive(Debug, thiserror::Error)]
pub enum CertCommandError {
    #[error("{0}")]
    Unreachable(String),
    #[error(transparent)]
    Engine(Box<crate::engine::EngineError>),
    #[error("cannot read `{path}`: {detail}")]
    Read { path: String, detail: String },
    #[error("`{path}` is not a certificate: {detail}")]
    NotACertificate { path: String, detail: String },
    #[error(
        "`{path}` is not for any pending request: its public key matches no key waiting for a CA{candidates}\n  hint: `xfed cert list` shows which certificates wait; import the answer to the request `xfed cert show-request` printed"
    )]
    WrongKey { path: String, candidates: String },
    #[error(
        "`{path}` is for the pending key of `{address}` but lacks the requested name{plural} {missing}\n  hint: ask the CA for a certificate with every name of the request"
    )]
    MissingNames {
        path: String,
        address: String,
        plural: &'static str,
        missing: String,
    },
    #[error("`{path}` expired on {date}")]
    Expired { path: String, date: String },
    #[error("installing on `{host}` failed: {detail}")]
    Install { host: String, detail: String },
}

impl From<crate::engine::EngineError> for CertCommandError {
    fn from(e: crate::engine::EngineError) -> Self {
        CertCommandError::Engine(Box::new(e))
    }
}

impl From<crate::engine::observe::ObserveError> for CertCommandError {
    fn from(e: crate::engine::observe::ObserveError) -> Self {
        CertCommandError::Engine(Box::new(e.into()))
    }
}

/// The spec's certificate resources (without the gateway's notify).
pub fn resources(spec: &Spec) -> Vec<Resource> {
    crate::engine::read::certificate_resources(spec)
}

async fn observe(
    spec: &Spec,
    opts: ConnectOptions,
) -> Result<
    (
        BTreeMap<String, Host>,
        Vec<Resource>,
        BTreeMap<String, CertFact>,
    ),
    CertCommandError,
> {
    let read_opts = ReadOptions {
        scope: Scope::Certificates,
        connect: opts,
        facts: false,
    };
    let quiet = Progress::new(spec.redactor.clone(), true);
    let world = read_world(spec, read_opts, &quiet, &|_| true).await?;
    if !world.unreachable.is_empty() {
        let msg = world
            .unreachable
            .iter()
            .map(|(h, e)| format!("{h}: {e}"))
            .collect::<Vec<_>>()
            .join("\n  ");
        return Err(CertCommandError::Unreachable(format!(
            "cannot reach:\n  {msg}"
        )));
    }
    let mut observed = std::collections::HashMap::new();
    for (_, o) in world.observed {
        observed.extend(o?);
    }
    let (hosts, res) = (world.hosts, world.resources);
    let facts = observed
        .into_iter()
        .filter_map(|(a, o)| match o {
            Observed::Certificate(f) => Some((a, f)),
            _ => None,
        })
        .collect();
    Ok((hosts, res, facts))
}

fn cert_spec(r: &Resource) -> Option<&CertSpec> {
    match &r.desired {
        Desired::Certificate(c) => Some(c),
        _ => None,
    }
}

/// One line of `cert list`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CertRow {
    pub host: String,
    pub certificate: String,
    pub issuer: String,
    pub names: Vec<String>,
    pub not_after: Option<i64>,
    pub days_left: Option<i64>,
    pub state: CertState,
    pub detail: String,
}

/// Every certificate on every server.
pub async fn list(spec: &Spec, opts: ConnectOptions) -> Result<Vec<CertRow>, CertCommandError> {
    let (_, res, facts) = observe(spec, opts).await?;
    let mut rows = Vec::new();
    for r in &res {
        let (Some(c), Some(f)) = (cert_spec(r), facts.get(&r.address)) else {
            continue;
        };
        let a = assess(c, f);
        let leaf = a
            .leaf
            .as_ref()
            .filter(|l| !l.issuer.contains(PLACEHOLDER_CN));
        rows.push(CertRow {
            host: r.host.clone(),
            certificate: c.name.clone(),
            issuer: match leaf {
                Some(l) => format!("{} ({})", c.issuer_kind(), l.issuer),
                None => c.issuer_kind().to_string(),
            },
            names: leaf.map_or_else(|| c.sans.clone(), |l| l.sans.clone()),
            not_after: leaf.map(|l| l.not_after),
            days_left: leaf.map(|l| (l.not_after - f.now_unix).div_euclid(86_400)),
            state: a.state,
            detail: a.reason,
        });
    }
    Ok(rows)
}

/// `cert list` as a table.
pub fn render_list(rows: &[CertRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let expiry = match (r.not_after, r.days_left) {
            (Some(t), Some(d)) => format!(
                "expires {} ({d} days left)",
                time::OffsetDateTime::from_unix_timestamp(t)
                    .map(|t| t.date().to_string())
                    .unwrap_or_default()
            ),
            _ => "not issued".into(),
        };
        out.push_str(&format!(
            "{} {}: {}\n  issuer: {}\n  names: {}\n  {}\n  {}\n",
            r.host,
            r.certificate,
            r.state.label(),
            r.issuer,
            r.names.join(", "),
            expiry,
            r.detail
        ));
    }
    out
}

/// The pending requests: (address, CSR PEM). Public data.
pub async fn pending_requests(
    spec: &Spec,
    opts: ConnectOptions,
) -> Result<Vec<(String, String)>, CertCommandError> {
    let (_, res, facts) = observe(spec, opts).await?;
    Ok(res
        .iter()
        .filter_map(|r| {
            let csr = facts.get(&r.address)?.pending_csr.clone()?;
            Some((r.address.clone(), csr))
        })
        .collect())
}

const INSTALL: &str = r#"
cert=$1; key=$2; pending=$3; csr=$4; issuer=$5; pidfile=$6; owner=$7; mode=$8
[ -f "$pending" ] || { echo "the pending key $pending is gone" >&2; exit 3; }
[ -f "$cert" ] && cp -p -- "$cert" "$cert.xfed-prev"
[ -f "$key" ] && cp -p -- "$key" "$key.xfed-prev"
chown -- "$owner" "$pending" && chmod "$mode" -- "$pending" && mv -f -- "$pending" "$key" && mv -f -- "$cert.xfed-import" "$cert" || exit 4
printf 'csr\n' > "$issuer.tmp" && mv -f -- "$issuer.tmp" "$issuer"
rm -f -- "$csr"
pid=$(head -c 32 -- "$pidfile" 2>/dev/null | tr -cd 0-9)
# a pid file the gateway's user wrote counts only for that user's process
powner=$(stat -c %u -- "$pidfile" 2>/dev/null) || powner=0
if [ -n "$pid" ] && [ "$powner" != 0 ] && [ "$(stat -c %u -- "/proc/$pid" 2>/dev/null)" != "$powner" ]; then pid=; fi
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -HUP "$pid" && echo reloaded
elif command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet xfed-gateway 2>/dev/null; then
  systemctl reload xfed-gateway && echo reloaded
fi
exit 0
"#;

/// Installs a CA's answer: the certificate must be for a key waiting on
/// one of the hosts and carry every requested name. Returns what was
/// installed (`address`, whether the gateway was reloaded).
pub async fn import(
    spec: &Spec,
    opts: ConnectOptions,
    cert_file: &Path,
    chain_file: Option<&Path>,
) -> Result<Vec<(String, bool)>, CertCommandError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| CertCommandError::Read {
            path: p.display().to_string(),
            detail: e.to_string(),
        })
    };
    let path = cert_file.display().to_string();
    let mut pem = read(cert_file)?;
    let leaf = parse::leaf(pem.as_bytes()).map_err(|detail| CertCommandError::NotACertificate {
        path: path.clone(),
        detail,
    })?;
    if let Some(c) = chain_file {
        let chain = read(c)?;
        parse::certificates(chain.as_bytes()).map_err(|detail| {
            CertCommandError::NotACertificate {
                path: c.display().to_string(),
                detail,
            }
        })?;
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        pem.push_str(&chain);
    }
    let (hosts, res, facts) = observe(spec, opts).await?;
    let mut waiting = Vec::new();
    let mut targets = Vec::new();
    for r in &res {
        let (Some(c), Some(f)) = (cert_spec(r), facts.get(&r.address)) else {
            continue;
        };
        if !matches!(c.issuer, Issuer::Csr { .. }) {
            continue;
        }
        let Some(csr) = f
            .pending_csr
            .as_deref()
            .and_then(|p| parse::csr(p.as_bytes()).ok())
        else {
            continue;
        };
        waiting.push(r.address.clone());
        if csr.spki == leaf.spki {
            let missing: Vec<String> = csr
                .sans
                .iter()
                .filter(|n| !leaf.sans.contains(n))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(CertCommandError::MissingNames {
                    path,
                    address: r.address.clone(),
                    plural: if missing.len() == 1 { "" } else { "s" },
                    missing: missing.join(", "),
                });
            }
            targets.push((r.clone(), c.clone()));
        }
    }
    if targets.is_empty() {
        return Err(CertCommandError::WrongKey {
            path,
            candidates: if waiting.is_empty() {
                " (no request is waiting)".into()
            } else {
                format!(" (waiting: {})", waiting.join(", "))
            },
        });
    }
    if facts
        .values()
        .next()
        .is_some_and(|f| leaf.not_after <= f.now_unix)
    {
        return Err(CertCommandError::Expired {
            path,
            date: leaf.not_after.to_string(),
        });
    }
    let pidfile = format!("{}/run/xfed-gateway.pid", spec.gateway.state_dir);
    let mut done = Vec::new();
    for (r, c) in targets {
        let Some(h) = hosts.get(&r.host).cloned() else {
            continue;
        };
        let (pem, pidfile) = (pem.clone(), pidfile.clone());
        let out = h
            .with(move |t: &mut dyn Transport| -> Result<bool, String> {
                let staged = format!("{}.xfed-import", c.cert_path);
                t.write_file(
                    &staged,
                    pem.as_bytes(),
                    &WriteOpts::default()
                        .mode(0o644)
                        .owner("root")
                        .create_dirs(true),
                )
                .map_err(|e| e.to_string())?;
                let o = t
                    .run_ok(
                        &Command::new("sh")
                            .args(["-c", INSTALL, "xfed-cert-import"])
                            .arg(c.cert_path.clone())
                            .arg(c.key_path.clone())
                            .arg(c.pending_key_path())
                            .arg(c.csr_path())
                            .arg(c.issuer_path())
                            .arg(pidfile)
                            // The key as apply installs it: readable by the
                            // gateway's group where it has one.
                            .args(match &c.key_group {
                                Some(g) => [format!("root:{g}"), "640".to_string()],
                                None => ["root:root".to_string(), "600".to_string()],
                            })
                            .label("cert import")
                            .timeout(Duration::from_secs(30)),
                    )
                    .map_err(|e| e.to_string())?;
                Ok(o.stdout_text().contains("reloaded"))
            })
            .await
            .map_err(|detail| CertCommandError::Install {
                host: r.host.clone(),
                detail,
            })?;
        done.push((r.address.clone(), out));
    }
    Ok(done)
}

/// What `cert export` refused, or could not do.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no certificate `{name}` is installed on `{host}` by this spec{known}")]
    Unknown {
        name: String,
        host: String,
        known: String,
    },
    #[error(
        "certificate `{name}` is not exportable: its private key stays on the edge server\n  hint: set `exportable: true` on `certificates[{name}]` (the Lync wizard's \"mark the private key as exportable\") and apply, then export"
    )]
    NotExportable { name: String },
    #[error(
        "`{path}` exists; an export never overwrites a file\n  hint: choose another `--out`, or remove it"
    )]
    Exists { path: String },
    #[error(transparent)]
    Connect(#[from] CertCommandError),
    #[error("reading `{path}` on `{host}` failed: {detail}")]
    Read {
        host: String,
        path: String,
        detail: String,
    },
    #[error(
        "`{host}` has no certificate and key at `{path}` yet\n  hint: `xfed apply` installs it first"
    )]
    Missing { host: String, path: String },
    #[error("writing `{path}` failed: {detail}")]
    Write { path: String, detail: String },
}

/// A key file and a chain file as read from a host (`None`: absent).
type KeyAndChain = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Copies certificate `name`'s key and chain from `host` into `out` (one
/// PEM file: key first, then the chain; mode 0600, created new, never
/// overwriting), for moving the certificate to another server as the
/// Lync wizard's exportable key allows. Refused unless the spec marks the
/// certificate `exportable`. The key goes from the host to the file and
/// nowhere else: nothing of it is printed.
pub async fn export(
    spec: &Spec,
    opts: ConnectOptions,
    name: &str,
    host: &str,
    out: &Path,
) -> Result<(), ExportError> {
    let res = resources(spec);
    let Some(c) = res
        .iter()
        .filter(|r| r.host == host)
        .filter_map(cert_spec)
        .find(|c| c.name == name)
        .cloned()
    else {
        let known: Vec<String> = res
            .iter()
            .filter_map(|r| cert_spec(r).map(|c| format!("`{}` on `{}`", c.name, r.host)))
            .collect();
        return Err(ExportError::Unknown {
            name: name.into(),
            host: host.into(),
            known: if known.is_empty() {
                String::new()
            } else {
                format!("\n  hint: the spec has {}", known.join(", "))
            },
        });
    };
    if !c.exportable {
        return Err(ExportError::NotExportable { name: name.into() });
    }
    if out.exists() {
        return Err(ExportError::Exists {
            path: out.display().to_string(),
        });
    }
    let wanted = vec![host.to_string()];
    let (hosts, failed) = connect_all(spec, Some(&wanted), opts).await;
    let Some(h) = hosts.get(host).cloned() else {
        let why = failed
            .into_iter()
            .map(|(h, e)| format!("{h}: {e}"))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(CertCommandError::Unreachable(format!("cannot reach {why}")).into());
    };
    let (key_path, cert_path) = (c.key_path.clone(), c.cert_path.clone());
    let read = h
        .with(move |t| -> Result<KeyAndChain, (String, String)> {
            let key = t
                .read_file(&key_path)
                .map_err(|e| (key_path.clone(), e.to_string()))?;
            let chain = t
                .read_file(&cert_path)
                .map_err(|e| (cert_path.clone(), e.to_string()))?;
            Ok((key, chain))
        })
        .await
        .map_err(|(path, detail)| ExportError::Read {
            host: host.into(),
            path,
            detail,
        })?;
    let (Some(key), Some(chain)) = read else {
        return Err(ExportError::Missing {
            host: host.into(),
            path: c.cert_path.clone(),
        });
    };
    let key = crate::secret::Secret::new(String::from_utf8_lossy(&key).into_owned());
    spec.redactor.add(key.expose());
    write_new_private(out, key.expose().as_bytes(), &chain).map_err(|e| ExportError::Write {
        path: out.display().to_string(),
        detail: e.to_string(),
    })
}

/// Creates `path` (it must not exist) with mode 0600 before anything is
/// written to it, then the key and the chain.
fn write_new_private(path: &Path, key: &[u8], chain: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(key)?;
    if !key.ends_with(b"\n") {
        f.write_all(b"\n")?;
    }
    f.write_all(chain)?;
    f.sync_all()
}

/// `xfed cert …`: the subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum CertCommand {
    /// Every certificate on every server: names, issuer, expiry, days left, state.
    List {
        spec: std::path::PathBuf,
        #[arg(long, value_enum, default_value_t = super::Format::Human)]
        format: super::Format,
        #[command(flatten)]
        run: super::RunArgs,
    },
    /// Print the pending certificate requests (PEM), to submit to a CA.
    ShowRequest {
        spec: std::path::PathBuf,
        #[command(flatten)]
        run: super::RunArgs,
    },
    /// Copy an exportable certificate's key and chain from a server into a
    /// new file (mode 0600); refused unless the spec says `exportable: true`.
    Export {
        spec: std::path::PathBuf,
        /// The certificate's name in the spec.
        #[arg(long)]
        name: String,
        /// The server to copy it from (its FQDN).
        #[arg(long)]
        host: String,
        /// The file to create; an existing file is never overwritten.
        #[arg(long)]
        out: std::path::PathBuf,
        #[command(flatten)]
        run: super::RunArgs,
    },
    /// Install a CA's certificate for a pending request, then reload the gateway.
    Import {
        spec: std::path::PathBuf,
        /// The certificate the CA issued (PEM).
        #[arg(long)]
        cert: std::path::PathBuf,
        /// Intermediate certificates to send with it (PEM).
        #[arg(long)]
        chain: Option<std::path::PathBuf>,
        #[command(flatten)]
        run: super::RunArgs,
    },
}

pub async fn run(command: &CertCommand) -> super::error::Result<super::ExitStatus> {
    use super::error::CommandError;
    use super::run::load;
    use super::{ExitStatus, Format};
    match command {
        CertCommand::List { spec, format, run } => {
            let spec = load(spec)?;
            let rows = list(&spec, run.connect()).await?;
            let text = match format {
                Format::Human => render_list(&rows),
                Format::Json => serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n",
            };
            print!("{}", spec.redactor.redact(&text));
            Ok(ExitStatus::Success)
        }
        CertCommand::ShowRequest { spec, run } => {
            let spec = load(spec)?;
            let pending = pending_requests(&spec, run.connect()).await?;
            if pending.is_empty() {
                eprintln!("No certificate request is waiting for a CA.");
                return Ok(ExitStatus::Success);
            }
            for (address, csr) in pending {
                println!("# {address}");
                print!("{}", spec.redactor.redact(&csr));
            }
            Ok(ExitStatus::Success)
        }
        CertCommand::Export {
            spec,
            name,
            host,
            out,
            run,
        } => {
            let spec = load(spec)?;
            let done = export(&spec, run.connect(), name, host, out).await;
            // The error names paths and hosts, never the key; redact anyway.
            done.map_err(|e| CommandError::Refused(spec.redactor.redact(&e.to_string())))?;
            println!(
                "exported `{name}` from {host} to {} (key and chain, mode 0600)",
                out.display()
            );
            Ok(ExitStatus::Success)
        }
        CertCommand::Import {
            spec,
            cert,
            chain,
            run,
        } => {
            let spec = load(spec)?;
            let done = import(&spec, run.connect(), cert, chain.as_deref()).await?;
            for (address, reloaded) in done {
                println!(
                    "installed {} on {address}{}",
                    cert.display(),
                    if reloaded { "; gateway reloaded" } else { "" }
                );
            }
            Ok(ExitStatus::Success)
        }
    }
}

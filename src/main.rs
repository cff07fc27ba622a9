//! The `xfed` command line: parse arguments, call the library, map outcomes
//! to exit codes (0 ok / no changes, 1 error, 2 changes present). No
//! deciding lives here; `anyhow` only at this edge.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use xfed::apply::{self, Options, Prepared, Progress};
use xfed::plan::render::{self, Style};
use xfed::plan::saved::{self, SavedPlan};
use xfed::plan::{Action, Plan};
use xfed::spec::{self, LoadError, Spec};

#[derive(Parser, Debug)]
#[command(name = "xfed", version, about = "Run an XMPP federation edge as code")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a spec: syntax, types, references and rules; nothing is contacted.
    Validate {
        spec: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Print the JSON Schema of the spec format (for editors).
    Schema,
    /// Show what apply would change, as a diff against the live world.
    Plan {
        spec: PathBuf,
        /// Save the plan; `apply FILE` then carries out exactly it.
        #[arg(long = "out", short = 'o', alias = "out")]
        out: Option<PathBuf>,
        /// Exit 2 when there are changes (as Terraform's -detailed-exitcode).
        #[arg(long)]
        detailed_exitcode: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Carry out a plan: a spec (planned now) or a saved plan file.
    Apply {
        /// A spec, or a plan file from `plan --out`.
        target: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Report how the live world differs from the spec; never changes anything.
    Drift {
        spec: PathBuf,
        #[arg(long, value_enum, default_value_t = DriftFormat::Human)]
        format: DriftFormat,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Check every listener of every host.
    Verify {
        spec: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Certificates: list them, show a pending request, import a CA's answer.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Troubleshoot the deployment: read-only checks in the Lync guide's
    /// order, each with what was seen and the fix; never changes anything.
    Doctor {
        spec: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Hosts contacted at once.
        #[arg(long, default_value_t = 20)]
        parallelism: usize,
        /// Print no progress on stderr.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Draw the rollout's step order: Graphviz DOT, or SVG through `dot`.
    Graph {
        spec: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
        #[command(flatten)]
        run: RunArgs,
    },
    /// The background process keeping SSH sessions for `ssh.persist_secs`.
    SshKeeper {
        #[command(subcommand)]
        command: KeeperCommand,
    },
    /// Remove an apply lock left behind by an apply that died.
    Unlock {
        spec: PathBuf,
        /// The lock id shown in the error.
        lock_id: String,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Subcommand, Debug)]
enum KeeperCommand {
    /// Whether a keeper runs for this user and network namespace, and what it holds.
    Status,
    /// End the keeper now, closing every kept session.
    Stop,
    /// Run the keeper (xfed starts it when a spec asks for kept sessions).
    #[command(hide = true)]
    Serve {
        /// Exit once unused for this long.
        #[arg(long)]
        idle_secs: u64,
    },
}

#[derive(Subcommand, Debug)]
enum CertCommand {
    /// Every certificate on every server: names, issuer, expiry, days left, state.
    List {
        spec: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Print the pending certificate requests (PEM), to submit to a CA.
    ShowRequest {
        spec: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Copy an exportable certificate's key and chain from a server into a
    /// new file (mode 0600); refused unless the spec says `exportable: true`.
    Export {
        spec: PathBuf,
        /// The certificate's name in the spec.
        #[arg(long)]
        name: String,
        /// The server to copy it from (its FQDN).
        #[arg(long)]
        host: String,
        /// The file to create; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Install a CA's certificate for a pending request, then reload the gateway.
    Import {
        spec: PathBuf,
        /// The certificate the CA issued (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// Intermediate certificates to send with it (PEM).
        #[arg(long)]
        chain: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Hosts contacted at once.
    #[arg(long, default_value_t = 20)]
    parallelism: usize,
    /// Trust and record the key of a host that has none in known_hosts (a
    /// changed key is refused regardless).
    #[arg(long)]
    accept_new_host_keys: bool,
    /// Print no progress on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Let one plan change more than `dns.max_change` of a zone's records.
    #[arg(long)]
    allow_mass_change: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Human,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum DriftFormat {
    Human,
    Json,
    Junit,
    Github,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum GraphFormat {
    Dot,
    Svg,
}

const OK: u8 = 0;
const ERROR: u8 = 1;
const CHANGES: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate { spec, format } => validate(&spec, format),
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&spec::json_schema()).unwrap_or_default()
            );
            OK
        }
        Command::SshKeeper { command } => ssh_keeper(command),
        command => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(run(command)),
            Err(e) => {
                eprintln!("error: cannot start the runtime: {e}");
                ERROR
            }
        },
    };
    ExitCode::from(code)
}

fn ssh_keeper(command: KeeperCommand) -> u8 {
    use xfed::transport::ssh::keeper::{self, KeeperPaths, wire};
    let result = match command {
        KeeperCommand::Serve { idle_secs } => KeeperPaths::current()
            .and_then(|p| keeper::serve(&p, std::time::Duration::from_secs(idle_secs))),
        KeeperCommand::Stop => keeper::stop().map(|was| {
            if was {
                println!("ssh keeper stopped");
            } else {
                println!("no ssh keeper runs");
            }
        }),
        KeeperCommand::Status => keeper::request(&wire::Request::Status).map(|r| match r {
            Some(wire::Response::Status {
                pid,
                sessions,
                clients,
                idle_secs,
            }) => println!(
                "ssh keeper pid {pid}: {sessions} idle session(s), {clients} run(s) attached, exits after {idle_secs} s unused"
            ),
            _ => println!("no ssh keeper runs"),
        }),
    };
    match result {
        Ok(()) => OK,
        Err(e) => {
            eprintln!("error: ssh keeper: {e}");
            ERROR
        }
    }
}

async fn run(command: Command) -> u8 {
    let result = match command {
        Command::Plan {
            spec,
            out,
            detailed_exitcode,
            format,
            run,
        } => plan(&spec, out.as_deref(), detailed_exitcode, format, &run).await,
        Command::Apply {
            target,
            auto_approve,
            run,
        } => apply(&target, auto_approve, &run).await,
        Command::Drift { spec, format, run } => drift(&spec, format, &run).await,
        Command::Verify { spec, run } => verify(&spec, &run).await,
        Command::Unlock { spec, lock_id, run } => unlock(&spec, &lock_id, &run).await,
        Command::Cert { command } => cert(command).await,
        Command::Doctor {
            spec,
            format,
            parallelism,
            quiet,
        } => doctor(&spec, format, parallelism, quiet).await,
        Command::Graph { spec, format, run } => graph(&spec, format, &run).await,
        Command::Validate { .. } | Command::Schema | Command::SshKeeper { .. } => Ok(OK),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ERROR
        }
    }
}

fn validate(path: &Path, format: Format) -> u8 {
    let result = spec::load_file(path);
    let (ok, diagnostics) = match &result {
        Ok(loaded) => (true, loaded.warnings.clone()),
        Err(LoadError::Invalid(d)) => (false, d.clone()),
        Err(e @ LoadError::Read { .. }) => {
            eprintln!("error: {e}");
            return ERROR;
        }
    };
    match format {
        Format::Json => {
            let out = serde_json::json!({
                "valid": ok,
                "file": path,
                "errors": diagnostics.errors(),
                "warnings": diagnostics.warnings(),
                "diagnostics": diagnostics.0,
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Format::Human => {
            eprint!("{diagnostics}");
            if let Ok(loaded) = &result {
                let s = &loaded.spec;
                println!(
                    "{}: valid ({}, {}, {}, {}{})",
                    path.display(),
                    count(s.sites.len(), "site"),
                    count(
                        s.frontend_pools.iter().map(|p| p.servers.len()).sum(),
                        "front-end server"
                    ),
                    count(
                        s.edge_pools.iter().map(|p| p.servers.len()).sum(),
                        "edge server"
                    ),
                    count(s.certificates.len(), "certificate"),
                    match diagnostics.warnings() {
                        0 => String::new(),
                        n => format!(", {}", count(n, "warning")),
                    }
                );
            } else {
                let n = diagnostics.errors();
                eprintln!(
                    "{}: {} found; nothing was changed",
                    path.display(),
                    count(n, "error")
                );
            }
        }
    }
    if ok { OK } else { ERROR }
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Loads a spec for a run; validation problems are printed as `validate` does.
fn load(path: &Path) -> anyhow::Result<Spec> {
    match spec::load_file(path) {
        Ok(loaded) => {
            eprint!("{}", loaded.warnings);
            Ok(loaded.spec)
        }
        Err(LoadError::Invalid(d)) => {
            eprint!("{d}");
            anyhow::bail!(
                "{}: {} found; nothing was changed",
                path.display(),
                count(d.errors(), "error")
            )
        }
        Err(e) => Err(e.into()),
    }
}

fn options(run: &RunArgs) -> Options {
    Options {
        parallelism: run.parallelism,
        accept_new_host_keys: run.accept_new_host_keys,
        allow_mass_change: run.allow_mass_change,
    }
}

fn style() -> Style {
    Style {
        color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

async fn prepared(path: &Path, run: &RunArgs) -> anyhow::Result<Prepared> {
    let spec = load(path)?;
    let progress = Progress::new(spec.redactor.clone(), run.quiet);
    let p = apply::prepare(spec, options(run), &progress).await?;
    if let Some(d) = &p.dns {
        for f in &d.plan.findings {
            eprintln!("{}", p.spec.redactor.redact(&f.to_string()));
        }
        for (zone, rr) in d.plan.unmanaged() {
            eprintln!(
                "note: {zone}: {} {} is not managed by xfed; left alone",
                rr.name, rr.rtype
            );
        }
    }
    if std::env::var_os("XFED_TIMINGS").is_some() {
        let t: Vec<String> = p
            .timings
            .iter()
            .map(|(k, v)| format!("{k} {v:.3}s"))
            .collect();
        eprintln!("timings: {}", t.join(", "));
    }
    Ok(p)
}

/// Prints to stdout with every known secret masked.
fn print_out(p: &Prepared, text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(p.spec.redactor.redact(text).as_bytes());
}

async fn plan(
    path: &Path,
    out: Option<&Path>,
    detailed: bool,
    format: Format,
    run: &RunArgs,
) -> anyhow::Result<u8> {
    let p = prepared(path, run).await?;
    match format {
        Format::Human => print_out(&p, &render::human(&p.plan, style())),
        Format::Json => print_out(&p, &(render::json(&p.plan) + "\n")),
    }
    if let Some(file) = out {
        save_plan(&p, path, file)?;
        eprintln!(
            "Saved the plan to {}; run `xfed apply {}` to carry out exactly it.",
            file.display(),
            file.display()
        );
    }
    let refused = dns_refusals(&p);
    if !refused.is_empty() {
        anyhow::bail!(
            "apply would refuse this plan's DNS changes:\n  {}\nhint: fix the spec, or pass --allow-mass-change if the mass change is meant",
            refused.join("\n  ")
        );
    }
    Ok(if detailed && p.plan.has_changes() {
        CHANGES
    } else {
        OK
    })
}

/// Why the DNS part of this plan must not be applied (mass change without
/// `--allow-mass-change`, an SRV left without target, a failed cross-check).
fn dns_refusals(p: &Prepared) -> Vec<String> {
    p.dns
        .as_ref()
        .map(|d| d.plan.refusals(p.options.allow_mass_change))
        .unwrap_or_default()
}

fn spec_sha256(path: &Path) -> anyhow::Result<String> {
    Ok(xfed::plan::diff::sha256_hex(&std::fs::read(path)?))
}

fn save_plan(p: &Prepared, spec_path: &Path, file: &Path) -> anyhow::Result<()> {
    let saved = SavedPlan {
        xfed_plan: saved::FORMAT,
        xfed_version: env!("CARGO_PKG_VERSION").into(),
        spec: std::fs::canonicalize(spec_path)?,
        spec_sha256: spec_sha256(spec_path)?,
        created_unix: apply::lock::now_unix(),
        plan: p.plan.clone(),
    };
    let text = p
        .spec
        .redactor
        .redact(&serde_json::to_string_pretty(&saved)?);
    std::fs::write(file, text + "\n")?;
    Ok(())
}

fn read_saved(file: &Path) -> Option<SavedPlan> {
    let text = std::fs::read_to_string(file).ok()?;
    if !text.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str(&text).ok()
}

async fn apply(target: &Path, auto_approve: bool, run: &RunArgs) -> anyhow::Result<u8> {
    let saved = read_saved(target);
    let spec_path = saved
        .as_ref()
        .map_or_else(|| target.to_path_buf(), |s| s.spec.clone());
    if let Some(s) = &saved
        && spec_sha256(&s.spec)? != s.spec_sha256
    {
        anyhow::bail!(
            "stale plan: the spec `{}` changed since the plan was made; nothing was changed\nhint: run `xfed plan` again",
            s.spec.display()
        );
    }
    let p = prepared(&spec_path, run).await?;
    if let Some(s) = &saved {
        let why = saved::staleness(&s.plan, &p.plan);
        if !why.is_empty() {
            anyhow::bail!(
                "stale plan: the live world changed since the plan was made; nothing was changed:\n  {}\nhint: run `xfed plan` again",
                why.join("\n  ")
            );
        }
    } else {
        print_out(&p, &render::human(&p.plan, style()));
    }
    let refused = dns_refusals(&p);
    if !refused.is_empty() {
        anyhow::bail!(
            "refusing to apply; nothing was changed:\n  {}\nhint: fix the spec, or pass --allow-mass-change if the mass change is meant",
            refused.join("\n  ")
        );
    }
    if !p.plan.has_changes() {
        if saved.is_some() {
            println!("No changes. The live world matches the spec.");
        }
        report_verify(&p, true).await;
        return Ok(OK);
    }
    if saved.is_none() && !auto_approve && !confirm()? {
        eprintln!("Apply cancelled; nothing was changed.");
        return Ok(ERROR);
    }
    let progress = Progress::new(p.spec.redactor.clone(), run.quiet);
    let lease = apply::lock::Lease::new(15 * 60);
    apply::lock_all(&p, &lease, &progress).await?;
    let result = apply::execute(&p, &p.plan, &progress).await;
    let kept = apply::unlock_all(&p, &lease.id).await;
    if !kept.is_empty() {
        eprintln!(
            "warning: lock {} could not be released on {} (unreachable); the next apply from this machine takes it over, or run `xfed unlock SPEC {}`",
            lease.id,
            kept.join(", "),
            lease.id
        );
    }
    let report = result?;
    let s = p.plan.summary();
    let failed_listeners = report_verify(&p, false).await;
    println!(
        "Apply complete! Resources: {} added, {} changed, {} destroyed ({} steps).",
        s.add,
        s.change,
        s.destroy,
        report.done.len()
    );
    Ok(if failed_listeners == 0 { OK } else { ERROR })
}

/// Prints the verify table; returns how many listeners failed. `fresh`:
/// nothing changed since `p` observed the hosts.
async fn report_verify(p: &Prepared, fresh: bool) -> usize {
    let rows = apply::verify_listeners(p, fresh).await;
    if rows.is_empty() && p.spec.dns.is_none() && p.spec.frontend_pools.is_empty() {
        return 0;
    }
    let mut text = String::from("\nVerify:\n");
    text.push_str(&format!(
        "  {:<4} {:<24} {:<9} {:<22} {:<40} {}\n",
        "", "SERVER", "LISTENER", "ADDRESS", "STATE", "CERTIFICATE"
    ));
    let mut failed = 0;
    for r in &rows {
        if !r.ok {
            failed += 1;
        }
        let cert = if r.cert_names.is_empty() {
            "-".to_string()
        } else {
            let days = r
                .cert_not_after
                .map(|t| (t - apply::lock::now_unix() as i64) / 86_400);
            format!(
                "{} ({} days left)",
                r.cert_names.join(","),
                days.map_or("?".into(), |d| d.to_string())
            )
        };
        text.push_str(&format!(
            "  {:<4} {:<24} {:<9} {:<22} {:<40} {cert}\n",
            if r.ok { "ok" } else { "FAIL" },
            r.host,
            r.listener,
            r.address,
            r.state
        ));
    }
    let topology = xfed::verify::topology::verify_topology(p, &rows).await;
    if !topology.is_empty() {
        text.push_str(&format!(
            "\n  {:<4} {:<24} {:<9} {}\n",
            "", "SERVER", "ROLE", "TOPOLOGY"
        ));
        let want = xfed::topology::build(&p.spec).version;
        for r in &topology {
            if !r.ok {
                failed += 1;
            }
            let note = if r.ok {
                String::new()
            } else {
                format!(" (want {want})")
            };
            text.push_str(&format!(
                "  {:<4} {:<24} {:<9} {}{note}\n",
                if r.ok { "ok" } else { "FAIL" },
                r.server,
                r.role,
                r.seen
            ));
        }
    }
    if p.spec.dns.is_some() {
        let dns_rows = xfed::verify::dns::verify_dns(&p.spec).await;
        text.push_str(&format!(
            "\n  {:<4} {:<62} {:<20} {}\n",
            "", "DNS CHECK", "SERVER", "DETAIL"
        ));
        for r in &dns_rows {
            if !r.ok {
                failed += 1;
            }
            text.push_str(&format!(
                "  {:<4} {:<62} {:<20} {}\n",
                if r.ok { "ok" } else { "FAIL" },
                r.check,
                r.server,
                r.detail
            ));
        }
    }
    print_out(p, &text);
    failed
}

fn confirm() -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "apply needs confirmation, but stdin is not a terminal\nhint: review the plan, then pass --auto-approve (or apply a saved plan file)"
        );
    }
    print!(
        "\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
    );
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

async fn drift(path: &Path, format: DriftFormat, run: &RunArgs) -> anyhow::Result<u8> {
    let p = prepared(path, run).await?;
    let plan = &p.plan;
    let text = match format {
        DriftFormat::Human => {
            if plan.has_changes() {
                format!(
                    "Drift detected: the live world differs from the spec.\n{}",
                    render::human(plan, style())
                )
            } else {
                "No drift: the live world matches the spec.\n".to_string()
            }
        }
        DriftFormat::Json => render::json(plan) + "\n",
        DriftFormat::Junit => junit(plan, path),
        DriftFormat::Github => github(plan),
    };
    print_out(&p, &text);
    Ok(if plan.has_changes() { CHANGES } else { OK })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn junit(plan: &Plan, spec: &Path) -> String {
    let failures = plan.changes.iter().filter(|c| c.action.is_change()).count();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"xfed drift {}\" tests=\"{}\" failures=\"{failures}\">\n",
        xml_escape(&spec.display().to_string()),
        plan.changes.len()
    );
    for c in &plan.changes {
        s.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"{}\"",
            xml_escape(&c.host),
            xml_escape(&c.address)
        ));
        if c.action.is_change() {
            let body = c.diff.clone().unwrap_or_default();
            s.push_str(&format!(
                ">\n    <failure message=\"{} {}\">{}</failure>\n  </testcase>\n",
                c.action.verb(),
                xml_escape(&c.reason),
                xml_escape(&body)
            ));
        } else {
            s.push_str("/>\n");
        }
    }
    s.push_str("</testsuite>\n");
    s
}

fn github(plan: &Plan) -> String {
    let mut s = String::new();
    for c in plan.changes.iter().filter(|c| c.action.is_change()) {
        let (file, line) = c.origin.rsplit_once(':').unwrap_or((&c.origin, "1"));
        let level = if c.action == Action::Create {
            "warning"
        } else {
            "error"
        };
        s.push_str(&format!(
            "::{level} file={file},line={line},title=xfed drift::{} {}: {}\n",
            c.address,
            c.action.verb(),
            c.reason
        ));
    }
    s.push_str(&format!("{}\n", render::summary_line(plan.summary())));
    s
}

async fn verify(path: &Path, run: &RunArgs) -> anyhow::Result<u8> {
    let p = prepared(path, run).await?;
    let failed = report_verify(&p, true).await;
    Ok(if failed == 0 { OK } else { ERROR })
}

async fn unlock(path: &Path, id: &str, run: &RunArgs) -> anyhow::Result<u8> {
    let p = prepared(path, run).await?;
    apply::unlock_all(&p, id).await;
    println!(
        "Lock {id} removed from {} host(s) where it was held.",
        p.hosts.len()
    );
    Ok(OK)
}

async fn doctor(
    path: &Path,
    format: Format,
    parallelism: usize,
    quiet: bool,
) -> anyhow::Result<u8> {
    use xfed::verify::doctor;
    let spec = load(path)?;
    let progress = Progress::new(spec.redactor.clone(), quiet);
    let findings = doctor::run(&spec, doctor::Options { parallelism }, &progress).await?;
    let text = match format {
        Format::Human => doctor::render::human(&findings, style().color),
        Format::Json => doctor::render::json(&findings),
    };
    print!("{}", spec.redactor.redact(&text));
    Ok(if doctor::healthy(&findings) {
        OK
    } else {
        ERROR
    })
}

/// `xfed graph`: the plan drawn by `plan::graph::dot`; SVG through
/// Graphviz's `dot`, looked for before anything is contacted.
async fn graph(path: &Path, format: GraphFormat, run: &RunArgs) -> anyhow::Result<u8> {
    let has_dot = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("dot").is_file()));
    if format == GraphFormat::Svg && !has_dot {
        anyhow::bail!(
            "`--format svg` needs Graphviz's `dot`, which is not installed (not on PATH); nothing was contacted\nhint: `apt-get install graphviz`, or use the default `--format dot` and render it elsewhere"
        );
    }
    let p = prepared(path, run).await?;
    let text = p.spec.redactor.redact(&xfed::plan::graph::dot(&p.plan));
    if format == GraphFormat::Dot {
        print_out(&p, &text);
        return Ok(OK);
    }
    let mut child = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!("cannot run Graphviz's `dot`: {e}\nhint: `apt-get install graphviz`")
        })?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("`dot` has no stdin"))?;
    // Written from a thread: `dot` may answer before it has read everything.
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output()?;
    let _ = writer.join();
    if !out.status.success() {
        anyhow::bail!(
            "`dot -Tsvg` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    print_out(&p, &String::from_utf8_lossy(&out.stdout));
    Ok(OK)
}

fn connect_options(run: &RunArgs) -> apply::hosts::ConnectOptions {
    apply::hosts::ConnectOptions {
        accept_new_host_keys: run.accept_new_host_keys,
        parallelism: run.parallelism,
    }
}

async fn cert(command: CertCommand) -> anyhow::Result<u8> {
    use xfed::certs::commands;
    match command {
        CertCommand::List { spec, format, run } => {
            let spec = load(&spec)?;
            let rows = commands::list(&spec, connect_options(&run)).await?;
            let text = match format {
                Format::Human => commands::render_list(&rows),
                Format::Json => serde_json::to_string_pretty(&rows)? + "\n",
            };
            print!("{}", spec.redactor.redact(&text));
            Ok(OK)
        }
        CertCommand::ShowRequest { spec, run } => {
            let spec = load(&spec)?;
            let pending = commands::pending_requests(&spec, connect_options(&run)).await?;
            if pending.is_empty() {
                eprintln!("No certificate request is waiting for a CA.");
                return Ok(OK);
            }
            for (address, csr) in pending {
                println!("# {address}");
                print!("{}", spec.redactor.redact(&csr));
            }
            Ok(OK)
        }
        CertCommand::Export {
            spec,
            name,
            host,
            out,
            run,
        } => {
            let spec = load(&spec)?;
            let done = commands::export(&spec, connect_options(&run), &name, &host, &out).await;
            // The error names paths and hosts, never the key; redact anyway.
            done.map_err(|e| anyhow::anyhow!(spec.redactor.redact(&e.to_string())))?;
            println!(
                "exported `{name}` from {host} to {} (key and chain, mode 0600)",
                out.display()
            );
            Ok(OK)
        }
        CertCommand::Import {
            spec,
            cert,
            chain,
            run,
        } => {
            let spec = load(&spec)?;
            let done =
                commands::import(&spec, connect_options(&run), &cert, chain.as_deref()).await?;
            for (address, reloaded) in done {
                println!(
                    "installed {} on {address}{}",
                    cert.display(),
                    if reloaded { "; gateway reloaded" } else { "" }
                );
            }
            Ok(OK)
        }
    }
}

//! What the commands that read the world share: the run options, loading
//! the spec (its diagnostics printed as `validate` prints them), preparing
//! a run through the engine, and printing with every secret masked.

use std::io::Write as _;
use std::path::Path;

use clap::{Args, ValueEnum};

use super::error::{CommandError, Result};
use crate::engine::hosts::ConnectOptions;
use crate::engine::{self, Options, Prepared};
use crate::output::Progress;
use crate::plan::{Replace, Target};
use crate::secret::Redactor;
use crate::spec::{self, LoadError, Spec};

/// Options of every command that contacts hosts.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Hosts contacted at once.
    #[arg(long, default_value_t = 20)]
    pub parallelism: usize,
    /// Trust and record the key of a host that has none in known_hosts (a
    /// changed key is refused regardless).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Print no progress on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Let one plan change more than `dns.max_change` of a zone's records.
    #[arg(long)]
    pub allow_mass_change: bool,
    /// Plan only this and what it needs: `pool:NAME`, `server:FQDN`,
    /// `certificate:NAME`, `partner:DOMAIN`, `zone:NAME` or `topology`.
    /// Repeatable; the rest is listed as skipped.
    #[arg(long = "target", value_name = "KIND:NAME")]
    pub target: Vec<Target>,
}

impl RunArgs {
    pub fn options(&self) -> Options {
        Options {
            parallelism: self.parallelism,
            accept_new_host_keys: self.accept_new_host_keys,
            allow_mass_change: self.allow_mass_change,
            replace: Vec::new(),
            targets: self.target.clone(),
            forget: Vec::new(),
        }
    }

    pub fn connect(&self) -> ConnectOptions {
        ConnectOptions {
            accept_new_host_keys: self.accept_new_host_keys,
            parallelism: self.parallelism,
        }
    }
}

/// Human text or JSON.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub(crate) fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Loads a spec for a run; validation problems are printed as `validate` does.
pub(crate) fn load(path: &Path) -> Result<Spec> {
    match spec::load_file(path) {
        Ok(loaded) => {
            eprint!("{}", loaded.warnings);
            Ok(loaded.spec)
        }
        Err(LoadError::Invalid(d)) => {
            eprint!("{d}");
            Err(CommandError::Refused(format!(
                "{}: {} found; nothing was changed",
                path.display(),
                count(d.errors(), "error")
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// The run's progress printer, which also shows every retry the providers
/// make (an ACME `badNonce`, a PowerDNS 503).
pub(crate) fn progress(redactor: &Redactor, quiet: bool) -> Progress {
    let p = Progress::new(redactor.clone(), quiet);
    engine::notices::show_retries(&p);
    p
}

/// Loads the spec and reads the world into a plan, printing the DNS
/// findings and unmanaged records on the way.
pub(crate) async fn prepared(path: &Path, run: &RunArgs) -> Result<Prepared> {
    prepared_with(path, run, &[], &[]).await
}

/// As [`prepared`], with what to replace although nothing differs and
/// which servers that left the spec to forget.
pub(crate) async fn prepared_with(
    path: &Path,
    run: &RunArgs,
    replace: &[Replace],
    forget: &[String],
) -> Result<Prepared> {
    let spec = load(path)?;
    let progress = progress(&spec.redactor, run.quiet);
    let options = Options {
        replace: replace.to_vec(),
        forget: forget.to_vec(),
        ..run.options()
    };
    let p = engine::prepare(spec, options, &progress).await?;
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
pub(crate) fn print_out(p: &Prepared, text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(p.spec.redactor.redact(text).as_bytes());
}

/// Why the DNS part of this plan must not be applied (mass change without
/// `--allow-mass-change`, an SRV left without target, a failed cross-check).
pub(crate) fn dns_refusals(p: &Prepared) -> Vec<String> {
    p.dns
        .as_ref()
        .map(|d| d.plan.refusals(p.options.allow_mass_change))
        .unwrap_or_default()
}

/// Why the plan's destroys must not be applied: a server that left the
/// spec but cannot be reached, or more than one without `--allow-destroy`.
pub(crate) fn destroy_refusals(p: &Prepared, allow_destroy: bool) -> Vec<String> {
    crate::plan::decommission::refusals(&p.plan, allow_destroy)
}

//! `xfed plan SPEC`: reads the world and shows what apply would change;
//! `--out FILE` saves the plan for `apply FILE` to carry out exactly.

use std::path::{Path, PathBuf};

use clap::Args;

use super::error::{CommandError, Result};
use super::run::{destroy_refusals, dns_refusals, prepared_with, print_out};
use super::{ExitStatus, Format, RunArgs};
use crate::digest::sha256_hex;
use crate::engine::Prepared;
use crate::engine::clock::now_unix;
use crate::output::{Style, render};
use crate::plan::Replace;
use crate::plan::saved::{self, SavedPlan};

#[derive(Args, Debug)]
pub struct PlanArgs {
    pub spec: PathBuf,
    /// Save the plan; `apply FILE` then carries out exactly it.
    #[arg(long = "out", short = 'o')]
    pub out: Option<PathBuf>,
    /// Exit 2 when there are changes (as Terraform's -detailed-exitcode).
    #[arg(long)]
    pub detailed_exitcode: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Replace this although nothing differs: `certificate:NAME` (a new key
    /// and certificate on every server of its pool) or `gateway:SERVER`
    /// (a restart). Repeatable.
    #[arg(long = "replace", value_name = "KIND:NAME")]
    pub replace: Vec<Replace>,
    /// Let the plan destroy more than one server that left the spec (a
    /// saved plan records it).
    #[arg(long)]
    pub allow_destroy: bool,
    /// A server that left the spec and is gone for good: the record stops
    /// listing it, and nothing contacts it. Repeatable.
    #[arg(long = "forget", value_name = "FQDN")]
    pub forget: Vec<String>,
    #[command(flatten)]
    pub run: RunArgs,
}

pub async fn run(args: &PlanArgs) -> Result<ExitStatus> {
    let p = prepared_with(&args.spec, &args.run, &args.replace, &args.forget).await?;
    match args.format {
        Format::Human => print_out(&p, &render::human(&p.plan, Style::for_stdout())),
        Format::Json => print_out(&p, &(render::json(&p.plan) + "\n")),
    }
    if let Some(file) = &args.out {
        save(&p, &args.spec, file, args.allow_destroy)?;
        eprintln!(
            "Saved the plan to {}; run `xfed apply {}` to carry out exactly it.",
            file.display(),
            file.display()
        );
    }
    let refused = dns_refusals(&p);
    if !refused.is_empty() {
        return Err(CommandError::Refused(format!(
            "apply would refuse this plan's DNS changes:\n  {}\nhint: fix the spec, or pass --allow-mass-change if the mass change is meant",
            refused.join("\n  ")
        )));
    }
    let refused = destroy_refusals(&p, args.allow_destroy);
    if !refused.is_empty() {
        return Err(CommandError::Refused(format!(
            "apply would refuse this plan's destroys:\n  {}\nhint: bring the server back to reach it, or pass --allow-destroy if destroying them all is meant",
            refused.join("\n  ")
        )));
    }
    Ok(if args.detailed_exitcode && p.plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// The spec file's hash, which a saved plan records and `apply` checks.
pub(crate) fn spec_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(CommandError::io(format!(
        "cannot read the spec `{}`",
        path.display()
    )))?;
    Ok(sha256_hex(&bytes))
}

/// Writes the plan and what it was made from, secrets masked.
fn save(p: &Prepared, spec_path: &Path, file: &Path, allow_destroy: bool) -> Result<()> {
    let saved = SavedPlan {
        xfed_plan: saved::FORMAT,
        xfed_version: env!("CARGO_PKG_VERSION").into(),
        spec: std::fs::canonicalize(spec_path).map_err(CommandError::io(format!(
            "cannot resolve `{}`",
            spec_path.display()
        )))?,
        spec_sha256: spec_sha256(spec_path)?,
        created_unix: now_unix(),
        replace: p.options.replace.clone(),
        allow_destroy,
        plan: p.plan.clone(),
    };
    let json = serde_json::to_string_pretty(&saved)
        .map_err(|e| CommandError::Refused(format!("cannot serialize the plan: {e}")))?;
    let text = p.spec.redactor.redact(&json);
    std::fs::write(file, text + "\n").map_err(CommandError::io(format!(
        "cannot write the plan to `{}`",
        file.display()
    )))
}

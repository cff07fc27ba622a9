//! `xfed apply SPEC|PLANFILE`: plans (or loads a saved plan and checks it
//! is still true), asks, takes the lock, carries the plan out, and ends
//! with the verify table.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};

use clap::Args;

use super::error::{CommandError, Result};
use super::plan::spec_sha256;
use super::run::{destroy_refusals, dns_refusals, prepared_with, print_out, progress};
use super::verify::report_verify;
use super::{ExitStatus, RunArgs};
use crate::apply::{self, lock::Lease};
use crate::output::{Style, render};
use crate::plan::Replace;
use crate::plan::saved::{self, SavedPlan};

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// A spec, or a plan file from `plan --out`.
    #[arg(id = "spec_or_plan", value_name = "SPEC|PLANFILE")]
    pub target: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Replace this although nothing differs: `certificate:NAME` or
    /// `gateway:SERVER` (as `plan --replace`; a saved plan brings its own).
    #[arg(long = "replace", value_name = "KIND:NAME")]
    pub replace: Vec<Replace>,
    /// Let this apply destroy more than one server that left the spec (a
    /// saved plan made with it brings its own).
    #[arg(long)]
    pub allow_destroy: bool,
    /// A server that left the spec and is gone for good (as `plan
    /// --forget`; a saved plan brings its own). Repeatable.
    #[arg(long = "forget", value_name = "FQDN")]
    pub forget: Vec<String>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// A saved plan, when `file` is one (JSON with the plan marker); a spec
/// otherwise. A saved plan of another format is refused.
fn read_saved(file: &Path) -> Result<Option<SavedPlan>> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(None);
    };
    if !text.trim_start().starts_with('{') {
        return Ok(None);
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Ok(None);
    };
    let Some(format) = value.get("xfed_plan").and_then(|f| f.as_u64()) else {
        return Ok(None);
    };
    if format != u64::from(saved::FORMAT) {
        return Err(CommandError::Refused(format!(
            "`{}` is a plan of format {format}; this xfed reads format {}; nothing was changed\nhint: run `xfed plan --out` again",
            file.display(),
            saved::FORMAT
        )));
    }
    serde_json::from_value(value).map(Some).map_err(|e| {
        CommandError::Refused(format!(
            "`{}` is not a readable xfed plan: {e}; nothing was changed",
            file.display()
        ))
    })
}

pub async fn run(args: &ApplyArgs) -> Result<ExitStatus> {
    let saved = read_saved(&args.target)?;
    let spec_path = saved
        .as_ref()
        .map_or_else(|| args.target.clone(), |s| s.spec.clone());
    if let Some(s) = &saved
        && spec_sha256(&s.spec)? != s.spec_sha256
    {
        return Err(CommandError::Refused(format!(
            "stale plan: the spec `{}` changed since the plan was made; nothing was changed\nhint: run `xfed plan` again",
            s.spec.display()
        )));
    }
    let (replace, forget, run) = match &saved {
        // A saved plan is planned again exactly as it was made.
        Some(s) => (
            s.replace.clone(),
            s.plan
                .decommission
                .iter()
                .filter(|d| d.forgotten)
                .map(|d| d.server.clone())
                .collect(),
            RunArgs {
                target: s.plan.targets.clone(),
                ..args.run.clone()
            },
        ),
        None => (args.replace.clone(), args.forget.clone(), args.run.clone()),
    };
    let p = prepared_with(&spec_path, &run, &replace, &forget).await?;
    if let Some(s) = &saved {
        let why = saved::staleness(&s.plan, &p.plan);
        if !why.is_empty() {
            return Err(CommandError::Refused(format!(
                "stale plan: the live world changed since the plan was made; nothing was changed:\n  {}\nhint: run `xfed plan` again",
                why.join("\n  ")
            )));
        }
    } else {
        print_out(&p, &render::human(&p.plan, Style::for_stdout()));
    }
    let refused = dns_refusals(&p);
    if !refused.is_empty() {
        return Err(CommandError::Refused(format!(
            "refusing to apply; nothing was changed:\n  {}\nhint: fix the spec, or pass --allow-mass-change if the mass change is meant",
            refused.join("\n  ")
        )));
    }
    let allow_destroy = args.allow_destroy || saved.as_ref().is_some_and(|s| s.allow_destroy);
    let refused = destroy_refusals(&p, allow_destroy);
    if !refused.is_empty() {
        return Err(CommandError::Refused(format!(
            "refusing to apply; nothing was changed:\n  {}\nhint: bring the server back to reach it, or pass --allow-destroy if destroying them all is meant",
            refused.join("\n  ")
        )));
    }
    if !p.plan.has_changes() {
        if saved.is_some() {
            println!("No changes. The live world matches the spec.");
        }
        report_verify(&p, true).await;
        return Ok(ExitStatus::Success);
    }
    if saved.is_none() && !args.auto_approve && !confirm()? {
        eprintln!("Apply cancelled; nothing was changed.");
        return Ok(ExitStatus::Failure);
    }
    let progress = progress(&p.spec.redactor, args.run.quiet);
    let lease = Lease::new(15 * 60);
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
    Ok(if failed_listeners == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// Asks on the terminal, as Terraform does; only `yes` approves.
fn confirm() -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(CommandError::Refused(
            "apply needs confirmation, but stdin is not a terminal\nhint: review the plan, then pass --auto-approve (or apply a saved plan file)".into(),
        ));
    }
    print!(
        "\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
    );
    let io = CommandError::io("cannot read the answer");
    std::io::stdout().flush().map_err(io)?;
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(CommandError::io("cannot read the answer"))?;
    Ok(answer.trim() == "yes")
}

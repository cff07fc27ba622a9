//! `xfed drift SPEC`: a plan that never changes anything, for CI — exit 2
//! when the live world differs from the spec, as JUnit or GitHub
//! annotations if asked.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::error::Result;
use super::run::{prepared, print_out};
use super::{ExitStatus, RunArgs};
use crate::output::{Style, ci, render};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriftFormat {
    Human,
    Json,
    Junit,
    Github,
}

#[derive(Args, Debug)]
pub struct DriftArgs {
    pub spec: PathBuf,
    #[arg(long, value_enum, default_value_t = DriftFormat::Human)]
    pub format: DriftFormat,
    #[command(flatten)]
    pub run: RunArgs,
}

pub async fn run(args: &DriftArgs) -> Result<ExitStatus> {
    let p = prepared(&args.spec, &args.run).await?;
    let plan = &p.plan;
    let text = match args.format {
        DriftFormat::Human => {
            if plan.has_changes() {
                format!(
                    "Drift detected: the live world differs from the spec.\n{}",
                    render::human(plan, Style::for_stdout())
                )
            } else {
                "No drift: the live world matches the spec.\n".to_string()
            }
        }
        DriftFormat::Json => render::json(plan) + "\n",
        DriftFormat::Junit => ci::junit(plan, &args.spec),
        DriftFormat::Github => ci::github(plan),
    };
    print_out(&p, &text);
    Ok(if plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

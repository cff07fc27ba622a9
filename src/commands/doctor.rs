//! `xfed doctor SPEC`: the Lync troubleshooting guide's checks, in its
//! order, one PASS/WARN/FAIL line per check and host with what was seen
//! and the fix. Read-only: a new host key is never trusted.

use std::path::PathBuf;

use clap::Args;

use super::error::Result;
use super::run::{load, progress};
use super::{ExitStatus, Format};
use crate::output::Style;
use crate::verify::doctor;

#[derive(Args, Debug)]
pub struct DoctorArgs {
    pub spec: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Hosts contacted at once.
    #[arg(long, default_value_t = 20)]
    pub parallelism: usize,
    /// Print no progress on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub async fn run(args: &DoctorArgs) -> Result<ExitStatus> {
    let spec = load(&args.spec)?;
    let progress = progress(&spec.redactor, args.quiet);
    let opts = doctor::Options {
        parallelism: args.parallelism,
    };
    let findings = doctor::run(&spec, opts, &progress).await?;
    let text = match args.format {
        Format::Human => doctor::render::human(&findings, Style::for_stdout().color),
        Format::Json => doctor::render::json(&findings),
    };
    print!("{}", spec.redactor.redact(&text));
    Ok(if doctor::healthy(&findings) {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

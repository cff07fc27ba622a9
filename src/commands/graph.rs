//! `xfed graph SPEC`: plans like `plan` and draws the rollout's step order
//! as Graphviz DOT, or SVG through Graphviz's `dot` (looked for before
//! anything is contacted).

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::error::{CommandError, Result};
use super::run::{prepared, print_out};
use super::{ExitStatus, RunArgs};
use crate::output::dot;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Svg,
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    pub spec: PathBuf,
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
    #[command(flatten)]
    pub run: RunArgs,
}

pub async fn run(args: &GraphArgs) -> Result<ExitStatus> {
    let has_dot = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("dot").is_file()));
    if args.format == GraphFormat::Svg && !has_dot {
        return Err(CommandError::Refused(
            "`--format svg` needs Graphviz's `dot`, which is not installed (not on PATH); nothing was contacted\nhint: `apt-get install graphviz`, or use the default `--format dot` and render it elsewhere".into(),
        ));
    }
    let p = prepared(&args.spec, &args.run).await?;
    let text = p.spec.redactor.redact(&dot::dot(&p.plan));
    if args.format == GraphFormat::Dot {
        print_out(&p, &text);
        return Ok(ExitStatus::Success);
    }
    let cannot_run = |e: std::io::Error| {
        CommandError::Refused(format!(
            "cannot run Graphviz's `dot`: {e}\nhint: `apt-get install graphviz`"
        ))
    };
    let mut child = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(cannot_run)?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| CommandError::Refused("`dot` has no stdin".into()))?;
    // Written from a thread: `dot` may answer before it has read everything.
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().map_err(cannot_run)?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(CommandError::Refused(format!(
            "`dot -Tsvg` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    print_out(&p, &String::from_utf8_lossy(&out.stdout));
    Ok(ExitStatus::Success)
}

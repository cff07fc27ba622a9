//! `xfed validate SPEC`: the spec checked — syntax, types, references and
//! rules — with every problem at its line; nothing is contacted.

use std::path::PathBuf;

use clap::Args;

use super::run::count;
use super::{ExitStatus, Format};
use crate::spec::{self, LoadError, MissingSecrets};

#[derive(Args, Debug)]
pub struct ValidateArgs {
    pub spec: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// A secret that cannot be read (`env()` of an unset variable, `file()`
    /// of a missing file) is an error, as for `plan`; without it, a warning.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: &ValidateArgs) -> ExitStatus {
    let path = &args.spec;
    let missing = if args.strict {
        MissingSecrets::Refuse
    } else {
        MissingSecrets::Warn
    };
    let result = spec::load_file_with(path, missing);
    let (ok, diagnostics) = match &result {
        Ok(loaded) => (true, loaded.warnings.clone()),
        Err(LoadError::Invalid(d)) => (false, d.clone()),
        Err(e @ LoadError::Read { .. }) => {
            eprintln!("error: {e}");
            return ExitStatus::Failure;
        }
    };
    match args.format {
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
    if ok {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    }
}

//! The `xfed` command line: parse arguments, call the library, map outcomes
//! to exit codes (0 ok / no changes, 1 error, 2 changes present). No logic
//! lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use xfed::spec::{self, LoadError};

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
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Human,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { spec, format } => validate(&spec, format),
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&spec::json_schema()).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
    }
}

fn validate(path: &std::path::Path, format: Format) -> ExitCode {
    let result = spec::load_file(path);
    let (ok, diagnostics) = match &result {
        Ok(loaded) => (true, loaded.warnings.clone()),
        Err(LoadError::Invalid(d)) => (false, d.clone()),
        Err(e @ LoadError::Read { .. }) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
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
                    "{}: valid ({} sites, {} front-end servers, {} edge servers, {} certificates{})",
                    path.display(),
                    s.sites.len(),
                    s.frontend_pools
                        .iter()
                        .map(|p| p.servers.len())
                        .sum::<usize>(),
                    s.edge_pools.iter().map(|p| p.servers.len()).sum::<usize>(),
                    s.certificates.len(),
                    match diagnostics.warnings() {
                        0 => String::new(),
                        n => format!(", {n} warning{}", if n == 1 { "" } else { "s" }),
                    }
                );
            } else {
                let n = diagnostics.errors();
                eprintln!(
                    "{}: {n} error{} found; nothing was changed",
                    path.display(),
                    if n == 1 { "" } else { "s" }
                );
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

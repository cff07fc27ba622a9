//! `xfed-gateway`: parse arguments, load and validate the configuration
//! before anything is bound, run the daemon, map outcomes to exit codes
//! (0 ok, 1 runtime failure, 64 bad configuration or usage).
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;
use xfed_gateway::cli::{Command, USAGE};
use xfed_gateway::config::{Config, ConfigError};
use xfed_gateway::event;
use xfed_gateway::server::{Daemon, Generation};

/// jemalloc instead of the system allocator: glibc's per-thread arenas
/// keep what a load peak took (RSS stayed at its high-water mark after an
/// attack). jemalloc's background thread (enabled by default with the
/// `background_threads` feature) purges freed pages after its decay time
/// (10 s by default) even when no thread allocates any more, so the edge
/// does not ratchet up to its worst day. It also serves `malloc` for the C
/// code linked in (aws-lc, see Cargo.toml), so TLS state freed after a
/// load goes back too. What it never gives back is its metadata for the
/// address space it mapped at the peak (extent descriptors and radix tree,
/// about 1% of it): hence no stream holds address space it does not use
/// (an idle stream holds no XML parser, `xml::framer`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// EX_USAGE (sysexits.h): bad command line or configuration.
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let command = match Command::parse(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("xfed-gateway: {e}\n{USAGE}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match command {
        Command::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("xfed-gateway {}", xfed_gateway::VERSION);
            ExitCode::SUCCESS
        }
        Command::Check(path) => check(&path),
        Command::Run(path) => run(&path),
    }
}

fn load(path: &Path) -> Result<(Generation, Vec<String>), ConfigError> {
    Config::load(path).and_then(Generation::prepare)
}

/// `--check-config`: human-readable verdict, exit 0 or 64.
fn check(path: &Path) -> ExitCode {
    match load(path) {
        Ok((generation, warnings)) => {
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
            let c = &generation.config;
            let source = c
                .policy_file
                .as_ref()
                .map(|p| format!(" from {}", p.path.display()))
                .unwrap_or_default();
            println!(
                "{}: OK (domains: {}; external {}, internal {}, admin {}; {} partner(s), {} policy(ies), {} grant(s), {} site(s){source})",
                path.display(),
                c.domains.join(", "),
                c.external.address,
                c.internal.address,
                c.admin.address,
                c.partners.len(),
                c.policies.len(),
                c.grants.len(),
                c.sites.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xfed-gateway: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Runs the daemon: every config problem is one log line naming its field.
fn run(path: &Path) -> ExitCode {
    let (generation, warnings) = match load(path) {
        Ok(loaded) => loaded,
        Err(e) => {
            for problem in e.problems() {
                event!(
                    Error,
                    "config_invalid",
                    config = path.display(),
                    field = problem.field,
                    problem = problem.message,
                    hint = problem.hint.as_deref().unwrap_or("-"),
                );
            }
            event!(
                Error,
                "exiting",
                reason = "invalid configuration",
                status = EXIT_CONFIG
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    xfed_gateway::log::set_level(generation.config.log_level);
    for warning in &warnings {
        event!(Warn, "config_warning", warning = warning);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            event!(
                Error,
                "exiting",
                reason = "cannot start the async runtime",
                error = e
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(Daemon::run(path, generation)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            event!(Error, "exiting", reason = e);
            ExitCode::FAILURE
        }
    }
}

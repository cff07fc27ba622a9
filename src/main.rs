//! The `xfed` command line: parse the arguments, dispatch to
//! `xfed::commands`, turn the outcome into the exit code (0 ok / no
//! changes, 1 error, 2 changes present). Nothing else lives here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xfed::commands::{
    self, ExitStatus, apply::ApplyArgs, cert::CertCommand, doctor::DoctorArgs, drift::DriftArgs,
    graph::GraphArgs, hosts::HostsCommand, plan::PlanArgs, ssh_keeper::KeeperCommand,
    unlock::UnlockArgs, validate::ValidateArgs, verify::VerifyArgs,
};

#[derive(Parser, Debug)]
#[command(name = "xfed", version, about = "Run an XMPP federation edge as code")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a spec: syntax, types, references and rules; nothing is contacted.
    Validate(ValidateArgs),
    /// Print the JSON Schema of the spec format (for editors).
    Schema,
    /// Show what apply would change, as a diff against the live world.
    Plan(PlanArgs),
    /// Carry out a plan: a spec (planned now) or a saved plan file.
    Apply(ApplyArgs),
    /// Report how the live world differs from the spec; never changes anything.
    Drift(DriftArgs),
    /// Check every listener of every host.
    Verify(VerifyArgs),
    /// Certificates: list them, show a pending request, import a CA's answer.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Troubleshoot the deployment: read-only checks in the Lync guide's
    /// order, each with what was seen and the fix; never changes anything.
    Doctor(DoctorArgs),
    /// Draw the rollout's step order: Graphviz DOT, or SVG through `dot`.
    Graph(GraphArgs),
    /// First contact: fetch the servers' SSH host keys, show their
    /// fingerprints, record them in known_hosts when asked.
    Hosts {
        #[command(subcommand)]
        command: HostsCommand,
    },
    /// The background process keeping SSH sessions for `ssh.persist_secs`.
    SshKeeper {
        #[command(subcommand)]
        command: KeeperCommand,
    },
    /// Remove an apply lock left behind by an apply that died.
    Unlock(UnlockArgs),
}

fn main() -> ExitCode {
    let status = match Cli::parse().command {
        Command::Validate(args) => commands::validate::run(&args),
        Command::Schema => commands::schema::run(),
        Command::SshKeeper { command } => commands::ssh_keeper::run(&command),
        command => run_async(command),
    };
    status.into()
}

/// The commands that talk to hosts, on a tokio runtime; an error is
/// printed with its causes and exits 1.
fn run_async(command: Command) -> ExitStatus {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitStatus::Failure;
        }
    };
    let result = rt.block_on(async {
        match command {
            Command::Plan(args) => commands::plan::run(&args).await,
            Command::Apply(args) => commands::apply::run(&args).await,
            Command::Drift(args) => commands::drift::run(&args).await,
            Command::Verify(args) => commands::verify::run(&args).await,
            Command::Unlock(args) => commands::unlock::run(&args).await,
            Command::Cert { command } => commands::cert::run(&command).await,
            Command::Doctor(args) => commands::doctor::run(&args).await,
            Command::Graph(args) => commands::graph::run(&args).await,
            Command::Hosts { command } => commands::hosts::run(&command).await,
            Command::Validate(_) | Command::Schema | Command::SshKeeper { .. } => {
                Ok(ExitStatus::Success)
            }
        }
    });
    result.unwrap_or_else(|e| {
        eprintln!("error: {}", commands::report(&e));
        ExitStatus::Failure
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every subcommand's arguments are consistent (unique names, valid
    /// defaults): clap checks this only when a command is used.
    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}

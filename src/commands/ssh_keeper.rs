//! `xfed ssh-keeper status|stop` (and the hidden `serve` that a run starts):
//! the background process that keeps SSH sessions for `ssh.persist_secs`.

use clap::Subcommand;

use super::ExitStatus;
use crate::transport::ssh::keeper::{self, KeeperPaths, wire};

#[derive(Subcommand, Debug)]
pub enum KeeperCommand {
    /// Whether a keeper runs for this user and network namespace, and what it holds.
    Status,
    /// End the keeper now, closing every kept session.
    Stop,
    /// Run the keeper (xfed starts it when a spec asks for kept sessions).
    #[command(hide = true)]
    Serve {
        /// Exit once unused for this long.
        #[arg(long)]
        idle_secs: u64,
    },
}

pub fn run(command: &KeeperCommand) -> ExitStatus {
    let result = match command {
        KeeperCommand::Serve { idle_secs } => KeeperPaths::current()
            .and_then(|p| keeper::serve(&p, std::time::Duration::from_secs(*idle_secs))),
        KeeperCommand::Stop => keeper::stop().map(|was| {
            if was {
                println!("ssh keeper stopped");
            } else {
                println!("no ssh keeper runs");
            }
        }),
        KeeperCommand::Status => keeper::request(&wire::Request::Status).map(|r| match r {
            Some(wire::Response::Status {
                pid,
                sessions,
                clients,
                idle_secs,
            }) => println!(
                "ssh keeper pid {pid}: {sessions} idle session(s), {clients} run(s) attached, exits after {idle_secs} s unused"
            ),
            _ => println!("no ssh keeper runs"),
        }),
    };
    match result {
        Ok(()) => ExitStatus::Success,
        Err(e) => {
            eprintln!("error: ssh keeper: {e}");
            ExitStatus::Failure
        }
    }
}

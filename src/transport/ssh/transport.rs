//! `SshTransport`: `Transport` over one reused SSH session.
//!
//! `run` wraps the argument list in the host's `timeout`, applies `become`,
//! quotes it once (`quote.rs`) and execs it. The timeout is enforced on the
//! host because that is the only place it can stop the whole command: ssh2
//! cannot send the SSH "signal" request once a command runs, closing the
//! channel leaves the process running, and a remote `timeout` still fires if
//! xfed itself dies. The client keeps its own, later deadline for a silent
//! network.
//!
//! A session that fails is dropped and the next call reconnects (checking
//! the host key again); a command is retried on a fresh session only if the
//! channel could not even be opened, i.e. it never started.
//!
//! With `persist` set the session is the keeper's (`keeper/`), reused
//! across runs; whenever the keeper cannot provide one, the transport
//! connects by itself.

use std::time::{Duration, Instant};

use super::config::SshConfig;
use super::connection::{Connection, ExecError};
use super::keeper::KeptSession;
use crate::transport::Transport;
use crate::transport::command::Command;
use crate::transport::error::TransportError;
use crate::transport::output::Output;
use crate::transport::quote::shell_join;

/// `timeout -k`: time between the remote SIGTERM and SIGKILL.
const KILL_AFTER_SECS: u64 = 2;
/// Extra time the client waits beyond the remote timeout and kill delay
/// before it gives up on the connection.
const CLIENT_MARGIN: Duration = Duration::from_secs(5);
/// Exit status of `timeout` when it had to stop the command (TERM, KILL).
const TIMEOUT_STATUSES: [i32; 2] = [124, 128 + 9];

/// A connected SSH host.
#[derive(Debug)]
pub struct SshTransport {
    config: SshConfig,
    conn: Option<Link>,
}

/// The session commands run on: this run's own, or one the keeper holds.
#[derive(Debug)]
enum Link {
    Own(Connection),
    Kept(KeptSession),
}

impl Link {
    fn open(config: &SshConfig) -> Result<Link, TransportError> {
        if let Some(kept) = config
            .persist
            .and_then(|persist| KeptSession::open(config, persist))
        {
            return Ok(Link::Kept(kept));
        }
        Connection::open(config).map(Link::Own)
    }

    fn exec(
        &mut self,
        line: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, ExecError> {
        match self {
            Link::Own(conn) => conn.exec(line, stdin, timeout),
            Link::Kept(kept) => kept.exec(line, stdin, timeout),
        }
    }
}

impl SshTransport {
    /// Connects, verifies the host key and authenticates, all within
    /// `config.connect_timeout`.
    pub fn connect(config: SshConfig) -> Result<Self, TransportError> {
        let conn = Link::open(&config)?;
        Ok(SshTransport {
            config,
            conn: Some(conn),
        })
    }

    pub fn config(&self) -> &SshConfig {
        &self.config
    }

    /// Whether commands run on a session the keeper holds.
    pub fn is_kept(&self) -> bool {
        matches!(self.conn, Some(Link::Kept(_)))
    }

    fn connection(&mut self) -> Result<&mut Link, TransportError> {
        match &mut self.conn {
            Some(conn) => Ok(conn),
            slot => Ok(slot.insert(Link::open(&self.config)?)),
        }
    }
}

/// `timeout -s TERM -k 2 SECS ARGV…`: GNU coreutils and busybox both
/// understand this form; `timeout` signals the command's whole process group.
fn with_remote_timeout(argv: &[String], timeout: Duration) -> Vec<String> {
    let secs = if timeout.subsec_nanos() == 0 {
        timeout.as_secs().to_string()
    } else {
        format!("{:.3}", timeout.as_secs_f64())
    };
    [
        "timeout",
        "-s",
        "TERM",
        "-k",
        &KILL_AFTER_SECS.to_string(),
        &secs,
    ]
    .into_iter()
    .map(String::from)
    .chain(argv.iter().cloned())
    .collect()
}

impl Transport for SshTransport {
    fn host(&self) -> &str {
        &self.config.host
    }

    fn run(&mut self, cmd: &Command) -> Result<Output, TransportError> {
        let timeout = cmd.timeout.unwrap_or(self.config.command_timeout);
        let argv = self.config.escalation.wrap(
            &with_remote_timeout(&cmd.argv, timeout),
            self.config.is_root(),
        );
        let line = shell_join(&argv).map_err(|e| TransportError::InvalidArgument {
            host: self.config.host.clone(),
            command: cmd.describe(),
            message: e.to_string(),
        })?;
        let client_limit = timeout + Duration::from_secs(KILL_AFTER_SECS) + CLIENT_MARGIN;
        let stdin = cmd.stdin.as_deref();
        let started = Instant::now();

        let mut result = self.connection()?.exec(&line, stdin, client_limit);
        if let Err(ExecError::NotStarted(_)) = result {
            // The session died while idle (server restart, NAT timeout):
            // the command never ran, so running it on a new session is safe.
            self.conn = None;
            let left = client_limit.saturating_sub(started.elapsed());
            result = self.connection()?.exec(&line, stdin, left);
        }
        let host = self.config.host.clone();
        let timed_out = || TransportError::Timeout {
            host: self.config.host.clone(),
            command: cmd.describe(),
            after: timeout,
        };
        match result {
            Ok(out) if TIMEOUT_STATUSES.contains(&out.status) && started.elapsed() >= timeout => {
                Err(timed_out())
            }
            Ok(out) => Ok(out),
            Err(ExecError::TimedOut) => {
                // Nothing heard within the client's limit: the session is
                // not trustworthy any more.
                self.conn = None;
                Err(timed_out())
            }
            Err(ExecError::NotStarted(source) | ExecError::Ssh(source)) => {
                // The session's state is unknown now; start afresh next time.
                self.conn = None;
                Err(TransportError::Ssh {
                    host,
                    op: cmd.describe(),
                    source,
                })
            }
            Err(ExecError::Io(source)) => {
                self.conn = None;
                Err(TransportError::Io {
                    host,
                    op: format!("run {}", cmd.describe()),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_timeout_wraps_argv() {
        let argv = vec!["sleep".to_string(), "5".to_string()];
        assert_eq!(
            with_remote_timeout(&argv, Duration::from_secs(300)),
            ["timeout", "-s", "TERM", "-k", "2", "300", "sleep", "5"]
        );
        assert_eq!(
            with_remote_timeout(&argv, Duration::from_millis(1500))[5],
            "1.500"
        );
    }
}

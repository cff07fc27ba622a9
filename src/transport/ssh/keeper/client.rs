//! The run's side of the keeper: attach to a kept session (starting the
//! keeper if none runs), check its host key, run commands on it.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use ssh2::{ErrorCode, Session};

use super::KeeperPaths;
use super::server::READY;
use super::wire::{self, Failure, PROTOCOL, Request, Response, Target};
use crate::transport::output::Output;
use crate::transport::ssh::config::SshConfig;
use crate::transport::ssh::connection::ExecError;
use crate::transport::ssh::host_key::HostKey;
use crate::transport::ssh::known_hosts::{KnownHosts, Verdict};

/// Time the keeper gets beyond a command's own limit to answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);

/// How long `stop` waits for the keeper to go (it notices within a tick).
const STOP_WAIT: Duration = Duration::from_secs(5);

/// One keeper start at a time per process: a run's host threads all find
/// no keeper at once, and one of them starts it.
static STARTING: Mutex<()> = Mutex::new(());

/// A session held by the keeper, attached to this run.
#[derive(Debug)]
pub(crate) struct KeptSession {
    stream: UnixStream,
}

impl KeptSession {
    /// A kept session for `cfg`, or `None` when the run should connect by
    /// itself (no keeper and none could be started, the keeper could not
    /// connect, or the session's host key is not the one known_hosts
    /// holds now).
    pub(crate) fn open(cfg: &SshConfig, persist: Duration) -> Option<KeptSession> {
        if cfg.accept_new_host_keys {
            return None;
        }
        let paths = KeeperPaths::current().ok()?;
        paths.prepare_dir().ok()?;
        let stream = attach(&paths, persist)?;
        stream
            .set_read_timeout(Some(cfg.connect_timeout + ANSWER_MARGIN))
            .ok()?;
        let mut session = KeptSession { stream };
        let open = Request::Open {
            protocol: PROTOCOL,
            target: Target::of(cfg),
        };
        match session.call(&open, &[]).ok()?.message {
            Response::Opened { host_key, .. } if known(cfg, &host_key) => Some(session),
            Response::Opened { .. } => {
                let _ = wire::write_request(&mut session.stream, &Request::Discard, &[]);
                None
            }
            _ => None,
        }
    }

    /// Runs `line` on the kept session, as `Connection::exec` does.
    pub(crate) fn exec(
        &mut self,
        line: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, ExecError> {
        let req = Request::Exec {
            line: line.to_string(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            stdin: stdin.is_some(),
        };
        let blobs: Vec<&[u8]> = stdin.into_iter().collect();
        self.stream
            .set_read_timeout(Some(timeout + ANSWER_MARGIN))
            .map_err(ExecError::Io)?;
        let frame = self.call(&req, &blobs).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ExecError::TimedOut,
            _ => ExecError::Io(e),
        })?;
        match frame.message {
            Response::Output { status } => {
                let mut blobs = frame.blobs.into_iter();
                Ok(Output {
                    status,
                    stdout: blobs.next().unwrap_or_default(),
                    stderr: blobs.next().unwrap_or_default(),
                })
            }
            Response::ExecFailed {
                failure: Failure::NotStarted,
                code,
                ..
            } => Err(ExecError::NotStarted(ssh2::Error::new(
                ErrorCode::Session(code),
                "the kept session could not open a channel",
            ))),
            Response::ExecFailed {
                failure: Failure::TimedOut,
                ..
            } => Err(ExecError::TimedOut),
            Response::ExecFailed { message, .. } => Err(ExecError::Io(std::io::Error::other(
                format!("kept session: {message}"),
            ))),
            other => Err(ExecError::Io(std::io::Error::other(format!(
                "unexpected keeper answer {other:?}"
            )))),
        }
    }

    fn call(&mut self, req: &Request, blobs: &[&[u8]]) -> std::io::Result<wire::Frame<Response>> {
        wire::write_request(&mut self.stream, req, blobs)?;
        wire::read_response(&mut self.stream)?
            .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
    }
}

/// The session's host key is on file for this host now. The keeper
/// checked it when it connected; this run checks it against the file as
/// it reads it today, so a key removed or revoked since is noticed.
fn known(cfg: &SshConfig, host_key: &str) -> bool {
    let (Some(key), Ok(known_hosts), Ok(sess)) = (
        HostKey::from_base64(host_key),
        KnownHosts::load(&cfg.known_hosts),
        Session::new(),
    ) else {
        return false;
    };
    let name = KnownHosts::host_name(&cfg.address, cfg.port);
    known_hosts.verify(&sess, &name, &key) == Verdict::Match
}

/// A connection to the keeper, starting one if none answers.
fn attach(paths: &KeeperPaths, persist: Duration) -> Option<UnixStream> {
    if let Some(s) = connect(paths) {
        return Some(s);
    }
    let _one = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = connect(paths) {
        return Some(s);
    }
    start(persist)?;
    connect(paths)
}

/// Connects if a keeper of this user answers on the socket.
fn connect(paths: &KeeperPaths) -> Option<UnixStream> {
    let stream = UnixStream::connect(&paths.socket).ok()?;
    let me = rustix::process::getuid();
    rustix::net::sockopt::socket_peercred(&stream)
        .is_ok_and(|c| c.uid == me)
        .then_some(stream)
}

/// Starts `xfed ssh-keeper serve` and waits for its ready line (it prints
/// it once it listens, or at once if another keeper already does; it
/// exits without it on failure, which ends the read).
fn start(persist: Duration) -> Option<()> {
    let exe = std::env::current_exe().ok()?;
    let mut child = Command::new(exe)
        .args(["ssh-keeper", "serve", "--idle-secs"])
        .arg(persist.as_secs().max(1).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    let read = child
        .stdout
        .take()
        .map(|out| BufReader::new(out).read_line(&mut line));
    (matches!(read, Some(Ok(_))) && line.trim_end() == READY).then_some(())
}

/// Sends one request to the running keeper (for `xfed ssh-keeper status`);
/// `None` when no keeper runs.
pub fn request(req: &Request) -> std::io::Result<Option<Response>> {
    let paths = KeeperPaths::current()?;
    let Some(mut stream) = connect(&paths) else {
        return Ok(None);
    };
    stream.set_read_timeout(Some(ANSWER_MARGIN))?;
    let answer =
        wire::write_request(&mut stream, req, &[]).and_then(|()| wire::read_response(&mut stream));
    match answer {
        Ok(frame) => Ok(frame.map(|f| f.message)),
        // A keeper on its way out.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Asks the running keeper to exit and waits until it has let go of its
/// socket; whether one was running.
pub fn stop() -> std::io::Result<bool> {
    let paths = KeeperPaths::current()?;
    if request(&Request::Stop)?.is_none() {
        return Ok(false);
    }
    let deadline = std::time::Instant::now() + STOP_WAIT;
    while paths.socket.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(true)
}

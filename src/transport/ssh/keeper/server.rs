//! The keeper process (`xfed ssh-keeper serve`): holds authenticated SSH
//! sessions between runs, the way OpenSSH's ControlPersist does, and runs
//! commands on them for the xfed runs that attach.
//!
//! One keeper per user and network namespace (a Unix socket in a 0700
//! directory, the peer's uid checked on every accept), made single by an
//! flock on a lock file beside the socket. Each client connection is one
//! host's transport for one run and gets a thread; it attaches to an idle
//! session of the same target or a new one, and hands it back to the pool
//! when it hangs up. A session that failed is dropped, never pooled. The
//! keeper exits by itself once nobody has attached for `idle`, and at
//! `Stop`.
//!
//! Must not: print anything after "ready" (stdout is the spawning run's
//! pipe), log what runs, or trust a session on a client's behalf: the
//! client checks the session's host key against known_hosts itself.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, BufReader, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::{FlockOperation, flock};

use super::KeeperPaths;
use super::wire::{self, Failure, PROTOCOL, Request, Response, Target};
use crate::transport::ssh::connection::{Connection, ExecError};

/// How often the accept loop wakes to expire idle sessions.
const TICK: Duration = Duration::from_millis(500);

/// The line a keeper prints once it serves (or another keeper does).
pub const READY: &str = "xfed-ssh-keeper ready";

struct Idle {
    conn: Connection,
    since: Instant,
}

struct Shared {
    pool: Mutex<HashMap<String, Vec<Idle>>>,
    clients: AtomicUsize,
    last_activity: Mutex<Instant>,
    stop: AtomicBool,
    idle: Duration,
}

impl Shared {
    fn touch(&self) {
        *lock(&self.last_activity) = Instant::now();
    }

    fn take(&self, key: &str) -> Option<Connection> {
        lock(&self.pool)
            .get_mut(key)
            .and_then(Vec::pop)
            .map(|i| i.conn)
    }

    fn give_back(&self, key: String, conn: Connection) {
        lock(&self.pool).entry(key).or_default().push(Idle {
            conn,
            since: Instant::now(),
        });
    }

    /// Drops sessions idle for longer than `idle`; the number left.
    fn expire(&self) -> usize {
        let mut pool = lock(&self.pool);
        for sessions in pool.values_mut() {
            sessions.retain(|i| i.since.elapsed() < self.idle);
        }
        pool.retain(|_, s| !s.is_empty());
        pool.values().map(Vec::len).sum()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the keeper until it has been idle for `idle` or is told to stop.
/// Prints [`READY`] on stdout once clients can connect.
pub fn serve(paths: &KeeperPaths, idle: Duration) -> io::Result<()> {
    // Out of the spawning run's session: its terminal's signals are not ours.
    let _ = rustix::process::setsid();
    paths.prepare_dir()?;
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&paths.lock)?;
    if flock(&lock_file, FlockOperation::NonBlockingLockExclusive).is_err() {
        // Another keeper holds the lock and serves the socket.
        return say_ready();
    }
    match fs::remove_file(&paths.socket) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&paths.socket)?;
    fs::set_permissions(&paths.socket, fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    say_ready()?;

    let shared = Arc::new(Shared {
        pool: Mutex::new(HashMap::new()),
        clients: AtomicUsize::new(0),
        last_activity: Mutex::new(Instant::now()),
        stop: AtomicBool::new(false),
        idle,
    });
    let me = rustix::process::getuid();
    while !shared.stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(&listener, PollFlags::IN)];
        let tick = Timespec::try_from(TICK).unwrap_or(Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        match poll(&mut fds, Some(&tick)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let same_user =
                        rustix::net::sockopt::socket_peercred(&stream).is_ok_and(|c| c.uid == me);
                    if same_user && stream.set_nonblocking(false).is_ok() {
                        shared.clients.fetch_add(1, Ordering::SeqCst);
                        shared.touch();
                        let shared = shared.clone();
                        std::thread::spawn(move || {
                            serve_client(&shared, &stream);
                            shared.clients.fetch_sub(1, Ordering::SeqCst);
                            shared.touch();
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let pooled = shared.expire();
        let quiet = lock(&shared.last_activity).elapsed() >= idle;
        if quiet && pooled == 0 && shared.clients.load(Ordering::SeqCst) == 0 {
            break;
        }
    }
    // Still holding the lock, so the socket is ours to remove.
    let _ = fs::remove_file(&paths.socket);
    drop(lock_file);
    Ok(())
}

fn say_ready() -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{READY}")?;
    out.flush()
}

/// One attached run: requests until it hangs up.
fn serve_client(shared: &Shared, stream: &UnixStream) {
    let mut reader = BufReader::new(stream);
    let mut writer = stream;
    let mut attached: Option<(String, Connection)> = None;
    while let Ok(Some(frame)) = wire::read_request(&mut reader) {
        shared.touch();
        let (resp, blobs) = match frame.message {
            Request::Open { protocol, target } => {
                if let Some((key, conn)) = attached.take() {
                    shared.give_back(key, conn);
                }
                (open(shared, protocol, &target, &mut attached), vec![])
            }
            Request::Exec {
                line,
                timeout_ms,
                stdin,
            } => match attached.as_mut() {
                None => (
                    Response::Error {
                        message: "no session attached".into(),
                    },
                    vec![],
                ),
                Some((_, conn)) => {
                    let input = stdin.then(|| frame.blobs.first().map(Vec::as_slice));
                    let timeout = Duration::from_millis(timeout_ms);
                    match conn.exec(&line, input.flatten(), timeout) {
                        Ok(out) => (
                            Response::Output { status: out.status },
                            vec![out.stdout, out.stderr],
                        ),
                        Err(e) => {
                            // A failed session is never handed to anyone again.
                            attached = None;
                            (exec_failed(&e), vec![])
                        }
                    }
                }
            },
            Request::Discard => {
                attached = None;
                continue;
            }
            Request::Status => (
                Response::Status {
                    pid: std::process::id(),
                    sessions: lock(&shared.pool).values().map(Vec::len).sum(),
                    // Not counting the asker.
                    clients: shared.clients.load(Ordering::SeqCst).saturating_sub(1),
                    idle_secs: shared.idle.as_secs(),
                },
                vec![],
            ),
            Request::Stop => {
                shared.stop.store(true, Ordering::SeqCst);
                (Response::Stopping, vec![])
            }
        };
        let blobs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
        if wire::write_response(&mut writer, &resp, &blobs).is_err() {
            // The run went away mid-answer; the session's state is fine,
            // but whether the command's effect was seen is not: drop it.
            attached = None;
            break;
        }
    }
    if let Some((key, conn)) = attached {
        shared.give_back(key, conn);
    }
}

fn open(
    shared: &Shared,
    protocol: u32,
    target: &Target,
    attached: &mut Option<(String, Connection)>,
) -> Response {
    if protocol != PROTOCOL {
        return Response::OpenFailed {
            message: format!("keeper speaks protocol {PROTOCOL}, not {protocol}"),
        };
    }
    let key = target.pool_key();
    let (conn, reused) = match shared.take(&key) {
        Some(conn) => (conn, true),
        None => match Connection::open(&target.config()) {
            Ok(conn) => (conn, false),
            Err(e) => {
                return Response::OpenFailed {
                    message: e.to_string(),
                };
            }
        },
    };
    let host_key = conn.host_key().to_base64();
    *attached = Some((key, conn));
    Response::Opened { host_key, reused }
}

fn exec_failed(e: &ExecError) -> Response {
    let (failure, code, message) = match e {
        ExecError::NotStarted(s) => (Failure::NotStarted, ssh_code(s), s.message().to_string()),
        ExecError::Ssh(s) => (Failure::Ssh, ssh_code(s), s.message().to_string()),
        ExecError::TimedOut => (Failure::TimedOut, 0, String::new()),
        ExecError::Io(io) => (Failure::Io, 0, io.to_string()),
    };
    Response::ExecFailed {
        failure,
        code,
        message,
    }
}

fn ssh_code(e: &ssh2::Error) -> i32 {
    match e.code() {
        ssh2::ErrorCode::Session(c) | ssh2::ErrorCode::SFTP(c) => c,
    }
}

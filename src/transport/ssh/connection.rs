//! `Connection`: one authenticated libssh2 session to one host, and the
//! exec loop that runs a command line over it.
//!
//! Connecting: TCP with a timeout, host-key algorithms restricted to the
//! types known_hosts holds for the host, handshake, strict host-key check
//! (trust on first use only when asked), authentication. Everything up to
//! authentication runs under the connect timeout.
//!
//! Exec runs libssh2 in non-blocking mode and waits on the socket with
//! poll(2): stdin, stdout and stderr are serviced together (a blocking
//! read of stdout stalls once the command writes more than the channel
//! window to stderr, notes §1), and the deadline is exact instead of
//! libssh2's per-call timeout (which can take twice as long). This deadline
//! is only the client's safety net: stopping the command itself is the job
//! of the remote `timeout` wrapper (see `transport.rs`). The session is
//! blocking at rest (with a short timeout) so that freeing a channel can
//! complete.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use ssh2::{BlockDirections, ErrorCode, MethodType, Session};

use super::config::{SshAuth, SshConfig};
use super::host_key::HostKey;
use super::known_hosts::{KnownHosts, Verdict};
use crate::transport::error::{HostKeyReport, TransportError};
use crate::transport::output::Output;

/// libssh2's LIBSSH2_ERROR_EAGAIN: the call would block.
const EAGAIN: i32 = -37;
/// libssh2's LIBSSH2_ERROR_KEX_FAILURE: no common algorithm.
const KEX_FAILURE: i32 = -5;
/// libssh2's LIBSSH2_ERROR_TIMEOUT and LIBSSH2_ERROR_SOCKET_TIMEOUT.
const TIMEOUTS: [i32; 2] = [-9, -30];
/// Bound for blocking clean-up calls (closing a channel, disconnecting).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to spend asking a timed-out command to stop.
const STOP_BUDGET: Duration = Duration::from_millis(1500);

/// Why an exec did not produce an `Output`.
#[derive(Debug)]
pub(crate) enum ExecError {
    /// The channel could not be opened: the command never started, and a
    /// fresh connection may well succeed.
    NotStarted(ssh2::Error),
    /// SSH failed after the command may have started.
    Ssh(ssh2::Error),
    /// The client-side deadline passed; the session may be wedged.
    TimedOut,
    /// Reading the channel or poll(2) failed.
    Io(io::Error),
}

/// An authenticated session plus a handle on its socket for poll(2).
pub(crate) struct Connection {
    sess: Session,
    sock: TcpStream,
    host_key: HostKey,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.sock.peer_addr().ok())
            .finish()
    }
}

impl Connection {
    pub(crate) fn open(cfg: &SshConfig) -> Result<Connection, TransportError> {
        let tcp = tcp_connect(cfg)?;
        let sock = tcp.try_clone().map_err(|source| TransportError::Connect {
            host: cfg.host.clone(),
            address: cfg.endpoint(),
            source,
        })?;
        let ssh_err = |op: &str, source| TransportError::Ssh {
            host: cfg.host.clone(),
            op: op.to_string(),
            source,
        };
        let mut sess = Session::new().map_err(|e| ssh_err("session setup", e))?;
        sess.set_tcp_stream(tcp);
        sess.set_blocking(true);
        sess.set_timeout(millis(cfg.connect_timeout));

        let known_hosts =
            KnownHosts::load(&cfg.known_hosts).map_err(|source| TransportError::KnownHosts {
                path: cfg.known_hosts.clone(),
                action: "read",
                source,
            })?;
        let name = KnownHosts::host_name(&cfg.address, cfg.port);
        let supported = sess
            .supported_algs(MethodType::HostKey)
            .map_err(|e| ssh_err("listing host-key algorithms", e))?;
        let prefs = known_hosts.host_key_prefs(&sess, &name, &supported);
        if !prefs.is_empty() {
            sess.method_pref(MethodType::HostKey, &prefs.join(","))
                .map_err(|e| ssh_err("setting host-key algorithms", e))?;
        }

        sess.handshake().map_err(|source| match source.code() {
            ErrorCode::Session(code) if TIMEOUTS.contains(&code) => {
                TransportError::ConnectTimeout {
                    host: cfg.host.clone(),
                    address: cfg.endpoint(),
                    after: cfg.connect_timeout,
                }
            }
            ErrorCode::Session(KEX_FAILURE) if !prefs.is_empty() => {
                TransportError::HostKeyAlgorithms {
                    host: cfg.host.clone(),
                    address: cfg.endpoint(),
                    known_hosts: cfg.known_hosts.clone(),
                    known_types: known_hosts.known_types(&sess, &name),
                }
            }
            _ => TransportError::Handshake {
                host: cfg.host.clone(),
                address: cfg.endpoint(),
                source,
            },
        })?;

        let presented = match sess.host_key() {
            Some((blob, _)) => HostKey::from_blob(blob),
            None => {
                return Err(ssh_err(
                    "handshake",
                    ssh2::Error::new(ErrorCode::Session(-1), "server sent no host key"),
                ));
            }
        };
        check_host_key(cfg, &known_hosts, &sess, &name, &presented)?;

        authenticate(cfg, &sess)?;
        // Blocking calls from now on are clean-up calls.
        sess.set_timeout(millis(CLEANUP_TIMEOUT));
        Ok(Connection {
            sess,
            sock,
            host_key: presented,
        })
    }

    /// The key the server presented (and known_hosts vouched for).
    pub(crate) fn host_key(&self) -> &HostKey {
        &self.host_key
    }

    /// Runs `line` (already quoted) with `stdin`, within `timeout`.
    pub(crate) fn exec(
        &mut self,
        line: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, ExecError> {
        let deadline = Instant::now() + timeout;
        let mut channel = None;
        self.sess.set_blocking(false);
        let result = self.exec_nonblocking(line, stdin, deadline, &mut channel);
        // Back to blocking before the channel is freed: freeing it in
        // non-blocking mode can give up half-way and leak it. Blocking calls
        // are bounded by CLEANUP_TIMEOUT.
        self.sess.set_blocking(true);
        drop(channel);
        result
    }

    fn exec_nonblocking(
        &self,
        line: &str,
        stdin: Option<&[u8]>,
        deadline: Instant,
        slot: &mut Option<ssh2::Channel>,
    ) -> Result<Output, ExecError> {
        let ch = match self.retry(deadline, || self.sess.channel_session()) {
            Ok(ch) => slot.insert(ch),
            Err(ExecError::Ssh(e)) => return Err(ExecError::NotStarted(e)),
            Err(other) => return Err(other),
        };
        let result = self
            .retry(deadline, || ch.exec(line))
            .and_then(|()| self.pump(ch, stdin.unwrap_or_default(), deadline));
        if matches!(result, Err(ExecError::TimedOut)) {
            self.stop(ch);
        }
        let (stdout, stderr) = result?;
        self.retry(deadline, || ch.close())?;
        self.retry(deadline, || ch.wait_close())?;
        let status = match ch.exit_signal() {
            Ok(sig) if sig.exit_signal.is_some() => {
                128 + signal_number(sig.exit_signal.as_deref().unwrap_or(""))
            }
            _ => ch.exit_status().map_err(ExecError::Ssh)?,
        };
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Feeds stdin and collects stdout and stderr until the remote end
    /// closes both.
    fn pump(
        &self,
        ch: &mut ssh2::Channel,
        stdin: &[u8],
        deadline: Instant,
    ) -> Result<(Vec<u8>, Vec<u8>), ExecError> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let (mut out_eof, mut err_eof) = (false, false);
        let mut written = 0;
        let mut eof_sent = false;
        let mut buf = vec![0u8; 64 * 1024];
        let mut err_stream = ch.stderr();
        loop {
            let mut progress = false;
            while !eof_sent && written < stdin.len() {
                match ch.write(&stdin[written..]) {
                    Ok(0) => break,
                    Ok(n) => {
                        written += n;
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // The command stopped reading (exited, closed stdin);
                    // its status and stderr will say why.
                    Err(_) => written = stdin.len(),
                }
            }
            if !eof_sent && written >= stdin.len() {
                match ch.send_eof() {
                    Ok(()) => {
                        eof_sent = true;
                        progress = true;
                    }
                    Err(e) if is_eagain(&e) => {}
                    Err(_) => eof_sent = true,
                }
            }
            progress |= drain(ch, &mut buf, &mut stdout, &mut out_eof)?;
            progress |= drain(&mut err_stream, &mut buf, &mut stderr, &mut err_eof)?;
            if out_eof && err_eof {
                return Ok((stdout, stderr));
            }
            if !progress {
                self.wait(deadline)?;
            }
        }
    }

    /// Best effort after the client-side deadline: close the channel within
    /// a short budget. (The remote command has its own `timeout` wrapper;
    /// libssh2 cannot send the SSH "signal" request on a channel that has
    /// already started a command.)
    fn stop(&self, ch: &mut ssh2::Channel) {
        let until = Instant::now() + STOP_BUDGET;
        let _ = self.retry(until, || ch.close());
    }

    /// Repeats a non-blocking libssh2 call until it stops saying EAGAIN.
    fn retry<T>(
        &self,
        deadline: Instant,
        mut op: impl FnMut() -> Result<T, ssh2::Error>,
    ) -> Result<T, ExecError> {
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(e) if is_eagain(&e) => self.wait(deadline)?,
                Err(e) => return Err(ExecError::Ssh(e)),
            }
        }
    }

    /// Sleeps until the socket is ready in the direction libssh2 is blocked
    /// on, or the deadline passes.
    fn wait(&self, deadline: Instant) -> Result<(), ExecError> {
        let now = Instant::now();
        if now >= deadline {
            return Err(ExecError::TimedOut);
        }
        let mut slice = deadline - now;
        let flags = match self.sess.block_directions() {
            BlockDirections::Inbound => PollFlags::IN,
            BlockDirections::Outbound => PollFlags::OUT,
            BlockDirections::Both => PollFlags::IN | PollFlags::OUT,
            BlockDirections::None => {
                // libssh2 did not say; don't spin, don't sleep long.
                slice = slice.min(Duration::from_millis(5));
                PollFlags::IN
            }
        };
        let timeout = Timespec::try_from(slice).unwrap_or(Timespec {
            tv_sec: i64::from(u32::MAX),
            tv_nsec: 0,
        });
        let mut fds = [PollFd::new(&self.sock, flags)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(ExecError::Io(e.into())),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.sess.set_blocking(true);
        let _ = self.sess.disconnect(None, "xfed done", None);
    }
}

/// Reads whatever `stream` has now; returns whether anything was read.
fn drain(
    stream: &mut impl Read,
    buf: &mut [u8],
    into: &mut Vec<u8>,
    eof: &mut bool,
) -> Result<bool, ExecError> {
    let mut progress = false;
    while !*eof {
        match stream.read(buf) {
            Ok(0) => *eof = true,
            Ok(n) => {
                into.extend_from_slice(&buf[..n]);
                progress = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // ssh2 keeps only the message of its error in the io::Error.
            Err(e) => return Err(ExecError::Io(e)),
        }
    }
    Ok(progress)
}

pub(super) fn tcp_connect(cfg: &SshConfig) -> Result<TcpStream, TransportError> {
    let addrs: Vec<_> = (cfg.address.as_str(), cfg.port)
        .to_socket_addrs()
        .map_err(|source| TransportError::Resolve {
            host: cfg.host.clone(),
            address: cfg.endpoint(),
            source,
        })?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, cfg.connect_timeout) {
            Ok(tcp) => {
                // Commands are small request/response exchanges: Nagle would
                // add delayed-ACK latency to every one of them.
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if e.kind() == io::ErrorKind::TimedOut => TransportError::ConnectTimeout {
            host: cfg.host.clone(),
            address: cfg.endpoint(),
            after: cfg.connect_timeout,
        },
        Some(source) => TransportError::Connect {
            host: cfg.host.clone(),
            address: cfg.endpoint(),
            source,
        },
        None => TransportError::Resolve {
            host: cfg.host.clone(),
            address: cfg.endpoint(),
            source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
        },
    })
}

fn check_host_key(
    cfg: &SshConfig,
    known_hosts: &KnownHosts,
    sess: &Session,
    name: &str,
    presented: &HostKey,
) -> Result<(), TransportError> {
    let report = || {
        Box::new(HostKeyReport {
            host: cfg.host.clone(),
            address: cfg.endpoint(),
            known_hosts: known_hosts.path().to_path_buf(),
            key_type: presented.key_type(),
            fingerprint: presented.fingerprint(),
        })
    };
    match known_hosts.verify(sess, name, presented) {
        Verdict::Match => Ok(()),
        Verdict::NotFound if cfg.accept_new_host_keys => {
            KnownHosts::append(&cfg.known_hosts, name, presented).map_err(|source| {
                TransportError::KnownHosts {
                    path: cfg.known_hosts.clone(),
                    action: "append to",
                    source,
                }
            })
        }
        Verdict::NotFound => Err(TransportError::HostKeyUnknown { report: report() }),
        Verdict::Mismatch { lines } => Err(TransportError::HostKeyMismatch {
            report: report(),
            lines,
        }),
        Verdict::Revoked { line } => Err(TransportError::HostKeyRevoked {
            report: report(),
            line,
        }),
    }
}

fn authenticate(cfg: &SshConfig, sess: &Session) -> Result<(), TransportError> {
    let (method, result) = match &cfg.auth {
        SshAuth::KeyFile { path, passphrase } => (
            format!("key `{}`", path.display()),
            sess.userauth_pubkey_file(
                &cfg.user,
                None,
                path,
                passphrase.as_ref().map(|p| p.expose()),
            ),
        ),
        SshAuth::Agent => ("ssh-agent".to_string(), sess.userauth_agent(&cfg.user)),
    };
    let result = result.and_then(|()| {
        if sess.authenticated() {
            Ok(())
        } else {
            Err(ssh2::Error::new(
                ErrorCode::Session(-18),
                "server did not accept the key",
            ))
        }
    });
    result.map_err(|source| match source.code() {
        ErrorCode::Session(code) if TIMEOUTS.contains(&code) => TransportError::ConnectTimeout {
            host: cfg.host.clone(),
            address: cfg.endpoint(),
            after: cfg.connect_timeout,
        },
        _ => TransportError::Auth {
            host: cfg.host.clone(),
            user: cfg.user.clone(),
            method,
            source,
        },
    })
}

fn is_eagain(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(EAGAIN)
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

/// Signal name as SSH sends it ("TERM") to its Linux number.
fn signal_number(name: &str) -> i32 {
    match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        // Unknown: report as 128 + 127 = 255 rather than guess.
        _ => 127,
    }
}

//! The keeper's protocol: frames on a Unix stream socket between one xfed
//! run (one host's transport) and the keeper.
//!
//! A frame is a JSON header (`u32` big-endian length, then the bytes),
//! then as many binary blobs as the header's kind carries, each a `u64`
//! big-endian length and the bytes: command stdin in a request, stdout and
//! stderr in an answer. Blobs stay raw because they can be a 5 MB gateway
//! binary, which JSON would inflate and parse slowly.
//!
//! Nothing here is logged or printed: stdin can hold a private key, and the
//! passphrase of an identity file travels in `Request::Open`. The socket's
//! directory is 0700 and the keeper checks the peer's uid (see `server.rs`).

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::config::{SshAuth, SshConfig};
use crate::secret::Secret;

/// Bumped whenever a message changes shape; a keeper of another version
/// refuses `Open`, so an old keeper left by an older xfed is never misread.
pub const PROTOCOL: u32 = 1;

/// Largest JSON header accepted (a header is a few hundred bytes).
const MAX_HEADER: u32 = 64 * 1024;
/// Largest blob accepted (files xfed pushes are well under this).
const MAX_BLOB: u64 = 1 << 30;

/// How to reach and log in to a host: the part of `SshConfig` the keeper
/// needs to open a session itself.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// `None`: ssh-agent.
    pub identity_file: Option<PathBuf>,
    pub passphrase: Option<String>,
    pub known_hosts: PathBuf,
    pub connect_timeout_ms: u64,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passphrase.
        f.write_str(&self.pool_key())
    }
}

impl Target {
    pub fn of(cfg: &SshConfig) -> Target {
        let (identity_file, passphrase) = match &cfg.auth {
            SshAuth::KeyFile { path, passphrase } => (
                Some(path.clone()),
                passphrase.as_ref().map(|p| p.expose().to_string()),
            ),
            SshAuth::Agent => (None, None),
        };
        Target {
            host: cfg.host.clone(),
            address: cfg.address.clone(),
            port: cfg.port,
            user: cfg.user.clone(),
            identity_file,
            passphrase,
            known_hosts: cfg.known_hosts.clone(),
            connect_timeout_ms: u64::try_from(cfg.connect_timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The configuration the keeper connects with: strict host keys always
    /// (a first contact is made by xfed itself, never through the keeper).
    pub fn config(&self) -> SshConfig {
        let auth = match &self.identity_file {
            Some(path) => SshAuth::KeyFile {
                path: path.clone(),
                passphrase: self.passphrase.as_deref().map(Secret::new),
            },
            None => SshAuth::Agent,
        };
        let mut c = SshConfig::new(
            &self.host,
            &self.address,
            &self.user,
            auth,
            &self.known_hosts,
        );
        c.port = self.port;
        c.connect_timeout = Duration::from_millis(self.connect_timeout_ms);
        c
    }

    /// Sessions are shared between runs that log in the same way to the
    /// same endpoint and trust the same known_hosts file.
    pub fn pool_key(&self) -> String {
        format!(
            "{}@{}:{} identity={} known_hosts={}",
            self.user,
            self.address,
            self.port,
            self.identity_file
                .as_ref()
                .map_or_else(|| "agent".into(), |p| p.display().to_string()),
            self.known_hosts.display()
        )
    }
}

/// Why a command did not produce an output, as `connection::ExecError`
/// distinguishes it (the client maps it back).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Failure {
    /// The channel could not be opened; the command never ran.
    NotStarted,
    /// SSH failed after the command may have started.
    Ssh,
    /// The deadline passed.
    TimedOut,
    /// Reading the channel failed.
    Io,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Request {
    /// Attach this client to a session for `target` (reused or new).
    Open {
        protocol: u32,
        target: Target,
    },
    /// Run a quoted command line on the attached session; one stdin blob
    /// follows when `stdin` is true.
    Exec {
        line: String,
        timeout_ms: u64,
        stdin: bool,
    },
    /// The attached session must not be reused (its host key did not
    /// match known_hosts as the client read it).
    Discard,
    Status,
    Stop,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Response {
    /// Attached; the session's host key (SSH wire blob, base64) for the
    /// client to check against known_hosts itself.
    Opened {
        host_key: String,
        reused: bool,
    },
    /// No session: the client connects by itself, which reports the error
    /// precisely (host key, auth, network).
    OpenFailed {
        message: String,
    },
    /// The command ran; stdout and stderr blobs follow.
    Output {
        status: i32,
    },
    ExecFailed {
        failure: Failure,
        code: i32,
        message: String,
    },
    Status {
        pid: u32,
        sessions: usize,
        clients: usize,
        idle_secs: u64,
    },
    Stopping,
    Error {
        message: String,
    },
}

impl Request {
    fn blobs(&self) -> usize {
        match self {
            Request::Exec { stdin: true, .. } => 1,
            _ => 0,
        }
    }
}

impl Response {
    fn blobs(&self) -> usize {
        match self {
            Response::Output { .. } => 2,
            _ => 0,
        }
    }
}

/// A message and the blobs that travel with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T> {
    pub message: T,
    pub blobs: Vec<Vec<u8>>,
}

pub fn write_request(w: &mut impl Write, req: &Request, blobs: &[&[u8]]) -> io::Result<()> {
    debug_assert_eq!(req.blobs(), blobs.len());
    write_frame(w, req, blobs)
}

pub fn write_response(w: &mut impl Write, resp: &Response, blobs: &[&[u8]]) -> io::Result<()> {
    debug_assert_eq!(resp.blobs(), blobs.len());
    write_frame(w, resp, blobs)
}

/// `Ok(None)` on a clean end of stream before a frame.
pub fn read_request(r: &mut impl Read) -> io::Result<Option<Frame<Request>>> {
    read_frame(r, Request::blobs)
}

pub fn read_response(r: &mut impl Read) -> io::Result<Option<Frame<Response>>> {
    read_frame(r, Response::blobs)
}

fn write_frame<T: Serialize>(w: &mut impl Write, message: &T, blobs: &[&[u8]]) -> io::Result<()> {
    let header = serde_json::to_vec(message).map_err(io::Error::other)?;
    let len = u32::try_from(header.len()).map_err(io::Error::other)?;
    let mut head = Vec::with_capacity(4 + header.len() + 8);
    head.extend_from_slice(&len.to_be_bytes());
    head.extend_from_slice(&header);
    for blob in blobs {
        head.extend_from_slice(&(blob.len() as u64).to_be_bytes());
        w.write_all(&head)?;
        head.clear();
        w.write_all(blob)?;
    }
    w.write_all(&head)?;
    w.flush()
}

fn read_frame<T: for<'de> Deserialize<'de>>(
    r: &mut impl Read,
    blobs_of: impl Fn(&T) -> usize,
) -> io::Result<Option<Frame<T>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_HEADER {
        return Err(invalid(format!("header of {len} bytes")));
    }
    let mut header = vec![0u8; len as usize];
    r.read_exact(&mut header)?;
    let message: T = serde_json::from_slice(&header).map_err(|e| invalid(e.to_string()))?;
    let mut blobs = Vec::new();
    for _ in 0..blobs_of(&message) {
        let mut len = [0u8; 8];
        r.read_exact(&mut len)?;
        let len = u64::from_be_bytes(len);
        if len > MAX_BLOB {
            return Err(invalid(format!("blob of {len} bytes")));
        }
        let mut blob = Vec::new();
        r.by_ref().take(len).read_to_end(&mut blob)?;
        if blob.len() as u64 != len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        blobs.push(blob);
    }
    Ok(Some(Frame { message, blobs }))
}

fn invalid(what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("keeper protocol: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_request_round_trips_with_binary_stdin() {
        let stdin: Vec<u8> = (0..=255).cycle().take(70_000).collect();
        let req = Request::Exec {
            line: "'sh' '-c' 'cat'".into(),
            timeout_ms: 1500,
            stdin: true,
        };
        let mut buf = Vec::new();
        write_request(&mut buf, &req, &[&stdin]).expect("write");
        let got = read_request(&mut buf.as_slice())
            .expect("read")
            .expect("a frame");
        assert_eq!(got.message, req);
        assert_eq!(got.blobs, vec![stdin]);
    }

    #[test]
    fn output_carries_stdout_and_stderr() {
        let resp = Response::Output { status: 3 };
        let mut buf = Vec::new();
        write_response(&mut buf, &resp, &[b"out", b""]).expect("write");
        let got = read_response(&mut buf.as_slice())
            .expect("read")
            .expect("a frame");
        assert_eq!(got.message, resp);
        assert_eq!(got.blobs, vec![b"out".to_vec(), Vec::new()]);
    }

    #[test]
    fn clean_end_of_stream_is_none_and_a_cut_frame_is_an_error() {
        assert!(read_request(&mut [].as_slice()).expect("read").is_none());
        let mut buf = Vec::new();
        write_request(&mut buf, &Request::Status, &[]).expect("write");
        buf.pop();
        assert!(read_request(&mut buf.as_slice()).is_err());
    }

    #[test]
    fn oversized_header_is_refused_before_allocating() {
        let buf = u32::MAX.to_be_bytes();
        let err = read_request(&mut buf.as_slice()).expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn target_round_trips_through_config() {
        let cfg = SshConfig::new(
            "edge1.contoso.example",
            "203.0.113.101",
            "root",
            SshAuth::KeyFile {
                path: "/k".into(),
                passphrase: Some(Secret::new("pw")),
            },
            "/kh",
        );
        let t = Target::of(&cfg);
        assert_eq!(t.config().auth, cfg.auth);
        assert_eq!(
            t.pool_key(),
            "root@203.0.113.101:22 identity=/k known_hosts=/kh"
        );
    }
}

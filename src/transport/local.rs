//! `LocalTransport`: the `Transport` for this machine (tests, `localhost`
//! targets), with the same semantics as SSH: same file scripts, same
//! `become`, same timeouts.
//!
//! Commands are exec'd directly from their argument list (no shell, so no
//! quoting). Each runs in its own process group so a timeout can stop
//! everything it started, not just the first process.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

use super::Transport;
use super::become_method::Become;
use super::command::Command;
use super::error::TransportError;
use super::output::Output;
use super::quote::check_argv;

/// Default limit for one command when `Command::timeout` is not set.
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// Time between SIGTERM and SIGKILL after a timeout, and the longest wait
/// for output pipes that something outside the process group holds open.
const GRACE: Duration = Duration::from_secs(2);

/// Runs commands on this machine.
#[derive(Debug)]
pub struct LocalTransport {
    host: String,
    escalation: Become,
    is_root: bool,
    command_timeout: Duration,
}

impl Default for LocalTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalTransport {
    pub fn new() -> Self {
        LocalTransport {
            host: "localhost".into(),
            escalation: Become::None,
            is_root: rustix::process::geteuid().is_root(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }

    /// Name used in messages (default `localhost`).
    pub fn host_name(mut self, name: impl Into<String>) -> Self {
        self.host = name.into();
        self
    }

    /// `become` for every command; a no-op when xfed already runs as root.
    pub fn escalation(mut self, escalation: Become) -> Self {
        self.escalation = escalation;
        self
    }

    /// Limit for commands that do not set their own timeout.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    fn io_error(&self, op: String, source: std::io::Error) -> TransportError {
        TransportError::Io {
            host: self.host.clone(),
            op,
            source,
        }
    }
}

impl Transport for LocalTransport {
    fn host(&self) -> &str {
        &self.host
    }

    fn run(&mut self, cmd: &Command) -> Result<Output, TransportError> {
        let argv = self.escalation.wrap(&cmd.argv, self.is_root);
        check_argv(&argv).map_err(|e| TransportError::InvalidArgument {
            host: self.host.clone(),
            command: cmd.describe(),
            message: e.to_string(),
        })?;
        let timeout = cmd.timeout.unwrap_or(self.command_timeout);
        let deadline = Instant::now() + timeout;

        let mut child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| self.io_error(format!("start {}", cmd.describe()), e))?;
        let group = Pid::from_child(&child);

        // stdin is written from its own thread so a child that fills its
        // stdout pipe before reading all of stdin cannot deadlock us.
        let writer = match (child.stdin.take(), &cmd.stdin) {
            (Some(mut pipe), Some(data)) => {
                let data = data.clone();
                // A child that exits without reading everything gives EPIPE;
                // its exit status tells the real story.
                Some(thread::spawn(move || {
                    let _ = pipe.write_all(&data);
                }))
            }
            _ => None,
        };
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);

        let status = wait_until(&mut child, deadline)
            .map_err(|e| self.io_error(format!("wait for {}", cmd.describe()), e))?;
        // Output may still be held open by a background process the command
        // left behind; that counts against the same deadline.
        let readers_done = status.is_some() && wait_for_threads(&[&stdout, &stderr], deadline);

        let (Some(status), true) = (status, readers_done) else {
            stop_group(&mut child, group);
            return Err(TransportError::Timeout {
                host: self.host.clone(),
                command: cmd.describe(),
                after: timeout,
            });
        };
        if let Some(w) = writer {
            let _ = w.join();
        }
        Ok(Output {
            status: exit_code(status),
            stdout: join_reader(stdout),
            stderr: join_reader(stderr),
        })
    }
}

fn drain<R: Read + Send + 'static>(mut pipe: R) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn join_reader(handle: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// Polls the child until it exits (`Some`) or the deadline passes (`None`).
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn wait_for_threads(handles: &[&Option<JoinHandle<Vec<u8>>>], deadline: Instant) -> bool {
    loop {
        if handles
            .iter()
            .all(|h| h.as_ref().is_none_or(|h| h.is_finished()))
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// SIGTERM to the whole process group, SIGKILL after a grace period.
/// Errors are ignored: the group may be gone already, or (under sudo) not
/// ours to signal.
fn stop_group(child: &mut Child, group: Pid) {
    let _ = kill_process_group(group, Signal::TERM);
    let grace = Instant::now() + GRACE;
    if matches!(wait_until(child, grace), Ok(Some(_))) {
        // The leader is gone; make sure nothing else of the group lingers.
        let _ = kill_process_group(group, Signal::KILL);
        return;
    }
    let _ = kill_process_group(group, Signal::KILL);
    let _ = child.wait();
}

/// Exit code, or 128 + signal number for a killed process (shell convention).
fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{FileKind, WriteOpts, gather_facts};
    use std::os::unix::fs::PermissionsExt;

    fn sh(script: &str) -> Command {
        Command::new("sh").arg("-c").arg(script)
    }

    #[test]
    fn run_reports_status_stdout_stderr() {
        let mut t = LocalTransport::new();
        let out = t.run(&sh("echo out; echo err >&2; exit 3")).expect("runs");
        assert_eq!(out.status, 3);
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn run_feeds_stdin_larger_than_a_pipe() {
        let mut t = LocalTransport::new();
        let data = vec![b'x'; 1 << 20];
        let out = t
            .run(&Command::new("cat").stdin(data.clone()))
            .expect("runs");
        assert_eq!(out.stdout.len(), data.len());
    }

    #[test]
    fn run_ok_names_host_command_and_stderr() {
        let mut t = LocalTransport::new().host_name("fe1.contoso.example");
        let err = t
            .run_ok(&sh("echo nope >&2; exit 2"))
            .expect_err("fails")
            .to_string();
        assert!(err.contains("`fe1.contoso.example`"), "{err}");
        assert!(err.contains("exit status 2: nope"), "{err}");
    }

    #[test]
    fn missing_program_is_an_io_error() {
        let mut t = LocalTransport::new();
        let err = t
            .run(&Command::new("/nonexistent/xfed-prog"))
            .expect_err("fails");
        assert!(matches!(err, TransportError::Io { .. }), "{err}");
    }

    #[test]
    fn timeout_kills_the_whole_process_group() {
        let mut t = LocalTransport::new();
        let marker = tempfile::NamedTempFile::new().expect("tmp");
        let path = marker.path().display().to_string();
        // A grandchild in the background holding stdout, plus a foreground
        // sleep: both must be gone when the timeout fires.
        let start = Instant::now();
        let err = t
            .run(
                &sh(&format!("(sleep 30; echo late > {path}) & sleep 30"))
                    .timeout(Duration::from_millis(300)),
            )
            .expect_err("times out");
        let took = start.elapsed();
        assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
        assert!(took < Duration::from_secs(3), "took {took:?}");
        thread::sleep(Duration::from_millis(100));
        let out = t
            .run(&Command::new("pgrep").args(["-f", &format!("echo late > {path}")]))
            .expect("pgrep");
        assert_eq!(out.status, 1, "background job survived: {out:?}");
    }

    #[test]
    fn killed_by_signal_is_128_plus_n() {
        let mut t = LocalTransport::new();
        let out = t.run(&sh("kill -TERM $$")).expect("runs");
        assert_eq!(out.status, 128 + 15);
    }

    #[test]
    fn file_round_trip_in_tempdir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/dir/gateway.toml");
        let p = path.to_str().expect("utf8");
        let mut t = LocalTransport::new();

        assert_eq!(t.read_file(p).expect("read"), None);
        assert_eq!(t.stat(p).expect("stat"), None);
        assert!(!t.remove_file(p).expect("remove"));

        // Parent directories are created only when asked.
        let err = t
            .write_file(p, b"v1\n", &WriteOpts::default())
            .expect_err("no parent dir");
        assert!(err.to_string().contains("write `"), "{err}");

        t.write_file(
            p,
            b"v1\n",
            &WriteOpts::default().mode(0o640).create_dirs(true),
        )
        .expect("write v1");
        assert_eq!(t.read_file(p).expect("read").as_deref(), Some(&b"v1\n"[..]));
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);

        let st = t.stat(p).expect("stat").expect("exists");
        assert_eq!(st.kind, FileKind::File);
        assert_eq!((st.mode, st.size), (0o640, 3));
        let sum = std::process::Command::new("sha256sum")
            .arg(&path)
            .output()
            .expect("sha256sum");
        let sum = String::from_utf8_lossy(&sum.stdout);
        assert_eq!(st.sha256.as_deref(), sum.split_whitespace().next());

        // Replace: a new inode is renamed over the old one, readers holding
        // the old file keep its content.
        let old = std::fs::File::open(&path).expect("open old");
        let old_ino = std::os::unix::fs::MetadataExt::ino(&old.metadata().expect("m"));
        t.write_file(p, b"version two\n", &WriteOpts::default().mode(0o600))
            .expect("write v2");
        let new_meta = std::fs::metadata(&path).expect("meta");
        assert_ne!(std::os::unix::fs::MetadataExt::ino(&new_meta), old_ino);
        assert_eq!(new_meta.permissions().mode() & 0o7777, 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"version two\n");
        let mut old_content = String::new();
        std::io::Read::read_to_string(&mut &old, &mut old_content).expect("read old");
        assert_eq!(old_content, "v1\n");

        // Nothing but the file is left in the directory (no temp files).
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("gateway.toml")]);

        assert!(t.remove_file(p).expect("remove"));
        assert!(!path.exists());
        assert!(!t.remove_file(p).expect("remove again"));
    }

    #[test]
    fn write_sets_owner_and_handles_empty_and_binary_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("bin");
        let p = p.to_str().expect("utf8");
        let mut t = LocalTransport::new();
        let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let owner = if t.is_root { "nobody:nogroup" } else { "" };
        let mut opts = WriteOpts::default().mode(0o4750);
        if !owner.is_empty() {
            opts = opts.owner(owner);
        }
        t.write_file(p, &data, &opts).expect("write");
        assert_eq!(t.read_file(p).expect("read"), Some(data.clone()));
        let st = t.stat(p).expect("stat").expect("exists");
        assert_eq!(st.mode, 0o4750, "setuid survives chown");
        if t.is_root {
            assert_eq!(st.owner.as_deref(), Some("nobody"));
            assert_eq!(st.group.as_deref(), Some("nogroup"));
        }
        t.write_file(p, b"", &WriteOpts::default()).expect("empty");
        assert_eq!(t.read_file(p).expect("read"), Some(Vec::new()));
    }

    #[test]
    fn write_refuses_directory_target_and_bad_args() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().to_str().expect("utf8").to_string();
        let mut t = LocalTransport::new();
        let err = t
            .write_file(&d, b"x", &WriteOpts::default())
            .expect_err("dir target");
        assert!(matches!(err, TransportError::CommandFailed { .. }), "{err}");
        assert!(
            std::fs::read_dir(&d).expect("ls").next().is_none(),
            "temp file left behind"
        );
        for (path, opts) in [
            ("relative/path", WriteOpts::default()),
            ("/tmp/x/", WriteOpts::default()),
            ("/tmp/x", WriteOpts::default().owner("a b")),
            ("/tmp/x", WriteOpts::default().mode(0o17777)),
        ] {
            let err = t.write_file(path, b"x", &opts).expect_err("invalid");
            assert!(
                matches!(err, TransportError::InvalidArgument { .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn stat_reports_symlink_itself_and_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/nonexistent", &link).expect("symlink");
        let mut t = LocalTransport::new();
        let st = t
            .stat(link.to_str().expect("utf8"))
            .expect("stat")
            .expect("exists");
        assert_eq!((st.kind, st.sha256), (FileKind::Symlink, None));
        assert_eq!(
            t.read_file(link.to_str().expect("utf8")).expect("read"),
            None
        );
        let st = t
            .stat(dir.path().to_str().expect("utf8"))
            .expect("stat")
            .expect("dir");
        assert_eq!(st.kind, FileKind::Dir);
        assert!(
            t.remove_file(link.to_str().expect("utf8"))
                .expect("rm link")
        );
    }

    #[test]
    fn paths_with_shell_metacharacters_are_just_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("we'ird $(touch pwned) \n name");
        let ps = p.to_str().expect("utf8");
        let mut t = LocalTransport::new();
        t.write_file(ps, b"ok", &WriteOpts::default())
            .expect("write");
        assert_eq!(std::fs::read(&p).expect("read"), b"ok");
        assert!(t.stat(ps).expect("stat").is_some());
        assert!(!dir.path().join("pwned").exists());
        assert!(!std::path::Path::new("pwned").exists());
    }

    #[test]
    fn facts_of_this_machine() {
        let mut t = LocalTransport::new();
        let f = gather_facts(&mut t).expect("facts");
        let arch = std::process::Command::new("uname")
            .arg("-m")
            .output()
            .expect("uname");
        assert_eq!(f.arch, String::from_utf8_lossy(&arch.stdout).trim());
        assert!(!f.os_id.is_empty());
        assert!(!f.hostname.is_empty());
        // The C library, as this machine's own getconf reports it.
        let libc = std::process::Command::new("getconf")
            .arg("GNU_LIBC_VERSION")
            .output()
            .expect("getconf");
        let libc = String::from_utf8_lossy(&libc.stdout);
        assert_eq!(f.libc_reported, libc.trim());
        assert_eq!(f.glibc, crate::transport::GlibcVersion::from_getconf(&libc));
        assert!(f.glibc.is_some(), "this machine runs glibc: {libc}");
    }

    #[test]
    fn become_sudo_as_root_runs_directly() {
        // As root there is nothing to become: no sudo in the argv, so this
        // works even where sudo is not installed.
        let mut t = LocalTransport::new().escalation(Become::Sudo);
        if !t.is_root {
            return;
        }
        let out = t.run(&Command::new("id").arg("-u")).expect("runs");
        assert_eq!(out.stdout, b"0\n");
    }
}

//! transport: everything xfed does on a host, behind one small blocking trait.
//!
//! Owns: running commands (`Transport::run`), reading, stat-ing, atomically
//! writing and removing files, and gathering host facts; over SSH (`ssh2`,
//! strict known_hosts checking) or on this machine (`LocalTransport`).
//! Must not: decide anything (that is `plan/`), print (that is the CLI's
//! printer), or build shell lines anywhere but `quote.rs`.
//!
//! Why blocking: libssh2 is blocking and one session must not be shared
//! between threads. The engine owns one transport per host for a whole run
//! and drives it from `tokio::task::spawn_blocking`; hence `Transport: Send`
//! and `&mut self` everywhere.
//!
//! Implementors provide only `host` and `run`; the file operations are
//! provided methods running fixed scripts through `run` (`file_ops.rs`), so
//! every transport has the same semantics, `become: sudo` included.
//!
//! Hosts need a login shell that reads POSIX quoting (sh, dash, bash, zsh;
//! not fish or csh), `sh`, and GNU coreutils or busybox (`timeout`,
//! `stat -c`, `sha256sum`, `mktemp`, `mv -T`, `sync FILE`).

mod become_method;
mod command;
mod error;
mod facts;
mod file_ops;
mod file_stat;
mod glibc_version;
mod local;
mod output;
pub mod quote;
pub mod ssh;
mod user_ops;
mod write_opts;

pub use become_method::Become;
pub use command::Command;
pub use error::{HostKeyReport, TransportError};
pub use facts::{FACTS_END, FACTS_SCRIPT, Facts, gather_facts, parse_facts};
pub use file_stat::{FileKind, FileStat};
pub use glibc_version::GlibcVersion;
pub use local::LocalTransport;
pub use output::Output;
pub use ssh::{SshAuth, SshConfig, SshTransport};
pub use write_opts::WriteOpts;

/// A host xfed can act on. One value per host, used from one thread at a time.
pub trait Transport: Send {
    /// Human name of the host for messages, e.g. `edge1.contoso.example`.
    fn host(&self) -> &str;

    /// Runs `cmd` (with `become` applied) and returns its status and output.
    /// A non-zero exit is not an error here. A timeout is
    /// (`TransportError::Timeout`): the command's whole process group gets
    /// SIGTERM, and SIGKILL 2 s later.
    fn run(&mut self, cmd: &Command) -> Result<Output, TransportError>;

    /// Like `run`, but a non-zero exit status is `TransportError::CommandFailed`.
    fn run_ok(&mut self, cmd: &Command) -> Result<Output, TransportError> {
        let out = self.run(cmd)?;
        if out.success() {
            Ok(out)
        } else {
            Err(TransportError::command_failed(self.host(), cmd, &out))
        }
    }

    /// Content of the file at absolute `path`, `None` if nothing is there.
    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>, TransportError> {
        file_ops::read_file(self, path)
    }

    /// Kind, mode, owner, size and SHA-256 of `path` itself (a symlink is
    /// not followed), `None` if nothing is there.
    fn stat(&mut self, path: &str) -> Result<Option<FileStat>, TransportError> {
        file_ops::stat(self, path)
    }

    /// Atomically replaces `path` with `data`: a temporary file in the same
    /// directory is written, checked for size, given owner and mode,
    /// fsync'd, then renamed over `path`, and the directory is fsync'd.
    /// Readers see the old file or the new one, never a mix.
    fn write_file(
        &mut self,
        path: &str,
        data: &[u8],
        opts: &WriteOpts,
    ) -> Result<(), TransportError> {
        file_ops::write_file(self, path, data, opts)
    }

    /// Sets the owner and mode of the file at `path` in place (its content
    /// untouched): `opts.owner` and `opts.mode`.
    fn set_access(&mut self, path: &str, opts: &WriteOpts) -> Result<(), TransportError> {
        file_ops::set_access(self, path, opts)
    }

    /// Removes the file (or symlink) at `path`; returns whether it existed.
    fn remove_file(&mut self, path: &str) -> Result<bool, TransportError> {
        file_ops::remove_file(self, path)
    }

    /// Creates system user `name` with a group of the same name, no login
    /// and `home` as its (uncreated) home, unless the user exists.
    fn ensure_system_user(&mut self, name: &str, home: &str) -> Result<(), TransportError> {
        user_ops::ensure_system_user(self, name, home)
    }
}

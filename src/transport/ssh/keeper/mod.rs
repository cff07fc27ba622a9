//! keeper: SSH sessions that outlive one xfed run (as OpenSSH's
//! ControlPersist), so a warm `plan` costs a command per host instead of a
//! login per host.
//!
//! Opt-in with `ssh.persist_secs` in the spec (or `XFED_SSH_PERSIST`). The
//! first run that wants a kept session starts `xfed ssh-keeper serve` in the
//! background; every run after it attaches through a Unix socket, in a
//! 0700 directory of the user's (`$XDG_RUNTIME_DIR/xfed`, else
//! `/tmp/xfed-UID`), one keeper per network namespace. The keeper exits on
//! its own once unused for `persist_secs`; `xfed ssh-keeper stop` ends it
//! now.
//!
//! Trust stays with the run: the keeper connects with strict host-key
//! checking, and the run checks the host key of the session it is handed
//! against known_hosts again; a first contact (`--accept-new-host-keys`)
//! never goes through the keeper. Any doubt about the keeper (no socket,
//! an unsafe directory, another uid, another protocol, its own connect
//! failing) and the run connects by itself, which also reports connection
//! errors with all their detail.
//!
//! As with ControlPersist, a kept session survives its server's sshd being
//! restarted, and its host key was checked when it was opened.

mod client;
mod server;
pub mod wire;

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

pub(crate) use client::KeptSession;
pub use client::{request, stop};
pub use server::{READY, serve};

/// Where a user's keeper listens in this network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeeperPaths {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub lock: PathBuf,
}

impl KeeperPaths {
    /// The paths for the current user and network namespace.
    pub fn current() -> io::Result<KeeperPaths> {
        let uid = rustix::process::getuid().as_raw();
        let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
            Some(d) if d.is_absolute() && d.is_dir() => d.join("xfed"),
            _ => PathBuf::from(format!("/tmp/xfed-{uid}")),
        };
        // `net:[4026531840]`: sessions are made from a namespace's network.
        let netns = fs::read_link("/proc/self/ns/net")?;
        let netns: String = netns
            .to_string_lossy()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        Ok(KeeperPaths {
            socket: dir.join(format!("ssh-keeper-{netns}.sock")),
            lock: dir.join(format!("ssh-keeper-{netns}.lock")),
            dir,
        })
    }

    /// Creates the directory 0700 if missing, and refuses one that someone
    /// else could have put a socket in: not ours, a symlink, or open to
    /// group or others.
    pub fn prepare_dir(&self) -> io::Result<()> {
        match DirBuilder::new().mode(0o700).create(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        let meta = fs::symlink_metadata(&self.dir)?;
        let me = rustix::process::getuid().as_raw();
        if !meta.is_dir() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "`{}` must be a directory owned by uid {me} with mode 0700",
                    self.dir.display()
                ),
            ));
        }
        Ok(())
    }
}

//! File operations built on nothing but `Transport::run`.
//!
//! Each operation is one fixed POSIX `sh` script run as
//! `sh -c SCRIPT NAME ARG…`: values are positional arguments, never spliced
//! into the script, and the whole argument list is quoted once by the
//! transport. Because they go through `run`, they get `become: sudo` for free
//! (SFTP cannot write as another user) and cost one round trip each. Local and
//! SSH transports run the very same scripts, so the local unit tests exercise
//! the code path used on real hosts.
//!
//! Host requirements: `sh` and GNU coreutils or busybox (`stat -c`,
//! `sha256sum`, `mktemp`, `mv -T`, `sync FILE`).

use super::Transport;
use super::command::Command;
use super::error::TransportError;
use super::file_stat::FileStat;
use super::write_opts::WriteOpts;

/// Exit status the scripts use for "the path does not exist".
const ABSENT: i32 = 100;

const READ: &str = r#"[ -e "$1" ] || exit 100
exec cat -- "$1""#;

const STAT: &str = r#"set -e
[ -e "$1" ] || [ -L "$1" ] || exit 100
stat -c '%f %u %g %s %U %G' -- "$1"
if [ -f "$1" ] && [ ! -L "$1" ]; then sha256sum < "$1"; fi"#;

// chown before chmod: chown clears setuid/setgid bits. `mv -T` refuses to
// move into a directory that happens to sit at the target path. The size
// check catches a stdin cut short (lost connection) before anything is
// replaced; the SSH channel already guarantees integrity of what arrived.
const WRITE: &str = r#"set -eu
dst=$1 mode=$2 owner=$3 mkdirs=$4 size=$5
dir=${dst%/*}
[ -n "$dir" ] || dir=/
if [ "$mkdirs" = 1 ]; then mkdir -p -- "$dir"; fi
tmp=$(mktemp "$dir/.xfed-write.XXXXXXXXXX")
trap 'rm -f -- "$tmp"' EXIT
trap 'exit 143' HUP INT TERM
cat > "$tmp"
got=$(stat -c %s -- "$tmp")
if [ "$got" != "$size" ]; then
  echo "received $got of $size bytes; $dst left unchanged" >&2
  exit 1
fi
if [ -n "$owner" ]; then chown -- "$owner" "$tmp"; fi
chmod -- "$mode" "$tmp"
sync -- "$tmp"
mv -f -T -- "$tmp" "$dst"
trap - EXIT
sync -- "$dir""#;

// Owner and mode of a file in place (chown first: it clears setuid bits).
const SET_ACCESS: &str = r#"set -eu
[ -e "$1" ] || exit 100
chown -- "$3" "$1"
chmod -- "$2" "$1""#;

const REMOVE: &str = r#"[ -e "$1" ] || [ -L "$1" ] || exit 100
exec rm -f -- "$1""#;

fn script(name: &str, body: &str, args: &[&str]) -> Command {
    Command::new("sh")
        .arg("-c")
        .arg(body)
        .arg(name)
        .args(args.iter().copied())
}

fn check_path<T: Transport + ?Sized>(t: &T, op: &str, path: &str) -> Result<(), TransportError> {
    let problem = if !path.starts_with('/') {
        "path must be absolute"
    } else if path.contains('\0') {
        "path contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(TransportError::InvalidArgument {
        host: t.host().to_string(),
        command: format!("{op} `{path}`"),
        message: problem.to_string(),
    })
}

pub(crate) fn read_file<T: Transport + ?Sized>(
    t: &mut T,
    path: &str,
) -> Result<Option<Vec<u8>>, TransportError> {
    check_path(t, "read", path)?;
    let cmd = script("xfed-read", READ, &[path]).label(format!("read `{path}`"));
    let out = t.run(&cmd)?;
    match out.status {
        0 => Ok(Some(out.stdout)),
        ABSENT => Ok(None),
        _ => Err(TransportError::command_failed(t.host(), &cmd, &out)),
    }
}

pub(crate) fn stat<T: Transport + ?Sized>(
    t: &mut T,
    path: &str,
) -> Result<Option<FileStat>, TransportError> {
    check_path(t, "stat", path)?;
    let cmd = script("xfed-stat", STAT, &[path]).label(format!("stat `{path}`"));
    let out = t.run(&cmd)?;
    match out.status {
        0 => FileStat::parse(&out.stdout_text())
            .map(Some)
            .map_err(|message| TransportError::UnexpectedOutput {
                host: t.host().to_string(),
                command: cmd.describe(),
                message,
            }),
        ABSENT => Ok(None),
        _ => Err(TransportError::command_failed(t.host(), &cmd, &out)),
    }
}

pub(crate) fn write_file<T: Transport + ?Sized>(
    t: &mut T,
    path: &str,
    data: &[u8],
    opts: &WriteOpts,
) -> Result<(), TransportError> {
    check_path(t, "write", path)?;
    let label = format!("write `{path}`");
    if path.ends_with('/') {
        return Err(TransportError::InvalidArgument {
            host: t.host().to_string(),
            command: label,
            message: "path names a directory".into(),
        });
    }
    if let Some(message) = opts.problem() {
        return Err(TransportError::InvalidArgument {
            host: t.host().to_string(),
            command: label,
            message,
        });
    }
    let mode = format!("{:o}", opts.mode);
    let size = data.len().to_string();
    let mkdirs = if opts.create_dirs { "1" } else { "0" };
    let owner = opts.owner.as_deref().unwrap_or("");
    let cmd = script("xfed-write", WRITE, &[path, &mode, owner, mkdirs, &size])
        .stdin(data.to_vec())
        .label(label);
    let out = t.run(&cmd)?;
    if out.success() {
        Ok(())
    } else {
        Err(TransportError::command_failed(t.host(), &cmd, &out))
    }
}

pub(crate) fn set_access<T: Transport + ?Sized>(
    t: &mut T,
    path: &str,
    opts: &WriteOpts,
) -> Result<(), TransportError> {
    check_path(t, "set the access of", path)?;
    let label = format!("set the owner and mode of `{path}`");
    let (Some(owner), None) = (opts.owner.as_deref(), opts.problem()) else {
        return Err(TransportError::InvalidArgument {
            host: t.host().to_string(),
            command: label,
            message: opts
                .problem()
                .unwrap_or_else(|| "an owner is needed".into()),
        });
    };
    let mode = format!("{:o}", opts.mode);
    let cmd = script("xfed-access", SET_ACCESS, &[path, &mode, owner]).label(label);
    let out = t.run(&cmd)?;
    if out.success() {
        Ok(())
    } else {
        Err(TransportError::command_failed(t.host(), &cmd, &out))
    }
}

pub(crate) fn remove_file<T: Transport + ?Sized>(
    t: &mut T,
    path: &str,
) -> Result<bool, TransportError> {
    check_path(t, "remove", path)?;
    let cmd = script("xfed-remove", REMOVE, &[path]).label(format!("remove `{path}`"));
    let out = t.run(&cmd)?;
    match out.status {
        0 => Ok(true),
        ABSENT => Ok(false),
        _ => Err(TransportError::command_failed(t.host(), &cmd, &out)),
    }
}

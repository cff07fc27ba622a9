//! System users, created through one fixed script like every other host
//! operation (`file_ops.rs`): the name and home travel as positional
//! arguments, never spliced into the script.
//!
//! Idempotent: a user that exists is left exactly as it is. The user gets
//! a group of its own name, no login shell, no password and no home
//! directory of its own: it exists to own a process and to be the group
//! that may read that process's keys.
//!
//! Host requirements: `getent`, and shadow's `useradd`/`groupadd` (Debian,
//! Ubuntu, RHEL, SUSE) or busybox's `adduser`/`addgroup` (Alpine).

use super::Transport;
use super::command::Command;
use super::error::TransportError;

const ENSURE_USER: &str = r#"set -eu
name=$1 home=$2
if getent passwd "$name" >/dev/null 2>&1; then exit 0; fi
nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin
[ -x "$nologin" ] || nologin=/bin/false
if command -v useradd >/dev/null 2>&1; then
  getent group "$name" >/dev/null 2>&1 || groupadd --system "$name"
  exec useradd --system --gid "$name" --no-create-home --home-dir "$home" \
    --shell "$nologin" --comment 'xfed service user' "$name"
fi
if command -v adduser >/dev/null 2>&1; then
  getent group "$name" >/dev/null 2>&1 || addgroup -S "$name"
  exec adduser -S -D -H -h "$home" -s "$nologin" -G "$name" -g 'xfed service user' "$name"
fi
echo "neither useradd nor adduser is installed" >&2
exit 127"#;

/// Creates system user `name` (and its group) unless it exists.
pub(crate) fn ensure_system_user<T: Transport + ?Sized>(
    t: &mut T,
    name: &str,
    home: &str,
) -> Result<(), TransportError> {
    let valid = !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid || !home.starts_with('/') {
        return Err(TransportError::InvalidArgument {
            host: t.host().to_string(),
            command: format!("create user `{name}`"),
            message:
                "a user name is lower-case letters, digits, `_` and `-`; its home an absolute path"
                    .into(),
        });
    }
    let cmd = Command::new("sh")
        .args(["-c", ENSURE_USER, "xfed-user", name, home])
        .label(format!("create user `{name}`"));
    t.run_ok(&cmd).map(drop)
}

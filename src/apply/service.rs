//! Service operations on a host: start, stop, restart, reload, for systemd
//! units and for `direct` services (a pid-file supervised daemon, for hosts
//! without systemd such as the lab).
//!
//! Fixed scripts with arguments, as everywhere: nothing from the spec is
//! spliced into shell text.

use std::time::Duration;

use crate::plan::{Manager, ServiceOp, ServiceSpec};
use crate::transport::{Command, Transport, TransportError};

/// `direct` start: detach the daemon from the SSH session (setsid), log
/// to its log file, and wait until it has written its pid file — the
/// gateway writes it only after binding every listener.
///
/// With a user (`$4` not empty) the daemon is started as that user by
/// `setpriv`: real and effective uid and gid, that user's groups only, no
/// inheritable or bounding capabilities and no_new_privs, all set before
/// `exec`. So the program never holds root, not even while it reads its
/// configuration — the same as systemd's `User=` — and needs no code of
/// its own to drop privileges. The pid file's directory becomes that
/// user's; the log is opened here, by root, and handed over as stdout.
const DIRECT_START: &str = r#"
pidfile=$1; log=$2; wait_s=$3; user=$4; shift 4
piddir=$(dirname -- "$pidfile")
mkdir -p -- "$piddir" "$(dirname -- "$log")"
rm -f -- "$pidfile"
if [ -n "$user" ]; then
  chown -- "$user:$user" "$piddir"
  chmod 0755 -- "$piddir"
  set -- setpriv --reuid="$user" --regid="$user" --init-groups \
    --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
fi
setsid "$@" >>"$log" 2>&1 </dev/null &
child=$!
n=0
while [ $n -lt $((wait_s * 20)) ]; do
  if [ -s "$pidfile" ]; then exit 0; fi
  if ! kill -0 "$child" 2>/dev/null; then
    echo "the process exited during start-up; last log lines:" >&2
    tail -n 15 -- "$log" >&2
    exit 3
  fi
  sleep 0.05; n=$((n + 1))
done
echo "no pid file after ${wait_s}s; last log lines:" >&2
tail -n 15 -- "$log" >&2
exit 4
"#;

/// `direct` stop: SIGTERM (the gateway drains), then SIGKILL after the grace.
/// A pid file the service's own user wrote (not root's) is believed only
/// for a process of that user: an unprivileged daemon cannot make root
/// signal anyone else's process by writing another pid there.
const DIRECT_STOP: &str = r#"
pidfile=$1; grace=$2
pid=$(head -c 32 -- "$pidfile" 2>/dev/null | tr -cd 0-9)
[ -n "$pid" ] || exit 0
owner=$(stat -c %u -- "$pidfile" 2>/dev/null) || owner=0
if [ "$owner" != 0 ] && [ "$(stat -c %u -- "/proc/$pid" 2>/dev/null)" != "$owner" ]; then
  rm -f -- "$pidfile"; exit 0
fi
kill -TERM "$pid" 2>/dev/null || { rm -f -- "$pidfile"; exit 0; }
n=0
while kill -0 "$pid" 2>/dev/null && [ $n -lt $((grace * 20)) ]; do
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/$pid/status 2>/dev/null)
  [ "$state" = Z ] && break
  sleep 0.05; n=$((n + 1))
done
kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
rm -f -- "$pidfile"
exit 0
"#;

/// `direct` reload: SIGHUP, to a process of the pid file's owner (as for stop).
const DIRECT_RELOAD: &str = r#"
pid=$(head -c 32 -- "$1" 2>/dev/null | tr -cd 0-9)
[ -n "$pid" ] || exit 1
owner=$(stat -c %u -- "$1" 2>/dev/null) || owner=0
if [ "$owner" != 0 ] && [ "$(stat -c %u -- "/proc/$pid" 2>/dev/null)" != "$owner" ]; then
  echo "the pid file $1 names process $pid, which is not its owner's" >&2; exit 1
fi
kill -HUP "$pid"
"#;

/// Performs `op` on the service; `start_wait` bounds the start-up.
pub fn run_op(
    t: &mut dyn Transport,
    s: &ServiceSpec,
    op: ServiceOp,
    start_wait: Duration,
) -> Result<(), TransportError> {
    match s.manager {
        Manager::Direct => match op {
            ServiceOp::Start => direct_start(t, s, start_wait),
            ServiceOp::Restart => {
                direct_stop(t, s)?;
                direct_start(t, s, start_wait)
            }
            ServiceOp::Reload => t
                .run_ok(
                    &Command::new("sh")
                        .args(["-c", DIRECT_RELOAD, "xfed-reload", &s.pid_file])
                        .label("reload"),
                )
                .map(drop),
        },
        Manager::Systemd => {
            let unit = format!("{}.service", s.name);
            t.run_ok(&Command::new("systemctl").arg("daemon-reload"))?;
            t.run_ok(&Command::new("systemctl").args(["enable", "--quiet", &unit]))?;
            let verb = match op {
                ServiceOp::Start => "start",
                ServiceOp::Restart => "restart",
                ServiceOp::Reload => "reload",
            };
            t.run_ok(&Command::new("systemctl").args([verb, &unit]))
                .map(drop)
        }
    }
}

fn direct_start(
    t: &mut dyn Transport,
    s: &ServiceSpec,
    wait: Duration,
) -> Result<(), TransportError> {
    let secs = wait.as_secs().max(1).to_string();
    let cmd = Command::new("sh")
        .args([
            "-c",
            DIRECT_START,
            "xfed-start",
            &s.pid_file,
            &s.log_file,
            &secs,
            s.user.as_deref().unwrap_or(""),
        ])
        .args(s.exec.iter().cloned())
        .timeout(wait + Duration::from_secs(10))
        .label(format!("start {}", s.name));
    t.run_ok(&cmd).map(drop)
}

pub fn direct_stop(t: &mut dyn Transport, s: &ServiceSpec) -> Result<(), TransportError> {
    let cmd = Command::new("sh")
        .args(["-c", DIRECT_STOP, "xfed-stop", &s.pid_file, "15"])
        .timeout(Duration::from_secs(30))
        .label(format!("stop {}", s.name));
    t.run_ok(&cmd).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::LocalTransport;
    use std::os::unix::fs::chown;

    fn spec(pid_file: &str) -> ServiceSpec {
        ServiceSpec {
            name: "xfed-gateway".into(),
            manager: Manager::Direct,
            exec: Vec::new(),
            pid_file: pid_file.into(),
            log_file: String::new(),
            binary: None,
            binary_path: None,
            user: Some("nobody".into()),
        }
    }

    /// Regression guard: the unprivileged gateway owns its pid file; were
    /// any pid in it believed, it could have root stop or SIGHUP any
    /// process on the host.
    #[test]
    fn a_pid_file_of_an_unprivileged_user_cannot_aim_root_at_another_process() {
        if !nix_is_root() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("gw.pid");
        let mut victim = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        std::fs::write(&pid_file, format!("{}\n", victim.id())).expect("write");
        chown(&pid_file, Some(65534), Some(65534)).expect("chown");
        let s = spec(pid_file.to_str().expect("utf-8"));
        let mut t = LocalTransport::new();
        assert!(
            run_op(&mut t, &s, ServiceOp::Reload, Duration::from_secs(1)).is_err(),
            "reload refused"
        );
        direct_stop(&mut t, &s).expect("stop runs");
        assert!(
            victim.try_wait().expect("wait").is_none(),
            "root's process was signalled"
        );
        // The same pid file owned by root is believed: stop ends it.
        std::fs::write(&pid_file, format!("{}\n", victim.id())).expect("write");
        chown(&pid_file, Some(0), Some(0)).expect("chown");
        direct_stop(&mut t, &s).expect("stop runs");
        let status = victim.wait().expect("wait");
        assert!(!status.success(), "stopped by the signal");
    }

    fn nix_is_root() -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n")
    }
}

//! The apply lock: a lease file on every target host, so two applies never
//! interleave on one server. It records who holds it (id, user, machine,
//! pid, since, ttl); a holder that died leaves a *stale* lease, reported
//! with the command that clears it (Terraform's `force-unlock`).

use serde::{Deserialize, Serialize};

use crate::transport::{Command, Transport, TransportError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub id: String,
    pub user: String,
    pub machine: String,
    pub pid: u32,
    pub since_unix: u64,
    pub ttl_secs: u64,
}

impl Lease {
    pub fn new(ttl_secs: u64) -> Lease {
        let now = now_unix();
        let pid = std::process::id();
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Lease {
            id: format!("{:08x}{:04x}", now as u32 ^ nanos, pid & 0xffff),
            user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
            machine,
            pid,
            since_unix: now,
            ttl_secs,
        }
    }

    /// Why this lease no longer protects anything, if it does not: its TTL
    /// ran out, or its holder was a process on this machine that is gone.
    /// The holder was a process on this machine that no longer exists: no
    /// apply can still be using the lease, so it may be taken over.
    pub fn holder_gone(&self, this_machine: &str) -> bool {
        self.machine == this_machine
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    pub fn stale_because(&self, now: u64, this_machine: &str) -> Option<String> {
        if now > self.since_unix + self.ttl_secs {
            return Some(format!(
                "it expired {}s ago",
                now - self.since_unix - self.ttl_secs
            ));
        }
        if self.machine == this_machine
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
        {
            return Some(format!(
                "its holder, pid {} on this machine, is gone",
                self.pid
            ));
        }
        None
    }
}

pub use crate::engine::clock::now_unix;

/// Creates the lease only if none exists (`set -C`: O_EXCL), else prints it.
const ACQUIRE: &str = r#"
mkdir -p -- "$(dirname -- "$1")"
if ( set -C; printf '%s\n' "$2" > "$1" ) 2>/dev/null; then echo ACQUIRED; else echo HELD; cat -- "$1"; fi
"#;

/// Replaces the lease named `$2` by `$3`, only if `$2` still holds it.
const TAKE_OVER: &str = r#"
grep -q -- "\"id\":\"$2\"" "$1" 2>/dev/null || { echo LOST; exit 0; }
printf '%s\n' "$3" > "$1.xfed-tmp" && mv -f -- "$1.xfed-tmp" "$1" && echo ACQUIRED
"#;

/// Removes the lease only if it is the one named.
const RELEASE: &str = r#"
grep -q -- "\"id\":\"$2\"" "$1" 2>/dev/null && rm -f -- "$1"
exit 0
"#;

#[derive(Debug)]
pub enum Acquire {
    Acquired,
    Held(Lease),
}

pub fn acquire(
    t: &mut dyn Transport,
    path: &str,
    lease: &Lease,
) -> Result<Acquire, TransportError> {
    let json = serde_json::to_string(lease).unwrap_or_default();
    let out = t.run_ok(
        &Command::new("sh")
            .args(["-c", ACQUIRE, "xfed-lock", path, &json])
            .label("lock"),
    )?;
    let text = out.stdout_text();
    let mut lines = text.lines();
    match lines.next() {
        Some("ACQUIRED") => Ok(Acquire::Acquired),
        _ => {
            let rest: String = lines.collect::<Vec<_>>().join("\n");
            let held = serde_json::from_str(&rest).unwrap_or(Lease {
                id: "unreadable".into(),
                user: "?".into(),
                machine: "?".into(),
                pid: 0,
                since_unix: 0,
                ttl_secs: 0,
            });
            Ok(Acquire::Held(held))
        }
    }
}

/// Takes over a lease whose holder is gone; false if someone else got it first.
pub fn take_over(
    t: &mut dyn Transport,
    path: &str,
    old_id: &str,
    lease: &Lease,
) -> Result<bool, TransportError> {
    let json = serde_json::to_string(lease).unwrap_or_default();
    let out = t.run_ok(
        &Command::new("sh")
            .args(["-c", TAKE_OVER, "xfed-lock", path, old_id, &json])
            .label("lock"),
    )?;
    Ok(out.stdout_text().trim() == "ACQUIRED")
}

pub fn release(t: &mut dyn Transport, path: &str, id: &str) -> Result<(), TransportError> {
    t.run_ok(
        &Command::new("sh")
            .args(["-c", RELEASE, "xfed-unlock", path, id])
            .label("unlock"),
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_when_expired_or_holder_gone() {
        let mut l = Lease::new(60);
        assert_eq!(l.stale_because(l.since_unix + 10, &l.machine.clone()), None);
        assert!(
            l.stale_because(l.since_unix + 61, "elsewhere")
                .is_some_and(|w| w.contains("expired"))
        );
        l.pid = u32::MAX - 1;
        assert!(
            l.stale_because(l.since_unix + 10, &l.machine.clone())
                .is_some_and(|w| w.contains("gone"))
        );
        assert_eq!(l.stale_because(l.since_unix + 10, "another-machine"), None);
    }
}

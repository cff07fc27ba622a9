//! `Facts`: the few things about a host that decisions depend on (which OS,
//! which architecture and C library the gateway must run on, whether
//! systemd can manage services), gathered in one round trip.
//!
//! The host only prints raw values; `/etc/os-release` is parsed here rather
//! than sourced by a shell, so a hostile file cannot run code.

use super::Transport;
use super::command::Command;
use super::error::TransportError;
use super::glibc_version::GlibcVersion;

/// OS, architecture, init system and name of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `ID` from os-release (`debian`, `ubuntu`, …); `linux` if absent.
    pub os_id: String,
    /// `VERSION_ID` from os-release (`12`), absent on rolling releases.
    pub os_version: Option<String>,
    /// `uname -m` (`x86_64`, `aarch64`).
    pub arch: String,
    /// PID 1 is systemd, so systemd units can be used.
    pub systemd_pid1: bool,
    /// The name of PID 1 (`/proc/1/comm`), for messages.
    pub pid1: String,
    /// `uname -n`.
    pub hostname: String,
    /// The host's glibc (`getconf GNU_LIBC_VERSION`); `None` on a host
    /// without glibc (musl, …) or whose `getconf` does not say.
    pub glibc: Option<GlibcVersion>,
    /// What `getconf GNU_LIBC_VERSION` printed, trimmed (for messages).
    pub libc_reported: String,
}

impl Facts {
    /// `debian 12`, or just `debian` without a version.
    pub fn os(&self) -> String {
        match &self.os_version {
            Some(v) => format!("{} {v}", self.os_id),
            None => self.os_id.clone(),
        }
    }
}

const MARK: &str = "--xfed-os-release--";

/// Prints the facts with shell builtins alone where the kernel has
/// `/proc/sys/kernel/arch` (6.1 and later; else one `uname -m`), and one
/// `getconf` for the C library (found through the login's `PATH`). Other scripts may run it first and parse its
/// part of the output with [`parse_facts`] (one round trip for both).
pub const FACTS_SCRIPT: &str = r#"xfed_arch=
read -r xfed_arch < /proc/sys/kernel/arch 2>/dev/null || xfed_arch=$(uname -m)
printf 'arch=%s\n' "$xfed_arch"
read -r xfed_hn < /proc/sys/kernel/hostname 2>/dev/null || xfed_hn=
printf 'hostname=%s\n' "$xfed_hn"
read -r xfed_pid1 < /proc/1/comm 2>/dev/null || xfed_pid1=
printf 'pid1=%s\n' "$xfed_pid1"
printf 'libc=%s\n' "$(getconf GNU_LIBC_VERSION 2>/dev/null)"
echo '--xfed-os-release--'
for xfed_f in /etc/os-release /usr/lib/os-release; do
  if [ -r "$xfed_f" ]; then
    while IFS= read -r xfed_l || [ -n "$xfed_l" ]; do printf '%s\n' "$xfed_l"; done < "$xfed_f"
    break
  fi
done
echo '--xfed-facts-end--'"#;

const SCRIPT: &str = FACTS_SCRIPT;

/// Marks the end of the facts in a combined script's output.
pub const FACTS_END: &str = "--xfed-facts-end--";

/// Facts from the part of an output that [`FACTS_SCRIPT`] printed.
pub fn parse_facts(text: &str) -> Result<Facts, String> {
    let part = text.split(FACTS_END).next().unwrap_or(text);
    parse(part)
}

/// Reads the host's facts with a single command.
pub fn gather_facts(t: &mut dyn Transport) -> Result<Facts, TransportError> {
    let cmd = Command::new("sh")
        .args(["-c", SCRIPT, "xfed-facts"])
        .label("gather facts");
    let out = t.run(&cmd)?;
    if !out.success() {
        return Err(TransportError::command_failed(t.host(), &cmd, &out));
    }
    parse(&out.stdout_text()).map_err(|message| TransportError::UnexpectedOutput {
        host: t.host().to_string(),
        command: cmd.describe(),
        message,
    })
}

fn parse(text: &str) -> Result<Facts, String> {
    let (head, os_release) = text
        .split_once(&format!("{MARK}\n"))
        .ok_or("os-release marker missing")?;
    let field = |key: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    let arch = field("arch");
    if arch.is_empty() {
        return Err("`uname -m` printed nothing".into());
    }
    let os = |key: &str| os_release_value(os_release, key).filter(|v| !v.is_empty());
    Ok(Facts {
        os_id: os("ID").unwrap_or_else(|| "linux".into()),
        os_version: os("VERSION_ID"),
        arch,
        systemd_pid1: field("pid1") == "systemd",
        pid1: field("pid1"),
        hostname: field("hostname"),
        glibc: GlibcVersion::from_getconf(&field("libc")),
        libc_reported: field("libc"),
    })
}

/// Value of `key` in os-release syntax: `KEY=value`, `KEY="value"` or
/// `KEY='value'`, with `\"`, `\\`, `\$`, `` \` `` escapes in double quotes.
fn os_release_value(text: &str, key: &str) -> Option<String> {
    let raw = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))?;
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('\'') {
        return Some(inner.strip_suffix('\'').unwrap_or(inner).to_string());
    }
    let Some(inner) = raw.strip_prefix('"') else {
        return Some(raw.to_string());
    };
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                value.push(next);
            }
        } else {
            value.push(c);
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian() {
        let text = "arch=x86_64\nhostname=edge1.contoso.example\npid1=systemd\nlibc=glibc 2.36\n--xfed-os-release--\n\
            PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
            VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n";
        let f = parse(text).expect("parses");
        assert_eq!(f.os_id, "debian");
        assert_eq!(f.os_version.as_deref(), Some("12"));
        assert_eq!(f.os(), "debian 12");
        assert_eq!(f.arch, "x86_64");
        assert!(f.systemd_pid1);
        assert_eq!(f.hostname, "edge1.contoso.example");
        assert_eq!(f.glibc, Some(GlibcVersion::new(2, 36)));
    }

    #[test]
    fn a_host_without_glibc_has_none() {
        // musl's getconf does not know the variable: it prints nothing on
        // stdout. An old script (no `libc=` line) reads the same.
        for libc_line in ["libc=\n", ""] {
            let text = format!(
                "arch=x86_64\nhostname=h\npid1=sshd\n{libc_line}--xfed-os-release--\nID=alpine\n"
            );
            let f = parse_facts(&text).expect("parses");
            assert_eq!(f.glibc, None);
            assert_eq!(f.libc_reported, "");
        }
    }

    #[test]
    fn handles_missing_os_release_and_other_init() {
        let f =
            parse("arch=aarch64\nhostname=h\npid1=sshd\n--xfed-os-release--\n").expect("parses");
        assert_eq!(f.os(), "linux");
        assert!(!f.systemd_pid1);
        assert!(parse("arch=x\n").is_err());
    }

    #[test]
    fn os_release_quoting() {
        let t = "ID='alpine'\nVERSION_ID=\"3.\\\"20\"\nX=plain\n";
        assert_eq!(os_release_value(t, "ID").as_deref(), Some("alpine"));
        assert_eq!(os_release_value(t, "VERSION_ID").as_deref(), Some("3.\"20"));
        assert_eq!(os_release_value(t, "X").as_deref(), Some("plain"));
        assert_eq!(os_release_value(t, "VERSION"), None);
    }
}

//! Structured logging: one `key=value` line per event on stderr.
//!
//! Owns the line format and the level filter. Under journald (detected via
//! `JOURNAL_STREAM`) each line starts with a `<N>` syslog priority and omits
//! the timestamp, which journald records itself; elsewhere it starts with
//! `ts=`. Values are quoted only when they need it, so lines stay greppable.
//! It deliberately has no dependency on a logging framework: the daemon
//! logs a few dozen kinds of events and must never block on a log sink
//! beyond one `write` per line.

use std::fmt::{self, Display, Write as _};
use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// Severity of a log event; also the filter threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed and was not recovered.
    Error = 0,
    /// Something is wrong but the daemon carries on.
    Warn = 1,
    /// Lifecycle events: bound, reloaded, draining.
    Info = 2,
    /// Per-connection detail.
    Debug = 3,
}

impl Level {
    /// Parses a level name as written in the config (`error`, `warn`, `info`, `debug`).
    pub fn parse(name: &str) -> Option<Level> {
        match name {
            "error" => Some(Level::Error),
            "warn" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }

    /// The name used in log lines and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    fn syslog_priority(self) -> u8 {
        match self {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug => 7,
        }
    }
}

static THRESHOLD: AtomicU8 = AtomicU8::new(Level::Info as u8);
static JOURNALD: OnceLock<bool> = OnceLock::new();

/// Sets the most verbose level that is still written.
pub fn set_level(level: Level) {
    THRESHOLD.store(level as u8, Ordering::Relaxed);
}

/// Whether events of `level` are written at all (cheap; check before building values).
pub fn enabled(level: Level) -> bool {
    level as u8 <= THRESHOLD.load(Ordering::Relaxed)
}

/// Writes one event line if `level` passes the filter.
pub fn emit(level: Level, event: &str, fields: &[(&str, &dyn Display)]) {
    if !enabled(level) {
        return;
    }
    let journald = *JOURNALD.get_or_init(|| std::env::var_os("JOURNAL_STREAM").is_some());
    let line = format_line(level, event, fields, journald, std::time::SystemTime::now());
    // One write per line so concurrent tasks never interleave within a line.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Builds the line `emit` writes; separate so the format is unit-tested.
pub fn format_line(
    level: Level,
    event: &str,
    fields: &[(&str, &dyn Display)],
    journald: bool,
    now: std::time::SystemTime,
) -> String {
    let mut line = String::with_capacity(128);
    if journald {
        let _ = write!(line, "<{}>", level.syslog_priority());
    } else {
        let _ = write!(line, "ts={} ", crate::clock::rfc3339_millis(now));
    }
    let _ = write!(line, "level={} event={}", level.as_str(), event);
    for (key, value) in fields {
        line.push(' ');
        line.push_str(key);
        line.push('=');
        push_value(&mut line, &value.to_string());
    }
    line.push('\n');
    line
}

fn push_value(line: &mut String, value: &str) {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=' && c != '\\');
    if plain {
        line.push_str(value);
        return;
    }
    line.push('"');
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(line, "\\u{{{:x}}}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

/// Displays a list as `a,b,c` (for log fields).
#[derive(Debug)]
pub struct Joined<'a, T: Display>(pub &'a [T]);

impl<T: Display> Display for Joined<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            item.fmt(f)?;
        }
        Ok(())
    }
}

/// Logs an event: `event!(Info, "listener_bound", listener = name, address = addr)`.
#[macro_export]
macro_rules! event {
    ($level:ident, $event:expr $(, $key:ident = $value:expr)* $(,)?) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::emit(
                $crate::log::Level::$level,
                $event,
                &[$((stringify!($key), &$value as &dyn ::std::fmt::Display)),*],
            )
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn plain_values_stay_bare_and_others_are_quoted() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let line = format_line(
            Level::Warn,
            "reload_failed",
            &[("path", &"/etc/x.toml"), ("problem", &"bad \"x\"\nline")],
            false,
            now,
        );
        assert_eq!(
            line,
            "ts=2023-11-14T22:13:20.123Z level=warn event=reload_failed path=/etc/x.toml problem=\"bad \\\"x\\\"\\nline\"\n"
        );
    }

    #[test]
    fn journald_lines_carry_priority_and_no_timestamp() {
        let line = format_line(Level::Error, "x", &[("v", &"")], true, UNIX_EPOCH);
        assert_eq!(line, "<3>level=error event=x v=\"\"\n");
    }
}

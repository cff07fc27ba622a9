//! Doctor's findings as text: one line per check for a person, a JSON
//! array for machines. Pure: returns strings, prints nothing; the caller
//! masks secrets (the spec's `Redactor`) and decides about colour.

use std::fmt::Write as _;

use super::{Finding, Status};

/// One line per finding — status, check, host, what was seen and, when
/// something is wrong, the fix — log lines indented under their finding,
/// then a count. Colour (the status word only) when `color`.
pub fn human(findings: &[Finding], color: bool) -> String {
    let check_w = findings
        .iter()
        .map(|f| f.check.name().len())
        .max()
        .unwrap_or(0);
    let host_w = findings
        .iter()
        .map(|f| f.host.chars().count())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut out = String::new();
    for f in findings {
        let host = if f.host.is_empty() { "-" } else { &f.host };
        let _ = write!(
            out,
            "{}  {:<check_w$}  {:<host_w$}  {}",
            paint(f.status, color),
            f.check.name(),
            host,
            f.seen
        );
        if let Some(fix) = f.fix.as_ref().filter(|_| f.status != Status::Pass) {
            let _ = write!(out, " — fix: {fix}");
        }
        out.push('\n');
        for line in &f.log {
            let _ = writeln!(out, "      | {line}");
        }
    }
    let count = |s: Status| findings.iter().filter(|f| f.status == s).count();
    let _ = writeln!(
        out,
        "\n{} checks: {} passed, {} warned, {} failed, {} skipped.",
        findings.len(),
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail),
        count(Status::Skip)
    );
    out
}

fn paint(status: Status, color: bool) -> String {
    let label = status.label();
    if !color {
        return label.to_string();
    }
    let code = match status {
        Status::Pass => "32",
        Status::Warn => "33",
        Status::Fail => "31",
        Status::Skip => "2",
    };
    format!("\x1b[{code}m{label}\x1b[0m")
}

/// `[{check, host, status, seen, fix}, …]` (`log` too where there is one).
pub fn json(findings: &[Finding]) -> String {
    serde_json::to_string_pretty(findings).unwrap_or_else(|_| "[]".into()) + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::doctor::Check;

    fn finding(status: Status) -> Finding {
        Finding {
            check: Check::Service,
            host: "edge1.contoso.example".into(),
            status,
            seen: "not running".into(),
            fix: Some("run `xfed apply`".into()),
            log: vec!["bound 198.51.100.101:5269".into()],
        }
    }

    #[test]
    fn one_line_per_check_with_the_fix_and_the_log_under_it() {
        let text = human(&[finding(Status::Fail)], false);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(
                "FAIL  gateway service  edge1.contoso.example  not running — fix: run `xfed apply`"
            )
        );
        assert_eq!(lines.next(), Some("      | bound 198.51.100.101:5269"));
        assert!(
            text.ends_with("1 checks: 0 passed, 0 warned, 1 failed, 0 skipped.\n"),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
        assert!(human(&[finding(Status::Fail)], true).contains("\x1b[31mFAIL\x1b[0m"));
    }

    #[test]
    fn json_has_the_five_fields() {
        let v: serde_json::Value =
            serde_json::from_str(&json(&[finding(Status::Pass)])).expect("json");
        let f = &v[0];
        assert_eq!(f["check"], "gateway service");
        assert_eq!(f["host"], "edge1.contoso.example");
        assert_eq!(f["status"], "pass");
        assert_eq!(f["seen"], "not running");
        assert_eq!(f["fix"], "run `xfed apply`");
        assert_eq!(f["log"][0], "bound 198.51.100.101:5269");
    }
}

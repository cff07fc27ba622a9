//! Plan rendering: the human form a Terraform user expects, and a stable
//! JSON form for machines. Pure: returns strings, prints nothing.

use std::fmt::Write as _;

use serde::Serialize;

use super::style::Style;
use crate::plan::{Action, Change, Plan, Stage, StageKind, Summary};

pub fn summary_line(s: Summary) -> String {
    format!(
        "Plan: {} to add, {} to change, {} to destroy.",
        s.add, s.change, s.destroy
    )
}

/// The plan as text: stages in order, one block per change with its
/// symbol, address, reason and spec line, diffs indented under it.
pub fn human(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if !plan.has_changes() {
        if plan.targets.is_empty() {
            out.push_str("No changes. The live world matches the spec.\n");
        } else {
            out.push_str("No changes in the targets.\n");
            targeting(&mut out, plan);
        }
        return out;
    }
    out.push_str("xfed will perform the following actions:\n");
    for stage in &plan.stages {
        let changes: Vec<&Change> = stage
            .changes
            .iter()
            .map(|&i| &plan.changes[i])
            .filter(|c| c.action.is_change())
            .collect();
        if changes.is_empty() {
            continue;
        }
        let gate = if stage.health_gate {
            ", then health gate"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "\n── stage {}: {}{gate} ──",
            stage.kind,
            stage.hosts.join(", ")
        );
        if stage.kind == StageKind::Decommission {
            for d in plan
                .decommission
                .iter()
                .filter(|d| d.unreachable.is_none() && !d.forgotten)
            {
                let stops = match d.role {
                    crate::spec::Role::Edge => "its gateway stops (draining first)",
                    crate::spec::Role::Frontend => "its XMPP server stops",
                };
                let _ = writeln!(
                    out,
                    "\n  {} {} (destroy): left the spec; {stops} and what xfed placed there is removed",
                    style.paint(Action::Delete, Action::Delete.symbol()),
                    d.address()
                );
            }
        }
        for c in changes {
            render_change(&mut out, c, style);
        }
    }
    if !plan.access.is_empty() {
        out.push_str("\nEffective external access changes:\n");
        for a in &plan.access {
            let before = a
                .before
                .as_ref()
                .map_or_else(|| "(not published)".to_string(), |b| b.describe());
            let _ = writeln!(out, "  {}: {before} → {}", a.user, a.after.describe());
            // Per partner kind: whether stanzas may cross and which flag
            // decided; a kind whose decision moves shows before → after.
            for (_, kinds) in crate::plan::access::kind_groups() {
                let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                let after = a.after.access(kinds[0]);
                let row = match a.before.as_ref().map(|b| b.access(kinds[0])) {
                    Some(before) if before != after => {
                        format!("{} → {}", before.describe(), after.describe())
                    }
                    _ => after.describe(),
                };
                let _ = writeln!(out, "      {} partners: {row}", names.join(", "));
            }
        }
    }
    destroys(&mut out, plan, style);
    targeting(&mut out, plan);
    let _ = writeln!(out, "\n{}", summary_line(plan.summary()));
    out
}

/// Servers that left the spec but cannot be destroyed, or are forgotten,
/// with what is left on them; and the reminder that destroying several
/// needs a flag.
fn destroys(out: &mut String, plan: &Plan, style: Style) {
    for d in &plan.decommission {
        let what = match (&d.unreachable, d.forgotten) {
            (_, true) => "(forget): left the spec and is gone for good; xfed stops tracking it and touches nothing on it\n    left on it, if it still exists:".to_string(),
            (Some(why), false) => format!(
                "(destroy): left the spec, but cannot be decommissioned: {why}\n    left on it:"
            ),
            (None, false) => continue,
        };
        let _ = writeln!(
            out,
            "\n  {} {} {what}",
            style.paint(Action::Delete, Action::Delete.symbol()),
            d.address()
        );
        for l in &d.left {
            let _ = writeln!(out, "      {l}");
        }
    }
    let n = plan.decommission.iter().filter(|d| !d.forgotten).count();
    if n > 1 {
        let _ = writeln!(
            out,
            "\nWarning: this plan destroys {n} servers; apply needs --allow-destroy."
        );
    }
}

/// The warning of a targeted plan, as Terraform gives it: what it was
/// restricted to and what it leaves out.
fn targeting(out: &mut String, plan: &Plan) {
    if plan.targets.is_empty() {
        return;
    }
    let targets: Vec<String> = plan.targets.iter().map(|t| t.to_string()).collect();
    let _ = writeln!(
        out,
        "\nWarning: this plan is restricted to {} and what it needs; it is partial.",
        targets.join(", ")
    );
    if plan.skipped.is_empty() {
        out.push_str("Nothing else needs a change.\n");
        return;
    }
    let _ = writeln!(
        out,
        "{} change(s) elsewhere are left out; a plan without --target carries them:",
        plan.skipped.len()
    );
    for a in &plan.skipped {
        let _ = writeln!(out, "  · {a}");
    }
}

fn render_change(out: &mut String, c: &Change, style: Style) {
    let op = c
        .service_op
        .map(|op| format!(" ({op:?})").to_lowercase())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "\n  # {} {}{op}: {}",
        c.address,
        c.action.verb(),
        c.reason
    );
    if !c.origin.is_empty() {
        let _ = writeln!(out, "  #   from {}", c.origin);
    }
    let _ = writeln!(
        out,
        "  {} {}",
        style.paint(c.action, c.action.symbol()),
        c.address
    );
    for a in &c.attrs {
        let before = if a.before.is_empty() {
            "(none)"
        } else {
            &a.before
        };
        let _ = writeln!(out, "      {}: {before} → {}", a.name, a.after);
    }
    if let Some(diff) = &c.diff {
        for line in diff.lines() {
            let _ = writeln!(out, "      {}", style.line(line));
        }
    }
}

/// Stable machine form (documented in README: `format_version` 2; 2 gave
/// every stage its typed `kind` beside the `name` a person reads).
#[derive(Debug, Serialize)]
pub struct JsonPlan<'a> {
    pub format_version: u32,
    pub changes_present: bool,
    pub summary: Summary,
    pub stages: Vec<JsonStage<'a>>,
    pub changes: &'a [Change],
    pub access: &'a [crate::plan::access::AccessChange],
    /// The `--target`s and what they left out (absent: the whole spec).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub targets: &'a [crate::plan::Target],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub skipped: &'a [String],
    /// Servers that left the spec (absent: none).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub decommission: &'a [crate::plan::Decommission],
}

/// A stage as machines read it: its name, then its fields.
#[derive(Debug, Serialize)]
pub struct JsonStage<'a> {
    pub name: String,
    #[serde(flatten)]
    pub stage: &'a Stage,
}

pub fn json(plan: &Plan) -> String {
    let j = JsonPlan {
        format_version: 2,
        changes_present: plan.has_changes(),
        summary: plan.summary(),
        stages: plan
            .stages
            .iter()
            .map(|stage| JsonStage {
                name: stage.name(),
                stage,
            })
            .collect(),
        changes: &plan.changes,
        access: &plan.access,
        targets: &plan.targets,
        skipped: &plan.skipped,
        decommission: &plan.decommission,
    };
    serde_json::to_string_pretty(&j).unwrap_or_default()
}

//! The plan as a Graphviz DOT picture (`xfed graph`): the rollout's step
//! order, one cluster per stage in the order the stages run.
//!
//! Owns only the drawing. Pure and deterministic — the same plan gives the
//! same bytes — so it is snapshot-tested; running Graphviz to make an SVG
//! is the CLI's business, not this module's.
//!
//! What is drawn:
//! - a cluster per stage (front-end, each edge pool's batches, dns,
//!   policies and routes, verify — whatever the plan has), numbered in run
//!   order and joined stage to stage by one edge;
//! - inside a stage, a cluster per host (per zone for DNS, one for the
//!   topology's objects), as hosts of one stage run side by side;
//! - a node per change: its symbol and short address, a service's
//!   operation in brackets. Changes that do nothing (no-ops) are drawn
//!   faded and dashed, so the shape of the rollout stays visible even when
//!   there is nothing to do;
//! - inside a host: every write → the service restart/reload → the health
//!   gate, when the stage has one.

use std::fmt::Write as _;

use crate::plan::{Action, Change, Plan, ResourceKind, Stage, short_address};

/// The plan as DOT text; see the module header for what is drawn.
pub fn dot(plan: &Plan) -> String {
    let mut out = String::new();
    let s = plan.summary();
    let title = format!(
        "xfed plan: {} to add, {} to change, {} to destroy (up-to-date steps faded)",
        s.add, s.change, s.destroy
    );
    out.push_str("// xfed graph: the plan's step order; render with `dot -Tsvg`\n");
    out.push_str("digraph xfed_plan {\n");
    let _ = writeln!(
        out,
        "  graph [rankdir=LR, compound=true, newrank=true, fontname=\"Helvetica\", fontsize=12, labelloc=t, label={}];",
        quote(&title)
    );
    out.push_str("  node [shape=box, style=\"rounded\", fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  edge [color=\"#555555\", arrowsize=0.7];\n");

    let mut edges: Vec<String> = Vec::new();
    // (entry node, exit node) of each stage, for the stage-to-stage edges.
    let mut ends: Vec<(String, String)> = Vec::new();
    for (si, stage) in plan.stages.iter().enumerate() {
        ends.push(draw_stage(&mut out, &mut edges, plan, si, stage));
    }
    for (i, pair) in ends.windows(2).enumerate() {
        let ((_, tail), (head, _)) = (&pair[0], &pair[1]);
        edges.push(format!(
            "{tail} -> {head} [ltail=cluster_s{i}, lhead=cluster_s{}, penwidth=1.5];",
            i + 1
        ));
    }
    for e in edges {
        let _ = writeln!(out, "  {e}");
    }
    out.push_str("}\n");
    out
}

/// Draws one stage's cluster; returns its entry and exit node ids.
fn draw_stage(
    out: &mut String,
    edges: &mut Vec<String>,
    plan: &Plan,
    si: usize,
    stage: &Stage,
) -> (String, String) {
    let changes: Vec<(usize, &Change)> = stage
        .changes
        .iter()
        .filter_map(|&i| plan.changes.get(i).map(|c| (i, c)))
        .collect();
    let doing = changes.iter().filter(|(_, c)| c.action.is_change()).count();
    let mut label = format!("stage {}: {}", si + 1, stage.kind);
    let mut counts = format!("{} to do, {} up to date", doing, changes.len() - doing);
    if stage.health_gate {
        counts.push_str(", then health gate");
    }
    label.push('\n');
    label.push_str(&counts);
    let _ = writeln!(out, "  subgraph cluster_s{si} {{");
    let _ = writeln!(
        out,
        "    label={}; style=\"rounded\"; color=\"#777777\"; fontsize=11;",
        quote(&label)
    );

    if changes.is_empty() {
        let id = format!("s{si}_empty");
        let _ = writeln!(
            out,
            "    {id} [label=\"(nothing to do)\", color=\"#bbbbbb\", fontcolor=\"#999999\", style=\"rounded,dashed\"];"
        );
        out.push_str("  }\n");
        return (id.clone(), id);
    }

    let groups = group(&changes);
    let mut entry = String::new();
    let mut exit = String::new();
    // The steps nothing inside the stage waits for: one column (rank), so
    // hosts of a stage stand side by side and the stage reads left to right.
    let mut sources: Vec<String> = Vec::new();
    for (gi, (name, members)) in groups.iter().enumerate() {
        let _ = writeln!(out, "    subgraph cluster_s{si}_h{gi} {{");
        let _ = writeln!(
            out,
            "      label={}; style=\"rounded,dashed\"; color=\"#aaaaaa\"; fontsize=10;",
            quote(name)
        );
        let mut writes = Vec::new();
        let mut services = Vec::new();
        for (i, c) in members {
            let id = format!("c{i}");
            let _ = writeln!(out, "      {id} [{}];", node_attrs(c));
            if c.kind == ResourceKind::Service && c.action != Action::Delete {
                services.push(id);
            } else if c.kind != ResourceKind::ListenerCheck {
                writes.push(id);
            }
        }
        let gate = stage.health_gate.then(|| format!("s{si}_h{gi}_gate"));
        if let Some(g) = &gate {
            let _ = writeln!(
                out,
                "      {g} [label={}, shape=hexagon, style=\"solid\", color=\"#1565c0\", fontcolor=\"#1565c0\"];",
                quote(&format!("health gate\n{name}"))
            );
        }
        out.push_str("    }\n");
        sources.extend(writes.iter().cloned());
        if writes.is_empty() {
            sources.extend(services.iter().cloned());
        }
        sources.extend(
            members
                .iter()
                .filter(|(_, c)| c.kind == ResourceKind::ListenerCheck)
                .map(|(i, _)| format!("c{i}")),
        );

        for s in &services {
            for w in &writes {
                edges.push(format!("{w} -> {s};"));
            }
        }
        if let Some(g) = &gate {
            let before = if services.is_empty() {
                &writes
            } else {
                &services
            };
            for b in before {
                edges.push(format!("{b} -> {g};"));
            }
        }
        // The stage is entered at its first step and left from its last
        // gate (or its first step, where nothing follows inside), so the
        // stages line up one after the other.
        if gi == 0 {
            entry = format!("c{}", members[0].0);
        }
        exit = gate.unwrap_or_else(|| format!("c{}", members[0].0));
    }
    if sources.len() > 1 {
        let _ = writeln!(out, "    {{ rank=same; {}; }}", sources.join("; "));
    }
    out.push_str("  }\n");
    (entry, exit)
}

/// The stage's changes per host (per zone for DNS), hosts in the order
/// they first appear, each host's changes in run order.
fn group<'a>(changes: &[(usize, &'a Change)]) -> Vec<(String, Vec<(usize, &'a Change)>)> {
    let mut groups: Vec<(String, Vec<(usize, &Change)>)> = Vec::new();
    for &(i, c) in changes {
        let key = target(c);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push((i, c)),
            None => groups.push((key, vec![(i, c)])),
        }
    }
    groups
}

/// Where a change happens: its host; for a change that is on no host,
/// what its address names first — the zone of `dns/<zone>/…`, `topology`
/// for `topology/…`.
fn target(c: &Change) -> String {
    if !c.host.is_empty() {
        return c.host.clone();
    }
    let rest = c.address.strip_prefix("dns/").unwrap_or(&c.address);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// A change's short name inside its host's (or zone's) cluster.
fn short(c: &Change) -> String {
    if !c.host.is_empty() {
        return short_address(&c.address);
    }
    let rest = c.address.strip_prefix("dns/").unwrap_or(&c.address);
    rest.split_once('/').map_or(rest, |(_, r)| r).to_string()
}

fn node_attrs(c: &Change) -> String {
    let op = c
        .service_op
        .filter(|_| c.action.is_change())
        .map(|op| format!(" ({})", format!("{op:?}").to_lowercase()))
        .unwrap_or_default();
    let label = match c.action {
        Action::NoOp => short(c),
        a => format!("{} {}{op}", a.symbol(), short(c)),
    };
    let (color, style) = match c.action {
        Action::NoOp => ("#bbbbbb", "rounded,dashed"),
        Action::Create => ("#2e7d32", "rounded"),
        Action::Update => ("#b26a00", "rounded"),
        Action::Replace => ("#8e24aa", "rounded,bold"),
        Action::Delete => ("#c62828", "rounded"),
    };
    let font = if c.action == Action::NoOp {
        "#999999"
    } else {
        color
    };
    format!(
        "label={}, tooltip={}, color=\"{color}\", fontcolor=\"{font}\", style=\"{style}\"",
        quote(&label),
        quote(&format!("{}: {}", c.address, c.reason))
    )
}

/// A DOT double-quoted string: backslashes and quotes escaped (so a `\N`
/// or `\G` in a name is not a Graphviz escape), line breaks as `\n`.
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for ch in s.chars() {
        match ch {
            '\\' => q.push_str("\\\\"),
            '"' => q.push_str("\\\""),
            '\n' => q.push_str("\\n"),
            '\r' => {}
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

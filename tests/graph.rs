//! `xfed graph`'s picture, without a network: a Plan built from fixtures
//! (desired resources + facts, as tests/plan_decisions.rs does) drawn by
//! the pure `output::dot::dot`. Asserts the structure — stage clusters in
//! run order, the edges stage to stage and inside a host (writes → service
//! → health gate), no-ops faded, labels escaped — and snapshots the DOT.

use std::collections::HashMap;
use std::path::PathBuf;

use xfed::output::dot::{dot, quote};
use xfed::plan::diff::sha256_hex;
use xfed::plan::{
    self, Action, BinarySpec, Change, Desired, FileFact, FileSpec, ListenerFact, ListenerSpec,
    Manager, Notify, Observed, Phase, Plan, Resource, ResourceKind, ServiceFact, ServiceSpec,
    Stage, StageKind,
};
use xfed::spec::{Origin, Role};

fn origin() -> Origin {
    Origin {
        file: PathBuf::from("lab.yaml"),
        line: 30,
        col: 7,
        field: "edge_pools[0].servers[0]".into(),
    }
}

fn file(path: &str, content: &str) -> Desired {
    Desired::File(FileSpec {
        path: path.into(),
        content: content.into(),
        mode: 0o640,
        owner: "root".into(),
        group: "root".into(),
        sensitive: false,
        reload_scope: None,
    })
}

/// The gateway's resources on one edge host, as the module expands them.
fn edge(host: &str, pool: &str, external: &str) -> Vec<Resource> {
    let prefix = format!("edge/{pool}/{host}");
    let svc = format!("{prefix}/service:xfed-gateway");
    let r = |address: String, phase, desired, notifies| Resource {
        address,
        host: host.into(),
        role: Role::Edge,
        pool: pool.into(),
        phase,
        desired,
        origin: origin(),
        notifies,
    };
    vec![
        r(
            format!("{prefix}/binary:/opt/xfed/bin/xfed-gateway"),
            Phase::Edge,
            Desired::Binary(BinarySpec {
                path: "/opt/xfed/bin/xfed-gateway".into(),
                sha256: "b".repeat(64),
                size: 10,
                source: PathBuf::from("/nonexistent"),
                mode: 0o755,
            }),
            Some((svc.clone(), Notify::Restart)),
        ),
        r(
            format!("{prefix}/file:/etc/xfed/gateway.toml"),
            Phase::Edge,
            file("/etc/xfed/gateway.toml", "[external]\nport = 5269\n"),
            Some((svc.clone(), Notify::Restart)),
        ),
        r(
            format!("{prefix}/file:/etc/xfed/policy.toml"),
            Phase::Edge,
            file("/etc/xfed/policy.toml", "[[partners]]\n"),
            Some((svc.clone(), Notify::Reload)),
        ),
        r(
            svc.clone(),
            Phase::Restart,
            Desired::Service(ServiceSpec {
                name: "xfed-gateway".into(),
                manager: Manager::Direct,
                exec: vec!["/opt/xfed/bin/xfed-gateway".into()],
                pid_file: "/var/lib/xfed/run/xfed-gateway.pid".into(),
                log_file: "/var/lib/xfed/log/xfed-gateway.log".into(),
                binary: Some("b".repeat(64)),
                binary_path: Some("/opt/xfed/bin/xfed-gateway".into()),
                user: Some("xfed-gateway".into()),
            }),
            None,
        ),
        r(
            format!("{prefix}/listener:external"),
            Phase::Verify,
            Desired::Listener(ListenerSpec {
                name: xfed::plan::ListenerKind::External,
                address: external.parse().expect("ip"),
                port: 5269,
                service: svc,
            }),
            None,
        ),
    ]
}

fn frontend(host: &str) -> Resource {
    Resource {
        address: format!("fe/fe-hq/{host}/file:/etc/xfed/topology.json"),
        host: host.into(),
        role: Role::Frontend,
        pool: "fe-hq".into(),
        phase: Phase::Frontend,
        desired: file("/etc/xfed/topology.json", "{}\n"),
        origin: origin(),
        notifies: None,
    }
}

fn absent(r: &Resource) -> Observed {
    match &r.desired {
        Desired::Binary(_) => Observed::Binary(None),
        Desired::Service(_) => Observed::Service(ServiceFact {
            running: false,
            pid: None,
            running_sha256: None,
            running_user: None,
        }),
        Desired::Listener(_) => Observed::Listener(ListenerFact { listening: false }),
        _ => Observed::File(None),
    }
}

fn present(r: &Resource) -> Observed {
    match &r.desired {
        Desired::File(f) => Observed::File(Some(FileFact {
            mode: f.mode,
            owner: "root".into(),
            group: "root".into(),
            size: f.content.len() as u64,
            sha256: sha256_hex(f.content.as_bytes()),
            content: Some(f.content.clone()),
        })),
        Desired::Binary(b) => Observed::Binary(Some(FileFact {
            mode: b.mode,
            owner: "root".into(),
            group: "root".into(),
            size: b.size,
            sha256: b.sha256.clone(),
            content: None,
        })),
        Desired::Service(s) => Observed::Service(ServiceFact {
            running: true,
            pid: Some(42),
            running_sha256: s.binary.clone(),
            running_user: None,
        }),
        Desired::Listener(_) => Observed::Listener(ListenerFact { listening: true }),
        _ => Observed::File(None),
    }
}

/// A change on no host, as the DNS and topology planners make them: a
/// `dns/<zone>/…` or `topology/…` address.
fn hostless(address: &str, phase: Phase, kind: ResourceKind, action: Action) -> Change {
    Change {
        address: address.into(),
        host: String::new(),
        pool: String::new(),
        phase,
        kind,
        action,
        reason: "absent".into(),
        diff: None,
        attrs: Vec::new(),
        service_op: None,
        origin: String::new(),
        observed: String::new(),
        desired: String::new(),
    }
}

/// The lab's shape: one front-end (in sync), edge1 fresh, edge2 in sync
/// but for an edited policy; one pool rolled one server at a time; a DNS
/// stage and a route change put in before verify, as the engine does.
fn lab_plan() -> Plan {
    let fe = frontend("fe1.contoso.example");
    let edge1 = edge("edge1.contoso.example", "edge-hq", "198.51.100.101");
    let edge2 = edge("edge2.contoso.example", "edge-hq", "198.51.100.102");
    let mut observed: HashMap<String, Observed> = HashMap::new();
    observed.insert(fe.address.clone(), present(&fe));
    for r in &edge1 {
        observed.insert(r.address.clone(), absent(r));
    }
    for r in &edge2 {
        let o = if r.address.ends_with("policy.toml") {
            Observed::File(Some(FileFact {
                mode: 0o640,
                owner: "root".into(),
                group: "root".into(),
                size: 1,
                sha256: sha256_hex(b"old"),
                content: Some("old".into()),
            }))
        } else {
            present(r)
        };
        observed.insert(r.address.clone(), o);
    }
    let mut rs = vec![fe];
    rs.extend(edge1);
    rs.extend(edge2);
    let mut p = plan::build(&rs, &observed, &["edge-hq".into()], 1);
    let at = p
        .stages
        .iter()
        .position(|s| s.kind == StageKind::Verify)
        .expect("a verify stage");
    let n = p.changes.len();
    p.changes.extend([
        hostless(
            "dns/contoso.example./zone",
            Phase::Dns,
            ResourceKind::DnsZone,
            Action::Create,
        ),
        hostless(
            "dns/contoso.example./SRV:_xmpp-server._tcp.contoso.example.",
            Phase::Dns,
            ResourceKind::DnsRecord,
            Action::Create,
        ),
        hostless(
            "topology/route:hq",
            Phase::Policies,
            ResourceKind::Route,
            Action::Update,
        ),
    ]);
    let stage = |kind: StageKind, hosts: &str, changes: Vec<usize>| Stage {
        kind,
        hosts: vec![hosts.into()],
        changes,
        health_gate: false,
    };
    p.stages
        .insert(at, stage(StageKind::Policies, "topology", vec![n + 2]));
    p.stages.insert(
        at,
        stage(StageKind::Dns, "contoso.example.", vec![n, n + 1]),
    );
    p
}

/// What the DOT says, read back: node id → label, edges as label pairs,
/// and the top-level cluster labels in order.
struct Drawn {
    labels: HashMap<String, String>,
    edges: Vec<(String, String, String)>,
    stages: Vec<String>,
}

fn read(dot: &str) -> Drawn {
    let mut labels = HashMap::new();
    let mut edges = Vec::new();
    let mut stages = Vec::new();
    let lines: Vec<&str> = dot.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if line.starts_with("  subgraph cluster_s") && !t.contains("_h") {
            let label = lines[i + 1]
                .trim()
                .strip_prefix("label=\"")
                .and_then(|l| l.split("\\n").next())
                .expect("a stage cluster starts with its label");
            stages.push(label.to_string());
        } else if let Some((from, rest)) = t.split_once(" -> ") {
            let to: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            edges.push((from.to_string(), to, rest.to_string()));
        } else if let Some((id, rest)) = t.split_once(" [label=\"") {
            let label = rest.split("\", ").next().expect("label").to_string();
            labels.insert(id.to_string(), label);
        }
    }
    let name = |id: &str| labels.get(id).cloned().unwrap_or_else(|| id.to_string());
    let edges = edges
        .into_iter()
        .map(|(a, b, attrs)| (name(&a), name(&b), attrs))
        .collect();
    Drawn {
        labels,
        edges,
        stages,
    }
}

#[test]
fn stages_are_clusters_in_run_order() {
    let d = read(&dot(&lab_plan()));
    assert_eq!(
        d.stages,
        [
            "stage 1: front-end",
            "stage 2: edge-hq 1/2",
            "stage 3: edge-hq 2/2",
            "stage 4: dns",
            "stage 5: policies and routes",
            "stage 6: verify"
        ]
    );
}

#[test]
fn stages_are_joined_in_order_from_cluster_to_cluster() {
    let text = dot(&lab_plan());
    let d = read(&text);
    let joins: Vec<&str> = d
        .edges
        .iter()
        .filter(|(_, _, attrs)| attrs.contains("ltail="))
        .map(|(_, _, attrs)| attrs.as_str())
        .collect();
    assert_eq!(joins.len(), 5, "{text}");
    for (i, attrs) in joins.iter().enumerate() {
        assert!(
            attrs.contains(&format!("ltail=cluster_s{i}, lhead=cluster_s{}", i + 1)),
            "{attrs}"
        );
    }
    // A rolled batch is left from its health gate.
    let from_batch = d
        .edges
        .iter()
        .find(|(_, _, a)| a.contains("ltail=cluster_s1,"))
        .expect("edge out of stage 2");
    assert_eq!(from_batch.0, "health gate\\nedge1.contoso.example");
    assert!(text.contains("compound=true"), "{text}");
}

#[test]
fn inside_a_host_writes_come_before_the_restart_and_the_restart_before_the_gate() {
    let d = read(&dot(&lab_plan()));
    let has = |from: &str, to: &str| d.edges.iter().any(|(a, b, _)| a == from && b == to);
    let service = "+ service:xfed-gateway (start)";
    for write in [
        "+ binary:/opt/xfed/bin/xfed-gateway",
        "+ file:/etc/xfed/gateway.toml",
        "+ file:/etc/xfed/policy.toml",
    ] {
        assert!(has(write, service), "{write} → {service}: {:?}", d.edges);
    }
    assert!(has(service, "health gate\\nedge1.contoso.example"));
    // edge2 only reloads: its edited policy, then the reload, then its gate.
    let reload = "~ service:xfed-gateway (reload)";
    assert!(has("~ file:/etc/xfed/policy.toml", reload), "{:?}", d.edges);
    assert!(has(reload, "health gate\\nedge2.contoso.example"));
    // Nothing leads into a write, and the verify stage's checks stand alone.
    assert!(
        !d.edges
            .iter()
            .any(|(_, b, a)| !a.contains("lhead") && b.starts_with("+ binary")),
        "{:?}",
        d.edges
    );
}

#[test]
fn no_ops_are_drawn_faded_with_their_address_and_changes_with_their_symbol() {
    let text = dot(&lab_plan());
    let d = read(&text);
    let faded = text
        .lines()
        .find(|l| l.contains("label=\"file:/etc/xfed/topology.json\""))
        .expect("the front-end's topology, up to date, is drawn");
    assert!(faded.contains("style=\"rounded,dashed\""), "{faded}");
    assert!(faded.contains("fontcolor=\"#999999\""), "{faded}");
    assert!(
        d.labels
            .values()
            .any(|l| l == "+ SRV:_xmpp-server._tcp.contoso.example.")
    );
    assert!(d.labels.values().any(|l| l == "+ zone"));
    assert!(d.labels.values().any(|l| l == "~ route:hq"));
    assert!(
        text.contains("label=\"stage 1: front-end\\n0 to do, 1 up to date\""),
        "{text}"
    );
    assert!(
        text.contains("\\n4 to do, 0 up to date, then health gate\""),
        "{text}"
    );
    // The DNS cluster is per zone.
    assert!(text.contains("label=\"contoso.example.\";"), "{text}");
}

#[test]
fn labels_are_escaped_for_dot() {
    assert_eq!(quote("plain"), "\"plain\"");
    assert_eq!(quote("a \"b\" c"), "\"a \\\"b\\\" c\"");
    assert_eq!(quote("C:\\N\\G"), "\"C:\\\\N\\\\G\"");
    assert_eq!(quote("two\nlines\r"), "\"two\\nlines\"");
    let mut p = lab_plan();
    let i = p
        .changes
        .iter()
        .position(|c| c.address.ends_with("gateway.toml"))
        .expect("gateway.toml");
    p.changes[i].address =
        "edge/edge-hq/edge1.contoso.example/file:/etc/xfed/we\"ird\\N.toml".into();
    let text = dot(&p);
    assert!(
        text.contains("label=\"+ file:/etc/xfed/we\\\"ird\\\\N.toml\""),
        "{text}"
    );
}

#[test]
fn an_empty_plan_and_an_empty_stage_still_draw() {
    // Built by the planner and emptied, so new fields of `Plan` need no
    // change here.
    let mut empty = lab_plan();
    empty.changes.clear();
    empty.stages.clear();
    let text = dot(&empty);
    assert!(text.starts_with("// xfed graph"), "{text}");
    assert!(text.trim_end().ends_with('}'), "{text}");
    let mut one = empty.clone();
    one.stages.push(Stage {
        kind: StageKind::Verify,
        hosts: Vec::new(),
        changes: Vec::new(),
        health_gate: false,
    });
    assert!(dot(&one).contains("s0_empty [label=\"(nothing to do)\""));
}

#[test]
fn the_dot_is_deterministic_and_snapshotted() {
    let a = dot(&lab_plan());
    assert_eq!(a, dot(&lab_plan()));
    insta::assert_snapshot!("lab_plan", a);
}

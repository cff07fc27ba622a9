//! Every renderer of a plan and of the verify table, snapshot-tested from
//! fixed values — no lab, no network: what a person, a JSON reader, a JUnit
//! consumer and GitHub Actions see for the same plan.

use std::path::Path;

use xfed::output::{Style, ci, render};
use xfed::plan::access::AccessChange;
use xfed::plan::{
    Action, AttrChange, Change, ListenerKind, Phase, Plan, ResourceKind, Stage, StageKind,
};
use xfed::verify::VerifyRow;
use xfed::verify::dns::VerifyRow as DnsRow;
use xfed::verify::report::{VerifyReport, render as render_verify};
use xfed::verify::topology::TopologyRow;

fn change(
    address: &str,
    host: &str,
    kind: ResourceKind,
    action: Action,
    reason: &str,
    origin: &str,
) -> Change {
    Change {
        address: address.into(),
        host: host.into(),
        pool: if host.starts_with("edge") {
            "edge-hq".into()
        } else {
            String::new()
        },
        phase: match kind {
            ResourceKind::DnsRecord | ResourceKind::DnsZone => Phase::Dns,
            ResourceKind::Policy
            | ResourceKind::Grant
            | ResourceKind::Partner
            | ResourceKind::Route => Phase::Policies,
            ResourceKind::ListenerCheck => Phase::Verify,
            _ => Phase::Edge,
        },
        kind,
        action,
        reason: reason.into(),
        diff: None,
        attrs: Vec::new(),
        service_op: None,
        origin: origin.into(),
        observed: "o".repeat(64),
        desired: "d".repeat(64),
    }
}

/// A plan with one of everything: a file updated with a diff (and a
/// character that needs escaping), a binary created, a service restarted,
/// a listener left alone, a DNS record created, a partner removed.
fn plan() -> Plan {
    let e1 = "edge1.contoso.example";
    let mut config = change(
        "edge/edge-hq/edge1.contoso.example/file:/etc/xfed/gateway.toml",
        e1,
        ResourceKind::File,
        Action::Update,
        "content differs",
        "playbooks/lab.yaml:41",
    );
    config.diff = Some(
        "--- live\n+++ spec\n@@ -1,2 +1,2 @@\n-port = 5268\n+port = 5269\n domains = [\"contoso.example\"] # <&>\n"
            .into(),
    );
    config.attrs = vec![AttrChange {
        name: "mode".into(),
        before: "0644".into(),
        after: "0640".into(),
    }];
    let binary = change(
        "edge/edge-hq/edge1.contoso.example/binary:/opt/xfed/bin/xfed-gateway",
        e1,
        ResourceKind::Binary,
        Action::Create,
        "absent",
        "playbooks/lab.yaml:41",
    );
    let mut service = change(
        "edge/edge-hq/edge1.contoso.example/service:xfed-gateway",
        e1,
        ResourceKind::Service,
        Action::Update,
        "restart: binary, file:/etc/xfed/gateway.toml changed",
        "playbooks/lab.yaml:41",
    );
    service.service_op = Some(xfed::plan::ServiceOp::Restart);
    let listener = change(
        "edge/edge-hq/edge1.contoso.example/listener:external",
        e1,
        ResourceKind::ListenerCheck,
        Action::NoOp,
        "listening",
        "playbooks/lab.yaml:41",
    );
    let srv = change(
        "dns/contoso.example./SRV:_xmpp-server._tcp.contoso.example.",
        "",
        ResourceKind::DnsRecord,
        Action::Create,
        "absent",
        "playbooks/lab.yaml:60",
    );
    let partner = change(
        "topology/partner:old.example",
        "",
        ResourceKind::Partner,
        Action::Delete,
        "no longer in the spec",
        "playbooks/lab.yaml:70",
    );
    Plan {
        changes: vec![config, binary, service, listener, srv, partner],
        stages: vec![
            Stage {
                kind: StageKind::EdgeBatch {
                    pool: "edge-hq".into(),
                    batch: 1,
                    of: 1,
                },
                hosts: vec![e1.into()],
                changes: vec![1, 0, 2],
                health_gate: true,
            },
            Stage {
                kind: StageKind::Dns,
                hosts: vec!["contoso.example.".into()],
                changes: vec![4],
                health_gate: false,
            },
            Stage {
                kind: StageKind::Policies,
                hosts: vec!["fe1.contoso.example".into()],
                changes: vec![5],
                health_gate: false,
            },
            Stage {
                kind: StageKind::Verify,
                hosts: vec![e1.into()],
                changes: vec![3],
                health_gate: false,
            },
        ],
        access: Vec::<AccessChange>::new(),
        targets: Vec::new(),
        skipped: Vec::new(),
        decommission: Vec::new(),
    }
}

#[test]
fn human() {
    insta::assert_snapshot!(render::human(&plan(), Style { color: false }));
}

#[test]
fn human_in_colour_only_paints_and_adds_nothing_else() {
    let plain = render::human(&plan(), Style { color: false });
    let painted = render::human(&plan(), Style { color: true });
    assert_ne!(plain, painted);
    let stripped = {
        let mut out = String::new();
        let mut rest = painted.as_str();
        while let Some(at) = rest.find("\x1b[") {
            out.push_str(&rest[..at]);
            let end = rest[at..].find('m').map_or(rest.len(), |m| at + m + 1);
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    };
    assert_eq!(stripped, plain);
}

#[test]
fn json() {
    insta::assert_snapshot!(render::json(&plan()));
}

#[test]
fn junit() {
    insta::assert_snapshot!(ci::junit(&plan(), Path::new("playbooks/lab.yaml")));
}

#[test]
fn github() {
    insta::assert_snapshot!(ci::github(&plan()));
}

fn listener(host: &str, kind: ListenerKind, address: &str, ok: bool, state: &str) -> VerifyRow {
    VerifyRow {
        host: host.into(),
        listener: kind,
        address: address.into(),
        ok,
        state: state.into(),
        cert_names: if kind == ListenerKind::External && ok {
            vec!["contoso.example".into(), "xmpp1.contoso.example".into()]
        } else {
            Vec::new()
        },
        cert_not_after: (kind == ListenerKind::External && ok).then_some(1_000_000 + 90 * 86_400),
        topology_version: (kind == ListenerKind::Admin).then(|| "0123456789abcdef".into()),
    }
}

#[test]
fn verify_table_from_a_fixed_world() {
    let e1 = "edge1.contoso.example";
    let e2 = "edge2.contoso.example";
    let listeners = vec![
        listener(
            e1,
            ListenerKind::External,
            "198.51.100.101:5269",
            true,
            "listening, XMPP STARTTLS ok",
        ),
        listener(
            e1,
            ListenerKind::Internal,
            "203.0.113.101:23456",
            true,
            "listening, XMPP STARTTLS ok",
        ),
        listener(
            e1,
            ListenerKind::Admin,
            "203.0.113.101:8089",
            true,
            "listening, /status: binary 0123456789ab",
        ),
        listener(
            e2,
            ListenerKind::External,
            "198.51.100.102:5269",
            false,
            "not listening on the host (ss)",
        ),
    ];
    let topology = vec![
        TopologyRow {
            server: "fe1.contoso.example".into(),
            role: "front-end",
            seen: "0123456789abcdef".into(),
            ok: true,
        },
        TopologyRow {
            server: e2.into(),
            role: "gateway",
            seen: "(none)".into(),
            ok: false,
        },
    ];
    let dns = vec![DnsRow {
        check: "SRV _xmpp-server._tcp.contoso.example.".into(),
        server: "198.51.100.53:53".into(),
        ok: true,
        detail: "10 100 5269 xmpp1.contoso.example. (ttl 300)".into(),
    }];
    let (text, failed) = render_verify(&VerifyReport {
        listeners: &listeners,
        topology: &topology,
        want_topology: "0123456789abcdef",
        dns: Some(&dns),
        now_unix: 1_000_000,
    });
    assert_eq!(failed, 2, "{text}");
    insta::assert_snapshot!(text);
}

/// A document with one policy, `global`, with these (federation, public
/// cloud, XMPP) flags.
fn global_only(flags: (bool, bool, bool)) -> xfed::topology::Topology {
    xfed::topology::Topology {
        version: String::new(),
        sip_domains: Vec::new(),
        xmpp_domains: vec!["contoso.example".into()],
        sites: Vec::new(),
        frontend_pools: Vec::new(),
        edge_pools: Vec::new(),
        policies: vec![xfed::topology::Policy {
            identity: "global".into(),
            scope: xfed::spec::PolicyScope::Global,
            enable_federation_access: flags.0,
            enable_public_cloud_access: flags.1,
            enable_xmpp_access: flags.2,
        }],
        grants: Vec::new(),
        partners: Vec::new(),
    }
}

#[test]
fn human_names_the_deciding_flag_per_partner_kind() {
    let before = global_only((true, false, true));
    let after = global_only((true, true, true));
    let mut p = plan();
    p.access = xfed::plan::access::access_changes(Some(&before), &after);
    let text = render::human(&p, Style { color: false });
    let section = &text[text
        .find("Effective external access changes:")
        .expect("section")..];
    assert!(
        section.starts_with(
            "Effective external access changes:\n\
             \x20 (every other user): policy `global` (global policy) → policy `global` (global policy)\n\
             \x20     federated, trusted partners: allowed (`enable_federation_access` on)\n\
             \x20     public_verified, public_unverified partners: refused (`enable_public_cloud_access` off) → allowed (`enable_public_cloud_access` on)\n"
        ),
        "{section}"
    );
    // XMPP off: every kind refused by it, whatever the other flags say.
    p.access = xfed::plan::access::access_changes(None, &global_only((true, true, false)));
    let text = render::human(&p, Style { color: false });
    assert!(
        text.contains(
            "  (every other user): (not published) → policy `global` (global policy)\n\
             \x20     federated, trusted partners: refused (`enable_xmpp_access` off)\n\
             \x20     public_verified, public_unverified partners: refused (`enable_xmpp_access` off)\n"
        ),
        "{text}"
    );
    // The JSON form carries the same per kind.
    let json: serde_json::Value = serde_json::from_str(&render::json(&p)).expect("JSON");
    assert_eq!(
        json["access"][0]["after"]["partner_kinds"]["public_verified"],
        serde_json::json!({ "allowed": false, "decided_by": "enable_xmpp_access" })
    );
}

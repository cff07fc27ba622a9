//! The planner's decisions, without a network: desired state + facts →
//! changes, handlers and stage order, and the rendered plan (snapshots).

use std::collections::HashMap;
use std::path::PathBuf;

use xfed::output::{Style, render};
use xfed::plan::diff::sha256_hex;
use xfed::plan::{
    self, Action, BinarySpec, Desired, FileFact, FileSpec, ListenerFact, ListenerSpec, Manager,
    Notify, Observed, Phase, Resource, ServiceFact, ServiceOp, ServiceSpec, UserFact, UserSpec,
};
use xfed::spec::{Origin, Role};

const CONFIG: &str = "domains = [\"contoso.example\"]\n[external]\nport = 5269\n";

fn origin(line: usize) -> Origin {
    Origin {
        file: PathBuf::from("lab.yaml"),
        line,
        col: 7,
        field: "edge_pools[0].servers[0]".into(),
    }
}

/// The gateway's resources on one edge host, as the module expands them.
fn edge(host: &str, pool: &str) -> Vec<Resource> {
    let prefix = format!("edge/{pool}/{host}");
    let svc = format!("{prefix}/service:xfed-gateway");
    let r = |address: String, phase, desired, notifies| Resource {
        address,
        host: host.into(),
        role: Role::Edge,
        pool: pool.into(),
        phase,
        desired,
        origin: origin(33),
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
            Desired::File(FileSpec {
                path: "/etc/xfed/gateway.toml".into(),
                content: CONFIG.into(),
                mode: 0o640,
                owner: "root".into(),
                group: "root".into(),
                sensitive: false,
                reload_scope: None,
            }),
            Some((svc.clone(), Notify::Restart)),
        ),
        r(
            format!("{prefix}/file:/etc/xfed/policy.toml"),
            Phase::Edge,
            Desired::File(FileSpec {
                path: "/etc/xfed/policy.toml".into(),
                content: "[[partners]]\ndomain = \"fabrikam.example\"\n".into(),
                mode: 0o640,
                owner: "root".into(),
                group: "root".into(),
                sensitive: false,
                reload_scope: None,
            }),
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
                address: "198.51.100.101".parse().expect("ip"),
                port: 5269,
                service: svc,
            }),
            None,
        ),
    ]
}

fn fact(content: &str, mode: u32) -> FileFact {
    FileFact {
        mode,
        owner: "root".into(),
        group: "root".into(),
        size: content.len() as u64,
        sha256: sha256_hex(content.as_bytes()),
        content: Some(content.into()),
    }
}

/// Facts of a host where everything is deployed and running.
fn in_sync(resources: &[Resource]) -> HashMap<String, Observed> {
    resources
        .iter()
        .map(|r| {
            let o = match &r.desired {
                Desired::File(f) => Observed::File(Some(fact(&f.content, f.mode))),
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
                    running_user: s.user.clone(),
                }),
                Desired::User(_) => Observed::User(UserFact { uid: Some(999) }),
                Desired::Listener(_) => Observed::Listener(ListenerFact { listening: true }),
                // The fixture's certificate has the csr issuer: in sync is
                // its request waiting for the CA.
                Desired::Certificate(c) => {
                    let key = rcgen::KeyPair::generate().expect("key");
                    Observed::Certificate(xfed::certs::CertFact {
                        pending_csr: Some(
                            xfed::certs::build::csr_pem(&key, &c.subject, &c.sans).expect("csr"),
                        ),
                        ..Default::default()
                    })
                }
                Desired::Gone(_) => Observed::File(None),
            };
            (r.address.clone(), o)
        })
        .collect()
}

fn fresh(resources: &[Resource]) -> HashMap<String, Observed> {
    resources
        .iter()
        .map(|r| {
            let o = match &r.desired {
                Desired::File(_) => Observed::File(None),
                Desired::Binary(_) => Observed::Binary(None),
                Desired::Service(_) => Observed::Service(ServiceFact {
                    running: false,
                    pid: None,
                    running_sha256: None,
                    running_user: None,
                }),
                Desired::Listener(_) => Observed::Listener(ListenerFact { listening: false }),
                Desired::Certificate(_) => Observed::Certificate(Default::default()),
                Desired::User(_) => Observed::User(UserFact { uid: None }),
                Desired::Gone(_) => Observed::File(None),
            };
            (r.address.clone(), o)
        })
        .collect()
}

fn actions(p: &plan::Plan) -> Vec<(String, Action, String)> {
    p.actionable()
        .map(|c| {
            (
                plan::plan::short_address(&c.address),
                c.action,
                c.reason.clone(),
            )
        })
        .collect()
}

#[test]
fn fresh_host_gets_everything_created_and_the_service_started() {
    let rs = edge("edge1.contoso.example", "edge-hq");
    let p = plan::build(&rs, &fresh(&rs), &["edge-hq".into()], 1);
    assert_eq!(
        actions(&p),
        vec![
            (
                "binary:/opt/xfed/bin/xfed-gateway".into(),
                Action::Create,
                "absent".into()
            ),
            (
                "file:/etc/xfed/gateway.toml".into(),
                Action::Create,
                "absent".into()
            ),
            (
                "file:/etc/xfed/policy.toml".into(),
                Action::Create,
                "absent".into()
            ),
            (
                "service:xfed-gateway".into(),
                Action::Create,
                "not running".into()
            ),
        ]
    );
    assert_eq!(
        p.summary(),
        plan::Summary {
            add: 4,
            change: 0,
            destroy: 0
        }
    );
}

#[test]
fn in_sync_host_has_no_changes_and_says_why() {
    let rs = edge("edge1.contoso.example", "edge-hq");
    let p = plan::build(&rs, &in_sync(&rs), &["edge-hq".into()], 1);
    assert!(!p.has_changes());
    let reasons: Vec<&str> = p.changes.iter().map(|c| c.reason.as_str()).collect();
    assert_eq!(
        reasons,
        vec![
            "sha256 matches",
            "content, mode and owner match",
            "content, mode and owner match",
            "running",
            "listening"
        ]
    );
    assert_eq!(
        render::human(&p, Style { color: false }),
        "No changes. The live world matches the spec.\n"
    );
}

#[test]
fn edited_config_updates_with_a_diff_and_restarts_once() {
    let rs = edge("edge1.contoso.example", "edge-hq");
    let mut obs = in_sync(&rs);
    obs.insert(
        "edge/edge-hq/edge1.contoso.example/file:/etc/xfed/gateway.toml".into(),
        Observed::File(Some(fact(
            "domains = [\"contoso.example\"]\n[external]\nport = 5270\n",
            0o644,
        ))),
    );
    let p = plan::build(&rs, &obs, &["edge-hq".into()], 1);
    assert_eq!(
        actions(&p),
        vec![
            (
                "file:/etc/xfed/gateway.toml".into(),
                Action::Update,
                "content and mode differ".into()
            ),
            (
                "service:xfed-gateway".into(),
                Action::Update,
                "file:/etc/xfed/gateway.toml changed".into()
            ),
        ]
    );
    insta::assert_snapshot!("edited_config", render::human(&p, Style { color: false }));
}

#[test]
fn policy_change_reloads_and_binary_change_restarts() {
    let rs = edge("edge1.contoso.example", "edge-hq");
    let mut obs = in_sync(&rs);
    obs.insert(
        "edge/edge-hq/edge1.contoso.example/file:/etc/xfed/policy.toml".into(),
        Observed::File(Some(fact("", 0o640))),
    );
    let p = plan::build(&rs, &obs, &["edge-hq".into()], 1);
    let svc = p
        .changes
        .iter()
        .find(|c| c.kind == "service")
        .expect("service");
    assert_eq!(
        (svc.action, svc.service_op),
        (Action::Update, Some(ServiceOp::Reload))
    );

    // A binary change on top: restart wins over reload, and happens once.
    obs.insert(
        "edge/edge-hq/edge1.contoso.example/binary:/opt/xfed/bin/xfed-gateway".into(),
        Observed::Binary(Some(FileFact {
            mode: 0o755,
            owner: "root".into(),
            group: "root".into(),
            size: 9,
            sha256: "a".repeat(64),
            content: None,
        })),
    );
    let p = plan::build(&rs, &obs, &["edge-hq".into()], 1);
    let services: Vec<_> = p.changes.iter().filter(|c| c.kind == "service").collect();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0].service_op, Some(ServiceOp::Restart));
    assert_eq!(
        services[0].reason,
        "binary:/opt/xfed/bin/xfed-gateway changed"
    );
}

#[test]
fn a_dialback_rotation_in_the_main_file_reloads_anything_else_there_restarts() {
    let mut rs = edge("edge1.contoso.example", "edge-hq");
    let rotating = format!(
        "{CONFIG}[dialback]\nsecret_file = \"/etc/xfed/dialback.secret\"\nprevious_secret_file = \"/etc/xfed/dialback.previous\"\n"
    );
    let address = "edge/edge-hq/edge1.contoso.example/file:/etc/xfed/gateway.toml";
    for r in &mut rs {
        if let Desired::File(f) = &mut r.desired
            && r.address == address
        {
            f.content = rotating.clone();
            f.reload_scope = Some(plan::ReloadScope::GatewayConfig);
        }
    }
    let service = |before: &str| {
        let mut obs = in_sync(&rs);
        obs.insert(address.into(), Observed::File(Some(fact(before, 0o640))));
        let p = plan::build(&rs, &obs, &["edge-hq".into()], 1);
        let svc = p
            .changes
            .iter()
            .find(|c| c.kind == "service")
            .expect("service")
            .clone();
        (svc.action, svc.service_op, svc.reason)
    };
    // Naming the previous secret (before: dialback with the current only).
    let current = format!("{CONFIG}[dialback]\nsecret_file = \"/etc/xfed/dialback.secret\"\n");
    assert_eq!(
        service(&current),
        (
            Action::Update,
            Some(ServiceOp::Reload),
            "file:/etc/xfed/gateway.toml changed".into()
        )
    );
    // Dialback where there was none: the same.
    assert_eq!(service(CONFIG).1, Some(ServiceOp::Reload));
    // A listener moved along with it: a restart.
    assert_eq!(
        service(&current.replace("5269", "5270")).1,
        Some(ServiceOp::Restart)
    );
}

#[test]
fn replaced_running_program_and_silent_listener_are_drift() {
    let rs = edge("edge1.contoso.example", "edge-hq");
    let svc = "edge/edge-hq/edge1.contoso.example/service:xfed-gateway".to_string();
    let mut obs = in_sync(&rs);
    obs.insert(
        svc.clone(),
        Observed::Service(ServiceFact {
            running: true,
            pid: Some(7),
            running_sha256: Some("c".repeat(64)),
            running_user: None,
        }),
    );
    let p = plan::build(&rs, &obs, &["edge-hq".into()], 1);
    assert_eq!(
        actions(&p),
        vec![(
            "service:xfed-gateway".into(),
            Action::Update,
            "the running program is not the installed binary".into()
        )]
    );

    let mut obs = in_sync(&rs);
    obs.insert(
        "edge/edge-hq/edge1.contoso.example/listener:external".into(),
        Observed::Listener(ListenerFact { listening: false }),
    );
    let p = plan::build(&rs, &obs, &["edge-hq".into()], 1);
    assert_eq!(
        actions(&p),
        vec![(
            "service:xfed-gateway".into(),
            Action::Update,
            "198.51.100.101:5269 not listening".into()
        )]
    );
}

#[test]
fn sensitive_content_is_never_shown() {
    let mut rs = edge("edge1.contoso.example", "edge-hq");
    if let Desired::File(f) = &mut rs[1].desired {
        f.sensitive = true;
        f.content = "api_key = \"hunter2-secret\"\n".into();
    }
    let p = plan::build(&rs, &fresh(&rs), &["edge-hq".into()], 1);
    let text = render::human(&p, Style { color: false }) + &render::json(&p);
    assert!(!text.contains("hunter2-secret"), "{text}");
    assert!(text.contains("(sensitive) content changes"));
}

#[test]
fn pools_roll_one_server_at_a_time_after_the_front_ends() {
    let mut rs = edge("edge1.contoso.example", "edge-hq");
    rs.extend(edge("edge2.contoso.example", "edge-hq"));
    rs.extend(edge("edge3.contoso.example", "edge-hq"));
    rs.extend(edge("edge1.dr.contoso.example", "edge-dr"));
    rs.push(Resource {
        address: "fe/fe-hq/fe1.contoso.example/file:/etc/xfed/topology.json".into(),
        host: "fe1.contoso.example".into(),
        role: Role::Frontend,
        pool: "fe-hq".into(),
        phase: Phase::Frontend,
        desired: Desired::File(FileSpec {
            path: "/etc/xfed/topology.json".into(),
            content: "{}\n".into(),
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            sensitive: false,
            reload_scope: None,
        }),
        origin: origin(20),
        notifies: None,
    });
    let pools = vec!["edge-hq".to_string(), "edge-dr".to_string()];
    let p = plan::build(&rs, &fresh(&rs), &pools, 2);
    let stages: Vec<(String, Vec<String>, bool)> = p
        .stages
        .iter()
        .map(|s| (s.name(), s.hosts.clone(), s.health_gate))
        .collect();
    assert_eq!(
        stages,
        vec![
            (
                "front-end".into(),
                vec!["fe1.contoso.example".into()],
                false
            ),
            (
                "edge-hq 1/2".into(),
                vec![
                    "edge1.contoso.example".into(),
                    "edge2.contoso.example".into()
                ],
                true
            ),
            (
                "edge-hq 2/2".into(),
                vec!["edge3.contoso.example".into()],
                true
            ),
            (
                "edge-dr 1/1".into(),
                vec!["edge1.dr.contoso.example".into()],
                true
            ),
            (
                "verify".into(),
                vec![
                    "edge1.contoso.example".into(),
                    "edge2.contoso.example".into(),
                    "edge3.contoso.example".into(),
                    "edge1.dr.contoso.example".into()
                ],
                false
            ),
        ]
    );
    // Within a batch, each host's binary and files come before its restart.
    let first: Vec<String> = p.stages[1]
        .changes
        .iter()
        .map(|&i| plan::plan::short_address(&p.changes[i].address))
        .collect();
    assert_eq!(
        first[..4],
        [
            "binary:/opt/xfed/bin/xfed-gateway".to_string(),
            "file:/etc/xfed/gateway.toml".into(),
            "file:/etc/xfed/policy.toml".into(),
            "service:xfed-gateway".into()
        ]
    );
}

#[test]
fn a_saved_plan_goes_stale_when_a_touched_resource_changes() {
    let rs = edge("edge1.contoso.example", "edge-hq");
    let mut obs = in_sync(&rs);
    let cfg = "edge/edge-hq/edge1.contoso.example/file:/etc/xfed/gateway.toml".to_string();
    obs.insert(cfg.clone(), Observed::File(Some(fact("old\n", 0o640))));
    let saved = plan::build(&rs, &obs, &["edge-hq".into()], 1);
    assert!(plan::saved::staleness(&saved, &saved.clone()).is_empty());

    obs.insert(
        cfg.clone(),
        Observed::File(Some(fact("edited again\n", 0o640))),
    );
    let now = plan::build(&rs, &obs, &["edge-hq".into()], 1);
    assert_eq!(
        plan::saved::staleness(&saved, &now),
        vec![format!(
            "{cfg}: changed on the host since the plan was made"
        )]
    );
}

#[test]
fn json_plan_is_stable_and_machine_readable() {
    let rs = edge("edge1.contoso.example", "edge-hq");
    let p = plan::build(&rs, &fresh(&rs), &["edge-hq".into()], 1);
    let v: serde_json::Value = serde_json::from_str(&render::json(&p)).expect("json");
    assert_eq!(v["format_version"], 2);
    assert_eq!(v["changes_present"], true);
    assert_eq!(v["stages"][0]["name"], "edge-hq 1/1");
    assert_eq!(v["stages"][0]["kind"], "edge_batch");
    assert_eq!(v["stages"][0]["pool"], "edge-hq");
    assert_eq!(v["summary"]["add"], 4);
    assert_eq!(v["changes"][0]["action"], "create");
    assert_eq!(v["changes"][0]["origin"], "lab.yaml:33");
}

#[test]
fn what_a_manifest_lists_but_the_spec_lost_is_destroyed() {
    let mut rs = edge("edge1.contoso.example", "edge-hq");
    let entry = plan::ManifestEntry::File {
        address: "edge/edge-hq/edge1.contoso.example/file:/etc/xfed/old.toml".into(),
        path: "/etc/xfed/old.toml".into(),
    };
    let mut gone = rs[1].clone();
    gone.address = entry.address().to_string();
    gone.desired = entry.to_gone();
    gone.notifies = None;
    rs.push(gone);
    let p = plan::build(&rs, &in_sync(&rs), &["edge-hq".into()], 1);
    assert_eq!(
        actions(&p),
        vec![(
            "file:/etc/xfed/old.toml".to_string(),
            Action::Delete,
            "no longer in the spec".to_string()
        )]
    );
    assert_eq!(
        p.summary(),
        plan::Summary {
            add: 0,
            change: 0,
            destroy: 1
        }
    );
    assert!(
        render::human(&p, Style { color: false })
            .contains("  - edge/edge-hq/edge1.contoso.example/file:/etc/xfed/old.toml")
    );
}

#[test]
fn a_gateway_replacement_restarts_it_though_nothing_differs() {
    let rs = edge("edge1.contoso.example", "edge-hq");
    let mut rs2 = edge("edge2.contoso.example", "edge-hq");
    let mut all = rs.clone();
    all.append(&mut rs2);
    let replace = [plan::Replace::Gateway("edge1.contoso.example".into())];
    let p = plan::build_rollout(&all, &in_sync(&all), &[("edge-hq".into(), 1)], &replace);
    let changed: Vec<_> = p.changes.iter().filter(|c| c.action.is_change()).collect();
    assert_eq!(changed.len(), 1, "{changed:#?}");
    let c = changed[0];
    assert_eq!(c.host, "edge1.contoso.example");
    assert_eq!(c.service_op, Some(ServiceOp::Restart));
    assert_eq!(
        c.reason,
        "replacement requested (--replace gateway:edge1.contoso.example)"
    );
    // It rolls like any change: in its batch, behind the health gate.
    let stage = p
        .stages
        .iter()
        .find(|s| s.hosts == ["edge1.contoso.example"])
        .expect("edge1's stage");
    assert!(stage.health_gate);
}

#[test]
fn a_targeted_plan_keeps_one_pool_and_lists_what_it_skipped() {
    let mut all = edge("edge1.contoso.example", "edge-hq");
    all.extend(edge("edge3.contoso.example", "edge-br"));
    let full = plan::build_rollout(
        &all,
        &fresh(&all),
        &[("edge-hq".into(), 1), ("edge-br".into(), 1)],
        &[],
    );
    let pool_of = |h: &str| {
        Some(
            if h == "edge3.contoso.example" {
                "edge-br"
            } else {
                "edge-hq"
            }
            .to_string(),
        )
    };
    let t = plan::target::restrict(
        full.clone(),
        &["pool:edge-br".parse().expect("target")],
        &pool_of,
    );
    assert!(!t.changes.is_empty());
    assert!(
        t.changes.iter().all(|c| c.host == "edge3.contoso.example"),
        "{t:#?}"
    );
    assert!(t.stages.iter().all(|s| s.pool() != Some("edge-hq")));
    let skipped_hq = full
        .changes
        .iter()
        .filter(|c| c.host == "edge1.contoso.example" && c.action.is_change())
        .count();
    assert_eq!(t.skipped.len(), skipped_hq);
    assert!(
        t.skipped
            .iter()
            .all(|a| a.contains("edge1.contoso.example"))
    );
    // Stage indices point at the kept changes.
    for s in &t.stages {
        for &i in &s.changes {
            assert!(i < t.changes.len());
        }
    }
    let text = render::human(&t, Style { color: false });
    assert!(
        text.contains(
            "Warning: this plan is restricted to pool:edge-br and what it needs; it is partial."
        ),
        "{text}"
    );
    assert!(text.contains("change(s) elsewhere are left out"), "{text}");
    // A saved plan carries its targets.
    let json: serde_json::Value = serde_json::from_str(&render::json(&t)).expect("json");
    assert_eq!(json["targets"][0]["kind"], "pool");
    assert_eq!(json["targets"][0]["name"], "edge-br");
}

#[test]
fn a_file_target_brings_the_service_that_picks_it_up() {
    let all = edge("edge1.contoso.example", "edge-hq");
    let mut seen = in_sync(&all);
    // policy.toml edited on the host: a reload is needed.
    let policy = all
        .iter()
        .find(|r| r.address.ends_with("/policy.toml"))
        .expect("policy file");
    seen.insert(
        policy.address.clone(),
        Observed::File(Some(fact("edited by hand\n", 0o640))),
    );
    let full = plan::build_rollout(&all, &seen, &[("edge-hq".into(), 1)], &[]);
    let t = plan::target::restrict(full, &["topology".parse().expect("target")], &|_| {
        Some("edge-hq".into())
    });
    let kinds: Vec<_> = t
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .map(|c| (c.kind, c.service_op))
        .collect();
    assert!(
        kinds.contains(&(xfed::plan::ResourceKind::File, None)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(xfed::plan::ResourceKind::Service, Some(ServiceOp::Reload))),
        "{kinds:?}"
    );
}

/// The edge fixture with the gateway's user in front, as the module
/// expands it.
fn edge_with_user(host: &str, pool: &str) -> Vec<Resource> {
    let mut rs = edge(host, pool);
    let mut user = rs[0].clone();
    user.address = format!("edge/{pool}/{host}/user:xfed-gateway");
    user.desired = Desired::User(UserSpec {
        name: "xfed-gateway".into(),
        home: "/var/lib/xfed".into(),
    });
    user.notifies = None;
    rs.insert(0, user);
    rs
}

#[test]
fn the_gateway_user_is_created_before_the_files_that_name_its_group() {
    let rs = edge_with_user("edge1.contoso.example", "edge-hq");
    let p = plan::build(&rs, &fresh(&rs), &["edge-hq".into()], 1);
    let got = actions(&p);
    assert_eq!(
        got[0],
        (
            "user:xfed-gateway".into(),
            Action::Create,
            "no such user".into()
        ),
        "{got:?}"
    );
    // A user that exists is left as it is, whatever its uid.
    let p = plan::build(&rs, &in_sync(&rs), &["edge-hq".into()], 1);
    assert_eq!(actions(&p), vec![], "in sync");
    let user = p
        .changes
        .iter()
        .find(|c| c.kind == "user")
        .expect("the user is planned");
    assert_eq!(
        (user.action, user.reason.as_str()),
        (Action::NoOp, "exists (uid 999)")
    );
}

#[test]
fn a_gateway_running_as_root_is_restarted_as_its_user() {
    let rs = edge_with_user("edge1.contoso.example", "edge-hq");
    let svc = "edge/edge-hq/edge1.contoso.example/service:xfed-gateway".to_string();
    let mut obs = in_sync(&rs);
    obs.insert(
        svc,
        Observed::Service(ServiceFact {
            running: true,
            pid: Some(7),
            running_sha256: None,
            running_user: Some("root".into()),
        }),
    );
    let p = plan::build(&rs, &obs, &["edge-hq".into()], 1);
    assert_eq!(
        actions(&p),
        vec![(
            "service:xfed-gateway".into(),
            Action::Update,
            "runs as `root`, not as `xfed-gateway`".into()
        )]
    );
    let c = p
        .changes
        .iter()
        .find(|c| c.kind == "service")
        .expect("service");
    assert_eq!(c.service_op, Some(ServiceOp::Restart));
}

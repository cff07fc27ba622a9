//! Lync's partner negotiation settings as the gateways get them, without a
//! network: what expansion renders for `auth`, `additional_domains`,
//! `keepalive` and `gateway.dialback`, that the dialback secrets are files
//! only root and the gateway's group read, whose content no plan, JSON plan
//! or saved plan shows, and that a partner setting changed is a reload, not
//! a restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use xfed::modules::{self, Artifact};
use xfed::output::{Style, render};
use xfed::plan::diff::sha256_hex;
use xfed::plan::{
    self, Action, Desired, FileFact, ListenerFact, Notify, Observed, Resource, ServiceFact,
    ServiceOp, UserFact,
};
use xfed::spec::{self, MapInputs, Role, Source};

const BASE: &str = include_str!("fixtures/base.yaml");
const SECRET: &str = "current-dialback-secret-7f3a9c";
const PREVIOUS: &str = "previous-dialback-secret-41d2e8";
const OLD: &str = "an-older-secret-on-the-host-0b5e";

/// The base spec with `partners` replaced by `partners` (YAML lines) and
/// `gateway` appended.
fn spec_with(partners: &str, gateway: &str) -> spec::Spec {
    let (head, _) = BASE.split_once("partners:\n").expect("base has partners");
    let text = format!("{head}partners:\n{partners}{gateway}");
    let mut inputs = MapInputs::default();
    inputs
        .env
        .insert("PDNS_API_KEY".into(), "pdns-key-1".into());
    inputs.env.insert("DB_SECRET".into(), SECRET.into());
    inputs.files.insert(
        PathBuf::from("/secrets/dialback.previous"),
        format!("{PREVIOUS}\n"),
    );
    match spec::load(&Source::new("spec.yaml", text.as_str()), Arc::new(inputs)) {
        Ok(loaded) => loaded.spec,
        Err(e) => panic!("the spec is valid:\n{e}\n{text}"),
    }
}

const PARTNERS: &str = "  - domain: fabrikam.example\n    auth: either\n    additional_domains: [conference.fabrikam.example]\n  - { domain: litware.example, kind: public_unverified, keepalive: false }\n  - { domain: tailspin.example, kind: trusted }\n";
const DIALBACK: &str = "gateway:\n  dialback:\n    secret: \"{{ env('DB_SECRET') }}\"\n    previous_secret: \"{{ file('/secrets/dialback.previous') }}\"\n  limits:\n    keepalive_interval_secs: 45\n";

/// Every resource but certificates (their facts need a CA; they are not
/// what this file is about).
fn expand(spec: &spec::Spec) -> Vec<Resource> {
    let artifacts = HashMap::from([(
        "gateway".to_string(),
        Artifact {
            path: PathBuf::from("target/release/xfed-gateway"),
            sha256: "0".repeat(64),
            size: 1,
        },
    )]);
    modules::expand(spec, &artifacts, &HashMap::new())
        .expect("expands")
        .into_iter()
        .filter(|r| !matches!(r.desired, Desired::Certificate(_)))
        .collect()
}

fn edge_file<'a>(rs: &'a [Resource], path: &str) -> Option<(&'a Resource, &'a plan::FileSpec)> {
    rs.iter().find_map(|r| match &r.desired {
        Desired::File(f) if f.path == path && r.role == Role::Edge => Some((r, f)),
        _ => None,
    })
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

/// Facts of hosts where `rs` is deployed and running.
fn in_sync(rs: &[Resource]) -> HashMap<String, Observed> {
    rs.iter()
        .map(|r| {
            let o = match &r.desired {
                Desired::File(f) => Observed::File(Some(FileFact {
                    owner: f.owner.clone(),
                    group: f.group.clone(),
                    ..fact(&f.content, f.mode)
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
                    running_user: s.user.clone(),
                }),
                Desired::Listener(_) => Observed::Listener(ListenerFact { listening: true }),
                Desired::User(_) => Observed::User(UserFact { uid: Some(999) }),
                Desired::Certificate(_) | Desired::Gone(_) => Observed::File(None),
            };
            (r.address.clone(), o)
        })
        .collect()
}

#[test]
fn the_gateway_files_carry_each_partner_setting_and_only_the_secrets_paths() {
    let spec = spec_with(PARTNERS, DIALBACK);
    let rs = expand(&spec);
    let (_, policy) = edge_file(&rs, "/etc/xfed/policy.toml").expect("policy.toml");
    let partners = policy
        .content
        .split("[[partners]]")
        .skip(1)
        .map(|p| {
            p.split("\n\n")
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect::<Vec<_>>();
    assert_eq!(
        partners,
        vec![
            "domain = \"fabrikam.example\"\nkind = \"federated\"\ntls = \"required\"\nauth = \"either\"\nadditional_domains = [\"conference.fabrikam.example\"]\nkeepalive = true",
            "domain = \"litware.example\"\nkind = \"public_unverified\"\ntls = \"required\"\nauth = \"either\"\nkeepalive = false",
            "domain = \"tailspin.example\"\nkind = \"trusted\"\ntls = \"required\"\nauth = \"external\"\nkeepalive = true",
        ]
    );
    assert!(!policy.sensitive);

    let (_, main) = edge_file(&rs, "/etc/xfed/gateway.toml").expect("gateway.toml");
    assert!(
        main.content.contains(
            "[dialback]\nsecret_file = \"/etc/xfed/dialback.secret\"\nprevious_secret_file = \"/etc/xfed/dialback.previous\"\n"
        ),
        "{}",
        main.content
    );
    assert!(
        main.content.contains("keepalive_interval_secs = 45\n"),
        "{}",
        main.content
    );
    assert!(!main.content.contains(SECRET) && !main.content.contains(PREVIOUS));
    assert!(!main.sensitive);
}

#[test]
fn dialback_secrets_are_sensitive_files_only_the_gateway_reads_that_reload_it() {
    let spec = spec_with(PARTNERS, DIALBACK);
    let rs = expand(&spec);
    for (path, value) in [
        ("/etc/xfed/dialback.secret", SECRET),
        ("/etc/xfed/dialback.previous", PREVIOUS),
    ] {
        let (r, f) = edge_file(&rs, path).unwrap_or_else(|| panic!("{path} is rendered"));
        assert_eq!(f.content, format!("{value}\n"), "{path}");
        assert_eq!(
            (f.mode, f.owner.as_str(), f.group.as_str(), f.sensitive),
            (0o640, "root", spec.gateway.user.as_str(), true),
            "{path}"
        );
        let (service, how) = r.notifies.clone().expect("notifies the gateway");
        assert!(service.ends_with("/service:xfed-gateway"), "{service}");
        assert_eq!(how, Notify::Reload, "{path}");
    }
    // Without a previous secret, no file for it; without dialback, neither.
    let current_only = spec_with(
        PARTNERS,
        "gateway:\n  dialback:\n    secret: \"{{ env('DB_SECRET') }}\"\n",
    );
    let rs = expand(&current_only);
    assert!(edge_file(&rs, "/etc/xfed/dialback.secret").is_some());
    assert!(edge_file(&rs, "/etc/xfed/dialback.previous").is_none());
    let (_, main) = edge_file(&rs, "/etc/xfed/gateway.toml").expect("gateway.toml");
    assert!(!main.content.contains("previous_secret_file"));
    let none = spec_with("  - domain: fabrikam.example\n", "");
    let rs = expand(&none);
    assert!(edge_file(&rs, "/etc/xfed/dialback.secret").is_none());
    let (_, main) = edge_file(&rs, "/etc/xfed/gateway.toml").expect("gateway.toml");
    assert!(!main.content.contains("[dialback]"));
}

/// The secrets, on a fresh host and on one holding another secret, never
/// reach the plan as printed, as JSON, or as saved (`plan -out`).
#[test]
fn no_dialback_secret_reaches_a_plan_its_json_or_a_saved_plan() {
    let spec = spec_with(PARTNERS, DIALBACK);
    let rs = expand(&spec);
    let fresh: HashMap<String, Observed> = rs
        .iter()
        .map(|r| {
            let o = match &r.desired {
                Desired::Binary(_) => Observed::Binary(None),
                Desired::Service(_) => Observed::Service(ServiceFact {
                    running: false,
                    pid: None,
                    running_sha256: None,
                    running_user: None,
                }),
                Desired::Listener(_) => Observed::Listener(ListenerFact { listening: false }),
                Desired::User(_) => Observed::User(UserFact { uid: None }),
                _ => Observed::File(None),
            };
            (r.address.clone(), o)
        })
        .collect();
    let mut rotated = in_sync(&rs);
    for r in &rs {
        if let Desired::File(f) = &r.desired
            && f.path.starts_with("/etc/xfed/dialback.")
        {
            rotated.insert(
                r.address.clone(),
                Observed::File(Some(fact(&format!("{OLD}\n"), 0o644))),
            );
        }
    }
    for (world, facts) in [("fresh", &fresh), ("rotated", &rotated)] {
        let p = plan::build(&rs, facts, &["edge-hq".into()], 1);
        let secret_changes: Vec<&plan::Change> = p
            .changes
            .iter()
            .filter(|c| c.address.contains("/file:/etc/xfed/dialback."))
            .collect();
        assert_eq!(secret_changes.len(), 2, "{world}: {:#?}", p.changes);
        for c in &secret_changes {
            assert!(c.action.is_change(), "{world}: {c:?}");
            let diff = c.diff.as_deref().unwrap_or_default();
            assert!(
                diff.contains("(sensitive) content changes"),
                "{world}: {diff}"
            );
        }
        let saved = plan::saved::SavedPlan {
            xfed_plan: plan::saved::FORMAT,
            xfed_version: "test".into(),
            spec: PathBuf::from("spec.yaml"),
            spec_sha256: String::new(),
            created_unix: 0,
            replace: Vec::new(),
            allow_destroy: false,
            plan: p.clone(),
        };
        let text = render::human(&p, Style { color: false })
            + &render::json(&p)
            + &serde_json::to_string(&saved).expect("saved plan");
        for secret in [SECRET, PREVIOUS, OLD] {
            assert!(!text.contains(secret), "{world}: {secret} in\n{text}");
        }
        if world == "rotated" {
            // The host's files were world-readable and root's group's: the
            // plan says so, and what they become.
            let attrs: Vec<(&str, &str, &str)> = secret_changes
                .iter()
                .flat_map(|c| {
                    c.attrs
                        .iter()
                        .map(|a| (a.name.as_str(), a.before.as_str(), a.after.as_str()))
                })
                .collect();
            assert_eq!(
                attrs,
                vec![
                    ("mode", "0644", "0640"),
                    ("group", "root", "xfed-gateway"),
                    ("mode", "0644", "0640"),
                    ("group", "root", "xfed-gateway"),
                ],
                "{world}"
            );
        }
    }
}

/// Changing how partners authenticate, their extra domains or keepalives
/// changes `policy.toml` alone: the gateways reload it (SIGHUP) and keep
/// their streams; nothing restarts.
#[test]
fn a_partner_setting_changed_is_a_reload_not_a_restart() {
    let before = expand(&spec_with(
        "  - domain: fabrikam.example\n  - { domain: litware.example, kind: public_unverified }\n",
        DIALBACK,
    ));
    let after = expand(&spec_with(PARTNERS, DIALBACK));
    let p = plan::build(&after, &in_sync(&before), &["edge-hq".into()], 1);
    let edge: Vec<(String, Action, Option<ServiceOp>)> = p
        .changes
        .iter()
        .filter(|c| c.action.is_change() && c.address.starts_with("edge/"))
        .map(|c| {
            (
                plan::plan::short_address(&c.address),
                c.action,
                c.service_op,
            )
        })
        .collect();
    assert_eq!(
        edge,
        vec![
            (
                "file:/etc/xfed/policy.toml".to_string(),
                Action::Update,
                None
            ),
            (
                "service:xfed-gateway".to_string(),
                Action::Update,
                Some(ServiceOp::Reload)
            ),
        ],
        "{:#?}",
        p.changes
    );
}

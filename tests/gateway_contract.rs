//! The contract with the gateway on what xfed renders: the gateway's own
//! loader reads the `gateway.toml` and `policy.toml` that expansion
//! produced from a spec full of hostile-but-valid characters, and every
//! string comes back as the spec had it. Without a network: expansion is
//! pure and the loader is the gateway's library.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use xfed::modules::{self, Artifact};
use xfed::plan::Desired;
use xfed::spec::{self, MapInputs, PolicyScope, Source, Users};
use xfed_gateway::config::{Config, Grantees, PolicyScope as GatewayScope};

const BASE: &str = include_str!("fixtures/base.yaml");

/// A site and policy named in several scripts, users whose local parts
/// carry every character TOML, a shell or a template might trip on, and a
/// partner reached through an IPv6 proxy.
fn hostile_spec() -> spec::Spec {
    let text = BASE
        .replacen("  - name: hq\n", "  - name: \"東京-1.hq_Ü\"\n", 1)
        .replacen("    site: hq\n", "    site: \"東京-1.hq_Ü\"\n", 1)
        .replacen(
            "        address: 203.0.113.11\n",
            "        address: 203.0.113.11\n    users:\n      - \"q$(id)#=[a]\\\\b{c}ü+%;|*~!,`@contoso.example\"\n      - \"Ünal.Ω🎉@Contoso.Example\"\n      - \"x]]\\\\n[[sites]]@contoso.example\"\n",
            1,
        )
        .replacen(
            "  - identity: FedPic\n    enable_xmpp_access: true\n",
            "  - identity: FedPic\n    enable_xmpp_access: true\n  - identity: \"Fédé_1.x-東京\"\n    enable_federation_access: true\n  - identity: \"site:東京-1.hq_Ü\"\n    enable_public_cloud_access: true\n  - identity: GLOBAL\n",
            1,
        )
        .replacen(
            "    users: all\n",
            "    users: all\n  - policy: \"Fédé_1.x-東京\"\n    users: [\"{{ '%' }}{{ '{' }}x}#\\\\@contoso.example\"]\n",
            1,
        )
        .replacen(
            "  - domain: fabrikam.example\n",
            "  - domain: fabrikam.example\n    proxy: \"[2001:db8::7]:5269\"\n    kind: public_verified\n    auth: either\n    additional_domains: [\"Conference.Fabrikam.example.\", muc.fabrikam.example]\n    keepalive: false\n  - { domain: litware.example, kind: public_unverified }\n  - { domain: tailspin.example, kind: trusted }\ngateway:\n  dialback:\n    secret: \"{{ env('DIALBACK') }}\"\n    previous_secret: \"{{ env('DIALBACK_BEFORE') }}\"\n  limits:\n    stream_inactivity_timeout_secs: 300\n    keepalive_interval_secs: 299\n",
            1,
        );
    let mut inputs = MapInputs::default();
    inputs.env.insert("PDNS_API_KEY".into(), "k".into());
    inputs
        .env
        .insert("DIALBACK".into(), "\"dialback\\secret\" = 1 # ]]".into());
    inputs.env.insert(
        "DIALBACK_BEFORE".into(),
        "dialback-secret-before-rotation".into(),
    );
    match spec::load(&Source::new("spec.yaml", text.as_str()), Arc::new(inputs)) {
        Ok(loaded) => loaded.spec,
        Err(e) => panic!("the hostile spec is valid:\n{e}\n{text}"),
    }
}

/// The rendered `gateway.toml` and `policy.toml` of the edge server.
fn rendered(spec: &spec::Spec) -> (String, String, String) {
    let artifacts = HashMap::from([(
        "gateway".to_string(),
        Artifact {
            path: PathBuf::from("target/release/xfed-gateway"),
            sha256: "0".repeat(64),
            size: 1,
        },
    )]);
    let resources = modules::expand(spec, &artifacts, &HashMap::new()).expect("expands");
    let file = |name: &str| {
        resources
            .iter()
            .find_map(|r| match &r.desired {
                Desired::File(f) if f.path.ends_with(name) && r.role == spec::Role::Edge => {
                    Some((f.path.clone(), f.content.clone()))
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name} is rendered"))
    };
    let (main_path, main) = file("/gateway.toml");
    let (_, policy) = file("/policy.toml");
    (main_path, main, policy)
}

/// Every sensitive file rendered for the edge server: (path, content).
fn secret_files(spec: &spec::Spec) -> Vec<(String, String)> {
    let artifacts = HashMap::from([(
        "gateway".to_string(),
        Artifact {
            path: PathBuf::from("target/release/xfed-gateway"),
            sha256: "0".repeat(64),
            size: 1,
        },
    )]);
    let mut files: Vec<(String, String)> = modules::expand(spec, &artifacts, &HashMap::new())
        .expect("expands")
        .into_iter()
        .filter_map(|r| match r.desired {
            Desired::File(f) if f.sensitive && r.role == spec::Role::Edge => {
                Some((f.path, f.content))
            }
            _ => None,
        })
        .collect();
    files.sort();
    files
}

/// The spec's way a partner authenticates is the gateway's, value for
/// value: a name xfed writes is one the gateway reads as the same thing.
#[test]
fn each_partner_auth_of_the_spec_is_the_gateways() {
    use xfed_gateway::config::PartnerAuth as Gateway;
    for (ours, theirs) in [
        (spec::PartnerAuth::External, Gateway::External),
        (spec::PartnerAuth::Dialback, Gateway::Dialback),
        (spec::PartnerAuth::Either, Gateway::Either),
    ] {
        assert_eq!(Gateway::parse(ours.as_str()), Some(theirs));
        assert_eq!(ours.may_dialback(), theirs.allows_dialback());
    }
    assert_eq!(Gateway::ALL.len(), 3, "a way the spec cannot write");
}

#[test]
fn every_string_of_the_rendered_policy_file_round_trips() {
    let spec = hostile_spec();
    let (main_path, main, policy) = rendered(&spec);
    let config = Config::parse_with(Path::new(&main_path), main.as_bytes(), &mut |_: &Path| {
        Ok(policy.clone().into_bytes())
    })
    .unwrap_or_else(|e| panic!("the gateway loads what xfed rendered: {e}\n{policy}"));

    assert_eq!(config.domains, spec.xmpp_domains);
    assert_eq!(
        config.topology_version.as_deref(),
        Some(xfed::topology::build(&spec).version.as_str())
    );

    type Row = (String, String, String, Vec<String>, bool, Option<String>);
    let partners: Vec<Row> = config
        .partners
        .iter()
        .map(|p| {
            let proxy = p.proxy.as_ref().map(|a| format!("[{}]:{}", a.host, a.port));
            (
                p.domain.clone(),
                p.kind.as_str().to_string(),
                p.auth.as_str().to_string(),
                p.additional_domains.clone(),
                p.keepalive,
                proxy,
            )
        })
        .collect();
    let want: Vec<Row> = spec
        .partners
        .iter()
        .map(|p| {
            (
                p.domain.clone(),
                p.kind.as_str().to_string(),
                p.auth.as_str().to_string(),
                p.additional_domains.clone(),
                p.keepalive,
                p.proxy.clone(),
            )
        })
        .collect();
    assert_eq!(partners, want);
    assert_eq!(
        partners[0],
        (
            "fabrikam.example".to_string(),
            "public_verified".to_string(),
            "either".to_string(),
            vec![
                "conference.fabrikam.example".to_string(),
                "muc.fabrikam.example".to_string()
            ],
            false,
            Some("[2001:db8::7]:5269".to_string())
        )
    );
    assert_eq!(
        (partners[1].2.as_str(), partners[2].2.as_str()),
        ("either", "external"),
        "Lync's defaults by kind"
    );
    assert_eq!(
        config.limits.keepalive_interval,
        std::time::Duration::from_secs(299)
    );

    // The secrets' files, as named; their content is what the spec gave
    // (the gateway reads the first line), and nowhere else.
    let dialback = config.dialback.as_ref().expect("[dialback]");
    assert_eq!(
        (
            dialback.secret_file.as_path(),
            dialback.previous_secret_file.as_deref()
        ),
        (
            Path::new("/etc/xfed/dialback.secret"),
            Some(Path::new("/etc/xfed/dialback.previous"))
        )
    );
    let files = secret_files(&spec);
    assert_eq!(
        files,
        vec![
            (
                "/etc/xfed/dialback.previous".to_string(),
                "dialback-secret-before-rotation\n".to_string()
            ),
            (
                "/etc/xfed/dialback.secret".to_string(),
                "\"dialback\\secret\" = 1 # ]]\n".to_string()
            ),
        ]
    );
    assert!(!main.contains("dialback\\secret") && !policy.contains("dialback\\secret"));

    let policies: Vec<(String, GatewayScope, bool, bool, bool)> = config
        .policies
        .iter()
        .map(|p| {
            (
                p.identity.clone(),
                p.scope.clone(),
                p.enable_federation_access,
                p.enable_public_cloud_access,
                p.enable_xmpp_access,
            )
        })
        .collect();
    let want: Vec<(String, GatewayScope, bool, bool, bool)> = spec
        .policies
        .iter()
        .map(|p| {
            let scope = match &p.scope {
                PolicyScope::Global => GatewayScope::Global,
                PolicyScope::Site(s) => GatewayScope::Site(s.clone()),
                PolicyScope::Named(_) => GatewayScope::User,
            };
            (
                p.identity.clone(),
                scope,
                p.enable_federation_access,
                p.enable_public_cloud_access,
                p.enable_xmpp_access,
            )
        })
        .collect();
    assert_eq!(policies, want);
    assert_eq!(policies[1].0, "Fédé_1.x-東京");
    assert_eq!(policies[2].1, GatewayScope::Site("東京-1.hq_Ü".into()));

    let grants: Vec<(String, Option<Vec<String>>)> = config
        .grants
        .iter()
        .map(|g| {
            let users = match &g.grantees {
                Grantees::All => None,
                Grantees::Users(u) => Some(u.iter().map(|j| j.to_string()).collect()),
            };
            (g.policy.clone(), users)
        })
        .collect();
    let want: Vec<(String, Option<Vec<String>>)> = spec
        .grants
        .iter()
        .map(|g| {
            let users = match &g.users {
                Users::All => None,
                Users::List(l) => Some(l.clone()),
            };
            (g.policy.clone(), users)
        })
        .collect();
    assert_eq!(grants, want);
    assert_eq!(
        grants[1].1.as_deref(),
        Some(&["%{x}#\\@contoso.example".to_string()][..])
    );

    let sites: Vec<(String, Vec<String>)> = config
        .sites
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.users.iter().map(|u| u.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(
        sites,
        vec![(
            "東京-1.hq_Ü".to_string(),
            vec![
                "q$(id)#=[a]\\b{c}ü+%;|*~!,`@contoso.example".to_string(),
                "ünal.ω🎉@contoso.example".to_string(),
                "x]]\\n[[sites]]@contoso.example".to_string(),
            ]
        )]
    );
    assert_eq!(sites[0].1, spec.frontend_pools[0].users);
}

/// `gateway.limits` (Lync's names) reach the gateway's `[limits]` as the
/// gateway reads them; limits left out keep the gateway's defaults.
#[test]
fn the_edge_limits_in_the_spec_are_the_gateways_limits() {
    let text = BASE.replacen(
        "partners:\n",
        "gateway:\n  limits:\n    connection_limit: 500\n    connection_limit_per_address: 8\n    connection_limit_per_partner: 2\n    stream_establishment_timeout_secs: 5\n    stream_inactivity_timeout_secs: 120\n    max_stanza_size_bytes: 65536\npartners:\n",
        1,
    );
    let mut inputs = MapInputs::default();
    inputs.env.insert("PDNS_API_KEY".into(), "k".into());
    let spec = match spec::load(&Source::new("spec.yaml", text.as_str()), Arc::new(inputs)) {
        Ok(loaded) => loaded.spec,
        Err(e) => panic!("the spec is valid:\n{e}"),
    };
    let (main_path, main, policy) = rendered(&spec);
    let config = Config::parse_with(Path::new(&main_path), main.as_bytes(), &mut |_: &Path| {
        Ok(policy.clone().into_bytes())
    })
    .unwrap_or_else(|e| panic!("the gateway loads what xfed rendered: {e}\n{main}"));
    let l = &config.limits;
    assert_eq!(l.max_connections, 500);
    assert_eq!(l.max_connections_per_ip, 8);
    assert_eq!(l.max_connections_per_partner, 2);
    assert_eq!(l.negotiation_timeout, std::time::Duration::from_secs(5));
    assert_eq!(l.idle_timeout, std::time::Duration::from_secs(120));
    assert_eq!(l.max_stanza_bytes, 65536);
    let defaults = xfed_gateway::config::Limits::default();
    assert_eq!(l.max_depth, defaults.max_depth);
    assert_eq!(l.header_timeout, defaults.header_timeout);
}

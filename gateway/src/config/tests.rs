//! Config validation: one case per rule, each naming the field it reports.

use super::*;
use sha2::{Digest, Sha256};
use std::path::Path;

const VALID: &str = r#"
domains = ["Contoso.Example"]
topology_version = "v7"
[external]
address = "127.0.0.1"
[internal]
address = "127.0.0.2"
[[partners]]
domain = "partner.example"
keepalive = true
[[policies]]
identity = "Global"
scope = "global"
enable_federation_access = true
[[policies]]
identity = "XmppUsers"
[[grants]]
policy = "XmppUsers"
all = true
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/xfed/gateway.toml"), text.as_bytes())
}

/// The fields named by the problems of `text`.
fn bad_fields(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.into_iter().map(|p| p.field).collect()
        }
        Err(other) => vec![other.to_string()],
    }
}

fn with(extra_top: &str, replace: &[(&str, &str)]) -> String {
    let mut text = VALID.to_string();
    for (from, to) in replace {
        assert!(text.contains(from), "{from} not in base config");
        text = text.replacen(from, to, 1);
    }
    format!("{extra_top}\n{text}")
}

#[test]
fn valid_config_resolves_defaults() {
    let c = parse(VALID).expect("valid");
    assert_eq!(c.domains, vec!["contoso.example"]);
    assert_eq!(c.external.address.to_string(), "127.0.0.1:5269");
    assert_eq!(c.internal.address.to_string(), "127.0.0.2:23456");
    assert_eq!(c.admin.address.to_string(), "127.0.0.2:8089");
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.limits.max_stanza_bytes, 262_144);
    assert_eq!(c.external.max_connections_per_ip, 64);
    assert_eq!(c.drain, std::time::Duration::from_secs(10));
    assert_eq!(c.topology_version.as_deref(), Some("v7"));
    assert_eq!(c.partners[0].domain, "partner.example");
    assert_eq!(c.partners[0].auth, PartnerAuth::External);
    assert!(c.partners[0].keepalive);
    assert!(c.partners[0].additional_domains.is_empty());
    assert_eq!(c.dialback, None);
    assert_eq!(
        c.limits.keepalive_interval,
        std::time::Duration::from_secs(60)
    );
    assert_eq!(c.grants[0].grantees, Grantees::All);
    assert_eq!(c.partners[0].kind, PartnerKind::Federated);
    assert_eq!(c.policies[0].scope, PolicyScope::Global);
    assert_eq!(c.policies[1].scope, PolicyScope::User);
    assert_eq!(c.policy_file, None);
    assert_eq!(c.sha256.len(), 64);
    assert!(c.external.certificate.is_none());
}

#[test]
fn example_file_parses() {
    let text = include_str!("../../gateway.example.toml");
    let c = parse(text).expect("gateway.example.toml is valid");
    assert_eq!(c.partners.len(), 2);
    assert_eq!(c.policies.len(), 3);
    assert_eq!(c.policies[1].scope, PolicyScope::Site("hq".into()));
    assert_eq!(c.sites.len(), 1);
    assert_eq!(c.sites[0].name, "hq");
    assert!(c.internal.client_ca.is_some());
    let relay = c.relay.as_ref().expect("the example has [relay]");
    assert_eq!(relay.internal_server.to_string(), "10.0.1.10:5269");
    assert_eq!(
        c.partners[0]
            .proxy
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("xmpp-gw.fabrikam.example:5269")
    );
    // The same file split in two, as xfed deploys it, is the same config.
    let at = text.find("# Federated partners").expect("partners section");
    let main = text[..at].replace("# policy_file = ", "policy_file = ");
    let split = Config::parse_with(
        Path::new("/etc/xfed/gateway.toml"),
        main.as_bytes(),
        &mut |p| {
            assert_eq!(p, Path::new("/etc/xfed/policy.toml"));
            Ok(text.as_bytes()[at..].to_vec())
        },
    )
    .expect("split example is valid");
    assert_eq!(split.partners, c.partners);
    assert_eq!(split.policies, c.policies);
    assert_eq!(split.grants, c.grants);
    assert_eq!(split.sites, c.sites);
}

#[test]
fn each_bad_field_is_named() {
    let cases: Vec<(String, &str)> = vec![
        (
            with("", &[("domains = [\"Contoso.Example\"]", "")]),
            "domains",
        ),
        (with("", &[("[\"Contoso.Example\"]", "[]")]), "domains"),
        (
            with("", &[("[\"Contoso.Example\"]", "[\"bad domain\"]")]),
            "domains[0]",
        ),
        (
            with(
                "",
                &[("[\"Contoso.Example\"]", "[\"a.example\", \"A.example\"]")],
            ),
            "domains[1]",
        ),
        (
            with("", &[("[\"Contoso.Example\"]", "\"contoso.example\"")]),
            "domains",
        ),
        (
            with("", &[("topology_version = \"v7\"", "topology_version = 7")]),
            "topology_version",
        ),
        (with("drain_secs = -1", &[]), "drain_secs"),
        (with("log_level = \"loud\"", &[]), "log_level"),
        (with("colour = \"blue\"", &[]), "colour"),
        (
            with(
                "",
                &[("address = \"127.0.0.1\"", "address = \"localhost\"")],
            ),
            "external.address",
        ),
        (
            with("", &[("address = \"127.0.0.1\"", "adress = \"127.0.0.1\"")]),
            "external.adress",
        ),
        (
            with(
                "",
                &[(
                    "address = \"127.0.0.1\"",
                    "address = \"127.0.0.1\"\nport = 70000",
                )],
            ),
            "external.port",
        ),
        (
            with(
                "",
                &[(
                    "address = \"127.0.0.1\"",
                    "address = \"127.0.0.1\"\ncert = \"/c.pem\"",
                )],
            ),
            "external.key",
        ),
        (
            with(
                "",
                &[(
                    "address = \"127.0.0.1\"",
                    "address = \"127.0.0.1\"\nkey = \"/k.pem\"",
                )],
            ),
            "external.cert",
        ),
        (
            with(
                "",
                &[(
                    "address = \"127.0.0.1\"",
                    "address = \"127.0.0.1\"\nclient_ca = \"/ca.pem\"",
                )],
            ),
            "external.client_ca",
        ),
        (
            with(
                "",
                &[(
                    "address = \"127.0.0.2\"",
                    "address = \"127.0.0.2\"\nclient_ca = \"/ca.pem\"",
                )],
            ),
            "internal.client_ca",
        ),
        (
            with("", &[("[internal]\naddress = \"127.0.0.2\"", "")]),
            "internal",
        ),
        (
            with(
                "",
                &[(
                    "address = \"127.0.0.2\"",
                    "address = \"127.0.0.1\"\nport = 5269",
                )],
            ),
            "internal.port",
        ),
        (
            with("", &[("[internal]", "[admin]\nport = 23456\n[internal]")]),
            "admin.port",
        ),
        (
            with(
                "",
                &[("[internal]", "[admin]\naddress = \"nope\"\n[internal]")],
            ),
            "admin.address",
        ),
        (
            with(
                "",
                &[("[internal]", "[limits]\nmax_stanza_bytes = 12\n[internal]")],
            ),
            "limits.max_stanza_bytes",
        ),
        (
            with(
                "",
                &[(
                    "[internal]",
                    "[limits]\nmax_stanza_bytes = \"big\"\n[internal]",
                )],
            ),
            "limits.max_stanza_bytes",
        ),
        (
            with("", &[("[internal]", "[limits]\nmax_depth = 0\n[internal]")]),
            "limits.max_depth",
        ),
        (
            with(
                "",
                &[(
                    "[internal]",
                    "[limits]\nheader_timeout_secs = 0\n[internal]",
                )],
            ),
            "limits.header_timeout_secs",
        ),
        (
            with(
                "",
                &[("[internal]", "[limits]\nidle_timeout_secs = 0\n[internal]")],
            ),
            "limits.idle_timeout_secs",
        ),
        (
            with(
                "",
                &[(
                    "[internal]",
                    "[limits]\nnegotiation_timeout_secs = 0\n[internal]",
                )],
            ),
            "limits.negotiation_timeout_secs",
        ),
        (
            with(
                "",
                &[("[internal]", "[limits]\nmax_connections = 0\n[internal]")],
            ),
            "limits.max_connections",
        ),
        (
            with(
                "",
                &[(
                    "[internal]",
                    "[limits]\nmax_connections_per_ip = 0\n[internal]",
                )],
            ),
            "limits.max_connections_per_ip",
        ),
        (
            with(
                "",
                &[(
                    "[internal]",
                    "[limits]\nmax_connections_per_partner = 0\n[internal]",
                )],
            ),
            "limits.max_connections_per_partner",
        ),
        (
            with(
                "",
                &[(
                    "[internal]",
                    "[limits]\nmax_stanza_bytes = 20000\nmax_unauthenticated_stanza_bytes = 30000\n[internal]",
                )],
            ),
            "limits.max_unauthenticated_stanza_bytes",
        ),
        (
            with(
                "",
                &[(
                    "[internal]",
                    "[limits]\nmax_stanza_byte = 20000\n[internal]",
                )],
            ),
            "limits.max_stanza_byte",
        ),
        (
            with("", &[("domain = \"partner.example\"", "")]),
            "partners[0].domain",
        ),
        (
            with(
                "",
                &[(
                    "domain = \"partner.example\"",
                    "domain = \"contoso.example\"",
                )],
            ),
            "partners[0].domain",
        ),
        (
            with(
                "",
                &[("keepalive = true", "keepalive = true\ntls = \"optional\"")],
            ),
            "partners[0].tls",
        ),
        (
            with("", &[("keepalive = true", "dialback = \"yes\"")]),
            "partners[0].dialback",
        ),
        (
            with(
                "",
                &[(
                    "keepalive = true",
                    "[[partners]]\ndomain = \"partner.example\"",
                )],
            ),
            "partners[1].domain",
        ),
        (
            with("", &[("scope = \"global\"", "scope = \"galaxy\"")]),
            "policies[0].scope",
        ),
        (
            with("", &[("identity = \"Global\"", "")]),
            "policies[0].identity",
        ),
        (
            with(
                "",
                &[(
                    "[[grants]]",
                    "[[policies]]\nidentity = \"Global\"\nscope = \"user\"\n[[grants]]",
                )],
            ),
            "policies[2].identity",
        ),
        (
            with("", &[("policy = \"XmppUsers\"", "policy = \"Nope\"")]),
            "grants[0].policy",
        ),
        (with("", &[("all = true", "")]), "grants[0].users"),
        (
            with(
                "",
                &[("all = true", "all = true\nusers = [\"a@contoso.example\"]")],
            ),
            "grants[0].users",
        ),
        (
            with(
                "",
                &[("all = true", "users = [\"alice@elsewhere.example\"]")],
            ),
            "grants[0].users[0]",
        ),
        (
            with("", &[("all = true", "users = [\"alice\"]")]),
            "grants[0].users[0]",
        ),
    ];
    for (text, field) in cases {
        let fields = bad_fields(&text);
        assert!(
            fields.iter().any(|f| f == field),
            "expected `{field}` among {fields:?} for:\n{text}"
        );
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = with(
        "log_level = \"loud\"\ndrain_secs = -1",
        &[("scope = \"global\"", "scope = \"x\"")],
    );
    let fields = bad_fields(&text);
    for expected in ["log_level", "drain_secs", "policies[0].scope"] {
        assert!(fields.iter().any(|f| f == expected), "{fields:?}");
    }
}

#[test]
fn typo_gets_a_suggestion() {
    let text = with(
        "",
        &[(
            "[internal]",
            "[limits]\nmax_stanza_byte = 20000\n[internal]",
        )],
    );
    let err = parse(&text).expect_err("typo");
    assert!(
        err.to_string()
            .contains("did you mean `limits.max_stanza_bytes`?"),
        "{err}"
    );
}

#[test]
fn syntax_errors_say_where() {
    let err = parse("domains = [\n").expect_err("bad toml");
    assert!(matches!(err, ConfigError::Syntax { .. }));
    assert!(err.to_string().contains("line"), "{err}");
}

#[test]
fn partner_kind_is_read_with_federated_as_default() {
    let c = parse(&with(
        "",
        &[(
            "keepalive = true",
            "keepalive = true\nkind = \"public_verified\"",
        )],
    ))
    .expect("valid");
    assert_eq!(c.partners[0].kind, PartnerKind::PublicVerified);
    for kind in PartnerKind::ALL {
        let text = with(
            "",
            &[(
                "keepalive = true",
                &format!("keepalive = true\nkind = \"{}\"", kind.as_str()),
            )],
        );
        assert_eq!(parse(&text).expect("valid").partners[0].kind, kind);
    }
    let text = with(
        "",
        &[("keepalive = true", "keepalive = true\nkind = \"friendly\"")],
    );
    assert_eq!(bad_fields(&text), vec!["partners[0].kind"]);
}

/// A policy table with `identity` and, unless `None`, `scope`.
fn policy(identity: &str, scope: Option<&str>) -> String {
    let scope = scope.map_or(String::new(), |s| format!("scope = \"{s}\"\n"));
    with(
        "",
        &[(
            "[[grants]]",
            &format!("[[policies]]\nidentity = \"{identity}\"\n{scope}[[grants]]"),
        )],
    )
}

#[test]
fn policy_scope_follows_the_identity() {
    let cases = [
        ("site:hq", None, PolicyScope::Site("hq".into())),
        ("site:hq", Some("site"), PolicyScope::Site("hq".into())),
        (
            "Site:dublin",
            Some("site"),
            PolicyScope::Site("dublin".into()),
        ),
        ("FedPic", None, PolicyScope::User),
        ("FedPic", Some("user"), PolicyScope::User),
    ];
    for (identity, scope, expected) in cases {
        let c = parse(&policy(identity, scope)).expect("valid");
        assert_eq!(c.policies[2].scope, expected, "{identity}");
        assert_eq!(c.policies[2].identity, identity);
    }
    // `global` in any case is the global policy, with or without `scope`.
    let c = parse(&with("", &[("scope = \"global\"\n", "")])).expect("valid");
    assert_eq!(c.policies[0].scope, PolicyScope::Global);
}

#[test]
fn policy_identity_and_scope_must_agree() {
    let cases = [
        (policy("site:hq", Some("user")), "policies[2].scope"),
        (policy("site:hq", Some("global")), "policies[2].scope"),
        (policy("FedPic", Some("site")), "policies[2].scope"),
        (policy("FedPic", Some("global")), "policies[2].scope"),
        (
            with("", &[("scope = \"global\"", "scope = \"user\"")]),
            "policies[0].scope",
        ),
        (policy("site:", Some("site")), "policies[2].identity"),
        // Names follow `check_name`: nothing that needs escaping anywhere.
        (policy("site: hq", None), "policies[2].identity"),
        (policy("Fed\\\"Pic", None), "policies[2].identity"),
        (policy("Fed\\nPic", None), "policies[2].identity"),
        (policy("site:a:b", None), "policies[2].identity"),
        (policy("realm:x", Some("user")), "policies[2].identity"),
        (policy("global", None), "policies[2].identity"),
        (
            format!(
                "{}\n[[policies]]\nidentity = \"site:hq\"",
                policy("site:hq", None)
            ),
            "policies[3].identity",
        ),
        (
            format!(
                "{}\n[[policies]]\nidentity = \"Site:hq\"",
                policy("site:hq", None)
            ),
            "policies[3].identity",
        ),
    ];
    for (text, field) in cases {
        let fields = bad_fields(&text);
        assert_eq!(fields, vec![field.to_string()], "for:\n{text}");
    }
    let err = parse(&policy("FedPic", Some("site"))).expect_err("mismatch");
    assert!(
        err.to_string()
            .contains("`site` does not match identity `FedPic`, which is a user policy"),
        "{err}"
    );
}

#[test]
fn only_per_user_policies_can_be_granted() {
    for (identity, kind) in [("Global", "global"), ("site:hq", "site")] {
        let text = policy("site:hq", None).replace(
            "policy = \"XmppUsers\"",
            &format!("policy = \"{identity}\""),
        );
        let err = parse(&text).expect_err("granted a scope policy");
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(problems.len(), 1, "{err}");
        assert_eq!(problems[0].field, "grants[0].policy");
        assert!(
            problems[0]
                .message
                .contains(&format!("is a {kind} policy and cannot be granted")),
            "{err}"
        );
    }
}

// ---- policy_file ----------------------------------------------------------

const MAIN_WITH_POLICY_FILE: &str = r#"
domains = ["contoso.example"]
policy_file = "policy.toml"
[external]
address = "127.0.0.1"
[internal]
address = "127.0.0.2"
"#;

const POLICY: &str = r#"
[[partners]]
domain = "fabrikam.example"
kind = "trusted"
[[partners]]
domain = "partner.example"
keepalive = true
[[policies]]
identity = "global"
scope = "global"
[[policies]]
identity = "XmppUsers"
scope = "user"
[[grants]]
policy = "XmppUsers"
users = ["alice@contoso.example"]
"#;

/// Parses `main` (as /etc/xfed/gateway.toml) with `policy` as the only
/// readable policy file, at /etc/xfed/policy.toml.
fn parse_pair(main: &str, policy: &str) -> Result<Config, ConfigError> {
    let mut read = |p: &Path| {
        if p == Path::new("/etc/xfed/policy.toml") {
            Ok(policy.as_bytes().to_vec())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "No such file or directory",
            ))
        }
    };
    Config::parse_with(
        Path::new("/etc/xfed/gateway.toml"),
        main.as_bytes(),
        &mut read,
    )
}

fn pair_problems(main: &str, policy: &str) -> Vec<Problem> {
    match parse_pair(main, policy) {
        Ok(_) => panic!("accepted:\n{main}\n---\n{policy}"),
        Err(ConfigError::Invalid { problems, .. }) => problems,
        Err(other) => panic!("not a field problem: {other}"),
    }
}

fn pair_fields(main: &str, policy: &str) -> Vec<String> {
    pair_problems(main, policy)
        .into_iter()
        .map(|p| p.field)
        .collect()
}

#[test]
fn policy_file_holds_partners_policies_and_grants() {
    let c = parse_pair(MAIN_WITH_POLICY_FILE, POLICY).expect("valid");
    let file = c.policy_file.as_ref().expect("policy file recorded");
    assert_eq!(
        file.path,
        Path::new("/etc/xfed/policy.toml"),
        "relative to the config"
    );
    assert_eq!(file.sha256, hex::encode(Sha256::digest(POLICY.as_bytes())));
    assert_eq!(
        c.sha256,
        hex::encode(Sha256::digest(MAIN_WITH_POLICY_FILE.as_bytes())),
        "config_sha256 stays the main file's"
    );
    assert_eq!(c.partners.len(), 2);
    assert_eq!(c.partners[0].kind, PartnerKind::Trusted);
    assert_eq!(c.policies.len(), 2);
    assert_eq!(c.grants.len(), 1);

    // An absolute path is taken as is.
    let main = MAIN_WITH_POLICY_FILE.replace("\"policy.toml\"", "\"/etc/xfed/policy.toml\"");
    assert!(parse_pair(&main, POLICY).is_ok());
    // An empty policy file is fine: no partners yet.
    let c = parse_pair(MAIN_WITH_POLICY_FILE, "# nothing yet\n").expect("valid");
    assert!(c.partners.is_empty());
}

#[test]
fn sections_cannot_be_in_both_files() {
    for key in ["partners", "policies", "grants"] {
        let main = format!("{MAIN_WITH_POLICY_FILE}\n[[{key}]]\n");
        let problems = pair_problems(&main, POLICY);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, key);
        assert_eq!(
            problems[0].message,
            "must be in `policy_file` when it is set"
        );
        assert!(
            problems[0]
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("/etc/xfed/policy.toml")),
            "{problems:?}"
        );
    }
}

#[test]
fn policy_file_that_cannot_be_used_is_a_problem_of_policy_file() {
    let missing = MAIN_WITH_POLICY_FILE.replace("\"policy.toml\"", "\"other.toml\"");
    let problems = pair_problems(&missing, POLICY);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "policy_file");
    assert!(
        problems[0]
            .message
            .contains("cannot read `/etc/xfed/other.toml`"),
        "{problems:?}"
    );

    let problems = pair_problems(MAIN_WITH_POLICY_FILE, "[[partners]]\ndomain = \n");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "policy_file");
    assert!(
        problems[0].message.contains("is not valid TOML") && problems[0].message.contains("line 2"),
        "{problems:?}"
    );

    let empty = MAIN_WITH_POLICY_FILE.replace("\"policy.toml\"", "\"\"");
    assert_eq!(pair_fields(&empty, POLICY), vec!["policy_file"]);
    let wrong_type = MAIN_WITH_POLICY_FILE.replace("\"policy.toml\"", "7");
    assert_eq!(pair_fields(&wrong_type, POLICY), vec!["policy_file"]);
}

#[test]
fn problems_in_the_policy_file_are_prefixed_with_policy_file() {
    let cases = [
        (
            POLICY.replace("\"fabrikam.example\"", "\"bad domain\""),
            "policy_file:partners[0].domain",
        ),
        (
            POLICY.replace("\"fabrikam.example\"", "\"contoso.example\""),
            "policy_file:partners[0].domain",
        ),
        (
            POLICY.replace("\"fabrikam.example\"", "\"partner.example\""),
            "policy_file:partners[1].domain",
        ),
        (
            POLICY.replace("kind = \"trusted\"", "kind = \"close\""),
            "policy_file:partners[0].kind",
        ),
        (
            POLICY.replace("keepalive = true", "tls = \"optional\""),
            "policy_file:partners[1].tls",
        ),
        (
            POLICY.replace("scope = \"user\"", "scope = \"site\""),
            "policy_file:policies[1].scope",
        ),
        (
            POLICY.replace("identity = \"XmppUsers\"", "identity = \"Global\""),
            "policy_file:policies[1].identity",
        ),
        (
            POLICY.replace("policy = \"XmppUsers\"", "policy = \"Nope\""),
            "policy_file:grants[0].policy",
        ),
        (
            POLICY.replace("alice@contoso.example", "alice@elsewhere.example"),
            "policy_file:grants[0].users[0]",
        ),
        (
            POLICY.replace("[[partners]]", "[[partner]]"),
            "policy_file:partner",
        ),
    ];
    for (policy, field) in cases {
        let fields = pair_fields(MAIN_WITH_POLICY_FILE, &policy);
        assert!(
            fields.iter().any(|f| f == field),
            "expected `{field}` among {fields:?} for:\n{policy}"
        );
    }
    let problems = pair_problems(
        MAIN_WITH_POLICY_FILE,
        &POLICY.replace("[[partners]]", "[[partner]]"),
    );
    assert!(
        problems
            .iter()
            .any(|p| p.hint.as_deref() == Some("did you mean `policy_file:partners`?")),
        "{problems:?}"
    );
}

#[test]
fn problems_of_both_files_are_reported_at_once() {
    let main = format!("log_level = \"loud\"\n{MAIN_WITH_POLICY_FILE}");
    let policy = POLICY.replace("kind = \"trusted\"", "kind = \"close\"");
    let fields = pair_fields(&main, &policy);
    assert_eq!(fields, vec!["log_level", "policy_file:partners[0].kind"]);
}

/// What xfed renders from modules/xmpp-gateway/{gateway,policy}.toml.j2 for
/// playbooks/partners.yaml (listener ports and state dir changed only).
const XFED_GATEWAY_TOML: &str = r#"# xfed-gateway on edge1.contoso.example (edge pool edge-hq, site hq).
# Managed by xfed: edit the spec, not this file; a hand edit shows as drift.
domains = ["contoso.example"]
topology_version = "2026-11-25.1"
pid_file = "/var/lib/xfed-gateway/run/xfed-gateway.pid"
policy_file = "/etc/xfed/policy.toml"

[external]
address = "203.0.113.101"
port = 5269

[internal]
address = "192.0.2.101"
port = 23456

[admin]
address = "192.0.2.101"
port = 8089

[limits]
keepalive_interval_secs = 60

[dialback]
secret_file = "/etc/xfed/dialback.secret"
previous_secret_file = "/etc/xfed/dialback.previous"
"#;

const XFED_POLICY_TOML: &str = r#"# Federated partners and external access policies (topology 2026-11-25.1).
# Managed by xfed; reloaded by the gateway on SIGHUP without dropping streams.

[[partners]]
domain = "fabrikam.example"
kind = "federated"
tls = "required"
auth = "external"
additional_domains = ["conference.fabrikam.example"]
keepalive = true
proxy = "xmpp-gw.fabrikam.example:5269"

[[partners]]
domain = "litware.example"
kind = "trusted"
tls = "required"
auth = "external"
keepalive = false

[[partners]]
domain = "chat.tailspin.example"
kind = "public_verified"
tls = "required"
auth = "either"

[[partners]]
domain = "adatum.example"
kind = "public_unverified"
tls = "required"
auth = "dialback"

[[policies]]
identity = "global"
scope = "global"
enable_federation_access = true
enable_public_cloud_access = false
enable_xmpp_access = false

[[policies]]
identity = "site:hq"
scope = "site"
enable_federation_access = true
enable_public_cloud_access = false
enable_xmpp_access = false

[[policies]]
identity = "XmppPartners"
scope = "user"
enable_federation_access = true
enable_public_cloud_access = false
enable_xmpp_access = true

[[grants]]
policy = "XmppPartners"
users = ["alice@contoso.example", "bob@contoso.example"]

[[grants]]
policy = "XmppPartners"
all = true

[[sites]]
name = "hq"
users = ["alice@contoso.example", "bob@contoso.example"]
"#;

#[test]
fn xfed_rendered_pair_is_accepted() {
    let c = parse_pair(XFED_GATEWAY_TOML, XFED_POLICY_TOML).expect("xfed's rendering is valid");
    let kinds: Vec<PartnerKind> = c.partners.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, PartnerKind::ALL);
    let scopes: Vec<PolicyScope> = c.policies.iter().map(|p| p.scope.clone()).collect();
    assert_eq!(
        scopes,
        vec![
            PolicyScope::Global,
            PolicyScope::Site("hq".into()),
            PolicyScope::User
        ]
    );
    assert_eq!(c.grants.len(), 2);
    assert_eq!(c.sites.len(), 1);
    assert_eq!(c.sites[0].users.len(), 2);
    // Without `scope` lines (xfed before it rendered them) it is the same.
    let unscoped: String = XFED_POLICY_TOML
        .lines()
        .filter(|l| !l.starts_with("scope = "))
        .map(|l| format!("{l}\n"))
        .collect();
    let c2 = parse_pair(XFED_GATEWAY_TOML, &unscoped).expect("valid without scope");
    assert_eq!(c2.policies, c.policies);
}

#[test]
fn topology_version_may_live_in_the_policy_file_but_not_in_both() {
    let policy = format!("topology_version = \"v7\"\n{POLICY}");
    let config = parse_pair(MAIN_WITH_POLICY_FILE, &policy).expect("valid");
    assert_eq!(config.topology_version.as_deref(), Some("v7"));
    let main = format!("topology_version = \"v6\"\n{MAIN_WITH_POLICY_FILE}");
    assert_eq!(
        pair_fields(&main, &policy),
        vec!["topology_version".to_string()]
    );
}

// ---- one grant per user, one home site per user ---------------------------

#[test]
fn a_user_in_two_explicit_grants_is_a_problem() {
    let policy = format!(
        "{POLICY}[[policies]]\nidentity = \"FedPic\"\n\
         [[grants]]\npolicy = \"FedPic\"\nusers = [\"bob@contoso.example\", \"Alice@Contoso.Example\"]\n"
    );
    let problems = pair_problems(MAIN_WITH_POLICY_FILE, &policy);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "policy_file:grants[1].users[1]");
    assert_eq!(
        problems[0].message,
        "`alice@contoso.example` is already granted `XmppUsers` by `grants[0]`"
    );
    assert!(problems[0].hint.is_some());
    // Named twice within one grant.
    let twice = POLICY.replace(
        "users = [\"alice@contoso.example\"]",
        "users = [\"alice@contoso.example\", \"ALICE@contoso.example\"]",
    );
    let problems = pair_problems(MAIN_WITH_POLICY_FILE, &twice);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "policy_file:grants[0].users[1]");
    assert!(
        problems[0].message.contains("is listed twice"),
        "{problems:?}"
    );
}

#[test]
fn a_second_grant_to_all_users_is_a_problem() {
    let text = format!(
        "{}\n[[policies]]\nidentity = \"Other\"\n[[grants]]\npolicy = \"Other\"\nall = true\n",
        VALID
    );
    let problems = match parse(&text) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("{other:?}"),
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "grants[1].all");
    assert!(
        problems[0]
            .message
            .contains("a second grant to all users (`grants[0]` grants `XmppUsers` to all)"),
        "{problems:?}"
    );
    // A user grant next to a grant to all users is the normal case.
    let c = parse_pair(XFED_GATEWAY_TOML, XFED_POLICY_TOML).expect("valid");
    assert_eq!(c.grants.len(), 2);
}

#[test]
fn grantees_are_normalised_bare_jids() {
    let policy = POLICY.replace("alice@contoso.example", "Alice@CONTOSO.example");
    let c = parse_pair(MAIN_WITH_POLICY_FILE, &policy).expect("valid");
    let Grantees::Users(users) = &c.grants[0].grantees else {
        panic!("{:?}", c.grants[0])
    };
    assert_eq!(users[0].as_str(), "alice@contoso.example");
    for bad in [
        "alice@contoso.example/phone",
        "alice@contoso.example.",
        "@contoso.example",
    ] {
        let policy = POLICY.replace("alice@contoso.example", bad);
        assert_eq!(
            pair_fields(MAIN_WITH_POLICY_FILE, &policy),
            vec!["policy_file:grants[0].users[0]"],
            "{bad}"
        );
    }
}

const SITES: &str = r#"
[[sites]]
name = "hq"
users = ["alice@contoso.example", "Bob@Contoso.Example"]
[[sites]]
name = "dublin"
users = ["carol@contoso.example"]
[[sites]]
name = "empty"
"#;

#[test]
fn sites_home_users() {
    let c = parse_pair(MAIN_WITH_POLICY_FILE, &format!("{POLICY}{SITES}")).expect("valid");
    let names: Vec<&str> = c.sites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["hq", "dublin", "empty"]);
    let hq: Vec<&str> = c.sites[0].users.iter().map(|u| u.as_str()).collect();
    assert_eq!(hq, ["alice@contoso.example", "bob@contoso.example"]);
    assert!(c.sites[2].users.is_empty());
    assert_eq!(c.sites[0].internal_server, None);
    let c = parse_pair(
        MAIN_WITH_POLICY_FILE,
        &format!(
            "{POLICY}{}",
            SITES.replace(
                "name = \"dublin\"",
                "name = \"dublin\"\ninternal_server = \"FE1.Dublin.Contoso.Example:5269\"",
            )
        ),
    )
    .expect("valid");
    assert_eq!(
        c.sites[1].internal_server.as_ref().map(ToString::to_string),
        Some("fe1.dublin.contoso.example:5269".into())
    );
    // Without a policy file they may be in the main file.
    let c = parse(&format!("{VALID}{SITES}")).expect("valid");
    assert_eq!(c.sites.len(), 3);
    // No [[sites]]: nobody has a home site.
    assert!(parse(VALID).expect("valid").sites.is_empty());
}

#[test]
fn a_user_on_two_sites_is_a_problem() {
    let sites = SITES.replace(
        "users = [\"carol@contoso.example\"]",
        "users = [\"carol@contoso.example\", \"BOB@contoso.example\"]",
    );
    let problems = pair_problems(MAIN_WITH_POLICY_FILE, &format!("{POLICY}{sites}"));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "policy_file:sites[1].users[1]");
    assert_eq!(
        problems[0].message,
        "`bob@contoso.example` is already homed on site `hq`; a user is homed on one site"
    );
    assert_eq!(
        problems[0].hint.as_deref(),
        Some("remove `bob@contoso.example` from site `hq` or from site `dublin`")
    );
}

#[test]
fn each_bad_site_field_is_named() {
    let cases = [
        (
            SITES.replace("name = \"dublin\"", ""),
            "policy_file:sites[1].name",
        ),
        (
            SITES.replace("\"dublin\"", "\"site:dublin\""),
            "policy_file:sites[1].name",
        ),
        (
            SITES.replace("\"dublin\"", "\"du blin\""),
            "policy_file:sites[1].name",
        ),
        (
            SITES.replace("\"dublin\"", "\"\""),
            "policy_file:sites[1].name",
        ),
        (
            SITES.replace("\"dublin\"", "\"dub\\\"lin\""),
            "policy_file:sites[1].name",
        ),
        (
            SITES.replace("\"dublin\"", "\"hq\""),
            "policy_file:sites[1].name",
        ),
        (
            SITES.replace("carol@contoso.example", "carol@fabrikam.example"),
            "policy_file:sites[1].users[0]",
        ),
        (
            SITES.replace("carol@contoso.example", "carol"),
            "policy_file:sites[1].users[0]",
        ),
        (
            SITES.replace(
                "name = \"dublin\"",
                "name = \"dublin\"\ninternal_server = \"10.0.2.10\"",
            ),
            "policy_file:sites[1].internal_server",
        ),
        (
            SITES.replace(
                "name = \"dublin\"",
                "name = \"dublin\"\ninternal_server = 5269",
            ),
            "policy_file:sites[1].internal_server",
        ),
        (
            SITES.replace(
                "\"carol@contoso.example\"",
                "\"carol@contoso.example\", \"Carol@contoso.example\"",
            ),
            "policy_file:sites[1].users[1]",
        ),
        (
            SITES.replace(
                "users = [\"carol@contoso.example\"]",
                "users = \"carol@contoso.example\"",
            ),
            "policy_file:sites[1].users",
        ),
        (
            SITES.replace("name = \"empty\"", "name = \"empty\"\nuser = []"),
            "policy_file:sites[2].user",
        ),
        (
            "\n[sites]\nname = \"hq\"\n".to_string(),
            "policy_file:sites",
        ),
    ];
    for (sites, field) in cases {
        let fields = pair_fields(MAIN_WITH_POLICY_FILE, &format!("{POLICY}{sites}"));
        assert_eq!(fields, vec![field.to_string()], "for:\n{sites}");
    }
    let problems = pair_problems(
        MAIN_WITH_POLICY_FILE,
        &format!(
            "{POLICY}{}",
            SITES.replace("name = \"empty\"", "name = \"empty\"\nuser = []")
        ),
    );
    assert_eq!(
        problems[0].hint.as_deref(),
        Some("did you mean `policy_file:sites[2].users`?")
    );
}

#[test]
fn sites_must_be_in_the_policy_file_when_there_is_one() {
    let main = format!("{MAIN_WITH_POLICY_FILE}{SITES}");
    let problems = pair_problems(&main, POLICY);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "sites");
    assert_eq!(
        problems[0].message,
        "must be in `policy_file` when it is set"
    );
}

const RELAY_BASE: &str = r#"
domains = ["contoso.example"]
[external]
address = "127.0.0.1"
[internal]
address = "127.0.0.2"
cert = "/etc/xfed/tls/internal.crt"
key = "/etc/xfed/tls/internal.key"
client_ca = "/etc/xfed/tls/internal-ca.crt"
[relay]
internal_server = "10.0.1.10:5269"
partner_ca = "/etc/xfed/tls/partner-ca.crt"
[[partners]]
domain = "partner.example"
"#;

#[test]
fn relay_section_is_optional_and_resolves_defaults() {
    assert_eq!(parse(VALID).expect("valid").relay, None);
    let c = parse(RELAY_BASE).expect("valid");
    let relay = c.relay.expect("relay");
    assert_eq!(relay.internal_server.to_string(), "10.0.1.10:5269");
    assert_eq!(relay.partner_ca, Path::new("/etc/xfed/tls/partner-ca.crt"));
    assert_eq!(relay.connect_timeout, std::time::Duration::from_secs(10));
    assert_eq!(relay.max_queued_stanzas, 1000);
    assert_eq!(c.partners[0].proxy, None);

    let text = RELAY_BASE
        .replace("10.0.1.10:5269", "XMPP.Contoso.Example:5269")
        .replace(
            "partner_ca = \"/etc/xfed/tls/partner-ca.crt\"",
            "partner_ca = \"/ca.crt\"\nconnect_timeout_secs = 3\nmax_queued_stanzas = 5",
        )
        .replace(
            "domain = \"partner.example\"",
            "domain = \"partner.example\"\nproxy = \"[2001:db8::1]:5270\"",
        );
    let c = parse(&text).expect("valid");
    let relay = c.relay.expect("relay");
    assert_eq!(relay.internal_server.host, "xmpp.contoso.example");
    assert_eq!(relay.connect_timeout, std::time::Duration::from_secs(3));
    assert_eq!(relay.max_queued_stanzas, 5);
    let proxy = c.partners[0].proxy.clone().expect("proxy");
    assert_eq!((proxy.host.as_str(), proxy.port), ("2001:db8::1", 5270));
    assert_eq!(proxy.to_string(), "[2001:db8::1]:5270");
}

#[test]
fn each_bad_relay_field_is_named() {
    let cases = [
        (
            RELAY_BASE.replace("internal_server = \"10.0.1.10:5269\"\n", ""),
            "relay.internal_server",
        ),
        (
            RELAY_BASE.replace("10.0.1.10:5269", "10.0.1.10"),
            "relay.internal_server",
        ),
        (
            RELAY_BASE.replace("10.0.1.10:5269", "10.0.1.10:0"),
            "relay.internal_server",
        ),
        (
            RELAY_BASE.replace("10.0.1.10:5269", "::1:5269"),
            "relay.internal_server",
        ),
        (
            RELAY_BASE.replace("10.0.1.10:5269", "bad host:5269"),
            "relay.internal_server",
        ),
        (
            RELAY_BASE.replace("partner_ca = \"/etc/xfed/tls/partner-ca.crt\"\n", ""),
            "relay.partner_ca",
        ),
        (
            RELAY_BASE.replace("[relay]\n", "[relay]\nconnect_timeout_secs = 0\n"),
            "relay.connect_timeout_secs",
        ),
        (
            RELAY_BASE.replace("[relay]\n", "[relay]\nmax_queued_stanzas = 0\n"),
            "relay.max_queued_stanzas",
        ),
        (
            RELAY_BASE.replace("[relay]\n", "[relay]\ninternal = 1\n"),
            "relay.internal",
        ),
        (
            RELAY_BASE.replace(
                "domain = \"partner.example\"",
                "domain = \"partner.example\"\nproxy = \"nowhere\"",
            ),
            "partners[0].proxy",
        ),
        (
            RELAY_BASE.replace("client_ca = \"/etc/xfed/tls/internal-ca.crt\"\n", ""),
            "relay",
        ),
        (
            RELAY_BASE
                .replace("cert = \"/etc/xfed/tls/internal.crt\"\n", "")
                .replace("key = \"/etc/xfed/tls/internal.key\"\n", "")
                .replace("client_ca = \"/etc/xfed/tls/internal-ca.crt\"\n", ""),
            "relay",
        ),
    ];
    for (text, field) in cases {
        let fields = bad_fields(&text);
        assert!(
            fields.iter().any(|f| f == field),
            "{field} not in {fields:?} for\n{text}"
        );
    }
}

// ---- partner negotiation: auth, additional domains, keepalive, dialback ----

const DIALBACK_SECTION: &str = "[dialback]\nsecret_file = \"/etc/xfed/dialback.secret\"\n";

#[test]
fn auth_values_and_their_default() {
    for auth in PartnerAuth::ALL {
        let text = with(
            "",
            &[("keepalive = true", &format!("auth = \"{}\"", auth.as_str()))],
        ) + DIALBACK_SECTION;
        let c = parse(&text).expect("valid");
        assert_eq!(c.partners[0].auth, auth);
        assert_eq!(
            c.dialback.as_ref().map(|d| d.secret_file.clone()),
            Some("/etc/xfed/dialback.secret".into())
        );
        assert_eq!(
            c.dialback
                .as_ref()
                .expect("dialback section")
                .previous_secret_file,
            None
        );
    }
    let text = with("", &[("keepalive = true", "auth = \"sasl\"")]);
    assert_eq!(bad_fields(&text), vec!["partners[0].auth"]);
}

#[test]
fn old_dialback_key_is_refused_with_a_hint() {
    for old in ["dialback = true", "dialback = false"] {
        let Err(ConfigError::Invalid { problems, .. }) =
            parse(&with("", &[("keepalive = true", old)]))
        else {
            panic!("accepted {old}");
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "partners[0].dialback");
        assert!(
            problems[0]
                .hint
                .as_deref()
                .unwrap_or("")
                .contains("auth = "),
            "{problems:?}"
        );
    }
}

#[test]
fn dialback_needs_the_dialback_section() {
    for auth in ["dialback", "either"] {
        let text = with("", &[("keepalive = true", &format!("auth = \"{auth}\""))]);
        assert_eq!(bad_fields(&text), vec!["partners[0].auth"]);
    }
    // In the policy file, the problem is named there.
    let policy = POLICY.replace("keepalive = true", "auth = \"either\"");
    assert_eq!(
        pair_fields(MAIN_WITH_POLICY_FILE, &policy),
        vec!["policy_file:partners[1].auth"]
    );
    let main = format!("{MAIN_WITH_POLICY_FILE}{DIALBACK_SECTION}");
    let c = parse_pair(&main, &policy).expect("valid");
    assert_eq!(c.partners[1].auth, PartnerAuth::Either);
}

#[test]
fn dialback_section_fields_are_checked() {
    let cases = [
        ("[dialback]\n", "dialback.secret_file"),
        ("[dialback]\nsecret_file = \"\"\n", "dialback.secret_file"),
        (
            "[dialback]\nsecret_file = \"/a\"\nprevious_secret_file = \"/a\"\n",
            "dialback.previous_secret_file",
        ),
        (
            "[dialback]\nsecret_file = \"/a\"\nsecret = \"x\"\n",
            "dialback.secret",
        ),
    ];
    for (section, field) in cases {
        let text = format!("{VALID}{section}");
        assert_eq!(bad_fields(&text), vec![field], "{section}");
    }
    let text = format!("{VALID}[dialback]\nsecret_file = \"/a\"\nprevious_secret_file = \"/b\"\n");
    let c = parse(&text).expect("valid");
    assert_eq!(
        c.dialback,
        Some(DialbackConfig {
            secret_file: "/a".into(),
            previous_secret_file: Some("/b".into()),
        })
    );
}

#[test]
fn additional_domains_are_partner_domains() {
    let text = with(
        "",
        &[(
            "keepalive = true",
            "additional_domains = [\"Conference.Partner.Example\"]",
        )],
    );
    let c = parse(&text).expect("valid");
    assert_eq!(
        c.partners[0].additional_domains,
        vec!["conference.partner.example"]
    );
    assert_eq!(
        c.partner_domains(),
        vec!["partner.example", "conference.partner.example"]
    );
    assert_eq!(
        c.partner_of("conference.partner.example")
            .map(|p| p.domain.as_str()),
        Some("partner.example")
    );
    let cases = [
        (
            "additional_domains = [\"partner.example\"]",
            "partners[0].additional_domains[0]",
        ),
        (
            "additional_domains = [\"contoso.example\"]",
            "partners[0].additional_domains[0]",
        ),
        (
            "additional_domains = [\"bad domain\"]",
            "partners[0].additional_domains[0]",
        ),
        (
            "additional_domains = \"muc.partner.example\"",
            "partners[0].additional_domains",
        ),
        (
            "additional_domains = [\"muc.partner.example\"]\n[[partners]]\ndomain = \"muc.partner.example\"",
            "partners[1].domain",
        ),
    ];
    for (line, field) in cases {
        let text = with("", &[("keepalive = true", line)]);
        assert_eq!(bad_fields(&text), vec![field], "{line}");
    }
}

#[test]
fn keepalive_flag_and_interval() {
    let c = parse(&with("", &[("keepalive = true", "keepalive = false")])).expect("valid");
    assert!(!c.partners[0].keepalive);
    let limits = |body: &str| {
        with(
            "",
            &[("[internal]", &format!("[limits]\n{body}\n[internal]"))],
        )
    };
    let c = parse(&limits("keepalive_interval_secs = 10")).expect("valid");
    assert_eq!(
        c.limits.keepalive_interval,
        std::time::Duration::from_secs(10)
    );
    // Not written: 60 s, or half a shorter idle timeout.
    let c = parse(&limits("idle_timeout_secs = 30")).expect("valid");
    assert_eq!(
        c.limits.keepalive_interval,
        std::time::Duration::from_secs(15)
    );
    for body in [
        "keepalive_interval_secs = 9",
        "keepalive_interval_secs = 3601",
        "keepalive_interval_secs = 30\nidle_timeout_secs = 30",
    ] {
        assert_eq!(
            bad_fields(&limits(body)),
            vec!["limits.keepalive_interval_secs"],
            "{body}"
        );
    }
    assert!(check_limit("keepalive_interval_secs", 10).is_ok());
    assert!(check_limit("keepalive_interval_secs", 5).is_err());
    assert!(check_limit("max_connections_per_partner", 2).is_ok());
    assert_eq!(
        check_limit("max_connections_per_partner", 0),
        Err(
            "`limits.max_connections_per_partner`: expected an integer from 1 to 1000000, found 0"
                .into()
        )
    );
}

#[test]
fn xfed_rendering_carries_partner_negotiation() {
    let c = parse_pair(XFED_GATEWAY_TOML, XFED_POLICY_TOML).expect("valid");
    let auths: Vec<PartnerAuth> = c.partners.iter().map(|p| p.auth).collect();
    assert_eq!(
        auths,
        vec![
            PartnerAuth::External,
            PartnerAuth::External,
            PartnerAuth::Either,
            PartnerAuth::Dialback
        ]
    );
    assert_eq!(
        c.partners[0].additional_domains,
        vec!["conference.fabrikam.example"]
    );
    assert!(!c.partners[1].keepalive);
    assert!(c.dialback.is_some());
}

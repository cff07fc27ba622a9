//! The spec's error messages, pinned: each malformed spec must be rejected
//! with the exact message at the exact place, and every playbook must load.

use std::path::PathBuf;
use std::sync::Arc;

use xfed::spec::{self, LoadError, MapInputs, Source};

const BASE: &str = include_str!("fixtures/base.yaml");

fn inputs(with_key: bool) -> Arc<MapInputs> {
    let mut i = MapInputs::default();
    if with_key {
        i.env.insert("PDNS_API_KEY".into(), "pdns-test-key".into());
        i.env.insert(
            "XFED_DIALBACK_SECRET".into(),
            "dialback-secret-0123456789abcdef".into(),
        );
    }
    i.env.insert("SHORT_SECRET".into(), "hunter2hunter2".into());
    i.files.insert(
        PathBuf::from("/var/lib/xfed-lab/pdns/api-key"),
        "lab-key-1234\n".into(),
    );
    for server in ["bind", "knot"] {
        i.files.insert(
            PathBuf::from(format!("/var/lib/xfed-lab/rfc2136/{server}/tsig.secret")),
            "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY3OA==\n".into(),
        );
    }
    i.files.insert(
        PathBuf::from("/var/lib/xfed-lab/internal/ca.key"),
        "-----BEGIN PRIVATE KEY-----\nlab\n-----END PRIVATE KEY-----\n".into(),
    );
    Arc::new(i)
}

/// The base spec with one edit applied; panics if the edit does not apply,
/// so a changed fixture cannot silently turn a case into a no-op.
fn edited(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "fixture lacks {from:?}");
    BASE.replacen(from, to, 1)
}

/// `line:col: severity: message` of each diagnostic, plus expected/hint.
fn diagnose(text: &str, with_key: bool) -> Vec<String> {
    let src = Source::new("spec.yaml", text);
    let diags = match spec::load(&src, inputs(with_key)) {
        Ok(loaded) => loaded.warnings,
        Err(LoadError::Invalid(d)) => d,
        Err(e) => panic!("unexpected {e}"),
    };
    diags
        .0
        .iter()
        .map(|d| {
            let mut s = format!("{}:{}: {:?}: {}", d.line, d.col, d.severity, d.message);
            if let Some(x) = &d.expected {
                s += &format!(" | expected {x}");
            }
            if let Some(h) = &d.hint {
                s += &format!(" | hint: {h}");
            }
            s
        })
        .collect()
}

#[test]
fn the_base_fixture_is_valid() {
    assert_eq!(diagnose(BASE, true), Vec::<String>::new());
}

/// (case, text to replace, replacement, first diagnostic expected)
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "rfc2136 without its key",
        "    kind: powerdns\n    api_url: http://203.0.113.53:8081\n    api_key: \"{{ env('PDNS_API_KEY') }}\"",
        "    kind: rfc2136\n    servers: [\"203.0.113.55\"]",
        "34:5: Error: provider `rfc2136` needs `tsig` | expected `tsig: { name: xfed, algorithm: hmac-sha256, secret: \"{{ file('xfed.key') }}\" }` under `provider:`",
    ),
    (
        "rfc2136 with an API URL",
        "    kind: powerdns\n    api_url: http://203.0.113.53:8081\n    api_key: \"{{ env('PDNS_API_KEY') }}\"",
        "    kind: rfc2136\n    api_url: http://203.0.113.53:8081\n    servers: [\"203.0.113.55\"]\n    tsig: { name: xfed, secret: \"{{ env('PDNS_API_KEY') }}\" }",
        "35:14: Error: `api_url` does not apply to provider `rfc2136` | hint: remove it, or change `kind`",
    ),
    (
        "TSIG secret in plain text",
        "    kind: powerdns\n    api_url: http://203.0.113.53:8081\n    api_key: \"{{ env('PDNS_API_KEY') }}\"",
        "    kind: rfc2136\n    servers: [\"203.0.113.55:5353\"]\n    tsig: { name: xfed, secret: c2VjcmV0LWtleQ== }",
        "36:33: Error: `dns.provider.tsig.secret` is a secret and is written in the spec as plain text | expected a value from `env(\"NAME\")` or `file(\"PATH\")` | hint: write `secret: \"{{ file('xfed.key') }}\"`",
    ),
    (
        "TSIG secret not base64",
        "    kind: powerdns\n    api_url: http://203.0.113.53:8081\n    api_key: \"{{ env('PDNS_API_KEY') }}\"",
        "    kind: rfc2136\n    servers: [\"203.0.113.55\"]\n    tsig: { name: xfed, secret: \"{{ env('PDNS_API_KEY') }}\" }",
        "36:33: Error: the TSIG secret is not base64 | expected the `secret` of the key as `tsig-keygen` or `keymgr -t` print it (base64)",
    ),
    (
        "unknown TSIG algorithm",
        "    kind: powerdns\n    api_url: http://203.0.113.53:8081\n    api_key: \"{{ env('PDNS_API_KEY') }}\"",
        "    kind: rfc2136\n    servers: [\"203.0.113.55\"]\n    tsig: { name: xfed, algorithm: hmac-sha265, secret: \"{{ env('PDNS_API_KEY') }}\" }",
        "36:36: Error: unknown value `hmac-sha265` in `dns.provider.tsig.algorithm` | expected `hmac-sha256` or `hmac-sha512` | hint: did you mean `hmac-sha256`?",
    ),
    (
        "bad RFC 2136 server",
        "    kind: powerdns\n    api_url: http://203.0.113.53:8081\n    api_key: \"{{ env('PDNS_API_KEY') }}\"",
        "    kind: rfc2136\n    servers: [\"ns1.contoso.example\"]\n    tsig: { name: xfed, secret: \"{{ env('PDNS_API_KEY') }}\" }",
        "35:15: Error: `ns1.contoso.example` is not a name server address | expected `ADDRESS` or `ADDRESS:PORT`, such as `203.0.113.53:53`",
    ),
    (
        "bad yaml",
        "sip_domains: [\"{{ domain }}\"]",
        "sip_domains: [\"{{ domain }}\"",
        "5:1: Error: did not find expected ',' or ']' while parsing a flow sequence at line 4 column 14",
    ),
    (
        "wrong type",
        "version: 1",
        "version: one",
        "1:10: Error: `version`: invalid type: string \"one\" | expected a whole number from 0 to 4294967295",
    ),
    (
        "unknown field",
        "    xmpp_route: edge-hq",
        "    xmpp_rout: edge-hq",
        "12:5: Error: unknown field `xmpp_rout` in `sites[0]` | expected one of `name`, `frontend_pool`, `xmpp_route` | hint: did you mean `xmpp_route`?",
    ),
    (
        "missing required field",
        "    frontend_pool: fe-hq\n",
        "",
        "10:5: Error: missing field `frontend_pool` in `sites[0]` | hint: add `frontend_pool:` here",
    ),
    (
        "dangling route",
        "xmpp_route: edge-hq",
        "xmpp_route: edge-hg",
        "12:17: Error: site `hq` routes XMPP federation to edge pool `edge-hg`, which does not exist | expected the name of an edge pool with `xmpp_federation: true` | hint: did you mean `edge-hq`?",
    ),
    (
        "route to a non-XMPP pool",
        "xmpp_federation: true",
        "xmpp_federation: false",
        "12:17: Error: site `hq` routes XMPP federation to edge pool `edge-hq`, which has XMPP federation off | expected an edge pool with `xmpp_federation: true` | hint: set `xmpp_federation: true` on `edge-hq`",
    ),
    (
        "route not set",
        "    xmpp_route: edge-hq\n",
        "",
        "10:5: Error: site `hq` has no XMPP federation route: route destination invalid or not set | expected `xmpp_route: EDGE_POOL`, an edge pool with `xmpp_federation: true` | hint: add `xmpp_route: edge-hq`",
    ),
    (
        "duplicate server",
        "      - fqdn: fe1.contoso.example\n        address: 203.0.113.11\n",
        "      - fqdn: fe1.contoso.example\n        address: 203.0.113.11\n      - fqdn: fe1.contoso.example\n        address: 203.0.113.12\n",
        "18:15: Error: duplicate server `fe1.contoso.example` | hint: `fe1.contoso.example` is already declared at line 16; names must be unique",
    ),
    (
        "duplicate site",
        "  - name: hq\n    frontend_pool: fe-hq\n    xmpp_route: edge-hq\n",
        "  - name: hq\n    frontend_pool: fe-hq\n    xmpp_route: edge-hq\n  - name: hq\n    frontend_pool: fe-hq\n    xmpp_route: edge-hq\n",
        "13:11: Error: duplicate site `hq` | hint: `hq` is already declared at line 10; names must be unique",
    ),
    (
        "port out of range",
        "port: 5269",
        "port: 80800",
        "26:81: Error: invalid value: integer `80800` in `edge_pools[0].servers[0].external.port` | expected a port number from 1 to 65535",
    ),
    (
        "sessions kept too long",
        "  known_hosts: /keys/known_hosts\n",
        "  known_hosts: /keys/known_hosts\n  persist_secs: 86400\n",
        "9:17: Error: SSH sessions cannot be kept for 86400 seconds | expected 0 (close them after each run) to 3600 seconds",
    ),
    (
        "relay without its trust",
        "        address: 203.0.113.11\n",
        "        address: 203.0.113.11\n    xmpp_server: { address: 203.0.113.11 }\n",
        "18:18: Error: edge pool `edge-hq` relays to this XMPP server but has no internal certificate | expected a certificate with `pool: edge-hq` and `usage: internal` | hint: its SANs get the partner domains: the gateway presents it as the partners to the internal server",
    ),
    (
        "partner proxy without a port",
        "  - domain: fabrikam.example",
        "  - domain: fabrikam.example\n    proxy: xmpp.fabrikam.example",
        "47:12: Error: `xmpp.fabrikam.example` is not `host:port` | expected a host and a port, such as `xmpp.fabrikam.example:5269`",
    ),
    (
        "port zero",
        "port: 5269",
        "port: 0",
        "26:81: Error: port 0 is not a usable port | expected a port number from 1 to 65535",
    ),
    (
        "bad SAN",
        "    subject: { country: US }",
        "    subject: { country: US }\n    sans: { extra: [\"bad name.contoso.example\"] }",
        "31:21: Error: `bad name.contoso.example` is not a valid DNS name: ` ` is not allowed in a DNS name | expected a fully qualified domain name such as `sip.contoso.example`",
    ),
    (
        "undefined template variable",
        "sip_domains: [\"{{ domain }}\"]",
        "sip_domains: [\"{{ domian }}\"]",
        "4:15: Error: template variable `domian` is not defined | hint: did you mean `domain`?",
    ),
    (
        "bad template syntax",
        "sip_domains: [\"{{ domain }}\"]",
        "sip_domains: [\"{{ domain }\"]",
        "4:15: Error: template syntax error: unexpected `}`, expected end of variable block | hint: string values are minijinja templates; write `{{ name }}`",
    ),
    (
        "secret in plain text",
        "api_key: \"{{ env('PDNS_API_KEY') }}\"",
        "api_key: plain-text-key",
        "36:14: Error: `dns.provider.api_key` is a secret and is written in the spec as plain text | expected a value from `env(\"NAME\")` or `file(\"PATH\")` | hint: write `api_key: \"{{ env('PDNS_API_KEY') }}\"`",
    ),
    (
        "unknown issuer kind",
        "kind: csr",
        "kind: cssr",
        "31:21: Error: unknown value `cssr` in `certificates[0].issuer.kind` | expected one of `csr`, `internal_ca`, `acme` | hint: did you mean `csr`?",
    ),
    (
        "bad IP address",
        "address: 203.0.113.11",
        "address: 203.0.113.300",
        "17:18: Error: `203.0.113.300` is not an IP address | expected an IPv4 or IPv6 address such as `198.51.100.10`",
    ),
    (
        "dangling edge pool site",
        "    site: hq",
        "    site: hqq",
        "20:11: Error: site `hqq` does not exist | expected the name of a declared site | hint: did you mean `hq`?",
    ),
    (
        "dangling certificate pool",
        "    pool: edge-hq",
        "    pool: edge-xx",
        "29:11: Error: edge pool `edge-xx` does not exist | expected the name of a declared edge pool | hint: did you mean `edge-hq`?",
    ),
    (
        "dangling grant policy",
        "  - policy: FedPic",
        "  - policy: FedPix",
        "43:13: Error: policy `FedPix` does not exist | expected the name of a declared policy | hint: did you mean `FedPic`?",
    ),
    (
        "granting a global policy",
        "  - identity: FedPic\n    enable_xmpp_access: true\ngrants:\n  - policy: FedPic",
        "  - identity: global\n    enable_xmpp_access: true\ngrants:\n  - policy: global",
        "43:13: Error: policy `global` is a global or site policy and cannot be granted | expected a named (per-user) policy | hint: global and site policies apply by scope; grant a named policy instead",
    ),
    (
        "unsupported key size",
        "    subject: { country: US }",
        "    subject: { country: US }\n    key: { algorithm: rsa, bits: 1024 }",
        "31:34: Error: key size 1024 is not supported | expected 2048, 3072 or 4096 for `rsa`",
    ),
    (
        "bad country code",
        "country: US",
        "country: USA",
        "30:25: Error: `USA` is not a country code | expected a two-letter ISO 3166 code in capitals, such as `US`",
    ),
    (
        "unsupported version",
        "version: 1",
        "version: 2",
        "1:10: Error: spec version 2 is not supported | expected `version: 1`",
    ),
    (
        "certificate lacks the XMPP domain",
        "    subject: { country: US }",
        "    subject: { country: US }\n    sans: { xmpp_domains: [other.example] }",
        "31:27: Error: certificate `edge-ext` is for XMPP edge pool `edge-hq` but lacks the XMPP domain `contoso.example` in its SANs | expected `contoso.example` among the subject alternative names | hint: add `contoso.example` to `sans.xmpp_domains`",
    ),
    (
        "dangling site policy",
        "  - identity: FedPic\n",
        "  - identity: FedPic\n  - identity: site:nowhere\n",
        "41:15: Error: site `nowhere` does not exist | expected the name of a declared site | hint: known sites: `hq`",
    ),
    (
        "no ssh authentication",
        "  identity_file: /keys/id_ed25519\n",
        "",
        "7:3: Error: no SSH authentication is configured | expected `ssh.identity_file: PATH` or `ssh.agent: true`",
    ),
    (
        "bad renewal window",
        "    issuer: { kind: csr }",
        "    issuer: { kind: csr }\n    renew_before: soon",
        "32:19: Error: `soon` is not a renewal window | expected a share of the lifetime such as `33%`, or days such as `30d`",
    ),
    (
        "srv record without target",
        "    - name: contoso.example\n",
        "    - name: contoso.example\n  records:\n    - { zone: contoso.example, name: _x._tcp, type: SRV, port: 5269 }\n",
        "40:7: Error: an SRV record needs `target` | expected `priority`, `weight`, `port` and `target`",
    ),
    (
        "record outside its zone",
        "    - name: contoso.example\n",
        "    - name: contoso.example\n  records:\n    - { zone: contoso.example, name: www.fabrikam.example., type: A, value: 198.51.100.7 }\n",
        "40:38: Error: `www.fabrikam.example.` is outside zone `contoso.example.` | expected a name under `contoso.example.`",
    ),
    (
        "bad user address",
        "    users: all",
        "    users: [alice]",
        "44:13: Error: `alice` is not a user's JID (expected `user@domain`)",
    ),
    (
        "dangling front-end pool",
        "    frontend_pool: fe-hq",
        "    frontend_pool: fe-hk",
        "11:20: Error: front-end pool `fe-hk` does not exist | expected the name of a declared front-end pool | hint: did you mean `fe-hq`?",
    ),
    (
        "duplicate partner",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\n  - domain: Fabrikam.example\n",
        "47:13: Error: partner domain `fabrikam.example` is listed twice | hint: `fabrikam.example` is already listed at line 46 (`partners[0].domain`); a domain belongs to one partner, once",
    ),
    (
        "second grant to all users",
        "    users: all\n",
        "    users: all\n  - policy: FedPic\n    users: all\n",
        "46:12: Error: policy `FedPic` is granted to all users already | expected one grant to all users | hint: remove this grant; it repeats the first",
    ),
    (
        "user granted twice",
        "    users: all",
        "    users: [a@contoso.example, A@contoso.example]",
        "44:32: Error: user `a@contoso.example` is granted policy `FedPic` already | expected one granted policy per user | hint: list `a@contoso.example` in one grant, once",
    ),
    (
        "user homed on two pools",
        "        address: 203.0.113.11\n",
        "        address: 203.0.113.11\n    users: [alice@contoso.example]\n  - name: fe-eu\n    servers:\n      - fqdn: fe2.contoso.example\n        address: 203.0.113.12\n    users: [Alice@contoso.example]\n",
        "23:13: Error: user `alice@contoso.example` is homed on front-end pool `fe-hq` already | expected each user on one front-end pool | hint: remove `alice@contoso.example` from one of the two pools",
    ),
    (
        "pool name with a line break",
        "edge_pools:\n",
        "  - name: \"fe\\nExecStartPre=/bin/true\"\n    servers:\n      - fqdn: fe2.contoso.example\n        address: 203.0.113.12\nedge_pools:\n",
        "18:11: Error: `fe\\nExecStartPre=/bin/true` is not a pool name: a line break is not allowed (letters, digits, `-`, `_` and `.` are) | hint: pool names are written into files and unit names; e.g. `edge-hq`",
    ),
    (
        "gateway directory with a space",
        "partners:\n",
        "gateway:\n  install_dir: \"/opt/x fed\"\npartners:\n",
        "46:16: Error: `/opt/x fed` has ' ', which a plain path does not | expected a path of letters, digits and `/`, `.`, `_`, `-`, `+`, such as `/opt/xfed`",
    ),
    (
        "rollout serial neither a count nor a share",
        "partners:\n",
        "rollout:\n  serial: \"half\"\npartners:\n",
        "46:11: Error: `half` is not a number of servers or a share of a pool | expected a whole number of servers (`2`) or a percentage from 1% to 100% (`\"30%\"`)",
    ),
    (
        "failure budget over all of a pool",
        "partners:\n",
        "rollout:\n  max_fail_percentage: 150\npartners:\n",
        "46:24: Error: 150 is more than all of a pool | expected a percentage from 0 to 100",
    ),
    (
        "an edge limit the gateway refuses",
        "partners:\n",
        "gateway:\n  limits: { connection_limit: 0 }\npartners:\n",
        "46:31: Error: the gateway refuses 0: `limits.max_connections`: expected an integer from 1 to 1000000, found 0 | hint: the gateway's own bound; see gateway/gateway.example.toml",
    ),
    (
        "a per-partner limit the gateway refuses",
        "partners:\n",
        "gateway:\n  limits:\n    connection_limit_per_partner: 0\npartners:\n",
        "47:35: Error: the gateway refuses 0: `limits.max_connections_per_partner`: expected an integer from 1 to 1000000, found 0 | hint: the gateway's own bound; see gateway/gateway.example.toml",
    ),
    (
        "wrong type for a list",
        "xmpp_domains: [\"{{ domain }}\"]",
        "xmpp_domains: contoso.example",
        "5:15: Error: `xmpp_domains`: invalid type: string \"contoso.example\" | expected a list",
    ),
];

/// A dialback secret for the cases that need one.
const DIALBACK: &str =
    "\ngateway:\n  dialback:\n    secret: \"{{ env('XFED_DIALBACK_SECRET') }}\"\n";

/// Lync's partner negotiation settings (`auth`, `tls`,
/// `additional_domains`, `keepalive`, `gateway.dialback`): what cannot
/// work is refused at its line. (case, text to replace, replacement,
/// every diagnostic expected)
const PARTNER_NEGOTIATION: &[(&str, &str, &str, &[&str])] = &[
    (
        "the old dialback flag",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\n    dialback: true\n",
        &[
            "47:15: Error: partner `fabrikam.example`: `dialback` is no longer a partner setting | expected `auth: external`, `auth: dialback` or `auth: either` | hint: did you mean `auth:`? write `auth: either` (or `auth: dialback`) instead",
        ],
    ),
    (
        "the old dialback flag, off",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\n    dialback: false\n",
        &[
            "47:15: Error: partner `fabrikam.example`: `dialback` is no longer a partner setting | expected `auth: external`, `auth: dialback` or `auth: either` | hint: did you mean `auth:`? write `auth: external` instead",
        ],
    ),
    (
        "the old dialback flag on a trusted partner",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\n    kind: trusted\n    dialback: true\n",
        &[
            "48:15: Error: partner `fabrikam.example`: `dialback` is no longer a partner setting | expected `auth: external`, `auth: dialback` or `auth: either` | hint: did you mean `auth:`? write `auth: external` (a `trusted` partner authenticates by certificate) instead",
        ],
    ),
    (
        "a trusted partner by dialback",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\n    kind: trusted\n    auth: either\n",
        &[
            "48:11: Error: partner `fabrikam.example` is `trusted` and may not authenticate by dialback | expected `auth: external` for a `trusted` partner | hint: trust beyond federation needs the partner's certificate (SASL EXTERNAL); dialback only proves control of its DNS: use `kind: federated` or `public_unverified` for a partner without a certificate we trust",
        ],
    ),
    (
        "dialback without a secret",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\n    auth: dialback\n",
        &[
            "47:11: Error: partner `fabrikam.example` may use dialback (`auth: dialback`), but no dialback secret is set | expected `gateway.dialback.secret` | hint: add `gateway: { dialback: { secret: \"{{ env('XFED_DIALBACK_SECRET') }}\" } }`, or set `auth: external` for a partner with a certificate we trust",
        ],
    ),
    (
        "a public unverified partner (dialback by default) without a secret",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\n    kind: public_unverified\n",
        &[
            "46:5: Error: partner `fabrikam.example` may use dialback (`auth: either` (the default for `public_unverified`)), but no dialback secret is set | expected `gateway.dialback.secret` | hint: add `gateway: { dialback: { secret: \"{{ env('XFED_DIALBACK_SECRET') }}\" } }`, or set `auth: external` for a partner with a certificate we trust",
        ],
    ),
    (
        "a domain in two partners' lists",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\n    additional_domains: [conference.fabrikam.example]\n  - domain: litware.example\n    additional_domains: [chat.litware.example, Conference.Fabrikam.example]\n",
        &[
            "49:48: Error: partner domain `conference.fabrikam.example` is listed twice | hint: `conference.fabrikam.example` is already listed at line 47 (`partners[0].additional_domains[0]`); a domain belongs to one partner, once",
        ],
    ),
    (
        "an additional domain that is ours",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\n    additional_domains: [contoso.example]\n",
        &[
            "47:26: Error: `contoso.example` is one of our own `xmpp_domains` | hint: a partner is an outside domain",
        ],
    ),
    (
        "tls optional",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\n    tls: optional\n",
        &[
            "47:10: Error: partner `fabrikam.example`: `tls: optional` is not supported | expected `tls: required` | hint: the gateway never sends server-to-server traffic in the clear; partners without TLS cannot federate",
        ],
    ),
    (
        "a misspelt auth",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\n    auth: dialbak\n",
        &[
            "47:11: Error: unknown value `dialbak` in `partners[0].auth` | expected one of `external`, `dialback`, `either` | hint: did you mean `dialback`?",
        ],
    ),
    (
        "a dialback secret in plain text",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\n    auth: dialback\ngateway:\n  dialback:\n    secret: 0123456789abcdef0123\n",
        &[
            "50:13: Error: `gateway.dialback.secret` is a secret and is written in the spec as plain text | expected a value from `env(\"NAME\")` or `file(\"PATH\")` | hint: write `secret: \"{{ env('XFED_DIALBACK_SECRET') }}\"`",
        ],
    ),
    (
        "a short dialback secret",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\ngateway:\n  dialback:\n    secret: \"{{ env('XFED_DIALBACK_SECRET') }}\"\n    previous_secret: \"{{ env('SHORT_SECRET') }}\"\n",
        &[
            "50:22: Error: the dialback secret is too short to be a secret | expected one line of at least 16 characters, without white space at either end | hint: every gateway makes and checks dialback keys with it; e.g. `openssl rand -hex 32`",
        ],
    ),
    (
        "a keepalive more often than the gateway allows",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\ngateway:\n  limits:\n    keepalive_interval_secs: 5\n",
        &[
            "49:30: Error: the gateway refuses 5: `limits.keepalive_interval_secs`: expected an integer from 10 to 3600, found 5 | hint: the gateway's own bound; see gateway/gateway.example.toml",
        ],
    ),
    (
        "a keepalive as late as the idle timeout",
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\ngateway:\n  limits:\n    stream_inactivity_timeout_secs: 120\n    keepalive_interval_secs: 120\n",
        &[
            "50:30: Error: a keepalive every 120 s comes too late for streams closed after 120 s of silence | expected less than `stream_inactivity_timeout_secs` (120) | hint: partners with the same idle timeout close the stream before the keepalive is sent",
        ],
    ),
];

#[test]
fn partner_negotiation_that_cannot_work_is_refused_at_its_line() {
    let mut failures = Vec::new();
    for (name, from, to, expected) in PARTNER_NEGOTIATION {
        let got = diagnose(&edited(from, to), true);
        if std::env::var_os("XFED_DUMP_CASES").is_some() {
            println!("CASE {name}\n  {}", got.join("\n  "));
        }
        if got != *expected {
            failures.push(format!(
                "{name}:\n  expected: {expected:?}\n  got:      {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        PARTNER_NEGOTIATION.len(),
        failures.join("\n")
    );
}

fn load_ok(text: &str) -> xfed::spec::Spec {
    let src = Source::new("spec.yaml", text);
    match spec::load(&src, inputs(true)) {
        Ok(loaded) => {
            assert_eq!(loaded.warnings.0, vec![], "warnings");
            loaded.spec
        }
        Err(e) => panic!("does not load:\n{e}"),
    }
}

/// Lync's defaults: a public unverified partner may use dialback (it is
/// what such servers do), every other kind authenticates by certificate;
/// keepalives are on.
#[test]
fn partner_auth_defaults_follow_the_kind_as_lync() {
    let text = edited(
        "  - domain: fabrikam.example\n",
        &format!(
            "  - domain: fabrikam.example\n  - {{ domain: litware.example, kind: trusted }}\n  - {{ domain: tailspin.example, kind: public_verified }}\n  - {{ domain: adatum.example, kind: public_unverified, keepalive: false }}\n  - {{ domain: wingtip.example, kind: federated, auth: either, additional_domains: [conference.wingtip.example] }}\n{DIALBACK}"
        ),
    );
    let spec = load_ok(&text);
    let got: Vec<(&str, &str, bool, Vec<&str>)> = spec
        .partners
        .iter()
        .map(|p| {
            (
                p.domain.as_str(),
                p.auth.as_str(),
                p.keepalive,
                p.additional_domains.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("fabrikam.example", "external", true, vec![]),
            ("litware.example", "external", true, vec![]),
            ("tailspin.example", "external", true, vec![]),
            ("adatum.example", "either", false, vec![]),
            (
                "wingtip.example",
                "either",
                true,
                vec!["conference.wingtip.example"]
            ),
        ]
    );
    let d = spec.gateway.dialback.as_ref().expect("dialback");
    assert_eq!(d.secret.expose(), "dialback-secret-0123456789abcdef");
    assert_eq!(d.previous_secret, None);
    let shown = format!("{:?}", spec.gateway);
    assert!(
        !shown.contains("dialback-secret") && shown.contains("(sensitive)"),
        "{shown}"
    );
}

/// `validate` where the dialback secret is not (a CI lint job): a warning
/// at the field, as for every other secret; `plan` refuses.
#[test]
fn a_dialback_secret_not_there_is_a_warning_for_validate() {
    let text = edited(
        "  - domain: fabrikam.example\n",
        &format!("  - domain: fabrikam.example\n    auth: dialback\n{DIALBACK}"),
    );
    let src = Source::new("spec.yaml", text);
    let loaded = spec::load_with(&src, inputs(false), spec::MissingSecrets::Warn).expect("loads");
    let got: Vec<String> = loaded
        .warnings
        .0
        .iter()
        .map(|d| format!("{}:{}: {:?}: {}", d.line, d.col, d.severity, d.message))
        .collect();
    assert_eq!(
        got,
        vec![
            "36:14: Warning: environment variable `PDNS_API_KEY` is not set; `dns.provider.api_key` needs it",
            "51:13: Warning: environment variable `XFED_DIALBACK_SECRET` is not set; `gateway.dialback.secret` needs it",
        ]
    );
    match spec::load(&src, inputs(false)) {
        Err(LoadError::Invalid(d)) => assert!(
            d.0.iter().any(|d| d.line == 51
                && d.message == "environment variable `XFED_DIALBACK_SECRET` is not set"),
            "{d:?}"
        ),
        other => panic!("plan would run without the secret: {other:?}"),
    }
}

/// Values the gateway refuses when it loads its configuration: `validate`
/// refuses each at its spec line with the gateway's own message (the rules
/// are the gateway's, called from the spec's resolution), so nobody learns
/// of them from a rollback. (case, text to replace, replacement, first
/// diagnostic expected)
const GATEWAY_REFUSES: &[(&str, &str, &str, &str)] = &[
    (
        "policy identity injecting TOML keys",
        "  - identity: FedPic\n",
        "  - identity: \"Fed\\\"Pic\\nx = 1\"\n",
        "40:15: Error: `Fed\\\"Pic\\nx = 1` is not a policy name: `\"` is not allowed (letters, digits, `-`, `_` and `.` are) | expected `global`, `site:NAME`, or a per-user policy name | hint: name a per-user policy with letters, digits, `-`, `_` and `.`, e.g. `FedPic`",
    ),
    (
        "front-end user with a shell substitution",
        "        address: 203.0.113.11\n",
        "        address: 203.0.113.11\n    users: [alice@contoso.example, \"x$(touch${IFS}/tmp/p)@contoso.example\"]\n",
        "18:36: Error: `x$(touch${IFS}/tmp/p)@contoso.example` has a resource; write the bare JID `x$(touch${IFS}`",
    ),
    (
        "partner domain with a trailing space",
        "  - domain: fabrikam.example",
        "  - domain: \"fabrikam.example \"",
        "46:13: Error: `fabrikam.example ` is not a valid domain name (label `example `) | expected a domain name such as `fabrikam.example`",
    ),
    (
        "grant to a user outside the XMPP domains",
        "    users: all",
        "    users: [bob@fabrikam.example]",
        "44:13: Error: `bob@fabrikam.example` is not in a fronted domain (`domains`) | expected a user of one of the `xmpp_domains` | hint: the gateway fronts the `xmpp_domains` (contoso.example); add `fabrikam.example` there or list another user",
    ),
    (
        "policy identity with a newline",
        "  - identity: FedPic\n",
        "  - identity: \"Fed\\nPic\"\n",
        "40:15: Error: `Fed\\nPic` is not a policy name: a line break is not allowed (letters, digits, `-`, `_` and `.` are) | expected `global`, `site:NAME`, or a per-user policy name | hint: name a per-user policy with letters, digits, `-`, `_` and `.`, e.g. `FedPic`",
    ),
    (
        "site name with a quote",
        "  - name: hq\n",
        "  - name: \"h\\\"q\"\n",
        "10:11: Error: `h\\\"q` is not a site name: `\"` is not allowed (letters, digits, `-`, `_` and `.` are) | hint: write the NAME of the site's policy `site:NAME`, e.g. \"hq\"",
    ),
    (
        "JID with a resource",
        "    users: all",
        "    users: [alice@contoso.example/phone]",
        "44:13: Error: `alice@contoso.example/phone` has a resource; write the bare JID `alice@contoso.example`",
    ),
    (
        "site policy naming a site with a space",
        "  - identity: FedPic\n",
        "  - identity: FedPic\n  - identity: \"site: hq\"\n",
        "41:15: Error: ` hq` is not a site name: a space is not allowed (letters, digits, `-`, `_` and `.` are) | expected `global`, `site:NAME`, or a per-user policy name | hint: write a site policy's identity as `site:NAME`, e.g. `site:hq`",
    ),
    (
        "partner that is our own domain",
        "  - domain: fabrikam.example",
        "  - domain: Contoso.Example",
        "46:13: Error: `contoso.example` is one of our own `xmpp_domains` | hint: a partner is an outside domain",
    ),
    (
        "partner proxy with a bad host",
        "  - domain: fabrikam.example",
        "  - domain: fabrikam.example\n    proxy: \"xmpp_1.fabrikam.example:5269\"",
        "47:12: Error: `xmpp_1.fabrikam.example` is not a valid domain name (label `xmpp_1`) | expected a host and a port, such as `xmpp.fabrikam.example:5269`",
    ),
];

#[test]
fn what_the_gateway_refuses_is_refused_at_its_spec_line() {
    let mut failures = Vec::new();
    for (name, from, to, expected) in GATEWAY_REFUSES {
        let got = diagnose(&edited(from, to), true);
        let first = got.first().cloned().unwrap_or_default();
        if std::env::var_os("XFED_DUMP_CASES").is_some() {
            println!("CASE {name}\n  {}", got.join("\n  "));
        }
        if first != *expected {
            failures.push(format!(
                "{name}:\n  expected: {expected}\n  got:      {first}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        GATEWAY_REFUSES.len(),
        failures.join("\n")
    );
}

#[test]
fn each_bad_spec_is_rejected_with_its_message_and_location() {
    let mut failures = Vec::new();
    for (name, from, to, expected) in CASES {
        let got = diagnose(&edited(from, to), true);
        let first = got.first().cloned().unwrap_or_default();
        if std::env::var_os("XFED_DUMP_CASES").is_some() {
            println!("CASE {name}\n  {}", got.join("\n  "));
        }
        if first != *expected {
            failures.push(format!(
                "{name}:\n  expected: {expected}\n  got:      {first}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn missing_env_secret_is_an_error_at_the_field() {
    assert_eq!(
        diagnose(BASE, false),
        vec!["36:14: Error: environment variable `PDNS_API_KEY` is not set".to_string()]
    );
}

#[test]
fn every_playbook_loads() {
    // Every playbook in the folder, so a new one is covered when it is added.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("playbooks/")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".yaml")?.to_string())
        })
        .collect();
    names.sort();
    for must in [
        "lab",
        "single-site",
        "multi-site",
        "partners",
        "own-servers",
        "bind",
        "knot",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "playbooks/{must}.yaml is missing: {names:?}"
        );
    }
    for name in &names {
        let path = dir.join(format!("{name}.yaml"));
        let text = std::fs::read_to_string(&path).expect("playbook");
        let src = Source::new(&path, text);
        match spec::load(&src, inputs(true)) {
            Ok(loaded) => assert_eq!(loaded.warnings.0, vec![], "{name} has warnings"),
            Err(e) => panic!("{name} does not load:\n{e}"),
        }
    }
}

#[test]
fn multi_site_has_three_pools_with_distinct_priorities_and_per_site_routes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("playbooks/multi-site.yaml");
    let src = Source::new(&path, std::fs::read_to_string(&path).expect("playbook"));
    let spec = spec::load(&src, inputs(true)).expect("valid").spec;
    let prios: Vec<u16> = spec.edge_pools.iter().map(|p| p.srv_priority).collect();
    assert_eq!(prios, vec![10, 20, 30]);
    let routes: Vec<(&str, &str)> = spec
        .sites
        .iter()
        .map(|s| (s.name.as_str(), s.xmpp_route.as_str()))
        .collect();
    assert_eq!(
        routes,
        vec![
            ("redmond", "edge-redmond"),
            ("dublin", "edge-dublin"),
            ("singapore", "edge-singapore")
        ]
    );
}

#[test]
fn same_srv_priority_across_sites_is_a_warning_not_an_error() {
    let text = edited(
        "  - name: hq\n    frontend_pool: fe-hq\n    xmpp_route: edge-hq\n",
        "  - name: hq\n    frontend_pool: fe-hq\n    xmpp_route: edge-hq\n  - name: dr\n    frontend_pool: fe-hq\n    xmpp_route: edge-dr\n",
    )
    .replacen(
        "certificates:",
        "  - name: edge-dr\n    site: dr\n    xmpp_federation: true\n    srv: { priority: 10 }\n    servers:\n      - fqdn: edge1.dr.contoso.example\n        internal: { address: 203.0.113.111 }\n        external: { fqdn: xmpp-dr.contoso.example, address: 198.51.100.111 }\ncertificates:",
        1,
    );
    let src = Source::new("spec.yaml", text.as_str());
    let loaded = spec::load(&src, inputs(true)).expect("warnings do not fail validation");
    assert_eq!(
        diagnose(&text, true),
        vec!["33:22: Warning: edge pools `edge-hq` and `edge-dr` are in different sites but share SRV priority 10: no failover order | hint: give `edge-dr` a priority other than 10 (edge_pools[0])".to_string()]
    );
    assert_eq!(loaded.spec.edge_pools.len(), 2);
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let text = BASE
        .replacen("xmpp_route: edge-hq", "xmpp_route: edge-hg", 1)
        .replacen("country: US", "country: USA", 1)
        .replacen("  - policy: FedPic", "  - policy: FedPix", 1);
    let got = diagnose(&text, true);
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(got[0].starts_with("12:17: Error: site `hq` routes"));
    assert!(got[1].starts_with("30:25: Error: `USA`"));
    assert!(got[2].starts_with("43:13: Error: policy `FedPix`"));
}

#[test]
fn defaults_are_merged() {
    let spec = spec::load(&Source::new("spec.yaml", BASE), inputs(true))
        .expect("valid")
        .spec;
    let edge = &spec.edge_pools[0].servers[0];
    assert_eq!((edge.internal_port, edge.external_port), (23456, 5269));
    assert_eq!(edge.server.ssh.host, "203.0.113.101");
    assert_eq!(edge.server.ssh.user, "root");
    assert_eq!(spec.certificates[0].key, xfed::spec::KeySpec::Rsa2048);
    assert_eq!(
        spec.certificates[0].subject.common_name,
        "xmpp1.contoso.example"
    );
    assert_eq!(
        spec.certificates[0].sans,
        vec![
            "contoso.example",
            "sip.contoso.example",
            "xmpp1.contoso.example"
        ]
    );
    assert_eq!(spec.gateway.install_dir, "/opt/xfed");
    assert_eq!(spec.rollout.serial, xfed::spec::Serial::Count(1));
    // The secret is usable but never printed.
    let dns = spec.dns.as_ref().expect("dns");
    let xfed::spec::DnsApi::Powerdns { api_key, .. } = &dns.provider.api else {
        panic!("the provider is PowerDNS");
    };
    assert_eq!(api_key.expose(), "pdns-test-key");
    assert_eq!(
        format!("{:?}", dns.provider),
        format!("{:?}", dns.provider).replace("pdns-test-key", "(sensitive)")
    );
    assert!(!format!("{:?}", spec).contains("pdns-test-key"));
}

mod cli {
    use std::process::Command;

    fn xfed(args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_xfed"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("PDNS_API_KEY", "cli-test-key")
            .env("XFED_DIALBACK_SECRET", "cli-dialback-secret-5e1f0a")
            .output()
            .expect("run xfed");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `xfed validate` as a CI lint job runs it: no secret in the
    /// environment at all.
    fn xfed_without_secrets(args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_xfed"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("PDNS_API_KEY")
            .env_remove("SSH_KEY_PASSPHRASE")
            .env_remove("XFED_DIALBACK_SECRET")
            .output()
            .expect("run xfed");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn validate_needs_no_secret_values_but_strict_does() {
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks"))
            .expect("playbooks/")
        {
            let path = entry.expect("entry").path();
            let path = path.to_str().expect("utf8");
            let (code, stdout, stderr) = xfed_without_secrets(&["validate", path]);
            assert_eq!(code, 0, "{path}: {stdout}{stderr}");
            assert!(stdout.contains(": valid ("), "{path}: {stdout}");
        }
        let (code, stdout, stderr) =
            xfed_without_secrets(&["validate", "playbooks/multi-site.yaml"]);
        assert_eq!(code, 0);
        assert!(
            stderr.contains("warning: environment variable `PDNS_API_KEY` is not set; `dns.provider.api_key` needs it"),
            "{stderr}"
        );
        assert!(stdout.contains("1 warning"), "{stdout}");
        assert!(!stdout.contains("xfed-unset-secret") && !stderr.contains("xfed-unset-secret"));

        let (code, _, stderr) =
            xfed_without_secrets(&["validate", "--strict", "playbooks/multi-site.yaml"]);
        assert_eq!(code, 1);
        assert!(
            stderr.contains("error: environment variable `PDNS_API_KEY` is not set"),
            "{stderr}"
        );
    }

    #[test]
    fn validate_exit_codes_and_rendering() {
        let (code, stdout, _) = xfed(&["validate", "playbooks/multi-site.yaml"]);
        assert_eq!(code, 0);
        assert!(stdout.contains("valid (3 sites"), "{stdout}");

        let dir = tempfile::tempdir().expect("tempdir");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            super::BASE.replacen("xmpp_route: edge-hq", "xmpp_route: edge-hg", 1),
        )
        .expect("write");
        let (code, stdout, stderr) = xfed(&["validate", bad.to_str().expect("utf8")]);
        assert_eq!(code, 1);
        assert_eq!(stdout, "");
        let expected = format!(
            "{}:12:17: error: site `hq` routes XMPP federation to edge pool `edge-hg`, which does not exist\n   |\n12 |     xmpp_route: edge-hg\n   |                 ^^^^^^^ expected the name of an edge pool with `xmpp_federation: true`\n   = hint: did you mean `edge-hq`?\n\n{}: 1 error found; nothing was changed\n",
            bad.display(),
            bad.display()
        );
        assert_eq!(stderr, expected);

        let (code, stdout, _) =
            xfed(&["validate", "--format", "json", bad.to_str().expect("utf8")]);
        assert_eq!(code, 1);
        let v: serde_json::Value = serde_json::from_str(&stdout).expect("json");
        assert_eq!(v["valid"], false);
        assert_eq!(v["diagnostics"][0]["line"], 12);
        assert_eq!(v["diagnostics"][0]["field"], "sites[0].xmpp_route");
        assert_eq!(v["diagnostics"][0]["hint"], "did you mean `edge-hq`?");
    }

    /// The two inputs through the real binary: refused with the
    /// gateway's message under a caret at the value, exit 1, nothing
    /// contacted (the spec's hosts are documentation addresses; validate
    /// never connects).
    #[test]
    fn validate_refuses_what_the_gateway_would_with_a_caret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            super::edited(
                "  - identity: FedPic\n    enable_xmpp_access: true\ngrants:\n  - policy: FedPic\n",
                "  - identity: \"Fed\\\"Pic\\nx = 1\"\n    enable_xmpp_access: true\ngrants:\n  - policy: \"Fed\\\"Pic\\nx = 1\"\n",
            )
            .replacen(
                "        address: 203.0.113.11\n",
                "        address: 203.0.113.11\n    users: [\"x$(touch${IFS}/tmp/p)@contoso.example\"]\n",
                1,
            ),
        )
        .expect("write");
        let (code, stdout, stderr) = xfed(&["validate", bad.to_str().expect("utf8")]);
        assert_eq!(code, 1, "{stderr}");
        assert_eq!(stdout, "");
        let b = bad.display();
        let expected = format!(
            "{b}:18:13: error: `x$(touch${{IFS}}/tmp/p)@contoso.example` has a resource; write the bare JID `x$(touch${{IFS}}`\n   |\n18 |     users: [\"x$(touch${{IFS}}/tmp/p)@contoso.example\"]\n   |             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n\n\
             {b}:41:15: error: `Fed\\\"Pic\\nx = 1` is not a policy name: `\"` is not allowed (letters, digits, `-`, `_` and `.` are)\n   |\n41 |   - identity: \"Fed\\\"Pic\\nx = 1\"\n   |               ^^^^^^^^^^^^^^^^^ expected `global`, `site:NAME`, or a per-user policy name\n   = hint: name a per-user policy with letters, digits, `-`, `_` and `.`, e.g. `FedPic`\n\n\
             {b}: 2 errors found; nothing was changed\n"
        );
        assert_eq!(stderr, expected);
    }

    #[test]
    fn secrets_never_reach_validate_output() {
        let (code, stdout, stderr) =
            xfed(&["validate", "--format", "json", "playbooks/multi-site.yaml"]);
        assert_eq!(code, 0);
        assert!(!stdout.contains("cli-test-key") && !stderr.contains("cli-test-key"));
    }

    /// The dialback secret: never in `validate`'s output, human or JSON;
    /// without it, `validate` warns at its field and `--strict` refuses.
    #[test]
    fn the_dialback_secret_never_reaches_validate_output() {
        for format in ["human", "json"] {
            let (code, stdout, stderr) =
                xfed(&["validate", "--format", format, "playbooks/partners.yaml"]);
            assert_eq!(code, 0, "{stdout}{stderr}");
            assert!(
                !stdout.contains("cli-dialback-secret") && !stderr.contains("cli-dialback-secret"),
                "{stdout}{stderr}"
            );
        }
        let (code, _, stderr) = xfed_without_secrets(&["validate", "playbooks/partners.yaml"]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains("warning: environment variable `XFED_DIALBACK_SECRET` is not set; `gateway.dialback.secret` needs it"),
            "{stderr}"
        );
        let (code, _, stderr) =
            xfed_without_secrets(&["validate", "--strict", "playbooks/partners.yaml"]);
        assert_eq!(code, 1, "{stderr}");
    }

    #[test]
    fn schema_is_json_schema_of_the_spec() {
        let (code, stdout, _) = xfed(&["schema"]);
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(&stdout).expect("json");
        assert_eq!(v["title"], "RawSpec");
        assert!(v["properties"]["edge_pools"].is_object());
        assert_eq!(v["additionalProperties"], false);
    }
}

/// A front-end pool whose XMPP server xfed manages (Prosody): the relay's
/// trust (the edge's internal certificate, the internal CA) and the
/// front-end's own internal certificate.
fn managed(frontend_cert: &str) -> String {
    let text = edited(
        "        address: 203.0.113.11\n",
        "        address: 203.0.113.11\n    xmpp_server:\n      address: 203.0.113.11\n      managed: prosody\n",
    );
    let certs = format!(
        "  - name: edge-int\n    pool: edge-hq\n    usage: internal\n    issuer: {{ kind: csr }}\n{frontend_cert}dns:\n"
    );
    assert!(text.contains("dns:\n"));
    text.replacen("dns:\n", &certs, 1) + "gateway:\n  internal_ca: /pki/ca.crt\n"
}

#[test]
fn a_managed_xmpp_server_with_its_certificate_is_valid() {
    let fe = "  - name: fe-int\n    pool: fe-hq\n    usage: internal\n    issuer: { kind: csr }\n";
    assert_eq!(diagnose(&managed(fe), true), Vec::<String>::new());
    let src = Source::new("spec.yaml", managed(fe));
    let spec = spec::load(&src, inputs(true)).expect("valid").spec;
    let cert = spec
        .certificates
        .iter()
        .find(|c| c.name == "fe-int")
        .expect("fe-int");
    assert_eq!(cert.pool_role, spec::Role::Frontend);
    // The pool's XMPP domains and its servers, no SIP name.
    assert_eq!(cert.sans, ["contoso.example", "fe1.contoso.example"]);
}

/// A partner's additional domains are its domains everywhere the gateway
/// speaks for it: the managed server routes them to the edge, and the
/// edge's internal certificate (its identity as the partners towards the
/// internal server) names them.
#[test]
fn additional_domains_are_routed_and_in_the_internal_certificate() {
    let fe = "  - name: fe-int\n    pool: fe-hq\n    usage: internal\n    issuer: { kind: csr }\n";
    let text = managed(fe).replacen(
        "  - domain: fabrikam.example\n",
        "  - domain: fabrikam.example\n    additional_domains: [conference.fabrikam.example]\n",
        1,
    );
    let spec = load_ok(&text);
    let edge = spec
        .certificates
        .iter()
        .find(|c| c.name == "edge-int")
        .expect("edge-int");
    assert!(
        edge.sans
            .contains(&"conference.fabrikam.example".to_string())
            && edge.sans.contains(&"fabrikam.example".to_string()),
        "{:?}",
        edge.sans
    );
    assert_eq!(
        xfed::topology::RouteTable::build(&spec, "fe-hq").partners,
        ["fabrikam.example", "conference.fabrikam.example"]
    );
}

#[test]
fn a_managed_xmpp_server_without_a_certificate_is_refused_at_managed() {
    assert_eq!(
        diagnose(&managed(""), true),
        vec!["20:16: Error: the managed XMPP server of front-end pool `fe-hq` has no certificate | expected a certificate with `pool: fe-hq` and `usage: internal` | hint: the gateways' internal listener requires mutual TLS: the front-end presents this certificate, issued by the internal CA (`issuer: { kind: internal_ca, ... }`)".to_string()]
    );
}

#[test]
fn a_front_end_certificate_for_external_use_is_refused() {
    let explicit =
        "  - name: fe-ext\n    pool: fe-hq\n    usage: external\n    issuer: { kind: csr }\n";
    let implicit = "  - name: fe-ext\n    pool: fe-hq\n    issuer: { kind: csr }\n";
    let hint = " | expected `usage: internal` for a front-end pool's certificate | hint: a front-end's certificate is its XMPP server's identity towards the gateways' internal listeners: set `usage: internal`";
    let first = |d: Vec<String>| {
        d.into_iter()
            .find(|l| l.contains("fe-ext"))
            .unwrap_or_default()
    };
    assert_eq!(
        first(diagnose(&managed(explicit), true)),
        format!(
            "41:12: Error: certificate `fe-ext` names front-end pool `fe-hq`, which has no external listener{hint}"
        )
    );
    assert_eq!(
        first(diagnose(&managed(implicit), true)),
        format!(
            "40:11: Error: certificate `fe-ext` names front-end pool `fe-hq`, which has no external listener{hint}"
        )
    );
}

#[test]
fn a_managed_xmpp_server_listens_on_an_ip_address() {
    let fe = "  - name: fe-int\n    pool: fe-hq\n    usage: internal\n    issuer: { kind: csr }\n";
    let text = managed(fe).replacen(
        "      address: 203.0.113.11\n      managed",
        "      address: xmpp.contoso.example\n      managed",
        1,
    );
    assert_eq!(
        diagnose(&text, true),
        vec!["19:16: Error: a managed XMPP server listens on an IP address, not `xmpp.contoso.example` | expected an IPv4 or IPv6 address of the pool's servers".to_string()]
    );
}

//! What the internal-xmpp module renders for a front-end pool whose XMPP
//! server xfed manages, without a network: which files and handlers on
//! which hosts, and Prosody's configuration as Lua itself reads it
//! (`lua5.4`, Prosody's interpreter, evaluates the rendered file).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use xfed::modules::{self, Artifact};
use xfed::plan::{Desired, Notify, Resource};
use xfed::spec::{self, MapInputs, Source};

const BASE: &str = include_str!("fixtures/base.yaml");

/// The base fixture with a managed Prosody on fe-hq (when `managed`), its
/// certificate, the edge's internal certificate and the internal CA at
/// `ca`.
fn spec_with(ca: &str, managed: bool) -> spec::Spec {
    let server = if managed {
        "    xmpp_server: { address: 203.0.113.11, managed: prosody }\n"
    } else {
        "    xmpp_server: { address: 203.0.113.11 }\n"
    };
    let text = BASE
        .replacen(
            "        address: 203.0.113.11\n",
            &format!("        address: 203.0.113.11\n{server}"),
            1,
        )
        .replacen(
            "dns:\n",
            "  - { name: edge-int, pool: edge-hq, usage: internal, issuer: { kind: csr } }\n  - { name: fe-int, pool: fe-hq, usage: internal, issuer: { kind: csr } }\ndns:\n",
            1,
        )
        + &format!("gateway:\n  internal_ca: {ca}\n");
    let mut inputs = MapInputs::default();
    inputs.env.insert("PDNS_API_KEY".into(), "k".into());
    match spec::load(&Source::new("spec.yaml", text.as_str()), Arc::new(inputs)) {
        Ok(loaded) => loaded.spec,
        Err(e) => panic!("the spec is valid:\n{e}\n{text}"),
    }
}

fn expand(spec: &spec::Spec) -> Vec<Resource> {
    let artifacts = HashMap::from([(
        "gateway".to_string(),
        Artifact {
            path: PathBuf::from("target/release/xfed-gateway"),
            sha256: "0".repeat(64),
            size: 1,
        },
    )]);
    modules::expand(spec, &artifacts, &HashMap::new()).expect("expands")
}

fn ca_file() -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(
        f.path(),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    f
}

/// fe1's resource whose address ends with `suffix`.
fn on_fe1<'a>(resources: &'a [Resource], suffix: &str) -> &'a Resource {
    resources
        .iter()
        .find(|r| r.host == "fe1.contoso.example" && r.address.ends_with(suffix))
        .unwrap_or_else(|| panic!("fe1 has no {suffix}"))
}

fn content(r: &Resource) -> &str {
    match &r.desired {
        Desired::File(f) => &f.content,
        other => panic!("{} is not a file: {other:?}", r.address),
    }
}

#[test]
fn the_managed_server_gets_its_files_certificate_and_handlers() {
    let ca = ca_file();
    let spec = spec_with(ca.path().to_str().expect("utf-8"), true);
    let rs = expand(&spec);
    let service = on_fe1(&rs, "/service:xfed-prosody");
    let notify = |suffix: &str| on_fe1(&rs, suffix).notifies.clone();
    let restart = Some((service.address.clone(), Notify::Restart));
    let reload = Some((service.address.clone(), Notify::Reload));
    assert_eq!(notify("/etc/xfed/prosody/server.cfg.lua"), restart);
    assert_eq!(
        notify("/etc/xfed/prosody/plugins/mod_xfed_route.lua"),
        restart
    );
    assert_eq!(notify("/etc/xfed/prosody/prosody.cfg.lua"), reload);
    assert_eq!(notify("/etc/xfed/prosody/routes.json"), reload);
    assert_eq!(notify("/etc/xfed/prosody/internal-ca.crt"), reload);
    assert_eq!(notify("/certificate:fe-int"), restart);
    match &on_fe1(&rs, "/certificate:fe-int").desired {
        Desired::Certificate(c) => {
            assert_eq!(c.cert_path, "/etc/xfed/prosody/tls/internal.crt");
            assert_eq!(c.sans, ["contoso.example", "fe1.contoso.example"]);
        }
        other => panic!("{other:?}"),
    }
    match &service.desired {
        Desired::Service(s) => {
            assert_eq!(
                s.exec,
                [
                    "/usr/bin/prosody",
                    "-F",
                    "--config",
                    "/etc/xfed/prosody/prosody.cfg.lua"
                ]
            );
            assert_eq!(s.pid_file, "/var/lib/xfed/prosody/xfed-prosody.pid");
        }
        other => panic!("{other:?}"),
    }
    let routes: xfed::topology::RouteTable =
        serde_json::from_str(content(on_fe1(&rs, "/routes.json"))).expect("routes.json");
    assert_eq!(routes.partners, ["fabrikam.example"]);
    assert_eq!(routes.targets[0].address, "203.0.113.101");
    assert_eq!(routes.targets[0].port, 23456);
    // The edge's certificates stay on the edge.
    assert!(
        rs.iter()
            .filter(|r| r.address.contains("/certificate:edge-"))
            .all(|r| r.host == "edge1.contoso.example")
    );
}

#[test]
fn an_unmanaged_server_gets_nothing_of_it() {
    let ca = ca_file();
    let spec = spec_with(ca.path().to_str().expect("utf-8"), false);
    let rs = expand(&spec);
    assert!(
        rs.iter()
            .all(|r| !r.address.contains("prosody") && !r.address.contains("certificate:fe-int")),
        "{:#?}",
        rs.iter().map(|r| &r.address).collect::<Vec<_>>()
    );
}

/// The rendered configuration as Lua reads it: every file compiles, and
/// the main one, run with Prosody's config directives stubbed, sets what
/// xfed means.
#[test]
fn prosodys_config_is_lua_that_says_what_the_spec_says() {
    let ca = ca_file();
    let spec = spec_with(ca.path().to_str().expect("utf-8"), true);
    let rs = expand(&spec);
    let dir = tempfile::tempdir().expect("tempdir");
    for name in [
        "server.cfg.lua",
        "prosody.cfg.lua",
        "plugins/mod_xfed_route.lua",
    ] {
        let path = dir.path().join(name.replace('/', "_"));
        std::fs::write(&path, content(on_fe1(&rs, &format!("/{name}")))).expect("write");
        let check = format!("assert(loadfile({:?}))", path.display().to_string());
        let out = std::process::Command::new("lua5.4")
            .args(["-e", &check])
            .output()
            .expect("lua5.4 (Prosody's interpreter) is installed with Prosody");
        assert!(
            out.status.success(),
            "{name} is not Lua: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let main = dir.path().join("prosody.cfg.lua");
    let script = format!(
        r#"local hosts, included = {{}}, nil
local env = setmetatable({{
  Include = function(p) included = p end,
  VirtualHost = function(h) hosts[#hosts + 1] = h end,
}}, {{ __index = _G }})
assert(loadfile({main:?}, "t", env))()
print(included)
print(table.concat(hosts, ","))
print(tostring(env.s2s_secure_auth), tostring(env.s2s_require_encryption))
print(env.ssl.certificate, env.ssl.key, env.ssl.cafile)
print(env.xfed_route_file)"#,
        main = main.display().to_string()
    );
    let out = std::process::Command::new("lua5.4")
        .args(["-e", &script])
        .output()
        .expect("lua5.4");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "/etc/xfed/prosody/server.cfg.lua\n\
         contoso.example\n\
         true\ttrue\n\
         /etc/xfed/prosody/tls/internal.crt\t/etc/xfed/prosody/tls/internal.key\t/etc/xfed/prosody/internal-ca.crt\n\
         /etc/xfed/prosody/routes.json\n"
    );
}

/// On a fresh front-end, the front-end stage writes Prosody's files, puts
/// its certificate in place, then starts it — in that order, in the stage
/// that runs before any edge.
#[test]
fn the_front_end_stage_writes_certifies_then_starts_prosody() {
    use xfed::plan::{self, Observed, ServiceFact, ServiceOp};
    let ca = ca_file();
    let spec = spec_with(ca.path().to_str().expect("utf-8"), true);
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
                Desired::Listener(_) => Observed::Listener(plan::ListenerFact { listening: false }),
                Desired::Certificate(_) => Observed::Certificate(Default::default()),
                _ => Observed::File(None),
            };
            (r.address.clone(), o)
        })
        .collect();
    let p = plan::build(&rs, &fresh, &["edge-hq".to_string()], 1);
    assert_eq!(p.stages[0].name(), "front-end");
    let fe: Vec<String> = p.stages[0]
        .changes
        .iter()
        .map(|&i| plan::short_address(&p.changes[i].address))
        .filter(|a| a.contains("prosody") || a.contains("fe-int"))
        .collect();
    assert_eq!(
        fe,
        [
            "file:/etc/xfed/prosody/server.cfg.lua",
            "file:/etc/xfed/prosody/plugins/mod_xfed_route.lua",
            "file:/etc/xfed/prosody/prosody.cfg.lua",
            "file:/etc/xfed/prosody/routes.json",
            "file:/etc/xfed/prosody/internal-ca.crt",
            "certificate:fe-int",
            "service:xfed-prosody",
        ]
    );
    let start = p
        .changes
        .iter()
        .find(|c| c.address.ends_with("/service:xfed-prosody"))
        .expect("service change");
    assert_eq!(start.service_op, Some(ServiceOp::Start));
}

//! The module library: manifests and templates compiled into the binary
//! from the repository's `modules/` folder, so `xfed` runs from anywhere
//! with exactly the modules it was built and tested with.

/// (path under `modules/`, content)
pub const FILES: &[(&str, &str)] = &[
    (
        "frontend/module.yaml",
        include_str!("../../modules/frontend/module.yaml"),
    ),
    (
        "frontend/topology.json.j2",
        include_str!("../../modules/frontend/topology.json.j2"),
    ),
    (
        "xmpp-gateway/module.yaml",
        include_str!("../../modules/xmpp-gateway/module.yaml"),
    ),
    (
        "xmpp-gateway/gateway.toml.j2",
        include_str!("../../modules/xmpp-gateway/gateway.toml.j2"),
    ),
    (
        "xmpp-gateway/policy.toml.j2",
        include_str!("../../modules/xmpp-gateway/policy.toml.j2"),
    ),
    (
        "xmpp-gateway/internal-ca.crt.j2",
        include_str!("../../modules/xmpp-gateway/internal-ca.crt.j2"),
    ),
    (
        "xmpp-gateway/partner-ca.crt.j2",
        include_str!("../../modules/xmpp-gateway/partner-ca.crt.j2"),
    ),
    (
        "xmpp-gateway/dialback.secret.j2",
        include_str!("../../modules/xmpp-gateway/dialback.secret.j2"),
    ),
    (
        "xmpp-gateway/dialback.previous.j2",
        include_str!("../../modules/xmpp-gateway/dialback.previous.j2"),
    ),
    (
        "xmpp-gateway/xfed-gateway.service.j2",
        include_str!("../../modules/xmpp-gateway/xfed-gateway.service.j2"),
    ),
    (
        "internal-xmpp/module.yaml",
        include_str!("../../modules/internal-xmpp/module.yaml"),
    ),
    (
        "internal-xmpp/server.cfg.lua.j2",
        include_str!("../../modules/internal-xmpp/server.cfg.lua.j2"),
    ),
    (
        "internal-xmpp/prosody.cfg.lua.j2",
        include_str!("../../modules/internal-xmpp/prosody.cfg.lua.j2"),
    ),
    (
        "internal-xmpp/mod_xfed_route.lua",
        include_str!("../../modules/internal-xmpp/mod_xfed_route.lua"),
    ),
    (
        "internal-xmpp/routes.json.j2",
        include_str!("../../modules/internal-xmpp/routes.json.j2"),
    ),
    (
        "internal-xmpp/internal-ca.crt.j2",
        include_str!("../../modules/internal-xmpp/internal-ca.crt.j2"),
    ),
    (
        "internal-xmpp/xfed-prosody.service.j2",
        include_str!("../../modules/internal-xmpp/xfed-prosody.service.j2"),
    ),
];

/// Names of the modules, in the order they expand.
pub const MODULES: &[&str] = &["frontend", "internal-xmpp", "xmpp-gateway"];

pub fn file(path: &str) -> Option<&'static str> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, c)| *c)
}

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
        "xmpp-gateway/xfed-gateway.service.j2",
        include_str!("../../modules/xmpp-gateway/xfed-gateway.service.j2"),
    ),
];

/// Names of the modules, in the order they expand.
pub const MODULES: &[&str] = &["frontend", "xmpp-gateway"];

pub fn file(path: &str) -> Option<&'static str> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, c)| *c)
}

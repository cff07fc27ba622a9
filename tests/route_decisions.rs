//! The outbound route of a front-end pool's managed XMPP server, without a
//! network: which edge internal listeners, in which order (the site's
//! route first, then the other XMPP edge pools by SRV priority), and the
//! table the Prosody plugin reads.

use std::path::PathBuf;
use std::sync::Arc;

use xfed::spec::{self, MapInputs, Source, Spec};
use xfed::topology::RouteTable;

const MULTI_SITE: &str = include_str!("../playbooks/multi-site.yaml");

/// playbooks/multi-site.yaml with edits applied (each must apply).
fn multi_site(edits: &[(&str, &str)]) -> Spec {
    let mut text = MULTI_SITE.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "multi-site.yaml lacks {from:?}");
        text = text.replacen(from, to, 1);
    }
    let mut inputs = MapInputs::default();
    inputs.env.insert("PDNS_API_KEY".into(), "k".into());
    let src = Source::new(PathBuf::from("multi-site.yaml"), text);
    match spec::load(&src, Arc::new(inputs)) {
        Ok(loaded) => loaded.spec,
        Err(e) => panic!("multi-site does not load:\n{e}"),
    }
}

/// `pool server address:port` per target, in order.
fn order(t: &RouteTable) -> Vec<String> {
    t.targets
        .iter()
        .map(|x| format!("{} {}:{}", x.pool, x.address, x.port))
        .collect()
}

#[test]
fn the_sites_route_comes_first_then_the_other_pools_by_srv_priority() {
    let spec = multi_site(&[]);
    assert_eq!(
        order(&RouteTable::build(&spec, "fe-dublin")),
        [
            "edge-dublin 192.0.2.121:23456",
            "edge-redmond 192.0.2.111:23456",
            "edge-singapore 192.0.2.131:23456",
        ]
    );
    assert_eq!(
        order(&RouteTable::build(&spec, "fe-singapore")),
        [
            "edge-singapore 192.0.2.131:23456",
            "edge-redmond 192.0.2.111:23456",
            "edge-dublin 192.0.2.121:23456",
        ]
    );
}

#[test]
fn fallback_follows_priority_not_spec_order_and_ties_keep_spec_order() {
    // Redmond becomes the last resort; Dublin and Singapore tie.
    let spec = multi_site(&[
        (
            "srv: { priority: 10, weight: 100 }",
            "srv: { priority: 40, weight: 100 }",
        ),
        (
            "srv: { priority: 30, weight: 100 }",
            "srv: { priority: 20, weight: 100 }",
        ),
    ]);
    assert_eq!(
        order(&RouteTable::build(&spec, "fe-redmond")),
        [
            "edge-redmond 192.0.2.111:23456",
            "edge-dublin 192.0.2.121:23456",
            "edge-singapore 192.0.2.131:23456",
        ]
    );
    assert_eq!(
        order(&RouteTable::build(&spec, "fe-singapore")),
        [
            "edge-singapore 192.0.2.131:23456",
            "edge-dublin 192.0.2.121:23456",
            "edge-redmond 192.0.2.111:23456",
        ]
    );
}

#[test]
fn a_pool_without_xmpp_federation_is_never_a_fallback() {
    let spec = multi_site(&[
        (
            "    site: singapore\n    xmpp_federation: true\n",
            "    site: singapore\n    xmpp_federation: false\n",
        ),
        (
            "  - { name: singapore, frontend_pool: fe-singapore, xmpp_route: edge-singapore }",
            "  - { name: singapore, frontend_pool: fe-singapore, xmpp_route: edge-redmond }",
        ),
    ]);
    let t = RouteTable::build(&spec, "fe-singapore");
    assert_eq!(
        order(&t),
        [
            "edge-redmond 192.0.2.111:23456",
            "edge-dublin 192.0.2.121:23456",
        ]
    );
}

#[test]
fn every_partner_is_routed_and_the_table_is_the_json_the_plugin_reads() {
    let spec = multi_site(&[(
        "\nsites:\n",
        "\npartners:\n  - domain: fabrikam.example\n  - domain: litware.example\n\nsites:\n",
    )]);
    let t = RouteTable::build(&spec, "fe-redmond");
    assert_eq!(t.partners, ["fabrikam.example", "litware.example"]);
    let first = &t.targets[0];
    assert_eq!(
        (first.family.as_str(), first.server.as_str()),
        ("tcp4", "edge1.redmond.contoso.example")
    );
    let back: RouteTable = serde_json::from_str(&t.to_json()).expect("json");
    assert_eq!(back, t);
    let doc: serde_json::Value = serde_json::from_str(&t.to_json()).expect("json");
    assert_eq!(doc["targets"][0]["port"], 23456);
    assert_eq!(doc["partners"][1], "litware.example");
}

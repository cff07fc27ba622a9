//! The rollout's order and batches, decided from the spec without a
//! network: the pool that carries the traffic changes last, a serial may be
//! a share of a pool, and a failure budget is a share of a pool too.

use std::path::Path;
use std::sync::Arc;

use xfed::engine::prepare::rollout_order;
use xfed::spec::{self, MapInputs, Rollout, Serial, Source};

fn load(text: &str) -> xfed::spec::Spec {
    let mut i = MapInputs::default();
    i.env.insert("PDNS_API_KEY".into(), "key".into());
    match spec::load(
        &Source::new(Path::new("multi-site.yaml"), text),
        Arc::new(i),
    ) {
        Ok(l) => l.spec,
        Err(e) => panic!("the playbook loads: {e}"),
    }
}

const MULTI_SITE: &str = include_str!("../playbooks/multi-site.yaml");

#[test]
fn pools_roll_from_the_last_fallback_to_the_primary() {
    let spec = load(MULTI_SITE);
    let order: Vec<String> = rollout_order(&spec).into_iter().map(|(p, _)| p).collect();
    // SRV priorities: redmond 10 (primary), dublin 20, singapore 30.
    assert_eq!(order, ["edge-singapore", "edge-dublin", "edge-redmond"]);
}

#[test]
fn the_plan_stages_follow_that_order() {
    let spec = load(MULTI_SITE);
    // One resource per server is enough to make a stage per pool.
    let resources: Vec<xfed::plan::Resource> = spec
        .edge_pools
        .iter()
        .flat_map(|p| {
            p.servers.iter().map(move |s| xfed::plan::Resource {
                address: format!("edge/{}/{}/file:/etc/xfed/x", p.name, s.server.fqdn),
                host: s.server.fqdn.clone(),
                role: xfed::spec::Role::Edge,
                pool: p.name.clone(),
                phase: xfed::plan::Phase::Edge,
                desired: xfed::plan::Desired::File(xfed::plan::FileSpec {
                    path: "/etc/xfed/x".into(),
                    content: "x".into(),
                    mode: 0o644,
                    owner: "root".into(),
                    group: "root".into(),
                    sensitive: false,
                    reload_scope: None,
                }),
                origin: p.origin.clone(),
                notifies: None,
            })
        })
        .collect();
    let plan =
        xfed::plan::build_rollout(&resources, &Default::default(), &rollout_order(&spec), &[]);
    let pools: Vec<&str> = plan.stages.iter().filter_map(|s| s.pool()).collect();
    let mut seen: Vec<&str> = Vec::new();
    for p in pools {
        if seen.last() != Some(&p) {
            seen.push(p);
        }
    }
    assert_eq!(seen, ["edge-singapore", "edge-dublin", "edge-redmond"]);
}

#[test]
fn a_serial_share_is_rounded_down_but_never_below_one_server() {
    assert_eq!(Serial::Percent(30).batch(10), 3);
    assert_eq!(Serial::Percent(30).batch(4), 1);
    assert_eq!(Serial::Percent(50).batch(4), 2);
    assert_eq!(Serial::Percent(100).batch(7), 7);
    assert_eq!(Serial::Count(2).batch(7), 2);
    assert_eq!(Serial::Count(0).batch(7), 1);
}

#[test]
fn a_serial_share_in_the_spec_batches_each_pool_by_its_size() {
    let text = MULTI_SITE.replace("rollout:\n", "rollout:\n  serial: \"50%\"\n");
    let text = text.replacen("  serial: 1\n", "", 1);
    let spec = load(&text);
    assert_eq!(spec.rollout.serial, Serial::Percent(50));
    for (pool, batch) in rollout_order(&spec) {
        let n = spec.edge_pool(&pool).map_or(0, |p| p.servers.len());
        assert_eq!(batch, (n / 2).max(1), "{pool}");
    }
}

#[test]
fn the_failure_budget_is_a_share_of_the_pool_rounded_down() {
    let r = |p: u8| Rollout {
        serial: Serial::Count(1),
        health_gate_timeout: std::time::Duration::from_secs(30),
        max_fail_percentage: p,
    };
    assert_eq!(r(25).failure_budget(4), 1);
    assert_eq!(r(25).failure_budget(3), 0);
    assert_eq!(r(0).failure_budget(100), 0);
    assert_eq!(r(100).failure_budget(4), 4);
}

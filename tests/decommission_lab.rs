//! Decommissioning against the real lab, through the real `xfed` binary:
//! an edge server removed from the spec is destroyed — its gateway stopped,
//! the files its manifest lists removed, its DNS records gone — while the
//! other edge is left running; a whole site (its front-end with its XMPP
//! server, and its edge pool) leaves the same way. The world is checked with `ss`, `test -e`
//! and `dig`, and the lab is put back to the full playbook at the end.
//!
//! Run inside the lab's controller namespace (tests/run does):
//! `tests/lab/lab exec -- cargo test --test decommission_lab`.

mod common;

use common::internal::InternalServer;
use common::lab::{Host, Lab};
use common::xfed::{apply_ok, gateway_pid, lab_spec, reset, two_sites, xfed};

const EDGE2: &str = "      - fqdn: edge2.{{ domain }}\n        internal: { address: 203.0.113.102 }\n        external: { fqdn: \"xmpp2.{{ domain }}\", address: 198.51.100.102 }\n";

const TOPOLOGY: &str = "/etc/xfed/topology.json";

fn dig(lab: &Lab, server: &str, q: &[&str]) -> String {
    let out = lab
        .command("dig")
        .args(["+short", &format!("@{server}")])
        .args(q)
        .output()
        .expect("dig");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every path the manifest on `h` lists (files, binaries, certificates).
fn managed_paths(lab: &Lab, h: &Host) -> Vec<String> {
    let text = lab.ssh_ok(h, "cat /var/lib/xfed/managed.json");
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).expect("manifest JSON");
    entries
        .iter()
        .flat_map(|e| ["path", "cert_path", "key_path"].map(|k| e.get(k).cloned()))
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// The published topology on `fe` with one more edge server in its first
/// pool, reached over SSH at `ssh_host`: a record of a server xfed once
/// deployed and the spec no longer has.
fn plant_record(lab: &Lab, fe: &Host, original: &str, fqdn: &str, ssh_host: &str) {
    let mut t: serde_json::Value = serde_json::from_str(original).expect("topology JSON");
    let servers = t["edge_pools"][0]["servers"]
        .as_array_mut()
        .expect("servers");
    servers.push(serde_json::json!({
        "fqdn": fqdn,
        "internal": format!("{ssh_host}:23456"),
        "external": { "fqdn": "xmpp9.contoso.example", "address": "198.51.100.109:5269" },
        "ssh": { "host": ssh_host, "port": 22, "user": "root" },
    }));
    write_topology(lab, fe, &t.to_string());
}

fn write_topology(lab: &Lab, fe: &Host, text: &str) {
    lab.ssh_ok(
        fe,
        &format!("cat > {TOPOLOGY} <<'XFED_EOF'\n{text}\nXFED_EOF"),
    );
}

#[test]
fn a_server_removed_from_the_spec_is_destroyed_and_the_rest_untouched() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let full = lab_spec(lab, |t| t);
    apply_ok(lab, &full);

    let (fe1, edge1, edge2) = (lab.host("fe1"), lab.host("edge1"), lab.host("edge2"));
    let edge2_files = managed_paths(lab, edge2);
    assert!(
        edge2_files.iter().any(|p| p.ends_with("/gateway.toml")),
        "{edge2_files:?}"
    );
    let edge1_pid = gateway_pid(lab, edge1);
    let edge1_files = managed_paths(lab, edge1);
    let published = lab.ssh_ok(fe1, &format!("cat {TOPOLOGY}"));
    assert!(
        published.contains("\"ssh\""),
        "the record says how each server is reached: {published}"
    );

    let without = lab_spec(lab, |t| {
        assert!(t.contains(EDGE2), "playbooks/lab.yaml changed");
        t.replace(EDGE2, "")
    });

    // The plan says destroy, once, for edge2 alone.
    let plan = xfed(lab, &["plan", "--detailed-exitcode", without.path()]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout
            .contains("── stage decommission: edge2.contoso.example"),
        "{plan:?}"
    );
    assert!(
        plan.stdout
            .contains("- edge/edge2.contoso.example (destroy)"),
        "{plan:?}"
    );
    assert!(
        plan.stdout
            .contains("- edge/edge-hq/edge2.contoso.example/service:xfed-gateway"),
        "{plan:?}"
    );
    assert!(
        !plan.stdout.contains("edge1.contoso.example (destroy)"),
        "{plan:?}"
    );

    // Two servers to destroy (edge2, and one more the record lists):
    // refused without --allow-destroy, by plan and by apply.
    plant_record(
        lab,
        fe1,
        &published,
        "edge9.contoso.example",
        &edge2.internal,
    );
    let two = xfed(lab, &["plan", without.path()]);
    assert_eq!(two.code, 1, "{two:?}");
    assert!(
        two.stdout
            .contains("- edge/edge9.contoso.example (destroy)"),
        "{two:?}"
    );
    assert!(
        two.stdout
            .contains("this plan destroys 2 servers; apply needs --allow-destroy"),
        "{two:?}"
    );
    assert!(two.stderr.contains("--allow-destroy"), "{two:?}");
    let refused = xfed(lab, &["apply", "--auto-approve", without.path()]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("nothing was changed"),
        "{refused:?}"
    );
    assert!(
        refused
            .stderr
            .contains("destroying more than one needs --allow-destroy"),
        "{refused:?}"
    );
    assert!(
        lab.ssh_ok(edge2, "ss -ltnH").contains(":5269"),
        "a refused apply left edge2 running"
    );
    let allowed = xfed(lab, &["plan", "--allow-destroy", without.path()]);
    assert_eq!(allowed.code, 0, "{allowed:?}");

    // A server that cannot be reached is reported with what is left on it,
    // and its destroy refused, flag or not.
    plant_record(
        lab,
        fe1,
        &published,
        "edge9.contoso.example",
        "203.0.113.199",
    );
    let lost = xfed(lab, &["plan", "--allow-destroy", without.path()]);
    assert_eq!(lost.code, 1, "{lost:?}");
    assert!(
        lost.stdout.contains(
            "edge/edge9.contoso.example (destroy): left the spec, but cannot be decommissioned"
        ),
        "{lost:?}"
    );
    assert!(lost.stdout.contains("198.51.100.109:5269"), "{lost:?}");
    assert!(
        lost.stdout.contains("/var/lib/xfed/managed.json"),
        "{lost:?}"
    );
    // Gone for good: --forget drops it from the record without contacting
    // it, and only a server that left the spec can be forgotten.
    let typo = xfed(
        lab,
        &["plan", "--forget", "edge1.contoso.example", without.path()],
    );
    assert_eq!(typo.code, 1, "{typo:?}");
    assert!(
        typo.stderr
            .contains("`--forget edge1.contoso.example` names no server that left the spec"),
        "{typo:?}"
    );

    // The destroy of edge2 and the forgetting of edge9, saved and applied
    // (one server destroyed: no --allow-destroy).
    let planfile = without.dir.path().join("destroy.plan");
    let saved = xfed(
        lab,
        &[
            "plan",
            "--forget",
            "edge9.contoso.example",
            "--out",
            planfile.to_str().expect("utf-8"),
            without.path(),
        ],
    );
    assert!(
        saved
            .stdout
            .contains("- edge/edge9.contoso.example (forget): left the spec and is gone for good")
            && saved
                .stdout
                .contains("- edge/edge2.contoso.example (destroy)"),
        "{saved:?}"
    );
    assert_eq!(saved.code, 0, "{saved:?}");
    let text = std::fs::read_to_string(&planfile).expect("plan file");
    assert!(
        text.contains("\"decommission\""),
        "a saved plan carries its destroys"
    );
    let applied = xfed(lab, &["apply", planfile.to_str().expect("utf-8")]);
    assert_eq!(applied.code, 0, "{applied:?}");

    // Nothing listens on edge2's federation, internal or admin ports.
    let listening = lab.ssh_ok(edge2, "ss -ltnH");
    for port in [":5269", ":23456", ":8089"] {
        assert!(
            !listening.contains(port),
            "edge2 still listens on {port}: {listening}"
        );
    }
    // Its files are gone, the manifest too.
    for path in edge2_files
        .iter()
        .chain(["/var/lib/xfed/managed.json".to_string()].iter())
    {
        let out = lab.ssh(edge2, &format!("test -e '{path}'"));
        assert!(!out.status.success(), "{path} is still on edge2");
    }
    // Its DNS records are gone; edge1's stay.
    assert_eq!(
        dig(lab, "198.51.100.53", &["A", "xmpp2.contoso.example"]),
        ""
    );
    assert_eq!(
        dig(
            lab,
            "198.51.100.53",
            &["SRV", "_xmpp-server._tcp.contoso.example"]
        ),
        "10 100 5269 xmpp1.contoso.example."
    );
    assert_eq!(
        dig(lab, "198.51.100.53", &["A", "xmpp1.contoso.example"]),
        "198.51.100.101"
    );
    // edge1 untouched: the same gateway process, its files in place, still
    // serving.
    assert_eq!(gateway_pid(lab, edge1), edge1_pid);
    for path in &edge1_files {
        lab.ssh_ok(edge1, &format!("test -e '{path}'"));
    }
    let ext1 = edge1.external.as_deref().expect("external");
    assert!(
        lab.ssh_ok(edge1, "ss -ltnH")
            .contains(&format!("{ext1}:5269"))
    );
    // The record forgot edge2, and edge9.
    let record = lab.ssh_ok(fe1, &format!("cat {TOPOLOGY}"));
    assert!(
        !record.contains("edge2.contoso.example") && !record.contains("edge9.contoso.example"),
        "{record}"
    );

    let verify = xfed(lab, &["verify", without.path()]);
    assert_eq!(verify.code, 0, "{verify:?}");
    let again = xfed(lab, &["plan", "--detailed-exitcode", without.path()]);
    assert_eq!(again.code, 0, "nothing left to destroy: {again:?}");

    // Back to the full playbook for the tests that share the lab.
    apply_ok(lab, &full);
    assert!(lab.ssh_ok(edge2, "ss -ltnH").contains(":5269"));
}

/// A whole site leaves: its front-end pool (fe2, with the XMPP server xfed
/// runs there) and its edge pool (edge2). Both in one plan need
/// --allow-destroy; a targeted apply destroys one server (the removed
/// server is a target), the next apply the other. hq's front-end and edge
/// keep running, and hq's users still federate.
#[test]
fn a_site_removed_from_the_spec_takes_its_front_end_and_its_edge_pool() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let full = lab_spec(lab, |t| t);
    let two = lab_spec(lab, two_sites);
    apply_ok(lab, &two);
    let (fe1, fe2, edge1, edge2) = (
        lab.host("fe1"),
        lab.host("fe2"),
        lab.host("edge1"),
        lab.host("edge2"),
    );
    let fe2_files = managed_paths(lab, fe2);
    assert!(
        fe2_files.iter().any(|p| p.ends_with("/prosody.cfg.lua")),
        "{fe2_files:?}"
    );
    assert!(lab.ssh_ok(fe2, "ss -ltnH").contains("203.0.113.12:5269"));
    let hq = InternalServer::of(lab);
    let kept = (hq.pid(), gateway_pid(lab, edge1));
    let published = lab.ssh_ok(fe1, &format!("cat {TOPOLOGY}"));
    let t: serde_json::Value = serde_json::from_str(&published).expect("topology JSON");
    let fe_dr = t["frontend_pools"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "fe-dr"))
        .expect("fe-dr in the record");
    assert_eq!(
        fe_dr["ssh"]["fe2.contoso.example"]["host"], "203.0.113.12",
        "the record says how each front-end is reached: {published}"
    );

    // Back to one site, hq with edge1 alone: fe2 and edge2 are gone.
    let one = lab_spec(lab, |t| t.replace(EDGE2, ""));
    let plan = xfed(lab, &["plan", one.path()]);
    assert_eq!(plan.code, 1, "two servers need --allow-destroy: {plan:?}");
    assert!(
        plan.stdout
            .contains("── stage decommission: fe2.contoso.example, edge2.contoso.example"),
        "{plan:?}"
    );
    assert!(
        plan.stdout
            .contains("- fe/fe2.contoso.example (destroy): left the spec; its XMPP server stops"),
        "{plan:?}"
    );
    assert!(
        plan.stdout
            .contains("- fe/fe-dr/fe2.contoso.example/service:xfed-prosody"),
        "{plan:?}"
    );
    assert!(
        plan.stdout
            .contains("- edge/edge-dr/edge2.contoso.example/service:xfed-gateway"),
        "{plan:?}"
    );
    // A name that neither the spec nor the record has is refused.
    let typo = xfed(
        lab,
        &["plan", "--target", "server:fe9.contoso.example", one.path()],
    );
    assert_eq!(typo.code, 1, "{typo:?}");
    assert!(
        typo.stderr
            .contains("names no server of the spec, nor one that left it; nothing was changed"),
        "{typo:?}"
    );

    // One at a time needs no --allow-destroy: first fe2 alone (its
    // Prosody stops, edge2 keeps serving), then the rest.
    let fe2_only = xfed(
        lab,
        &[
            "apply",
            "--auto-approve",
            "--target",
            "server:fe2.contoso.example",
            one.path(),
        ],
    );
    assert_eq!(fe2_only.code, 0, "{fe2_only:?}");
    assert!(
        fe2_only
            .stdout
            .contains("- fe/fe2.contoso.example (destroy)")
            && !fe2_only.stdout.contains("edge2.contoso.example (destroy)"),
        "{fe2_only:?}"
    );
    assert!(!lab.ssh_ok(fe2, "ss -ltnH").contains(":5269"));
    assert!(lab.ssh_ok(edge2, "ss -ltnH").contains(":5269"));
    let applied = xfed(lab, &["apply", "--auto-approve", one.path()]);
    assert_eq!(applied.code, 0, "one server left to destroy: {applied:?}");

    // fe2: its Prosody stopped, nothing of xfed's left on it.
    let listening = lab.ssh_ok(fe2, "ss -ltnH");
    assert!(
        !listening.contains(":5269") && !listening.contains(":5222"),
        "fe2 still serves XMPP: {listening}"
    );
    for path in fe2_files
        .iter()
        .chain(["/var/lib/xfed/managed.json".to_string()].iter())
    {
        let out = lab.ssh(fe2, &format!("test -e '{path}'"));
        assert!(!out.status.success(), "{path} is still on fe2");
    }
    assert!(!lab.ssh_ok(edge2, "ss -ltnH").contains(":5269"));
    // hq kept its processes, and the record forgot both servers.
    assert_eq!((hq.pid(), gateway_pid(lab, edge1)), kept);
    let record = lab.ssh_ok(fe1, &format!("cat {TOPOLOGY}"));
    assert!(
        !record.contains("fe2.contoso.example") && !record.contains("edge2.contoso.example"),
        "{record}"
    );
    let verify = xfed(lab, &["verify", one.path()]);
    assert_eq!(verify.code, 0, "{verify:?}");
    let again = xfed(lab, &["plan", "--detailed-exitcode", one.path()]);
    assert_eq!(again.code, 0, "nothing left to destroy: {again:?}");
    // hq still federates, through edge1.
    hq.register("alice");
    let text = format!("after dr left {}", std::process::id());
    hq.send("alice@contoso.example", "carol@fabrikam.example", &text);
    lab.partner("fabrikam").wait_received("carol", &text);

    apply_ok(lab, &full);
}

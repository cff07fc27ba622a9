//! The whole procedure against the real lab, through the real `xfed`
//! binary (issue #7): the seed's order, policies and routes as objects of
//! the plan, a flag change that only reloads, a partner removed and then
//! refused at the stream, a route to a pool that is gone, and two sites
//! (two front-end pools, each with its own XMPP server, two edge pools)
//! where one site's route moves.
//!
//! Run inside the lab: `tests/lab/lab exec -- cargo test --test procedure_lab`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::internal::InternalServer;
use common::lab::{Lab, Role};
use common::xfed::{
    apply_ok, assert_in_sync, gateway_admin, gateway_metric_on, gateway_pid, lab_spec, lab_stdout,
    reset, two_sites, without_partner, xfed,
};

/// Positions of `needles` in `hay`, which must all be there, in order.
fn assert_in_order(hay: &str, needles: &[&str]) {
    let mut at = 0;
    for n in needles {
        match hay[at..].find(n) {
            Some(i) => at += i + n.len(),
            None => panic!("`{n}` missing or out of order in:\n{hay}"),
        }
    }
}

/// The plan's lines for topology objects (`~ topology/policy:FedPic`).
fn topology_lines(plan: &str) -> Vec<&str> {
    plan.lines()
        .filter(|l| l.trim_start().starts_with(['+', '~', '-']) && l.contains(" topology/"))
        .collect()
}

#[test]
fn the_whole_procedure_runs_in_the_seed_order_and_ends_green() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    // A fresh lab has no zones: xfed creates them (and the ACME order of
    // the edge stage publishes its challenge in one before the DNS stage).
    let header = tempfile::NamedTempFile::new().expect("header file");
    std::fs::write(header.path(), format!("X-API-Key: {}\n", lab.dns.api_key())).expect("write");
    let header_arg = format!("@{}", header.path().display());
    for zone in ["contoso.example.", "internal.contoso.example."] {
        let url = format!("{}/api/v1/servers/localhost/zones/{zone}", lab.dns.api);
        lab_stdout(
            lab,
            "curl",
            &["-s", "-X", "DELETE", "-H", &header_arg, &url],
        );
    }
    let s = lab_spec(lab, |t| t);

    let plan = xfed(lab, &["plan", "--detailed-exitcode", s.path()]);
    assert_eq!(plan.code, 2, "{plan:?}");
    // front-end → edge (binary, config, certificate, restart; one server at a
    // time) → DNS → policies and routes.
    assert_in_order(
        &plan.stdout,
        &[
            "── stage front-end: fe1.contoso.example",
            "── stage edge-hq 1/2: edge1.contoso.example, then health gate",
            "binary:/opt/xfed/bin/xfed-gateway",
            "certificate:edge-hq-external",
            "service:xfed-gateway",
            "── stage edge-hq 2/2: edge2.contoso.example, then health gate",
            "── stage dns:",
            "SRV:_xmpp-server._tcp.contoso.example.",
            "── stage policies and routes",
            "+ topology/policy:global",
            "+ topology/grant:FedPic",
            "+ topology/partner:fabrikam.example",
            "+ topology/route:hq",
            "Effective external access changes:",
        ],
    );

    let applied = apply_ok(lab, &s);
    assert_in_order(
        &applied.stderr,
        &[
            "stage front-end",
            "stage edge-hq 1/2",
            "edge1.contoso.example: health gate passed",
            "stage edge-hq 2/2",
            "edge2.contoso.example: health gate passed",
            "stage dns",
            "stage policies and routes",
            "gateway enforces topology",
        ],
    );
    // The verify table: every listener, the topology everywhere, DNS.
    assert!(applied.stdout.contains("\nVerify:\n"), "{applied:?}");
    assert!(!applied.stdout.contains("FAIL"), "{applied:?}");
    for listener in [
        "198.51.100.101:5269",
        "203.0.113.101:23456",
        "198.51.100.102:5269",
    ] {
        assert!(applied.stdout.contains(listener), "{listener}: {applied:?}");
    }
    let topology_rows = applied
        .stdout
        .lines()
        .filter(|l| {
            l.starts_with("  ok ")
                && matches!(l.split_whitespace().nth(2), Some("front-end" | "gateway"))
        })
        .count();
    assert_eq!(
        topology_rows, 3,
        "one topology row per front-end and gateway: {applied:?}"
    );
    assert_in_sync(lab, &s);
    let verify = xfed(lab, &["verify", s.path()]);
    assert_eq!(verify.code, 0, "{verify:?}");

    // Seen with tools we did not write.
    let srv = lab_stdout(
        lab,
        "dig",
        &[
            "+short",
            "@198.51.100.53",
            "SRV",
            "_xmpp-server._tcp.contoso.example",
        ],
    );
    assert!(srv.contains("10 100 5269 xmpp1.contoso.example."), "{srv}");
    for h in lab.hosts_with(Role::Edge) {
        let ss = lab.ssh_ok(h, "ss -ltnpH");
        assert!(
            ss.contains(&format!("{}:5269", h.external.as_deref().unwrap_or("?"))),
            "{ss}"
        );
        assert!(ss.contains(&format!("{}:23456", h.internal)), "{ss}");
    }
}

#[test]
fn a_policy_flag_change_is_one_attribute_whose_users_are_named_and_only_reloads() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let s = lab_spec(lab, |t| t);
    apply_ok(lab, &s);
    let edge1 = lab.host("edge1");
    let pid = gateway_pid(lab, edge1);

    // FedPic is granted to alice: turning its XMPP access off moves her
    // alone; the global and site policies stay as they are.
    let off = lab_spec(lab, |t| {
        t.replace(
            "  - identity: FedPic\n    enable_federation_access: true\n    enable_public_cloud_access: true\n    enable_xmpp_access: true\n",
            "  - identity: FedPic\n    enable_federation_access: true\n    enable_public_cloud_access: true\n    enable_xmpp_access: false\n",
        )
    });
    let plan = xfed(lab, &["plan", "--detailed-exitcode", off.path()]);
    assert_eq!(plan.code, 2, "{plan:?}");
    let objects = topology_lines(&plan.stdout);
    assert_eq!(objects, vec!["  ~ topology/policy:FedPic"], "{plan:?}");
    assert!(
        plan.stdout
            .contains("      enable_xmpp_access: true → false"),
        "{plan:?}"
    );
    // alice, granted FedPic, is moved; per partner kind the plan names
    // the flag that now decides.
    assert!(
        plan.stdout.contains(
            "  alice@contoso.example: policy `FedPic` (granted to the user) → policy `FedPic` (granted to the user)\n\
             \x20     federated, trusted partners: allowed (`enable_federation_access` on) → refused (`enable_xmpp_access` off)\n\
             \x20     public_verified, public_unverified partners: allowed (`enable_public_cloud_access` on) → refused (`enable_xmpp_access` off)\n"
        ),
        "{plan:?}"
    );
    assert!(!plan.stdout.contains("(restart)"), "{plan:?}");

    let r = apply_ok(lab, &off);
    assert!(r.stderr.contains("reload service xfed-gateway"), "{r:?}");
    assert_eq!(
        gateway_pid(lab, edge1),
        pid,
        "a policy change must not restart the gateway"
    );
    assert_in_sync(lab, &off);
    // Back as it was, for the tests after this one.
    apply_ok(lab, &s);
}

/// Opens an S2S stream to `addr` as `from` and returns what the gateway
/// answers before it closes or stops talking.
fn open_stream(addr: &str, from: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
         xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
         to='contoso.example' from='{from}' version='1.0'>"
    )
    .expect("write header");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if text.contains("</stream:features>") || text.contains("</stream:stream>") {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// `tests/lab/federation-check ARGS…` in the lab: its stdout, and whether
/// every check passed.
fn federation_check(lab: &Lab, args: &[&str]) -> (bool, String) {
    let check = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/federation-check");
    let out = lab
        .command(&check)
        .args(args)
        .env("XFED_LAB_DIR", &lab.dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", check.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_partner_removed_from_the_spec_is_refused_at_the_stream() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let s = lab_spec(lab, |t| t);
    apply_ok(lab, &s);
    let addr = "198.51.100.101:5269";
    let welcome = open_stream(addr, "fabrikam.example");
    assert!(welcome.contains("<starttls"), "{welcome}");
    assert!(!welcome.contains("policy-violation"), "{welcome}");
    let fe1 = lab.host("fe1");
    let routes = lab.ssh_ok(fe1, "cat /etc/xfed/prosody/routes.json");
    assert!(routes.contains("\"fabrikam.example\""), "{routes}");

    let without = lab_spec(lab, |t| without_partner(&t, "fabrikam.example"));
    let plan = xfed(lab, &["plan", without.path()]);
    assert!(
        plan.stdout.contains("- topology/partner:fabrikam.example"),
        "{plan:?}"
    );
    assert!(!plan.stdout.contains("(restart)"), "{plan:?}");
    apply_ok(lab, &without);

    // Inbound: its stream is refused at the header.
    let refused = open_stream(addr, "fabrikam.example");
    assert!(refused.contains("<policy-violation"), "{refused}");
    assert!(refused.contains("</stream:stream>"), "{refused}");
    let welcome = open_stream(addr, "litware.example");
    assert!(welcome.contains("<starttls"), "{welcome}");
    // Outbound: the internal server no longer routes it to the edge, and
    // alice's message to carol comes back to alice's client as an error.
    let routes = lab.ssh_ok(fe1, "cat /etc/xfed/prosody/routes.json");
    assert!(!routes.contains("fabrikam.example"), "{routes}");
    assert!(routes.contains("\"litware.example\""), "{routes}");
    let (passed, out) = federation_check(lab, &["--unreachable", "fabrikam"]);
    assert!(passed, "{out}");
    assert!(out.contains("federation check: 1/1 passed"), "{out}");
    apply_ok(lab, &s);
}

#[test]
fn a_route_to_a_pool_gone_from_the_spec_is_a_plan_time_error_with_the_seeds_words() {
    let Some(lab) = Lab::get() else { return };
    let s = lab_spec(lab, |t| {
        t.replace("    xmpp_route: edge-hq\n", "    xmpp_route: retired\n")
    });
    let plan = xfed(lab, &["plan", s.path()]);
    assert_eq!(plan.code, 1, "{plan:?}");
    assert!(
        plan.stderr.contains(
            "site `hq` routes XMPP federation to edge pool `retired`, which does not exist"
        ),
        "{plan:?}"
    );
    assert!(
        plan.stderr.contains(
            "hint: the XMPP federation route destination is invalid; route `hq` to `edge-hq`"
        ),
        "{plan:?}"
    );
    assert!(plan.stdout.is_empty(), "nothing is planned: {plan:?}");
}

const OUTBOUND_ALLOWED: &str =
    "xfed_gateway_stanzas_total{direction=\"outbound\",verdict=\"allowed\"";

#[test]
fn moving_a_sites_route_between_two_sites_pools_moves_only_its_traffic_and_restarts_nothing() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let s = lab_spec(lab, two_sites);
    apply_ok(lab, &s);
    let (edge1, edge2) = (lab.host("edge1"), lab.host("edge2"));
    let hq = InternalServer::of(lab);
    let dr = InternalServer {
        host: lab.host("fe2"),
        ..InternalServer::of(lab)
    };
    let fabrikam = lab.partner("fabrikam");
    hq.register("alice");
    dr.register("dan");

    // What a message from `server`'s user `from` to carol adds to the
    // outbound counters of (edge1, edge2), once carol's server has it.
    let sent = |server: &InternalServer, from: &str, tag: &str| {
        let text = format!("{tag} from {from} {}", std::process::id());
        let before = (
            gateway_metric_on(lab, edge1, OUTBOUND_ALLOWED),
            gateway_metric_on(lab, edge2, OUTBOUND_ALLOWED),
        );
        server.send(
            &format!("{from}@contoso.example"),
            "carol@fabrikam.example",
            &text,
        );
        fabrikam.wait_received("carol", &text);
        (
            gateway_metric_on(lab, edge1, OUTBOUND_ALLOWED) - before.0,
            gateway_metric_on(lab, edge2, OUTBOUND_ALLOWED) - before.1,
        )
    };
    // Before: each site's users leave through their own site's pool.
    let (a, b) = sent(&hq, "alice", "before the move");
    assert!(a >= 1.0 && b == 0.0, "alice (hq): edge1 {a}, edge2 {b}");
    let (a, b) = sent(&dr, "dan", "before the move");
    assert!(a == 0.0 && b >= 1.0, "dan (dr): edge1 {a}, edge2 {b}");
    // Inbound, each user's messages land on their own site's server,
    // whichever pool the partner reached (the two-site SRV records prefer
    // edge1, hq's, but fabrikam's resolver may still hold the one-site
    // answer, TTL 300 s, where both edges share priority 10, and pick
    // edge2, dr's): the edges deliver by the recipient's home site.
    for (server, user) in [(&hq, "alice"), (&dr, "dan")] {
        let text = format!("to {user} on {} {}", server.host.name, std::process::id());
        fabrikam.send("carol", &format!("{user}@contoso.example"), &text);
        server.wait_offline(user, &text);
    }
    let statuses: String = [edge1, edge2]
        .iter()
        .map(|h| gateway_admin(lab, h, "/status"))
        .collect();
    // The edge that carried them holds a stream to the other site's server
    // beside the one to its own: to fe2 for dan on edge1, to fe1 for alice
    // on edge2.
    assert!(
        ["203.0.113.11", "203.0.113.12"]
            .iter()
            .any(|fe| statuses.contains(&format!(
                "\"fabrikam.example->contoso.example via {fe}:5269\""
            ))),
        "a stanza went to the other site's server on its own stream: {statuses}"
    );

    let moved = lab_spec(lab, |t| {
        two_sites(t).replace("    xmpp_route: edge-hq\n", "    xmpp_route: edge-dr\n")
    });
    let plan = xfed(lab, &["plan", "--detailed-exitcode", moved.path()]);
    assert_eq!(plan.code, 2, "{plan:?}");
    let objects = topology_lines(&plan.stdout);
    assert_eq!(objects, vec!["  ~ topology/route:hq"], "{plan:?}");
    assert!(
        plan.stdout.contains("      xmpp_route: edge-hq → edge-dr"),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains(
            "the path of alice@contoso.example, bob@contoso.example to every partner moves to `edge-dr`"
        ),
        "{plan:?}"
    );
    assert!(
        !plan.stdout.contains("dan@"),
        "dr's users do not move: {plan:?}"
    );
    assert!(!plan.stdout.contains("(restart)"), "{plan:?}");
    let routes =
        |server: &InternalServer| lab.ssh_ok(server.host, "cat /etc/xfed/prosody/routes.json");
    let dr_routes = routes(&dr);
    let pids = || {
        (
            gateway_pid(lab, edge1),
            gateway_pid(lab, edge2),
            hq.pid(),
            dr.pid(),
        )
    };
    let before = pids();
    apply_ok(lab, &moved);
    assert_in_sync(lab, &moved);
    assert_eq!(pids(), before, "a moved route restarts nothing");
    assert_eq!(routes(&dr), dr_routes, "dr's route table is untouched");
    let topo: serde_json::Value =
        serde_json::from_str(&lab.ssh_ok(hq.host, "cat /etc/xfed/topology.json"))
            .expect("topology");
    let route_of = |site: &str| {
        topo["sites"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == site))
            .map(|s| s["xmpp_route"].clone())
    };
    assert_eq!(route_of("hq"), Some("edge-dr".into()), "{topo}");
    assert_eq!(route_of("dr"), Some("edge-dr".into()), "{topo}");

    // After: hq's next message leaves through edge-dr (edge2) alone; dr's
    // path is what it was.
    let (a, b) = sent(&hq, "alice", "after the move");
    assert!(b >= 1.0 && a == 0.0, "alice (hq): edge1 {a}, edge2 {b}");
    let (a, b) = sent(&dr, "dan", "after the move");
    assert!(a == 0.0 && b >= 1.0, "dan (dr): edge1 {a}, edge2 {b}");
    reset(lab);
}

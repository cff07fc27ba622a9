//! The front-end's XMPP server managed by xfed (issue #12, item 1): after
//! `xfed apply` of playbooks/lab.yaml (its front-end pool says `managed:
//! prosody`), xfed's Prosody runs on fe1 with the configuration,
//! certificate, trust and outbound route xfed rendered, and a message from
//! one of our users reaches a partner through the edge gateways — the route
//! is the plugin xfed ships, not the partner's SRV records. A hand edit of
//! that configuration is drift, and apply restores it with a reload (same
//! PID).
//!
//! Everything on the wire is real: our Prosody reaches the gateways'
//! internal listeners (mutual TLS with the internal CA, SASL EXTERNAL),
//! the gateways reach the lab's fabrikam (Prosody) with the ACME
//! certificate. What arrived is read from the partner's own store
//! (mod_offline) and the gateways' `/metrics`.
//!
//! Run inside the lab: `tests/lab/lab exec -- cargo test --test internal_xmpp_lab`.

mod common;

use std::time::{Duration, Instant};

use common::internal::{CONFIG, InternalServer, LOG, PID_FILE};
use common::lab::Lab;
use common::xfed::{apply_ok, assert_in_sync, gateway_metric, lab_spec, reset, xfed};

const INTERNAL_SERVER: &str = "203.0.113.11";
const WAIT: Duration = Duration::from_secs(30);

/// Polls `check` on fe1's shell output until it holds (bounded).
fn wait_on_fe(lab: &Lab, remote: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let fe = lab.host("fe1");
    let deadline = Instant::now() + WAIT;
    loop {
        let out = String::from_utf8_lossy(&lab.ssh(fe, remote).stdout).into_owned();
        if check(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen on fe1 in {WAIT:?}; last `{remote}`:\n{out}\nProsody's log:\n{}",
            String::from_utf8_lossy(&lab.ssh(fe, &format!("tail -n 40 {LOG}")).stdout)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_managed_prosody_routes_our_users_messages_to_the_partner_through_the_edge() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let s = lab_spec(lab, |text| text);

    let first = apply_ok(lab, &s);
    assert!(
        first.stderr.contains("xfed-prosody") || first.stdout.contains("xfed-prosody"),
        "apply did not start xfed-prosody: {first:?}"
    );
    assert_in_sync(lab, &s);

    // xfed's Prosody listens on the pool's XMPP address, seen with ss.
    wait_on_fe(
        lab,
        "ss -tlnH",
        "Prosody listening on 203.0.113.11:5269",
        |out| out.contains(&format!("{INTERNAL_SERVER}:5269")),
    );
    let fe = lab.host("fe1");
    let internal = InternalServer::of(lab);
    let pid = internal.pid();
    assert!(!pid.is_empty(), "no pid in {PID_FILE}");
    let cmdline = lab.ssh_ok(fe, &format!("tr '\\0' ' ' </proc/{pid}/cmdline"));
    assert!(
        cmdline.contains(CONFIG),
        "pid {pid} is not xfed's Prosody: {cmdline}"
    );

    // alice, registered on xfed's Prosody, writes to carol at fabrikam.
    internal.register("alice");
    let fabrikam = lab.partner("fabrikam");
    let outbound = "xfed_gateway_stanzas_total{direction=\"outbound\",verdict=\"allowed\"";
    let before = gateway_metric(lab, outbound);
    let body = format!("hello carol from the managed server {}", std::process::id());
    internal.send("alice@contoso.example", "carol@fabrikam.example", &body);
    let stored = fabrikam.wait_received("carol", &body);
    assert!(stored.from.contains("alice@contoso.example"), "{stored:?}");
    // It crossed a gateway: the edge counted an allowed outbound stanza.
    let deadline = Instant::now() + WAIT;
    while gateway_metric(lab, outbound) < before + 1.0 {
        assert!(
            Instant::now() < deadline,
            "no outbound stanza counted on the gateways"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Our Prosody's streams went to the edges' internal listeners, never to
    // a partner's 5269: the route is the plugin's, not the partners' SRV.
    let streams = lab.ssh_ok(fe, "ss -tnH state established");
    assert!(
        streams.contains(":23456") && !streams.contains("198.51.100.2"),
        "fe1's streams: {streams}"
    );

    // A second plan has nothing to do.
    assert_in_sync(lab, &s);

    // A hand edit of the rendered config is drift...
    let reloads_before = lab
        .ssh_ok(fe, &format!("grep -c 'Received SIGHUP' {LOG} || true"))
        .trim()
        .parse::<u32>()
        .unwrap_or(0);
    lab.ssh_ok(fe, &format!("echo 's2s_secure_auth = false' >> {CONFIG}"));
    let drift = xfed(lab, &["drift", s.path()]);
    assert_eq!(drift.code, 2, "expected drift: {drift:?}");
    assert!(drift.stdout.contains(CONFIG), "{drift:?}");
    assert!(
        drift.stdout.contains("s2s_secure_auth = false"),
        "{drift:?}"
    );
    // ...and apply puts it back with a reload: same process, SIGHUP seen.
    let fix = apply_ok(lab, &s);
    let all = format!("{}{}", fix.stdout, fix.stderr);
    assert!(all.contains("reload service xfed-prosody"), "{fix:?}");
    assert!(!all.contains("restart service xfed-prosody"), "{fix:?}");
    let config = lab.ssh_ok(fe, &format!("cat {CONFIG}"));
    assert!(!config.contains("s2s_secure_auth = false"), "{config}");
    wait_on_fe(
        lab,
        &format!("grep -c 'Received SIGHUP' {LOG} || true"),
        "Prosody's SIGHUP",
        |out| out.trim().parse::<u32>().unwrap_or(0) > reloads_before,
    );
    assert_eq!(
        lab.ssh_ok(fe, &format!("cat {PID_FILE}")).trim(),
        pid,
        "Prosody was restarted, not reloaded"
    );
    lab.ssh_ok(fe, &format!("kill -0 {pid}"));
    assert_in_sync(lab, &s);
}

//! The front-end's XMPP server managed by xfed (issue #12, item 1): after
//! `xfed apply` of a spec whose front-end pool says `managed: prosody`,
//! xfed's Prosody runs on fe1 with the configuration, certificate, trust
//! and outbound route xfed rendered, and a message from one of our users
//! reaches a partner through the edge gateways — the route is the plugin
//! xfed ships, not the partner's SRV records. A hand edit of that
//! configuration is drift, and apply restores it with a reload (same PID).
//!
//! Everything on the wire is real: our Prosody reaches the gateways'
//! internal listeners (mutual TLS with the internal CA, SASL EXTERNAL),
//! the gateways reach the partner's Prosody (fabrikam.example) with the
//! ACME certificate. What arrived is read from the partner's own store
//! (mod_offline) and the gateways' `/metrics`.
//!
//! Run inside the lab: `tests/lab/lab exec -- cargo test --test internal_xmpp_lab`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::lab::{Lab, Role};
use common::pki;
use common::prosody::{Prosody, Setup};
use common::xfed::{
    TestSpec, apply_ok, assert_in_sync, lab_spec, lab_stdout, path_str, reset, xfed,
};

const PARTNER: &str = "fabrikam.example";
/// The partner's server: the DNS namespace's external address.
const PARTNER_ADDRESS: &str = "198.51.100.53";
const INTERNAL_SERVER: &str = "203.0.113.11";
/// Where the module puts Prosody on a lab host (`gateway.config_dir`,
/// `gateway.state_dir` at their defaults).
const CONFIG: &str = "/etc/xfed/prosody/prosody.cfg.lua";
const PID_FILE: &str = "/var/lib/xfed/prosody/xfed-prosody.pid";
const LOG: &str = "/var/lib/xfed/log/prosody.log";
const WAIT: Duration = Duration::from_secs(30);

/// A CA in `dir` (`NAME.crt`, `NAME.key`).
fn make_ca(dir: &Path, name: &str) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    pki::make_ca(&crt, &key, &format!("xfed test {name}"));
}

/// playbooks/lab.yaml plus a managed Prosody on the front-end pool, its
/// internal certificate and the gateways' (both from the test's internal
/// CA), the CAs the gateways trust, and the partner's server.
fn managed_spec(lab: &Lab, cas: &Path) -> TestSpec {
    let d = cas.display().to_string();
    lab_spec(lab, move |text| {
        let issuer = format!(
            "    key: {{ algorithm: ecdsa, bits: 256 }}\n    issuer:\n      kind: internal_ca\n      ca_cert: {d}/internal-ca.crt\n      ca_key: \"{{{{ file('{d}/internal-ca.key') }}}}\"\n"
        );
        let edits = [
            (
                "    users: [\"alice@{{ domain }}\", \"bob@{{ domain }}\"]\n",
                format!(
                    "    users: [\"alice@{{{{ domain }}}}\", \"bob@{{{{ domain }}}}\"]\n    xmpp_server: {{ address: {INTERNAL_SERVER}, managed: prosody }}\n"
                ),
            ),
            (
                "\ndns:\n",
                format!(
                    "  - name: edge-hq-internal\n    pool: edge-hq\n    usage: internal\n{issuer}  - name: fe-hq-internal\n    pool: fe-hq\n    usage: internal\n{issuer}\ndns:\n"
                ),
            ),
            (
                "    dialback: false\n",
                format!("    dialback: false\n    proxy: \"{PARTNER_ADDRESS}:5269\"\n"),
            ),
            (
                "gateway:\n  service_manager: direct\n",
                format!(
                    "gateway:\n  service_manager: direct\n  internal_ca: {d}/internal-ca.crt\n  partner_ca: {d}/partner-ca.crt\n"
                ),
            ),
        ];
        let mut text = text;
        for (from, to) in edits {
            assert!(
                text.contains(from),
                "playbooks/lab.yaml changed: no {from:?}"
            );
            text = text.replacen(from, &to, 1);
        }
        text
    })
}

/// `s` as one word of a POSIX shell line.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Stops xfed's Prosody on fe1 (by its pid file) when the test ends, even
/// by a panic: the next lab test binds the same address with its own.
struct StopProsody<'a>(&'a Lab);

impl StopProsody<'_> {
    fn now(&self) {
        let fe = self.0.host("fe1");
        let _ = self.0.ssh(
            fe,
            &format!(
                "pid=$(cat {PID_FILE} 2>/dev/null | tr -cd 0-9); \
                 if [ -n \"$pid\" ]; then kill \"$pid\" 2>/dev/null; \
                   for i in $(seq 1 200); do kill -0 \"$pid\" 2>/dev/null || break; sleep 0.05; done; \
                   kill -9 \"$pid\" 2>/dev/null; fi; true"
            ),
        );
    }
}

impl Drop for StopProsody<'_> {
    fn drop(&mut self) {
        self.now();
    }
}

/// The sum over every edge of a counter in the gateway's `/metrics`.
fn metric(lab: &Lab, prefix: &str) -> f64 {
    lab.hosts_with(Role::Edge)
        .map(|h| {
            lab_stdout(
                lab,
                "curl",
                &[
                    "-s",
                    "--max-time",
                    "5",
                    &format!("http://{}:8089/metrics", h.internal),
                ],
            )
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
        })
        .sum()
}

/// pebble's root of the moment: what the partner must trust to check our
/// external certificate.
fn pebble_root(lab: &Lab) -> String {
    let ca = lab.dir.join("pebble/ca.pem");
    let pem = lab_stdout(
        lab,
        "curl",
        &[
            "-s",
            "--max-time",
            "5",
            "--cacert",
            path_str(&ca),
            "https://203.0.113.54:15000/roots/0",
        ],
    );
    assert!(pem.contains("BEGIN CERTIFICATE"), "no pebble root: {pem:?}");
    pem
}

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
    if !Path::new(common::prosody::PROSODY).exists() {
        panic!("internal_xmpp_lab needs Prosody: tests/lab/install-deps installs it");
    }
    let _serial = lab.lock();
    let stop = StopProsody(lab);
    stop.now();
    reset(lab);
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    make_ca(w, "internal-ca");
    make_ca(w, "partner-ca");
    let (partner_cert, partner_key) = pki::make_leaf(
        w,
        &w.join("partner-ca.crt"),
        &w.join("partner-ca.key"),
        PARTNER,
    );
    let s = managed_spec(lab, w);

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
    let pid = lab
        .ssh_ok(fe, &format!("cat {PID_FILE}"))
        .trim()
        .to_string();
    assert!(!pid.is_empty(), "no pid in {PID_FILE}");
    let cmdline = lab.ssh_ok(fe, &format!("tr '\\0' ' ' </proc/{pid}/cmdline"));
    assert!(
        cmdline.contains(CONFIG),
        "pid {pid} is not xfed's Prosody: {cmdline}"
    );

    let partner = Prosody::start(
        &w.join("partner"),
        &Setup {
            netns: &format!("{}-dns", lab.prefix),
            address: PARTNER_ADDRESS,
            domain: PARTNER,
            cert: &partner_cert,
            key: &partner_key,
            trust: &pebble_root(lab),
            nameserver: Some("198.51.100.53"),
            users: &["carol"],
        },
    );

    // alice, registered on xfed's Prosody, writes to carol.
    lab.ssh_ok(
        fe,
        &format!("prosodyctl --config {CONFIG} register alice contoso.example a-test-password"),
    );
    let outbound = "xfed_gateway_stanzas_total{direction=\"outbound\",verdict=\"allowed\"";
    let before = metric(lab, outbound);
    let lua = ">prosody.core_post_stanza(prosody.hosts['contoso.example'], require'util.stanza'.message({from='alice@contoso.example',to='carol@fabrikam.example',type='chat'}):text_tag('body','hello carol from the managed server'))";
    lab.ssh_ok(
        fe,
        &format!("prosodyctl --config {CONFIG} shell {}", sh_quote(lua)),
    );
    partner.wait_offline("carol", "hello carol from the managed server");
    assert!(
        partner.offline("carol").contains("alice@contoso.example"),
        "{}",
        partner.offline("carol")
    );
    // It crossed a gateway: the edge counted an allowed outbound stanza.
    let deadline = Instant::now() + WAIT;
    while metric(lab, outbound) < before + 1.0 {
        assert!(
            Instant::now() < deadline,
            "no outbound stanza counted on the gateways"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Our Prosody's stream went to an edge's internal listener, not to the
    // partner: the only S2S stream it holds is to 23456.
    let streams = lab.ssh_ok(fe, "ss -tnH state established");
    assert!(
        streams.contains(":23456") && !streams.contains(&format!("{PARTNER_ADDRESS}:5269")),
        "fe1's streams: {streams}"
    );
    drop(partner);

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

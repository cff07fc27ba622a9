//! Federation end to end with real XMPP servers (issue #7): a partner's
//! Prosody (fabrikam.example) finds contoso.example through the SRV
//! records xfed published in PowerDNS, reaches the gateways xfed deployed,
//! and its messages are relayed to the organisation's own Prosody on the
//! front-end, or refused, as each user's effective external access policy
//! says; a policy change applied by xfed (a reload) changes the verdict on
//! the next message.
//!
//! Everything on the wire is real: TLS with the ACME certificate from
//! pebble outside and an internal CA's certificates inside, SASL EXTERNAL
//! on every hop. What the servers received is read from their own stores
//! (mod_offline) and the gateways' `/metrics`.
//!
//! Run inside the lab: `tests/lab/lab exec -- cargo test --test relay_lab`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::lab::{Lab, Role};
use common::pki;
use common::prosody::{Prosody, Setup};
use common::xfed::{TestSpec, apply_ok, assert_in_sync, lab_spec, lab_stdout, path_str, reset};

const PARTNER: &str = "fabrikam.example";
/// The partner's server: the DNS namespace's external address (the lab has
/// no other host on the outside network).
const PARTNER_ADDRESS: &str = "198.51.100.53";
const INTERNAL_SERVER: &str = "203.0.113.11";

/// A CA in `dir` (`NAME.crt`, `NAME.key`).
fn make_ca(dir: &Path, name: &str) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    pki::make_ca(&crt, &key, &format!("xfed test {name}"));
}

/// A certificate for `domain` from the CA `ca` in `dir`.
fn make_leaf(dir: &Path, ca: &str, domain: &str) -> (String, String) {
    let (crt, key) = (dir.join(format!("{ca}.crt")), dir.join(format!("{ca}.key")));
    pki::make_leaf(dir, &crt, &key, domain)
}

/// playbooks/lab.yaml plus what relaying needs: the front-end pool's XMPP
/// server, an internal certificate from the test's internal CA, the CAs
/// the gateways trust (all in `cas`), the partner's server; and policies that let alice
/// (granted FedPic) reach and be reached, but not bob (homed on hq, whose
/// site policy has XMPP off).
fn relay_spec(lab: &Lab, cas: &Path, grant: &str) -> TestSpec {
    let grant = grant.to_string();
    let d = cas.display().to_string();
    lab_spec(lab, move |text| {
        let edits = [
            (
                "    users: [\"alice@{{ domain }}\", \"bob@{{ domain }}\"]\n",
                format!("    users: [\"alice@{{{{ domain }}}}\", \"bob@{{{{ domain }}}}\"]\n    xmpp_server: {{ address: {INTERNAL_SERVER} }}\n"),
            ),
            (
                "\ndns:\n",
                format!(
                    "  - name: edge-hq-internal\n    pool: edge-hq\n    usage: internal\n    key: {{ algorithm: ecdsa, bits: 256 }}\n    issuer:\n      kind: internal_ca\n      ca_cert: {d}/internal-ca.crt\n      ca_key: \"{{{{ file('{d}/internal-ca.key') }}}}\"\n\ndns:\n"
                ),
            ),
            (
                "  - identity: FedPic\n",
                "  - identity: site:hq\n    enable_federation_access: true\n    enable_public_cloud_access: false\n    enable_xmpp_access: false\n  - identity: FedPic\n".to_string(),
            ),
            ("    users: all\n", format!("    users: {grant}\n")),
            (
                "    dialback: false\n",
                format!("    dialback: false\n    proxy: \"{PARTNER_ADDRESS}:5269\"\n"),
            ),
            (
                "gateway:\n  service_manager: direct\n",
                format!("gateway:\n  service_manager: direct\n  internal_ca: {d}/internal-ca.crt\n  partner_ca: {d}/partner-ca.crt\n"),
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

/// The sum over every edge of a counter in the gateway's `/metrics`
/// (lines starting with `prefix`).
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

fn wait_metric(lab: &Lab, prefix: &str, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(lab, prefix) < at_least {
        assert!(
            Instant::now() < deadline,
            "no `{prefix}` >= {at_least} on the gateways"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// pebble's root of the moment (it makes a new one at each start): what
/// the partner must trust to check our external certificate.
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

#[test]
fn partners_reach_the_users_their_policy_allows_through_the_gateways() {
    let Some(lab) = Lab::get() else { return };
    if !Path::new(common::prosody::PROSODY).exists() {
        panic!("relay_lab needs Prosody: tests/lab/install-deps installs it");
    }
    let _serial = lab.lock();
    reset(lab);
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    make_ca(w, "internal-ca");
    make_ca(w, "partner-ca");
    let (our_cert, our_key) = make_leaf(w, "internal-ca", "contoso.example");
    let (partner_cert, partner_key) = make_leaf(w, "partner-ca", PARTNER);
    let s = relay_spec(lab, w, "[\"alice@{{ domain }}\"]");

    apply_ok(lab, &s);
    assert_in_sync(lab, &s);

    let fe = lab.host("fe1");
    let internal = Prosody::start(
        &w.join("internal"),
        &Setup {
            netns: &fe.netns,
            address: INTERNAL_SERVER,
            domain: "contoso.example",
            cert: &our_cert,
            key: &our_key,
            trust: &std::fs::read_to_string(w.join("internal-ca.crt")).expect("ca"),
            nameserver: None,
            users: &["alice", "bob"],
        },
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
            // The outside view of DNS, where xfed published our SRV records.
            nameserver: Some("198.51.100.53"),
            users: &["carol"],
        },
    );

    // alice is granted FedPic: the message crosses both hops.
    partner.send(
        "carol@fabrikam.example",
        "alice@contoso.example",
        "hello alice",
    );
    internal.wait_offline("alice", "hello alice");
    assert!(
        internal.offline("alice").contains("carol@fabrikam.example"),
        "{}",
        internal.offline("alice")
    );

    // bob falls back to site:hq, XMPP off: refused at the gateway, never
    // seen by our server.
    let denied = "xfed_gateway_stanzas_total{direction=\"inbound\",verdict=\"denied\"";
    let before = metric(lab, denied);
    partner.send("carol@fabrikam.example", "bob@contoso.example", "hello bob");
    wait_metric(lab, denied, before + 1.0);
    assert_eq!(internal.offline("bob"), "", "bob's message got through");
    // The refusal went back to the partner's server (<service-unavailable/>)
    // on a stream the gateway opened to it.
    wait_metric(
        lab,
        "xfed_gateway_outbound_connections_total{leg=\"partner\",result=\"established\"}",
        1.0,
    );

    // Grant FedPic to every user: a policy-only change, applied as a reload;
    // bob is reachable on the next message.
    let all = relay_spec(lab, w, "all");
    apply_ok(lab, &all);
    partner.send(
        "carol@fabrikam.example",
        "bob@contoso.example",
        "hello again bob",
    );
    internal.wait_offline("bob", "hello again bob");
    assert!(
        !internal.offline("bob").contains("hello bob\""),
        "the first one stays refused"
    );
    drop(partner);
    drop(internal);
}

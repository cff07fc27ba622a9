//! The lab's partners are real outside hosts (tests/lab/README.md,
//! "Partners"): every lab host resolves their SRV records through its own
//! `/etc/resolv.conf`, their servers present certificates from the partner
//! CA, and fabrikam's Prosody and litware's ejabberd federate directly
//! with each other, both ways, over TLS with those certificates, having
//! found each other by SRV. What arrived is read from the receiving
//! server's own store.
//!
//!   tests/lab/lab up
//!   XFED_LAB=1 tests/lab/lab exec -- cargo test --test partners_lab

mod common;

use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use common::lab::{Lab, Role};
use common::partners::{Kind, Partner};

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn run(mut c: Command, what: &str) -> Output {
    c.output()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"))
}

/// A body no earlier run can have left in a store.
fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

/// The SRV record a partner's zone must hold.
fn srv_of(p: &Partner) -> String {
    format!("0 5 5269 {}.", p.fqdn)
}

#[test]
fn every_host_resolves_the_partners_through_its_own_resolver() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    assert_eq!(lab.partners.len(), 2, "fabrikam and litware");
    let resolver = lab.resolver.as_ref().expect("inventory names the resolver");

    // Front-ends and edges: no @server, so the answer comes from the
    // host's own /etc/resolv.conf (a bind mount in its mount namespace).
    let mut script = String::from("head -n1 /etc/resolv.conf");
    for p in &lab.partners {
        script.push_str(&format!(
            "; dig +short +time=2 +tries=1 _xmpp-server._tcp.{d} SRV; dig +short +time=2 +tries=1 {f} A; \
             echo \"bare:$(dig +short +time=2 +tries=1 {d} A)\"",
            d = p.domain,
            f = p.fqdn
        ));
    }
    let mut expected = vec![format!("nameserver {}", resolver.internal)];
    for p in &lab.partners {
        expected.extend([srv_of(p), p.external.clone(), "bare:".to_string()]);
    }
    for host in lab
        .hosts_with(Role::Edge)
        .chain(lab.hosts_with(Role::Frontend))
    {
        let got = lab.ssh_ok(host, &script);
        assert_eq!(
            got.lines().collect::<Vec<_>>(),
            expected,
            "{}: resolver, then per partner its SRV, its server's A record, and no A \
             record for the bare domain (so a server reaching it must use the SRV)",
            host.name
        );
    }

    // Partners resolve each other (and would resolve us) the same way.
    for p in &lab.partners {
        let other = lab
            .partners
            .iter()
            .find(|o| o.name != p.name)
            .expect("two partners");
        let mut c = p.command("sh");
        c.arg("-c").arg(format!(
            "head -n1 /etc/resolv.conf; hostname; dig +short +time=2 +tries=1 _xmpp-server._tcp.{} SRV",
            other.domain
        ));
        let out = run(c, "nsenter");
        assert!(out.status.success(), "{}: {out:?}", p.name);
        assert_eq!(
            text(&out).lines().collect::<Vec<_>>(),
            [
                format!("nameserver {}", resolver.external),
                p.fqdn.clone(),
                srv_of(other)
            ],
            "{} looking up {}",
            p.name,
            other.domain
        );
    }
}

#[test]
fn partner_servers_present_certificates_from_the_partner_ca() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let ca = lab
        .partner_ca
        .as_ref()
        .expect("inventory names the partner CA");
    // A bundle that does not hold the partner CA must fail the same check,
    // or the check proves nothing.
    let tmp = std::env::temp_dir();
    let stranger = tmp.join(format!("partners-lab-{}.pem", std::process::id()));
    let stranger_key = tmp.join(format!("partners-lab-{}.key", std::process::id()));
    common::pki::make_ca(&stranger, &stranger_key, "not the partner CA");
    for p in &lab.partners {
        for (bundle, should_verify) in [(ca, true), (&stranger, false)] {
            let mut c = lab.command("openssl");
            c.args([
                "s_client",
                "-brief",
                "-starttls",
                "xmpp-server",
                "-xmpphost",
            ])
            .arg(&p.domain)
            .arg("-connect")
            .arg(format!("{}:5269", p.external))
            .arg("-verify_hostname")
            .arg(&p.domain)
            .arg("-verify_return_error")
            .arg("-CAfile")
            .arg(bundle)
            .stdin(std::process::Stdio::null());
            let out = run(c, "openssl s_client");
            let all = format!("{}{}", text(&out), String::from_utf8_lossy(&out.stderr));
            if should_verify {
                assert!(
                    out.status.success() && all.contains("Verification: OK"),
                    "{}'s certificate must verify against the partner CA for {}:\n{all}",
                    p.name,
                    p.domain
                );
            } else {
                assert!(
                    !out.status.success() && !all.contains("Verification: OK"),
                    "{}'s certificate verified against a stranger CA:\n{all}",
                    p.name
                );
            }
        }
    }
    let _ = std::fs::remove_file(&stranger);
    let _ = std::fs::remove_file(&stranger_key);
}

#[test]
fn fabrikam_and_litware_federate_directly_both_ways() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let fabrikam = lab.partner("fabrikam");
    let litware = lab.partner("litware");
    assert_eq!(
        (fabrikam.kind, litware.kind),
        (Kind::Prosody, Kind::Ejabberd)
    );
    let carol = fabrikam.user("carol").jid.clone();
    let dave = litware.user("dave").jid.clone();

    // carol -> dave: Prosody finds litware by SRV, ejabberd stores it
    let there = unique("carol-to-dave");
    fabrikam.send("carol", &dave, &there);
    let got = litware.wait_received("dave", &there);
    assert_eq!(got.from, carol, "as ejabberd stored it");
    assert_eq!(got.body, there);

    // dave -> carol: ejabberd finds fabrikam by SRV, Prosody stores it
    let back = unique("dave-to-carol");
    litware.send("dave", &carol, &back);
    let got = fabrikam.wait_received("carol", &back);
    assert_eq!(got.from, dave, "as Prosody stored it");
    assert_eq!(got.body, back);

    // Both streams authenticated with certificates (SASL EXTERNAL): the
    // servers have no dialback, so there is no other way in, and each says so.
    let ejabberd_log = litware.log_text();
    assert!(
        ejabberd_log.contains(
            "Accepted inbound s2s EXTERNAL authentication fabrikam.example -> litware.example"
        ),
        "litware must have authenticated fabrikam by its certificate:\n{}",
        litware.log_tail(30)
    );
    let prosody_log = fabrikam.log_text();
    assert!(
        prosody_log.contains("Accepting SASL EXTERNAL identity from litware.example"),
        "fabrikam must have authenticated litware by its certificate:\n{}",
        fabrikam.log_tail(30)
    );
    assert!(
        prosody_log.contains("Outgoing s2s connection fabrikam.example->litware.example complete")
            && prosody_log.contains("Stream encrypted (TLS"),
        "fabrikam's stream to litware must be up and encrypted:\n{}",
        fabrikam.log_tail(30)
    );
}

//! Server dialback (XEP-0220) end to end: the real `xfed-gateway` binary
//! between a REAL partner Prosody 0.12 (`fabrikam.example`: a certificate
//! from a CA outside our partner trust, `s2s_secure_auth = false`,
//! dialback on with a known `dialback_secret`) and a REAL internal Prosody
//! (`contoso.example`, certificates only). Both Prosodys find the gateway
//! through SRV records served by a test DNS server on loopback
//! (`common::dns`); the gateway reaches the partner through its `proxy`.
//! Raw TLS sockets stand in for forged or idle partners; because the
//! partner Prosody's secret is known, such a socket can also hold a key
//! Prosody really issued, so the gateway's verification against the real
//! authoritative server decides every case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::dns::TestDns;
use common::peers::{Initiator, start_tls};
use common::prosody::{Options, Prosody, available};
use common::*;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

const FAB: &str = "fabrikam.example";
const CONF: &str = "conference.fabrikam.example";
const FAB_SECRET: &str = "fabrikam-dialback-secret";

struct World {
    work: Workdir,
    ca: TestCa,
    external: Leaf,
    internal: Leaf,
    ours: Leaf,
    fab: Leaf,
    fab_ca: TestCa,
    dns: TestDns,
}

/// What the gateway's config says about the partner and its limits.
struct Setup<'a> {
    auth: &'a str,
    additional: &'a [&'a str],
    limits: &'a str,
    previous_secret: bool,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            auth: "either",
            additional: &[],
            limits: "",
            previous_secret: false,
        }
    }
}

impl World {
    fn new() -> World {
        let ca = TestCa::new("Dialback Test CA");
        // Not in the gateway's partner trust: only dialback can vouch for it.
        let fab_ca = TestCa::new("Fabrikam Own CA");
        World {
            work: Workdir::new(),
            external: ca.leaf(&[DOMAIN]),
            internal: ca.leaf(&[FAB, CONF]),
            ours: ca.leaf(&[DOMAIN]),
            fab: fab_ca.leaf(&[FAB, CONF]),
            ca,
            fab_ca,
            dns: TestDns::start(),
        }
    }

    fn internal_prosody(&self) -> Prosody {
        let dir = self.work.path("internal");
        std::fs::create_dir_all(&dir).unwrap();
        Prosody::start_with(
            &dir,
            DOMAIN,
            &self.ours,
            &self.ca.pem,
            &["alice"],
            &Options {
                extra: self.dns.prosody_option(),
                ..Options::default()
            },
        )
    }

    fn partner_prosody(&self) -> Prosody {
        let dir = self.work.path("fabrikam");
        std::fs::create_dir_all(&dir).unwrap();
        Prosody::start_with(
            &dir,
            FAB,
            &self.fab,
            &self.fab_ca.pem,
            &["bob"],
            &Options {
                dialback_secret: Some(FAB_SECRET.into()),
                insecure: true,
                extra: self.dns.prosody_option(),
                more_hosts: vec![CONF.into()],
            },
        )
    }

    fn write_config(
        &self,
        internal: &Prosody,
        partner: &Prosody,
        setup: &Setup<'_>,
    ) -> std::path::PathBuf {
        let ca = self.work.write("ca.pem", &self.ca.pem);
        let external = self.work.install("external", &self.external);
        let internal_tls = self.work.install("internal", &self.internal);
        self.work.write("dialback.secret", "current-secret\n");
        self.work.write("dialback.previous", "previous-secret\n");
        let additional = setup
            .additional
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(", ");
        self.work.write(
            "policy.toml",
            &format!(
                "[[partners]]\ndomain = \"{FAB}\"\nkind = \"public_unverified\"\nauth = \"{}\"\n\
                 additional_domains = [{additional}]\nproxy = \"{}\"\n\
                 [[policies]]\nidentity = \"Global\"\nenable_public_cloud_access = true\nenable_xmpp_access = true\n",
                setup.auth,
                partner.address()
            ),
        );
        let previous = if setup.previous_secret {
            format!(
                "previous_secret_file = {:?}\n",
                self.work.path("dialback.previous").display().to_string()
            )
        } else {
            String::new()
        };
        let text = format!(
            "domains = [\"{DOMAIN}\"]\nlog_level = \"debug\"\ndrain_secs = 2\npolicy_file = \"policy.toml\"\n\
             [external]\naddress = \"127.0.0.1\"\nport = 0\n{external}\n\
             [internal]\naddress = \"127.0.0.1\"\nport = 0\n{internal_tls}client_ca = {ca:?}\n\
             [admin]\naddress = \"127.0.0.1\"\nport = 0\n\
             [relay]\ninternal_server = \"{}\"\npartner_ca = {ca:?}\nconnect_timeout_secs = 5\n\
             [dialback]\nsecret_file = {:?}\n{previous}\
             [limits]\n{}\n",
            internal.address(),
            self.work.path("dialback.secret").display().to_string(),
            setup.limits,
            ca = ca.display().to_string(),
        );
        self.work.write("gateway.toml", &text)
    }

    /// Starts the gateway and points the test DNS at it: our domain's SRV
    /// at the external listener (for the partner), the partner's at the
    /// internal one (for our server).
    fn gateway(&self, internal: &Prosody, partner: &Prosody, setup: &Setup<'_>) -> Gateway {
        let gateway = Gateway::start(&self.write_config(internal, partner, setup));
        self.dns.serve(DOMAIN, gateway.external.port());
        self.dns.serve(FAB, gateway.internal.port());
        self.dns.serve(CONF, gateway.internal.port());
        gateway
    }

    /// A raw TLS stream to the external listener claiming `from`, with no
    /// client certificate.
    async fn raw(&self, gateway: &Gateway, from: &str) -> Initiator {
        start_tls(gateway.external, DOMAIN, from, self.ca.roots(), None).await
    }
}

/// A key as Prosody (XEP-0185) makes it with `secret`.
fn key(secret: &str, receiving: &str, originating: &str, stream_id: &str) -> String {
    let k = hex::encode(Sha256::digest(secret.as_bytes()));
    hex::encode(hmac(
        k.as_bytes(),
        format!("{receiving} {originating} {stream_id}").as_bytes(),
    ))
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Posts a chat message inside `prosody` as if a local user sent it.
fn post(prosody: &Prosody, from: &str, to: &str, body: &str) {
    let host = from.split('@').nth(1).unwrap().split('/').next().unwrap();
    let lua = format!(
        ">prosody.core_post_stanza(prosody.hosts[\"{host}\"], require\"util.stanza\".message({{from=\"{from}\", to=\"{to}\", type=\"chat\"}}):tag(\"body\"):text(\"{body}\"))"
    );
    let output = std::process::Command::new(common::prosody::PROSODYCTL)
        .arg("--config")
        .arg(&prosody.config)
        .args(["shell", &lua])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && !text.contains("rror"),
        "{lua}: {text}"
    );
}

fn stream_id(features: &str) -> String {
    header_attr(features, "id").expect("stream id")
}

fn millis(line: &str) -> u64 {
    field(line, "millis").unwrap().parse().unwrap()
}

#[tokio::test]
async fn messages_cross_both_ways_with_dialback() {
    if !available("messages_cross_both_ways_with_dialback") {
        return;
    }
    let world = World::new();
    let internal = world.internal_prosody();
    let partner = world.partner_prosody();
    let mut gateway = world.gateway(&internal, &partner, &Setup::default());

    // Partner → us: Prosody authenticates by dialback, the gateway verifies
    // its key with Prosody (the authoritative server) and relays.
    post(
        &partner,
        &format!("bob@{FAB}"),
        &format!("alice@{DOMAIN}"),
        "hello over dialback",
    );
    let stored = internal.wait_offline("alice", "hello over dialback");
    assert!(stored.contains(&format!("bob@{FAB}")), "{stored}");
    let verified = gateway.wait_for(|l| l.contains("event=dialback_verified"));
    assert!(verified.contains("result=valid"), "{verified}");
    gateway
        .wait_for(|l| l.contains("event=stream_authenticated") && l.contains("mechanism=dialback"));

    // Us → partner: the gateway authenticates by dialback (Prosody does
    // not trust our certificate), Prosody asks the gateway's external
    // listener (found by SRV) with db:verify.
    post(
        &internal,
        &format!("alice@{DOMAIN}"),
        &format!("bob@{FAB}"),
        "hello back",
    );
    let stored = partner.wait_offline("bob", "hello back");
    assert!(stored.contains(&format!("alice@{DOMAIN}")), "{stored}");
    let established =
        gateway.wait_for(|l| l.contains("event=outbound_established") && l.contains("leg=partner"));
    assert!(established.contains("auth=dialback"), "{established}");

    let status = gateway.status();
    let inbound = status["relay"]["inbound"].as_array().unwrap();
    assert!(
        inbound.iter().any(|s| s["domain"] == FAB
            && s["auth"] == "dialback"
            && s["direction"] == "inbound"
            && s["listener"] == "external"),
        "{status}"
    );
    let outbound = status["relay"]["outbound"].as_array().unwrap();
    assert!(
        outbound
            .iter()
            .any(|s| s["pair"] == format!("{DOMAIN}->{FAB}")
                && s["auth"] == "dialback"
                && s["direction"] == "outbound"),
        "{status}"
    );
    assert!(
        gateway.metric("xfed_gateway_dialback_total{direction=\"inbound\",result=\"valid\"}") >= 1
    );
    assert!(
        gateway.metric("xfed_gateway_dialback_total{direction=\"outbound\",result=\"valid\"}") >= 1
    );
    assert!(gateway.metric("xfed_gateway_dialback_verify_answered_total{result=\"valid\"}") >= 1);
    // Prosody's own view of the incoming stream from us.
    let sessions = partner.shell("s2s:show()");
    assert!(sessions.contains(DOMAIN), "{sessions}");
    // No secret in the log.
    let log = gateway.log_text();
    assert!(!log.contains("current-secret"));
    eprintln!(
        "dialback timings: inbound verification {} ms, outbound setup (TCP+TLS+dialback) {} ms",
        millis(&verified),
        millis(&established)
    );
}

#[tokio::test]
async fn partner_that_must_use_external_is_refused() {
    if !available("partner_that_must_use_external_is_refused") {
        return;
    }
    let world = World::new();
    let internal = world.internal_prosody();
    let partner = world.partner_prosody();
    let setup = Setup {
        auth: "external",
        ..Setup::default()
    };
    let mut gateway = world.gateway(&internal, &partner, &setup);
    post(
        &partner,
        &format!("bob@{FAB}"),
        &format!("alice@{DOMAIN}"),
        "must not arrive",
    );
    let refused = gateway.wait_for(|l| l.contains("event=dialback_refused"));
    assert!(refused.contains(&format!("from={FAB}")), "{refused}");
    gateway
        .wait_for(|l| l.contains("event=stream_error") && l.contains("condition=not-authorized"));
    assert_eq!(
        gateway.metric("xfed_gateway_stanzas_total{direction=\"inbound\",verdict=\"allowed\"}"),
        0
    );
    assert_eq!(
        gateway.metric("xfed_gateway_dialback_total{direction=\"inbound\",result=\"valid\"}"),
        0
    );
    assert!(!internal.offline("alice").contains("must not arrive"));
    assert!(
        !gateway.log_text().contains("event=dialback_verified"),
        "never asked"
    );
}

/// Outbound to a partner whose certificate is not from `relay.partner_ca`
/// (the partner Prosody's own CA): with `auth = "external"` the gateway's
/// TLS client refuses the certificate and nothing is sent; with dialback
/// allowed (`messages_cross_both_ways_with_dialback`) the same partner is
/// reached over TLS and authenticated by dialback.
#[tokio::test]
async fn untrusted_partner_certificate_is_refused_outbound_without_dialback() {
    if !available("untrusted_partner_certificate_is_refused_outbound_without_dialback") {
        return;
    }
    let world = World::new();
    let internal = world.internal_prosody();
    let partner = world.partner_prosody();
    let setup = Setup {
        auth: "external",
        ..Setup::default()
    };
    let mut gateway = world.gateway(&internal, &partner, &setup);
    post(
        &internal,
        &format!("alice@{DOMAIN}"),
        &format!("bob@{FAB}"),
        "must not leave",
    );
    let failed = gateway.wait_for(|l| {
        l.contains("event=outbound_failed") && l.contains("leg=partner") && l.contains(FAB)
    });
    assert!(
        failed.contains("TLS handshake failed") && failed.contains("UnknownIssuer"),
        "{failed}"
    );
    assert!(
        !gateway
            .log_text()
            .lines()
            .any(|l| l.contains("event=outbound_established") && l.contains("leg=partner")),
        "an outbound stream to the partner was established"
    );
    // The partner's own state: no stream from us, nothing for bob.
    let sessions = partner.shell("s2s:show()");
    assert!(!sessions.contains(DOMAIN), "{sessions}");
    assert!(!partner.offline("bob").contains("must not leave"));
}

#[tokio::test]
async fn forged_result_is_invalid_and_nothing_is_relayed() {
    if !available("forged_result_is_invalid_and_nothing_is_relayed") {
        return;
    }
    let world = World::new();
    let internal = world.internal_prosody();
    let partner = world.partner_prosody();
    let mut gateway = world.gateway(&internal, &partner, &Setup::default());

    let mut raw = world.raw(&gateway, FAB).await;
    assert!(
        raw.features.contains("urn:xmpp:features:dialback"),
        "{}",
        raw.features
    );
    assert!(!raw.offers_external(), "no certificate, no EXTERNAL");
    // A key Prosody never issued (made with another secret).
    let forged = key("guessed", DOMAIN, FAB, &stream_id(&raw.features));
    raw.send(&format!(
        "<db:result from='{FAB}' to='{DOMAIN}'>{forged}</db:result>"
    ))
    .await;
    let answer = read_until(&mut raw.tls, "type='invalid'").await;
    assert!(answer.contains("<db:result"), "{answer}");
    let rest = answer + &raw.read_to_end().await;
    assert!(rest.contains("<not-authorized"), "{rest}");
    let verified = gateway.wait_for(|l| l.contains("event=dialback_verified"));
    assert!(verified.contains("result=invalid"), "{verified}");
    assert_eq!(
        gateway.metric("xfed_gateway_dialback_total{direction=\"inbound\",result=\"invalid\"}"),
        1
    );

    // A message pipelined while the key is being verified is refused too.
    let mut raw = world.raw(&gateway, FAB).await;
    raw.send(&format!(
        "<db:result from='{FAB}' to='{DOMAIN}'>{forged}</db:result>\
         <message from='bob@{FAB}' to='alice@{DOMAIN}' type='chat'><body>forged</body></message>"
    ))
    .await;
    let rest = raw.read_to_end().await;
    assert!(rest.contains("not-authorized"), "{rest}");
    assert_eq!(
        gateway.metric("xfed_gateway_stanzas_total{direction=\"inbound\",verdict=\"allowed\"}"),
        0
    );
    assert!(!internal.offline("alice").contains("forged"));

    // A db:verify for a key we never issued.
    let mut raw = world.raw(&gateway, FAB).await;
    raw.send(&format!(
        "<db:verify from='{FAB}' to='{DOMAIN}' id='never-issued'>{forged}</db:verify>"
    ))
    .await;
    let answer = read_until(&mut raw.tls, "/>").await;
    assert!(
        answer.contains("type='invalid'") && answer.contains("id='never-issued'"),
        "{answer}"
    );
}

#[tokio::test]
async fn db_result_before_tls_is_a_stream_error() {
    if !available("db_result_before_tls_is_a_stream_error") {
        return;
    }
    let world = World::new();
    let internal = world.internal_prosody();
    let partner = world.partner_prosody();
    let gateway = world.gateway(&internal, &partner, &Setup::default());
    let mut tcp = tokio::net::TcpStream::connect(gateway.external)
        .await
        .unwrap();
    write_all(&mut tcp, &stream_header(DOMAIN, FAB)).await;
    read_until(&mut tcp, "</stream:features>").await;
    write_all(
        &mut tcp,
        &format!("<db:result from='{FAB}' to='{DOMAIN}'>00</db:result>"),
    )
    .await;
    let rest = read_to_end(&mut tcp).await;
    assert!(rest.contains("<stream:error><policy-violation"), "{rest}");
    assert!(!rest.contains("db:result"), "{rest}");
}

#[tokio::test]
async fn rotation_keeps_keys_of_the_previous_secret_until_it_is_removed() {
    if !available("rotation_keeps_keys_of_the_previous_secret_until_it_is_removed") {
        return;
    }
    let world = World::new();
    let internal = world.internal_prosody();
    let partner = world.partner_prosody();
    let setup = Setup {
        previous_secret: true,
        ..Setup::default()
    };
    let mut gateway = world.gateway(&internal, &partner, &setup);
    // As a receiving server holding keys the gateway issued: one from the
    // current secret, one from the previous.
    let verify = |secret: &str, id: &str| {
        format!(
            "<db:verify from='{FAB}' to='{DOMAIN}' id='{id}'>{}</db:verify>",
            key(secret, FAB, DOMAIN, id)
        )
    };
    let mut raw = world.raw(&gateway, FAB).await;
    raw.send(&verify("current-secret", "s1")).await;
    let answer = read_until(&mut raw.tls, "/>").await;
    assert!(answer.contains("type='valid'"), "{answer}");
    raw.send(&verify("previous-secret", "s2")).await;
    let answer = read_until(&mut raw.tls, "/>").await;
    assert!(
        answer.contains("type='valid'") && answer.contains("id='s2'"),
        "{answer}"
    );
    gateway.wait_for(|l| {
        l.contains("event=dialback_verify_answered") && l.contains("secret=previous")
    });

    // The rotation ends: the previous secret is no longer named.
    world.write_config(&internal, &partner, &Setup::default());
    gateway.signal("HUP");
    gateway.wait_for(|l| l.contains("event=reloaded"));
    let mut raw = world.raw(&gateway, FAB).await;
    raw.send(&verify("previous-secret", "s3")).await;
    let answer = read_until(&mut raw.tls, "/>").await;
    assert!(answer.contains("type='invalid'"), "{answer}");
    raw.send(&verify("current-secret", "s4")).await;
    let answer = read_until(&mut raw.tls, "/>").await;
    assert!(answer.contains("type='valid'"), "{answer}");
    assert!(!gateway.log_text().contains("previous-secret"));
}

#[tokio::test]
async fn additional_domain_passes_once_listed() {
    if !available("additional_domain_passes_once_listed") {
        return;
    }
    let world = World::new();
    let internal = world.internal_prosody();
    let partner = world.partner_prosody();
    let mut gateway = world.gateway(&internal, &partner, &Setup::default());
    let muc = format!("room@{CONF}/nick");
    let message = format!(
        "<message from='{muc}' to='alice@{DOMAIN}' type='chat'><body>from the MUC</body></message>"
    );

    // Before: conference.fabrikam is not a partner domain.
    let mut tcp = tokio::net::TcpStream::connect(gateway.external)
        .await
        .unwrap();
    write_all(&mut tcp, &stream_header(DOMAIN, CONF)).await;
    let refused = read_to_end(&mut tcp).await;
    assert!(refused.contains("policy-violation"), "{refused}");

    // Listed: the stream authenticates by dialback (Prosody serves that
    // host with the same secret) and the message passes.
    let setup = Setup {
        additional: &[CONF],
        ..Setup::default()
    };
    world.write_config(&internal, &partner, &setup);
    gateway.signal("HUP");
    gateway.wait_for(|l| l.contains("event=reloaded"));
    let mut raw = world.raw(&gateway, CONF).await;
    let k = key(FAB_SECRET, DOMAIN, CONF, &stream_id(&raw.features));
    raw.send(&format!(
        "<db:result from='{CONF}' to='{DOMAIN}'>{k}</db:result>"
    ))
    .await;
    let answer = read_until(&mut raw.tls, "type='valid'").await;
    assert!(answer.contains(&format!("to='{CONF}'")), "{answer}");
    raw.send(&message).await;
    let stored = internal.wait_offline("alice", "from the MUC");
    assert!(stored.contains(&muc), "{stored}");
}

#[tokio::test]
async fn keepalives_hold_an_idle_stream_and_silent_peers_still_time_out() {
    if !available("keepalives_hold_an_idle_stream_and_silent_peers_still_time_out") {
        return;
    }
    // The partner side here closes a stream silent for PARTNER_IDLE (as a
    // NAT or a partner's idle timeout would); the gateway sends whitespace
    // every 10 s and closes silent peers after 40 s itself.
    const PARTNER_IDLE: Duration = Duration::from_secs(12);
    let world = World::new();
    let internal = world.internal_prosody();
    let partner = world.partner_prosody();
    let setup = Setup {
        limits: "keepalive_interval_secs = 10\nidle_timeout_secs = 40\nnegotiation_timeout_secs = 40",
        ..Setup::default()
    };
    let gateway = world.gateway(&internal, &partner, &setup);
    let mut raw = world.raw(&gateway, FAB).await;
    let k = key(FAB_SECRET, DOMAIN, FAB, &stream_id(&raw.features));
    raw.send(&format!(
        "<db:result from='{FAB}' to='{DOMAIN}'>{k}</db:result>"
    ))
    .await;
    read_until(&mut raw.tls, "type='valid'").await;

    // Silent on our side; watch what the gateway sends and when.
    let start = Instant::now();
    let mut last = start;
    let mut longest = Duration::ZERO;
    let mut keepalives = 0;
    let mut buf = [0u8; 256];
    let closed_at = loop {
        let n = tokio::time::timeout(Duration::from_secs(60), raw.tls.read(&mut buf))
            .await
            .expect("the gateway closes a silent peer in time")
            .unwrap_or(0);
        let now = Instant::now();
        if n == 0 {
            break now;
        }
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.trim().is_empty() {
            keepalives += 1;
            longest = longest.max(now - last);
            last = now;
        } else {
            assert!(text.contains("connection-timeout"), "{text}");
        }
        if now - start < PARTNER_IDLE * 3 {
            assert!(now - last <= PARTNER_IDLE, "silence of {:?}", now - last);
        }
    };
    let up = closed_at - start;
    eprintln!("keepalive: {keepalives} keepalives, longest gap {longest:?}, stream up {up:?}");
    assert!(up >= PARTNER_IDLE * 3, "up only {up:?}");
    assert!(longest <= PARTNER_IDLE, "gap {longest:?}");
    assert!(keepalives >= 3, "{keepalives}");
    // Our own idle timeout still closed the silent peer (40 s).
    assert!(up < Duration::from_secs(55), "{up:?}");
}

#[test]
fn unusable_secret_files_are_refused_before_anything_is_bound() {
    let work = Workdir::new();
    let secret = work.write("dialback.secret", "a-secret-never-printed\n");
    let empty = work.write("empty.secret", "\n");
    let base = config(&work, "", "", "").replace("auth = \"external\"", "auth = \"dialback\"");
    let cases = [
        (
            format!(
                "{base}[dialback]\nsecret_file = {:?}\n",
                work.path("missing").display().to_string()
            ),
            "dialback.secret_file",
        ),
        (
            format!(
                "{base}[dialback]\nsecret_file = {:?}\nprevious_secret_file = {:?}\n",
                secret.display().to_string(),
                empty.display().to_string()
            ),
            "dialback.previous_secret_file",
        ),
        (base.clone(), "partners[0].auth"),
    ];
    for (text, field) in cases {
        let path = work.write("gateway.toml", &text);
        let output = std::process::Command::new(binary())
            .arg("--check-config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{stderr}");
        assert!(stderr.contains(field), "{field}: {stderr}");
        assert!(!stderr.contains("a-secret-never-printed"), "{stderr}");
    }
}

/// A real partner (Prosody) closes our established outbound stream
/// cleanly, as its own idle timeout would (`s2s:close` sends
/// `</stream:stream>`). That is no failure: a message sent right after
/// opens a new stream at once and is stored by the partner; nothing is
/// bounced and the failure counter does not move.
#[tokio::test]
async fn partner_closing_our_stream_cleanly_is_no_failure() {
    if !available("partner_closing_our_stream_cleanly_is_no_failure") {
        return;
    }
    let world = World::new();
    let internal = world.internal_prosody();
    let partner = world.partner_prosody();
    let mut gateway = world.gateway(&internal, &partner, &Setup::default());
    let (alice, bob) = (format!("alice@{DOMAIN}"), format!("bob@{FAB}"));
    post(&internal, &alice, &bob, "before the close");
    partner.wait_offline("bob", "before the close");
    gateway.wait_for(|l| l.contains("event=outbound_established") && l.contains("leg=partner"));

    let closed = partner.shell(&format!("s2s:close(\"{DOMAIN}\", \"{FAB}\")"));
    assert!(closed.contains("Closed 1"), "{closed}");
    let ended = gateway.wait_for(|l| {
        (l.contains("event=outbound_closed") || l.contains("event=outbound_failed"))
            && l.contains(&format!("to={FAB}"))
    });
    assert!(ended.contains("by=peer"), "not a failure: {ended}");

    let started = Instant::now();
    post(&internal, &alice, &bob, "right after the close");
    let stored = partner.wait_offline("bob", "right after the close");
    assert!(stored.contains(&alice), "{stored}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no retry delay: {:?}",
        started.elapsed()
    );
    let (_, metrics) = gateway.get("/metrics");
    let moved: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            (l.starts_with("xfed_gateway_stanzas_bounced_total{")
                || (l.starts_with("xfed_gateway_outbound_connections_total{")
                    && l.contains("result=\"failed\"")))
                && !l.ends_with(" 0")
        })
        .collect();
    assert!(moved.is_empty(), "{moved:?}");
    let log = gateway.log_text();
    assert!(!log.contains("event=stanza_bounced"), "{log}");
    assert!(!log.contains("event=outbound_failed"), "{log}");
}

/// `limits.max_connections_per_partner` counts streams authenticated by
/// dialback as it counts SASL EXTERNAL ones: with a limit of 1, a second
/// stream whose key the partner's real Prosody confirms is closed.
#[tokio::test]
async fn a_dialback_stream_over_the_per_partner_limit_is_closed() {
    if !available("a_dialback_stream_over_the_per_partner_limit_is_closed") {
        return;
    }
    let world = World::new();
    let internal = world.internal_prosody();
    let partner = world.partner_prosody();
    let setup = Setup {
        limits: "max_connections_per_partner = 1",
        ..Setup::default()
    };
    let mut gateway = world.gateway(&internal, &partner, &setup);
    let authenticated = |raw: Initiator| async move {
        let mut raw = raw;
        let k = key(FAB_SECRET, DOMAIN, FAB, &stream_id(&raw.features));
        raw.send(&format!(
            "<db:result from='{FAB}' to='{DOMAIN}'>{k}</db:result>"
        ))
        .await;
        let answer = read_until(&mut raw.tls, "type='valid'").await;
        (raw, answer)
    };
    let (_held, answer) = authenticated(world.raw(&gateway, FAB).await).await;
    assert!(!answer.contains("<stream:error"), "{answer}");

    let (mut second, answer) = authenticated(world.raw(&gateway, FAB).await).await;
    let closed = answer + &second.read_to_end().await;
    assert!(closed.contains("<policy-violation"), "{closed}");
    assert!(closed.trim_end().ends_with("</stream:stream>"), "{closed}");
    let line = gateway.wait_for(|l| l.contains("event=stream_refused"));
    assert!(line.contains(&format!("partner={FAB}")), "{line}");
    assert_eq!(
        gateway.metric("xfed_gateway_connections_rejected_total{listener=\"external\",reason=\"max_connections_per_partner\"}"
        ),
        1
    );
}

//! The hostile-partner matrix against the real binary, socket by socket:
//! XML bombs, deep nesting, oversize elements and attributes, element
//! floods, invalid UTF-8, slowloris, half-open connections, a TLS
//! downgrade, stanzas before authentication, bad SASL and a forged `from`.
//! Each case expects its own stream error (or SASL failure), and after each
//! a legitimate partner negotiates TLS and SASL EXTERNAL on a new
//! connection (timed: the slowest is printed and loosely bounded), while
//! one legitimate stream authenticated before the attacks stays open
//! throughout. The relay is configured (SASL needs it) with an internal
//! server that is never reached: no case gets that far.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::peers::{Initiator, b64, start_tls};
use common::prosody::free_port;
use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

/// One case on a plain connection: its name, what is sent (write by
/// write), the stream error expected and its application condition, if any.
type PlainCase = (
    &'static str,
    Vec<Vec<u8>>,
    &'static str,
    Option<&'static str>,
);

struct World {
    work: Workdir,
    ca: TestCa,
    partner: Leaf,
    gateway: Gateway,
}

impl World {
    fn start() -> World {
        World::start_with("")
    }

    /// As `start`, with more `[limits]` lines.
    fn start_with(limits: &str) -> World {
        let work = Workdir::new();
        let ca = TestCa::new("Hostile Test CA");
        let external = work.install("external", &ca.leaf(&[DOMAIN]));
        let internal = work.install("internal", &ca.leaf(&[PARTNER]));
        let ca_file = work.write("ca.pem", &ca.pem).display().to_string();
        let text = format!(
            "domains = [\"{DOMAIN}\"]\nlog_level = \"debug\"\ndrain_secs = 5\n\
             [external]\naddress = \"127.0.0.1\"\nport = 0\n{external}\n\
             [internal]\naddress = \"127.0.0.1\"\nport = 0\n{internal}client_ca = {ca_file:?}\n\
             [admin]\naddress = \"127.0.0.1\"\nport = 0\n\
             [limits]\nheader_timeout_secs = 2\n{limits}\n\
             [relay]\ninternal_server = \"127.0.0.1:{closed}\"\npartner_ca = {ca_file:?}\nconnect_timeout_secs = 5\n\
             [[partners]]\ndomain = \"{PARTNER}\"\n\
             [[policies]]\nidentity = \"Global\"\nscope = \"global\"\nenable_federation_access = true\nenable_xmpp_access = true\n",
            closed = free_port(),
        );
        let gateway = Gateway::start(&work.write("gateway.toml", &text));
        World {
            partner: ca.leaf(&[PARTNER]),
            work,
            ca,
            gateway,
        }
    }

    /// A partner stream after TLS with its certificate (not yet authenticated).
    async fn tls_stream(&self) -> Initiator {
        start_tls(
            self.gateway.external,
            DOMAIN,
            PARTNER,
            self.ca.roots(),
            Some(&self.partner),
        )
        .await
    }

    /// A legitimate partner: TLS and SASL EXTERNAL on a new connection.
    async fn legitimate(&self) -> (Initiator, Duration) {
        let started = Instant::now();
        let mut stream = self.tls_stream().await;
        assert!(stream.offers_external(), "{}", stream.features);
        let reply = stream.authenticate(DOMAIN, PARTNER, &b64(PARTNER)).await;
        assert!(reply.contains("<success"), "{reply}");
        (stream, started.elapsed())
    }
}

/// Sends `chunks` on a plain connection (pausing `gap` between them) and
/// returns everything the gateway wrote until it closed.
async fn plain(world: &World, chunks: &[Vec<u8>], gap: Duration) -> String {
    let mut socket = TcpStream::connect(world.gateway.external).await.unwrap();
    for chunk in chunks {
        // The gateway may close mid-way (that is the point); stop writing then.
        if socket.write_all(chunk).await.is_err() {
            break;
        }
        if !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
    }
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(WAIT, socket.read_to_end(&mut seen)).await;
    String::from_utf8_lossy(&seen).into_owned()
}

fn header_then(rest: &[u8]) -> Vec<Vec<u8>> {
    vec![stream_header(DOMAIN, PARTNER).into_bytes(), rest.to_vec()]
}

fn assert_stream_error(case: &str, seen: &str, condition: &str) {
    assert!(
        seen.contains(&format!("<{condition} xmlns='{NS_STREAM_ERRORS}'")),
        "{case}: expected <{condition}/>, got {seen:?}"
    );
    assert!(
        seen.trim_end().ends_with("</stream:stream>"),
        "{case}: {seen:?}"
    );
}

#[tokio::test]
async fn every_hostile_case_gets_its_stream_error_and_partners_are_served_alongside() {
    let world = World::start();
    let (mut resident, _) = world.legitimate().await;
    let mut slowest = Duration::ZERO;

    let bomb = b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;&lol;'>]>".to_vec();
    let deep = "<a>".repeat(40).into_bytes();
    let oversize = format!("<message><body>{}</body></message>", "a".repeat(11_000)).into_bytes();
    let many = format!("<message>{}</message>", "<a/>".repeat(100)).into_bytes();
    let huge_attribute = format!("<message id='{}'/>", "x".repeat(5_000)).into_bytes();
    let mut invalid_utf8 = b"<message><body>".to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    invalid_utf8.extend_from_slice(b"</body></message>");
    let sasl_before_tls =
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>".to_vec();
    let message_before_tls =
        format!("<message from='bob@{PARTNER}' to='alice@{DOMAIN}'><body>x</body></message>")
            .into_bytes();
    let huge_header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='{DOMAIN}' from='{PARTNER}' version='1.0' x='{}'>",
        "y".repeat(11_000)
    );

    let plain_cases: Vec<PlainCase> = vec![
        (
            "XML bomb (DTD with entities)",
            vec![bomb],
            "restricted-xml",
            None,
        ),
        ("deep nesting", header_then(&deep), "policy-violation", None),
        (
            "oversize element",
            header_then(&oversize),
            "policy-violation",
            Some("stanza-too-big"),
        ),
        (
            "element flood before authentication",
            header_then(&many),
            "policy-violation",
            Some("stanza-too-big"),
        ),
        (
            "huge attribute",
            header_then(&huge_attribute),
            "policy-violation",
            Some("stanza-too-big"),
        ),
        (
            "huge header attribute",
            vec![huge_header.into_bytes()],
            "policy-violation",
            None,
        ),
        (
            "invalid UTF-8",
            header_then(&invalid_utf8),
            "not-well-formed",
            None,
        ),
        (
            "TLS downgrade: SASL before STARTTLS",
            header_then(&sasl_before_tls),
            "policy-violation",
            None,
        ),
        (
            "TLS downgrade: a stanza before STARTTLS",
            header_then(&message_before_tls),
            "policy-violation",
            None,
        ),
    ];
    for (case, chunks, condition, app) in &plain_cases {
        let started = Instant::now();
        let seen = plain(&world, chunks, Duration::ZERO).await;
        assert_stream_error(case, &seen, condition);
        if let Some(app) = app {
            assert!(seen.contains(&format!("<{app} ")), "{case}: {seen:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{case}: answered at once, not at a deadline"
        );
        let (_, took) = world.legitimate().await;
        slowest = slowest.max(took);
    }

    // Slowloris (the header a byte at a time) and half-open (nothing at
    // all), side by side: both end at the 2 s header deadline, however
    // the bytes trickle.
    let trickle: Vec<Vec<u8>> = stream_header(DOMAIN, PARTNER)
        .bytes()
        .map(|b| vec![b])
        .collect();
    let started = Instant::now();
    let (slowloris, half_open, (_, took)) = tokio::join!(
        plain(&world, &trickle, Duration::from_millis(100)),
        plain(&world, &[], Duration::ZERO),
        async {
            // Served while both are held.
            tokio::time::sleep(Duration::from_millis(500)).await;
            world.legitimate().await
        },
    );
    slowest = slowest.max(took);
    assert_stream_error("slowloris", &slowloris, "connection-timeout");
    assert_stream_error("half-open", &half_open, "connection-timeout");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "closed at the deadline, not when the trickle ended: {:?}",
        started.elapsed()
    );

    // After TLS, before authentication: a stanza is not authorized.
    let mut early = world.tls_stream().await;
    early
        .send(&String::from_utf8(message_before_tls.clone()).unwrap())
        .await;
    assert_stream_error(
        "stanza before SASL",
        &early.read_to_end().await,
        "not-authorized",
    );

    // Bad SASL: an authzid that is not the stream's `from`, and a
    // mechanism that was not offered.
    let mut bad = world.tls_stream().await;
    let reply = bad
        .authenticate(DOMAIN, PARTNER, &b64("other.example"))
        .await;
    assert!(
        reply.contains("<failure") && reply.contains("<not-authorized/>"),
        "{reply}"
    );
    let mut plain_mechanism = world.tls_stream().await;
    plain_mechanism
        .send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>")
        .await;
    let reply = plain_mechanism.read_to_end().await;
    assert!(reply.contains("<invalid-mechanism/>"), "{reply}");

    // A forged `from`: an authenticated partner speaking for our domain.
    let (mut forger, _) = world.legitimate().await;
    forger
        .send(&format!(
            "<message from='eve@{DOMAIN}' to='alice@{DOMAIN}'><body>x</body></message>"
        ))
        .await;
    assert_stream_error("forged from", &forger.read_to_end().await, "invalid-from");

    let (_, took) = world.legitimate().await;
    slowest = slowest.max(took);
    eprintln!(
        "{} hostile cases; slowest legitimate TLS + SASL EXTERNAL between them: {slowest:?}",
        plain_cases.len() + 6
    );
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");

    // The stream authenticated before the attacks is still open: a
    // keepalive is taken and nothing closes it.
    resident.send(" ").await;
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_millis(300), resident.tls.read(&mut buf)).await;
    assert!(read.is_err(), "the resident stream was closed: {read:?}");
    assert!(
        !world.gateway.log_text().contains("panicked"),
        "{}",
        world.gateway.log_text()
    );
    let _ = &world.work;
}

#[tokio::test]
async fn strangers_filling_the_unauthenticated_budget_are_refused_and_partners_keep_being_served() {
    let world = World::start_with("max_unauthenticated_connections = 4");
    // Authenticated before the flood: it left the budget at SASL success.
    let (mut resident, _) = world.legitimate().await;
    let mut strangers = Vec::new();
    for _ in 0..4 {
        let mut socket = TcpStream::connect(world.gateway.external).await.unwrap();
        socket
            .write_all(stream_header(DOMAIN, PARTNER).as_bytes())
            .await
            .unwrap();
        read_until(&mut socket, "</stream:features>").await;
        strangers.push(socket);
    }
    let gauge = "xfed_gateway_unauthenticated_connections{listener=\"external\"} 4";
    let (_, metrics) = world.gateway.get("/metrics");
    assert!(metrics.contains(gauge), "{metrics}");

    // The fifth stranger is closed at accept and counted.
    let refused = plain(&world, &header_then(b""), Duration::ZERO).await;
    assert_eq!(refused, "", "closed before a byte of XML");
    let (_, metrics) = world.gateway.get("/metrics");
    assert!(
        metrics.contains(
            "xfed_gateway_connections_rejected_total{listener=\"external\",reason=\"pre_auth_budget\"} 1"
        ),
        "{metrics}"
    );

    // The authenticated partner is served throughout: a stanza it is not
    // allowed to send still gets its stream error, so the gateway reads it.
    resident
        .send(&format!(
            "<message from='eve@{DOMAIN}' to='alice@{DOMAIN}'><body>x</body></message>"
        ))
        .await;
    assert_stream_error("resident", &resident.read_to_end().await, "invalid-from");

    // A place freed: a legitimate partner authenticates again.
    drop(strangers.pop());
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, metrics) = world.gateway.get("/metrics");
        if metrics.contains("xfed_gateway_unauthenticated_connections{listener=\"external\"} 3") {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    world.legitimate().await;
}

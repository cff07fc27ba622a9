//! `limits.max_connections_per_partner` against the real binary: real TLS
//! with each partner's client certificate and SASL EXTERNAL, as a partner
//! server negotiates it. The gateway's own `/status` (its authenticated
//! inbound streams) and `/metrics` are the witnesses; every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::peers::{Initiator, b64, start_tls};
use common::prosody::free_port;
use common::*;
use std::time::Instant;

const OTHER: &str = "other.example";
const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
const REFUSED_METRIC: &str = "xfed_gateway_connections_rejected_total{listener=\"external\",reason=\"max_connections_per_partner\"}";

struct World {
    ca: TestCa,
    partner: Leaf,
    other: Leaf,
    gateway: Gateway,
    _work: Workdir,
}

impl World {
    /// A gateway with two partners and `max_connections_per_partner = 2`.
    fn start() -> World {
        let work = Workdir::new();
        let ca = TestCa::new("Partner Limit Test CA");
        let external = work.install("external", &ca.leaf(&[DOMAIN]));
        let internal = work.install("internal", &ca.leaf(&[PARTNER]));
        let ca_file = work.write("ca.pem", &ca.pem).display().to_string();
        // SASL EXTERNAL needs `[relay]` (its partner CA); the internal
        // server is never reached, no stanza is relayed.
        let text = format!(
            "domains = [\"{DOMAIN}\"]\nlog_level = \"debug\"\ndrain_secs = 2\n\
             [external]\naddress = \"127.0.0.1\"\nport = 0\n{external}\n\
             [internal]\naddress = \"127.0.0.1\"\nport = 0\n{internal}client_ca = {ca_file:?}\n\
             [admin]\naddress = \"127.0.0.1\"\nport = 0\n\
             [limits]\nmax_connections_per_partner = 2\n\
             [relay]\ninternal_server = \"127.0.0.1:{closed}\"\npartner_ca = {ca_file:?}\nconnect_timeout_secs = 5\n\
             [[partners]]\ndomain = \"{PARTNER}\"\n\
             [[partners]]\ndomain = \"{OTHER}\"\n\
             [[policies]]\nidentity = \"Global\"\nscope = \"global\"\nenable_federation_access = true\nenable_xmpp_access = true\n",
            closed = free_port(),
        );
        let gateway = Gateway::start(&work.write("gateway.toml", &text));
        World {
            partner: ca.leaf(&[PARTNER]),
            other: ca.leaf(&[OTHER]),
            ca,
            gateway,
            _work: work,
        }
    }

    /// `domain`'s stream after TLS with its certificate and the SASL
    /// EXTERNAL `<auth/>` sent, and what was read up to `<success/>` (and
    /// whatever came with it).
    async fn authenticating(&self, domain: &str) -> (Initiator, String) {
        let leaf = if domain == PARTNER {
            &self.partner
        } else {
            &self.other
        };
        let mut stream = start_tls(
            self.gateway.external,
            DOMAIN,
            domain,
            self.ca.roots(),
            Some(leaf),
        )
        .await;
        assert!(stream.offers_external(), "{}", stream.features);
        stream
            .send(&format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>{}</auth>",
                b64(domain)
            ))
            .await;
        let reply = read_until(&mut stream.tls, "/>").await;
        assert!(reply.contains("<success"), "{domain}: {reply}");
        (stream, reply)
    }

    /// An authenticated stream of `domain`: the restart after `<success/>`
    /// answered with features, so the gateway kept it.
    async fn admitted(&self, domain: &str) -> Initiator {
        let (mut stream, reply) = self.authenticating(domain).await;
        assert!(!reply.contains("<stream:error"), "{domain}: {reply}");
        stream.send(&stream_header(DOMAIN, domain)).await;
        let features = read_until(&mut stream.tls, "<stream:features/>").await;
        assert!(!features.contains("<stream:error"), "{domain}: {features}");
        stream
    }

    /// `domain`'s authenticated inbound streams in the gateway's `/status`.
    fn streams_of(&self, domain: &str) -> usize {
        let status = self.gateway.status();
        status["relay"]["inbound"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["listener"] == "external" && s["domain"] == domain)
            .count()
    }

    /// Waits (bounded) until `/status` lists `n` streams of `domain`.
    async fn wait_streams(&self, domain: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.streams_of(domain) != n {
            assert!(
                Instant::now() < deadline,
                "{domain}: expected {n} streams, /status: {}",
                self.gateway.status()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_third_stream_of_a_partner_is_refused_counted_and_its_slot_comes_back() {
    let mut world = World::start();
    let mut first = world.admitted(PARTNER).await;
    let _second = world.admitted(PARTNER).await;
    world.wait_streams(PARTNER, 2).await;
    assert_eq!(world.gateway.metric(REFUSED_METRIC), 0);

    // The third authenticates, then is closed with the stream error.
    let (mut third, mut closed) = world.authenticating(PARTNER).await;
    closed.push_str(&third.read_to_end().await);
    assert!(
        closed.contains(&format!("<policy-violation xmlns='{NS_STREAM_ERRORS}'/>")),
        "{closed}"
    );
    assert!(
        closed.contains("has reached its limit of concurrent streams"),
        "{closed}"
    );
    assert!(closed.trim_end().ends_with("</stream:stream>"), "{closed}");
    assert_eq!(world.gateway.metric(REFUSED_METRIC), 1);
    assert_eq!(
        world.gateway.metric(
            "xfed_gateway_stream_errors_total{listener=\"external\",condition=\"policy-violation\"}"
        ),
        1
    );
    let line = world
        .gateway
        .wait_for(|l| l.contains("event=stream_refused"));
    assert_eq!(field(&line, "partner").as_deref(), Some(PARTNER), "{line}");
    assert_eq!(
        field(&line, "reason").as_deref(),
        Some("max_connections_per_partner"),
        "{line}"
    );
    assert_eq!(field(&line, "limit").as_deref(), Some("2"), "{line}");
    // The two first are still held, the refused one is not listed.
    assert_eq!(world.streams_of(PARTNER), 2);

    // Another partner is not affected.
    let _other = world.admitted(OTHER).await;
    world.wait_streams(OTHER, 1).await;

    // One of the first two ends (the gateway answers its close, so it was
    // still served): its place comes back and a new stream is admitted.
    first.send("</stream:stream>").await;
    let answer = first.read_to_end().await;
    assert!(answer.contains("</stream:stream>"), "{answer}");
    assert!(!answer.contains("<stream:error"), "{answer}");
    world.wait_streams(PARTNER, 1).await;
    let _again = world.admitted(PARTNER).await;
    world.wait_streams(PARTNER, 2).await;
    assert_eq!(
        world.gateway.metric(REFUSED_METRIC),
        1,
        "nothing else refused"
    );
}

//! SASL EXTERNAL and the established phase: when EXTERNAL is offered, what
//! an `<auth/>` gets, the address checks on every stanza, and the per-user
//! policy's events. Fed bytes, as `tests.rs` does; the output is parsed back.

use super::*;
use crate::config::{Config, ListenerKind};
use crate::tls::PeerIdentity;
use crate::xml::{Element, Frame, Framer};
use std::path::Path;
use std::sync::Arc;

const CONFIG: &str = r#"
domains = ["contoso.example"]
[external]
address = "127.0.0.1"
[internal]
address = "127.0.0.2"
[[partners]]
domain = "partner.example"
[[policies]]
identity = "Global"
enable_federation_access = true
enable_xmpp_access = true
[[policies]]
identity = "NoXmpp"
enable_federation_access = true
enable_xmpp_access = false
[[grants]]
policy = "NoXmpp"
users = ["mallory@contoso.example"]
"#;

fn header(to: &str, from: Option<&str>) -> String {
    let from = from.map(|f| format!(" from='{f}'")).unwrap_or_default();
    format!(
        "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
         to='{to}'{from} version='1.0' xml:lang='de'>"
    )
}

fn settings(listener: ListenerKind, relay: bool) -> Arc<StreamSettings> {
    let config = Config::parse(Path::new("/x.toml"), CONFIG.as_bytes()).expect("valid");
    let policy = Arc::new(crate::policy::PolicyIndex::new(&config));
    let mut settings = StreamSettings::new(&config, listener, true, policy);
    settings.relay = relay;
    Arc::new(settings)
}

/// Both ends of a listener: who connects, to what, with which certificate.
struct Side {
    listener: ListenerKind,
    ours: &'static str,
    peer: &'static str,
}

const EXTERNAL: Side = Side {
    listener: ListenerKind::External,
    ours: "contoso.example",
    peer: "partner.example",
};
const INTERNAL: Side = Side {
    listener: ListenerKind::Internal,
    ours: "partner.example",
    peer: "contoso.example",
};

/// A machine taken through STARTTLS and the secure header; returns the
/// secure features the peer read.
fn secure(
    side: &Side,
    relay: bool,
    names: Option<&[&str]>,
    from: Option<&str>,
) -> (StreamMachine, Element) {
    let mut m = StreamMachine::new(settings(side.listener, relay));
    let open = header(side.ours, from);
    assert_eq!(m.receive(open.as_bytes()), Directive::Continue);
    m.take_output();
    assert_eq!(
        m.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
        Directive::StartTls
    );
    m.take_output();
    m.tls_established(names.map(PeerIdentity::with_names));
    assert_eq!(m.receive(open.as_bytes()), Directive::Continue);
    let features = elements(&m.take_output()).pop().expect("features");
    assert!(features.is(NS_STREAMS, "features"));
    (m, features)
}

fn offers_external(features: &Element) -> bool {
    features
        .child_elements()
        .filter(|c| c.is(NS_SASL, "mechanisms"))
        .flat_map(Element::child_elements)
        .any(|m| m.children == vec![crate::xml::Node::Text("EXTERNAL".into())])
}

/// The top-level elements of some output (a header, if any, skipped).
fn elements(output: &[u8]) -> Vec<Element> {
    let text = String::from_utf8_lossy(output);
    let mut framer = Framer::new(100_000, 16);
    if !text.contains("<stream:stream ") {
        framer.push(b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>");
    }
    framer.push(output);
    let mut out = Vec::new();
    while let Some(frame) = framer.next_frame().expect("well-formed") {
        if let Frame::Element(e) = frame {
            out.push(e);
        }
    }
    out
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// An established stream on `side`, authenticated as its peer.
fn established(side: &Side) -> StreamMachine {
    let (mut m, features) = secure(side, true, Some(&[side.peer]), Some(side.peer));
    assert!(offers_external(&features));
    let auth = format!("<auth xmlns='{NS_SASL}' mechanism='EXTERNAL'>=</auth>");
    assert_eq!(m.receive(auth.as_bytes()), Directive::Continue);
    m.take_output();
    assert_eq!(
        m.receive(header(side.ours, Some(side.peer)).as_bytes()),
        Directive::Continue
    );
    m.take_output();
    assert_eq!(m.phase(), Phase::Established);
    m.take_events();
    m
}

#[test]
fn external_is_offered_for_a_certificate_valid_for_from() {
    for side in [&EXTERNAL, &INTERNAL] {
        let (_, features) = secure(side, true, Some(&[side.peer]), Some(side.peer));
        assert!(offers_external(&features), "{features:?}");
    }
    // A left-most wildcard covers one label.
    let (_, features) = secure(
        &EXTERNAL,
        true,
        Some(&["*.example"]),
        Some("partner.example"),
    );
    assert!(offers_external(&features));
}

#[test]
fn external_is_not_offered_without_a_valid_certificate_for_from() {
    type Case<'a> = (&'a str, bool, Option<&'a [&'a str]>, Option<&'a str>);
    let cases: [Case<'_>; 4] = [
        (
            "certificate for another domain",
            true,
            Some(&["other.example"]),
            Some("partner.example"),
        ),
        (
            "no certificate (or one that does not chain)",
            true,
            None,
            Some("partner.example"),
        ),
        (
            "no from: nothing to authenticate",
            true,
            Some(&["partner.example"]),
            None,
        ),
        (
            "relay not configured",
            false,
            Some(&["partner.example"]),
            Some("partner.example"),
        ),
    ];
    for (case, relay, names, from) in cases {
        let (_, features) = secure(&EXTERNAL, relay, names, from);
        assert!(!offers_external(&features), "{case}: {features:?}");
        assert!(features.children.is_empty(), "{case}: empty features");
    }
    // A left-most wildcard covers one label, not two.
    assert!(!PeerIdentity::with_names(&["*.example"]).covers("a.partner.example"));
}

#[test]
fn auth_with_empty_or_matching_authzid_succeeds_and_restarts() {
    for authzid in ["", "=", &b64("partner.example"), &b64("PARTNER.example.")] {
        let (mut m, _) = secure(
            &EXTERNAL,
            true,
            Some(&["partner.example"]),
            Some("partner.example"),
        );
        let auth = format!("<auth xmlns='{NS_SASL}' mechanism='EXTERNAL'>{authzid}</auth>");
        assert_eq!(
            m.receive(auth.as_bytes()),
            Directive::Continue,
            "{authzid:?}"
        );
        let out = elements(&m.take_output());
        assert!(out[0].is(NS_SASL, "success"), "{out:?}");
        assert_eq!(
            m.take_events(),
            vec![StreamEvent::Authenticated {
                domain: "partner.example".into(),
                mechanism: Mechanism::External,
            }]
        );
        assert_eq!(m.phase(), Phase::AwaitHeader);
        m.receive(header("contoso.example", Some("partner.example")).as_bytes());
        let out = m.take_output();
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("<stream:stream "), "a new header: {text}");
        assert!(text.ends_with("<stream:features/>"), "{text}");
        assert_eq!(m.phase(), Phase::Established);
        assert_eq!(m.authenticated(), Some("partner.example"));
    }
}

#[test]
fn auth_with_another_authzid_or_mechanism_fails_and_closes() {
    let cases = [
        ("EXTERNAL", b64("other.example"), "not-authorized"),
        ("EXTERNAL", "not base64!".to_string(), "not-authorized"),
        ("PLAIN", b64("partner.example"), "invalid-mechanism"),
    ];
    for (mechanism, authzid, condition) in cases {
        let (mut m, _) = secure(
            &EXTERNAL,
            true,
            Some(&["partner.example"]),
            Some("partner.example"),
        );
        let auth = format!("<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>{authzid}</auth>");
        assert_eq!(m.receive(auth.as_bytes()), Directive::Close);
        let out = m.take_output();
        let failure = elements(&out).pop().expect("failure");
        assert!(failure.is(NS_SASL, "failure"), "{failure:?}");
        assert_eq!(
            failure.child_elements().next().map(|c| c.name.as_str()),
            Some(condition)
        );
        assert!(String::from_utf8_lossy(&out).ends_with("</stream:stream>"));
        assert!(matches!(
            m.take_events()[..],
            [StreamEvent::AuthFailed { .. }]
        ));
        assert_eq!(m.phase(), Phase::Closed);
    }
}

#[test]
fn auth_when_external_was_not_offered_fails() {
    let (mut m, _) = secure(
        &EXTERNAL,
        true,
        Some(&["other.example"]),
        Some("partner.example"),
    );
    let auth = format!("<auth xmlns='{NS_SASL}' mechanism='EXTERNAL'>=</auth>");
    assert_eq!(m.receive(auth.as_bytes()), Directive::Close);
    let failure = elements(&m.take_output()).pop().expect("failure");
    assert!(failure.is(NS_SASL, "failure"));
    assert_eq!(m.authenticated(), None);
}

#[test]
fn stanza_before_authentication_is_not_authorized_and_not_relayed() {
    let (mut m, _) = secure(
        &EXTERNAL,
        true,
        Some(&["partner.example"]),
        Some("partner.example"),
    );
    let stanza =
        "<message from='bob@partner.example' to='alice@contoso.example'><body>hi</body></message>";
    assert_eq!(m.receive(stanza.as_bytes()), Directive::Close);
    assert_eq!(m.condition(), Some(Condition::NotAuthorized));
    assert!(m.take_events().is_empty(), "nothing relayed");
}

#[test]
fn restart_after_auth_must_keep_the_authenticated_from() {
    let (mut m, _) = secure(
        &EXTERNAL,
        true,
        Some(&["partner.example"]),
        Some("partner.example"),
    );
    m.receive(format!("<auth xmlns='{NS_SASL}' mechanism='EXTERNAL'>=</auth>").as_bytes());
    m.take_output();
    assert_eq!(
        m.receive(header("contoso.example", None).as_bytes()),
        Directive::Close
    );
    assert_eq!(m.condition(), Some(Condition::InvalidFrom));
}

fn relayed(m: &mut StreamMachine) -> Vec<StreamEvent> {
    m.take_events()
}

#[test]
fn established_stanza_to_an_allowed_user_is_relayed_with_the_stream_language() {
    let mut m = established(&EXTERNAL);
    let stanza = "<message from='bob@partner.example/phone' to='Alice@contoso.example' type='chat'><body>hi &amp; bye</body></message>";
    assert_eq!(m.receive(stanza.as_bytes()), Directive::Continue);
    let [StreamEvent::Relay(routed)] = &relayed(&mut m)[..] else {
        panic!("not relayed")
    };
    assert_eq!(routed.from_domain, "partner.example");
    assert_eq!(routed.to_domain, "contoso.example");
    assert_eq!(
        routed.stanza.attr_ns(crate::xml::NS_XML, "lang"),
        Some("de")
    );
    // A stanza's own language is kept.
    let stanza = "<iq from='partner.example' to='contoso.example' type='get' id='p' xml:lang='fr'><ping xmlns='urn:xmpp:ping'/></iq>";
    m.receive(stanza.as_bytes());
    let [StreamEvent::Relay(routed)] = &relayed(&mut m)[..] else {
        panic!("server-to-server iq is relayed")
    };
    assert_eq!(
        routed.stanza.attr_ns(crate::xml::NS_XML, "lang"),
        Some("fr")
    );
    assert!(
        m.take_output().is_empty(),
        "nothing is written on the inbound stream"
    );
}

#[test]
fn established_address_violations_are_stream_errors() {
    let cases = [
        (
            "<message from='bob@elsewhere.example' to='alice@contoso.example'/>",
            Condition::InvalidFrom,
        ),
        (
            "<message from='bob@partner.example' to='alice@fabrikam.example'/>",
            Condition::HostUnknown,
        ),
        (
            "<message to='alice@contoso.example'/>",
            Condition::ImproperAddressing,
        ),
        (
            "<message from='bob@partner.example'/>",
            Condition::ImproperAddressing,
        ),
        (
            "<message xmlns='jabber:client' from='bob@partner.example' to='alice@contoso.example'/>",
            Condition::InvalidNamespace,
        ),
        (
            // Dialback on a stream already authenticated: refused.
            "<db:result xmlns:db='jabber:server:dialback' from='partner.example' to='contoso.example'>k</db:result>",
            Condition::NotAuthorized,
        ),
    ];
    for (stanza, condition) in cases {
        let mut m = established(&EXTERNAL);
        assert_eq!(m.receive(stanza.as_bytes()), Directive::Close, "{stanza}");
        assert_eq!(m.condition(), Some(condition), "{stanza}");
        assert!(m.take_events().is_empty(), "{stanza}: not relayed");
    }
    // On the internal listener `to` must be a partner and `from` ours.
    let mut m = established(&INTERNAL);
    m.receive(b"<message from='alice@contoso.example' to='carol@contoso.example'/>");
    assert_eq!(m.condition(), Some(Condition::HostUnknown));
}

#[test]
fn denied_inbound_message_is_answered_with_service_unavailable() {
    let mut m = established(&EXTERNAL);
    m.receive(b"<message from='bob@partner.example/x' to='mallory@contoso.example' id='m1'><body>secret</body></message>");
    let [
        StreamEvent::Denied {
            direction,
            user,
            cause,
            stanza,
            reply: Some(reply),
        },
    ] = &relayed(&mut m)[..]
    else {
        panic!("denied with a reply")
    };
    assert_eq!(*direction, crate::policy::Direction::Inbound);
    assert_eq!(
        *cause,
        crate::policy::DenialCause::Decided {
            flag: crate::policy::AccessFlag::Xmpp
        }
    );
    assert_eq!(user, "mallory@contoso.example");
    assert_eq!(stanza, "message");
    assert_eq!(
        (reply.from_domain.as_str(), reply.to_domain.as_str()),
        ("contoso.example", "partner.example")
    );
    let e = &reply.stanza;
    assert_eq!(e.attr("to"), Some("bob@partner.example/x"));
    assert_eq!(e.attr("from"), Some("mallory@contoso.example"));
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(e.attr("id"), Some("m1"));
    let error = e.child_elements().next().expect("error");
    assert_eq!(error.attr("type"), Some("cancel"));
    assert!(
        error
            .child_elements()
            .any(|c| c.is(NS_STANZAS, "service-unavailable"))
    );
    assert!(
        !crate::xml::to_xml(e, "jabber:server").contains("secret"),
        "no body echoed"
    );
    assert_eq!(m.phase(), Phase::Established, "the stream stays up");
}

#[test]
fn denied_presence_is_dropped_and_denied_errors_are_not_answered() {
    let mut m = established(&EXTERNAL);
    m.receive(
        b"<presence from='bob@partner.example' to='mallory@contoso.example' type='subscribe'/>",
    );
    m.receive(b"<message from='bob@partner.example' to='mallory@contoso.example' type='error'/>");
    m.receive(
        b"<iq from='bob@partner.example' to='mallory@contoso.example' type='result' id='r'/>",
    );
    let events = relayed(&mut m);
    assert_eq!(events.len(), 3);
    for event in events {
        assert!(
            matches!(event, StreamEvent::Denied { reply: None, .. }),
            "{event:?}"
        );
    }
}

#[test]
fn denied_outbound_stanza_is_answered_with_policy_violation_to_our_server() {
    let mut m = established(&INTERNAL);
    m.receive(b"<iq from='mallory@contoso.example/desk' to='bob@partner.example' type='get' id='q'><query xmlns='jabber:iq:version'/></iq>");
    let [
        StreamEvent::Denied {
            reply: Some(reply), ..
        },
    ] = &relayed(&mut m)[..]
    else {
        panic!("denied with a reply")
    };
    assert_eq!(
        (reply.from_domain.as_str(), reply.to_domain.as_str()),
        ("partner.example", "contoso.example")
    );
    let error = reply.stanza.child_elements().next().expect("error");
    assert!(
        error
            .child_elements()
            .any(|c| c.is(NS_STANZAS, "policy-violation"))
    );
    // An allowed user's stanza goes out.
    m.receive(b"<message from='alice@contoso.example' to='bob@partner.example'/>");
    assert!(matches!(relayed(&mut m)[..], [StreamEvent::Relay(_)]));
}

#[test]
fn reload_hands_open_streams_the_new_policies() {
    let mut m = established(&EXTERNAL);
    let denied = CONFIG.replace(
        "users = [\"mallory@contoso.example\"]",
        "users = [\"alice@contoso.example\"]",
    );
    let config = Config::parse(Path::new("/x.toml"), denied.as_bytes()).expect("valid");
    let policy = Arc::new(crate::policy::PolicyIndex::new(&config));
    let mut settings = StreamSettings::new(&config, ListenerKind::External, true, policy);
    settings.relay = true;
    assert_eq!(m.reconfigured(Arc::new(settings)), Directive::Continue);
    m.receive(b"<message from='bob@partner.example' to='alice@contoso.example'/>");
    assert!(matches!(relayed(&mut m)[..], [StreamEvent::Denied { .. }]));
    m.receive(b"<message from='bob@partner.example' to='mallory@contoso.example'/>");
    assert!(matches!(relayed(&mut m)[..], [StreamEvent::Relay(_)]));
}

/// The driver's per-partner limit refuses a stream just authenticated:
/// the peer reads `<success/>`, then a new header and `<policy-violation/>`,
/// and nothing it sends next is read.
#[test]
fn a_stream_over_the_per_partner_limit_gets_policy_violation_after_success() {
    let (mut m, _) = secure(
        &EXTERNAL,
        true,
        Some(&["partner.example"]),
        Some("partner.example"),
    );
    let auth = format!("<auth xmlns='{NS_SASL}' mechanism='EXTERNAL'>=</auth>");
    assert_eq!(m.receive(auth.as_bytes()), Directive::Continue);
    assert_eq!(m.over_partner_limit(2), Directive::Close);
    let out = m.take_output();
    let text = String::from_utf8_lossy(&out);
    let success = text.find("<success").expect("success first");
    let error = text
        .find("<policy-violation")
        .expect("then the stream error");
    assert!(success < error, "{text}");
    assert!(text.ends_with("</stream:stream>"), "{text}");
    assert_eq!(
        m.error(),
        Some(&StreamError::PartnerLimit {
            partner: "partner.example".into(),
            limit: 2
        })
    );
    assert_eq!(m.condition(), Some(Condition::PolicyViolation));
    assert_eq!(
        m.receive(header("contoso.example", Some("partner.example")).as_bytes()),
        Directive::Close
    );
}

//! Dialback on the receiving side: what is offered, what a `db:result`
//! becomes, how the answer is written, what is refused, and `db:verify`
//! answered from the secrets. Fed bytes, as `relay_tests.rs` does.

use super::*;
use crate::config::{Config, ListenerKind};
use crate::dialback::{DialbackKey, KeyCheck, Secrets};
use crate::xml::{Element, Frame, Framer};
use std::path::Path;
use std::sync::Arc;

const CONFIG: &str = r#"
domains = ["contoso.example"]
[external]
address = "127.0.0.1"
[internal]
address = "127.0.0.2"
[dialback]
secret_file = "/secret"
[[partners]]
domain = "fabrikam.example"
auth = "either"
additional_domains = ["conference.fabrikam.example"]
[[partners]]
domain = "litware.example"
auth = "external"
[[policies]]
identity = "Global"
enable_federation_access = true
enable_xmpp_access = true
"#;

fn config() -> Config {
    Config::parse(Path::new("/x.toml"), CONFIG.as_bytes()).expect("valid")
}

fn settings(listener: ListenerKind) -> Arc<StreamSettings> {
    let config = config();
    let policy = Arc::new(crate::policy::PolicyIndex::new(&config));
    let mut settings = StreamSettings::new(&config, listener, true, policy).with_dialback(Some(
        Arc::new(Secrets::from_bytes(b"current", Some(b"previous"))),
    ));
    // Relaying on (its section needs certificates; the machine does not).
    settings.relay = true;
    Arc::new(settings)
}

fn header(to: &str, from: &str) -> String {
    format!(
        "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
         xmlns:db='jabber:server:dialback' to='{to}' from='{from}' version='1.0'>"
    )
}

/// The top-level elements of some output (a header, if any, skipped).
fn elements(output: &[u8]) -> Vec<Element> {
    let text = String::from_utf8_lossy(output);
    let mut framer = Framer::new(100_000, 16);
    if !text.contains("<stream:stream ") {
        framer.push(
            b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
              xmlns:db='jabber:server:dialback'>",
        );
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

/// A machine past STARTTLS and the secure header from `from` (no client
/// certificate); returns it with the features it sent.
fn secure(listener: ListenerKind, to: &str, from: &str) -> (StreamMachine, Element) {
    let mut m = StreamMachine::new(settings(listener));
    let open = header(to, from);
    assert_eq!(m.receive(open.as_bytes()), Directive::Continue);
    m.take_output();
    assert_eq!(
        m.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
        Directive::StartTls
    );
    m.take_output();
    m.tls_established(None);
    assert_eq!(m.receive(open.as_bytes()), Directive::Continue);
    let features = elements(&m.take_output()).pop().expect("features");
    (m, features)
}

fn offers_dialback(features: &Element) -> bool {
    features
        .child_elements()
        .any(|c| c.is(NS_DIALBACK_FEATURE, "dialback"))
}

const RESULT: &str =
    "<db:result from='fabrikam.example' to='contoso.example'>abcdef0123</db:result>";

/// A stream from fabrikam with its `db:result` pending.
fn pending() -> (StreamMachine, String) {
    let (mut m, _) = secure(
        ListenerKind::External,
        "contoso.example",
        "fabrikam.example",
    );
    assert_eq!(m.receive(RESULT.as_bytes()), Directive::Continue);
    assert!(
        m.take_output().is_empty(),
        "nothing answered before verification"
    );
    let events = m.take_events();
    let [
        StreamEvent::VerifyDialback {
            from,
            to,
            stream_id,
            key,
        },
    ] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(
        (from.as_str(), to.as_str(), key.as_str()),
        ("fabrikam.example", "contoso.example", "abcdef0123")
    );
    assert_eq!(
        Some(stream_id.as_str()),
        m.stream_id().map(StreamId::as_str)
    );
    let id = stream_id.clone();
    (m, id)
}

#[test]
fn dialback_is_offered_only_to_partners_allowed_to_use_it() {
    let (_, features) = secure(
        ListenerKind::External,
        "contoso.example",
        "fabrikam.example",
    );
    assert!(offers_dialback(&features), "{features:?}");
    let (_, features) = secure(
        ListenerKind::External,
        "contoso.example",
        "conference.fabrikam.example",
    );
    assert!(
        offers_dialback(&features),
        "an additional domain is the partner's"
    );
    let (_, features) = secure(ListenerKind::External, "contoso.example", "litware.example");
    assert!(!offers_dialback(&features), "auth = external");
    let (_, features) = secure(
        ListenerKind::Internal,
        "fabrikam.example",
        "contoso.example",
    );
    assert!(
        !offers_dialback(&features),
        "never on the internal listener"
    );
}

#[test]
fn valid_answer_authenticates_without_restart() {
    let (mut m, _) = pending();
    assert_eq!(
        m.dialback_verified("fabrikam.example", DialbackOutcome::Valid),
        Directive::Continue
    );
    let out = elements(&m.take_output());
    assert!(out[0].is(NS_DIALBACK, "result"), "{out:?}");
    assert_eq!(out[0].attr("type"), Some("valid"));
    assert_eq!(out[0].attr("from"), Some("contoso.example"));
    assert_eq!(out[0].attr("to"), Some("fabrikam.example"));
    assert_eq!(m.phase(), Phase::Established);
    assert_eq!(m.mechanism(), Some(Mechanism::Dialback));
    assert!(m.take_events().contains(&StreamEvent::Authenticated {
        domain: "fabrikam.example".into(),
        mechanism: Mechanism::Dialback,
    }));
    m.receive(
        b"<message from='bob@fabrikam.example' to='alice@contoso.example'><body>hi</body></message>",
    );
    assert!(matches!(
        m.take_events().as_slice(),
        [StreamEvent::Relay(_)]
    ));
    // A second db:result on the authenticated stream is refused.
    assert_eq!(m.receive(RESULT.as_bytes()), Directive::Close);
    assert_eq!(m.condition(), Some(Condition::NotAuthorized));
}

#[test]
fn stanzas_before_the_answer_are_not_relayed() {
    let (mut m, _) = pending();
    let d = m.receive(
        b"<message from='bob@fabrikam.example' to='alice@contoso.example'><body>hi</body></message>",
    );
    assert_eq!(d, Directive::Close);
    assert_eq!(m.condition(), Some(Condition::NotAuthorized));
    assert!(m.take_events().is_empty());
}

#[test]
fn invalid_answer_refuses_the_stream() {
    let (mut m, _) = pending();
    assert_eq!(
        m.dialback_verified("fabrikam.example", DialbackOutcome::Invalid),
        Directive::Close
    );
    let out = elements(&m.take_output());
    assert_eq!(out[0].attr("type"), Some("invalid"));
    assert!(out[1].is(NS_STREAMS, "error"));
    assert_eq!(m.condition(), Some(Condition::NotAuthorized));
    assert_eq!(m.authenticated(), None);
}

#[test]
fn error_answer_keeps_the_stream_and_refuses_a_retry() {
    let (mut m, _) = pending();
    assert_eq!(
        m.dialback_verified("fabrikam.example", DialbackOutcome::Error),
        Directive::Continue
    );
    let out = elements(&m.take_output());
    assert_eq!(out[0].attr("type"), Some("error"));
    assert_eq!(m.phase(), Phase::Negotiating);
    assert_eq!(m.receive(RESULT.as_bytes()), Directive::Close);
    assert_eq!(m.condition(), Some(Condition::NotAuthorized));
}

#[test]
fn answers_only_the_pending_request() {
    let (mut m, _) = pending();
    assert_eq!(
        m.dialback_verified("litware.example", DialbackOutcome::Valid),
        Directive::Continue
    );
    assert!(m.take_output().is_empty());
    assert_eq!(m.authenticated(), None);
}

#[test]
fn refusals() {
    let cases: [(&str, &str, Condition); 6] = [
        // Repeated while pending.
        (
            "fabrikam.example",
            &format!("{RESULT}{RESULT}"),
            Condition::NotAuthorized,
        ),
        // Partner that must use EXTERNAL.
        (
            "litware.example",
            "<db:result from='litware.example' to='contoso.example'>k</db:result>",
            Condition::NotAuthorized,
        ),
        // Unsolicited answers.
        (
            "fabrikam.example",
            "<db:result from='fabrikam.example' to='contoso.example' type='valid'/>",
            Condition::NotAuthorized,
        ),
        (
            "fabrikam.example",
            "<db:verify from='fabrikam.example' to='contoso.example' id='x' type='valid'/>",
            Condition::NotAuthorized,
        ),
        // Another domain than the stream's.
        (
            "fabrikam.example",
            "<db:result from='conference.fabrikam.example' to='contoso.example'>k</db:result>",
            Condition::InvalidFrom,
        ),
        // Not one of ours.
        (
            "fabrikam.example",
            "<db:result from='fabrikam.example' to='elsewhere.example'>k</db:result>",
            Condition::HostUnknown,
        ),
    ];
    for (from, input, condition) in cases {
        let (mut m, _) = secure(ListenerKind::External, "contoso.example", from);
        m.receive(input.as_bytes());
        assert_eq!(m.condition(), Some(condition), "{input}");
        assert!(
            !m.take_events()
                .iter()
                .any(|e| matches!(e, StreamEvent::Relay(_))),
            "{input}"
        );
    }
    // Internal listener: dialback is not spoken there.
    let (mut m, _) = secure(
        ListenerKind::Internal,
        "fabrikam.example",
        "contoso.example",
    );
    m.receive(b"<db:result from='contoso.example' to='fabrikam.example'>k</db:result>");
    assert_eq!(m.condition(), Some(Condition::UnsupportedStanzaType));
}

#[test]
fn db_result_before_tls_is_a_stream_error() {
    let mut m = StreamMachine::new(settings(ListenerKind::External));
    m.receive(header("contoso.example", "fabrikam.example").as_bytes());
    m.take_output();
    assert_eq!(m.receive(RESULT.as_bytes()), Directive::Close);
    assert_eq!(m.condition(), Some(Condition::PolicyViolation));
    assert!(m.take_events().is_empty());
}

#[test]
fn db_verify_is_answered_from_the_secrets() {
    let key = |secret: &[u8], id: &str| {
        DialbackKey {
            receiving: "fabrikam.example",
            originating: "contoso.example",
            stream_id: id,
        }
        .make(secret)
    };
    let cases = [
        (
            key(b"current", "s1"),
            "s1",
            "contoso.example",
            "valid",
            KeyCheck::Current,
        ),
        (
            key(b"previous", "s1"),
            "s1",
            "contoso.example",
            "valid",
            KeyCheck::Previous,
        ),
        (
            key(b"current", "s1"),
            "s2",
            "contoso.example",
            "invalid",
            KeyCheck::Invalid,
        ),
        (
            "0123".to_string(),
            "s1",
            "contoso.example",
            "invalid",
            KeyCheck::Invalid,
        ),
        (
            key(b"current", "s1"),
            "s1",
            "elsewhere.example",
            "invalid",
            KeyCheck::Invalid,
        ),
    ];
    for (k, id, to, answer, check) in cases {
        let (mut m, _) = secure(
            ListenerKind::External,
            "contoso.example",
            "fabrikam.example",
        );
        let verify =
            format!("<db:verify from='fabrikam.example' to='{to}' id='{id}'>{k}</db:verify>");
        assert_eq!(m.receive(verify.as_bytes()), Directive::Continue);
        let out = elements(&m.take_output());
        assert!(out[0].is(NS_DIALBACK, "verify"), "{out:?}");
        assert_eq!(out[0].attr("type"), Some(answer), "{verify}");
        assert_eq!(out[0].attr("id"), Some(id));
        assert_eq!(out[0].attr("from"), Some(to));
        assert_eq!(out[0].attr("to"), Some("fabrikam.example"));
        assert!(out[0].children.is_empty(), "the key is not echoed");
        assert_eq!(
            m.take_events(),
            vec![StreamEvent::VerifyAnswered {
                from: "fabrikam.example".into(),
                to: to.into(),
                check
            }]
        );
        assert_eq!(
            m.phase(),
            Phase::Negotiating,
            "answering does not authenticate"
        );
    }
}

//! Feed bytes, check the bytes and directives that come back — one test
//! per rule. The output is parsed back with `xml::Framer`, as a peer would.

use super::*;
use crate::config::{Limits, ListenerKind};
use crate::xml::{Element, Frame, Framer};
use std::sync::Arc;

const OPEN: &str = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
    xmlns:db='jabber:server:dialback' to='contoso.example' from='partner.example' version='1.0'>";

fn settings(listener: ListenerKind, tls_available: bool) -> Arc<StreamSettings> {
    let limits = Limits {
        max_unauthenticated_stanza_bytes: 2_000,
        max_depth: 4,
        ..Limits::default()
    };
    let (local_domains, peer_domains) = match listener {
        ListenerKind::External => (
            vec!["contoso.example".to_string()],
            Some(vec!["partner.example".to_string()]),
        ),
        ListenerKind::Internal => (
            vec!["partner.example".to_string()],
            Some(vec!["contoso.example".to_string()]),
        ),
    };
    Arc::new(StreamSettings {
        listener,
        local_domains,
        peer_domains,
        limits,
        tls_available,
        relay: false,
        policy: Arc::default(),
        partners: std::collections::HashMap::new(),
        dialback: None,
        keepalive_interval: std::time::Duration::from_secs(60),
    })
}

fn external() -> StreamMachine {
    StreamMachine::new(settings(ListenerKind::External, true))
}

/// What the peer reads: our header (if any) and the top-level elements.
#[derive(Debug)]
struct Seen {
    header: Option<Element>,
    elements: Vec<Element>,
    closed: bool,
}

fn read(output: &[u8]) -> Seen {
    let mut framer = Framer::new(100_000, 16);
    let continued = !String::from_utf8_lossy(output).contains("<stream:stream ");
    if continued {
        // Output after an earlier `take_output`: give it its stream context back.
        framer.push(b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>");
    }
    framer.push(output);
    let mut seen = Seen {
        header: None,
        elements: Vec::new(),
        closed: false,
    };
    while let Some(frame) = framer.next_frame().expect("our output is well-formed") {
        match frame {
            Frame::StreamOpen(open) => {
                assert_eq!(open.default_ns.as_deref(), Some("jabber:server"));
                if !continued {
                    seen.header = Some(open.element);
                }
            }
            Frame::Element(e) => seen.elements.push(e),
            Frame::StreamClose => seen.closed = true,
        }
    }
    seen
}

/// Asserts the output ends the stream with `condition` and returns the error element.
fn assert_stream_error(output: &[u8], condition: &str) -> Element {
    let seen = read(output);
    let error = seen
        .elements
        .last()
        .unwrap_or_else(|| panic!("no elements in {}", String::from_utf8_lossy(output)))
        .clone();
    assert!(
        error.is("http://etherx.jabber.org/streams", "error"),
        "{error:?}"
    );
    let first = error.child_elements().next().expect("a condition");
    assert!(
        first.is("urn:ietf:params:xml:ns:xmpp-streams", condition),
        "expected {condition}, got {first:?}"
    );
    assert!(seen.closed, "</stream:stream> follows the error");
    error
}

fn fails_with(machine: &mut StreamMachine, input: &str, condition: &str) -> Element {
    let directive = machine.receive(input.as_bytes());
    assert_eq!(directive, Directive::Close, "input {input:?}");
    assert_eq!(machine.phase(), Phase::Closed);
    assert_eq!(machine.condition().map(|c| c.as_str()), Some(condition));
    assert_stream_error(&machine.take_output(), condition)
}

fn negotiate_tls(machine: &mut StreamMachine) {
    assert_eq!(machine.receive(OPEN.as_bytes()), Directive::Continue);
    machine.take_output();
    assert_eq!(
        machine.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
        Directive::StartTls
    );
    machine.take_output();
    machine.tls_established(None);
}

#[test]
fn answers_header_with_own_header_and_required_starttls() {
    let mut m = external();
    assert_eq!(
        m.receive(format!("<?xml version='1.0'?>{OPEN}").as_bytes()),
        Directive::Continue
    );
    let out = m.take_output();
    let text = String::from_utf8_lossy(&out).to_string();
    assert!(text.contains("xmlns:db='jabber:server:dialback'"), "{text}");
    // openssl s_client -starttls xmpp-server looks for this exact substring.
    assert!(
        text.contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"),
        "{text}"
    );
    let seen = read(&out);
    let header = seen.header.clone().expect("header");
    assert_eq!(header.attr("from"), Some("contoso.example"));
    assert_eq!(header.attr("to"), Some("partner.example"));
    assert_eq!(header.attr("version"), Some("1.0"));
    let id = header.attr("id").expect("id");
    assert_eq!(id.len(), 32, "128-bit hex id");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let [features] = seen.elements.as_slice() else {
        panic!("{seen:?}")
    };
    assert!(features.is("http://etherx.jabber.org/streams", "features"));
    let starttls = features.child_elements().next().expect("starttls");
    assert!(starttls.is("urn:ietf:params:xml:ns:xmpp-tls", "starttls"));
    assert!(starttls.child_elements().any(|c| c.name == "required"));
    assert_eq!(m.phase(), Phase::AwaitStartTls);
}

#[test]
fn starttls_proceeds_then_restart_gets_fresh_id_and_empty_features() {
    let mut m = external();
    m.receive(OPEN.as_bytes());
    let first_id = m.stream_id().expect("id").clone();
    m.take_output();
    assert_eq!(
        m.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
        Directive::StartTls
    );
    let seen = read(&m.take_output());
    assert!(seen.elements[0].is("urn:ietf:params:xml:ns:xmpp-tls", "proceed"));
    assert_eq!(m.phase(), Phase::TlsPending);

    m.tls_established(None);
    assert!(m.is_secure());
    assert_eq!(m.receive(OPEN.as_bytes()), Directive::Continue);
    let seen = read(&m.take_output());
    let header = seen.header.clone().expect("new header after restart");
    assert_ne!(
        header.attr("id"),
        Some(first_id.as_str()),
        "restart gets a new id"
    );
    let [features] = seen.elements.as_slice() else {
        panic!("{seen:?}")
    };
    assert!(features.is("http://etherx.jabber.org/streams", "features"));
    assert_eq!(features.children.len(), 0);
    assert_eq!(m.phase(), Phase::Negotiating);
}

#[test]
fn stream_ids_do_not_repeat() {
    let ids: std::collections::HashSet<String> = (0..200)
        .map(|_| {
            let mut m = external();
            m.receive(OPEN.as_bytes());
            m.stream_id().expect("id").to_string()
        })
        .collect();
    assert_eq!(ids.len(), 200);
}

#[test]
fn bytes_may_arrive_one_at_a_time() {
    let mut m = external();
    for b in OPEN.as_bytes() {
        assert_eq!(m.receive(&[*b]), Directive::Continue);
    }
    assert_eq!(m.phase(), Phase::AwaitStartTls);
}

#[test]
fn peer_close_is_answered_with_close() {
    let mut m = external();
    negotiate_tls(&mut m);
    m.receive(OPEN.as_bytes());
    m.take_output();
    assert_eq!(m.receive(b"</stream:stream>"), Directive::Close);
    assert_eq!(m.take_output(), b"</stream:stream>");
    assert_eq!(m.condition(), None);
}

#[test]
fn wrong_to_domain_is_host_unknown() {
    let mut m = external();
    m.receive(OPEN.replace("contoso.example", "other.example").as_bytes());
    assert!(
        read(&m.take_output()).header.is_some(),
        "our header precedes the error"
    );
    let mut m = external();
    let error = fails_with(
        &mut m,
        &OPEN.replace("contoso.example", "other.example"),
        "host-unknown",
    );
    let text = error.child_elements().nth(1).expect("text");
    assert_eq!(text.name, "text");
}

#[test]
fn missing_to_is_host_unknown() {
    fails_with(
        &mut external(),
        &OPEN.replace("to='contoso.example'", ""),
        "host-unknown",
    );
}

#[test]
fn refused_header_is_answered_without_claiming_a_domain() {
    let mut m = external();
    m.receive(OPEN.replace("contoso.example", "other.example").as_bytes());
    let seen = read(&m.take_output());
    assert_eq!(seen.header.expect("header").attr("from"), None);
}

#[test]
fn bad_xml_is_not_well_formed() {
    fails_with(
        &mut external(),
        "<stream:stream to=contoso.example>",
        "not-well-formed",
    );
    fails_with(&mut external(), "\u{16}\u{3}\u{1}\u{0}", "not-well-formed");
    let mut m = external();
    negotiate_tls(&mut m);
    m.receive(OPEN.as_bytes());
    fails_with(
        &mut m,
        "<db:result from='a' to='b'>x</db:verify>",
        "not-well-formed",
    );
}

#[test]
fn dtd_pi_and_comment_are_restricted_xml() {
    fails_with(
        &mut external(),
        "<?xml version='1.0'?><!DOCTYPE stream:stream>",
        "restricted-xml",
    );
    fails_with(&mut external(), "<?php echo 1; ?>", "restricted-xml");
    let mut m = external();
    m.receive(OPEN.as_bytes());
    fails_with(&mut m, "<!-- hello -->", "restricted-xml");
    let mut m = external();
    m.receive(OPEN.as_bytes());
    fails_with(
        &mut m,
        "<message><body>&xxe;</body></message>",
        "restricted-xml",
    );
}

#[test]
fn non_utf8_encoding_is_unsupported_encoding() {
    fails_with(
        &mut external(),
        "<?xml version='1.0' encoding='UTF-16'?>",
        "unsupported-encoding",
    );
}

#[test]
fn stanza_before_tls_is_policy_violation() {
    let mut m = external();
    m.receive(OPEN.as_bytes());
    m.take_output();
    let error = fails_with(
        &mut m,
        "<message to='alice@contoso.example' from='bob@partner.example'><body>hi</body></message>",
        "policy-violation",
    );
    assert!(format!("{error:?}").contains("STARTTLS is required"));
}

#[test]
fn dialback_before_tls_is_policy_violation() {
    let mut m = external();
    m.receive(OPEN.as_bytes());
    fails_with(
        &mut m,
        "<db:result from='partner.example' to='contoso.example'>k</db:result>",
        "policy-violation",
    );
}

#[test]
fn data_pipelined_after_starttls_is_refused() {
    let mut m = external();
    m.receive(OPEN.as_bytes());
    m.take_output();
    let directive = m.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message/>");
    assert_eq!(directive, Directive::Close);
    assert_eq!(m.condition(), Some(Condition::PolicyViolation));
    let out = m.take_output();
    assert!(!String::from_utf8_lossy(&out).contains("proceed"));
}

#[test]
fn oversize_is_policy_violation_with_stanza_too_big() {
    let mut m = external();
    m.receive(OPEN.as_bytes());
    m.take_output();
    let big = format!("<message><body>{}</body></message>", "x".repeat(3_000));
    let error = fails_with(&mut m, &big, "policy-violation");
    assert!(
        error
            .child_elements()
            .any(|c| c.is("urn:xmpp:errors", "stanza-too-big")),
        "{error:?}"
    );
}

#[test]
fn oversize_header_is_policy_violation() {
    let header = OPEN.replace(
        "version='1.0'",
        &format!("version='1.0' x='{}'", "y".repeat(3_000)),
    );
    fails_with(&mut external(), &header, "policy-violation");
}

#[test]
fn excessive_depth_is_policy_violation() {
    let mut m = external();
    m.receive(OPEN.as_bytes());
    fails_with(
        &mut m,
        "<a><b><c><d><e/></d></c></b></a>",
        "policy-violation",
    );
}

#[test]
fn header_timeout_is_connection_timeout() {
    let mut m = external();
    m.receive(b"<stream:stream xmlns='jabber:server'");
    assert_eq!(m.timed_out(), Directive::Close);
    assert_stream_error(&m.take_output(), "connection-timeout");
}

#[test]
fn wrong_stream_namespace_is_invalid_namespace() {
    fails_with(
        &mut external(),
        &OPEN.replace(
            "http://etherx.jabber.org/streams",
            "http://example.com/streams",
        ),
        "invalid-namespace",
    );
}

#[test]
fn client_content_namespace_is_invalid_namespace() {
    fails_with(
        &mut external(),
        &OPEN.replace("xmlns='jabber:server'", "xmlns='jabber:client'"),
        "invalid-namespace",
    );
    fails_with(
        &mut external(),
        &OPEN.replace("xmlns='jabber:server'", ""),
        "invalid-namespace",
    );
}

#[test]
fn client_namespace_stanza_is_invalid_namespace() {
    let mut m = external();
    negotiate_tls(&mut m);
    m.receive(OPEN.as_bytes());
    fails_with(
        &mut m,
        "<message xmlns='jabber:client'/>",
        "invalid-namespace",
    );
}

#[test]
fn root_element_other_than_stream_is_bad_format() {
    fails_with(
        &mut external(),
        "<stream:flow xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='contoso.example' version='1.0'>",
        "bad-format",
    );
}

#[test]
fn text_at_stream_level_is_bad_format() {
    let mut m = external();
    m.receive(OPEN.as_bytes());
    fails_with(&mut m, "hello", "bad-format");
}

#[test]
fn missing_or_future_version_is_unsupported_version() {
    fails_with(
        &mut external(),
        &OPEN.replace(" version='1.0'", ""),
        "unsupported-version",
    );
    fails_with(
        &mut external(),
        &OPEN.replace("version='1.0'", "version='2.0'"),
        "unsupported-version",
    );
    let mut m = external();
    assert_eq!(
        m.receive(OPEN.replace("version='1.0'", "version='1.1'").as_bytes()),
        Directive::Continue
    );
}

#[test]
fn stanza_after_tls_before_auth_is_not_authorized() {
    let mut m = external();
    negotiate_tls(&mut m);
    m.receive(OPEN.as_bytes());
    m.take_output();
    fails_with(
        &mut m,
        "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
        "not-authorized",
    );
}

#[test]
fn unoffered_feature_after_tls_is_unsupported_stanza_type() {
    let mut m = external();
    negotiate_tls(&mut m);
    m.receive(OPEN.as_bytes());
    fails_with(
        &mut m,
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        "unsupported-stanza-type",
    );
}

#[test]
fn listener_without_certificate_refuses_with_internal_server_error() {
    let mut m = StreamMachine::new(settings(ListenerKind::External, false));
    assert_eq!(m.receive(OPEN.as_bytes()), Directive::Close);
    let error = assert_stream_error(&m.take_output(), "internal-server-error");
    assert!(format!("{error:?}").contains("no certificate installed"));
}

#[test]
fn shutdown_is_system_shutdown() {
    let mut m = external();
    negotiate_tls(&mut m);
    m.receive(OPEN.as_bytes());
    m.take_output();
    assert_eq!(m.shut_down(), Directive::Close);
    assert_stream_error(&m.take_output(), "system-shutdown");
}

#[test]
fn internal_listener_serves_partner_domains_for_our_domains() {
    let internal = settings(ListenerKind::Internal, true);
    let inward = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
        to='partner.example' from='contoso.example' version='1.0'>";
    let mut m = StreamMachine::new(internal.clone());
    assert_eq!(m.receive(inward.as_bytes()), Directive::Continue);
    let header = read(&m.take_output()).header.expect("header");
    assert_eq!(header.attr("from"), Some("partner.example"));

    fails_with(
        &mut StreamMachine::new(internal.clone()),
        OPEN,
        "host-unknown",
    );
    fails_with(
        &mut StreamMachine::new(internal),
        &inward.replace("from='contoso.example'", "from='mallory.example'"),
        "invalid-from",
    );
}

#[test]
fn direct_tls_streams_skip_starttls() {
    let mut m = StreamMachine::new_secure(settings(ListenerKind::External, true), None);
    assert_eq!(m.receive(OPEN.as_bytes()), Directive::Continue);
    assert_eq!(m.phase(), Phase::Negotiating);
}

#[test]
fn nothing_is_processed_after_close() {
    let mut m = external();
    m.receive(b"<a></b>");
    m.take_output();
    assert_eq!(m.receive(OPEN.as_bytes()), Directive::Close);
    assert!(m.take_output().is_empty());
}

// ---- the partner allow-list (external listener) ---------------------------

/// `OPEN` from `from` (the attribute left out when `None`).
fn open_from(from: Option<&str>) -> String {
    match from {
        Some(from) => OPEN.replace("from='partner.example'", &format!("from='{from}'")),
        None => OPEN.replace(" from='partner.example'", ""),
    }
}

/// External settings whose partners are `partners`.
fn external_with(partners: &[&str]) -> Arc<StreamSettings> {
    let mut s = (*settings(ListenerKind::External, true)).clone();
    s.peer_domains = Some(partners.iter().map(|p| p.to_string()).collect());
    Arc::new(s)
}

/// What a refused non-partner reads after our header, byte for byte.
fn not_partner_error(text: &str) -> String {
    format!(
        "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>{text}</text>\
         </stream:error></stream:stream>"
    )
}

/// Our header as sent to a peer: from the domain it asked for, to the one it claims.
fn our_header(m: &StreamMachine, from: &str, to: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
         xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
         id='{}' version='1.0' xml:lang='en' from='{from}' to='{to}'>",
        m.stream_id().expect("a header was sent")
    )
}

#[test]
fn configured_partner_is_admitted() {
    let mut m = StreamMachine::new(external_with(&["fabrikam.example", "partner.example"]));
    assert_eq!(m.receive(OPEN.as_bytes()), Directive::Continue);
    let out = String::from_utf8(m.take_output()).expect("utf-8");
    assert!(
        out.starts_with(&our_header(&m, "contoso.example", "partner.example")),
        "{out}"
    );
    assert!(out.contains("<starttls "), "{out}");
    assert_eq!(m.phase(), Phase::AwaitStartTls);
    assert_eq!(
        m.peer().and_then(|p| p.from.as_deref()),
        Some("partner.example")
    );
}

#[test]
fn non_partner_is_refused_with_policy_violation_after_our_header() {
    let mut m = external();
    let directive = m.receive(open_from(Some("fabrikam.example")).as_bytes());
    assert_eq!(directive, Directive::Close);
    assert_eq!(m.phase(), Phase::Closed);
    let out = String::from_utf8(m.take_output()).expect("utf-8");
    assert_eq!(
        out,
        format!(
            "{}{}",
            our_header(&m, "contoso.example", "fabrikam.example"),
            not_partner_error("`fabrikam.example` is not a federated partner of `contoso.example`")
        )
    );
    assert_eq!(m.condition(), Some(Condition::PolicyViolation));
    assert_eq!(
        m.error(),
        Some(&StreamError::NotPartner {
            from: "fabrikam.example".into(),
            to: "contoso.example".into()
        })
    );
    assert_eq!(
        m.error().and_then(StreamError::refusal),
        Some(Refusal::NotPartner)
    );
    // What a peer parses: our header, then exactly one stream error.
    assert_stream_error(out.as_bytes(), "policy-violation");
    assert!(!out.contains("starttls"), "{out}");
}

#[test]
fn partner_domains_compare_in_any_case_and_without_a_trailing_dot() {
    for from in ["Partner.Example", "PARTNER.EXAMPLE.", "partner.example."] {
        let mut m = external();
        assert_eq!(
            m.receive(open_from(Some(from)).as_bytes()),
            Directive::Continue,
            "{from}"
        );
        let out = String::from_utf8(m.take_output()).expect("utf-8");
        assert!(
            out.starts_with(&our_header(&m, "contoso.example", "partner.example")),
            "{from}: {out}"
        );
    }
    // Our own domain with a trailing dot is still ours.
    let mut m = external();
    let open = OPEN.replace("to='contoso.example'", "to='Contoso.Example.'");
    assert_eq!(m.receive(open.as_bytes()), Directive::Continue);
    // A non-partner is named in the refusal as normalised.
    let mut m = external();
    m.receive(open_from(Some("Fabrikam.Example.")).as_bytes());
    let out = String::from_utf8(m.take_output()).expect("utf-8");
    assert!(
        out.ends_with(&not_partner_error(
            "`fabrikam.example` is not a federated partner of `contoso.example`"
        )),
        "{out}"
    );
    // A partner is matched as a whole domain, not a suffix.
    fails_with(
        &mut external(),
        &open_from(Some("evil.partner.example")),
        "policy-violation",
    );
    fails_with(
        &mut external(),
        &open_from(Some("partner.example.evil")),
        "policy-violation",
    );
}

#[test]
fn partner_list_from_the_config_is_normalised() {
    let text = "domains = [\"Contoso.Example\"]\n[external]\naddress = \"127.0.0.1\"\n\
                [internal]\naddress = \"127.0.0.2\"\n\
                [[partners]]\ndomain = \"Partner.EXAMPLE\"\n";
    let config = crate::config::Config::parse(std::path::Path::new("/x.toml"), text.as_bytes())
        .expect("valid");
    let settings = Arc::new(StreamSettings::new(
        &config,
        ListenerKind::External,
        true,
        Arc::default(),
    ));
    assert_eq!(
        settings.peer_domains.as_deref(),
        Some(&["partner.example".to_string()][..])
    );
    let mut m = StreamMachine::new(settings.clone());
    assert_eq!(
        m.receive(open_from(Some("partner.example.")).as_bytes()),
        Directive::Continue
    );
    fails_with(
        &mut StreamMachine::new(settings),
        &open_from(Some("fabrikam.example")),
        "policy-violation",
    );
}

#[test]
fn empty_partner_list_refuses_every_claimed_domain() {
    for from in ["partner.example", "fabrikam.example"] {
        let mut m = StreamMachine::new(external_with(&[]));
        let error = fails_with(&mut m, &open_from(Some(from)), "policy-violation");
        assert!(
            format!("{error:?}").contains("federated partner"),
            "{error:?}"
        );
    }
}

/// Takes a `from`-less stream on `m` through STARTTLS and the restart
/// (`open` is its header, sent both times), checking what it is offered.
fn negotiate_tls_without_from(m: &mut StreamMachine, open: &str, ours: &str) {
    assert_eq!(m.receive(open.as_bytes()), Directive::Continue, "{open}");
    let out = String::from_utf8(m.take_output()).expect("utf-8");
    let header = read(out.as_bytes()).header.expect("our header");
    assert_eq!(header.attr("from"), Some(ours), "{out}");
    assert_eq!(header.attr("to"), None, "no claim to answer: {out}");
    assert!(
        out.ends_with(
            "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>\
             </starttls></stream:features>"
        ),
        "{out}"
    );
    assert_eq!(m.phase(), Phase::AwaitStartTls);
    assert_eq!(
        m.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
        Directive::StartTls
    );
    assert_eq!(
        m.take_output(),
        b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    );
    m.tls_established(None);
    assert_eq!(m.receive(open.as_bytes()), Directive::Continue);
    let out = String::from_utf8(m.take_output()).expect("utf-8");
    assert!(out.ends_with("<stream:features/>"), "{out}");
    assert_eq!(m.phase(), Phase::Negotiating);
    assert!(m.is_secure());
}

/// `openssl s_client -starttls xmpp-server` sends no `from`; neither do
/// RFC 3920-era servers. They may reach TLS (and show our certificate), and
/// nothing more: no stanza passes without authentication.
#[test]
fn header_without_from_gets_starttls_on_both_listeners_and_then_not_authorized() {
    let inward = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
        to='partner.example' version='1.0'>";
    let cases = [
        (
            settings(ListenerKind::External, true),
            open_from(None),
            "contoso.example",
        ),
        // No partners at all: there is still no claim to refuse.
        (external_with(&[]), open_from(None), "contoso.example"),
        (
            settings(ListenerKind::Internal, true),
            inward.to_string(),
            "partner.example",
        ),
    ];
    for (settings, open, ours) in cases {
        let listener = settings.listener;
        let mut m = StreamMachine::new(settings);
        negotiate_tls_without_from(&mut m, &open, ours);
        assert_eq!(m.peer().map(|p| p.from.clone()), Some(None));
        fails_with(
            &mut m,
            "<message to='alice@contoso.example'><body>hi</body></message>",
            "not-authorized",
        );
        assert_eq!(
            m.error().and_then(StreamError::refusal),
            None,
            "{listener:?}"
        );
    }
    // Direct TLS: straight to the features, and still nothing passes.
    let mut m = StreamMachine::new_secure(settings(ListenerKind::External, true), None);
    assert_eq!(m.receive(open_from(None).as_bytes()), Directive::Continue);
    assert_eq!(m.phase(), Phase::Negotiating);
    m.take_output();
    fails_with(
        &mut m,
        "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
        "not-authorized",
    );
}

#[test]
fn claims_after_a_header_without_from_are_still_judged() {
    // A reload has no claim to judge on a `from`-less stream ...
    let mut m = external();
    negotiate_tls_without_from(&mut m, &open_from(None), "contoso.example");
    assert_eq!(m.reconfigured(external_with(&[])), Directive::Continue);
    assert!(m.take_output().is_empty());
    // ... but a claim after TLS is judged as any other.
    let mut m = external();
    m.receive(open_from(None).as_bytes());
    m.take_output();
    m.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    m.take_output();
    m.tls_established(None);
    fails_with(
        &mut m,
        &open_from(Some("fabrikam.example")),
        "policy-violation",
    );
    assert_eq!(
        m.error().and_then(StreamError::refusal),
        Some(Refusal::NotPartner)
    );
    let inward = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
        to='partner.example' version='1.0'>";
    let mut m = StreamMachine::new(settings(ListenerKind::Internal, true));
    m.receive(inward.as_bytes());
    m.take_output();
    m.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    m.take_output();
    m.tls_established(None);
    fails_with(
        &mut m,
        &inward.replace("version=", "from='mallory.example' version="),
        "invalid-from",
    );
}

#[test]
fn non_partner_is_refused_on_the_restarted_stream_and_on_direct_tls() {
    // A partner before TLS that claims another domain after it.
    let mut m = external();
    negotiate_tls(&mut m);
    fails_with(
        &mut m,
        &open_from(Some("fabrikam.example")),
        "policy-violation",
    );
    let mut m = StreamMachine::new_secure(settings(ListenerKind::External, true), None);
    fails_with(
        &mut m,
        &open_from(Some("fabrikam.example")),
        "policy-violation",
    );
}

#[test]
fn reload_closes_a_stream_whose_partner_was_removed() {
    let mut m = external();
    negotiate_tls(&mut m);
    m.receive(OPEN.as_bytes());
    m.take_output();
    assert_eq!(m.phase(), Phase::Negotiating);
    assert_eq!(
        m.reconfigured(external_with(&["fabrikam.example"])),
        Directive::Close
    );
    let out = String::from_utf8(m.take_output()).expect("utf-8");
    assert_eq!(
        out,
        not_partner_error("`partner.example` is not a federated partner of `contoso.example`"),
        "the header was sent long ago: only the error follows"
    );
    assert_eq!(m.phase(), Phase::Closed);
    assert_eq!(m.reconfigured(external_with(&[])), Directive::Close);
    assert!(m.take_output().is_empty(), "nothing after close");
}

#[test]
fn reload_keeps_a_stream_whose_partner_stays_and_judges_later_headers() {
    // Before TLS, with the header answered.
    let mut m = external();
    m.receive(OPEN.as_bytes());
    m.take_output();
    let kept = external_with(&["fabrikam.example", "partner.example"]);
    assert_eq!(m.reconfigured(kept), Directive::Continue);
    assert!(m.take_output().is_empty());
    assert_eq!(m.phase(), Phase::AwaitStartTls);
    // During the TLS restart (no header yet) the new rule is kept for the
    // next header: here it no longer lists the peer.
    assert_eq!(
        m.receive(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
        Directive::StartTls
    );
    m.take_output();
    m.tls_established(None);
    assert_eq!(
        m.reconfigured(external_with(&["fabrikam.example"])),
        Directive::Continue
    );
    fails_with(&mut m, OPEN, "policy-violation");
}

#[test]
fn reload_does_not_change_the_limits_of_an_open_stream() {
    let mut m = external();
    m.receive(OPEN.as_bytes());
    m.take_output();
    let mut bigger = (*settings(ListenerKind::External, true)).clone();
    bigger.limits.max_unauthenticated_stanza_bytes = 100_000;
    assert_eq!(m.reconfigured(Arc::new(bigger)), Directive::Continue);
    let big = format!("<message><body>{}</body></message>", "x".repeat(3_000));
    fails_with(&mut m, &big, "policy-violation");
    assert!(matches!(
        m.error(),
        Some(StreamError::StanzaTooBig { limit: 2_000 })
    ));
}

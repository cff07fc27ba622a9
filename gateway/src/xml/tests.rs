//! Framer and escaping tests: one case per rule, including the mapping of
//! each of rxml's errors onto the distinction XMPP makes.

use super::*;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' to='a.example' version='1.0'>";

fn feed(framer: &mut Framer, data: &[u8]) -> Result<Vec<Frame>, FramingError> {
    framer.push(data);
    let mut frames = Vec::new();
    while let Some(f) = framer.next_frame()? {
        frames.push(f);
    }
    Ok(frames)
}

fn open(framer: &mut Framer) {
    let frames = feed(framer, HEADER.as_bytes()).expect("header parses");
    assert!(
        matches!(frames.as_slice(), [Frame::StreamOpen(_)]),
        "{frames:?}"
    );
}

#[test]
fn header_exposes_names_attributes_and_default_namespace() {
    let mut f = Framer::new(10_000, 8);
    let frames = feed(&mut f, HEADER.as_bytes()).expect("parses");
    let [Frame::StreamOpen(open)] = frames.as_slice() else {
        panic!("{frames:?}")
    };
    assert!(
        open.element
            .is("http://etherx.jabber.org/streams", "stream")
    );
    assert_eq!(open.default_ns.as_deref(), Some("jabber:server"));
    assert_eq!(open.element.attr("to"), Some("a.example"));
    assert_eq!(open.element.attr("version"), Some("1.0"));
}

#[test]
fn frames_survive_arbitrary_split_points() {
    let doc = format!(
        "{HEADER} <db:result from='b.example' to='a.example'>k&amp;ey</db:result>\n<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>"
    );
    for chunk in 1..8 {
        let mut f = Framer::new(10_000, 8);
        let mut frames = Vec::new();
        for piece in doc.as_bytes().chunks(chunk) {
            frames.extend(feed(&mut f, piece).expect("parses"));
        }
        assert_eq!(frames.len(), 4, "chunk {chunk}: {frames:?}");
        let Frame::Element(db) = &frames[1] else {
            panic!()
        };
        assert!(db.is("jabber:server:dialback", "result"));
        assert_eq!(db.children, vec![Node::Text("k&ey".into())]);
        let Frame::Element(iq) = &frames[2] else {
            panic!()
        };
        assert!(iq.is("jabber:server", "iq"));
        assert!(
            iq.child_elements()
                .next()
                .is_some_and(|c| c.is("urn:xmpp:ping", "ping"))
        );
        assert_eq!(frames[3], Frame::StreamClose);
    }
}

#[test]
fn each_forbidden_construct_has_its_error() {
    type Check = fn(&FramingError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("<!DOCTYPE x [<!ENTITY a 'b'>]><x/>", |e| {
            matches!(e, FramingError::Restricted(_))
        }),
        ("<?pi x?><x/>", |e| matches!(e, FramingError::Restricted(_))),
        ("<x><!-- c --></x>", |e| {
            matches!(e, FramingError::Restricted(_))
        }),
        ("<x><y>&foo;</y></x>", |e| {
            matches!(e, FramingError::Restricted(_))
        }),
        ("<?xml version='1.0' encoding='ISO-8859-1'?><x/>", |e| {
            matches!(e, FramingError::UnsupportedEncoding)
        }),
        ("<x><y></x>", |e| {
            matches!(e, FramingError::NotWellFormed(_))
        }),
        ("<x><p:y/></x>", |e| {
            matches!(e, FramingError::NotWellFormed(_))
        }),
        ("<x><y a='1' a='2'/></x>", |e| {
            matches!(e, FramingError::NotWellFormed(_))
        }),
        ("\u{16}\u{3}\u{1}", |e| {
            matches!(e, FramingError::NotWellFormed(_))
        }),
        ("<x>hello</x>", |e| {
            matches!(e, FramingError::TextAtStreamLevel)
        }),
    ];
    for (doc, expected) in cases {
        let mut f = Framer::new(10_000, 8);
        let err = feed(&mut f, doc.as_bytes()).expect_err(doc);
        assert!(expected(&err), "{doc:?} gave {err:?}");
        // Errors are sticky.
        assert_eq!(f.next_frame().expect_err("poisoned"), err);
    }
}

#[test]
fn oversized_element_is_refused_before_it_completes() {
    let mut f = Framer::new(1_000, 8);
    open(&mut f);
    let mut big = String::from("<message to='a.example'><body>");
    big.push_str(&"x".repeat(2_000));
    // No end tag: the limit must trigger on the partial element.
    assert_eq!(
        feed(&mut f, big.as_bytes()),
        Err(FramingError::TooBig { limit: 1_000 })
    );
}

#[test]
fn oversized_start_tag_is_refused_while_attributes_arrive() {
    let mut f = Framer::new(1_000, 8);
    open(&mut f);
    let mut big = String::from("<message ");
    for i in 0..200 {
        big.push_str(&format!("a{i}='v' "));
    }
    assert_eq!(
        feed(&mut f, big.as_bytes()),
        Err(FramingError::TooBig { limit: 1_000 })
    );
}

#[test]
fn oversized_header_is_refused() {
    let mut f = Framer::new(1_000, 8);
    let header = format!(
        "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' x='{}'>",
        "y".repeat(1_200)
    );
    assert_eq!(
        feed(&mut f, header.as_bytes()),
        Err(FramingError::TooBig { limit: 1_000 })
    );
}

#[test]
fn limit_applies_per_element_not_per_stream() {
    let mut f = Framer::new(1_000, 8);
    open(&mut f);
    let stanza = format!("<message><body>{}</body></message>", "x".repeat(900));
    for _ in 0..10 {
        assert_eq!(feed(&mut f, stanza.as_bytes()).expect("fits").len(), 1);
    }
}

#[test]
fn depth_is_limited_inside_stanzas() {
    let mut f = Framer::new(10_000, 3);
    open(&mut f);
    assert_eq!(
        feed(&mut f, b"<a><b><c/></b></a>")
            .expect("depth 3 fits")
            .len(),
        1
    );
    assert_eq!(
        feed(&mut f, b"<a><b><c><d/></c></b></a>"),
        Err(FramingError::TooDeep { limit: 3 })
    );
}

#[test]
fn whitespace_keepalives_are_allowed_between_elements() {
    let mut f = Framer::new(1_000, 8);
    open(&mut f);
    for _ in 0..100 {
        assert_eq!(feed(&mut f, b" \n").expect("whitespace").len(), 0);
    }
}

#[test]
fn pipelined_bytes_stay_visible_after_a_frame() {
    let mut f = Framer::new(1_000, 8);
    open(&mut f);
    f.push(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq/>");
    assert!(matches!(f.next_frame(), Ok(Some(Frame::Element(_)))));
    assert_eq!(f.buffered(), b"<iq/>");
}

#[test]
fn escaping_covers_markup_and_quotes() {
    assert_eq!(escape_attr("a'<b>&\""), "a&apos;&lt;b&gt;&amp;&quot;");
    assert_eq!(escape_text("<&>"), "&lt;&amp;&gt;");
}

#[test]
fn whitespace_before_the_header_is_skipped() {
    let mut f = Framer::new(10_000, 8);
    assert!(feed(&mut f, b" \r\n").expect("whitespace").is_empty());
    open(&mut f);
}

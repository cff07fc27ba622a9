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

/// What a delivered element holds on the heap: its tree (vectors and strings
/// at their capacity) plus every namespace string it refers to, each
/// counted once per distinct allocation (`seen`). With namespaces copied
/// per element this grows with (children × URI length).
fn held_bytes(e: &Element, seen: &mut std::collections::HashSet<*const u8>) -> usize {
    use std::mem::size_of;
    let mut ns = |n: &Namespace| {
        if !n.is_empty() && seen.insert(n.as_ptr()) {
            n.len()
        } else {
            0
        }
    };
    let mut total = ns(&e.ns)
        + e.name.capacity()
        + e.attrs.capacity() * size_of::<Attribute>()
        + e.children.capacity() * size_of::<Node>();
    for (a_ns, name, value) in &e.attrs {
        total += ns(a_ns) + name.capacity() + value.capacity();
    }
    for child in &e.children {
        total += match child {
            Node::Element(c) => held_bytes(c, seen),
            Node::Text(t) => t.capacity(),
        };
    }
    total
}

/// The distinct namespace strings `e` refers to, and their bytes.
fn namespace_storage(e: &Element) -> (usize, usize) {
    fn walk(e: &Element, seen: &mut std::collections::HashMap<*const u8, usize>) {
        for n in std::iter::once(&e.ns).chain(e.attrs.iter().map(|(n, _, _)| n)) {
            if !n.is_empty() {
                seen.insert(n.as_ptr(), n.len());
            }
        }
        for c in e.child_elements() {
            walk(c, seen);
        }
    }
    let mut seen = std::collections::HashMap::new();
    walk(e, &mut seen);
    (seen.len(), seen.values().sum())
}

/// The fuzz harness's per-connection bound (fuzz/src/lib.rs `HEAP_FACTOR`).
const HEAP_FACTOR: usize = 128;

/// The `namespace-copied-per-child` regression: one element just under the
/// limit declaring a long default namespace and made of as many `<b/>`
/// children as fit. Each child used to get its own copy of the URI
/// (~1,500 × 4,000 bytes = 6 MB for a 10,000-byte element).
#[test]
fn inherited_namespaces_are_shared_not_copied_per_child() {
    for (limit, uri_len) in [(10_000, 4_000), (40_000, 16_000)] {
        let uri = "u".repeat(uri_len);
        let mut stanza = format!("<x xmlns='{uri}'>");
        while stanza.len() + "<b/></x>".len() <= limit {
            stanza.push_str("<b/>");
        }
        stanza.push_str("</x>");
        let mut f = Framer::new(limit, 8);
        open(&mut f);
        let frames = feed(&mut f, stanza.as_bytes()).expect("fits the limit");
        let [Frame::Element(x)] = frames.as_slice() else {
            panic!("{frames:?}")
        };
        let children = x.child_elements().count();
        assert!(children > limit / 8, "{children} children");
        assert!(x.child_elements().all(|b| b.is(&uri, "b")));
        // One string for the one declaration, however many children.
        assert_eq!(namespace_storage(x), (1, uri_len));
        let held = held_bytes(x, &mut Default::default());
        assert!(
            held <= HEAP_FACTOR * limit,
            "a {}-byte element holds {held} bytes (limit {limit})",
            stanza.len()
        );
    }
}

#[test]
fn namespaces_declared_on_the_header_or_by_prefix_are_shared_too() {
    let uri = "h".repeat(3_000);
    let header = format!(
        "<stream:stream xmlns='{uri}' xmlns:p='{uri}' \
         xmlns:stream='http://etherx.jabber.org/streams'>"
    );
    let mut f = Framer::new(10_000, 8);
    let frames = feed(&mut f, header.as_bytes()).expect("header");
    let [Frame::StreamOpen(open)] = frames.as_slice() else {
        panic!("{frames:?}")
    };
    assert_eq!(open.default_ns.as_deref(), Some(uri.as_str()));
    // Unqualified elements inherit the header's default namespace;
    // prefixed attributes the header's `p`.
    let mut stanza = String::from("<a>");
    for i in 0..1_000 {
        stanza.push_str(&format!("<b p:c{i}=''/>"));
        if stanza.len() > 9_900 {
            break;
        }
    }
    stanza.push_str("</a>");
    let mut seen = Default::default();
    let mut held = 0;
    let mut storage = 0;
    for _ in 0..3 {
        let frames = feed(&mut f, stanza.as_bytes()).expect("fits");
        let [Frame::Element(a)] = frames.as_slice() else {
            panic!("{frames:?}")
        };
        assert!(a.is(&uri, "a"));
        let b = a.child_elements().nth(5).expect("children");
        assert_eq!(b.attr_ns(&uri, "c5"), Some(""));
        // Two declarations, two strings: shared by all three stanzas.
        held += held_bytes(a, &mut seen);
        storage = seen.len();
    }
    assert_eq!(storage, 2);
    assert!(held <= 3 * HEAP_FACTOR * 10_000, "{held}");
}

#[test]
fn namespace_scopes_nest_and_end_with_their_element() {
    let mut f = Framer::new(10_000, 8);
    open(&mut f);
    let frames = feed(
        &mut f,
        b"<a xmlns:p='u1'><b xmlns:p='u2' xmlns='d'><p:c p:x='1' xml:lang='en'/><e xmlns=''/></b><p:d/><f/></a>",
    )
    .expect("parses");
    let [Frame::Element(a)] = frames.as_slice() else {
        panic!("{frames:?}")
    };
    assert!(a.is("jabber:server", "a"));
    let kids: Vec<&Element> = a.child_elements().collect();
    let b = kids[0];
    assert!(b.is("d", "b"));
    let inner: Vec<&Element> = b.child_elements().collect();
    assert!(inner[0].is("u2", "c"));
    assert_eq!(inner[0].attr_ns("u2", "x"), Some("1"));
    assert_eq!(
        inner[0].attr_ns("http://www.w3.org/XML/1998/namespace", "lang"),
        Some("en")
    );
    assert!(inner[1].is("", "e"));
    assert!(kids[1].is("u1", "d"));
    assert!(kids[2].is("jabber:server", "f"));
    // `p` ended with `<a>`.
    assert!(matches!(
        feed(&mut f, b"<p:g/>"),
        Err(FramingError::NotWellFormed(_))
    ));
}

#[test]
fn duplicate_namespace_declarations_are_not_well_formed() {
    for doc in [
        "<a xmlns:p='u1' xmlns:p='u2'/>",
        "<a xmlns='u1' xmlns='u2'/>",
        "<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>",
    ] {
        let mut f = Framer::new(10_000, 8);
        open(&mut f);
        assert!(
            matches!(
                feed(&mut f, doc.as_bytes()),
                Err(FramingError::NotWellFormed(_))
            ),
            "{doc}"
        );
    }
}

/// `<message a='…'/>` with an attribute value of `len` bytes.
fn long_attribute(len: usize) -> String {
    format!("<message a='{}'/>", "v".repeat(len))
}

#[test]
fn raising_the_limit_raises_the_token_limit_too() {
    // Between top-level elements (where the stream layer changes limits),
    // fed whole and in small pieces.
    for chunk in [1, 7, 64, 100_000] {
        let mut f = Framer::new(1_000, 8);
        let mut frames = Vec::new();
        for piece in HEADER.as_bytes().chunks(chunk) {
            frames.extend(feed(&mut f, piece).expect("header"));
        }
        let doc = format!("<a/>{}</stream:stream>", long_attribute(5_000));
        let mut set = false;
        for piece in doc.as_bytes().chunks(chunk) {
            f.push(piece);
            while let Some(frame) = f.next_frame().expect("fits the raised limit") {
                if !set {
                    f.set_max_bytes(10_000);
                    set = true;
                }
                frames.push(frame);
            }
        }
        assert_eq!(frames.len(), 4, "chunk {chunk}: {frames:?}");
        let Frame::Element(m) = &frames[2] else {
            panic!("{frames:?}")
        };
        assert_eq!(m.attr("a").map(str::len), Some(5_000));
        // The rebuilt parser still matches the stream's end tag.
        assert_eq!(frames[3], Frame::StreamClose);
    }

    // Before any byte: the header itself may use the new limit.
    let mut f = Framer::new(1_000, 8);
    f.set_max_bytes(10_000);
    let header = format!(
        "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' x='{}'>",
        "y".repeat(5_000)
    );
    assert!(matches!(
        feed(&mut f, header.as_bytes()).expect("fits").as_slice(),
        [Frame::StreamOpen(_)]
    ));

    // During the header: from the first element after it.
    let mut f = Framer::new(1_000, 8);
    let (start, rest) = HEADER.split_at(60);
    assert!(feed(&mut f, start.as_bytes()).expect("partial").is_empty());
    f.set_max_bytes(10_000);
    open_rest(&mut f, rest);
    assert_eq!(
        feed(&mut f, long_attribute(5_000).as_bytes())
            .expect("fits")
            .len(),
        1
    );
}

fn open_rest(f: &mut Framer, rest: &str) {
    let frames = feed(f, rest.as_bytes()).expect("header");
    assert!(matches!(frames.as_slice(), [Frame::StreamOpen(_)]));
}

#[test]
fn raising_the_limit_mid_element_takes_full_effect_after_it() {
    let mut f = Framer::new(1_000, 8);
    open(&mut f);
    // The parser is inside `<message a='…` when the limit is raised.
    let element = long_attribute(900);
    let (start, rest) = element.split_at(500);
    assert!(feed(&mut f, start.as_bytes()).expect("partial").is_empty());
    f.set_max_bytes(10_000);
    assert_eq!(feed(&mut f, rest.as_bytes()).expect("fits").len(), 1);
    // The next element gets the new token limit.
    assert_eq!(
        feed(&mut f, long_attribute(9_000).as_bytes())
            .expect("fits")
            .len(),
        1
    );
    assert_eq!(
        feed(&mut f, long_attribute(10_100).as_bytes()),
        Err(FramingError::TooBig { limit: 10_000 })
    );
}

#[test]
fn lowering_the_limit_applies_to_elements_and_tokens() {
    for element in [
        format!("<message><body>{}</body></message>", "x".repeat(2_000)),
        long_attribute(2_000),
    ] {
        let mut f = Framer::new(10_000, 8);
        open(&mut f);
        assert_eq!(feed(&mut f, element.as_bytes()).expect("fits").len(), 1);
        f.set_max_bytes(1_000);
        assert_eq!(
            feed(&mut f, element.as_bytes()),
            Err(FramingError::TooBig { limit: 1_000 })
        );
    }
}

/// Parses one element inside a stream with the given declarations.
fn parse_in_stream(decls: &str, element: &str) -> Element {
    let mut f = Framer::new(100_000, 16);
    f.push(
        format!("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' {decls}>{element}")
            .as_bytes(),
    );
    assert!(matches!(f.next_frame(), Ok(Some(Frame::StreamOpen(_)))));
    match f.next_frame() {
        Ok(Some(Frame::Element(e))) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn reserialised_stanza_needs_none_of_the_senders_declarations() {
    // Prefixes declared on the sender's stream header, a default namespace
    // on a child, a prefixed attribute, xml:lang, and text to escape.
    let original = parse_in_stream(
        "xmlns='jabber:server' xmlns:x='urn:example:x' xmlns:a='urn:example:a'",
        "<message to='a@b.example' from='c@d.example' xml:lang='en' a:flag='1'>\
         <body>1 &lt; 2 &amp; &quot;q&quot; &gt;</body><x:extra x:y='&apos;'><inner/></x:extra>\
         <html xmlns='http://jabber.org/protocol/xhtml-im'><p>t</p></html></message>",
    );
    let xml = to_xml(&original, "jabber:server");
    assert!(!xml.contains("x:extra"), "no sender prefix reused: {xml}");
    assert!(xml.contains("&lt;") && xml.contains("&amp;"), "{xml}");
    assert!(xml.contains("xml:lang='en'"), "{xml}");
    // Read back on a stream that declares nothing but the defaults.
    let again = parse_in_stream("xmlns='jabber:server'", &xml);
    assert_eq!(again, original);
}

#[test]
fn reserialised_top_level_element_declares_its_namespace_when_it_differs() {
    let e = parse_in_stream("xmlns='jabber:server'", "<r xmlns='urn:example:r'><c/></r>");
    assert_eq!(
        to_xml(&e, "jabber:server"),
        "<r xmlns='urn:example:r'><c/></r>"
    );
    let e = parse_in_stream("xmlns='jabber:server'", "<message><body>x</body></message>");
    assert_eq!(
        to_xml(&e, "jabber:server"),
        "<message><body>x</body></message>"
    );
}

#[test]
fn before_authentication_elements_per_stanza_are_counted_and_limited() {
    let mut f = Framer::unauthenticated(10_000, 8, 4);
    open(&mut f);
    // The stanza itself and three children: at the limit.
    assert_eq!(feed(&mut f, b"<a><b/><b/><b/></a>").expect("fits").len(), 1);
    // The count starts again for every stanza; the fifth element is refused
    // while the stanza is still arriving.
    assert_eq!(
        feed(&mut f, b"<a><b/><b/><b/><b/>"),
        Err(FramingError::TooManyElements { limit: 4 })
    );
    // Raising the byte limit (authenticated without a restart) lifts it.
    let mut f = Framer::unauthenticated(10_000, 8, 4);
    open(&mut f);
    f.set_max_bytes(100_000);
    assert_eq!(
        feed(&mut f, b"<a>")
            .and_then(|_| feed(&mut f, "<b/>".repeat(50).as_bytes()))
            .and_then(|_| feed(&mut f, b"</a>"))
            .expect("no element limit after authentication")
            .len(),
        1
    );
}

#[test]
fn before_authentication_a_name_or_value_longer_than_a_domain_is_too_big_but_text_is_not() {
    let mut f = Framer::unauthenticated(10_000, 8, 32);
    open(&mut f);
    let text = format!("<a>{}</a>", "x".repeat(9_000));
    assert_eq!(feed(&mut f, text.as_bytes()).expect("text fits").len(), 1);
    let domain = format!("<a to='{}.example'/>", "x".repeat(1_000));
    assert_eq!(
        feed(&mut f, domain.as_bytes())
            .expect("a domain fits")
            .len(),
        1
    );
    let long = format!("<a id='{}'/>", "x".repeat(1_100));
    assert_eq!(
        feed(&mut f, long.as_bytes()),
        Err(FramingError::TooBig { limit: 10_000 })
    );
}

#[test]
fn a_complete_element_keeps_no_spare_capacity() {
    let mut f = Framer::new(100_000, 8);
    open(&mut f);
    let mut frames = Vec::new();
    frames.extend(feed(&mut f, b"<a>").expect("parses"));
    for _ in 0..33 {
        frames.extend(feed(&mut f, b"<b>x</b>").expect("parses"));
    }
    frames.extend(feed(&mut f, b"</a>").expect("parses"));
    let [Frame::Element(a)] = frames.as_slice() else {
        panic!("{frames:?}")
    };
    assert_eq!(a.children.len(), 33);
    assert_eq!(a.children.capacity(), 33, "not the 64 doubling left");
}

#[test]
fn an_idle_stream_between_elements_holds_no_parser() {
    let mut f = Framer::new(10_000, 8);
    assert!(!f.is_released(), "a fresh framer has a parser");
    let (start, rest) = HEADER.split_at(60);
    assert!(feed(&mut f, start.as_bytes()).expect("partial").is_empty());
    assert!(!f.is_released(), "kept inside the header");
    open_rest(&mut f, rest);
    assert!(f.is_released(), "dropped once the header is complete");

    // An element split across reads keeps it until the element ends.
    let stanza = "<db:result from='b.example' to='a.example'>k&amp;ey</db:result>";
    let (head, tail) = stanza.split_at(20);
    assert!(feed(&mut f, head.as_bytes()).expect("partial").is_empty());
    assert!(!f.is_released(), "kept inside an element");
    let frames = feed(&mut f, tail.as_bytes()).expect("parses");
    assert!(f.is_released());
    // Rebuilt parsers see the header's namespaces (they live in the framer).
    let [Frame::Element(db)] = frames.as_slice() else {
        panic!("{frames:?}")
    };
    assert!(db.is("jabber:server:dialback", "result"));
    assert_eq!(db.children, vec![Node::Text("k&ey".into())]);

    // A whitespace keepalive, then a token as long as the limit allows.
    assert!(feed(&mut f, b" \n").expect("keepalive").is_empty());
    assert!(f.is_released());
    let frames = feed(&mut f, long_attribute(9_000).as_bytes()).expect("fits");
    assert_eq!(frames.len(), 1);
    assert!(f.is_released());

    // Limits hold across a rebuild: too big is still too big.
    assert!(matches!(
        feed(&mut f, long_attribute(10_000).as_bytes()),
        Err(FramingError::TooBig { limit: 10_000 })
    ));

    // And the stream's end tag still matches after a rebuild.
    let mut f = Framer::new(10_000, 8);
    open(&mut f);
    assert!(f.is_released());
    let frames = feed(&mut f, b"<iq type='get'/></stream:stream>").expect("parses");
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1], Frame::StreamClose);
    // A mismatched end tag is still refused.
    let mut f = Framer::new(10_000, 8);
    open(&mut f);
    assert!(feed(&mut f, b"</stream:other>").is_err());
}

//! Certificate decisions without a network: SANs, the subject DN, the
//! renewal decision, and how a plan shows a SAN change.

use std::path::PathBuf;

use xfed::certs::build::{self, SignRequest};
use xfed::certs::dn::{distinguished_name, dn_string};
use xfed::certs::{CertFact, CertSpec, CertState, parse, renewal};
use xfed::plan::decide_certificate;
use xfed::plan::{Action, Desired, Phase, Resource};
use xfed::spec::resolve::compute_sans;
use xfed::spec::{CertUsage, Issuer, KeySpec, Origin, RenewBefore, Role, Subject};

const DAY: i64 = 86_400;

fn subject() -> Subject {
    Subject {
        common_name: "xmpp1.contoso.example".into(),
        organization: Some("Contoso".into()),
        organizational_unit: Some("Unified Communications".into()),
        locality: Some("Redmond".into()),
        state: Some("Washington".into()),
        country: Some("US".into()),
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn cert_spec(sans: &[&str]) -> CertSpec {
    CertSpec {
        name: "edge-ext".into(),
        usage: CertUsage::External,
        cert_path: "/etc/xfed/tls/external.crt".into(),
        key_path: "/etc/xfed/tls/external.key".into(),
        key: KeySpec::EcdsaP256,
        subject: subject(),
        sans: s(sans),
        issuer: Issuer::InternalCa {
            ca_cert: PathBuf::from("/ca.pem"),
            ca_key: xfed::secret::Secret::new(String::new()),
            validity_days: 90,
        },
        renew_before: RenewBefore::Fraction(1.0 / 3.0),
        exportable: false,
        friendly_name: None,
        key_group: None,
    }
}

fn resource(spec: CertSpec) -> Resource {
    Resource {
        address: "edge/edge-hq/edge1.contoso.example/certificate:edge-ext".into(),
        host: "edge1.contoso.example".into(),
        role: Role::Edge,
        pool: "edge-hq".into(),
        phase: Phase::Certificates,
        desired: Desired::Certificate(Box::new(spec)),
        origin: Origin {
            file: "spec.yaml".into(),
            line: 30,
            col: 5,
            field: "certificates[0]".into(),
        },
        notifies: None,
    }
}

/// A CA and a leaf it signed for `sans`, valid `days` from `now`.
fn issued(sans: &[&str], now: i64, days: u32) -> String {
    issued_as(&subject(), sans, now, days)
}

fn issued_as(subject: &Subject, sans: &[&str], now: i64, days: u32) -> String {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "Test CA");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let ca_pem = p.self_signed(&ca_key).expect("ca").pem();
    let key = rcgen::KeyPair::generate().expect("key");
    let sans = s(sans);
    let req = SignRequest {
        subject,
        sans: &sans,
        key_spec: KeySpec::EcdsaP256,
        validity_days: days,
        now,
        serial: [7; 16],
    };
    build::sign_with_ca(&key, &req, &ca_pem, ca_key).expect("signed")
}

fn fact(chain: Option<String>, now: i64) -> CertFact {
    CertFact {
        now_unix: now,
        chain,
        key_present: true,
        key_matches: Some(true),
        issuer: Some("internal_ca:/ca.pem".into()),
        pending_csr: None,
        key_access: None,
    }
}

#[test]
fn sans_are_sip_domain_xmpp_domain_listeners_and_extras() {
    assert_eq!(
        compute_sans(
            &s(&["Contoso.example"]),
            &s(&["contoso.example"]),
            &s(&["xmpp1.contoso.example", "xmpp2.contoso.example."]),
            &s(&["legacy.contoso.example"]),
        ),
        s(&[
            "contoso.example",
            "legacy.contoso.example",
            "sip.contoso.example",
            "xmpp1.contoso.example",
            "xmpp2.contoso.example",
        ])
    );
}

#[test]
fn dn_has_cn_o_ou_l_st_c_and_c_is_printable() {
    assert_eq!(
        dn_string(&subject()),
        "CN=xmpp1.contoso.example, O=Contoso, OU=Unified Communications, L=Redmond, ST=Washington, C=US"
    );
    let dn = distinguished_name(&subject());
    assert!(matches!(
        dn.get(&rcgen::DnType::CountryName),
        Some(rcgen::DnValue::PrintableString(_))
    ));
    // The same DN read back from a certificate compares equal as text.
    let now = 1_800_000_000;
    let leaf = parse::leaf(issued(&["contoso.example"], now, 90).as_bytes()).expect("parse");
    assert_eq!(leaf.subject, dn_string(&subject()));
    let no_geo = Subject {
        organization: None,
        organizational_unit: None,
        locality: None,
        state: None,
        country: None,
        ..subject()
    };
    assert_eq!(dn_string(&no_geo), "CN=xmpp1.contoso.example");
}

#[test]
fn renewal_is_due_when_a_third_of_the_lifetime_remains() {
    let nb = 0;
    let na = 90 * DAY;
    let third = RenewBefore::Fraction(1.0 / 3.0);
    assert!(!renewal(nb, na, 59 * DAY, third).due);
    assert!(renewal(nb, na, 60 * DAY, third).due);
    assert!(!renewal(nb, na, 60 * DAY, third).expired);
    assert!(renewal(nb, na, 91 * DAY, third).expired);
    assert_eq!(renewal(nb, na, 80 * DAY, third).days_left, 10);
    let thirty = RenewBefore::Days(30);
    assert!(!renewal(nb, na, 59 * DAY, thirty).due);
    assert!(renewal(nb, na, 61 * DAY, thirty).due);
}

#[test]
fn valid_certificate_is_a_no_op_and_expiry_in_the_window_replaces_it() {
    let now = 1_800_000_000;
    let sans = [
        "contoso.example",
        "sip.contoso.example",
        "xmpp1.contoso.example",
    ];
    let chain = issued(&sans, now, 90);
    let r = resource(cert_spec(&sans));
    let Desired::Certificate(spec) = &r.desired else {
        unreachable!()
    };

    let c = decide_certificate(&r, spec, &fact(Some(chain.clone()), now));
    assert_eq!(c.action, Action::NoOp, "{c:?}");
    assert!(c.reason.starts_with("valid until"), "{}", c.reason);

    let later = now + 70 * DAY;
    let c = decide_certificate(&r, spec, &fact(Some(chain.clone()), later));
    assert_eq!(c.action, Action::Replace);
    assert!(
        c.reason.contains("inside the renewal window"),
        "{}",
        c.reason
    );
    // The clock is not state: a saved plan stays valid as time passes.
    assert_eq!(
        c.observed,
        decide_certificate(&r, spec, &fact(Some(chain.clone()), now)).observed
    );

    let mut mismatched = fact(Some(chain), now);
    mismatched.key_matches = Some(false);
    let c = decide_certificate(&r, spec, &mismatched);
    assert_eq!(c.action, Action::Replace);
    assert!(c.reason.contains("does not match"), "{}", c.reason);

    let c = decide_certificate(&r, spec, &fact(None, now));
    assert_eq!(c.action, Action::Create);
    assert_eq!(c.reason, "absent");
}

#[test]
fn a_san_change_is_a_new_certificate_and_the_plan_shows_the_names() {
    let now = 1_800_000_000;
    let old = [
        "contoso.example",
        "old.contoso.example",
        "xmpp1.contoso.example",
    ];
    let new = [
        "contoso.example",
        "sip.contoso.example",
        "xmpp1.contoso.example",
    ];
    let chain = issued(&old, now, 90);
    let r = resource(cert_spec(&new));
    let Desired::Certificate(spec) = &r.desired else {
        unreachable!()
    };
    let c = decide_certificate(&r, spec, &fact(Some(chain), now));
    assert_eq!(c.action, Action::Replace);
    let plan = xfed::plan::Plan {
        changes: vec![c],
        stages: vec![xfed::plan::Stage {
            kind: xfed::plan::StageKind::EdgeBatch {
                pool: "edge-hq".into(),
                batch: 1,
                of: 1,
            },
            hosts: vec!["edge1.contoso.example".into()],
            changes: vec![0],
            health_gate: true,
        }],
        access: Vec::new(),
        targets: Vec::new(),
        skipped: Vec::new(),
        decommission: Vec::new(),
    };
    let text = xfed::output::render::human(&plan, xfed::output::Style { color: false });
    insta::assert_snapshot!(text);
}

#[test]
fn csr_waiting_for_the_ca_is_a_no_op_until_import() {
    let now = 1_800_000_000;
    let sans = ["contoso.example", "xmpp1.contoso.example"];
    let mut spec = cert_spec(&sans);
    spec.issuer = Issuer::Csr {
        request_path: "edge-ext.csr".into(),
    };
    let key = rcgen::KeyPair::generate().expect("key");
    let csr = build::csr_pem(&key, &spec.subject, &spec.sans).expect("csr");
    let r = resource(spec.clone());
    let waiting = CertFact {
        now_unix: now,
        chain: None,
        key_present: false,
        key_matches: None,
        issuer: None,
        pending_csr: Some(csr),
        key_access: None,
    };
    let c = decide_certificate(&r, &spec, &waiting);
    assert_eq!(c.action, Action::NoOp, "{c:?}");
    assert!(c.reason.contains("waiting for the CA"), "{}", c.reason);
    assert_eq!(
        xfed::plan::certificate::assess(&spec, &waiting).state,
        CertState::WaitingForCa
    );
    // A request for other names is replaced.
    spec.sans.push("extra.contoso.example".into());
    let c = decide_certificate(&resource(spec.clone()), &spec, &waiting);
    assert_eq!(c.action, Action::Create, "{c:?}");
}

/// Regression: pebble (like Let's Encrypt) keeps only a CN in the subject,
/// so every plan after an ACME apply showed the certificate replaced.
#[test]
fn regression_an_acme_certificate_is_not_judged_by_the_subject_the_ca_wrote() {
    let now = 1_800_000_000;
    let sans = [
        "contoso.example",
        "sip.contoso.example",
        "xmpp1.contoso.example",
    ];
    let cn_only = Subject {
        common_name: "contoso.example".into(),
        organization: None,
        organizational_unit: None,
        locality: None,
        state: None,
        country: None,
    };
    let chain = issued_as(&cn_only, &sans, now, 90);

    let mut acme = cert_spec(&sans);
    acme.issuer = Issuer::Acme {
        directory: "https://acme.example/dir".into(),
        ca_bundle: None,
        contact: Vec::new(),
    };
    let r = resource(acme);
    let Desired::Certificate(spec) = &r.desired else {
        unreachable!()
    };
    let mut f = fact(Some(chain.clone()), now);
    f.issuer = Some("acme:https://acme.example/dir".into());
    let c = decide_certificate(&r, spec, &f);
    assert_eq!(c.action, Action::NoOp, "{c:?}");

    // A CA xfed runs itself writes the subject it is given: there a
    // different subject is a new certificate.
    let r = resource(cert_spec(&sans));
    let Desired::Certificate(spec) = &r.desired else {
        unreachable!()
    };
    let c = decide_certificate(&r, spec, &fact(Some(chain), now));
    assert_eq!(c.action, Action::Replace, "{c:?}");
    assert!(c.attrs.iter().any(|a| a.name == "subject"), "{c:?}");
}

#[test]
fn a_valid_certificate_whose_key_has_the_wrong_access_is_an_update_in_place() {
    let now = 1_800_000_000;
    let sans = ["xmpp1.contoso.example"];
    let mut spec = cert_spec(&sans);
    spec.key_group = Some("xfed-gateway".into());
    let r = resource(spec.clone());
    let mut f = fact(Some(issued(&sans, now, 90)), now);
    f.key_access = Some("root:root:600".into());
    let c = decide_certificate(&r, &spec, &f);
    assert_eq!(c.action, Action::Update, "{c:?}");
    assert_eq!(
        c.reason,
        "the key file is root:root:600, not root:xfed-gateway:640: its access is set in place"
    );
    f.key_access = Some("root:xfed-gateway:640".into());
    assert_eq!(decide_certificate(&r, &spec, &f).action, Action::NoOp);
}

//! Precedence, table-driven: each row switches on some policies, grants and
//! home sites and says which policy the user ends up with. Every policy has
//! its own pattern of flags, so a row also proves the flags come from the
//! policy that won.

use super::*;
use crate::config::{BareJid, Config, JidError};
use std::path::Path;

const MAIN: &str = r#"
domains = ["contoso.example", "fabrikam-users.example"]
[external]
address = "127.0.0.1"
[internal]
address = "127.0.0.2"

# Per-user policies exist in every row; they apply only when granted.
[[policies]]
identity = "FedPic"
enable_federation_access = true
enable_public_cloud_access = true
enable_xmpp_access = true
[[policies]]
identity = "Everyone"
enable_xmpp_access = true
[[policies]]
identity = "BobOnly"
enable_public_cloud_access = true
enable_xmpp_access = true
"#;

/// The switchable pieces of a policy file.
const GLOBAL: &str = "[[policies]]\nidentity = \"global\"\nenable_federation_access = true\n";
const SITE_HQ: &str = "[[policies]]\nidentity = \"site:hq\"\nenable_public_cloud_access = true\n";
const SITE_DUBLIN: &str = "[[policies]]\nidentity = \"site:dublin\"\n\
    enable_federation_access = true\nenable_public_cloud_access = true\n";
const ALICE_ON_HQ: &str = "[[sites]]\nname = \"hq\"\nusers = [\"alice@contoso.example\"]\n";
const BOB_ON_DUBLIN: &str = "[[sites]]\nname = \"dublin\"\nusers = [\"Bob@contoso.example\"]\n";
const ALICE_GRANT: &str = "[[grants]]\npolicy = \"FedPic\"\nusers = [\"alice@contoso.example\"]\n";
const BOB_GRANT: &str = "[[grants]]\npolicy = \"BobOnly\"\nusers = [\"bob@contoso.example\"]\n";
const ALL_GRANT: &str = "[[grants]]\npolicy = \"Everyone\"\nall = true\n";

fn config(pieces: &[&str]) -> Config {
    let text = format!("{MAIN}\n{}", pieces.join("\n"));
    Config::parse(Path::new("/etc/xfed/gateway.toml"), text.as_bytes())
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn index(pieces: &[&str]) -> PolicyIndex {
    PolicyIndex::new(&config(pieces))
}

/// (federation, public cloud, xmpp) of each policy above.
const NONE: (bool, bool, bool) = (false, false, false);
const GLOBAL_FLAGS: (bool, bool, bool) = (true, false, false);
const HQ_FLAGS: (bool, bool, bool) = (false, true, false);
const FEDPIC_FLAGS: (bool, bool, bool) = (true, true, true);
const EVERYONE_FLAGS: (bool, bool, bool) = (false, false, true);
const BOBONLY_FLAGS: (bool, bool, bool) = (false, true, true);

struct Case {
    name: &'static str,
    pieces: &'static [&'static str],
    user: &'static str,
    policy: Option<&'static str>,
    source: PolicySource,
    site: Option<&'static str>,
    flags: (bool, bool, bool),
}

#[test]
fn precedence_is_user_grant_then_all_then_site_then_global_then_default() {
    use PolicySource::*;
    let alice = "alice@contoso.example";
    let cases = [
        Case {
            name: "nothing configured: the built-in default",
            pieces: &[],
            user: alice,
            policy: None,
            source: Default,
            site: None,
            flags: NONE,
        },
        Case {
            name: "global only",
            pieces: &[GLOBAL],
            user: alice,
            policy: Some("global"),
            source: Global,
            site: None,
            flags: GLOBAL_FLAGS,
        },
        Case {
            name: "a site policy, but the user is homed nowhere",
            pieces: &[SITE_HQ],
            user: alice,
            policy: None,
            source: Default,
            site: None,
            flags: NONE,
        },
        Case {
            name: "a site policy and the user homed there, no global",
            pieces: &[SITE_HQ, ALICE_ON_HQ],
            user: alice,
            policy: Some("site:hq"),
            source: Site,
            site: Some("hq"),
            flags: HQ_FLAGS,
        },
        Case {
            name: "site beats global",
            pieces: &[GLOBAL, SITE_HQ, ALICE_ON_HQ],
            user: alice,
            policy: Some("site:hq"),
            source: Site,
            site: Some("hq"),
            flags: HQ_FLAGS,
        },
        Case {
            name: "homed on a site without a policy: global",
            pieces: &[GLOBAL, ALICE_ON_HQ],
            user: alice,
            policy: Some("global"),
            source: Global,
            site: Some("hq"),
            flags: GLOBAL_FLAGS,
        },
        Case {
            name: "homed on a site without a policy, no global: default",
            pieces: &[ALICE_ON_HQ],
            user: alice,
            policy: None,
            source: Default,
            site: Some("hq"),
            flags: NONE,
        },
        Case {
            name: "another site's policy does not apply",
            pieces: &[GLOBAL, SITE_DUBLIN, ALICE_ON_HQ, BOB_ON_DUBLIN],
            user: alice,
            policy: Some("global"),
            source: Global,
            site: Some("hq"),
            flags: GLOBAL_FLAGS,
        },
        Case {
            name: "the other site's user gets that site's policy",
            pieces: &[GLOBAL, SITE_DUBLIN, ALICE_ON_HQ, BOB_ON_DUBLIN],
            user: "bob@contoso.example",
            policy: Some("site:dublin"),
            source: Site,
            site: Some("dublin"),
            flags: (true, true, false),
        },
        Case {
            name: "grant to all users only",
            pieces: &[ALL_GRANT],
            user: alice,
            policy: Some("Everyone"),
            source: AllUsersGrant,
            site: None,
            flags: EVERYONE_FLAGS,
        },
        Case {
            name: "grant to all beats site and global",
            pieces: &[GLOBAL, SITE_HQ, ALICE_ON_HQ, ALL_GRANT],
            user: alice,
            policy: Some("Everyone"),
            source: AllUsersGrant,
            site: Some("hq"),
            flags: EVERYONE_FLAGS,
        },
        Case {
            name: "explicit grant only",
            pieces: &[ALICE_GRANT],
            user: alice,
            policy: Some("FedPic"),
            source: UserGrant,
            site: None,
            flags: FEDPIC_FLAGS,
        },
        Case {
            name: "explicit grant beats grant to all",
            pieces: &[ALL_GRANT, ALICE_GRANT],
            user: alice,
            policy: Some("FedPic"),
            source: UserGrant,
            site: None,
            flags: FEDPIC_FLAGS,
        },
        Case {
            name: "explicit grant beats everything",
            pieces: &[GLOBAL, SITE_HQ, ALICE_ON_HQ, ALL_GRANT, ALICE_GRANT],
            user: alice,
            policy: Some("FedPic"),
            source: UserGrant,
            site: Some("hq"),
            flags: FEDPIC_FLAGS,
        },
        Case {
            name: "explicit grant beats the site policy without a grant to all",
            pieces: &[SITE_HQ, ALICE_ON_HQ, ALICE_GRANT],
            user: alice,
            policy: Some("FedPic"),
            source: UserGrant,
            site: Some("hq"),
            flags: FEDPIC_FLAGS,
        },
        Case {
            name: "someone else's grant does not apply: global",
            pieces: &[GLOBAL, BOB_GRANT],
            user: alice,
            policy: Some("global"),
            source: Global,
            site: None,
            flags: GLOBAL_FLAGS,
        },
        Case {
            name: "someone else's grant does not apply: grant to all",
            pieces: &[BOB_GRANT, ALL_GRANT],
            user: alice,
            policy: Some("Everyone"),
            source: AllUsersGrant,
            site: None,
            flags: EVERYONE_FLAGS,
        },
        Case {
            name: "that someone gets their grant",
            pieces: &[BOB_GRANT, ALL_GRANT, GLOBAL],
            user: "bob@contoso.example",
            policy: Some("BobOnly"),
            source: UserGrant,
            site: None,
            flags: BOBONLY_FLAGS,
        },
        Case {
            name: "a user no list names, in our second domain: global",
            pieces: &[GLOBAL, ALICE_GRANT, ALICE_ON_HQ],
            user: "carol@fabrikam-users.example",
            policy: Some("global"),
            source: Global,
            site: None,
            flags: GLOBAL_FLAGS,
        },
        Case {
            name: "a full JID in any case matches the bare JID granted",
            pieces: &[GLOBAL, ALICE_GRANT],
            user: "Alice@Contoso.EXAMPLE/phone",
            policy: Some("FedPic"),
            source: UserGrant,
            site: None,
            flags: FEDPIC_FLAGS,
        },
        Case {
            name: "a trailing dot matches the site's user",
            pieces: &[GLOBAL, SITE_HQ, ALICE_ON_HQ],
            user: "ALICE@contoso.example.",
            policy: Some("site:hq"),
            source: Site,
            site: Some("hq"),
            flags: HQ_FLAGS,
        },
        Case {
            name: "a site's user list is normalised too",
            pieces: &[SITE_DUBLIN, BOB_ON_DUBLIN],
            user: "bob@contoso.example/desk",
            policy: Some("site:dublin"),
            source: Site,
            site: Some("dublin"),
            flags: (true, true, false),
        },
    ];
    for case in cases {
        let got = index(case.pieces)
            .resolve(case.user)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let want_user = BareJid::from_address(case.user).expect("valid user");
        assert_eq!(got.user, want_user, "{}", case.name);
        assert_eq!(got.identity.as_deref(), case.policy, "{}", case.name);
        assert_eq!(got.source, case.source, "{}", case.name);
        assert_eq!(got.site.as_deref(), case.site, "{}", case.name);
        assert_eq!(
            (
                got.enable_federation_access,
                got.enable_public_cloud_access,
                got.enable_xmpp_access
            ),
            case.flags,
            "{}",
            case.name
        );
        assert_eq!(
            got.xmpp_federation_allowed(),
            case.flags.2,
            "{}: xmpp_federation_allowed is the effective enable_xmpp_access",
            case.name
        );
    }
}

#[test]
fn the_built_in_default_allows_nothing() {
    // A site policy and someone else's grant, but nothing for alice.
    let got = index(&[SITE_HQ, BOB_GRANT])
        .resolve("alice@contoso.example")
        .expect("ours");
    assert_eq!(got.source, PolicySource::Default);
    assert_eq!(got.identity, None);
    assert!(!got.enable_federation_access);
    assert!(!got.enable_public_cloud_access);
    assert!(!got.enable_xmpp_access);
    assert!(!got.xmpp_federation_allowed());
}

#[test]
fn a_user_outside_our_domains_is_not_ours() {
    let index = index(&[GLOBAL, ALL_GRANT]);
    for address in [
        "alice@fabrikam.example",
        "alice@sub.contoso.example",
        "alice@example",
    ] {
        let err = index.resolve(address).expect_err(address);
        let AccessError::NotOurs { user, domains } = &err else {
            panic!("{address}: {err:?}")
        };
        assert_eq!(user.as_str(), address);
        assert_eq!(domains, &["contoso.example", "fabrikam-users.example"]);
        assert!(err.to_string().contains("is not one of our users"), "{err}");
    }
}

#[test]
fn what_is_not_a_user_jid_is_invalid() {
    let index = index(&[GLOBAL]);
    for address in [
        "",
        "contoso.example",
        "@contoso.example",
        "alice@",
        "alice@contoso.example/",
        "alice@bad domain",
        "al ice@contoso.example",
    ] {
        let err = index.resolve(address).expect_err(address);
        assert!(
            matches!(&err, AccessError::InvalidUser { user, .. } if user == address),
            "{address:?}: {err:?}"
        );
    }
    assert!(matches!(
        index.resolve(""),
        Err(AccessError::InvalidUser {
            source: JidError::Empty,
            ..
        })
    ));
}

#[test]
fn an_ambiguous_config_still_resolves_deterministically() {
    // The reader refuses these; an index built from one anyway takes the
    // first in file order rather than whatever a hash map yields.
    let mut config = config(&[ALICE_GRANT, ALL_GRANT, SITE_HQ, ALICE_ON_HQ]);
    let mut second = config.grants[0].clone();
    second.policy = "BobOnly".to_string();
    config.grants.push(second);
    let mut everyone_else = config.grants[1].clone();
    everyone_else.policy = "BobOnly".to_string();
    config.grants.push(everyone_else);
    let mut elsewhere = config.sites[0].clone();
    elsewhere.name = "dublin".to_string();
    config.sites.push(elsewhere);
    for _ in 0..20 {
        let index = PolicyIndex::new(&config);
        let got = index.resolve("alice@contoso.example").expect("ours");
        assert_eq!(got.identity.as_deref(), Some("FedPic"));
        assert_eq!(got.site.as_deref(), Some("hq"));
        let other = index.resolve("zed@contoso.example").expect("ours");
        assert_eq!(other.identity.as_deref(), Some("Everyone"));
    }
}

#[test]
fn counts_for_status() {
    let index = index(&[ALICE_GRANT, BOB_GRANT, ALICE_ON_HQ, BOB_ON_DUBLIN]);
    assert_eq!(index.granted_users(), 2);
    assert_eq!(index.site_users(), 2);
}

/// The per-stanza verdict: (direction, local user, stanza, answerable) →
/// verdict, for users whose policy allows XMPP and one whose does not.
#[test]
fn stanza_verdict_table() {
    use crate::policy::{DenialReply, Direction, Verdict, decide};
    let config = crate::config::Config::parse(
        std::path::Path::new("/x.toml"),
        br#"
domains = ["contoso.example"]
[external]
address = "127.0.0.1"
[internal]
address = "127.0.0.2"
[[partners]]
domain = "fabrikam.example"
[[policies]]
identity = "Global"
enable_federation_access = true
enable_xmpp_access = true
[[policies]]
identity = "Fed"
enable_federation_access = true
enable_xmpp_access = false
[[grants]]
policy = "Fed"
users = ["mallory@contoso.example"]
"#,
    )
    .expect("valid");
    let index = PolicyIndex::new(&config);
    let denied = |reply| Verdict::Denied {
        user: "mallory@contoso.example".into(),
        cause: DenialCause::Decided {
            flag: AccessFlag::Xmpp,
        },
        reply,
    };
    use Direction::{Inbound, Outbound};
    let cases = [
        (
            Inbound,
            "alice@contoso.example",
            "message",
            true,
            Verdict::Allowed,
        ),
        (
            Inbound,
            "Alice@Contoso.Example/phone",
            "iq",
            true,
            Verdict::Allowed,
        ),
        (
            Outbound,
            "alice@contoso.example/desk",
            "presence",
            true,
            Verdict::Allowed,
        ),
        (Inbound, "contoso.example", "iq", true, Verdict::Allowed),
        (
            Inbound,
            "mallory@contoso.example",
            "message",
            true,
            denied(Some(DenialReply::ServiceUnavailable)),
        ),
        (
            Inbound,
            "MALLORY@contoso.example/x",
            "iq",
            true,
            denied(Some(DenialReply::ServiceUnavailable)),
        ),
        (
            Inbound,
            "mallory@contoso.example",
            "presence",
            true,
            denied(None),
        ),
        (
            Inbound,
            "mallory@contoso.example",
            "message",
            false,
            denied(None),
        ),
        (
            Outbound,
            "mallory@contoso.example",
            "message",
            true,
            denied(Some(DenialReply::PolicyViolation)),
        ),
        (
            Outbound,
            "mallory@contoso.example",
            "iq",
            false,
            denied(None),
        ),
        (
            Outbound,
            "mallory@contoso.example",
            "presence",
            true,
            denied(None),
        ),
    ];
    for (direction, local, name, answerable, expected) in cases {
        assert_eq!(
            decide(
                &index,
                direction,
                local,
                "fabrikam.example",
                name,
                answerable
            ),
            expected,
            "{direction:?} {local} {name} {answerable}"
        );
    }
    // No global policy: the built-in default refuses everyone.
    let empty = PolicyIndex::new(&crate::config::Config {
        policies: Vec::new(),
        grants: Vec::new(),
        ..config.clone()
    });
    assert!(matches!(
        decide(
            &empty,
            Inbound,
            "alice@contoso.example",
            "fabrikam.example",
            "message",
            true
        ),
        Verdict::Denied {
            cause: DenialCause::Decided {
                flag: AccessFlag::Xmpp
            },
            ..
        }
    ));
    // An address that is not a JID of a user is nobody's to allow.
    assert!(matches!(
        decide(
            &index,
            Inbound,
            "@contoso.example",
            "fabrikam.example",
            "message",
            true
        ),
        Verdict::Denied {
            cause: DenialCause::NotOurUser,
            ..
        }
    ));
    // A user of a domain we do not serve is not ours either.
    assert!(matches!(
        decide(
            &index,
            Outbound,
            "alice@elsewhere.example",
            "fabrikam.example",
            "message",
            true
        ),
        Verdict::Denied {
            cause: DenialCause::NotOurUser,
            reply: Some(DenialReply::PolicyViolation),
            ..
        }
    ));
    // A domain that is not (or no longer) a partner: nobody may reach it.
    assert_eq!(
        decide(
            &index,
            Inbound,
            "alice@contoso.example",
            "litware.example",
            "message",
            true
        ),
        Verdict::Denied {
            user: "alice@contoso.example".into(),
            cause: DenialCause::NotAPartner,
            reply: Some(DenialReply::ServiceUnavailable),
        }
    );
}

/// Every partner kind against every combination of the three flags: the
/// kind's decision (`EffectivePolicy::access`) and the stanza verdict both
/// ways, written out as Lync documents it: `enable_xmpp_access` first, then
/// `enable_federation_access` for federated and trusted partners,
/// `enable_public_cloud_access` for public ones.
#[test]
fn every_partner_kind_against_every_flag_combination() {
    use crate::config::PartnerKind;
    use crate::policy::{DenialReply, Direction, Verdict, decide};
    use AccessFlag::{Federation as F, PublicCloud as P, Xmpp as X};
    // Allowed(flag) / Denied(flag): the decision and the flag that made it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Want {
        Allowed(AccessFlag),
        Denied(AccessFlag),
    }
    use Want::{Allowed as A, Denied as D};
    // (federation, public cloud, xmpp) → federated, trusted, public_verified, public_unverified.
    let table: [((bool, bool, bool), [Want; 4]); 8] = [
        ((false, false, false), [D(X), D(X), D(X), D(X)]),
        ((true, false, false), [D(X), D(X), D(X), D(X)]),
        ((false, true, false), [D(X), D(X), D(X), D(X)]),
        ((true, true, false), [D(X), D(X), D(X), D(X)]),
        ((false, false, true), [D(F), D(F), D(P), D(P)]),
        ((true, false, true), [A(F), A(F), D(P), D(P)]),
        ((false, true, true), [D(F), D(F), A(P), A(P)]),
        ((true, true, true), [A(F), A(F), A(P), A(P)]),
    ];
    let partners = [
        ("fed.example", PartnerKind::Federated),
        ("trusted.example", PartnerKind::Trusted),
        ("verified.example", PartnerKind::PublicVerified),
        ("unverified.example", PartnerKind::PublicUnverified),
    ];
    for ((federation, public, xmpp), wants) in table {
        let mut text = String::from(
            "domains = [\"contoso.example\"]\n[external]\naddress = \"127.0.0.1\"\n\
             [internal]\naddress = \"127.0.0.2\"\n",
        );
        for (domain, kind) in partners {
            text.push_str(&format!(
                "[[partners]]\ndomain = \"{domain}\"\nkind = \"{}\"\n",
                kind.as_str()
            ));
        }
        text.push_str(&format!(
            "[[policies]]\nidentity = \"global\"\nenable_federation_access = {federation}\n\
             enable_public_cloud_access = {public}\nenable_xmpp_access = {xmpp}\n"
        ));
        let index = PolicyIndex::new(
            &Config::parse(Path::new("/x.toml"), text.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
        );
        let effective = index.resolve("alice@contoso.example").expect("ours");
        for ((domain, kind), want) in partners.into_iter().zip(wants) {
            let what = format!("{kind:?} with flags f={federation} p={public} x={xmpp}");
            assert_eq!(index.partner_kind(domain), Some(kind), "{what}");
            let access = effective.access(kind);
            let got = if access.allowed {
                A(access.decided_by)
            } else {
                D(access.decided_by)
            };
            assert_eq!(got, want, "{what}");
            for (direction, reply) in [
                (Direction::Inbound, DenialReply::ServiceUnavailable),
                (Direction::Outbound, DenialReply::PolicyViolation),
            ] {
                let expected = match want {
                    A(_) => Verdict::Allowed,
                    D(flag) => Verdict::Denied {
                        user: "alice@contoso.example".into(),
                        cause: DenialCause::Decided { flag },
                        reply: Some(reply),
                    },
                };
                assert_eq!(
                    decide(
                        &index,
                        direction,
                        "alice@contoso.example/desk",
                        domain,
                        "message",
                        true
                    ),
                    expected,
                    "{what} {direction:?}"
                );
            }
        }
    }
}

#[test]
fn flags_and_causes_have_their_policy_file_names() {
    assert_eq!(
        AccessFlag::ALL.map(AccessFlag::as_str),
        [
            "enable_xmpp_access",
            "enable_federation_access",
            "enable_public_cloud_access"
        ]
    );
    assert_eq!(
        DenialCause::ALL.map(DenialCause::as_str),
        [
            "enable_xmpp_access",
            "enable_federation_access",
            "enable_public_cloud_access",
            "not_our_user",
            "not_a_partner"
        ]
    );
}

#[test]
fn a_partners_additional_domains_have_its_kind() {
    use crate::config::PartnerKind;
    let text = "domains = [\"contoso.example\"]\n[external]\naddress = \"127.0.0.1\"\n\
                [internal]\naddress = \"127.0.0.2\"\n\
                [[partners]]\ndomain = \"fabrikam.example\"\nkind = \"public_verified\"\n\
                additional_domains = [\"conference.fabrikam.example\"]\n";
    let index =
        PolicyIndex::new(&Config::parse(Path::new("/x.toml"), text.as_bytes()).expect("valid"));
    assert_eq!(
        index.partner_kind("conference.fabrikam.example"),
        Some(PartnerKind::PublicVerified)
    );
    assert_eq!(
        index.partner_kind("fabrikam.example"),
        Some(PartnerKind::PublicVerified)
    );
    assert_eq!(index.partner_kind("litware.example"), None);
}

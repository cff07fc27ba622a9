//! Partner kinds mean what they mean in Lync: a public partner needs the
//! user's `enable_public_cloud_access`, a federated one their
//! `enable_federation_access`, both on top of `enable_xmpp_access`.
//!
//! The lab's fabrikam (Prosody) is made a `public_verified` partner; alice's
//! policy has XMPP and federation on, public cloud off. Carol's message
//! from fabrikam is refused at the edge, and carol's own client receives
//! the error from her server; dave on litware (ejabberd, `federated`)
//! reaches alice all the same. Granting public cloud access in the spec is
//! applied as a reload (the gateways keep their PIDs) and carol's next
//! message reaches alice's store on the front-end's Prosody.
//!
//!   XFED_LAB=1 tests/lab/lab exec -- cargo test --test public_partner_lab

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::internal::InternalServer;
use common::lab::{Lab, Role};
use common::xfed::{
    TestSpec, apply_ok, assert_in_sync, gateway_admin, gateway_metric, gateway_pid, lab_spec,
    reset, xfed,
};

const FEDPIC: &str = "  - identity: FedPic\n    enable_federation_access: true\n    enable_public_cloud_access: true\n    enable_xmpp_access: true\n";
const FABRIKAM: &str = "  - domain: fabrikam.example\n    kind: federated\n";
const DENIED_PUBLIC: &str =
    "xfed_gateway_stanzas_denied_total{direction=\"inbound\",cause=\"enable_public_cloud_access\"}";

/// playbooks/lab.yaml with fabrikam a `public_verified` partner and
/// alice's policy (FedPic) with public cloud access `public`.
fn public_spec(lab: &Lab, public: bool) -> TestSpec {
    lab_spec(lab, move |text| {
        assert!(
            text.contains(FEDPIC) && text.contains(FABRIKAM),
            "playbooks/lab.yaml changed: no FedPic or fabrikam as this test knows them"
        );
        text.replacen(
            FEDPIC,
            &FEDPIC.replace(
                "enable_public_cloud_access: true",
                &format!("enable_public_cloud_access: {public}"),
            ),
            1,
        )
        .replacen(
            FABRIKAM,
            &FABRIKAM.replace("kind: federated", "kind: public_verified"),
            1,
        )
    })
}

/// A body no earlier run can have left in a store.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{tag} {nanos}")
}

/// Carol sends `body` to alice from a real client on fabrikam's server;
/// what that client got back (`error CONDITION` or `no error`).
fn carol_sends(lab: &Lab, body: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/partner-send");
    let out = lab
        .command(&script)
        .args(["fabrikam", "carol", "alice@contoso.example", body])
        .env("XFED_LAB_DIR", &lab.dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "partner-send failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `/access` of every edge for alice and fabrikam.
fn access_on_edges(lab: &Lab) -> Vec<serde_json::Value> {
    lab.hosts_with(Role::Edge)
        .map(|h| {
            let body = gateway_admin(
                lab,
                h,
                "/access?user=alice%40contoso.example&partner=fabrikam.example",
            );
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{}: {e}: {body}", h.name))
        })
        .collect()
}

fn wait_metric(lab: &Lab, prefix: &str, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while gateway_metric(lab, prefix) < at_least {
        assert!(
            Instant::now() < deadline,
            "no `{prefix}` >= {at_least} on the gateways"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_public_partner_needs_public_cloud_access_and_granting_it_is_a_reload() {
    let Some(lab) = Lab::get() else { return };
    assert!(
        lab.partners.len() == 2,
        "the lab needs its partners (tests/lab/lab up without --no-partners)"
    );
    let _serial = lab.lock();
    reset(lab);
    let off = public_spec(lab, false);
    apply_ok(lab, &off);
    assert_in_sync(lab, &off);
    let internal = InternalServer::of(lab);
    internal.register("alice");

    // Every gateway says why: XMPP is on, public cloud access decides.
    for access in access_on_edges(lab) {
        assert_eq!(
            access["partner"],
            serde_json::json!({
                "domain": "fabrikam.example",
                "kind": "public_verified",
                "allowed": false,
                "decided_by": "enable_public_cloud_access",
            }),
            "{access}"
        );
        assert_eq!(access["enable_xmpp_access"], true, "{access}");
    }

    // Carol's message is refused at the edge: her own client gets the
    // error from fabrikam's server, alice's store on our side nothing.
    let denied = gateway_metric(lab, DENIED_PUBLIC);
    let refused = unique("hello alice, from a public partner");
    assert_eq!(carol_sends(lab, &refused), "error service-unavailable");
    wait_metric(lab, DENIED_PUBLIC, denied + 1.0);

    // A federated partner is governed by enable_federation_access, on for
    // alice: dave on litware reaches her.
    let from_dave = unique("hello alice, from a federated partner");
    lab.partner("litware")
        .send("dave", "alice@contoso.example", &from_dave);
    let stored = internal.wait_offline("alice", &from_dave);
    assert!(
        !stored.contains(&refused),
        "the refused message reached alice: {stored}"
    );

    // Granting public cloud access: the plan names the flag that moves the
    // public kinds, the apply reloads, no gateway restarts.
    let on = public_spec(lab, true);
    let plan = xfed(lab, &["plan", "--detailed-exitcode", on.path()]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout.contains(
            "      public_verified, public_unverified partners: refused (`enable_public_cloud_access` off) → allowed (`enable_public_cloud_access` on)"
        ),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains(
            "      federated, trusted partners: allowed (`enable_federation_access` on)\n"
        ),
        "{plan:?}"
    );
    assert!(!plan.stdout.contains("(restart)"), "{plan:?}");
    let pids: Vec<String> = lab
        .hosts_with(Role::Edge)
        .map(|h| gateway_pid(lab, h))
        .collect();
    let applied = apply_ok(lab, &on);
    assert!(
        applied.stderr.contains("reload service xfed-gateway"),
        "{applied:?}"
    );
    let after: Vec<String> = lab
        .hosts_with(Role::Edge)
        .map(|h| gateway_pid(lab, h))
        .collect();
    assert_eq!(
        pids, after,
        "granting public cloud access restarted a gateway"
    );
    for access in access_on_edges(lab) {
        assert_eq!(access["partner"]["allowed"], true, "{access}");
    }

    // The next message gets through, to alice's store on our server.
    let allowed = unique("hello again alice, from a public partner");
    lab.partner("fabrikam")
        .send("carol", "alice@contoso.example", &allowed);
    let stored = internal.wait_offline("alice", &allowed);
    assert!(stored.contains("carol@fabrikam.example"), "{stored}");
    assert!(
        !stored.contains(&refused),
        "the refused one stays refused: {stored}"
    );
    assert_in_sync(lab, &on);
}

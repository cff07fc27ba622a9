//! Federation end to end with real XMPP servers: the lab's fabrikam
//! (Prosody, outside) finds contoso.example through the SRV records xfed
//! published, reaches the gateways xfed deployed, and its messages are
//! relayed to the front-end's Prosody that xfed manages, or refused, as
//! each user's effective external access policy says; a policy change
//! applied by xfed (a reload: the gateways keep their PIDs) changes the
//! verdict on the next message.
//!
//! Everything on the wire is real: TLS with the ACME certificate from
//! pebble outside and the internal CA's certificates inside, SASL EXTERNAL
//! on every hop. What arrived is read from the receiving server's own store
//! (mod_offline) and the gateways' `/metrics`.
//!
//! Run inside the lab: `tests/lab/lab exec -- cargo test --test relay_lab`.

mod common;

use std::time::{Duration, Instant};

use common::internal::InternalServer;
use common::lab::{Lab, Role};
use common::xfed::{
    TestSpec, apply_ok, assert_in_sync, gateway_metric, gateway_pid, lab_spec, reset,
};

/// playbooks/lab.yaml with FedPic (XMPP on) granted to `users`; bob,
/// homed on hq, otherwise falls back to hq's site policy (XMPP off).
fn relay_spec(lab: &Lab, users: &str) -> TestSpec {
    let users = users.to_string();
    lab_spec(lab, move |text| {
        let from = "    users: [\"alice@{{ domain }}\"]\n\npartners:";
        assert!(
            text.contains(from),
            "playbooks/lab.yaml changed: no {from:?}"
        );
        text.replacen(from, &format!("    users: {users}\n\npartners:"), 1)
    })
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

/// A body no earlier run can have left in a store.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{tag} {nanos}")
}

#[test]
fn partners_reach_the_users_their_policy_allows_through_the_gateways() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let s = relay_spec(lab, "[\"alice@{{ domain }}\"]");
    apply_ok(lab, &s);
    assert_in_sync(lab, &s);

    let internal = InternalServer::of(lab);
    internal.register("alice");
    internal.register("bob");
    let fabrikam = lab.partner("fabrikam");

    // alice is granted FedPic: the message crosses both hops.
    let to_alice = unique("hello alice");
    fabrikam.send("carol", "alice@contoso.example", &to_alice);
    let stored = internal.wait_offline("alice", &to_alice);
    assert!(stored.contains("carol@fabrikam.example"), "{stored}");

    // bob falls back to site:hq, XMPP off: refused at the gateway, never
    // seen by our server.
    let denied = "xfed_gateway_stanzas_total{direction=\"inbound\",verdict=\"denied\"";
    let before = gateway_metric(lab, denied);
    let to_bob = unique("hello bob");
    fabrikam.send("carol", "bob@contoso.example", &to_bob);
    wait_metric(lab, denied, before + 1.0);
    // The refusal went back to the partner's server (<service-unavailable/>)
    // on a stream the gateway opened to it.
    wait_metric(
        lab,
        "xfed_gateway_outbound_connections_total{leg=\"partner\",result=\"established\"}",
        1.0,
    );

    // Grant FedPic to every user: a policy-only change, applied as a
    // reload; bob is reachable on the next message.
    let pids: Vec<String> = lab
        .hosts_with(Role::Edge)
        .map(|h| gateway_pid(lab, h))
        .collect();
    let all = relay_spec(lab, "all");
    apply_ok(lab, &all);
    let again = unique("hello again bob");
    fabrikam.send("carol", "bob@contoso.example", &again);
    let bobs = internal.wait_offline("bob", &again);
    assert!(
        !bobs.contains(&to_bob),
        "the first one stays refused: {bobs}"
    );
    let after: Vec<String> = lab
        .hosts_with(Role::Edge)
        .map(|h| gateway_pid(lab, h))
        .collect();
    assert_eq!(pids, after, "a policy change restarted a gateway");
}

//! The main job federates (issue #12, "The main job shows federation"):
//! `playbooks/lab.yaml` as it is — the managed Prosody on the front-end,
//! its route to the edge pool, the gateways, DNS and policies, all from the
//! one spec — applied to a bare lab, then the demo's own federation check
//! (`tests/lab/federation-check`): real clients of alice and bob on our
//! front-end, carol on fabrikam (Prosody) and dave on litware (ejabberd),
//! each verdict taken from the receiving client. The gateways' counters
//! must agree: the refused message to bob was counted as denied inbound.
//!
//!   XFED_LAB=1 tests/lab/lab exec -- cargo test --test federation_lab

mod common;

use std::path::Path;

use common::lab::Lab;
use common::xfed::{apply_ok, assert_in_sync, gateway_metric, lab_spec, reset};

const DENIED_INBOUND: &str = "xfed_gateway_stanzas_total{direction=\"inbound\",verdict=\"denied\"";
const ALLOWED_INBOUND: &str =
    "xfed_gateway_stanzas_total{direction=\"inbound\",verdict=\"allowed\"";

#[test]
fn the_lab_playbook_federates_both_ways_with_prosody_and_ejabberd() {
    let Some(lab) = Lab::get() else { return };
    assert!(
        lab.partners.len() == 2,
        "the lab needs its partners (tests/lab/lab up without --no-partners)"
    );
    let _serial = lab.lock();
    reset(lab);
    let spec = lab_spec(lab, |text| text);
    apply_ok(lab, &spec);
    assert_in_sync(lab, &spec);

    let (denied, allowed) = (
        gateway_metric(lab, DENIED_INBOUND),
        gateway_metric(lab, ALLOWED_INBOUND),
    );
    let check = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/federation-check");
    let out = lab
        .command(&check)
        .env("XFED_LAB_DIR", &lab.dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", check.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "federation check failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for line in [
        "ok    carol@fabrikam.example -> alice@contoso.example",
        "ok    dave@litware.example -> alice@contoso.example",
        "ok    alice@contoso.example -> carol@fabrikam.example",
        "ok    alice@contoso.example -> dave@litware.example",
        "ok    carol@fabrikam.example -> bob@contoso.example    refused",
        "ok    presence alice@contoso.example <-> carol@fabrikam.example",
        "ok    presence alice@contoso.example <-> dave@litware.example",
        "federation check: 7/7 passed",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    // What the clients saw went through the gateways: two messages and the
    // presence let in, the message to bob refused there.
    assert!(
        gateway_metric(lab, DENIED_INBOUND) >= denied + 1.0,
        "the refusal was not counted at the edge"
    );
    assert!(
        gateway_metric(lab, ALLOWED_INBOUND) >= allowed + 2.0,
        "the partners' messages did not cross the gateways"
    );
    // Checking federates, it changes nothing xfed manages.
    assert_in_sync(lab, &spec);
}

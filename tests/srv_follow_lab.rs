//! Outbound without `proxy` (issue #12): the gateway finds each partner by
//! the partner's own `_xmpp-server._tcp` SRV record — a record in the
//! partner's zone, which xfed neither wrote nor reads — and a new stream
//! follows a changed record.
//!
//! After `xfed apply` of playbooks/lab.yaml (no partner has a `proxy`),
//! alice on xfed's Prosody writes to carol at fabrikam and to dave at
//! litware; each partner's own `ss` shows the gateway's stream landed on
//! the port its SRV record names (5269), and the partner's own store holds
//! the message. Then fabrikam's record is moved, through the PowerDNS API
//! as fabrikam's admin would, to another name and port of the same Prosody
//! (`xmpp2.fabrikam.example:5270`); fabrikam closes its streams from us
//! (cleanly, from its admin shell: nothing of ours restarts), and the next
//! message arrives on a new stream on 5270. The record is put back at the
//! end, also when the test fails (a drop guard): the lab is shared.
//!
//! Run inside the lab: `tests/lab/lab exec -- cargo test --test srv_follow_lab`.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::internal::InternalServer;
use common::lab::{Lab, Role};
use common::partners::{Partner, lua_str};
use common::prosody::PROSODYCTL;
use common::xfed::{apply_ok, lab_spec, reset};

const WAIT: Duration = Duration::from_secs(30);
/// The second S2S port of fabrikam's Prosody (tests/lab/lab).
const SECOND_PORT: u16 = 5270;

/// A body no earlier run can have left in a store.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{tag} {nanos}")
}

/// The lab's PowerDNS API, by hand (curl), as a partner's admin edits
/// their zone. The key goes to curl on stdin, never on a command line.
fn pdns(lab: &Lab, method: &str, path: &str, body: Option<&str>) -> String {
    let mut c = lab.command("curl");
    c.args([
        "-sS",
        "--max-time",
        "5",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ])
    .args(["-H", "@-", "-H", "Content-Type: application/json"])
    .arg(format!("{}/api/v1/servers/localhost/{path}", lab.dns.api));
    if let Some(body) = body {
        c.arg("--data").arg(body);
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("X-API-Key: {}\n", lab.dns.api_key()).as_bytes())
        .expect("write the key to curl");
    let out = child.wait_with_output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    assert!(
        out.status.success() && code.starts_with('2'),
        "PowerDNS {method} {path}: HTTP {code}: {body}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    body.to_string()
}

/// One rrset for a PowerDNS PATCH.
fn rrset(name: &str, rtype: &str, ttl: u64, contents: &[String]) -> serde_json::Value {
    serde_json::json!({
        "name": name, "type": rtype, "ttl": ttl, "changetype": "REPLACE",
        "records": contents.iter().map(|c| serde_json::json!({"content": c, "disabled": false})).collect::<Vec<_>>(),
    })
}

/// Puts a partner's SRV record back as it was (and removes the extra
/// name) when dropped, so a failing test leaves the shared lab as `up`
/// made it.
struct SrvRestore<'a> {
    lab: &'a Lab,
    zone: String,
    srv_name: String,
    ttl: u64,
    original: Vec<String>,
    extra_name: String,
}

impl SrvRestore<'_> {
    fn put_back(&self) {
        let body = serde_json::json!({"rrsets": [
            rrset(&self.srv_name, "SRV", self.ttl, &self.original),
            {"name": self.extra_name, "type": "A", "changetype": "DELETE"},
        ]});
        pdns(
            self.lab,
            "PATCH",
            &format!("zones/{}", self.zone),
            Some(&body.to_string()),
        );
    }
}

impl Drop for SrvRestore<'_> {
    fn drop(&mut self) {
        // On a panic, restoring must not panic again (that aborts): report.
        if std::thread::panicking() {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.put_back())).is_err() {
                eprintln!("could not restore {} (see the panic above)", self.srv_name);
            }
        } else {
            self.put_back();
        }
    }
}

/// The partner's established TCP connections whose local end is its S2S
/// address on `port` and whose peer is one of our edges: the gateway's
/// streams to it, as the partner's kernel sees them (`ss` in its netns).
fn streams_from_edges(lab: &Lab, partner: &Partner, port: u16) -> Vec<String> {
    let out = partner
        .command("ss")
        .args(["-tnH", "state", "established"])
        .output()
        .unwrap_or_else(|e| panic!("ss in {}: {e}", partner.name));
    assert!(out.status.success(), "ss in {}: {out:?}", partner.name);
    let local = format!("{}:{port}", partner.external);
    let edges: Vec<String> = lab
        .hosts_with(Role::Edge)
        .filter_map(|h| h.external.as_ref().map(|a| format!("{a}:")))
        .collect();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            // Recv-Q Send-Q Local:Port Peer:Port (state is filtered already)
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 4 && f[2] == local && edges.iter().any(|e| f[3].starts_with(e.as_str()))
        })
        .map(str::to_string)
        .collect()
}

/// Polls `streams_from_edges` until `check` holds (bounded).
fn wait_streams(
    lab: &Lab,
    partner: &Partner,
    port: u16,
    what: &str,
    check: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let streams = streams_from_edges(lab, partner, port);
        if check(&streams) {
            return streams;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {what} not seen within {WAIT:?} on :{port}: {streams:?}\nits log ends:\n{}",
            partner.domain,
            partner.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `dig +short` on an edge, with the edge's own resolver (the one the
/// gateway reads from /etc/resolv.conf).
fn dig_on_edge(lab: &Lab, rtype: &str, name: &str) -> String {
    let edge = lab.hosts_with(Role::Edge).next().expect("an edge");
    lab.ssh_ok(
        edge,
        &format!("dig +short +time=2 +tries=1 {name} {rtype} | sort"),
    )
    .trim()
    .to_string()
}

#[test]
fn the_gateway_follows_each_partners_own_srv_record_and_a_moved_record_on_the_next_stream() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let s = lab_spec(lab, |text| text);
    assert!(
        !std::fs::read_to_string(&s.path)
            .expect("spec")
            .contains("proxy"),
        "the lab playbook names a `proxy`: this test is about SRV"
    );
    apply_ok(lab, &s);
    let internal = InternalServer::of(lab);
    internal.register("alice");

    // Each partner, as its zone says today: SRV 0 5 5269 xmpp.<domain>.
    for (name, user) in [("fabrikam", "carol"), ("litware", "dave")] {
        let partner = lab.partner(name);
        assert_eq!(
            dig_on_edge(lab, "SRV", &format!("_xmpp-server._tcp.{}", partner.domain)),
            format!("0 5 5269 {}.", partner.fqdn),
            "{name}'s zone is not as tests/lab/lab writes it"
        );
        let body = unique(&format!("to {user} by SRV"));
        internal.send(
            "alice@contoso.example",
            &format!("{user}@{}", partner.domain),
            &body,
        );
        let stored = partner.wait_received(user, &body);
        assert!(stored.from.contains("alice@contoso.example"), "{stored:?}");
        let streams = wait_streams(lab, partner, 5269, "a stream from an edge", |s| {
            !s.is_empty()
        });
        eprintln!("{name}: the gateway's stream landed on {streams:?}");
    }

    // fabrikam's admin moves the record: another name, another port of
    // the same server. TTL 1 and a cache-less PowerDNS: the gateway asks
    // the edge's resolver (PowerDNS itself, which does not cache) for every
    // new stream, with a fresh resolver each time, so no cache on our side
    // can serve the old answer; the short TTL keeps that true for a
    // resolver that would cache (and for Prosody's own lookups).
    let fabrikam = lab.partner("fabrikam");
    let zone = format!("{}.", fabrikam.domain);
    let srv_name = format!("_xmpp-server._tcp.{zone}");
    let extra_name = format!("xmpp2.{zone}");
    let zone_json: serde_json::Value =
        serde_json::from_str(&pdns(lab, "GET", &format!("zones/{zone}"), None)).expect("zone JSON");
    let original = zone_json["rrsets"]
        .as_array()
        .and_then(|sets| {
            sets.iter()
                .find(|r| r["name"] == srv_name.as_str() && r["type"] == "SRV")
        })
        .unwrap_or_else(|| panic!("{zone} has no {srv_name} SRV: {zone_json}"))
        .clone();
    let _restore = SrvRestore {
        lab,
        zone: zone.clone(),
        srv_name: srv_name.clone(),
        ttl: original["ttl"].as_u64().unwrap_or(60),
        original: original["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["content"].as_str().map(str::to_string))
            .collect(),
        extra_name: extra_name.clone(),
    };
    let moved = format!("0 5 {SECOND_PORT} {extra_name}");
    let body = serde_json::json!({"rrsets": [
        rrset(&extra_name, "A", 1, std::slice::from_ref(&fabrikam.external)),
        rrset(&srv_name, "SRV", 1, std::slice::from_ref(&moved)),
    ]});
    pdns(
        lab,
        "PATCH",
        &format!("zones/{zone}"),
        Some(&body.to_string()),
    );
    assert_eq!(
        dig_on_edge(lab, "SRV", &srv_name),
        moved,
        "the edges do not see the moved record"
    );

    // fabrikam closes the streams from us cleanly (</stream:stream>, no
    // stream error: the gateway takes it as the peer's idle close and opens
    // the next stream at once, without a retry delay).
    let out = std::process::Command::new(PROSODYCTL)
        .arg("--config")
        .arg(&fabrikam.config)
        .arg("shell")
        .arg(format!(
            "s2s:close({}, {})",
            lua_str("contoso.example"),
            lua_str(&fabrikam.domain)
        ))
        .output()
        .expect("prosodyctl shell");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("Closed") && !said.contains("Closed 0 "),
        "s2s:close closed nothing: {out:?}"
    );
    wait_streams(lab, fabrikam, 5269, "the old stream closed", |s| {
        s.is_empty()
    });

    // The next message opens a new stream: to the moved target's port.
    let body = unique("to carol by the moved SRV");
    internal.send("alice@contoso.example", "carol@fabrikam.example", &body);
    let stored = fabrikam.wait_received("carol", &body);
    assert!(stored.from.contains("alice@contoso.example"), "{stored:?}");
    let streams = wait_streams(
        lab,
        fabrikam,
        SECOND_PORT,
        "a stream on the moved port",
        |s| !s.is_empty(),
    );
    eprintln!("fabrikam, moved: the gateway's stream landed on {streams:?}");
    assert!(
        streams_from_edges(lab, fabrikam, 5269).is_empty(),
        "a stream still goes to the old port"
    );
}

//! Flaky peers against the real lab, through the real `xfed` binary: an
//! ACME CA that rejects half the nonces it issued, a PowerDNS API that
//! answers `503` twice before it works, and one that answers `403` for
//! good. The faults come from the servers themselves (pebble's own nonce
//! rejection) or from a small proxy in front of the real PowerDNS API.
//!
//! Run inside the lab: `tests/lab/lab exec -- cargo test --test retry_lab`.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::fault_proxy::{Fault, FaultProxy};
use common::lab::{Lab, Role};
use common::pebble::Pebble;
use common::xfed::{Run, TestSpec, assert_in_sync, lab_spec, reset, xfed};
use xfed::dns::rrset::RRset;
use xfed::providers::dns::{DnsProvider, PowerDns};
use xfed::providers::retry;
use xfed::secret::Secret;

const LAB_DIRECTORY: &str = "https://203.0.113.54:14000/dir";
const LAB_API: &str = "api_url: http://203.0.113.53:8081";

fn apply(lab: &Lab, spec: &TestSpec) -> Run {
    xfed(lab, &["apply", "--auto-approve", spec.path()])
}

/// The lab's spec with its PowerDNS API reached through `proxy`.
fn spec_through(lab: &Lab, proxy: &FaultProxy) -> TestSpec {
    let url = proxy.url();
    lab_spec(lab, move |text| {
        assert!(text.contains(LAB_API), "playbooks/lab.yaml changed");
        text.replace(LAB_API, &format!("api_url: {url}"))
    })
}

fn api_addr(lab: &Lab) -> SocketAddr {
    lab.dns
        .api
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("`{}`: {e}", lab.dns.api))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"))
}

/// The PowerDNS API at `url` with the lab's key.
fn powerdns(lab: &Lab, url: &str) -> PowerDns {
    PowerDns::new(url, &Secret::new(lab.dns.api_key()), "localhost")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Every zone of the lab, read straight from PowerDNS.
fn zones(lab: &Lab) -> Vec<String> {
    let p = powerdns(lab, &lab.dns.api);
    let rt = rt();
    ["contoso.example.", "internal.contoso.example."]
        .iter()
        .map(|z| {
            let rrsets = rt
                .block_on(p.read_zone(z))
                .unwrap_or_else(|e| panic!("read {z}: {e}"));
            format!("{z}: {rrsets:?}")
        })
        .collect()
}

/// Lines of the progress output that announce a retry.
fn retries(r: &Run) -> Vec<&str> {
    r.stderr
        .lines()
        .filter(|l| l.contains("failed (") && l.contains("; retry "))
        .collect()
}

fn assert_no_key(lab: &Lab, r: &Run) {
    let key = lab.dns.api_key();
    assert!(
        !r.stdout.contains(&key) && !r.stderr.contains(&key),
        "the API key in the output: {r:?}"
    );
}

#[test]
fn apply_succeeds_against_a_ca_that_rejects_half_of_its_nonces() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    // The lab's pebble rejects 5 %; this one 50 %, so about one POST in
    // eight is refused three times in a row, which instant-acme alone
    // passes on as a failure.
    let pebble = Pebble::start(lab, 14100, 50);
    let directory = pebble.directory.clone();
    let spec = lab_spec(lab, move |text| {
        assert!(text.contains(LAB_DIRECTORY), "playbooks/lab.yaml changed");
        text.replace(LAB_DIRECTORY, &directory)
    });

    let r = apply(lab, &spec);
    assert_eq!(
        r.code,
        0,
        "apply failed: {r:?}\n--- pebble\n{}",
        pebble.log_text()
    );
    let shown = retries(&r);
    eprintln!("{} ACME retries shown:\n{}", shown.len(), shown.join("\n"));
    for l in &shown {
        assert!(l.contains(&format!("ACME `{}`", pebble.directory)), "{l}");
    }

    // Each edge serves a certificate from this pebble, not the lab's.
    let log = pebble.log_text();
    let intermediate = log
        .lines()
        .find_map(|l| l.split("Generated new intermediate issuer CN=").nth(1))
        .and_then(|rest| rest.split(" with serial").next())
        .unwrap_or_else(|| panic!("no intermediate in pebble's log:\n{log}"))
        .to_string();
    for h in lab.hosts_with(Role::Edge) {
        let issuer = lab.ssh_ok(
            h,
            "openssl x509 -noout -issuer -in /etc/xfed/tls/external.crt",
        );
        assert!(
            issuer.contains(&intermediate),
            "{}: {issuer} (want {intermediate})",
            h.name
        );
    }
    assert_no_key(lab, &r);
}

#[test]
fn apply_retries_a_dns_api_that_answers_503_twice_and_shows_it() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let proxy = FaultProxy::start(
        api_addr(lab),
        Fault {
            method: Some("PATCH"),
            status: 503,
            times: Some(2),
            after_server: false,
        },
    );
    let spec = spec_through(lab, &proxy);

    let r = apply(lab, &spec);
    assert_eq!(r.code, 0, "apply failed: {r:?}\n{:#?}", proxy.log());
    let log = proxy.log();
    let injected: Vec<&String> = log.iter().filter(|l| l.ends_with('!')).collect();
    assert_eq!(injected.len(), 2, "{log:#?}");
    let shown: Vec<&str> = retries(&r)
        .into_iter()
        .filter(|l| l.contains("HTTP 503"))
        .collect();
    assert_eq!(shown.len(), 2, "{r:?}");
    for l in &shown {
        assert!(
            l.contains(&format!("PowerDNS `{}`: PATCH zone `", proxy.url()))
                && l.contains("failed (HTTP 503 Service Unavailable); retry "),
            "{l}"
        );
    }
    // Each PATCH that failed was sent again and went through.
    let patched_ok = log
        .iter()
        .filter(|l| l.starts_with("PATCH ") && l.ends_with("-> 204"))
        .count();
    assert!(patched_ok >= 2, "{log:#?}");
    assert_no_key(lab, &r);
    assert_in_sync(lab, &spec);
}

#[test]
fn a_dns_api_that_answers_403_fails_at_once_and_nothing_is_written() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let before = zones(lab);
    let proxy = FaultProxy::start(
        api_addr(lab),
        Fault {
            method: None,
            status: 403,
            times: None,
            after_server: false,
        },
    );
    let spec = spec_through(lab, &proxy);

    let r = apply(lab, &spec);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "the DNS API at `{}` rejected the API key (HTTP 403)",
            proxy.url()
        )),
        "{r:?}"
    );
    assert!(retries(&r).is_empty(), "a 403 was retried: {r:?}");
    // One request, refused, and the run stopped there.
    assert_eq!(proxy.log().len(), 1, "{:#?}", proxy.log());
    assert_eq!(zones(lab), before, "a zone changed");
    for h in lab.hosts_with(Role::Edge) {
        assert_eq!(
            lab.ssh_ok(h, "ls -A /etc/xfed /opt/xfed").trim(),
            "/etc/xfed:\n\n/opt/xfed:",
            "{} was written to",
            h.name
        );
    }
    assert_no_key(lab, &r);
}

#[test]
fn a_zone_post_is_repeated_only_once_the_zone_is_seen_absent() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    let zone = "t-retry.contoso.example.";
    let direct = powerdns(lab, &lab.dns.api);
    let rt = rt();
    let delete = || {
        rt.block_on(direct.delete_zone(zone))
            .unwrap_or_else(|e| panic!("delete {zone}: {e}"))
    };
    let notices = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = notices.clone();
    retry::set_reporter(Arc::new(move |n| {
        seen.lock().expect("notices").push(n.to_string())
    }));
    let rrsets = vec![RRset::new(
        "www.t-retry.contoso.example.",
        "A",
        300,
        vec!["198.51.100.7".into()],
    )];

    // after_server: the first POST created the zone and its answer was
    // lost; otherwise it never reached the server.
    for after_server in [true, false] {
        delete();
        notices.lock().expect("notices").clear();
        let proxy = FaultProxy::start(
            api_addr(lab),
            Fault {
                method: Some("POST"),
                status: 502,
                times: Some(1),
                after_server,
            },
        );
        rt.block_on(powerdns(lab, &proxy.url()).create_zone(zone, &rrsets))
            .unwrap_or_else(|e| panic!("after_server={after_server}: {e}\n{:#?}", proxy.log()));

        let log = proxy.log();
        let created = log
            .iter()
            .filter(|l| l.starts_with("POST ") && l.contains("-> 201"))
            .count();
        assert_eq!(created, 1, "the zone POST reached PowerDNS once: {log:#?}");
        let posts = log.iter().filter(|l| l.starts_with("POST ")).count();
        assert_eq!(posts, 2, "no third POST: {log:#?}");
        let now = rt
            .block_on(direct.read_zone(zone))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("{zone} was not created: {log:#?}"));
        assert!(now.contains(&rrsets[0]), "{now:?}");
        let shown = notices.lock().expect("notices").clone();
        assert_eq!(
            shown,
            [format!(
                "PowerDNS `{}`: POST zone `{zone}` failed (HTTP 502 Bad Gateway); retry 1 of 4 in 0.5s, \
                 after checking whether the first try took effect",
                proxy.url()
            )],
        );
    }
    delete();
}

//! End-to-end tests of the real `xfed-gateway` binary on loopback:
//! STARTTLS with a rustls client, STARTTLS (no `from`) and Direct TLS with
//! `openssl s_client`, `/status`, `/metrics`, `/access`, SIGHUP certificate
//! and partner reload under open streams, the partner allow-list, SIGTERM
//! drain, config errors before binding, limits and timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::process::{Command, Stdio};
use tokio::net::TcpStream;

fn start_with_certificate() -> (Workdir, TestCa, Leaf, Gateway) {
    let work = Workdir::new();
    let ca = TestCa::new("Test CA");
    let leaf = ca.leaf(&[DOMAIN]);
    let tls = work.install("external", &leaf);
    let path = work.write("gateway.toml", &config(&work, &tls, "", ""));
    let gateway = Gateway::start(&path);
    (work, ca, leaf, gateway)
}

#[tokio::test]
async fn starttls_handshake_presents_the_configured_certificate() {
    let (_work, ca, leaf, gateway) = start_with_certificate();
    let n = negotiate(
        gateway.external,
        DOMAIN,
        PARTNER,
        client_config(ca.roots(), None),
    )
    .await;

    assert_eq!(header_attr(&n.plain_reply, "from").as_deref(), Some(DOMAIN));
    assert_eq!(header_attr(&n.plain_reply, "to").as_deref(), Some(PARTNER));
    assert!(n.plain_reply.contains("xmlns:db='jabber:server:dialback'"));
    assert!(
        n.plain_reply
            .contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>")
    );
    let first_id = header_attr(&n.plain_reply, "id").unwrap();
    let second_id = header_attr(&n.secure_reply, "id").unwrap();
    assert_eq!(first_id.len(), 32);
    assert_ne!(first_id, second_id, "the restarted stream has a new id");

    let (_, session) = n.tls.get_ref();
    let presented = session.peer_certificates().unwrap();
    assert_eq!(presented[0], leaf.der, "the configured leaf is served");
}

/// Runs `openssl s_client` against the external listener with `args`,
/// verifying against `ca_file`, and asserts it printed the installed leaf.
fn openssl_shows_the_leaf(
    gateway: &Gateway,
    ca_file: &std::path::Path,
    leaf: &Leaf,
    args: &[&str],
) {
    let output = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(gateway.external.to_string())
        .args(args)
        .args(["-verify_return_error", "-verify_hostname", DOMAIN])
        .arg("-CAfile")
        .arg(ca_file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "openssl {args:?} failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("Verify return code: 0 (ok)"), "{stdout}");
    assert!(
        stdout.contains(&format!("CN = {DOMAIN}")) || stdout.contains(&format!("CN={DOMAIN}")),
        "{stdout}"
    );
    // The PEM openssl prints is the leaf we installed.
    let begin = stdout.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end = stdout.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    assert_eq!(stdout[begin..end].trim(), leaf.cert_pem.trim());
}

/// `-starttls xmpp-server` sends a header without `from`. That is allowed
/// (identity comes at authentication), so the probe completes STARTTLS and
/// sees the certificate; it was once refused by the partner allow-list.
#[test]
fn openssl_s_client_completes_starttls_without_from_and_over_direct_tls() {
    let (work, ca, leaf, gateway) = start_with_certificate();
    let ca_file = work.write("ca.pem", &ca.pem);
    openssl_shows_the_leaf(
        &gateway,
        &ca_file,
        &leaf,
        &["-starttls", "xmpp-server", "-xmpphost", DOMAIN],
    );
    // Direct TLS (XEP-0368) on the same port: the handshake comes before
    // any stream header.
    openssl_shows_the_leaf(&gateway, &ca_file, &leaf, &["-servername", DOMAIN]);
    assert_eq!(gateway.metric(REFUSED_NOT_PARTNER), 0);
}

#[test]
fn status_reports_build_config_certificates_and_counts() {
    let (work, _ca, leaf, gateway) = start_with_certificate();
    let status = gateway.status();
    let config_bytes = std::fs::read(work.path("gateway.toml")).unwrap();
    let binary_bytes = std::fs::read(binary()).unwrap();

    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["binary_sha256"], sha256_hex(&binary_bytes));
    assert_eq!(status["config_sha256"], sha256_hex(&config_bytes));
    assert_eq!(status["topology_version"], "topo-42");
    assert_eq!(status["domains"], serde_json::json!([DOMAIN]));
    assert_eq!(status["state"], "running");
    assert_eq!(status["partners"], 1);
    assert_eq!(status["policies"], 1);
    assert!(status["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(status["reloaded_at"].is_null());
    assert_eq!(status["pid"], gateway.pid());

    let listeners = status["listeners"].as_array().unwrap();
    let names: Vec<&str> = listeners
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["external", "internal", "admin"]);
    let external = &listeners[0];
    assert_eq!(external["address"], gateway.external.to_string());
    assert_eq!(external["bound"], true);
    assert_eq!(external["tls"]["fingerprint_sha256"], sha256_hex(&leaf.der));
    assert_eq!(
        external["tls"]["subject_names"],
        serde_json::json!([DOMAIN])
    );
    assert_eq!(external["tls"]["not_after"], "2035-01-01T00:00:00Z");
    assert_eq!(external["tls"]["client_auth"], "optional");
    assert!(external["connections_current"].is_u64());
    assert!(external["connections_total"].is_u64());
    assert!(
        listeners[1]["tls"].is_null(),
        "no certificate on the internal listener"
    );
    assert_eq!(listeners[2]["address"], gateway.admin.to_string());

    assert_eq!(gateway.get("/healthz"), (200, "ok\n".to_string()));
    assert_eq!(gateway.get("/nope").0, 404);
    let (code, metrics) = gateway.get("/metrics");
    assert_eq!(code, 200);
    for family in [
        "xfed_gateway_connections{listener=\"external\"}",
        "xfed_gateway_connections_total{listener=\"external\"}",
        "xfed_gateway_stream_errors_total{listener=\"external\",condition=\"host-unknown\"}",
        "xfed_gateway_tls_handshakes_total{listener=\"external\",result=\"ok\"}",
        "xfed_gateway_reloads_total{result=\"ok\"} 0",
        "xfed_gateway_connections_rejected_total{listener=\"external\",reason=\"max_connections_per_ip\"}",
        "xfed_gateway_certificate_not_after_seconds{listener=\"external\"} 2051222400",
    ] {
        assert!(metrics.contains(family), "{family} missing from\n{metrics}");
    }
}

#[tokio::test]
async fn stream_errors_are_counted_by_condition() {
    let (_work, _ca, _leaf, gateway) = start_with_certificate();
    let mut tcp = TcpStream::connect(gateway.external).await.unwrap();
    write_all(&mut tcp, &stream_header("elsewhere.example", PARTNER)).await;
    let reply = read_to_end(&mut tcp).await;
    assert!(
        reply.contains("<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{reply}"
    );
    assert!(reply.ends_with("</stream:stream>"), "{reply}");
    let (_, metrics) = gateway.get("/metrics");
    assert!(
        metrics.contains(
            "xfed_gateway_stream_errors_total{listener=\"external\",condition=\"host-unknown\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn sighup_swaps_the_certificate_and_keeps_established_streams() {
    let (work, ca, old_leaf, mut gateway) = start_with_certificate();
    let client = client_config(ca.roots(), None);
    let mut established = negotiate(gateway.external, DOMAIN, PARTNER, client.clone()).await;

    // A reload with a broken file is rejected and changes nothing.
    let good = std::fs::read_to_string(work.path("gateway.toml")).unwrap();
    work.write(
        "gateway.toml",
        &good
            .replace("[limits]", "")
            .replace("drain_secs = 5", "drain_secs = \"five\""),
    );
    gateway.signal("HUP");
    let rejected = gateway.wait_for(|l| l.contains("event=reload_rejected"));
    assert!(rejected.contains("field=drain_secs"), "{rejected}");
    assert_eq!(
        gateway.status()["listeners"][0]["tls"]["fingerprint_sha256"],
        sha256_hex(&old_leaf.der)
    );

    // Install a new certificate and reload.
    work.write("gateway.toml", &good);
    let new_leaf = ca.leaf(&[DOMAIN, "xmpp.contoso.example"]);
    work.install("external", &new_leaf);
    gateway.signal("HUP");
    gateway.wait_for(|l| l.contains("event=reloaded"));
    let status = gateway.status();
    assert_eq!(
        status["listeners"][0]["tls"]["fingerprint_sha256"],
        sha256_hex(&new_leaf.der)
    );
    assert!(status["reloaded_at"].is_string());

    // New connections get the new certificate ...
    let fresh = negotiate(gateway.external, DOMAIN, PARTNER, client).await;
    assert_eq!(
        fresh.tls.get_ref().1.peer_certificates().unwrap()[0],
        new_leaf.der
    );
    // ... and the stream opened before the reload is still served.
    assert_eq!(
        established.tls.get_ref().1.peer_certificates().unwrap()[0],
        old_leaf.der
    );
    write_all(&mut established.tls, "</stream:stream>").await;
    let reply = read_to_end(&mut established.tls).await;
    assert_eq!(reply, "</stream:stream>");
    let (_, metrics) = gateway.get("/metrics");
    assert!(
        metrics.contains("xfed_gateway_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("xfed_gateway_reloads_total{result=\"failed\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn sigterm_tells_streams_and_exits_zero() {
    let (work, ca, _leaf, mut gateway) = start_with_certificate();
    assert!(
        work.path("gateway.pid").exists(),
        "pid file written once bound"
    );
    let pid_text = std::fs::read_to_string(work.path("gateway.pid")).unwrap();
    assert_eq!(pid_text.trim(), gateway.pid().to_string());
    let mut open = negotiate(
        gateway.external,
        DOMAIN,
        PARTNER,
        client_config(ca.roots(), None),
    )
    .await;

    gateway.signal("TERM");
    let reply = read_to_end(&mut open.tls).await;
    assert!(
        reply.contains("<system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{reply}"
    );
    let status = gateway.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", gateway.log_text());
    assert!(
        !work.path("gateway.pid").exists(),
        "pid file removed on exit"
    );
    assert!(gateway.log_text().contains("event=stopped signal=SIGTERM"));
    // The listening port is released.
    assert!(std::net::TcpListener::bind(gateway.external).is_ok());
}

#[test]
fn bad_config_exits_64_naming_the_field_before_binding() {
    let work = Workdir::new();
    // Hold a port: if the daemon tried to bind before validating, it would
    // fail with "address in use" (exit 1) instead.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let text = config(&work, "", "", "")
        .replacen("port = 0", &format!("port = {port}"), 1)
        .replace("[admin]", "[limits]\nmax_depth = 0\n[admin]");
    let path = work.write("gateway.toml", &text);
    let output = Command::new(binary())
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("event=config_invalid"), "{stderr}");
    assert!(stderr.contains("field=limits.max_depth"), "{stderr}");
    assert!(!stderr.contains("bind"), "{stderr}");
    assert!(!work.path("gateway.pid").exists());
    drop(held);

    let output = Command::new(binary())
        .arg("--check-config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64));
    assert!(stderr.contains("`limits.max_depth`"), "{stderr}");
}

#[test]
fn check_config_reports_each_bad_field_with_exit_64() {
    let work = Workdir::new();
    let base = config(&work, "", "", "");
    let cases = [
        (
            base.replace("domains = [\"contoso.example\"]", "domains = []"),
            "`domains`",
        ),
        (
            base.replace("[admin]", "[limits]\nmax_stanza_bytes = 5\n[admin]"),
            "`limits.max_stanza_bytes`",
        ),
        (
            base.replace("tls = \"required\"", "tls = \"optional\""),
            "`partners[0].tls`",
        ),
        (
            base.replace("scope = \"global\"", "scope = \"everywhere\""),
            "`policies[0].scope`",
        ),
        (
            base.replace(
                "drain_secs = 5",
                "drain_secs = 5\n[[grants]]\npolicy = \"Missing\"\nall = true",
            ),
            "`grants[0].policy`",
        ),
        (
            base.replacen(
                "port = 0",
                "port = 0\ncert = \"/nonexistent.pem\"\nkey = \"/nonexistent.key\"",
                1,
            ),
            "`external.cert`",
        ),
        (
            base.replacen("address = \"127.0.0.1\"", "address = \"edge.example\"", 1),
            "`external.address`",
        ),
    ];
    for (text, field) in cases {
        let path = work.write("bad.toml", &text);
        let output = Command::new(binary())
            .arg("--check-config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{field}: {stderr}");
        assert!(stderr.contains(field), "{field} not named in:\n{stderr}");
    }
    let good = work.write("good.toml", &base);
    let output = Command::new(binary())
        .arg("--check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn listener_without_certificate_answers_then_refuses() {
    let work = Workdir::new();
    let path = work.write("gateway.toml", &config(&work, "", "", ""));
    let gateway = Gateway::start(&path);
    assert!(gateway.log_text().contains("has no certificate"));
    assert!(gateway.status()["listeners"][0]["tls"].is_null());
    let mut tcp = TcpStream::connect(gateway.external).await.unwrap();
    write_all(&mut tcp, &stream_header(DOMAIN, PARTNER)).await;
    let reply = read_to_end(&mut tcp).await;
    assert_eq!(header_attr(&reply, "from").as_deref(), Some(DOMAIN));
    assert!(
        reply.contains("<internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{reply}"
    );
    assert!(reply.contains("no certificate installed"), "{reply}");
    assert!(!reply.contains("starttls"), "{reply}");
}

#[tokio::test]
async fn connections_over_the_per_ip_limit_are_closed_and_counted() {
    let work = Workdir::new();
    let ca = TestCa::new("Test CA");
    let tls = work.install("external", &ca.leaf(&[DOMAIN]));
    let path = work.write(
        "gateway.toml",
        &config(&work, &format!("{tls}max_connections_per_ip = 1"), "", ""),
    );
    let gateway = Gateway::start(&path);
    let mut first = TcpStream::connect(gateway.external).await.unwrap();
    write_all(&mut first, &stream_header(DOMAIN, PARTNER)).await;
    read_until(&mut first, "</stream:features>").await; // admitted and being served
    let mut second = TcpStream::connect(gateway.external).await.unwrap();
    assert_eq!(read_to_end(&mut second).await, "", "closed without a byte");
    let (_, metrics) = gateway.get("/metrics");
    assert!(
        metrics.contains("xfed_gateway_connections_rejected_total{listener=\"external\",reason=\"max_connections_per_ip\"} 1"),
        "{metrics}"
    );
    assert_eq!(gateway.status()["listeners"][0]["connections_rejected"], 1);
}

#[tokio::test]
async fn silent_peer_gets_connection_timeout() {
    let work = Workdir::new();
    let ca = TestCa::new("Test CA");
    let tls = work.install("external", &ca.leaf(&[DOMAIN]));
    let path = work.write(
        "gateway.toml",
        &config(&work, &tls, "", "[limits]\nheader_timeout_secs = 1"),
    );
    let gateway = Gateway::start(&path);
    let mut tcp = TcpStream::connect(gateway.external).await.unwrap();
    let reply = read_to_end(&mut tcp).await;
    assert!(
        reply.contains("<connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{reply}"
    );
}

#[tokio::test]
async fn oversized_stanza_is_refused_with_stanza_too_big() {
    let (_work, _ca, _leaf, gateway) = start_with_certificate();
    let mut tcp = TcpStream::connect(gateway.external).await.unwrap();
    write_all(&mut tcp, &stream_header(DOMAIN, PARTNER)).await;
    read_until(&mut tcp, "</stream:features>").await;
    let big = format!("<message><body>{}</body></message>", "x".repeat(20_000));
    let _ = tokio::io::AsyncWriteExt::write_all(&mut tcp, big.as_bytes()).await;
    let reply = read_to_end(&mut tcp).await;
    assert!(
        reply.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{reply}"
    );
    assert!(
        reply.contains("<stanza-too-big xmlns='urn:xmpp:errors'/>"),
        "{reply}"
    );
}

#[tokio::test]
async fn internal_listener_requires_a_client_certificate_from_its_ca() {
    let work = Workdir::new();
    let ca = TestCa::new("Internal CA");
    let ca_file = work.write("internal-ca.pem", &ca.pem);
    let internal = format!(
        "{}client_ca = {:?}\n",
        work.install("internal", &ca.leaf(&[PARTNER])),
        ca_file.display().to_string()
    );
    let path = work.write("gateway.toml", &config(&work, "", &internal, ""));
    let gateway = Gateway::start(&path);
    assert_eq!(
        gateway.status()["listeners"][1]["tls"]["client_auth"],
        "required"
    );

    // Our front-end presents a serverAuth-only certificate from the internal CA.
    let front_end = ca.leaf(&[DOMAIN]);
    let n = negotiate(
        gateway.internal,
        PARTNER,
        DOMAIN,
        client_config(ca.roots(), Some(&front_end)),
    )
    .await;
    assert_eq!(
        header_attr(&n.secure_reply, "from").as_deref(),
        Some(PARTNER)
    );

    // Without a client certificate the handshake fails.
    let mut tcp = TcpStream::connect(gateway.internal).await.unwrap();
    write_all(&mut tcp, &stream_header(PARTNER, DOMAIN)).await;
    read_until(&mut tcp, "</stream:features>").await;
    write_all(
        &mut tcp,
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    )
    .await;
    read_until(&mut tcp, "<proceed").await;
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(PARTNER).unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config(ca.roots(), None));
    let result = async {
        let mut tls = connector.connect(name, tcp).await?;
        // TLS 1.3: the server's verdict on the client arrives after the client's Finished.
        tokio::io::AsyncWriteExt::write_all(&mut tls, stream_header(PARTNER, DOMAIN).as_bytes())
            .await?;
        let mut buf = [0u8; 64];
        let n = tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await?;
        Ok::<usize, std::io::Error>(n)
    }
    .await;
    assert!(
        !matches!(result, Ok(n) if n > 0),
        "served without a client certificate: {result:?}"
    );
}

#[tokio::test]
async fn direct_tls_is_accepted_on_the_same_port() {
    let (_work, ca, leaf, gateway) = start_with_certificate();
    let tcp = TcpStream::connect(gateway.external).await.unwrap();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(DOMAIN).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(client_config(ca.roots(), None))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], leaf.der);
    write_all(&mut tls, &stream_header(DOMAIN, PARTNER)).await;
    let reply = read_until(&mut tls, "<stream:features/>").await;
    assert!(
        !reply.contains("starttls"),
        "no STARTTLS inside TLS: {reply}"
    );
}

/// `common::config` without its `[[partners]]` and `[[policies]]`, naming
/// `policy.toml` (relative: next to the config) as the policy file.
fn main_config_with_policy_file(work: &Workdir, external_tls: &str) -> String {
    let full = config(work, external_tls, "", "policy_file = \"policy.toml\"");
    full[..full.find("[[partners]]").unwrap()].to_string()
}

/// A policy file in xfed's shape with these (domain, kind) partners.
fn policy_file(partners: &[(&str, &str)]) -> String {
    let mut text = String::from("# Managed by xfed.\n");
    for (domain, kind) in partners {
        text.push_str(&format!(
            "\n[[partners]]\ndomain = \"{domain}\"\nkind = \"{kind}\"\ntls = \"required\"\nauth = \"external\"\n"
        ));
    }
    text.push_str(
        "\n[[policies]]\nidentity = \"global\"\nscope = \"global\"\nenable_federation_access = true\n\
         \n[[policies]]\nidentity = \"site:hq\"\nscope = \"site\"\n\
         \n[[policies]]\nidentity = \"XmppUsers\"\nscope = \"user\"\nenable_federation_access = true\nenable_xmpp_access = true\n\
         \n[[grants]]\npolicy = \"XmppUsers\"\nusers = [\"alice@contoso.example\"]\n",
    );
    text
}

/// The condition element of the stream error the internal listener answers
/// a header to `to` with (it has no certificate, so every stream ends).
async fn internal_answer(gateway: &Gateway, to: &str) -> String {
    let mut tcp = TcpStream::connect(gateway.internal).await.unwrap();
    write_all(&mut tcp, &stream_header(to, DOMAIN)).await;
    read_to_end(&mut tcp).await
}

#[tokio::test]
async fn sighup_reloads_the_policy_file_and_keeps_established_streams() {
    let work = Workdir::new();
    let ca = TestCa::new("Test CA");
    let tls = work.install("external", &ca.leaf(&[DOMAIN]));
    let main = main_config_with_policy_file(&work, &tls);
    work.write("gateway.toml", &main);
    let first = policy_file(&[(PARTNER, "federated")]);
    work.write("policy.toml", &first);
    let mut gateway = Gateway::start(&work.path("gateway.toml"));

    let status = gateway.status();
    assert_eq!(
        status["policy_file"],
        work.path("policy.toml").display().to_string()
    );
    assert_eq!(status["policy_sha256"], sha256_hex(first.as_bytes()));
    assert_eq!(status["config_sha256"], sha256_hex(main.as_bytes()));
    assert_eq!(status["partners"], 1);
    assert_eq!(status["policies"], 3);
    assert_eq!(status["grants"], 1);
    assert_eq!(
        status["partners_by_kind"],
        serde_json::json!({"federated": 1, "trusted": 0, "public_verified": 0, "public_unverified": 0})
    );
    let (_, metrics) = gateway.get("/metrics");
    assert!(
        metrics.contains(&format!(
            "policy_sha256=\"{}\"",
            sha256_hex(first.as_bytes())
        )),
        "{metrics}"
    );
    // Partners decide what the internal listener serves.
    let before = internal_answer(&gateway, "litware.example").await;
    assert!(before.contains("<host-unknown "), "{before}");

    let mut established = negotiate(
        gateway.external,
        DOMAIN,
        PARTNER,
        client_config(ca.roots(), None),
    )
    .await;

    // A broken policy file is rejected, naming the field in it ...
    work.write(
        "policy.toml",
        &policy_file(&[(PARTNER, "federated"), ("litware.example", "close")]),
    );
    gateway.signal("HUP");
    let rejected = gateway.wait_for(|l| l.contains("event=reload_rejected"));
    assert!(
        rejected.contains("field=policy_file:partners[1].kind"),
        "{rejected}"
    );
    gateway.wait_for(|l| l.contains("event=reload_kept_previous"));
    // ... and so is one that is not TOML; the old one stays in effect.
    work.write("policy.toml", "[[partners]\n");
    gateway.signal("HUP");
    let rejected = gateway.wait_for(|l| l.contains("event=reload_rejected"));
    assert!(rejected.contains("field=policy_file "), "{rejected}");
    gateway.wait_for(|l| l.contains("event=reload_kept_previous"));
    let status = gateway.status();
    assert_eq!(status["policy_sha256"], sha256_hex(first.as_bytes()));
    assert_eq!(status["partners"], 1);

    // A good new policy file is applied.
    let second = policy_file(&[
        (PARTNER, "federated"),
        ("litware.example", "trusted"),
        ("chat.tailspin.example", "public_verified"),
    ]);
    work.write("policy.toml", &second);
    gateway.signal("HUP");
    let reloaded = gateway.wait_for(|l| l.contains("event=reloaded"));
    assert!(reloaded.contains("partners=3"), "{reloaded}");
    let status = gateway.status();
    assert_eq!(status["policy_sha256"], sha256_hex(second.as_bytes()));
    assert_eq!(
        status["config_sha256"],
        sha256_hex(main.as_bytes()),
        "main file unchanged"
    );
    assert_eq!(status["partners"], 3);
    assert_eq!(status["partners_by_kind"]["trusted"], 1);
    assert_eq!(status["partners_by_kind"]["public_verified"], 1);
    assert!(status["reloaded_at"].is_string());
    let after = internal_answer(&gateway, "litware.example").await;
    assert!(!after.contains("<host-unknown "), "{after}");
    assert_eq!(
        header_attr(&after, "from").as_deref(),
        Some("litware.example")
    );

    // The stream opened before the reloads is still served.
    write_all(&mut established.tls, "</stream:stream>").await;
    assert_eq!(read_to_end(&mut established.tls).await, "</stream:stream>");
    let (_, metrics) = gateway.get("/metrics");
    assert!(
        metrics.contains("xfed_gateway_reloads_total{result=\"failed\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("xfed_gateway_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );
}

#[test]
fn policy_file_problems_exit_64() {
    let work = Workdir::new();
    let main = main_config_with_policy_file(&work, "");
    let path = work.write("gateway.toml", &main);
    let good = policy_file(&[(PARTNER, "public_unverified")]);
    let cases = [
        (None, main.clone(), "`policy_file`"),
        (
            Some(good.clone()),
            format!("{main}[[partners]]\ndomain = \"{PARTNER}\"\n"),
            "`partners`: must be in `policy_file` when it is set",
        ),
        (
            Some(good.replace("public_unverified", "public")),
            main.clone(),
            "`policy_file:partners[0].kind`",
        ),
        (
            Some(good.replace("scope = \"site\"", "scope = \"user\"")),
            main.clone(),
            "`policy_file:policies[1].scope`",
        ),
    ];
    for (policy, main, expected) in cases {
        work.write("gateway.toml", &main);
        match &policy {
            Some(text) => {
                work.write("policy.toml", text);
            }
            None => {
                let _ = std::fs::remove_file(work.path("policy.toml"));
            }
        }
        let output = Command::new(binary())
            .arg("--check-config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{expected}: {stderr}");
        assert!(stderr.contains(expected), "{expected} not in:\n{stderr}");
    }

    // At start: exit 64 with one log line naming the field, nothing bound.
    work.write("gateway.toml", &main);
    work.write("policy.toml", &good.replace("public_unverified", "public"));
    let output = Command::new(binary())
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("event=config_invalid")
            && stderr.contains("field=policy_file:partners[0].kind"),
        "{stderr}"
    );
    assert!(!work.path("gateway.pid").exists());

    work.write("policy.toml", &good);
    let output = Command::new(binary())
        .arg("--check-config")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("1 partner(s), 3 policy(ies), 1 grant(s), 0 site(s) from "),
        "{stdout}"
    );
}

/// The bytes a refused non-partner reads after our header.
fn not_partner(from: &str) -> String {
    format!(
        "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>`{from}` is not a \
         federated partner of `{DOMAIN}`</text></stream:error></stream:stream>"
    )
}

/// A raw TCP client's whole answer to a header from `from` (all the way to EOF).
async fn refused_answer(gateway: &Gateway, from: &str) -> String {
    let mut tcp = TcpStream::connect(gateway.external).await.unwrap();
    write_all(&mut tcp, &stream_header(DOMAIN, from)).await;
    read_to_end(&mut tcp).await
}

const REFUSED_NOT_PARTNER: &str =
    "xfed_gateway_streams_refused_total{listener=\"external\",reason=\"not_partner\"}";

#[tokio::test]
async fn only_partners_may_open_external_streams_and_a_reload_applies_a_new_list() {
    let work = Workdir::new();
    let ca = TestCa::new("Test CA");
    let tls = work.install("external", &ca.leaf(&[DOMAIN]));
    work.write("gateway.toml", &main_config_with_policy_file(&work, &tls));
    let sites = "\n[[sites]]\nname = \"hq\"\nusers = [\"alice@contoso.example\", \"bob@contoso.example\"]\n";
    let both = policy_file(&[(PARTNER, "federated"), ("fabrikam.example", "trusted")]);
    work.write("policy.toml", &format!("{both}{sites}"));
    let mut gateway = Gateway::start(&work.path("gateway.toml"));
    let client = client_config(ca.roots(), None);

    // A non-partner: our header, then policy-violation, then the close.
    let reply = refused_answer(&gateway, "mallory.example").await;
    assert!(reply.contains("<policy-violation"), "{reply}");
    assert_eq!(header_attr(&reply, "from").as_deref(), Some(DOMAIN));
    assert!(reply.ends_with(&not_partner("mallory.example")), "{reply}");
    assert!(!reply.contains("starttls"), "{reply}");
    let refused = gateway.wait_for(|l| l.contains("event=stream_refused"));
    assert!(
        refused.contains("level=info")
            && refused.contains("listener=external")
            && refused.contains("from=mallory.example to=contoso.example reason=not_partner"),
        "{refused}"
    );
    assert_eq!(gateway.metric(REFUSED_NOT_PARTNER), 1);
    assert_eq!(
        gateway.metric(
            "xfed_gateway_stream_errors_total{listener=\"external\",condition=\"policy-violation\"}"
        ),
        1
    );

    // A partner, written in another case and with a trailing dot, is offered STARTTLS.
    let mut tcp = TcpStream::connect(gateway.external).await.unwrap();
    write_all(&mut tcp, &stream_header(DOMAIN, "Fabrikam.Example.")).await;
    let reply = read_until(&mut tcp, "</stream:features>").await;
    assert!(reply.contains("<starttls "), "{reply}");
    assert_eq!(
        header_attr(&reply, "to").as_deref(),
        Some("fabrikam.example")
    );
    drop(tcp);

    // No `from` at all claims no domain to refuse: STARTTLS, TLS, and then
    // not-authorized for any stanza, since nothing is authenticated yet.
    let without_from = stream_header(DOMAIN, PARTNER).replace(&format!(" from='{PARTNER}'"), "");
    let mut tcp = TcpStream::connect(gateway.external).await.unwrap();
    write_all(&mut tcp, &without_from).await;
    let reply = read_until(&mut tcp, "</stream:features>").await;
    assert!(reply.contains("<starttls "), "{reply}");
    assert_eq!(header_attr(&reply, "to"), None, "{reply}");
    write_all(
        &mut tcp,
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    )
    .await;
    read_until(
        &mut tcp,
        "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    )
    .await;
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(DOMAIN).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(client.clone())
        .connect(name, tcp)
        .await
        .unwrap();
    write_all(&mut tls, &without_from).await;
    read_until(&mut tls, "<stream:features/>").await;
    write_all(
        &mut tls,
        "<message to='alice@contoso.example'><body>hi</body></message>",
    )
    .await;
    let reply = read_to_end(&mut tls).await;
    assert!(reply.contains("<not-authorized "), "{reply}");
    assert_eq!(gateway.metric(REFUSED_NOT_PARTNER), 1, "not a refusal");

    // /status counts the sites; /access resolves a user over HTTP.
    let status = gateway.status();
    assert_eq!(status["sites"], 1);
    assert_eq!(status["site_users"], 2);
    assert_eq!(status["granted_users"], 1);
    let (code, body) = gateway.get("/access?user=alice%40contoso.example");
    assert_eq!(code, 200, "{body}");
    let access: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(access["policy"], "XmppUsers");
    assert_eq!(access["source"], "user_grant");
    assert_eq!(access["xmpp_federation_allowed"], true);
    let (code, body) = gateway.get("/access?user=alice%40contoso.example&partner=fabrikam.example");
    assert_eq!(code, 200, "{body}");
    let access: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        access["partner"],
        serde_json::json!({"domain": "fabrikam.example", "kind": "trusted", "allowed": true,
                           "decided_by": "enable_federation_access"})
    );
    assert_eq!(
        access["partner_kinds"]["public_verified"]["decided_by"],
        "enable_public_cloud_access"
    );
    let (_, body) = gateway.get("/access?user=bob%40contoso.example");
    let access: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(access["policy"], "site:hq");
    assert_eq!(access["xmpp_federation_allowed"], false);
    assert_eq!(gateway.get("/access?user=bob%40fabrikam.example").0, 404);
    assert_eq!(gateway.get("/access").0, 400);

    // Two established streams, one from each partner.
    let mut kept = negotiate(gateway.external, DOMAIN, PARTNER, client.clone()).await;
    let mut dropped = negotiate(gateway.external, DOMAIN, "fabrikam.example", client.clone()).await;

    // Reload without fabrikam.example.
    let only_partner = policy_file(&[(PARTNER, "federated")]);
    work.write("policy.toml", &only_partner);
    gateway.signal("HUP");
    // The open stream reacts as soon as the new generation is current,
    // so its log line may come before or after `reloaded`.
    let (mut reloaded, mut revoked) = (false, String::new());
    gateway.wait_for(|l| {
        reloaded |= l.contains("event=reloaded");
        if l.contains("event=stream_revoked") {
            revoked = l.to_string();
        }
        reloaded && !revoked.is_empty()
    });

    // Its open stream is closed with the refusal ...
    let reply = read_to_end(&mut dropped.tls).await;
    assert_eq!(reply, not_partner("fabrikam.example"));
    assert!(
        revoked.contains("from=fabrikam.example to=contoso.example reason=not_partner"),
        "{revoked}"
    );
    // ... the other partner's stream is still served ...
    write_all(&mut kept.tls, "</stream:stream>").await;
    assert_eq!(read_to_end(&mut kept.tls).await, "</stream:stream>");
    // ... and a new stream from the removed partner is refused.
    let reply = refused_answer(&gateway, "fabrikam.example").await;
    assert!(reply.ends_with(&not_partner("fabrikam.example")), "{reply}");
    gateway.wait_for(|l| l.contains("event=stream_refused") && l.contains("from=fabrikam.example"));
    assert_eq!(gateway.metric(REFUSED_NOT_PARTNER), 3);
    // The sites went with the old policy file.
    assert_eq!(gateway.status()["sites"], 0);

    // An empty partner list refuses everyone, the remaining partner too.
    work.write("policy.toml", "# no partners yet\n");
    gateway.signal("HUP");
    gateway.wait_for(|l| l.contains("event=reloaded"));
    let reply = refused_answer(&gateway, PARTNER).await;
    assert!(reply.ends_with(&not_partner(PARTNER)), "{reply}");
}

/// 64 idle connections on the admin port (more than the old budget of
/// 32, each held for the request deadline) must not starve `/healthz`:
/// the oldest idle one is evicted for each newcomer.
#[test]
fn healthz_answers_promptly_with_64_idle_admin_connections() {
    let (_work, _ca, _leaf, gateway) = start_with_certificate();
    let mut idle = Vec::new();
    let mut slowest = std::time::Duration::ZERO;
    for round in 0..4 {
        // 64 more idle connections each round, the older ones kept open.
        for _ in 0..64 {
            idle.push(std::net::TcpStream::connect(gateway.admin).unwrap());
        }
        let started = std::time::Instant::now();
        let (code, body) = http_get(gateway.admin, "/healthz");
        let took = started.elapsed();
        assert_eq!((code, body.as_str()), (200, "ok\n"), "round {round}");
        slowest = slowest.max(took);
    }
    eprintln!(
        "/healthz with {} idle admin connections opened: slowest of 4 answers {slowest:?}",
        idle.len()
    );
    // Measured in milliseconds; the bound is loose so a busy machine does
    // not flake it (the old budget failed outright for seconds).
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "slowest {slowest:?}"
    );
    assert!(
        gateway.metric(
            "xfed_gateway_connections_rejected_total{listener=\"admin\",reason=\"idle_evicted\"}"
        ) > 0
    );
    // The S2S listeners are untouched by the admin budget.
    assert_eq!(
        gateway.metric("xfed_gateway_connections_rejected_total{listener=\"external\",reason=\"max_connections\"}"
        ),
        0
    );
}

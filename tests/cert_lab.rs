//! Certificates against the real lab, through the real `xfed` binary:
//! an internal CA end to end, the CSR flow with `cert import`, ACME
//! against pebble with PowerDNS for DNS-01, renewal inside the window.
//! The results are checked with `openssl`, which we did not write, and
//! every output is searched for private key material.
//!
//! Run inside the lab: `tests/lab/lab exec -- cargo test --test cert_lab`.

mod common;

use std::path::{Path, PathBuf};

use common::lab::{Host, Lab, Role};
use common::pki::openssl;
use common::xfed::{Run, TestSpec, lab_spec_with, path_str, reset, xfed};

const ACME_ISSUER: &str = "    issuer:
      kind: acme
      directory: https://203.0.113.54:14000/dir
      ca_bundle: \"{{ lab }}/pebble/ca.pem\"
      contact: [\"mailto:ops@{{ domain }}\"]
";

/// Every xfed run of a test, so the outputs can be searched for keys.
#[derive(Default)]
struct Outputs(Vec<String>);

impl Outputs {
    fn xfed(&mut self, lab: &Lab, args: &[&str]) -> Run {
        let r = xfed(lab, args);
        self.0.push(format!("{}\n{}", r.stdout, r.stderr));
        r
    }

    fn apply_ok(&mut self, lab: &Lab, spec: &Path) -> Run {
        let r = self.xfed(lab, &["apply", "--auto-approve", path_str(spec)]);
        assert_eq!(r.code, 0, "apply failed: {r:?}");
        r
    }

    fn assert_in_sync(&mut self, lab: &Lab, spec: &Path) {
        let r = self.xfed(lab, &["plan", "--detailed-exitcode", path_str(spec)]);
        assert_eq!(r.code, 0, "expected no changes: {r:?}");
    }

    /// No output holds any line of any private key on the edges, nor of
    /// the CA key; neither does any file beside the spec.
    fn assert_no_key_material(&self, lab: &Lab, extra_keys: &[String], spec_dir: &Path) {
        let mut keys: Vec<String> = extra_keys.to_vec();
        for h in edges(lab) {
            keys.push(lab.ssh_ok(
                h,
                "cat /etc/xfed/tls/*.key /etc/xfed/tls/*.pending.key 2>/dev/null; true",
            ));
        }
        let lines: Vec<&str> = keys
            .iter()
            .flat_map(|k| k.lines())
            .filter(|l| l.len() >= 40 && !l.starts_with("-----"))
            .collect();
        assert!(!lines.is_empty(), "no key found to search for");
        let mut texts = self.0.clone();
        for e in std::fs::read_dir(spec_dir).expect("spec dir").flatten() {
            if let Ok(t) = std::fs::read_to_string(e.path())
                && !e.path().ends_with("ca.key")
            {
                texts.push(t);
            }
        }
        // A key's PEM also encodes its public half, which CSRs and
        // certificates carry in the open: a key line may stand in them by
        // the chance of base64 alignment. Only what is outside them counts.
        let texts: Vec<String> = texts.iter().map(|t| without_public_pem(t)).collect();
        for l in lines {
            for t in &texts {
                assert!(!t.contains(l), "private key material in an output:\n{t}");
            }
        }
    }
}

/// `text` without its certificate and certificate-request PEM blocks.
fn without_public_pem(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE") {
            inside = true;
        }
        if !inside {
            out.push_str(line);
            out.push('\n');
        }
        if line.starts_with("-----END CERTIFICATE") {
            inside = false;
        }
    }
    out
}

fn edges(lab: &Lab) -> Vec<&Host> {
    lab.hosts_with(Role::Edge).collect()
}

/// playbooks/lab.yaml with the certificate's issuer replaced.
fn spec(lab: &Lab, issuer: impl Fn(&Path) -> String, extra: &str) -> TestSpec {
    lab_spec_with(lab, |text, dir| {
        assert!(text.contains(ACME_ISSUER), "playbooks/lab.yaml changed");
        text.replace(ACME_ISSUER, &(issuer(dir) + extra))
    })
}

/// A test CA made with openssl: (cert path, key path).
fn make_ca(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("ca.pem");
    let key = dir.join("ca.key");
    common::pki::make_ca(&cert, &key, "xfed test CA");
    (cert, key)
}

/// The certificate's issuer: a test CA made beside the spec.
fn internal_ca_issuer(dir: &Path) -> String {
    make_ca(dir);
    format!(
        "    issuer:\n      kind: internal_ca\n      ca_cert: {}/ca.pem\n      ca_key: \"{{{{ file('{}/ca.key') }}}}\"\n",
        dir.display(),
        dir.display()
    )
}

fn fetch(lab: &Lab, h: &Host, remote: &str, local: &Path) {
    std::fs::write(local, lab.ssh_ok(h, &format!("cat {remote}"))).expect("write");
}

const CERT: &str = "/etc/xfed/tls/external.crt";
const ADDR: &str = "certificate:edge-hq-external";

#[test]
fn internal_ca_issues_installs_verifies_and_renews_inside_the_window() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let mut out = Outputs::default();
    let s = spec(lab, internal_ca_issuer, "    renew_before: 30d\n");
    let (ca, ca_key) = (s.dir.path().join("ca.pem"), s.dir.path().join("ca.key"));

    let plan = out.xfed(lab, &["plan", path_str(&s.path)]);
    assert!(
        plan.stdout
            .contains(&format!("+ edge/edge-hq/edge1.contoso.example/{ADDR}")),
        "{plan:?}"
    );
    out.apply_ok(lab, &s.path);

    for h in edges(lab) {
        let cn = "xmpp1"; // CN: the pool's first external FQDN, on every server
        let local = s.dir.path().join(format!("{}.crt", h.name));
        fetch(lab, h, CERT, &local);
        let text = openssl(&["x509", "-in", path_str(&local), "-noout", "-text"]);
        assert!(
            text.contains(&format!(
                "Subject: CN = {cn}.contoso.example, O = Contoso, OU = Unified Communications, L = Redmond, ST = Washington, C = US"
            )),
            "{text}"
        );
        for name in [
            "DNS:contoso.example",
            "DNS:sip.contoso.example",
            "DNS:xmpp1.contoso.example",
            "DNS:xmpp2.contoso.example",
        ] {
            assert!(text.contains(name), "{name}: {text}");
        }
        assert!(
            text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
            "{text}"
        );
        let verify = openssl(&["verify", "-CAfile", path_str(&ca), path_str(&local)]);
        assert!(verify.trim_end().ends_with(": OK"), "{verify}");
        // The key: readable by the gateway's group (it runs unprivileged),
        // by nobody else.
        assert_eq!(
            lab.ssh_ok(h, "stat -c '%a %U %G' /etc/xfed/tls/external.key")
                .trim(),
            "640 root xfed-gateway"
        );
        assert_eq!(lab.ssh_ok(h, &format!("stat -c %a {CERT}")).trim(), "644");
        let toml = lab.ssh_ok(h, "cat /etc/xfed/gateway.toml");
        assert!(toml.contains(&format!("cert = \"{CERT}\"")), "{toml}");
        // The gateway serves it: STARTTLS from outside shows the names.
        let ext = h.external.as_deref().expect("external address");
        let served = lab
            .command("sh")
            .args([
                "-c",
                "printf '' | timeout 5 openssl s_client -connect \"$1:5269\" -starttls xmpp-server -xmpphost contoso.example 2>/dev/null | openssl x509 -noout -subject",
                "sh",
                ext,
            ])
            .output()
            .expect("s_client");
        let served = String::from_utf8_lossy(&served.stdout);
        assert!(
            served.contains(&format!("CN = {cn}.contoso.example")),
            "{}: {served}",
            h.name
        );
    }
    out.assert_in_sync(lab, &s.path);

    // Expiry inside the window: edge1's certificate is re-signed (same key,
    // names and subject) to expire in 10 days, inside `renew_before: 30d`.
    let e1 = lab.host("edge1");
    let csr = s.dir.path().join("short.csr");
    std::fs::write(
        &csr,
        lab.ssh_ok(
            e1,
            "openssl x509 -x509toreq -in /etc/xfed/tls/external.crt -signkey /etc/xfed/tls/external.key -copy_extensions copyall 2>/dev/null || openssl x509 -x509toreq -in /etc/xfed/tls/external.crt -signkey /etc/xfed/tls/external.key",
        ),
    )
    .expect("csr");
    let short = s.dir.path().join("short.crt");
    openssl(&[
        "x509",
        "-req",
        "-in",
        path_str(&csr),
        "-CA",
        path_str(&ca),
        "-CAkey",
        path_str(&ca_key),
        "-days",
        "10",
        "-set_serial",
        "4242",
        "-copy_extensions",
        "copy",
        "-out",
        path_str(&short),
    ]);
    let mut chain = std::fs::read_to_string(&short).expect("short");
    chain.push_str(&std::fs::read_to_string(&ca).expect("ca"));
    let quoted = chain.replace('\'', "");
    lab.ssh_ok(e1, &format!("printf '%s' '{quoted}' > {CERT}"));
    let plan = out.xfed(lab, &["plan", "--detailed-exitcode", path_str(&s.path)]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout
            .contains(&format!("-/+ edge/edge-hq/edge1.contoso.example/{ADDR}")),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains("inside the renewal window"),
        "{plan:?}"
    );
    // Nothing else: the certificate and the gateway's reload on edge1.
    assert!(
        plan.stdout
            .contains("Plan: 1 to add, 1 to change, 1 to destroy."),
        "{plan:?}"
    );
    assert!(plan.stdout.contains("(reload)"), "{plan:?}");
    out.apply_ok(lab, &s.path);
    fetch(lab, e1, CERT, &short);
    let serial = openssl(&["x509", "-in", path_str(&short), "-noout", "-serial"]);
    assert!(!serial.contains("1092"), "renewed: {serial}"); // 4242 = 0x1092
    let enddate = openssl(&[
        "x509",
        "-in",
        path_str(&short),
        "-noout",
        "-checkend",
        "8640000",
    ]);
    assert!(enddate.contains("will not expire"), "{enddate}");
    out.assert_in_sync(lab, &s.path);

    let list = out.xfed(lab, &["cert", "list", path_str(&s.path)]);
    assert_eq!(list.code, 0, "{list:?}");
    assert!(
        list.stdout
            .contains("edge1.contoso.example edge-hq-external: valid"),
        "{list:?}"
    );
    assert!(list.stdout.contains("days left"), "{list:?}");

    // Export: refused while the key is not marked exportable, nothing made.
    let away = tempfile::tempdir().expect("tempdir");
    let bundle = away.path().join("edge1.pem");
    let export = |out: &mut Outputs, spec: &Path| {
        out.xfed(
            lab,
            &[
                "cert",
                "export",
                path_str(spec),
                "--name",
                "edge-hq-external",
                "--host",
                "edge1.contoso.example",
                "--out",
                path_str(&bundle),
            ],
        )
    };
    let refused = export(&mut out, &s.path);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("is not exportable"), "{refused:?}");
    assert!(!bundle.exists());
    // Marked exportable (no new certificate for that), it is copied into a
    // new 0600 file: the host's key and chain, and the key nowhere else.
    let text = std::fs::read_to_string(&s.path).expect("spec");
    std::fs::write(
        &s.path,
        text.replace(
            "    friendly_name:",
            "    exportable: true\n    friendly_name:",
        ),
    )
    .expect("spec");
    out.assert_in_sync(lab, &s.path);
    let exported = export(&mut out, &s.path);
    assert_eq!(exported.code, 0, "{exported:?}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&bundle)
        .expect("bundle")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let host_pub = lab.ssh_ok(e1, "openssl pkey -in /etc/xfed/tls/external.key -pubout");
    assert_eq!(
        openssl(&["pkey", "-in", path_str(&bundle), "-pubout"]),
        host_pub
    );
    assert_eq!(
        openssl(&["x509", "-in", path_str(&bundle), "-noout", "-pubkey"]),
        host_pub,
        "the chain follows the key"
    );
    let again = export(&mut out, &s.path);
    assert!(
        again.stderr.contains("exists; an export never overwrites"),
        "{again:?}"
    );

    let ca_key_text = std::fs::read_to_string(&ca_key).expect("ca key");
    out.assert_no_key_material(lab, &[ca_key_text], s.dir.path());
}

#[test]
fn csr_waits_for_the_ca_then_import_installs_the_right_certificate_only() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let mut out = Outputs::default();
    let s = spec(
        lab,
        |dir| {
            make_ca(dir);
            format!(
                "    issuer:\n      kind: csr\n      request_path: {}/edge-ext.csr\n",
                dir.display()
            )
        },
        "",
    );
    let dir = s.dir.path();
    let applied = out.apply_ok(lab, &s.path);
    assert!(
        applied.stderr.contains("waits for the CA") || applied.stdout.contains("waits for the CA"),
        "{applied:?}"
    );
    out.assert_in_sync(lab, &s.path);

    let req = dir.join("edge-ext.edge1.contoso.example.csr");
    let text = openssl(&["req", "-in", path_str(&req), "-noout", "-text", "-verify"]);
    assert!(
        text.contains("Subject: CN = xmpp1.contoso.example, O = Contoso"),
        "{text}"
    );
    for name in [
        "DNS:contoso.example",
        "DNS:sip.contoso.example",
        "DNS:xmpp2.contoso.example",
    ] {
        assert!(text.contains(name), "{name}: {text}");
    }
    let shown = out.xfed(lab, &["cert", "show-request", path_str(&s.path)]);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(
        shown
            .stdout
            .contains(&std::fs::read_to_string(&req).expect("req")),
        "{shown:?}"
    );
    let list = out.xfed(lab, &["cert", "list", path_str(&s.path)]);
    assert!(list.stdout.contains("waiting for the CA"), "{list:?}");

    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let sign = |csr: &Path, out_path: &Path| {
        openssl(&[
            "x509",
            "-req",
            "-in",
            path_str(csr),
            "-CA",
            path_str(&ca),
            "-CAkey",
            path_str(&ca_key),
            "-days",
            "90",
            "-copy_extensions",
            "copy",
            "-set_serial",
            "99",
            "-out",
            path_str(out_path),
        ]);
    };
    // A certificate for another key is refused, and nothing changes.
    let other_csr = dir.join("other.csr");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        path_str(&dir.join("other.key")),
        "-out",
        path_str(&other_csr),
        "-subj",
        "/CN=xmpp1.contoso.example",
        "-addext",
        "subjectAltName=DNS:contoso.example,DNS:sip.contoso.example,DNS:xmpp1.contoso.example,DNS:xmpp2.contoso.example",
    ]);
    let wrong = dir.join("wrong.crt");
    sign(&other_csr, &wrong);
    let refused = out.xfed(
        lab,
        &[
            "cert",
            "import",
            path_str(&s.path),
            "--cert",
            path_str(&wrong),
        ],
    );
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("not for any pending request"),
        "{refused:?}"
    );

    let good = dir.join("edge1.crt");
    sign(&req, &good);
    let imported = out.xfed(
        lab,
        &[
            "cert",
            "import",
            path_str(&s.path),
            "--cert",
            path_str(&good),
            "--chain",
            path_str(&ca),
        ],
    );
    assert_eq!(imported.code, 0, "{imported:?}");
    assert!(
        imported
            .stdout
            .contains("edge1.contoso.example/certificate:edge-hq-external"),
        "{imported:?}"
    );
    let e1 = lab.host("edge1");
    let installed = dir.join("installed.crt");
    fetch(lab, e1, CERT, &installed);
    let verify = openssl(&["verify", "-CAfile", path_str(&ca), path_str(&installed)]);
    assert!(verify.trim_end().ends_with(": OK"), "{verify}");
    assert_eq!(
        openssl(&[
            "x509",
            "-in",
            path_str(&installed),
            "-noout",
            "-fingerprint"
        ]),
        openssl(&["x509", "-in", path_str(&good), "-noout", "-fingerprint"])
    );
    // Key and certificate match on the host, compared there.
    let m = lab.ssh_ok(
        e1,
        "[ \"$(openssl x509 -in /etc/xfed/tls/external.crt -noout -pubkey)\" = \"$(openssl pkey -in /etc/xfed/tls/external.key -pubout)\" ] && echo match",
    );
    assert_eq!(m.trim(), "match");
    let list = out.xfed(lab, &["cert", "list", path_str(&s.path)]);
    assert!(
        list.stdout
            .contains("edge1.contoso.example edge-hq-external: valid"),
        "{list:?}"
    );
    assert!(
        list.stdout
            .contains("edge2.contoso.example edge-hq-external: waiting for the CA"),
        "{list:?}"
    );
    out.assert_in_sync(lab, &s.path);
    out.assert_no_key_material(lab, &[], dir);
}

#[test]
fn acme_against_pebble_with_dns01_through_powerdns() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let mut out = Outputs::default();
    let s = spec(lab, |_| ACME_ISSUER.to_string(), "");
    out.apply_ok(lab, &s.path);
    for h in edges(lab) {
        let local = s.dir.path().join(format!("{}.crt", h.name));
        fetch(lab, h, CERT, &local);
        let text = openssl(&["x509", "-in", path_str(&local), "-noout", "-text"]);
        assert!(
            text.contains("Issuer: CN = Pebble Intermediate CA"),
            "{text}"
        );
        assert!(text.contains("DNS:sip.contoso.example"), "{text}");
        assert!(text.contains("DNS:xmpp2.contoso.example"), "{text}");
    }
    // The challenge records are gone again.
    let dig = lab
        .command("dig")
        .args([
            "+short",
            "@198.51.100.53",
            "TXT",
            "_acme-challenge.contoso.example",
        ])
        .output()
        .expect("dig");
    assert_eq!(String::from_utf8_lossy(&dig.stdout).trim(), "");
    out.assert_in_sync(lab, &s.path);
    out.assert_no_key_material(lab, &[], s.dir.path());
}

/// What a server presents on its external listener, as an outside server
/// sees it (`openssl s_client -starttls xmpp-server`): the certificate's
/// serial and its public key.
fn served(lab: &Lab, h: &Host) -> (String, String) {
    let ext = h
        .external
        .as_deref()
        .expect("an edge has an external address");
    let shown = lab
        .command("sh")
        .args([
            "-c",
            "openssl s_client -connect \"$1:5269\" -starttls xmpp-server -xmpphost contoso.example </dev/null 2>/dev/null | openssl x509 -noout -serial -pubkey",
            "sh",
            ext,
        ])
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&shown.stdout).to_string();
    let serial = text
        .lines()
        .find_map(|l| l.strip_prefix("serial="))
        .unwrap_or_else(|| panic!("no certificate served by {}: {text}", h.name))
        .to_string();
    let key = text
        .split_once("-----BEGIN PUBLIC KEY-----")
        .map(|(_, k)| k.to_string())
        .unwrap_or_default();
    (serial, key)
}

/// `--replace certificate:NAME` after a suspected key compromise: nothing
/// differs, yet every server of the pool gets a new key and certificate,
/// one server at a time behind its health gate, and the plan says why.
#[test]
fn a_requested_certificate_replacement_gives_every_server_a_new_key_one_at_a_time() {
    let Some(lab) = Lab::get() else { return };
    let _serial = lab.lock();
    reset(lab);
    let mut out = Outputs::default();
    let s = spec(lab, internal_ca_issuer, "");
    out.apply_ok(lab, &s.path);
    out.assert_in_sync(lab, &s.path);
    let before: Vec<(String, String)> = edges(lab).iter().map(|h| served(lab, h)).collect();

    let plan = out.xfed(
        lab,
        &[
            "plan",
            "--replace",
            "certificate:edge-hq-external",
            path_str(&s.path),
        ],
    );
    assert!(
        plan.stdout.contains(
            "will be replaced: replacement requested (--replace certificate:edge-hq-external)"
        ),
        "{plan:?}"
    );
    let bad = out.xfed(
        lab,
        &[
            "plan",
            "--replace",
            "certificate:edge-hq-externl",
            path_str(&s.path),
        ],
    );
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("names nothing in the spec"), "{bad:?}");

    let r = out.xfed(
        lab,
        &[
            "apply",
            "--auto-approve",
            "--replace",
            "certificate:edge-hq-external",
            path_str(&s.path),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    // One server at a time, each through its health gate.
    let gate = |host: &str| {
        r.stderr
            .lines()
            .position(|l| l.contains(host) && l.contains("health gate passed"))
            .unwrap_or_else(|| panic!("no health gate for {host}: {r:?}"))
    };
    let stage2 = r
        .stderr
        .lines()
        .position(|l| l.contains("stage edge-hq 2/2"))
        .expect("edge-hq's second batch");
    assert!(gate("edge1.contoso.example") < stage2);
    assert!(gate("edge2.contoso.example") > stage2);

    let after: Vec<(String, String)> = edges(lab).iter().map(|h| served(lab, h)).collect();
    for ((b, a), h) in before.iter().zip(&after).zip(edges(lab)) {
        assert_ne!(b.0, a.0, "{}: a new serial", h.name);
        assert_ne!(b.1, a.1, "{}: a new key", h.name);
    }
    out.assert_in_sync(lab, &s.path);
    out.assert_no_key_material(lab, &[], s.dir.path());
}

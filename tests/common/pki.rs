//! Test CAs and certificates made with `openssl`, a tool we did not write.

use std::path::Path;
use std::process::Command;

use super::xfed::path_str;

/// Runs `openssl ARGS…`, which must succeed; its stdout.
pub fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed P-256 CA named `cn`, valid 30 days, at `cert` and `key`.
pub fn make_ca(cert: &Path, key: &Path, cn: &str) {
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        path_str(key),
        "-out",
        path_str(cert),
        "-days",
        "30",
        "-subj",
        &format!("/CN={cn}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
}

/// A server certificate for `domain` (SAN, serverAuth and clientAuth, as
/// XMPP servers use them both ways) signed by the CA at `ca_cert`/`ca_key`,
/// written to `dir/DOMAIN.{crt,key}`; returns their PEM texts.
pub fn make_leaf(dir: &Path, ca_cert: &Path, ca_key: &Path, domain: &str) -> (String, String) {
    let at = |ext: &str| dir.join(format!("{domain}.{ext}"));
    let (crt, key, csr, ext) = (at("crt"), at("key"), at("csr"), at("ext"));
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        path_str(&key),
        "-out",
        path_str(&csr),
        "-subj",
        &format!("/CN={domain}"),
    ]);
    std::fs::write(
        &ext,
        format!("subjectAltName=DNS:{domain}\nextendedKeyUsage=serverAuth,clientAuth\n"),
    )
    .expect("write extensions");
    openssl(&[
        "x509",
        "-req",
        "-in",
        path_str(&csr),
        "-CA",
        path_str(ca_cert),
        "-CAkey",
        path_str(ca_key),
        "-CAcreateserial",
        "-out",
        path_str(&crt),
        "-days",
        "30",
        "-extfile",
        path_str(&ext),
    ]);
    (
        std::fs::read_to_string(crt).expect("crt"),
        std::fs::read_to_string(key).expect("key"),
    )
}

//! Test harness: a test CA, the real `xfed-gateway` binary on loopback
//! with ephemeral ports, and small S2S and HTTP clients.
//!
//! Readiness is read from the daemon's own log lines (`event=ready`,
//! `event=reloaded`), never guessed with sleeps. Every wait is bounded.
//! Only the child this harness spawned is ever signalled, by its PID.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod dns;
pub mod peers;
pub mod prosody;

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

pub const DOMAIN: &str = "contoso.example";
pub const PARTNER: &str = "partner.example";
pub const WAIT: Duration = Duration::from_secs(20);

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_xfed-gateway")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A test CA that issues leaf certificates.
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub pem: String,
    pub der: CertificateDer<'static>,
}

/// An issued certificate with its key.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A leaf for `names` with the serverAuth EKU only (as public CAs now issue).
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.not_after = rcgen::date_time_ymd(2035, 1, 1);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        roots
    }
}

/// Files for one gateway instance.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Writes `leaf` as `<name>.crt` / `<name>.key`, returns the TOML lines for them.
    pub fn install(&self, name: &str, leaf: &Leaf) -> String {
        let cert = self.write(&format!("{name}.crt"), &leaf.cert_pem);
        let key = self.write(&format!("{name}.key"), &leaf.key_pem);
        format!(
            "cert = {:?}\nkey = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        )
    }
}

/// A config with ephemeral loopback ports; `external_tls`/`internal_tls` are
/// extra lines for those sections, `extra` goes at the top level.
pub fn config(work: &Workdir, external_tls: &str, internal_tls: &str, extra: &str) -> String {
    format!(
        "domains = [\"{DOMAIN}\"]\n\
         topology_version = \"topo-42\"\n\
         pid_file = {pid:?}\n\
         log_level = \"debug\"\n\
         drain_secs = 5\n\
         {extra}\n\
         [external]\naddress = \"127.0.0.1\"\nport = 0\n{external_tls}\n\
         [internal]\naddress = \"127.0.0.1\"\nport = 0\n{internal_tls}\n\
         [admin]\naddress = \"127.0.0.1\"\nport = 0\n\
         [[partners]]\ndomain = \"{PARTNER}\"\ntls = \"required\"\nauth = \"external\"\n\
         [[policies]]\nidentity = \"Global\"\nscope = \"global\"\nenable_federation_access = true\nenable_xmpp_access = true\n",
        pid = work.path("gateway.pid").display().to_string(),
    )
}

/// A running `xfed-gateway`.
pub struct Gateway {
    pub child: Child,
    pub external: SocketAddr,
    pub internal: SocketAddr,
    pub admin: SocketAddr,
    lines: Receiver<String>,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    /// Starts the binary on `config_path` and waits for `event=ready`.
    pub fn start(config_path: &Path) -> Gateway {
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let log_copy = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                log_copy.lock().unwrap().push(line.clone());
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut gateway = Gateway {
            child,
            external: "0.0.0.0:0".parse().unwrap(),
            internal: "0.0.0.0:0".parse().unwrap(),
            admin: "0.0.0.0:0".parse().unwrap(),
            lines,
            log,
        };
        let mut bound = std::collections::HashMap::new();
        gateway.wait_for(|line| {
            if line.contains("event=listener_bound") {
                let name = field(line, "listener").unwrap();
                let address: SocketAddr = field(line, "address").unwrap().parse().unwrap();
                bound.insert(name, address);
            }
            line.contains("event=ready")
        });
        gateway.external = bound["external"];
        gateway.internal = bound["internal"];
        gateway.admin = bound["admin"];
        gateway
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) for a log line matching `pred`; returns it.
    pub fn wait_for(&mut self, mut pred: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("timed out; log:\n{}", self.log.lock().unwrap().join("\n"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "gateway exited; log:\n{}",
                        self.log.lock().unwrap().join("\n")
                    )
                }
            }
        }
    }

    /// Sends `signal` (e.g. "HUP") to this child only.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "gateway did not exit");
            // Drain log lines while waiting; the channel closes at exit.
            let _ = self.lines.recv_timeout(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.admin, path)
    }

    /// The value of one series of `/metrics` (`name{labels}` exactly as
    /// the gateway writes it); a missing series fails the test.
    pub fn metric(&self, series: &str) -> u64 {
        let (_, metrics) = self.get("/metrics");
        let line = metrics
            .lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("{series} missing from\n{metrics}"));
        line[series.len() + 1..].trim().parse().unwrap()
    }

    pub fn status(&self) -> serde_json::Value {
        let (code, body) = self.get("/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `key=value` from a log line (values here are never quoted).
pub fn field(line: &str, key: &str) -> Option<String> {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
}

/// One GET over plain HTTP/1.1; returns (status code, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_string())
}

pub fn stream_header(to: &str, from: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
         xmlns:db='jabber:server:dialback' to='{to}' from='{from}' version='1.0'>"
    )
}

/// Reads until the accumulated text contains `needle` (bounded by `WAIT`).
pub async fn read_until<S: AsyncRead + Unpin>(io: &mut S, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = String::from_utf8_lossy(&seen).to_string();
        if text.contains(needle) {
            return text;
        }
        let n = tokio::time::timeout_at(deadline, io.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {needle:?}; got {text:?}"))
            .unwrap();
        assert!(
            n > 0,
            "connection closed while waiting for {needle:?}; got {text:?}"
        );
        seen.extend_from_slice(&buf[..n]);
    }
}

/// Reads to EOF (bounded); returns everything.
pub async fn read_to_end<S: AsyncRead + Unpin>(io: &mut S) -> String {
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(WAIT, io.read_to_end(&mut seen))
        .await
        .expect("EOF in time");
    String::from_utf8_lossy(&seen).to_string()
}

pub fn client_config(roots: RootCertStore, client_cert: Option<&Leaf>) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let config = match client_cert {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
            )
            .unwrap(),
    };
    Arc::new(config)
}

/// An S2S stream taken through STARTTLS and the restart: returns the TLS
/// stream (features already read) and the two server headers.
pub struct Negotiated {
    pub tls: TlsStream<TcpStream>,
    pub plain_reply: String,
    pub secure_reply: String,
}

pub async fn negotiate(
    addr: SocketAddr,
    to: &str,
    from: &str,
    config: Arc<ClientConfig>,
) -> Negotiated {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(stream_header(to, from).as_bytes())
        .await
        .unwrap();
    let plain_reply = read_until(&mut tcp, "</stream:features>").await;
    tcp.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await
        .unwrap();
    read_until(
        &mut tcp,
        "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    )
    .await;
    let name = ServerName::try_from(to.to_string()).unwrap();
    let mut tls = TlsConnector::from(config).connect(name, tcp).await.unwrap();
    tls.write_all(stream_header(to, from).as_bytes())
        .await
        .unwrap();
    let secure_reply = read_until(&mut tls, "<stream:features/>").await;
    Negotiated {
        tls,
        plain_reply,
        secure_reply,
    }
}

/// Value of attribute `name` in the first `<stream:stream …>` of `text`.
pub fn header_attr(text: &str, name: &str) -> Option<String> {
    let start = text.find("<stream:stream")?;
    let header = &text[start..start + text[start..].find('>')?];
    let key = format!(" {name}='");
    let at = header.find(&key)? + key.len();
    Some(header[at..at + header[at..].find('\'')?].to_string())
}

pub async fn write_all<S: AsyncWrite + Unpin>(io: &mut S, data: &str) {
    io.write_all(data.as_bytes()).await.unwrap();
    io.flush().await.unwrap();
}

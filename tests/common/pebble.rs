//! A second pebble (ACME test CA) started by a test, beside the lab's own:
//! same address and TLS certificate, its own port and settings, in the
//! lab's DNS namespace so it validates DNS-01 against the lab's PowerDNS.
//! Stopped by PID when dropped. The lab's pebble is never touched.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::lab::Lab;

/// The lab's pebble address (tests/lab/README.md); a test pebble shares it.
pub const PEBBLE_IP: &str = "203.0.113.54";

/// A running test pebble.
#[derive(Debug)]
pub struct Pebble {
    child: Child,
    /// `https://203.0.113.54:PORT/dir`
    pub directory: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pebble {
    /// Starts pebble on `port` (management on `port + 1000`), rejecting
    /// `nonce_reject` percent of good nonces; returns once it accepts
    /// connections.
    pub fn start(lab: &Lab, port: u16, nonce_reject: u8) -> Pebble {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("pebble-config.json");
        let tls = lab.dir.join("pebble");
        std::fs::write(
            &config,
            serde_json::json!({ "pebble": {
                "listenAddress": format!("{PEBBLE_IP}:{port}"),
                "managementListenAddress": format!("{PEBBLE_IP}:{}", port + 1000),
                "certificate": tls.join("cert.pem"),
                "privateKey": tls.join("key.pem"),
                "httpPort": 5002, "tlsPort": 5001,
                "ocspResponderURL": "", "externalAccountBindingRequired": false,
            }})
            .to_string(),
        )
        .expect("write pebble config");
        let log = dir.path().join("pebble.log");
        let out = std::fs::File::create(&log).expect("pebble log");
        // `ip netns exec` and `env` exec, so the child is pebble itself.
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.dns.netns, "env"])
            .arg(format!("PEBBLE_WFE_NONCEREJECT={nonce_reject}"))
            .arg("PEBBLE_VA_NOSLEEP=1")
            .arg("pebble")
            .arg("-config")
            .arg(&config)
            .arg("-dnsserver")
            .arg(format!("{}:53", lab.dns.internal))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start pebble");
        let mut p = Pebble {
            child,
            directory: format!("https://{PEBBLE_IP}:{port}/dir"),
            log,
            _dir: dir,
        };
        let addr: SocketAddr = format!("{PEBBLE_IP}:{port}").parse().expect("address");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("pebble exited ({status}): {}", p.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "pebble does not listen on {addr} after 15 s: {}",
                p.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        p
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! A real Prosody 0.12 on loopback as the organisation's internal server:
//! its own config, certificates and data in a temp dir, users registered
//! with `prosodyctl`, readiness by connecting to its S2S port, stopped by
//! its PID. Tests skip (with a message) only when `/usr/bin/prosody` is
//! not installed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::{Leaf, WAIT};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PROSODY: &str = "/usr/bin/prosody";
pub const PROSODYCTL: &str = "/usr/bin/prosodyctl";

/// Whether Prosody is installed; prints why a test is skipped if not.
/// Under `tests/run` (`XFED_LAB=1`), which installs it, a missing Prosody
/// fails the test instead: a suite that skipped would prove nothing.
pub fn available(test: &str) -> bool {
    let ok = Path::new(PROSODY).exists() && Path::new(PROSODYCTL).exists();
    if !ok {
        assert!(
            std::env::var_os("XFED_LAB").is_none_or(|v| v != "1"),
            "{test}: {PROSODY} is missing (tests/lab/install-deps installs it)"
        );
        eprintln!("skipping {test}: {PROSODY} is not installed (apt-get install prosody)");
    }
    ok
}

/// A free loopback port (bound and released; Prosody binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How a test Prosody differs from the default internal server.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Dialback on, keys from this secret (default: dialback off).
    pub dialback_secret: Option<String>,
    /// `s2s_secure_auth = false` (default true).
    pub insecure: bool,
    /// More global lines (e.g. the resolver).
    pub extra: String,
    /// More hosts served.
    pub more_hosts: Vec<String>,
}

/// A running Prosody serving `domain`.
pub struct Prosody {
    pub child: Child,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub s2s_port: u16,
    pub domain: String,
}

impl Prosody {
    /// Starts Prosody for `domain` with `leaf` as its certificate, trusting
    /// `ca_pem`; waits until its S2S port accepts connections.
    pub fn start(dir: &Path, domain: &str, leaf: &Leaf, ca_pem: &str, users: &[&str]) -> Prosody {
        Prosody::start_with(dir, domain, leaf, ca_pem, users, &Options::default())
    }

    /// As `start`, with `options`.
    pub fn start_with(
        dir: &Path,
        domain: &str,
        leaf: &Leaf,
        ca_pem: &str,
        users: &[&str],
        options: &Options,
    ) -> Prosody {
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(certs.join(format!("{domain}.crt")), &leaf.cert_pem).unwrap();
        std::fs::write(certs.join(format!("{domain}.key")), &leaf.key_pem).unwrap();
        let cafile = dir.join("ca.crt");
        std::fs::write(&cafile, ca_pem).unwrap();
        let s2s_port = free_port();
        let c2s_port = free_port();
        let d = dir.display();
        let config = dir.join("prosody.cfg.lua");
        std::fs::write(
            &config,
            format!(
                r#"run_as_root = true
daemonize = false
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
admin_socket = "{d}/admin.sock"
certificates = "{d}/certs"
log = {{ info = "{d}/prosody.log"; debug = "{d}/debug.log" }}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s_port} }}
s2s_ports = {{ {s2s_port} }}
c2s_direct_tls_ports = {{ }}
s2s_direct_tls_ports = {{ }}
modules_enabled = {{ "disco"; "saslauth"; "tls"; "ping"; "admin_shell"; "posix"{dialback_module} }}
{dialback}
authentication = "internal_hashed"
storage = "internal"
-- Bursts of tens of thousands go to one offline store (default 10,000).
storage_archive_item_limit = 1000000
s2s_require_encryption = true
s2s_secure_auth = {secure_auth}
ssl = {{ cafile = "{cafile}" }}
{extra}
VirtualHost "{domain}"
{hosts}
"#,
                cafile = cafile.display(),
                dialback = if options.dialback_secret.is_some() {
                    format!(
                        "dialback_secret = {:?}",
                        options.dialback_secret.as_deref().unwrap_or_default()
                    )
                } else {
                    "modules_disabled = { \"dialback\" }".to_string()
                },
                dialback_module = if options.dialback_secret.is_some() {
                    "; \"dialback\""
                } else {
                    ""
                },
                secure_auth = !options.insecure,
                extra = options.extra,
                hosts = options
                    .more_hosts
                    .iter()
                    .map(|h| format!("VirtualHost \"{h}\"\n"))
                    .collect::<String>(),
            ),
        )
        .unwrap();
        for user in users {
            let status = Command::new(PROSODYCTL)
                .arg("--config")
                .arg(&config)
                .args(["register", user, domain, "secret-pw"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "prosodyctl register {user}");
        }
        let child = Command::new(PROSODY)
            .arg("-F")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                std::fs::File::create(dir.join("stdout")).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let mut prosody = Prosody {
            child,
            dir: dir.to_path_buf(),
            config,
            s2s_port,
            domain: domain.to_string(),
        };
        prosody.wait_ready();
        prosody
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], self.s2s_port));
        loop {
            if std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("prosody exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "prosody not listening:\n{}",
                self.log()
            );
            // Bounded poll of the readiness condition (the port accepting).
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.s2s_port)
    }

    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!(
            "{}{}{}",
            read("prosody.log"),
            read("stdout"),
            read("stderr")
        )
    }

    /// mod_offline's store of `user`'s messages.
    pub fn offline_file(&self, user: &str) -> PathBuf {
        let host = self.domain.replace('.', "%2e");
        self.dir
            .join("data")
            .join(host)
            .join("offline")
            .join(format!("{user}.list"))
    }

    /// The stored offline messages of `user` ("" if none).
    pub fn offline(&self, user: &str) -> String {
        std::fs::read_to_string(self.offline_file(user)).unwrap_or_default()
    }

    /// Waits (bounded) until `user`'s offline store contains `needle`.
    pub fn wait_offline(&self, user: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.offline(user);
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{user} never got {needle:?}; store: {text:?}\nprosody log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `prosodyctl shell` on this instance.
    pub fn shell(&self, command: &str) -> String {
        let output = Command::new(PROSODYCTL)
            .arg("--config")
            .arg(&self.config)
            .args(["shell", command])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).to_string()
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! A real Prosody 0.12 in one of the lab's network namespaces: the
//! organisation's internal XMPP server on a front-end, or an outside
//! partner's server. Its config, certificates and data live in a temp dir;
//! it is started with `ip netns exec` (so its PID is Prosody's), ready
//! once its S2S port accepts connections, and stopped by that PID.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PROSODY: &str = "/usr/bin/prosody";
pub const PROSODYCTL: &str = "/usr/bin/prosodyctl";

/// How long Prosody gets to start, and a message to arrive.
const WAIT: Duration = Duration::from_secs(30);

pub struct Prosody {
    child: Child,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub domain: String,
    pub address: String,
}

/// What a Prosody instance is.
pub struct Setup<'a> {
    pub netns: &'a str,
    /// The address it binds (S2S on 5269).
    pub address: &'a str,
    pub domain: &'a str,
    /// PEM chain and key of its certificate for `domain`.
    pub cert: &'a str,
    pub key: &'a str,
    /// PEM of the CAs it trusts for peers' certificates.
    pub trust: &'a str,
    /// A DNS server of its own (else none: it resolves nothing).
    pub nameserver: Option<&'a str>,
    pub users: &'a [&'a str],
}

impl Prosody {
    pub fn start(dir: &Path, s: &Setup) -> Prosody {
        let d = dir.display();
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).expect("certs dir");
        std::fs::create_dir_all(dir.join("data")).expect("data dir");
        std::fs::write(certs.join(format!("{}.crt", s.domain)), s.cert).expect("cert");
        std::fs::write(certs.join(format!("{}.key", s.domain)), s.key).expect("key");
        std::fs::write(dir.join("trust.pem"), s.trust).expect("trust");
        let resolver = match s.nameserver {
            Some(ns) => {
                std::fs::write(dir.join("resolv.conf"), format!("nameserver {ns}\n"))
                    .expect("resolv.conf");
                format!("unbound = {{ resolvconf = \"{d}/resolv.conf\" }}\n")
            }
            None => String::new(),
        };
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
interfaces = {{ "{address}" }}
local_interfaces = {{ }}
c2s_ports = {{ }}
s2s_ports = {{ 5269 }}
c2s_direct_tls_ports = {{ }}
s2s_direct_tls_ports = {{ }}
modules_enabled = {{ "disco"; "saslauth"; "tls"; "ping"; "admin_shell"; "posix" }}
modules_disabled = {{ "dialback" }}
authentication = "internal_hashed"
storage = "internal"
s2s_require_encryption = true
s2s_secure_auth = true
ssl = {{ cafile = "{d}/trust.pem" }}
{resolver}VirtualHost "{domain}"
"#,
                address = s.address,
                domain = s.domain,
            ),
        )
        .expect("prosody config");
        for user in s.users {
            let st = Command::new(PROSODYCTL)
                .arg("--config")
                .arg(&config)
                .args(["register", user, s.domain, "a-test-password"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("prosodyctl");
            assert!(st.success(), "prosodyctl register {user}@{}", s.domain);
        }
        let log = |name: &str| Stdio::from(std::fs::File::create(dir.join(name)).expect("log"));
        let child = Command::new("ip")
            .args(["netns", "exec", s.netns, PROSODY, "-F", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log("stdout"))
            .stderr(log("stderr"))
            .spawn()
            .expect("start prosody");
        let mut p = Prosody {
            child,
            dir: dir.to_path_buf(),
            config,
            domain: s.domain.to_string(),
            address: s.address.to_string(),
        };
        p.wait_ready();
        p
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        let addr: std::net::SocketAddr = format!("{}:5269", self.address).parse().expect("addr");
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("prosody for {} exited ({st}):\n{}", self.domain, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "prosody not listening:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        ["prosody.log", "stdout", "stderr"]
            .iter()
            .map(|n| std::fs::read_to_string(self.dir.join(n)).unwrap_or_default())
            .collect()
    }

    pub fn debug_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("debug.log")).unwrap_or_default()
    }

    /// mod_offline's store of `user`'s messages ("" if none).
    pub fn offline(&self, user: &str) -> String {
        let host = self.domain.replace('.', "%2e");
        std::fs::read_to_string(
            self.dir
                .join("data")
                .join(host)
                .join("offline")
                .join(format!("{user}.list")),
        )
        .unwrap_or_default()
    }

    /// Waits (bounded) until `user`'s offline store holds `needle`.
    pub fn wait_offline(&self, user: &str, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.offline(user).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{user}@{} never got {needle:?}; its server's log:\n{}",
                self.domain,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Has the server send a chat message from one of its users, as a
    /// client would (through `prosodyctl shell`).
    pub fn send(&self, from: &str, to: &str, body: &str) {
        let lua = format!(
            ">prosody.core_post_stanza(prosody.hosts['{}'], require'util.stanza'.message({{from='{from}',to='{to}',type='chat'}}):text_tag('body','{body}'))",
            self.domain
        );
        let out = Command::new(PROSODYCTL)
            .arg("--config")
            .arg(&self.config)
            .args(["shell", &lua])
            .output()
            .expect("prosodyctl shell");
        assert!(
            out.status.success(),
            "prosodyctl shell: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The lab (tests/lab/README.md) as integration tests see it.
//!
//! Owns: reading a lab's `inventory.json`; deciding whether a test can use a
//! lab here, and skipping loudly or — under `XFED_LAB=1`, as CI sets —
//! failing when it cannot; serialising lab tests across threads and test
//! binaries (`Lab::lock`); running commands in the lab's controller
//! namespace, `ssh` to a host with strict host-key checking above all.
//! Does not start or stop labs: `tests/lab/lab` does, and
//! tests/lab_lifecycle.rs tests it.
//!
//! ```ignore
//! mod common;
//! use common::lab::Lab;
//!
//! #[test]
//! fn something_on_the_lab() {
//!     let Some(lab) = Lab::get() else { return }; // skipped loudly, or failed under XFED_LAB=1
//!     let _serial = lab.lock(); // one lab test at a time, machine-wide
//!     let edge = lab.host("edge1");
//!     assert_eq!(lab.ssh_ok(edge, "hostname").trim(), edge.fqdn);
//! }
//! ```
//!
//! Tests that use the default lab must run in its controller namespace:
//! `tests/lab/lab exec -- cargo test`.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;

use super::partners::Partner;

/// State dir of the default lab when `XFED_LAB_DIR` is unset.
pub const DEFAULT_DIR: &str = "/var/lib/xfed-lab";

/// Tools `tests/lab/lab` and the lab tests call; all come from
/// tests/lab/install-deps.
const TOOLS: &[&str] = &[
    "/usr/sbin/sshd",
    "/usr/sbin/pdns_server",
    "ssh",
    "ssh-keygen",
    "ip",
    "unshare",
    "nsenter",
    "jq",
    "sqlite3",
    "dig",
    "curl",
    "ps",
];

/// `tests/lab/lab`, the script that builds labs.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab")
}

/// Whether a lab that cannot be used fails the test (`XFED_LAB` set to
/// anything but empty or `0`) instead of skipping it.
pub fn required() -> bool {
    matches!(std::env::var("XFED_LAB"), Ok(v) if !v.is_empty() && v != "0")
}

/// The default lab's state dir: `$XFED_LAB_DIR`, else [`DEFAULT_DIR`].
pub fn default_dir() -> PathBuf {
    std::env::var_os("XFED_LAB_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Frontend,
    Edge,
}

/// One lab host, as `inventory.json` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Host {
    /// `fe1`, `edge2`, …
    pub name: String,
    pub role: Role,
    /// `fe1.contoso.example`; also the host's `hostname`.
    pub fqdn: String,
    pub netns: String,
    /// Address on the internal network (203.0.113.0/24); sshd listens here.
    pub internal: String,
    /// Address on the external network (198.51.100.0/24); edges only.
    pub external: Option<String>,
    /// sshd, the host's PID 1, as seen from the machine.
    pub sshd_pid: u32,
}

/// The lab's PowerDNS authoritative server.
#[derive(Debug, Clone, Deserialize)]
pub struct Dns {
    pub fqdn: String,
    pub netns: String,
    pub internal: String,
    pub external: String,
    /// `http://203.0.113.53:8081`
    pub api: String,
    /// Mode 0600; see [`Dns::api_key`].
    pub api_key_file: PathBuf,
    pub pid: u32,
}

impl Dns {
    /// The PowerDNS API key (for the `X-API-Key` header).
    pub fn api_key(&self) -> String {
        fs::read_to_string(&self.api_key_file)
            .unwrap_or_else(|e| panic!("read `{}`: {e}", self.api_key_file.display()))
            .trim()
            .to_string()
    }
}

/// One of the lab's RFC 2136 servers (BIND 9, Knot): UPDATE and AXFR
/// signed with its TSIG key.
#[derive(Debug, Clone, Deserialize)]
pub struct Rfc2136Server {
    /// `bind` or `knot`
    pub name: String,
    pub netns: String,
    pub internal: String,
    pub external: String,
    pub pid: u32,
    /// Absolute zone names it serves: the organisation's two (`contoso.example.`,
    /// `internal.contoso.example.`) and `r1`..`r8`.
    pub zones: Vec<String>,
    pub tsig: TsigKey,
    /// An ACME test CA (pebble) that validates DNS-01 by asking this server.
    #[serde(default)]
    pub acme: Option<AcmeCa>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AcmeCa {
    /// `https://203.0.113.57:14000/dir`
    pub directory: String,
    /// The CA of its HTTPS listener.
    pub ca_bundle: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TsigKey {
    pub name: String,
    /// `hmac-sha256` or `hmac-sha512`
    pub algorithm: String,
    /// Mode 0600, the base64 secret alone.
    pub secret_file: PathBuf,
}

impl TsigKey {
    /// The key's base64 secret.
    pub fn secret(&self) -> String {
        fs::read_to_string(&self.secret_file)
            .unwrap_or_else(|e| panic!("read `{}`: {e}", self.secret_file.display()))
            .trim()
            .to_string()
    }
}

/// The lab's unbound: a validating recursive resolver that knows the lab's
/// zones (stub zones) and trusts the key Knot signs `signed_zone` with.
#[derive(Debug, Clone, Deserialize)]
pub struct Recursive {
    pub netns: String,
    pub internal: String,
    pub external: String,
    /// Absolute; served and signed by Knot, trusted through its DS in
    /// `parent_zone` (Knot's, also signed), whose key is the resolver's
    /// only trust anchor.
    pub signed_zone: String,
    pub parent_zone: String,
    /// Per RFC 2136 server (`bind`, `knot`), the unsigned test zone the
    /// resolver sends to that server (both serve every `r<N>`, so each
    /// name can go to one of them only); absent in older inventories.
    #[serde(default)]
    pub unsigned_zones: std::collections::BTreeMap<String, String>,
}

impl Recursive {
    /// The zone (absolute) this resolver asks `server` for; panics if none.
    pub fn unsigned_zone(&self, server: &str) -> &str {
        self.unsigned_zones.get(server).unwrap_or_else(|| {
            panic!(
                "the lab's resolver sends no zone to `{server}` (has: {:?})\n  \
                 hint: `tests/lab/lab up` restarts it with the current config",
                self.unsigned_zones
            )
        })
    }
}

/// The DNS server every lab host's `/etc/resolv.conf` names.
#[derive(Debug, Clone, Deserialize)]
pub struct Resolver {
    /// For front-ends and edges.
    pub internal: String,
    /// For partners (they have only the external network).
    pub external: String,
}

#[derive(Debug, Deserialize)]
struct Inventory {
    prefix: String,
    controller: Controller,
    hosts: Vec<Host>,
    dns: Dns,
    // absent in inventories written before the lab had partners
    #[serde(default)]
    resolver: Option<Resolver>,
    #[serde(default)]
    partner_ca: Option<PathBuf>,
    #[serde(default)]
    partners: Vec<Partner>,
    // absent in inventories written before the lab had BIND and Knot
    #[serde(default)]
    rfc2136: Vec<Rfc2136Server>,
    #[serde(default)]
    recursive: Option<Recursive>,
}

#[derive(Debug, Deserialize)]
struct Controller {
    netns: String,
}

/// One running lab, read from its state dir.
#[derive(Debug)]
pub struct Lab {
    pub dir: PathBuf,
    /// `XFED_LAB_PREFIX` the lab was made with (`xfed` for the default lab).
    pub prefix: String,
    /// The namespace holding the bridges, where xfed and probes run.
    pub controller_netns: String,
    pub hosts: Vec<Host>,
    pub dns: Dns,
    /// What every host's `/etc/resolv.conf` points at.
    pub resolver: Option<Resolver>,
    /// The CA of the partners' certificates (none with `up --no-partners`).
    pub partner_ca: Option<PathBuf>,
    /// The outside organisations (tests/common/partners.rs).
    pub partners: Vec<Partner>,
    /// BIND 9 and Knot, reached by RFC 2136 with TSIG.
    pub rfc2136: Vec<Rfc2136Server>,
    /// unbound, validating (absent in older inventories).
    pub recursive: Option<Recursive>,
    /// Private key that logs in as root on every host.
    pub key: PathBuf,
    /// One line per host: `<internal ip> ssh-ed25519 AAAA…`.
    pub known_hosts: PathBuf,
    /// This process runs in the controller namespace; otherwise commands go
    /// through `tests/lab/lab exec`.
    inside: bool,
}

/// Exclusive hold on a lab (or any lock file) until dropped.
#[derive(Debug)]
#[must_use = "the lock is released when this guard is dropped"]
pub struct LabLock {
    _file: File,
}

static DEFAULT: OnceLock<Result<Lab, String>> = OnceLock::new();

impl Lab {
    /// The default lab (`$XFED_LAB_DIR`), if this test can use it: its
    /// inventory is readable, this process runs in its controller namespace,
    /// and every host answers on port 22. Otherwise `None` after a loud
    /// `SKIPPED` line, or a panic when `XFED_LAB` is set.
    pub fn get() -> Option<&'static Lab> {
        let lab = DEFAULT.get_or_init(|| Lab::open(&default_dir()).and_then(Lab::usable_here));
        match lab {
            Ok(lab) => Some(lab),
            Err(why) => {
                unavailable(why);
                None
            }
        }
    }

    /// Any lab, by state dir, without checking that it is reachable from
    /// here. When this process is outside its controller namespace,
    /// [`Lab::command`] goes through `tests/lab/lab exec`.
    pub fn open(dir: &Path) -> Result<Lab, String> {
        let path = dir.join("inventory.json");
        let text = fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read `{}`: {e}\n  hint: is the lab up? `tests/lab/lab up` (as root)",
                path.display()
            )
        })?;
        let inv: Inventory = serde_json::from_str(&text)
            .map_err(|e| format!("`{}` is not a lab inventory: {e}", path.display()))?;
        let inside = same_file(
            Path::new("/proc/self/ns/net"),
            &Path::new("/run/netns").join(&inv.controller.netns),
        );
        Ok(Lab {
            key: dir.join("keys/id_ed25519"),
            known_hosts: dir.join("keys/known_hosts"),
            dir: dir.to_path_buf(),
            prefix: inv.prefix,
            controller_netns: inv.controller.netns,
            hosts: inv.hosts,
            dns: inv.dns,
            resolver: inv.resolver,
            partner_ca: inv.partner_ca,
            partners: inv.partners,
            rfc2136: inv.rfc2136,
            recursive: inv.recursive,
            inside,
        })
    }

    fn usable_here(self) -> Result<Lab, String> {
        if !self.inside {
            return Err(format!(
                "this test does not run in the lab's controller namespace `{}`\n  \
                 hint: run the tests through it: tests/lab/lab exec -- cargo test …",
                self.controller_netns
            ));
        }
        let mut ports: Vec<String> = self
            .hosts
            .iter()
            .map(|h| format!("{}:22", h.internal))
            .collect();
        ports.push(format!("{}:53", self.dns.internal));
        ports.extend(self.partners.iter().map(|p| format!("{}:5269", p.external)));
        for port in ports {
            let addr: SocketAddr = port.parse().map_err(|e| format!("`{port}`: {e}"))?;
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| {
                format!(
                    "{port} does not answer ({e})\n  hint: `tests/lab/lab status` shows what is down; \
                     `tests/lab/lab up` restarts it"
                )
            })?;
        }
        Ok(self)
    }

    /// Serialises the tests that use this lab, across threads and test
    /// binaries (flock on `<dir>/tests.lock`; `lab down` keeps that file).
    /// Blocks until the lab is free.
    pub fn lock(&self) -> LabLock {
        lock_file(&self.dir.join("tests.lock"))
    }

    /// The host called `name` (`fe1`, `edge2`, …); panics if the lab has none.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("the lab has no host `{name}` (has: {})", self.host_names()))
    }

    /// The partner called `name` (`fabrikam`, `litware`); panics if the lab
    /// has none (a lab made with `up --no-partners`, or an old inventory).
    pub fn partner(&self, name: &str) -> &Partner {
        self.partners.iter().find(|p| p.name == name).unwrap_or_else(|| {
            panic!(
                "the lab has no partner `{name}` (has: {:?})\n  hint: `tests/lab/lab up` makes them",
                self.partners.iter().map(|p| &p.name).collect::<Vec<_>>()
            )
        })
    }

    /// Hosts of one role, in inventory order.
    pub fn hosts_with(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.role == role)
    }

    fn host_names(&self) -> String {
        self.hosts
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `program`, to run in the lab's controller namespace with this
    /// process's environment.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        if self.inside {
            return Command::new(program);
        }
        let mut c = Command::new(script());
        c.arg("exec")
            .arg("--")
            .arg(program)
            .env("XFED_LAB_PREFIX", &self.prefix)
            .env("XFED_LAB_DIR", &self.dir);
        c
    }

    /// `ssh root@<host> <remote>` with the lab's key, checking the host key
    /// strictly against `known_hosts`; no user or system ssh config applies.
    pub fn ssh_command_with(&self, host: &Host, known_hosts: &Path, remote: &str) -> Command {
        let mut c = self.command("ssh");
        c.arg("-F").arg("/dev/null");
        for opt in [
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            "GlobalKnownHostsFile=/dev/null",
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            "ConnectTimeout=5",
            "LogLevel=ERROR",
        ] {
            c.arg("-o").arg(opt);
        }
        c.arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .arg("-i")
            .arg(&self.key)
            .arg(format!("root@{}", host.internal))
            .arg(remote);
        c
    }

    /// Runs a shell command line on `host` over ssh (see [`Lab::ssh_command_with`]).
    pub fn ssh(&self, host: &Host, remote: &str) -> Output {
        self.ssh_command_with(host, &self.known_hosts, remote)
            .output()
            .unwrap_or_else(|e| panic!("cannot start ssh to {}: {e}", host.name))
    }

    /// Like [`Lab::ssh`], but panics unless the command succeeds; returns stdout.
    pub fn ssh_ok(&self, host: &Host, remote: &str) -> String {
        let out = self.ssh(host, remote);
        assert!(
            out.status.success(),
            "ssh {} `{remote}`: {}\nstdout: {}\nstderr: {}",
            host.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Blocks until this process holds an exclusive lock on `path` (created if
/// missing). No polling: the kernel wakes us when the holder lets go.
pub fn lock_file(path: &Path) -> LabLock {
    if let Some(dir) = path.parent() {
        // /run/lock is missing in some containers
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create `{}`: {e}", dir.display()));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap_or_else(|e| panic!("open lock file `{}`: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("lock `{}`: {e}", path.display()));
    LabLock { _file: file }
}

/// For tests that build a lab of their own with `tests/lab/lab`: whether
/// they may run here. They need root, the lab's packages, and a mount
/// namespace whose new network namespaces the rest of the machine sees.
/// Under `XFED_LAB` anything missing is a failure, except packages, which
/// the script installs itself.
pub fn can_build_labs() -> bool {
    let why = if !is_root() {
        "building a lab needs root".to_string()
    } else if in_private_mount_ns() {
        "this process runs in a private mount namespace (e.g. under `ip netns exec`), where \
         `tests/lab/lab up` refuses to create namespaces\n  hint: run from a root shell or \
         through `tests/lab/lab exec --`, which keeps the mount namespace"
            .to_string()
    } else {
        let missing = missing_tools();
        if missing.is_empty() || required() {
            return true;
        }
        format!(
            "the lab's packages are missing ({})\n  hint: run tests/lab/install-deps as root",
            missing.join(", ")
        )
    };
    unavailable(&why);
    false
}

/// Skips (loudly) or, when the lab is required, fails the running test.
fn unavailable(why: &str) {
    assert!(
        !required(),
        "XFED_LAB is set, but the lab cannot be used: {why}"
    );
    // io::stderr() directly, not eprintln!: the test harness captures the
    // macros' output of passing tests, and a skip must not pass silently.
    let test = std::thread::current()
        .name()
        .unwrap_or("lab test")
        .to_string();
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {why}\n  (with XFED_LAB=1 this is a failure)"
    );
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Effective uid 0, from /proc (the crate forbids the unsafe a libc call needs).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// /run/netns mounted as a slave: namespaces registered here are invisible
/// to the rest of the machine (see `check_mount_ns` in tests/lab/lab).
fn in_private_mount_ns() -> bool {
    fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| {
        m.lines()
            .rfind(|l| l.split(' ').nth(4) == Some("/run/netns"))
            .is_some_and(|l| l.contains(" master:"))
    })
}

fn missing_tools() -> Vec<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .collect();
    TOOLS
        .iter()
        .copied()
        .filter(|tool| {
            let found = if tool.starts_with('/') {
                Path::new(tool).is_file()
            } else {
                dirs.iter().any(|d| d.join(tool).is_file())
            };
            !found
        })
        .collect()
}

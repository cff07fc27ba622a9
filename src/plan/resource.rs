//! Primitive resources: the desired state modules expand a spec into, and
//! the facts read from a host about each of them.
//!
//! Few and typed on purpose: `file`, `binary`, `service`, `listener_check`
//! and `certificate` on hosts (DNS records and the topology objects are
//! decided beside them, in `dns_plan` and `topology`); nothing here knows
//! about modules or transports.

use serde::{Deserialize, Serialize};

use crate::spec::{Origin, Role};

/// The seed's order: front-end → edge → certificates → restart → DNS →
/// policies/routes → verify. Changes run phase by phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Frontend,
    Edge,
    Certificates,
    Restart,
    Dns,
    Policies,
    Verify,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Frontend,
        Phase::Edge,
        Phase::Certificates,
        Phase::Restart,
        Phase::Dns,
        Phase::Policies,
        Phase::Verify,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Frontend => "front-end",
            Phase::Edge => "edge",
            Phase::Certificates => "certificates",
            Phase::Restart => "restart",
            Phase::Dns => "dns",
            Phase::Policies => "policies and routes",
            Phase::Verify => "verify",
        }
    }
}

/// What a changed resource asks of a service once its files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Notify {
    Reload,
    Restart,
}

/// One desired resource on one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Stable address: `edge/edge-hq/edge1.contoso.example/file:/etc/xfed/gateway.toml`.
    pub address: String,
    /// The server's FQDN (hosts are keyed by it).
    pub host: String,
    pub role: Role,
    pub pool: String,
    pub phase: Phase,
    pub desired: Desired,
    /// The spec object that causes this resource.
    pub origin: Origin,
    /// Address of the service to restart or reload when this one changes.
    pub notifies: Option<(String, Notify)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Desired {
    File(FileSpec),
    Binary(BinarySpec),
    Service(ServiceSpec),
    Listener(ListenerSpec),
    /// A certificate and its key installed on the host (issue #4).
    Certificate(Box<crate::certs::CertSpec>),
    /// A system user (with its own group) a service runs as.
    User(UserSpec),
    /// Managed before (the host's manifest lists it), no longer in the
    /// spec: to be removed. Holds what is needed to remove it.
    Gone(Box<Desired>),
}

impl Desired {
    pub fn kind(&self) -> super::kind::ResourceKind {
        use super::kind::ResourceKind;
        match self {
            Desired::File(_) => ResourceKind::File,
            Desired::Binary(_) => ResourceKind::Binary,
            Desired::Service(_) => ResourceKind::Service,
            Desired::Listener(_) => ResourceKind::ListenerCheck,
            Desired::Certificate(_) => ResourceKind::Certificate,
            Desired::User(_) => ResourceKind::User,
            Desired::Gone(inner) => inner.kind(),
        }
    }
}

/// One line of a host's manifest (`<state dir>/managed.json`): what xfed
/// put there, so that what leaves the spec can be removed (Terraform's
/// state, kept on the host it describes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ManifestEntry {
    File {
        address: String,
        path: String,
    },
    Binary {
        address: String,
        path: String,
    },
    Service {
        address: String,
        name: String,
        manager: Manager,
        pid_file: String,
    },
    /// A certificate: its chain, key and the files beside them.
    Certificate {
        address: String,
        cert_path: String,
        key_path: String,
    },
}

impl ManifestEntry {
    pub fn of(r: &Resource) -> Option<ManifestEntry> {
        let address = r.address.clone();
        match &r.desired {
            Desired::File(f) => Some(ManifestEntry::File {
                address,
                path: f.path.clone(),
            }),
            Desired::Binary(b) => Some(ManifestEntry::Binary {
                address,
                path: b.path.clone(),
            }),
            Desired::Service(s) => Some(ManifestEntry::Service {
                address,
                name: s.name.clone(),
                manager: s.manager,
                pid_file: s.pid_file.clone(),
            }),
            Desired::Certificate(c) => Some(ManifestEntry::Certificate {
                address,
                cert_path: c.cert_path.clone(),
                key_path: c.key_path.clone(),
            }),
            // A user left behind owns nothing once its files are gone, and
            // removing one could orphan files someone else gave it.
            Desired::Listener(_) | Desired::User(_) | Desired::Gone(_) => None,
        }
    }

    pub fn address(&self) -> &str {
        match self {
            ManifestEntry::File { address, .. }
            | ManifestEntry::Binary { address, .. }
            | ManifestEntry::Service { address, .. }
            | ManifestEntry::Certificate { address, .. } => address,
        }
    }

    /// What removing this entry needs.
    pub fn to_gone(&self) -> Desired {
        let inner = match self {
            ManifestEntry::File { path, .. } => Desired::File(FileSpec::at(path)),
            ManifestEntry::Binary { path, .. } => Desired::Binary(BinarySpec {
                path: path.clone(),
                sha256: String::new(),
                size: 0,
                source: std::path::PathBuf::new(),
                mode: 0,
            }),
            ManifestEntry::Service {
                name,
                manager,
                pid_file,
                ..
            } => Desired::Service(ServiceSpec {
                name: name.clone(),
                manager: *manager,
                exec: Vec::new(),
                pid_file: pid_file.clone(),
                log_file: String::new(),
                binary: None,
                binary_path: None,
                user: None,
            }),
            ManifestEntry::Certificate {
                cert_path,
                key_path,
                ..
            } => Desired::Certificate(Box::new(crate::certs::CertSpec {
                name: String::new(),
                usage: crate::spec::CertUsage::External,
                cert_path: cert_path.clone(),
                key_path: key_path.clone(),
                key: crate::spec::KeySpec::Rsa2048,
                subject: crate::spec::Subject {
                    common_name: String::new(),
                    organization: None,
                    organizational_unit: None,
                    locality: None,
                    state: None,
                    country: None,
                },
                sans: Vec::new(),
                issuer: crate::spec::Issuer::Csr {
                    request_path: std::path::PathBuf::new(),
                },
                renew_before: crate::spec::RenewBefore::Fraction(1.0 / 3.0),
                exportable: false,
                friendly_name: None,
                key_group: None,
            })),
        };
        Desired::Gone(Box::new(inner))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: String,
    pub content: String,
    pub mode: u32,
    pub owner: String,
    pub group: String,
    /// Content rendered from a secret: diffs show `(sensitive)`.
    pub sensitive: bool,
    /// Whose rule may turn this file's restart into a reload when only
    /// what a reload applies changed (`reload_scope`).
    pub reload_scope: Option<super::reload_scope::ReloadScope>,
}

impl FileSpec {
    /// A file known only by its path: what a removal names (the content,
    /// mode and owner of a file being deleted do not matter).
    pub fn at(path: &str) -> FileSpec {
        FileSpec {
            path: path.to_string(),
            content: String::new(),
            mode: 0,
            owner: String::new(),
            group: String::new(),
            sensitive: false,
            reload_scope: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinarySpec {
    pub path: String,
    /// sha256 of the local build artifact.
    pub sha256: String,
    pub size: u64,
    /// The artifact on this machine.
    pub source: std::path::PathBuf,
    pub mode: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    Systemd,
    Direct,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: String,
    pub manager: Manager,
    /// The program and its arguments (the binary's path first).
    pub exec: Vec<String>,
    /// `direct`: pid file the daemon writes; `systemd`: unused.
    pub pid_file: String,
    /// `direct`: stdout/stderr of the daemon.
    pub log_file: String,
    /// sha256 of the binary the service runs: a restart is due when the
    /// running process is not this content.
    pub binary: Option<String>,
    /// Where that binary is installed.
    pub binary_path: Option<String>,
    /// The system user the service runs as; `None`: root.
    pub user: Option<String>,
}

/// A system user and the group of the same name: no login, no home of its
/// own, created once and then left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub name: String,
    /// Its home directory in the passwd entry (not created).
    pub home: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub name: super::listener::ListenerKind,
    pub address: std::net::IpAddr,
    pub port: u16,
    /// The service that must make it listen.
    pub service: String,
}

/// What a host said about a resource. `None` fields: absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "state", rename_all = "snake_case")]
pub enum Observed {
    File(Option<FileFact>),
    Binary(Option<FileFact>),
    Service(ServiceFact),
    Listener(ListenerFact),
    Certificate(crate::certs::CertFact),
    User(UserFact),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFact {
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub size: u64,
    pub sha256: String,
    /// Text content, for diffs (files only; binaries are compared by hash).
    #[serde(skip)]
    pub content: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceFact {
    pub running: bool,
    pub pid: Option<u32>,
    /// sha256 of the running program (`/proc/PID/exe`), when known.
    pub running_sha256: Option<String>,
    /// The user the running process belongs to (owner of `/proc/PID`),
    /// when known.
    #[serde(default)]
    pub running_user: Option<String>,
}

/// Whether a system user exists, and its numeric id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFact {
    pub uid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerFact {
    pub listening: bool,
}

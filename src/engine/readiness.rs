//! `NotReady`: hosts that cannot take a deployment as they are, found
//! while the world is read and reported by `plan` before anything changes
//! — each host with what is missing and the fix.
//!
//! A host is not ready when its login user cannot become root
//! (`become: sudo` without a passwordless sudo rule, or without sudo), when
//! the spec asks for systemd and the host's PID 1 is something else, when
//! it is an architecture this machine does not build the gateway for, or
//! when another process holds a port the gateway must listen on.
//!
//! Deciding is pure ([`check`], [`classify`]): facts and observations in,
//! findings out. Hosts that are ready are only read, never touched: a run
//! with a host that is not ready stops before the first change anywhere.

use std::collections::HashMap;
use std::fmt;

use crate::plan::{Desired, Observed, Resource};
use crate::transport::{Facts, TransportError};

/// One host that is not ready, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    pub host: String,
    pub problem: Problem,
}

/// What keeps a host from being deployed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `become: sudo`, and sudo refuses the login user without a password.
    NoSudoRights { user: String, said: String },
    /// `become: sudo`, and the host has no `sudo` at all.
    NoSudo { user: String },
    /// `gateway.service_manager: systemd` on a host whose PID 1 is not systemd.
    NoSystemd { pid1: String },
    /// The host's architecture is not the one the gateway is built for here.
    Arch { arch: String, local: String },
    /// A listener's port is held by a process that is not the gateway.
    PortTaken {
        listener: String,
        address: String,
        port: u16,
    },
}

impl Problem {
    /// What is wrong, in a sentence.
    pub fn what(&self) -> String {
        match self {
            Problem::NoSudoRights { user, said } => {
                format!("`become: sudo`, but sudo refuses `{user}` without a password ({said})")
            }
            Problem::NoSudo { user } => {
                format!("`become: sudo` for `{user}`, but the host has no `sudo`")
            }
            Problem::NoSystemd { pid1 } => {
                format!("`gateway.service_manager: systemd`, but PID 1 is `{pid1}`, not systemd")
            }
            Problem::Arch { arch, local } => format!(
                "the host is `{arch}`, but this machine builds the gateway for `{local}` only"
            ),
            Problem::PortTaken {
                listener,
                address,
                port,
            } => format!(
                "another process listens on {address}:{port}, where the gateway's {listener} listener must"
            ),
        }
    }

    /// What to do about it.
    pub fn fix(&self) -> String {
        match self {
            Problem::NoSudoRights { user, .. } => format!(
                "as root on the host: `echo '{user} ALL=(root) NOPASSWD: ALL' > /etc/sudoers.d/xfed && chmod 0440 /etc/sudoers.d/xfed` (or log in as root)"
            ),
            Problem::NoSudo { user } => format!(
                "install sudo on the host and give `{user}` a NOPASSWD rule, or log in as root"
            ),
            Problem::NoSystemd { .. } => "set `gateway.service_manager: auto` (systemd where PID 1 is systemd, `direct` elsewhere), or `direct`".into(),
            Problem::Arch { arch, .. } => format!(
                "run xfed on a `{arch}` machine, or add that target to the build"
            ),
            Problem::PortTaken { port, .. } => format!(
                "stop the process that holds the port (`ss -ltnp 'sport = :{port}'` names it), or give the server another port in the spec"
            ),
        }
    }
}

/// Every host that is not ready, for the error `plan` stops with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReadyReport(pub Vec<NotReady>);

impl fmt::Display for NotReadyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} host{} not ready; nothing was changed on any host:",
            if n == 1 { " is" } else { "s are" }
        )?;
        for r in &self.0 {
            write!(
                f,
                "\n  {}: {}\n    fix: {}",
                r.host,
                r.problem.what(),
                r.problem.fix()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for NotReadyReport {}

/// How a host is logged into, for [`classify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub sudo: bool,
}

/// A failed read of a host that means the host is not ready (rather than
/// a fault of xfed or of the connection), as a [`Problem`].
pub fn classify(login: &Login, err: &TransportError) -> Option<Problem> {
    if !login.sudo || login.user == "root" {
        return None;
    }
    let TransportError::CommandFailed { status, stderr, .. } = err else {
        return None;
    };
    let refused = [
        "sudo: a password is required",
        "sudo: a terminal is required",
        "is not in the sudoers file",
        "is not allowed to execute",
        "may not run sudo",
    ];
    if let Some(said) = stderr
        .lines()
        .map(str::trim)
        .find(|l| refused.iter().any(|r| l.contains(r)))
    {
        return Some(Problem::NoSudoRights {
            user: login.user.clone(),
            said: said.to_string(),
        });
    }
    let missing = *status == 127
        && stderr
            .lines()
            .any(|l| l.contains("sudo: not found") || l.contains("sudo: command not found"));
    missing.then(|| Problem::NoSudo {
        user: login.user.clone(),
    })
}

/// What the spec asks of each gateway host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wants<'a> {
    /// `gateway.service_manager: systemd`.
    pub systemd: bool,
    /// The architecture the gateway is built for here.
    pub arch: &'a str,
}

/// The hosts among `edges` (those that run the gateway) that are not ready,
/// from their facts and what was observed of the resources.
pub fn check(
    edges: &[&str],
    wants: Wants<'_>,
    facts: &HashMap<String, Facts>,
    resources: &[Resource],
    observed: &HashMap<String, Observed>,
) -> Vec<NotReady> {
    let mut out = Vec::new();
    for host in edges {
        let Some(f) = facts.get(*host) else {
            continue;
        };
        let mut add = |problem| {
            out.push(NotReady {
                host: host.to_string(),
                problem,
            })
        };
        if f.arch != wants.arch {
            add(Problem::Arch {
                arch: f.arch.clone(),
                local: wants.arch.to_string(),
            });
        }
        if wants.systemd && !f.systemd_pid1 {
            add(Problem::NoSystemd {
                pid1: if f.pid1.is_empty() {
                    "unknown".into()
                } else {
                    f.pid1.clone()
                },
            });
        }
        // A port is taken when something listens there while the service
        // that should is not running: a running gateway's own sockets are
        // not a conflict.
        for r in resources.iter().filter(|r| r.host == *host) {
            let Desired::Listener(l) = &r.desired else {
                continue;
            };
            let listening =
                matches!(observed.get(&r.address), Some(Observed::Listener(x)) if x.listening);
            let service_running = matches!(
                observed.get(&l.service),
                Some(Observed::Service(s)) if s.running
            );
            if listening && !service_running {
                add(Problem::PortTaken {
                    listener: l.name.to_string(),
                    address: l.address.to_string(),
                    port: l.port,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ListenerFact, ListenerKind, ListenerSpec, Phase, ServiceFact};
    use crate::spec::source::Pos;
    use crate::spec::{Origin, Role};

    fn facts(arch: &str, pid1: &str) -> Facts {
        Facts {
            os_id: "debian".into(),
            os_version: Some("12".into()),
            arch: arch.into(),
            systemd_pid1: pid1 == "systemd",
            pid1: pid1.into(),
            hostname: "h".into(),
            glibc: None,
            libc_reported: String::new(),
        }
    }

    fn failed(status: i32, stderr: &str) -> TransportError {
        TransportError::CommandFailed {
            host: "edge2".into(),
            command: "observe".into(),
            status,
            stderr: stderr.into(),
            hint: None,
        }
    }

    fn sudo_login() -> Login {
        Login {
            user: "deploy".into(),
            sudo: true,
        }
    }

    #[test]
    fn sudo_without_rights_is_named_with_the_rule_to_add() {
        let p = classify(&sudo_login(), &failed(1, "sudo: a password is required\n"))
            .expect("not ready");
        assert!(matches!(p, Problem::NoSudoRights { .. }), "{p:?}");
        assert!(p.what().contains("`deploy`"), "{}", p.what());
        assert!(
            p.fix().contains("deploy ALL=(root) NOPASSWD: ALL"),
            "{}",
            p.fix()
        );
        let p =
            classify(&sudo_login(), &failed(127, "sh: 1: sudo: not found\n")).expect("not ready");
        assert_eq!(
            p,
            Problem::NoSudo {
                user: "deploy".into()
            }
        );
    }

    #[test]
    fn other_failures_and_root_logins_are_not_readiness() {
        assert_eq!(
            classify(&sudo_login(), &failed(2, "stat: cannot stat\n")),
            None
        );
        let root = Login {
            user: "root".into(),
            sudo: true,
        };
        assert_eq!(
            classify(&root, &failed(1, "sudo: a password is required\n")),
            None
        );
        let plain = Login {
            user: "deploy".into(),
            sudo: false,
        };
        assert_eq!(
            classify(&plain, &failed(1, "sudo: a password is required\n")),
            None
        );
    }

    fn listener(host: &str) -> (Vec<Resource>, &'static str) {
        let svc = "edge/p/edge1/service:xfed-gateway";
        let r = Resource {
            address: format!("edge/p/{host}/listener:external"),
            host: host.into(),
            role: Role::Edge,
            pool: "p".into(),
            phase: Phase::Verify,
            desired: Desired::Listener(ListenerSpec {
                name: ListenerKind::External,
                address: "198.51.100.101".parse().expect("ip"),
                port: 5269,
                service: svc.into(),
            }),
            origin: Origin::new("spec.yaml".into(), Pos { line: 1, col: 1 }, "edge_pools"),
            notifies: None,
        };
        (vec![r], svc)
    }

    #[test]
    fn a_port_held_by_another_process_is_not_ready_a_running_gateway_is() {
        let (resources, svc) = listener("edge1");
        let f = HashMap::from([("edge1".to_string(), facts("x86_64", "sshd"))]);
        let wants = Wants {
            systemd: false,
            arch: "x86_64",
        };
        let mut observed = HashMap::from([
            (
                resources[0].address.clone(),
                Observed::Listener(ListenerFact { listening: true }),
            ),
            (
                svc.to_string(),
                Observed::Service(ServiceFact {
                    running: false,
                    pid: None,
                    running_sha256: None,
                    running_user: None,
                }),
            ),
        ]);
        let found = check(&["edge1"], wants, &f, &resources, &observed);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].problem.what().contains("198.51.100.101:5269"),
            "{}",
            found[0].problem.what()
        );
        assert!(found[0].problem.fix().contains("ss -ltnp"));
        observed.insert(
            svc.to_string(),
            Observed::Service(ServiceFact {
                running: true,
                pid: Some(7),
                running_sha256: None,
                running_user: None,
            }),
        );
        assert_eq!(check(&["edge1"], wants, &f, &resources, &observed), vec![]);
    }

    #[test]
    fn systemd_asked_where_there_is_none_and_a_foreign_arch_are_not_ready() {
        let f = HashMap::from([
            ("edge1".to_string(), facts("x86_64", "sshd")),
            ("edge2".to_string(), facts("aarch64", "systemd")),
        ]);
        let wants = Wants {
            systemd: true,
            arch: "x86_64",
        };
        let found = check(&["edge1", "edge2"], wants, &f, &[], &HashMap::new());
        assert_eq!(
            found,
            vec![
                NotReady {
                    host: "edge1".into(),
                    problem: Problem::NoSystemd {
                        pid1: "sshd".into()
                    }
                },
                NotReady {
                    host: "edge2".into(),
                    problem: Problem::Arch {
                        arch: "aarch64".into(),
                        local: "x86_64".into()
                    }
                },
            ]
        );
        let text = NotReadyReport(found).to_string();
        assert!(
            text.starts_with("2 hosts are not ready; nothing was changed on any host:"),
            "{text}"
        );
        assert!(
            text.contains("  edge1: `gateway.service_manager: systemd`, but PID 1 is `sshd`"),
            "{text}"
        );
        assert!(
            text.contains("    fix: set `gateway.service_manager: auto`"),
            "{text}"
        );
    }
}

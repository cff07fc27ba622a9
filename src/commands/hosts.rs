//! `xfed hosts scan SPEC [--write]`: first contact done right. Fetches
//! every server's SSH host keys before authenticating, prints each as
//! `ssh-keygen -lf` does with where it stands in the spec's known_hosts
//! (match, new, CHANGED), and records the new ones only with `--write`.
//!
//! A changed key is never replaced: `--write` then writes nothing and names
//! both fingerprints. Trust on first use stays `--accept-new-host-keys`;
//! this is the way to check before trusting. Nothing is authenticated or
//! run on any host.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::ExitStatus;
use super::error::{CommandError, Result};
use super::run::{count, load};
use crate::engine::fan_out;
use crate::engine::hosts::ssh_config;
use crate::transport::TransportError;
use crate::transport::ssh::{HostKey, HostScan, KeyStatus, record};

/// `xfed hosts …`: the subcommands.
#[derive(Subcommand, Debug)]
pub enum HostsCommand {
    /// Fetch every server's SSH host keys, print their fingerprints (as
    /// `ssh-keygen -lf`) and whether known_hosts has them; `--write`
    /// records the new ones.
    Scan(ScanArgs),
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    pub spec: PathBuf,
    /// Append the new keys to the spec's known_hosts (a changed key is
    /// refused, and then nothing is written).
    #[arg(long)]
    pub write: bool,
    /// Hosts contacted at once.
    #[arg(long, default_value_t = 20)]
    pub parallelism: usize,
}

/// One server's scan, as the spec names it.
#[derive(Debug)]
pub struct Row {
    pub fqdn: String,
    pub endpoint: String,
    pub known_hosts: PathBuf,
    pub scan: std::result::Result<HostScan, TransportError>,
}

/// What `--write` would do: the keys to append, or why nothing may be.
#[derive(Debug, PartialEq, Eq)]
pub struct Writes {
    /// `(known_hosts, name, key)`, each once, in spec order.
    pub new: Vec<(PathBuf, String, HostKey)>,
    /// One line per key on file that the host no longer offers as such
    /// (changed or revoked): any makes `--write` refuse.
    pub refused: Vec<String>,
}

/// The decision, pure: every new key once; every changed or revoked key
/// named with both fingerprints.
pub fn writes(rows: &[Row]) -> Writes {
    let mut new = Vec::new();
    let mut seen = BTreeSet::new();
    let mut refused = Vec::new();
    for row in rows {
        let Ok(scan) = &row.scan else { continue };
        for k in &scan.keys {
            match &k.status {
                KeyStatus::New => {
                    if seen.insert((
                        row.known_hosts.clone(),
                        scan.name.clone(),
                        k.key.to_base64(),
                    )) {
                        new.push((row.known_hosts.clone(), scan.name.clone(), k.key.clone()));
                    }
                }
                KeyStatus::Changed { line, on_file } => refused.push(format!(
                    "`{}` ({}) offers {} but line {line} of `{}` has {}",
                    row.fqdn,
                    scan.name,
                    k.key.keygen_line(&scan.name),
                    row.known_hosts.display(),
                    on_file.keygen_line(&scan.name)
                )),
                KeyStatus::Revoked { line } => refused.push(format!(
                    "`{}` ({}) offers {}, revoked on line {line} of `{}`",
                    row.fqdn,
                    scan.name,
                    k.key.keygen_line(&scan.name),
                    row.known_hosts.display()
                )),
                KeyStatus::Match { .. } => {}
            }
        }
    }
    Writes { new, refused }
}

/// The report: per server its keys as `ssh-keygen -lf` prints them, each
/// with where it stands.
pub fn render(rows: &[Row]) -> String {
    let mut s = String::new();
    let (mut matched, mut new, mut changed, mut failed) = (0, 0, 0, 0);
    for row in rows {
        s.push_str(&format!("{}  {}\n", row.fqdn, row.endpoint));
        let scan = match &row.scan {
            Ok(scan) => scan,
            Err(e) => {
                failed += 1;
                s.push_str(&format!("  error: {e}\n"));
                continue;
            }
        };
        if scan.keys.is_empty() {
            s.push_str("  (no host key of a type xfed can check)\n");
        }
        for k in &scan.keys {
            let state = match &k.status {
                KeyStatus::Match { line } => {
                    matched += 1;
                    format!("match (known_hosts line {line})")
                }
                KeyStatus::New => {
                    new += 1;
                    "new".to_string()
                }
                KeyStatus::Changed { line, on_file } => {
                    changed += 1;
                    format!(
                        "CHANGED: known_hosts line {line} has {}",
                        on_file.fingerprint()
                    )
                }
                KeyStatus::Revoked { line } => {
                    changed += 1;
                    format!("REVOKED on known_hosts line {line}")
                }
            };
            s.push_str(&format!("  {}  {state}\n", k.key.keygen_line(&scan.name)));
        }
    }
    let files: BTreeSet<String> = rows
        .iter()
        .map(|r| format!("`{}`", r.known_hosts.display()))
        .collect();
    s.push_str(&format!(
        "\n{}: {matched} matching, {new} new, {changed} changed{}; known_hosts: {}\n",
        count(rows.len(), "host"),
        if failed > 0 {
            format!(", {failed} unreachable")
        } else {
            String::new()
        },
        files.into_iter().collect::<Vec<_>>().join(", ")
    ));
    s
}

pub async fn run(command: &HostsCommand) -> Result<ExitStatus> {
    let HostsCommand::Scan(args) = command;
    let spec = load(&args.spec)?;
    let jobs = spec.servers().map(|s| {
        let cfg = ssh_config(&s.fqdn, &s.ssh, false);
        let job = async move {
            tokio::task::spawn_blocking(move || {
                let scan = HostScan::fetch(&cfg);
                (cfg.endpoint(), cfg.known_hosts.clone(), scan)
            })
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        };
        (s.fqdn.clone(), job)
    });
    let rows: Vec<Row> = fan_out(jobs, args.parallelism.max(1))
        .await
        .into_iter()
        .map(|(fqdn, r)| match r {
            Ok((endpoint, known_hosts, scan)) => Row {
                fqdn,
                endpoint,
                known_hosts,
                scan,
            },
            Err(panicked) => Row {
                endpoint: String::new(),
                known_hosts: PathBuf::new(),
                scan: Err(TransportError::Panicked {
                    host: fqdn.clone(),
                    message: panicked.message,
                }),
                fqdn,
            },
        })
        .collect();
    print!("{}", spec.redactor.redact(&render(&rows)));

    let w = writes(&rows);
    let failed = rows.iter().any(|r| r.scan.is_err());
    if !args.write {
        if !w.new.is_empty() {
            eprintln!(
                "Compare each new fingerprint with the server's own (on its console: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then record them with `xfed hosts scan {} --write`.",
                args.spec.display()
            );
        }
        return Ok(if failed || !w.refused.is_empty() {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        });
    }
    if !w.refused.is_empty() {
        return Err(CommandError::Refused(format!(
            "a host key on file is no longer what the host offers; nothing was written:\n  {}\n  hint: a changed key means the server was reinstalled or someone is in between; check the new fingerprint on the server's console, then remove the old line (`ssh-keygen -R NAME -f KNOWN_HOSTS`) and scan again",
            w.refused.join("\n  ")
        )));
    }
    for (path, name, key) in &w.new {
        record(path, name, key).map_err(|e| CommandError::Refused(e.to_string()))?;
    }
    println!("Wrote {} to known_hosts.", count(w.new.len(), "new key"));
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ssh::ScannedKey;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIMdFl7mAX7hd/16vixk1tQsYPDuPv0iL3BKf8abX/Myl";
    const EC: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOUqGjFkhQn21gDy3d2PvAQfvS3jDlQBEslUUVAWFNBBYt82U7zkxgtpGVS2qYZJFnxG5uLTN6e72xdHvmR7RNM=";

    fn key(b64: &str) -> HostKey {
        HostKey::from_base64(b64).expect("key")
    }

    fn row(fqdn: &str, name: &str, keys: Vec<(HostKey, KeyStatus)>) -> Row {
        Row {
            fqdn: fqdn.into(),
            endpoint: format!("{name}:22"),
            known_hosts: "/kh".into(),
            scan: Ok(HostScan {
                name: name.into(),
                keys: keys
                    .into_iter()
                    .map(|(key, status)| ScannedKey { key, status })
                    .collect(),
            }),
        }
    }

    #[test]
    fn new_keys_are_written_once_and_matching_ones_not_at_all() {
        let rows = vec![
            row(
                "fe1",
                "203.0.113.11",
                vec![(key(ED), KeyStatus::Match { line: 1 })],
            ),
            row(
                "edge1",
                "203.0.113.101",
                vec![(key(ED), KeyStatus::New), (key(EC), KeyStatus::New)],
            ),
            // The same address twice in the spec: one line.
            row(
                "edge1-again",
                "203.0.113.101",
                vec![(key(ED), KeyStatus::New)],
            ),
        ];
        let w = writes(&rows);
        assert!(w.refused.is_empty());
        assert_eq!(
            w.new,
            vec![
                ("/kh".into(), "203.0.113.101".into(), key(ED)),
                ("/kh".into(), "203.0.113.101".into(), key(EC)),
            ]
        );
        let text = render(&rows);
        assert!(text.contains(
            "  256 SHA256:KOIPPfyjj7WBWX9yRTR1rScg88IW3xrN+YUruIhaEd4 203.0.113.11 (ED25519)  match (known_hosts line 1)\n"
        ), "{text}");
        assert!(text.contains("203.0.113.101 (ECDSA)  new\n"), "{text}");
        assert!(
            text.contains("3 hosts: 1 matching, 3 new, 0 changed; known_hosts: `/kh`"),
            "{text}"
        );
    }

    #[test]
    fn an_unreachable_host_is_reported_and_writes_nothing() {
        let rows = vec![Row {
            fqdn: "edge3".into(),
            endpoint: "203.0.113.103:22".into(),
            known_hosts: "/kh".into(),
            scan: Err(TransportError::Connect {
                host: "edge3".into(),
                address: "203.0.113.103:22".into(),
                source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            }),
        }];
        assert_eq!(
            writes(&rows),
            Writes {
                new: Vec::new(),
                refused: Vec::new()
            }
        );
        let text = render(&rows);
        assert!(
            text.starts_with("edge3  203.0.113.103:22\n  error: "),
            "{text}"
        );
        assert!(
            text.contains("1 host: 0 matching, 0 new, 0 changed, 1 unreachable"),
            "{text}"
        );
    }

    #[test]
    fn a_changed_key_is_refused_with_both_fingerprints() {
        let rows = vec![
            row("edge1", "203.0.113.101", vec![(key(ED), KeyStatus::New)]),
            row(
                "edge2",
                "203.0.113.102",
                vec![(
                    key(EC),
                    KeyStatus::Changed {
                        line: 4,
                        on_file: key(ED),
                    },
                )],
            ),
        ];
        let w = writes(&rows);
        assert_eq!(w.refused.len(), 1);
        let line = &w.refused[0];
        assert!(
            line.contains("SHA256:yUZ4D0Yewvbr041Si+iIvYqGRhEl2sUtFytt5aXCNFc"),
            "{line}"
        );
        assert!(
            line.contains(
                "line 4 of `/kh` has 256 SHA256:KOIPPfyjj7WBWX9yRTR1rScg88IW3xrN+YUruIhaEd4"
            ),
            "{line}"
        );
        let text = render(&rows);
        assert!(
            text.contains("CHANGED: known_hosts line 4 has SHA256:KOIPP"),
            "{text}"
        );
    }
}

//! The gateway's systemd unit, as the xmpp-gateway module renders it for
//! the lab spec on a host that runs systemd, rated by systemd's own
//! `systemd-analyze security --offline=yes`: the exposure must stay at or
//! below 2.0 (the unit without sandboxing rated 9.6, "UNSAFE"), and the
//! settings that hold the gateway's privilege down must be there.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use xfed::modules::{self, Artifact, HostFacts};
use xfed::plan::{Desired, Resource};
use xfed::spec::{self, MapInputs, Source};

const MAX_EXPOSURE: f64 = 2.0;

/// `playbooks/lab.yaml`, its secrets given, its CA bundles left out (they
/// are read from the lab's state dir and change nothing in the unit).
fn lab_spec() -> spec::Spec {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("playbooks/lab.yaml");
    let text = std::fs::read_to_string(&path).expect("playbook");
    let mut inputs = MapInputs::default();
    inputs.files.insert(
        PathBuf::from("/var/lib/xfed-lab/pdns/api-key"),
        "lab-key\n".into(),
    );
    inputs.files.insert(
        PathBuf::from("/var/lib/xfed-lab/internal/ca.key"),
        "-----BEGIN PRIVATE KEY-----\nlab\n-----END PRIVATE KEY-----\n".into(),
    );
    let mut spec = match spec::load(&Source::new(&path, text), Arc::new(inputs)) {
        Ok(loaded) => loaded.spec,
        Err(e) => panic!("the lab spec loads:\n{e}"),
    };
    spec.gateway.internal_ca = None;
    spec.gateway.partner_ca = None;
    spec.gateway.service_manager = spec::ServiceManager::Auto;
    spec
}

/// Every edge server's rendered `xfed-gateway.service`, as if it ran systemd.
fn rendered_units(spec: &spec::Spec) -> Vec<(String, String)> {
    let artifacts = HashMap::from([(
        "gateway".to_string(),
        Artifact {
            path: PathBuf::from("target/release/xfed-gateway"),
            sha256: "0".repeat(64),
            size: 1,
        },
    )]);
    let facts: HashMap<String, HostFacts> = spec
        .servers()
        .map(|s| (s.fqdn.clone(), HostFacts { systemd: true }))
        .collect();
    let resources: Vec<Resource> =
        modules::expand(spec, &artifacts, &facts).expect("the lab spec expands");
    resources
        .iter()
        .filter_map(|r| match &r.desired {
            Desired::File(f) if f.path == "/etc/systemd/system/xfed-gateway.service" => {
                Some((r.host.clone(), f.content.clone()))
            }
            _ => None,
        })
        .collect()
}

/// `systemd-analyze security --offline=yes` on `unit`: its overall
/// exposure and the full table (for failure messages).
fn exposure(unit: &str) -> (f64, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("xfed-gateway.service");
    std::fs::write(&path, unit).expect("write unit");
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .expect("systemd-analyze runs (tests/lab/install-deps installs systemd)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let score = text
        .lines()
        .find_map(|l| {
            let rest = l
                .split("Overall exposure level for xfed-gateway.service:")
                .nth(1)?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .unwrap_or_else(|| panic!("no overall exposure in:\n{text}"));
    (score, text)
}

#[test]
fn the_lab_gateway_unit_scores_at_most_two() {
    let spec = lab_spec();
    let units = rendered_units(&spec);
    assert_eq!(units.len(), 2, "one unit per lab edge server: {units:?}");
    for (host, unit) in &units {
        let (score, table) = exposure(unit);
        assert!(
            score <= MAX_EXPOSURE,
            "{host}: exposure {score} > {MAX_EXPOSURE}\n{unit}\n{table}"
        );
    }
}

#[test]
fn the_unit_runs_the_gateway_as_its_user_without_privilege() {
    let mut spec = lab_spec();
    spec.gateway.memory_max = "768M".into();
    let (_, unit) = rendered_units(&spec).remove(0);
    let user = &spec.gateway.user;
    assert_eq!(user, "xfed-gateway", "the default user");
    for line in [
        format!("User={user}"),
        format!("Group={user}"),
        "NoNewPrivileges=yes".into(),
        "CapabilityBoundingSet=".into(),
        "AmbientCapabilities=".into(),
        "ProtectSystem=strict".into(),
        "PrivateTmp=yes".into(),
        "PrivateDevices=yes".into(),
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX".into(),
        "MemoryMax=768M".into(),
        "StateDirectory=xfed-gateway".into(),
        "LogsDirectory=xfed-gateway".into(),
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "`{line}` missing from:\n{unit}"
        );
    }
    // The unit without the sandbox is what the score is measured against:
    // the test would notice if systemd-analyze stopped telling them apart.
    let bare: String = unit
        .lines()
        .filter(|l| {
            !l.contains('=')
                || ["Type", "ExecStart", "ExecReload", "Description", "WantedBy"]
                    .iter()
                    .any(|k| l.starts_with(&format!("{k}=")))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let (score, table) = exposure(&bare);
    assert!(
        score > 9.0,
        "the bare unit scored {score}:\n{bare}\n{table}"
    );
}

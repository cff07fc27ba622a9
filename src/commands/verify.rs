//! `xfed verify SPEC`: every listener of every host, the topology on every
//! server, and DNS — the table `apply` also ends with.

use std::path::PathBuf;

use clap::Args;

use super::error::Result;
use super::run::{prepared, print_out};
use super::{ExitStatus, RunArgs};
use crate::engine::Prepared;
use crate::engine::clock::now_unix;
use crate::plan::Target;
use crate::verify::report::{VerifyReport, render};
use crate::verify::{dns, listeners, topology};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    pub spec: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
}

pub async fn run(args: &VerifyArgs) -> Result<ExitStatus> {
    let p = prepared(&args.spec, &args.run).await?;
    let failed = report_verify(&p, true).await;
    Ok(if failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// The servers `--target pool:…`/`server:…` name, when any does: the
/// table shows only their rows.
fn targeted_hosts(p: &Prepared) -> Option<Vec<String>> {
    let mut hosts = Vec::new();
    for t in &p.options.targets {
        match t {
            Target::Server(h) => hosts.push(h.clone()),
            Target::Pool(pool) => hosts.extend(
                p.spec
                    .servers()
                    .filter(|s| s.pool == *pool)
                    .map(|s| s.fqdn.clone()),
            ),
            _ => {}
        }
    }
    (!hosts.is_empty()).then_some(hosts)
}

/// Checks and prints the verify table; returns how many rows failed.
/// `fresh`: nothing changed since `p` observed the hosts.
pub(crate) async fn report_verify(p: &Prepared, fresh: bool) -> usize {
    let mut rows = listeners::verify_listeners(p, fresh).await;
    let hosts = targeted_hosts(p);
    if rows.is_empty() && p.spec.dns.is_none() && p.spec.frontend_pools.is_empty() {
        return 0;
    }
    let mut topology = topology::verify_topology(p, &rows).await;
    if let Some(hosts) = &hosts {
        rows.retain(|r| hosts.contains(&r.host));
        topology.retain(|r| hosts.contains(&r.server));
    }
    // Targeted: only the zones the targets name were written.
    let targets = &p.options.targets;
    let zone_targeted = |zone: &str| {
        targets.is_empty()
            || targets
                .iter()
                .any(|t| matches!(t, Target::Zone(n) if n.trim_end_matches('.') == zone.trim_end_matches('.')))
    };
    let dns_rows = match p.spec.dns {
        Some(_) => Some(dns::verify_zones(&p.spec, &zone_targeted).await),
        None => None,
    };
    let (text, failed) = render(&VerifyReport {
        listeners: &rows,
        topology: &topology,
        want_topology: &p.topology_version,
        dns: dns_rows.as_deref(),
        now_unix: now_unix() as i64,
    });
    print_out(p, &text);
    failed
}

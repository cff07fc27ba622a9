//! Topology replication, as the seed's replication status shows it: every
//! front-end holds the spec's topology version, and every gateway of an
//! XMPP pool reports (in `/status`) that it has loaded that version's
//! partners and policies. Reads only.

use super::listeners::VerifyRow;
use crate::engine::{Prepared, fan_out};
use crate::plan::{Desired, ListenerKind};
use crate::spec::Role;

/// One server's copy of the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyRow {
    pub server: String,
    /// `front-end` or `gateway`.
    pub role: &'static str,
    /// The version it holds, or why there is none.
    pub seen: String,
    pub ok: bool,
}

/// Every front-end's published version, then every gateway's loaded one
/// (from the admin listeners' rows of `listeners`), each against the
/// version the spec gives.
pub async fn verify_topology(p: &Prepared, listeners: &[VerifyRow]) -> Vec<TopologyRow> {
    let want = p.topology_version.clone();
    // Read now, not taken from the plan: after an apply the plan's
    // observation is the world before it.
    let reads = p
        .resources
        .iter()
        .filter(|r| r.role == Role::Frontend)
        .filter_map(|r| match &r.desired {
            Desired::File(f) if f.path.ends_with("/topology.json") => {
                Some((r.host.clone(), f.path.clone()))
            }
            _ => None,
        })
        .filter_map(|(host, path)| {
            let h = p.hosts.get(&host)?.clone();
            let want = want.clone();
            let key = host.clone();
            Some((key, async move {
                let read = h.with(move |t| t.read_file(&path)).await;
                let version = match read {
                    Ok(Some(bytes)) => serde_json::from_slice::<crate::topology::Topology>(&bytes)
                        .map(|t| t.version)
                        .map_err(|_| "(not a topology document)".to_string()),
                    Ok(None) => Err("(not published)".to_string()),
                    Err(e) => Err(format!("cannot read: {e}")),
                };
                TopologyRow {
                    server: host,
                    role: "front-end",
                    ok: version.as_deref() == Ok(want.as_str()),
                    seen: version.unwrap_or_else(|e| e),
                }
            }))
        });
    let mut rows: Vec<TopologyRow> = fan_out(reads, p.options.parallelism)
        .await
        .into_iter()
        .map(|(server, row)| {
            row.unwrap_or_else(|panicked| TopologyRow {
                server,
                role: "front-end",
                seen: panicked.to_string(),
                ok: false,
            })
        })
        .collect();
    // Each gateway's `/status` was read by the listener check already.
    rows.extend(
        listeners
            .iter()
            .filter(|r| r.listener == ListenerKind::Admin)
            .map(|r| {
                let (seen, ok) = match &r.topology_version {
                    Some(v) => (v.clone(), *v == want),
                    None if r.ok => ("(none)".to_string(), false),
                    None => (r.state.clone(), false),
                };
                TopologyRow {
                    server: r.host.clone(),
                    role: "gateway",
                    seen,
                    ok,
                }
            }),
    );
    rows
}

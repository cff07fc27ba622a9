//! Topology replication, as the seed's replication status shows it: every
//! front-end holds the spec's topology version, and every gateway of an
//! XMPP pool reports (in `/status`) that it has loaded that version's
//! partners and policies. Reads only.

use std::net::SocketAddr;
use std::time::Duration;

use crate::apply::Prepared;
use crate::apply::probe::gateway_status;
use crate::plan::Desired;
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

/// Every front-end's published version, then every gateway's loaded one,
/// each against the version the spec gives.
pub async fn verify_topology(p: &Prepared) -> Vec<TopologyRow> {
    let want = crate::modules::topology(&p.spec)["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
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
            Some(async move {
                let read = h.with(move |t| t.read_file(&path)).await;
                let version = match read {
                    Ok(Some(bytes)) => serde_json::from_slice::<serde_json::Value>(&bytes)
                        .ok()
                        .and_then(|d| d["version"].as_str().map(str::to_string))
                        .ok_or_else(|| "(not a topology document)".to_string()),
                    Ok(None) => Err("(not published)".to_string()),
                    Err(e) => Err(format!("cannot read: {e}")),
                };
                TopologyRow {
                    server: host,
                    role: "front-end",
                    ok: version.as_deref() == Ok(want.as_str()),
                    seen: version.unwrap_or_else(|e| e),
                }
            })
        });
    let mut rows = join_all(reads).await;
    let limit = Duration::from_secs(3);
    let probes = p
        .spec
        .edge_pools
        .iter()
        .filter(|pool| pool.xmpp_federation)
        .flat_map(|pool| &pool.servers)
        .map(|s| {
            let admin = SocketAddr::new(s.internal_address, p.spec.gateway.admin_port);
            let want = want.clone();
            let server = s.server.fqdn.clone();
            async move {
                let (seen, ok) = match gateway_status(admin, limit).await {
                    Ok(st) => {
                        let v = st.topology_version.unwrap_or_else(|| "(none)".into());
                        let ok = v == want;
                        (v, ok)
                    }
                    Err(e) => (format!("/status: {e}"), false),
                };
                TopologyRow {
                    server,
                    role: "gateway",
                    seen,
                    ok,
                }
            }
        });
    rows.extend(join_all(probes).await);
    rows
}

async fn join_all<F: std::future::Future<Output = TopologyRow> + Send + 'static>(
    probes: impl Iterator<Item = F>,
) -> Vec<TopologyRow> {
    let tasks: Vec<_> = probes.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for t in tasks {
        if let Ok(row) = t.await {
            out.push(row);
        }
    }
    out
}

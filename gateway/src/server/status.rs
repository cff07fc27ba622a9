//! The `/status` document: what is running, with which configuration and
//! certificates, and how busy it is.
//!
//! Field names are a contract with `xfed verify` and `xfed doctor`; add
//! fields, never rename them.

use super::shared::Shared;
use crate::config::{ListenerKind, PartnerKind};
use crate::tls::ListenerTls;
use serde::Serialize;
use std::collections::BTreeMap;

/// `/status` body.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Gateway version.
    pub version: &'static str,
    /// SHA-256 of the running executable (`/proc/self/exe`).
    pub binary_sha256: Option<String>,
    /// The config file path.
    pub config_path: String,
    /// SHA-256 of the config file bytes currently applied.
    pub config_sha256: String,
    /// The policy file (`policy_file`, resolved), or null when partners
    /// and policies are in the config file.
    pub policy_file: Option<String>,
    /// SHA-256 of the policy file bytes currently applied, or null.
    pub policy_sha256: Option<String>,
    /// `topology_version` from the policy file or, without one, the config.
    pub topology_version: Option<String>,
    /// Fronted domains.
    pub domains: Vec<String>,
    /// `running` or `draining`.
    pub state: &'static str,
    /// External, internal and admin listeners.
    pub listeners: Vec<ListenerStatus>,
    /// Number of `[[partners]]`.
    pub partners: usize,
    /// Number of `[[partners]]` of each kind (every kind listed, 0 included).
    pub partners_by_kind: BTreeMap<&'static str, usize>,
    /// Number of `[[policies]]`.
    pub policies: usize,
    /// Number of `[[grants]]`.
    pub grants: usize,
    /// Users named by a grant (a grant to all users counts none).
    pub granted_users: usize,
    /// Number of `[[sites]]`.
    pub sites: usize,
    /// Users homed on a site.
    pub site_users: usize,
    /// Process start, RFC 3339.
    pub started_at: String,
    /// Last successful reload, RFC 3339, or null.
    pub reloaded_at: Option<String>,
    /// The relay, or null without `[relay]`.
    pub relay: Option<RelayStatus>,
    /// Process ID.
    pub pid: u32,
}

/// The relay in `/status`.
#[derive(Debug, Serialize)]
pub struct RelayStatus {
    /// `relay.internal_server` as configured.
    pub internal_server: String,
    /// Outbound streams open now.
    pub outbound_streams: usize,
    /// Each outbound stream: `from->to`, its leg and state.
    pub outbound: Vec<OutboundStatus>,
    /// Authenticated inbound streams, by listener.
    pub authenticated_streams: BTreeMap<&'static str, u64>,
    /// Each authenticated inbound stream: listener, peer domain, how.
    pub inbound: Vec<InboundStatus>,
}

/// One authenticated inbound stream in `/status`.
#[derive(Debug, Serialize)]
pub struct InboundStatus {
    /// Always `inbound`.
    pub direction: &'static str,
    /// `external` or `internal`.
    pub listener: &'static str,
    /// The authenticated peer domain.
    pub domain: String,
    /// `external` (SASL EXTERNAL) or `dialback`.
    pub auth: &'static str,
}

/// One outbound stream in `/status`.
#[derive(Debug, Serialize)]
pub struct OutboundStatus {
    /// `from->to`.
    pub pair: String,
    /// `internal` or `partner`.
    pub leg: &'static str,
    /// `connecting` or `established`.
    pub state: &'static str,
    /// Always `outbound`.
    pub direction: &'static str,
    /// `external` (SASL EXTERNAL) or `dialback`, once established.
    pub auth: Option<&'static str>,
}

/// One listener in `/status`.
#[derive(Debug, Serialize)]
pub struct ListenerStatus {
    /// `external`, `internal` or `admin`.
    pub name: &'static str,
    /// The bound address.
    pub address: String,
    /// Whether the socket is bound (always, while the process runs).
    pub bound: bool,
    /// The configuration names another address; it applies after a restart.
    pub restart_required: bool,
    /// Certificate facts, or null when no certificate is installed (and for admin).
    pub tls: Option<TlsStatus>,
    /// Open connections.
    pub connections_current: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections refused by a limit since start.
    pub connections_rejected: u64,
}

/// Certificate facts in `/status`.
#[derive(Debug, Serialize)]
pub struct TlsStatus {
    /// Lowercase hex SHA-256 of the leaf certificate (DER).
    pub fingerprint_sha256: String,
    /// DNS names of the leaf.
    pub subject_names: Vec<String>,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// `optional` or `required` client certificates.
    pub client_auth: &'static str,
}

impl TlsStatus {
    fn of(tls: &ListenerTls) -> TlsStatus {
        TlsStatus {
            fingerprint_sha256: tls.certificate.fingerprint_sha256.clone(),
            subject_names: tls.certificate.subject_names.clone(),
            not_before: crate::clock::rfc3339_secs(tls.certificate.not_before),
            not_after: crate::clock::rfc3339_secs(tls.certificate.not_after),
            client_auth: tls.client_auth.as_str(),
        }
    }
}

impl Status {
    /// A snapshot of `shared`.
    pub fn collect(shared: &Shared) -> Status {
        let generation = shared.current();
        let config = &generation.config;
        let mut listeners = Vec::with_capacity(3);
        for kind in ListenerKind::ALL {
            let metrics = shared.listener_metrics(kind);
            let bound = shared.bound_address(kind);
            listeners.push(ListenerStatus {
                name: kind.name(),
                address: bound.to_string(),
                bound: true,
                restart_required: !same_address(config.listener(kind).address, bound),
                tls: generation.listener(kind).tls.as_ref().map(TlsStatus::of),
                connections_current: u64::from(shared.limiter(kind).current()),
                connections_total: super::metrics::get(&metrics.connections_total),
                connections_rejected: metrics.rejected_total(),
            });
        }
        listeners.push(ListenerStatus {
            name: "admin",
            address: shared.bound[2].to_string(),
            bound: true,
            restart_required: !same_address(config.admin.address, shared.bound[2]),
            tls: None,
            connections_current: u64::from(shared.admin_limiter.current()),
            connections_total: super::metrics::get(&shared.metrics.admin.connections_total),
            connections_rejected: shared.metrics.admin.rejected_total(),
        });
        Status {
            version: crate::VERSION,
            binary_sha256: shared.binary_sha256.clone(),
            config_path: config.path.display().to_string(),
            config_sha256: config.sha256.clone(),
            policy_file: config
                .policy_file
                .as_ref()
                .map(|p| p.path.display().to_string()),
            policy_sha256: config.policy_file.as_ref().map(|p| p.sha256.clone()),
            topology_version: config.topology_version.clone(),
            domains: config.domains.clone(),
            state: if shared.draining() {
                "draining"
            } else {
                "running"
            },
            listeners,
            partners: config.partners.len(),
            partners_by_kind: PartnerKind::ALL
                .into_iter()
                .map(|kind| {
                    let n = config.partners.iter().filter(|p| p.kind == kind).count();
                    (kind.as_str(), n)
                })
                .collect(),
            policies: config.policies.len(),
            grants: config.grants.len(),
            granted_users: generation.policy.granted_users(),
            sites: config.sites.len(),
            site_users: generation.policy.site_users(),
            started_at: crate::clock::rfc3339_secs(shared.started_at),
            reloaded_at: shared.reloaded_at().map(crate::clock::rfc3339_secs),
            relay: config.relay.as_ref().map(|relay| {
                let outbound: Vec<OutboundStatus> = shared
                    .relay
                    .outbound()
                    .into_iter()
                    .map(|(pair, (leg, state))| OutboundStatus {
                        auth: shared.relay.outbound_auth(&pair).map(|m| m.as_str()),
                        pair,
                        leg: leg.as_str(),
                        state: state.as_str(),
                        direction: "outbound",
                    })
                    .collect();
                RelayStatus {
                    internal_server: relay.internal_server.to_string(),
                    outbound_streams: outbound.len(),
                    outbound,
                    authenticated_streams: ListenerKind::ALL
                        .into_iter()
                        .map(|kind| (kind.name(), shared.relay.authenticated(kind)))
                        .collect(),
                    inbound: shared
                        .relay
                        .inbound()
                        .into_iter()
                        .map(|s| InboundStatus {
                            direction: "inbound",
                            listener: s.listener.name(),
                            domain: s.domain,
                            auth: s.auth.as_str(),
                        })
                        .collect(),
                }
            }),
            pid: std::process::id(),
        }
    }
}

/// Whether a configured address is what is bound (port 0 means "any").
fn same_address(configured: std::net::SocketAddr, bound: std::net::SocketAddr) -> bool {
    configured.ip() == bound.ip() && (configured.port() == 0 || configured.port() == bound.port())
}

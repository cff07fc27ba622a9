//! The listeners check (the Lync guide's `netstat -ano | findstr 5269`):
//! every listener of every host, seen on the host (`ss`) and from the
//! orchestrator (an XMPP stream and STARTTLS, or the gateway's `/status`).
//! Reads only, through `engine/`.

use std::collections::HashMap;
use std::time::Duration;

use std::sync::Arc;

use crate::engine::hosts::Host;
use crate::engine::observe::observe_host;
use crate::engine::probe::{ClientIdentity, XmppProbe};
use crate::engine::{Prepared, fan_out, probe};
use crate::plan::{Desired, ListenerKind, Observed, Resource};
use crate::spec::{CertUsage, Issuer, Role, Spec};

/// One row of the verify table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRow {
    pub host: String,
    pub listener: ListenerKind,
    pub address: String,
    pub ok: bool,
    /// "listening, STARTTLS ok", or what failed.
    pub state: String,
    pub cert_names: Vec<String>,
    pub cert_not_after: Option<i64>,
    /// What `/status` says the gateway enforces (admin listeners only).
    pub topology_version: Option<String>,
}

/// The verify phase: every listener of every host, seen on the host (`ss`)
/// and from the orchestrator (XMPP stream + STARTTLS, or `/status`).
///
/// `fresh`: nothing was changed since `p` observed the hosts, so the
/// sockets they listed then are still the answer and no host is asked
/// again (a no-op apply, `xfed verify`).
pub async fn verify_listeners(p: &Prepared, fresh: bool) -> Vec<VerifyRow> {
    let domain = p.spec.xmpp_domains.first().cloned().unwrap_or_default();
    let partner = p.spec.partners.first().map(|x| x.domain.clone());
    let mut relays: HashMap<String, Arc<RelayProbe>> = HashMap::new();
    let mut jobs = Vec::new();
    for (fqdn, h) in &p.hosts {
        let relay = match p.spec.servers().find(|s| &s.fqdn == fqdn) {
            Some(server) if server.role == Role::Edge => relays
                .entry(server.pool.clone())
                .or_insert_with(|| Arc::new(RelayProbe::for_pool(&p.spec, &server.pool, &domain)))
                .clone(),
            _ => Arc::new(RelayProbe::None),
        };
        let mine: Vec<Resource> = p
            .resources
            .iter()
            .filter(|r| &r.host == fqdn && matches!(r.desired, Desired::Listener(_)))
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let (h, fqdn, domain, partner) = (h.clone(), fqdn.clone(), domain.clone(), partner.clone());
        let seen: Option<HashMap<String, Observed>> = fresh.then(|| {
            mine.iter()
                .filter_map(|r| Some((r.address.clone(), p.observed.get(&r.address)?.clone())))
                .collect()
        });
        let key: Vec<(String, ListenerKind, String)> = mine
            .iter()
            .filter_map(|r| match &r.desired {
                Desired::Listener(l) => Some((
                    fqdn.clone(),
                    l.name,
                    std::net::SocketAddr::new(l.address, l.port).to_string(),
                )),
                _ => None,
            })
            .collect();
        let job = async move {
            verify_host(&h, &fqdn, mine, seen, &domain, partner.as_deref(), &relay).await
        };
        jobs.push((key, job));
    }
    let mut out = Vec::new();
    for (listeners, rows) in fan_out(jobs, p.options.parallelism).await {
        match rows {
            Ok(rows) => out.extend(rows),
            // A host whose check panicked fails every one of its
            // listeners' rows; none goes missing.
            Err(panicked) => {
                out.extend(
                    listeners
                        .into_iter()
                        .map(|(host, listener, address)| VerifyRow {
                            host,
                            listener,
                            address,
                            ok: false,
                            state: panicked.to_string(),
                            cert_names: Vec::new(),
                            cert_not_after: None,
                            topology_version: None,
                        }),
                )
            }
        }
    }
    out
}

async fn verify_host(
    h: &Host,
    fqdn: &str,
    mine: Vec<Resource>,
    seen: Option<HashMap<String, Observed>>,
    domain: &str,
    partner: Option<&str>,
    relay: &RelayProbe,
) -> Vec<VerifyRow> {
    let mut out = Vec::new();
    {
        let observed = match seen {
            Some(seen) => Ok(seen),
            None => {
                let mine = mine.clone();
                h.with(move |t| {
                    let refs: Vec<&Resource> = mine.iter().collect();
                    observe_host(t, &refs)
                })
                .await
            }
        };
        for r in &mine {
            let Desired::Listener(l) = &r.desired else {
                continue;
            };
            let addr = std::net::SocketAddr::new(l.address, l.port);
            let on_host = matches!(
                observed.as_ref().ok().and_then(|o| o.get(&r.address)),
                Some(Observed::Listener(f)) if f.listening
            );
            let mut row = VerifyRow {
                host: fqdn.to_string(),
                listener: l.name,
                address: addr.to_string(),
                ok: false,
                state: String::new(),
                cert_names: Vec::new(),
                cert_not_after: None,
                topology_version: None,
            };
            if !on_host {
                row.state = "not listening on the host (ss)".into();
            } else if l.name == ListenerKind::Admin {
                match probe::gateway_status(addr, Duration::from_secs(3)).await {
                    Ok(st) => {
                        row.ok = true;
                        row.topology_version = st.topology_version.clone();
                        row.state = format!(
                            "listening, /status: binary {}; partner streams: {}",
                            st.binary_sha256
                                .as_deref()
                                .map_or("?", |b| &b[..b.len().min(12)]),
                            st.partner_streams_text()
                        );
                    }
                    Err(e) => row.state = e,
                }
            } else if l.name == ListenerKind::Internal && !matches!(relay, RelayProbe::None) {
                let (to, from) = probe::stream_addresses(l.name, domain, partner);
                let identity = match relay {
                    RelayProbe::Identity { identity, .. } => Some(identity),
                    _ => None,
                };
                let pr = probe::xmpp_starttls_as(
                    addr,
                    &to,
                    from.as_deref(),
                    identity,
                    Duration::from_secs(3),
                )
                .await;
                row.cert_names = pr.cert_names.clone();
                row.cert_not_after = pr.cert_not_after;
                (row.ok, row.state) = relay.judge(&pr);
            } else {
                let (to, from) = probe::stream_addresses(l.name, domain, partner);
                let pr =
                    probe::xmpp_starttls(addr, &to, from.as_deref(), Duration::from_secs(3)).await;
                row.cert_names = pr.cert_names.clone();
                row.cert_not_after = pr.cert_not_after;
                (row.ok, row.state) = match (pr.stream, pr.starttls_offered, pr.tls) {
                    (true, true, true) if l.name == ListenerKind::Internal => (
                        true,
                        "listening, XMPP STARTTLS ok; relays nothing: no front-end pool \
                         routed here names an xmpp_server"
                            .into(),
                    ),
                    (true, true, true) => (true, "listening, XMPP STARTTLS ok".into()),
                    (true, false, _) => (
                        true,
                        format!(
                            "listening, XMPP stream ok, no TLS: {}",
                            pr.error.unwrap_or_default()
                        ),
                    ),
                    _ => (false, pr.error.unwrap_or_else(|| "no XMPP stream".into())),
                };
            }
            out.push(row);
        }
    }
    out
}

/// How the internal listener of an edge pool that relays is checked: as
/// the front-ends reach it, with mutual TLS and SASL EXTERNAL.
#[derive(Debug)]
enum RelayProbe {
    /// The pool relays nothing.
    None,
    /// A certificate from the front-ends' internal CA, for our domain:
    /// the listener must ask for it and offer SASL EXTERNAL to it.
    Identity {
        identity: ClientIdentity,
        ca: String,
    },
    /// The pool relays, but the spec holds no CA key to make such a
    /// certificate with (a CSR-issued one, or secrets not given): only
    /// that a client certificate is asked for can be checked.
    NoIdentity { why: String },
}

impl RelayProbe {
    fn for_pool(spec: &Spec, pool: &str, domain: &str) -> RelayProbe {
        let Some(fe) = spec.relay_frontend(pool) else {
            return RelayProbe::None;
        };
        let ca = spec.certificates.iter().find_map(|c| match &c.issuer {
            Issuer::InternalCa {
                ca_cert, ca_key, ..
            } if c.pool == fe.name && c.usage == CertUsage::Internal => {
                Some((c.name.clone(), ca_cert.clone(), ca_key.clone()))
            }
            _ => None,
        });
        let Some((cert, ca_cert, ca_key)) = ca else {
            return RelayProbe::NoIdentity {
                why: format!(
                    "no certificate of pool {} is issued by an internal CA",
                    fe.name
                ),
            };
        };
        let made = (|| {
            let pem = std::fs::read_to_string(&ca_cert)
                .map_err(|e| format!("{}: {e}", ca_cert.display()))?;
            let key = rcgen::KeyPair::from_pem(ca_key.expose())
                .map_err(|e| format!("certificates.{cert}.issuer.ca_key: {e}"))?;
            let now = i64::try_from(crate::engine::clock::now_unix()).unwrap_or(i64::MAX);
            let nanos = crate::engine::clock::now_unix_nanos();
            crate::certs::build::probe_identity(&pem, key, domain, now, nanos)
                .map_err(|e| e.to_string())
        })();
        match made {
            Ok((chain, key_pkcs8)) => RelayProbe::Identity {
                identity: ClientIdentity { chain, key_pkcs8 },
                ca: ca_cert.display().to_string(),
            },
            Err(why) => RelayProbe::NoIdentity { why },
        }
    }

    /// The row's verdict and state from what the probe saw.
    fn judge(&self, pr: &XmppProbe) -> (bool, String) {
        if !pr.tls {
            return (
                false,
                pr.error.clone().unwrap_or_else(|| "no XMPP stream".into()),
            );
        }
        if !pr.client_cert_requested {
            return (
                false,
                "listening, TLS without client certificates: the front-ends' streams \
                 cannot authenticate (gateway.internal_ca not installed?)"
                    .into(),
            );
        }
        match (self, pr.sasl_external) {
            (RelayProbe::Identity { ca, .. }, Some(true)) => (
                true,
                format!(
                    "listening, mutual TLS, SASL EXTERNAL offered to a front-end certificate from {ca}"
                ),
            ),
            (RelayProbe::Identity { ca, .. }, _) => (
                false,
                format!(
                    "listening, mutual TLS, but SASL EXTERNAL not offered to a front-end \
                     certificate from {ca}{}: the front-ends' streams would be refused",
                    pr.error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ),
            ),
            (_, _) => (
                true,
                format!(
                    "listening, mutual TLS (client certificate required); SASL EXTERNAL \
                     not checked: {}",
                    match self {
                        RelayProbe::NoIdentity { why } => why.as_str(),
                        _ => "",
                    }
                ),
            ),
        }
    }
}

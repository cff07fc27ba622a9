//! Issuing: the key and certificate (or request) for one certificate
//! resource. The I/O edge of `certs`: reads the CA files the spec names,
//! writes a CSR to its local path, talks ACME. Writing to the host is
//! `apply::execute`'s job.
//!
//! Every private key is registered with the redactor the moment it exists.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::acme::{AcmeOrder, ZoneRef};
use crate::certs::build::{self, BuildError, SignRequest};
use crate::certs::key;
use crate::certs::resource::CertSpec;
use crate::secret::{Redactor, Secret};
use crate::spec::{Issuer, Spec, View};

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("certificate `{cert}`: {source}")]
    Build {
        cert: String,
        #[source]
        source: BuildError,
    },
    #[error("certificate `{cert}`: cannot read the CA {what} `{path}`: {detail}")]
    Ca {
        cert: String,
        what: &'static str,
        path: String,
        detail: String,
    },
    #[error("certificate `{cert}`: cannot write the request to `{path}`: {detail}")]
    Request {
        cert: String,
        path: String,
        detail: String,
    },
    #[error("certificate `{cert}`: {source}")]
    Acme {
        cert: String,
        #[source]
        source: super::acme::AcmeError,
    },
    #[error(
        "certificate `{cert}`: the acme issuer publishes DNS-01 records through `dns.provider`, which the spec lacks\n  hint: add `dns:` with a provider and the zone of the names"
    )]
    NoDns { cert: String },
}

/// What issuing produced, ready to be written to the host.
#[derive(Debug)]
pub enum Issued {
    /// A certificate: install `chain` and `key` together.
    Certificate { key: Secret, chain: String },
    /// A request waiting for the CA: keep `key` beside `csr` on the host;
    /// with `placeholder`, install it and `key` so the gateway can start.
    Request {
        key: Secret,
        csr: String,
        placeholder: Option<String>,
        request_path: PathBuf,
    },
}

/// What issuing needs from the spec, detached from it so hosts can issue
/// concurrently.
#[derive(Debug, Clone)]
pub struct IssueContext {
    pub spec_dir: PathBuf,
    pub redactor: Redactor,
    pub dns: Option<crate::spec::Dns>,
}

impl IssueContext {
    pub fn from_spec(spec: &Spec) -> IssueContext {
        IssueContext {
            spec_dir: spec
                .file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            redactor: spec.redactor.clone(),
            dns: spec.dns.clone(),
        }
    }

    /// A spec path, relative to the spec's folder.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.spec_dir.join(p)
        }
    }
}

fn now() -> (i64, u128) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.as_nanos())
}

/// Where `host`'s request for `spec` goes on this machine: the configured
/// path, with the host's name before the extension so each server of a
/// pool has its own (`edge-ext.csr` → `edge-ext.edge1.contoso.example.csr`).
pub fn request_path(ctx: &IssueContext, spec: &CertSpec, host: &str) -> Option<PathBuf> {
    let Issuer::Csr { request_path } = &spec.issuer else {
        return None;
    };
    let p = ctx.path(request_path);
    let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
    let ext = p.extension().map(|s| s.to_string_lossy().into_owned());
    let name = match (stem, ext) {
        (Some(s), Some(e)) => format!("{s}.{host}.{e}"),
        (Some(s), None) => format!("{s}.{host}"),
        _ => format!("{host}.csr"),
    };
    Some(p.with_file_name(name))
}

/// Makes a new key and, per issuer, its certificate or request. With
/// `placeholder`, a csr request also gets a self-signed stand-in.
pub async fn issue(
    ctx: &IssueContext,
    spec: &CertSpec,
    host: &str,
    placeholder: bool,
) -> Result<Issued, IssueError> {
    let cert = spec.name.clone();
    let b = |source: BuildError| IssueError::Build {
        cert: cert.clone(),
        source,
    };
    let spec_key = spec.key;
    let k = tokio::task::spawn_blocking(move || key::generate(spec_key))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        .map_err(|e| b(e.into()))?;
    let key_pem = Secret::new(k.serialize_pem());
    ctx.redactor.add(key_pem.expose());
    let (now, nanos) = now();
    match &spec.issuer {
        Issuer::Csr { .. } => {
            let csr = build::csr_pem(&k, &spec.subject, &spec.sans).map_err(b)?;
            let path = request_path(ctx, spec, host).unwrap_or_default();
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            std::fs::write(&path, &csr).map_err(|e| IssueError::Request {
                cert: cert.clone(),
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
            let placeholder = if placeholder {
                Some(
                    build::placeholder(
                        &k,
                        &spec.subject,
                        &spec.sans,
                        spec.key,
                        now,
                        build::serial_for(&k, nanos),
                    )
                    .map_err(b)?,
                )
            } else {
                None
            };
            Ok(Issued::Request {
                key: key_pem,
                csr,
                placeholder,
                request_path: path,
            })
        }
        Issuer::InternalCa {
            ca_cert,
            ca_key,
            validity_days,
        } => {
            let ca_path = ctx.path(ca_cert);
            let ca_pem = std::fs::read_to_string(&ca_path).map_err(|e| IssueError::Ca {
                cert: cert.clone(),
                what: "certificate",
                path: ca_path.display().to_string(),
                detail: e.to_string(),
            })?;
            ctx.redactor.add(ca_key.expose());
            let ca_kp = rcgen::KeyPair::from_pem(ca_key.expose()).map_err(|e| IssueError::Ca {
                cert: cert.clone(),
                what: "key",
                path: "ca_key".into(),
                detail: e.to_string(),
            })?;
            let req = SignRequest {
                subject: &spec.subject,
                sans: &spec.sans,
                key_spec: spec.key,
                validity_days: *validity_days,
                now,
                serial: build::serial_for(&k, nanos),
            };
            let chain = build::sign_with_ca(&k, &req, &ca_pem, ca_kp).map_err(b)?;
            Ok(Issued::Certificate {
                key: key_pem,
                chain,
            })
        }
        Issuer::Acme {
            directory,
            ca_bundle,
            contact,
        } => {
            let dns = ctx
                .dns
                .as_ref()
                .ok_or_else(|| IssueError::NoDns { cert: cert.clone() })?;
            let zones: Vec<ZoneRef> = dns
                .zones
                .iter()
                .filter(|z| z.view == View::External)
                .map(|z| ZoneRef {
                    name: z.name.clone(),
                    nameservers: z.nameservers.clone(),
                })
                .collect();
            let acme_err = |source| IssueError::Acme {
                cert: cert.clone(),
                source,
            };
            let provider = crate::providers::dns::provider_for(&dns.provider).map_err(|e| {
                acme_err(super::acme::AcmeError::Dns {
                    name: spec.sans.join(", "),
                    detail: e.to_string(),
                })
            })?;
            let publisher = super::acme::ProviderTxt {
                provider: provider.as_ref(),
                create_zones: dns.provider.create_zones,
            };
            let csr_der = build::csr_der(&k, &spec.subject, &spec.sans).map_err(b)?;
            let bundle = ca_bundle.as_ref().map(|p| ctx.path(p));
            let order = AcmeOrder {
                directory,
                ca_bundle: bundle.as_deref(),
                contact,
                names: &spec.sans,
                csr_der: &csr_der,
                zones: &zones,
                propagation_timeout: Duration::from_secs(60),
                host,
            };
            let chain = super::acme::issue_dns01(&order, &publisher)
                .await
                .map_err(acme_err)?;
            Ok(Issued::Certificate {
                key: key_pem,
                chain,
            })
        }
    }
}

//! One transport per host for a whole run, driven from tokio.
//!
//! libssh2 is blocking and a session must not be shared between threads,
//! so each host's transport sits behind a mutex and every use runs on
//! tokio's blocking pool; hosts run in parallel, one host's operations in
//! sequence. Connecting is bounded by `--parallelism`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::fanout::fan_out;
use crate::spec::{Become, Spec, SshAuth, SshTarget};
use crate::transport::{self, SshConfig, SshTransport, Transport, TransportError};

/// A connected host.
#[derive(Clone)]
pub struct Host {
    pub fqdn: String,
    transport: Arc<Mutex<Box<dyn Transport>>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("fqdn", &self.fqdn)
            .finish_non_exhaustive()
    }
}

impl Host {
    pub fn new(fqdn: impl Into<String>, t: Box<dyn Transport>) -> Host {
        Host {
            fqdn: fqdn.into(),
            transport: Arc::new(Mutex::new(t)),
        }
    }

    /// Runs `f` with this host's transport on the blocking pool.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Transport) -> T + Send + 'static,
    ) -> T {
        let t = self.transport.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = t.lock().unwrap_or_else(|p| p.into_inner());
            f(guard.as_mut())
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    pub accept_new_host_keys: bool,
    pub parallelism: usize,
}

pub fn ssh_config(fqdn: &str, t: &SshTarget, accept_new: bool) -> SshConfig {
    let auth = match &t.auth {
        SshAuth::KeyFile { path, passphrase } => transport::SshAuth::KeyFile {
            path: path.clone(),
            passphrase: passphrase.clone(),
        },
        SshAuth::Agent => transport::SshAuth::Agent,
    };
    let mut c = SshConfig::new(fqdn, &t.host, &t.user, auth, &t.known_hosts);
    c.port = t.port;
    c.accept_new_host_keys = accept_new;
    c.escalation = match t.become_ {
        Become::None => transport::Become::None,
        Become::Sudo => transport::Become::Sudo,
    };
    c.connect_timeout = t.connect_timeout;
    c.command_timeout = t.command_timeout;
    c.persist = t.persist;
    c
}

/// Connects to every server of the spec (or of `only`), at most
/// `parallelism` at a time. Returns the hosts reached and the failures.
pub async fn connect_all(
    spec: &Spec,
    only: Option<&[String]>,
    opts: ConnectOptions,
) -> (BTreeMap<String, Host>, Vec<(String, TransportError)>) {
    let jobs = spec
        .servers()
        .filter(|s| only.is_none_or(|o| o.contains(&s.fqdn)))
        .map(|s| {
            let config = ssh_config(&s.fqdn, &s.ssh, opts.accept_new_host_keys);
            let job = async move {
                tokio::task::spawn_blocking(move || SshTransport::connect(config))
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            };
            (s.fqdn.clone(), job)
        });
    let mut hosts = BTreeMap::new();
    let mut failed = Vec::new();
    for (fqdn, r) in fan_out(jobs, opts.parallelism).await {
        match r {
            Ok(Ok(t)) => {
                hosts.insert(fqdn.clone(), Host::new(fqdn, Box::new(t)));
            }
            Ok(Err(e)) => failed.push((fqdn, e)),
            Err(panicked) => failed.push((
                fqdn.clone(),
                TransportError::Panicked {
                    host: fqdn,
                    message: panicked.message,
                },
            )),
        }
    }
    (hosts, failed)
}

//! The daemon's life: bind, serve, reload on SIGHUP, drain on SIGTERM.
//!
//! Modelled on linkerd2-proxy's startup and shutdown: the
//! configuration arrives here already validated, certificates loaded;
//! binding is the first side effect; the PID file is written only once
//! every socket is bound; a reload builds a complete new generation before
//! swapping it in (open streams then apply its partner list) and keeps the
//! old one on any problem; SIGTERM stops the accept loops, tells every open
//! stream `system-shutdown`, waits up to `drain_secs` for them to finish,
//! and exits 0. A second SIGTERM/SIGINT ends the wait early.

use super::admin::AdminServer;
use super::generation::Generation;
use super::metrics::inc;
use super::pid_file::PidFile;
use super::relay::Router;
use super::s2s_listener::S2sListener;
use super::shared::Shared;
use super::tracker::TaskTracker;
use crate::config::{Config, ListenerKind};
use crate::event;
use crate::log::Joined;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A listener could not be bound.
    #[error("cannot bind the `{listener}` listener to {address}: {source}")]
    Bind {
        /// Listener name.
        listener: &'static str,
        /// Configured address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The PID file could not be written.
    #[error("cannot write pid_file `{path}`: {source}")]
    PidFile {
        /// The configured path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// The running daemon.
#[derive(Debug)]
pub struct Daemon {
    config_path: PathBuf,
    shared: Arc<Shared>,
}

impl Daemon {
    /// Binds every listener for `generation` and serves until SIGTERM/SIGINT.
    pub async fn run(config_path: &Path, generation: Generation) -> Result<(), DaemonError> {
        let binary_sha256 = tokio::task::spawn_blocking(binary_sha256)
            .await
            .ok()
            .flatten();
        let config = &generation.config;
        let external = bind("external", config.external.address).await?;
        let internal = bind("internal", config.internal.address).await?;
        let admin = bind("admin", config.admin.address).await?;
        let bound = [local(&external), local(&internal), local(&admin)];
        for (name, address) in [
            ("external", bound[0]),
            ("internal", bound[1]),
            ("admin", bound[2]),
        ] {
            event!(Info, "listener_bound", listener = name, address = address);
        }
        let pid_file = match &config.pid_file {
            Some(path) => Some(
                PidFile::create(path).map_err(|source| DaemonError::PidFile {
                    path: path.clone(),
                    source,
                })?,
            ),
            None => None,
        };
        let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;

        let shared = Arc::new(Shared::new(generation, bound, binary_sha256));
        let daemon = Daemon {
            config_path: config_path.to_path_buf(),
            shared: shared.clone(),
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (admin_stop_tx, admin_stop_rx) = watch::channel(false);
        let streams = TaskTracker::default();
        let admin_tasks = TaskTracker::default();
        let router = Router::new(shared.clone(), shutdown_rx.clone(), streams.clone());
        let mut accept_loops = Vec::new();
        for (socket, kind) in [
            (external, ListenerKind::External),
            (internal, ListenerKind::Internal),
        ] {
            let listener = S2sListener {
                socket,
                kind,
                router: router.clone(),
            };
            accept_loops.push(tokio::spawn(listener.serve(
                shared.clone(),
                shutdown_rx.clone(),
                streams.clone(),
            )));
        }
        let admin_loop = tokio::spawn(AdminServer { socket: admin }.serve(
            shared.clone(),
            admin_stop_rx,
            admin_tasks.clone(),
        ));
        daemon.log_ready();

        let signal_name = loop {
            tokio::select! {
                _ = hangup.recv() => daemon.reload(),
                _ = terminate.recv() => break "SIGTERM",
                _ = interrupt.recv() => break "SIGINT",
            }
        };

        // Drain: stop accepting, tell streams to close, wait out the grace period.
        let grace = shared.current().config.drain;
        shared.set_draining();
        event!(
            Info,
            "draining",
            signal = signal_name,
            open_streams = streams.live(),
            grace_secs = grace.as_secs()
        );
        let _ = shutdown_tx.send(true);
        for accept_loop in accept_loops {
            let _ = accept_loop.await;
        }
        let drained = tokio::select! {
            () = streams.wait_idle() => true,
            () = tokio::time::sleep(grace) => false,
            _ = terminate.recv() => false,
            _ = interrupt.recv() => false,
        };
        if !drained {
            event!(Warn, "drain_incomplete", abandoned_streams = streams.live());
        }
        let _ = admin_stop_tx.send(true);
        let _ = admin_loop.await;
        drop(pid_file);
        event!(Info, "stopped", signal = signal_name);
        Ok(())
    }

    fn log_ready(&self) {
        let generation = self.shared.current();
        let config = &generation.config;
        event!(
            Info,
            "ready",
            version = crate::VERSION,
            pid = std::process::id(),
            config = config.path.display(),
            config_sha256 = config.sha256,
            policy_file = policy_path(config),
            policy_sha256 = policy_sha256(config),
            partners = config.partners.len(),
            sites = config.sites.len(),
            domains = Joined(&config.domains),
            external_certificate = certificate_state(&generation, ListenerKind::External),
            internal_certificate = certificate_state(&generation, ListenerKind::Internal),
        );
    }

    /// SIGHUP: build a new generation from the file; keep the old one on any problem.
    fn reload(&self) {
        event!(
            Info,
            "reload_requested",
            config = self.config_path.display()
        );
        let prepared = Config::load(&self.config_path).and_then(Generation::prepare);
        let (generation, warnings) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                inc(&self.shared.metrics.reloads_failed);
                for problem in e.problems() {
                    event!(
                        Error,
                        "reload_rejected",
                        config = self.config_path.display(),
                        field = problem.field,
                        problem = problem.message,
                        hint = problem.hint.as_deref().unwrap_or("-"),
                    );
                }
                let current = self.shared.current();
                event!(
                    Warn,
                    "reload_kept_previous",
                    config_sha256 = current.config.sha256,
                    policy_sha256 = policy_sha256(&current.config),
                );
                return;
            }
        };
        for warning in &warnings {
            event!(Warn, "config_warning", warning = warning);
        }
        let old = self.shared.current();
        let addresses = [
            (
                "external",
                generation.config.external.address,
                self.shared.bound[0],
            ),
            (
                "internal",
                generation.config.internal.address,
                self.shared.bound[1],
            ),
            (
                "admin",
                generation.config.admin.address,
                self.shared.bound[2],
            ),
        ];
        for (listener, configured, bound) in addresses {
            if configured != bound && !(configured.port() == 0 && configured.ip() == bound.ip()) {
                event!(
                    Warn,
                    "restart_required",
                    listener = listener,
                    configured = configured,
                    bound = bound
                );
            }
        }
        if generation.config.pid_file != old.config.pid_file {
            event!(Warn, "restart_required", setting = "pid_file");
        }
        crate::log::set_level(generation.config.log_level);
        let external = certificate_state(&generation, ListenerKind::External);
        let internal = certificate_state(&generation, ListenerKind::Internal);
        let sha = generation.config.sha256.clone();
        let policy_sha = policy_sha256(&generation.config).to_string();
        let partners = generation.config.partners.len();
        let sites = generation.config.sites.len();
        self.shared.replace(generation);
        inc(&self.shared.metrics.reloads_ok);
        event!(
            Info,
            "reloaded",
            config_sha256 = sha,
            policy_sha256 = policy_sha,
            partners = partners,
            sites = sites,
            external_certificate = external,
            internal_certificate = internal,
        );
    }
}

async fn bind(listener: &'static str, address: SocketAddr) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| DaemonError::Bind {
            listener,
            address,
            source,
        })
}

fn local(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// The policy file for log lines, `-` when there is none.
fn policy_path(config: &Config) -> String {
    config
        .policy_file
        .as_ref()
        .map_or_else(|| "-".to_string(), |p| p.path.display().to_string())
}

/// The policy file's hash for log lines, `-` when there is none.
fn policy_sha256(config: &Config) -> &str {
    config
        .policy_file
        .as_ref()
        .map_or("-", |p| p.sha256.as_str())
}

fn certificate_state(generation: &Generation, kind: ListenerKind) -> String {
    match &generation.listener(kind).tls {
        Some(tls) => format!("sha256:{}", tls.certificate.fingerprint_sha256),
        None => "none".to_string(),
    }
}

/// SHA-256 of the running executable. `/proc/self/exe` still reads the
/// running image after the file on disk was replaced by an upgrade.
fn binary_sha256() -> Option<String> {
    let mut file = std::fs::File::open("/proc/self/exe").ok()?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).ok()?;
    Some(hex::encode(hasher.finalize()))
}

//! The accept loop of an S2S listener (external or internal).
//!
//! Owns admission: each accepted socket is checked against the current
//! generation's connection caps before a task is spawned, and refused
//! sockets are closed at once (no TLS, no XML — the cheapest answer to a
//! flood) and counted; so are sockets over the budget of connections not
//! yet authenticated (`pre_auth`). Stops accepting, and closes the listening socket,
//! when shutdown begins.

use super::connection::Connection;
use super::metrics::{Rejection, inc};
use super::relay::Router;
use super::shared::Shared;
use super::tracker::TaskTracker;
use crate::config::ListenerKind;
use crate::event;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A bound S2S listener.
#[derive(Debug)]
pub struct S2sListener {
    /// The bound socket.
    pub socket: TcpListener,
    /// Which listener it is.
    pub kind: ListenerKind,
    /// Where its streams' stanzas are relayed.
    pub router: Arc<Router>,
}

impl S2sListener {
    /// Accepts until `shutdown` turns true.
    pub async fn serve(
        self,
        shared: Arc<Shared>,
        mut shutdown: watch::Receiver<bool>,
        tracker: TaskTracker,
    ) {
        let metrics = shared.listener_metrics(self.kind);
        loop {
            let accepted = tokio::select! {
                accepted = self.socket.accept() => accepted,
                _ = shutdown.changed() => break,
            };
            let (socket, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually EMFILE/ENFILE: back off instead of spinning.
                    event!(
                        Warn,
                        "accept_failed",
                        listener = self.kind.name(),
                        error = e
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Subscribed before the generation is read, so a reload after
            // this point reaches the connection.
            let mut generations = shared.subscribe();
            let generation = generations.borrow_and_update().clone();
            let limits = generation.config.listener(self.kind);
            let permit = match shared.limiter(self.kind).try_acquire(
                peer.ip(),
                limits.max_connections,
                limits.max_connections_per_ip,
            ) {
                Ok(permit) => permit,
                Err(why) => {
                    metrics.rejected(why);
                    event!(
                        Debug,
                        "connection_rejected",
                        listener = self.kind.name(),
                        peer = peer,
                        reason = why.as_str()
                    );
                    drop(socket);
                    continue;
                }
            };
            let budget = generation.config.limits.max_unauthenticated_connections;
            let Some(pre_auth) = shared.pre_auth_budget(self.kind).try_enter(budget) else {
                metrics.rejected(Rejection::PreAuthBudget);
                event!(
                    Debug,
                    "connection_rejected",
                    listener = self.kind.name(),
                    peer = peer,
                    reason = Rejection::PreAuthBudget.as_str()
                );
                drop(socket);
                continue;
            };
            inc(&metrics.connections_total);
            let _ = socket.set_nodelay(true);
            let connection = Connection::new(
                peer,
                self.kind,
                generation,
                generations,
                shared.clone(),
                self.router.clone(),
                shutdown.clone(),
            );
            tokio::spawn(connection.run(socket, permit, pre_auth, tracker.token()));
        }
        event!(Info, "listener_closed", listener = self.kind.name());
    }
}

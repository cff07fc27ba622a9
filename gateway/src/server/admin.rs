//! The admin HTTP listener: `/healthz`, `/status`, `/metrics`, `/access`.
//!
//! A deliberately tiny HTTP/1.1 server (GET only, one request per
//! connection, `Connection: close`) instead of an HTTP stack: four
//! read-only endpoints on the internal address do not justify hyper's
//! dependency tree. Its budget is its own, apart from the S2S limits: at
//! most 16 connections may wait for their request (8 KiB head, 2 s to send
//! it); a 17th evicts the oldest of them (`admin_waiters`), so idle
//! connections cannot starve `/healthz`. At most 256 connections in all
//! (the rest are answered and closed within the 5 s write deadline); over
//! that, the socket is closed at accept.

use super::admin_waiters::{HeadWaiters, Waiting};
use super::metrics::{InfoLabels, ListenerSample, Rejection, inc};
use super::shared::Shared;
use super::status::Status;
use super::tracker::TaskTracker;
use crate::config::ListenerKind;
use crate::event;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;

const MAX_HEAD: usize = 8 * 1024;
/// All admin connections at once, waiting, evicted but not yet gone, or
/// being answered: a hard bound on memory, far above what eviction leaves
/// alive (`MAX_WAITING` plus those finishing), so it is not what a flood of
/// idle connections runs into.
const MAX_CONNECTIONS: u32 = 256;
/// Connections waiting for their request head; more evict the oldest.
const MAX_WAITING: usize = 16;
/// Time to send the request head: a probe needs one round trip.
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Time to write the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The bound admin listener.
#[derive(Debug)]
pub struct AdminServer {
    /// The bound socket.
    pub socket: TcpListener,
}

/// A response: status line, content type, body.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

impl AdminServer {
    /// Serves until `stop` turns true (after connections have drained).
    pub async fn serve(
        self,
        shared: Arc<Shared>,
        mut stop: watch::Receiver<bool>,
        tracker: TaskTracker,
    ) {
        let waiters = HeadWaiters::new(MAX_WAITING);
        loop {
            let accepted = tokio::select! {
                accepted = self.socket.accept() => accepted,
                _ = stop.changed() => break,
            };
            let Ok((socket, peer)) = accepted else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(permit) =
                shared
                    .admin_limiter
                    .try_acquire(peer.ip(), MAX_CONNECTIONS, MAX_CONNECTIONS)
            else {
                shared.metrics.admin.rejected(Rejection::MaxConnections);
                continue;
            };
            inc(&shared.metrics.admin.connections_total);
            let (waiting, evicted) = waiters.enter();
            if evicted {
                shared.metrics.admin.rejected(Rejection::IdleEvicted);
            }
            let shared = shared.clone();
            let token = tracker.token();
            tokio::spawn(async move {
                let _permit = permit;
                let _token = token;
                if let Err(e) = handle(socket, waiting, &shared).await {
                    event!(Debug, "admin_request_failed", peer = peer, error = e);
                }
            });
        }
    }
}

async fn handle(mut socket: TcpStream, waiting: Waiting, shared: &Shared) -> std::io::Result<()> {
    let head = tokio::select! {
        head = timeout(HEAD_TIMEOUT, read_head(&mut socket)) => match head {
            Ok(head) => head?,
            Err(_) => return Ok(()),
        },
        () = waiting.evicted() => return Ok(()),
    };
    // Answered at once from here: the slot goes to the next connection.
    drop(waiting);
    let response = match head {
        Some(head) => route(&head, shared),
        None => text(431, "request head too large\n"),
    };
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    };
    let mut bytes = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(response.body.as_bytes());
    timeout(WRITE_TIMEOUT, async {
        socket.write_all(&bytes).await?;
        socket.shutdown().await
    })
    .await
    .unwrap_or(Ok(()))
}

/// Reads up to the blank line; `None` if the head exceeds `MAX_HEAD`.
async fn read_head(socket: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(Some(String::from_utf8_lossy(&head).into_owned()));
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(String::from_utf8_lossy(&head).into_owned()));
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

/// Maps a request head to a response.
pub fn route(head: &str, shared: &Shared) -> Response {
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return text(400, "bad request\n");
    };
    if method != "GET" {
        return text(405, "only GET is supported\n");
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    match path {
        "/healthz" if shared.draining() => text(503, "draining\n"),
        "/healthz" => text(200, "ok\n"),
        "/status" => {
            let status = Status::collect(shared);
            match serde_json::to_string_pretty(&status) {
                Ok(mut json) => {
                    json.push('\n');
                    Response {
                        status: 200,
                        content_type: "application/json",
                        body: json,
                    }
                }
                Err(e) => text(500, &format!("{e}\n")),
            }
        }
        "/metrics" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: metrics_text(shared),
        },
        "/access" => super::access::respond(query, &shared.current().policy),
        _ => text(
            404,
            "not found; try /healthz, /status, /metrics or /access?user=JID\n",
        ),
    }
}

fn metrics_text(shared: &Shared) -> String {
    let generation = shared.current();
    let config = &generation.config;
    let mut samples = Vec::with_capacity(3);
    for kind in ListenerKind::ALL {
        samples.push(ListenerSample {
            name: kind.name(),
            metrics: shared.listener_metrics(kind),
            current: u64::from(shared.limiter(kind).current()),
            not_after: generation
                .listener(kind)
                .tls
                .as_ref()
                .map(|t| t.certificate.not_after),
        });
    }
    samples.push(ListenerSample {
        name: "admin",
        metrics: &shared.metrics.admin,
        current: u64::from(shared.admin_limiter.current()),
        not_after: None,
    });
    let mut text = shared.metrics.render(
        &InfoLabels {
            version: crate::VERSION,
            config_sha256: &config.sha256,
            policy_sha256: config.policy_file.as_ref().map(|p| p.sha256.as_str()),
            topology_version: config.topology_version.as_deref(),
            started_at: shared.started_at,
            draining: shared.draining(),
        },
        &samples,
    );
    let _ = writeln!(
        text,
        "# HELP xfed_gateway_unauthenticated_connections Connections not yet authenticated now, by listener (budget: limits.max_unauthenticated_connections).\n# TYPE xfed_gateway_unauthenticated_connections gauge"
    );
    for kind in ListenerKind::ALL {
        let _ = writeln!(
            text,
            "xfed_gateway_unauthenticated_connections{{listener=\"{}\"}} {}",
            kind.name(),
            shared.pre_auth_budget(kind).current()
        );
    }
    shared.relay.render(&mut text);
    text
}

fn text(status: u16, body: &str) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::server::generation::Generation;
    use std::path::Path;

    const CONFIG: &str = r#"
domains = ["contoso.example"]
[external]
address = "127.0.0.1"
[internal]
address = "127.0.0.2"
[[policies]]
identity = "global"
enable_federation_access = true
[[policies]]
identity = "site:hq"
enable_public_cloud_access = true
[[policies]]
identity = "FedPic"
enable_federation_access = true
enable_xmpp_access = true
[[partners]]
domain = "fabrikam.example"
[[partners]]
domain = "public.example"
kind = "public_verified"
[[grants]]
policy = "FedPic"
users = ["alice@contoso.example"]
[[sites]]
name = "hq"
users = ["alice@contoso.example", "bob@contoso.example"]
"#;

    fn shared() -> Shared {
        let config =
            Config::parse(Path::new("/etc/xfed/gateway.toml"), CONFIG.as_bytes()).expect("valid");
        let (generation, _) = Generation::prepare(config).expect("no certificates to load");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        Shared::new(generation, [addr; 3], None)
    }

    fn get(shared: &Shared, target: &str) -> (u16, serde_json::Value) {
        let response = route(&format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"), shared);
        assert_eq!(response.content_type, "application/json", "{response:?}");
        let body = serde_json::from_str(&response.body).expect("JSON");
        (response.status, body)
    }

    #[test]
    fn access_reports_the_effective_policy_and_why() {
        let shared = shared();
        let (status, body) = get(&shared, "/access?user=alice%40contoso.example");
        assert_eq!(status, 200);
        assert_eq!(
            body,
            serde_json::json!({
                "user": "alice@contoso.example",
                "policy": "FedPic",
                "source": "user_grant",
                "site": "hq",
                "enable_federation_access": true,
                "enable_public_cloud_access": false,
                "enable_xmpp_access": true,
                "xmpp_federation_allowed": true,
                "partner_kinds": {
                    "federated": { "allowed": true, "decided_by": "enable_federation_access" },
                    "trusted": { "allowed": true, "decided_by": "enable_federation_access" },
                    "public_verified": { "allowed": false, "decided_by": "enable_public_cloud_access" },
                    "public_unverified": { "allowed": false, "decided_by": "enable_public_cloud_access" },
                },
            })
        );
        // Unescaped, a full JID in another case: the same user.
        let (status, again) = get(&shared, "/access?user=Alice@Contoso.Example%2Fphone");
        assert_eq!(status, 200);
        assert_eq!(again, body);
        let (_, bob) = get(&shared, "/access?other=1&user=bob%40contoso.example");
        assert_eq!(bob["policy"], "site:hq");
        assert_eq!(bob["source"], "site");
        assert_eq!(bob["xmpp_federation_allowed"], false);
        assert_eq!(
            bob["partner_kinds"]["public_verified"],
            serde_json::json!({ "allowed": false, "decided_by": "enable_xmpp_access" })
        );
        let (_, carol) = get(&shared, "/access?user=carol%40contoso.example");
        assert_eq!(carol["policy"], "global");
        assert_eq!(carol["source"], "global");
        assert_eq!(carol["site"], serde_json::Value::Null);
    }

    #[test]
    fn access_for_a_partner_names_its_kind_and_the_deciding_flag() {
        let shared = shared();
        let (status, body) = get(
            &shared,
            "/access?user=alice%40contoso.example&partner=Public.Example.",
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["partner"],
            serde_json::json!({
                "domain": "public.example",
                "kind": "public_verified",
                "allowed": false,
                "decided_by": "enable_public_cloud_access",
            })
        );
        let (_, fabrikam) = get(
            &shared,
            "/access?partner=fabrikam.example&user=alice%40contoso.example",
        );
        assert_eq!(fabrikam["partner"]["allowed"], true);
        assert_eq!(
            fabrikam["partner"]["decided_by"],
            "enable_federation_access"
        );
        let (status, none) = get(
            &shared,
            "/access?user=alice%40contoso.example&partner=litware.example",
        );
        assert_eq!(status, 404, "{none}");
        assert_eq!(none["error"], "not_a_partner");
        assert!(none["hint"].is_string(), "{none}");
        for target in [
            "/access?user=alice%40contoso.example&partner=",
            "/access?user=alice%40contoso.example&partner=a%20b",
            "/access?user=alice%40contoso.example&partner=fabrikam.example&partner=public.example",
        ] {
            let (status, body) = get(&shared, target);
            assert_eq!(status, 400, "{target}: {body}");
            assert_eq!(body["error"], "invalid_partner", "{target}: {body}");
        }
    }

    #[test]
    fn access_without_a_user_jid_is_a_json_400() {
        let shared = shared();
        for (target, error) in [
            ("/access", "missing_user"),
            ("/access?", "missing_user"),
            ("/access?usr=alice%40contoso.example", "missing_user"),
            (
                "/access?user=alice%40contoso.example&user=bob%40contoso.example",
                "missing_user",
            ),
            ("/access?user=", "invalid_user"),
            ("/access?user=alice", "invalid_user"),
            ("/access?user=contoso.example", "invalid_user"),
            ("/access?user=%40contoso.example", "invalid_user"),
            (
                "/access?user=alice%20smith%40contoso.example",
                "invalid_user",
            ),
            ("/access?user=alice%4", "invalid_query"),
            ("/access?user=%ff%40contoso.example", "invalid_query"),
        ] {
            let (status, body) = get(&shared, target);
            assert_eq!(status, 400, "{target}: {body}");
            assert_eq!(body["error"], error, "{target}: {body}");
            assert!(body["message"].is_string(), "{target}: {body}");
            assert!(body["hint"].is_string(), "{target}: {body}");
        }
    }

    #[test]
    fn status_reports_the_policy_files_topology_version_and_counts() {
        let at = CONFIG.find("[[policies]]").expect("policies");
        let main = format!("policy_file = \"policy.toml\"\n{}", &CONFIG[..at]);
        let policy = format!("topology_version = \"2026-12-01.3\"\n{}", &CONFIG[at..]);
        let config = Config::parse_with(
            Path::new("/etc/xfed/gateway.toml"),
            main.as_bytes(),
            &mut |_| Ok(policy.clone().into_bytes()),
        )
        .expect("valid");
        let (generation, _) = Generation::prepare(config).expect("no certificates to load");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let shared = Shared::new(generation, [addr; 3], None);
        let (status, body) = get(&shared, "/status");
        assert_eq!(status, 200);
        assert_eq!(body["topology_version"], "2026-12-01.3");
        assert_eq!(body["policy_file"], "/etc/xfed/policy.toml");
        assert_eq!(body["policies"], 3);
        assert_eq!(body["grants"], 1);
        assert_eq!(body["granted_users"], 1);
        assert_eq!(body["sites"], 1);
        assert_eq!(body["site_users"], 2);
    }

    #[test]
    fn access_for_a_user_outside_our_domains_is_a_json_404() {
        let (status, body) = get(&shared(), "/access?user=Mallory%40Fabrikam.Example");
        assert_eq!(status, 404);
        assert_eq!(body["error"], "not_our_user");
        assert_eq!(body["user"], "mallory@fabrikam.example");
        assert_eq!(
            body["message"],
            "`mallory@fabrikam.example` is not one of our users: `fabrikam.example` is not in \
             `domains` (contoso.example)"
        );
    }
}

//! PowerDNS authoritative server through its HTTP API (`/api/v1`), with
//! reqwest.
//!
//! - The API key goes in an `X-API-Key` header marked sensitive; it is
//!   never formatted, and every text that comes back from the server is
//!   scrubbed of it before it reaches an error.
//! - All changes to one zone go in ONE `PATCH` (REPLACE/DELETE per RRset),
//!   which PowerDNS applies in one transaction: a rejected change (HTTP 422)
//!   leaves the zone as it was. A new zone is created with its records in
//!   one `POST`, so it never exists half-filled.
//! - Error bodies are not decoded blindly: 401/404/409 answer in plain text,
//!   422 in JSON `{"error": "…"}` (as PowerDNS 4.7 answers in the lab).
//! - A 5xx or a broken connection is retried with bounded backoff
//!   ([`RetryPolicy::STANDARD`], `Retry-After` honoured), each retry shown
//!   through [`retry::report`]; a 4xx is an answer and fails at once. Every
//!   request here may be repeated except the zone-creating `POST`, which is
//!   repeated after a broken connection only once the zone is seen absent.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{BoxFuture, DnsProvider, ProviderError};
use crate::dns::rrset::{RRset, RRsetOp};
use crate::providers::retry::{
    self, Decision, Fault, Replay, RetryNotice, RetryPolicy, parse_retry_after,
};
use crate::secret::{MASK, Secret};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A PowerDNS server's API.
pub struct PowerDns {
    http: reqwest::Client,
    /// `http://host:8081` as configured (no path), for messages.
    api_url: String,
    /// `http://host:8081/api/v1/servers/<id>`
    server: String,
    server_id: String,
    /// Only to scrub server answers; never formatted.
    key: Secret,
}

impl fmt::Debug for PowerDns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowerDns")
            .field("api_url", &self.api_url)
            .field("server_id", &self.server_id)
            .field("key", &MASK)
            .finish()
    }
}

#[derive(Deserialize)]
struct ApiZone {
    #[serde(default)]
    rrsets: Vec<ApiRRset>,
}

#[derive(Deserialize)]
struct ApiRRset {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    #[serde(default)]
    ttl: u32,
    #[serde(default)]
    records: Vec<ApiRecord>,
}

#[derive(Deserialize)]
struct ApiRecord {
    content: String,
    #[serde(default)]
    disabled: bool,
}

fn replace_json(r: &RRset) -> Value {
    json!({
        "name": r.name,
        "type": r.rtype,
        "ttl": r.ttl,
        "changetype": "REPLACE",
        "records": r.records.iter().map(|c| json!({"content": c, "disabled": false})).collect::<Vec<_>>(),
    })
}

fn op_json(op: &RRsetOp) -> Value {
    match op {
        RRsetOp::Replace(r) => replace_json(r),
        RRsetOp::Delete { name, rtype } => {
            json!({ "name": name, "type": rtype, "changetype": "DELETE" })
        }
    }
}

/// What one request came to, after retries.
enum Sent {
    Answer(Response),
    /// A [`Replay::Once`] request failed in a way that may have acted.
    Unsure(ProviderError),
}

/// ` (after N tries)` once a request was retried.
fn tries_note(attempt: u32) -> String {
    if attempt > 1 {
        format!(" (after {attempt} tries)")
    } else {
        String::new()
    }
}

/// `Retry-After` of an answer, as a wait.
fn retry_after(resp: &Response) -> Option<Duration> {
    let value = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    parse_retry_after(value, now)
}

/// The error chain of a reqwest error, without the URL's repetition.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

impl PowerDns {
    /// `api_url` is the webserver's base (`http://203.0.113.53:8081`; a
    /// trailing `/api/v1` is accepted); `server_id` is usually `localhost`.
    pub fn new(
        api_url: &str,
        api_key: &Secret,
        server_id: &str,
    ) -> Result<PowerDns, ProviderError> {
        let base = api_url.trim_end_matches('/');
        let base = base.strip_suffix("/api/v1").unwrap_or(base).to_string();
        let mut key =
            HeaderValue::from_str(api_key.expose()).map_err(|_| ProviderError::Config {
                detail: "the PowerDNS API key contains characters an HTTP header cannot carry"
                    .into(),
            })?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("X-API-Key", key);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::Config {
                detail: format!("cannot build the HTTP client: {}", describe(&e)),
            })?;
        Ok(PowerDns {
            http,
            server: format!("{base}/api/v1/servers/{server_id}"),
            api_url: base,
            server_id: server_id.to_string(),
            key: api_key.clone(),
        })
    }

    /// From the spec's `dns.provider`.
    pub fn from_spec(p: &crate::spec::DnsProvider) -> Result<PowerDns, ProviderError> {
        match &p.api {
            crate::spec::DnsApi::Powerdns {
                api_url,
                api_key,
                server_id,
            } => PowerDns::new(api_url, api_key, server_id),
            crate::spec::DnsApi::Rfc2136(_) => Err(ProviderError::Config {
                detail: "the provider is not `powerdns`".into(),
            }),
        }
    }

    fn zone_url(&self, zone: &str) -> String {
        format!("{}/zones/{zone}", self.server)
    }

    fn scrub(&self, text: &str) -> String {
        let key = self.key.expose();
        let text: String = text.chars().take(500).collect();
        if key.len() >= 4 {
            text.replace(key, MASK)
        } else {
            text
        }
    }

    /// Sends `req` (`what` names it in messages), retrying what
    /// [`RetryPolicy::STANDARD`] allows. A 401/403 fails at once. For a
    /// [`Replay::Once`] request whose try may have taken effect, returns
    /// [`Sent::Unsure`]: the caller looks before it sends again.
    /// `attempt` counts tries across such looks, so they stay bounded.
    async fn send_tracked(
        &self,
        what: &str,
        replay: Replay,
        req: &RequestBuilder,
        attempt: &mut u32,
    ) -> Result<Sent, ProviderError> {
        let policy = RetryPolicy::STANDARD;
        loop {
            *attempt += 1;
            // Bodies here are JSON in memory, so a request always clones.
            let Some(this) = req.try_clone() else {
                return Err(ProviderError::Config {
                    detail: format!("{what}: the request cannot be repeated"),
                });
            };
            let (fault, why, error) = match this.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                        return Err(ProviderError::Unauthorized {
                            url: self.api_url.clone(),
                            status: status.as_u16(),
                        });
                    }
                    let fault = match status {
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                            Fault::Busy {
                                status: status.as_u16(),
                                retry_after: retry_after(&resp),
                            }
                        }
                        s if s.is_server_error() => Fault::ServerError { status: s.as_u16() },
                        _ => return Ok(Sent::Answer(resp)),
                    };
                    let why = format!("HTTP {status}");
                    let error = ProviderError::Unexpected {
                        what: format!("to {what}{}", tries_note(*attempt)),
                        status: status.as_u16(),
                        body: self.body(resp).await,
                    };
                    (fault, why, error)
                }
                Err(e) => {
                    let detail = self.scrub(&describe(&e));
                    // A refused or unanswered connect, or an answer that
                    // never came within REQUEST_TIMEOUT, fails at once: no
                    // server there, or one that hangs. A connection broken
                    // mid-request (reset, closed early) is retried.
                    let fault =
                        if e.is_builder() || e.is_redirect() || e.is_connect() || e.is_timeout() {
                            Fault::Permanent
                        } else {
                            Fault::Broken
                        };
                    let error = ProviderError::Unreachable {
                        url: self.api_url.clone(),
                        detail: format!("{what}: {detail}{}", tries_note(*attempt)),
                    };
                    (fault, detail, error)
                }
            };
            let (delay, checking) = match policy.decide(*attempt, &fault, replay) {
                Decision::GiveUp => return Err(error),
                Decision::Retry(d) => (d, false),
                Decision::CheckThenRetry(d) => (d, true),
            };
            retry::report(&RetryNotice {
                host: "",
                peer: &format!("PowerDNS `{}`", self.api_url),
                request: what,
                why: &why,
                attempt: *attempt + 1,
                attempts: policy.attempts,
                checking,
                delay,
            });
            tokio::time::sleep(delay).await;
            if checking {
                return Ok(Sent::Unsure(error));
            }
        }
    }

    /// [`Self::send_tracked`] for a request that may be repeated.
    async fn send(&self, what: &str, req: RequestBuilder) -> Result<Response, ProviderError> {
        match self
            .send_tracked(what, Replay::Idempotent, &req, &mut 0)
            .await?
        {
            Sent::Answer(resp) => Ok(resp),
            // Idempotent requests are never left unsure.
            Sent::Unsure(e) => Err(e),
        }
    }

    async fn body(&self, resp: Response) -> String {
        let text = resp.text().await.unwrap_or_default();
        // 422 and friends: {"error": "..."}; others plain text.
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(text);
        self.scrub(message.trim())
    }

    /// A 404 on a zone URL: the zone is missing, or the server id is wrong.
    async fn server_exists(&self) -> Result<bool, ProviderError> {
        let resp = self
            .send("reading the server", self.http.get(&self.server))
            .await?;
        Ok(resp.status() != StatusCode::NOT_FOUND)
    }

    async fn not_found(&self, zone: &str) -> ProviderError {
        match self.server_exists().await {
            Ok(false) => ProviderError::ServerNotFound {
                url: self.api_url.clone(),
                server_id: self.server_id.clone(),
            },
            Err(e) => e,
            Ok(true) => ProviderError::ZoneNotFound {
                zone: zone.to_string(),
                url: self.api_url.clone(),
            },
        }
    }

    async fn read(&self, zone: &str) -> Result<Option<Vec<RRset>>, ProviderError> {
        let resp = self
            .send(
                &format!("GET zone `{zone}`"),
                self.http.get(self.zone_url(zone)),
            )
            .await?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return match self.not_found(zone).await {
                ProviderError::ZoneNotFound { .. } => Ok(None),
                e => Err(e),
            };
        }
        if !status.is_success() {
            return Err(ProviderError::Unexpected {
                what: format!("reading zone `{zone}`"),
                status: status.as_u16(),
                body: self.body(resp).await,
            });
        }
        let text = resp.text().await.map_err(|e| ProviderError::Unreachable {
            url: self.api_url.clone(),
            detail: self.scrub(&describe(&e)),
        })?;
        let parsed: ApiZone = serde_json::from_str(&text).map_err(|e| ProviderError::Decode {
            what: format!("zone `{zone}`"),
            detail: e.to_string(),
        })?;
        Ok(Some(
            parsed
                .rrsets
                .into_iter()
                .filter_map(|r| {
                    let records: Vec<String> = r
                        .records
                        .into_iter()
                        .filter(|rec| !rec.disabled)
                        .map(|rec| rec.content)
                        .collect();
                    (!records.is_empty()).then(|| RRset::new(&r.name, &r.rtype, r.ttl, records))
                })
                .collect(),
        ))
    }

    async fn write_failed(&self, zone: &str, resp: Response) -> ProviderError {
        let status = resp.status();
        let message = self.body(resp).await;
        match status {
            StatusCode::NOT_FOUND => self.not_found(zone).await,
            StatusCode::CONFLICT => ProviderError::ZoneExists {
                zone: zone.to_string(),
                url: self.api_url.clone(),
            },
            s if s.is_client_error() => ProviderError::Rejected {
                zone: zone.to_string(),
                status: s.as_u16(),
                message,
            },
            s => ProviderError::Unexpected {
                what: format!("writing zone `{zone}`"),
                status: s.as_u16(),
                body: message,
            },
        }
    }

    async fn create(&self, zone: &str, rrsets: &[RRset]) -> Result<(), ProviderError> {
        let body = json!({
            "name": zone,
            "kind": "Native",
            "nameservers": [],
            "rrsets": rrsets.iter().map(replace_json).collect::<Vec<_>>(),
        });
        let what = format!("POST zone `{zone}`");
        let req = self.http.post(format!("{}/zones", self.server)).json(&body);
        let mut attempt = 0;
        loop {
            let resp = match self
                .send_tracked(&what, Replay::Once, &req, &mut attempt)
                .await?
            {
                Sent::Answer(resp) => resp,
                Sent::Unsure(_) => {
                    // Creating twice would fail with 409 at best: look first.
                    // The zone there with every RRset we sent is our own
                    // first try, which went through.
                    match self.read(zone).await? {
                        None => continue,
                        Some(now) if rrsets.iter().all(|r| now.contains(r)) => return Ok(()),
                        // someone else's, made in between
                        Some(_) => {
                            return Err(ProviderError::ZoneExists {
                                zone: zone.to_string(),
                                url: self.api_url.clone(),
                            });
                        }
                    }
                }
            };
            if resp.status().is_success() {
                return Ok(());
            }
            return Err(self.write_failed(zone, resp).await);
        }
    }

    async fn patch(&self, zone: &str, ops: &[RRsetOp]) -> Result<(), ProviderError> {
        if ops.is_empty() {
            return Ok(());
        }
        let body = json!({ "rrsets": ops.iter().map(op_json).collect::<Vec<_>>() });
        // Safe to repeat: a REPLACE sets the RRset to exactly the records
        // sent and a DELETE of an absent RRset is a no-op, all in one
        // transaction, so a second PATCH after a first that went through
        // (its answer lost to a reset) leaves the zone as the first left it.
        let resp = self
            .send(
                &format!("PATCH zone `{zone}`"),
                self.http.patch(self.zone_url(zone)).json(&body),
            )
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(self.write_failed(zone, resp).await)
    }

    /// Deletes a zone (tests and clean-up; the plan never deletes zones).
    /// `Ok(false)` when it did not exist.
    pub async fn delete_zone(&self, zone: &str) -> Result<bool, ProviderError> {
        // Repeating is harmless: a zone already gone answers 404.
        let resp = self
            .send(
                &format!("DELETE zone `{zone}`"),
                self.http.delete(self.zone_url(zone)),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.write_failed(zone, resp).await),
        }
    }
}

impl DnsProvider for PowerDns {
    fn describe(&self) -> String {
        format!("PowerDNS `{}` (server `{}`)", self.api_url, self.server_id)
    }

    fn read_zone<'a>(
        &'a self,
        zone: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<RRset>>, ProviderError>> {
        Box::pin(self.read(zone))
    }

    fn create_zone<'a>(
        &'a self,
        zone: &'a str,
        rrsets: &'a [RRset],
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.create(zone, rrsets))
    }

    fn apply<'a>(
        &'a self,
        zone: &'a str,
        ops: &'a [RRsetOp],
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.patch(zone, ops))
    }
}

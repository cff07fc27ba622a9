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

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{BoxFuture, DnsProvider, ProviderError};
use crate::dns::rrset::{RRset, RRsetOp};
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
        PowerDns::new(&p.api_url, &p.api_key, &p.server_id)
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

    async fn send(&self, req: RequestBuilder) -> Result<Response, ProviderError> {
        let resp = req.send().await.map_err(|e| ProviderError::Unreachable {
            url: self.api_url.clone(),
            detail: self.scrub(&describe(&e)),
        })?;
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(ProviderError::Unauthorized {
                url: self.api_url.clone(),
                status: resp.status().as_u16(),
            });
        }
        Ok(resp)
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
        let resp = self.send(self.http.get(&self.server)).await?;
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
        let resp = self.send(self.http.get(self.zone_url(zone))).await?;
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
        let resp = self
            .send(self.http.post(format!("{}/zones", self.server)).json(&body))
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(self.write_failed(zone, resp).await)
    }

    async fn patch(&self, zone: &str, ops: &[RRsetOp]) -> Result<(), ProviderError> {
        if ops.is_empty() {
            return Ok(());
        }
        let body = json!({ "rrsets": ops.iter().map(op_json).collect::<Vec<_>>() });
        let resp = self
            .send(self.http.patch(self.zone_url(zone)).json(&body))
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(self.write_failed(zone, resp).await)
    }

    /// Deletes a zone (tests and clean-up; the plan never deletes zones).
    /// `Ok(false)` when it did not exist.
    pub async fn delete_zone(&self, zone: &str) -> Result<bool, ProviderError> {
        let resp = self.send(self.http.delete(self.zone_url(zone))).await?;
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

//! Probes from the orchestrator's side of the network: does a listener
//! accept TCP, speak the opening of an XMPP server-to-server stream, offer
//! STARTTLS and complete the TLS handshake — and with which certificate?
//! And what does the gateway's `/status` say it runs?
//!
//! The health gate and `xfed verify` use these; they are what a partner
//! server would see, not what the host says about itself. The TLS client
//! records the certificate rather than trusting it: whether it is the
//! right one is judged by its names and expiry, which the caller compares
//! with the spec.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::plan::ListenerKind;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, DigitallySignedStruct, SignatureScheme};

/// What one XMPP listener answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmppProbe {
    pub tcp: bool,
    pub stream: bool,
    pub starttls_offered: bool,
    pub tls: bool,
    /// DNS names of the served certificate (SAN dNSName entries).
    pub cert_names: Vec<String>,
    pub cert_not_after: Option<i64>,
    /// The listener asked for a client certificate (mutual TLS).
    pub client_cert_requested: bool,
    /// With a client identity: whether the stream restarted over TLS
    /// offered SASL EXTERNAL to it. `None` without one.
    pub sasl_external: Option<bool>,
    /// What went wrong first, if anything.
    pub error: Option<String>,
}

/// A certificate chain and its key (DER, PKCS#8) a probe presents, to see
/// what a listener offers a peer holding them.
#[derive(Clone)]
pub struct ClientIdentity {
    pub chain: Vec<Vec<u8>>,
    pub key_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientIdentity({} certificates, key hidden)",
            self.chain.len()
        )
    }
}

impl XmppProbe {
    fn failed(mut self, why: impl Into<String>) -> XmppProbe {
        self.error = Some(why.into());
        self
    }
}

/// The stream addresses `(to, from)` a probe of listener `name` uses: on
/// `external` it stands where a partner stands (the gateway refuses any
/// other claimed `from`), asking for our domain; on `internal` it stands
/// where the front-end stands, from ours to a partner's domain. Without a
/// partner the external probe names no `from`, which the gateway admits as
/// far as TLS.
pub fn stream_addresses(
    listener: ListenerKind,
    our_domain: &str,
    partner: Option<&str>,
) -> (String, Option<String>) {
    if listener == ListenerKind::Internal {
        (
            partner.unwrap_or("partner.invalid").to_string(),
            Some(our_domain.to_string()),
        )
    } else {
        (our_domain.to_string(), partner.map(str::to_string))
    }
}

/// Opens an S2S stream to `addr` from `from` (when given) to `to`, asks for
/// STARTTLS and completes the TLS handshake, within `limit` in all.
pub async fn xmpp_starttls(
    addr: SocketAddr,
    to: &str,
    from: Option<&str>,
    limit: Duration,
) -> XmppProbe {
    xmpp_starttls_as(addr, to, from, None, limit).await
}

/// The same, presenting `client` in the TLS handshake and then restarting
/// the stream over TLS to read which SASL mechanisms are offered to it.
pub async fn xmpp_starttls_as(
    addr: SocketAddr,
    to: &str,
    from: Option<&str>,
    client: Option<&ClientIdentity>,
    limit: Duration,
) -> XmppProbe {
    let empty = XmppProbe {
        tcp: false,
        stream: false,
        starttls_offered: false,
        tls: false,
        cert_names: Vec::new(),
        cert_not_after: None,
        client_cert_requested: false,
        sasl_external: None,
        error: None,
    };
    match timeout(limit, probe(addr, to, from, client, empty.clone())).await {
        Ok(p) => p,
        Err(_) => empty.failed(format!("no answer within {}s", limit.as_secs_f32())),
    }
}

async fn probe(
    addr: SocketAddr,
    domain: &str,
    from: Option<&str>,
    client: Option<&ClientIdentity>,
    mut p: XmppProbe,
) -> XmppProbe {
    let mut tcp = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return p.failed(format!("TCP connect: {e}")),
    };
    p.tcp = true;
    let from = from
        .map(|f| format!(" from='{}'", xml_attr(f)))
        .unwrap_or_default();
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{}'{from} version='1.0'>",
        xml_attr(domain),
    );
    if let Err(e) = tcp.write_all(header.as_bytes()).await {
        return p.failed(format!("send stream header: {e}"));
    }
    let features = match read_until(&mut tcp, &["</stream:features>", "</stream:stream>"]).await {
        Ok(t) => t,
        Err(e) => return p.failed(e),
    };
    p.stream = features.contains("<stream:stream");
    if let Some(err) = stream_error(&features) {
        return p.failed(format!("stream error `{err}`"));
    }
    p.starttls_offered = features.contains("urn:ietf:params:xml:ns:xmpp-tls");
    if !p.starttls_offered {
        return p.failed("STARTTLS not offered");
    }
    if let Err(e) = tcp
        .write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await
    {
        return p.failed(format!("send starttls: {e}"));
    }
    match read_until(&mut tcp, &["<proceed", "<failure", "</stream:stream>"]).await {
        Ok(t) if t.contains("<proceed") => {}
        Ok(t) => return p.failed(format!("STARTTLS refused: {}", t.trim())),
        Err(e) => return p.failed(e),
    }
    let recorder = Arc::new(Recorder::default());
    let presenter = match ClientPresenter::new(client) {
        Ok(c) => Arc::new(c),
        Err(e) => return p.failed(e),
    };
    let config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_client_cert_resolver(presenter.clone());
    let name = match ServerName::try_from(domain.to_string()) {
        Ok(n) => n,
        Err(e) => return p.failed(format!("`{domain}` as a TLS name: {e}")),
    };
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await;
    p.client_cert_requested = presenter.asked();
    if let Some(der) = recorder.leaf() {
        let (names, not_after) = cert_names(&der);
        p.cert_names = names;
        p.cert_not_after = not_after;
    }
    let mut tls = match tls {
        Ok(tls) => tls,
        Err(e) => return p.failed(format!("TLS handshake: {e}")),
    };
    p.tls = true;
    if client.is_some() {
        // RFC 6120 §5.4.3.3: after TLS the initiating entity opens a new
        // stream; its features say what it may authenticate with.
        if let Err(e) = tls.write_all(header.as_bytes()).await {
            return p.failed(format!("send stream header over TLS: {e}"));
        }
        match read_until(&mut tls, &["</stream:features>", "</stream:stream>"]).await {
            Ok(features) => {
                if let Some(err) = stream_error(&features) {
                    return p.failed(format!("stream error `{err}` after TLS"));
                }
                p.sasl_external = Some(features.contains("<mechanism>EXTERNAL</mechanism>"));
            }
            Err(e) => return p.failed(format!("after TLS: {e}")),
        }
    }
    let _ = tls.shutdown().await;
    p
}

/// Presents the probe's client identity when the listener asks for one,
/// and remembers that it asked.
#[derive(Debug)]
struct ClientPresenter {
    key: Option<Arc<rustls::sign::CertifiedKey>>,
    asked: std::sync::atomic::AtomicBool,
}

impl ClientPresenter {
    fn new(client: Option<&ClientIdentity>) -> Result<ClientPresenter, String> {
        let key = match client {
            None => None,
            Some(c) => {
                let der = tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(
                    c.key_pkcs8.clone().into(),
                );
                let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der)
                    .map_err(|e| format!("the probe's client key: {e}"))?;
                let chain = c
                    .chain
                    .iter()
                    .map(|d| CertificateDer::from(d.clone()))
                    .collect();
                Some(Arc::new(rustls::sign::CertifiedKey::new(chain, signer)))
            }
        };
        Ok(ClientPresenter {
            key,
            asked: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn asked(&self) -> bool {
        self.asked.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl rustls::client::ResolvesClientCert for ClientPresenter {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.asked.store(true, std::sync::atomic::Ordering::Relaxed);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

fn xml_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('\'', "&apos;")
        .replace('<', "&lt;")
}

fn stream_error(text: &str) -> Option<String> {
    let i = text.find("<stream:error>")?;
    let rest = &text[i + "<stream:error>".len()..];
    let start = rest.find('<')? + 1;
    let end = rest[start..].find([' ', '/', '>'])? + start;
    Some(rest[start..end].to_string())
}

/// Reads until one of `marks` appears; at most 64 KiB.
async fn read_until<R: AsyncRead + Unpin>(r: &mut R, marks: &[&str]) -> Result<String, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = r.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "connection closed after {:?}",
                String::from_utf8_lossy(&buf)
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if marks.iter().any(|m| text.contains(m)) {
            return Ok(text.into_owned());
        }
        if buf.len() > 64 * 1024 {
            return Err("more than 64 KiB without the expected element".into());
        }
    }
}

/// SAN dNSNames and not-after (Unix seconds) of a DER certificate.
pub fn cert_names(der: &[u8]) -> (Vec<String>, Option<i64>) {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return (Vec::new(), None);
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for gn in &san.value.general_names {
            if let GeneralName::DNSName(d) = gn {
                names.push(d.to_string());
            }
        }
    }
    (names, Some(cert.validity().not_after.timestamp()))
}

/// Accepts any certificate and keeps the leaf: the probe reports what is
/// served; judging it is the caller's business.
#[derive(Debug, Default)]
struct Recorder {
    leaf: std::sync::Mutex<Option<Vec<u8>>>,
}

impl Recorder {
    fn leaf(&self) -> Option<Vec<u8>> {
        self.leaf.lock().ok().and_then(|l| l.clone())
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut l) = self.leaf.lock() {
            *l = Some(end_entity.as_ref().to_vec());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What the gateway's `/status` reports, the parts the health gate checks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatewayStatus {
    pub config_path: Option<String>,
    pub policy_file: Option<String>,
    pub binary_sha256: Option<String>,
    pub config_sha256: Option<String>,
    pub policy_sha256: Option<String>,
    pub topology_version: Option<String>,
    pub pid: Option<u64>,
    /// The relay's S2S streams with partners, as `/status` lists them.
    pub partner_streams: Vec<PartnerStream>,
    /// Authenticated streams from our own XMPP server (the internal
    /// listener): the front-end's route arriving at this gateway.
    pub frontend_streams: usize,
}

/// Which way a stream was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The partner connected to the gateway.
    Inbound,
    /// The gateway connected to the partner.
    Outbound,
}

/// How a stream was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamAuth {
    /// SASL EXTERNAL with a certificate.
    External,
    /// Server dialback (XEP-0220).
    Dialback,
}

impl StreamAuth {
    fn parse(s: &str) -> Option<StreamAuth> {
        match s {
            "external" => Some(StreamAuth::External),
            "dialback" => Some(StreamAuth::Dialback),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StreamAuth::External => "EXTERNAL",
            StreamAuth::Dialback => "dialback",
        }
    }
}

/// One S2S stream between a gateway and a partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerStream {
    pub direction: Direction,
    /// The partner's domain.
    pub domain: String,
    /// `None` while it is not authenticated yet.
    pub auth: Option<StreamAuth>,
}

impl GatewayStatus {
    /// `fabrikam.example in by dialback, litware.example out by EXTERNAL`,
    /// or `none`.
    pub fn partner_streams_text(&self) -> String {
        if self.partner_streams.is_empty() {
            return "none".into();
        }
        self.partner_streams
            .iter()
            .map(|s| {
                let way = match s.direction {
                    Direction::Inbound => "in",
                    Direction::Outbound => "out",
                };
                let how = s.auth.map_or("not authenticated yet", StreamAuth::as_str);
                if s.auth.is_some() {
                    format!("{} {way} by {how}", s.domain)
                } else {
                    format!("{} {way}, {how}", s.domain)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The partner streams of a `/status` document: inbound streams on the
/// external listener, outbound streams of the partner leg (`from->to`).
fn partner_streams(v: &serde_json::Value) -> Vec<PartnerStream> {
    let relay = &v["relay"];
    let list = |k: &str| relay[k].as_array().cloned().unwrap_or_default();
    let auth = |s: &serde_json::Value| s["auth"].as_str().and_then(StreamAuth::parse);
    let inbound = list("inbound").into_iter().filter_map(|s| {
        (s["listener"].as_str() == Some("external")).then(|| PartnerStream {
            direction: Direction::Inbound,
            domain: s["domain"].as_str().unwrap_or_default().to_string(),
            auth: auth(&s),
        })
    });
    let outbound = list("outbound").into_iter().filter_map(|s| {
        let to = s["pair"].as_str()?.split_once("->")?.1.to_string();
        (s["leg"].as_str() == Some("partner")).then(|| PartnerStream {
            direction: Direction::Outbound,
            domain: to,
            auth: auth(&s),
        })
    });
    let mut out: Vec<PartnerStream> = inbound.chain(outbound).collect();
    out.sort_by(|a, b| {
        (&a.domain, a.direction == Direction::Outbound)
            .cmp(&(&b.domain, b.direction == Direction::Outbound))
    });
    out
}

/// `GET path` on the admin listener (plain HTTP/1.1, internal network):
/// the body of a 200 answer.
async fn admin_get(addr: SocketAddr, path: &str, limit: Duration) -> Result<String, String> {
    let fetch = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        s.read_to_end(&mut body).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(String::from_utf8_lossy(&body).into_owned())
    };
    let text = timeout(limit, fetch)
        .await
        .map_err(|_| format!("{addr}: no answer"))??;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("not an HTTP response")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!(
            "{path} answered `{}`",
            head.lines().next().unwrap_or_default()
        ));
    }
    Ok(body.to_string())
}

/// Server dialback results a gateway counted since it started, from its
/// `/metrics`: `[valid, invalid, error]` per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DialbackCounts {
    /// Our checks of partners' keys with their authoritative servers.
    pub inbound: [u64; 3],
    /// Partners' answers to our keys.
    pub outbound: [u64; 3],
    /// `db:verify` we answered `invalid` (a key no gateway of ours issued
    /// with the secret this one has).
    pub answered_invalid: u64,
}

impl DialbackCounts {
    /// Reads the counters out of the Prometheus text; absent ones are 0.
    pub fn parse(metrics: &str) -> DialbackCounts {
        let mut c = DialbackCounts::default();
        for line in metrics.lines() {
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(n) = value.trim().parse::<u64>() else {
                continue;
            };
            let result = ["valid", "invalid", "error"]
                .iter()
                .position(|r| key.contains(&format!("result=\"{r}\"")));
            if key.starts_with("xfed_gateway_dialback_total{")
                && let Some(i) = result
            {
                if key.contains("direction=\"inbound\"") {
                    c.inbound[i] = n;
                } else if key.contains("direction=\"outbound\"") {
                    c.outbound[i] = n;
                }
            } else if key == "xfed_gateway_dialback_verify_answered_total{result=\"invalid\"}" {
                c.answered_invalid = n;
            }
        }
        c
    }
}

/// `GET /metrics` on the admin listener: the dialback counters.
pub async fn gateway_dialback(addr: SocketAddr, limit: Duration) -> Result<DialbackCounts, String> {
    admin_get(addr, "/metrics", limit)
        .await
        .map(|text| DialbackCounts::parse(&text))
}

/// `GET /status` on the admin listener (plain HTTP/1.1, internal network).
pub async fn gateway_status(addr: SocketAddr, limit: Duration) -> Result<GatewayStatus, String> {
    let body = admin_get(addr, "/status", limit).await?;
    let body = body.as_str();
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("/status is not JSON: {e}"))?;
    let s = |k: &str| v[k].as_str().map(str::to_string);
    Ok(GatewayStatus {
        config_path: s("config_path"),
        policy_file: s("policy_file"),
        binary_sha256: s("binary_sha256"),
        config_sha256: s("config_sha256"),
        policy_sha256: s("policy_sha256"),
        topology_version: s("topology_version"),
        pid: v["pid"].as_u64(),
        partner_streams: partner_streams(&v),
        frontend_streams: v["relay"]["inbound"].as_array().map_or(0, |l| {
            l.iter()
                .filter(|s| s["listener"].as_str() == Some("internal"))
                .count()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialback_counters_are_read_from_metrics() {
        let text = "# TYPE xfed_gateway_dialback_total counter\n\
            xfed_gateway_dialback_total{direction=\"inbound\",result=\"valid\"} 7\n\
            xfed_gateway_dialback_total{direction=\"inbound\",result=\"invalid\"} 1\n\
            xfed_gateway_dialback_total{direction=\"inbound\",result=\"error\"} 2\n\
            xfed_gateway_dialback_total{direction=\"outbound\",result=\"valid\"} 5\n\
            xfed_gateway_dialback_total{direction=\"outbound\",result=\"invalid\"} 0\n\
            xfed_gateway_dialback_total{direction=\"outbound\",result=\"error\"} 3\n\
            xfed_gateway_dialback_verify_answered_total{result=\"valid\"} 9\n\
            xfed_gateway_dialback_verify_answered_total{result=\"invalid\"} 4\n";
        assert_eq!(
            DialbackCounts::parse(text),
            DialbackCounts {
                inbound: [7, 1, 2],
                outbound: [5, 0, 3],
                answered_invalid: 4,
            }
        );
        assert_eq!(DialbackCounts::parse(""), DialbackCounts::default());
    }

    #[test]
    fn partner_streams_and_how_each_was_authenticated_are_read_from_status() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"relay": {
                "inbound": [
                    {"direction": "inbound", "listener": "external", "domain": "fabrikam.example", "auth": "dialback"},
                    {"direction": "inbound", "listener": "internal", "domain": "contoso.example", "auth": "external"}
                ],
                "outbound": [
                    {"pair": "contoso.example->litware.example", "leg": "partner", "state": "established", "direction": "outbound", "auth": "external"},
                    {"pair": "contoso.example->fabrikam.example", "leg": "partner", "state": "connecting", "direction": "outbound", "auth": null},
                    {"pair": "fabrikam.example->contoso.example", "leg": "internal", "state": "established", "direction": "outbound", "auth": "external"}
                ]
            }}"#,
        )
        .expect("json");
        let status = GatewayStatus {
            partner_streams: partner_streams(&v),
            ..GatewayStatus::default()
        };
        assert_eq!(
            status.partner_streams_text(),
            "fabrikam.example in by dialback, fabrikam.example out, not authenticated yet, litware.example out by EXTERNAL"
        );
        assert_eq!(
            partner_streams(&serde_json::json!({"relay": null})),
            Vec::new()
        );
        assert_eq!(GatewayStatus::default().partner_streams_text(), "none");
    }

    #[test]
    fn stream_errors_are_named() {
        assert_eq!(
            stream_error(
                "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
            ),
            Some("host-unknown".into())
        );
        assert_eq!(stream_error("<stream:features/>"), None);
    }
}

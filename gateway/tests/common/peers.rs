//! The far ends of the relay in the test process: a partner server that
//! receives the gateway's outbound stream (STARTTLS, SASL EXTERNAL) and a
//! server that initiates a stream to a gateway listener and authenticates
//! with SASL EXTERNAL. Both are plain rustls over tokio, written from RFC
//! 6120 as a peer would speak it, and read with bounded waits.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::{Leaf, client_config, read_until, stream_header, write_all};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use xfed_gateway::tls::PeerCertificatePolicy;

const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

/// A partner's receiving server, listening on loopback.
pub struct PartnerServer {
    pub listener: TcpListener,
    pub address: SocketAddr,
    acceptor: TlsAcceptor,
    domain: String,
}

/// A stream the gateway opened to the partner, negotiated.
pub struct FromGateway {
    pub tls: tokio_rustls::server::TlsStream<TcpStream>,
    /// The gateway's first header.
    pub header: String,
    /// The `<auth/>` element it sent.
    pub auth: String,
    /// Everything read after the final features.
    pub pending: String,
}

impl PartnerServer {
    /// Listens for `domain` with `leaf` as server certificate; accepts any
    /// client certificate (the test checks which one was presented).
    pub async fn bind(domain: &str, leaf: &Leaf) -> PartnerServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let config = ServerConfig::builder()
            .with_client_cert_verifier(Arc::new(PeerCertificatePolicy::Requested))
            .with_single_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
            )
            .unwrap();
        PartnerServer {
            listener,
            address,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            domain: domain.to_string(),
        }
    }

    /// Accepts the gateway's stream and answers as a receiving server
    /// that offers EXTERNAL and grants it.
    pub async fn accept(&self) -> FromGateway {
        let (mut tcp, _) = tokio::time::timeout(super::WAIT, self.listener.accept())
            .await
            .expect("the gateway connects in time")
            .unwrap();
        let header = read_until(&mut tcp, "xml:lang='en'>").await;
        let to = super::header_attr(&header, "from").expect("from");
        let reply = |features: &str| {
            format!(
                "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
                 xmlns:stream='http://etherx.jabber.org/streams' id='p{}' from='{}' to='{to}' \
                 version='1.0'>{features}",
                features.len(),
                self.domain
            )
        };
        write_all(
            &mut tcp,
            &reply("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"),
        )
        .await;
        read_until(&mut tcp, "<starttls").await;
        write_all(
            &mut tcp,
            "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        )
        .await;
        let mut tls = self.acceptor.accept(tcp).await.unwrap();
        read_until(&mut tls, "xml:lang='en'>").await;
        write_all(
            &mut tls,
            &reply(&format!(
                "<stream:features><mechanisms xmlns='{NS_SASL}'><mechanism>EXTERNAL</mechanism></mechanisms></stream:features>"
            )),
        )
        .await;
        let auth = read_until(&mut tls, "</auth>").await;
        write_all(&mut tls, &format!("<success xmlns='{NS_SASL}'/>")).await;
        let restarted = read_until(&mut tls, "xml:lang='en'>").await;
        let pending = restarted
            .split_once("xml:lang='en'>")
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default();
        write_all(&mut tls, &reply("<stream:features/>")).await;
        FromGateway {
            tls,
            header,
            auth,
            pending,
        }
    }
}

impl FromGateway {
    /// Reads (bounded) until `needle` has arrived; returns all read so far.
    pub async fn read_until(&mut self, needle: &str) -> String {
        if !self.pending.contains(needle) {
            let more = read_until(&mut self.tls, needle).await;
            self.pending.push_str(&more);
        }
        std::mem::take(&mut self.pending)
    }

    /// Reads until the gateway closes the stream (bounded).
    pub async fn read_to_end(&mut self) -> String {
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(super::WAIT, self.tls.read_to_end(&mut rest)).await;
        format!("{}{}", self.pending, String::from_utf8_lossy(&rest))
    }
}

/// A server initiating a stream to a gateway listener.
pub struct Initiator {
    pub tls: tokio_rustls::client::TlsStream<TcpStream>,
    /// The features after TLS.
    pub features: String,
}

/// Connects to `addr` as `from` (to `to`), STARTTLS with `client_cert`,
/// and returns the stream with the features the gateway offered after TLS.
pub async fn start_tls(
    addr: SocketAddr,
    to: &str,
    from: &str,
    roots: RootCertStore,
    client_cert: Option<&Leaf>,
) -> Initiator {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    write_all(&mut tcp, &stream_header(to, from)).await;
    read_until(&mut tcp, "</stream:features>").await;
    write_all(
        &mut tcp,
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    )
    .await;
    read_until(&mut tcp, "<proceed").await;
    let connector = TlsConnector::from(client_config(roots, client_cert));
    let name = ServerName::try_from(to.to_string()).unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    write_all(&mut tls, &stream_header(to, from)).await;
    let features = read_features(&mut tls).await;
    Initiator { tls, features }
}

async fn read_features<S: tokio::io::AsyncRead + Unpin>(io: &mut S) -> String {
    let mut text = read_until(io, "<stream:features").await;
    while !(text.contains("<stream:features/>") || text.contains("</stream:features>")) {
        text.push_str(&read_until(io, ">").await);
    }
    text
}

impl Initiator {
    /// Whether EXTERNAL was offered.
    pub fn offers_external(&self) -> bool {
        self.features.contains("<mechanism>EXTERNAL</mechanism>")
    }

    /// SASL EXTERNAL with `authzid` (already base64 or `=`), then the
    /// restart; returns the reply to `<auth/>`.
    pub async fn authenticate(&mut self, to: &str, from: &str, authzid: &str) -> String {
        write_all(
            &mut self.tls,
            &format!("<auth xmlns='{NS_SASL}' mechanism='EXTERNAL'>{authzid}</auth>"),
        )
        .await;
        let mut reply = read_until(&mut self.tls, "/>").await;
        if reply.contains("<failure") && !reply.contains("</failure>") {
            reply.push_str(&read_until(&mut self.tls, "</failure>").await);
        }
        if reply.contains("<success") {
            write_all(&mut self.tls, &stream_header(to, from)).await;
            read_until(&mut self.tls, "<stream:features/>").await;
        }
        reply
    }

    pub async fn send(&mut self, xml: &str) {
        write_all(&mut self.tls, xml).await;
    }

    pub async fn read_to_end(&mut self) -> String {
        super::read_to_end(&mut self.tls).await
    }
}

/// base64 of `s`, as an authzid.
pub fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

//! The receiving side's dialback check (XEP-0220 §2.1.2, steps 2–3): ask
//! the partner's authoritative server, over a connection of its own,
//! whether it issued the key a partner presented in `db:result`.
//!
//! The authoritative server is found as for outbound streams (the
//! partner's `proxy`, else its `_xmpp-server._tcp` SRV records); the
//! connection always starts TLS first (the certificate is not judged:
//! dialback authenticates through DNS), sends one `db:verify` and waits for
//! the answer to exactly that request (same id, from and to). Anything else
//! (unreachable, no TLS, timeout, stream error, an answer to another
//! request) is `Error`, never `Valid`.

use super::handshake::{FrameReader, connect, initiating_header, start_tls};
use super::outbound::{Destination, addresses_of};
use super::router::Router;
use crate::event;
use crate::stream::{DialbackOutcome, NS_DIALBACK, NS_STREAMS};
use crate::xml::{Frame, escape_attr, escape_text};
use std::time::Instant as StdInstant;
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, timeout_at};

/// One key to verify.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// The partner (originating) domain.
    pub from: String,
    /// Our domain (receiving).
    pub to: String,
    /// Our stream's id the key is bound to.
    pub stream_id: String,
    /// The key.
    pub key: String,
}

impl Router {
    /// Asks `request.from`'s authoritative server about the key; counts
    /// and logs the outcome.
    pub async fn verify_dialback(&self, request: VerifyRequest) -> DialbackOutcome {
        let started = StdInstant::now();
        let (outcome, why) = self.verify_inner(&request).await;
        self.shared.relay.dialback(false, outcome);
        event!(
            Info,
            "dialback_verified",
            from = request.from,
            to = request.to,
            result = outcome.as_str(),
            reason = why,
            millis = started.elapsed().as_millis(),
        );
        outcome
    }

    async fn verify_inner(&self, r: &VerifyRequest) -> (DialbackOutcome, String) {
        let generation = self.shared.current();
        let config = &generation.config;
        let (Some(relay), Some(tls), Some(partner)) = (
            config.relay.as_ref(),
            generation.relay.as_ref(),
            config.partner_of(&r.from),
        ) else {
            return (DialbackOutcome::Error, "not a partner or no relay".into());
        };
        let destination = match &partner.proxy {
            Some(proxy) => Destination::Fixed(proxy.clone()),
            None => Destination::Srv(r.from.clone()),
        };
        let timeout = relay.connect_timeout;
        let connector = tls.to_dialback_partners.clone();
        drop(generation);
        let deadline = Instant::now() + timeout * 2;
        let asked = async {
            let addresses = addresses_of(&destination, timeout).await?;
            let (tcp, _) = connect(&addresses, timeout).await?;
            let header = initiating_header(&r.to, &r.from);
            let mut tls = start_tls(tcp, &header, &r.from, &connector, deadline).await?;
            let mut reader = FrameReader::new();
            super::handshake::write_str(&mut tls, &header, deadline).await?;
            reader.header_id_and_features(&mut tls, deadline).await?;
            super::handshake::write_str(
                &mut tls,
                &format!(
                    "<db:verify from='{}' to='{}' id='{}'>{}</db:verify>",
                    escape_attr(&r.to),
                    escape_attr(&r.from),
                    escape_attr(&r.stream_id),
                    escape_text(&r.key)
                ),
                deadline,
            )
            .await?;
            let answer = loop {
                let frame = match timeout_at(deadline, reader.next(&mut tls)).await {
                    Err(_) => break (DialbackOutcome::Error, "timed out".to_string()),
                    Ok(Err(e)) => break (DialbackOutcome::Error, e.to_string()),
                    Ok(Ok(None | Some(Frame::StreamClose))) => {
                        break (DialbackOutcome::Error, "closed before answering".into());
                    }
                    Ok(Ok(Some(frame))) => frame,
                };
                let Frame::Element(e) = frame else { continue };
                if e.is(NS_STREAMS, "error") {
                    break (
                        DialbackOutcome::Error,
                        format!(
                            "stream error `{}`",
                            super::handshake::stream_error_condition(&e)
                        ),
                    );
                }
                // Only the answer to our request counts.
                let ours = e.is(NS_DIALBACK, "verify")
                    && e.attr("id") == Some(r.stream_id.as_str())
                    && e.attr("from")
                        .is_some_and(|f| f.eq_ignore_ascii_case(&r.from))
                    && e.attr("to").is_some_and(|t| t.eq_ignore_ascii_case(&r.to));
                if !ours {
                    continue;
                }
                break match e.attr("type") {
                    Some("valid") => (DialbackOutcome::Valid, "confirmed".into()),
                    Some("invalid") => (
                        DialbackOutcome::Invalid,
                        "the authoritative server did not issue the key".into(),
                    ),
                    other => (
                        DialbackOutcome::Error,
                        format!("answer of type {:?}", other.unwrap_or("")),
                    ),
                };
            };
            let _ = timeout_at(deadline, async {
                tls.write_all(b"</stream:stream>").await?;
                tls.shutdown().await
            })
            .await;
            Ok::<_, super::handshake::HandshakeError>(answer)
        };
        match timeout_at(deadline, asked).await {
            Err(_) => (DialbackOutcome::Error, "timed out".into()),
            Ok(Err(e)) => (DialbackOutcome::Error, format!("authoritative server: {e}")),
            Ok(Ok(answer)) => answer,
        }
    }
}

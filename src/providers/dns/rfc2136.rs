//! Any DNS server that takes dynamic updates (RFC 2136) signed with TSIG
//! (RFC 8945) — BIND 9, Knot, PowerDNS, Windows DNS, most appliances —
//! through hickory's client and protocol crates.
//!
//! - A zone is read by AXFR, signed with the key, over TCP, from
//!   `read_server` (or the first of `servers` that answers); every message
//!   of the answer must carry the server's valid signature.
//! - All changes to one zone go in ONE UPDATE message, which the server
//!   applies all or nothing (RFC 2136 §3.7). With the changes go
//!   prerequisites (§2.4): every RRset the update touches must still be
//!   exactly as xfed read it (value-dependent "RRset exists", or "RRset
//!   does not exist"). A record changed behind xfed's back since the zone
//!   was read makes the server refuse the whole update (NXRRSET/YXRRSET)
//!   and nothing is written: the stale-plan rule, enforced by the server.
//! - The key is signed with and never formatted; answers from the server
//!   never carry it. A signature the server rejects is reported with the
//!   server's own codes (NOTAUTH, BADSIG/BADKEY/BADTIME).
//! - UPDATE is sent once and never repeated: a broken connection after it
//!   was sent leaves the outcome to the next plan, which reads the zone.
//! - Zones are not created: dynamic update changes zones a server already
//!   serves.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::xfer::{DnsExchange, DnsHandle, DnsMultiplexer};
use hickory_proto::op::{
    DnsRequest, DnsRequestOptions, DnsResponse, Message, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigVerifier, TSigner};

use super::{BoxFuture, DnsProvider, ProviderError};
use crate::dns::rrset::{RRset, RRsetOp, encode_txt_strings, parse_txt};
use crate::secret::MASK;
use crate::spec::{Rfc2136Settings, Tsig};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest clock difference the server accepts for a signature.
const FUDGE: u16 = 300;

/// Types a DNS server maintains itself in a signed zone; never prerequisites
/// (they change under xfed whenever the server re-signs).
const SERVER_TYPES: [&str; 5] = ["SOA", "RRSIG", "NSEC", "NSEC3", "NSEC3PARAM"];

/// A DNS server reached by AXFR and UPDATE with TSIG.
pub struct Rfc2136 {
    servers: Vec<SocketAddr>,
    read_server: Option<SocketAddr>,
    key_name: String,
    algorithm: &'static str,
    /// Holds the key; never formatted.
    signer: TSigner,
}

impl fmt::Debug for Rfc2136 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rfc2136")
            .field("servers", &self.servers)
            .field("read_server", &self.read_server)
            .field("key_name", &self.key_name)
            .field("algorithm", &self.algorithm)
            .field("key", &MASK)
            .finish()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn name(text: &str) -> Result<Name, ProviderError> {
    Name::from_ascii(text).map_err(|e| ProviderError::Config {
        detail: format!("`{text}` is not a DNS name: {e}"),
    })
}

/// The TSIG error of a (rejected) answer, as the server named it.
fn tsig_error(resp: &Message) -> Option<String> {
    let sig = resp.signature()?;
    sig.data.error.as_ref().map(|e| match e {
        TsigError::BadSig => "BADSIG".to_string(),
        TsigError::BadKey => "BADKEY".to_string(),
        TsigError::BadTime => "BADTIME".to_string(),
        TsigError::BadTrunc => "BADTRUNC".to_string(),
        TsigError::Unknown(code) => format!("TSIG error {code}"),
    })
}

fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        ResponseCode::YXRRSet => "YXRRSET".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        other => format!("{other:?}").to_ascii_uppercase(),
    }
}

/// Record content in the canonical text form of [`RRset`].
fn content(data: &RData) -> String {
    match data {
        RData::TXT(txt) => {
            let strings: Vec<Vec<u8>> = txt.txt_data.iter().map(|s| s.to_vec()).collect();
            encode_txt_strings(&strings)
        }
        other => other.to_string(),
    }
}

/// The zone's records as RRsets (TTL of an RRset: its first record's).
pub fn rrsets_of(records: &[Record]) -> Vec<RRset> {
    let mut sets: BTreeMap<(String, String), (u32, Vec<String>)> = BTreeMap::new();
    for r in records {
        let rtype = r.record_type().to_string().to_ascii_uppercase();
        let entry = sets
            .entry((r.name.to_ascii().to_ascii_lowercase(), rtype))
            .or_insert((r.ttl, Vec::new()));
        entry.1.push(content(&r.data));
    }
    sets.into_iter()
        .map(|((name, rtype), (ttl, records))| RRset::new(&name, &rtype, ttl, records))
        .collect()
}

/// The wire form of one record of `r`.
fn rdata(rtype: RecordType, content: &str) -> Result<RData, ProviderError> {
    if rtype == RecordType::TXT {
        let strings = parse_txt(content).ok_or_else(|| ProviderError::Config {
            detail: format!("TXT content `{content}` does not parse"),
        })?;
        return Ok(RData::TXT(TXT::from_bytes(
            strings.iter().map(Vec::as_slice).collect(),
        )));
    }
    RData::try_from_str(rtype, content).map_err(|e| ProviderError::Config {
        detail: format!("{rtype} content `{content}` does not parse: {e}"),
    })
}

fn record_type(rtype: &str) -> Result<RecordType, ProviderError> {
    RecordType::from_str(rtype).map_err(|_| ProviderError::Config {
        detail: format!("record type `{rtype}` is not known to the DNS library"),
    })
}

/// The UPDATE message for `ops` on `zone`, its prerequisites drawn from
/// `expected` (the zone's RRsets as read, at the names the update touches).
pub fn update_message(
    zone: &str,
    ops: &[RRsetOp],
    expected: Option<&[RRset]>,
) -> Result<Message, ProviderError> {
    let origin = name(zone)?;
    let mut msg = Message::query();
    msg.metadata.op_code = OpCode::Update;
    msg.metadata.recursion_desired = false;
    let mut zq = Query::query(origin, RecordType::SOA);
    zq.set_query_class(DNSClass::IN);
    msg.add_query(zq);

    if let Some(expected) = expected {
        // Every RRset the update touches must be as it was read.
        let mut keys: Vec<(String, String)> = ops
            .iter()
            .map(|op| match op {
                RRsetOp::Replace(r) => r.key(),
                RRsetOp::Delete { name, rtype } => (name.clone(), rtype.clone()),
            })
            .collect();
        keys.sort();
        keys.dedup();
        for (n, t) in &keys {
            if SERVER_TYPES.contains(&t.as_str()) {
                continue;
            }
            let rt = record_type(t)?;
            match expected.iter().find(|r| &r.name == n && &r.rtype == t) {
                Some(r) => {
                    for c in &r.records {
                        // Value-dependent "RRset exists": class IN, TTL 0.
                        msg.add_answer(Record::from_rdata(name(n)?, 0, rdata(rt, c)?));
                    }
                }
                None => {
                    // "RRset does not exist": class NONE, empty RDATA.
                    let mut p = Record::update0(name(n)?, 0, rt);
                    p.dns_class = DNSClass::NONE;
                    msg.add_answer(p);
                }
            }
        }
    }

    for op in ops {
        let (n, t) = match op {
            RRsetOp::Replace(r) => (&r.name, &r.rtype),
            RRsetOp::Delete { name, rtype } => (name, rtype),
        };
        let rt = record_type(t)?;
        // Delete the RRset: class ANY, TTL 0, empty RDATA.
        let mut delete = Record::update0(name(n)?, 0, rt);
        delete.dns_class = DNSClass::ANY;
        msg.add_authority(delete);
        if let RRsetOp::Replace(r) = op {
            for c in &r.records {
                msg.add_authority(Record::from_rdata(name(n)?, r.ttl, rdata(rt, c)?));
            }
        }
    }
    Ok(msg)
}

impl Rfc2136 {
    /// From the spec's settings; the key's base64 is decoded here.
    pub fn new(settings: &Rfc2136Settings) -> Result<Rfc2136, ProviderError> {
        let key = Tsig::decode_key(settings.tsig.secret.expose()).ok_or_else(|| {
            ProviderError::Config {
                detail: "the TSIG secret (`dns.provider.tsig.secret`) is not base64".into(),
            }
        })?;
        let algorithm = match settings.tsig.algorithm {
            crate::spec::TsigAlgorithm::HmacSha256 => TsigAlgorithm::HmacSha256,
            crate::spec::TsigAlgorithm::HmacSha512 => TsigAlgorithm::HmacSha512,
        };
        let signer =
            TSigner::new(key, algorithm, name(&settings.tsig.name)?, FUDGE).map_err(|e| {
                ProviderError::Config {
                    detail: format!("cannot use the TSIG key: {e}"),
                }
            })?;
        if settings.servers.is_empty() {
            return Err(ProviderError::Config {
                detail: "`dns.provider.servers` is empty".into(),
            });
        }
        Ok(Rfc2136 {
            servers: settings.servers.clone(),
            read_server: settings.read_server,
            key_name: settings.tsig.name.clone(),
            algorithm: settings.tsig.algorithm.name(),
            signer,
        })
    }

    fn servers_list(&self) -> String {
        self.servers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A TCP connection to the first of `candidates` that accepts one.
    async fn connect(
        &self,
        candidates: &[SocketAddr],
    ) -> Result<(SocketAddr, DnsExchange<TokioRuntimeProvider>), ProviderError> {
        let mut failures = Vec::new();
        for &addr in candidates {
            let (stream, handle) = TcpClientStream::new(
                addr,
                None,
                Some(CONNECT_TIMEOUT),
                TokioRuntimeProvider::default(),
            );
            match tokio::time::timeout(CONNECT_TIMEOUT, stream).await {
                Ok(Ok(stream)) => {
                    let mux = DnsMultiplexer::new(stream, handle).with_timeout(REQUEST_TIMEOUT);
                    let (exchange, bg) = DnsExchange::from_stream(mux);
                    tokio::spawn(bg);
                    return Ok((addr, exchange));
                }
                Ok(Err(e)) => failures.push(format!("{addr}: {e}")),
                Err(_) => failures.push(format!("{addr}: timed out")),
            }
        }
        Err(ProviderError::DnsUnreachable {
            detail: failures.join("; "),
        })
    }

    /// Signs `msg`, sends it to `server` and collects the answer's messages
    /// until `done` says the answer is complete: every message with data
    /// verified; an unsigned error without data (Knot's NOTAUTH for a zone
    /// it does not serve) ends the answer as it is.
    async fn exchange(
        &self,
        server: SocketAddr,
        exchange: &DnsExchange<TokioRuntimeProvider>,
        mut msg: Message,
        what: &str,
        done: impl Fn(&[DnsResponse]) -> bool,
    ) -> Result<Vec<DnsResponse>, ProviderError> {
        let verifier: Option<TSigVerifier> =
            msg.finalize(&self.signer, now())
                .map_err(|e| ProviderError::Config {
                    detail: format!("cannot sign the {what}: {e}"),
                })?;
        let Some(mut verifier) = verifier else {
            return Err(ProviderError::Config {
                detail: format!("the {what} was not signed"),
            });
        };
        let mut options = DnsRequestOptions::default();
        options.use_edns = false;
        let mut stream = exchange.send(DnsRequest::new(msg, options));
        let mut answers = Vec::new();
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        loop {
            let next = tokio::time::timeout_at(deadline, stream.next()).await;
            let resp = match next {
                Err(_) => {
                    return Err(ProviderError::DnsFailed {
                        what: format!("{what} at {server}"),
                        detail: "no complete answer within 15 s".into(),
                    });
                }
                Ok(None) => {
                    return Err(ProviderError::DnsFailed {
                        what: format!("{what} at {server}"),
                        detail: "the connection closed before the answer was complete".into(),
                    });
                }
                Ok(Some(Err(e))) => {
                    return Err(ProviderError::DnsFailed {
                        what: format!("{what} at {server}"),
                        detail: e.to_string(),
                    });
                }
                Ok(Some(Ok(resp))) => resp,
            };
            let rcode = resp.metadata.response_code;
            if let Some(tsig) = tsig_error(&resp) {
                return Err(self.tsig_rejected(server, what, rcode, &tsig));
            }
            if rcode != ResponseCode::NoError && resp.signature().is_none() {
                // An error without data, unsigned: Knot's NOTAUTH for a
                // zone it does not serve. It changes nothing and is taken
                // as the answer; data is only ever taken signed.
                answers.push(resp);
                return Ok(answers);
            }
            let verified = verifier.verify(resp.as_buffer()).map_err(|e| {
                self.tsig_rejected(
                    server,
                    what,
                    rcode,
                    &format!("its answer's signature does not verify: {e}"),
                )
            })?;
            if rcode != ResponseCode::NoError {
                answers.push(verified);
                return Ok(answers);
            }
            answers.push(verified);
            if done(&answers) {
                return Ok(answers);
            }
        }
    }

    fn tsig_rejected(
        &self,
        server: SocketAddr,
        what: &str,
        rcode: ResponseCode,
        tsig: &str,
    ) -> ProviderError {
        ProviderError::TsigRejected {
            what: format!(
                "{what} at {server} with key `{}` ({})",
                self.key_name, self.algorithm
            ),
            codes: format!("{}/{tsig}", rcode_name(rcode)),
        }
    }

    /// The zone by AXFR, `None` when the server does not serve it.
    async fn axfr(&self, zone: &str) -> Result<Option<Vec<RRset>>, ProviderError> {
        let candidates: Vec<SocketAddr> = match self.read_server {
            Some(r) => vec![r],
            None => self.servers.clone(),
        };
        let (server, exchange) = self.connect(&candidates).await?;
        let mut msg = Message::query();
        msg.metadata.recursion_desired = false;
        msg.add_query(Query::query(name(zone)?, RecordType::AXFR));
        // Complete once a second SOA closes the transfer.
        let done = |answers: &[DnsResponse]| {
            answers
                .iter()
                .flat_map(|a| a.answers.iter())
                .filter(|r| r.record_type() == RecordType::SOA)
                .count()
                >= 2
        };
        let answers = self
            .exchange(server, &exchange, msg, &format!("AXFR of `{zone}`"), done)
            .await?;
        let rcode = answers
            .last()
            .map_or(ResponseCode::NoError, |a| a.metadata.response_code);
        match rcode {
            ResponseCode::NoError => {}
            ResponseCode::NotAuth | ResponseCode::NXDomain | ResponseCode::NotZone => {
                return Ok(None);
            }
            other => {
                return Err(ProviderError::DnsFailed {
                    what: format!("AXFR of `{zone}` at {server}"),
                    detail: format!(
                        "the server answered {}\n  hint: the server must serve the zone and allow \
                         transfers signed with key `{}`",
                        rcode_name(other),
                        self.key_name
                    ),
                });
            }
        }
        let mut records: Vec<Record> = answers
            .into_iter()
            .flat_map(|a| a.into_message().answers)
            .collect();
        // The closing SOA repeats the first.
        records.pop();
        Ok(Some(rrsets_of(&records)))
    }

    async fn update(
        &self,
        zone: &str,
        ops: &[RRsetOp],
        expected: Option<&[RRset]>,
    ) -> Result<(), ProviderError> {
        if ops.is_empty() {
            return Ok(());
        }
        let msg = update_message(zone, ops, expected)?;
        // One UPDATE is one DNS message, 64 KiB at most (with its
        // signature); splitting it would lose all-or-nothing.
        if msg.to_vec().map_or(true, |wire| wire.len() > 65_535 - 512) {
            return Err(ProviderError::Config {
                detail: format!(
                    "the {} changes to zone `{zone}` do not fit in one UPDATE message (64 KiB), \
                     and xfed does not split a zone's changes: they would no longer be all or \
                     nothing\n  hint: apply the spec in steps (fewer records at a time)",
                    ops.len()
                ),
            });
        }
        let (server, exchange) = self.connect(&self.servers).await?;
        let what = format!("UPDATE of `{zone}`");
        let answers = self
            .exchange(server, &exchange, msg, &what, |_| true)
            .await?;
        let rcode = answers
            .last()
            .map_or(ResponseCode::NoError, |a| a.metadata.response_code);
        match rcode {
            ResponseCode::NoError => Ok(()),
            ResponseCode::NXRRSet
            | ResponseCode::YXRRSet
            | ResponseCode::NXDomain
            | ResponseCode::YXDomain => Err(ProviderError::PrerequisiteFailed {
                zone: zone.to_string(),
                codes: format!("{} from {server}", rcode_name(rcode)),
            }),
            ResponseCode::NotAuth | ResponseCode::NotZone => Err(ProviderError::ZoneNotFound {
                zone: zone.to_string(),
                url: server.to_string(),
            }),
            other => Err(ProviderError::DnsFailed {
                what: format!("{what} at {server}"),
                detail: format!(
                    "the server answered {}{}",
                    rcode_name(other),
                    if other == ResponseCode::Refused {
                        format!(
                            "\n  hint: the server must allow updates of the zone signed with key `{}`",
                            self.key_name
                        )
                    } else {
                        String::new()
                    }
                ),
            }),
        }
    }
}

impl DnsProvider for Rfc2136 {
    fn describe(&self) -> String {
        format!(
            "RFC 2136 server {} (TSIG key `{}`)",
            self.servers_list(),
            self.key_name
        )
    }

    fn read_zone<'a>(
        &'a self,
        zone: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<RRset>>, ProviderError>> {
        Box::pin(self.axfr(zone))
    }

    fn create_zone<'a>(
        &'a self,
        zone: &'a str,
        _rrsets: &'a [RRset],
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            Err(ProviderError::Config {
                detail: format!(
                    "zone `{zone}` must be created on the DNS server: dynamic update cannot create zones"
                ),
            })
        })
    }

    fn apply<'a>(
        &'a self,
        zone: &'a str,
        ops: &'a [RRsetOp],
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.update(zone, ops, None))
    }

    fn apply_expecting<'a>(
        &'a self,
        zone: &'a str,
        ops: &'a [RRsetOp],
        expected: &'a [RRset],
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.update(zone, ops, Some(expected)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_carries_prerequisites_for_every_rrset_it_touches() {
        let srv = RRset::new(
            "_xmpp-server._tcp.contoso.example.",
            "SRV",
            300,
            vec!["10 50 5269 xmpp1.contoso.example.".into()],
        );
        let marker = RRset::new(
            "_xfed-owner.xmpp1.contoso.example.",
            "TXT",
            300,
            vec!["\"xfed-managed type=A\"".into()],
        );
        let ops = vec![
            RRsetOp::Replace(srv.clone()),
            RRsetOp::Replace(marker),
            RRsetOp::Delete {
                name: "old.contoso.example.".into(),
                rtype: "A".into(),
            },
        ];
        let before = RRset::new(
            "_xmpp-server._tcp.contoso.example.",
            "SRV",
            300,
            vec!["10 50 5269 xmpp0.contoso.example.".into()],
        );
        let msg = update_message("contoso.example.", &ops, Some(&[before])).expect("message");
        // one value-dependent prerequisite (the SRV as read), two "does not exist"
        assert_eq!(msg.answers.len(), 3);
        let srv_pre = msg
            .answers
            .iter()
            .find(|r| r.record_type() == RecordType::SRV)
            .expect("SRV prerequisite");
        assert_eq!(srv_pre.dns_class, DNSClass::IN);
        assert_eq!(srv_pre.ttl, 0);
        assert!(srv_pre.data.to_string().contains("xmpp0.contoso.example."));
        let absent: Vec<_> = msg
            .answers
            .iter()
            .filter(|r| r.dns_class == DNSClass::NONE)
            .collect();
        assert_eq!(absent.len(), 2);
        // deletes (class ANY) then the new records
        assert_eq!(
            msg.authorities
                .iter()
                .filter(|r| r.dns_class == DNSClass::ANY)
                .count(),
            3
        );
        let txt = msg
            .authorities
            .iter()
            .find(|r| r.record_type() == RecordType::TXT && r.dns_class == DNSClass::IN)
            .expect("marker");
        assert_eq!(content(&txt.data), "\"xfed-managed type=A\"");
        // Read back, the records are the RRsets xfed wrote.
        let written: Vec<Record> = msg
            .authorities
            .iter()
            .filter(|r| r.dns_class == DNSClass::IN)
            .cloned()
            .collect();
        assert!(rrsets_of(&written).contains(&srv));
    }

    #[test]
    fn without_expectations_an_update_has_no_prerequisites() {
        let ops = vec![RRsetOp::Delete {
            name: "_acme-challenge.contoso.example.".into(),
            rtype: "TXT".into(),
        }];
        let msg = update_message("contoso.example.", &ops, None).expect("message");
        assert!(msg.answers.is_empty());
        assert_eq!(msg.authorities.len(), 1);
    }
}

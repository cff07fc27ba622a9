//! A small authoritative DNS server on loopback (UDP) for the tests that
//! steer a real Prosody's outgoing S2S: Prosody 0.12 finds a domain's
//! server only through `_xmpp-server._tcp` SRV records, and its resolver
//! (libunbound) is pointed here with `unbound = { forward = ... }`.
//!
//! Answers SRV for the domains registered with `serve` (target
//! `<label>.srv.test-dns.example.`, A 127.0.0.1, no AAAA) and NXDOMAIN for
//! everything else. Stopped when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TARGET_ZONE: &str = "srv.test-dns.example.";

pub struct TestDns {
    pub port: u16,
    ports: Arc<Mutex<HashMap<String, u16>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestDns {
    pub fn start() -> TestDns {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let ports: Arc<Mutex<HashMap<String, u16>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (ports.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = answer(&buf[..n], &p.lock().unwrap()) {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        TestDns {
            port,
            ports,
            stop,
            thread: Some(thread),
        }
    }

    /// `_xmpp-server._tcp.<domain>` → 127.0.0.1:`port`.
    pub fn serve(&self, domain: &str, port: u16) {
        self.ports
            .lock()
            .unwrap()
            .insert(domain.to_ascii_lowercase(), port);
    }

    /// The Prosody option that sends its lookups here.
    pub fn prosody_option(&self) -> String {
        format!(
            "unbound = {{ resolvconf = false; hoststxt = false; forward = {{ \"127.0.0.1@{}\" }} }}\n",
            self.port
        )
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(query: &[u8], ports: &HashMap<String, u16>) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.message_type = MessageType::Response;
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.queries = query.queries.clone();
    reply.metadata.response_code = ResponseCode::NXDomain;
    if let Some(q) = query.queries.first() {
        let name = q.name().to_ascii().to_ascii_lowercase();
        let srv_domain = name
            .strip_prefix("_xmpp-server._tcp.")
            .map(|d| d.trim_end_matches('.').to_string());
        if let Some(port) = srv_domain.as_ref().and_then(|d| ports.get(d)) {
            reply.metadata.response_code = ResponseCode::NoError;
            if q.query_type() == RecordType::SRV {
                let label = srv_domain.unwrap().replace('.', "-");
                let target = Name::from_ascii(format!("{label}.{TARGET_ZONE}")).unwrap();
                reply.answers.push(Record::from_rdata(
                    q.name().clone(),
                    5,
                    RData::SRV(SRV::new(0, 0, *port, target)),
                ));
            }
        } else if name.ends_with(TARGET_ZONE) {
            reply.metadata.response_code = ResponseCode::NoError;
            if q.query_type() == RecordType::A {
                reply.answers.push(Record::from_rdata(
                    q.name().clone(),
                    5,
                    RData::A(A::new(127, 0, 0, 1)),
                ));
            }
        }
    }
    reply.to_vec().ok()
}

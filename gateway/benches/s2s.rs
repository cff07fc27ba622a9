//! Loopback benchmark of the real `xfed-gateway` binary (and of Prosody,
//! when it is installed): STARTTLS handshakes per second, and the memory
//! of N idle S2S connections (default 1,000) at three stages: before TLS,
//! after TLS (no authentication), and authenticated with SASL EXTERNAL;
//! then the RSS after those authenticated streams are closed.
//!
//! ```text
//! cargo bench -p xfed-gateway --bench s2s -- [--connections 2000]
//!     [--concurrency 50] [--idle 1000] [--no-prosody] [--rsa]
//! ```
//!
//! Prints figures; asserts nothing about them. Everything runs on
//! 127.0.0.1 with ephemeral ports; every wait is bounded; the only
//! processes signalled are the ones this program started, by PID. The
//! open-files limit of this process (inherited by the servers it starts)
//! is raised towards its hard limit when `--idle` needs more descriptors.
//!
//! One handshake = TCP connect, our stream header, the server's header and
//! features, `<starttls/>`, `<proceed/>`, a full TLS handshake (session
//! resumption off, no client certificate), the restarted header, and the
//! server's new header and features; then `</stream:stream>` and close.
//!
//! An authenticated idle stream goes further: the TLS handshake presents a
//! client certificate for the partner domain from the bench CA (which both
//! servers trust for partners), then `<auth mechanism='EXTERNAL'>=</auth>`,
//! `<success/>`, and the header and features of the restarted stream. The
//! server's own count of authenticated streams is printed beside it (the
//! gateway's `/status`, Prosody's log). "RSS after load" is read every
//! 100 ms once those streams are closed, until it is within 2× of the
//! level before they were opened or 30 s have passed.

use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const DOMAIN: &str = "contoso.example";
const PARTNER: &str = "partner.example";
/// Bound on one connection's whole negotiation.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound on a server's start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one whole phase of the benchmark.
const PHASE_TIMEOUT: Duration = Duration::from_secs(300);
/// Handshakes run before measuring (not counted).
const WARM_UP: usize = 100;
/// How long RSS is watched after the authenticated streams are closed.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Descriptors kept for everything but the idle connections.
const SPARE_FILES: u64 = 512;

struct Args {
    connections: usize,
    concurrency: usize,
    idle: usize,
    prosody: bool,
    rsa: bool,
}

fn parse_args() -> Res<Args> {
    let mut args = Args {
        connections: 2000,
        concurrency: 50,
        idle: 1000,
        prosody: true,
        rsa: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Res<usize> {
            let value = it.next().ok_or_else(|| format!("{name} needs a value"))?;
            Ok(value
                .parse()
                .map_err(|_| format!("{name}: not a number: {value}"))?)
        };
        match arg.as_str() {
            "--connections" => args.connections = number("--connections")?.max(1),
            "--concurrency" => args.concurrency = number("--concurrency")?.max(1),
            "--idle" => args.idle = number("--idle")?,
            "--no-prosody" => args.prosody = false,
            "--rsa" => args.rsa = true,
            // cargo bench passes --bench; libtest-style filters are ignored.
            _ => {}
        }
    }
    Ok(args)
}

fn main() -> Res<()> {
    let args = parse_args()?;
    raise_open_files(args.idle as u64 + SPARE_FILES);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Res<()> {
    let work = tempfile::tempdir()?;
    let ca = TestCa::new()?;
    let leaf = ca.leaf(DOMAIN, args.rsa)?;
    let cert = write(work.path(), "contoso.example.crt", &leaf.0)?;
    let key = write(work.path(), "contoso.example.key", &leaf.1)?;
    let ca_file = write(work.path(), "ca.crt", &ca.pem)?;
    let clients = Clients {
        anonymous: client_config(ca.roots()?, None)?,
        partner: client_config(ca.roots()?, Some(ca.leaf(PARTNER, args.rsa)?))?,
    };

    println!(
        "s2s bench: {} handshakes ({} in flight, after {WARM_UP} warm-up), {} idle connections; \
         {} server key; {} CPUs; client in this process",
        args.connections,
        args.concurrency,
        args.idle,
        if args.rsa { "RSA-2048" } else { "ECDSA P-256" },
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    println!("gateway: {}", env!("CARGO_BIN_EXE_xfed-gateway"));
    let gateway_config = write(
        work.path(),
        "gateway.toml",
        &gateway_toml(work.path(), &cert, &key, &ca_file)?,
    )?;
    let mut results = Vec::new();
    let gateway = Kind::Gateway {
        config: gateway_config,
    };
    results.push((
        "xfed-gateway",
        bench_server(&args, &gateway, &clients).await?,
    ));
    if args.prosody {
        match prosody_binary() {
            None => println!("prosody: not installed (apt-get install prosody), skipped"),
            Some(binary) => {
                let dir = work.path().join("prosody");
                std::fs::create_dir_all(dir.join("data"))?;
                let port = free_port()?;
                let c2s = free_port()?;
                let config = write(
                    &dir,
                    "prosody.cfg.lua",
                    &prosody_cfg(&dir, &cert, &key, &ca_file, port, c2s),
                )?;
                println!("prosody: {} on 127.0.0.1:{port}", prosody_version());
                let prosody = Kind::Prosody {
                    binary,
                    config,
                    dir,
                    port,
                };
                results.push(("prosody", bench_server(&args, &prosody, &clients).await?));
            }
        }
    }
    println!();
    println!(
        "{:<14} {:>12} {:>9} {:>9} {:>9} {:>13}",
        "server", "handshakes/s", "p50 ms", "p99 ms", "max ms", "srv CPU ms/hs",
    );
    for (name, r) in &results {
        println!(
            "{:<14} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>13.2}",
            name, r.rate, r.p50_ms, r.p99_ms, r.max_ms, r.server_cpu_ms_per_handshake,
        );
    }
    println!();
    println!(
        "memory, {} idle connections per stage (KiB each above the fresh server's RSS):",
        args.idle
    );
    println!(
        "{:<14} {:>9} {:>10} {:>11} {:>10} {:>16} {:>22}",
        "server",
        "base MiB",
        "pre-TLS",
        "post-TLS",
        "auth",
        "RSS w/ auth MiB",
        "RSS after load MiB (s)",
    );
    for (name, r) in &results {
        let (auth, loaded, after) = match &r.idle_auth {
            Ok(idle) => (
                format!("{:.1}", idle.per_connection_kib()),
                format!("{:.1}", kib_to_mib(idle.loaded_kib)),
                idle.after.as_ref().map_or_else(
                    || "-".to_string(),
                    |a| {
                        format!(
                            "{:.1} ({:.1}{})",
                            kib_to_mib(a.kib),
                            a.elapsed.as_secs_f64(),
                            if a.settled { "" } else { ", >2x" }
                        )
                    },
                ),
            ),
            Err(_) => ("n/a".to_string(), "n/a".to_string(), "n/a".to_string()),
        };
        println!(
            "{:<14} {:>9.1} {:>10.1} {:>11.1} {:>10} {:>16} {:>22}",
            name,
            kib_to_mib(r.idle_plain.base_kib),
            r.idle_plain.per_connection_kib(),
            r.idle_tls.per_connection_kib(),
            auth,
            loaded,
            after,
        );
    }
    for (name, r) in &results {
        if let Err(reason) = &r.idle_auth {
            println!("{name}: authenticated figures n/a: {reason}");
        }
    }
    Ok(())
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Raises this process's soft open-files limit to `wanted` (capped by the
/// hard limit); the servers started later inherit it.
fn raise_open_files(wanted: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return;
    }
    let target = limit.maximum.map_or(wanted, |max| max.min(wanted));
    match setrlimit(
        Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        },
    ) {
        Ok(()) if target >= wanted => println!("open-files limit raised {current} -> {target}"),
        Ok(()) => println!(
            "open-files limit raised {current} -> {target} (hard limit); {wanted} wanted, \
             the idle stages may fail"
        ),
        Err(e) => println!("open-files limit stays {current} ({wanted} wanted): {e}"),
    }
}

/// The bench's TLS clients: without a certificate, and as the partner.
struct Clients {
    anonymous: Arc<ClientConfig>,
    partner: Arc<ClientConfig>,
}

/// Figures for one server.
struct Figures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    server_cpu_ms_per_handshake: f64,
    idle_plain: Idle,
    idle_tls: Idle,
    /// Or why there are no authenticated figures.
    idle_auth: Result<Idle, String>,
}

/// How far each idle connection is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Header and features; no STARTTLS.
    PreTls,
    /// TLS and the restarted stream's features; no authentication.
    PostTls,
    /// TLS with the partner's certificate, SASL EXTERNAL, the restart.
    Authenticated,
}

impl Stage {
    fn label(self) -> &'static str {
        match self {
            Stage::PreTls => "pre-TLS",
            Stage::PostTls => "post-TLS",
            Stage::Authenticated => "authenticated",
        }
    }
}

/// RSS before and with `count` idle connections open.
struct Idle {
    count: usize,
    base_kib: u64,
    loaded_kib: u64,
    /// After the connections were closed (authenticated stage only).
    after: Option<AfterLoad>,
}

/// RSS once the load is gone.
struct AfterLoad {
    kib: u64,
    /// From closing the connections to the last reading.
    elapsed: Duration,
    /// Whether it came within 2× of `base_kib` before `SETTLE_TIMEOUT`.
    settled: bool,
}

impl Idle {
    fn per_connection_kib(&self) -> f64 {
        (self.loaded_kib as f64 - self.base_kib as f64) / self.count.max(1) as f64
    }
}

/// How to start a server under test.
enum Kind {
    Gateway {
        config: PathBuf,
    },
    Prosody {
        binary: PathBuf,
        config: PathBuf,
        dir: PathBuf,
        port: u16,
    },
}

impl Kind {
    fn start(&self) -> Res<Server> {
        match self {
            Kind::Gateway { config } => Server::gateway(config),
            Kind::Prosody {
                binary,
                config,
                dir,
                port,
            } => Server::prosody(binary, config, dir, *port),
        }
    }
}

/// Each measurement uses a freshly started server: the rate test, then
/// idle connections before TLS, after TLS, and authenticated.
async fn bench_server(args: &Args, kind: &Kind, clients: &Clients) -> Res<Figures> {
    let client = &clients.anonymous;
    let mut server = kind.start()?;
    let addr = server.addr;
    let name = server.name;
    tokio::time::timeout(
        PHASE_TIMEOUT,
        handshakes(addr, WARM_UP, args.concurrency, client),
    )
    .await??;
    let cpu_before = process_cpu_ms(server.pid())?;
    let started = Instant::now();
    let mut latencies = tokio::time::timeout(
        PHASE_TIMEOUT,
        handshakes(addr, args.connections, args.concurrency, client),
    )
    .await??;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu_ms(server.pid())? - cpu_before;
    server.stop();
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    let rate = latencies.len() as f64 / elapsed;
    let cpu_per_handshake = cpu / latencies.len() as f64;
    println!(
        "{name}: {} handshakes in {elapsed:.2} s = {rate:.0}/s; server CPU {cpu:.0} ms \
         ({cpu_per_handshake:.2} ms per handshake)",
        latencies.len(),
    );
    let mut server = kind.start()?;
    let idle_plain = idle(&server, args, clients, Stage::PreTls).await?;
    server.stop();
    let mut server = kind.start()?;
    let idle_tls = idle(&server, args, clients, Stage::PostTls).await?;
    server.stop();
    let mut server = kind.start()?;
    let idle_auth = idle(&server, args, clients, Stage::Authenticated)
        .await
        .map_err(|e| {
            println!("{name}: authenticated idle streams failed: {e}");
            e.to_string()
        });
    server.stop();
    Ok(Figures {
        rate,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        server_cpu_ms_per_handshake: cpu_per_handshake,
        idle_plain,
        idle_tls,
        idle_auth,
    })
}

/// Opens `args.idle` connections taken to `stage`, keeps them open, reads
/// the server's RSS; after the authenticated stage, also once they close.
async fn idle(server: &Server, args: &Args, clients: &Clients, stage: Stage) -> Res<Idle> {
    // A fresh server: let it finish starting up.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let base_kib = rss_kib(server.pid())?;
    let counted_before = server.authenticated_streams();
    let opened =
        tokio::time::timeout(PHASE_TIMEOUT, open_idle(server.addr, args, clients, stage)).await??;
    // Let the server finish its side of the last connections.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let loaded_kib = rss_kib(server.pid())?;
    let open_now = server.open_connections();
    let authenticated = match (counted_before, server.authenticated_streams()) {
        (Some(before), Some(now)) if stage == Stage::Authenticated => {
            Some(now.saturating_sub(before))
        }
        _ => None,
    };
    let held = opened.len();
    drop(opened);
    let after = if stage == Stage::Authenticated {
        Some(settle(server.pid(), base_kib).await?)
    } else {
        None
    };
    let result = Idle {
        count: held,
        base_kib,
        loaded_kib,
        after,
    };
    let mut counts = Vec::new();
    if let Some(n) = open_now {
        counts.push(format!("{n} open"));
    }
    if let Some(n) = authenticated {
        counts.push(format!("{n} authenticated"));
    }
    println!(
        "{}: {held} idle {} connections{}: RSS {:.1} -> {:.1} MiB = {:.1} KiB each",
        server.name,
        stage.label(),
        if counts.is_empty() {
            String::new()
        } else {
            format!(" (server counts {})", counts.join(", "))
        },
        kib_to_mib(base_kib),
        kib_to_mib(loaded_kib),
        result.per_connection_kib()
    );
    if let Some(a) = &result.after {
        println!(
            "{}: after closing them: RSS {:.1} MiB after {:.1} s ({})",
            server.name,
            kib_to_mib(a.kib),
            a.elapsed.as_secs_f64(),
            if a.settled {
                "within 2x of the level before"
            } else {
                "still above 2x of the level before"
            }
        );
    }
    Ok(result)
}

/// Reads `pid`'s RSS every 100 ms until it is within 2× of `base_kib` or
/// `SETTLE_TIMEOUT` has passed.
async fn settle(pid: u32, base_kib: u64) -> Res<AfterLoad> {
    let started = Instant::now();
    loop {
        let kib = rss_kib(pid)?;
        let elapsed = started.elapsed();
        let settled = kib <= base_kib.saturating_mul(2);
        if settled || elapsed >= SETTLE_TIMEOUT {
            return Ok(AfterLoad {
                kib,
                elapsed,
                settled,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

enum Open {
    Plain(#[allow(dead_code)] TcpStream),
    Tls(#[allow(dead_code)] Box<TlsStream<TcpStream>>),
}

async fn open_idle(
    addr: SocketAddr,
    args: &Args,
    clients: &Clients,
    stage: Stage,
) -> Res<Vec<Open>> {
    let opened = Arc::new(Mutex::new(Vec::with_capacity(args.idle)));
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.min(args.idle.max(1)) {
        let (opened, next, total) = (opened.clone(), next.clone(), args.idle);
        let (anonymous, partner) = (clients.anonymous.clone(), clients.partner.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
                    Res::Ok(match stage {
                        Stage::PreTls => Open::Plain(open_plain(addr).await?),
                        Stage::PostTls => Open::Tls(Box::new(negotiate(addr, &anonymous).await?)),
                        Stage::Authenticated => {
                            Open::Tls(Box::new(authenticate(addr, &partner).await?))
                        }
                    })
                })
                .await??;
                opened.lock().map_err(|_| "poisoned")?.push(conn);
            }
            Res::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let opened = std::mem::take(&mut *opened.lock().map_err(|_| "poisoned")?);
    Ok(opened)
}

/// Runs `total` handshakes, `concurrency` at a time; returns their latencies.
async fn handshakes(
    addr: SocketAddr,
    total: usize,
    concurrency: usize,
    client: &Arc<ClientConfig>,
) -> Res<Vec<Duration>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.min(total) {
        let (next, client) = (next.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let started = Instant::now();
                let mut tls =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, negotiate(addr, &client)).await??;
                latencies.push(started.elapsed());
                // Polite close; the server's answer is not awaited.
                let _ = tls.write_all(b"</stream:stream>").await;
                let _ = tls.shutdown().await;
            }
            Res::Ok(latencies)
        }));
    }
    let mut all = Vec::with_capacity(total);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

fn stream_header() -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
         xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
         to='{DOMAIN}' from='{PARTNER}' version='1.0'>"
    )
}

/// Header sent, header and features received; STARTTLS not started.
async fn open_plain(addr: SocketAddr) -> Res<TcpStream> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    tcp.write_all(stream_header().as_bytes()).await?;
    read_features(&mut tcp).await?;
    Ok(tcp)
}

/// The whole negotiation up to the features of the restarted stream.
async fn negotiate(addr: SocketAddr, client: &Arc<ClientConfig>) -> Res<TlsStream<TcpStream>> {
    Ok(negotiate_features(addr, client).await?.0)
}

/// `negotiate`, also returning the restarted stream's header and features.
async fn negotiate_features(
    addr: SocketAddr,
    client: &Arc<ClientConfig>,
) -> Res<(TlsStream<TcpStream>, String)> {
    let mut tcp = open_plain(addr).await?;
    tcp.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await?;
    read_until(
        &mut tcp,
        &["<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"],
    )
    .await?;
    let name = ServerName::try_from(DOMAIN.to_string())?;
    let mut tls = TlsConnector::from(client.clone())
        .connect(name, tcp)
        .await?;
    tls.write_all(stream_header().as_bytes()).await?;
    let features = read_features(&mut tls).await?;
    Ok((tls, features))
}

/// Through TLS with the partner's certificate, then SASL EXTERNAL and the
/// restart: a stream authenticated as `PARTNER`.
async fn authenticate(addr: SocketAddr, client: &Arc<ClientConfig>) -> Res<TlsStream<TcpStream>> {
    let (mut tls, features) = negotiate_features(addr, client).await?;
    if !features.contains("<mechanism>EXTERNAL</mechanism>") {
        return Err(format!("EXTERNAL not offered after TLS; features: {features}").into());
    }
    tls.write_all(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
        .await?;
    let reply = read_until(&mut tls, &["<success", "</failure>", "<failure"]).await?;
    if !reply.contains("<success") {
        return Err(format!("SASL EXTERNAL refused: {reply}").into());
    }
    tls.write_all(stream_header().as_bytes()).await?;
    read_features(&mut tls).await?;
    Ok(tls)
}

async fn read_features<S: AsyncRead + Unpin>(io: &mut S) -> Res<String> {
    read_until(io, &["</stream:features>", "<stream:features/>"]).await
}

/// Reads until one of `needles` has arrived. Servers send nothing after
/// the features or `<proceed/>` until we speak, so nothing is over-read.
async fn read_until<S: AsyncRead + Unpin>(io: &mut S, needles: &[&str]) -> Res<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            return Err(format!(
                "connection closed waiting for {needles:?}; got {:?}",
                String::from_utf8_lossy(&seen)
            )
            .into());
        }
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if text.contains("<stream:error") {
            return Err(format!("stream error: {text}").into());
        }
        if needles.iter().any(|needle| text.contains(needle)) {
            return Ok(text.into_owned());
        }
    }
}

/// A client trusting `roots`, presenting `certificate` (PEM certificate,
/// PEM key) when given.
fn client_config(
    roots: RootCertStore,
    certificate: Option<(String, String)>,
) -> Res<Arc<ClientConfig>> {
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let mut config = match certificate {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder.with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(cert.as_bytes())?],
            PrivateKeyDer::from_pem_slice(key.as_bytes())?,
        )?,
    };
    // Every handshake is a full one.
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// A server process this program started.
struct Server {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
    /// Prosody's log file.
    log_file: Option<PathBuf>,
}

impl Server {
    fn gateway(config: &Path) -> Res<Server> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_xfed-gateway"))
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = channel();
        let log_copy = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut log) = log_copy.lock() {
                    log.push(line.clone());
                }
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            name: "xfed-gateway",
            child,
            addr: "127.0.0.1:0".parse()?,
            admin: None,
            log,
            log_file: None,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => return Err(server.failed("did not start")),
                Err(RecvTimeoutError::Disconnected) => return Err(server.failed("exited")),
            };
            if line.contains("event=listener_bound") {
                let address: SocketAddr = field(&line, "address").ok_or("no address")?.parse()?;
                match field(&line, "listener").as_deref() {
                    Some("external") => server.addr = address,
                    Some("admin") => server.admin = Some(address),
                    _ => {}
                }
            }
            if line.contains("event=ready") {
                return Ok(server);
            }
        }
    }

    fn prosody(binary: &Path, config: &Path, dir: &Path, port: u16) -> Res<Server> {
        let log = std::fs::File::create(dir.join("stdout.log"))?;
        let child = Command::new(binary)
            .arg("-F")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let server = Server {
            name: "prosody",
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            admin: None,
            log: Arc::new(Mutex::new(Vec::new())),
            log_file: Some(dir.join("prosody.log")),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(server.addr).is_err() {
            if Instant::now() > deadline {
                let text = std::fs::read_to_string(dir.join("prosody.log")).unwrap_or_default();
                return Err(server.failed(&format!("did not listen; log:\n{text}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn failed(&self, what: &str) -> Box<dyn Error + Send + Sync> {
        let log = self.log.lock().map(|l| l.join("\n")).unwrap_or_default();
        format!("{} {what}\n{log}", self.name).into()
    }

    /// The gateway's own count of open external connections.
    fn open_connections(&self) -> Option<u64> {
        let body = http_get(self.admin?, "/status").ok()?;
        let status: serde_json::Value = serde_json::from_str(&body).ok()?;
        status["listeners"]
            .as_array()?
            .iter()
            .find(|l| l["name"] == "external")?["connections_current"]
            .as_u64()
    }

    /// Authenticated inbound streams by the server's own account: open
    /// now in the gateway's `/status`; SASL EXTERNAL identities accepted so
    /// far in Prosody's log (the caller takes the difference).
    fn authenticated_streams(&self) -> Option<u64> {
        if let Some(file) = &self.log_file {
            let text = std::fs::read_to_string(file).ok()?;
            let accepted = format!("Accepting SASL EXTERNAL identity from {PARTNER}");
            return Some(text.lines().filter(|l| l.contains(&accepted)).count() as u64);
        }
        let body = http_get(self.admin?, "/status").ok()?;
        let status: serde_json::Value = serde_json::from_str(&body).ok()?;
        status["relay"]["authenticated_streams"]["external"].as_u64()
    }

    /// SIGTERM to this child only, then SIGKILL after 10 s.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn field(line: &str, key: &str) -> Option<String> {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
}

fn http_get(addr: SocketAddr, path: &str) -> Res<String> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default())
}

/// `VmRSS` of `pid`, in KiB.
fn rss_kib(pid: u32) -> Res<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
}

/// User + system CPU time of `pid`, in ms (clock ticks of 10 ms).
fn process_cpu_ms(pid: u32) -> Res<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').ok_or("bad stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).ok_or("no utime")?.parse::<u64>()?
        + fields.get(12).ok_or("no stime")?.parse::<u64>()?;
    Ok(ticks as f64 * 10.0)
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn write(dir: &Path, name: &str, contents: &str) -> Res<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, contents)?;
    Ok(path)
}

fn gateway_toml(dir: &Path, cert: &Path, key: &Path, ca: &Path) -> Res<String> {
    // Timeouts are raised so that idle connections stay open while they
    // are counted; connection caps are raised above the idle count. The
    // relay section makes partners' certificates from the bench CA count
    // for SASL EXTERNAL; its internal server is a closed port, never
    // dialled since no stanza is sent.
    Ok(format!(
        "domains = [\"{DOMAIN}\"]\n\
         pid_file = {pid:?}\n\
         log_level = \"info\"\n\
         drain_secs = 2\n\
         [external]\naddress = \"127.0.0.1\"\nport = 0\ncert = {cert:?}\nkey = {key:?}\n\
         [internal]\naddress = \"127.0.0.1\"\nport = 0\ncert = {cert:?}\nkey = {key:?}\nclient_ca = {ca:?}\n\
         [admin]\naddress = \"127.0.0.1\"\nport = 0\n\
         [limits]\nheader_timeout_secs = 600\nnegotiation_timeout_secs = 3600\n\
         idle_timeout_secs = 3600\nmax_connections = 100000\nmax_connections_per_ip = 100000\n\
         max_unauthenticated_connections = 100000\n\
         [relay]\ninternal_server = \"127.0.0.1:{internal}\"\npartner_ca = {ca:?}\n\
         [[partners]]\ndomain = \"{PARTNER}\"\ntls = \"required\"\nauth = \"external\"\n",
        pid = dir.join("gateway.pid").display().to_string(),
        cert = cert.display().to_string(),
        key = key.display().to_string(),
        ca = ca.display().to_string(),
        internal = free_port()?,
    ))
}

fn prosody_binary() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/prosody");
    path.exists().then_some(path)
}

fn prosody_version() -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "prosody"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "version unknown".to_string())
}

/// A loopback-only Prosody with its own config (Debian's default is not
/// used: it sets `s2s_secure_auth = true` and loads `mod_limits`). The
/// bench CA in `cafile` lets partner certificates validate, so Prosody
/// offers SASL EXTERNAL after TLS; `s2s_secure_auth` stays off so that the
/// certificate-less post-TLS stage is not refused.
fn prosody_cfg(dir: &Path, cert: &Path, key: &Path, ca: &Path, s2s: u16, c2s: u16) -> String {
    let d = dir.display();
    let cert = cert.display();
    let key = key.display();
    let ca = ca.display();
    format!(
        r#"run_as_root = true
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
log = {{ info = "{d}/prosody.log" }}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
s2s_ports = {{ {s2s} }}
modules_enabled = {{ "tls"; "dialback"; "saslauth"; "posix" }}
authentication = "internal_hashed"
storage = "internal"
s2s_require_encryption = true
s2s_secure_auth = false
s2s_timeout = 3600
ssl = {{ certificate = "{cert}"; key = "{key}"; cafile = "{ca}" }}
VirtualHost "{DOMAIN}"
    ssl = {{ certificate = "{cert}"; key = "{key}"; cafile = "{ca}" }}
"#
    )
}

/// A throwaway CA (ECDSA P-256) issuing the server's and the partner's
/// leaves.
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    der: Vec<u8>,
    pem: String,
}

impl TestCa {
    fn new() -> Res<TestCa> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Bench CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(TestCa {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// (certificate PEM, key PEM) for `name`: ECDSA P-256, or RSA-2048;
    /// serverAuth and clientAuth, as XMPP servers present one certificate
    /// both ways.
    fn leaf(&self, name: &str, rsa: bool) -> Res<(String, String)> {
        let key = if rsa {
            rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?
        } else {
            rcgen::KeyPair::generate()?
        };
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    fn roots(&self) -> Res<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone().into())?;
        Ok(roots)
    }
}

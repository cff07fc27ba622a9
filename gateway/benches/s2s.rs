//! Loopback benchmark of the real `xfed-gateway` binary (and of Prosody,
//! when it is installed): STARTTLS handshakes per second, and the memory
//! of 1,000 idle S2S connections before and after TLS.
//!
//! ```text
//! cargo bench -p xfed-gateway --bench s2s -- [--connections 2000]
//!     [--concurrency 50] [--idle 1000] [--no-prosody] [--rsa]
//! ```
//!
//! Prints figures; asserts nothing about them. Everything runs on
//! 127.0.0.1 with ephemeral ports; every wait is bounded; the only
//! processes signalled are the ones this program started, by PID.
//!
//! One handshake = TCP connect, our stream header, the server's header and
//! features, `<starttls/>`, `<proceed/>`, a full TLS handshake (session
//! resumption off, no client certificate), the restarted header, and the
//! server's new header and features; then `</stream:stream>` and close.

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
use tokio_rustls::rustls::pki_types::ServerName;
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
    let client = client_config(ca.roots()?);

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
        &gateway_toml(work.path(), &cert, &key),
    )?;
    let mut results = Vec::new();
    let gateway = Kind::Gateway {
        config: gateway_config,
    };
    results.push((
        "xfed-gateway",
        bench_server(&args, &gateway, &client).await?,
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
                    &prosody_cfg(&dir, &cert, &key, port, c2s),
                )?;
                println!("prosody: {} on 127.0.0.1:{port}", prosody_version());
                let prosody = Kind::Prosody {
                    binary,
                    config,
                    dir,
                    port,
                };
                results.push(("prosody", bench_server(&args, &prosody, &client).await?));
            }
        }
    }
    println!();
    println!(
        "{:<14} {:>12} {:>9} {:>9} {:>9} {:>12} {:>10} {:>12} {:>12} {:>12} {:>12}",
        "server",
        "handshakes/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "srv CPU ms/hs",
        "base MiB",
        "pre-TLS MiB",
        "KiB/conn",
        "post-TLS MiB",
        "KiB/conn"
    );
    for (name, r) in &results {
        println!(
            "{:<14} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>12.2} {:>10.1} {:>12.1} {:>12.1} {:>12.1} {:>12.1}",
            name,
            r.rate,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.server_cpu_ms_per_handshake,
            kib_to_mib(r.idle_plain.base_kib),
            kib_to_mib(r.idle_plain.loaded_kib),
            r.idle_plain.per_connection_kib(),
            kib_to_mib(r.idle_tls.loaded_kib),
            r.idle_tls.per_connection_kib(),
        );
    }
    Ok(())
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
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
}

/// RSS before and with `count` idle connections open.
struct Idle {
    count: usize,
    base_kib: u64,
    loaded_kib: u64,
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
/// idle connections before TLS, then idle connections after TLS.
async fn bench_server(args: &Args, kind: &Kind, client: &Arc<ClientConfig>) -> Res<Figures> {
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
    let idle_plain = idle(&server, args, client, false).await?;
    server.stop();
    let mut server = kind.start()?;
    let idle_tls = idle(&server, args, client, true).await?;
    server.stop();
    Ok(Figures {
        rate,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        server_cpu_ms_per_handshake: cpu_per_handshake,
        idle_plain,
        idle_tls,
    })
}

/// Opens `args.idle` connections, keeps them open, reads the server's RSS.
async fn idle(server: &Server, args: &Args, client: &Arc<ClientConfig>, tls: bool) -> Res<Idle> {
    // A fresh server: let it finish starting up.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let base_kib = rss_kib(server.pid())?;
    let opened =
        tokio::time::timeout(PHASE_TIMEOUT, open_idle(server.addr, args, client, tls)).await??;
    // Let the server finish its side of the last connections.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let loaded_kib = rss_kib(server.pid())?;
    let open_now = server.open_connections();
    let held = opened.len();
    drop(opened);
    let result = Idle {
        count: held,
        base_kib,
        loaded_kib,
    };
    println!(
        "{}: {held} idle {} connections{}: RSS {:.1} -> {:.1} MiB = {:.1} KiB each",
        server.name,
        if tls { "post-TLS" } else { "pre-TLS" },
        open_now
            .map(|n| format!(" (server counts {n} open)"))
            .unwrap_or_default(),
        kib_to_mib(base_kib),
        kib_to_mib(loaded_kib),
        result.per_connection_kib()
    );
    Ok(result)
}

enum Open {
    Plain(#[allow(dead_code)] TcpStream),
    Tls(#[allow(dead_code)] Box<TlsStream<TcpStream>>),
}

async fn open_idle(
    addr: SocketAddr,
    args: &Args,
    client: &Arc<ClientConfig>,
    tls: bool,
) -> Res<Vec<Open>> {
    let opened = Arc::new(Mutex::new(Vec::with_capacity(args.idle)));
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.min(args.idle.max(1)) {
        let (opened, next, client, total) =
            (opened.clone(), next.clone(), client.clone(), args.idle);
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let conn = if tls {
                    Open::Tls(Box::new(
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, negotiate(addr, &client)).await??,
                    ))
                } else {
                    Open::Plain(tokio::time::timeout(HANDSHAKE_TIMEOUT, open_plain(addr)).await??)
                };
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

fn client_config(roots: RootCertStore) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every handshake is a full one.
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// A server process this program started.
struct Server {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
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

fn gateway_toml(dir: &Path, cert: &Path, key: &Path) -> String {
    // Timeouts are raised so that idle connections stay open while they
    // are counted; connection caps are raised above the idle count.
    format!(
        "domains = [\"{DOMAIN}\"]\n\
         pid_file = {pid:?}\n\
         log_level = \"info\"\n\
         drain_secs = 2\n\
         [external]\naddress = \"127.0.0.1\"\nport = 0\ncert = {cert:?}\nkey = {key:?}\n\
         [internal]\naddress = \"127.0.0.1\"\nport = 0\n\
         [admin]\naddress = \"127.0.0.1\"\nport = 0\n\
         [limits]\nheader_timeout_secs = 600\nnegotiation_timeout_secs = 3600\n\
         idle_timeout_secs = 3600\nmax_connections = 100000\nmax_connections_per_ip = 100000\n\
         [[partners]]\ndomain = \"{PARTNER}\"\ntls = \"required\"\n",
        pid = dir.join("gateway.pid").display().to_string(),
        cert = cert.display().to_string(),
        key = key.display().to_string(),
    )
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
/// used: it sets `s2s_secure_auth = true` and loads `mod_limits`).
fn prosody_cfg(dir: &Path, cert: &Path, key: &Path, s2s: u16, c2s: u16) -> String {
    let d = dir.display();
    let cert = cert.display();
    let key = key.display();
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
ssl = {{ certificate = "{cert}"; key = "{key}" }}
VirtualHost "{DOMAIN}"
    ssl = {{ certificate = "{cert}"; key = "{key}" }}
"#
    )
}

/// A throwaway CA (ECDSA P-256) issuing the server's leaf.
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    der: Vec<u8>,
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
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// (certificate PEM, key PEM) for `name`: ECDSA P-256, or RSA-2048.
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
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    fn roots(&self) -> Res<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone().into())?;
        Ok(roots)
    }
}

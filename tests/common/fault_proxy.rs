//! A fault-injecting HTTP/1.1 proxy in front of a real server, for tests
//! of how xfed takes a flaky peer: it answers chosen requests itself with
//! an error status (a number of times, or always) — before the server saw
//! them, or after, the server's answer lost — and passes the rest to the
//! server untouched.
//!
//! Owns one listener on 127.0.0.1 (a port of its own) in the test's
//! network namespace, served by a thread with a small tokio runtime until
//! the proxy is dropped. One request per connection (`Connection: close`
//! both ways), so a fault never lands on a pooled connection by chance.
//! Every read is bounded in size and time. Keeps a log of `METHOD path ->
//! status` lines — never headers, so never the API key.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 4 * 1024 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Which requests the proxy answers itself, and with what.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Only requests with this method (`PATCH`); `None`: every request.
    pub method: Option<&'static str>,
    pub status: u16,
    /// This many matching requests, then pass them on; `None`: always.
    pub times: Option<usize>,
    /// Pass the request on first and answer the error in place of the
    /// server's answer: the request took effect, its answer was lost.
    pub after_server: bool,
}

#[derive(Debug, Default)]
struct State {
    injected: usize,
    log: Vec<String>,
}

/// A running proxy; stopped when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy to `upstream` that injects `fault`.
    pub fn start(upstream: SocketAddr, fault: Fault) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            let (st, fault) = (st.clone(), fault.clone());
                            tokio::spawn(async move {
                                let _ = tokio::time::timeout(
                                    IO_TIMEOUT,
                                    serve(client, upstream, &fault, &st),
                                )
                                .await;
                            });
                        }
                    }
                }
            });
        });
        FaultProxy {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `METHOD path -> status` per request, in order; `!` marks the ones
    /// the proxy answered itself.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().expect("proxy state").log.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request on `client`: answered here or passed to `upstream`.
async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    fault: &Fault,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    let (head, body) = read_message(&mut client).await?;
    let line = head.lines().next().unwrap_or_default().to_string();
    let mut parts = line.split(' ');
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let inject = {
        let mut st = state.lock().expect("proxy state");
        let matches = fault.method.is_none_or(|m| m == method);
        let left = fault.times.is_none_or(|n| st.injected < n);
        if matches && left {
            st.injected += 1;
            st.log
                .push(format!("{method} {path} -> {} !", fault.status));
        }
        matches && left
    };
    if inject && fault.after_server {
        let mut server = TcpStream::connect(upstream).await?;
        server.write_all(with_close(&head).as_bytes()).await?;
        server.write_all(&body).await?;
        let (rhead, _) = read_message(&mut server).await?;
        let status = rhead.split(' ').nth(1).unwrap_or("?").to_string();
        state
            .lock()
            .expect("proxy state")
            .log
            .push(format!("{method} {path} -> {status}, lost"));
    }
    if inject {
        let reason = match fault.status {
            403 => "Forbidden",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Injected",
        };
        let answer = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reason}",
            fault.status,
            reason.len()
        );
        client.write_all(answer.as_bytes()).await?;
        return client.shutdown().await;
    }
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(with_close(&head).as_bytes()).await?;
    server.write_all(&body).await?;
    let (rhead, rbody) = read_message(&mut server).await?;
    let status = rhead.split(' ').nth(1).unwrap_or("?").to_string();
    state
        .lock()
        .expect("proxy state")
        .log
        .push(format!("{method} {path} -> {status}"));
    client.write_all(with_close(&rhead).as_bytes()).await?;
    client.write_all(&rbody).await?;
    client.shutdown().await
}

/// An HTTP/1.1 message's head (up to the blank line, excluded) and body
/// (`Content-Length` bytes, or to the end of the stream without one).
async fn read_message(s: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("head too long"));
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut body = buf[end + 4..].to_vec();
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    match length {
        Some(n) if n > MAX_BODY => return Err(std::io::Error::other("body too long")),
        Some(n) => {
            while body.len() < n {
                let got = s.read(&mut chunk).await?;
                if got == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                body.extend_from_slice(&chunk[..got]);
            }
            body.truncate(n);
        }
        // A request without a length has no body; an answer runs to EOF.
        None if head.starts_with("HTTP/") => loop {
            let got = s.read(&mut chunk).await?;
            if got == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..got]);
            if body.len() > MAX_BODY {
                return Err(std::io::Error::other("body too long"));
            }
        },
        None => {}
    }
    Ok((head, body))
}

/// `head` with its `Connection` header replaced by `Connection: close`,
/// and the blank line that ends it.
fn with_close(head: &str) -> String {
    let mut out = String::new();
    for l in head.split("\r\n") {
        let is_connection = l
            .split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("connection"));
        if !is_connection {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

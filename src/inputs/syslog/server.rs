//! The listening side: one future runs the socket and, for stream sockets, the accept loop
//! and every connection (at most `max_connections`; a further one is closed at once), as
//! the prometheus endpoint does: no thread, no task per client.
//!
//! Bounded: a datagram or a stream message is at most `read_buffer_size` bytes (longer ones
//! are cut and counted), each connection holds at most one message in its buffer, so the
//! server holds at most `max_connections` × `read_buffer_size` bytes. A stream whose
//! messages the queues cannot take is not read until they can (the sender waits: TCP's
//! own flow control); a datagram that finds them full is dropped and counted.

use super::framing::{Frame, Framer};
use super::{bump, Counters, Listen, Settings, Sink};
use crate::core::publish::Published;
use futures_lite::{future, AsyncRead, AsyncReadExt};
use smol::Async;
use std::cell::RefCell;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

/// How long after a failed bind the server tries again.
const RETRY: Duration = Duration::from_secs(10);
/// How long a stream waits before offering a message again to full queues.
const FULL_WAIT: Duration = Duration::from_millis(50);
/// The TLS handshake's limit when `read_timeout` is 0.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

type Conn = Pin<Box<dyn Future<Output = ()>>>;

pub(super) async fn run(settings: Settings, sink: Rc<RefCell<Sink>>) {
    let settings = Rc::new(settings);
    let counters = sink.borrow().counters.clone();
    let mut failing = false;
    loop {
        let e = match &settings.listen {
            Listen::Udp(addr) => udp(addr, &settings, &sink).await,
            Listen::UnixGram(path) => unixgram(path, &settings, &sink).await,
            Listen::Tcp(addr) | Listen::Tls(addr) => tcp(addr, &settings, &sink).await,
            Listen::Unix(path) => unix(path, &settings, &sink).await,
        };
        if !std::mem::replace(&mut failing, true) {
            log::warn!("syslog: {e}; trying again every {}s", RETRY.as_secs());
        }
        *counters.failure.borrow_mut() = Some(e);
        smol::Timer::after(RETRY).await;
    }
}

fn socket_addr(addr: &str) -> Result<SocketAddr, String> {
    let addr = addr.replacen("localhost:", "127.0.0.1:", 1);
    addr.parse()
        .map_err(|_| format!("`{addr}`: the host must be an IP address (or empty for all)"))
}

fn listening(counters: &Counters, what: &str) {
    if counters.failure.borrow_mut().take().is_some() {
        log::info!("syslog: listening on {what} again");
    } else {
        log::info!("syslog: listening on {what}");
    }
}

/// The text of a peer's address, formatted again only when the peer changes.
#[derive(Default)]
struct PeerText {
    peer: Option<SocketAddr>,
    text: String,
}

impl PeerText {
    fn of(&mut self, peer: SocketAddr) -> &str {
        if self.peer != Some(peer) {
            self.peer = Some(peer);
            self.text = peer.to_string();
        }
        &self.text
    }
}

/// Receives datagrams until the socket fails; returns why it could not go on.
async fn udp(addr: &str, settings: &Settings, sink: &RefCell<Sink>) -> String {
    let socket = match socket_addr(addr)
        .and_then(|a| UdpSocket::bind(a).map_err(|e| format!("cannot listen on udp://{addr}: {e}")))
        .and_then(|s| Async::new(s).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => return e,
    };
    listening(&sink.borrow().counters, &format!("udp://{addr}"));
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut peer_text = PeerText::default();
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, peer)) => {
                datagram(&buf[..n], peer_text.of(peer), settings, sink);
            }
            Err(e) => return format!("receiving on udp://{addr}: {e}"),
        }
    }
}

async fn unixgram(path: &Path, settings: &Settings, sink: &RefCell<Sink>) -> String {
    let socket = match prepare_path(path, settings)
        .and_then(|()| UnixDatagram::bind(path).map_err(|e| e.to_string()))
        .and_then(|s| {
            set_mode(path, settings)?;
            Async::new(s).map_err(|e| e.to_string())
        }) {
        Ok(s) => s,
        Err(e) => return format!("cannot listen on unixgram://{}: {e}", path.display()),
    };
    let what = path.display().to_string();
    listening(&sink.borrow().counters, &format!("unixgram://{what}"));
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv(&mut buf).await {
            Ok(n) => datagram(&buf[..n], &what, settings, sink),
            Err(e) => return format!("receiving on unixgram://{what}: {e}"),
        }
    }
}

/// One datagram is one message (a trailing newline or NUL is not part of it).
fn datagram(bytes: &[u8], source: &str, settings: &Settings, sink: &RefCell<Sink>) {
    let mut sink = sink.borrow_mut();
    let msg = match bytes.len() > settings.max_message {
        true => {
            bump(&sink.counters.truncated, 1);
            &bytes[..settings.max_message]
        }
        false => bytes,
    };
    if sink.offer(msg, source) == Published::QueueFull {
        bump(&sink.counters.dropped, 1);
    }
}

/// A stale socket file from an earlier run is removed; anything else at `path` is left.
fn prepare_path(path: &Path, _settings: &Settings) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path).map_err(|e| e.to_string()),
        Ok(_) => Err("a file that is not a socket is in the way".into()),
        Err(_) => Ok(()),
    }
}

fn set_mode(path: &Path, settings: &Settings) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    match settings.socket_mode {
        Some(mode) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("socket_mode: {e}")),
        None => Ok(()),
    }
}

async fn tcp(addr: &str, settings: &Rc<Settings>, sink: &Rc<RefCell<Sink>>) -> String {
    let scheme = if matches!(settings.listen, Listen::Tls(_)) { "tls" } else { "tcp" };
    let listener = match socket_addr(addr)
        .and_then(|a| TcpListener::bind(a).map_err(|e| format!("cannot listen on {scheme}://{addr}: {e}")))
        .and_then(|l| Async::new(l).map_err(|e| e.to_string()))
    {
        Ok(l) => l,
        Err(e) => return e,
    };
    listening(&sink.borrow().counters, &format!("{scheme}://{addr}"));
    serve(
        || async {
            let (stream, peer) = listener.accept().await?;
            Ok::<_, std::io::Error>((stream, peer.to_string()))
        },
        |stream: Async<TcpStream>, peer: String, settings: Rc<Settings>, sink| {
            Box::pin(async move {
                keep_alive(&stream, &settings);
                open_and_read(stream, peer, settings, sink).await
            }) as Conn
        },
        settings,
        sink,
    )
    .await
}

async fn unix(path: &Path, settings: &Rc<Settings>, sink: &Rc<RefCell<Sink>>) -> String {
    let listener = match prepare_path(path, settings)
        .and_then(|()| UnixListener::bind(path).map_err(|e| e.to_string()))
        .and_then(|l| {
            set_mode(path, settings)?;
            Async::new(l).map_err(|e| e.to_string())
        }) {
        Ok(l) => l,
        Err(e) => return format!("cannot listen on unix://{}: {e}", path.display()),
    };
    let what = path.display().to_string();
    listening(&sink.borrow().counters, &format!("unix://{what}"));
    serve(
        || async {
            let (stream, _) = listener.accept().await?;
            Ok::<_, std::io::Error>((stream, what.clone()))
        },
        |stream: Async<std::os::unix::net::UnixStream>,
         peer: String,
         settings: Rc<Settings>,
         sink| { Box::pin(read_stream(stream, peer, settings, sink)) as Conn
        },
        settings,
        sink,
    )
    .await
}

/// The accept loop and every connection, polled in this one future.
async fn serve<S, A>(
    accept: impl Fn() -> A,
    connection: impl Fn(S, String, Rc<Settings>, Rc<RefCell<Sink>>) -> Conn,
    settings: &Rc<Settings>,
    sink: &Rc<RefCell<Sink>>,
) -> String
where
    A: Future<Output = std::io::Result<(S, String)>>,
{
    let counters = sink.borrow().counters.clone();
    let conns: RefCell<Vec<Conn>> = RefCell::new(Vec::new());
    let accepting = async {
        loop {
            let (stream, peer) = match accept().await {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    log::warn!("syslog: accept failed: {e}");
                    smol::Timer::after(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if conns.borrow().len() >= settings.max_connections {
                bump(&counters.connections_refused, 1);
                if counters.connections_refused.get() == 1 {
                    log::warn!(
                        "syslog: more than {} clients at once; closing the extra ones (max_connections; counted in syslog_connections_refused)",
                        settings.max_connections
                    );
                }
                continue;
            }
            conns
                .borrow_mut()
                .push(connection(stream, peer, settings.clone(), sink.clone()));
            counters.connections.set(conns.borrow().len() as u64);
        }
    };
    let drive = future::poll_fn(|cx| {
        let mut conns = conns.borrow_mut();
        conns.retain_mut(|c| c.as_mut().poll(cx).is_pending());
        counters.connections.set(conns.len() as u64);
        Poll::<String>::Pending
    });
    future::or(accepting, drive).await
}

fn keep_alive(stream: &Async<TcpStream>, settings: &Settings) {
    if let Some(idle) = settings.keep_alive {
        let fd = stream.get_ref();
        let _ = rustix::net::sockopt::set_socket_keepalive(fd, true);
        let _ = rustix::net::sockopt::set_tcp_keepidle(fd, idle);
    }
}

/// TLS first when the server has it, then the messages.
async fn open_and_read(
    tcp: Async<TcpStream>,
    peer: String,
    settings: Rc<Settings>,
    sink: Rc<RefCell<Sink>>,
) {
    #[cfg(feature = "tls")]
    if let Some(tls) = settings.tls.clone() {
        let limit = settings.read_timeout.unwrap_or(HANDSHAKE_TIMEOUT);
        match within(Some(limit), tls.accept(tcp)).await {
            Some(Ok(stream)) => read_stream(stream, peer, settings, sink).await,
            Some(Err(e)) => log::debug!("syslog: TLS handshake with {peer} failed: {e}"),
            None => log::debug!("syslog: TLS handshake with {peer} timed out"),
        }
        return;
    }
    let _ = HANDSHAKE_TIMEOUT;
    read_stream(tcp, peer, settings, sink).await
}

/// Reads messages until the peer closes, errs, or stays silent for `read_timeout`.
async fn read_stream<S: AsyncRead + Unpin>(
    mut stream: S,
    peer: String,
    settings: Rc<Settings>,
    sink: Rc<RefCell<Sink>>,
) {
    let counters = sink.borrow().counters.clone();
    let mut framer = Framer::new(settings.max_message, settings.trailer);
    loop {
        let n = match within(settings.read_timeout, stream.read(framer.spare())).await {
            Some(Ok(n)) if n > 0 => n,
            _ => break,
        };
        framer.filled(n);
        while let Some(frame) = framer.next_frame() {
            let msg = match frame {
                Frame::Message(m) => m,
                Frame::Truncated(m) => {
                    bump(&counters.truncated, 1);
                    m
                }
                Frame::BadCount => {
                    bump(&counters.dropped, 1);
                    bump(&counters.parse_errors, 1);
                    continue;
                }
            };
            offer_until_taken(&sink, msg, &peer).await;
        }
    }
    if let Some(rest) = framer.rest() {
        offer_until_taken(&sink, rest, &peer).await;
    }
}

/// Offers `msg` until the queues take it: the stream is not read meanwhile.
async fn offer_until_taken(sink: &RefCell<Sink>, msg: &[u8], peer: &str) {
    while sink.borrow_mut().offer(msg, peer) == Published::QueueFull {
        smol::Timer::after(FULL_WAIT).await;
    }
}

async fn within<T>(limit: Option<Duration>, work: impl Future<Output = T>) -> Option<T> {
    match limit {
        None => Some(work.await),
        Some(limit) => {
            future::or(async { Some(work.await) }, async {
                smol::Timer::after(limit).await;
                None
            })
            .await
        }
    }
}

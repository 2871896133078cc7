//! One connection to Redis: TCP (or TLS) on smol, logged in by the `redis` crate's
//! `MultiplexedConnection`, whose driver future is polled together with each request, so the
//! connection needs no task of its own, no extra thread and no tokio runtime.

use super::Target;
#[cfg(feature = "socks")]
use crate::common::socks::{self, ProxyUrl};
use crate::common::tcp;
#[cfg(feature = "tls")]
use crate::common::tls;
use crate::common::tls::TlsFiles;
use crate::core::offload;
use futures_lite::future;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Pipeline, RedisConnectionInfo, Value};
use smol::net::TcpStream;
use smol::Timer;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio_util::compat::FuturesAsyncReadCompatExt;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// TLS files and timeouts of a connection, from the options of whichever plugin connects
/// (the `redistimeseries` output, the `redis` input).
pub struct ConnOptions<'a> {
    /// The plugin, for messages.
    pub plugin: &'static str,
    pub tls: TlsFiles<'a>,
    /// The SOCKS proxy every connection goes through.
    #[cfg(feature = "socks")]
    pub proxy: Option<&'a ProxyUrl>,
    pub connect_timeout: Duration,
    /// How long a request may wait for its replies, and the option that sets it.
    pub write_timeout: Duration,
    pub write_timeout_key: &'static str,
}

/// Everything needed to (re)connect, prepared at build time without touching the network.
#[derive(Clone)]
pub struct Endpoint {
    pub target: Target,
    info: RedisConnectionInfo,
    connect_timeout: Duration,
    pub write_timeout: Duration,
    write_timeout_key: &'static str,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
    #[cfg(feature = "socks")]
    proxy: Option<ProxyUrl>,
}

/// A live connection.
pub struct Conn {
    con: MultiplexedConnection,
    /// Reads replies and writes requests for `con`; finishes when the connection closes and
    /// must then never be polled again.
    driver: Pin<Box<dyn Future<Output = ()>>>,
    /// The option that sets the reply timeout, for messages.
    write_timeout_key: &'static str,
}

impl Endpoint {
    pub fn new(opts: &ConnOptions, target: Target) -> Result<Endpoint, String> {
        let mut info = RedisConnectionInfo::default()
            .set_db(target.db)
            .set_lib_name("rtcollector", env!("CARGO_PKG_VERSION"));
        if let Some(p) = &target.password {
            info = info.set_password(p.expose());
        }
        if let Some(u) = &target.username {
            info = info.set_username(u);
        }
        #[cfg(feature = "tls")]
        let tls = if target.tls {
            Some(tls::rustls_config(&opts.tls, opts.plugin)?)
        } else {
            None
        };
        Ok(Endpoint {
            target,
            info,
            connect_timeout: opts.connect_timeout,
            write_timeout: opts.write_timeout,
            write_timeout_key: opts.write_timeout_key,
            #[cfg(feature = "tls")]
            tls,
            #[cfg(feature = "socks")]
            proxy: opts.proxy.cloned(),
        })
    }

    /// The same login, TLS and timeouts for another node (of a cluster).
    pub fn for_node(&self, host: &str, port: u16) -> Endpoint {
        let mut e = self.clone();
        e.target.host = host.to_string();
        e.target.port = port;
        e
    }

    /// Connects, does the TLS handshake and logs in, all within `connect_timeout`. The error
    /// says what went wrong in words an operator can act on, and never holds the password.
    pub async fn connect(&self) -> Result<Conn, String> {
        let timeout = self.connect_timeout;
        let attempt = async { Some(self.connect_now().await) };
        let timer = async {
            Timer::after(timeout).await;
            None
        };
        match future::or(attempt, timer).await {
            Some(r) => r,
            None => Err(format!(
                "no connection to {}{} within connect_timeout ({}ms): host unreachable or not answering",
                self.target.addr(),
                self.through(),
                timeout.as_millis()
            )),
        }
    }

    async fn connect_now(&self) -> Result<Conn, String> {
        let tcp = self.tcp().await?;
        let config = AsyncConnectionConfig::new()
            // Timeouts are ours (`Conn::send`), so a late reply can never be mistaken for the
            // answer to the next request: a timed-out connection is dropped.
            .set_response_timeout(None)
            .set_connection_timeout(None);
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let t = &self.target;
            let stream = tls::handshake(tls, &t.host, &t.addr(), tcp).await?;
            return self.login(stream, config).await;
        }
        let first = Arc::new(AtomicU8::new(NOTHING_READ));
        let stream = FirstByte {
            inner: tcp,
            seen: first.clone(),
        };
        self.login(stream, config)
            .await
            .map_err(|e| e + plain_hint(first.load(Ordering::Relaxed)))
    }

    /// " through SOCKS5 proxy host:port" when there is one, for messages.
    fn through(&self) -> String {
        #[cfg(feature = "socks")]
        if let Some(p) = &self.proxy {
            return format!(" through {}", p.name());
        }
        String::new()
    }

    async fn tcp(&self) -> Result<TcpStream, String> {
        let t = &self.target;
        #[cfg(feature = "socks")]
        if let Some(proxy) = &self.proxy {
            return socks::connect(proxy, &t.host, t.port, &t.addr()).await;
        }
        // A name is looked up on a short-lived thread (not smol's pool, whose threads stay).
        let addrs = offload::resolve(&t.host, t.port)
            .await
            .map_err(|e| format!("cannot resolve `{}`: {e}", t.host))?;
        tcp::connect_first(addrs, &t.addr()).await
    }

    async fn login<S>(&self, stream: S, config: AsyncConnectionConfig) -> Result<Conn, String>
    where
        S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send + 'static,
    {
        // The redis crate reads and writes through tokio's I/O traits (traits only: no
        // runtime); `compat` adapts smol's.
        let (con, driver) =
            MultiplexedConnection::new_with_config(&self.info, stream.compat(), config)
                .await
                .map_err(|e| self.login_error(&e))?;
        Ok(Conn {
            con,
            driver: Box::pin(driver),
            write_timeout_key: self.write_timeout_key,
        })
    }

    fn login_error(&self, e: &redis::RedisError) -> String {
        let addr = self.target.addr();
        let who = match &self.target.username {
            Some(u) => format!("user `{u}`"),
            None => "the default user".to_string(),
        };
        let text = e.to_string();
        if e.code() == Some("WRONGPASS") || e.kind() == redis::ErrorKind::AuthenticationFailed {
            format!(
                "authentication failed at {addr} as {who}: wrong password, unknown user or disabled user (WRONGPASS); check username and password"
            )
        } else if text.contains("without any password configured") {
            format!(
                "authentication failed at {addr}: a password is configured but the server has none set for the default user; remove `password` or set `username` for an ACL user"
            )
        } else if e.code() == Some("NOAUTH") {
            format!(
                "{addr} wants a password (NOAUTH): set `password` (and `username` for an ACL user)"
            )
        } else if e.is_connection_dropped() || e.is_io_error() {
            // Whether a plain connection deserves the `ssl: true` hint is decided by what the
            // server sent (`plain_hint`), not here.
            let hint = if text.contains("CertificateRequired") || text.contains("alert") {
                " (the server wants a client certificate: set ssl_certfile and ssl_keyfile)"
            } else {
                ""
            };
            format!("{addr} closed the connection while logging in: {text}{hint}")
        } else {
            format!("cannot log in at {addr}: {text}")
        }
    }
}

/// What the server sent first on a plain connection: nothing yet, the start of a TLS
/// record, or anything else (a RESP reply).
const NOTHING_READ: u8 = 0;
const TLS_RECORD_READ: u8 = 1;
const OTHER_READ: u8 = 2;

/// The hint a failed plain login gets from what the server sent first. A TLS server sends
/// a TLS record (an alert, 0x15, or a handshake, 0x16; no RESP reply starts with either)
/// or closes the connection without a word; a server that replied anything else speaks
/// RESP, and telling its user to set `ssl: true` would send them the wrong way.
fn plain_hint(first: u8) -> &'static str {
    match first {
        TLS_RECORD_READ => " (the server answered with TLS: set `ssl: true`)",
        NOTHING_READ => {
            " (the server sent nothing before closing; if it expects TLS, set `ssl: true`)"
        }
        _ => "",
    }
}

/// A plain stream that notes what kind of byte the server sent first (see [`plain_hint`]).
struct FirstByte<S> {
    inner: S,
    seen: Arc<AtomicU8>,
}

impl<S: futures_lite::AsyncRead + Unpin> futures_lite::AsyncRead for FirstByte<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            if n > 0 && self.seen.load(Ordering::Relaxed) == NOTHING_READ {
                let kind = if matches!(buf[0], 0x15 | 0x16) {
                    TLS_RECORD_READ
                } else {
                    OTHER_READ
                };
                self.seen.store(kind, Ordering::Relaxed);
            }
        }
        polled
    }
}

impl<S: futures_lite::AsyncWrite + Unpin> futures_lite::AsyncWrite for FirstByte<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl Conn {
    /// True when the server has closed the connection since the last request. The driver is
    /// polled once, which also processes anything the server sent meanwhile.
    pub async fn is_closed(&mut self) -> bool {
        future::poll_once(self.driver.as_mut()).await.is_some()
    }

    /// Sends `pipe` and waits for all its replies, at most `timeout`. Any error here is a
    /// connection error: the caller drops the connection.
    pub async fn send(
        &mut self,
        pipe: &Pipeline,
        timeout: Duration,
        addr: &str,
    ) -> Result<Vec<Value>, String> {
        enum Done {
            Reply(redis::RedisResult<Vec<Value>>),
            Closed,
            TimedOut,
        }
        let Conn {
            con,
            driver,
            write_timeout_key,
        } = self;
        let request = async { Done::Reply(con.send_packed_commands(pipe, 0, pipe.len()).await) };
        let drive = async {
            driver.as_mut().await;
            Done::Closed
        };
        let timer = async {
            Timer::after(timeout).await;
            Done::TimedOut
        };
        match future::or(future::or(request, drive), timer).await {
            Done::Reply(Ok(values)) => Ok(values),
            Done::Reply(Err(e)) => Err(format!("connection to {addr} failed: {e}")),
            Done::Closed => Err(format!("{addr} closed the connection")),
            Done::TimedOut => Err(format!(
                "no reply from {addr} within {write_timeout_key} ({}ms)",
                timeout.as_millis()
            )),
        }
    }
}

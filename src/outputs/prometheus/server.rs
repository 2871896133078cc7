//! The HTTP/1.1 server of the endpoint, on the agent's executor: one future runs the accept
//! loop and drives every open connection (at most `max_connections`; a further one is
//! closed at once), so a scrape needs no thread and no task of its own.
//!
//! Bounded per connection: a request head of at most [`MAX_HEAD`] bytes (a longer one is
//! answered 431 and the connection closed), `read_timeout` for a request to arrive and for
//! the client to take each write, and one reused response buffer. Keep-alive as HTTP/1.1
//! has it; `GET` and `HEAD` of `path` only.

use super::exposition::{self, Format};
use super::{Latest, Settings};
use crate::core::output::SeriesHandle;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use smol::Async;
use std::net::{TcpListener, TcpStream};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

/// The longest request line and headers taken.
pub const MAX_HEAD: usize = 8 * 1024;

type Conn = Pin<Box<dyn Future<Output = ()>>>;

/// A connection's byte stream: TCP, or TLS over it.
trait Stream: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin {}
impl<S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin> Stream for S {}

pub(super) async fn serve(
    listener: Async<TcpListener>,
    settings: Rc<Settings>,
    latest: Rc<Latest>,
    series: SeriesHandle,
    name: String,
) {
    let conns: RefCell<Vec<Conn>> = RefCell::new(Vec::new());
    let mut refused = 0u64;
    let accept = async {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    log::warn!("output {name}: accept failed: {e}");
                    smol::Timer::after(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if conns.borrow().len() >= settings.max_connections {
                refused += 1;
                if refused == 1 {
                    log::warn!(
                        "output {name}: more than {} connections at once; closing the extra ones (max_connections)",
                        settings.max_connections
                    );
                }
                continue;
            }
            let (settings, latest, series) = (settings.clone(), latest.clone(), series.clone());
            conns.borrow_mut().push(Box::pin(async move {
                let Some(stream) = open(stream, &settings).await else {
                    return;
                };
                let c = Connection {
                    stream,
                    settings,
                    latest,
                    series,
                    head: Vec::new(),
                    body: Vec::new(),
                    live: Vec::new(),
                };
                c.run().await
            }));
        }
    };
    // Polled with the accept loop, in the same task: any wake-up polls every connection.
    let drive = future::poll_fn(|cx| {
        conns
            .borrow_mut()
            .retain_mut(|c| c.as_mut().poll(cx).is_pending());
        Poll::<()>::Pending
    });
    future::or(accept, drive).await
}

/// The accepted stream, after the TLS handshake when the endpoint has TLS; `None` when
/// that failed or took longer than `read_timeout` (the client learns it from the closed
/// socket).
async fn open(tcp: Async<TcpStream>, settings: &Settings) -> Option<Box<dyn Stream>> {
    // A response is two writes (head, body): with Nagle's algorithm the body would wait for
    // the client's delayed ACK of the head, 40 ms on Linux.
    let _ = tcp.get_ref().set_nodelay(true);
    #[cfg(feature = "tls")]
    if let Some(tls) = &settings.tls {
        return match within(settings.read_timeout, tls.accept(tcp)).await? {
            Ok(stream) => Some(Box::new(stream)),
            Err(e) => {
                log::debug!("prometheus: TLS handshake failed: {e}");
                None
            }
        };
    }
    let _ = settings;
    Some(Box::new(tcp))
}

struct Connection {
    stream: Box<dyn Stream>,
    settings: Rc<Settings>,
    latest: Rc<Latest>,
    series: SeriesHandle,
    head: Vec<u8>,
    body: Vec<u8>,
    live: Vec<(crate::core::SeriesId, super::Entry)>,
}

/// What a request asks for, as far as the endpoint cares.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub accept: &'a str,
    pub authorization: Option<&'a str>,
    pub close: bool,
}

/// Parses a request head (request line and headers, without the blank line).
pub(super) fn parse_head(head: &[u8]) -> Option<Request<'_>> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/1.") {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target);
    let mut req = Request {
        method,
        path,
        accept: "",
        authorization: None,
        close: version == "HTTP/1.0",
    };
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("accept") {
            req.accept = value;
        } else if name.eq_ignore_ascii_case("authorization") {
            req.authorization = Some(value);
        } else if name.eq_ignore_ascii_case("connection") {
            req.close = value.eq_ignore_ascii_case("close");
        }
    }
    Some(req)
}

impl Connection {
    async fn run(mut self) {
        let timeout = self.settings.read_timeout;
        loop {
            let head_len = match within(timeout, read_head(&mut self.stream, &mut self.head)).await
            {
                Some(Ok(Some(n))) => n,
                Some(Ok(None)) => {
                    let _ = self.reply(431, "text/plain", b"request head too long\n", true).await;
                    return;
                }
                // Closed, failed or silent: nothing to answer.
                _ => return,
            };
            let keep = self.answer(head_len).await;
            self.head.drain(..head_len + 4);
            if !keep {
                return;
            }
        }
    }

    /// Answers the request whose head is the first `len` bytes of `self.head`; whether the
    /// connection stays open.
    async fn answer(&mut self, len: usize) -> bool {
        let head = std::mem::take(&mut self.head);
        let keep = match parse_head(&head[..len]) {
            None => {
                let _ = self.reply(400, "text/plain", b"bad request\n", true).await;
                false
            }
            Some(req) => self.answer_request(&req).await,
        };
        self.head = head;
        keep
    }

    async fn answer_request(&mut self, req: &Request<'_>) -> bool {
        let close = req.close;
        if req.method != "GET" && req.method != "HEAD" {
            return self.reply(405, "text/plain", b"GET or HEAD only\n", close).await;
        }
        if req.path != self.settings.path {
            let body = format!("not found; metrics are at {}\n", self.settings.path);
            return self.reply(404, "text/plain", body.as_bytes(), close).await;
        }
        if let Some(want) = &self.settings.authorization {
            if !req.authorization.is_some_and(|got| same(got.as_bytes(), want.as_bytes())) {
                return self.reply(401, "text/plain", b"unauthorized\n", close).await;
            }
        }
        let format = Format::of_accept(req.accept);
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        let now_ms = crate::core::clock::now_ms();
        self.series.with(|table| {
            self.latest.live(table, now_ms, &mut self.live);
            exposition::render(&self.live, table, format, self.settings.timestamps, &mut body);
        });
        let head_only = req.method == "HEAD";
        let keep = self
            .send(200, format.content_type(), &body, head_only, close)
            .await;
        self.body = body;
        keep
    }

    async fn reply(&mut self, status: u16, kind: &str, body: &[u8], close: bool) -> bool {
        self.send(status, kind, body, false, close).await
    }

    /// Writes a response; whether the connection stays open.
    async fn send(
        &mut self,
        status: u16,
        kind: &str,
        body: &[u8],
        head_only: bool,
        close: bool,
    ) -> bool {
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Request Header Fields Too Large",
        };
        let mut head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n",
            body.len()
        );
        if status == 401 {
            head.push_str("WWW-Authenticate: Basic realm=\"rtcollector\"\r\n");
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let timeout = self.settings.read_timeout;
        let stream = &mut self.stream;
        let written = within(timeout, async {
            stream.write_all(head.as_bytes()).await?;
            if !head_only {
                stream.write_all(body).await?;
            }
            stream.flush().await
        })
        .await;
        matches!(written, Some(Ok(()))) && !close
    }
}

/// Reads until `buf` holds a whole request head; `Some(len)` of the head before its blank
/// line, `None` when it grew past [`MAX_HEAD`]. Bytes after the head (a pipelined request)
/// stay in `buf`.
async fn read_head(stream: &mut Box<dyn Stream>, buf: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(end));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `work`'s result, or `None` once `limit` has passed.
async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(work.await) }, async {
        smol::Timer::after(limit).await;
        None
    })
    .await
}

/// Compares without stopping at the first difference (a password guesser learns nothing
/// from the time an answer takes).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

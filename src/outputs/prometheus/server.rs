//! The HTTP/1.1 server of the endpoint, on the agent's executor: one future runs the accept
//! loop and drives every open connection (at most `max_connections`; a further one is
//! closed at once), so a scrape needs no thread and no task of its own (`common::http_server`).
//!
//! Bounded per connection: a request head of at most [`http::MAX_HEAD`] bytes (a longer one is
//! answered 431 and the connection closed), `read_timeout` for a request to arrive and for
//! the client to take each write, and one reused response buffer. Keep-alive as HTTP/1.1
//! has it; `GET` and `HEAD` of `path` only.

use super::exposition::{self, Format};
use super::{Latest, Settings};
use crate::common::http_server::{self as http, read_head, same, within, Response, Stream};
use crate::core::output::SeriesHandle;
use smol::Async;
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;

pub(super) use crate::common::http_server::{parse_head, Request};

pub(super) async fn serve(
    listener: Async<TcpListener>,
    settings: Rc<Settings>,
    latest: Rc<Latest>,
    series: SeriesHandle,
    name: String,
) {
    let who = format!("output {name}");
    let max = settings.max_connections;
    http::serve(listener, max, &who, |stream| {
        let (settings, latest, series) = (settings.clone(), latest.clone(), series.clone());
        Box::pin(async move {
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
        })
    })
    .await
}

/// The accepted stream, after the TLS handshake when the endpoint has TLS; `None` when
/// that failed or took longer than `read_timeout` (the client learns it from the closed
/// socket).
async fn open(tcp: Async<TcpStream>, settings: &Settings) -> Option<Box<dyn Stream>> {
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
        let extra = if status == 401 {
            "WWW-Authenticate: Basic realm=\"rtcollector\"\r\n"
        } else {
            ""
        };
        let response = Response {
            status,
            content_type: kind,
            body,
            head_only,
            close,
            extra,
        };
        http::send(&mut self.stream, &response, self.settings.read_timeout).await
    }
}

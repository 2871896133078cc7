//! The parts of a small HTTP/1.1 server on the agent's executor that the `prometheus`
//! endpoint and the `http_ingress` input share: one future runs the accept loop and drives
//! every open connection (at most `max_connections`; a further one is closed at once), so a
//! request needs no thread and no task of its own; request heads read into a bounded buffer
//! and parsed without allocating; responses written within a time limit.

use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use smol::Async;
use std::cell::RefCell;
use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

/// The longest request line and headers taken.
pub const MAX_HEAD: usize = 8 * 1024;

/// One connection's work, driven by [`serve`].
pub type Conn = Pin<Box<dyn Future<Output = ()>>>;

/// A connection's byte stream: TCP, or TLS over it.
pub trait Stream: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin {}
impl<S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin> Stream for S {}

/// Accepts connections for ever and drives what `connection` makes of each, all in the
/// caller's task. `who` names the plugin in messages (`output prometheus`).
pub async fn serve(
    listener: Async<TcpListener>,
    max_connections: usize,
    who: &str,
    mut connection: impl FnMut(Async<TcpStream>) -> Conn,
) {
    let conns: RefCell<Vec<Conn>> = RefCell::new(Vec::new());
    let mut refused = 0u64;
    let accept = async {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    log::warn!("{who}: accept failed: {e}");
                    smol::Timer::after(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if conns.borrow().len() >= max_connections {
                refused += 1;
                if refused == 1 {
                    log::warn!(
                        "{who}: more than {max_connections} connections at once; closing the extra ones (max_connections)"
                    );
                }
                continue;
            }
            // A response is two writes (head, body): with Nagle's algorithm the body would
            // wait for the client's delayed ACK of the head, 40 ms on Linux.
            let _ = stream.get_ref().set_nodelay(true);
            conns.borrow_mut().push(connection(stream));
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

/// What a request head says, as far as the agent's servers care.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub accept: &'a str,
    pub authorization: Option<&'a str>,
    pub content_type: &'a str,
    /// `None` without the header; a value that is no number makes the head bad.
    pub content_length: Option<u64>,
    /// `Transfer-Encoding` other than `identity`: a body of unknown length.
    pub chunked: bool,
    /// `Expect: 100-continue`: the client waits for an interim answer before the body.
    pub expect_continue: bool,
    pub close: bool,
}

/// Parses a request head (request line and headers, without the blank line).
pub fn parse_head(head: &[u8]) -> Option<Request<'_>> {
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
        content_type: "",
        content_length: None,
        chunked: false,
        expect_continue: false,
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
        } else if name.eq_ignore_ascii_case("content-type") {
            req.content_type = value;
        } else if name.eq_ignore_ascii_case("content-length") {
            req.content_length = Some(value.parse().ok()?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            req.chunked = !value.eq_ignore_ascii_case("identity");
        } else if name.eq_ignore_ascii_case("expect") {
            req.expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    Some(req)
}

/// Reads until `buf` holds a whole request head; `Some(len)` of the head before its blank
/// line, `None` when it grew past [`MAX_HEAD`]. Bytes after the head (a body, a pipelined
/// request) stay in `buf`.
pub async fn read_head(
    stream: &mut Box<dyn Stream>,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<usize>> {
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

/// Reads until `buf` holds at least `len` bytes.
pub async fn read_to(
    stream: &mut Box<dyn Stream>,
    buf: &mut Vec<u8>,
    len: usize,
) -> std::io::Result<()> {
    let mut chunk = [0u8; 4096];
    while buf.len() < len {
        let want = (len - buf.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// A response to write with [`send`].
pub struct Response<'a> {
    pub status: u16,
    pub content_type: &'a str,
    pub body: &'a [u8],
    /// A `HEAD` request: the head only.
    pub head_only: bool,
    /// Say `Connection: close` (and the caller closes).
    pub close: bool,
    /// Further header lines, each ending in `\r\n`.
    pub extra: &'a str,
}

/// The reason phrase of the statuses the agent's servers answer.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Writes a response within `timeout`; whether the connection stays open.
pub async fn send(stream: &mut Box<dyn Stream>, r: &Response<'_>, timeout: Duration) -> bool {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    // 204 has no body and, by RFC 9110, no Content-Length either.
    if r.status != 204 {
        head.push_str(&format!(
            "Content-Type: {}\r\nContent-Length: {}\r\n",
            r.content_type,
            r.body.len()
        ));
    }
    head.push_str(r.extra);
    if r.close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let written = within(timeout, async {
        stream.write_all(head.as_bytes()).await?;
        if !r.head_only && r.status != 204 {
            stream.write_all(r.body).await?;
        }
        stream.flush().await
    })
    .await;
    matches!(written, Some(Ok(()))) && !r.close
}

/// `work`'s result, or `None` once `limit` has passed.
pub async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(work.await) }, async {
        smol::Timer::after(limit).await;
        None
    })
    .await
}

/// Compares without stopping at the first difference (a password guesser learns nothing
/// from the time an answer takes).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_with_a_body_gives_its_length_type_and_expectation() {
        let head = b"POST /x?y HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 12\r\nExpect: 100-continue\r\nAuthorization: Bearer t";
        let req = parse_head(head).unwrap();
        assert_eq!(req.path, "/x");
        assert_eq!(req.content_type, "application/json");
        assert_eq!(req.content_length, Some(12));
        assert!(req.expect_continue);
        assert_eq!(req.authorization, Some("Bearer t"));
        assert!(!req.chunked);
        assert!(parse_head(b"POST / HTTP/1.1\r\nContent-Length: -1").is_none());
        assert!(
            parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked")
                .unwrap()
                .chunked
        );
    }

    #[test]
    fn same_compares_whole_values() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}

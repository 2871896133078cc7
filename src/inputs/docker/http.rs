//! A minimal HTTP/1.1 client for the Docker Engine API on a unix socket: one `GET` per
//! connection (`Connection: close`), the answer read to its end up to a size cap, then
//! decoded: status line, headers, and a body framed by `Content-Length`, `chunked`, or the
//! end of the connection.

use smol::net::unix::UnixStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use std::fmt;
use std::io;
use std::path::Path;

/// Why a request failed.
#[derive(Debug)]
pub enum HttpError {
    /// Connecting to the socket failed (missing socket, permission, daemon down).
    Connect(io::Error),
    Io(io::Error),
    /// No whole answer within the timeout.
    Timeout(std::time::Duration),
    /// The answer is longer than the cap; nothing of it is used.
    TooLarge(usize),
    Malformed(&'static str),
    /// A status other than 2xx, with the daemon's `message` when it sent one.
    Status(u16, String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Connect(e) => write!(f, "{e}"),
            HttpError::Io(e) => write!(f, "reading the answer: {e}"),
            HttpError::Timeout(t) => write!(f, "no answer within timeout ({}ms)", t.as_millis()),
            HttpError::TooLarge(cap) => write!(f, "the answer is larger than {cap} bytes"),
            HttpError::Malformed(e) => write!(f, "malformed HTTP answer: {e}"),
            HttpError::Status(code, msg) if msg.is_empty() => write!(f, "HTTP status {code}"),
            HttpError::Status(code, msg) => write!(f, "HTTP status {code}: {msg}"),
        }
    }
}

/// `GET path` on the socket at `socket`: the body of a 2xx answer, whole. An answer longer
/// than `cap` bytes is an error, read no further.
pub async fn get(socket: &Path, path: &str, cap: usize) -> Result<Vec<u8>, HttpError> {
    let mut stream = UnixStream::connect(socket)
        .await
        .map_err(HttpError::Connect)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: rtcollector/{}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(HttpError::Io)?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HttpError::Io(e)),
        };
        if n == 0 {
            break;
        }
        if raw.len() + n > cap {
            return Err(HttpError::TooLarge(cap));
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    let answer = Response::parse(&raw)?;
    if !(200..300).contains(&answer.status) {
        return Err(HttpError::Status(answer.status, daemon_message(&answer.body)));
    }
    Ok(answer.body)
}

/// The daemon's `{"message": "..."}` of an error answer, shortened.
fn daemon_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    serde_json::from_slice::<Message>(body)
        .map(|m| m.message.chars().take(200).collect())
        .unwrap_or_default()
}

/// A whole HTTP answer, decoded.
#[derive(Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// Decodes an answer read to the end of the connection.
    pub fn parse(raw: &[u8]) -> Result<Response, HttpError> {
        let head_end = find(raw, b"\r\n\r\n").ok_or(HttpError::Malformed("no end of headers"))?;
        let head = std::str::from_utf8(&raw[..head_end])
            .map_err(|_| HttpError::Malformed("headers are not UTF-8"))?;
        let rest = &raw[head_end + 4..];
        let mut lines = head.split("\r\n");
        let status = status_code(lines.next().unwrap_or(""))?;
        let mut length = None;
        let mut chunked = false;
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or(HttpError::Malformed("a header line without `:`"))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                let n: usize = value
                    .parse()
                    .map_err(|_| HttpError::Malformed("Content-Length is not a number"))?;
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
            }
        }
        let body = if chunked {
            dechunk(rest)?
        } else if let Some(n) = length {
            rest.get(..n)
                .ok_or(HttpError::Malformed("the body is shorter than Content-Length"))?
                .to_vec()
        } else {
            rest.to_vec()
        };
        Ok(Response { status, body })
    }
}

/// `HTTP/1.x NNN reason`.
fn status_code(line: &str) -> Result<u16, HttpError> {
    let mut parts = line.splitn(3, ' ');
    match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") && code.len() == 3 => code
            .parse()
            .map_err(|_| HttpError::Malformed("the status is not a number")),
        _ => Err(HttpError::Malformed("no HTTP/1.x status line")),
    }
}

/// Decodes a `chunked` body: `size-in-hex[;ext]\r\n data \r\n` … `0\r\n\r\n`.
pub fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::with_capacity(rest.len());
    loop {
        let line_end = find(rest, b"\r\n").ok_or(HttpError::Malformed("a truncated chunk size"))?;
        let size_text = std::str::from_utf8(&rest[..line_end])
            .map_err(|_| HttpError::Malformed("a chunk size is not text"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::Malformed("a chunk size is not hex"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            // Trailers, if any, are ignored.
            return Ok(body);
        }
        let data = rest
            .get(..size)
            .ok_or(HttpError::Malformed("a truncated chunk"))?;
        body.extend_from_slice(data);
        rest = rest
            .get(size..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .ok_or(HttpError::Malformed("a chunk without its CRLF"))?;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

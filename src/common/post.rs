//! An HTTP/1.1 client for the push outputs (`prometheus_remote_write`): one keep-alive
//! connection to one URL, POST only, on the agent's executor (no thread but a short one for
//! a name lookup, see `core::offload::resolve`), TLS through rustls (cargo feature `tls`).
//!
//! Bounded: every request (connect, TLS, write, response) within `timeout`; a response
//! head of at most 16 KiB and a body kept up to 1 KiB (the rest is read and dropped), so a
//! server cannot make the agent hold more.

use crate::common::tcp;
use crate::core::offload;
use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::time::Duration;

const MAX_HEAD: usize = 16 * 1024;
/// What is kept of a response body (for an error message).
const KEPT_BODY: usize = 1024;

/// Where requests go, from a `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, `/` at least.
    pub path: String,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, String> {
        let (tls, rest) = if let Some(r) = text.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("`{text}` is not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(
                "put credentials in `username`/`password` or `bearer_token`, not in the URL".into(),
            );
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.contains(']') => (
                h,
                p.parse()
                    .map_err(|_| format!("`{p}` in `{text}` is not a port"))?,
            ),
            _ => (authority, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("`{text}` has no host"));
        }
        Ok(Url {
            tls,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// `host:port` as messages and the Host header show it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<S: AsyncRead + AsyncWrite + Unpin> Stream for S {}

/// Whether `name: value` can go into a request head as written: a token name, a value
/// without line breaks (which would start a header of their own).
pub fn usable_header(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !value.contains(['\r', '\n'])
}

/// A server's answer: its status and the start of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

pub struct Poster {
    url: Url,
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    timeout: Duration,
    conn: Option<Box<dyn Stream>>,
    head: Vec<u8>,
    buf: Vec<u8>,
}

impl Poster {
    /// `tls` is the client config for an `https://` URL (required then).
    pub fn new(
        url: Url,
        #[cfg(feature = "tls")] tls: Option<std::sync::Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Poster {
        Poster {
            url,
            #[cfg(feature = "tls")]
            tls,
            timeout,
            conn: None,
            head: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// A poster for `url`, with rustls set up from `keys` when it is `https://` (`who` names
    /// the plugin in the insecure-mode warning). The error is the TLS setup's.
    pub fn for_url(
        url: Url,
        keys: &crate::common::tls::TlsKeys,
        who: &str,
        timeout: Duration,
    ) -> Result<Poster, String> {
        #[cfg(feature = "tls")]
        let tls = match url.tls {
            true => Some(crate::common::tls::rustls_config(&keys.files(), who)?),
            false => None,
        };
        let _ = (keys, who);
        Ok(Poster::new(
            url,
            #[cfg(feature = "tls")]
            tls,
            timeout,
        ))
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// POSTs `body` with `headers` (name, value); the response, or why there is none. Any
    /// failure drops the connection, so the next request starts afresh.
    pub async fn post(
        &mut self,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        let timeout = self.timeout;
        let result = future::or(async { Some(self.exchange(headers, body).await) }, async {
            smol::Timer::after(timeout).await;
            None
        })
        .await;
        let result = result.unwrap_or_else(|| {
            Err(format!(
                "no answer from {} within the timeout ({}ms)",
                self.url.authority(),
                timeout.as_millis()
            ))
        });
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn exchange(
        &mut self,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        let fresh = self.conn.is_none();
        if fresh {
            self.conn = Some(self.connect().await?);
        }
        match self.round_trip(headers, body).await {
            // A kept connection the server closed meanwhile: once more on a new one.
            Err(e) if !fresh && e.is_empty() => {
                self.conn = Some(self.connect().await?);
                self.round_trip(headers, body)
                    .await
                    .map_err(|e| self.closed_or(e))
            }
            r => r.map_err(|e| self.closed_or(e)),
        }
    }

    fn closed_or(&self, e: String) -> String {
        match e.is_empty() {
            true => format!(
                "{} closed the connection without an answer",
                self.url.authority()
            ),
            false => e,
        }
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, String> {
        let shown = self.url.authority();
        let addrs = offload::resolve(&self.url.host, self.url.port)
            .await
            .map_err(|e| format!("cannot resolve `{}`: {e}", self.url.host))?;
        let tcp = tcp::connect_first(addrs, &shown).await?;
        if self.url.tls {
            #[cfg(feature = "tls")]
            if let Some(config) = &self.tls {
                let s = crate::common::tls::handshake(config, &self.url.host, &shown, tcp).await?;
                return Ok(Box::new(s));
            }
            return Err("https:// needs a build with TLS (cargo feature `tls`)".into());
        }
        Ok(Box::new(tcp))
    }

    /// One request and its response on the open connection. An empty error: the
    /// connection was closed before any byte of a response.
    async fn round_trip(
        &mut self,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        self.head.clear();
        let url = &self.url;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            url.path,
            url.authority(),
            body.len()
        );
        for (k, v) in headers {
            head.push_str(k);
            head.push_str(": ");
            head.push_str(v);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let conn = self.conn.as_mut().ok_or_else(String::new)?;
        let io = |e: std::io::Error| e.to_string();
        // Head and body in one write where they fit a buffer: fewer packets.
        self.buf.clear();
        self.buf.extend_from_slice(head.as_bytes());
        self.buf.extend_from_slice(body);
        conn.write_all(&self.buf).await.map_err(|_| String::new())?;
        conn.flush().await.map_err(io)?;
        read_response(conn, &mut self.head).await
    }
}

/// Reads a response: status, headers, and the body by Content-Length (or chunked, or to
/// the end of the connection); keeps [`KEPT_BODY`] bytes of it.
async fn read_response(conn: &mut Box<dyn Stream>, buf: &mut Vec<u8>) -> Result<Response, String> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err("the server's response head is longer than 16 KiB".into());
        }
        let n = conn.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return match buf.is_empty() {
                true => Err(String::new()),
                false => Err("the server closed the connection mid-response".into()),
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {:?}", lines_start(&head)))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k.eq_ignore_ascii_case("content-length") {
            length = v.trim().parse::<usize>().ok();
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        }
    }
    let mut rest: Vec<u8> = buf[head_end + 4..].to_vec();
    buf.clear();
    let mut kept = Vec::new();
    if chunked {
        read_chunked(conn, &mut rest, &mut kept).await?;
    } else if let Some(len) = length {
        let mut left = len;
        let take = rest.len().min(left);
        keep(&mut kept, &rest[..take]);
        left -= take;
        while left > 0 {
            let n = conn.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the server closed the connection mid-body".into());
            }
            let take = n.min(left);
            keep(&mut kept, &chunk[..take]);
            left -= take;
        }
    } else if status != 204 && status != 304 {
        // No length: the body runs to the end of the connection.
        keep(&mut kept, &rest);
        loop {
            let n = conn.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            keep(&mut kept, &chunk[..n]);
        }
    }
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&kept).trim().to_string(),
    })
}

fn lines_start(head: &str) -> &str {
    head.lines().next().unwrap_or("")
}

fn keep(kept: &mut Vec<u8>, more: &[u8]) {
    let room = KEPT_BODY.saturating_sub(kept.len());
    kept.extend_from_slice(&more[..more.len().min(room)]);
}

/// A chunked body: sizes in hex, each chunk, a zero-size chunk and the trailer's blank line.
/// Read as it comes and dropped past [`KEPT_BODY`]: a size line longer than 1 KiB or a size
/// that does not fit is an error, never a panic or a buffer that grows with the claim.
async fn read_chunked(
    conn: &mut Box<dyn Stream>,
    pending: &mut Vec<u8>,
    kept: &mut Vec<u8>,
) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    loop {
        let size = loop {
            if let Some(eol) = pending.windows(2).position(|w| w == b"\r\n") {
                let text = String::from_utf8_lossy(&pending[..eol]).into_owned();
                pending.drain(..eol + 2);
                let hex = text.split(';').next().unwrap_or("").trim();
                break usize::from_str_radix(hex, 16)
                    .ok()
                    .filter(|&n| n <= 1 << 30)
                    .ok_or_else(|| format!("bad chunk size {text:?}"))?;
            }
            if pending.len() > 1024 {
                return Err("a chunk size line longer than 1 KiB".into());
            }
            let n = conn.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the server ended a chunked body early".into());
            }
            pending.extend_from_slice(&chunk[..n]);
        };
        // The chunk and its CRLF (for the last chunk: the trailer's blank line).
        let mut left = size + 2;
        let take = pending.len().min(left);
        keep(kept, &pending[..take.min(size)]);
        pending.drain(..take);
        left -= take;
        let mut seen = take;
        while left > 0 {
            let n = conn.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the server ended a chunked body early".into());
            }
            let used = n.min(left);
            let data_end = size.saturating_sub(seen).min(used);
            keep(kept, &chunk[..data_end]);
            // Bytes past this chunk belong to the next size line.
            pending.extend_from_slice(&chunk[used..n]);
            seen += used;
            left -= used;
        }
        if size == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers each connection's first request with `answer`.
    fn serve(answers: Vec<&'static [u8]>) -> u16 {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for answer in answers {
                let (mut c, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                let _ = c.write_all(answer);
            }
        });
        port
    }

    fn post_once(port: u16) -> Result<Response, String> {
        let url = Url::parse(&format!("http://127.0.0.1:{port}/w")).unwrap();
        let mut p = Poster::new(
            url,
            #[cfg(feature = "tls")]
            None,
            Duration::from_secs(5),
        );
        smol::block_on(p.post(&[], b"body"))
    }

    #[test]
    fn chunked_answers_are_read_and_hostile_sizes_refused() {
        let port = serve(vec![
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        ]);
        let r = post_once(port).unwrap();
        assert_eq!((r.status, r.body.as_str()), (400, "hello world"));
        for hostile in [
            &b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx"[..],
            b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffe\r\nx",
            b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let port = serve(vec![hostile]);
            let e = post_once(port).unwrap_err();
            assert!(e.contains("chunk size"), "{e}");
        }
    }

    #[test]
    fn urls_are_split_as_http_has_them() {
        let u = Url::parse("http://prom.lan:9090/api/v1/write").unwrap();
        assert_eq!(
            u,
            Url {
                tls: false,
                host: "prom.lan".into(),
                port: 9090,
                path: "/api/v1/write".into()
            }
        );
        let u = Url::parse("https://mimir.example").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 443, "/"));
        let u = Url::parse("http://[::1]:9090/w").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.authority()),
            ("::1", 9090, "[::1]:9090".to_string())
        );
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http://u:p@x/")
            .unwrap_err()
            .contains("credentials"));
        assert!(Url::parse("http://x:port/").is_err());
    }
}

//! What the database inputs (`postgres`, `mariadb`) share: the connection (TCP or a unix
//! socket, TCP switched to TLS after the protocol's own request, as both protocols start in
//! the clear), a reader of message bodies that checks every length first, a query's answer
//! as a reused table of text cells, the backoff between connection attempts, and a random
//! nonce for the login digests.

use futures_lite::io::{AsyncRead, AsyncWrite, BufReader};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use smol::net::unix::UnixStream;
use smol::net::TcpStream;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Reads a message body field by field; `None` when it is shorter than its fields. Both
/// protocols' bodies: PostgreSQL's numbers are big-endian, MySQL's little-endian.
pub struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        Cursor { rest: body }
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub fn u16_le(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32_le(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i16_be(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32_be(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A NUL-terminated string, without its NUL.
    pub fn cstr(&mut self) -> Option<&'a [u8]> {
        let end = self.rest.iter().position(|&b| b == 0)?;
        let s = &self.rest[..end];
        self.rest = &self.rest[end + 1..];
        Some(s)
    }

    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

/// The byte stream under a connection.
pub enum Link {
    Tcp(TcpStream),
    Unix(UnixStream),
    #[cfg(feature = "tls")]
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Link {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Link::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Link::Unix(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Link::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Link {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Link::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Link::Unix(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Link::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Link::Tcp(s) => Pin::new(s).poll_flush(cx),
            Link::Unix(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Link::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Link::Tcp(s) => Pin::new(s).poll_close(cx),
            Link::Unix(s) => Pin::new(s).poll_close(cx),
            #[cfg(feature = "tls")]
            Link::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// A connection with a read buffer: answers come as many small messages (a row each), read
/// with one system call per buffer rather than two per message.
pub struct Stream {
    io: BufReader<Link>,
}

impl Stream {
    pub fn new(link: Link) -> Stream {
        Stream {
            io: BufReader::with_capacity(16 * 1024, link),
        }
    }

    pub async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.io.read_exact(buf).await
    }

    /// Writes `bytes` and flushes (TLS keeps what it has not sent yet until then).
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let link = self.io.get_mut();
        link.write_all(bytes).await?;
        link.flush().await
    }

    /// True when the server sent something beyond what was read: the answer to a TLS
    /// request must be the only thing in the clear (else someone injected data before TLS).
    pub fn has_buffered(&self) -> bool {
        !self.io.buffer().is_empty()
    }

    pub fn into_link(self) -> Link {
        self.io.into_inner()
    }
}

/// Where a database server listens: a unix socket path or a TCP host and port.
#[derive(Debug, Clone, PartialEq)]
pub enum Address {
    Unix(std::path::PathBuf),
    Tcp(String, u16),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "{}", p.display()),
            Address::Tcp(h, p) if h.contains(':') => write!(f, "[{h}]:{p}"),
            Address::Tcp(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// Opens the plain connection to `addr`; a host name is resolved on a short-lived thread.
pub async fn open(addr: &Address) -> Result<Link, String> {
    match addr {
        Address::Unix(path) => UnixStream::connect(path)
            .await
            .map(Link::Unix)
            .map_err(|e| format!("cannot connect to {}: {e}", path.display())),
        Address::Tcp(host, port) => {
            let addrs = crate::core::offload::resolve(host, *port)
                .await
                .map_err(|e| format!("cannot resolve {host}: {e}"))?;
            crate::common::tcp::connect_first(addrs, &addr.to_string())
                .await
                .map(Link::Tcp)
        }
    }
}

/// `f`, or an error naming `what` when it takes longer than `limit`.
pub async fn bounded<T>(
    limit: Duration,
    what: &str,
    f: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    f.or(async {
        smol::Timer::after(limit).await;
        Err(format!("no answer to {what} within {limit:?}"))
    })
    .await
}

/// Whether and how a connection uses TLS (libpq's `sslmode`, MySQL's `--ssl-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    /// TLS when the server offers it, else in the clear; the certificate is not checked.
    Prefer,
    /// TLS or no connection; the certificate is not checked (encryption against listeners).
    Require,
    /// TLS with the certificate checked against the CA file (or the Mozilla roots) and the
    /// host name.
    VerifyFull,
}

/// The rustls setup for `mode`: with the CA and client files of `files` when verifying;
/// without a check of the server's certificate for `prefer`/`require`, as libpq and the
/// MySQL client do (that is what those modes promise, so no warning is logged).
#[cfg(feature = "tls")]
pub fn tls_config(
    mode: TlsMode,
    files: &crate::common::tls::TlsFiles,
    who: &str,
) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, String> {
    match mode {
        TlsMode::Disable => Ok(None),
        TlsMode::VerifyFull => crate::common::tls::rustls_config(files, who).map(Some),
        TlsMode::Prefer | TlsMode::Require => {
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS setup: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(std::sync::Arc::new(
                    crate::common::tls::AcceptAny(provider),
                ));
            let config = match (files.certfile, files.keyfile) {
                (Some(cert), Some(key)) => {
                    use rustls::pki_types::pem::PemObject;
                    let chain = rustls::pki_types::CertificateDer::pem_file_iter(cert)
                        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                        .map_err(|e| format!("{}: no usable certificate: {e}", cert.display()))?;
                    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key)
                        .map_err(|e| format!("{}: no usable private key: {e}", key.display()))?;
                    builder
                        .with_client_auth_cert(chain, key)
                        .map_err(|e| format!("client certificate: {e}"))?
                }
                _ => builder.with_no_client_auth(),
            };
            Ok(Some(std::sync::Arc::new(config)))
        }
    }
}

/// Switches `link` (a TCP connection whose server agreed to TLS) to TLS.
#[cfg(feature = "tls")]
pub async fn start_tls(
    link: Link,
    config: &std::sync::Arc<rustls::ClientConfig>,
    host: &str,
    shown: &str,
) -> Result<Link, String> {
    let Link::Tcp(tcp) = link else {
        return Err(format!("{shown}: TLS is only used over TCP"));
    };
    // A unix-socket or IP-address host still needs some server name for rustls.
    let name = if host.is_empty() { "localhost" } else { host };
    crate::common::tls::handshake(config, name, shown, tcp)
        .await
        .map(|s| Link::Tls(Box::new(s)))
}

/// How a column's text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An integer or decimal type: a metric's value.
    Number,
    /// A boolean: 1 or 0.
    Bool,
    /// A character type: a label.
    Text,
    /// Anything else (times, arrays…): neither.
    Other,
}

/// One query's answer: column names and kinds, and every cell's text, in buffers that are
/// cleared and refilled by each query (they grow to the largest answer, then stay).
#[derive(Default)]
pub struct Table {
    bytes: Vec<u8>,
    /// Column name ranges in `bytes`, and the kind of each column.
    columns: Vec<(usize, usize, Kind)>,
    /// Per cell: its range in `bytes`, or None for NULL; rows one after another.
    cells: Vec<Option<(usize, usize)>>,
}

impl Table {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.columns.clear();
        self.cells.clear();
    }

    pub fn push_column(&mut self, name: &[u8], kind: Kind) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name);
        self.columns.push((start, self.bytes.len(), kind));
    }

    pub fn push_cell(&mut self, cell: Option<&[u8]>) {
        self.cells.push(cell.map(|c| {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(c);
            (start, self.bytes.len())
        }));
    }

    /// True when every row so far has all its cells (a server that sends a short row).
    pub fn rows_complete(&self) -> bool {
        self.columns.is_empty() || self.cells.len() % self.columns.len() == 0
    }

    pub fn width(&self) -> usize {
        self.columns.len()
    }

    pub fn rows(&self) -> usize {
        self.cells
            .len()
            .checked_div(self.columns.len())
            .unwrap_or(0)
    }

    /// A column's name (lossy: names are UTF-8 on both servers as we ask for it).
    pub fn column(&self, i: usize) -> &str {
        let (s, e, _) = self.columns[i];
        std::str::from_utf8(&self.bytes[s..e]).unwrap_or("")
    }

    pub fn kind(&self, i: usize) -> Kind {
        self.columns[i].2
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        (0..self.width()).find(|&i| self.column(i) == name)
    }

    /// The text of a cell; None for NULL or text that is not UTF-8.
    pub fn text(&self, row: usize, col: usize) -> Option<&str> {
        let (s, e) = self
            .cells
            .get(row * self.width() + col)
            .copied()
            .flatten()?;
        std::str::from_utf8(&self.bytes[s..e]).ok()
    }

    /// A cell as a number: numbers as written, booleans and `ON`/`OFF`-like words as 1/0.
    pub fn number(&self, row: usize, col: usize) -> Option<f64> {
        number(self.text(row, col)?)
    }
}

/// A value's text as a number: decimal numbers, and the words servers use for switches
/// (`t`/`f` of PostgreSQL, `ON`/`OFF`, `YES`/`NO`, `TRUE`/`FALSE` of MariaDB) as 1/0.
pub fn number(text: &str) -> Option<f64> {
    let t = text.trim();
    if let Ok(v) = t.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    const ONE: [&str; 5] = ["t", "on", "yes", "true", "enabled"];
    const ZERO: [&str; 5] = ["f", "off", "no", "false", "disabled"];
    if ONE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(1.0)
    } else if ZERO.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(0.0)
    } else {
        None
    }
}

/// When the next connection attempt may be made after failures: 1 s, 2 s … capped at a
/// minute, so a server that is down is not asked at every collection of a short interval.
pub struct Reconnect {
    backoff: crate::core::backoff::Backoff,
    not_before: Option<Instant>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            backoff: crate::core::backoff::Backoff::new(
                Duration::from_secs(1),
                Duration::from_secs(60),
            ),
            not_before: None,
        }
    }
}

impl Reconnect {
    /// How long until an attempt is allowed, if one is not allowed now.
    pub fn wait_left(&self, now: Instant) -> Option<Duration> {
        self.not_before
            .and_then(|t| t.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    pub fn failed(&mut self, now: Instant) {
        self.not_before = Some(now + self.backoff.next_delay());
    }

    pub fn succeeded(&mut self) {
        self.backoff.reset();
        self.not_before = None;
    }
}

/// `N` random bytes for a login nonce, from the kernel.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    use std::io::Read;
    let mut out = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .map_err(|e| format!("cannot read /dev/urandom for a login nonce: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_and_numbers() {
        assert_eq!(number("42"), Some(42.0));
        assert_eq!(number(" -1.5e3 "), Some(-1500.0));
        assert_eq!(number("ON"), Some(1.0));
        assert_eq!(number("off"), Some(0.0));
        assert_eq!(number("t"), Some(1.0));
        assert_eq!(number("NaN"), None);
        assert_eq!(number("inf"), None);
        assert_eq!(number("Primary"), None);
    }

    #[test]
    fn table_keeps_rows_and_nulls() {
        let mut t = Table::default();
        t.push_column(b"a", Kind::Text);
        t.push_column(b"b", Kind::Number);
        t.push_cell(Some(b"x"));
        t.push_cell(None);
        t.push_cell(Some(b"y"));
        assert!(!t.rows_complete());
        t.push_cell(Some(b"7"));
        assert_eq!((t.rows(), t.width()), (2, 2));
        assert_eq!(t.text(0, 0), Some("x"));
        assert_eq!(t.number(0, 1), None);
        assert_eq!(t.number(1, 1), Some(7.0));
        assert_eq!(t.text(5, 0), None);
        assert_eq!(t.find("b"), Some(1));
    }

    #[test]
    fn backoff_waits_and_resets() {
        let mut r = Reconnect::default();
        let now = Instant::now();
        assert_eq!(r.wait_left(now), None);
        r.failed(now);
        assert_eq!(r.wait_left(now), Some(Duration::from_secs(1)));
        r.failed(now);
        assert_eq!(r.wait_left(now), Some(Duration::from_secs(2)));
        r.succeeded();
        assert_eq!(r.wait_left(now), None);
    }
}

//! The HTTP(S) client (ureq) of the web inputs (`http_response`, `nginx`, `apache`).
//!
//! ureq is a blocking client, so each request runs on a short-lived thread of its own
//! ([`offload::on_thread`]); the executor thread only waits. Not smol's blocking pool: its
//! threads never exit (see `core::offload`), and it starts fewer threads than queued jobs, so
//! one hanging URL would hold up the others. A URL whose previous request is still running
//! gets no second thread, so the threads are bounded by the number of URLs.
//!
//! Every request is bounded twice: by ureq's own global timeout (connect, TLS, headers and
//! body together) and by a timer on the executor a little later, so a resolver that ignores
//! timeouts cannot stall a collection either.
//!
//! TLS is rustls with the ring provider, which the `http` feature brings by itself (no
//! process-wide default is installed). Verification is on unless the input says otherwise.

mod x509;

use crate::common::tls::AcceptAny;
use crate::core::offload::{self, InFlight};
use futures_lite::future;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use smol::Timer;
use std::fmt;
use std::io::{self, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::http::{HeaderName, HeaderValue, Method, Request, Uri};
use ureq::tls::{PemItem, RootCerts, TlsConfig, TlsProvider};
use ureq::Agent;

/// How long the executor's timer waits beyond the request timeout before it gives up on the
/// blocking thread.
const GRACE: Duration = Duration::from_secs(1);

/// Stack of a request thread: ureq, rustls and ring need far less (debug builds included).
const THREAD_STACK: usize = 512 * 1024;

/// Redirects followed when `follow_redirects` is on (as ureq's and requests' defaults).
const MAX_REDIRECTS: u32 = 10;

/// How requests are made; fixed when the input is built.
pub struct ClientOptions<'a> {
    pub timeout: Duration,
    pub follow_redirects: bool,
    pub insecure_skip_verify: bool,
    /// PEM file of the CAs to trust instead of the built-in Mozilla roots.
    pub tls_ca: Option<&'a Path>,
    /// Bytes of the body kept for the caller; the rest is read, counted and dropped.
    pub keep_bytes: usize,
}

/// One request's method, headers and body, shared by every URL of an input.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Vec<u8>,
}

impl RequestSpec {
    pub fn get() -> Self {
        RequestSpec {
            method: Method::GET,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// A URL checked at build time: what the request and the certificate probe need.
#[derive(Debug, Clone)]
pub struct Target {
    pub uri: Uri,
    /// The URL without any `user:password@`, for labels and logs.
    pub shown: String,
    /// Host and port for the certificate probe (HTTPS only).
    tls_endpoint: Option<(String, u16)>,
    /// Claimed while a request thread for this URL runs.
    in_flight: InFlight,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("`{}` is not a URL: {e}", redact_unchecked(url)))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(format!(
                    "`{}`: only http:// and https:// URLs can be checked",
                    redact_unchecked(url)
                ))
            }
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{}` has no host", redact_unchecked(url)))?;
        // The parser leaves the port unchecked: `http://u:pa/ss@h` would be host `u` with
        // port `pa`, and the password would show in the label.
        if has_port_text(&uri) && uri.port_u16().is_none_or(|p| p == 0) {
            return Err(format!(
                "`{}`: the port is not a number from 1 to 65535 (a `/` in a password is written %2F)",
                redact_unchecked(url)
            ));
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls_endpoint = tls.then(|| (host, uri.port_u16().unwrap_or(443)));
        Ok(Target {
            shown: redact(url),
            uri,
            tls_endpoint,
            in_flight: InFlight::default(),
        })
    }

    pub fn is_https(&self) -> bool {
        self.tls_endpoint.is_some()
    }

    /// The host as written in the URL and the port it resolves to (default 80/443).
    pub fn host_port(&self) -> (String, u16) {
        let host = self.uri.host().unwrap_or("").to_string();
        let default = if self.is_https() { 443 } else { 80 };
        (host, self.uri.port_u16().unwrap_or(default))
    }
}

/// `scheme://user:pass@host/…` → `scheme://user:***@host/…`, so a password in a URL never
/// reaches a label or the log.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let auth_start = scheme_end + 3;
    let auth_end = url[auth_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| auth_start + i);
    let Some(at) = url[auth_start..auth_end].rfind('@') else {
        return url.to_string();
    };
    let userinfo = &url[auth_start..auth_start + at];
    let user = userinfo.split(':').next().unwrap_or("");
    format!(
        "{}{user}:***{}",
        &url[..auth_start],
        &url[auth_start + at..]
    )
}

/// Whether the authority has a `:port` part, valid or not (`Uri::port` is `None` for both
/// none and one that is not a number).
fn has_port_text(uri: &Uri) -> bool {
    let authority = uri.authority().map_or("", |a| a.as_str());
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let after_ipv6 = host_port.rsplit(']').next().unwrap_or("");
    after_ipv6.contains(':')
}

/// For a URL that is refused: everything from its scheme to its last `@` hidden. In a
/// malformed URL a password can hold what [`redact`] takes for the end of the user part
/// (`http://u:pa/ss@h` has the port `pa` to a URL parser).
fn redact_unchecked(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return url.to_string();
    };
    let start = url.find("://").map_or(0, |i| i + 3).min(at);
    format!("{}***{}", &url[..start], &url[at..])
}

/// What a request got back.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    /// The first `keep_bytes` of the body.
    pub head: Vec<u8>,
    /// The whole body's length in bytes (read to the end, not taken from a header).
    pub length: u64,
    /// From sending the request to the end of the body.
    pub elapsed: Duration,
    /// For HTTPS when asked: the server certificate's notAfter (Unix seconds), or why not.
    pub cert_not_after: Option<Result<i64, String>>,
}

/// Why a request got no response, in the Python rtcollector's `http_response_result_code` classes.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchError {
    /// 1: no complete response within the timeout.
    Timeout(String),
    /// 2: no connection: name not found, refused, unreachable, TLS handshake failed.
    Connection(String),
    /// 3: the exchange went wrong: a malformed response, too many redirects.
    Request(String),
    /// 4: anything else.
    Unexpected(String),
}

impl FetchError {
    pub fn result_code(&self) -> u8 {
        match self {
            FetchError::Timeout(_) => 1,
            FetchError::Connection(_) => 2,
            FetchError::Request(_) => 3,
            FetchError::Unexpected(_) => 4,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Timeout(m) => write!(f, "timed out: {m}"),
            FetchError::Connection(m) => write!(f, "connection failed: {m}"),
            FetchError::Request(m) => write!(f, "request failed: {m}"),
            FetchError::Unexpected(m) => write!(f, "unexpected error: {m}"),
        }
    }
}

/// A configured client: one ureq agent (no connection pool: every check opens its own
/// connection, so it measures and verifies what a new client would see).
pub struct Client {
    agent: Agent,
    timeout: Duration,
    keep_bytes: usize,
    /// For reading the certificate's expiry: accepts any certificate, sends nothing.
    probe: Arc<ClientConfig>,
}

impl Client {
    pub fn new(opts: &ClientOptions) -> Result<Client, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(provider.clone())
            .disable_verification(opts.insecure_skip_verify);
        if let Some(path) = opts.tls_ca {
            tls = tls.root_certs(read_roots(path)?);
        }
        let agent: Agent = Agent::config_builder()
            .timeout_global(Some(opts.timeout))
            .http_status_as_error(false)
            .max_redirects(if opts.follow_redirects {
                MAX_REDIRECTS
            } else {
                0
            })
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .allow_non_standard_methods(true)
            .user_agent(concat!("rtcollector/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .into();
        let probe = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .dangerous()
            // Any certificate (its signature over the handshake is still checked): the probe sends
            // nothing; the request itself verifies as configured.
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth();
        Ok(Client {
            agent,
            timeout: opts.timeout,
            keep_bytes: opts.keep_bytes,
            probe: Arc::new(probe),
        })
    }

    /// Requests `target` on a thread of its own; with `want_cert`, an HTTPS target's
    /// certificate expiry is read too, within what is left of the timeout.
    pub async fn fetch(
        &self,
        target: &Target,
        spec: &Arc<RequestSpec>,
        want_cert: bool,
    ) -> Result<Fetched, FetchError> {
        let Some(claim) = target.in_flight.try_claim() else {
            return Err(FetchError::Timeout(
                "the previous request to this URL is still running".into(),
            ));
        };
        let job = Job {
            agent: self.agent.clone(),
            uri: target.uri.clone(),
            spec: spec.clone(),
            keep_bytes: self.keep_bytes,
            deadline_in: self.timeout,
            probe: want_cert
                .then(|| target.tls_endpoint.clone())
                .flatten()
                .map(|ep| (self.probe.clone(), ep)),
        };
        // The claim goes with the job: it ends when the thread does, not when the timer
        // below gives up on it.
        let request = offload::on_thread("rtc-http", THREAD_STACK, move || {
            let _claim = claim;
            job.run()
        });
        let work = async {
            request
                .await
                .unwrap_or_else(|e| Err(FetchError::Unexpected(e.to_string())))
        };
        let bound = self.timeout + GRACE;
        let timer = async {
            Timer::after(bound).await;
            Err(FetchError::Timeout(format!(
                "no answer within {}ms",
                self.timeout.as_millis()
            )))
        };
        future::or(work, timer).await
    }
}

/// One request, moved to its thread.
struct Job {
    agent: Agent,
    uri: Uri,
    spec: Arc<RequestSpec>,
    keep_bytes: usize,
    deadline_in: Duration,
    probe: Option<(Arc<ClientConfig>, (String, u16))>,
}

impl Job {
    fn run(self) -> Result<Fetched, FetchError> {
        let started = Instant::now();
        let mut builder = Request::builder()
            .method(self.spec.method.clone())
            .uri(self.uri.clone());
        for (name, value) in &self.spec.headers {
            builder = builder.header(name, value);
        }
        let sent = if self.spec.body.is_empty() {
            let req = builder
                .body(())
                .map_err(|e| FetchError::Unexpected(e.to_string()))?;
            self.agent.run(req)
        } else {
            let req = builder
                .body(self.spec.body.as_slice())
                .map_err(|e| FetchError::Unexpected(e.to_string()))?;
            self.agent.run(req)
        };
        let response = sent.map_err(classify)?;
        let status = response.status().as_u16();
        let mut reader = response.into_body().into_reader();
        let mut head = Vec::new();
        (&mut reader)
            .take(self.keep_bytes as u64)
            .read_to_end(&mut head)
            .map_err(classify_io)?;
        let rest = io::copy(&mut reader, &mut io::sink()).map_err(classify_io)?;
        let elapsed = started.elapsed();
        let cert_not_after = self.probe.map(|(config, (host, port))| {
            let left = self.deadline_in.saturating_sub(started.elapsed());
            probe_not_after(&config, &host, port, left)
        });
        Ok(Fetched {
            status,
            length: head.len() as u64 + rest,
            head,
            elapsed,
            cert_not_after,
        })
    }
}

fn classify(e: ureq::Error) -> FetchError {
    use ureq::Error as E;
    match e {
        E::Timeout(t) => FetchError::Timeout(t.to_string()),
        E::Io(io) => classify_io(io),
        E::HostNotFound => FetchError::Connection("host not found".into()),
        E::ConnectionFailed => FetchError::Connection("cannot connect".into()),
        E::Tls(m) => FetchError::Connection(format!("TLS: {m}")),
        E::Rustls(r) => FetchError::Connection(format!("TLS: {}", tls_reason(&r))),
        E::ConnectProxyFailed(m) => FetchError::Connection(format!("proxy: {m}")),
        E::TooManyRedirects => FetchError::Request(format!("more than {MAX_REDIRECTS} redirects")),
        e @ (E::Protocol(_)
        | E::Http(_)
        | E::BadUri(_)
        | E::RedirectFailed
        | E::LargeResponseHeader(..)
        | E::BodyExceedsLimit(_)) => FetchError::Request(e.to_string()),
        other => FetchError::Unexpected(other.to_string()),
    }
}

fn classify_io(e: io::Error) -> FetchError {
    if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        return FetchError::Timeout(e.to_string());
    }
    let text = e.to_string();
    // ureq reports its own errors met while reading the body wrapped in io::Error.
    match e.into_inner().map(|inner| inner.downcast::<ureq::Error>()) {
        Some(Ok(ureq_err)) => classify(*ureq_err),
        _ => FetchError::Connection(text),
    }
}

/// The handshake failure in words an operator can act on.
fn tls_reason(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "the certificate is not signed by a trusted CA (UnknownIssuer); set tls_ca, or insecure_skip_verify: true for a self-signed test server".into()
        }
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the certificate is not valid for this host name (NotValidForName)".into()
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the certificate has expired".into()
        }
        other => other.to_string(),
    }
}

fn read_roots(path: &Path) -> Result<RootCerts, String> {
    let bad = |e: &dyn fmt::Display| format!("tls_ca {}: {e}", path.display());
    let pem = std::fs::read(path).map_err(|e| bad(&e))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(c) = item.map_err(|e| bad(&e))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(bad(&"no PEM certificate in the file"));
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// Opens a TLS connection to read the server certificate's notAfter; sends no request.
fn probe_not_after(
    config: &Arc<ClientConfig>,
    host: &str,
    port: u16,
    budget: Duration,
) -> Result<i64, String> {
    if budget < Duration::from_millis(10) {
        return Err("no time left within the timeout".into());
    }
    let deadline = Instant::now() + budget;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let mut sock = TcpStream::connect_timeout(&addr, budget).map_err(|e| e.to_string())?;
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or("no time left within the timeout")?;
    sock.set_read_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    sock.set_write_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let mut conn = ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        if Instant::now() >= deadline {
            return Err("TLS handshake did not finish within the timeout".into());
        }
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    let leaf = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or("the server sent no certificate")?;
    let not_after = x509::not_after(leaf).map_err(|e| e.to_string());
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    not_after
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact("https://bob:s3cret@example.com:8443/health?x=@"),
            "https://bob:***@example.com:8443/health?x=@"
        );
        assert_eq!(redact("http://token@h/p"), "http://token:***@h/p");
        assert_eq!(redact("http://h/p?q=a@b"), "http://h/p?q=a@b");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn a_refused_url_shows_nothing_before_its_last_at_sign() {
        for bad in [
            "http://u:Secr3t/Pass@h:x/",
            "ftp://u:Secr3t/Pass@h/",
            "http://u:Secr3t/Pass@/",
            "u:Secr3t@h",
            "http://u:Se@cr3t@h:port",
        ] {
            let e = Target::parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} parsed"));
            assert!(!e.contains("Secr3t") && !e.contains("cr3t"), "{e}");
            assert!(e.contains("***@"), "{e}");
        }
    }

    #[test]
    fn targets_are_checked_at_build_time() {
        let t = Target::parse("https://[::1]:8443/x").unwrap();
        assert!(t.is_https());
        assert_eq!(t.tls_endpoint, Some(("::1".into(), 8443)));
        let t = Target::parse("http://localhost/nginx_status").unwrap();
        assert_eq!(t.host_port(), ("localhost".into(), 80));
        assert!(Target::parse("ftp://h/x")
            .unwrap_err()
            .contains("only http"));
        assert!(Target::parse("localhost:80").is_err());
        let e = Target::parse("http://u:pw@/x").unwrap_err();
        assert!(!e.contains("pw"), "{e}");
    }

    #[test]
    fn result_codes_are_rtcollectors() {
        assert_eq!(FetchError::Timeout(String::new()).result_code(), 1);
        assert_eq!(FetchError::Connection(String::new()).result_code(), 2);
        assert_eq!(FetchError::Request(String::new()).result_code(), 3);
        assert_eq!(FetchError::Unexpected(String::new()).result_code(), 4);
    }
}

//! `syslog`: a syslog server (RFC 5424 and RFC 3164, over UDP, TCP, TLS and unix sockets)
//! whose messages become log records for the outputs that take logs (redissearch, stdout,
//! mqtt). Each collection writes the server's own figures as metrics.

pub mod framing;
pub mod parse;
mod server;

use crate::config::range;
use crate::config::units::{Dur, Size};
use crate::config::BuildError;
use crate::core::input::ListenFuture;
use crate::core::logs::LogRecord;
use crate::core::publish::{Published, Publisher};
use crate::core::{clock, CollectFuture, Emitter, Input, InputError};
use crate::inputs::BuildCtx;
use parse::Standard;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# A syslog server: routers and servers send their logs here (RFC 5424 or RFC 3164); each
# message becomes a log record for the outputs that take logs (redissearch, stdout).
- syslog:
    # udp://, tcp://, tls:// (with tls_cert and tls_key) host:port, or unix:///path
    # (a stream socket) or unixgram:///path. Ports below 1024 need root or
    # CAP_NET_BIND_SERVICE: forward 514 to 5514 on the router or with the firewall.
    server: \"udp://:5514\"
    # tls_cert: /etc/rtcollector/syslog.pem
    # tls_key: /etc/rtcollector/syslog.key
    # socket_mode: \"0660\"          # unix sockets
    # max_connections: 64           # TCP/TLS/unix clients at once (0: 64)
    # read_timeout: 0s              # close a connection silent this long (0: never)
    # read_buffer_size: 64KiB       # the longest message; longer ones are cut
    # keep_alive_period: 5m         # TCP keep-alive (0s: off)
    # framing: octet-counting       # or non-transparent (both are recognised anyway)
    # trailer: LF                   # or NUL: what ends a non-transparent message
    # best_effort: false            # keep a message that does not parse as raw text
    # syslog_standard: RFC5424      # or RFC3164; the other one is tried when it does not fit
    # sdparam_separator: \"_\"        # structured data names: <sd-id>_<param>
";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Framing {
    #[serde(rename = "octet-counting")]
    OctetCounting,
    #[serde(rename = "non-transparent")]
    NonTransparent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Trailer {
    #[serde(rename = "LF")]
    Lf,
    #[serde(rename = "NUL")]
    Nul,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub socket_mode: String,
    #[serde(deserialize_with = "range::count::<_, 0, 65536>")]
    pub max_connections: usize,
    #[serde(deserialize_with = "range::dur::<_, 0, { range::DAY_MS }>")]
    pub read_timeout: Dur,
    #[serde(deserialize_with = "range::size::<_, 480, { 16 * range::MIB }>")]
    pub read_buffer_size: Size,
    #[serde(deserialize_with = "range::dur::<_, 0, { range::DAY_MS }>")]
    pub keep_alive_period: Dur,
    pub content_encoding: String,
    pub max_decompression_size: Size,
    pub framing: Framing,
    pub trailer: Trailer,
    pub best_effort: bool,
    pub syslog_standard: Standard,
    pub sdparam_separator: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: "udp://:5514".into(),
            tls_cert: None,
            tls_key: None,
            socket_mode: String::new(),
            max_connections: 0,
            read_timeout: Dur(Duration::ZERO),
            read_buffer_size: Size(64 << 10),
            keep_alive_period: Dur(Duration::from_secs(300)),
            content_encoding: "identity".into(),
            max_decompression_size: Size(500 << 20),
            framing: Framing::OctetCounting,
            trailer: Trailer::Lf,
            best_effort: false,
            syslog_standard: Standard::Rfc5424,
            sdparam_separator: "_".into(),
        }
    }
}

/// Clients at once when `max_connections` is 0.
const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Udp(String),
    Tcp(String),
    Tls(String),
    Unix(PathBuf),
    UnixGram(PathBuf),
}

impl Listen {
    fn parse(server: &str) -> Result<Listen, String> {
        let addr = |rest: &str| -> Result<String, String> {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("`{server}` has no port (udp://host:port)"))?;
            port.parse::<u16>()
                .map_err(|_| format!("`{port}` in `{server}` is not a port"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Ok(match host {
                "" => format!("0.0.0.0:{port}"),
                h if h.contains(':') => format!("[{h}]:{port}"),
                h => format!("{h}:{port}"),
            })
        };
        if let Some(rest) = server.strip_prefix("udp://") {
            return addr(rest).map(Listen::Udp);
        }
        if let Some(rest) = server.strip_prefix("tcp://") {
            return addr(rest).map(Listen::Tcp);
        }
        if let Some(rest) = server.strip_prefix("tls://") {
            return addr(rest).map(Listen::Tls);
        }
        if let Some(path) = server.strip_prefix("unixgram://") {
            return Ok(Listen::UnixGram(PathBuf::from(path)));
        }
        if let Some(path) = server.strip_prefix("unix://") {
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        if server.starts_with('/') {
            return Ok(Listen::Unix(PathBuf::from(server)));
        }
        Err(format!(
            "`{server}` is not udp://, tcp://, tls:// host:port, unix:// or unixgram:// path"
        ))
    }
}

/// What the server and `collect` share: its counters.
#[derive(Default)]
pub struct Counters {
    pub messages: Cell<u64>,
    pub bytes: Cell<u64>,
    pub parse_errors: Cell<u64>,
    /// Messages kept as raw text (`best_effort`).
    pub raw: Cell<u64>,
    pub truncated: Cell<u64>,
    /// Messages lost: a UDP datagram that found the queues full, a garbled frame.
    pub dropped: Cell<u64>,
    pub connections: Cell<u64>,
    pub connections_refused: Cell<u64>,
    pub by_severity: [Cell<u64>; 8],
    /// Why the server is not listening, if it is not.
    pub failure: RefCell<Option<String>>,
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get().wrapping_add(n));
}

/// Turns received messages into published log records.
pub struct Sink {
    publisher: Publisher,
    counters: Rc<Counters>,
    standard: Standard,
    best_effort: bool,
    separator: String,
    seq: u64,
    /// Parse errors already logged (one line for the first, then counted only).
    logged_error: bool,
}

impl Sink {
    /// Parses one message from `source` and publishes it. `QueueFull`: nothing was
    /// published or counted; the caller may wait and offer it again (a stream) or drop it.
    pub fn offer(&mut self, msg: &[u8], source: &str) -> Published {
        let received_ms = clock::now_ms();
        let record = match parse::parse(msg, self.standard, received_ms, &self.separator) {
            Ok(r) => r,
            Err(e) => {
                if !self.best_effort {
                    bump(&self.counters.parse_errors, 1);
                    bump(&self.counters.bytes, msg.len() as u64);
                    self.note_error(e, source);
                    return Published::Accepted(0);
                }
                self.note_error(e, source);
                bump(&self.counters.raw, 1);
                parse::raw(msg, received_ms)
            }
        };
        self.publish(record, msg.len(), source)
    }

    fn publish<'a>(&mut self, mut record: LogRecord<'a>, len: usize, source: &'a str) -> Published {
        record.seq = self.seq;
        record.source = source.into();
        let severity = usize::from(record.severity.min(7));
        let outcome = self.publisher.publish_log(&record);
        if let Published::Accepted(_) = outcome {
            self.seq += 1;
            bump(&self.counters.messages, 1);
            bump(&self.counters.bytes, len as u64);
            bump(&self.counters.by_severity[severity], 1);
        }
        outcome
    }

    fn note_error(&mut self, e: parse::ParseError, source: &str) {
        if !std::mem::replace(&mut self.logged_error, true) {
            log::warn!(
                "syslog: a message from {source} does not parse ({}){} (counted in syslog_parse_errors, not logged again)",
                e.as_str(),
                if self.best_effort { "; kept as raw text" } else { "" }
            );
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// What the server needs from the config.
pub struct Settings {
    pub listen: Listen,
    pub max_connections: usize,
    pub max_message: usize,
    pub read_timeout: Option<Duration>,
    pub keep_alive: Option<Duration>,
    pub trailer: u8,
    pub socket_mode: Option<u32>,
    #[cfg(feature = "tls")]
    pub tls: Option<futures_rustls::TlsAcceptor>,
}

pub struct Syslog {
    settings: Option<Settings>,
    cfg: Config,
    counters: Rc<Counters>,
}

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<Syslog, BuildError> {
    let listen = Listen::parse(&cfg.server).map_err(|e| BuildError::at("server", e))?;
    if !matches!(cfg.content_encoding.as_str(), "" | "identity") {
        return Err(BuildError::at(
            "content_encoding",
            format!(
                "`{}` is not supported: syslog senders do not compress; use identity",
                cfg.content_encoding
            ),
        ));
    }
    let socket_mode = match cfg.socket_mode.as_str() {
        "" => None,
        m => Some(u32::from_str_radix(m, 8).ok().filter(|m| *m <= 0o777).ok_or_else(|| {
            BuildError::at("socket_mode", format!("`{m}` is not an octal mode such as 0660"))
        })?),
    };
    if cfg.sdparam_separator.len() > 8 {
        return Err(BuildError::at("sdparam_separator", "must be at most 8 bytes"));
    }
    // The Python agent's example writes them empty.
    let given = |p: &Option<PathBuf>| p.clone().filter(|p| !p.as_os_str().is_empty());
    let (cert, key) = (given(&cfg.tls_cert), given(&cfg.tls_key));
    let is_tls = matches!(listen, Listen::Tls(_));
    if is_tls != (cert.is_some() || key.is_some()) || (is_tls && (cert.is_none() || key.is_none())) {
        return Err(BuildError::at(
            "server",
            "tls:// needs tls_cert and tls_key, and they are only for tls://",
        ));
    }
    #[cfg(feature = "tls")]
    let tls = match (&cert, &key) {
        (Some(cert), Some(key)) => Some(futures_rustls::TlsAcceptor::from(
            crate::common::tls::server_config(cert, key)
                .map_err(|e| BuildError::at("tls_cert", e))?,
        )),
        _ => None,
    };
    #[cfg(not(feature = "tls"))]
    if is_tls {
        return Err(BuildError::at(
            "server",
            "tls:// needs a build with the `tls` feature",
        ));
    }
    let nonzero = |d: Dur| (!d.0.is_zero()).then_some(d.0);
    let settings = Settings {
        max_connections: match cfg.max_connections {
            0 => DEFAULT_MAX_CONNECTIONS,
            n => n,
        },
        max_message: cfg.read_buffer_size.0 as usize,
        read_timeout: nonzero(cfg.read_timeout),
        keep_alive: nonzero(cfg.keep_alive_period),
        trailer: match cfg.trailer {
            Trailer::Lf => b'\n',
            Trailer::Nul => 0,
        },
        socket_mode,
        listen,
        #[cfg(feature = "tls")]
        tls,
    };
    Ok(Syslog {
        settings: Some(settings),
        cfg: cfg.clone(),
        counters: Rc::default(),
    })
}

impl Syslog {
    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        let c = &self.counters;
        let totals = [
            ("syslog_messages", &c.messages),
            ("syslog_bytes", &c.bytes),
            ("syslog_parse_errors", &c.parse_errors),
            ("syslog_raw_messages", &c.raw),
            ("syslog_truncated", &c.truncated),
            ("syslog_dropped", &c.dropped),
            ("syslog_connections_refused", &c.connections_refused),
        ];
        for (name, cell) in totals {
            em.counter(name, &[], cell.get() as f64);
        }
        em.gauge("syslog_connections", &[], c.connections.get() as f64);
        for (name, cell) in crate::core::logs::SEVERITY_NAMES.iter().zip(&c.by_severity) {
            em.counter("syslog_messages_by_severity", &[("severity", name)], cell.get() as f64);
        }
        match c.failure.borrow().as_ref() {
            Some(e) => Err(InputError::new(format!("not listening: {e}"))),
            None => Ok(()),
        }
    }
}

impl Input for Syslog {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        crate::core::ready(self.collect_sync(em))
    }

    fn listen_with(&mut self, publisher: Publisher) -> Option<ListenFuture> {
        let settings = self.settings.take()?;
        let sink = Sink {
            publisher,
            counters: self.counters.clone(),
            standard: self.cfg.syslog_standard,
            best_effort: self.cfg.best_effort,
            separator: self.cfg.sdparam_separator.clone(),
            seq: 0,
            logged_error: false,
        };
        Some(Box::pin(server::run(settings, Rc::new(RefCell::new(sink)))))
    }
}

#[cfg(test)]
mod tests;

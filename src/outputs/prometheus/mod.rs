//! `prometheus`: an HTTP endpoint that Prometheus scrapes, serving the latest value of each
//! series in the text exposition format (0.0.4) or OpenMetrics 1.0 when the scraper asks for
//! it. No queue and no outage buffer: the hub hands every published sample to [`Latest`],
//! and a scrape renders what it holds (see `exposition.rs`); the server runs on the agent's
//! executor beside the other outputs (`server.rs`).

mod exposition;
mod server;
#[cfg(test)]
mod tests;

use crate::config::range;
use crate::config::{BuildError, Dur, Secret};
use crate::core::output::{Buffering, LatestSink, SeriesHandle, ServeFuture, StartFuture};
use crate::core::{ready_write, Output, Sample, SeriesId, SeriesTable, SeriesView, WriteFuture};
use crate::core::WriteReport;
use crate::outputs::OutputCtx;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

pub use exposition::Format;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# An endpoint Prometheus scrapes (http://<this host>:8000/metrics): the latest value of each
# series; counters as counters (samples named `<name>_total`), the agent's `_rate` left out.
- prometheus:
    port: 8000
    # listen: 0.0.0.0
    # path: /metrics
    # expiration: 5m              # default: two of each series' own intervals
    # export_timestamp: false
    # username: prom              # basic authentication, with password
    # password: secret:prometheus/password
    # tls_cert: /etc/rtcollector/cert.pem   # HTTPS, with tls_key
    # tls_key: /etc/rtcollector/key.pem
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The IP address to listen on; every interface by default, as a scrape target needs.
    pub listen: String,
    #[serde(deserialize_with = "range::port")]
    pub port: u16,
    pub path: String,
    /// A series not updated for this long is left out (and forgotten). Default: two of its
    /// own intervals, as seen from its samples; 5 minutes while only one sample was seen.
    pub expiration: Option<Dur>,
    /// Send each sample's own timestamp (default: none, Prometheus stamps the scrape).
    pub export_timestamp: bool,
    /// Also serve the agent's `_rate` series (Prometheus computes rates from counters).
    pub export_rates: bool,
    /// HTTP basic authentication, when both are set.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// HTTPS: the certificate chain and its key, PEM files (pollect's `cert` and `key`).
    #[serde(alias = "cert")]
    pub tls_cert: Option<std::path::PathBuf>,
    #[serde(alias = "key")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Scrapes served at once; a further connection is closed at once.
    #[serde(deserialize_with = "range::count::<_, 1, 1024>")]
    pub max_connections: usize,
    /// Longest wait for a request, or for a client to take the response.
    #[serde(deserialize_with = "range::timeout")]
    pub read_timeout: Dur,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0".into(),
            port: 8000,
            path: "/metrics".into(),
            expiration: None,
            export_timestamp: false,
            export_rates: false,
            username: None,
            password: None,
            tls_cert: None,
            tls_key: None,
            max_connections: 8,
            read_timeout: Dur(Duration::from_secs(10)),
        }
    }
}

/// What the server needs from the config.
pub(crate) struct Settings {
    pub addr: std::net::SocketAddr,
    pub path: String,
    /// `Basic <base64(user:password)>`, the Authorization header a scrape must carry.
    pub authorization: Option<String>,
    pub max_connections: usize,
    pub read_timeout: Duration,
    pub timestamps: bool,
    #[cfg(feature = "tls")]
    pub tls: Option<futures_rustls::TlsAcceptor>,
}

impl Settings {
    fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }
}

pub fn build(cfg: &Config, ctx: &OutputCtx) -> Result<Prometheus, BuildError> {
    if !cfg.path.starts_with('/') {
        return Err(BuildError::at("path", "must start with `/`"));
    }
    let authorization = match (&cfg.username, &cfg.password) {
        (Some(user), Some(pass)) => Some(format!(
            "Basic {}",
            crate::common::base64::encode(format!("{user}:{}", pass.expose()).as_bytes())
        )),
        (None, None) => None,
        _ => {
            return Err(BuildError::at(
                "password",
                "basic authentication needs both `username` and `password`",
            ))
        }
    };
    #[cfg(feature = "tls")]
    let tls = tls_acceptor(cfg)?;
    #[cfg(not(feature = "tls"))]
    if cfg.tls_cert.is_some() || cfg.tls_key.is_some() {
        return Err(BuildError::at(
            "tls_cert",
            "this binary was built without TLS (cargo feature `tls`); use a build with default features, or serve plain HTTP",
        ));
    }
    // An address, not a name: resolving one would take smol's blocking pool, a thread.
    let ip: std::net::IpAddr = cfg.listen.parse().map_err(|_| {
        BuildError::at(
            "listen",
            format!("`{}` is not an IP address (0.0.0.0, ::, 127.0.0.1…)", cfg.listen),
        )
    })?;
    let addr = std::net::SocketAddr::new(ip, cfg.port);
    Ok(Prometheus {
        name: ctx.key.clone(),
        settings: Rc::new(Settings {
            addr,
            path: cfg.path.clone(),
            authorization,
            max_connections: cfg.max_connections,
            read_timeout: cfg.read_timeout.0,
            timestamps: cfg.export_timestamp,
            #[cfg(feature = "tls")]
            tls,
        }),
        latest: Rc::new(Latest::new(
            cfg.expiration.map(|d| d.0.as_millis() as i64),
            cfg.export_rates,
        )),
        listener: None,
    })
}

/// The TLS side of the endpoint when `tls_cert` and `tls_key` are set; their files are read
/// here, so a bad one is a config error (`check` says so).
#[cfg(feature = "tls")]
fn tls_acceptor(cfg: &Config) -> Result<Option<futures_rustls::TlsAcceptor>, BuildError> {
    match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => crate::common::tls::server_config(cert, key)
            .map(|c| Some(futures_rustls::TlsAcceptor::from(c)))
            .map_err(|e| BuildError::at("tls_cert", e)),
        (None, None) => Ok(None),
        _ => Err(BuildError::at(
            "tls_key",
            "HTTPS needs both `tls_cert` and `tls_key`",
        )),
    }
}

pub struct Prometheus {
    name: String,
    settings: Rc<Settings>,
    latest: Rc<Latest>,
    listener: Option<smol::Async<std::net::TcpListener>>,
}

impl Output for Prometheus {
    /// Binds the port: a port in use is an output that cannot start (logged, retried).
    fn start(&mut self) -> StartFuture<'_> {
        Box::pin(async {
            let listener =
                smol::Async::<std::net::TcpListener>::bind(self.settings.addr).map_err(|e| {
                    crate::core::OutputError::Retry(format!(
                        "cannot listen on {}: {e}",
                        self.settings.addr
                    ))
                })?;
            let at = listener.get_ref().local_addr().unwrap_or(self.settings.addr);
            log::info!(
                "output {}: serving {}://{at}{} for Prometheus",
                self.name,
                if self.settings.is_tls() { "https" } else { "http" },
                self.settings.path
            );
            self.listener = Some(listener);
            Ok(())
        })
    }

    /// Never called: the hub hands samples to the sink (see [`Output::buffering`]).
    fn write<'a>(&'a mut self, batch: &'a [Sample], _: SeriesView<'a>) -> WriteFuture<'a> {
        ready_write(Ok(WriteReport {
            written: batch.len() as u64,
            rejected: 0,
        }))
    }

    fn serve(&mut self, series: SeriesHandle) -> Option<ServeFuture> {
        let listener = self.listener.take()?;
        Some(Box::pin(server::serve(
            listener,
            self.settings.clone(),
            self.latest.clone(),
            series,
            self.name.clone(),
        )))
    }

    fn buffering(&mut self) -> Buffering {
        Buffering::Latest(self.latest.clone())
    }
}

impl Prometheus {
    /// The address the endpoint listens on, once started (tests bind port 0).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.listener.as_ref()?.get_ref().local_addr().ok()
    }
}

/// The latest value of each series, by series id.
pub struct Latest {
    entries: RefCell<Vec<Entry>>,
    /// The ids of `entries` in use, sorted by name and labels once `changed` is clear.
    order: RefCell<Vec<SeriesId>>,
    /// A series came (or came back under another generation) since `order` was sorted.
    changed: std::cell::Cell<bool>,
    /// Milliseconds; `None`: two of the series' own intervals.
    expiration: Option<i64>,
    rates: bool,
}

#[derive(Clone, Copy, Default)]
struct Entry {
    used: bool,
    /// The series table's generation of the id when this was stored.
    generation: u32,
    value: f64,
    ts_ms: i64,
    /// The distance between its last two timestamps (0 until there are two).
    period_ms: i64,
    /// When the agent got it (its clock): expiration counts from here.
    seen_ms: i64,
}

/// A series seen once is kept this long by default.
const FIRST_EXPIRATION_MS: i64 = 5 * 60 * 1000;

impl Latest {
    fn new(expiration: Option<i64>, rates: bool) -> Latest {
        Latest {
            entries: RefCell::new(Vec::new()),
            order: RefCell::new(Vec::new()),
            changed: std::cell::Cell::new(false),
            expiration,
            rates,
        }
    }

    /// Whether `e` is past its expiration at `now_ms`.
    fn expired(&self, e: &Entry, now_ms: i64) -> bool {
        let after = match (self.expiration, e.period_ms) {
            (Some(ms), _) => ms,
            (None, 0) => FIRST_EXPIRATION_MS,
            (None, p) => 2 * p,
        };
        now_ms - e.seen_ms > after
    }

    /// The series to serve now, sorted by name so each family is together; expired
    /// entries are emptied. The order is kept between scrapes and sorted again only when
    /// the set of series changed (sorting 10 000 series by name and labels is most of a
    /// scrape's time).
    fn live(&self, table: &SeriesTable, now_ms: i64, out: &mut Vec<(SeriesId, Entry)>) {
        out.clear();
        let mut entries = self.entries.borrow_mut();
        let mut order = self.order.borrow_mut();
        if self.changed.replace(false) {
            order.clear();
            order.extend((0..entries.len() as SeriesId).filter(|&id| entries[id as usize].used));
            order.sort_by(|&a, &b| {
                let (x, y) = (table.get(a), table.get(b));
                x.name.cmp(&y.name).then_with(|| x.labels.cmp(&y.labels))
            });
        }
        let mut gone = false;
        for &id in order.iter() {
            let Some(e) = entries.get_mut(id as usize).filter(|e| e.used) else {
                gone = true;
                continue;
            };
            let current = table.kind(id).is_some() && table.generation(id) == e.generation;
            if !current || self.expired(e, now_ms) {
                *e = Entry::default();
                gone = true;
                continue;
            }
            out.push((id, *e));
        }
        if gone {
            order.retain(|&id| entries.get(id as usize).is_some_and(|e| e.used));
        }
    }
}

impl LatestSink for Latest {
    fn accept(&self, samples: &[Sample], series: &SeriesTable) {
        let now_ms = crate::core::clock::now_ms();
        let mut entries = self.entries.borrow_mut();
        for s in samples {
            let Some(kind) = series.kind(s.series) else {
                continue;
            };
            if kind == crate::core::SeriesKind::Rate && !self.rates {
                continue;
            }
            let i = s.series as usize;
            if entries.len() <= i {
                entries.resize(i + 1, Entry::default());
            }
            let generation = series.generation(s.series);
            let e = &mut entries[i];
            let same = e.used && e.generation == generation;
            if !same {
                self.changed.set(true);
            }
            let period_ms = match same {
                true if s.ts_ms > e.ts_ms => s.ts_ms - e.ts_ms,
                true => e.period_ms,
                false => 0,
            };
            *e = Entry {
                used: true,
                generation,
                value: s.value,
                ts_ms: s.ts_ms,
                period_ms,
                seen_ms: now_ms,
            };
        }
    }
}

//! `otlp`: OTLP/HTTP protobuf metrics (`/v1/metrics`) to an OpenTelemetry collector or any
//! receiver (Prometheus's `--enable-feature=otlp-write-receiver`, Grafana Alloy, Mimir…),
//! pollect's `Otel` writer. Each batch is one `ExportMetricsServiceRequest` over HTTP POST
//! (`common::post`), through the ring and the outage buffer like the Redis output.
//!
//! Configured from the config, or from the standard `OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` and `OTEL_EXPORTER_OTLP_(METRICS_)HEADERS`
//! variables as pollect documents them (the config wins). Counters are monotonic cumulative
//! sums, gauges gauges; the agent's `_rate` series are left out.

#[cfg(test)]
mod tests;

use crate::common::post::{usable_header, Poster, Url};
use crate::common::protobuf::{bytes, double, fixed64, int, nested};
use crate::common::tls::{check_options, TlsKeys};
use crate::config::range;
use crate::config::shared::with_shared;
use crate::config::{BuildError, Dur, Secret};
use crate::core::{Output, OutputError, Sample, SeriesKind, SeriesTable, SeriesView};
use crate::core::{WriteFuture, WriteReport};
use crate::outputs::OutputCtx;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Pushes batches as OTLP/HTTP protobuf metrics to an OpenTelemetry collector (or Prometheus's
# OTLP receiver), buffered through outages. Without `endpoint`, the standard
# OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT and _HEADERS variables apply.
- otlp:
    endpoint: http://localhost:4318/v1/metrics
    # headers: {Authorization: \"Basic …\"}
    # service_name: rtcollector
    # resource_attributes: {deployment.environment: home}
    # timeout: 10s
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct Config {
    /// The full URL of the metrics endpoint; default from the environment, else
    /// `http://localhost:4318/v1/metrics`.
    pub endpoint: Option<String>,
    /// Added to those of `OTEL_EXPORTER_OTLP_(METRICS_)HEADERS` (these win on a clash).
    /// Values are secrets (`secret:NAME` allowed; `check` prints `***`): they often carry
    /// credentials.
    pub headers: BTreeMap<String, Secret>,
    pub service_name: String,
    /// More resource attributes besides `host.name` and `service.name`.
    pub resource_attributes: BTreeMap<String, String>,
    #[serde(skip)]
    pub tls: TlsKeys,
    #[serde(deserialize_with = "range::timeout")]
    pub timeout: Dur,
    pub export_rates: bool,
}

with_shared!(Config, tls: TlsKeys, before "timeout");

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint: None,
            headers: BTreeMap::new(),
            service_name: "rtcollector".into(),
            resource_attributes: BTreeMap::new(),
            tls: TlsKeys::default(),
            timeout: Dur(Duration::from_secs(10)),
            export_rates: false,
        }
    }
}

/// Where the metrics go: the config's endpoint, else the environment's.
fn endpoint(cfg: &Config, env: &dyn Fn(&str) -> Option<String>) -> String {
    if let Some(e) = &cfg.endpoint {
        return e.clone();
    }
    if let Some(e) = env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").filter(|e| !e.is_empty()) {
        return e;
    }
    match env("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|e| !e.is_empty()) {
        Some(base) => format!("{}/v1/metrics", base.trim_end_matches('/')),
        None => "http://localhost:4318/v1/metrics".into(),
    }
}

/// `k1=v1,k2=v2` with percent-encoded values, as the OpenTelemetry environment has them.
fn env_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{}` is not key=value", pair.trim()))?;
            Ok((k.trim().to_string(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn build(cfg: &Config, ctx: &OutputCtx) -> Result<Otlp, BuildError> {
    build_with_env(cfg, ctx, &|k| std::env::var(k).ok())
}

fn build_with_env(
    cfg: &Config,
    ctx: &OutputCtx,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Otlp, BuildError> {
    let endpoint = endpoint(cfg, env);
    let url = Url::parse(&endpoint).map_err(|e| BuildError::at("endpoint", e))?;
    check_options(url.tls || cfg.tls.ssl, &cfg.tls.files(), "an https:// endpoint")
        .map_err(|e| BuildError::at("endpoint", e))?;
    let mut headers = vec![
        ("Content-Type".to_string(), "application/x-protobuf".to_string()),
        ("User-Agent".to_string(), concat!("rtcollector/", env!("CARGO_PKG_VERSION")).to_string()),
    ];
    for var in ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"] {
        if let Some(text) = env(var) {
            let pairs = env_headers(&text).map_err(|e| BuildError::at("headers", format!("{var}: {e}")))?;
            headers.extend(pairs);
        }
    }
    for (k, v) in &cfg.headers {
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
        headers.push((k.clone(), v.expose().to_string()));
    }
    if let Some((k, _)) = headers.iter().find(|(k, v)| !usable_header(k, v)) {
        return Err(BuildError::at("headers", format!("`{k}` is not a usable header")));
    }
    let poster = Poster::for_url(url, &cfg.tls, &format!("output {}", ctx.key), cfg.timeout.0)
        .map_err(|e| BuildError::at("endpoint", e))?;
    let mut resource = vec![
        ("host.name".to_string(), ctx.hostname.clone()),
        ("service.name".to_string(), cfg.service_name.clone()),
    ];
    resource.extend(cfg.resource_attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(Otlp {
        name: ctx.key.clone(),
        poster,
        headers,
        resource,
        rates: cfg.export_rates,
        order: Vec::new(),
        proto: Vec::new(),
    })
}

pub struct Otlp {
    name: String,
    poster: Poster,
    headers: Vec<(String, String)>,
    resource: Vec<(String, String)>,
    rates: bool,
    order: Vec<u32>,
    proto: Vec<u8>,
}

impl Output for Otlp {
    fn write<'a>(&'a mut self, batch: &'a [Sample], series: SeriesView<'a>) -> WriteFuture<'a> {
        Box::pin(self.write_batch(batch, series))
    }
}

/// `AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE`.
const CUMULATIVE: u64 = 2;

impl Otlp {
    async fn write_batch(&mut self, batch: &[Sample], view: SeriesView<'_>) -> Result<WriteReport, OutputError> {
        let sent = view.with(|t| self.encode(batch, t));
        if sent == 0 {
            return Ok(WriteReport::default());
        }
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let at = self.poster.url().authority();
        let r = self.poster.post(&headers, &self.proto).await.map_err(OutputError::Retry)?;
        match r.status {
            200..=299 => Ok(WriteReport {
                written: sent,
                rejected: 0,
            }),
            // The OTLP spec's retryable answers, and every 5xx; a refused login too, so a
            // fixed credential does not cost the data.
            401 | 403 | 404 | 408 | 429 | 500..=599 => {
                Err(OutputError::Retry(format!("{at} answered {}: {}", r.status, r.body)))
            }
            s => {
                log::debug!("output {}: {at} answered {s}: {}", self.name, r.body);
                Err(OutputError::Reject(format!("{at} refused the batch ({s}): {}", r.body)))
            }
        }
    }

    /// Encodes the batch as one `ExportMetricsServiceRequest` in `self.proto`: one metric
    /// per name, a data point per sample. Returns how many samples it holds.
    fn encode(&mut self, batch: &[Sample], t: &SeriesTable) -> u64 {
        self.order.clear();
        self.order.extend((0..batch.len() as u32).filter(|&i| match t.kind(batch[i as usize].series) {
            None => false,
            Some(SeriesKind::Rate) => self.rates,
            Some(_) => true,
        }));
        self.order.sort_by(|&a, &b| {
            let (x, y) = (&batch[a as usize], &batch[b as usize]);
            t.get(x.series)
                .name
                .cmp(&t.get(y.series).name)
                .then(x.series.cmp(&y.series))
                .then(x.ts_ms.cmp(&y.ts_ms))
        });
        self.proto.clear();
        let (order, resource) = (&self.order, &self.resource);
        // ResourceMetrics
        nested(&mut self.proto, 1, |out| {
            nested(out, 1, |out| {
                for (k, v) in resource {
                    attribute(out, 1, k, v);
                }
            });
            // ScopeMetrics
            nested(out, 2, |out| {
                nested(out, 1, |out| {
                    bytes(out, 1, b"rtcollector");
                    bytes(out, 2, env!("CARGO_PKG_VERSION").as_bytes());
                });
                let mut at = 0;
                while at < order.len() {
                    let name = &*t.get(batch[order[at] as usize].series).name;
                    let end = at
                        + order[at..]
                            .iter()
                            .take_while(|&&i| &*t.get(batch[i as usize].series).name == name)
                            .count();
                    metric(out, name, &order[at..end], batch, t);
                    at = end;
                }
            });
        });
        self.order.len() as u64
    }
}

/// One `Metric` of the samples `run` (all of one name): a monotonic cumulative `Sum` for a
/// counter, a `Gauge` otherwise.
fn metric(out: &mut Vec<u8>, name: &str, run: &[u32], batch: &[Sample], t: &SeriesTable) {
    let counter = t.kind(batch[run[0] as usize].series) == Some(SeriesKind::Counter);
    nested(out, 2, |out| {
        bytes(out, 1, name.as_bytes());
        let (field, points) = if counter { (7, 1) } else { (5, 1) };
        nested(out, field, |out| {
            for &i in run {
                let s = &batch[i as usize];
                nested(out, points, |out| {
                    fixed64(out, 3, (s.ts_ms.max(0) as u64).saturating_mul(1_000_000));
                    double(out, 4, s.value);
                    for (k, v) in t.get(s.series).labels.iter() {
                        attribute(out, 7, k, v);
                    }
                });
            }
            if counter {
                int(out, 2, CUMULATIVE);
                int(out, 3, 1);
            }
        });
    });
}

/// A `KeyValue` with a string `AnyValue`, as field `field`.
fn attribute(out: &mut Vec<u8>, field: u32, key: &str, value: &str) {
    nested(out, field, |out| {
        bytes(out, 1, key.as_bytes());
        nested(out, 2, |out| bytes(out, 1, value.as_bytes()));
    });
}

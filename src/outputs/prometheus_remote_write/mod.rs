//! `prometheus_remote_write`: batches to a Prometheus remote-write 1.0 receiver
//! (Prometheus's `--web.enable-remote-write-receiver`, VictoriaMetrics, Mimir, Thanos…):
//! a snappy-compressed `WriteRequest` per batch over HTTP POST (`common::post`), through
//! the ring and the outage buffer like the Redis output.
//!
//! Names as the `prometheus` endpoint serves them: a counter gets `_total`, the agent's
//! `_rate` series are left out (the receiver's users compute rates), labels are the
//! series' own with `host`.

#[cfg(test)]
mod tests;
mod wire;

use crate::common::post::{usable_header, Poster, Url};
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
# Pushes batches to a Prometheus remote-write receiver (Prometheus with
# --web.enable-remote-write-receiver, VictoriaMetrics, Mimir…), buffered through outages.
- prometheus_remote_write:
    url: http://prometheus.lan:9090/api/v1/write
    # username: agent               # basic authentication, with password
    # password: secret:prometheus/password
    # bearer_token: secret:prometheus/token   # instead of username/password
    # headers: {X-Scope-OrgID: home}
    # timeout: 10s
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct Config {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub bearer_token: Option<Secret>,
    /// Values are secrets (`secret:NAME` allowed; `check` prints `***`): they often carry
    /// credentials.
    pub headers: BTreeMap<String, Secret>,
    /// For an `https://` URL: `ssl_ca_certs`, `ssl_certfile`/`ssl_keyfile`,
    /// `ssl_insecure_skip_verify`, written flat among these.
    #[serde(skip)]
    pub tls: TlsKeys,
    /// For one request: connect, TLS, sending the batch and the answer.
    #[serde(deserialize_with = "range::timeout")]
    pub timeout: Dur,
    /// Also send the agent's `_rate` series.
    pub export_rates: bool,
}

with_shared!(Config, tls: TlsKeys, before "timeout");

impl Default for Config {
    fn default() -> Self {
        Config {
            url: "http://localhost:9090/api/v1/write".into(),
            username: None,
            password: None,
            bearer_token: None,
            headers: BTreeMap::new(),
            tls: TlsKeys::default(),
            timeout: Dur(Duration::from_secs(10)),
            export_rates: false,
        }
    }
}

pub fn build(cfg: &Config, ctx: &OutputCtx) -> Result<RemoteWrite, BuildError> {
    let url = Url::parse(&cfg.url).map_err(|e| BuildError::at("url", e))?;
    check_options(url.tls || cfg.tls.ssl, &cfg.tls.files(), "an https:// url")
        .map_err(|e| BuildError::at("url", e))?;
    if cfg.tls.ssl && !url.tls {
        return Err(BuildError::at("ssl", "TLS comes with an https:// url; write that instead"));
    }
    let mut headers = vec![
        ("Content-Encoding".to_string(), "snappy".to_string()),
        ("Content-Type".to_string(), "application/x-protobuf".to_string()),
        ("X-Prometheus-Remote-Write-Version".to_string(), "0.1.0".to_string()),
        ("User-Agent".to_string(), concat!("rtcollector/", env!("CARGO_PKG_VERSION")).to_string()),
    ];
    match (&cfg.username, &cfg.password, &cfg.bearer_token) {
        (Some(u), Some(p), None) => headers.push((
            "Authorization".into(),
            format!("Basic {}", crate::common::base64::encode(format!("{u}:{}", p.expose()).as_bytes())),
        )),
        (None, None, Some(t)) => headers.push(("Authorization".into(), format!("Bearer {}", t.expose()))),
        (None, None, None) => {}
        (_, _, Some(_)) => {
            return Err(BuildError::at("bearer_token", "either `bearer_token` or `username`/`password`, not both"))
        }
        _ => return Err(BuildError::at("password", "basic authentication needs both `username` and `password`")),
    }
    for (k, v) in &cfg.headers {
        if !usable_header(k, v.expose()) {
            return Err(BuildError::at("headers", format!("`{k}` is not a usable header")));
        }
        headers.push((k.clone(), v.expose().to_string()));
    }
    let poster = Poster::for_url(url, &cfg.tls, &format!("output {}", ctx.key), cfg.timeout.0)
        .map_err(|e| BuildError::at("url", e))?;
    Ok(RemoteWrite {
        name: ctx.key.clone(),
        poster,
        headers,
        rates: cfg.export_rates,
        order: Vec::new(),
        proto: Vec::new(),
        compressed: Vec::new(),
        table: Vec::new(),
    })
}

pub struct RemoteWrite {
    name: String,
    poster: Poster,
    headers: Vec<(String, String)>,
    rates: bool,
    /// The batch's indices by series and time.
    order: Vec<u32>,
    proto: Vec<u8>,
    compressed: Vec<u8>,
    table: Vec<u32>,
}

impl Output for RemoteWrite {
    fn write<'a>(&'a mut self, batch: &'a [Sample], series: SeriesView<'a>) -> WriteFuture<'a> {
        Box::pin(self.write_batch(batch, series))
    }
}

impl RemoteWrite {
    async fn write_batch(&mut self, batch: &[Sample], view: SeriesView<'_>) -> Result<WriteReport, OutputError> {
        let sent = view.with(|t| self.encode(batch, t));
        if sent == 0 {
            return Ok(WriteReport::default());
        }
        wire::snappy(&self.proto, &mut self.compressed, &mut self.table);
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let at = self.poster.url().authority();
        let r = self
            .poster
            .post(&headers, &self.compressed)
            .await
            .map_err(OutputError::Retry)?;
        match r.status {
            200..=299 => Ok(WriteReport {
                written: sent,
                rejected: 0,
            }),
            408 | 429 | 500..=599 => Err(OutputError::Retry(format!("{at} answered {}: {}", r.status, r.body))),
            // A wrong path, or a Prometheus without --web.enable-remote-write-receiver: a
            // fix in the config or the receiver, which must not cost the data meanwhile.
            404 => Err(OutputError::Retry(format!(
                "{at} has no remote-write receiver at {} (404): check `url`, and that Prometheus runs with --web.enable-remote-write-receiver",
                self.poster.url().path
            ))),
            401 | 403 => Err(OutputError::Retry(format!(
                "{at} refused the login ({}): check username/password or bearer_token: {}",
                r.status, r.body
            ))),
            s => {
                log::debug!("output {}: {at} answered {s}: {}", self.name, r.body);
                Err(OutputError::Reject(format!("{at} refused the batch ({s}): {}", r.body)))
            }
        }
    }

    /// Encodes the batch's samples as a `WriteRequest` in `self.proto`: one `TimeSeries` per
    /// series, its samples in time order. Returns how many samples it holds.
    fn encode(&mut self, batch: &[Sample], t: &SeriesTable) -> u64 {
        self.order.clear();
        self.order.extend((0..batch.len() as u32).filter(|&i| {
            match t.kind(batch[i as usize].series) {
                None => false,
                Some(SeriesKind::Rate) => self.rates,
                Some(_) => true,
            }
        }));
        self.order
            .sort_unstable_by_key(|&i| (batch[i as usize].series, batch[i as usize].ts_ms));
        self.proto.clear();
        let mut at = 0;
        while at < self.order.len() {
            let id = batch[self.order[at] as usize].series;
            let end = at + self.order[at..].iter().take_while(|&&i| batch[i as usize].series == id).count();
            let run = &self.order[at..end];
            let kind = t.kind(id).unwrap_or(SeriesKind::Untyped);
            let s = t.get(id);
            crate::common::protobuf::nested(&mut self.proto, 1, |out| {
                write_labels(out, &s.name, kind == SeriesKind::Counter, &s.labels);
                for &i in run {
                    let sample = &batch[i as usize];
                    wire::sample(out, sample.value, sample.ts_ms);
                }
            });
            at = end;
        }
        self.order.len() as u64
    }
}

/// The series' labels with `__name__`, in the order of their names as remote write wants.
fn write_labels(out: &mut Vec<u8>, name: &str, counter: bool, labels: &[(Box<str>, Box<str>)]) {
    let base = name.strip_suffix("_total").unwrap_or(name);
    let total = counter || name.ends_with("_total");
    let mut named = false;
    for (k, v) in labels {
        if !named && &**k > "__name__" {
            wire::name_label(out, base, total);
            named = true;
        }
        wire::label(out, k.as_bytes(), v.as_bytes());
    }
    if !named {
        wire::name_label(out, base, total);
    }
}

//! `redistimeseries`: every sample goes to a RedisTimeSeries key with labels, so series can
//! be found with `TS.QUERYINDEX` / `TS.MRANGE … FILTER name=… host=…`.
//!
//! One flush is one pipeline on one connection:
//!
//! 1. for each series seen for the first time on this connection: `TS.CREATE` with
//!    RETENTION, DUPLICATE_POLICY, CHUNK_SIZE, ENCODING and LABELS ("key already exists" is
//!    fine), then `TS.ALTER` with the same policy and labels, so keys made earlier (by the old
//!    Python agent, or by a server whose default is BLOCK) get them too; then the
//!    downsampling destinations (`TS.CREATE`) and their `TS.CREATERULE`;
//! 2. the samples, in order, as `TS.MADD key ts value …` of at most [`MADD_MAX`] samples.
//!
//! Why this and not `TS.ADD key ts v RETENTION … ON_DUPLICATE … LABELS …` per sample: the
//! labels and policies travel once per series and connection instead of with every sample
//! (a sample is 3 arguments instead of 10 or more), and one `TS.MADD` is one command
//! dispatch on the server for hundreds of samples. Creation costs one extra pipeline entry
//! per series, once per connection; the reply to every command arrives in the same round
//! trip. `TS.ADD`'s ON_DUPLICATE would also only apply to that one call: the key would keep
//! the server's default policy (BLOCK on older servers) for anybody else writing to it.
//!
//! Errors: a connection, login or server-state error fails the batch with
//! [`OutputError::Retry`] (it stays queued). An error for one sample inside a `TS.MADD`
//! reply (older than retention, a key of another type) drops that sample and counts it in
//! [`WriteReport::rejected`]. A sample whose key vanished is retried once after creating
//! the key again. A `TS.MADD` refused as a whole (NOPERM for one key outside an ACL user's
//! key pattern) is resent split by series, so only that series' samples are dropped; that
//! series is then skipped for [`DENIED_FOR`], with one warning.

pub(crate) mod config;
mod keys;

pub use config::{Aggregation, Config, Downsample, DuplicatePolicy, Encoding, RedisUrl};
pub use keys::KeyFormat;

use crate::common::backoff::Backoff;
use crate::config::Millis;
use crate::core::metric::{Series, SeriesId};
use crate::core::{Output, OutputError, Sample, SeriesTable, SeriesView, WriteFuture, WriteReport};
use crate::outputs::OutputCtx;
use crate::common::redis::{Connected, Endpoint, Session};
use redis::{Pipeline, ServerError, Value};
use std::time::{Duration, Instant};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Writes every sample to RedisTimeSeries (Redis Stack, or Redis 8), one key per series
# with labels (name, host and the sample's own) for TS.MRANGE/TS.QUERYINDEX filters.
- redistimeseries:
    host: localhost
    port: 6379
    # db: 0
    # username: metrics          # an ACL user (Redis 6+), with password
    # password: secret:redis/password
    # url: rediss://metrics:secret@redis.lan:6380/0   # instead of the keys above
    # ssl: true
    # ssl_ca_certs: /etc/rtcollector/redis-ca.pem
    # ssl_certfile: /etc/rtcollector/client.pem
    # ssl_keyfile: /etc/rtcollector/client.key
    # connect_timeout: 5s
    # write_timeout: 10s
    # key_format: \"{name}:{host}{:values}\"   # \"{name}{_values}\" = rtcollector's old keys
    retention: 30d
    # duplicate_policy: last
    # chunk_size: 4KiB
    # encoding: compressed
    # labels: {site: home}
    # downsample:
    #   - {every: 5m, aggregation: avg, retention: 1y}
    #   - {every: 1h, aggregation: max, retention: 5y, metrics: [\"cpu_*\", \"mem_*\"]}
";

/// Most samples in one `TS.MADD`: bounds the size of a command (and of its reply).
pub const MADD_MAX: usize = 500;

/// How long a series refused with NOPERM is skipped before it is tried again.
pub const DENIED_FOR: Duration = Duration::from_secs(300);

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A downsampling rule, ready to apply.
#[derive(Debug)]
struct Rule {
    every_ms: u64,
    aggregation: Aggregation,
    /// `:avg_5m`
    suffix: String,
    /// `5m`
    bucket: String,
    retention: Option<u64>,
    metrics: Vec<String>,
    exclude: Vec<String>,
}

impl Rule {
    fn applies_to(&self, name: &str) -> bool {
        (self.metrics.is_empty() || self.metrics.iter().any(|p| keys::glob_match(p, name)))
            && !self.exclude.iter().any(|p| keys::glob_match(p, name))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Created {
    /// Not created on this connection yet.
    No,
    /// TS.CREATE is in the pipeline being sent.
    Pending,
    Yes,
}

struct SeriesState {
    /// The series slot's generation this state was made for (see `SeriesTable::generation`).
    generation: u32,
    key: Box<str>,
    created: Created,
    /// NOPERM: skipped until then.
    denied_until: Option<Instant>,
    /// A creation problem was logged once already.
    warned: bool,
}

/// What the reply at the same position in the pipeline answers.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Create(SeriesId),
    Alter(SeriesId),
    /// TS.CREATE of a downsampling destination, or its TS.CREATERULE.
    Rule(SeriesId),
    /// TS.MADD of the samples `order[start..end]`.
    Madd(u32, u32),
}

pub struct RedisTimeSeries {
    name: String,
    session: Session,
    key_format: KeyFormat,
    retention: Option<u64>,
    policy: DuplicatePolicy,
    chunk_size: Option<u64>,
    encoding: Option<Encoding>,
    labels: Vec<(String, String)>,
    rules: Vec<Rule>,
    /// A write is between planning and booking its replies.
    in_flight: bool,
    /// Indexed by [`SeriesId`]; the key is built once per series.
    series: Vec<Option<SeriesState>>,
    pipe: Pipeline,
    slots: Vec<Slot>,
    /// Batch indices in the order their samples were put into TS.MADD commands.
    order: Vec<u32>,
    retry: Vec<u32>,
}

/// Builds the output; does not connect (`rtcollector check` must work without Redis), but
/// reads the TLS files so a bad path is a config error.
pub fn build(cfg: &Config, ctx: &OutputCtx) -> Result<RedisTimeSeries, String> {
    let target = cfg.target()?;
    cfg.validate_series()?;
    let key_format = KeyFormat::parse(&cfg.key_format)?;
    let endpoint = Endpoint::new(&cfg.conn_options("redistimeseries"), target)?;
    let rules = cfg
        .downsample
        .iter()
        .map(|d| {
            let every_ms = d.every.0.as_millis() as u64;
            let bucket = Millis(every_ms).to_string();
            Rule {
                every_ms,
                aggregation: d.aggregation,
                suffix: format!(":{}_{bucket}", d.aggregation.name()),
                bucket,
                retention: d.retention.map(|r| r.0),
                metrics: d.metrics.clone(),
                exclude: d.exclude_metrics.clone(),
            }
        })
        .collect();
    Ok(RedisTimeSeries {
        name: ctx.key.clone(),
        session: Session::new(
            endpoint,
            format!("output {}", ctx.key),
            Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
        ),
        key_format,
        retention: cfg.retention.map(|r| r.0),
        policy: cfg.duplicate_policy,
        chunk_size: cfg.chunk_size.map(|c| c.0),
        encoding: cfg.encoding,
        labels: cfg
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        rules,
        in_flight: false,
        series: Vec::new(),
        pipe: Pipeline::with_capacity(64),
        slots: Vec::new(),
        order: Vec::new(),
        retry: Vec::new(),
    })
}

impl Output for RedisTimeSeries {
    fn write<'a>(&'a mut self, batch: &'a [Sample], series: SeriesView<'a>) -> WriteFuture<'a> {
        Box::pin(self.write_batch(batch, series))
    }
}

impl RedisTimeSeries {
    /// The key samples of `series` go to (built on first use and cached).
    pub fn key_of(&mut self, id: SeriesId, table: &SeriesTable) -> &str {
        &self.state(id, table).key
    }

    async fn write_batch(
        &mut self,
        batch: &[Sample],
        view: SeriesView<'_>,
    ) -> Result<WriteReport, OutputError> {
        if self.in_flight {
            // The previous write was cancelled halfway (a stop's flush budget ran out): what
            // it created and what the connection still owes us are unknown. Start afresh.
            self.drop_connection();
        }
        self.retry.clear();
        self.ensure_connected().await.map_err(OutputError::Retry)?;
        self.in_flight = true;
        let result = self.write_planned(batch, &view).await;
        self.in_flight = false;
        result
    }

    async fn write_planned(
        &mut self,
        batch: &[Sample],
        view: &SeriesView<'_>,
    ) -> Result<WriteReport, OutputError> {
        let mut report = WriteReport::default();
        view.with(|t| self.plan(batch, None, t, &mut report));
        self.round(batch, true, &mut report).await?;
        if !self.retry.is_empty() {
            let retry = std::mem::take(&mut self.retry);
            view.with(|t| self.plan(batch, Some(&retry), t, &mut report));
            self.round(batch, false, &mut report).await?;
            self.retry = retry;
            self.retry.clear();
        }
        Ok(report)
    }

    /// Connects unless connected (see [`Session::ensure`]); a new connection starts with
    /// nothing created on it.
    async fn ensure_connected(&mut self) -> Result<(), String> {
        let connected = self.session.ensure().await?;
        if connected == Connected::Kept {
            return Ok(());
        }
        self.forget_created();
        let target = &self.session.endpoint().target;
        let tls = if target.tls { " (TLS)" } else { "" };
        if connected == Connected::First {
            log::info!("output {}: connected to {}{tls}", self.name, target.addr());
        } else {
            log::debug!("output {}: reconnected to {}{tls}", self.name, target.addr());
        }
        Ok(())
    }

    /// Forgets the connection and what was created on it: the server may have restarted
    /// without its data, so series are created again on the next connection.
    fn drop_connection(&mut self) {
        self.session.disconnect();
        self.forget_created();
    }

    fn forget_created(&mut self) {
        for s in self.series.iter_mut().flatten() {
            s.created = Created::No;
        }
    }

    fn state(&mut self, id: SeriesId, table: &SeriesTable) -> &mut SeriesState {
        let i = id as usize;
        if i >= self.series.len() {
            self.series.resize_with(i + 1, || None);
        }
        let generation = table.generation(id);
        if self.series[i]
            .as_ref()
            .is_some_and(|st| st.generation != generation)
        {
            // The slot went to another series: this state is an earlier series'.
            self.series[i] = None;
        }
        let key_format = &self.key_format;
        self.series[i].get_or_insert_with(|| {
            let mut key = String::new();
            key_format.render(table.get(id), &mut key);
            SeriesState {
                generation,
                key: key.into(),
                created: Created::No,
                denied_until: None,
                warned: false,
            }
        })
    }

    /// Fills `self.pipe`: creation commands for new series, then the samples as TS.MADD.
    /// `only` limits it to those batch indices and sends one TS.MADD per series, so that a
    /// refusal names its series.
    fn plan(
        &mut self,
        batch: &[Sample],
        only: Option<&[u32]>,
        table: &SeriesTable,
        report: &mut WriteReport,
    ) {
        self.pipe.clear();
        self.slots.clear();
        self.order.clear();
        let now = Instant::now();
        let all = 0..batch.len() as u32;
        let indices: &mut dyn Iterator<Item = u32> = match only {
            Some(list) => &mut list.iter().copied(),
            None => &mut all.into_iter(),
        };
        for i in indices {
            let s = batch[i as usize];
            let idx = s.series as usize;
            self.state(s.series, table);
            let name = self.name.as_str();
            let st = self.series[idx].as_mut().expect("state exists");
            if let Some(until) = st.denied_until {
                if now < until {
                    report.rejected += 1;
                    log::debug!(
                        "output {name}: dropped a sample of {}: no permission",
                        st.key
                    );
                    continue;
                }
                st.denied_until = None;
            }
            if !s.value.is_finite() {
                report.rejected += 1;
                log::debug!(
                    "output {name}: dropped {} at {} of {}: RedisTimeSeries stores no NaN or infinity",
                    s.value,
                    s.ts_ms,
                    st.key
                );
                continue;
            }
            if st.created == Created::No {
                st.created = Created::Pending;
                self.push_create(s.series, table);
            }
            self.order.push(i);
        }
        if only.is_some() {
            // Stable: samples of one series keep their order.
            self.order.sort_by_key(|&i| batch[i as usize].series);
        }
        let mut start = 0;
        while start < self.order.len() {
            let mut end = (start + MADD_MAX).min(self.order.len());
            if only.is_some() {
                let first = batch[self.order[start] as usize].series;
                end = start
                    + self.order[start..end]
                        .iter()
                        .take_while(|&&i| batch[i as usize].series == first)
                        .count();
            }
            self.pipe.cmd("TS.MADD");
            for &i in &self.order[start..end] {
                let s = batch[i as usize];
                let key = &self.series[s.series as usize]
                    .as_ref()
                    .expect("planned")
                    .key;
                self.pipe.arg(&**key).arg(s.ts_ms).arg(s.value);
            }
            self.slots.push(Slot::Madd(start as u32, end as u32));
            start = end;
        }
    }

    fn push_create(&mut self, id: SeriesId, table: &SeriesTable) {
        let series = table.get(id);
        let key = &self.series[id as usize].as_ref().expect("state exists").key;
        let labels = series_labels(&self.labels, series);
        let pipe = &mut self.pipe;
        pipe.cmd("TS.CREATE").arg(&**key);
        if let Some(r) = self.retention {
            pipe.arg("RETENTION").arg(r);
        }
        if let Some(e) = self.encoding {
            pipe.arg("ENCODING").arg(e.as_arg());
        }
        if let Some(c) = self.chunk_size {
            pipe.arg("CHUNK_SIZE").arg(c);
        }
        pipe.arg("DUPLICATE_POLICY").arg(self.policy.as_arg());
        push_labels(pipe, &labels, &[]);
        self.slots.push(Slot::Create(id));

        pipe.cmd("TS.ALTER").arg(&**key);
        if let Some(r) = self.retention {
            pipe.arg("RETENTION").arg(r);
        }
        if let Some(c) = self.chunk_size {
            pipe.arg("CHUNK_SIZE").arg(c);
        }
        pipe.arg("DUPLICATE_POLICY").arg(self.policy.as_arg());
        push_labels(pipe, &labels, &[]);
        self.slots.push(Slot::Alter(id));

        for rule in self.rules.iter().filter(|r| r.applies_to(&series.name)) {
            let dest = format!("{key}{}", rule.suffix);
            pipe.cmd("TS.CREATE").arg(&dest);
            if let Some(r) = rule.retention {
                pipe.arg("RETENTION").arg(r);
            }
            if let Some(e) = self.encoding {
                pipe.arg("ENCODING").arg(e.as_arg());
            }
            if let Some(c) = self.chunk_size {
                pipe.arg("CHUNK_SIZE").arg(c);
            }
            pipe.arg("DUPLICATE_POLICY").arg("LAST");
            push_labels(
                pipe,
                &labels,
                &[
                    ("aggregation", rule.aggregation.name()),
                    ("bucket", &rule.bucket),
                ],
            );
            self.slots.push(Slot::Rule(id));
            pipe.cmd("TS.CREATERULE")
                .arg(&**key)
                .arg(&dest)
                .arg("AGGREGATION")
                .arg(rule.aggregation.name())
                .arg(rule.every_ms);
            self.slots.push(Slot::Rule(id));
        }
    }

    /// Sends the planned pipeline and books its replies.
    async fn round(
        &mut self,
        batch: &[Sample],
        first: bool,
        report: &mut WriteReport,
    ) -> Result<(), OutputError> {
        if self.pipe.is_empty() {
            return Ok(());
        }
        let values = match self.session.send(&self.pipe).await {
            Ok(v) => v,
            Err(e) => {
                self.drop_connection();
                return Err(OutputError::Retry(e));
            }
        };
        if let Err(e) = self.book(batch, values, first, report) {
            // Whatever was created may be half done: start over on a fresh connection.
            self.drop_connection();
            return Err(OutputError::Retry(e));
        }
        Ok(())
    }

    /// Books the replies of the pipeline just sent. An error is for the whole batch.
    fn book(
        &mut self,
        batch: &[Sample],
        values: Vec<Value>,
        first: bool,
        report: &mut WriteReport,
    ) -> Result<(), String> {
        let addr = self.session.endpoint().target.addr();
        if values.len() != self.slots.len() {
            return Err(format!(
                "{addr} sent {} replies for {} commands",
                values.len(),
                self.slots.len()
            ));
        }
        let slots = std::mem::take(&mut self.slots);
        let result = (|| {
            for (slot, value) in slots.iter().zip(values) {
                match *slot {
                    Slot::Create(id) => {
                        let created = match &value {
                            Value::ServerError(e) if !already(e) => {
                                self.refused(id, e, "cannot create", &addr)?;
                                false
                            }
                            _ => true,
                        };
                        if let Some(st) = self.series[id as usize].as_mut() {
                            st.created = if created { Created::Yes } else { Created::No };
                        }
                    }
                    Slot::Alter(id) | Slot::Rule(id) => {
                        if let Value::ServerError(e) = &value {
                            if !already(e) {
                                self.refused(id, e, "cannot set up", &addr)?;
                            }
                        }
                    }
                    Slot::Madd(start, end) => self.book_madd(
                        batch,
                        start as usize,
                        end as usize,
                        value,
                        first,
                        report,
                        &addr,
                    )?,
                }
            }
            Ok(())
        })();
        self.slots = slots;
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn book_madd(
        &mut self,
        batch: &[Sample],
        start: usize,
        end: usize,
        value: Value,
        first: bool,
        report: &mut WriteReport,
        addr: &str,
    ) -> Result<(), String> {
        let items = match value {
            Value::Array(items) => items,
            Value::ServerError(e) => {
                if let Some(msg) = batch_error(&e, addr) {
                    return Err(msg);
                }
                if first {
                    // Refused as a whole: resend split by series to find out whose it is.
                    self.retry.extend_from_slice(&self.order[start..end]);
                } else {
                    for k in start..end {
                        let s = batch[self.order[k] as usize];
                        self.refused(s.series, &e, "cannot write", addr)?;
                        self.reject(s, &show(&e), report);
                    }
                }
                return Ok(());
            }
            other => {
                return Err(format!("{addr} answered TS.MADD with {other:?}"));
            }
        };
        let count = end - start;
        for (k, item) in items.iter().enumerate().take(count) {
            let i = self.order[start + k];
            let s = batch[i as usize];
            match item {
                Value::ServerError(e) => {
                    if let Some(msg) = batch_error(e, addr) {
                        return Err(msg);
                    }
                    let st = self.series[s.series as usize].as_mut().expect("planned");
                    if first && not_a_series(e) && st.created == Created::Yes {
                        // Deleted since we created it: create again and resend, once.
                        st.created = Created::No;
                        self.retry.push(i);
                    } else {
                        self.reject(s, &show(e), report);
                    }
                }
                _ => report.written += 1,
            }
        }
        if items.len() < count {
            for k in start + items.len()..end {
                let s = batch[self.order[k] as usize];
                self.reject(s, "no reply for this sample", report);
            }
        }
        Ok(())
    }

    fn reject(&self, s: Sample, why: &str, report: &mut WriteReport) {
        report.rejected += 1;
        let key = self.series[s.series as usize]
            .as_ref()
            .map_or("?", |st| &st.key);
        log::debug!(
            "output {}: dropped sample {} at {} of {key}: {why}",
            self.name,
            s.value,
            s.ts_ms
        );
    }

    /// A command for one series was refused. Errors that concern the whole server fail
    /// the batch; NOPERM skips the series for a while; anything else is logged once.
    fn refused(
        &mut self,
        id: SeriesId,
        e: &ServerError,
        what: &str,
        addr: &str,
    ) -> Result<(), String> {
        if let Some(msg) = batch_error(e, addr) {
            return Err(msg);
        }
        let name = self.name.clone();
        let user = self
            .session
            .endpoint()
            .target
            .username
            .clone()
            .unwrap_or_else(|| "default".into());
        let Some(st) = self.series[id as usize].as_mut() else {
            return Ok(());
        };
        if e.code() == "NOPERM" {
            if st.denied_until.is_none() {
                log::warn!(
                    "output {name}: no permission to write `{}` as ACL user `{user}` ({}); its samples are dropped, next try in {}s: allow the key in the user's key pattern or change key_format",
                    st.key,
                    show(e),
                    DENIED_FOR.as_secs()
                );
            }
            st.denied_until = Some(Instant::now() + DENIED_FOR);
        } else if !st.warned {
            st.warned = true;
            log::warn!("output {name}: {what} series `{}`: {}", st.key, show(e));
        } else {
            log::debug!("output {name}: {what} series `{}`: {}", st.key, show(e));
        }
        Ok(())
    }
}

/// The labels of a series: the output's `labels`, the sample's own (host included), and
/// `name`; later ones win. Empty values are left out (RedisTimeSeries refuses them).
fn series_labels<'a>(fixed: &'a [(String, String)], series: &'a Series) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(fixed.len() + series.labels.len() + 1);
    for (k, v) in fixed {
        if series.label(k).is_none() && k != "name" {
            out.push((k, v));
        }
    }
    for (k, v) in series.labels.iter() {
        if &**k != "name" && !v.is_empty() {
            out.push((k, v));
        }
    }
    out.push(("name", &series.name));
    out
}

fn push_labels(pipe: &mut Pipeline, labels: &[(&str, &str)], extra: &[(&str, &str)]) {
    pipe.arg("LABELS");
    for (k, v) in labels.iter().chain(extra) {
        pipe.arg(*k).arg(*v);
    }
}

/// The error as Redis sent it: `NOPERM No permissions to access a key`.
fn show(e: &ServerError) -> String {
    match e.details() {
        Some(d) => format!("{} {d}", e.code()),
        None => e.code().to_string(),
    }
}

/// "key already exists", "the destination key already has a src rule".
fn already(e: &ServerError) -> bool {
    e.details().is_some_and(|d| d.contains("already"))
}

/// TS.MADD on a key that does not exist (or holds something else).
fn not_a_series(e: &ServerError) -> bool {
    e.details()
        .is_some_and(|d| d.contains("not a TSDB key") || d.contains("does not exist"))
}

/// Errors that concern the server or the login, not one series: the batch stays queued.
fn batch_error(e: &ServerError, addr: &str) -> Option<String> {
    let detail = e.details().unwrap_or("");
    match e.code() {
        "NOAUTH" => Some(format!(
            "{addr} wants a password (NOAUTH): set `password` (and `username` for an ACL user)"
        )),
        "WRONGPASS" => Some(format!(
            "authentication failed at {addr} (WRONGPASS): check username and password"
        )),
        "ERR" if detail.starts_with("unknown command") && detail.to_ascii_uppercase().contains("'TS.") => {
            Some(format!(
                "{addr} has no RedisTimeSeries module ({detail}): this output needs Redis Stack, Redis 8 or later, or redis-server with redistimeseries.so loaded"
            ))
        }
        "LOADING" | "BUSY" | "MASTERDOWN" | "READONLY" | "TRYAGAIN" | "CLUSTERDOWN" | "MOVED"
        | "ASK" | "MISCONF" | "OOM" => Some(format!("{addr} cannot take writes now: {}", show(e))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(yaml: &str) -> RedisTimeSeries {
        let cfg: Config = yaml_serde::from_str(yaml).unwrap();
        build(
            &cfg,
            &OutputCtx {
                hostname: "pi4".into(),
                key: "redistimeseries".into(),
            },
        )
        .unwrap()
    }

    fn packed(o: &RedisTimeSeries) -> String {
        String::from_utf8_lossy(&o.pipe.get_packed_pipeline())
            .split("\r\n")
            .filter(|l| !l.starts_with('*') && !l.starts_with('$'))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A series slot given to another series after the first was forgotten gets its own
    /// key, and is created again.
    #[test]
    fn a_reused_series_slot_gets_its_own_key() {
        let mut o = output("");
        let mut t = SeriesTable::new("pi4", 10);
        t.set_forget_after(Some(Duration::from_secs(1)));
        t.begin_collection(0);
        let old = t.intern("old_metric", "", &[]).unwrap();
        t.end_collection();
        assert_eq!(o.key_of(old, &t), "old_metric:pi4");
        o.state(old, &t).created = Created::Yes;
        t.begin_collection(5_000);
        t.end_collection();
        t.sweep(|_| {}, |_| {});
        t.begin_collection(5_000);
        let new = t.intern("new_metric", "", &[]).unwrap();
        t.end_collection();
        assert_eq!(new, old, "the slot is reused");
        assert_eq!(o.key_of(new, &t), "new_metric:pi4");
        assert_eq!(o.state(new, &t).created, Created::No);
    }

    #[test]
    fn first_sight_creates_then_madd_and_keys_are_cached() {
        let mut o = output("retention: 7d\nlabels: {site: home}\n");
        let mut t = SeriesTable::new("pi4", 10);
        let a = t.intern("net_rx_bytes", "", &[("iface", "eth0")]).unwrap();
        let b = t.intern("mem_used", "", &[]).unwrap();
        let batch = [
            Sample {
                series: a,
                ts_ms: 1000,
                value: 1.5,
            },
            Sample {
                series: b,
                ts_ms: 1000,
                value: 2.0,
            },
            Sample {
                series: a,
                ts_ms: 2000,
                value: f64::NAN,
            },
        ];
        let mut report = WriteReport::default();
        o.plan(&batch, None, &t, &mut report);
        assert_eq!(report.rejected, 1, "NaN is dropped before sending");
        assert_eq!(
            packed(&o),
            "TS.CREATE net_rx_bytes:pi4:eth0 RETENTION 604800000 DUPLICATE_POLICY LAST LABELS site home host pi4 iface eth0 name net_rx_bytes \
             TS.ALTER net_rx_bytes:pi4:eth0 RETENTION 604800000 DUPLICATE_POLICY LAST LABELS site home host pi4 iface eth0 name net_rx_bytes \
             TS.CREATE mem_used:pi4 RETENTION 604800000 DUPLICATE_POLICY LAST LABELS site home host pi4 name mem_used \
             TS.ALTER mem_used:pi4 RETENTION 604800000 DUPLICATE_POLICY LAST LABELS site home host pi4 name mem_used \
             TS.MADD net_rx_bytes:pi4:eth0 1000 1.5 mem_used:pi4 1000 2.0 "
        );
        // Once created, only TS.MADD.
        for s in o.series.iter_mut().flatten() {
            s.created = Created::Yes;
        }
        o.plan(&batch[..2], None, &t, &mut report);
        assert_eq!(
            packed(&o),
            "TS.MADD net_rx_bytes:pi4:eth0 1000 1.5 mem_used:pi4 1000 2.0 "
        );
        assert_eq!(o.key_of(a, &t), "net_rx_bytes:pi4:eth0");
    }

    #[test]
    fn madd_is_bounded_and_retry_splits_by_series() {
        let mut o = output("{}");
        let mut t = SeriesTable::new("h", 10);
        let a = t.intern("a", "", &[]).unwrap();
        let b = t.intern("b", "", &[]).unwrap();
        let batch: Vec<Sample> = (0..(MADD_MAX as i64 + 10))
            .map(|i| Sample {
                series: if i % 2 == 0 { a } else { b },
                ts_ms: i,
                value: 0.0,
            })
            .collect();
        for id in [a, b] {
            o.state(id, &t).created = Created::Yes;
        }
        let mut r = WriteReport::default();
        o.plan(&batch, None, &t, &mut r);
        assert_eq!(o.pipe.len(), 2);
        let only: Vec<u32> = vec![3, 0, 1, 2];
        o.plan(&batch, Some(&only), &t, &mut r);
        assert_eq!(
            packed(&o),
            "TS.MADD a:h 0 0.0 a:h 2 0.0 TS.MADD b:h 3 0.0 b:h 1 0.0 "
        );
    }

    #[test]
    fn downsampling_creates_destinations_and_rules() {
        let mut o = output(
            "downsample:\n  - {every: 5m, aggregation: avg, retention: 2y}\n  - {every: 1h, aggregation: max, metrics: ['cpu_*']}\n",
        );
        let mut t = SeriesTable::new("h", 10);
        let m = t.intern("mem_used", "", &[]).unwrap();
        let mut r = WriteReport::default();
        o.plan(
            &[Sample {
                series: m,
                ts_ms: 1,
                value: 1.0,
            }],
            None,
            &t,
            &mut r,
        );
        let p = packed(&o);
        assert!(p.contains("TS.CREATE mem_used:h:avg_5m RETENTION 63072000000 DUPLICATE_POLICY LAST LABELS host h name mem_used aggregation avg bucket 5m"), "{p}");
        assert!(
            p.contains("TS.CREATERULE mem_used:h mem_used:h:avg_5m AGGREGATION avg 300000"),
            "{p}"
        );
        assert!(!p.contains("max_1h"), "{p}");
    }

    #[test]
    fn build_does_not_connect() {
        // Nothing listens on port 1; build must still succeed.
        let _ = output("host: 127.0.0.1\nport: 1\n");
    }
}

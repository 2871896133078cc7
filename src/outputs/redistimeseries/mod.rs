//! `redistimeseries`: every sample goes to a RedisTimeSeries key with labels, so series can
//! be found with `TS.QUERYINDEX` / `TS.MRANGE … FILTER name=… host=…`.
//!
//! One flush is one pipeline on one connection (in a cluster, one per master the batch's
//! keys live on: `route.rs`):
//!
//! 1. for each series seen for the first time on this connection: `TS.CREATE` with
//!    RETENTION, DUPLICATE_POLICY, CHUNK_SIZE, ENCODING and LABELS ("key already exists" is
//!    fine), then `TS.ALTER` with the same policy and labels, so keys made earlier (by the
//!    Python rtcollector, or by a server whose default is BLOCK) get them too; then the
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
//!
//! Files: the options (`config.rs`), key templates (`keys.rs`), the pipeline of a write
//! (`plan.rs`, no I/O), its replies booked and server errors classified (`reply.rs`); the
//! connection and its reconnects are `common::redis::Session`, this file the write itself.

pub(crate) mod config;
mod keys;
mod plan;
mod reply;
mod route;

pub use config::{Aggregation, Config, Downsample, DuplicatePolicy, Encoding, RedisUrl};
pub use keys::KeyFormat;

use crate::common::redis::{Connected, Endpoint};
use crate::config::{BuildError, Millis};
use crate::core::metric::SeriesId;
use crate::core::{Output, OutputError, Sample, SeriesTable, SeriesView, WriteFuture, WriteReport};
use crate::outputs::OutputCtx;
use plan::Split;
use redis::Pipeline;
use route::Route;
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
    # socks5_proxy: socks5h://user:secret@127.0.0.1:1080   # or socks4_proxy: socks4://host:1080
    # connect_timeout: 5s
    # write_timeout: 10s
    # key_format: \"{name}:{host}{:values}\"   # \"{name}{_values}\" = the Python rtcollector's old keys
    # cluster: true                # a Redis Cluster; keys become name:{host}:values
    # nodes: [\"redis1:7000\", \"redis2:7000\"]   # seed nodes (default: host and port)
    # wait_replicas: 1             # cluster: a write counts once a replica has it
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
    /// The key's hash slot in a cluster (0 without the `cluster` feature).
    slot: u16,
    created: Created,
    /// NOPERM: skipped until then.
    denied_until: Option<Instant>,
    /// A creation problem was logged once already.
    warned: bool,
}

/// A command in the pipeline: what the reply at the same position answers.
#[derive(Debug, Clone, Copy)]
enum Pipelined {
    Create(SeriesId),
    Alter(SeriesId),
    /// TS.CREATE of a downsampling destination, or its TS.CREATERULE.
    Rule(SeriesId),
    /// TS.MADD of the samples `order[start..end]`.
    Madd(u32, u32),
    /// ASKING before a command sent to the node a migrating slot's ASK named.
    Asking,
    /// WAIT for the replicas after the writes (cluster mode).
    #[cfg(feature = "cluster")]
    Wait(u8),
}

pub struct RedisTimeSeries {
    name: String,
    route: Route,
    /// The ACL user, for messages.
    username: String,
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
    pipelined: Vec<Pipelined>,
    /// Batch indices in the order their samples were put into TS.MADD commands.
    order: Vec<u32>,
    retry: Vec<u32>,
    /// What the round being planned does beyond the samples: ASKING before each command,
    /// WAIT for that many replicas at the end.
    asking: bool,
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    wait: u8,
    /// `wait_replicas` (cluster mode).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    wait_replicas: u8,
    /// Writes that fewer replicas acknowledged than WAIT asked for.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    unreplicated: u64,
    /// Cluster mode: the samples of a round, each with the node an ASK named (or
    /// `NO_OWNER`), and per node the samples that go to it (see `route.rs`).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pending: Vec<(u32, u16)>,
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    groups: Vec<Vec<u32>>,
    /// Cluster mode: samples a MOVED or ASK sent elsewhere (batch index, index into
    /// `redirects`).
    redirected: Vec<(u32, u32)>,
    /// The node the round being booked went to.
    node: usize,
    /// Cluster mode: the samples of the last write that a node could not take (it is down,
    /// or no node serves their slot yet), and why; see [`Output::deferred`].
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    deferred: Vec<u32>,
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    deferred_why: String,
    #[cfg(feature = "cluster")]
    redirects: Vec<crate::common::redis::cluster::Redirect>,
}

/// Builds the output; does not connect (`rtcollector check` must work without Redis), but
/// reads the TLS files so a bad path is a config error.
pub fn build(cfg: &Config, ctx: &OutputCtx) -> Result<RedisTimeSeries, BuildError> {
    let target = cfg.target()?;
    cfg.validate_series()?;
    let seeds = cfg.seeds(&target)?;
    let key_format = KeyFormat::parse(cfg.key_format())?;
    if cfg!(feature = "cluster")
        && cfg.cluster
        && !cfg.downsample.is_empty()
        && !key_format.has_hash_tag()
    {
        return Err(BuildError::at(
            "key_format",
            format!(
                "`{}` has no hash tag, so in a cluster a key and its downsampling destinations (the key plus `:avg_5m`) land on different slots, which RedisTimeSeries refuses: tag the host as the default does (`{}`), or leave key_format out",
                cfg.key_format(),
                config::CLUSTER_KEY_FORMAT
            ),
        ));
    }
    let username = target.username.clone().unwrap_or_else(|| "default".into());
    let endpoint = Endpoint::new(&cfg.conn_options("redistimeseries"), target)?;
    let who = format!("output {}", ctx.key);
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
        route: Route::new(endpoint, seeds, who, (BACKOFF_MIN, BACKOFF_MAX)),
        username,
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
        pipelined: Vec::new(),
        order: Vec::new(),
        retry: Vec::new(),
        asking: false,
        wait: 0,
        wait_replicas: cfg.wait_replicas,
        unreplicated: 0,
        pending: Vec::new(),
        groups: Vec::new(),
        redirected: Vec::new(),
        node: 0,
        deferred: Vec::new(),
        deferred_why: String::new(),
        #[cfg(feature = "cluster")]
        redirects: Vec::new(),
    })
}

impl Output for RedisTimeSeries {
    fn write<'a>(&'a mut self, batch: &'a [Sample], series: SeriesView<'a>) -> WriteFuture<'a> {
        Box::pin(self.write_batch(batch, series))
    }

    fn deferred(&self) -> Option<crate::core::output::Deferred<'_>> {
        (!self.deferred.is_empty()).then_some(crate::core::output::Deferred {
            samples: &self.deferred,
            why: &self.deferred_why,
        })
    }

    /// In cluster mode (`internal_write_cluster_*`): nodes known, masters in the slot map,
    /// MOVED and ASK followed, slot map reads, writes fewer replicas acknowledged than
    /// `wait_replicas`.
    fn counters(&self, report: &mut dyn FnMut(&'static str, u64)) {
        #[cfg(feature = "cluster")]
        if let Route::Cluster(c) = &self.route {
            report("cluster_nodes", c.node_count() as u64);
            report("cluster_masters", c.masters() as u64);
            report("cluster_replicas", c.counters.replicas);
            report("cluster_moved", c.counters.moved);
            report("cluster_asked", c.counters.asked);
            report("cluster_slot_map_reads", c.counters.refreshes);
            report("cluster_unreplicated_writes", self.unreplicated);
        }
        let _ = report;
    }
}

impl RedisTimeSeries {
    /// In cluster mode: MOVED and ASK replies followed, slot maps read.
    #[cfg(feature = "cluster")]
    pub fn cluster_counters(&self) -> Option<crate::common::redis::cluster::ClusterCounters> {
        match &self.route {
            Route::Cluster(c) => Some(c.counters),
            Route::Single(_) => None,
        }
    }

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
            // it created and what the connections still owe us are unknown. Start afresh.
            self.route.disconnect_all();
            self.forget_created();
            self.redirected.clear();
            #[cfg(feature = "cluster")]
            self.redirects.clear();
        }
        self.in_flight = true;
        self.deferred.clear();
        let result = if self.route.is_cluster() {
            self.write_cluster(batch, &view).await
        } else {
            let mut report = WriteReport::default();
            self.write_to(0, batch, None, &view, &mut report)
                .await
                .map(|()| report)
        };
        self.in_flight = false;
        result
    }

    /// Writes the samples `only` (all when `None`) to `node`: one pipeline, then one more
    /// for the samples to resend split by series (NOPERM) or after creating their key again.
    async fn write_to(
        &mut self,
        node: usize,
        batch: &[Sample],
        only: Option<&[u32]>,
        view: &SeriesView<'_>,
        report: &mut WriteReport,
    ) -> Result<(), OutputError> {
        self.retry.clear();
        self.ensure_connected(node).await.map_err(OutputError::Retry)?;
        let split = if self.route.is_cluster() {
            Split::Slot
        } else {
            Split::Size
        };
        view.with(|t| self.plan(batch, only, split, t, report));
        self.round(node, batch, true, report).await?;
        if !self.retry.is_empty() {
            let retry = std::mem::take(&mut self.retry);
            view.with(|t| self.plan(batch, Some(&retry), Split::Series, t, report));
            self.round(node, batch, false, report).await?;
            self.retry = retry;
            self.retry.clear();
        }
        Ok(())
    }

    /// Connects to `node` unless connected (see `Session::ensure`); a new connection starts
    /// with nothing created on it.
    async fn ensure_connected(&mut self, node: usize) -> Result<(), String> {
        let connected = self.route.ensure(node).await?;
        if connected == Connected::Kept {
            return Ok(());
        }
        self.forget_created();
        let (addr, tls) = (self.route.addr(node), self.route.tls());
        let tls = if tls { " (TLS)" } else { "" };
        match connected {
            Connected::First if !self.route.is_cluster() => {
                log::info!("output {}: connected to {addr}{tls}", self.name)
            }
            Connected::First => log::debug!("output {}: connected to {addr}{tls}", self.name),
            _ => log::debug!("output {}: reconnected to {addr}{tls}", self.name),
        }
        Ok(())
    }

    /// Forgets the connection to `node` and what was created: the server may have
    /// restarted without its data, so series are created again on the next connection.
    fn drop_connection(&mut self, node: usize) {
        self.route.disconnect(node);
        self.forget_created();
    }

    /// Also lets series refused with NOPERM be tried again: the user's rights may have
    /// changed with the connection.
    fn forget_created(&mut self) {
        for s in self.series.iter_mut().flatten() {
            s.created = Created::No;
            s.denied_until = None;
        }
    }

    /// Sends the planned pipeline to `node` and books its replies.
    async fn round(
        &mut self,
        node: usize,
        batch: &[Sample],
        first: bool,
        report: &mut WriteReport,
    ) -> Result<(), OutputError> {
        if self.pipe.is_empty() {
            return Ok(());
        }
        let values = match self.route.send(node, &self.pipe).await {
            Ok(v) => v,
            Err(e) => {
                self.drop_connection(node);
                self.route.mark_stale();
                return Err(OutputError::Retry(e));
            }
        };
        let addr = self.route.addr(node);
        self.node = node;
        if let Err(e) = self.book(batch, values, first, report, &addr) {
            // Whatever was created may be half done: start over on a fresh connection.
            self.drop_connection(node);
            return Err(OutputError::Retry(e));
        }
        Ok(())
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
        o.plan(&batch, None, Split::Size, &t, &mut report);
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
        o.plan(&batch[..2], None, Split::Size, &t, &mut report);
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
        o.plan(&batch, None, Split::Size, &t, &mut r);
        assert_eq!(o.pipe.len(), 2);
        let only: Vec<u32> = vec![3, 0, 1, 2];
        o.plan(&batch, Some(&only), Split::Series, &t, &mut r);
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
            Split::Size,
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

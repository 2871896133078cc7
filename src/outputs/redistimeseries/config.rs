//! The options of the `redistimeseries` output, as written in the config, and the checks that
//! turn them into a connection target (no network access here: `check` must not need Redis).

pub use crate::common::redis::RedisUrl;
use crate::common::redis::{ConnOptions, RedisKeys, Target};
use crate::config::shared::with_shared;
use crate::config::{range, BuildError, Dur, Millis, Size};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The default key template: `net_rx_bytes:pi4:eth0`.
pub const DEFAULT_KEY_FORMAT: &str = "{name}:{host}{:values}";

/// The default in cluster mode: `net_rx_bytes:{pi4}:eth0`. The braces are a hash tag:
/// every key of one host, and its downsampling destinations, hash to the same slot.
pub const CLUSTER_KEY_FORMAT: &str = "{name}:{{{host}}}{:values}";

/// The connection keys (`host`, `url`, `ssl`…) are [`RedisKeys`], written flat among these.
#[derive(Debug, Deserialize, Serialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct Config {
    #[serde(skip)]
    pub conn: RedisKeys,
    /// How long one flush may wait for the server's replies.
    #[serde(deserialize_with = "range::timeout")]
    pub write_timeout: Dur,
    /// Default: [`DEFAULT_KEY_FORMAT`], or [`CLUSTER_KEY_FORMAT`] with `cluster: true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_format: Option<String>,
    /// A Redis Cluster: the slot map is learned from the seed nodes (`nodes`, else `url` or
    /// `host`/`port`).
    pub cluster: bool,
    /// Seed nodes of a cluster, `host:port`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// In cluster mode, the replicas a write waits for (`WAIT`) before it counts as
    /// written, so that a failover does not lose it; never more than the master has.
    pub wait_replicas: u8,
    /// Labels added to every series.
    pub labels: BTreeMap<String, String>,
    /// RETENTION of created series; none leaves the server's default (forever unless set).
    pub retention: Option<Millis>,
    pub duplicate_policy: DuplicatePolicy,
    /// CHUNK_SIZE in bytes (a multiple of 8 from 48 to 1 MiB).
    pub chunk_size: Option<Size>,
    pub encoding: Option<Encoding>,
    pub downsample: Vec<Downsample>,
}

with_shared!(Config, conn: RedisKeys);

impl Default for Config {
    fn default() -> Self {
        Config {
            conn: RedisKeys::default(),
            write_timeout: Dur(Duration::from_secs(10)),
            key_format: None,
            cluster: false,
            nodes: Vec::new(),
            wait_replicas: 1,
            labels: BTreeMap::new(),
            retention: None,
            duplicate_policy: DuplicatePolicy::Last,
            chunk_size: None,
            encoding: None,
            downsample: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DuplicatePolicy {
    Block,
    First,
    #[default]
    Last,
    Min,
    Max,
    Sum,
}

impl DuplicatePolicy {
    pub fn as_arg(self) -> &'static str {
        match self {
            DuplicatePolicy::Block => "BLOCK",
            DuplicatePolicy::First => "FIRST",
            DuplicatePolicy::Last => "LAST",
            DuplicatePolicy::Min => "MIN",
            DuplicatePolicy::Max => "MAX",
            DuplicatePolicy::Sum => "SUM",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Compressed,
    Uncompressed,
}

impl Encoding {
    pub fn as_arg(self) -> &'static str {
        match self {
            Encoding::Compressed => "COMPRESSED",
            Encoding::Uncompressed => "UNCOMPRESSED",
        }
    }
}

/// A compaction rule: `every: 5m, aggregation: avg, retention: 2y` keeps 5-minute averages
/// in `<key>:avg_5m`. `metrics` / `exclude_metrics` (name patterns with `*` and `?`) limit
/// it to some metrics, which is how one metric gets other rules than the rest.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Downsample {
    pub every: Dur,
    pub aggregation: Aggregation,
    #[serde(default)]
    pub retention: Option<Millis>,
    #[serde(default)]
    pub metrics: Vec<String>,
    #[serde(default)]
    pub exclude_metrics: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum Aggregation {
    #[serde(rename = "avg")]
    Avg,
    #[serde(rename = "sum")]
    Sum,
    #[serde(rename = "min")]
    Min,
    #[serde(rename = "max")]
    Max,
    #[serde(rename = "range")]
    Range,
    #[serde(rename = "count")]
    Count,
    #[serde(rename = "first")]
    First,
    #[serde(rename = "last")]
    Last,
    #[serde(rename = "std.p")]
    StdP,
    #[serde(rename = "std.s")]
    StdS,
    #[serde(rename = "var.p")]
    VarP,
    #[serde(rename = "var.s")]
    VarS,
    #[serde(rename = "twa")]
    Twa,
}

impl Aggregation {
    /// The name as RedisTimeSeries spells it, also used in keys and the `aggregation` label.
    pub fn name(self) -> &'static str {
        match self {
            Aggregation::Avg => "avg",
            Aggregation::Sum => "sum",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Range => "range",
            Aggregation::Count => "count",
            Aggregation::First => "first",
            Aggregation::Last => "last",
            Aggregation::StdP => "std.p",
            Aggregation::StdS => "std.s",
            Aggregation::VarP => "var.p",
            Aggregation::VarS => "var.s",
            Aggregation::Twa => "twa",
        }
    }
}

impl Config {
    /// Validates everything that can be checked without the network.
    pub fn target(&self) -> Result<Target, BuildError> {
        self.conn.target(&self.conn_options("redistimeseries"))
    }

    /// The TLS files and timeouts of this config.
    pub fn conn_options(&self, plugin: &'static str) -> ConnOptions<'_> {
        self.conn
            .conn_options(plugin, self.write_timeout.0, "write_timeout")
    }

    /// The key template in use.
    pub fn key_format(&self) -> &str {
        match &self.key_format {
            Some(f) => f,
            None if self.cluster => CLUSTER_KEY_FORMAT,
            None => DEFAULT_KEY_FORMAT,
        }
    }

    /// The seed nodes of a cluster: `nodes`, else the address of `url` or `host`/`port`.
    /// Checks the cluster options whether or not `cluster` is on.
    pub fn seeds(&self, target: &Target) -> Result<Vec<(String, u16)>, BuildError> {
        if !self.cluster {
            if !self.nodes.is_empty() {
                return Err(BuildError::at(
                    "nodes",
                    "seed nodes are for a Redis Cluster: set `cluster: true`, or use host and port",
                ));
            }
            return Ok(Vec::new());
        }
        if !cfg!(feature = "cluster") {
            return Err(BuildError::at(
                "cluster",
                "this rtcollector was built without Redis Cluster support (the `cluster` feature)",
            ));
        }
        if target.db != 0 {
            return Err(BuildError::at(
                "db",
                "a Redis Cluster has only database 0",
            ));
        }
        if self.duplicate_policy == DuplicatePolicy::Sum {
            // While a master is down the batch is sent again whole at every flush: the
            // other masters' samples would be added up once per retry.
            return Err(BuildError::at(
                "duplicate_policy",
                "`sum` cannot be used in a cluster: a batch resent while one master is down would add the other masters' samples again; use last, first, min or max",
            ));
        }
        if self.nodes.is_empty() {
            return Ok(vec![(target.host.clone(), target.port)]);
        }
        self.nodes.iter().map(|n| seed(n, target.tls)).collect()
    }

    /// Checks the series options that the server would otherwise refuse at run time.
    pub fn validate_series(&self) -> Result<(), BuildError> {
        if let Some(Size(c)) = self.chunk_size {
            if !(48..=1_048_576).contains(&c) || c % 8 != 0 {
                return Err(BuildError::at(
                    "chunk_size",
                    format!("{c} bytes is not allowed; use a multiple of 8 from 48 to 1048576"),
                ));
            }
        }
        if self.conn.connect_timeout.0.is_zero() || self.write_timeout.0.is_zero() {
            return Err("connect_timeout and write_timeout must be more than 0".into());
        }
        for (k, v) in &self.labels {
            if k.is_empty() || v.is_empty() {
                return Err(BuildError::at(
                    "labels",
                    format!("`{k}: {v}` has an empty name or value; RedisTimeSeries does not store those"),
                ));
            }
        }
        for (i, d) in self.downsample.iter().enumerate() {
            if d.every.0.as_millis() == 0 {
                return Err(BuildError::entry(format!(
                    "downsample[{i}].every: must be at least 1ms"
                )));
            }
        }
        Ok(())
    }
}

/// One entry of `nodes`: `host:port`, or a `redis://`/`rediss://` URL of which only the
/// address is taken (every node logs in the same way: the output's keys say how).
fn seed(text: &str, tls: bool) -> Result<(String, u16), BuildError> {
    let bad = |why: &str| BuildError::at("nodes", why.to_string());
    if text.starts_with("redis://") || text.starts_with("rediss://") {
        let url = RedisUrl::parse(text).map_err(|e| bad(&e.replace("url: ", "")))?;
        if url.username.is_some() || url.password.is_some() || url.db.is_some() {
            return Err(bad(
                "a node URL gives only the address: set the login with username and password (or url), once for every node",
            ));
        }
        if url.tls != tls {
            return Err(bad(
                "a node URL's redis:// or rediss:// must match the output's TLS (ssl, or url)",
            ));
        }
        return Ok((url.host, url.port.unwrap_or(6379)));
    }
    text.rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok().filter(|&p| p > 0)?)))
        .filter(|(h, _)| !h.is_empty())
        .map(|(h, p)| (h.trim_start_matches('[').trim_end_matches(']').to_string(), p))
        .ok_or_else(|| bad(&format!("`{text}` is not host:port")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_overrides_separate_keys() {
        let cfg = Config {
            conn: RedisKeys {
                url: Some(RedisUrl::parse("redis://u:pw@h:1/2").unwrap()),
                host: "other".into(),
                ..RedisKeys::default()
            },
            ..Config::default()
        };
        let t = cfg.target().unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db), ("h", 1, 2));
        assert_eq!(t.username.as_deref(), Some("u"));
        assert_eq!(t.password.unwrap().expose(), "pw");
    }

    #[test]
    fn config_parses_rtcollector_keys_and_hides_the_password() {
        let cfg: Config = yaml_serde::from_str(
            "host: r.lan\nport: 6380\nusername: metrics\npassword: hunter2\nretention: 7d\n\
             duplicate_policy: max\nchunk_size: 4KiB\nencoding: compressed\n\
             labels: {site: home}\n\
             downsample:\n  - {every: 5m, aggregation: avg, retention: 2y}\n  - {every: 1h, aggregation: std.p, metrics: ['cpu_*']}\n",
        )
        .unwrap();
        assert_eq!(cfg.retention, Some(Millis(7 * 86_400_000)));
        assert_eq!(cfg.duplicate_policy, DuplicatePolicy::Max);
        assert_eq!(cfg.chunk_size, Some(Size(4096)));
        assert_eq!(cfg.downsample[1].aggregation, Aggregation::StdP);
        assert!(cfg.validate_series().is_ok());
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(cfg.target().is_ok());
    }

    #[test]
    fn bad_combinations_are_config_errors() {
        let cfg = Config {
            conn: RedisKeys {
                username: Some("u".into()),
                ..RedisKeys::default()
            },
            ..Config::default()
        };
        assert!(cfg.target().unwrap_err().to_string().contains("password"));
        let mut cfg = Config::default();
        cfg.conn.tls.ssl_certfile = Some("/c.pem".into());
        assert!(cfg.target().unwrap_err().to_string().contains("ssl: true"));
        let cfg = Config {
            chunk_size: Some(Size(100)),
            ..Config::default()
        };
        assert!(cfg.validate_series().is_err());
        assert!(yaml_serde::from_str::<Config>("bogus: 1").is_err());
    }

    #[test]
    fn cluster_seeds_come_from_nodes_or_the_address_and_need_the_feature() {
        let cfg: Config =
            yaml_serde::from_str("cluster: true\nnodes: [\"a:7000\", \"[::1]:7001\", \"redis://c:7002\"]\n")
                .unwrap();
        let seeds = cfg.seeds(&cfg.target().unwrap());
        let cfg_one: Config = yaml_serde::from_str("cluster: true\nport: 7005\n").unwrap();
        let one = cfg_one.seeds(&cfg_one.target().unwrap());
        if cfg!(feature = "cluster") {
            assert_eq!(
                seeds.unwrap(),
                vec![
                    ("a".to_string(), 7000),
                    ("::1".to_string(), 7001),
                    ("c".to_string(), 7002)
                ]
            );
            assert_eq!(one.unwrap(), vec![("localhost".to_string(), 7005)]);
            assert_eq!(cfg_one.key_format(), CLUSTER_KEY_FORMAT);
        } else {
            let e = seeds.unwrap_err().to_string();
            assert!(e.contains("built without Redis Cluster support"), "{e}");
        }
        for (bad, why) in [
            ("redis://u:pw@c:7002", "only the address"),
            ("rediss://c:7002", "must match"),
            ("c", "not host:port"),
        ] {
            let cfg: Config =
                yaml_serde::from_str(&format!("cluster: true\nnodes: [\"{bad}\"]\n")).unwrap();
            if cfg!(feature = "cluster") {
                let e = cfg.seeds(&cfg.target().unwrap()).unwrap_err().to_string();
                assert!(e.contains(why) && !e.contains("pw"), "{bad}: {e}");
            }
        }
        let single = Config::default();
        assert!(single.seeds(&single.target().unwrap()).unwrap().is_empty());
        assert_eq!(single.key_format(), DEFAULT_KEY_FORMAT);
    }

    #[test]
    fn tls_without_the_feature_says_so() {
        let mut cfg = Config::default();
        cfg.conn.tls.ssl = true;
        let r = cfg.target();
        if cfg!(feature = "tls") {
            assert!(r.is_ok());
        } else {
            assert!(r.unwrap_err().to_string().contains("built without TLS"));
        }
    }
}

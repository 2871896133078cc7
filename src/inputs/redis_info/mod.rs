//! `redis`: a Redis server's `INFO`: the fields chosen by `metrics:` (the Python rtcollector's
//! list by default) as gauges, or counters with a `_rate`; keys per database; replication figures.
//!
//! The connection is `common::redis`, as the `redistimeseries` output's (TCP or TLS on smol, ACL user and
//! password, no thread): made at the first collection, kept, and made again after an error.

pub mod info;

use crate::config::{BuildError, Dur};
use crate::config::range;
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::BuildCtx;
use crate::core::backoff::Backoff;
use crate::common::redis::{Endpoint, RedisKeys, Session};
use crate::config::shared::with_shared;
use redis::Value;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Duration;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# A Redis server's INFO: memory, clients, commands, keys per database, replication.
- redis:
    host: localhost
    port: 6379
    # Or everything in one: url: redis://user:password@host:6379/0 (rediss:// for TLS)
    # An ACL user (Redis 6+) needs only +info: ACL SETUSER metrics on >pw +info
    # username: metrics
    # password: secret:redis/password
    # ssl: false
    # ssl_ca_certs: /etc/ssl/redis-ca.pem
    # socks5_proxy: socks5h://user:secret@127.0.0.1:1080   # or socks4_proxy: socks4://host:1080
    # INFO fields to write as redis_<field>; the Python rtcollector's list when left out.
    # metrics: [used_memory, connected_clients, total_commands_processed, keyspace_hits]
    connect_timeout: 5s
    timeout: 5s
";

/// The connection keys (`host`, `url`, `ssl`…) are [`RedisKeys`], written flat among these.
#[derive(Debug, Deserialize, Serialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct Config {
    #[serde(skip)]
    pub conn: RedisKeys,
    /// How long `INFO` may take to answer.
    #[serde(deserialize_with = "range::timeout")]
    pub timeout: Dur,
    /// INFO fields to write; empty: [`DEFAULT_FIELDS`].
    pub metrics: Vec<String>,
}

with_shared!(Config, conn: RedisKeys);

impl Default for Config {
    fn default() -> Self {
        Config {
            conn: RedisKeys::default(),
            timeout: Dur(Duration::from_secs(5)),
            metrics: Vec::new(),
        }
    }
}

/// The Python rtcollector's fields, written when `metrics:` is not set.
pub const DEFAULT_FIELDS: [&str; 48] = [
    "uptime_in_seconds",
    "connected_clients",
    "used_memory",
    "used_memory_rss",
    "used_memory_peak",
    "used_memory_lua",
    "mem_fragmentation_ratio",
    "total_commands_processed",
    "instantaneous_ops_per_sec",
    "total_connections_received",
    "rejected_connections",
    "expired_keys",
    "evicted_keys",
    "keyspace_hits",
    "keyspace_misses",
    "pubsub_channels",
    "pubsub_patterns",
    "latest_fork_usec",
    "connected_slaves",
    "blocked_clients",
    "instantaneous_input_kbps",
    "instantaneous_output_kbps",
    "sync_full",
    "sync_partial_ok",
    "sync_partial_err",
    "used_cpu_sys",
    "used_cpu_user",
    "used_cpu_sys_children",
    "used_cpu_user_children",
    "repl_backlog_size",
    "rdb_changes_since_last_save",
    "aof_enabled",
    "aof_last_rewrite_time_sec",
    "connected_replication_backlog",
    "repl_backlog_histlen",
    "rdb_last_bgsave_status",
    "rdb_last_save_time",
    "aof_rewrite_scheduled",
    "aof_last_rewrite_status",
    "aof_last_bgrewrite_status",
    "aof_current_rewrite_time_sec",
    "aof_last_write_status",
    "total_net_input_bytes",
    "total_net_output_bytes",
    "total_reads_processed",
    "total_writes_processed",
    "active_defrag_running",
    "lazyfree_pending_objects",
];

/// Fields that only grow while the server runs: written with a per-second `_rate`.
pub const COUNTERS: [&str; 30] = [
    "total_commands_processed",
    "total_connections_received",
    "rejected_connections",
    "expired_keys",
    "expired_time_cap_reached_count",
    "evicted_keys",
    "evicted_clients",
    "keyspace_hits",
    "keyspace_misses",
    "sync_full",
    "sync_partial_ok",
    "sync_partial_err",
    "used_cpu_sys",
    "used_cpu_user",
    "used_cpu_sys_children",
    "used_cpu_user_children",
    "used_cpu_sys_main_thread",
    "used_cpu_user_main_thread",
    "total_net_input_bytes",
    "total_net_output_bytes",
    "total_net_repl_input_bytes",
    "total_net_repl_output_bytes",
    "total_reads_processed",
    "total_writes_processed",
    "total_error_replies",
    "total_forks",
    "unexpected_error_replies",
    "io_threaded_reads_processed",
    "io_threaded_writes_processed",
    "dump_payload_sanitizations",
];

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<RedisInfo, BuildError> {
    if cfg.conn.connect_timeout.0.is_zero() || cfg.timeout.0.is_zero() {
        return Err("connect_timeout and timeout must be more than 0".into());
    }
    let opts = cfg.conn.conn_options("redis", cfg.timeout.0, "timeout");
    let target = cfg.conn.target(&opts)?;
    let mut selected: Vec<String> = if cfg.metrics.is_empty() {
        DEFAULT_FIELDS.iter().map(|f| f.to_string()).collect()
    } else {
        cfg.metrics.clone()
    };
    if let Some(bad) = selected.iter().find(|f| f.is_empty() || f.contains(':')) {
        return Err(BuildError::at(
            "metrics",
            format!("`{bad}` is not an INFO field name"),
        ));
    }
    selected.sort();
    selected.dedup();
    let mut pipe = redis::pipe();
    pipe.cmd("INFO");
    Ok(RedisInfo {
        server: target.host.clone(),
        port: target.port.to_string(),
        // No wait between attempts: each collection tries once, as its interval paces it.
        session: Session::new(
            Endpoint::new(&opts, target)?,
            "input redis".into(),
            Backoff::new(Duration::ZERO, Duration::ZERO),
        ),
        pipe,
        found: vec![false; selected.len()],
        selected,
        noted: HashSet::new(),
        name: String::new(),
    })
}

pub struct RedisInfo {
    session: Session,
    pipe: redis::Pipeline,
    /// `server` and `port` labels.
    server: String,
    port: String,
    /// Sorted, without duplicates.
    selected: Vec<String>,
    /// Per selected field: seen in this collection's INFO.
    found: Vec<bool>,
    /// Fields already logged as missing or not numeric (once each).
    noted: HashSet<String>,
    /// `redis_<field>`, built in place for each field.
    name: String,
}

impl Input for RedisInfo {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(async move {
            let text = self.info().await.map_err(InputError::new)?;
            self.emit(&text, em);
            Ok(())
        })
    }
}

impl RedisInfo {
    /// The `INFO` text, on the kept connection or a new one. Any failure drops the
    /// connection, so the next collection starts afresh.
    async fn info(&mut self) -> Result<String, String> {
        self.session.ensure().await?;
        let addr = self.session.endpoint().target.addr();
        let reply = self
            .session
            .send(&self.pipe)
            .await
            .and_then(|mut values| match values.pop() {
                Some(v) if values.is_empty() => info_text(v, &addr),
                _ => Err(format!("{addr} sent an unexpected reply to INFO")),
            });
        if reply.is_err() {
            self.session.disconnect();
        }
        reply
    }

    fn emit(&mut self, text: &str, em: &mut Emitter<'_>) {
        self.found.iter_mut().for_each(|f| *f = false);
        for f in info::fields(text) {
            match f.section {
                "Keyspace" => self.emit_keyspace(f.field, f.value, em),
                "Replication" => {
                    if let Some(v) = info::number(f.field, f.value) {
                        self.set_name("redis_replication_", f.field);
                        let labels = [("server", self.server.as_str()), ("port", &self.port)];
                        em.gauge(&self.name, &labels, v);
                    }
                }
                _ => {}
            }
            if let Ok(i) = self.selected.binary_search_by(|s| s.as_str().cmp(f.field)) {
                self.found[i] = true;
                self.emit_selected(f.field, f.value, em);
            }
        }
        for (i, field) in self.selected.iter().enumerate() {
            if !self.found[i] && self.noted.insert(field.clone()) {
                log::info!(
                    "input redis: {} has no INFO field `{field}` (another Redis version?); not written",
                    self.session.endpoint().target.addr()
                );
            }
        }
    }

    fn emit_selected(&mut self, field: &str, value: &str, em: &mut Emitter<'_>) {
        let Some(v) = info::number(field, value) else {
            if self.noted.insert(field.to_string()) {
                log::info!(
                    "input redis: INFO field `{field}` is `{value}`, not a number; not written"
                );
            }
            return;
        };
        self.set_name("redis_", field);
        let labels = [("server", self.server.as_str()), ("port", &self.port)];
        if COUNTERS.contains(&field) {
            em.counter(&self.name, &labels, v);
        } else {
            em.gauge(&self.name, &labels, v);
        }
    }

    /// `db0:keys=12,expires=3,avg_ttl=0` → `redis_keyspace_keys{db=db0}` and so on.
    fn emit_keyspace(&mut self, db: &str, value: &str, em: &mut Emitter<'_>) {
        let Some(pairs) = info::keyspace(value) else {
            em.partial_failure(InputError::new(format!(
                "{}: keyspace line `{db}:{value}` is not key=number pairs",
                self.session.endpoint().target.addr()
            )));
            return;
        };
        for (k, v) in pairs {
            self.set_name("redis_keyspace_", k);
            let labels = [
                ("server", self.server.as_str()),
                ("port", &self.port),
                ("db", db),
            ];
            em.gauge(&self.name, &labels, v);
        }
    }

    fn set_name(&mut self, prefix: &str, field: &str) {
        self.name.clear();
        self.name.push_str(prefix);
        self.name.push_str(field);
    }
}

/// The text of an INFO reply (a bulk string over RESP2, verbatim over RESP3).
fn info_text(v: Value, addr: &str) -> Result<String, String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b)
            .map_err(|_| format!("{addr}: the INFO reply is not UTF-8")),
        Value::VerbatimString { text, .. } => Ok(text),
        Value::ServerError(e) if e.code() == "NOPERM" => Err(format!(
            "{addr} refused INFO (NOPERM): give the user the command, e.g. `ACL SETUSER <user> +info`"
        )),
        Value::ServerError(e) => Err(format!("{addr} refused INFO: {e}")),
        other => Err(format!("{addr}: unexpected INFO reply {other:?}")),
    }
}

#[cfg(test)]
mod tests;

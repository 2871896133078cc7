//! `redissearch`: log records as RedisJSON documents (`JSON.SET`), indexed by RediSearch so
//! that a homelab can search its routers' and servers' logs beside their metrics. Takes log
//! records only; samples go to the other outputs.
//!
//! Each record is stored under `<key_prefix><16 hex digits of its id>`: the id follows the
//! record's bytes, so a record replayed from the outage buffer replaces itself instead of
//! appearing twice. The index is created at the first connection if the server lacks it.

use crate::common::log_json::write_record;
use crate::common::redis::{Connected, Endpoint, RedisKeys, Session};
use crate::config::shared::with_shared;
use crate::config::{range, BuildError, Dur, Millis};
use crate::core::backoff::Backoff;
use crate::core::logs::LogBatch;
use crate::core::output::{Kinds, StartFuture};
use crate::core::{
    ready_write, Output, OutputError, Sample, SeriesView, WriteFuture, WriteReport,
};
use crate::outputs::OutputCtx;
use redis::{Pipeline, Value};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::Duration;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Log records (from the syslog input) as JSON documents in Redis Stack, indexed with
# RediSearch: FT.SEARCH logs_idx '@severity:{err} @appname:{sshd} failed' SORTBY timestamp DESC
- redissearch:
    host: localhost
    port: 6379
    # url, username, password, ssl, ssl_ca_certs, socks5_proxy: as for redistimeseries
    index: logs_idx
    key_prefix: \"log:\"
    # Documents expire this long after the record's time (none: kept until deleted).
    # retention: 30d
    write_timeout: 10s
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct Config {
    #[serde(skip)]
    pub conn: RedisKeys,
    pub index: String,
    pub key_prefix: String,
    pub retention: Option<Millis>,
    #[serde(deserialize_with = "range::timeout")]
    pub write_timeout: Dur,
}

with_shared!(Config, conn: RedisKeys);

impl Default for Config {
    fn default() -> Self {
        Config {
            conn: RedisKeys::default(),
            index: "logs_idx".into(),
            key_prefix: "log:".into(),
            retention: None,
            write_timeout: Dur(Duration::from_secs(10)),
        }
    }
}

pub struct RedisSearch {
    session: Session,
    index: String,
    key_prefix: String,
    retention_ms: Option<i64>,
    /// Whether the index is known to exist on the current connection's server.
    indexed: bool,
    key: String,
    doc: String,
    pipe: Pipeline,
}

pub fn build(cfg: &Config, _ctx: &OutputCtx) -> Result<RedisSearch, BuildError> {
    let valid = |s: &str| !s.is_empty() && s.len() <= 128 && !s.contains([' ', '\n', '\r']);
    if !valid(&cfg.index) {
        return Err(BuildError::at("index", format!("`{}` is not an index name", cfg.index)));
    }
    if cfg.key_prefix.contains([' ', '\n', '\r', '*']) {
        return Err(BuildError::at(
            "key_prefix",
            "must not hold spaces, line breaks or `*`",
        ));
    }
    let opts = cfg
        .conn
        .conn_options("redissearch", cfg.write_timeout.0, "write_timeout");
    let target = cfg.conn.target(&opts)?;
    Ok(RedisSearch {
        session: Session::new(
            Endpoint::new(&opts, target)?,
            "output redissearch".into(),
            Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
        ),
        index: cfg.index.clone(),
        key_prefix: cfg.key_prefix.clone(),
        retention_ms: cfg.retention.map(|r| i64::try_from(r.0).unwrap_or(i64::MAX)),
        indexed: false,
        key: String::new(),
        doc: String::new(),
        pipe: redis::pipe(),
    })
}

/// The schema that makes the documented queries work: time sortable, severity, facility,
/// program and host as tags, the message as text.
const SCHEMA: [&str; 30] = [
    "SCHEMA",
    "$.timestamp", "AS", "timestamp", "NUMERIC", "SORTABLE",
    "$.severity", "AS", "severity", "TAG",
    "$.severity_code", "AS", "severity_code", "NUMERIC",
    "$.facility", "AS", "facility", "TAG",
    "$.appname", "AS", "appname", "TAG",
    "$.host", "AS", "host", "TAG",
    "$.message", "AS", "message", "TEXT",
];

impl RedisSearch {
    /// Connects if needed, and makes sure the index exists on a (new) connection.
    async fn ready(&mut self) -> Result<(), OutputError> {
        match self.session.ensure().await.map_err(OutputError::Retry)? {
            Connected::Kept if self.indexed => return Ok(()),
            _ => self.indexed = false,
        }
        let mut pipe = redis::pipe();
        let create = pipe
            .cmd("FT.CREATE")
            .arg(&self.index)
            .arg("ON")
            .arg("JSON")
            .arg("PREFIX")
            .arg(1)
            .arg(&self.key_prefix);
        for word in SCHEMA {
            create.arg(word);
        }
        let reply = self.session.send(&pipe).await.map_err(OutputError::Retry)?;
        match reply.first() {
            Some(Value::Okay) => log::info!("output redissearch: created index {}", self.index),
            Some(Value::ServerError(e)) if is_exists(e) => {}
            Some(Value::ServerError(e)) => {
                return Err(OutputError::Retry(format!(
                    "cannot create index {} on {}: {}{}",
                    self.index,
                    self.session.endpoint().target.addr(),
                    show(e),
                    module_hint(e)
                )))
            }
            _ => {}
        }
        self.indexed = true;
        Ok(())
    }

    /// The pipeline of one batch: a `JSON.SET` per record, and its expiry.
    fn plan(&mut self, batch: &LogBatch) -> u64 {
        self.pipe.clear();
        let mut undecodable = 0;
        for (id, record) in batch.records() {
            let Ok(record) = record else {
                undecodable += 1;
                continue;
            };
            self.key.clear();
            let _ = write!(self.key, "{}{id:016x}", self.key_prefix);
            self.doc.clear();
            write_record(&record, &mut self.doc);
            self.pipe
                .cmd("JSON.SET")
                .arg(&self.key)
                .arg("$")
                .arg(&self.doc);
            if let Some(keep) = self.retention_ms {
                self.pipe
                    .cmd("PEXPIREAT")
                    .arg(&self.key)
                    .arg(record.ts_ms.saturating_add(keep));
            }
        }
        undecodable
    }

    async fn write_batch(&mut self, batch: &LogBatch) -> Result<WriteReport, OutputError> {
        self.ready().await?;
        let undecodable = self.plan(batch);
        let replies = self.session.send(&self.pipe).await.map_err(OutputError::Retry)?;
        let per_record = if self.retention_ms.is_some() { 2 } else { 1 };
        let mut report = WriteReport {
            written: 0,
            rejected: undecodable,
        };
        let mut first_error = None;
        for chunk in replies.chunks(per_record) {
            match chunk.iter().find_map(|v| match v {
                Value::ServerError(e) => Some(e),
                _ => None,
            }) {
                None => report.written += 1,
                Some(e) if is_transient(e) => {
                    // The whole batch again later: its keys make a repeat harmless.
                    return Err(OutputError::Retry(format!(
                        "{} cannot take writes now: {}",
                        self.session.endpoint().target.addr(),
                        show(e)
                    )));
                }
                Some(e) if is_unknown_command(e) => {
                    // No RedisJSON: nothing can be stored until the server has it.
                    return Err(OutputError::Retry(format!(
                        "{} cannot store JSON: {}{}",
                        self.session.endpoint().target.addr(),
                        show(e),
                        module_hint(e)
                    )));
                }
                Some(e) => {
                    report.rejected += 1;
                    first_error.get_or_insert_with(|| show(e));
                }
            }
        }
        if let Some(e) = first_error {
            log::warn!(
                "output redissearch: {} log records refused: {e}",
                report.rejected
            );
        }
        Ok(report)
    }
}

fn show(e: &redis::ServerError) -> String {
    match e.details() {
        Some(d) => format!("{} {d}", e.code()),
        None => e.code().to_string(),
    }
}

/// Errors of the server's state, not of the record: loading, out of memory, a replica.
fn is_transient(e: &redis::ServerError) -> bool {
    matches!(
        e.code(),
        "LOADING" | "BUSY" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "READONLY" | "OOM" | "NOREPLICAS"
    )
}

fn is_exists(e: &redis::ServerError) -> bool {
    show(e).to_ascii_lowercase().contains("already exists")
}

fn is_unknown_command(e: &redis::ServerError) -> bool {
    show(e).to_ascii_lowercase().contains("unknown command")
}

fn module_hint(e: &redis::ServerError) -> &'static str {
    if is_unknown_command(e) {
        " (the server needs the RediSearch and RedisJSON modules: Redis Stack, or Redis 8 with its modules)"
    } else {
        ""
    }
}

impl Output for RedisSearch {
    fn start(&mut self) -> StartFuture<'_> {
        Box::pin(self.ready())
    }

    fn write<'a>(&'a mut self, batch: &'a [Sample], _: SeriesView<'a>) -> WriteFuture<'a> {
        // Never called: the output takes no samples (`kinds`).
        ready_write(Ok(WriteReport {
            written: 0,
            rejected: batch.len() as u64,
        }))
    }

    fn kinds(&self) -> Kinds {
        Kinds::Logs
    }

    fn write_logs<'a>(&'a mut self, batch: &'a LogBatch) -> WriteFuture<'a> {
        Box::pin(self.write_batch(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(yaml: &str) -> Result<RedisSearch, String> {
        let cfg: Config = yaml_serde::from_str(yaml).map_err(|e| e.to_string())?;
        build(
            &cfg,
            &OutputCtx {
                hostname: "h".into(),
                key: "redissearch".into(),
            },
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn the_python_agents_keys_are_accepted_and_bad_names_refused() {
        let ok = built("host: localhost\nport: 6379\nindex: logs_idx\nkey_prefix: 'log:'\n").unwrap();
        assert_eq!((ok.index.as_str(), ok.key_prefix.as_str()), ("logs_idx", "log:"));
        assert!(built("index: 'a b'").err().unwrap().contains("index"));
        assert!(built("key_prefix: 'x*'").err().unwrap().contains("key_prefix"));
        assert!(built("retention: 30d").is_ok());
    }

    #[test]
    fn a_batch_becomes_a_json_set_per_record_keyed_by_its_id() {
        let mut out = built("key_prefix: 'l:'\nretention: 1d").unwrap();
        let mut batch = LogBatch::default();
        let mut buf = Vec::new();
        let record = crate::core::logs::LogRecord {
            ts_ms: 1000,
            message: "hello".into(),
            ..Default::default()
        };
        crate::core::logs::encode(&record, &mut buf).unwrap();
        batch.push_encoded(&buf);
        assert_eq!(out.plan(&batch), 0);
        let cmds: Vec<Vec<String>> = out
            .pipe
            .cmd_iter()
            .map(|c| {
                c.args_iter()
                    .map(|a| match a {
                        redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                        _ => "<cursor>".into(),
                    })
                    .collect()
            })
            .collect();
        let key = format!("l:{:016x}", crate::core::logs::record_id(&buf));
        assert_eq!(cmds[0][..3], ["JSON.SET", key.as_str(), "$"]);
        assert!(cmds[0][3].contains("\"message\":\"hello\""));
        assert_eq!(cmds[1], ["PEXPIREAT", key.as_str(), "86401000"]);
    }
}

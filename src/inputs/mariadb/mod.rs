//! `mariadb`: a MariaDB or MySQL server's `SHOW GLOBAL STATUS`, the variables chosen by
//! `metrics:` (counters with a `_rate`, `ON`/`OFF` as 1/0), and optionally a replica's lag.
//!
//! The client is hand-written (`wire.rs`, `client.rs`) on the agent's executor: TCP, a unix
//! socket or TLS. The connection is kept between collections and made again after a
//! failure, with a doubling wait (1 s to a minute) between attempts.

pub mod client;
pub mod wire;

use crate::config::range;
use crate::config::{BuildError, Dur, Secret};
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::db::{self, Address, Reconnect, Table, TlsMode};
use crate::inputs::BuildCtx;
use client::{Conn, QueryError, Target};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# A MariaDB or MySQL server: SHOW GLOBAL STATUS variables, counters with rates. The user
# needs no privilege for the status; a replica's lag needs REPLICA MONITOR (or REPLICATION CLIENT):
#   CREATE USER metrics@localhost IDENTIFIED BY '...';
- mariadb:
    host: localhost           # or the socket, e.g. /run/mysqld/mysqld.sock
    port: 3306
    user: metrics
    # password: secret:mariadb/password
    # ssl_mode: PREFERRED     # DISABLED, PREFERRED, REQUIRED, VERIFY_IDENTITY
    # ssl_ca: /etc/ssl/mariadb-ca.pem   # VERIFY_IDENTITY: the CA (else the Mozilla roots)
    # Status variables written as mariadb_<lowercase name>; these four when left out.
    metrics: [Threads_connected, Connections, Uptime, Questions]
    # replication: true       # SHOW REPLICA STATUS: mariadb_replication_lag_seconds
    timeout: 5s
";

/// The MySQL client's `--ssl-mode` values this client has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SslMode {
    Disabled,
    #[default]
    Preferred,
    Required,
    VerifyIdentity,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// A host name or address, or the path (starting with `/`) of the server's unix socket.
    pub host: String,
    #[serde(deserialize_with = "range::port")]
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub ssl_mode: SslMode,
    pub ssl_ca: Option<PathBuf>,
    pub ssl_cert: Option<PathBuf>,
    pub ssl_key: Option<PathBuf>,
    /// Status variable names; empty: [`DEFAULT_METRICS`].
    pub metrics: Vec<String>,
    /// `SHOW REPLICA STATUS`'s lag, on a replica.
    pub replication: bool,
    #[serde(deserialize_with = "range::timeout")]
    pub timeout: Dur,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "localhost".into(),
            port: 3306,
            user: "root".into(),
            password: Secret::default(),
            ssl_mode: SslMode::default(),
            ssl_ca: None,
            ssl_cert: None,
            ssl_key: None,
            metrics: Vec::new(),
            replication: false,
            timeout: Dur(Duration::from_secs(5)),
        }
    }
}

pub const DEFAULT_METRICS: [&str; 4] = ["Threads_connected", "Connections", "Uptime", "Questions"];

/// Status variables that only grow (by name prefix, lowercase): written with a `_rate`.
const COUNTER_PREFIXES: [&str; 14] = [
    "com_",
    "handler_",
    "select_",
    "sort_",
    "created_tmp_",
    "aborted_",
    "bytes_",
    "innodb_rows_",
    "opened_",
    "table_locks_",
    "connection_errors_",
    "key_read",
    "key_write",
    "innodb_data_",
];

/// And by whole name.
const COUNTERS: [&str; 18] = [
    "connections",
    "questions",
    "queries",
    "slow_queries",
    "threads_created",
    "slow_launch_threads",
    "innodb_buffer_pool_read_requests",
    "innodb_buffer_pool_reads",
    "innodb_buffer_pool_write_requests",
    "innodb_log_writes",
    "innodb_os_log_written",
    "innodb_pages_created",
    "innodb_pages_read",
    "innodb_pages_written",
    "qcache_hits",
    "qcache_inserts",
    "qcache_not_cached",
    "qcache_lowmem_prunes",
];

/// Whether the status variable `lower` (lowercase) is a counter.
pub fn is_counter(lower: &str) -> bool {
    COUNTERS.contains(&lower)
        || (COUNTER_PREFIXES.iter().any(|p| lower.starts_with(p))
            && !lower.starts_with("innodb_data_pending")
            && !lower.starts_with("innodb_data_fsyncs_pending")
            && !lower.ends_with("_pending"))
}

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<Mariadb, BuildError> {
    if cfg.host.is_empty() {
        return Err(BuildError::at("host", "must name a host or a socket path"));
    }
    if cfg.user.is_empty() || cfg.user.contains('\0') || cfg.user.len() > 255 {
        return Err(BuildError::at("user", "must be a non-empty name"));
    }
    let mut wanted: Vec<String> = if cfg.metrics.is_empty() {
        DEFAULT_METRICS.iter().map(|m| m.to_string()).collect()
    } else {
        cfg.metrics.clone()
    };
    if let Some(bad) = wanted
        .iter()
        .find(|m| m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(BuildError::at(
            "metrics",
            format!("`{bad}` is not a status variable name (letters, digits, `_`)"),
        ));
    }
    wanted.iter_mut().for_each(|m| m.make_ascii_lowercase());
    wanted.sort();
    wanted.dedup();
    let addr = if cfg.host.starts_with('/') {
        Address::Unix(PathBuf::from(&cfg.host))
    } else {
        Address::Tcp(cfg.host.clone(), cfg.port)
    };
    let tls_mode = match cfg.ssl_mode {
        SslMode::Disabled => TlsMode::Disable,
        SslMode::Preferred => TlsMode::Prefer,
        SslMode::Required => TlsMode::Require,
        SslMode::VerifyIdentity => TlsMode::VerifyFull,
    };
    if cfg.ssl_cert.is_some() != cfg.ssl_key.is_some() {
        return Err(BuildError::at("ssl_cert", "ssl_cert and ssl_key go together"));
    }
    if cfg.ssl_ca.is_some() && tls_mode != TlsMode::VerifyFull {
        return Err(BuildError::at("ssl_ca", "is used by `ssl_mode: VERIFY_IDENTITY` only"));
    }
    #[cfg(not(feature = "tls"))]
    if matches!(tls_mode, TlsMode::Require | TlsMode::VerifyFull) {
        return Err(BuildError::at("ssl_mode", "this build has no TLS (cargo feature `tls`)"));
    }
    // The server filters: only the chosen rows come back. Names are checked above, so they
    // need no quoting beyond the quotes.
    let list: Vec<String> = wanted.iter().map(|m| format!("'{m}'")).collect();
    let status_sql = format!(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ({})",
        list.join(",")
    );
    let server = addr.to_string();
    Ok(Mariadb {
        target: Target {
            addr,
            host: cfg.host.clone(),
            user: cfg.user.clone(),
            password: cfg.password.clone(),
            tls_mode,
            #[cfg(feature = "tls")]
            tls: tls_config(cfg, tls_mode)?,
        },
        timeout: cfg.timeout.0,
        status_sql,
        found: vec![false; wanted.len()],
        wanted,
        replication: cfg.replication,
        server,
        conn: None,
        reconnect: Reconnect::default(),
        table: Table::default(),
        name: String::new(),
        noted: HashSet::new(),
    })
}

#[cfg(feature = "tls")]
fn tls_config(
    cfg: &Config,
    mode: TlsMode,
) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, BuildError> {
    let files = crate::common::tls::TlsFiles {
        ca_certs: cfg.ssl_ca.as_deref(),
        certfile: cfg.ssl_cert.as_deref(),
        keyfile: cfg.ssl_key.as_deref(),
        insecure_skip_verify: false,
    };
    db::tls_config(mode, &files, "input mariadb").map_err(|e| BuildError::at("ssl_mode", e))
}

pub struct Mariadb {
    target: Target,
    timeout: Duration,
    status_sql: String,
    /// Lowercase, sorted, without duplicates.
    wanted: Vec<String>,
    /// Per wanted variable: in this collection's answer.
    found: Vec<bool>,
    replication: bool,
    server: String,
    conn: Option<Conn>,
    reconnect: Reconnect,
    table: Table,
    /// `mariadb_<lowercase name>`, built in place.
    name: String,
    /// Variables already logged as missing or not numeric (once each).
    noted: HashSet<String>,
}

impl Mariadb {
    fn reconnect_wait(&self) -> Option<Duration> {
        match self.conn {
            Some(_) => None,
            None => self.reconnect.wait_left(Instant::now()),
        }
    }
}

impl Input for Mariadb {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(async move {
            // Between failed attempts: no attempt, and the wait does not grow.
            if let Some(wait) = self.reconnect_wait() {
                return Err(InputError::new(format!(
                    "{}: not connected; next attempt in {} s",
                    self.server,
                    wait.as_secs() + 1
                )));
            }
            let limit = self.timeout;
            if let Err(e) = db::bounded(limit, "the status queries", self.collect_all(em)).await {
                // Whatever the server sends late must not be read as the next answer.
                self.conn = None;
                self.reconnect.failed(Instant::now());
                return Err(InputError::new(format!("{}: {e}", self.server)));
            }
            Ok(())
        })
    }
}

impl Mariadb {
    async fn collect_all(&mut self, em: &mut Emitter<'_>) -> Result<(), String> {
        if self.conn.is_none() {
            self.conn = Some(Conn::connect(&self.target).await?);
            self.reconnect.succeeded();
        }
        let sql = std::mem::take(&mut self.status_sql);
        let ran = self.run(&sql, em).await;
        self.status_sql = sql;
        if ran? {
            self.emit_status(em);
        }
        if self.replication && self.run("SHOW REPLICA STATUS", em).await? {
            emit_replica(&self.table, &self.server, em);
        }
        Ok(())
    }

    async fn run(&mut self, sql: &str, em: &mut Emitter<'_>) -> Result<bool, String> {
        let conn = self.conn.as_mut().ok_or("not connected")?;
        match conn.query(sql, &mut self.table).await {
            Ok(()) => Ok(true),
            Err(QueryError::Server(e)) => {
                em.partial_failure(InputError::new(format!("{}: `{sql}`: {e}", self.server)));
                Ok(false)
            }
            Err(QueryError::Link(e)) => Err(e),
        }
    }

    fn emit_status(&mut self, em: &mut Emitter<'_>) {
        self.found.iter_mut().for_each(|f| *f = false);
        let t = &self.table;
        let labels = [("server", self.server.as_str())];
        for row in 0..t.rows() {
            let (Some(var), Some(value)) = (t.text(row, 0), t.text(row, 1)) else {
                continue;
            };
            self.name.clear();
            self.name.push_str("mariadb_");
            self.name.extend(var.chars().map(|c| c.to_ascii_lowercase()));
            let lower = &self.name["mariadb_".len()..];
            let Ok(i) = self.wanted.binary_search_by(|w| w.as_str().cmp(lower)) else {
                continue;
            };
            self.found[i] = true;
            match db::number(value) {
                Some(v) if is_counter(lower) => {
                    em.counter(&self.name, &labels, v);
                }
                Some(v) => em.gauge(&self.name, &labels, v),
                None => {
                    // Checked first: a set insert would allocate the key at every collection.
                    if !self.noted.contains(lower) && self.noted.insert(lower.to_string()) {
                        log::info!(
                            "input mariadb: {}: status variable {var} is `{value}`, not a number; not written",
                            self.server
                        );
                    }
                }
            }
        }
        for (i, w) in self.wanted.iter().enumerate() {
            if !self.found[i] && !self.noted.contains(w) && self.noted.insert(w.clone()) {
                log::info!(
                    "input mariadb: {} has no status variable `{w}` (another version?); not written",
                    self.server
                );
            }
        }
    }
}

/// `mariadb_replication_lag_seconds` per replication connection (MariaDB's multi-source
/// `Connection_name`, MySQL's `Channel_Name`), from `Seconds_Behind_Master` (MySQL 8.0.22+: `Seconds_Behind_Source`);
/// NULL (replication stopped) writes nothing, and `mariadb_replication_running` says why.
pub fn emit_replica(t: &Table, server: &str, em: &mut Emitter<'_>) {
    let lag = t.find("Seconds_Behind_Master").or_else(|| t.find("Seconds_Behind_Source"));
    let io = t.find("Slave_IO_Running").or_else(|| t.find("Replica_IO_Running"));
    let sql = t.find("Slave_SQL_Running").or_else(|| t.find("Replica_SQL_Running"));
    // MariaDB's multi-source name; MySQL's replication channel.
    let conn = t.find("Connection_name").or_else(|| t.find("Channel_Name"));
    for row in 0..t.rows() {
        let name = conn.and_then(|c| t.text(row, c)).unwrap_or("");
        let labels = [("connection", name), ("server", server)];
        if let Some(v) = lag.and_then(|c| t.number(row, c)) {
            em.gauge("mariadb_replication_lag_seconds", &labels, v);
        }
        let running = |c: Option<usize>| c.and_then(|c| t.text(row, c)) == Some("Yes");
        if io.is_some() && sql.is_some() {
            let both = running(io) && running(sql);
            em.gauge("mariadb_replication_running", &labels, f64::from(u8::from(both)));
        }
    }
}

#[cfg(test)]
mod tests;

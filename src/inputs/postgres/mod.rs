//! `postgres`: a PostgreSQL server's statistics: `pg_stat_database` per database, the
//! background writer and checkpointer, replication lag, and custom queries.
//!
//! The client is hand-written (`wire.rs`, `client.rs`): the simple-query protocol over TCP, a
//! unix socket or TLS, on the agent's executor. The connection is kept between collections
//! and made again after a failure, with a doubling wait (1 s to a minute) between attempts.

pub mod client;
pub mod wire;

use crate::config::range;
use crate::config::{BuildError, Dur, Secret};
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::db::{self, Address, Kind, Reconnect, Table, TlsMode};
use crate::inputs::BuildCtx;
use client::{Conn, QueryError, Target};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# A PostgreSQL server: pg_stat_database per database, background writer and checkpointer,
# replication lag, custom queries. A role with pg_monitor sees everything:
#   CREATE ROLE metrics LOGIN PASSWORD '...' IN ROLE pg_monitor;
- postgres:
    host: localhost           # or the socket directory, e.g. /run/postgresql
    port: 5432
    user: metrics
    # password: secret:postgres/password
    dbname: postgres
    # sslmode: prefer         # disable, prefer, require, verify-full
    # sslrootcert: /etc/ssl/pg-ca.pem   # verify-full: the CA (else the Mozilla roots)
    collect_bgwriter: true
    collect_replication: true
    # queries:
    #   - name: table_rows    # postgres_table_rows_<numeric column>, text columns as labels
    #     sql: SELECT relname AS table, n_live_tup AS live FROM pg_stat_user_tables
    timeout: 5s
";

/// libpq's `sslmode`, the values this client has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyFull,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub name: String,
    pub sql: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// A host name or address, or a directory (starting with `/`) holding the server's
    /// unix socket `.s.PGSQL.<port>`.
    pub host: String,
    #[serde(deserialize_with = "range::port")]
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub dbname: String,
    pub sslmode: SslMode,
    /// CA certificates for `verify-full` (PEM); without it the Mozilla roots.
    pub sslrootcert: Option<PathBuf>,
    /// A client certificate and key (PEM) for servers that ask for one.
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    pub collect_bgwriter: bool,
    pub collect_replication: bool,
    pub queries: Vec<Query>,
    /// How long connecting and each collection's queries may take together.
    #[serde(deserialize_with = "range::timeout")]
    pub timeout: Dur,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "localhost".into(),
            port: 5432,
            user: "postgres".into(),
            password: Secret::default(),
            dbname: "postgres".into(),
            sslmode: SslMode::default(),
            sslrootcert: None,
            sslcert: None,
            sslkey: None,
            collect_bgwriter: true,
            collect_replication: true,
            queries: Vec::new(),
            timeout: Dur(Duration::from_secs(5)),
        }
    }
}

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<Postgres, BuildError> {
    if cfg.host.is_empty() {
        return Err(BuildError::at("host", "must name a host or a socket directory"));
    }
    for (key, v) in [("user", &cfg.user), ("dbname", &cfg.dbname)] {
        if v.is_empty() || v.contains('\0') {
            return Err(BuildError::at(key, "must be a non-empty name"));
        }
    }
    for q in &cfg.queries {
        if q.name.is_empty() || !q.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(BuildError::at(
                "queries",
                format!("query name `{}` must be letters, digits and `_`", q.name),
            ));
        }
        if q.sql.trim().is_empty() || q.sql.contains('\0') {
            return Err(BuildError::at("queries", format!("query `{}` has no `sql`", q.name)));
        }
    }
    let addr = if cfg.host.starts_with('/') {
        Address::Unix(PathBuf::from(&cfg.host).join(format!(".s.PGSQL.{}", cfg.port)))
    } else {
        Address::Tcp(cfg.host.clone(), cfg.port)
    };
    let tls_mode = match cfg.sslmode {
        SslMode::Disable => TlsMode::Disable,
        SslMode::Prefer => TlsMode::Prefer,
        SslMode::Require => TlsMode::Require,
        SslMode::VerifyFull => TlsMode::VerifyFull,
    };
    if cfg.sslcert.is_some() != cfg.sslkey.is_some() {
        return Err(BuildError::at("sslcert", "sslcert and sslkey go together"));
    }
    if cfg.sslrootcert.is_some() && tls_mode != TlsMode::VerifyFull {
        return Err(BuildError::at("sslrootcert", "is used by `sslmode: verify-full` only"));
    }
    let server = addr.to_string();
    let target = Target {
        addr,
        host: cfg.host.clone(),
        user: cfg.user.clone(),
        password: cfg.password.clone(),
        dbname: cfg.dbname.clone(),
        tls_mode,
        #[cfg(feature = "tls")]
        tls: tls_config(cfg, tls_mode)?,
    };
    #[cfg(not(feature = "tls"))]
    if matches!(tls_mode, TlsMode::Require | TlsMode::VerifyFull) {
        return Err(BuildError::at("sslmode", "this build has no TLS (cargo feature `tls`)"));
    }
    Ok(Postgres {
        target,
        timeout: cfg.timeout.0,
        bgwriter: cfg.collect_bgwriter,
        replication: cfg.collect_replication,
        queries: cfg.queries.clone(),
        server,
        conn: None,
        reconnect: Reconnect::default(),
        table: Table::default(),
        name: String::new(),
    })
}

#[cfg(feature = "tls")]
fn tls_config(
    cfg: &Config,
    mode: TlsMode,
) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, BuildError> {
    let files = crate::common::tls::TlsFiles {
        ca_certs: cfg.sslrootcert.as_deref(),
        certfile: cfg.sslcert.as_deref(),
        keyfile: cfg.sslkey.as_deref(),
        insecure_skip_verify: false,
    };
    db::tls_config(mode, &files, "input postgres").map_err(|e| BuildError::at("sslmode", e))
}

pub struct Postgres {
    target: Target,
    timeout: Duration,
    bgwriter: bool,
    replication: bool,
    queries: Vec<Query>,
    /// The `server` label: `host:port` or the socket path.
    server: String,
    conn: Option<Conn>,
    reconnect: Reconnect,
    /// Each query's answer, reused.
    table: Table,
    /// A metric's name, built in place.
    name: String,
}

impl Postgres {
    fn reconnect_wait(&self) -> Option<Duration> {
        match self.conn {
            Some(_) => None,
            None => self.reconnect.wait_left(Instant::now()),
        }
    }
}

impl Input for Postgres {
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
            let result = db::bounded(limit, "the statistics queries", self.collect_all(em)).await;
            if let Err(e) = result {
                // A timeout or a broken connection: whatever the server sends later must not
                // be read as the answer to the next query.
                self.conn = None;
                self.reconnect.failed(Instant::now());
                return Err(InputError::new(format!("{}: {e}", self.server)));
            }
            Ok(())
        })
    }
}

impl Postgres {
    async fn collect_all(&mut self, em: &mut Emitter<'_>) -> Result<(), String> {
        if self.conn.is_none() {
            self.conn = Some(Conn::connect(&self.target).await?);
            self.reconnect.succeeded();
        }
        self.collect_databases(em).await?;
        if self.bgwriter {
            self.collect_bgwriter(em).await?;
        }
        if self.replication {
            self.collect_replication(em).await?;
        }
        for i in 0..self.queries.len() {
            self.collect_custom(i, em).await?;
        }
        Ok(())
    }

    /// Runs `sql`: Ok(true) with its rows in `self.table`; a query the server refused is
    /// a partial failure (Ok(false)), a broken connection the collection's error.
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

    async fn collect_databases(&mut self, em: &mut Emitter<'_>) -> Result<(), String> {
        if self.run("SELECT * FROM pg_stat_database", em).await? {
            emit_databases(&self.table, &self.server, &mut self.name, em);
        }
        Ok(())
    }

    async fn collect_bgwriter(&mut self, em: &mut Emitter<'_>) -> Result<(), String> {
        if self.run("SELECT * FROM pg_stat_bgwriter", em).await? {
            emit_bgwriter(&self.table, &self.server, &mut self.name, em, bgwriter_name);
        }
        let version = self.conn.as_ref().map_or(0, |c| c.version);
        if version >= 170_000 && self.run("SELECT * FROM pg_stat_checkpointer", em).await? {
            emit_bgwriter(&self.table, &self.server, &mut self.name, em, checkpointer_name);
        }
        Ok(())
    }

    async fn collect_replication(&mut self, em: &mut Emitter<'_>) -> Result<(), String> {
        if !self.run(REPLICA_SQL, em).await? {
            return Ok(());
        }
        let in_recovery = self.table.number(0, 0);
        let labels = [("server", self.server.as_str())];
        if let Some(v) = in_recovery {
            em.gauge("postgres_in_recovery", &labels, v);
        }
        if in_recovery == Some(1.0) {
            if let Some(lag) = self.table.number(0, 1) {
                em.gauge("postgres_replication_lag_seconds", &labels, lag);
            }
            return Ok(());
        }
        if self.run(STANDBYS_SQL, em).await? {
            emit_standbys(&self.table, &self.server, em);
        }
        Ok(())
    }

    async fn collect_custom(&mut self, i: usize, em: &mut Emitter<'_>) -> Result<(), String> {
        let sql = std::mem::take(&mut self.queries[i].sql);
        let ran = self.run(&sql, em).await;
        self.queries[i].sql = sql;
        if ran? {
            let name = &self.queries[i].name;
            if let Err(e) = emit_custom(&self.table, name, &self.server, &mut self.name, em) {
                em.partial_failure(InputError::new(format!(
                    "{}: query `{name}`: {e}",
                    self.server
                )));
            }
        }
        Ok(())
    }
}

/// On a replica: 1 and the seconds since the last replayed transaction (0 while it has
/// replayed all it received: an idle primary is no lag). On a primary: 0 and NULL.
pub const REPLICA_SQL: &str = "SELECT pg_is_in_recovery()::int AS in_recovery, \
     CASE WHEN NOT pg_is_in_recovery() THEN NULL \
     WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
     ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END AS lag";

/// On a primary, per standby: its replay lag in seconds (0 when PostgreSQL reports none,
/// which it does once a standby has caught up and nothing is written) and in bytes of WAL.
pub const STANDBYS_SQL: &str = "SELECT application_name, state, \
     COALESCE(EXTRACT(EPOCH FROM replay_lag), 0) AS lag_seconds, \
     COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0) AS lag_bytes \
     FROM pg_stat_replication";

fn set_name(name: &mut String, parts: &[&str]) {
    name.clear();
    parts.iter().for_each(|p| name.push_str(p));
}

/// `postgres_<column>{database}` for each numeric column of each database's row; the row
/// of shared catalogs (no database name) is left out. `numbackends` is a gauge, the rest
/// only grow (counters with `_rate`).
pub fn emit_databases(t: &Table, server: &str, name: &mut String, em: &mut Emitter<'_>) {
    let Some(datname) = t.find("datname") else {
        return;
    };
    for row in 0..t.rows() {
        let Some(db) = t.text(row, datname) else {
            continue;
        };
        let labels = [("database", db), ("server", server)];
        for col in 0..t.width() {
            let column = t.column(col);
            if t.kind(col) != Kind::Number || column == "datid" {
                continue;
            }
            let Some(v) = t.number(row, col) else { continue };
            set_name(name, &["postgres_", column]);
            if column == "numbackends" {
                em.gauge(name, &labels, v);
            } else {
                em.counter(name, &labels, v);
            }
        }
    }
}

/// `pg_stat_bgwriter` columns keep their names.
pub fn bgwriter_name(column: &str) -> &str {
    column
}

/// PostgreSQL 17 moved the checkpoint figures to `pg_stat_checkpointer` under new names;
/// they are written under the names `pg_stat_bgwriter` had, so a dashboard goes on across
/// the upgrade. Its new columns keep their own names.
pub fn checkpointer_name(column: &str) -> &str {
    match column {
        "num_timed" => "checkpoints_timed",
        "num_requested" => "checkpoints_req",
        "num_done" => "checkpoints_done",
        "write_time" => "checkpoint_write_time",
        "sync_time" => "checkpoint_sync_time",
        "buffers_written" => "buffers_checkpoint",
        other => other,
    }
}

/// `postgres_bgwriter_<name>` (counters) for the numeric columns of the one-row view.
pub fn emit_bgwriter(
    t: &Table,
    server: &str,
    name: &mut String,
    em: &mut Emitter<'_>,
    rename: fn(&str) -> &str,
) {
    let labels = [("server", server)];
    for col in 0..t.width() {
        if t.kind(col) != Kind::Number {
            continue;
        }
        if let Some(v) = t.number(0, col) {
            set_name(name, &["postgres_bgwriter_", rename(t.column(col))]);
            em.counter(name, &labels, v);
        }
    }
}

fn emit_standbys(t: &Table, server: &str, em: &mut Emitter<'_>) {
    for row in 0..t.rows() {
        let app = t.text(row, 0).unwrap_or("");
        let state = t.text(row, 1).unwrap_or("");
        let labels = [("application", app), ("state", state), ("server", server)];
        if let Some(v) = t.number(row, 2) {
            em.gauge("postgres_replication_lag_seconds", &labels, v);
        }
        if let Some(v) = t.number(row, 3) {
            em.gauge("postgres_replication_lag_bytes", &labels, v);
        }
    }
}

/// The most text columns a custom query may use as labels.
pub const MAX_LABELS: usize = 8;

/// `postgres_<query>_<column>` gauges for the numeric (and boolean) columns of each row,
/// labelled by the row's text columns (a NULL text is an empty label).
pub fn emit_custom(
    t: &Table,
    query: &str,
    server: &str,
    name: &mut String,
    em: &mut Emitter<'_>,
) -> Result<(), String> {
    let texts = (0..t.width()).filter(|&c| t.kind(c) == Kind::Text).count();
    if texts >= MAX_LABELS {
        return Err(format!("{texts} text columns; at most {} are labels", MAX_LABELS - 1));
    }
    for row in 0..t.rows() {
        let mut labels: heapless::Vec<(&str, &str), MAX_LABELS> = heapless::Vec::new();
        for col in (0..t.width()).filter(|&c| t.kind(c) == Kind::Text) {
            let _ = labels.push((t.column(col), t.text(row, col).unwrap_or("")));
        }
        let _ = labels.push(("server", server));
        for col in 0..t.width() {
            if !matches!(t.kind(col), Kind::Number | Kind::Bool) {
                continue;
            }
            if let Some(v) = t.number(row, col) {
                set_name(name, &["postgres_", query, "_", t.column(col)]);
                em.gauge(name, &labels, v);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

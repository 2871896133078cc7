//! The `postgres` input against Debian's PostgreSQL 15, started privately per test as
//! `nobody` (tests/support/postgres.rs), with `psql` on the same server as the oracle:
//! figures read back exactly against the server's own views after known work, a custom
//! query, SCRAM and md5 logins, a wrong password, TLS, a unix socket, a streaming replica,
//! and the server restarted under a running agent; and PostgreSQL 17 (Debian 13's, with its
//! own glibc) for the bgwriter/checkpointer split.
//!
//! ```sh
//! export RTC_POSTGRES_BIN_DIR="$(scripts/setup-postgres)"
//! export RTC_POSTGRES17_BIN_DIR="$(scripts/setup-postgres17)"
//! cargo test --test postgres
//! ```
//!
//! Nothing is skipped: without PostgreSQL, or when it does not start, the tests fail.

#![cfg(feature = "postgres")]

mod support;

use rtcollector::inputs::postgres::{build, Config, Postgres as PgInput};
use rtcollector::inputs::BuildCtx;
use std::collections::BTreeMap;
use std::time::Duration;
use support::agent::Agent;
use support::collect::{get, Collector};
use support::postgres::{Postgres, MD5_USER, PASSWORD, USER};
use support::scratch::Scratch;

/// The input built from `yaml`, collected on demand.
struct Run {
    input: PgInput,
    c: Collector,
}

impl Run {
    fn new(yaml: &str) -> Run {
        let cfg: Config = yaml_serde::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let input = build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).expect("build");
        Run {
            input,
            c: Collector::default(),
        }
    }

    /// One collection at `ts_ms`: samples by `name{label=value,…}` (no host), or the error.
    fn collect(&mut self, ts_ms: i64) -> Result<BTreeMap<String, f64>, String> {
        self.c.collect(&mut self.input, ts_ms)
    }

    fn ok(&mut self, ts_ms: i64, pg: &Postgres) -> BTreeMap<String, f64> {
        self.collect(ts_ms)
            .unwrap_or_else(|e| panic!("collection failed: {e}\n{}", pg.logs()))
    }
}

fn tcp(pg: &Postgres, rest: &str) -> String {
    format!(
        "{{host: 127.0.0.1, port: {}, user: {USER}, password: {PASSWORD}, timeout: 10s, {rest}}}",
        pg.port
    )
}

/// Known work in database `work`: a table, 5 rows committed, 3 rolled back, in sessions
/// that have ended (so their statistics are flushed).
fn known_work(pg: &Postgres) {
    pg.psql("postgres", "CREATE DATABASE work");
    pg.psql(
        "work",
        "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 5)",
    );
    pg.psql(
        "work",
        "BEGIN; INSERT INTO t SELECT generate_series(1, 3); ROLLBACK",
    );
}

#[test]
fn database_figures_match_pg_stat_database_exactly() {
    let pg = Postgres::start();
    known_work(&pg);
    let mut run = Run::new(&tcp(&pg, "collect_replication: false"));
    // The agent reads from `postgres`, psql too, so `work` is still but for the statistics
    // of its last sessions, which their backends flush as they exit, after psql has. The
    // view read before and after the collection must agree: then it saw the same figures.
    let view = || {
        pg.row(
            "postgres",
            "SELECT * FROM pg_stat_database WHERE datname = 'work'",
        )
    };
    let mut ts = 0;
    let (got, oracle) = loop {
        assert!(ts < 50_000, "the view of `work` never stood still");
        ts += 1_000;
        let before = view();
        let got = run.ok(ts, &pg);
        if view() == before {
            break (got, before);
        }
    };
    let labels = format!("database=work,server=127.0.0.1:{}", pg.port);
    let mut compared = 0;
    for (column, value) in &oracle {
        if matches!(
            column.as_str(),
            "datid" | "datname" | "stats_reset" | "checksum_last_failure"
        ) {
            continue;
        }
        if value.is_empty() {
            continue; // NULL (checksum_failures without checksums)
        }
        let want: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("{column} = {value}"));
        assert_eq!(
            get(&got, &format!("postgres_{column}{{{labels}}}")),
            want,
            "{column}"
        );
        compared += 1;
    }
    assert!(
        compared >= 20,
        "only {compared} columns compared: {oracle:?}"
    );
    assert!(get(&got, &format!("postgres_xact_rollback{{{labels}}}")) >= 1.0);
    // The shared-catalog row (no database) is left out; every real database is there.
    let dbs = pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_database WHERE datname IS NOT NULL",
    );
    let seen = got
        .keys()
        .filter(|k| k.starts_with("postgres_numbackends{"))
        .count();
    assert_eq!(seen.to_string(), dbs.trim());

    // A second collection: rates, and the counters of `work` after more known work.
    let inserted = get(&got, &format!("postgres_tup_inserted{{{labels}}}"));
    pg.psql("work", "INSERT INTO t VALUES (1), (2)");
    let flushed = support::wait::wait_until(Duration::from_secs(30), || {
        view()["tup_inserted"].parse::<f64>().unwrap() == inserted + 2.0
    });
    assert!(
        flushed,
        "the two inserts never showed in the view: {:?}",
        view()
    );
    let got = run.ok(ts + 10_000, &pg);
    assert_eq!(
        get(&got, &format!("postgres_tup_inserted{{{labels}}}")),
        inserted + 2.0
    );
    assert_eq!(
        get(&got, &format!("postgres_tup_inserted_rate{{{labels}}}")),
        0.2
    );
}

#[test]
fn bgwriter_checkpoints_match_the_view() {
    let pg = Postgres::start();
    pg.psql("postgres", "CHECKPOINT");
    pg.psql("postgres", "CHECKPOINT");
    let mut run = Run::new(&tcp(&pg, "collect_replication: false"));
    // The view before and after the collection must agree (backends flush theirs late).
    let mut ts = 0;
    let (got, oracle) = loop {
        assert!(ts < 50_000, "pg_stat_bgwriter never stood still");
        ts += 1_000;
        let before = pg.row("postgres", "SELECT * FROM pg_stat_bgwriter");
        let got = run.ok(ts, &pg);
        if pg.row("postgres", "SELECT * FROM pg_stat_bgwriter") == before {
            break (got, before);
        }
    };
    let server = format!("server=127.0.0.1:{}", pg.port);
    for column in [
        "checkpoints_timed",
        "checkpoints_req",
        "buffers_checkpoint",
        "buffers_backend_fsync",
    ] {
        let want: f64 = oracle[column].parse().unwrap();
        assert_eq!(
            get(&got, &format!("postgres_bgwriter_{column}{{{server}}}")),
            want,
            "{column}"
        );
    }
    assert!(
        get(
            &got,
            &format!("postgres_bgwriter_checkpoints_req{{{server}}}")
        ) >= 2.0
    );
}

#[test]
fn custom_query_numbers_with_text_labels() {
    let pg = Postgres::start();
    known_work(&pg);
    // The sessions' statistics reach the views as their backends exit, after psql has.
    let flushed = support::wait::wait_until(Duration::from_secs(30), || {
        pg.psql(
            "work",
            "SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 't'",
        )
        .trim()
            == "5"
    });
    assert!(flushed, "{}", pg.logs());
    let mut run = Run::new(&tcp(
        &pg,
        "dbname: work, collect_bgwriter: false, collect_replication: false, \
         queries: [{name: tables, sql: \"SELECT relname AS table, n_live_tup AS live, \
         pg_relation_size(relid) AS bytes, true AS ok FROM pg_stat_user_tables\"}]",
    ));
    let got = run.ok(1_000, &pg);
    let bytes = pg.psql("work", "SELECT pg_relation_size('t')");
    let server = format!("server=127.0.0.1:{}", pg.port);
    assert_eq!(
        get(&got, &format!("postgres_tables_live{{{server},table=t}}")),
        5.0
    );
    assert_eq!(
        get(&got, &format!("postgres_tables_bytes{{{server},table=t}}")).to_string(),
        bytes.trim()
    );
    assert_eq!(
        get(&got, &format!("postgres_tables_ok{{{server},table=t}}")),
        1.0
    );

    // A query the server refuses is a partial failure with its message; the rest is written.
    let mut run = Run::new(&tcp(
        &pg,
        "collect_replication: false, queries: [{name: bad, sql: SELECT nonsense FROM nowhere}]",
    ));
    let err = run.collect(1_000).unwrap_err();
    assert!(err.contains("relation \"nowhere\" does not exist"), "{err}");
}

#[test]
fn md5_and_unix_socket_logins() {
    let pg = Postgres::start();
    let mut run = Run::new(&format!(
        "{{host: 127.0.0.1, port: {}, user: {MD5_USER}, password: {PASSWORD}, sslmode: disable}}",
        pg.port
    ));
    let got = run.ok(1_000, &pg);
    assert!(got.contains_key(&format!(
        "postgres_numbackends{{database=postgres,server=127.0.0.1:{}}}",
        pg.port
    )));
    let stored = pg.psql(
        "postgres",
        &format!("SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = '{MD5_USER}'"),
    );
    assert_eq!(stored.trim(), "md5");

    let mut run = Run::new(&format!(
        "{{host: {}, port: {}, user: postgres}}",
        pg.socket_dir().display(),
        pg.port
    ));
    let got = run.ok(1_000, &pg);
    let key = format!(
        "postgres_numbackends{{database=postgres,server={}/.s.PGSQL.{}}}",
        pg.socket_dir().display(),
        pg.port
    );
    assert!(got.contains_key(&key), "{:#?}", got.keys());
}

#[test]
fn wrong_password_is_a_clear_error() {
    let pg = Postgres::start();
    let mut run = Run::new(&format!(
        "{{host: 127.0.0.1, port: {}, user: {USER}, password: not-it}}",
        pg.port
    ));
    let err = run.collect(1_000).unwrap_err();
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(err.contains("check `password`"), "{err}");
    assert!(!err.contains("not-it"), "{err}");
}

#[test]
fn tls_with_each_sslmode() {
    let pg = Postgres::start();
    for mode in ["require", "prefer"] {
        let mut run = Run::new(&tcp(&pg, &format!("sslmode: {mode}")));
        run.ok(1_000, &pg);
    }
    let mut run = Run::new(&tcp(
        &pg,
        &format!("sslmode: verify-full, sslrootcert: {}", pg.ca.display()),
    ));
    run.ok(1_000, &pg);
    // The server's own view: every session of the agent's user was encrypted.
    let ssl = pg.psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = '{USER}' AND s.ssl"),
    );
    assert!(ssl.trim().parse::<u32>().unwrap() >= 1, "{ssl}");

    // verify-full against another CA fails the handshake, in words.
    let other = Scratch::new();
    let other_ca = support::certs::make_certs(other.dir.path(), "other");
    let mut run = Run::new(&tcp(
        &pg,
        &format!("sslmode: verify-full, sslrootcert: {}", other_ca.display()),
    ));
    let err = run.collect(1_000).unwrap_err();
    assert!(err.contains("TLS handshake"), "{err}");
}

#[test]
fn replication_lag_on_primary_and_replica() {
    let primary = Postgres::start();
    let replica = Postgres::replica_of(&primary, "rtc_replica");
    primary.psql(
        "postgres",
        "CREATE TABLE r (i int); INSERT INTO r VALUES (1)",
    );
    // Until the standby streams, has replayed everything, and the primary reports no lag
    // (PostgreSQL shows NULL once a standby has caught up and nothing more is written).
    let caught_up = support::wait::wait_until(Duration::from_secs(60), || {
        primary
            .psql(
                "postgres",
                "SELECT state, replay_lsn = pg_current_wal_lsn(), replay_lag IS NULL FROM pg_stat_replication",
            )
            .trim()
            == "streaming\tt\tt"
    });
    assert!(caught_up, "{}\n{}", primary.logs(), replica.logs());
    let mut run = Run::new(&tcp(&primary, "collect_bgwriter: false"));
    let got = run.ok(1_000, &primary);
    let labels = format!(
        "application=rtc_replica,server=127.0.0.1:{},state=streaming",
        primary.port
    );
    assert_eq!(
        get(&got, &format!("postgres_replication_lag_bytes{{{labels}}}")),
        0.0
    );
    assert_eq!(
        get(
            &got,
            &format!("postgres_replication_lag_seconds{{{labels}}}")
        ),
        0.0
    );
    assert_eq!(
        get(
            &got,
            &format!("postgres_in_recovery{{server=127.0.0.1:{}}}", primary.port)
        ),
        0.0
    );

    let mut run = Run::new(&format!(
        "{{host: {}, port: {}, user: postgres, collect_bgwriter: false}}",
        replica.socket_dir().display(),
        replica.port
    ));
    let got = run.ok(1_000, &replica);
    let server = format!(
        "server={}/.s.PGSQL.{}",
        replica.socket_dir().display(),
        replica.port
    );
    assert_eq!(get(&got, &format!("postgres_in_recovery{{{server}}}")), 1.0);
    // Everything received is replayed: no lag.
    let same = replica.psql(
        "postgres",
        "SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()",
    );
    assert_eq!(same.trim(), "t");
    assert_eq!(
        get(
            &got,
            &format!("postgres_replication_lag_seconds{{{server}}}")
        ),
        0.0
    );
}

/// A running agent whose server stops and starts again: one warning when it goes, one
/// line when it is back, and figures again after.
#[test]
fn server_restart_logs_once_each_way() {
    let mut pg = Postgres::start();
    let s = Scratch::new();
    let config = s.config(&format!(
        "hostname: testbox\ninputs:\n  - postgres:\n      host: 127.0.0.1\n      port: {}\n      user: {USER}\n      \
         password: {PASSWORD}\n      interval: 1s\n      timeout: 2s\n      collect_replication: false\n\
         outputs:\n  - stdout:\n      format: json\n",
        pg.port
    ));
    let agent = Agent::start(&config);
    let sample = |l: &str| l.starts_with("OUT ") && l.contains("postgres_numbackends");
    let (mut lines, ok) = agent.wait_for(Duration::from_secs(20), sample);
    assert!(ok, "no sample:\n{}\n{}", lines.join("\n"), pg.logs());
    pg.stop();
    let (more, warned) = agent.wait_for(Duration::from_secs(20), |l| {
        l.contains("[WARN]") && l.contains("input postgres")
    });
    lines.extend(more);
    assert!(warned, "no warning:\n{}", lines.join("\n"));
    // Several failing collections while it is down (the backoff paces the attempts).
    lines.extend(agent.wait_for(Duration::from_secs(4), |_| false).0);
    pg.run();
    let (more, back) = agent.wait_for(Duration::from_secs(30), |l| {
        l.contains("input postgres: recovered")
    });
    lines.extend(more);
    assert!(back, "no recovery:\n{}\n{}", lines.join("\n"), pg.logs());
    let (more, ok) = agent.wait_for(Duration::from_secs(20), sample);
    lines.extend(more);
    assert!(ok, "no sample after the restart:\n{}", lines.join("\n"));
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    let log = lines.join("\n");
    assert_eq!(count("[WARN]"), 1, "{log}");
    assert_eq!(count("input postgres: recovered"), 1, "{log}");
    assert!(!log.contains(PASSWORD), "{log}");
}

/// PostgreSQL 17 moved the checkpoint figures to `pg_stat_checkpointer`: on a real 17 (Debian
/// 13's, from `scripts/setup-postgres17`) they are written under the names
/// `pg_stat_bgwriter` had, with the values of the new view, and the figures that stayed in
/// `pg_stat_bgwriter` under their own.
#[test]
fn postgres_17_checkpointer_figures_match_the_views_under_the_old_names() {
    let pg = Postgres::start_17();
    assert!(pg.psql("postgres", "SHOW server_version").starts_with("17"));
    pg.psql("postgres", "CHECKPOINT");
    pg.psql("postgres", "CHECKPOINT");
    let mut run = Run::new(&tcp(&pg, "collect_replication: false"));
    let read = || {
        let mut both = pg.row("postgres", "SELECT * FROM pg_stat_checkpointer");
        both.extend(pg.row("postgres", "SELECT * FROM pg_stat_bgwriter"));
        both
    };
    let mut ts = 0;
    let (got, oracle) = loop {
        assert!(ts < 50_000, "the views never stood still");
        ts += 1_000;
        let before = read();
        let got = run.ok(ts, &pg);
        if read() == before {
            break (got, before);
        }
    };
    let server = format!("server=127.0.0.1:{}", pg.port);
    for (old_name, column) in [
        ("checkpoints_timed", "num_timed"),
        ("checkpoints_req", "num_requested"),
        ("buffers_checkpoint", "buffers_written"),
        ("restartpoints_done", "restartpoints_done"),
        ("buffers_clean", "buffers_clean"),
        ("buffers_alloc", "buffers_alloc"),
    ] {
        let want: f64 = oracle[column].parse().unwrap();
        assert_eq!(
            get(&got, &format!("postgres_bgwriter_{old_name}{{{server}}}")),
            want,
            "{old_name} from {column}"
        );
    }
    assert!(
        get(
            &got,
            &format!("postgres_bgwriter_checkpoints_req{{{server}}}")
        ) >= 2.0
    );
    assert!(
        !got.keys().any(|k| k.starts_with("postgres_bgwriter_num_")),
        "no sample under the new names: {:?}",
        got.keys().collect::<Vec<_>>()
    );
}

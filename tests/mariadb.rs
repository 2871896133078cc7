//! The `mariadb` input against Debian's MariaDB 10.11, started privately per test as
//! `nobody` (tests/support/mariadb.rs), with the `mariadb` client on the same server as the
//! oracle: status figures read back exactly after known work, a wrong password, TLS, the
//! unix socket, and the server restarted under a running agent.
//!
//! ```sh
//! export RTC_MARIADB_BIN_DIR="$(scripts/setup-mariadb)"
//! cargo test --test mariadb
//! ```
//!
//! Nothing is skipped: without MariaDB, or when it does not start, the tests fail.

#![cfg(feature = "mariadb")]

mod support;

use rtcollector::inputs::mariadb::{build, Config, Mariadb as MariadbInput};
use rtcollector::inputs::BuildCtx;
use std::collections::BTreeMap;
use std::time::Duration;
use support::agent::Agent;
use support::collect::{get, Collector};
use support::mariadb::{Mariadb, PASSWORD, USER};
use support::scratch::Scratch;

/// The input built from `yaml`, collected on demand.
struct Run {
    input: MariadbInput,
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

    fn ok(&mut self, ts_ms: i64, m: &Mariadb) -> BTreeMap<String, f64> {
        self.collect(ts_ms)
            .unwrap_or_else(|e| panic!("collection failed: {e}\n{}", m.logs()))
    }
}

fn tcp(m: &Mariadb, rest: &str) -> String {
    format!(
        "{{host: 127.0.0.1, port: {}, user: {USER}, password: {PASSWORD}, timeout: 10s, {rest}}}",
        m.port
    )
}

#[test]
fn status_matches_show_global_status_exactly() {
    let m = Mariadb::start();
    m.sql("CREATE DATABASE w; CREATE TABLE w.a (i int) ENGINE=InnoDB; CREATE TABLE w.b (i int) ENGINE=InnoDB; INSERT INTO w.a VALUES (1),(2),(3),(4),(5)");
    let mut run = Run::new(&tcp(
        &m,
        "metrics: [Connections, Com_create_table, Com_insert, Innodb_buffer_pool_pages_total, \
         Rpl_semi_sync_master_status, Threads_connected, Uptime, Questions, Not_a_variable]",
    ));
    let got = run.ok(1_000, &m);
    let oracle = m.status();
    let server = format!("server=127.0.0.1:{}", m.port);
    let v = |name: &str| -> f64 { oracle[name].parse().unwrap() };
    // The oracle's own login came after the agent's.
    assert_eq!(
        get(&got, &format!("mariadb_connections{{{server}}}")),
        v("Connections") - 1.0
    );
    // The agent's connection is still open while the oracle's runs.
    assert_eq!(
        get(&got, &format!("mariadb_threads_connected{{{server}}}")),
        v("Threads_connected") - 1.0
    );
    for name in [
        "Com_create_table",
        "Com_insert",
        "Innodb_buffer_pool_pages_total",
    ] {
        let key = format!("mariadb_{}{{{server}}}", name.to_lowercase());
        assert_eq!(get(&got, &key), v(name), "{name}");
    }
    assert_eq!(
        get(&got, &format!("mariadb_com_create_table{{{server}}}")),
        2.0
    );
    assert_eq!(get(&got, &format!("mariadb_com_insert{{{server}}}")), 1.0);
    assert_eq!(oracle["Rpl_semi_sync_master_status"], "OFF");
    assert_eq!(
        get(
            &got,
            &format!("mariadb_rpl_semi_sync_master_status{{{server}}}")
        ),
        0.0
    );
    assert!(!got.keys().any(|k| k.contains("not_a_variable")));

    // Counters get a rate from the second collection on.
    m.sql("INSERT INTO w.b VALUES (1),(2),(3),(4)");
    let got = run.ok(11_000, &m);
    assert_eq!(
        get(&got, &format!("mariadb_com_insert{{{server}}}")),
        v("Com_insert") + 1.0
    );
    assert_eq!(
        get(&got, &format!("mariadb_com_insert_rate{{{server}}}")),
        0.1
    );
    assert!(!got.contains_key(&format!("mariadb_threads_connected_rate{{{server}}}")));
    // One connection for both collections: the only login since is the oracle's INSERT.
    assert_eq!(
        get(&got, &format!("mariadb_connections{{{server}}}")),
        v("Connections") + 1.0
    );
}

#[test]
fn wrong_password_is_a_clear_error() {
    let m = Mariadb::start();
    let mut run = Run::new(&format!(
        "{{host: 127.0.0.1, port: {}, user: {USER}, password: not-it}}",
        m.port
    ));
    let err = run.collect(1_000).unwrap_err();
    assert!(err.contains("Access denied"), "{err}");
    assert!(err.contains("check `password`"), "{err}");
    assert!(!err.contains("not-it"), "{err}");
}

#[test]
fn tls_and_the_unix_socket() {
    let m = Mariadb::start();
    assert_eq!(m.status()["Ssl_accepts"], "0");
    let mut run = Run::new(&tcp(&m, "ssl_mode: REQUIRED"));
    run.ok(1_000, &m);
    assert_eq!(m.status()["Ssl_accepts"], "1");
    let mut run = Run::new(&tcp(
        &m,
        &format!("ssl_mode: VERIFY_IDENTITY, ssl_ca: {}", m.ca.display()),
    ));
    run.ok(1_000, &m);
    assert_eq!(m.status()["Ssl_accepts"], "2");
    let mut run = Run::new(&tcp(&m, "ssl_mode: DISABLED"));
    run.ok(1_000, &m);
    assert_eq!(m.status()["Ssl_accepts"], "2");

    let other = Scratch::new();
    let other_ca = support::certs::make_certs(other.dir.path(), "other");
    let mut run = Run::new(&tcp(
        &m,
        &format!("ssl_mode: VERIFY_IDENTITY, ssl_ca: {}", other_ca.display()),
    ));
    let err = run.collect(1_000).unwrap_err();
    assert!(err.contains("TLS handshake"), "{err}");

    let mut run = Run::new(&format!(
        "{{host: {}, user: {USER}, password: {PASSWORD}}}",
        m.socket().display()
    ));
    let got = run.ok(1_000, &m);
    let key = format!("mariadb_uptime{{server={}}}", m.socket().display());
    assert!(got.contains_key(&key), "{:#?}", got.keys());
}

#[test]
fn replication_on_a_server_that_is_no_replica_writes_nothing() {
    let m = Mariadb::start();
    let mut run = Run::new(&tcp(&m, "replication: true"));
    let got = run.ok(1_000, &m);
    assert!(
        !got.keys().any(|k| k.contains("replication")),
        "{:#?}",
        got.keys()
    );
}

#[test]
fn replica_lag_matches_show_replica_status() {
    let primary = Mariadb::start_with(&["--server-id=1", "--log-bin=primary-bin"]);
    let replica = Mariadb::replica_of(&primary);
    primary.sql("CREATE DATABASE r; CREATE TABLE r.t (i int); INSERT INTO r.t VALUES (1)");
    // Until the replica runs both threads, has the row, and reports no lag.
    let caught_up = support::wait::wait_until(Duration::from_secs(60), || {
        let status = replica.vertical("SHOW REPLICA STATUS");
        status.contains("Slave_IO_Running: Yes")
            && status.contains("Slave_SQL_Running: Yes")
            && status.contains("Seconds_Behind_Master: 0")
            && replica.sql("SELECT count(*) FROM r.t").trim() == "1"
    });
    assert!(
        caught_up,
        "{}\n{}\n{}",
        replica.vertical("SHOW REPLICA STATUS"),
        primary.logs(),
        replica.logs()
    );
    let mut run = Run::new(&tcp(&replica, "replication: true"));
    let got = run.ok(1_000, &replica);
    let labels = format!("connection=,server=127.0.0.1:{}", replica.port);
    assert_eq!(
        get(
            &got,
            &format!("mariadb_replication_lag_seconds{{{labels}}}")
        ),
        0.0
    );
    assert_eq!(
        get(&got, &format!("mariadb_replication_running{{{labels}}}")),
        1.0
    );

    // Replication stopped: lag is NULL (not written), running 0.
    replica.sql("STOP SLAVE");
    let got = run.ok(11_000, &replica);
    assert!(
        !got.contains_key(&format!("mariadb_replication_lag_seconds{{{labels}}}")),
        "{got:#?}"
    );
    assert_eq!(
        get(&got, &format!("mariadb_replication_running{{{labels}}}")),
        0.0
    );
}

#[test]
fn server_restart_logs_once_each_way() {
    let mut m = Mariadb::start();
    let s = Scratch::new();
    let config = s.config(&format!(
        "hostname: testbox\ninputs:\n  - mariadb:\n      host: 127.0.0.1\n      port: {}\n      user: {USER}\n      \
         password: {PASSWORD}\n      interval: 1s\n      timeout: 2s\n\
         outputs:\n  - stdout:\n      format: json\n",
        m.port
    ));
    let agent = Agent::start(&config);
    let sample = |l: &str| l.starts_with("OUT ") && l.contains("mariadb_uptime");
    let (mut lines, ok) = agent.wait_for(Duration::from_secs(20), sample);
    assert!(ok, "no sample:\n{}\n{}", lines.join("\n"), m.logs());
    m.stop();
    let (more, warned) = agent.wait_for(Duration::from_secs(20), |l| {
        l.contains("[WARN]") && l.contains("input mariadb")
    });
    lines.extend(more);
    assert!(warned, "no warning:\n{}", lines.join("\n"));
    lines.extend(agent.wait_for(Duration::from_secs(4), |_| false).0);
    m.run();
    let (more, back) = agent.wait_for(Duration::from_secs(30), |l| {
        l.contains("input mariadb: recovered")
    });
    lines.extend(more);
    assert!(back, "no recovery:\n{}\n{}", lines.join("\n"), m.logs());
    let (more, ok) = agent.wait_for(Duration::from_secs(20), sample);
    lines.extend(more);
    assert!(ok, "no sample after the restart:\n{}", lines.join("\n"));
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    let log = lines.join("\n");
    assert_eq!(count("[WARN]"), 1, "{log}");
    assert_eq!(count("input mariadb: recovered"), 1, "{log}");
    assert!(!log.contains(PASSWORD), "{log}");
}

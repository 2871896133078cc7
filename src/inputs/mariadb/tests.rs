use super::*;
use crate::core::metric::SeriesTable;
use crate::core::rate::RateTracker;
use crate::core::Sample;
use crate::inputs::support::db::Kind;
use std::cell::RefCell;
use std::collections::BTreeMap;

fn emitted(f: impl FnOnce(&mut Emitter<'_>)) -> BTreeMap<String, f64> {
    let table = RefCell::new(SeriesTable::new("test", 10_000));
    let mut rates = RateTracker::default();
    let mut buf: Vec<Sample> = Vec::new();
    let mut em = Emitter::new(&table, &mut rates, &mut buf, 1_000);
    f(&mut em);
    let table = table.borrow();
    buf.iter()
        .map(|s| {
            let series = table.get(s.series);
            let labels: Vec<String> =
                series.labels.iter().filter(|(k, _)| &**k != "host").map(|(k, v)| format!("{k}={v}")).collect();
            (format!("{}{{{}}}", series.name, labels.join(",")), s.value)
        })
        .collect()
}

fn built(yaml: &str) -> Result<Mariadb, String> {
    let cfg: Config = yaml_serde::from_str(yaml).map_err(|e| e.to_string())?;
    build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).map_err(|e| e.to_string())
}

#[test]
fn the_sample_parses_and_builds() {
    let yaml = SAMPLE.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
    let v: yaml_serde::Value = yaml_serde::from_str(&yaml).unwrap();
    let cfg: Config = yaml_serde::from_value(v[0]["mariadb"].clone()).unwrap();
    let m = build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).unwrap();
    assert_eq!(
        m.status_sql,
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('connections','questions','threads_connected','uptime')"
    );
}

#[test]
fn bad_options_name_their_key() {
    let err = |yaml: &str| built(yaml).err().unwrap_or_else(|| panic!("{yaml} built"));
    assert!(err("{metrics: [\"x') OR 1=1 --\"]}").contains("metrics"));
    assert!(err("{user: ''}").contains("user"));
    assert!(err("{ssl_ca: /ca.pem}").contains("ssl_ca"));
    assert!(built("{ssl_mode: VERIFY_CA}").is_err());
}

#[test]
fn the_password_never_prints() {
    let cfg: Config = yaml_serde::from_str("{password: hunter2}").unwrap();
    assert!(!format!("{cfg:?}").contains("hunter2"));
    assert!(!yaml_serde::to_string(&cfg).unwrap().contains("hunter2"));
}

#[test]
fn counters_switches_and_text() {
    let mut m = built("{metrics: [Connections, Threads_connected, Innodb_buffer_pool_dump_status, Rpl_semi_sync_master_status, Missing]}").unwrap();
    m.table.push_column(b"Variable_name", Kind::Text);
    m.table.push_column(b"Value", Kind::Text);
    for (k, v) in [
        ("Connections", "12"),
        ("Threads_connected", "3"),
        ("Innodb_buffer_pool_dump_status", "Dumping of buffer pool not started"),
        ("Rpl_semi_sync_master_status", "OFF"),
        ("Uptime", "100"),
    ] {
        m.table.push_cell(Some(k.as_bytes()));
        m.table.push_cell(Some(v.as_bytes()));
    }
    let got = emitted(|em| m.emit_status(em));
    let keys: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "mariadb_connections{server=localhost:3306}",
            "mariadb_rpl_semi_sync_master_status{server=localhost:3306}",
            "mariadb_threads_connected{server=localhost:3306}",
        ]
    );
    assert_eq!(got["mariadb_rpl_semi_sync_master_status{server=localhost:3306}"], 0.0);
    assert!(m.noted.contains("missing"));
    assert!(m.noted.contains("innodb_buffer_pool_dump_status"));
}

#[test]
fn which_variables_are_counters() {
    for c in ["connections", "com_select", "bytes_sent", "innodb_rows_read", "innodb_data_read"] {
        assert!(is_counter(c), "{c}");
    }
    for g in ["threads_connected", "uptime", "innodb_data_pending_reads", "open_tables", "max_used_connections"] {
        assert!(!is_counter(g), "{g}");
    }
}

#[test]
fn replica_lag_per_connection() {
    let mut t = Table::default();
    for c in ["Connection_name", "Slave_IO_Running", "Slave_SQL_Running", "Seconds_Behind_Master"] {
        t.push_column(c.as_bytes(), Kind::Text);
    }
    for cell in [Some("a"), Some("Yes"), Some("Yes"), Some("3"), Some("b"), Some("No"), Some("Yes"), None] {
        t.push_cell(cell.map(str::as_bytes));
    }
    let got = emitted(|em| emit_replica(&t, "s", em));
    assert_eq!(got["mariadb_replication_lag_seconds{connection=a,server=s}"], 3.0);
    assert_eq!(got["mariadb_replication_running{connection=a,server=s}"], 1.0);
    assert_eq!(got["mariadb_replication_running{connection=b,server=s}"], 0.0);
    assert_eq!(got.len(), 3);
}

/// MySQL 8.0.22+ names the columns after the source and replica, and its channels.
#[test]
fn mysql_replica_columns() {
    let mut t = Table::default();
    for c in ["Replica_IO_State", "Replica_IO_Running", "Replica_SQL_Running", "Seconds_Behind_Source", "Channel_Name"] {
        t.push_column(c.as_bytes(), Kind::Text);
    }
    for cell in ["Waiting for source to send event", "Yes", "Yes", "12", ""] {
        t.push_cell(Some(cell.as_bytes()));
    }
    let got = emitted(|em| emit_replica(&t, "s", em));
    assert_eq!(got["mariadb_replication_lag_seconds{connection=,server=s}"], 12.0);
    assert_eq!(got["mariadb_replication_running{connection=,server=s}"], 1.0);
}

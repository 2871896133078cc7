use super::*;
use crate::core::metric::SeriesTable;
use crate::core::rate::RateTracker;
use crate::inputs::testutil::sample_options;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// An INFO reply in Redis 7's layout, trimmed, with values made up for the test.
const INFO: &str = "# Server\r\n\
redis_version:7.0.15\r\n\
uptime_in_seconds:3600\r\n\
\r\n\
# Clients\r\n\
connected_clients:4\r\n\
blocked_clients:0\r\n\
\r\n\
# Memory\r\n\
used_memory:1048576\r\n\
used_memory_human:1.00M\r\n\
mem_fragmentation_ratio:1.25\r\n\
\r\n\
# Persistence\r\n\
rdb_last_bgsave_status:ok\r\n\
aof_last_write_status:err\r\n\
\r\n\
# Stats\r\n\
total_commands_processed:1000\r\n\
keyspace_hits:30\r\n\
\r\n\
# Replication\r\n\
role:master\r\n\
connected_slaves:0\r\n\
master_replid:8f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6\r\n\
master_repl_offset:1234\r\n\
\r\n\
# CPU\r\n\
used_cpu_sys:1.500000\r\n\
\r\n\
# Keyspace\r\n\
db0:keys=12,expires=3,avg_ttl=45000\r\n\
db2:keys=1,expires=0,avg_ttl=0\r\n";

fn input(yaml: &str) -> RedisInfo {
    let cfg: Config = yaml_serde::from_str(yaml).unwrap();
    build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).unwrap()
}

/// Emits `text` at `ts_ms`; samples keyed `name{labels}` without host, server and port.
fn emit(
    r: &mut RedisInfo,
    table: &RefCell<SeriesTable>,
    rates: &mut RateTracker,
    text: &str,
    ts_ms: i64,
) -> BTreeMap<String, f64> {
    let mut out = Vec::new();
    let mut em = Emitter::new(table, rates, &mut out, ts_ms);
    r.emit(text, &mut em);
    let t = table.borrow();
    out.iter()
        .map(|s| {
            let series = t.get(s.series);
            assert_eq!(series.label("server"), Some("localhost"));
            assert_eq!(series.label("port"), Some("6379"));
            let db = series
                .label("db")
                .map_or(String::new(), |db| format!("{{db={db}}}"));
            (format!("{}{db}", series.name), s.value)
        })
        .collect()
}

#[test]
fn sample_is_a_valid_config() {
    let cfg: Config = sample_options(SAMPLE);
    assert_eq!((cfg.conn.host.as_str(), cfg.conn.port), ("localhost", 6379));
    assert!(cfg.metrics.is_empty());
}

#[test]
fn info_lines_keep_their_section() {
    let fields: Vec<_> = info::fields(INFO).collect();
    assert_eq!(
        fields[0],
        info::Field {
            section: "Server",
            field: "redis_version",
            value: "7.0.15"
        }
    );
    let db2 = fields.last().unwrap();
    assert_eq!(
        (db2.section, db2.field, db2.value),
        ("Keyspace", "db2", "keys=1,expires=0,avg_ttl=0")
    );
    assert_eq!(fields.len(), 18);
}

#[test]
fn numbers_and_statuses() {
    assert_eq!(info::number("used_memory", "1048576"), Some(1_048_576.0));
    assert_eq!(info::number("used_cpu_sys", "1.500000"), Some(1.5));
    assert_eq!(info::number("rdb_last_bgsave_status", "ok"), Some(1.0));
    assert_eq!(info::number("aof_last_write_status", "err"), Some(0.0));
    assert_eq!(info::number("role", "master"), None);
    assert_eq!(info::number("used_memory_human", "1.00M"), None);
    assert_eq!(info::number("x", "nan"), None);
    assert_eq!(
        &info::keyspace("keys=12,expires=3,avg_ttl=45000").unwrap()[..],
        [("keys", 12.0), ("expires", 3.0), ("avg_ttl", 45000.0)]
    );
    assert!(info::keyspace("keys=12,expires").is_none());
    assert!(info::keyspace("keys=a").is_none());
}

#[test]
fn default_fields_keyspace_and_replication() {
    let mut r = input("{}");
    let table = RefCell::new(SeriesTable::new("h", 1000));
    let mut rates = RateTracker::default();
    let got = emit(&mut r, &table, &mut rates, INFO, 10_000);
    let want: BTreeMap<String, f64> = [
        ("redis_uptime_in_seconds", 3600.0),
        ("redis_connected_clients", 4.0),
        ("redis_blocked_clients", 0.0),
        ("redis_used_memory", 1_048_576.0),
        ("redis_mem_fragmentation_ratio", 1.25),
        ("redis_rdb_last_bgsave_status", 1.0),
        ("redis_aof_last_write_status", 0.0),
        ("redis_total_commands_processed", 1000.0),
        ("redis_keyspace_hits", 30.0),
        ("redis_connected_slaves", 0.0),
        ("redis_replication_connected_slaves", 0.0),
        ("redis_replication_master_repl_offset", 1234.0),
        ("redis_used_cpu_sys", 1.5),
        ("redis_keyspace_keys{db=db0}", 12.0),
        ("redis_keyspace_expires{db=db0}", 3.0),
        ("redis_keyspace_avg_ttl{db=db0}", 45000.0),
        ("redis_keyspace_keys{db=db2}", 1.0),
        ("redis_keyspace_expires{db=db2}", 0.0),
        ("redis_keyspace_avg_ttl{db=db2}", 0.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want);
    // Ten seconds later the counters have rates.
    let later = INFO
        .replace("total_commands_processed:1000", "total_commands_processed:1500")
        .replace("used_cpu_sys:1.500000", "used_cpu_sys:2.500000");
    let got = emit(&mut r, &table, &mut rates, &later, 20_000);
    assert_eq!(got["redis_total_commands_processed_rate"], 50.0);
    assert_eq!(got["redis_used_cpu_sys_rate"], 0.1);
    assert_eq!(got["redis_keyspace_hits_rate"], 0.0);
    assert!(!got.contains_key("redis_used_memory_rate"), "a gauge has no rate");
}

#[test]
fn metrics_selects_fields() {
    let mut r = input("{metrics: [used_memory, role, keyspace_hits, no_such_field]}");
    let table = RefCell::new(SeriesTable::new("h", 1000));
    let got = emit(&mut r, &table, &mut RateTracker::default(), INFO, 10_000);
    let names: Vec<&str> = got.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "redis_keyspace_avg_ttl{db=db0}",
            "redis_keyspace_avg_ttl{db=db2}",
            "redis_keyspace_expires{db=db0}",
            "redis_keyspace_expires{db=db2}",
            "redis_keyspace_hits",
            "redis_keyspace_keys{db=db0}",
            "redis_keyspace_keys{db=db2}",
            "redis_replication_connected_slaves",
            "redis_replication_master_repl_offset",
            "redis_used_memory",
        ]
    );
    assert!(r.noted.contains("role") && r.noted.contains("no_such_field"));
}

#[test]
fn bad_options_are_config_errors() {
    // Rejected when parsed (a value out of its range) or when built.
    let err = |yaml: &str| match yaml_serde::from_str::<Config>(yaml) {
        Err(e) => e.to_string(),
        Ok(cfg) => build(&cfg, &BuildCtx::with_roots("/proc", "/sys"))
            .err()
            .expect("rejected")
            .to_string(),
    };
    assert!(err("{username: u}").contains("password"));
    assert!(err("{ssl_certfile: /c.pem}").contains("ssl: true"));
    assert!(err("{timeout: 0}").contains("timeout"));
    assert!(err("{metrics: ['a:b']}").contains("not an INFO field"));
    assert!(yaml_serde::from_str::<Config>("{bogus: 1}").is_err());
    let cfg: Config = yaml_serde::from_str("{password: hunter2}").unwrap();
    assert!(!format!("{cfg:?}").contains("hunter2"));
}

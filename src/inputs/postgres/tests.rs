use super::*;
use crate::core::metric::SeriesTable;
use crate::core::rate::RateTracker;
use crate::core::Sample;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Runs `f` with an emitter and returns what it wrote as `name{label=value,…}`.
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

fn table(columns: &[(&str, Kind)], rows: &[&[Option<&str>]]) -> Table {
    let mut t = Table::default();
    for (name, kind) in columns {
        t.push_column(name.as_bytes(), *kind);
    }
    for row in rows {
        for cell in *row {
            t.push_cell(cell.map(str::as_bytes));
        }
    }
    t
}

#[test]
fn the_sample_parses_and_builds() {
    let yaml = SAMPLE.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
    let v: yaml_serde::Value = yaml_serde::from_str(&yaml).unwrap();
    let opts = v[0]["postgres"].clone();
    let cfg: Config = yaml_serde::from_value(opts).unwrap();
    assert_eq!(cfg.user, "metrics");
    build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).unwrap();
}

#[test]
fn bad_options_name_their_key() {
    let bad = |yaml: &str| {
        let cfg: Config = yaml_serde::from_str(yaml).unwrap();
        match build(&cfg, &BuildCtx::with_roots("/proc", "/sys")) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{yaml} built"),
        }
    };
    assert!(bad("{user: ''}").contains("user"));
    assert!(bad("{queries: [{name: 'a b', sql: SELECT 1}]}").contains("queries"));
    assert!(bad("{sslrootcert: /x.pem}").contains("sslrootcert"));
    assert!(yaml_serde::from_str::<Config>("{sslmode: verify-ca}").is_err());
}

#[test]
fn the_password_never_prints() {
    let cfg: Config = yaml_serde::from_str("{password: hunter2}").unwrap();
    assert!(!format!("{cfg:?}").contains("hunter2"));
    assert!(!yaml_serde::to_string(&cfg).unwrap().contains("hunter2"));
}

#[test]
fn databases_counters_and_the_shared_row_left_out() {
    let t = table(
        &[
            ("datid", Kind::Number),
            ("datname", Kind::Text),
            ("numbackends", Kind::Number),
            ("xact_commit", Kind::Number),
            ("stats_reset", Kind::Other),
        ],
        &[
            &[Some("0"), None, Some("0"), Some("5"), None],
            &[Some("5"), Some("app"), Some("2"), Some("100"), Some("2026-01-01")],
        ],
    );
    let got = emitted(|em| emit_databases(&t, "h:5432", &mut String::new(), em));
    let keys: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "postgres_numbackends{database=app,server=h:5432}",
            "postgres_xact_commit{database=app,server=h:5432}"
        ]
    );
}

/// PostgreSQL 17's `pg_stat_checkpointer` as `\d pg_stat_checkpointer` shows it on 17.12
/// (tests/postgres.rs checks the mapping on a running 17 too).
const PG17_CHECKPOINTER: [&str; 9] = [
    "num_timed",
    "num_requested",
    "restartpoints_timed",
    "restartpoints_req",
    "restartpoints_done",
    "write_time",
    "sync_time",
    "buffers_written",
    "stats_reset",
];
/// And its `pg_stat_bgwriter`, which kept only these.
const PG17_BGWRITER: [&str; 4] = ["buffers_clean", "maxwritten_clean", "buffers_alloc", "stats_reset"];

#[test]
fn postgres_17_checkpointer_figures_keep_the_bgwriter_names() {
    let kind = |c: &str| if c == "stats_reset" { Kind::Other } else { Kind::Number };
    let cols: Vec<(&str, Kind)> = PG17_CHECKPOINTER.iter().map(|c| (*c, kind(c))).collect();
    let row: Vec<Option<&str>> = cols.iter().map(|(c, _)| (*c != "stats_reset").then_some("7")).collect();
    let t = table(&cols, &[&row]);
    let got = emitted(|em| emit_bgwriter(&t, "s", &mut String::new(), em, checkpointer_name));
    let names: Vec<&str> = got
        .keys()
        .map(|k| k.split('{').next().unwrap())
        .filter(|k| !k.ends_with("_rate"))
        .collect();
    assert_eq!(
        names,
        [
            "postgres_bgwriter_buffers_checkpoint",
            "postgres_bgwriter_checkpoint_sync_time",
            "postgres_bgwriter_checkpoint_write_time",
            "postgres_bgwriter_checkpoints_req",
            "postgres_bgwriter_checkpoints_timed",
            "postgres_bgwriter_restartpoints_done",
            "postgres_bgwriter_restartpoints_req",
            "postgres_bgwriter_restartpoints_timed",
        ]
    );
    let cols: Vec<(&str, Kind)> = PG17_BGWRITER.iter().map(|c| (*c, kind(c))).collect();
    let t = table(&cols, &[&[Some("1"), Some("2"), Some("3"), None]]);
    let got = emitted(|em| emit_bgwriter(&t, "s", &mut String::new(), em, bgwriter_name));
    assert_eq!(got["postgres_bgwriter_buffers_alloc{server=s}"], 3.0);
    assert_eq!(got.len(), 3);
}

#[test]
fn custom_query_text_columns_are_labels() {
    let t = table(
        &[("table", Kind::Text), ("live", Kind::Number), ("ok", Kind::Bool), ("at", Kind::Other)],
        &[
            &[Some("a"), Some("10"), Some("t"), Some("x")],
            &[None, Some("3"), Some("f"), None],
        ],
    );
    let got = emitted(|em| emit_custom(&t, "rows", "s", &mut String::new(), em).unwrap());
    assert_eq!(got["postgres_rows_live{server=s,table=a}"], 10.0);
    assert_eq!(got["postgres_rows_ok{server=s,table=a}"], 1.0);
    assert_eq!(got["postgres_rows_live{server=s,table=}"], 3.0);
    assert_eq!(got["postgres_rows_ok{server=s,table=}"], 0.0);
    assert_eq!(got.len(), 4);
    let many: Vec<(String, Kind)> = (0..8).map(|i| (format!("t{i}"), Kind::Text)).collect();
    let many: Vec<(&str, Kind)> = many.iter().map(|(n, k)| (n.as_str(), *k)).collect();
    let t = table(&many, &[]);
    assert!(emitted(|em| assert!(emit_custom(&t, "q", "s", &mut String::new(), em).is_err())).is_empty());
}

//! The `postgres` and `mariadb` inputs against private local servers (the tests' helpers in
//! tests/support/): time and heap allocations per collection on a kept connection.
//!
//! Run: `RTC_POSTGRES_BIN_DIR="$(scripts/setup-postgres)" RTC_MARIADB_BIN_DIR="$(scripts/setup-mariadb)"
//! cargo bench --bench databases` (optionally `-- CYCLES` or `RTC_BENCH_CYCLES`, default 200). The time includes
//! the server's own work answering the queries, over loopback TCP.

mod common;
#[path = "common/counting_alloc.rs"]
mod counting_alloc;
#[path = "../tests/support/mod.rs"]
mod support;

use counting_alloc::ALLOCS;
use rtcollector::core::metric::SeriesTable;
use rtcollector::core::rate::RateTracker;
use rtcollector::core::{Emitter, Input, Sample};
use rtcollector::inputs::BuildCtx;
use std::cell::RefCell;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

fn main() {
    let cycles: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or_else(|| common::env_or("RTC_BENCH_CYCLES", 200));
    let ctx = BuildCtx::with_roots("/proc", "/sys");
    let pg = support::postgres::Postgres::start();
    pg.psql("postgres", "CREATE DATABASE app1");
    pg.psql("postgres", "CREATE DATABASE app2");
    let common = format!(
        "host: 127.0.0.1, port: {}, user: {}, password: {}",
        pg.port,
        support::postgres::USER,
        support::postgres::PASSWORD
    );
    println!("postgres 15, local server, 5 databases, kept connection:");
    for (label, extra) in [
        ("plain", "sslmode: disable"),
        ("TLS", "sslmode: require"),
        (
            "TLS+query",
            "sslmode: require, queries: [{name: size, sql: \"SELECT datname AS db, pg_database_size(datname) AS bytes FROM pg_database\"}]",
        ),
    ] {
        let cfg: rtcollector::inputs::postgres::Config =
            yaml_serde::from_str(&format!("{{{common}, {extra}}}")).expect("config");
        let input = rtcollector::inputs::postgres::build(&cfg, &ctx).expect("build");
        run(label, input, cycles);
    }
    drop(pg);

    let m = support::mariadb::Mariadb::start();
    let common = format!(
        "host: 127.0.0.1, port: {}, user: {}, password: {}",
        m.port,
        support::mariadb::USER,
        support::mariadb::PASSWORD
    );
    println!("mariadb 10.11, local server, kept connection:");
    for (label, extra) in [
        ("default 4", "ssl_mode: DISABLED"),
        ("TLS", "ssl_mode: REQUIRED"),
        (
            "20 vars",
            "ssl_mode: DISABLED, metrics: [Threads_connected, Connections, Uptime, Questions, Queries, \
             Com_select, Com_insert, Com_update, Com_delete, Bytes_received, Bytes_sent, Slow_queries, \
             Aborted_clients, Aborted_connects, Created_tmp_tables, Created_tmp_disk_tables, \
             Innodb_buffer_pool_reads, Innodb_buffer_pool_read_requests, Open_tables, Opened_tables]",
        ),
    ] {
        let cfg: rtcollector::inputs::mariadb::Config =
            yaml_serde::from_str(&format!("{{{common}, {extra}}}")).expect("config");
        let input = rtcollector::inputs::mariadb::build(&cfg, &ctx).expect("build");
        run(label, input, cycles);
    }
}

fn run(label: &str, mut input: impl Input, cycles: usize) {
    let table = RefCell::new(SeriesTable::new("bench", 100_000));
    let mut rates = RateTracker::default();
    let mut buf: Vec<Sample> = Vec::with_capacity(1024);
    let mut ts = 0i64;
    let mut collect = |input: &mut dyn Input| {
        buf.clear();
        ts += 10_000;
        let mut em = Emitter::new(&table, &mut rates, &mut buf, ts);
        let started = Instant::now();
        smol::block_on(input.collect(&mut em)).expect("collect");
        (started.elapsed(), buf.len())
    };
    // Warm-up: the login, series interned, buffers grown.
    let (first, _) = collect(&mut input);
    collect(&mut input);
    let allocs = ALLOCS.load(Relaxed);
    let mut times: Vec<Duration> = Vec::with_capacity(cycles);
    let mut samples = 0;
    for _ in 0..cycles {
        let (t, n) = collect(&mut input);
        times.push(t);
        samples = n;
    }
    let per_alloc = (ALLOCS.load(Relaxed) - allocs) as f64 / cycles as f64;
    times.sort();
    println!(
        "  {label:<10} first (with the login) {first:>9.2?}; over {cycles}: median {:>9.2?}, max {:>9.2?}; \
         {per_alloc:.1} allocs, {samples} samples per collection",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

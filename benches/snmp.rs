//! The `snmp` input's interface preset against a local snmpd serving 50 interfaces
//! (ifTable and ifXTable through tests/fixtures/snmp/pass_persist.py, the machine's own
//! interfaces switched off: making 50 real ones needs root and a network namespace): requests,
//! time and heap allocations per collection, for v2c and v3 (SHA/AES).
//!
//! Run: `RTC_SNMP_BIN_DIR="$(scripts/setup-snmp)" cargo bench --bench snmp` (optionally
//! `-- CYCLES`, default 100; `RTC_BENCH_SNMP_ROWS` interfaces, default 50). The time includes snmpd's work and its pass_persist helper (a
//! Python process answering every row), so it is an upper bound of what a switch costs us.

mod common;
#[path = "common/counting_alloc.rs"]
mod counting_alloc;
#[path = "../tests/support/mod.rs"]
mod support;

use counting_alloc::ALLOCS;
use rtcollector::core::metric::SeriesTable;
use rtcollector::core::rate::RateTracker;
use rtcollector::core::{Emitter, Input, Sample};
use rtcollector::inputs::snmp::{build, Config};
use rtcollector::inputs::BuildCtx;
use std::cell::RefCell;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use support::snmpd::{self, Served, Snmpd};

fn main() {
    let cycles: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let rows: usize = common::env_or("RTC_BENCH_SNMP_ROWS", 50);
    let d = Snmpd::start(&Served {
        interfaces: Some(rows),
        ..Served::default()
    });
    let common = format!(
        "host: 127.0.0.1, port: {}, timeout: 5s, interfaces: true",
        d.port
    );
    println!(
        "snmp: interface preset (ifTable + ifXTable walks) of {rows} interfaces, local snmpd:"
    );
    let v2c = format!(
        "{{{common}, snmpVersion: 2c, communityString: {}}}",
        snmpd::COMMUNITY
    );
    run("v2c", &v2c, cycles);
    let v3 = format!(
        "{{{common}, snmpVersion: 3, username: {}, authPassPhrase: {}, privacyPassPhrase: {}}}",
        snmpd::V3_USER,
        snmpd::AUTH_PASS,
        snmpd::PRIV_PASS
    );
    run("v3 SHA/AES", &v3, cycles);
}

fn run(label: &str, yaml: &str, cycles: usize) {
    let cfg: Config = yaml_serde::from_str(yaml).expect("config");
    let mut input = build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).expect("build");
    let table = RefCell::new(SeriesTable::new("bench", 100_000));
    let mut rates = RateTracker::default();
    let mut buf: Vec<Sample> = Vec::with_capacity(1024);
    let mut ts = 0i64;
    let mut collect = |input: &mut rtcollector::inputs::snmp::Snmp| {
        buf.clear();
        ts += 10_000;
        let mut em = Emitter::new(&table, &mut rates, &mut buf, ts);
        let started = Instant::now();
        smol::block_on(input.collect(&mut em)).expect("collect");
        (started.elapsed(), buf.len())
    };
    // Warm-up: v3 discovery, key localization, series interned, buffers grown.
    let (first, _) = collect(&mut input);
    collect(&mut input);
    let requests = input.requests();
    let allocs = ALLOCS.load(Relaxed);
    let mut times: Vec<Duration> = Vec::with_capacity(cycles);
    let mut samples = 0;
    for _ in 0..cycles {
        let (t, n) = collect(&mut input);
        times.push(t);
        samples = n;
    }
    let per_alloc = (ALLOCS.load(Relaxed) - allocs) as f64 / cycles as f64;
    let per_request = (input.requests() - requests) as f64 / cycles as f64;
    times.sort();
    let mean = times.iter().sum::<Duration>() / cycles as u32;
    println!(
        "  {label:<11} first {first:>9.2?}; over {cycles}: mean {mean:>9.2?}, median {:>9.2?}, max {:>9.2?}; \
         {per_request:.0} requests, {per_alloc:.1} allocs, {samples} samples per collection",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

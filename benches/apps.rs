//! The application inputs, one collection at a time: µs and heap allocations per collection.
//!
//! - `exec` running a script that prints 1 line, and one that prints 1000 lines (the
//!   difference is the parsing; the rest is starting a process);
//! - `redis` against a private Debian redis-server on a free loopback port (INFO with the
//!   default fields, on a kept connection);
//! - `docker`'s decoding and figures for one container's stats answer (no engine here).
//!
//! Run: `cargo bench --bench apps` (optionally `-- ROUNDS`, default 200).

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
#[path = "../tests/support/mod.rs"]
mod support;

use counting_alloc::ALLOCS;
use rtcollector::core::metric::SeriesTable;
use rtcollector::core::rate::RateTracker;
use rtcollector::core::{Emitter, Input, Sample};
use rtcollector::inputs::docker::api::Stats;
use rtcollector::inputs::BuildCtx;
use std::cell::RefCell;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

fn input(yaml: &str) -> Box<dyn Input> {
    let text = format!("inputs:\n  - {yaml}\n");
    let cfg = rtcollector::config::parse(std::path::Path::new("bench.yaml"), &text)
        .unwrap_or_else(|e| panic!("{yaml}: {e}"));
    cfg.inputs[0]
        .options
        .build(&BuildCtx::with_roots("/proc", "/sys"))
        .unwrap()
}

/// Collects `rounds` times; prints µs and allocations per collection and samples written.
fn bench(name: &str, input: &mut dyn Input, rounds: u64) {
    let table = RefCell::new(SeriesTable::new("bench", 100_000));
    let mut rates = RateTracker::default();
    let mut buf: Vec<Sample> = Vec::with_capacity(4096);
    // One warm-up collection: connections, series, buffers.
    let mut once = |ts: i64, buf: &mut Vec<Sample>| {
        buf.clear();
        let mut em = Emitter::new(&table, &mut rates, buf, ts);
        let r = smol::block_on(input.collect(&mut em));
        let partial = em.take_partial_failure();
        assert!(r.is_ok() && partial.is_none(), "{name}: {r:?} {partial:?}");
    };
    once(0, &mut buf);
    let allocs = ALLOCS.load(Relaxed);
    let start = Instant::now();
    for i in 1..=rounds {
        once(i as i64 * 10_000, &mut buf);
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    let per = (ALLOCS.load(Relaxed) - allocs) as f64 / rounds as f64;
    println!(
        "{name:<28} {us:>10.1} µs/collection {per:>8.1} allocs/collection {:>6} samples",
        buf.len()
    );
}

fn main() {
    let rounds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.sh");
    std::fs::write(&one, "#!/bin/sh\necho 'temp 21.5 zone=a'\n").unwrap();
    let many = dir.path().join("many.sh");
    std::fs::write(
        &many,
        "#!/bin/sh\ni=0\nwhile [ $i -lt 1000 ]; do echo \"m$i $i zone=a\"; i=$((i+1)); done\n",
    )
    .unwrap();
    for p in [&one, &many] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    println!("{rounds} collections each");
    bench(
        "exec, 1 line",
        &mut *input(&format!(
            "exec: {{commands: ['{}'], data_format: metrics}}",
            one.display()
        )),
        rounds,
    );
    bench(
        "exec, 1000 lines",
        &mut *input(&format!(
            "exec: {{commands: ['{}'], data_format: metrics}}",
            many.display()
        )),
        rounds,
    );

    let server = support::redis_server::Server::plain(&[]);
    bench(
        "redis, default fields",
        &mut *input(&format!(
            "redis: {{host: 127.0.0.1, port: {}}}",
            server.port
        )),
        rounds,
    );

    let raw = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/docker/stats-cache.json"),
    )
    .unwrap();
    let n = rounds * 100;
    let allocs = ALLOCS.load(Relaxed);
    let start = Instant::now();
    let mut sum = 0.0;
    for _ in 0..n {
        let s: Stats = serde_json::from_slice(std::hint::black_box(&raw)).unwrap();
        sum += s.cpu_percent().unwrap() + s.memory_percent().unwrap();
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let per = (ALLOCS.load(Relaxed) - allocs) as f64 / n as f64;
    assert!(sum > 0.0);
    println!(
        "{:<28} {us:>10.1} µs/container  {per:>8.1} allocs/container ({} bytes of JSON)",
        "docker, decode one stats",
        raw.len()
    );
}

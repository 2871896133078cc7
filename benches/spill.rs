//! Figures of the outage buffer (`core::spill`):
//!
//! 1. RSS of this process with an output queue whose ring holds 100 000 samples (full),
//!    before and after filling it (target < 6 MB);
//! 2. flash bytes written per buffered sample against one sample encoded on its own with
//!    postcard (target <= 1.5 x), from 10 to 50 000 series;
//! 3. replay rate: samples/s from the outage buffer into a local Redis Stack, through the
//!    agent's own flush (frames read, decoded, series re-interned, TS.MADD).
//!
//! ```sh
//! export RTC_REDIS_STACK_DIR="$(scripts/setup-redis-stack)"
//! cargo bench --bench spill                      # N=200000 samples over M=1000 series
//! RTC_BENCH_SAMPLES=50000 RTC_BENCH_SERIES=100 cargo bench --bench spill
//! ```

mod common;

#[path = "../tests/support/mod.rs"]
mod support;

use common::env_or;
use rtcollector::core::hub::{Hub, OutputQueue};
use rtcollector::core::output::OutputRunner;
use rtcollector::core::shared::Shared;
use rtcollector::core::spill::{samples as codec, Spill, SpillConfig};
use rtcollector::core::stats::AgentStats;
use rtcollector::core::{Sample, SeriesTable};
use rtcollector::outputs::redistimeseries::{build, Config};
use rtcollector::outputs::OutputCtx;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

const BATCH: usize = 1000;
const T0: i64 = 1_700_000_000_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `m` series shaped like an interface table (name + 2 labels + host), `n` samples in
/// collection order (every series per tick, ticks 10 s apart).
fn workload(table: &mut SeriesTable, n: usize, m: usize) -> Vec<Sample> {
    let ids: Vec<u32> = (0..m)
        .map(|i| {
            table
                .intern(
                    "net_rx_bytes",
                    "_rate",
                    &[("iface", &format!("eth{i}")), ("dir", "rx")],
                )
                .unwrap()
        })
        .collect();
    (0..n)
        .map(|k| Sample {
            series: ids[k % m],
            ts_ms: T0 + 10_000 * (k / m) as i64,
            value: (k % 977) as f64 * 0.5 + 1e6,
        })
        .collect()
}

fn ring_rss() {
    let before = rss_kib();
    let stats = Rc::new(AgentStats::default());
    let queue = OutputQueue::new("o", 100_000, BATCH, stats.output("o"));
    let allocated = rss_kib();
    let mut table = SeriesTable::new("bench", 2000);
    let samples = workload(&mut table, 100_000, 1000);
    let with_samples = rss_kib();
    queue.push(&samples);
    drop(samples);
    let full = rss_kib();
    println!("RSS, ring of 100000 samples (20 bytes each in the ring):");
    println!("  process before the queue      : {before:>7} KiB");
    println!("  queue allocated (ring written once): {allocated:>7} KiB");
    println!("  ring full (1000 series interned): {full:>7} KiB  (+{} KiB for the ring; peak with the source vector {with_samples} KiB)", full.saturating_sub(before));
    println!(
        "  target < 6 MB                 : {}",
        if full < 6 * 1024 { "MET" } else { "MISSED" }
    );
}

fn flash_ratio(dir: &std::path::Path) {
    let stats = Rc::new(AgentStats::default());
    let out = stats.output("o");
    let mut table = SeriesTable::new("raspberrypi", 60_000);
    for (m, label) in [
        (10, "10 series"),
        (100, "100 series"),
        (1000, "1000 series"),
        (50_000, "50000 series"),
    ] {
        // At least ten ticks of every series: a segment's dictionary shows at any width.
        let n = (10 * m).max(10_000);
        let samples = workload(&mut table, n, m);
        let before = out.disk_written_bytes.get();
        let mut spill = Spill::new(
            SpillConfig {
                dir: dir.join(format!("ratio{m}")),
                max_bytes: 64 << 20,
                sync_interval: Duration::from_secs(10),
            },
            out.clone(),
        );
        // The realistic worst case: every failed flush spills one tick of every series.
        for tick in samples.chunks(m) {
            assert!(spill.append(tick, &table, BATCH));
        }
        let per = (out.disk_written_bytes.get() - before) as f64 / n as f64;
        let plain = samples.iter().map(codec::plain_sample_len).sum::<usize>() as f64 / n as f64;
        println!(
            "  {label:<12}: {per:>6.2} flash bytes per sample, encoded sample {plain:.2} bytes, ratio {:.2} (target <= 1.5)",
            per / plain
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    ring_rss();
    let tmp = tempfile::tempdir().unwrap();
    println!("flash cost, one tick of every series spilled per failed flush:");
    flash_ratio(tmp.path());

    let n = env_or("RTC_BENCH_SAMPLES", 200_000usize);
    let m = env_or("RTC_BENCH_SERIES", 1000usize);
    let server = support::redis_server::Server::stack(&[]);
    let cfg: Config =
        yaml_serde::from_str(&format!("host: 127.0.0.1\nport: {}\n", server.port)).unwrap();
    let output = build(
        &cfg,
        &OutputCtx {
            hostname: "bench".into(),
            key: "redistimeseries".into(),
        },
    )
    .unwrap();
    let stats = Rc::new(AgentStats::default());
    let shared = Shared {
        table: Rc::new(RefCell::new(SeriesTable::new("bench", m + 10))),
        hub: Rc::new(Hub::default()),
        stats: stats.clone(),
    };
    let ostats = stats.output("redistimeseries");
    let queue = Rc::new(OutputQueue::new(
        "redistimeseries",
        5000,
        BATCH,
        ostats.clone(),
    ));
    let samples = workload(&mut shared.table.borrow_mut(), n, m);
    let mut spill = Spill::new(
        SpillConfig {
            dir: tmp.path().join("replay"),
            max_bytes: 1 << 30,
            sync_interval: Duration::from_secs(10),
        },
        ostats.clone(),
    );
    assert!(spill.append(&samples, &shared.table.borrow(), BATCH));
    spill.maybe_sync(true);
    let bytes = ostats.disk_bytes.get();
    // A fresh process's view: the files are opened and scanned again.
    drop(spill);
    let opened = Instant::now();
    let spill = Spill::new(
        SpillConfig {
            dir: tmp.path().join("replay"),
            max_bytes: 1 << 30,
            sync_interval: Duration::from_secs(10),
        },
        ostats.clone(),
    );
    let open_time = opened.elapsed();
    assert_eq!(spill.pending(), n as u64);
    *queue.spill.borrow_mut() = Some(spill);
    let mut runner = OutputRunner::new("redistimeseries", Box::new(output), queue.clone());
    let ex = smol::LocalExecutor::new();
    let elapsed = futures_lite::future::block_on(ex.run(async {
        let start = Instant::now();
        assert!(runner.flush(&shared).await, "replay failed");
        start.elapsed()
    }));
    assert_eq!(stats.written.get(), n as u64, "every sample written");
    assert_eq!(ostats.disk_samples.get(), 0);
    println!(
        "replay from disk into Redis Stack on 127.0.0.1:{} ({n} samples over {m} series, {bytes} bytes on disk):",
        server.port
    );
    println!("  open + scan of the segments   : {open_time:.3?}");
    println!(
        "  replay                        : {:>10.0} samples/s ({elapsed:.3?}, series created on the way)",
        n as f64 / elapsed.as_secs_f64()
    );
}

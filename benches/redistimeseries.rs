//! Throughput of the `redistimeseries` output against a local Redis Stack, next to
//! `redis-benchmark` sending TS.ADD to the same server at the same pipeline depth.
//!
//! ```sh
//! export RTC_REDIS_STACK_DIR="$(scripts/setup-redis-stack)"
//! cargo bench --bench redistimeseries            # N=1000000 samples over M=1000 series
//! RTC_BENCH_SAMPLES=200000 RTC_BENCH_SERIES=100 cargo bench --bench redistimeseries
//! ```
//!
//! Both sides use one connection and put `metric_batch_size` (1000) samples in flight per
//! round trip: the output one pipeline per flush (two TS.MADD of 500), redis-benchmark
//! `-P 1000` TS.ADD commands. Prints samples/s for both, their ratio, and the output's
//! CPU time (user + system of this process; the server is another process) per 1000
//! samples. Targets: >= 200 000 samples/s and >= 0.8 x redis-benchmark.

mod common;

#[path = "../tests/support/mod.rs"]
mod support;

use common::{cpu_time, env_or};
use rtcollector::core::hub::{Hub, OutputQueue};
use rtcollector::core::output::OutputRunner;
use rtcollector::core::shared::Shared;
use rtcollector::core::stats::AgentStats;
use rtcollector::core::{Sample, SeriesTable};
use rtcollector::outputs::redistimeseries::{build, Config};
use rtcollector::outputs::OutputCtx;
use std::cell::RefCell;
use std::process::Command;
use std::rc::Rc;
use std::time::Instant;

const BATCH: usize = 1000;
const T0: i64 = 1_700_000_000_000;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_or("RTC_BENCH_SAMPLES", 1_000_000usize);
    let m = env_or("RTC_BENCH_SERIES", 1000usize);
    let server = support::redis_server::Server::stack(&[]);
    println!(
        "redistimeseries bench: {n} samples over {m} series, {BATCH} samples per round trip, Redis Stack on 127.0.0.1:{}",
        server.port
    );

    // --- the output, through the agent's queue and flush (as in production) ---
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
    let queue = Rc::new(OutputQueue::new(
        "redistimeseries",
        BATCH * 4,
        BATCH,
        stats.output("redistimeseries"),
    ));
    let mut runner = OutputRunner::new("redistimeseries", Box::new(output), queue.clone());
    let ids: Vec<u32> = (0..m)
        .map(|i| {
            shared
                .table
                .borrow_mut()
                .intern("bench_metric", "", &[("i", &i.to_string())])
                .unwrap()
        })
        .collect();
    let threads_before = threads();
    let ex = smol::LocalExecutor::new();
    let mut threads_during = 0;
    let (elapsed, cpu) = futures_lite::future::block_on(ex.run(async {
        // Warm-up: creates every series (TS.CREATE/TS.ALTER), not timed.
        let warm: Vec<Sample> = ids
            .iter()
            .map(|&id| Sample {
                series: id,
                ts_ms: T0,
                value: 0.0,
            })
            .collect();
        for chunk in warm.chunks(BATCH) {
            queue.push(chunk);
            assert!(runner.flush(&shared).await, "warm-up flush failed");
        }
        let mut batch = Vec::with_capacity(BATCH);
        let cpu0 = cpu_time();
        let start = Instant::now();
        let mut i = 0usize;
        while i < n {
            batch.clear();
            for k in i..(i + BATCH).min(n) {
                batch.push(Sample {
                    series: ids[k % m],
                    ts_ms: T0 + 1000 * (1 + (k / m) as i64),
                    value: (k % 977) as f64 * 0.5,
                });
            }
            queue.push(&batch);
            assert!(runner.flush(&shared).await, "flush failed");
            i += batch.len();
            if threads_during == 0 {
                threads_during = threads();
            }
        }
        (start.elapsed(), cpu_time() - cpu0)
    }));
    let written = stats.written.get() - m as u64;
    assert_eq!(written, n as u64, "every sample written");
    assert_eq!(stats.dropped.get(), 0);
    let ours = n as f64 / elapsed.as_secs_f64();
    let cpu_per_1000 = cpu.as_secs_f64() * 1e6 / (n as f64 / 1000.0);

    // Spot check: the last sample of series 0 is there.
    let mut c = server.client();
    let last: Vec<(i64, String)> = support::redis_server::query(
        &mut c,
        &[
            "TS.RANGE",
            "bench_metric:bench:0",
            "-",
            "+",
            "COUNT",
            "1000000",
        ],
    );
    assert_eq!(last.len(), 1 + n.div_ceil(m));

    // --- redis-benchmark: TS.ADD, same server, same depth, one connection ---
    let rb = support::redis_server::redis_benchmark();
    let args = [
        "-h".to_string(),
        "127.0.0.1".into(),
        "-p".into(),
        server.port.to_string(),
        "-c".into(),
        "1".into(),
        "-P".into(),
        BATCH.to_string(),
        "-n".into(),
        n.to_string(),
        "-r".into(),
        m.to_string(),
        "--csv".into(),
        "TS.ADD".into(),
        "rb:__rand_int__".into(),
        "*".into(),
        "1.5".into(),
        "ON_DUPLICATE".into(),
        "LAST".into(),
    ];
    let out = Command::new(&rb)
        .args(&args)
        .output()
        .expect("redis-benchmark (Redis Stack's, or apt-get install redis-tools)");
    let csv = String::from_utf8_lossy(&out.stdout);
    // "test","rps",…  then  "TS.ADD rb:…","123456.78",…
    let theirs: f64 = csv
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').nth(1))
        .and_then(|v| v.trim_matches('"').parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "cannot read redis-benchmark output:\n{csv}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });

    println!("  rtcollector output : {ours:>12.0} samples/s  ({n} samples in {elapsed:.3?})");
    println!(
        "  redis-benchmark    : {theirs:>12.0} samples/s  (redis-benchmark {})",
        args.join(" ")
    );
    println!(
        "  ratio              : {:>12.2} x redis-benchmark",
        ours / theirs
    );
    println!("  CPU (this process) : {cpu_per_1000:>12.1} us per 1000 samples ({cpu:.3?} in all)");
    println!("  threads            : {threads_before} before, {threads_during} while writing");
    let ok_rate = ours >= 200_000.0;
    let ok_ratio = ours >= 0.8 * theirs;
    println!(
        "  targets            : >= 200000 samples/s {}, >= 0.8 x redis-benchmark {}",
        if ok_rate { "MET" } else { "MISSED" },
        if ok_ratio { "MET" } else { "MISSED" }
    );
}

//! Samples per second the push outputs reach in one run, through the agent's queue and flush
//! as in production, batches of 1000: `prometheus_remote_write` into a local Prometheus
//! (Debian 13's 2.53, `--web.enable-remote-write-receiver`), `otlp` into a local
//! VictoriaMetrics (Debian 13's 1.112; Debian's Prometheus has no OTLP receiver), and
//! `redistimeseries` into a local Redis Stack.
//!
//! ```sh
//! export RTC_PROMETHEUS_BIN_DIR="$(scripts/setup-prometheus)"
//! export RTC_REDIS_STACK_DIR="$(scripts/setup-redis-stack)"
//! export RTC_VICTORIAMETRICS_BIN_DIR="$(scripts/setup-victoriametrics)"
//! cargo bench --bench remote_write               # N=200000 samples over M=1000 series
//! RTC_BENCH_SAMPLES=50000 cargo bench --bench remote_write
//! ```
//!
//! Prints samples/s and this process's CPU time per 1000 samples (the servers are other
//! processes).

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::{cpu_time, env_or};
use rtcollector::core::hub::{Hub, OutputQueue};
use rtcollector::core::output::OutputRunner;
use rtcollector::core::shared::Shared;
use rtcollector::core::stats::AgentStats;
use rtcollector::core::{Output, Sample, SeriesKind, SeriesTable};
use rtcollector::outputs::OutputCtx;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

const BATCH: usize = 1000;

/// Writes `n` samples over `m` series (a timestamp a second per round, from now back) through
/// `output`; samples/s and CPU µs per 1000 samples.
fn run(name: &str, output: Box<dyn Output>, n: usize, m: usize) -> (f64, f64) {
    let stats = Rc::new(AgentStats::default());
    let shared = Shared {
        table: Rc::new(RefCell::new(SeriesTable::new("bench", m + 10))),
        hub: Rc::new(Hub::default()),
        stats: stats.clone(),
    };
    let queue = Rc::new(OutputQueue::new(name, BATCH * 4, BATCH, stats.output(name)));
    let mut runner = OutputRunner::new(name, output, queue.clone());
    let ids: Vec<u32> = (0..m)
        .map(|i| {
            let kind = if i % 2 == 0 {
                SeriesKind::Counter
            } else {
                SeriesKind::Gauge
            };
            shared
                .table
                .borrow_mut()
                .intern_kind(
                    &format!("bench_m{}", i % 50),
                    "",
                    &[("idx", &i.to_string())],
                    kind,
                )
                .unwrap()
        })
        .collect();
    // Prometheus takes samples within its head block's window: start an hour back.
    let rounds = n.div_ceil(m);
    let t0 = support::clock::now_ms() / 1000 * 1000 - 3_600_000;
    let mut batch = Vec::with_capacity(BATCH);
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let mut sent = 0;
    'outer: for r in 0..rounds {
        for (k, &id) in ids.iter().enumerate() {
            if sent == n {
                break 'outer;
            }
            batch.push(Sample {
                series: id,
                ts_ms: t0 + r as i64 * 1000,
                value: (r * m + k) as f64,
            });
            sent += 1;
            if batch.len() == BATCH {
                queue.push(&batch);
                batch.clear();
                assert!(
                    futures_lite::future::block_on(runner.flush(&shared)),
                    "{name}: a flush failed"
                );
            }
        }
    }
    queue.push(&batch);
    assert!(
        futures_lite::future::block_on(runner.flush(&shared)),
        "{name}: a flush failed"
    );
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = (cpu_time() - cpu0).as_secs_f64();
    assert_eq!(
        queue.stats.written.get(),
        n as u64,
        "{name}: everything written"
    );
    (n as f64 / wall, cpu * 1e6 / (n as f64 / 1000.0))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_or("RTC_BENCH_SAMPLES", 200_000usize);
    let m = env_or("RTC_BENCH_SERIES", 1000usize);
    let prom = support::prometheus::Prometheus::start_with(
        "    static_configs: []\n",
        &["--web.enable-remote-write-receiver"],
    );
    let redis = support::redis_server::Server::stack(&[]);
    let vm = support::victoriametrics::VictoriaMetrics::start();
    let ctx = |key: &str| OutputCtx {
        hostname: "bench".into(),
        key: key.into(),
    };
    let rw: rtcollector::outputs::prometheus_remote_write::Config = yaml_serde::from_str(&format!(
        "url: http://127.0.0.1:{}/api/v1/write\n",
        prom.port
    ))
    .unwrap();
    let rw =
        rtcollector::outputs::prometheus_remote_write::build(&rw, &ctx("prometheus_remote_write"))
            .unwrap();
    let rts: rtcollector::outputs::redistimeseries::Config =
        yaml_serde::from_str(&format!("host: 127.0.0.1\nport: {}\n", redis.port)).unwrap();
    let rts = rtcollector::outputs::redistimeseries::build(&rts, &ctx("redistimeseries")).unwrap();
    let otlp: rtcollector::outputs::otlp::Config = yaml_serde::from_str(&format!(
        "endpoint: http://127.0.0.1:{}/opentelemetry/v1/metrics\n",
        vm.port
    ))
    .unwrap();
    let otlp = rtcollector::outputs::otlp::build(&otlp, &ctx("otlp")).unwrap();
    println!(
        "{n} samples over {m} series, batches of {BATCH}, through the agent's queue and flush"
    );
    println!("| output | samples/s | CPU µs per 1000 samples (this process) |");
    println!("|---|---|---|");
    for (name, out) in [
        (
            "prometheus_remote_write → Prometheus",
            Box::new(rw) as Box<dyn Output>,
        ),
        ("otlp → VictoriaMetrics", Box::new(otlp)),
        ("redistimeseries → Redis Stack", Box::new(rts)),
    ] {
        let (rate, cpu) = run(name, out, n, m);
        println!("| {name} | {rate:.0} | {cpu:.1} |");
    }
}

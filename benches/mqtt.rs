//! Messages per second the `mqtt` output sustains to a local Mosquitto, at QoS 0 and QoS 1,
//! in the `value` layout (one message per sample), and the threads it runs on.
//!
//! ```sh
//! export RTC_MOSQUITTO_BIN_DIR="$(scripts/setup-mosquitto)"
//! cargo bench --bench mqtt                      # N=200000 samples over M=1000 series
//! RTC_BENCH_SAMPLES=50000 cargo bench --bench mqtt
//! ```
//!
//! Each write is one agent batch of 1000 samples (`metric_batch_size`), as the runner sends
//! them. At QoS 1 a write returns when the broker has acknowledged every message of the
//! batch; at QoS 0 when all of them are handed to the `mqtt` thread (its request channel
//! holds 64, so it cannot run ahead of the socket by more). Also prints the CPU time of this
//! process (the output and its thread; the broker is another process) per 1000 messages.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::{cpu_time, env_or};
use rtcollector::core::{Output, Sample, SeriesTable, SeriesView};
use rtcollector::outputs::mqtt::{build, Config};
use rtcollector::outputs::OutputCtx;
use std::cell::RefCell;
use std::time::{Duration, Instant};
use support::mosquitto::Broker;

const BATCH: usize = 1000;
const T0: i64 = 1_700_000_000_000;

fn thread_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .unwrap_or_default()
                        .trim()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn run(qos: u8, port: u16, n: usize, m: usize) {
    let cfg: Config = yaml_serde::from_str(&format!(
        "host: 127.0.0.1\nport: {port}\nqos: {qos}\nclient_id: bench-qos{qos}\n"
    ))
    .unwrap();
    let mut out = build(
        &cfg,
        &OutputCtx {
            hostname: "bench".into(),
            key: "mqtt".into(),
        },
    )
    .unwrap();
    let table = RefCell::new(SeriesTable::new("bench", m + 10));
    let ids: Vec<u32> = (0..m)
        .map(|i| {
            table
                .borrow_mut()
                .intern("bench_value", "", &[("i", &i.to_string())])
                .unwrap()
        })
        .collect();
    let batches: Vec<Vec<Sample>> = (0..n / BATCH)
        .map(|b| {
            (0..BATCH)
                .map(|j| {
                    let k = b * BATCH + j;
                    Sample {
                        series: ids[k % m],
                        ts_ms: T0 + (k / m) as i64 * 1000,
                        value: k as f64,
                    }
                })
                .collect()
        })
        .collect();
    // Connect (the first writes say Retry until the thread has a connection).
    smol::block_on(out.start()).expect("the mqtt thread starts");
    let warm = &batches[0];
    let deadline = Instant::now() + Duration::from_secs(10);
    while smol::block_on(out.write(warm, SeriesView(&table))).is_err() {
        assert!(Instant::now() < deadline, "no connection to the broker");
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu0 = cpu_time();
    let start = Instant::now();
    let mut sent = 0u64;
    for b in &batches {
        let r = smol::block_on(out.write(b, SeriesView(&table))).expect("write");
        sent += r.written;
    }
    let wall = start.elapsed();
    let cpu = cpu_time() - cpu0;
    println!(
        "qos {qos}: {sent} messages in {:.2}s = {:.0} messages/s; CPU {:.1} ms per 1000 messages; threads: {:?}",
        wall.as_secs_f64(),
        sent as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1000.0 / (sent as f64 / 1000.0),
        thread_names()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_or("RTC_BENCH_SAMPLES", 200_000usize).max(BATCH);
    let m = env_or("RTC_BENCH_SERIES", 1000usize).max(1);
    // Nothing queued for absent subscribers: the bench measures the path to the broker.
    let broker = Broker::start("allow_anonymous true\nmax_queued_messages 0\n", Vec::new());
    let port = broker.port;
    println!(
        "mqtt bench: {n} samples over {m} series, layout value, {BATCH} per write, Mosquitto on 127.0.0.1:{port}"
    );
    run(0, port, n, m);
    run(1, port, n, m);
}

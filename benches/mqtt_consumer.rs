//! Messages per second the `mqtt_consumer` input takes from a local Mosquitto, the agent's
//! CPU per 1 000 messages, and its RSS, with 1 000 Tasmota plugs publishing (SENSOR
//! documents with ENERGY: four readings each, 4 000 series).
//!
//! ```sh
//! export RTC_MOSQUITTO_BIN_DIR="$(scripts/setup-mosquitto)"
//! cargo bench --bench mqtt_consumer                   # 10 s at each of 20k, 50k, 100k, 200k msg/s
//! RTC_BENCH_RATES=50000 RTC_BENCH_SECS=5 cargo bench --bench mqtt_consumer
//! ```
//!
//! The agent is the built binary (bench profile) with one `mqtt_consumer` and the `stdout`
//! output (JSON lines, read and counted by this program); the publisher is a raw MQTT
//! connection (tests/support/mqtt_flood.rs) paced to the rate. The CPU is the agent's own
//! (utime + stime from /proc/<pid>/stat, all its threads, `mqtt` included) over the run;
//! messages taken are `mqtt_consumer_messages_total{result="received"}`, those the channel
//! had no room for `{result="dropped"}`.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::env_or;
use std::time::{Duration, Instant};
use support::agent::Agent;
use support::mosquitto::Broker;
use support::mqtt_flood::Flood;
use support::samples::samples;
use support::scratch::Scratch;

const DEVICES: u64 = 1000;

/// utime + stime of a process, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the command: state is field 0, utime 11, stime 12.
    field(11) + field(12)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The agent's counters from its JSON lines so far.
fn counters(agent: &Agent, out: &mut Vec<String>) -> (f64, f64) {
    let (lines, _) = agent.wait_for(Duration::from_millis(300), |_| false);
    out.extend(
        lines
            .into_iter()
            .filter_map(|l| l.strip_prefix("OUT ").map(str::to_string))
            .filter(|l| l.contains("mqtt_consumer_messages_total")),
    );
    let got = samples(&out.join("\n"));
    let v = |k: &str| got.get(k).and_then(|s| s["value"].as_f64()).unwrap_or(0.0);
    (
        v("mqtt_consumer_messages_total{result=received}"),
        v("mqtt_consumer_messages_total{result=dropped}"),
    )
}

fn run(rate: u64, secs: u64) {
    let broker = Broker::start(
        "allow_anonymous true\nmax_queued_messages 1000000\n",
        Vec::new(),
    );
    let s = Scratch::new();
    let config = s.config(&format!(
        "hostname: bench\ninterval: 1s\nflush_interval: 1s\ninputs:\n  - mqtt_consumer:\n      \
         port: {}\n      max_series: 10000\n      topics:\n        - data_format: tasmota\n\
         outputs:\n  - stdout:\n      format: json\n",
        broker.port
    ));
    let agent = Agent::start(&config);
    let (lines, ok) = agent.wait_for(Duration::from_secs(20), |l| {
        l.contains("mqtt_consumer: connected to")
    });
    assert!(ok, "the consumer did not connect: {lines:#?}");
    let pid = agent.child.id();
    let mut out = Vec::new();
    let (received0, dropped0) = counters(&agent, &mut out);
    let cpu0 = cpu_ticks(pid);
    let mut flood = Flood::connect(broker.port, "bench-flood");
    let started = Instant::now();
    let (sent, took) = flood.run(rate * secs, rate, |i, topic, payload| {
        let _ = std::fmt::Write::write_fmt(topic, format_args!("tele/plug{}/SENSOR", i % DEVICES));
        let _ = std::io::Write::write_fmt(
            payload,
            format_args!(
                r#"{{"Time":"2026-12-06T21:00:00","ENERGY":{{"Total":{}.125,"Power":{},"Voltage":231,"Current":0.226}}}}"#,
                i / DEVICES,
                i % 2000
            ),
        );
    });
    flood.close();
    let mut peak = rss_kib(pid);
    // Until the counters stop moving: the agent has taken what it will.
    let mut last = (-1.0, -1.0);
    let settle = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(1200));
        peak = peak.max(rss_kib(pid));
        let now = counters(&agent, &mut out);
        if now == last || settle.elapsed() > Duration::from_secs(30) {
            break;
        }
        last = now;
    }
    let cpu = cpu_ticks(pid) - cpu0;
    let (received, dropped) = (last.0 - received0, last.1 - dropped0);
    let wall = started.elapsed();
    println!(
        "mqtt_consumer, {DEVICES} Tasmota plugs, {rate} msg/s offered for {secs} s: sent {sent} in {:.1} s ({:.0}/s); \
         taken {received:.0} ({:.0}/s over the send time), dropped at the channel {dropped:.0}; agent CPU {:.2} s = {:.1} ms per 1 000 messages taken; RSS {} KiB (peak), {} KiB after",
        took.as_secs_f64(),
        sent as f64 / took.as_secs_f64(),
        received / took.as_secs_f64(),
        cpu as f64 / 100.0,
        cpu as f64 * 10.0 / (received / 1000.0).max(1.0),
        peak,
        rss_kib(pid)
    );
    let _ = wall;
}

fn main() {
    let secs: u64 = env_or("RTC_BENCH_SECS", 10);
    let rates =
        std::env::var("RTC_BENCH_RATES").unwrap_or_else(|_| "20000,50000,100000,200000".into());
    for rate in rates
        .split(',')
        .filter_map(|r| r.trim().parse::<u64>().ok())
    {
        run(rate, secs);
    }
}

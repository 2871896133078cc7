//! The `prometheus_remote_write` output into a real Prometheus (Debian 13's 2.53, private
//! per test, `--web.enable-remote-write-receiver`): exact values and labels read back
//! through its query API; Prometheus stopped for 60 s while the agent writes every second,
//! the agent killed -9 once meanwhile: afterwards every second is there but for the
//! agent's own absence.
//!
//! Needs `RTC_PROMETHEUS_BIN_DIR` (see tests/support/prometheus.rs); fails, never skips,
//! without it.
#![cfg(feature = "remote-write")]

mod support;

use std::path::PathBuf;
use std::time::Duration;
use support::agent::Agent;
use support::clock::now_ms;
use support::prometheus::Prometheus;
use support::scratch::{fixture, fixture_mem_total_bytes, Scratch};

const RECEIVER: &[&str] = &["--web.enable-remote-write-receiver"];

fn config(s: &Scratch, prom: &Prometheus, host: &str) -> PathBuf {
    s.config(&format!(
        "hostname: {host}\ninterval: 1s\nflush_interval: 1s\nprocfs_root: {}\nbuffer_dir: {}\n\
         buffer_sync_interval: 1s\ninputs: [linux_mem, linux_net]\noutputs:\n  - prometheus_remote_write:\n      \
         url: http://127.0.0.1:{}/api/v1/write\n      timeout: 2s\n",
        fixture("basic").join("proc").display(),
        s.dir.path().join("buffer").display(),
        prom.port
    ))
}

#[test]
fn samples_arrive_with_exact_values_names_and_labels() {
    let prom = Prometheus::start_with("    static_configs: []\n", RECEIVER);
    let s = Scratch::new();
    let _agent = Agent::start(&config(&s, &prom, "rwtest"));
    let mem = prom.wait_for("mem_total_bytes{host=\"rwtest\"}", Duration::from_secs(30));
    assert_eq!(mem.len(), 1, "{mem:?}");
    assert_eq!(mem[0].1, fixture_mem_total_bytes());
    let rx = prom.wait_for(
        "net_rx_bytes_total{iface=\"eth0\"}",
        Duration::from_secs(30),
    );
    assert_eq!(rx.len(), 1, "{rx:?}");
    assert_eq!(rx[0].1, 98_765_432_101.0);
    assert_eq!(rx[0].0["host"], "rwtest");
    assert!(
        prom.query("{__name__=~\".*_rate\"}").is_empty(),
        "rates are left out"
    );
    // One sample a second, on the second.
    std::thread::sleep(Duration::from_secs(3));
    let got = prom.samples("mem_total_bytes{host=\"rwtest\"}", 60);
    assert!(got.len() >= 3, "{got:?}");
    assert!(got.iter().all(|(t, _)| t % 1000 == 0), "{got:?}");
}

/// Neighbouring timestamps further apart than one second.
fn gaps(stamps: &[i64]) -> Vec<(i64, i64)> {
    stamps
        .windows(2)
        .filter(|w| w[1] - w[0] != 1000)
        .map(|w| (w[0], w[1]))
        .collect()
}

#[test]
fn prometheus_down_for_a_minute_and_the_agent_killed_meanwhile_loses_nothing() {
    use nix::sys::signal::Signal;

    let mut prom = Prometheus::start_with("    static_configs: []\n", RECEIVER);
    let s = Scratch::new();
    let config = config(&s, &prom, "outage");
    let mut agent = Agent::start(&config);
    let started = now_ms();
    let selector = "mem_total_bytes{host=\"outage\"}";
    prom.wait_for(selector, Duration::from_secs(30));

    prom.stop();
    let stopped = now_ms();
    let (_, down) = agent.wait_for(Duration::from_secs(10), |l| l.contains("is down"));
    assert!(down, "the output did not notice Prometheus was gone");
    std::thread::sleep(Duration::from_secs(20));
    // The ring has gone to the outage buffer and been synced (every second).
    let killed_at = now_ms();
    agent.signal(Signal::SIGKILL);
    agent.wait_exit(Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let mut agent = Agent::start(&config);
    let restarted_at = now_ms();
    let remaining = 60_000 - (now_ms() - stopped);
    std::thread::sleep(Duration::from_millis(remaining.max(0) as u64));
    prom.restart();
    let back = now_ms();
    // Everything buffered is replayed once Prometheus answers: wait until the newest
    // samples are in, then read every timestamp since the start.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got = prom.samples(selector, 300);
        if got.last().is_some_and(|(t, _)| *t > back + 2000) {
            break got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not replayed: {got:?}\n{}",
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(10));

    let stamps: Vec<i64> = got.iter().map(|(t, _)| *t).collect();
    assert!(stamps[0] <= started + 2000, "from the start: {stamps:?}");
    assert!(got.iter().all(|(_, v)| *v == fixture_mem_total_bytes()));
    // One gap at most: while no agent ran (a second either side for the tick's alignment).
    let gaps = gaps(&stamps);
    assert!(gaps.len() <= 1, "gaps {gaps:?}");
    for (a, b) in &gaps {
        assert!(
            *a >= killed_at - 2000 && *b <= restarted_at + 2000,
            "a gap {a}..{b} outside the agent's own absence {killed_at}..{restarted_at}"
        );
    }
}

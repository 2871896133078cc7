//! The `redistimeseries` output into a 3-master Redis Cluster next to a single Redis Stack
//! server, in the same run: ten hosts (ten outputs, as ten agents would have, each with its
//! own queue and series table) of M/10 series each write N samples in all, through the
//! agent's queue and flush, round robin on one executor.
//!
//! ```sh
//! export RTC_REDIS_STACK_DIR="$(scripts/setup-redis-stack)"
//! cargo bench --bench redis_cluster            # N=1000000 samples over M=1000 series
//! RTC_BENCH_SAMPLES=200000 cargo bench --bench redis_cluster
//! ```
//!
//! Three runs: the single server; the cluster without replicas (what routing costs); the
//! cluster with a replica per master and the default `wait_replicas: 1` (what waiting for
//! the replica costs). Prints samples/s, CPU time of this process per 1000 samples,
//! allocations per 1000 samples and threads. Targets (issue: Redis Cluster): cluster
//! throughput >= 0.8 x the single server's, CPU per 1000 samples <= 1.2 x, no allocation
//! per sample in routing (the cluster's allocations per 1000 samples close to the single
//! server's).

mod common;
#[path = "common/counting_alloc.rs"]
mod counting_alloc;

#[path = "../tests/support/mod.rs"]
mod support;

use common::{cpu_time, env_or};
use counting_alloc::ALLOCS;
use rtcollector::core::hub::{Hub, OutputQueue};
use rtcollector::core::output::OutputRunner;
use rtcollector::core::shared::Shared;
use rtcollector::core::stats::AgentStats;
use rtcollector::core::{Sample, SeriesTable};
use rtcollector::outputs::redistimeseries::{build, Config};
use rtcollector::outputs::OutputCtx;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use support::redis_cluster::RedisCluster;
use support::redis_server::Server;

const BATCH: usize = 1000;
const HOSTS: usize = 10;
const T0: i64 = 1_700_000_000_000;

struct Host {
    shared: Shared,
    queue: Rc<OutputQueue>,
    runner: OutputRunner,
    ids: Vec<u32>,
    stats: Rc<AgentStats>,
}

struct Figures {
    rate: f64,
    cpu_us_per_1000: f64,
    allocs_per_1000: f64,
    threads: usize,
    elapsed: Duration,
    /// Flushes sent again (a short WAIT).
    retried: u64,
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

fn host(yaml: &str, h: usize, per_host: usize) -> Host {
    let cfg: Config = yaml_serde::from_str(yaml).unwrap();
    let output = build(
        &cfg,
        &OutputCtx {
            hostname: format!("bench{h}"),
            key: "redistimeseries".into(),
        },
    )
    .unwrap();
    let stats = Rc::new(AgentStats::default());
    let shared = Shared {
        table: Rc::new(RefCell::new(SeriesTable::new(
            &format!("bench{h}"),
            per_host + 10,
        ))),
        hub: Rc::new(Hub::default()),
        stats: stats.clone(),
    };
    let queue = Rc::new(OutputQueue::new(
        "redistimeseries",
        BATCH * 4,
        BATCH,
        stats.output("redistimeseries"),
    ));
    let runner = OutputRunner::new("redistimeseries", Box::new(output), queue.clone());
    let ids = (0..per_host)
        .map(|i| {
            shared
                .table
                .borrow_mut()
                .intern("bench_metric", "", &[("i", &i.to_string())])
                .unwrap()
        })
        .collect();
    Host {
        shared,
        queue,
        runner,
        ids,
        stats,
    }
}

impl Host {
    /// One sample of each series at T0 (the warm-up, not timed).
    fn first_samples(&self) -> Vec<Sample> {
        self.ids
            .iter()
            .map(|&id| Sample {
                series: id,
                ts_ms: T0,
                value: 0.0,
            })
            .collect()
    }
}

/// The replicas the output `h` found in the slot map (its `internal` counter).
fn replicas_known(h: &Host) -> u64 {
    h.queue
        .stats
        .own
        .borrow()
        .iter()
        .find(|(name, _)| *name == "cluster_replicas")
        .map_or(0, |(_, v)| *v)
}

/// Writes `n` samples over `m` series of ten hosts to the output `yaml` describes; with
/// `replicas`, first waits until every output has them in its slot map (a new cluster
/// lists a replica only after a first write), so that the timed writes wait for them.
fn run(yaml: &str, n: usize, m: usize, replicas: u64) -> Figures {
    let per_host = m / HOSTS;
    let mut hosts: Vec<Host> = (0..HOSTS).map(|h| host(yaml, h, per_host)).collect();
    let ex = smol::LocalExecutor::new();
    let mut threads_during = 0;
    let (elapsed, cpu, allocs, retried) = futures_lite::future::block_on(ex.run(async {
        // Warm-up: creates every series and learns the slot map, not timed.
        for h in &mut hosts {
            h.queue.push(&h.first_samples());
            assert!(h.runner.flush(&h.shared).await, "warm-up flush failed");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while hosts.iter().any(|h| replicas_known(h) < replicas) {
            assert!(Instant::now() < deadline, "the replicas never appeared");
            smol::Timer::after(Duration::from_millis(500)).await;
            for h in &mut hosts {
                h.queue.push(&h.first_samples());
                let _ = h.runner.flush(&h.shared).await;
            }
        }
        let mut batch = Vec::with_capacity(BATCH);
        let cpu0 = cpu_time();
        let allocs0 = ALLOCS.load(Relaxed);
        let start = Instant::now();
        let mut i = 0usize;
        let mut turn = 0usize;
        let mut retried = 0u64;
        while i < n {
            let h = &mut hosts[turn % HOSTS];
            batch.clear();
            for k in i..(i + BATCH).min(n) {
                let local = k / HOSTS;
                batch.push(Sample {
                    series: h.ids[local % per_host],
                    ts_ms: T0 + 1000 * (1 + (local / per_host) as i64),
                    value: (k % 977) as f64 * 0.5,
                });
            }
            h.queue.push(&batch);
            // A WAIT that came back short keeps the batch: it goes with the next flush.
            while !h.runner.flush(&h.shared).await {
                retried += 1;
            }
            i += batch.len();
            turn += 1;
            if threads_during == 0 {
                threads_during = threads();
            }
        }
        (
            start.elapsed(),
            cpu_time() - cpu0,
            ALLOCS.load(Relaxed) - allocs0,
            retried,
        )
    }));
    let written: u64 = hosts.iter().map(|h| h.stats.written.get()).sum();
    assert!(written >= (n + m) as u64, "every sample written");
    assert_eq!(hosts.iter().map(|h| h.stats.dropped.get()).sum::<u64>(), 0);
    let thousands = n as f64 / 1000.0;
    Figures {
        rate: n as f64 / elapsed.as_secs_f64(),
        cpu_us_per_1000: cpu.as_secs_f64() * 1e6 / thousands,
        allocs_per_1000: allocs as f64 / thousands,
        threads: threads_during,
        elapsed,
        retried,
    }
}

fn show(what: &str, f: &Figures) {
    println!(
        "  {what:<34}: {:>9.0} samples/s, {:>6.1} us CPU and {:>6.1} allocations per 1000 samples, {} threads ({:.3?}, {} flushes retried)",
        f.rate, f.cpu_us_per_1000, f.allocs_per_1000, f.threads, f.elapsed, f.retried
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_or("RTC_BENCH_SAMPLES", 1_000_000usize);
    let m = env_or("RTC_BENCH_SERIES", 1000usize);
    println!(
        "redis_cluster bench: {n} samples over {m} series of {HOSTS} hosts, {BATCH} samples per flush"
    );
    let single = {
        let server = Server::stack(&[]);
        run(
            &format!("host: 127.0.0.1\nport: {}\n", server.port),
            n,
            m,
            0,
        )
    };
    show("single server", &single);
    let bare = {
        let cl = RedisCluster::start_with(3, 0, false);
        run(
            &format!("cluster: true\nnodes: {}\n", cl.seeds_yaml()),
            n,
            m,
            0,
        )
    };
    show("cluster, 3 masters", &bare);
    let replicated = {
        let cl = RedisCluster::start_with(3, 1, false);
        run(
            &format!("cluster: true\nnodes: {}\n", cl.seeds_yaml()),
            n,
            m,
            3,
        )
    };
    show("cluster, 3 masters + 3 replicas", &replicated);
    for (what, f) in [
        ("3 masters", &bare),
        ("3 masters + 3 replicas", &replicated),
    ] {
        let rate = f.rate / single.rate;
        let cpu = f.cpu_us_per_1000 / single.cpu_us_per_1000;
        println!(
            "  {what:<34}: throughput {rate:.2} x single (target >= 0.8: {}), CPU {cpu:.2} x single (target <= 1.2: {}), allocations {:+.1} per 1000 samples",
            if rate >= 0.8 { "MET" } else { "MISSED" },
            if cpu <= 1.2 { "MET" } else { "MISSED" },
            f.allocs_per_1000 - single.allocs_per_1000
        );
    }
}

//! One full collection cycle of every Linux input on this machine (the inputs of the default
//! config, config/rtcollector.yaml, except `internal`): µs per cycle and heap allocations per
//! cycle, in total and per input.
//!
//! Cycles are 20 ms apart, so that /proc/stat's CPU counters (10 ms ticks) advance between
//! them as they do between real collections, and `linux_cpu` reports what it reports live.
//! The figures also show how much of `netstat` is one kernel call that no implementation can
//! avoid: the TCP socket dump that walks the kernel's established-socket hash table.
//!
//! Run: `cargo bench --bench cycle` (optionally `-- CYCLES`, default 500).

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::ALLOCS;
use rtcollector::core::metric::SeriesTable;
use rtcollector::core::rate::RateTracker;
use rtcollector::core::{Emitter, Input, Sample};
use rtcollector::inputs::BuildCtx;
use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Longer than one /proc/stat tick (USER_HZ = 100).
const CYCLE_SPACING: Duration = Duration::from_millis(20);

struct Bench {
    name: String,
    input: Box<dyn Input>,
    rates: RateTracker,
    time: Duration,
    allocs: u64,
    samples: usize,
}

fn main() {
    let cycles: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let ctx = BuildCtx::with_roots("/proc", "/sys");
    let table = RefCell::new(SeriesTable::new("bench", 100_000));
    let mut buf: Vec<Sample> = Vec::with_capacity(4096);
    let default_config = rtcollector::config::parse(
        Path::new("config/rtcollector.yaml"),
        include_str!("../config/rtcollector.yaml"),
    )
    .expect("the default config parses");
    let mut benches: Vec<Bench> = default_config
        .inputs
        .iter()
        .filter(|entry| entry.name != "internal")
        .map(|entry| Bench {
            name: entry.name.clone(),
            input: entry.options.build(&ctx).expect("builds with defaults"),
            rates: RateTracker::default(),
            time: Duration::ZERO,
            allocs: 0,
            samples: 0,
        })
        .collect();
    let mut ts = 1_000_000i64;
    let mut run_cycle = |benches: &mut Vec<Bench>, measure: bool| {
        ts += 10_000;
        for b in benches.iter_mut() {
            buf.clear();
            let a0 = ALLOCS.load(Relaxed);
            let t0 = Instant::now();
            let mut em = Emitter::new(&table, &mut b.rates, &mut buf, ts);
            let result = futures_lite::future::block_on(b.input.collect(&mut em));
            let dt = t0.elapsed();
            let da = ALLOCS.load(Relaxed) - a0;
            if let Err(e) = result {
                eprintln!("{}: {e}", b.name);
            }
            if measure {
                b.time += dt;
                b.allocs += da;
                b.samples = buf.len();
            }
        }
    };
    // Warm-up: series get interned, buffers grow, rates get their first reading.
    for _ in 0..5 {
        std::thread::sleep(CYCLE_SPACING);
        run_cycle(&mut benches, false);
    }
    for _ in 0..cycles {
        std::thread::sleep(CYCLE_SPACING);
        run_cycle(&mut benches, true);
    }
    println!(
        "full collection cycle of every Linux input on this machine, {cycles} cycles after warm-up"
    );
    println!(
        "{:<12} {:>10} {:>14} {:>9}",
        "input", "µs/cycle", "allocs/cycle", "samples"
    );
    let (mut t, mut a, mut n) = (Duration::ZERO, 0, 0);
    for b in &benches {
        println!(
            "{:<12} {:>10.1} {:>14.1} {:>9}",
            b.name,
            b.time.as_secs_f64() * 1e6 / cycles as f64,
            b.allocs as f64 / cycles as f64,
            b.samples
        );
        t += b.time;
        a += b.allocs;
        n += b.samples;
    }
    println!(
        "{:<12} {:>10.1} {:>14.1} {:>9}",
        "TOTAL",
        t.as_secs_f64() * 1e6 / cycles as f64,
        a as f64 / cycles as f64,
        n
    );
    println!("series interned: {}", table.borrow().len());
    let others: Duration = benches
        .iter()
        .filter(|b| b.name != "netstat")
        .map(|b| b.time)
        .sum();
    println!(
        "every input but netstat: {:.1} µs/cycle",
        others.as_secs_f64() * 1e6 / cycles as f64
    );
    print_socket_dump_floor(cycles);
}

/// The one kernel call `netstat` needs for its per-state counts, timed alone: the same
/// `NETLINK_SOCK_DIAG` dump, nothing parsed but the reply.
fn print_socket_dump_floor(cycles: u64) {
    use rtcollector::inputs::netstat::Diag;
    let Ok(mut diag) = Diag::open() else {
        println!("netstat's socket dump: no NETLINK_SOCK_DIAG here (it reads /proc/net/tcp)");
        return;
    };
    let mut time = Duration::ZERO;
    for _ in 0..cycles {
        std::thread::sleep(CYCLE_SPACING);
        let t0 = Instant::now();
        let counts = diag.count();
        time += t0.elapsed();
        if let Err(e) = counts {
            println!("netstat's socket dump failed: {e}");
            return;
        }
    }
    println!(
        "of netstat: its one TCP socket dump (kernel hash-table walk) alone: {:.1} µs/cycle",
        time.as_secs_f64() * 1e6 / cycles as f64
    );
}

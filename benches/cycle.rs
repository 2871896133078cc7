//! One full collection cycle of every Linux input on this machine (the inputs of the default
//! config, config/rtcollector.yaml, except `internal`): µs per cycle and heap allocations per
//! cycle, in total and per input.
//!
//! Run: `cargo bench --bench cycle` (optionally `-- CYCLES`, default 500).

mod common;

use common::ALLOCS;
use rtcollector::core::metric::SeriesTable;
use rtcollector::core::rate::RateTracker;
use rtcollector::core::{Emitter, Input, Sample};
use rtcollector::inputs::BuildCtx;
use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

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
        run_cycle(&mut benches, false);
    }
    for _ in 0..cycles {
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
}

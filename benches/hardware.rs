//! One collection of `sensors` and `onewire` on the project's fixture /sys trees (6 hwmon
//! chips with 18 inputs and 2 thermal zones; 5 1-wire sensors, 2 of them bad): µs and heap
//! allocations per collection once the files are open and the series interned.
//!
//! Run: `cargo bench --bench hardware` (optionally `-- CYCLES`, default 20000).

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::ALLOCS;
use rtcollector::config::Registry;
use rtcollector::core::metric::SeriesTable;
use rtcollector::core::rate::RateTracker;
use rtcollector::core::{Emitter, Input, Sample};
use rtcollector::inputs::{BuildCtx, Inputs};
use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

fn bench(name: &str, fixture: &str, cycles: u64) {
    let sys = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture)
        .join("sys");
    let ctx = BuildCtx::with_roots("/proc", sys);
    let mut input: Box<dyn Input> = Inputs::defaults(name)
        .expect("registered")
        .build(&ctx)
        .expect("builds with defaults");
    let table = RefCell::new(SeriesTable::new("bench", 100_000));
    let mut rates = RateTracker::default();
    let mut buf: Vec<Sample> = Vec::with_capacity(256);
    let mut collect = |ts: i64| {
        buf.clear();
        let mut em = Emitter::new(&table, &mut rates, &mut buf, ts);
        let _ = futures_lite::future::block_on(input.collect(&mut em));
        drop(em);
        buf.len()
    };
    for i in 0..5 {
        collect(i);
    }
    let a0 = ALLOCS.load(Relaxed);
    let t0 = Instant::now();
    let mut samples = 0;
    for i in 0..cycles {
        samples = collect(10 + i as i64);
    }
    let dt = t0.elapsed();
    let allocs = ALLOCS.load(Relaxed) - a0;
    println!(
        "{name:<8} {:>10.2} {:>14.2} {samples:>9}",
        dt.as_secs_f64() * 1e6 / cycles as f64,
        allocs as f64 / cycles as f64
    );
}

fn main() {
    let cycles: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    println!("one collection on the fixture /sys trees, {cycles} collections after warm-up");
    println!(
        "{:<8} {:>10} {:>14} {:>9}",
        "input", "µs/coll", "allocs/coll", "samples"
    );
    bench("sensors", "sensors", cycles);
    bench("onewire", "onewire", cycles);
}

//! The `sma_inverter` input against the local pymodbus simulator: requests per cycle for the
//! default register set, and the time one cycle takes (connect excluded: it is made once).
//!
//! Run: `RTC_PYMODBUS_PYTHON="$(scripts/setup-pymodbus)" cargo bench --bench sma_inverter`
//! (optionally `-- CYCLES`, default 200).

#[path = "../tests/support/mod.rs"]
mod support;

use rtcollector::core::metric::SeriesTable;
use rtcollector::core::rate::RateTracker;
use rtcollector::core::{Emitter, Input, Sample};
use rtcollector::inputs::sma_inverter::{build, Config};
use rtcollector::inputs::BuildCtx;
use std::cell::RefCell;
use std::time::{Duration, Instant};
use support::pymodbus::Sim;

const VALUES: &str = r#"{"unit": 3, "values": {
  "30057": ["u32", 1234567890], "30201": ["u32", 307], "30217": ["u32", 51],
  "30513": ["u64", 123456789012], "30517": ["u64", 12345],
  "30769": ["s32", 8123], "30771": ["s32", 61234], "30773": ["s32", 4975],
  "30775": ["s32", 4950], "30777": ["s32", 1650], "30779": ["s32", 1650], "30781": ["s32", 1650],
  "30783": ["u32", 23012], "30785": ["u32", 23105], "30787": ["u32", 22998],
  "30795": ["u32", 21567], "30803": ["u32", 5002], "30953": ["s32", 412],
  "30957": ["s32", 1500], "30959": ["s32", 45210], "30961": ["s32", 0]}}"#;

fn main() {
    let cycles: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let sim = Sim::start_unlogged(serde_json::from_str(VALUES).expect("the simulator's config"));
    let port = sim.port;

    let cfg: Config = yaml_serde::from_str(&format!(
        "inverters: [{{name: bench, host: 127.0.0.1, port: {port}}}]"
    ))
    .expect("config");
    let mut input = build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).expect("build");
    let planned = input.planned_requests()[0];
    let table = RefCell::new(SeriesTable::new("bench", 10_000));
    let mut rates = RateTracker::default();
    let mut buf: Vec<Sample> = Vec::with_capacity(64);
    let mut collect = |input: &mut rtcollector::inputs::sma_inverter::SmaInverter| {
        buf.clear();
        let mut em = Emitter::new(&table, &mut rates, &mut buf, 0);
        let started = Instant::now();
        smol::block_on(input.collect(&mut em)).expect("collect");
        let took = started.elapsed();
        (took, buf.len())
    };
    let (first, samples) = collect(&mut input);
    let first_requests = input.requests_last_cycle();
    let mut times: Vec<Duration> = Vec::with_capacity(cycles);
    for _ in 0..cycles {
        times.push(collect(&mut input).0);
        assert_eq!(input.requests_last_cycle() as usize, planned);
    }
    drop(sim);
    times.sort();
    let mean = times.iter().sum::<Duration>() / cycles as u32;
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!("sma_inverter against the pymodbus simulator on loopback, default registers:");
    println!(
        "  requests per cycle: {planned} (first cycle, with connect + serial: {first_requests})"
    );
    println!("  samples per cycle:  {samples}");
    println!("  first cycle (connect + serial + reads): {first:?}");
    println!(
        "  one cycle over {cycles}: mean {mean:?}, median {:?}, p99 {:?}, max {:?}",
        pct(50),
        pct(99),
        times[times.len() - 1]
    );
}

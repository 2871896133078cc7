//! The SMA Energy Meter input's hot path: ns and heap allocations per datagram for the
//! decoder alone, and for decode + aggregation (what the listener does per datagram).
//!
//! Run: `cargo bench --bench sma_em` (optionally `-- DATAGRAMS`, default 1000000).

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::ALLOCS;
use rtcollector::inputs::sma_energy_meter::encode::Builder;
use rtcollector::inputs::sma_energy_meter::wire::{decode, PROTOCOL_EMETER_EXT};
use rtcollector::inputs::sma_energy_meter::State;
use std::hint::black_box;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

fn value(index: u8, kind: u8) -> u64 {
    index as u64 * 7919 + kind as u64
}

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let cases = [
        (
            "600 B, 0x6069 (EM 2.0)",
            Builder::full(1_901_000_001, 0, false, value).bytes(),
        ),
        (
            "608 B, 0x6069 (SHM 2.0)",
            Builder::full(3_014_930_442, 0, true, value).bytes(),
        ),
        (
            "610 B, 0x6081 (SHM unicast)",
            Builder::full(3_008_817_151, 0, true, value)
                .protocol(PROTOCOL_EMETER_EXT)
                .bytes(),
        ),
    ];
    println!("SMA Energy Meter datagrams, {n} per case after warm-up");
    println!(
        "{:<28} {:>14} {:>16} {:>24} {:>26}",
        "datagram", "decode ns", "decode allocs", "decode+aggregate ns", "decode+aggregate allocs"
    );
    for (name, bytes) in &cases {
        for _ in 0..10_000 {
            black_box(decode(black_box(bytes)).is_ok());
        }
        let a0 = ALLOCS.load(Relaxed);
        let t0 = Instant::now();
        for _ in 0..n {
            black_box(decode(black_box(bytes)).is_ok());
        }
        let decode_ns = t0.elapsed().as_nanos() as f64 / n as f64;
        let decode_allocs = (ALLOCS.load(Relaxed) - a0) as f64 / n as f64;

        // Each datagram with a new ticker, as a meter sends them; the interval is never
        // reset here, so its sums run over all of them (as over a long interval).
        let mut state = State::new(&[]);
        let mut d = bytes.clone();
        let now = Instant::now();
        let ticker_at = if name.contains("0x6081") { 26 } else { 24 };
        let send = |state: &mut State, d: &mut Vec<u8>, i: u32| {
            d[ticker_at..ticker_at + 4].copy_from_slice(&i.to_be_bytes());
            black_box(state.receive(black_box(d), now));
        };
        send(&mut state, &mut d, 0); // the meter's first datagram registers it
        let a0 = ALLOCS.load(Relaxed);
        let t0 = Instant::now();
        for i in 1..=n {
            send(&mut state, &mut d, i);
        }
        let agg_ns = t0.elapsed().as_nanos() as f64 / n as f64;
        let agg_allocs = (ALLOCS.load(Relaxed) - a0) as f64 / n as f64;
        assert_eq!(
            state.aggregate.meters[0].datagrams,
            n as u64 + 1,
            "every datagram used"
        );
        println!(
            "{name:<28} {decode_ns:>14.0} {decode_allocs:>16.3} {agg_ns:>24.0} {agg_allocs:>26.3}"
        );
    }
}

//! Any bytes through the Speedwire decoder and the aggregator: no panic, and a decoded
//! datagram is consistent with the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtcollector::inputs::sma_energy_meter::wire::{decode, PROTOCOL_EMETER_EXT};
use rtcollector::inputs::sma_energy_meter::State;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = decode(data) {
        let end = 16 + u16::from_be_bytes([data[12], data[13]]) as usize;
        assert_eq!(&data[end..end + 4], &[0; 4], "decoded without an end tag");
        let shift = if d.protocol == PROTOCOL_EMETER_EXT {
            2
        } else {
            0
        };
        let serial = u32::from_be_bytes(data[20 + shift..24 + shift].try_into().unwrap());
        assert_eq!(serial, d.serial);
        assert_eq!(decode(data).as_ref(), Ok(&d), "decoding is pure");
    }
    let mut state = State::new(&[]);
    state.receive(data, Instant::now());
    state.receive(data, Instant::now());
});

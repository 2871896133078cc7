use super::aggregate::{FORGET_AFTER, MAX_METERS};
use super::encode::Builder;
use super::socket::{default_route_interface, Join};
use super::wire::*;
use super::*;
use crate::inputs::testutil::{sample_options, Collected, Harness};

const SERIAL: u32 = 1_901_000_001;

/// A raw value per (index, type) that differs for every record: index * 1000 + type.
fn raw(index: u8, kind: u8) -> u64 {
    index as u64 * 1000 + kind as u64
}

fn em20(ticker: u32) -> Vec<u8> {
    Builder::full(SERIAL, ticker, false, raw).bytes()
}

fn be16_at(b: &[u8], at: usize) -> usize {
    u16::from_be_bytes([b[at], b[at + 1]]) as usize
}

// ---------------------------------------------------------------- decoder

#[test]
fn decodes_a_600_byte_energy_meter_datagram() {
    let bytes = em20(123_456);
    assert_eq!(bytes.len(), 600);
    let d = decode(&bytes).unwrap();
    assert_eq!(d.protocol, PROTOCOL_EMETER);
    assert_eq!((d.susy_id, d.serial, d.ticker_ms), (349, SERIAL, 123_456));
    assert_eq!(d.version, Some([2, 15, 7, b'R']));
    assert_eq!(version_text(d.version.unwrap()), "2.15.7.R");
    assert_eq!(d.records.current(1), Some(1004));
    assert_eq!(d.records.counter(1), Some(1008));
    assert_eq!(d.records.current(72), Some(72004));
    assert_eq!(d.records.counter(70), Some(70008));
    assert_eq!(d.records.current(14), None, "600 bytes: no frequency");
    assert_eq!(d.records.counter(13), None, "power factor has no counter");
    assert_eq!(d.records.len(), 58);
}

#[test]
fn decodes_a_608_byte_datagram_with_the_frequency() {
    let bytes = Builder::full(3_014_930_442, 7, true, raw).bytes();
    assert_eq!(bytes.len(), 608);
    let d = decode(&bytes).unwrap();
    assert_eq!(d.serial, 3_014_930_442);
    assert_eq!(d.records.current(14), Some(14004));
    assert_eq!(d.records.len(), 59);
}

#[test]
fn decodes_protocol_0x6081_with_its_two_byte_shift() {
    let mut b = Builder::full(3_008_817_151, 2_158_601_230, true, raw).protocol(PROTOCOL_EMETER_EXT);
    b.susy_id = 372;
    let bytes = b.bytes();
    assert_eq!(bytes.len(), 610);
    assert_eq!(&bytes[16..20], &[0x60, 0x81, 0x00, 0x03]);
    let d = decode(&bytes).unwrap();
    assert_eq!(d.protocol, PROTOCOL_EMETER_EXT);
    assert_eq!((d.susy_id, d.serial, d.ticker_ms), (372, 3_008_817_151, 2_158_601_230));
    assert_eq!(d.records.current(2), Some(2004));
    assert_eq!(d.records.counter(62), Some(62008));
    assert_eq!(d.version, Some([2, 15, 7, b'R']));
}

#[test]
fn unknown_indexes_are_skipped_by_their_length() {
    let bytes = Builder::new(SERIAL, 1)
        .current(1, 11)
        .counter(36, 0xdead_beef_0000) // not in SMA's table
        .current(99, 5)
        .counter(200, 7) // beyond the kept indexes
        .current(201, 9)
        .raw_record([1, 2, 4, 0], &12u32.to_be_bytes()) // channel 1 as in SMA's example
        .counter(2, 22)
        .bytes();
    let d = decode(&bytes).unwrap();
    assert_eq!(d.records.current(1), Some(11));
    assert_eq!(d.records.counter(36), Some(0xdead_beef_0000));
    assert_eq!(d.records.current(99), Some(5));
    assert_eq!(d.records.counter(200), None);
    assert_eq!(d.records.current(2), Some(12));
    assert_eq!(d.records.counter(2), Some(22));
    assert_eq!(d.records.len(), 5);
    assert_eq!(d.version, None);
}

#[test]
fn bytes_after_the_end_tag_are_ignored() {
    let mut bytes = em20(5);
    let clean = decode(&bytes).unwrap();
    bytes.extend_from_slice(&[0; 53]);
    assert_eq!(bytes.len(), 653);
    assert_eq!(decode(&bytes), Ok(clean.clone()));
    bytes.extend_from_slice(&[0xff; 7]);
    assert_eq!(decode(&bytes), Ok(clean));
}

#[test]
fn every_truncation_is_rejected_with_its_reason() {
    for bytes in [em20(1), Builder::full(SERIAL, 1, true, raw).protocol(PROTOCOL_EMETER_EXT).bytes()] {
        let data2_end = 16 + be16_at(&bytes, 12);
        assert_eq!(data2_end + 4, bytes.len());
        for n in 0..bytes.len() {
            let expected = match n {
                0..4 => DecodeError::NotSpeedwire,
                n if n < data2_end => DecodeError::Truncated,
                _ => DecodeError::NoEndTag,
            };
            assert_eq!(decode(&bytes[..n]), Err(expected), "cut to {n} bytes");
        }
    }
}

#[test]
fn other_traffic_is_told_apart_from_damage() {
    let mut inverter = em20(1);
    inverter[16..18].copy_from_slice(&0x6065u16.to_be_bytes());
    assert_eq!(decode(&inverter), Err(DecodeError::OtherProtocol(0x6065)));
    assert_eq!(DecodeError::OtherProtocol(0x6065).to_string(), "protocol id 0x6065");
    let discovery = [
        0x53, 0x4d, 0x41, 0x00, 0x00, 0x04, 0x02, 0xa0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00,
        0x20, 0x00, 0x00, 0x00, 0x00,
    ];
    assert_eq!(decode(&discovery), Err(DecodeError::Discovery));
    let mut other_tag = em20(1);
    other_tag[14..16].copy_from_slice(&0x0020u16.to_be_bytes());
    assert_eq!(decode(&other_tag), Err(DecodeError::Discovery));
    assert_eq!(decode(b"GET / HTTP/1.1\r\n"), Err(DecodeError::NotSpeedwire));
    for e in [DecodeError::NotSpeedwire, DecodeError::Discovery, DecodeError::OtherProtocol(1)] {
        assert!(e.is_other_traffic(), "{e}");
    }
    for e in [
        DecodeError::Truncated,
        DecodeError::BadHeader,
        DecodeError::BadLength,
        DecodeError::BadRecord,
        DecodeError::NoEndTag,
    ] {
        assert!(!e.is_other_traffic(), "{e}");
        assert_eq!(aggregate::REASONS[e.slot()], e.reason());
    }
}

#[test]
fn damaged_datagrams_are_rejected_whole() {
    let good = em20(1);
    let mutate = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        decode(&b)
    };
    // tag0 length 15, as in a hand-edited capture.
    assert_eq!(mutate(&|b| b[5] = 0x0f), Err(DecodeError::BadHeader));
    assert_eq!(mutate(&|b| b[7] = 0xa1), Err(DecodeError::BadHeader));
    // A data2 length too short for the meter header.
    assert_eq!(mutate(&|b| b[12..14].copy_from_slice(&11u16.to_be_bytes())), Err(DecodeError::BadLength));
    // A data2 length that ends inside a record: no end tag where it points.
    assert_eq!(mutate(&|b| b[12..14].copy_from_slice(&578u16.to_be_bytes())), Err(DecodeError::NoEndTag));
    // Ends inside a record, with zeros where it points.
    let cut_record = {
        let mut b = Builder::new(SERIAL, 1).current(1, 5).counter(1, 0).bytes();
        let l = be16_at(&b, 12) - 4;
        b[12..14].copy_from_slice(&(l as u16).to_be_bytes());
        b
    };
    assert_eq!(decode(&cut_record), Err(DecodeError::BadRecord));
    // A record type of unknown length.
    let bad_type = Builder::new(SERIAL, 1).current(1, 5).raw_record([0, 2, 7, 0], &[0; 4]).bytes();
    assert_eq!(decode(&bad_type), Err(DecodeError::BadRecord));
    // The end tag is not zero.
    assert_eq!(mutate(&|b| { let n = b.len(); b[n - 1] = 1 }), Err(DecodeError::NoEndTag));
    // The end tag is missing although the records are complete.
    assert_eq!(mutate(&|b| { b.truncate(b.len() - 4) }), Err(DecodeError::NoEndTag));
}

#[test]
fn an_empty_record_list_decodes() {
    let d = decode(&Builder::new(SERIAL, 9).bytes()).unwrap();
    assert!(d.records.is_empty());
    assert_eq!(d.ticker_ms, 9);
}

/// xorshift64*: deterministic, so a failure is reproducible from the case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What any decoded datagram must satisfy, whatever bytes it came from.
fn assert_consistent(bytes: &[u8], d: &Datagram) {
    let data2_len = be16_at(bytes, 12);
    let end = 16 + data2_len;
    assert!(bytes.len() >= end + 4, "decoded past the end");
    assert_eq!(&bytes[end..end + 4], &[0; 4], "no end tag");
    assert_eq!(&bytes[..4], b"SMA\0");
    let shift = if d.protocol == PROTOCOL_EMETER_EXT { 2 } else { 0 };
    assert_eq!(be16_at(bytes, 16) as u16, d.protocol);
    assert_eq!(be16_at(bytes, 18 + shift) as u16, d.susy_id);
    let serial = u32::from_be_bytes(bytes[20 + shift..24 + shift].try_into().unwrap());
    assert_eq!(serial, d.serial);
    // Each record is at least 8 bytes.
    assert!(d.records.len() as usize <= (data2_len - 12 - shift) / 8);
    assert_eq!(decode(bytes).as_ref(), Ok(d), "decoding is a pure function");
}

/// The decoder on garbage in every run of the test suite (the `fuzz/` target does the
/// same with coverage guidance): mutated real-shaped datagrams and random bytes. No panic,
/// and whatever decodes is consistent with its bytes.
#[test]
fn random_and_mutated_datagrams_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let bases = [
        em20(1),
        Builder::full(SERIAL, 2, true, raw).bytes(),
        Builder::full(SERIAL, 3, true, raw).protocol(PROTOCOL_EMETER_EXT).bytes(),
        Builder::new(SERIAL, 4).current(1, 1).bytes(),
    ];
    let mut buf = Vec::with_capacity(2048);
    let (mut decoded, mut rejected) = (0u32, [0u32; DECODE_ERRORS]);
    for case in 0..200_000u32 {
        buf.clear();
        let base = &bases[rng.below(bases.len())];
        match rng.below(8) {
            // Random bytes behind a valid prefix of random length.
            0 => {
                buf.extend_from_slice(&base[..rng.below(40).min(base.len())]);
                let n = rng.below(700);
                buf.extend((0..n).map(|_| rng.next() as u8));
            }
            // A data2 length anywhere.
            1 => {
                buf.extend_from_slice(base);
                let l = rng.below(1200) as u16;
                buf[12..14].copy_from_slice(&l.to_be_bytes());
            }
            // A record type changed.
            2 => {
                buf.extend_from_slice(base);
                let at = 28 + 2 + 4 * rng.below((buf.len() - 32) / 4);
                buf[at] = rng.next() as u8;
            }
            // Truncated, or extended with random bytes.
            3 => {
                buf.extend_from_slice(&base[..rng.below(base.len() + 1)]);
                if rng.below(2) == 0 {
                    let n = rng.below(64);
                    buf.extend((0..n).map(|_| rng.next() as u8));
                }
            }
            // Bytes flipped.
            _ => {
                buf.extend_from_slice(base);
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(buf.len());
                    buf[at] ^= 1 << rng.below(8);
                }
            }
        }
        match decode(&buf) {
            Ok(d) => {
                decoded += 1;
                assert_consistent(&buf, &d);
            }
            Err(e) => rejected[e.slot()] += 1,
        }
        assert!(case < u32::MAX);
    }
    // The cases reach both sides and the damage kinds (a change in the generator that
    // stopped exercising them would go unnoticed otherwise).
    assert!(decoded > 10_000, "decoded {decoded}");
    for (slot, n) in rejected.iter().enumerate() {
        assert!(*n > 0, "no case rejected as {}", aggregate::REASONS[slot]);
    }
}

// ---------------------------------------------------------------- aggregation

fn input(cfg: Config) -> (Harness, Rc<RefCell<State>>) {
    let ctx = BuildCtx::with_roots("/proc", "/sys");
    let input = build(&cfg, &ctx).unwrap();
    let state = input.state();
    (Harness::new(Box::new(input)), state)
}

/// A datagram with just the records given: `(index, type, raw)`.
fn datagram(serial: u32, ticker: u32, records: &[(u8, u8, u64)]) -> Vec<u8> {
    let mut b = Builder::new(serial, ticker);
    for &(index, kind, value) in records {
        match kind {
            4 => b.push_current(index, value as u32),
            _ => b.push_counter(index, value),
        }
    }
    b.push_version([2, 0, 18, b'R']);
    b.bytes()
}

fn key(name: &str, serial: u32, phase: &str) -> String {
    format!("{name}{{phase={phase},serial={serial}}}")
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() < 1e-9 * want.abs().max(1.0)
}

#[track_caller]
fn assert_value(c: &Collected, name: &str, serial: u32, phase: &str, want: f64) {
    let got = c[key(name, serial, phase).as_str()];
    assert!(close(got, want), "{name} {phase}: got {got}, want {want}");
}

#[test]
fn averages_power_and_keeps_the_last_energy_reading() {
    let (mut h, state) = input(Config::default());
    let now = Instant::now();
    // Import 1000.0, 1500.0, 2000.0 W; export 0, 0, 100.0 W; L1 voltage 230, 231, 232 V;
    // the import counter rises 3600 Ws (1 Wh) a datagram.
    for (i, (import, export, volts)) in [(10_000, 0, 230_000), (15_000, 0, 231_000), (20_000, 1_000, 232_000)]
        .into_iter()
        .enumerate()
    {
        let bytes = datagram(
            SERIAL,
            1000 * i as u32,
            &[
                (1, 4, import),
                (1, 8, 36_000_000 + 3600 * i as u64),
                (2, 4, export),
                (13, 4, 990 + i as u64),
                (32, 4, volts),
                (31, 4, 4_350),
                (21, 8, 7_200),
            ],
        );
        assert_eq!(state.borrow_mut().receive(&bytes, now), Outcome::Used);
    }
    let c = h.collect(10_000);
    assert_eq!(c.error, None);
    assert_value(&c, "sma_em_power_import_w", SERIAL, "total", 1500.0);
    assert_value(&c, "sma_em_power_export_w", SERIAL, "total", 100.0 / 3.0);
    assert_value(&c, "sma_em_power_net_w", SERIAL, "total", 1500.0 - 100.0 / 3.0);
    assert_value(&c, "sma_em_power_factor", SERIAL, "total", 0.991);
    assert_value(&c, "sma_em_voltage_v", SERIAL, "L1", 231.0);
    assert_value(&c, "sma_em_current_a", SERIAL, "L1", 4.35);
    assert_value(&c, "sma_em_energy_import_wh", SERIAL, "total", 10_002.0);
    assert_value(&c, "sma_em_energy_import_wh", SERIAL, "L1", 2.0);
    assert_eq!(c[&format!("sma_em_datagrams_total{{serial={SERIAL}}}")[..]], 3.0);
    assert_eq!(
        c[&format!(
            "sma_em_info{{manufacturer=SMA,model=SMA Energy Meter,serial={SERIAL},susy_id=349,version=2.0.18.R}}"
        )[..]],
        1.0
    );
    assert_eq!(c[&format!("sma_em_up{{serial={SERIAL}}}")[..]], 1.0);
    // Only what was sent: no frequency, no L2, no min/max unless asked.
    assert!(!c.has(&key("sma_em_frequency_hz", SERIAL, "total")));
    assert!(!c.has(&key("sma_em_voltage_v", SERIAL, "L2")));
    assert!(c.keys_starting("sma_em_power_import_w_m").is_empty());
    assert_eq!(c.samples.len(), 11, "{:#?}", c.samples);

    // The next interval starts empty.
    let bytes = datagram(SERIAL, 5000, &[(1, 4, 5_000), (2, 4, 20_000), (1, 8, 99 * 3600)]);
    state.borrow_mut().receive(&bytes, now);
    let c = h.collect(20_000);
    assert_value(&c, "sma_em_power_import_w", SERIAL, "total", 500.0);
    assert_value(&c, "sma_em_power_net_w", SERIAL, "total", -1500.0);
    assert_value(&c, "sma_em_energy_import_wh", SERIAL, "total", 99.0);
    assert!(!c.has(&key("sma_em_voltage_v", SERIAL, "L1")));
    assert_eq!(c[&format!("sma_em_datagrams_total{{serial={SERIAL}}}")[..]], 4.0);
}

#[test]
fn every_metric_of_a_full_datagram_maps_to_its_index() {
    let (mut h, state) = input(Config::default());
    let bytes = Builder::full(SERIAL, 1, true, raw).bytes();
    state.borrow_mut().receive(&bytes, Instant::now());
    let c = h.collect(1);
    let phases = ["total", "L1", "L2", "L3"];
    let mut expected = 0;
    for (name, base, scale, kind) in [
        ("sma_em_power_import_w", 1, 0.1, 4),
        ("sma_em_power_export_w", 2, 0.1, 4),
        ("sma_em_reactive_import_var", 3, 0.1, 4),
        ("sma_em_reactive_export_var", 4, 0.1, 4),
        ("sma_em_apparent_import_va", 9, 0.1, 4),
        ("sma_em_apparent_export_va", 10, 0.1, 4),
        ("sma_em_power_factor", 13, 0.001, 4),
        ("sma_em_energy_import_wh", 1, 1.0 / 3600.0, 8),
        ("sma_em_energy_export_wh", 2, 1.0 / 3600.0, 8),
        ("sma_em_reactive_energy_import_varh", 3, 1.0 / 3600.0, 8),
        ("sma_em_reactive_energy_export_varh", 4, 1.0 / 3600.0, 8),
        ("sma_em_apparent_energy_import_vah", 9, 1.0 / 3600.0, 8),
        ("sma_em_apparent_energy_export_vah", 10, 1.0 / 3600.0, 8),
    ] {
        for (p, phase) in phases.iter().enumerate() {
            let index = base + 20 * p as u8;
            assert_value(&c, name, SERIAL, phase, raw(index, kind) as f64 * scale);
            expected += 1;
        }
    }
    for (p, phase) in phases.iter().enumerate() {
        let (i, e) = (1 + 20 * p as u8, 2 + 20 * p as u8);
        let net = (raw(i, 4) as f64 - raw(e, 4) as f64) * 0.1;
        assert_value(&c, "sma_em_power_net_w", SERIAL, phase, net);
        expected += 1;
    }
    for (p, phase) in phases.iter().enumerate().skip(1) {
        assert_value(&c, "sma_em_current_a", SERIAL, phase, raw(11 + 20 * p as u8, 4) as f64 * 0.001);
        assert_value(&c, "sma_em_voltage_v", SERIAL, phase, raw(12 + 20 * p as u8, 4) as f64 * 0.001);
        expected += 2;
    }
    assert_value(&c, "sma_em_frequency_hz", SERIAL, "total", 14.004);
    expected += 1 + 3; // frequency, info, up, datagrams_total
    assert_eq!(c.samples.len(), expected, "{:#?}", c.samples);
}

#[test]
fn min_and_max_when_asked() {
    let cfg = Config {
        stats: vec![Stat::Min, Stat::Max],
        ..Config::default()
    };
    let (mut h, state) = input(cfg);
    for (t, (import, export)) in [(10, 50), (30, 0), (20, 0)].into_iter().enumerate() {
        let bytes = datagram(SERIAL, t as u32, &[(1, 4, import), (2, 4, export)]);
        state.borrow_mut().receive(&bytes, Instant::now());
    }
    let c = h.collect(1);
    assert_value(&c, "sma_em_power_import_w", SERIAL, "total", 2.0);
    assert_value(&c, "sma_em_power_import_w_min", SERIAL, "total", 1.0);
    assert_value(&c, "sma_em_power_import_w_max", SERIAL, "total", 3.0);
    // Min and max of the net power are those of import − export per datagram.
    assert_value(&c, "sma_em_power_net_w_min", SERIAL, "total", -4.0);
    assert_value(&c, "sma_em_power_net_w_max", SERIAL, "total", 3.0);
    assert!(c.keys_starting("sma_em_energy").is_empty());
}

#[test]
fn a_datagram_received_twice_counts_once() {
    let (mut h, state) = input(Config::default());
    let now = Instant::now();
    let a = datagram(SERIAL, 1000, &[(1, 4, 100)]);
    let b = datagram(SERIAL, 2000, &[(1, 4, 300)]);
    for bytes in [&a, &a, &b, &a, &b] {
        state.borrow_mut().receive(bytes, now);
    }
    let c = h.collect(1);
    assert_value(&c, "sma_em_power_import_w", SERIAL, "total", 20.0);
    assert_eq!(c[&format!("sma_em_datagrams_total{{serial={SERIAL}}}")[..]], 2.0);
    assert_eq!(c["sma_em_datagrams_rejected_total{reason=duplicate}"], 3.0);
}

#[test]
fn serial_filter_and_meter_cap() {
    let other = 3_000_000_002;
    let cfg = Config {
        serials: vec![SERIAL],
        ..Config::default()
    };
    let (mut h, state) = input(cfg);
    let now = Instant::now();
    state.borrow_mut().receive(&datagram(SERIAL, 1, &[(1, 4, 10)]), now);
    assert_eq!(
        state.borrow_mut().receive(&datagram(other, 1, &[(1, 4, 20)]), now),
        Outcome::Rejected(aggregate::SERIAL_FILTERED)
    );
    let c = h.collect(1);
    assert_value(&c, "sma_em_power_import_w", SERIAL, "total", 1.0);
    assert!(c.keys_starting("sma_em_power_import_w").len() == 1, "{:#?}", c.samples);
    assert_eq!(c["sma_em_datagrams_rejected_total{reason=serial_filtered}"], 1.0);

    let (mut h, state) = input(Config::default());
    for serial in 0..MAX_METERS as u32 + 2 {
        state.borrow_mut().receive(&datagram(serial, 1, &[(1, 4, 10)]), now);
    }
    let c = h.collect(1);
    assert_eq!(c.keys_starting("sma_em_power_import_w").len(), MAX_METERS);
    assert_eq!(c["sma_em_datagrams_rejected_total{reason=too_many_meters}"], 2.0);
    // A meter silent for an hour gives its place to a new one.
    let later = now + FORGET_AFTER;
    state.borrow_mut().receive(&datagram(0, 2, &[(1, 4, 10)]), later);
    assert_eq!(state.borrow_mut().aggregate.forget_silent(later), MAX_METERS - 1);
    let new = datagram(1000, 1, &[(1, 4, 10)]);
    assert_eq!(state.borrow_mut().receive(&new, later), Outcome::Used);
}

#[test]
fn rejected_datagrams_are_counted_by_reason_and_add_nothing() {
    let (mut h, state) = input(Config::default());
    let now = Instant::now();
    let good = datagram(SERIAL, 1, &[(1, 4, 10)]);
    let mut state_ = state.borrow_mut();
    state_.receive(&good, now);
    state_.receive(&good[..30], now);
    state_.receive(&good[..good.len() - 1], now);
    state_.receive(b"SMA\0\0\x04\x02\xa0\xff\xff\xff\xff\0\0\0\x20\0\0\0\0", now);
    state_.receive(b"hello", now);
    drop(state_);
    let c = h.collect(1);
    assert_eq!(c.error, None);
    assert_eq!(c["sma_em_datagrams_rejected_total{reason=truncated}"], 1.0);
    assert_eq!(c["sma_em_datagrams_rejected_total{reason=no_end_tag}"], 1.0);
    assert_eq!(c["sma_em_datagrams_rejected_total{reason=discovery}"], 1.0);
    assert_eq!(c["sma_em_datagrams_rejected_total{reason=not_speedwire}"], 1.0);
    assert_eq!(c.keys_starting("sma_em_datagrams_rejected_total").len(), 4);
    assert_eq!(c[&format!("sma_em_datagrams_total{{serial={SERIAL}}}")[..]], 1.0);
    assert_value(&c, "sma_em_power_import_w", SERIAL, "total", 1.0);
}

#[test]
fn a_silent_interval_writes_no_readings_and_is_an_error() {
    let (mut h, state) = input(Config::default());
    state.borrow_mut().listening = Listening::Open {
        what: "UDP port 9522".into(),
        since: Instant::now() - SILENCE_GRACE,
    };
    let c = h.collect(1);
    let e = c.error.expect("silence is reported");
    assert!(e.0.contains("no energy-meter datagram received"), "{e}");
    assert!(c.samples.is_empty());

    // Two meters, one goes silent: the other's readings, and the silence named.
    let other = 1_901_000_002;
    let now = Instant::now();
    state.borrow_mut().receive(&datagram(SERIAL, 1, &[(1, 4, 10)]), now);
    state.borrow_mut().receive(&datagram(other, 1, &[(1, 4, 20)]), now);
    let c = h.collect(2);
    assert_eq!(c.error, None);
    assert_eq!(c.keys_starting("sma_em_power_import_w").len(), 2);
    state.borrow_mut().receive(&datagram(other, 2, &[(1, 4, 30)]), now);
    let c = h.collect(3);
    assert_eq!(c.error.as_ref().unwrap().0, format!("meter {SERIAL} sent nothing in this interval"));
    assert_eq!(c.keys_starting("sma_em_power_import_w"), [key("sma_em_power_import_w", other, "total")]);
    // Down only after three silent intervals in a row; up again with its next datagram.
    let up = format!("sma_em_up{{serial={SERIAL}}}");
    assert!(!c.has(&up), "one silent interval is not an outage");
    let c = h.collect(4);
    assert!(!c.has(&up));
    let c = h.collect(5);
    assert_eq!(c[&up[..]], 0.0);
    assert!(c.keys_starting("sma_em_power_import_w").is_empty());
    let c = h.collect(6);
    assert_eq!(c[&up[..]], 0.0);
    state.borrow_mut().receive(&datagram(SERIAL, 3, &[(1, 4, 10)]), now);
    let c = h.collect(7);
    assert_eq!(c[&up[..]], 1.0);

    // Right after the socket opened, an empty interval is not yet a silence.
    state.borrow_mut().listening = Listening::Open {
        what: "UDP port 9522".into(),
        since: Instant::now(),
    };
    state.borrow_mut().aggregate = Aggregate::new(&[]);
    assert_eq!(h.collect(4).error, None);
    state.borrow_mut().listening = Listening::Failed("cannot listen on UDP port 9522: EACCES".into());
    assert_eq!(h.collect(5).error.unwrap().0, "not listening: cannot listen on UDP port 9522: EACCES");
}

// ---------------------------------------------------------------- config and socket

#[test]
fn sample_is_the_default_config() {
    let cfg: Config = sample_options(SAMPLE);
    assert_eq!(cfg, Config::default());
}

#[test]
fn build_checks_the_options() {
    let ctx = BuildCtx::with_roots("/proc", "/sys");
    let err = |cfg: Config| build(&cfg, &ctx).err().expect("refused").to_string();
    assert_eq!(
        err(Config {
            interface: Some("eth0".into()),
            interface_ip: Some(Ipv4Addr::new(192, 168, 1, 10)),
            ..Config::default()
        }),
        "set `interface` or `interface_ip`, not both"
    );
    assert!(err(Config { interface: Some("a/b".into()), ..Config::default() }).contains("not an interface name"));
    assert!(err(Config { port: 0, ..Config::default() }).contains("port"));
    let join = |cfg: Config| build(&cfg, &ctx).unwrap().join;
    assert_eq!(join(Config::default()), Join::DefaultRoute);
    assert_eq!(join(Config { multicast: false, interface: Some("eth0".into()), ..Config::default() }), Join::None);
    assert_eq!(join(Config { interface: Some("eth0".into()), ..Config::default() }), Join::Interface("eth0".into()));
    let ip = Ipv4Addr::new(192, 168, 1, 10);
    assert_eq!(join(Config { interface_ip: Some(ip), ..Config::default() }), Join::Address(ip));
    let text = "interface_ip: 192.168.1.10\nserials: [3008817151]\nstats: [max]\nmulticast: true\n";
    let cfg: Config = yaml_serde::from_str(text).unwrap();
    assert_eq!((cfg.interface_ip, cfg.serials, cfg.stats), (Some(ip), vec![3_008_817_151], vec![Stat::Max]));
    assert!(yaml_serde::from_str::<Config>("stats: [avg]").is_err());
    assert!(yaml_serde::from_str::<Config>("group: 239.1.1.1").is_err());
}

#[test]
fn the_default_route_picks_the_interface() {
    let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
        eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
        down0\t00000000\t0101A8C0\t0002\t0\t0\t1\t00000000\t0\t0\t0\n";
    assert_eq!(default_route_interface(table), Some("eth0"));
    assert_eq!(default_route_interface(&table[..table.find("eth0").unwrap()]), Some("wlan0"));
    assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    assert_eq!(default_route_interface("Iface\nbroken line\n"), None);
}

#[test]
fn a_missing_default_route_is_an_error_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("net")).unwrap();
    std::fs::write(dir.path().join("net/route"), "Iface\tDestination\tGateway\n").unwrap();
    let e = socket::open(0, &Join::DefaultRoute, dir.path()).unwrap_err();
    assert!(e.contains("no default route") && e.contains("interface_ip"), "{e}");
}

/// The socket over loopback: unicast and multicast on `lo` reach it, and the listener
/// feeds the state. (End to end through the binary: tests/sma_energy_meter.rs.)
#[test]
fn the_listener_receives_unicast_on_loopback() {
    let (sock, what) = socket::open(0, &Join::None, std::path::Path::new("/proc")).unwrap();
    assert!(what.ends_with("unicast only"), "{what}");
    let port = sock.local_addr().unwrap().port();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let state = Rc::new(RefCell::new(State::new(&[])));
    let st = state.clone();
    smol::block_on(async move {
        let sock = Async::new(sock).unwrap();
        let listener = receive(sock, &st);
        let send = async {
            sender.send_to(&datagram(SERIAL, 1, &[(1, 4, 10)]), ("127.0.0.1", port)).unwrap();
            sender.send_to(b"noise", ("127.0.0.1", port)).unwrap();
            for _ in 0..500 {
                if st.borrow().aggregate.rejected[0] == 1 {
                    break;
                }
                smol::Timer::after(Duration::from_millis(10)).await;
            }
        };
        futures_lite::future::or(async { listener.await; }, send).await;
    });
    let state = state.borrow();
    assert_eq!(state.aggregate.meters.len(), 1);
    assert_eq!(state.aggregate.meters[0].datagrams, 1);
    assert_eq!(state.aggregate.rejected[0], 1);
}

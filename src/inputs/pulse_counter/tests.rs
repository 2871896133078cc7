use super::uapi::*;
use super::*;
use crate::inputs::testutil::{sample_options, Harness};
use std::mem::{offset_of, size_of};
use std::path::Path;

// --- the kernel's layouts (<linux/gpio.h>, checked with the C compiler on x86_64) -----

#[test]
fn structs_have_the_kernel_header_layout() {
    assert_eq!(size_of::<LineAttribute>(), 16);
    assert_eq!(size_of::<LineConfigAttribute>(), 24);
    assert_eq!(size_of::<LineConfig>(), 272);
    assert_eq!(size_of::<LineRequest>(), 592);
    assert_eq!(offset_of!(LineRequest, consumer), 256);
    assert_eq!(offset_of!(LineRequest, config), 288);
    assert_eq!(offset_of!(LineRequest, num_lines), 560);
    assert_eq!(offset_of!(LineRequest, event_buffer_size), 564);
    assert_eq!(offset_of!(LineRequest, fd), 588);
    assert_eq!(offset_of!(LineConfig, attrs), 32);
    assert_eq!(offset_of!(LineAttribute, value), 8);
    assert_eq!(EVENT_SIZE, 48);
    assert_eq!(GET_LINE_IOCTL as u64, 0xC250_B407);
}

#[test]
fn a_request_lists_the_lines_flags_and_debounce_for_all_of_them() {
    let flags = FLAG_INPUT | FLAG_EDGE_FALLING | FLAG_BIAS_PULL_UP;
    let req = LineRequest::new(&[17, 27, 22], flags, 10_000, "rtcollector");
    assert_eq!(req.num_lines, 3);
    assert_eq!(&req.offsets[..4], &[17, 27, 22, 0]);
    assert_eq!(&req.consumer[..12], b"rtcollector\0");
    assert_eq!(req.config.flags, 0b1_0010_0100);
    assert_eq!(req.config.num_attrs, 1);
    let attr = req.config.attrs[0];
    assert_eq!(attr.attr.id, ATTR_ID_DEBOUNCE);
    assert_eq!(attr.mask, 0b111);
    // SAFETY: the request wrote this field of the union.
    assert_eq!(unsafe { attr.attr.value.debounce_period_us }, 10_000);
    assert_eq!(req.fd, -1);

    let plain = LineRequest::new(&[4], flags, 0, "a-consumer-name-longer-than-thirty-two");
    assert_eq!(plain.config.num_attrs, 0);
    assert_eq!(plain.consumer[31], 0, "always NUL-terminated");
}

#[test]
fn the_flags_follow_edge_and_bias() {
    assert_eq!(
        line_flags(EdgeOption::Falling, Bias::PullUp),
        FLAG_INPUT | FLAG_EDGE_FALLING | FLAG_BIAS_PULL_UP
    );
    assert_eq!(
        line_flags(EdgeOption::Rising, Bias::PullDown),
        FLAG_INPUT | FLAG_EDGE_RISING | FLAG_BIAS_PULL_DOWN
    );
    assert_eq!(
        line_flags(EdgeOption::Rising, Bias::Disabled),
        FLAG_INPUT | FLAG_EDGE_RISING | FLAG_BIAS_DISABLED
    );
    assert_eq!(
        line_flags(EdgeOption::Falling, Bias::AsIs),
        FLAG_INPUT | FLAG_EDGE_FALLING
    );
}

fn event_bytes(ts_ns: u64, id: u32, offset: u32, seqno: u32, line_seqno: u32) -> [u8; 48] {
    let mut b = [0u8; 48];
    b[0..8].copy_from_slice(&ts_ns.to_ne_bytes());
    b[8..12].copy_from_slice(&id.to_ne_bytes());
    b[12..16].copy_from_slice(&offset.to_ne_bytes());
    b[16..20].copy_from_slice(&seqno.to_ne_bytes());
    b[20..24].copy_from_slice(&line_seqno.to_ne_bytes());
    b
}

#[test]
fn events_decode_and_encode_back_byte_for_byte() {
    let bytes = event_bytes(1_234_567_890_123, 2, 17, 9, 4);
    let ev = LineEvent::parse(&bytes).unwrap();
    assert_eq!(
        ev,
        LineEvent {
            timestamp_ns: 1_234_567_890_123,
            edge: Edge::Falling,
            offset: 17,
            seqno: 9,
            line_seqno: 4,
        }
    );
    let mut out = [0xAAu8; EVENT_SIZE];
    ev.emit(&mut out);
    assert_eq!(out, bytes);
    assert_eq!(
        LineEvent::parse(&event_bytes(1, 1, 0, 1, 1)).unwrap().edge,
        Edge::Rising
    );
}

#[test]
fn short_and_unknown_events_are_rejected() {
    let bytes = event_bytes(1, 2, 17, 1, 1);
    assert_eq!(LineEvent::parse(&bytes[..47]), Err(EventError::Truncated(47)));
    assert_eq!(LineEvent::parse(&[]), Err(EventError::Truncated(0)));
    assert_eq!(
        LineEvent::parse(&event_bytes(1, 7, 17, 1, 1)),
        Err(EventError::UnknownId(7))
    );
}

// --- the arithmetic ------------------------------------------------------------------

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

#[test]
fn energy_is_one_pulse_per_impulse_constant() {
    let mut m = meter::Meter::new(1000.0, 10 * MS);
    assert_eq!(m.energy_wh(), 0.0);
    for i in 0..3 {
        m.on_pulse(i * 3600 * MS);
    }
    assert_eq!(m.energy_wh(), 3.0);
    let mut m = meter::Meter::new(800.0, 0);
    m.restore(12_345.5);
    m.on_pulse(S);
    m.on_pulse(2 * S);
    assert_eq!(m.energy_wh(), 12_348.0, "1.25 Wh per pulse on the restored value");
}

#[test]
fn energy_does_not_drift_over_millions_of_pulses() {
    let mut m = meter::Meter::new(375.0, 0);
    for i in 0..2_000_000u64 {
        m.on_pulse(i * MS);
    }
    assert_eq!(m.energy_wh(), 2_000_000.0 * (1000.0 / 375.0));
}

#[test]
fn power_comes_from_the_interval_between_the_last_two_pulses() {
    let mut m = meter::Meter::new(1000.0, 10 * MS);
    m.on_pulse(100 * S);
    assert_eq!(m.power_w(101 * S), None, "one pulse gives no interval");
    // 1 Wh in 3.6 s is 1000 W.
    m.on_pulse(100 * S + 3600 * MS);
    assert_eq!(m.power_w(100 * S + 3600 * MS), Some(1000.0));
    assert_eq!(m.power_w(100 * S + 7000 * MS), Some(1000.0));
    // 1 Wh in 1.8 s is 2000 W.
    m.on_pulse(100 * S + 5400 * MS);
    assert_eq!(m.power_w(100 * S + 5400 * MS), Some(2000.0));
}

#[test]
fn power_decays_when_the_next_pulse_is_overdue() {
    let mut m = meter::Meter::new(1000.0, 0);
    m.on_pulse(0);
    m.on_pulse(3600 * MS);
    // 7.2 s since the last pulse: at most 1 Wh / 7.2 s = 500 W.
    assert_eq!(m.power_w(10_800 * MS), Some(500.0));
    // After an hour without a pulse: at most 1 W.
    assert_eq!(m.power_w(3600 * MS + 3600 * S), Some(1.0));
}

#[test]
fn edges_closer_than_the_debounce_time_are_bounces() {
    let mut m = meter::Meter::new(1000.0, 10 * MS);
    assert_eq!(m.on_pulse(S), meter::Verdict::Counted);
    assert_eq!(m.on_pulse(S + 2 * MS), meter::Verdict::Bounced);
    assert_eq!(m.on_pulse(S + 9 * MS), meter::Verdict::Bounced);
    assert_eq!(m.on_pulse(S + 3600 * MS), meter::Verdict::Counted);
    assert_eq!(m.energy_wh(), 2.0);
    assert_eq!(m.bounced(), 2);
    // The interval runs from the last counted pulse, not from a bounce.
    assert_eq!(m.power_w(S + 3600 * MS), Some(1000.0));
    // A timestamp going back is not a pulse either.
    assert_eq!(m.on_pulse(S), meter::Verdict::Bounced);
}

// --- persistence ---------------------------------------------------------------------

#[test]
fn the_energy_survives_a_save_and_load_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let file = state::file_of(&dir.path().join("pulse_counter"), "gpiochip0", 17);
    assert!(file.ends_with("pulse_counter/gpiochip0-17.wh"));
    assert_eq!(state::load(&file), Ok(None));
    state::save(&file, 12_345.678_901_234_5).unwrap();
    assert_eq!(state::load(&file), Ok(Some(12_345.678_901_234_5)));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "12345.6789012345\n"
    );
    let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["gpiochip0-17.wh"], "no temp file left behind");
}

#[test]
fn a_corrupt_state_file_is_refused() {
    for bad in ["", "abc", "-1", "NaN", "inf", "12 Wh"] {
        assert!(
            matches!(state::parse(bad), Err(state::LoadError::Corrupt(_))),
            "{bad:?}"
        );
    }
    assert_eq!(state::parse(" 42.5\n"), Ok(42.5));
}

// --- the input, with events from a byte stream instead of a line fd --------------------

struct Rig {
    dir: tempfile::TempDir,
    input: PulseCounter,
}

fn config(pins: &[(u32, &str, f64)]) -> Config {
    Config {
        pins: pins
            .iter()
            .map(|&(pin, name, impulses_per_kwh)| PinConfig {
                pin,
                name: name.into(),
                impulses_per_kwh,
            })
            .collect(),
        ..Config::default()
    }
}

fn rig(pins: &[(u32, &str, f64)]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let ctx = BuildCtx {
        state_dir: dir.path().to_path_buf(),
        ..BuildCtx::with_roots("/nonexistent", "/nonexistent")
    };
    let input = build(&config(pins), &ctx).unwrap();
    Rig { dir, input }
}

impl Rig {
    fn state_file(&self, pin: u32) -> PathBuf {
        self.dir
            .path()
            .join(format!("pulse_counter/gpiochip0-{pin}.wh"))
    }

    /// What the listener does once the lines are requested: restore, then open.
    fn open(&self) {
        let files = self.input.setup.as_ref().unwrap().state_files.clone();
        let mut lines = self.input.lines.borrow_mut();
        lines.restore(&files);
        lines.status = Status::Open;
    }

    /// Feeds events as the line fd would deliver them; returns why reading stopped.
    fn feed(&self, events: &[[u8; 48]]) -> String {
        let bytes: Vec<u8> = events.iter().flatten().copied().collect();
        smol::block_on(read_events(
            futures_lite::io::Cursor::new(bytes),
            &self.input.lines,
        ))
    }

    fn into_harness(self) -> (tempfile::TempDir, Harness) {
        (self.dir, Harness::new(Box::new(self.input)))
    }
}

/// A falling edge on `offset` `ms` milliseconds after boot.
fn falling(ms: u64, offset: u32, line_seqno: u32) -> [u8; 48] {
    event_bytes(ms * MS, EVENT_FALLING_EDGE, offset, line_seqno, line_seqno)
}

const HEATPUMP: &str = "{chip=gpiochip0,meter=heatpump,pin=17}";
const SOLAR: &str = "{chip=gpiochip0,meter=solar,pin=27}";

#[test]
fn pulses_become_energy_and_power_per_pin() {
    let r = rig(&[(17, "heatpump", 1000.0), (27, "solar", 500.0)]);
    r.open();
    let why = r.feed(&[
        falling(1_000, 17, 1),
        falling(1_500, 27, 1),
        falling(4_600, 17, 2),
        falling(8_700, 27, 2),
    ]);
    assert_eq!(why, "the GPIO line request was closed");
    let (_dir, mut h) = r.into_harness();
    let got = h.collect(1_000);
    assert_eq!(got.error, None);
    assert_eq!(got[&*format!("pulse_energy_wh{HEATPUMP}")], 2.0);
    assert_eq!(got[&*format!("pulse_energy_wh{SOLAR}")], 4.0);
    assert_eq!(got[&*format!("pulse_bounced{HEATPUMP}")], 0.0);
    assert_eq!(got[&*format!("pulse_lost{SOLAR}")], 0.0);
    // The event timestamps are from long ago (boot + seconds), so power is bounded by the
    // time since the last pulse: below one pulse over the pulse interval.
    assert!(got[&*format!("pulse_power_w{HEATPUMP}")] < 1000.0);
    assert!(got[&*format!("pulse_power_w{SOLAR}")] < 1000.0);
    assert!(!got.has("pulse_bad_events{chip=gpiochip0}"));
}

#[test]
fn power_from_recent_pulses_is_the_pulse_interval_rate() {
    let r = rig(&[(17, "heatpump", 1000.0)]);
    r.open();
    // Two pulses 3.6 s apart, the second just now: 1000 W.
    let now_ms = monotonic_ns() / MS;
    r.feed(&[falling(now_ms - 3600, 17, 1), falling(now_ms, 17, 2)]);
    let (_dir, mut h) = r.into_harness();
    let got = h.collect(1_000);
    let p = got[&*format!("pulse_power_w{HEATPUMP}")];
    // Exactly 1000 W unless the collection ran more than 3.6 s after the pulse.
    assert_eq!(p, 1000.0);
}

#[test]
fn the_energy_continues_from_the_saved_value_and_is_saved_when_it_changes() {
    let r = rig(&[(17, "heatpump", 1000.0)]);
    state::save(&r.state_file(17), 100.5).unwrap();
    r.open();
    r.feed(&[falling(1_000, 17, 1), falling(5_000, 17, 2)]);
    let file = r.state_file(17);
    let feeder = r.input.lines.clone();
    let (_dir, mut h) = r.into_harness();
    assert_eq!(h.collect(1_000)[&*format!("pulse_energy_wh{HEATPUMP}")], 102.5);
    assert_eq!(state::load(&file), Ok(Some(102.5)));
    // Unchanged: not written again (the file stays deleted).
    std::fs::remove_file(&file).unwrap();
    assert_eq!(h.collect(2_000)[&*format!("pulse_energy_wh{HEATPUMP}")], 102.5);
    assert!(!file.exists());
    smol::block_on(read_events(
        futures_lite::io::Cursor::new(falling(9_000, 17, 3).to_vec()),
        &feeder,
    ));
    assert_eq!(h.collect(3_000)[&*format!("pulse_energy_wh{HEATPUMP}")], 103.5);
    assert_eq!(state::load(&file), Ok(Some(103.5)));
}

#[test]
fn pulses_after_the_last_collection_are_saved_when_the_input_is_dropped() {
    let r = rig(&[(17, "heatpump", 1000.0)]);
    r.open();
    r.feed(&[falling(1_000, 17, 1)]);
    let file = r.state_file(17);
    let (_dir, h) = r.into_harness();
    drop(h);
    assert_eq!(state::load(&file), Ok(Some(1.0)));
}

#[test]
fn a_corrupt_state_file_is_reported_once_and_counting_starts_from_zero() {
    let r = rig(&[(17, "heatpump", 1000.0)]);
    let file = r.state_file(17);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "garbage").unwrap();
    r.open();
    r.feed(&[falling(1_000, 17, 1)]);
    let (_dir, mut h) = r.into_harness();
    let got = h.collect(1_000);
    let e = got.error.clone().unwrap();
    assert!(e.0.contains("not an energy in Wh: `garbage`; counting from 0"), "{e}");
    assert_eq!(got[&*format!("pulse_energy_wh{HEATPUMP}")], 1.0);
    assert_eq!(h.collect(2_000).error, None, "reported once");
    assert_eq!(state::load(&file), Ok(Some(1.0)));
}

/// The listener's read path on a real fd through `smol::Async` (a socket pair stands in
/// for the line fd): it waits without polling and takes events as they come, in batches.
#[test]
fn events_arriving_over_time_on_an_async_fd_are_all_counted() {
    let r = rig(&[(17, "heatpump", 1000.0)]);
    r.open();
    let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    let reader = smol::Async::new(reader).unwrap();
    let mut writer = smol::Async::new(writer).unwrap();
    let why = smol::block_on(async {
        let write = async {
            use futures_lite::AsyncWriteExt;
            writer.write_all(&falling(1_000, 17, 1)).await.unwrap();
            smol::Timer::after(Duration::from_millis(20)).await;
            let two: Vec<u8> = [falling(2_000, 17, 2), falling(3_000, 17, 3)].concat();
            writer.write_all(&two).await.unwrap();
            smol::Timer::after(Duration::from_millis(20)).await;
            drop(writer);
            std::future::pending::<String>().await
        };
        futures_lite::future::or(read_events(reader, &r.input.lines), write).await
    });
    assert_eq!(why, "the GPIO line request was closed");
    let (_dir, mut h) = r.into_harness();
    assert_eq!(h.collect(1_000)[&*format!("pulse_energy_wh{HEATPUMP}")], 3.0);
}

#[test]
fn a_meter_without_pulses_writes_no_file() {
    let r = rig(&[(17, "heatpump", 1000.0)]);
    r.open();
    let file = r.state_file(17);
    let (dir, mut h) = r.into_harness();
    assert_eq!(h.collect(1_000)[&*format!("pulse_energy_wh{HEATPUMP}")], 0.0);
    drop(h);
    assert!(!file.exists());
    assert!(!dir.path().join("pulse_counter").exists());
}

#[test]
fn an_unreadable_state_file_is_never_overwritten() {
    let r = rig(&[(17, "heatpump", 1000.0)]);
    let file = r.state_file(17);
    // A directory where the file should be: reading it fails with an I/O error.
    std::fs::create_dir_all(&file).unwrap();
    r.open();
    r.feed(&[falling(1_000, 17, 1)]);
    let (_dir, mut h) = r.into_harness();
    let got = h.collect(1_000);
    let e = got.error.clone().unwrap();
    assert!(e.0.contains("not saving this meter until restart"), "{e}");
    assert_eq!(got[&*format!("pulse_energy_wh{HEATPUMP}")], 1.0);
    assert_eq!(h.collect(2_000).error, None, "reported once, no save attempted");
    drop(h);
    assert!(file.is_dir());
}

#[test]
fn gaps_in_the_line_sequence_count_lost_events() {
    let r = rig(&[(17, "heatpump", 1000.0)]);
    r.open();
    r.feed(&[falling(1_000, 17, 1), falling(2_000, 17, 2), falling(9_000, 17, 6)]);
    let (_dir, mut h) = r.into_harness();
    let got = h.collect(1_000);
    assert_eq!(got[&*format!("pulse_lost{HEATPUMP}")], 3.0);
    assert_eq!(got[&*format!("pulse_energy_wh{HEATPUMP}")], 3.0);
}

#[test]
fn bounces_are_counted_not_metered() {
    let r = rig(&[(17, "heatpump", 1000.0)]);
    r.open();
    r.feed(&[falling(1_000, 17, 1), falling(1_003, 17, 2), falling(2_000, 17, 3)]);
    let (_dir, mut h) = r.into_harness();
    let got = h.collect(1_000);
    assert_eq!(got[&*format!("pulse_bounced{HEATPUMP}")], 1.0);
    assert_eq!(got[&*format!("pulse_energy_wh{HEATPUMP}")], 2.0);
}

#[test]
fn undecodable_events_and_foreign_lines_are_counted() {
    let r = rig(&[(17, "heatpump", 1000.0)]);
    r.open();
    r.feed(&[
        falling(1_000, 17, 1),
        falling(1_500, 5, 1),
        event_bytes(2_000 * MS, 9, 17, 2, 2),
    ]);
    let (_dir, mut h) = r.into_harness();
    let got = h.collect(1_000);
    assert_eq!(got["pulse_bad_events{chip=gpiochip0}"], 2.0);
    assert_eq!(got[&*format!("pulse_energy_wh{HEATPUMP}")], 1.0);
}

#[test]
fn a_failed_line_request_is_an_error_without_samples() {
    let r = rig(&[(17, "heatpump", 1000.0)]);
    r.input.lines.borrow_mut().status = Status::Failed("gone".into());
    let (_dir, mut h) = r.into_harness();
    let got = h.collect(1_000);
    assert_eq!(got.error.unwrap().0, "gone");
    assert!(got.samples.is_empty());
}

#[test]
fn nothing_is_written_before_the_listener_ran() {
    let r = rig(&[(17, "heatpump", 1000.0)]);
    let (_dir, mut h) = r.into_harness();
    let got = h.collect(1_000);
    assert_eq!(got.error, None);
    assert!(got.samples.is_empty());
}

/// Runs the real listener for a moment against `chip` and returns the collection.
fn listen_briefly(chip: &Path) -> (tempfile::TempDir, crate::inputs::testutil::Collected) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = BuildCtx {
        state_dir: dir.path().to_path_buf(),
        ..BuildCtx::with_roots("/nonexistent", "/nonexistent")
    };
    let cfg = Config {
        chip: chip.to_string_lossy().into_owned(),
        ..config(&[(17, "heatpump", 1000.0)])
    };
    let mut input = build(&cfg, &ctx).unwrap();
    let listener = input.listen().unwrap();
    assert!(input.listen().is_none(), "the listener is taken once");
    smol::block_on(futures_lite::future::or(
        async {
            listener.await;
        },
        async {
            smol::Timer::after(Duration::from_millis(50)).await;
        },
    ));
    let got = Harness::new(Box::new(input)).collect(1_000);
    (dir, got)
}

#[test]
fn a_missing_chip_says_how_to_find_the_right_one() {
    let (_dir, got) = listen_briefly(Path::new("/nonexistent/gpiochip9"));
    assert_eq!(
        got.error.unwrap().0,
        "/nonexistent/gpiochip9 does not exist: `gpiodetect` (package gpiod) lists this board's GPIO chips"
    );
    assert!(got.samples.is_empty());
}

#[test]
fn a_file_that_is_not_a_gpio_chip_is_named_as_such() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let (_dir, got) = listen_briefly(file.path());
    let e = got.error.unwrap().0;
    assert!(
        e.contains("not a GPIO chip, or a kernel without the GPIO character device v2"),
        "{e}"
    );
}

// --- configuration -------------------------------------------------------------------

#[test]
fn the_sample_is_valid_and_builds() {
    let c: Config = sample_options(SAMPLE);
    assert_eq!(c.pins, config(&[(17, "heatpump", 1000.0)]).pins);
    assert_eq!((c.chip.as_str(), c.debounce), ("gpiochip0", Millis(10)));
    assert_eq!((c.edge, c.bias), (EdgeOption::Falling, Bias::PullUp));
    build(&c, &BuildCtx::with_roots("/p", "/s")).unwrap();
}

#[test]
fn options_parse_as_documented() {
    let c: Config = yaml_serde::from_str(
        "{chip: /dev/gpiochip4, debounce: 25, edge: rising, bias: as_is, pins: [{pin: 5, name: x}]}",
    )
    .unwrap();
    assert_eq!(c.debounce, Millis(25), "a bare number is milliseconds");
    assert_eq!(c.pins[0].impulses_per_kwh, 1000.0, "the default constant");
    let input = build(&c, &BuildCtx::with_roots("/p", "/s")).unwrap();
    assert_eq!(input.chip, "gpiochip4");
    let setup = input.setup.as_ref().unwrap();
    assert_eq!(setup.chip_path, Path::new("/dev/gpiochip4"));
    assert_eq!(setup.debounce_us, 25_000);
    assert_eq!(setup.flags, FLAG_INPUT | FLAG_EDGE_RISING);
    assert!(yaml_serde::from_str::<Config>("{pins: [{pin: 5, name: x, bogus: 1}]}").is_err());
    assert!(yaml_serde::from_str::<Config>("{pins: [{name: x}]}").is_err());
}

#[test]
fn bad_pin_lists_are_config_errors() {
    let ctx = BuildCtx::with_roots("/p", "/s");
    let err = |c: Config| build(&c, &ctx).err().unwrap();
    assert!(err(config(&[])).contains("`pins` is empty"));
    assert!(err(config(&[(17, "a", 1000.0), (17, "b", 1000.0)])).contains("pin 17 is listed twice"));
    assert!(err(config(&[(17, "a", 0.0)])).contains("impulses_per_kwh must be a positive"));
    assert!(err(config(&[(17, "a", f64::NAN)])).contains("impulses_per_kwh"));
    assert!(err(config(&[(17, "", 1000.0)])).contains("`name` is empty"));
    let many: Vec<(u32, &str, f64)> = (0..65).map(|i| (i, "m", 1000.0)).collect();
    assert!(err(config(&many)).contains("at most 64"));
}

// --- real edges through the kernel -----------------------------------------------------

/// A gpio-sim chip (kernel 5.17+, `CONFIG_GPIO_SIM`), removed again on drop.
struct SimChip {
    dir: PathBuf,
    chip: String,
    dev: String,
}

impl SimChip {
    fn new(lines: u32) -> SimChip {
        let cfs = Path::new("/sys/kernel/config/gpio-sim");
        assert!(
            cfs.is_dir(),
            "{} is missing: run as root after `modprobe gpio-sim` (configfs mounted on /sys/kernel/config)",
            cfs.display()
        );
        let dir = cfs.join(format!("rtcollector-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        std::fs::create_dir(dir.join("bank0")).unwrap();
        std::fs::write(dir.join("bank0/num_lines"), lines.to_string()).unwrap();
        std::fs::write(dir.join("live"), "1").unwrap();
        let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap().trim().to_string();
        let (chip, dev) = (read("bank0/chip_name"), read("dev_name"));
        SimChip { dir, chip, dev }
    }

    /// Sets the simulated external pull of line `offset`: what the input reads when it
    /// does not drive the line (a pull-down after a pull-up is a falling edge).
    fn pull(&self, offset: u32, pull: &str) {
        let attr = format!(
            "/sys/devices/platform/{}/{}/sim_gpio{offset}/pull",
            self.dev, self.chip
        );
        std::fs::write(&attr, pull).unwrap_or_else(|e| panic!("{attr}: {e}"));
    }
}

impl Drop for SimChip {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("live"), "0");
        let _ = std::fs::remove_dir(self.dir.join("bank0"));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The whole GPIO path (line request, kernel debounce, events through smol) against a
/// simulated chip. Needs root and the gpio-sim module, so it is not run by default:
/// `sudo modprobe gpio-sim && sudo -E cargo test --lib inputs::pulse_counter::tests::gpio_sim -- --ignored`
#[test]
#[ignore = "needs root and the gpio-sim kernel module"]
fn gpio_sim_pulses_are_counted_from_real_edges() {
    let sim = SimChip::new(8);
    let dir = tempfile::tempdir().unwrap();
    let ctx = BuildCtx {
        state_dir: dir.path().to_path_buf(),
        ..BuildCtx::with_roots("/nonexistent", "/nonexistent")
    };
    let cfg = Config {
        chip: sim.chip.clone(),
        debounce: Millis(1),
        ..config(&[(3, "sim", 1000.0)])
    };
    let mut input = build(&cfg, &ctx).unwrap();
    let lines = input.lines.clone();
    let ex = smol::LocalExecutor::new();
    ex.spawn(input.listen().unwrap()).detach();
    smol::block_on(ex.run(async {
        for _ in 0..200 {
            match &lines.borrow().status {
                Status::Open => break,
                Status::Failed(e) => panic!("line request failed: {e}"),
                Status::Starting => {}
            }
            smol::Timer::after(Duration::from_millis(10)).await;
        }
        for _ in 0..3 {
            sim.pull(3, "pull-down");
            smol::Timer::after(Duration::from_millis(30)).await;
            sim.pull(3, "pull-up");
            smol::Timer::after(Duration::from_millis(30)).await;
        }
        smol::Timer::after(Duration::from_millis(100)).await;
    }));
    drop(ex);
    let got = Harness::new(Box::new(input)).collect(1_000);
    assert_eq!(got.error, None);
    let labels = format!("{{chip={},meter=sim,pin=3}}", sim.chip);
    assert_eq!(got[&*format!("pulse_energy_wh{labels}")], 3.0);
    assert_eq!(got[&*format!("pulse_lost{labels}")], 0.0);
    assert_eq!(got[&*format!("pulse_bounced{labels}")], 0.0);
    assert!(got.has(&format!("pulse_power_w{labels}")));
}

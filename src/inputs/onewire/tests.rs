use super::*;
use crate::inputs::testutil::{fixture_ctx, sample_options, Harness};

const GOOD: &str = "4b 01 4b 46 7f ff 05 10 e1 : crc=e1 YES\n4b 01 4b 46 7f ff 05 10 e1 t=20687\n";

#[test]
fn w1_slave_with_a_good_crc_gives_the_temperature() {
    assert_eq!(parse_w1_slave(GOOD), Ok(20_687));
    let negative = "5e ff 4b 46 7f ff 02 10 56 : crc=56 YES\n5e ff 4b 46 7f ff 02 10 56 t=-10125\n";
    assert_eq!(parse_w1_slave(negative), Ok(-10_125));
}

#[test]
fn w1_slave_with_a_bad_crc_gives_nothing() {
    let bad = "4b 01 4b 46 7f ff 05 10 e1 : crc=3c NO\n4b 01 4b 46 7f ff 05 10 e1 t=20687\n";
    assert_eq!(parse_w1_slave(bad), Err(W1Error::CrcMismatch));
}

#[test]
fn the_power_on_value_is_discarded() {
    let p = "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n";
    assert_eq!(parse_w1_slave(p), Err(W1Error::PowerOnValue));
    assert_eq!(checked_milli_c(85_000), Err(W1Error::PowerOnValue));
    assert_eq!(checked_milli_c(85_062), Ok(85_062));
}

#[test]
fn malformed_w1_slave_is_rejected() {
    for bad in [
        "",
        "4b 01 4b 46 7f ff 05 10 e1 : crc=e1 YES\n",
        "4b 01 4b 46 7f ff 05 10 e1 : crc=e1 MAYBE\n4b t=1\n",
        "4b 01 4b 46 7f ff 05 10 e1 YES\n4b t=1\n",
        "4b 01 : crc=e1 YES\n4b 01 4b 46 7f ff 05 10 e1 t=2o687\n",
    ] {
        assert_eq!(parse_w1_slave(bad), Err(W1Error::Malformed), "{bad:?}");
    }
}

#[test]
fn only_temperature_families_are_sensors() {
    assert!(is_therm_sensor("28-0316a2791aff"));
    assert!(is_therm_sensor("10-000802b4c6a1"));
    assert!(is_therm_sensor("3B-000000000001"));
    assert!(!is_therm_sensor("w1_bus_master1"));
    assert!(!is_therm_sensor("29-00000012ab34"), "DS2408 switch");
}

/// The fixture: one sensor with `temperature`, one with only `w1_slave`, one whose last
/// read failed its CRC, one at the power-on value, and the bus master.
#[test]
fn reads_both_formats_and_skips_bad_readings() {
    let ctx = fixture_ctx("onewire");
    let mut h = Harness::new(Box::new(build(&Config::default(), &ctx).unwrap()));
    let got = h.collect(1_000);
    assert_eq!(got["onewire_temp_c{sensor_id=28-0316a2791aff}"], 21.5);
    assert_eq!(got["onewire_temp_c{sensor_id=28-000005e2fdc3}"], 20.687);
    assert_eq!(got["onewire_temp_c{sensor_id=10-000802b4c6a1}"], -10.125);
    assert_eq!(got.samples.len(), 3, "{:#?}", got.samples);
    let e = got.error.expect("bad readings are reported");
    // The first bad reading in name order is the one reported (all are counted).
    assert!(e.0.contains("28-0000085b0d1e/w1_slave") && e.0.contains("85 °C"), "{e}");
}

/// A read thread still running (a hung bus) gets no second one beside it: the collection
/// is counted as an error, and the next one after the thread ended reads again.
#[test]
fn a_collection_is_skipped_while_the_previous_read_runs() {
    let ctx = fixture_ctx("onewire");
    let input = build(&Config::default(), &ctx).unwrap();
    let reading = input.reading.clone();
    let mut h = Harness::new(Box::new(input));
    let held = reading.try_claim().expect("no read runs yet");
    let got = h.collect(1_000);
    assert!(got.samples.is_empty(), "{:#?}", got.samples);
    let e = got.error.expect("the skip is counted");
    assert!(e.0.contains("previous read still running"), "{e}");
    drop(held);
    let got = h.collect(2_000);
    assert_eq!(got["onewire_temp_c{sensor_id=28-0316a2791aff}"], 21.5);
    assert_eq!(got.samples.len(), 3, "{:#?}", got.samples);
    assert!(!reading.is_running(), "the claim ended with the read thread");
}

#[test]
fn the_power_on_value_in_temperature_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("bus/w1/devices/28-00000abcdef0");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("temperature"), "85000\n").unwrap();
    let ctx = BuildCtx::with_roots(dir.path(), dir.path());
    let mut h = Harness::new(Box::new(build(&Config::default(), &ctx).unwrap()));
    let got = h.collect(1_000);
    assert!(got.samples.is_empty());
    assert!(got.error.unwrap().0.contains("85 °C"));
    fs::write(d.join("temperature"), "23062\n").unwrap();
    let got = h.collect(2_000);
    assert_eq!(got["onewire_temp_c{sensor_id=28-00000abcdef0}"], 23.062);
    assert!(got.error.is_none());
}

#[test]
fn no_bus_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = BuildCtx::with_roots(dir.path(), dir.path());
    let got = Harness::new(Box::new(build(&Config::default(), &ctx).unwrap())).collect(1);
    assert!(got.error.is_none() && got.samples.is_empty());
}

#[test]
fn sample_is_the_default() {
    let c: Config = sample_options(SAMPLE);
    assert_eq!(c.rescan_interval, Config::default().rescan_interval);
}

#[test]
fn a_crc_failure_is_reported_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("bus/w1/devices/28-00000b1a2c3d");
    fs::create_dir_all(&d).unwrap();
    let bad = "4b 01 4b 46 7f ff 05 10 e1 : crc=3c NO\n4b 01 4b 46 7f ff 05 10 e1 t=20687\n";
    fs::write(d.join("w1_slave"), bad).unwrap();
    let ctx = BuildCtx::with_roots(dir.path(), dir.path());
    let mut h = Harness::new(Box::new(build(&Config::default(), &ctx).unwrap()));
    let got = h.collect(1_000);
    assert!(got.samples.is_empty());
    let e = got.error.unwrap();
    assert!(e.0.contains("28-00000b1a2c3d/w1_slave: CRC check failed"), "{e}");
    fs::write(d.join("w1_slave"), GOOD).unwrap();
    assert_eq!(h.collect(2_000)["onewire_temp_c{sensor_id=28-00000b1a2c3d}"], 20.687);
}

use super::bme280::{self, Calibration, Raw};
use super::sht3x;
use super::*;
use crate::inputs::testutil::{sample_options, Harness};
use embedded_hal::i2c::{ErrorType, NoAcknowledgeSource, Operation};
use std::cell::RefCell;
use std::rc::Rc;

/// The BMP280 datasheet's worked example (section 3.12).
const EXAMPLE_TP: Calibration = Calibration {
    t1: 27504,
    t2: 26435,
    t3: -1000,
    p1: 36477,
    p2: -10685,
    p3: 3024,
    p4: 2855,
    p5: 140,
    p6: -7,
    p7: 15500,
    p8: -14600,
    p9: 6000,
    h1: 0,
    h2: 0,
    h3: 0,
    h4: 0,
    h5: 0,
    h6: 0,
};
const EXAMPLE_ADC_T: i32 = 519888;
const EXAMPLE_ADC_P: i32 = 415148;

/// Humidity trimming of a real BME280 (typical values), for the humidity checks.
const H: (u8, i16, u8, i16, i16, i8) = (75, 362, 0, 313, 50, 30);

fn with_humidity() -> Calibration {
    Calibration {
        h1: H.0,
        h2: H.1,
        h3: H.2,
        h4: H.3,
        h5: H.4,
        h6: H.5,
        ..EXAMPLE_TP
    }
}

#[test]
fn temperature_matches_the_datasheet_example() {
    let (centi, t_fine) = bme280::compensate_temperature(&EXAMPLE_TP, EXAMPLE_ADC_T);
    assert_eq!(centi, 2508, "25.08 °C");
    assert_eq!(t_fine, 128422);
}

#[test]
fn pressure_matches_the_datasheet_example() {
    let p = bme280::compensate_pressure(&EXAMPLE_TP, 128422, EXAMPLE_ADC_P).unwrap();
    // The 64-bit integer formula gives 25767233 / 256 = 100653.2539 Pa; the datasheet's
    // example table (computed with its floating-point formula) says 100653.27 Pa.
    assert_eq!(p, 25_767_233);
    assert!((p as f64 / 256.0 - 100_653.27).abs() < 0.02);
}

/// The datasheet's floating-point humidity formula (BME280 section 8.1), as a cross-check.
fn humidity_double(c: &Calibration, t_fine: i32, adc_h: i32) -> f64 {
    let v = t_fine as f64 - 76800.0;
    let mut h = (adc_h as f64 - (c.h4 as f64 * 64.0 + c.h5 as f64 / 16384.0 * v))
        * (c.h2 as f64 / 65536.0
            * (1.0 + c.h6 as f64 / 67108864.0 * v * (1.0 + c.h3 as f64 / 67108864.0 * v)));
    h *= 1.0 - c.h1 as f64 * h / 524288.0;
    h.clamp(0.0, 100.0)
}

#[test]
fn humidity_matches_the_datasheet_integer_code_and_its_float_formula() {
    let c = with_humidity();
    // Expected Q22.10 values from the datasheet's 32-bit C code run independently.
    for (adc_h, q22_10) in [(30000, 56317), (27000, 39190), (25000, 27726), (35000, 84675)] {
        let got = bme280::compensate_humidity(&c, 128422, adc_h);
        assert_eq!(got, q22_10, "adc_H {adc_h}");
        let float = humidity_double(&c, 128422, adc_h);
        assert!((got as f64 / 1024.0 - float).abs() < 0.01, "adc_H {adc_h}");
    }
}

#[test]
fn humidity_is_clamped_to_0_and_100_percent() {
    let c = with_humidity();
    assert_eq!(bme280::compensate_humidity(&c, 128422, 0), 0);
    assert_eq!(bme280::compensate_humidity(&c, 128422, 0xFFFF), 100 << 10);
}

#[test]
fn garbage_calibration_neither_panics_nor_divides_by_zero() {
    let c = Calibration {
        t1: u16::MAX,
        t2: i16::MIN,
        t3: i16::MAX,
        p1: u16::MAX,
        p2: i16::MIN,
        p3: i16::MAX,
        p4: i16::MIN,
        p5: i16::MAX,
        p6: i16::MIN,
        p7: i16::MAX,
        p8: i16::MIN,
        p9: i16::MAX,
        h1: u8::MAX,
        h2: i16::MIN,
        h3: u8::MAX,
        h4: i16::MAX,
        h5: i16::MIN,
        h6: i8::MAX,
    };
    for adc in [0, 1, 0x7FFFF, 0xFFFFF] {
        let raw = Raw {
            temperature: adc,
            pressure: adc,
            humidity: Some(adc & 0xFFFF),
        };
        let _ = bme280::compensate(&c, &raw);
    }
}

/// Calibration registers 0x88..0x9F of the example, little endian.
fn example_tp_bytes() -> [u8; bme280::CALIB_TP_LEN] {
    let c = EXAMPLE_TP;
    let words: [u16; 12] = [
        c.t1, c.t2 as u16, c.t3 as u16, c.p1, c.p2 as u16, c.p3 as u16, c.p4 as u16,
        c.p5 as u16, c.p6 as u16, c.p7 as u16, c.p8 as u16, c.p9 as u16,
    ];
    let mut b = [0u8; bme280::CALIB_TP_LEN];
    for (i, w) in words.iter().enumerate() {
        b[2 * i..2 * i + 2].copy_from_slice(&w.to_le_bytes());
    }
    b
}

/// Registers 0xE1..0xE7 for `H`: dig_H4 and dig_H5 share 0xE5's nibbles.
const H_BYTES: [u8; 7] = [0x6A, 0x01, 0x00, 0x13, 0x29, 0x03, 0x1E];

#[test]
fn calibration_unpacks_the_shared_nibbles_of_h4_and_h5() {
    let c = Calibration::parse(&example_tp_bytes(), H.0, &H_BYTES).unwrap();
    assert_eq!(c, with_humidity());
    // Negative dig_H4 / dig_H5: the sign comes from the whole register byte.
    let neg = Calibration::parse(&example_tp_bytes(), 0, &[0, 0, 0, 0xFF, 0xF8, 0xFE, 0]).unwrap();
    assert_eq!(neg.h4, -16 + 8);
    assert_eq!(neg.h5, -32 + 15);
}

#[test]
fn blank_calibration_is_rejected() {
    let h = [0u8; bme280::CALIB_H_LEN];
    assert!(Calibration::parse(&[0; bme280::CALIB_TP_LEN], 0, &h).is_none());
    assert!(Calibration::parse(&[0xFF; bme280::CALIB_TP_LEN], 0, &h).is_none());
}

#[test]
fn raw_data_is_20_bit_big_endian_with_the_low_nibble_in_xlsb() {
    let data = [0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00, 0x75, 0x30];
    let raw = Raw::parse(&data).unwrap();
    assert_eq!(raw.pressure, EXAMPLE_ADC_P);
    assert_eq!(raw.temperature, EXAMPLE_ADC_T);
    assert_eq!(raw.humidity, Some(30000));
    assert_eq!(Raw::parse(&data[..6]).unwrap().humidity, None);
    assert_eq!(Raw::parse(&data[..5]), None);
    assert_eq!(Raw::parse(&data[..7]), None);
}

#[test]
fn sht3x_crc_matches_the_datasheet_example() {
    assert_eq!(sht3x::crc8(&[0xBE, 0xEF]), 0x92);
}

#[test]
fn sht3x_converts_raw_values() {
    let r = sht3x::Reading::parse(&sht_bytes(0x6666, 0x8000)).unwrap();
    assert_eq!((r.raw_temperature, r.raw_humidity), (0x6666, 0x8000));
    assert!((r.celsius() - 25.0).abs() < 1e-3, "{}", r.celsius());
    assert!((r.humidity_percent() - 50.0).abs() < 1e-2);
    let mut bad = sht_bytes(0x6666, 0x8000);
    bad[5] ^= 1;
    assert!(sht3x::Reading::parse(&bad).is_err());
}

fn sht_bytes(t: u16, rh: u16) -> [u8; 6] {
    let (t, rh) = (t.to_be_bytes(), rh.to_be_bytes());
    [t[0], t[1], sht3x::crc8(&t), rh[0], rh[1], sht3x::crc8(&rh)]
}

// --- a fake embedded-hal bus -------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum FakeError {
    Nack,
}

impl fmt::Display for FakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no acknowledge")
    }
}

impl embedded_hal::i2c::Error for FakeError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
    }
}

/// One device on the bus: a Bosch-style register map (pointer write, auto-increment
/// read), or an SHT3x (commands in, 6 bytes out).
struct Device {
    address: u8,
    regs: [u8; 256],
    ptr: u8,
    /// Reads of the status register that still say "measuring" after a forced start.
    busy_reads: u32,
    busy_reads_per_measurement: u32,
    sht_reply: Option<[u8; 6]>,
    writes: Vec<Vec<u8>>,
}

#[derive(Clone)]
struct FakeBus(Rc<RefCell<Device>>);

impl ErrorType for FakeBus {
    type Error = FakeError;
}

impl I2c for FakeBus {
    fn transaction(&mut self, address: u8, ops: &mut [Operation<'_>]) -> Result<(), FakeError> {
        let mut d = self.0.borrow_mut();
        if address != d.address {
            return Err(FakeError::Nack);
        }
        for op in ops {
            match op {
                Operation::Write(bytes) => d.write(bytes),
                Operation::Read(buf) => d.read(buf),
            }
        }
        Ok(())
    }
}

impl Device {
    fn write(&mut self, bytes: &[u8]) {
        self.writes.push(bytes.to_vec());
        if self.sht_reply.is_some() {
            return;
        }
        let Some((&reg, values)) = bytes.split_first() else {
            return;
        };
        self.ptr = reg;
        for &v in values {
            self.regs[self.ptr as usize] = v;
            if self.ptr == 0xF4 && v & 0b11 == 0b01 {
                self.busy_reads = self.busy_reads_per_measurement;
            }
            self.ptr = self.ptr.wrapping_add(1);
        }
    }

    fn read(&mut self, buf: &mut [u8]) {
        if let Some(reply) = self.sht_reply {
            buf.copy_from_slice(&reply[..buf.len()]);
            return;
        }
        for b in buf.iter_mut() {
            *b = self.regs[self.ptr as usize];
            if self.ptr == 0xF3 && self.busy_reads > 0 {
                self.busy_reads -= 1;
                *b |= 1 << 3;
            }
            self.ptr = self.ptr.wrapping_add(1);
        }
    }
}

fn bosch(chip_id: u8) -> Rc<RefCell<Device>> {
    let mut regs = [0u8; 256];
    regs[0x88..0x88 + bme280::CALIB_TP_LEN].copy_from_slice(&example_tp_bytes());
    regs[0xA1] = H.0;
    regs[0xE1..0xE8].copy_from_slice(&H_BYTES);
    regs[0xD0] = chip_id;
    // adc_P 415148, adc_T 519888, adc_H 30000.
    regs[0xF7..0xFF].copy_from_slice(&[0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00, 0x75, 0x30]);
    Rc::new(RefCell::new(Device {
        address: 0x76,
        regs,
        ptr: 0,
        busy_reads: 0,
        busy_reads_per_measurement: 1,
        sht_reply: None,
        writes: Vec::new(),
    }))
}

fn harness(cfg: &Config, dev: &Rc<RefCell<Device>>) -> Harness {
    let bus = FakeBus(dev.clone());
    let input = RpiI2c::new(cfg, Box::new(move || Ok(bus.clone()))).unwrap();
    Harness::new(Box::new(input))
}

fn cfg(model: Model) -> Config {
    Config {
        model,
        ..Config::default()
    }
}

const BME_LABELS: &str = "{address=0x76,bus=1,model=bme280}";

#[test]
fn bme280_through_a_fake_bus() {
    let dev = bosch(0x60);
    let mut h = harness(&cfg(Model::Bme280), &dev);
    let got = h.collect(1_000);
    assert_eq!(got.error, None);
    assert_eq!(got.samples.len(), 3);
    assert_eq!(got[&*format!("rpi_i2c_temperature_c{BME_LABELS}")], 25.08);
    assert_eq!(
        got[&*format!("rpi_i2c_pressure_hpa{BME_LABELS}")],
        25_767_233.0 / 256.0 / 100.0
    );
    assert_eq!(
        got[&*format!("rpi_i2c_humidity_percent{BME_LABELS}")],
        56317.0 / 1024.0
    );
    // Humidity oversampling first, then forced mode with T and P oversampling ×1.
    let writes = dev.borrow().writes.clone();
    let config_writes: Vec<_> = writes.iter().filter(|w| w.len() == 2).collect();
    assert_eq!(config_writes, [&vec![0xF2, 0x01], &vec![0xF4, 0x25]]);
}

#[test]
fn calibration_is_read_once_and_each_collection_triggers_one_measurement() {
    let dev = bosch(0x60);
    let mut h = harness(&cfg(Model::Bme280), &dev);
    h.collect(1_000);
    dev.borrow_mut().writes.clear();
    h.collect(2_000);
    let writes = dev.borrow().writes.clone();
    let pointers: Vec<u8> = writes.iter().map(|w| w[0]).collect();
    // No calibration (0x88, 0xA1, 0xE1) or chip id (0xD0) read the second time.
    assert_eq!(pointers, [0xF2, 0xF4, 0xF3, 0xF3, 0xF7]);
}

#[test]
fn bmp280_has_no_humidity() {
    let dev = bosch(0x58);
    let mut h = harness(&cfg(Model::Bmp280), &dev);
    let got = h.collect(1_000);
    assert_eq!(got.error, None);
    let labels = "{address=0x76,bus=1,model=bmp280}";
    assert_eq!(got[&*format!("rpi_i2c_temperature_c{labels}")], 25.08);
    assert_eq!(
        got[&*format!("rpi_i2c_pressure_hpa{labels}")],
        25_767_233.0 / 256.0 / 100.0
    );
    assert_eq!(got.samples.len(), 2);
    assert!(!dev.borrow().writes.iter().any(|w| w[0] == 0xF2));
}

#[test]
fn a_bmp280_configured_as_bme280_is_named() {
    let dev = bosch(0x58);
    let got = harness(&cfg(Model::Bme280), &dev).collect(1_000);
    let e = got.error.unwrap();
    assert!(
        e.0.contains("the chip here is a bmp280 (chip id 0x58): set `model: bmp280`"),
        "{e}"
    );
    assert!(got.samples.is_empty());
}

#[test]
fn an_unknown_chip_id_is_an_error() {
    let dev = bosch(0x33);
    let got = harness(&cfg(Model::Bme280), &dev).collect(1_000);
    assert!(got.error.unwrap().0.contains("chip id 0x33 is neither"));
}

#[test]
fn nothing_at_the_address_is_explained_and_recovery_rereads_calibration() {
    let dev = bosch(0x60);
    dev.borrow_mut().address = 0x77;
    let mut h = harness(&cfg(Model::Bme280), &dev);
    let got = h.collect(1_000);
    let e = got.error.unwrap();
    assert_eq!(
        e.0,
        "/dev/i2c-1 bme280 at 0x76: nothing answers at this address (no acknowledge): check the wiring and `address` (`i2cdetect -y <bus>` lists what answers)"
    );
    assert!(got.samples.is_empty());
    dev.borrow_mut().address = 0x76;
    let got = h.collect(2_000);
    assert_eq!(got.error, None);
    assert_eq!(got.samples.len(), 3);
}

#[test]
fn a_failed_reading_drops_the_sensor_so_the_next_collection_starts_over() {
    let dev = bosch(0x60);
    let mut h = harness(&cfg(Model::Bme280), &dev);
    assert_eq!(h.collect(1_000).error, None);
    dev.borrow_mut().address = 0x10;
    assert!(h.collect(2_000).error.is_some());
    dev.borrow_mut().address = 0x76;
    dev.borrow_mut().writes.clear();
    assert_eq!(h.collect(3_000).error, None);
    assert_eq!(dev.borrow().writes[0], [0xD0], "chip id checked again");
}

#[test]
fn a_skipped_conversion_writes_nothing() {
    let dev = bosch(0x60);
    // 0x80000: the chip's value for a skipped temperature conversion.
    dev.borrow_mut().regs[0xFA..0xFD].copy_from_slice(&[0x80, 0x00, 0x00]);
    let got = harness(&cfg(Model::Bme280), &dev).collect(1_000);
    assert!(got.error.unwrap().0.ends_with("the chip returned no measurement"));
    assert!(got.samples.is_empty());
}

#[test]
fn a_conversion_that_never_ends_is_an_error() {
    let dev = bosch(0x60);
    dev.borrow_mut().busy_reads_per_measurement = 100;
    let got = harness(&cfg(Model::Bme280), &dev).collect(1_000);
    assert!(got.error.unwrap().0.ends_with("did not finish in time"));
    assert!(got.samples.is_empty());
}

#[test]
fn blank_calibration_on_the_bus_is_an_error() {
    let dev = bosch(0x60);
    dev.borrow_mut().regs[0x88..0xA0].fill(0);
    let got = harness(&cfg(Model::Bme280), &dev).collect(1_000);
    assert!(got.error.unwrap().0.contains("calibration registers read blank"));
}

#[test]
fn a_bus_that_cannot_be_opened_passes_its_message_on() {
    let input: RpiI2c<FakeBus> =
        RpiI2c::new(&Config::default(), Box::new(|| Err("/dev/i2c-1 does not exist".into())))
            .unwrap();
    let got = Harness::new(Box::new(input)).collect(1_000);
    assert_eq!(got.error.unwrap().0, "/dev/i2c-1 does not exist");
}

fn sht(reply: [u8; 6]) -> Rc<RefCell<Device>> {
    Rc::new(RefCell::new(Device {
        address: 0x44,
        regs: [0; 256],
        ptr: 0,
        busy_reads: 0,
        busy_reads_per_measurement: 0,
        sht_reply: Some(reply),
        writes: Vec::new(),
    }))
}

#[test]
fn sht3x_through_a_fake_bus() {
    let dev = sht(sht_bytes(0x6666, 0x8000));
    let mut h = harness(&cfg(Model::Sht3x), &dev);
    let got = h.collect(1_000);
    assert_eq!(got.error, None);
    let labels = "{address=0x44,bus=1,model=sht3x}";
    assert_eq!(
        got[&*format!("rpi_i2c_temperature_c{labels}")],
        -45.0 + 175.0 * 26214.0 / 65535.0
    );
    assert_eq!(
        got[&*format!("rpi_i2c_humidity_percent{labels}")],
        100.0 * 32768.0 / 65535.0
    );
    assert_eq!(got.samples.len(), 2);
    // Soft reset once, then one single-shot command per collection.
    assert_eq!(dev.borrow().writes, [vec![0x30, 0xA2], vec![0x24, 0x00]]);
}

#[test]
fn sht3x_crc_error_writes_nothing() {
    let mut reply = sht_bytes(0x6666, 0x8000);
    reply[2] ^= 0xFF;
    let got = harness(&cfg(Model::Sht3x), &sht(reply)).collect(1_000);
    assert!(got.error.unwrap().0.contains("failed its CRC"));
    assert!(got.samples.is_empty());
}

#[test]
fn reserved_addresses_are_a_config_error() {
    for address in [0x00, 0x07, 0x78, 0x7F] {
        let cfg = Config {
            address: Some(address),
            ..Config::default()
        };
        let e = RpiI2c::<FakeBus>::new(&cfg, Box::new(|| Err(String::new())))
            .err()
            .unwrap();
        assert!(e.contains("not a 7-bit device address"), "{e}");
    }
}

#[test]
fn sample_is_valid_and_hex_addresses_parse() {
    let c: Config = sample_options(SAMPLE);
    assert_eq!((c.bus, c.address, c.model), (1, None, Model::Bme280));
    let c: Config = yaml_serde::from_str("{bus: 3, address: 0x77, model: bmp280}").unwrap();
    assert_eq!((c.bus, c.address, c.model), (3, Some(0x77), Model::Bmp280));
    assert!(yaml_serde::from_str::<Config>("{model: bme680}").is_err());
}

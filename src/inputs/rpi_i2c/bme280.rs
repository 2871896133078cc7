//! Bosch BME280 (temperature, humidity, pressure) and BMP280 (no humidity), over any
//! `embedded-hal` 1.0 I2C bus, in forced mode: one measurement per collection, then the
//! chip sleeps (the datasheet's "weather monitoring" setting, no self-heating).
//!
//! Compensation is the datasheet's integer code (BME280 datasheet section 4.2.3, BMP280
//! section 3.11.3 with its 64-bit pressure variant), so readings match Bosch's to the digit.

use super::SensorError;
use embedded_hal::i2c::I2c;

mod reg {
    pub const CALIB_TP: u8 = 0x88;
    pub const CALIB_H1: u8 = 0xA1;
    pub const CHIP_ID: u8 = 0xD0;
    pub const CALIB_H2: u8 = 0xE1;
    pub const CTRL_HUM: u8 = 0xF2;
    pub const STATUS: u8 = 0xF3;
    pub const CTRL_MEAS: u8 = 0xF4;
    pub const DATA: u8 = 0xF7;
}

/// Chip ids in register 0xD0. 0x56/0x57 are BMP280 engineering samples still sold.
pub const CHIP_ID_BME280: u8 = 0x60;
const CHIP_IDS_BMP280: [u8; 3] = [0x56, 0x57, 0x58];

/// Oversampling ×1 for every quantity and forced mode: about 9.3 ms per measurement
/// (datasheet 9.1, t_measure,max with all three enabled).
const OSRS_X1: u8 = 0b001;
const MODE_FORCED: u8 = 0b01;
const CTRL_MEAS_FORCED: u8 = (OSRS_X1 << 5) | (OSRS_X1 << 2) | MODE_FORCED;
/// Status bit 3: a conversion is running.
const STATUS_MEASURING: u8 = 1 << 3;
/// What the chip reads when a quantity was skipped or never converted.
const ADC_SKIPPED_20: i32 = 0x80000;
const ADC_SKIPPED_16: i32 = 0x8000;

/// How long one forced measurement takes at ×1 oversampling, rounded up.
pub const MEASUREMENT_MS: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Bme280,
    Bmp280,
}

impl Variant {
    pub fn from_chip_id(id: u8) -> Option<Variant> {
        match id {
            CHIP_ID_BME280 => Some(Variant::Bme280),
            _ if CHIP_IDS_BMP280.contains(&id) => Some(Variant::Bmp280),
            _ => None,
        }
    }
}

/// The factory trimming values (`dig_*`), read once per opening of the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Calibration {
    pub t1: u16,
    pub t2: i16,
    pub t3: i16,
    pub p1: u16,
    pub p2: i16,
    pub p3: i16,
    pub p4: i16,
    pub p5: i16,
    pub p6: i16,
    pub p7: i16,
    pub p8: i16,
    pub p9: i16,
    pub h1: u8,
    pub h2: i16,
    pub h3: u8,
    pub h4: i16,
    pub h5: i16,
    pub h6: i8,
}

/// Registers 0x88..=0x9F: dig_T1..dig_P9, little endian.
pub const CALIB_TP_LEN: usize = 24;
/// Registers 0xE1..=0xE7: dig_H2..dig_H6.
pub const CALIB_H_LEN: usize = 7;

fn u16_le(b: &[u8; CALIB_TP_LEN], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn i16_le(b: &[u8; CALIB_TP_LEN], i: usize) -> i16 {
    i16::from_le_bytes([b[i], b[i + 1]])
}

impl Calibration {
    /// Decodes the calibration blocks; `h1` and `h` are ignored (zero) for a BMP280.
    /// `None` for all-zero or all-ones trimming (a bus that reads nothing): it would divide by
    /// zero or give nonsense.
    pub fn parse(tp: &[u8; CALIB_TP_LEN], h1: u8, h: &[u8; CALIB_H_LEN]) -> Option<Self> {
        let c = Calibration {
            t1: u16_le(tp, 0),
            t2: i16_le(tp, 2),
            t3: i16_le(tp, 4),
            p1: u16_le(tp, 6),
            p2: i16_le(tp, 8),
            p3: i16_le(tp, 10),
            p4: i16_le(tp, 12),
            p5: i16_le(tp, 14),
            p6: i16_le(tp, 16),
            p7: i16_le(tp, 18),
            p8: i16_le(tp, 20),
            p9: i16_le(tp, 22),
            h1,
            h2: i16::from_le_bytes([h[0], h[1]]),
            h3: h[2],
            // dig_H4 is 0xE4[7:0] / 0xE5[3:0] and dig_H5 is 0xE5[7:4] / 0xE6[7:0]: 12-bit
            // values whose sign comes from the whole byte (the datasheet's int8 cast).
            h4: ((h[3] as i8 as i16) << 4) | (h[4] & 0x0F) as i16,
            h5: ((h[5] as i8 as i16) << 4) | (h[4] >> 4) as i16,
            h6: h[6] as i8,
        };
        let blank = tp.iter().all(|&b| b == 0) || tp.iter().all(|&b| b == 0xFF);
        (!blank && c.t1 != 0 && c.p1 != 0).then_some(c)
    }
}

/// Raw ADC values of one measurement (20-bit temperature and pressure, 16-bit humidity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw {
    pub temperature: i32,
    pub pressure: i32,
    pub humidity: Option<i32>,
}

impl Raw {
    /// Decodes registers 0xF7.. (8 bytes for a BME280; 6 for a BMP280).
    pub fn parse(data: &[u8]) -> Option<Raw> {
        let adc20 = |b: &[u8]| ((b[0] as i32) << 12) | ((b[1] as i32) << 4) | (b[2] as i32 >> 4);
        let (p, rest) = data.split_at_checked(3)?;
        let (t, rest) = rest.split_at_checked(3)?;
        let humidity = match rest {
            [msb, lsb] => Some(((*msb as i32) << 8) | *lsb as i32),
            [] => None,
            _ => return None,
        };
        Some(Raw {
            temperature: adc20(t),
            pressure: adc20(p),
            humidity,
        })
    }

    fn skipped(&self) -> bool {
        self.temperature == ADC_SKIPPED_20
            || self.pressure == ADC_SKIPPED_20
            || self.humidity == Some(ADC_SKIPPED_16)
    }
}

/// One compensated measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// In 0.01 °C (datasheet output format).
    pub centi_celsius: i32,
    /// In Pa as Q24.8 (value / 256 is Pa).
    pub pressure_q24_8: u32,
    /// In %RH as Q22.10 (value / 1024 is %RH); `None` on a BMP280.
    pub humidity_q22_10: Option<u32>,
}

impl Reading {
    pub fn celsius(&self) -> f64 {
        self.centi_celsius as f64 / 100.0
    }
    pub fn pascal(&self) -> f64 {
        self.pressure_q24_8 as f64 / 256.0
    }
    pub fn humidity_percent(&self) -> Option<f64> {
        self.humidity_q22_10.map(|h| h as f64 / 1024.0)
    }
}

/// Temperature in 0.01 °C and `t_fine`, which the other two formulas take.
pub fn compensate_temperature(c: &Calibration, adc_t: i32) -> (i32, i32) {
    let (t1, t2, t3) = (c.t1 as i32, c.t2 as i32, c.t3 as i32);
    let var1 = (((adc_t >> 3) - (t1 << 1)).wrapping_mul(t2)) >> 11;
    let d = (adc_t >> 4) - t1;
    let var2 = ((d.wrapping_mul(d) >> 12).wrapping_mul(t3)) >> 14;
    let t_fine = var1.wrapping_add(var2);
    (t_fine.wrapping_mul(5).wrapping_add(128) >> 8, t_fine)
}

/// Pressure in Pa as Q24.8 (the datasheet's 64-bit variant), or `None` where the formula
/// would divide by zero.
pub fn compensate_pressure(c: &Calibration, t_fine: i32, adc_p: i32) -> Option<u32> {
    let mut var1 = t_fine as i64 - 128_000;
    let mut var2 = var1.wrapping_mul(var1).wrapping_mul(c.p6 as i64);
    var2 = var2.wrapping_add(var1.wrapping_mul(c.p5 as i64) << 17);
    var2 = var2.wrapping_add((c.p4 as i64) << 35);
    var1 = (var1.wrapping_mul(var1).wrapping_mul(c.p3 as i64) >> 8)
        .wrapping_add(var1.wrapping_mul(c.p2 as i64) << 12);
    var1 = ((1i64 << 47).wrapping_add(var1)).wrapping_mul(c.p1 as i64) >> 33;
    if var1 == 0 {
        return None;
    }
    let mut p = 1_048_576 - adc_p as i64;
    p = ((p << 31).wrapping_sub(var2)).wrapping_mul(3125) / var1;
    var1 = (c.p9 as i64).wrapping_mul(p >> 13).wrapping_mul(p >> 13) >> 25;
    var2 = (c.p8 as i64).wrapping_mul(p) >> 19;
    p = (p.wrapping_add(var1).wrapping_add(var2) >> 8).wrapping_add((c.p7 as i64) << 4);
    u32::try_from(p).ok()
}

/// Relative humidity in %RH as Q22.10, clamped to 0..=100 % as the datasheet does.
pub fn compensate_humidity(c: &Calibration, t_fine: i32, adc_h: i32) -> u32 {
    // The datasheet's 32-bit code in 64-bit arithmetic: identical where the 32-bit code
    // does not overflow, and no overflow on garbage input.
    let (h1, h2, h3) = (c.h1 as i64, c.h2 as i64, c.h3 as i64);
    let (h4, h5, h6) = (c.h4 as i64, c.h5 as i64, c.h6 as i64);
    let v = t_fine as i64 - 76_800;
    let scaled = (((adc_h as i64) << 14) - (h4 << 20) - h5 * v + 16_384) >> 15;
    let factor = (((((v * h6) >> 10) * (((v * h3) >> 11) + 32_768)) >> 10) + 2_097_152) * h2
        + 8_192;
    let mut x = scaled.wrapping_mul(factor >> 14);
    x = x.wrapping_sub((((x >> 15).wrapping_mul(x >> 15) >> 7).wrapping_mul(h1)) >> 4);
    (x.clamp(0, 419_430_400) >> 12) as u32
}

/// Compensates one raw measurement; `None` when a value was skipped by the chip or the
/// pressure formula has no answer.
pub fn compensate(c: &Calibration, raw: &Raw) -> Option<Reading> {
    if raw.skipped() {
        return None;
    }
    let (centi_celsius, t_fine) = compensate_temperature(c, raw.temperature);
    Some(Reading {
        centi_celsius,
        pressure_q24_8: compensate_pressure(c, t_fine, raw.pressure)?,
        humidity_q22_10: raw.humidity.map(|h| compensate_humidity(c, t_fine, h)),
    })
}

/// A BME280 or BMP280 at one address, calibration read.
pub struct Bme280 {
    address: u8,
    variant: Variant,
    calibration: Calibration,
}

impl Bme280 {
    /// Checks the chip id against `expected` and reads the calibration.
    pub fn init<B: I2c>(
        bus: &mut B,
        address: u8,
        expected: Variant,
    ) -> Result<Self, SensorError<B::Error>> {
        let mut id = [0u8];
        bus.write_read(address, &[reg::CHIP_ID], &mut id)
            .map_err(SensorError::Bus)?;
        let found = Variant::from_chip_id(id[0]);
        if found != Some(expected) {
            return Err(SensorError::WrongChip {
                chip_id: id[0],
                found: found.map(|v| match v {
                    Variant::Bme280 => "bme280",
                    Variant::Bmp280 => "bmp280",
                }),
            });
        }
        let mut tp = [0u8; CALIB_TP_LEN];
        bus.write_read(address, &[reg::CALIB_TP], &mut tp)
            .map_err(SensorError::Bus)?;
        let mut h1 = [0u8];
        let mut h = [0u8; CALIB_H_LEN];
        if expected == Variant::Bme280 {
            bus.write_read(address, &[reg::CALIB_H1], &mut h1)
                .map_err(SensorError::Bus)?;
            bus.write_read(address, &[reg::CALIB_H2], &mut h)
                .map_err(SensorError::Bus)?;
        }
        let calibration =
            Calibration::parse(&tp, h1[0], &h).ok_or(SensorError::BadCalibration)?;
        Ok(Bme280 {
            address,
            variant: expected,
            calibration,
        })
    }

    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// Starts one forced measurement; read it [`MEASUREMENT_MS`] later.
    pub fn start<B: I2c>(&self, bus: &mut B) -> Result<(), SensorError<B::Error>> {
        if self.variant == Variant::Bme280 {
            // ctrl_hum takes effect only with the next write of ctrl_meas (datasheet 5.4.3).
            bus.write(self.address, &[reg::CTRL_HUM, OSRS_X1])
                .map_err(SensorError::Bus)?;
        }
        bus.write(self.address, &[reg::CTRL_MEAS, CTRL_MEAS_FORCED])
            .map_err(SensorError::Bus)
    }

    /// Whether the measurement started by [`Bme280::start`] is still running.
    pub fn busy<B: I2c>(&self, bus: &mut B) -> Result<bool, SensorError<B::Error>> {
        let mut status = [0u8];
        bus.write_read(self.address, &[reg::STATUS], &mut status)
            .map_err(SensorError::Bus)?;
        Ok(status[0] & STATUS_MEASURING != 0)
    }

    /// Reads and compensates the finished measurement (one burst read, so the values
    /// belong together: the chip shadows its data registers during a burst).
    pub fn read<B: I2c>(&self, bus: &mut B) -> Result<Reading, SensorError<B::Error>> {
        let mut data = [0u8; 8];
        let len = match self.variant {
            Variant::Bme280 => 8,
            Variant::Bmp280 => 6,
        };
        bus.write_read(self.address, &[reg::DATA], &mut data[..len])
            .map_err(SensorError::Bus)?;
        let raw = Raw::parse(&data[..len]).ok_or(SensorError::NoMeasurement)?;
        compensate(&self.calibration, &raw).ok_or(SensorError::NoMeasurement)
    }
}

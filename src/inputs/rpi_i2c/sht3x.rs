//! Sensirion SHT30/SHT31/SHT35 (temperature, humidity) over any `embedded-hal` 1.0 I2C bus:
//! one single-shot measurement per collection (datasheet section 4.3), CRC-checked.

use super::SensorError;
use embedded_hal::i2c::I2c;

/// Single shot, high repeatability, no clock stretching (datasheet table 9): the bus is
/// free while the sensor converts, and a read before the end is simply NACKed.
const CMD_SINGLE_SHOT_HIGH: [u8; 2] = [0x24, 0x00];
/// Soft reset (datasheet 4.9): also proves the sensor answers at this address.
const CMD_SOFT_RESET: [u8; 2] = [0x30, 0xA2];

/// High-repeatability conversion time is at most 15.5 ms (datasheet table 4), rounded up.
pub const MEASUREMENT_MS: u64 = 16;
/// After a soft reset the sensor needs at most 1.5 ms.
pub const RESET_MS: u64 = 2;

/// CRC-8 of a 2-byte word: polynomial 0x31, init 0xFF, no reflection (datasheet 4.12).
pub fn crc8(data: &[u8]) -> u8 {
    let mut crc = 0xFFu8;
    for &b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x31
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A word whose CRC byte does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrcMismatch;

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub raw_temperature: u16,
    pub raw_humidity: u16,
}

impl Reading {
    /// Decodes the 6 bytes the sensor returns: T msb, T lsb, T crc, RH msb, RH lsb, RH crc.
    pub fn parse(data: &[u8; 6]) -> Result<Reading, CrcMismatch> {
        if crc8(&data[0..2]) != data[2] || crc8(&data[3..5]) != data[5] {
            return Err(CrcMismatch);
        }
        Ok(Reading {
            raw_temperature: u16::from_be_bytes([data[0], data[1]]),
            raw_humidity: u16::from_be_bytes([data[3], data[4]]),
        })
    }

    /// T = -45 + 175 · S_T / (2^16 - 1) (datasheet 4.13).
    pub fn celsius(&self) -> f64 {
        -45.0 + 175.0 * self.raw_temperature as f64 / 65535.0
    }

    /// RH = 100 · S_RH / (2^16 - 1).
    pub fn humidity_percent(&self) -> f64 {
        100.0 * self.raw_humidity as f64 / 65535.0
    }
}

pub struct Sht3x {
    address: u8,
}

impl Sht3x {
    /// Soft-resets the sensor, which fails if nothing answers at `address`.
    pub fn init<B: I2c>(bus: &mut B, address: u8) -> Result<Self, SensorError<B::Error>> {
        bus.write(address, &CMD_SOFT_RESET)
            .map_err(SensorError::Bus)?;
        Ok(Sht3x { address })
    }

    /// Starts one measurement; read it [`MEASUREMENT_MS`] later.
    pub fn start<B: I2c>(&self, bus: &mut B) -> Result<(), SensorError<B::Error>> {
        bus.write(self.address, &CMD_SINGLE_SHOT_HIGH)
            .map_err(SensorError::Bus)
    }

    pub fn read<B: I2c>(&self, bus: &mut B) -> Result<Reading, SensorError<B::Error>> {
        let mut data = [0u8; 6];
        bus.read(self.address, &mut data)
            .map_err(SensorError::Bus)?;
        Reading::parse(&data).map_err(|CrcMismatch| SensorError::Crc)
    }
}

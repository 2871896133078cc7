//! `rpi_i2c`: one environmental sensor on an I2C bus (BME280, BMP280, SHT3x).
//!
//! The drivers ([`bme280`], [`sht3x`]) are written against `embedded-hal` 1.0's `I2c`
//! trait; rppal only opens `/dev/i2c-N` (a plain Linux i2c-dev, so any board with one
//! works). A measurement is started, awaited on a timer (the executor keeps running),
//! then read: the sensor sleeps between collections.

pub mod bme280;
pub mod sht3x;

use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::config::range;
use crate::inputs::BuildCtx;
use embedded_hal::i2c::{ErrorKind, I2c};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# One temperature/humidity/pressure sensor on I2C (Raspberry Pi header pins 3 SDA, 5 SCL).
# Needs /dev/i2c-<bus> (dtparam=i2c_arm=on) and the agent's user in group i2c; no root.
# One list item per sensor.
- rpi_i2c:
    bus: 1              # /dev/i2c-1
    model: bme280       # bme280, bmp280 or sht3x
    # address: 0x76     # default 0x76 (bme280/bmp280; 0x77 with SDO high), 0x44 (sht3x; 0x45)
";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    #[default]
    Bme280,
    Bmp280,
    Sht3x,
}

impl Model {
    fn name(self) -> &'static str {
        match self {
            Model::Bme280 => "bme280",
            Model::Bmp280 => "bmp280",
            Model::Sht3x => "sht3x",
        }
    }

    fn default_address(self) -> u8 {
        match self {
            Model::Bme280 | Model::Bmp280 => 0x76,
            Model::Sht3x => 0x44,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `N` of `/dev/i2c-N`.
    pub bus: u8,
    /// 7-bit address; the model's usual one when not given.
    #[serde(deserialize_with = "range::opt_i2c_address")]
    pub address: Option<u8>,
    pub model: Model,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bus: 1,
            address: None,
            model: Model::default(),
        }
    }
}

/// Why a sensor gave no reading.
#[derive(Debug)]
pub enum SensorError<E> {
    Bus(E),
    /// Register 0xD0 holds another chip id than the configured model's.
    WrongChip {
        chip_id: u8,
        found: Option<&'static str>,
    },
    /// The calibration registers read all zeros or all ones.
    BadCalibration,
    /// The chip reported a skipped or unfinished conversion.
    NoMeasurement,
    /// The sensor is still converting after the longest documented time.
    Busy,
    /// A reading failed its CRC (noise on the bus, a long cable).
    Crc,
}

impl<E: embedded_hal::i2c::Error + fmt::Display> fmt::Display for SensorError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SensorError::Bus(e) if no_answer(e) => write!(
                f,
                "nothing answers at this address ({e}): check the wiring and `address` (`i2cdetect -y <bus>` lists what answers)"
            ),
            SensorError::Bus(e) => write!(f, "bus error: {e}"),
            SensorError::WrongChip {
                chip_id,
                found: Some(model),
            } => write!(
                f,
                "the chip here is a {model} (chip id 0x{chip_id:02x}): set `model: {model}`"
            ),
            SensorError::WrongChip { chip_id, .. } => write!(
                f,
                "chip id 0x{chip_id:02x} is neither a BME280 (0x60) nor a BMP280 (0x58): another device at this address?"
            ),
            SensorError::BadCalibration => {
                f.write_str("calibration registers read blank: a bad connection?")
            }
            SensorError::NoMeasurement => f.write_str("the chip returned no measurement"),
            SensorError::Busy => f.write_str("the measurement did not finish in time"),
            SensorError::Crc => f.write_str("reading failed its CRC check (noise on the bus?)"),
        }
    }
}

/// A NACK of the address: nothing at this address. rppal reports it as EREMOTEIO
/// (os error 121) with kind `Other`; other HALs map it to `NoAcknowledge`.
fn no_answer<E: embedded_hal::i2c::Error + fmt::Display>(e: &E) -> bool {
    matches!(e.kind(), ErrorKind::NoAcknowledge(_)) || e.to_string().contains("os error 121")
}

enum Sensor {
    Bosch(bme280::Bme280),
    Sht(sht3x::Sht3x),
}

/// Reading as base values, for emitting.
struct Values {
    celsius: f64,
    humidity_percent: Option<f64>,
    pressure_hpa: Option<f64>,
}

/// Opens the bus; a closure so tests can hand in a fake bus.
type Opener<B> = Box<dyn FnMut() -> Result<B, String>>;

pub struct RpiI2c<B: I2c> {
    open: Opener<B>,
    /// The bus and the initialised sensor; dropped after an error so the next collection
    /// starts over (a sensor re-plugged or powered up late gets its calibration re-read).
    live: Option<(B, Sensor)>,
    model: Model,
    address: u8,
    device: String,
    bus_label: String,
    address_label: String,
}

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<RpiI2c<rppal::i2c::I2c>, String> {
    let bus = cfg.bus;
    RpiI2c::new(cfg, Box::new(move || open_rppal(bus)))
}

/// Opens `/dev/i2c-<bus>` with an explanation of the usual failures.
fn open_rppal(bus: u8) -> Result<rppal::i2c::I2c, String> {
    use std::io::ErrorKind as Io;
    rppal::i2c::I2c::with_bus(bus).map_err(|e| match &e {
        rppal::i2c::Error::Io(io) if io.kind() == Io::NotFound => format!(
            "/dev/i2c-{bus} does not exist: enable the I2C bus (Raspberry Pi: dtparam=i2c_arm=on in config.txt \
             or `raspi-config nonint do_i2c 0`, then reboot) and load the i2c-dev module"
        ),
        rppal::i2c::Error::Io(io) if io.kind() == Io::PermissionDenied => format!(
            "/dev/i2c-{bus}: permission denied: add the agent's user to group i2c (no root needed)"
        ),
        _ => format!("/dev/i2c-{bus}: {e}"),
    })
}

impl<B: I2c> RpiI2c<B>
where
    B::Error: fmt::Display,
{
    pub fn new(cfg: &Config, open: Opener<B>) -> Result<Self, String> {
        let address = cfg.address.unwrap_or(cfg.model.default_address());
        // 0x00-0x07 and 0x78-0x7F are reserved by the I2C specification.
        if !(0x08..=0x77).contains(&address) {
            return Err(format!(
                "address 0x{address:02x} is not a 7-bit device address (0x08..0x77)"
            ));
        }
        Ok(RpiI2c {
            open,
            live: None,
            model: cfg.model,
            address,
            device: format!("/dev/i2c-{}", cfg.bus),
            bus_label: cfg.bus.to_string(),
            address_label: format!("0x{address:02x}"),
        })
    }

    fn error(&self, e: impl fmt::Display) -> InputError {
        InputError(format!(
            "{} {} at {}: {e}",
            self.device,
            self.model.name(),
            self.address_label
        ))
    }

    /// Opens the bus and initialises the sensor, unless that is done already.
    async fn ensure_live(&mut self) -> Result<(), InputError> {
        if self.live.is_some() {
            return Ok(());
        }
        let mut bus = (self.open)().map_err(InputError)?;
        let sensor = match self.model {
            Model::Bme280 | Model::Bmp280 => {
                let variant = if self.model == Model::Bme280 {
                    bme280::Variant::Bme280
                } else {
                    bme280::Variant::Bmp280
                };
                Sensor::Bosch(
                    bme280::Bme280::init(&mut bus, self.address, variant)
                        .map_err(|e| self.error(e))?,
                )
            }
            Model::Sht3x => {
                let s = sht3x::Sht3x::init(&mut bus, self.address).map_err(|e| self.error(e))?;
                smol::Timer::after(Duration::from_millis(sht3x::RESET_MS)).await;
                Sensor::Sht(s)
            }
        };
        self.live = Some((bus, sensor));
        Ok(())
    }

    /// One measurement: start, wait on a timer, read.
    async fn measure(bus: &mut B, sensor: &Sensor) -> Result<Values, SensorError<B::Error>> {
        match sensor {
            Sensor::Bosch(s) => {
                s.start(bus)?;
                smol::Timer::after(Duration::from_millis(bme280::MEASUREMENT_MS)).await;
                // The datasheet's time is a maximum; a few re-checks cover a slow bus clock.
                let mut checks = 0;
                while s.busy(bus)? {
                    checks += 1;
                    if checks > 5 {
                        return Err(SensorError::Busy);
                    }
                    smol::Timer::after(Duration::from_millis(2)).await;
                }
                let r = s.read(bus)?;
                Ok(Values {
                    celsius: r.celsius(),
                    humidity_percent: r.humidity_percent(),
                    pressure_hpa: Some(r.pascal() / 100.0),
                })
            }
            Sensor::Sht(s) => {
                s.start(bus)?;
                smol::Timer::after(Duration::from_millis(sht3x::MEASUREMENT_MS)).await;
                let r = s.read(bus)?;
                Ok(Values {
                    celsius: r.celsius(),
                    humidity_percent: Some(r.humidity_percent()),
                    pressure_hpa: None,
                })
            }
        }
    }

    async fn collect_async(&mut self, em: &mut Emitter<'_>) -> Result<(), InputError> {
        self.ensure_live().await?;
        let Some((bus, sensor)) = self.live.as_mut() else {
            return Ok(());
        };
        let values = match Self::measure(bus, sensor).await {
            Ok(v) => v,
            Err(e) => {
                self.live = None;
                return Err(self.error(e));
            }
        };
        let labels = [
            ("model", self.model.name()),
            ("bus", &*self.bus_label),
            ("address", &*self.address_label),
        ];
        em.gauge("rpi_i2c_temperature_c", &labels, values.celsius);
        if let Some(h) = values.humidity_percent {
            em.gauge("rpi_i2c_humidity_percent", &labels, h);
        }
        if let Some(p) = values.pressure_hpa {
            em.gauge("rpi_i2c_pressure_hpa", &labels, p);
        }
        Ok(())
    }
}

impl<B: I2c + 'static> Input for RpiI2c<B>
where
    B::Error: fmt::Display,
{
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(self.collect_async(em))
    }
}

#[cfg(test)]
mod tests;

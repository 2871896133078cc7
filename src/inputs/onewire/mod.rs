//! `onewire`: DS18B20 and friends through the kernel's w1 driver, /sys/bus/w1/devices.
//!
//! A read waits for the sensor's temperature conversion (up to 750 ms each), so one
//! collection's reads run together on a short-lived thread of their own (`core::offload`)
//! while the executor goes on with the other inputs and outputs.

use crate::config::Dur;
use crate::config::range;
use crate::core::offload::{self, InFlight};
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::sysfs_attr::{parse_int, IntAttr};
use crate::inputs::BuildCtx;
use futures_lite::future;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# 1-wire temperature sensors (DS18B20 and friends) from /sys/bus/w1/devices (load the
# w1-gpio and w1-therm modules; on a Pi: dtoverlay=w1-gpio). Each reading makes the
# sensor convert, up to 750 ms per sensor, on a thread of its own (the agent does not wait):
# keep the interval longer than all sensors' conversions together.
- onewire:
    rescan_interval: 1m      # look for added or removed sensors this often (0: every time)
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    #[serde(deserialize_with = "range::rescan")]
    pub rescan_interval: Dur,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rescan_interval: Dur(Duration::from_secs(60)),
        }
    }
}

/// Family codes of w1_therm's temperature sensors: DS18S20, DS1822, DS18B20, DS1825,
/// DS28EA00.
const THERM_FAMILIES: [&str; 5] = ["10", "22", "28", "3b", "42"];

/// What a DS18x20 reports when its conversion did not run (power-on reset value).
const POWER_ON_MILLI_C: i64 = 85_000;

/// Why a 1-wire sensor gave no temperature.
#[derive(Debug, PartialEq)]
pub enum W1Error {
    /// `w1_slave` has no `crc=XX YES|NO` line followed by a `t=` line.
    Malformed,
    /// The scratchpad's CRC did not match: a noisy or too long bus.
    CrcMismatch,
    /// 85 °C exactly: the conversion did not happen (power, wiring).
    PowerOnValue,
}

impl std::fmt::Display for W1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            W1Error::Malformed => "w1_slave is not `… crc=XX YES` then `… t=N`",
            W1Error::CrcMismatch => "CRC check failed (crc=… NO): noisy bus, check the pull-up and cable length",
            W1Error::PowerOnValue => "85 °C power-on value: the conversion did not run (check power / parasite mode)",
        })
    }
}

/// Parses w1_therm's `w1_slave`:
/// `4b 01 4b 46 7f ff 05 10 e1 : crc=e1 YES` then `4b 01 4b 46 7f ff 05 10 e1 t=20687`.
pub fn parse_w1_slave(text: &str) -> Result<i64, W1Error> {
    let mut lines = text.lines();
    let crc_line = lines.next().ok_or(W1Error::Malformed)?;
    let verdict = crc_line
        .split_once("crc=")
        .and_then(|(_, rest)| rest.split_ascii_whitespace().nth(1))
        .ok_or(W1Error::Malformed)?;
    match verdict {
        "YES" => {}
        "NO" => return Err(W1Error::CrcMismatch),
        _ => return Err(W1Error::Malformed),
    }
    let t = lines
        .next()
        .and_then(|l| l.rsplit_once("t="))
        .and_then(|(_, v)| parse_int(v.as_bytes()))
        .ok_or(W1Error::Malformed)?;
    checked_milli_c(t)
}

/// Discards the power-on value.
pub fn checked_milli_c(t: i64) -> Result<i64, W1Error> {
    if t == POWER_ON_MILLI_C {
        Err(W1Error::PowerOnValue)
    } else {
        Ok(t)
    }
}

/// How a sensor is read: its `temperature` file (kernel 5.9+, m°C) or `w1_slave`.
enum Source {
    Temperature(IntAttr),
    Slave(File),
}

struct Sensor {
    id: Box<str>,
    path: PathBuf,
    source: Source,
}

/// `w1_slave` is two lines of about 40 bytes each.
const SLAVE_MAX: usize = 256;

/// Name of the thread that reads one collection's sensors.
const READ_THREAD: &str = "rtc-onewire";

/// Its stack: a [`SLAVE_MAX`] buffer and a few system calls.
const READ_STACK: usize = 64 * 1024;

/// How long a collection waits per sensor before giving up on its read thread: a
/// conversion takes 750 ms at most, and w1_therm tries a few times when the CRC fails.
/// Only a hung bus or driver gets near it.
const READ_BOUND_PER_SENSOR: Duration = Duration::from_secs(5);

impl Sensor {
    fn open(dir: &Path, id: &str) -> Option<Sensor> {
        let temp = dir.join("temperature");
        let (path, source) = match IntAttr::open(&temp) {
            Ok(a) => (temp, Source::Temperature(a)),
            Err(_) => {
                let slave = dir.join("w1_slave");
                let f = File::open(&slave).ok()?;
                (slave, Source::Slave(f))
            }
        };
        Some(Sensor {
            id: id.into(),
            path,
            source,
        })
    }

    /// This sensor's temperature in m°C.
    fn read(&self) -> Result<i64, InputError> {
        let fail = |what: &dyn std::fmt::Display| InputError::parse(&self.path, what);
        match &self.source {
            Source::Temperature(a) => {
                let t = a.read().map_err(|e| fail(&e))?;
                checked_milli_c(t).map_err(|e| fail(&e))
            }
            Source::Slave(f) => {
                let mut buf = [0u8; SLAVE_MAX];
                let n = loop {
                    match f.read_at(&mut buf, 0) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(InputError::io(&self.path, &e)),
                    }
                };
                let text = std::str::from_utf8(&buf[..n]).map_err(|_| fail(&W1Error::Malformed))?;
                parse_w1_slave(text).map_err(|e| fail(&e))
            }
        }
    }
}

pub struct OneWire {
    devices: PathBuf,
    rescan_every: Duration,
    scanned_at: Instant,
    /// Shared with the read thread, which may outlive a collection that gave up on it.
    sensors: Arc<[Sensor]>,
    /// Claimed while a read thread runs: a collection starts no second one beside it.
    reading: InFlight,
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<OneWire, String> {
    let mut w = OneWire {
        devices: ctx.sysfs_root.join("bus/w1/devices"),
        rescan_every: cfg.rescan_interval.0,
        scanned_at: Instant::now(),
        sensors: Arc::new([]),
        reading: InFlight::default(),
    };
    w.scan();
    if w.sensors.is_empty() {
        log::info!(
            "onewire: no temperature sensor under {} yet (is the w1-gpio overlay loaded?); looking again every {:?}",
            w.devices.display(),
            w.rescan_every
        );
    }
    Ok(w)
}

/// `28-0316a2791aff` is a temperature sensor; `w1_bus_master1` and other families are not.
fn is_therm_sensor(name: &str) -> bool {
    name.split_once('-')
        .is_some_and(|(family, _)| THERM_FAMILIES.contains(&family.to_ascii_lowercase().as_str()))
}

impl OneWire {
    fn scan(&mut self) {
        self.scanned_at = Instant::now();
        let Ok(rd) = fs::read_dir(&self.devices) else {
            self.sensors = Arc::new([]);
            return;
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_therm_sensor(n))
            .collect();
        names.sort();
        self.sensors = names
            .iter()
            .filter_map(|n| Sensor::open(&self.devices.join(n), n))
            .collect();
    }

    async fn collect(&mut self, em: &mut Emitter<'_>) -> Result<(), InputError> {
        let Some(claim) = self.reading.try_claim() else {
            return Err(InputError::new(format!(
                "{}: previous read still running (a sensor or the bus hangs); this collection is skipped",
                self.devices.display()
            )));
        };
        if self.scanned_at.elapsed() >= self.rescan_every {
            self.scan();
        }
        if self.sensors.is_empty() {
            return Ok(());
        }
        let sensors = self.sensors.clone();
        let read = offload::on_thread(READ_THREAD, READ_STACK, move || {
            // Released when the thread ends, even if the collection gave up waiting.
            let _claim = claim;
            sensors.iter().map(Sensor::read).collect::<Vec<_>>()
        });
        let bound = READ_BOUND_PER_SENSOR * self.sensors.len() as u32;
        let gave_up = async {
            smol::Timer::after(bound).await;
            Err(std::io::Error::new(
                ErrorKind::TimedOut,
                format!("the sensors gave no reading within {bound:?}"),
            ))
        };
        let readings = future::or(read, gave_up)
            .await
            .map_err(|e| InputError::io(&self.devices, &e))?;
        for (s, reading) in self.sensors.iter().zip(readings) {
            match reading {
                Ok(milli_c) => em.gauge("onewire_temp_c", &[("sensor_id", &s.id)], milli_c as f64 / 1e3),
                Err(e) => em.partial_failure(e),
            }
        }
        Ok(())
    }
}

impl Input for OneWire {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(OneWire::collect(self, em))
    }
}

#[cfg(test)]
mod tests;

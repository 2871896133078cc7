//! `onewire`: DS18B20 and friends through the kernel's w1 driver, /sys/bus/w1/devices.

use crate::config::Dur;
use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::sensors::attr::{parse_int, IntAttr};
use crate::inputs::BuildCtx;
use serde::Deserialize;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# 1-wire temperature sensors (DS18B20 and friends) from /sys/bus/w1/devices (load the
# w1-gpio and w1-therm modules; on a Pi: dtoverlay=w1-gpio). Each reading makes the
# sensor convert, up to 750 ms per sensor: give this input its own, longer interval.
- onewire:
    rescan_interval: 1m      # look for added or removed sensors this often (0: every time)
";

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
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
    sensors: Vec<Sensor>,
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<OneWire, String> {
    let mut w = OneWire {
        devices: ctx.sysfs_root.join("bus/w1/devices"),
        rescan_every: cfg.rescan_interval.0,
        scanned_at: Instant::now(),
        sensors: Vec::new(),
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
            self.sensors.clear();
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

    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        if self.scanned_at.elapsed() >= self.rescan_every {
            self.scan();
        }
        for s in &self.sensors {
            match s.read() {
                Ok(milli_c) => em.gauge("onewire_temp_c", &[("sensor_id", &s.id)], milli_c as f64 / 1e3),
                Err(e) => em.partial_failure(e),
            }
        }
        Ok(())
    }
}

impl Input for OneWire {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

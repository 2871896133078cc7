//! `sensors`: hwmon chips (temperatures, fans, voltages, currents, power, energy) and
//! thermal zones, read straight from sysfs: no lm-sensors needed.

mod hwmon;

use crate::config::{BuildError, Dur};
use crate::config::range;
use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::sysfs_attr::IntAttr;
use crate::inputs::BuildCtx;
use hwmon::{Chip, ChipFilter, Zone};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use hwmon::clean_name;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Hardware sensors from /sys/class/hwmon (temperatures, fans, voltages, currents,
# power, energy) and /sys/class/thermal (the Raspberry Pi's CPU temperature). Chips are
# named like node_exporter's (platform_coretemp_0, pci0000:00_0000:00:18_3).
- sensors:
    include: []              # regexes on the chip or driver name; when given, only those
    exclude: []              # regexes, e.g. [\"^acpitz$\"]
    use_base_units: true     # false: the kernel's units (m°C, mV, mA, µW, µJ)
    thermal_zones: true      # also thermal_zone_temp_c
    rescan_interval: 10m     # look for new or removed chips this often (0: every time)
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// pollect's `useBaseUnits` is accepted too.
    #[serde(alias = "useBaseUnits")]
    pub use_base_units: bool,
    pub thermal_zones: bool,
    #[serde(deserialize_with = "range::rescan")]
    pub rescan_interval: Dur,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            include: Vec::new(),
            exclude: Vec::new(),
            use_base_units: true,
            thermal_zones: true,
            rescan_interval: Dur(Duration::from_secs(600)),
        }
    }
}

pub struct Sensors {
    sys_root: PathBuf,
    filter: ChipFilter,
    base_units: bool,
    thermal: bool,
    rescan_every: Duration,
    scanned_at: Instant,
    chips: Vec<Chip>,
    zones: Vec<Zone>,
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<Sensors, BuildError> {
    let mut s = Sensors {
        sys_root: ctx.sysfs_root.clone(),
        filter: ChipFilter::new(&cfg.include, &cfg.exclude)?,
        base_units: cfg.use_base_units,
        thermal: cfg.thermal_zones,
        rescan_every: cfg.rescan_interval.0,
        scanned_at: Instant::now(),
        chips: Vec::new(),
        zones: Vec::new(),
    };
    s.scan();
    if s.chips.is_empty() && s.zones.is_empty() {
        log::info!(
            "sensors: no hwmon chip or thermal zone under {} (a VM or container has none); looking again every {:?}",
            s.sys_root.display(),
            s.rescan_every
        );
    }
    Ok(s)
}

impl Sensors {
    /// Lists the chips and zones again: files are opened here, not per collection.
    fn scan(&mut self) {
        self.chips = hwmon::scan_chips(&self.sys_root, &self.filter);
        self.zones = if self.thermal {
            hwmon::scan_zones(&self.sys_root)
        } else {
            Vec::new()
        };
        self.scanned_at = Instant::now();
    }

    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        if self.scanned_at.elapsed() >= self.rescan_every {
            self.scan();
        }
        for chip in &mut self.chips {
            for s in &mut chip.sensors {
                let Some(raw) = read_quietly(&s.input, &mut s.failing, &chip.name, &s.label)
                else {
                    continue;
                };
                let (name, divisor, raw_name) = s.kind.metric();
                let labels = [("chip", &*chip.name), ("sensor", &*s.label)];
                if self.base_units {
                    em.gauge(name, &labels, raw as f64 / divisor);
                } else {
                    em.gauge(raw_name, &labels, raw as f64);
                }
            }
        }
        for z in &mut self.zones {
            if let Some(raw) = read_quietly(&z.temp, &mut z.failing, "thermal_zone", &z.zone) {
                let labels = [("zone", &*z.zone), ("type", &*z.kind)];
                em.gauge("thermal_zone_temp_c", &labels, raw as f64 / 1e3);
            }
        }
        Ok(())
    }
}

/// A sensor that does not answer (EIO: lm-sensors prints `ERROR:`) is skipped, not an
/// input failure: boards expose inputs for pins that are not wired. Logged once per streak.
fn read_quietly(attr: &IntAttr, failing: &mut bool, chip: &str, sensor: &str) -> Option<i64> {
    match attr.read() {
        Ok(v) => {
            *failing = false;
            Some(v)
        }
        Err(e) => {
            if !*failing {
                log::debug!("sensors: {chip} {sensor}: no reading: {e}");
                *failing = true;
            }
            None
        }
    }
}

impl Input for Sensors {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

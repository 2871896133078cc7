//! Finding hwmon chips and thermal zones under sysfs, and naming them like node_exporter.

use crate::inputs::support::sysfs_attr::IntAttr;
use crate::config::BuildError;
use regex_lite::Regex;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// What a hwmon `*_input` file measures, with its sysfs unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Temp,
    Fan,
    In,
    Curr,
    Power,
    Energy,
}

impl Kind {
    fn from_prefix(p: &str) -> Option<Kind> {
        Some(match p {
            "temp" => Kind::Temp,
            "fan" => Kind::Fan,
            "in" => Kind::In,
            "curr" => Kind::Curr,
            "power" => Kind::Power,
            "energy" => Kind::Energy,
            _ => return None,
        })
    }

    /// The metric name in base units, the divisor from the sysfs unit, and the metric
    /// name in sysfs units (`use_base_units: false`).
    pub fn metric(self) -> (&'static str, f64, &'static str) {
        match self {
            Kind::Temp => ("hwmon_temp_c", 1e3, "hwmon_temp_mc"),
            Kind::Fan => ("hwmon_fan_rpm", 1.0, "hwmon_fan_rpm"),
            Kind::In => ("hwmon_in_v", 1e3, "hwmon_in_mv"),
            Kind::Curr => ("hwmon_curr_a", 1e3, "hwmon_curr_ma"),
            Kind::Power => ("hwmon_power_w", 1e6, "hwmon_power_uw"),
            Kind::Energy => ("hwmon_energy_j", 1e6, "hwmon_energy_uj"),
        }
    }
}

pub struct Sensor {
    pub kind: Kind,
    /// The `*_label` content, or the file's own name (`temp1`) when there is none.
    pub label: Box<str>,
    pub input: IntAttr,
    /// Whether the last read failed (logged once per streak, at debug level).
    pub failing: bool,
}

pub struct Chip {
    pub name: Box<str>,
    pub sensors: Vec<Sensor>,
}

pub struct Zone {
    /// The number of `thermal_zoneN`.
    pub zone: Box<str>,
    /// The zone's `type` (`cpu-thermal`, `x86_pkg_temp`…).
    pub kind: Box<str>,
    pub temp: IntAttr,
    pub failing: bool,
}

/// Which chips are reported: patterns matched against the chip name (`platform_coretemp_0`)
/// and the driver name of its `name` file (`coretemp`).
#[derive(Debug, Default)]
pub struct ChipFilter {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

impl ChipFilter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, BuildError> {
        let compile = |option: &'static str, patterns: &[String]| -> Result<Vec<Regex>, BuildError> {
            patterns
                .iter()
                .map(|p| Regex::new(p).map_err(|e| BuildError::at(option, format!("invalid pattern `{p}`: {e}"))))
                .collect()
        };
        Ok(ChipFilter {
            include: compile("include", include)?,
            exclude: compile("exclude", exclude)?,
        })
    }

    pub fn allows(&self, chip: &str, driver: &str) -> bool {
        let hit = |r: &Regex| r.is_match(chip) || (!driver.is_empty() && r.is_match(driver));
        (self.include.is_empty() || self.include.iter().any(hit)) && !self.exclude.iter().any(hit)
    }
}

/// node_exporter's cleaning of a name: lower case, anything but `[a-z0-9:_]` becomes `_`,
/// no `_` at either end.
pub fn clean_name(raw: &str) -> String {
    let lower: String = raw
        .trim()
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    lower.trim_matches('_').to_string()
}

fn read_trimmed(path: &Path) -> Option<String> {
    let s = fs::read_to_string(path).ok()?;
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The chip's name from its device's place in /sys/devices: the parent folder and the
/// device (`platform_coretemp_0`, `pci0000:00_0000:00:18_3`); else its `name` file; else
/// the hwmon folder's own name. Stable across reboots, unlike `hwmonN`.
fn base_chip_name(dir: &Path) -> String {
    if let Ok(dev) = fs::canonicalize(dir.join("device")) {
        let name = dev
            .file_name()
            .map(|s| clean_name(&s.to_string_lossy()))
            .unwrap_or_default();
        let parent = dev
            .parent()
            .and_then(|p| p.file_name())
            .map(|s| clean_name(&s.to_string_lossy()))
            .unwrap_or_default();
        match (parent.is_empty(), name.is_empty()) {
            (false, false) => return format!("{parent}_{name}"),
            (true, false) => return name,
            _ => {}
        }
    }
    if let Some(n) = read_trimmed(&dir.join("name")).map(|n| clean_name(&n)) {
        if !n.is_empty() {
            return n;
        }
    }
    own_name(dir)
}

fn own_name(dir: &Path) -> String {
    fs::canonicalize(dir)
        .ok()
        .as_deref()
        .unwrap_or(dir)
        .file_name()
        .map(|s| clean_name(&s.to_string_lossy()))
        .unwrap_or_default()
}

/// `temp1_input` → (Temp, "temp1").
fn parse_input_name(file: &str) -> Option<(Kind, &str)> {
    let key = file.strip_suffix("_input")?;
    let digits = key.find(|c: char| c.is_ascii_digit())?;
    let (prefix, index) = key.split_at(digits);
    if !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((Kind::from_prefix(prefix)?, key))
}

/// The hwmon folders under `class/hwmon`, in name order, symlinks followed.
fn hwmon_dirs(sys_root: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(sys_root.join("class/hwmon")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Every chip under `sys_root` the filter allows, with its input files opened.
pub fn scan_chips(sys_root: &Path, filter: &ChipFilter) -> Vec<Chip> {
    let dirs = hwmon_dirs(sys_root);
    let bases: Vec<String> = dirs.iter().map(|d| base_chip_name(d)).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for b in &bases {
        *seen.entry(b).or_default() += 1;
    }
    let mut chips = Vec::new();
    for (dir, base) in dirs.iter().zip(&bases) {
        let driver = read_trimmed(&dir.join("name")).unwrap_or_default();
        // Two chips on one device (a driver with a fan and a sensor node, a Wi-Fi card
        // per band) get the driver's name, or the folder's, appended.
        let name = if seen[base.as_str()] > 1 {
            let extra = match clean_name(&driver) {
                d if !d.is_empty() => d,
                _ => own_name(dir),
            };
            format!("{base}_{extra}")
        } else {
            base.clone()
        };
        if !filter.allows(&name, &driver) {
            continue;
        }
        let sensors = scan_sensors(dir);
        if !sensors.is_empty() {
            chips.push(Chip {
                name: name.into(),
                sensors,
            });
        }
    }
    chips
}

/// The chip's `*_input` files, from its folder and (older drivers) its device folder.
fn scan_sensors(dir: &Path) -> Vec<Sensor> {
    let mut found: Vec<(Kind, u32, String, PathBuf)> = Vec::new();
    for d in [dir.to_path_buf(), dir.join("device")] {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.filter_map(|e| e.ok()) {
            let file = e.file_name().to_string_lossy().into_owned();
            let Some((kind, key)) = parse_input_name(&file) else {
                continue;
            };
            if found.iter().any(|f| f.2 == key) {
                continue;
            }
            let index = key.trim_start_matches(|c: char| !c.is_ascii_digit());
            found.push((kind, index.parse().unwrap_or(0), key.to_string(), d.clone()));
        }
    }
    found.sort_by_key(|f| (f.0, f.1));
    let labels: Vec<String> = found
        .iter()
        .map(|(_, _, key, d)| read_trimmed(&d.join(format!("{key}_label"))).unwrap_or_else(|| key.clone()))
        .collect();
    let mut sensors = Vec::with_capacity(found.len());
    for (i, (kind, _, key, d)) in found.iter().enumerate() {
        let path = d.join(format!("{key}_input"));
        let input = match IntAttr::open(&path) {
            Ok(a) => a,
            Err(e) => {
                log::debug!("sensors: {} not readable: {e}", path.display());
                continue;
            }
        };
        let shared = found
            .iter()
            .zip(&labels)
            .enumerate()
            .any(|(j, (f, l))| j != i && f.0 == *kind && *l == labels[i]);
        // Two sensors of one kind with one label (drivers do this) would be one series.
        let label = if shared && labels[i] != *key {
            format!("{} ({key})", labels[i])
        } else {
            labels[i].clone()
        };
        sensors.push(Sensor {
            kind: *kind,
            label: label.into(),
            input,
            failing: false,
        });
    }
    sensors
}

/// Every `class/thermal/thermal_zoneN` with a readable `temp`.
pub fn scan_zones(sys_root: &Path) -> Vec<Zone> {
    let Ok(rd) = fs::read_dir(sys_root.join("class/thermal")) else {
        return Vec::new();
    };
    let mut zones: Vec<(u32, Zone)> = Vec::new();
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(n) = name.strip_prefix("thermal_zone") else {
            continue;
        };
        let Ok(index) = n.parse::<u32>() else { continue };
        let dir = e.path();
        let Ok(temp) = IntAttr::open(&dir.join("temp")) else {
            continue;
        };
        let kind = read_trimmed(&dir.join("type")).unwrap_or_default();
        zones.push((
            index,
            Zone {
                zone: n.into(),
                kind: kind.into(),
                temp,
                failing: false,
            },
        ));
    }
    zones.sort_by_key(|z| z.0);
    zones.into_iter().map(|z| z.1).collect()
}

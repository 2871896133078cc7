//! SMA register types, their NaN ("not available") markers, and the default register table.
//!
//! SMA sends every value big-endian, multi-register values high word first. A NaN marker
//! decodes to `None`: it produces no sample, never a zero (a zero would corrupt energy
//! totals downstream).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An SMA data type, as named in the config (`type:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    U16,
    S16,
    U32,
    S32,
    U64,
    /// U32 status/TAGLIST: a code in the lower 24 bits.
    Enum,
}

impl Kind {
    /// Registers (16-bit words) one value takes.
    pub const fn words(self) -> u16 {
        match self {
            Kind::U16 | Kind::S16 => 1,
            Kind::U32 | Kind::S32 | Kind::Enum => 2,
            Kind::U64 => 4,
        }
    }
}

/// Why words could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer words than the type needs.
    Short { needed: u16, got: usize },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Short { needed, got } => {
                write!(f, "needs {needed} registers, got {got}")
            }
        }
    }
}

/// The raw value of the first `kind.words()` words, or `None` for the type's NaN marker.
pub fn decode(kind: Kind, words: &[u16]) -> Result<Option<f64>, DecodeError> {
    let needed = kind.words();
    let Some(w) = words.get(..needed as usize) else {
        return Err(DecodeError::Short {
            needed,
            got: words.len(),
        });
    };
    let wide = w.iter().fold(0u64, |acc, &x| acc << 16 | x as u64);
    Ok(match kind {
        Kind::U16 => (wide != 0xFFFF).then_some(wide as f64),
        Kind::S16 => (wide != 0x8000).then_some(wide as u16 as i16 as f64),
        Kind::U32 => (wide != 0xFFFF_FFFF).then_some(wide as f64),
        // evcc treats 0x7FFFFFFF as a NaN marker too; no real reading is 2^31-1.
        Kind::S32 => (wide != 0x8000_0000 && wide != 0x7FFF_FFFF)
            .then_some(wide as u32 as i32 as f64),
        Kind::Enum => {
            let code = wide & 0x00FF_FFFF;
            (code != 0x00FF_FFFD && wide != 0xFFFF_FFFF).then_some(code as f64)
        }
        Kind::U64 => (wide != u64::MAX).then_some(wide as f64),
    })
}

/// How a raw value becomes the reported one. Decimal scales (0.1, 0.01, 0.001) divide by a
/// power of ten, so 23012 × 0.01 reports 230.12 and not 230.12000000000003.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    Mul(f64),
    Div(f64),
}

impl Scale {
    pub fn new(factor: f64) -> Scale {
        let inverse = 1.0 / factor;
        if factor < 1.0 && (inverse - inverse.round()).abs() < 1e-9 {
            Scale::Div(inverse.round())
        } else {
            Scale::Mul(factor)
        }
    }

    pub fn apply(self, raw: f64) -> f64 {
        match self {
            Scale::Mul(f) => raw * f,
            Scale::Div(d) => raw / d,
        }
    }
}

/// What a register's value means beyond its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Plain,
    /// Operation.Health: the sample also gets a `condition` label (ok/warning/fault/off).
    Condition,
}

/// One register to read and the sample it makes.
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    pub address: u16,
    pub kind: Kind,
    pub scale: Scale,
    pub name: String,
    /// Labels besides `inverter` and `serial`, sorted by key.
    pub labels: Vec<(String, String)>,
    pub role: Role,
}

impl Register {
    /// One past the last register this value occupies (u32: 65536 fits).
    pub fn end(&self) -> u32 {
        self.address as u32 + self.kind.words() as u32
    }
}

/// The `condition` label of an Operation.Health code (30201).
pub fn condition_label(code: f64) -> &'static str {
    match code as u32 {
        307 => "ok",
        455 => "warning",
        35 => "fault",
        303 => "off",
        _ => "unknown",
    }
}

/// Serial number (Nameplate.SerNum, U32), read once per connection.
pub const SERIAL_REGISTER: u16 = 30057;
/// The unit-id query block, read on unit 1: serial (2 words), SUSy id, unit id.
pub const UNIT_QUERY_REGISTER: u16 = 42109;

/// `(address, type, scale, metric, labels, role)` of the default table.
type Row = (
    u16,
    Kind,
    f64,
    &'static str,
    &'static [(&'static str, &'static str)],
    Role,
);

use Kind::*;
use Role::*;

/// The default registers (SMA profile, PV inverters; see the module README for sources).
pub const DEFAULT: &[Row] = &[
    (30201, Enum, 1.0, "sma_inverter_condition", &[], Condition),
    (30217, Enum, 1.0, "sma_inverter_grid_relay", &[], Plain),
    (30513, U64, 1.0, "sma_inverter_energy_total_wh", &[], Plain),
    (30517, U64, 1.0, "sma_inverter_energy_today_wh", &[], Plain),
    (30769, S32, 0.001, "sma_inverter_dc_current_a", &[("string", "a")], Plain),
    (30771, S32, 0.01, "sma_inverter_dc_voltage_v", &[("string", "a")], Plain),
    (30773, S32, 1.0, "sma_inverter_dc_power_w", &[("string", "a")], Plain),
    (30775, S32, 1.0, "sma_inverter_ac_power_w", &[], Plain),
    (30777, S32, 1.0, "sma_inverter_ac_power_w", &[("phase", "L1")], Plain),
    (30779, S32, 1.0, "sma_inverter_ac_power_w", &[("phase", "L2")], Plain),
    (30781, S32, 1.0, "sma_inverter_ac_power_w", &[("phase", "L3")], Plain),
    (30783, U32, 0.01, "sma_inverter_grid_voltage_v", &[("phase", "L1")], Plain),
    (30785, U32, 0.01, "sma_inverter_grid_voltage_v", &[("phase", "L2")], Plain),
    (30787, U32, 0.01, "sma_inverter_grid_voltage_v", &[("phase", "L3")], Plain),
    (30795, U32, 0.001, "sma_inverter_grid_current_a", &[], Plain),
    (30803, U32, 0.01, "sma_inverter_frequency_hz", &[], Plain),
    (30953, S32, 0.1, "sma_inverter_temperature_c", &[], Plain),
    (30957, S32, 0.001, "sma_inverter_dc_current_a", &[("string", "b")], Plain),
    (30959, S32, 0.01, "sma_inverter_dc_voltage_v", &[("string", "b")], Plain),
    (30961, S32, 1.0, "sma_inverter_dc_power_w", &[("string", "b")], Plain),
];

/// Battery inverters (Sunny Boy Storage), added by `battery: true`.
pub const BATTERY: &[Row] = &[
    (30843, S32, 0.001, "sma_inverter_battery_current_a", &[], Plain),
    (30845, U32, 1.0, "sma_inverter_battery_soc_percent", &[], Plain),
    (30849, S32, 0.1, "sma_inverter_battery_temperature_c", &[], Plain),
    (30851, U32, 0.01, "sma_inverter_battery_voltage_v", &[], Plain),
    (31393, U32, 1.0, "sma_inverter_battery_charge_power_w", &[], Plain),
    (31395, U32, 1.0, "sma_inverter_battery_discharge_power_w", &[], Plain),
];

pub fn from_rows(rows: &[Row]) -> impl Iterator<Item = Register> + '_ {
    rows.iter()
        .map(|&(address, kind, scale, name, labels, role)| Register {
            address,
            kind,
            scale: Scale::new(scale),
            name: name.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            role,
        })
}

/// One entry of `registers:`: the word `default` (the default table) or a register.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RegisterEntry {
    Named(Preset),
    Custom(CustomRegister),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Default,
}

/// A register the user adds for their model.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRegister {
    pub address: u16,
    #[serde(rename = "type")]
    pub kind: Kind,
    #[serde(default = "one")]
    pub scale: f64,
    pub name: String,
    /// For the README and the user's own notes; samples carry no unit.
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn one() -> f64 {
    1.0
}

/// Labels an input sets itself; a register may not set them.
const RESERVED_LABELS: [&str; 4] = ["host", "inverter", "serial", "condition"];

impl CustomRegister {
    pub fn to_register(&self) -> Result<Register, String> {
        let at = format!("register {}", self.address);
        if self.name.is_empty() || !self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("{at}: name `{}` must be letters, digits and `_`", self.name));
        }
        if !self.scale.is_finite() || self.scale == 0.0 {
            return Err(format!("{at}: scale must be a non-zero number"));
        }
        if let Some(k) = self.labels.keys().find(|k| RESERVED_LABELS.contains(&k.as_str())) {
            return Err(format!("{at}: label `{k}` is set by the input"));
        }
        let reg = Register {
            address: self.address,
            kind: self.kind,
            scale: Scale::new(self.scale),
            name: self.name.clone(),
            labels: self.labels.clone().into_iter().collect(),
            role: Role::Plain,
        };
        if reg.end() > 0x1_0000 {
            return Err(format!("{at}: a {:?} value there runs past register 65535", self.kind));
        }
        Ok(reg)
    }
}

/// The registers an inverter is read for: `entries` (or the default table when `None`),
/// the battery table when asked, sorted by address. Overlapping registers are an error.
pub fn resolve(entries: Option<&[RegisterEntry]>, battery: bool) -> Result<Vec<Register>, String> {
    let mut regs: Vec<Register> = Vec::new();
    match entries {
        None => regs.extend(from_rows(DEFAULT)),
        Some(entries) => {
            for e in entries {
                match e {
                    RegisterEntry::Named(Preset::Default) => regs.extend(from_rows(DEFAULT)),
                    RegisterEntry::Custom(c) => regs.push(c.to_register()?),
                }
            }
        }
    }
    if battery {
        regs.extend(from_rows(BATTERY));
    }
    if regs.is_empty() {
        return Err("the list is empty".into());
    }
    regs.sort_by_key(|r| r.address);
    for pair in regs.windows(2) {
        if (pair[1].address as u32) < pair[0].end() {
            return Err(format!(
                "registers {} ({}) and {} ({}) overlap",
                pair[0].address, pair[0].name, pair[1].address, pair[1].name
            ));
        }
    }
    Ok(regs)
}

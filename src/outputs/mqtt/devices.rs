//! Devices that inputs declare through series of documented meaning, so Home Assistant shows a
//! meter, an inverter or a plug as a device of its own without the output knowing any input:
//!
//! - `<family>_info` with a label `model` (optionally `manufacturer` and `version`, the
//!   firmware) declares a device. Its other labels but `host` (`serial`, `inverter` …) are the
//!   device's keys.
//! - A series named `<family>_…` belongs to that device when it carries at least one of the
//!   keys and every key it carries has the device's value.
//! - `<family>_up` of the device (1 answering, 0 silent) makes its entities available or not.
//!
//! At most [`MAX_DEVICES`] devices; further declarations are ignored (their series stay on the
//! agent's device).

use super::discovery::push_id;
use crate::core::Series;

pub const MAX_DEVICES: usize = 64;

/// Labels of an `_info` series that describe the device rather than identify it; they name
/// no entity either.
pub const ATTRIBUTES: &[&str] = &["host", "manufacturer", "model", "version"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    family: Box<str>,
    keys: Vec<(Box<str>, Box<str>)>,
    /// Home Assistant's device identifier: `<first name segment>_<serial or keys>`.
    pub id: String,
    /// `<model> <serial or keys>`: the device's name and the start of its entity ids.
    pub name: String,
    pub manufacturer: Option<String>,
    pub model: String,
    pub serial: Option<String>,
    pub sw_version: Option<String>,
    /// `None` until the device's `_up` series is seen: entities then depend only on the agent.
    pub available: Option<bool>,
    /// Bumped whenever the device's config changes (firmware, availability tracked), so the
    /// configs of its entities are sent again.
    pub revision: u64,
}

impl Device {
    fn from_info(family: &str, series: &Series) -> Option<Device> {
        let model = series.label("model").filter(|m| !m.is_empty())?;
        let keys: Vec<(Box<str>, Box<str>)> = series
            .labels
            .iter()
            .filter(|(k, _)| !ATTRIBUTES.contains(&&**k))
            .cloned()
            .collect();
        if keys.is_empty() {
            return None;
        }
        let serial = series.label("serial").map(str::to_string);
        let tag = match &serial {
            Some(s) => s.clone(),
            None => keys.iter().map(|(_, v)| &**v).collect::<Vec<_>>().join(" "),
        };
        let mut id = String::new();
        push_id(family.split('_').next().unwrap_or(family), &mut id);
        id.push('_');
        push_id(&tag, &mut id);
        Some(Device {
            family: family.into(),
            keys,
            id,
            name: format!("{model} {tag}"),
            manufacturer: series.label("manufacturer").map(str::to_string),
            model: model.into(),
            serial,
            sw_version: series.label("version").map(str::to_string),
            available: None,
            revision: 0,
        })
    }

    /// Whether `series` is one of this device's: same family, and the keys it carries match.
    fn owns(&self, series: &Series) -> bool {
        let in_family = series
            .name
            .strip_prefix(&*self.family)
            .is_some_and(|rest| rest.starts_with('_'));
        if !in_family {
            return false;
        }
        let mut carried = 0;
        for (k, v) in &self.keys {
            match series.label(k) {
                Some(value) if value == &**v => carried += 1,
                Some(_) => return false,
                None => {}
            }
        }
        carried > 0
    }

    /// Whether `label` is one of the keys that identify the device.
    pub fn has_key(&self, label: &str) -> bool {
        self.keys.iter().any(|(k, _)| &**k == label)
    }

    /// The metric name prefix of its series (`sma_em`).
    pub fn family(&self) -> &str {
        &self.family
    }

    /// Whether `series` (an `_info` of `family`) names this device: the same keys, no other.
    fn declared_by(&self, family: &str, series: &Series) -> bool {
        let keys = series
            .labels
            .iter()
            .filter(|(k, _)| !ATTRIBUTES.contains(&&**k));
        &*self.family == family
            && keys.clone().count() == self.keys.len()
            && keys.zip(&self.keys).all(|(a, b)| a == b)
    }

    /// Takes the attributes of a later `_info`; true when one changed.
    fn update(&mut self, series: &Series) {
        let (maker, model) = (series.label("manufacturer"), series.label("model"));
        let version = series.label("version");
        let same = maker == self.manufacturer.as_deref()
            && model == Some(self.model.as_str())
            && version == self.sw_version.as_deref();
        if same {
            return;
        }
        self.manufacturer = maker.map(str::to_string);
        self.model = model.unwrap_or_default().to_string();
        self.sw_version = version.map(str::to_string);
        self.revision += 1;
    }
}

/// What a series means to the device registry, decided once per series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A value of its own: an entity.
    Entity,
    /// `<family>_info` with a `model`: declares a device, no entity.
    Info,
    /// `<family>_up`: an entity, and its device's availability.
    Up,
}

pub fn role(series: &Series) -> Role {
    if series.name.ends_with("_info") && series.label("model").is_some() {
        Role::Info
    } else if series.name.ends_with("_up") {
        Role::Up
    } else {
        Role::Entity
    }
}

#[derive(Debug, Default)]
pub struct Devices {
    list: Vec<Device>,
    /// Bumped when a device is added, so cached "no device" verdicts are looked at again.
    pub epoch: u64,
}

impl Devices {
    pub fn get(&self, index: usize) -> &Device {
        &self.list[index]
    }

    /// Records the device an `_info` series declares; a changed firmware (or maker, model)
    /// bumps its revision. Allocates only for a new device or a change: an `_info` series
    /// comes with every collection.
    pub fn declare(&mut self, series: &Series) {
        let Some(family) = series.name.strip_suffix("_info") else {
            return;
        };
        if let Some(d) = self.list.iter_mut().find(|d| d.declared_by(family, series)) {
            d.update(series);
            return;
        }
        if self.list.len() < MAX_DEVICES {
            if let Some(new) = Device::from_info(family, series) {
                self.list.push(new);
                self.epoch += 1;
            }
        }
    }

    /// The device whose `_up` series this is, with whether its availability changed. The
    /// first sight of an `_up` series bumps the revision: entities gain the device's topic.
    pub fn note_up(&mut self, series: &Series, value: f64) -> Option<(usize, bool)> {
        let family = series.name.strip_suffix("_up")?;
        let index = self
            .list
            .iter()
            .position(|d| &*d.family == family && d.owns(series))?;
        let d = &mut self.list[index];
        let up = value > 0.0;
        let changed = d.available != Some(up);
        if d.available.is_none() {
            d.revision += 1;
        }
        d.available = Some(up);
        Some((index, changed))
    }

    /// The device `series` belongs to, if any declared one owns it.
    pub fn find(&self, series: &Series) -> Option<usize> {
        self.list.iter().position(|d| d.owns(series))
    }
}

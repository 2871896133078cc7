//! The devices the presets read, declared as `<family>_info` series (a label `model` and the
//! topic's labels as keys), so the `mqtt` output's Home Assistant discovery shows each plug or
//! sensor as a device of its own rather than under the agent's host. Bounded: at most
//! [`MAX_DEVICES`] remembered; a device silent for [`super::aggregate::FORGET_MS`] is forgotten.

use super::formats::Format;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Devices remembered at once; further ones are not declared (their series stay on the
/// agent's device). The `mqtt` output shows at most 64 devices anyway.
pub const MAX_DEVICES: usize = 256;

/// What a preset's devices are called: the family their metric names start with, the model
/// Home Assistant shows, and the labels of a reading that do not identify the device.
pub fn family(format: Format) -> Option<(&'static str, &'static str, &'static [&'static str])> {
    match format {
        Format::Tasmota => Some(("tasmota", "Tasmota", &[])),
        Format::Shelly => Some(("shelly", "Shelly", &["component"])),
        Format::Esphome => Some(("esphome", "ESPHome", &[])),
        Format::Zigbee2mqtt => Some(("zigbee", "Zigbee2MQTT", &[])),
        _ => None,
    }
}

struct Seen {
    family: &'static str,
    model: &'static str,
    keys: Vec<(String, String)>,
    last_ms: i64,
}

#[derive(Default)]
pub struct Devices {
    /// By a hash of family and keys, so a message costs no allocation once its device is
    /// known.
    seen: HashMap<u64, Seen>,
}

impl Devices {
    /// Notes that the device of `format` with these topic labels sent a reading at `now_ms`.
    pub fn saw(&mut self, format: Format, labels: &[(&str, &str)], now_ms: i64) {
        let Some((family, model, not_keys)) = family(format) else {
            return;
        };
        let keys = labels.iter().filter(|(k, _)| !not_keys.contains(k));
        let mut h = std::collections::hash_map::DefaultHasher::new();
        family.hash(&mut h);
        for (k, v) in keys.clone() {
            (k, v).hash(&mut h);
        }
        let id = h.finish();
        if let Some(s) = self.seen.get_mut(&id) {
            s.last_ms = now_ms;
            return;
        }
        let keys: Vec<(String, String)> = keys.map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if keys.is_empty() || self.seen.len() >= MAX_DEVICES {
            return;
        }
        self.seen.insert(
            id,
            Seen {
                family,
                model,
                keys,
                last_ms: now_ms,
            },
        );
    }

    /// Each device seen within `forget_ms` of `now_ms` as `<family>_info` (its keys and
    /// `model`); the others are forgotten.
    pub fn declare(&mut self, now_ms: i64, forget_ms: i64, mut emit: impl FnMut(&str, &[(&str, &str)])) {
        self.seen.retain(|_, s| now_ms - s.last_ms < forget_ms);
        let mut name = String::new();
        for s in self.seen.values() {
            let mut labels: heapless::Vec<(&str, &str), 17> = heapless::Vec::new();
            for (k, v) in &s.keys {
                let _ = labels.push((k.as_str(), v.as_str()));
            }
            let _ = labels.push(("model", s.model));
            name.clear();
            name.push_str(s.family);
            name.push_str("_info");
            emit(&name, &labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(d: &mut Devices, now_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        d.declare(now_ms, 1000, |name, labels| out.push(format!("{name}{labels:?}")));
        out.sort();
        out
    }

    #[test]
    fn each_device_of_a_preset_is_declared_once_with_its_topic_labels() {
        let mut d = Devices::default();
        d.saw(Format::Tasmota, &[("device", "plug1")], 0);
        d.saw(Format::Tasmota, &[("device", "plug1")], 10);
        d.saw(Format::Shelly, &[("device", "sh1"), ("component", "switch:0")], 10);
        d.saw(Format::Shelly, &[("device", "sh1"), ("component", "switch:1")], 10);
        d.saw(Format::Json, &[("device", "x")], 10);
        d.saw(Format::Esphome, &[], 10);
        assert_eq!(
            declared(&mut d, 20),
            [
                r#"shelly_info[("device", "sh1"), ("model", "Shelly")]"#,
                r#"tasmota_info[("device", "plug1"), ("model", "Tasmota")]"#,
            ]
        );
        // Silent for the forget time: gone.
        d.saw(Format::Tasmota, &[("device", "plug1")], 1500);
        assert_eq!(
            declared(&mut d, 1600),
            [r#"tasmota_info[("device", "plug1"), ("model", "Tasmota")]"#]
        );
    }

    #[test]
    fn devices_beyond_the_cap_are_not_declared() {
        let mut d = Devices::default();
        for i in 0..MAX_DEVICES + 10 {
            d.saw(Format::Zigbee2mqtt, &[("device", &format!("d{i}"))], 0);
        }
        assert_eq!(declared(&mut d, 1).len(), MAX_DEVICES);
    }
}

//! The devices the presets read, declared as `<family>_info` series (a label `model` and the
//! topic's labels as keys), so the `mqtt` output's Home Assistant discovery shows each plug or
//! sensor as a device of its own rather than under the agent's host; and, where the preset's
//! availability topic says it, `<family>_up` (1 online, 0 offline). Bounded: at most
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

/// A preset's availability topic, read with its default topic only: the filter, and the
/// level that names the device (that of the default topic's device label). Tasmota's last
/// will, Shelly Gen2's `online`, ESPHome's `status`, Zigbee2MQTT's `availability`.
pub fn availability(format: Format) -> Option<(&'static str, usize)> {
    match format {
        Format::Tasmota => Some(("tele/+/LWT", 1)),
        Format::Shelly => Some(("+/online", 0)),
        Format::Esphome => Some(("+/status", 0)),
        Format::Zigbee2mqtt => Some(("zigbee2mqtt/+/availability", 1)),
        _ => None,
    }
}

/// Whether an availability payload says online: `Online`/`Offline` (Tasmota),
/// `true`/`false` (Shelly), `online`/`offline` (ESPHome, Zigbee2MQTT's legacy form) or
/// `{"state":"online"}` (Zigbee2MQTT). `None`: none of these.
pub fn read_availability(payload: &[u8]) -> Option<bool> {
    let text = std::str::from_utf8(payload).ok()?.trim();
    let state = match text.strip_prefix('{') {
        Some(_) => {
            let v: serde_json::Value = serde_json::from_str(text).ok()?;
            v.get("state")?.as_str()?.to_ascii_lowercase()
        }
        None => text.to_ascii_lowercase(),
    };
    match state.as_str() {
        "online" | "true" => Some(true),
        "offline" | "false" => Some(false),
        _ => None,
    }
}

struct Seen {
    family: &'static str,
    model: &'static str,
    keys: Vec<(String, String)>,
    last_ms: i64,
    /// What its availability topic said last.
    up: Option<bool>,
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
        self.entry(format, labels, now_ms);
    }

    /// Notes what the device's availability topic said.
    pub fn said(&mut self, format: Format, labels: &[(&str, &str)], up: bool, now_ms: i64) {
        if let Some(seen) = self.entry(format, labels, now_ms) {
            seen.up = Some(up);
        }
    }

    /// The device, remembered from now on if it is new and there is room.
    fn entry(&mut self, format: Format, labels: &[(&str, &str)], now_ms: i64) -> Option<&mut Seen> {
        let (family, model, not_keys) = family(format)?;
        let keys = labels.iter().filter(|(k, _)| !not_keys.contains(k));
        let mut h = std::collections::hash_map::DefaultHasher::new();
        family.hash(&mut h);
        for (k, v) in keys.clone() {
            (k, v).hash(&mut h);
        }
        let id = h.finish();
        let full = self.seen.len() >= MAX_DEVICES;
        match self.seen.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let seen = e.into_mut();
                seen.last_ms = now_ms;
                Some(seen)
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                let keys: Vec<(String, String)> = keys.map(|(k, v)| (k.to_string(), v.to_string())).collect();
                if keys.is_empty() || full {
                    return None;
                }
                Some(e.insert(Seen {
                    family,
                    model,
                    keys,
                    last_ms: now_ms,
                    up: None,
                }))
            }
        }
    }

    /// Each device seen within `forget_ms` of `now_ms` as `<family>_info` (its keys and
    /// `model`, value 1) and, once its availability topic spoke, `<family>_up` (its keys,
    /// 1 or 0); the others are forgotten.
    pub fn declare(&mut self, now_ms: i64, forget_ms: i64, mut emit: impl FnMut(&str, &[(&str, &str)], f64)) {
        self.seen.retain(|_, s| now_ms - s.last_ms < forget_ms);
        let mut name = String::new();
        for s in self.seen.values() {
            let mut labels: heapless::Vec<(&str, &str), 17> = heapless::Vec::new();
            for (k, v) in &s.keys {
                let _ = labels.push((k.as_str(), v.as_str()));
            }
            if let Some(up) = s.up {
                name.clear();
                name.push_str(s.family);
                name.push_str("_up");
                emit(&name, &labels, if up { 1.0 } else { 0.0 });
            }
            let _ = labels.push(("model", s.model));
            name.clear();
            name.push_str(s.family);
            name.push_str("_info");
            emit(&name, &labels, 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(d: &mut Devices, now_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        d.declare(now_ms, 1000, |name, labels, v| out.push(format!("{name}{labels:?} {v}")));
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
                r#"shelly_info[("device", "sh1"), ("model", "Shelly")] 1"#,
                r#"tasmota_info[("device", "plug1"), ("model", "Tasmota")] 1"#,
            ]
        );
        // Silent for the forget time: gone.
        d.saw(Format::Tasmota, &[("device", "plug1")], 1500);
        assert_eq!(
            declared(&mut d, 1600),
            [r#"tasmota_info[("device", "plug1"), ("model", "Tasmota")] 1"#]
        );
    }

    /// What an availability topic says becomes `<family>_up` of the device its level names,
    /// the same device as its readings'; a device heard of only there is declared too.
    #[test]
    fn availability_is_the_devices_up() {
        let mut d = Devices::default();
        d.saw(Format::Shelly, &[("device", "sh1"), ("component", "switch:0")], 0);
        d.said(Format::Shelly, &[("device", "sh1")], false, 0);
        d.said(Format::Tasmota, &[("device", "plug1")], true, 0);
        assert_eq!(
            declared(&mut d, 1),
            [
                r#"shelly_info[("device", "sh1"), ("model", "Shelly")] 1"#,
                r#"shelly_up[("device", "sh1")] 0"#,
                r#"tasmota_info[("device", "plug1"), ("model", "Tasmota")] 1"#,
                r#"tasmota_up[("device", "plug1")] 1"#,
            ]
        );
    }

    #[test]
    fn availability_payloads_of_each_preset_are_read() {
        for (payload, want) in [
            ("Online", Some(true)),
            ("Offline", Some(false)),
            ("true", Some(true)),
            ("false", Some(false)),
            ("online\n", Some(true)),
            (r#"{"state":"offline"}"#, Some(false)),
            (r#"{"state": "online"}"#, Some(true)),
            ("{broken", None),
            (r#"{"Time":"2026-01-01T00:00:00"}"#, None),
            ("42", None),
            ("", None),
        ] {
            assert_eq!(read_availability(payload.as_bytes()), want, "{payload:?}");
        }
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

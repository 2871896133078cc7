//! Home Assistant MQTT discovery: one retained config message per series, so every series
//! appears as a sensor, on a device per source, without YAML on the Home Assistant side.
//!
//! The sensor's `device_class`, `state_class` and unit come from the metric name's unit
//! suffix (rtcollector names end in their unit: `_w`, `_wh`, `_c`, `_bytes` …). Energy
//! counters (`_wh`, `_kwh`) get `energy`/`total_increasing`, which is what the Energy
//! dashboard lists.

use super::topics::{json_string, push_level};
use crate::core::Series;

/// How Home Assistant should show a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SensorKind {
    pub device_class: Option<&'static str>,
    pub state_class: &'static str,
    pub unit: Option<&'static str>,
}

const MEASUREMENT: &str = "measurement";
const TOTAL_INCREASING: &str = "total_increasing";

/// Longest suffixes first: `_kwh` before `_wh` before `_w`.
const SUFFIXES: &[(&str, SensorKind)] = &[
    ("_bytes_rate", kind(Some("data_rate"), MEASUREMENT, Some("B/s"))),
    ("_percent", kind(None, MEASUREMENT, Some("%"))),
    ("_celsius", kind(Some("temperature"), MEASUREMENT, Some("°C"))),
    ("_bytes", kind(Some("data_size"), MEASUREMENT, Some("B"))),
    ("_kwh", kind(Some("energy"), TOTAL_INCREASING, Some("kWh"))),
    ("_wh", kind(Some("energy"), TOTAL_INCREASING, Some("Wh"))),
    ("_kw", kind(Some("power"), MEASUREMENT, Some("kW"))),
    ("_hz", kind(Some("frequency"), MEASUREMENT, Some("Hz"))),
    ("_w", kind(Some("power"), MEASUREMENT, Some("W"))),
    ("_c", kind(Some("temperature"), MEASUREMENT, Some("°C"))),
    ("_v", kind(Some("voltage"), MEASUREMENT, Some("V"))),
    ("_a", kind(Some("current"), MEASUREMENT, Some("A"))),
];

const fn kind(
    device_class: Option<&'static str>,
    state_class: &'static str,
    unit: Option<&'static str>,
) -> SensorKind {
    SensorKind {
        device_class,
        state_class,
        unit,
    }
}

/// The sensor kind of a metric name; a name without a known unit suffix is a plain
/// measurement without unit.
pub fn sensor_kind(name: &str) -> SensorKind {
    SUFFIXES
        .iter()
        .find(|(suffix, _)| name.ends_with(suffix))
        .map(|(_, k)| *k)
        .unwrap_or(kind(None, MEASUREMENT, None))
}

/// What a config message needs besides the series.
pub struct Context<'a> {
    pub discovery_prefix: &'a str,
    /// `[a-zA-Z0-9_-]` form of the agent host: the discovery node id.
    pub node: &'a str,
    pub host: &'a str,
    pub availability_topic: &'a str,
    /// The `json` layout's payloads are objects: HA reads `value` from them.
    pub json_payload: bool,
}

/// `[a-zA-Z0-9_-]` only, as Home Assistant wants node and object ids.
pub fn push_id(text: &str, out: &mut String) {
    out.extend(text.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        }
    }));
}

/// The series' object id: metric name and the values of its labels but `host`.
fn push_object_id(series: &Series, out: &mut String) {
    push_id(&series.name, out);
    for (k, v) in series.labels.iter() {
        if &**k != "host" {
            out.push('_');
            push_id(v, out);
        }
    }
}

/// `id` as the object part of a Home Assistant entity id: lower case letters, digits and
/// single underscores, none at either end (`Pi-4__x_` → `pi_4_x`).
pub(super) fn push_entity_object_id(id: &str, out: &mut String) {
    let mut pending_underscore = false;
    let mut any = false;
    for c in id.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_underscore && any {
                out.push('_');
            }
            pending_underscore = false;
            any = true;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_underscore = true;
        }
    }
    if !any {
        out.push_str("rtcollector");
    }
}

/// `<discovery_prefix>/sensor/<node>/<object>/config`
pub fn config_topic(ctx: &Context, series: &Series, out: &mut String) {
    out.clear();
    out.push_str(ctx.discovery_prefix);
    out.push_str("/sensor/");
    push_level(ctx.node, out);
    out.push('/');
    push_object_id(series, out);
    out.push_str("/config");
}

/// The retained config message of one series, whose values are published on `state_topic`.
pub fn config_payload(ctx: &Context, series: &Series, state_topic: &str, out: &mut String) {
    let k = sensor_kind(&series.name);
    out.clear();
    out.push_str("{\"name\":");
    let mut name = String::from(&*series.name);
    for (key, v) in series.labels.iter() {
        if &**key != "host" && &**key != "serial" {
            name.push(' ');
            name.push_str(v);
        }
    }
    json_string(&name, out);
    let mut uid = String::from("rtcollector_");
    uid.push_str(ctx.node);
    uid.push('_');
    push_object_id(series, &mut uid);
    out.push_str(",\"unique_id\":");
    json_string(&uid, out);
    // `object_id` for Home Assistant before 2025.10; later ones read `default_entity_id`
    // (and ignore `object_id` since 2026.4).
    out.push_str(",\"object_id\":");
    json_string(&uid, out);
    out.push_str(",\"default_entity_id\":\"sensor.");
    push_entity_object_id(&uid, out);
    out.push('"');
    out.push_str(",\"state_topic\":");
    json_string(state_topic, out);
    if ctx.json_payload {
        out.push_str(",\"value_template\":\"{{ value_json.value }}\"");
    }
    out.push_str(",\"availability_topic\":");
    json_string(ctx.availability_topic, out);
    out.push_str(",\"payload_available\":\"online\",\"payload_not_available\":\"offline\"");
    if let Some(unit) = k.unit {
        out.push_str(",\"unit_of_measurement\":");
        json_string(unit, out);
    }
    if let Some(dc) = k.device_class {
        out.push_str(",\"device_class\":");
        json_string(dc, out);
    }
    out.push_str(",\"state_class\":");
    json_string(k.state_class, out);
    out.push_str(",\"device\":");
    push_device(ctx, series, out);
    out.push('}');
}

/// A device per source: the agent's host, and each SMA meter or inverter (a `serial` label)
/// as its own device, reached through the agent.
fn push_device(ctx: &Context, series: &Series, out: &mut String) {
    let mut agent_id = String::from("rtcollector_");
    agent_id.push_str(ctx.node);
    match series.label("serial") {
        Some(serial) => {
            let (maker, model) = source_of(&series.name);
            let mut id = String::new();
            push_id(&series.name[..series.name.find('_').unwrap_or(0)], &mut id);
            id.push('_');
            push_id(serial, &mut id);
            out.push_str("{\"identifiers\":[");
            json_string(&id, out);
            out.push_str("],\"name\":");
            json_string(&format!("{model} {serial}"), out);
            out.push_str(",\"manufacturer\":");
            json_string(maker, out);
            out.push_str(",\"model\":");
            json_string(model, out);
            out.push_str(",\"serial_number\":");
            json_string(serial, out);
            out.push_str(",\"via_device\":");
            json_string(&agent_id, out);
            out.push('}');
        }
        None => {
            out.push_str("{\"identifiers\":[");
            json_string(&agent_id, out);
            out.push_str("],\"name\":");
            json_string(ctx.host, out);
            out.push_str(",\"manufacturer\":\"rtcollector\",\"model\":\"rtcollector agent\",\"sw_version\":");
            json_string(env!("CARGO_PKG_VERSION"), out);
            out.push('}');
        }
    }
}

/// Maker and model of a device with a serial, from its metric family.
fn source_of(name: &str) -> (&'static str, &'static str) {
    if name.starts_with("sma_meter") || name.starts_with("sma_em") {
        ("SMA", "SMA Energy Meter")
    } else if name.starts_with("sma_inverter") {
        ("SMA", "SMA Inverter")
    } else if name.starts_with("sma") {
        ("SMA", "SMA device")
    } else {
        ("unknown", "Device")
    }
}

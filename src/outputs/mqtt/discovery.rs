//! Home Assistant MQTT discovery: one retained config message per series, so every series
//! appears as a sensor, on a device per source, without YAML on the Home Assistant side.
//!
//! The sensor's `device_class`, `state_class` and unit come from the metric name's unit
//! suffix (rtcollector names end in their unit: `_w`, `_wh`, `_c`, `_bytes` …). Energy
//! counters (`_wh`, `_kwh`) get `energy`/`total_increasing`, which is what the Energy
//! dashboard lists.
//!
//! A series of a device an input declared (see [`super::devices`]) is named within its device
//! ("Grid import energy", "Voltage L2"), its entity id is the device's name and its own
//! (`sensor.sma_energy_meter_3011842589_grid_import_energy`), and it is available only while
//! both the agent and the device are. A label that is a state, not an identity
//! ([`STATE_LABELS`]), is left out of the entity: the entity's state is the label's value.

use super::devices::{Device, Role, ATTRIBUTES};
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
/// Reactive and apparent energy have no device class every supported Home Assistant knows
/// (`reactive_energy` came after 2025.4; an unknown class makes Home Assistant refuse the
/// whole config), so
/// they go without one: unit and state class still make them long-term statistics.
const SUFFIXES: &[(&str, SensorKind)] = &[
    ("_bytes_rate", kind(Some("data_rate"), MEASUREMENT, Some("B/s"))),
    ("_percent", kind(None, MEASUREMENT, Some("%"))),
    ("_celsius", kind(Some("temperature"), MEASUREMENT, Some("°C"))),
    ("_bytes", kind(Some("data_size"), MEASUREMENT, Some("B"))),
    ("_power_factor", kind(Some("power_factor"), MEASUREMENT, None)),
    ("_varh", kind(None, TOTAL_INCREASING, Some("varh"))),
    ("_vah", kind(None, TOTAL_INCREASING, Some("VAh"))),
    ("_var", kind(Some("reactive_power"), MEASUREMENT, Some("var"))),
    ("_kwh", kind(Some("energy"), TOTAL_INCREASING, Some("kWh"))),
    ("_wh", kind(Some("energy"), TOTAL_INCREASING, Some("Wh"))),
    ("_kw", kind(Some("power"), MEASUREMENT, Some("kW"))),
    ("_hz", kind(Some("frequency"), MEASUREMENT, Some("Hz"))),
    ("_va", kind(Some("apparent_power"), MEASUREMENT, Some("VA"))),
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

/// Labels whose value is a state of the source, not part of its identity: left out of the
/// entity (its id, name and topic), whose state is the label's value instead.
pub const STATE_LABELS: &[&str] = &["condition"];

/// Readable names of metrics whose name read as words would say less ("Energy import" is the
/// meter's view; a person reads "Grid import energy"). Others are named from the metric name
/// without the device's family and unit: `sma_em_voltage_v` → "Voltage".
const NAMES: &[(&str, &str)] = &[
    ("sma_em_power_import_w", "Import power"),
    ("sma_em_power_export_w", "Export power"),
    ("sma_em_power_net_w", "Power"),
    ("sma_em_reactive_import_var", "Reactive import power"),
    ("sma_em_reactive_export_var", "Reactive export power"),
    ("sma_em_apparent_import_va", "Apparent import power"),
    ("sma_em_apparent_export_va", "Apparent export power"),
    ("sma_em_energy_import_wh", "Grid import energy"),
    ("sma_em_energy_export_wh", "Grid export energy"),
    ("sma_em_reactive_energy_import_varh", "Reactive import energy"),
    ("sma_em_reactive_energy_export_varh", "Reactive export energy"),
    ("sma_em_apparent_energy_import_vah", "Apparent import energy"),
    ("sma_em_apparent_energy_export_vah", "Apparent export energy"),
    ("sma_em_up", "Reachable"),
    ("sma_inverter_up", "Reachable"),
    ("sma_inverter_ac_power_w", "PV power"),
    ("sma_inverter_dc_power_w", "DC power"),
    ("sma_inverter_dc_current_a", "DC current"),
    ("sma_inverter_dc_voltage_v", "DC voltage"),
    ("sma_inverter_energy_total_wh", "PV energy total"),
    ("sma_inverter_energy_today_wh", "PV energy today"),
    ("sma_inverter_frequency_hz", "Grid frequency"),
    ("sma_inverter_battery_soc_percent", "Battery charge"),
];

/// The values a state label can take, for an `enum` sensor (Home Assistant refuses a state
/// not listed). A state label of a metric not listed here makes a plain text sensor.
const ENUMS: &[(&str, &[&str])] = &[(
    "sma_inverter_condition",
    &["ok", "warning", "fault", "off", "unknown"],
)];

/// The state label of a series, if it has one.
pub fn state_label(series: &Series) -> Option<&str> {
    series
        .labels
        .iter()
        .find(|(k, _)| STATE_LABELS.contains(&&**k))
        .map(|(_, v)| &**v)
}

fn is_state_label(name: &str) -> bool {
    STATE_LABELS.contains(&name)
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
    /// The output's `topic_prefix`: devices' availability topics are under it.
    pub topic_prefix: &'a str,
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

/// The series' object id: metric name and the values of its labels but `host` and those
/// `skip` names. Stable across state changes when `skip` says the state labels.
fn push_object_id(series: &Series, skip: impl Fn(&str) -> bool, out: &mut String) {
    push_id(&series.name, out);
    for (k, v) in series.labels.iter() {
        if &**k != "host" && !skip(k) {
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

fn push_config_prefix(ctx: &Context, out: &mut String) {
    out.clear();
    out.push_str(ctx.discovery_prefix);
    out.push_str("/sensor/");
    push_level(ctx.node, out);
    out.push('/');
}

/// `<discovery_prefix>/sensor/<node>/<object>/config`
pub fn config_topic(ctx: &Context, series: &Series, out: &mut String) {
    push_config_prefix(ctx, out);
    push_object_id(series, is_state_label, out);
    out.push_str("/config");
}

/// The config topic earlier builds used for a series that is no longer an entity of its own
/// (a device's `_info`) or whose object id held a state (`…condition_ok…`); false (and `out`
/// untouched) when the current one is the same. An empty retained message there removes the stale entity.
pub fn legacy_config_topic(ctx: &Context, series: &Series, role: Role, out: &mut String) -> bool {
    let legacy: fn(&str) -> bool = match role {
        Role::Info => |k| k == "manufacturer" || k == "model",
        _ if state_label(series).is_some() => |_| false,
        _ => return false,
    };
    push_config_prefix(ctx, out);
    push_object_id(series, legacy, out);
    out.push_str("/config");
    true
}

/// `<topic_prefix>/device/<device id>/availability`: `online` or `offline`, retained.
pub fn device_availability_topic(ctx: &Context, device: &Device, out: &mut String) {
    out.clear();
    out.push_str(ctx.topic_prefix);
    out.push_str("/device/");
    push_level(&device.id, out);
    out.push_str("/availability");
}

/// The state topic of a series with a state label: its topic without the state, carrying the
/// label's value.
pub fn state_topic(prefix: &str, series: &Series, out: &mut String) {
    out.clear();
    out.push_str(prefix);
    out.push('/');
    push_level(&series.name, out);
    for (k, v) in series.labels.iter() {
        if &**k != "host" && !is_state_label(k) {
            out.push('/');
            push_level(v, out);
        }
    }
}

/// A series as one Home Assistant entity.
pub struct Entity<'a> {
    pub series: &'a Series,
    /// Where its values are published (for a state label: where the label's value is).
    pub state_topic: &'a str,
    pub device: Option<&'a Device>,
    /// The device's `_up` series: available while the agent is, whatever the device says.
    pub up: bool,
}

/// The readable name of a device's series: from [`NAMES`] or the metric name without family
/// and unit, then the values of labels that are not the device's (`phase=total` says nothing).
fn push_entity_name(series: &Series, device: &Device, out: &mut String) {
    match NAMES.iter().find(|(n, _)| *n == &*series.name) {
        Some((_, name)) => out.push_str(name),
        None => push_words(series, device, out),
    }
    for (k, v) in series.labels.iter() {
        let own = ATTRIBUTES.contains(&&**k) || device.has_key(k) || is_state_label(k);
        if own || (&**k == "phase" && &**v == "total") {
            continue;
        }
        out.push(' ');
        if &**k != "phase" {
            out.push_str(k);
            out.push(' ');
        }
        out.push_str(v);
    }
}

/// `sma_em_frequency_hz` of family `sma_em` → "Frequency".
fn push_words(series: &Series, device: &Device, out: &mut String) {
    let name = &*series.name;
    let rest = name
        .strip_prefix(device.family())
        .and_then(|r| r.strip_prefix('_'))
        .unwrap_or(name);
    let rest = SUFFIXES
        .iter()
        .find_map(|(suffix, _)| rest.strip_suffix(suffix))
        .filter(|r| !r.is_empty())
        .unwrap_or(rest);
    let start = out.len();
    out.extend(rest.chars().map(|c| if c == '_' { ' ' } else { c }));
    if let Some(first) = out[start..].chars().next() {
        let upper = first.to_ascii_uppercase();
        out.replace_range(start..start + first.len_utf8(), upper.encode_utf8(&mut [0; 4]));
    }
}

/// The name, unique id and entity id of an entity on the agent's device: the metric name and
/// label values, as before devices were declared.
fn push_host_names(ctx: &Context, series: &Series, out: &mut String) {
    let mut name = String::from(&*series.name);
    for (key, v) in series.labels.iter() {
        if &**key != "host" && &**key != "serial" && !is_state_label(key) {
            name.push(' ');
            name.push_str(v);
        }
    }
    out.push_str("{\"name\":");
    json_string(&name, out);
    let uid = unique_id(ctx, series);
    push_ids(&uid, &uid, out);
}

/// `rtcollector_<node>_<object id>`: what Home Assistant keeps an entity by.
fn unique_id(ctx: &Context, series: &Series) -> String {
    let mut uid = String::from("rtcollector_");
    uid.push_str(ctx.node);
    uid.push('_');
    push_object_id(series, is_state_label, &mut uid);
    uid
}

fn push_ids(uid: &str, object: &str, out: &mut String) {
    out.push_str(",\"unique_id\":");
    json_string(uid, out);
    // `object_id` for Home Assistant before 2025.10; later ones read `default_entity_id`
    // (and ignore `object_id` since 2026.4).
    let mut entity = String::new();
    push_entity_object_id(object, &mut entity);
    out.push_str(",\"object_id\":");
    json_string(&entity, out);
    out.push_str(",\"default_entity_id\":\"sensor.");
    out.push_str(&entity);
    out.push('"');
}

fn push_availability(topic: &str, out: &mut String) {
    out.push_str("{\"topic\":");
    json_string(topic, out);
    out.push_str(",\"payload_available\":\"online\",\"payload_not_available\":\"offline\"}");
}

/// The retained config message of one entity.
pub fn config_payload(ctx: &Context, e: &Entity, out: &mut String) {
    out.clear();
    match e.device {
        Some(device) => {
            let mut name = String::new();
            push_entity_name(e.series, device, &mut name);
            out.push_str("{\"name\":");
            json_string(&name, out);
            let object = format!("{} {name}", device.name);
            push_ids(&unique_id(ctx, e.series), &object, out);
        }
        None => push_host_names(ctx, e.series, out),
    }
    out.push_str(",\"state_topic\":");
    json_string(e.state_topic, out);
    let state = state_label(e.series).is_some();
    if ctx.json_payload && !state {
        out.push_str(",\"value_template\":\"{{ value_json.value }}\"");
    }
    out.push_str(",\"availability\":[");
    push_availability(ctx.availability_topic, out);
    if let Some(d) = e.device.filter(|d| d.available.is_some() && !e.up) {
        let mut topic = String::new();
        device_availability_topic(ctx, d, &mut topic);
        out.push(',');
        push_availability(&topic, out);
    }
    out.push_str("],\"availability_mode\":\"all\"");
    if state {
        push_state_kind(e.series, out);
    } else {
        push_sensor_kind(e.series, out);
    }
    out.push_str(",\"device\":");
    push_device(ctx, e.device, out);
    out.push('}');
}

fn push_sensor_kind(series: &Series, out: &mut String) {
    let k = sensor_kind(&series.name);
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
}

/// A state label's entity: an `enum` with its options when they are known, text otherwise.
fn push_state_kind(series: &Series, out: &mut String) {
    let Some((_, options)) = ENUMS.iter().find(|(n, _)| *n == &*series.name) else {
        return;
    };
    out.push_str(",\"device_class\":\"enum\",\"options\":[");
    for (i, o) in options.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(o, out);
    }
    out.push(']');
}

/// The declared device of the series, reached through the agent, or the agent's own.
fn push_device(ctx: &Context, device: Option<&Device>, out: &mut String) {
    let mut agent_id = String::from("rtcollector_");
    agent_id.push_str(ctx.node);
    out.push_str("{\"identifiers\":[");
    match device {
        Some(d) => {
            json_string(&d.id, out);
            out.push_str("],\"name\":");
            json_string(&d.name, out);
            if let Some(maker) = &d.manufacturer {
                out.push_str(",\"manufacturer\":");
                json_string(maker, out);
            }
            out.push_str(",\"model\":");
            json_string(&d.model, out);
            if let Some(serial) = &d.serial {
                out.push_str(",\"serial_number\":");
                json_string(serial, out);
            }
            if let Some(v) = &d.sw_version {
                out.push_str(",\"sw_version\":");
                json_string(v, out);
            }
            out.push_str(",\"via_device\":");
            json_string(&agent_id, out);
        }
        None => {
            json_string(&agent_id, out);
            out.push_str("],\"name\":");
            json_string(ctx.host, out);
            out.push_str(",\"manufacturer\":\"rtcollector\",\"model\":\"rtcollector agent\",\"sw_version\":");
            json_string(env!("CARGO_PKG_VERSION"), out);
        }
    }
    out.push('}');
}

//! Payloads into readings: a bare number, JSON (every numeric leaf, or chosen fields), Influx
//! line protocol, and the presets for Tasmota, Shelly Gen2, ESPHome and Zigbee2MQTT. Every
//! reading goes to a [`Sink`] with the labels the topic gave; nothing here panics on any
//! payload, and a payload that gives no reading is an error with a reason.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most labels one reading carries (topic, static and payload labels together).
pub const MAX_LABELS: usize = 12;

/// How a reading is aggregated and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// A total that only grows (energy): the interval's last value, with a `_rate`.
    Counter,
}

/// Where readings go (the per-interval aggregate).
pub trait Sink {
    fn put(&mut self, name: &str, labels: &[(&str, &str)], value: f64, kind: Kind);
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The payload is one number (or ON/OFF, true/false).
    #[default]
    Value,
    Json,
    Influx,
    Tasmota,
    Shelly,
    Esphome,
    Zigbee2mqtt,
}

impl Format {
    /// The topic a preset's devices publish on, when the config gives none.
    pub fn default_topic(self) -> Option<&'static str> {
        match self {
            Format::Tasmota => Some("tele/+device/SENSOR"),
            Format::Shelly => Some("+device/status/+component"),
            Format::Esphome => Some("+node/sensor/+/state"),
            Format::Zigbee2mqtt => Some("zigbee2mqtt/+device"),
            _ => None,
        }
    }
}

/// What parsing a payload needs from its topic's config.
pub struct Rules<'a> {
    pub format: Format,
    /// `value`: the metric name; `json`/`influx`: the prefix of names (may be empty).
    pub name: &'a str,
    /// `json`: only these paths (`ENERGY.Power`), each optionally `path=name`.
    pub fields: &'a [String],
    /// `json`: paths whose values are counters.
    pub counters: &'a [String],
}

/// Why a payload gave nothing.
pub type Reject = &'static str;

/// Parses `payload` of `topic` and hands its readings to `sink`, each with `labels` first.
/// Returns how many readings went.
pub fn parse(
    rules: &Rules<'_>,
    topic: &str,
    payload: &[u8],
    labels: &[(&str, &str)],
    sink: &mut dyn Sink,
) -> Result<usize, Reject> {
    let text = std::str::from_utf8(payload).map_err(|_| "not UTF-8")?;
    let mut out = Out {
        sink,
        labels,
        count: 0,
        name: String::new(),
    };
    match rules.format {
        Format::Value => value(rules, topic, text, &mut out)?,
        Format::Json => json(rules, text, &mut out)?,
        Format::Influx => influx(rules, text, &mut out)?,
        Format::Tasmota => tasmota(&json_doc(text)?, &mut out),
        Format::Shelly => shelly(&json_doc(text)?, &mut out),
        Format::Esphome => esphome(topic, text, &mut out)?,
        Format::Zigbee2mqtt => zigbee(&json_doc(text)?, &mut out),
    }
    if out.count == 0 {
        return Err("no numeric value in it");
    }
    Ok(out.count)
}

/// The sink with the topic's labels, a reused name buffer and the count of readings.
struct Out<'s, 'l> {
    sink: &'s mut dyn Sink,
    labels: &'l [(&'l str, &'l str)],
    count: usize,
    name: String,
}

impl Out<'_, '_> {
    /// A reading named `self.name`, with one more label when `extra` is given.
    fn put_named(&mut self, extra: &[(&str, &str)], value: f64, kind: Kind) {
        if !value.is_finite() || self.name.is_empty() {
            return;
        }
        let mut all: [(&str, &str); MAX_LABELS] = [("", ""); MAX_LABELS];
        let mut n = 0;
        for l in self.labels.iter().chain(extra) {
            if n == MAX_LABELS {
                break;
            }
            all[n] = *l;
            n += 1;
        }
        self.sink.put(&self.name, &all[..n], value, kind);
        self.count += 1;
    }

    fn put(&mut self, name: &str, extra: &[(&str, &str)], value: f64, kind: Kind) {
        self.name.clear();
        self.name.push_str(name);
        self.put_named(extra, value, kind);
    }
}

/// `text` as a metric-name part: `ApparentPower` → `apparent_power`, anything but
/// `[a-z0-9]` → `_`.
pub fn push_snake(text: &str, out: &mut String) {
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = true;
        } else {
            out.push('_');
            prev_lower = false;
        }
    }
}

fn number_text(text: &str) -> Option<f64> {
    let t = text.trim();
    let v = match t {
        _ if t.eq_ignore_ascii_case("on") || t.eq_ignore_ascii_case("true") => 1.0,
        _ if t.eq_ignore_ascii_case("off") || t.eq_ignore_ascii_case("false") => 0.0,
        _ => t.parse::<f64>().ok()?,
    };
    v.is_finite().then_some(v)
}

fn value(rules: &Rules<'_>, topic: &str, text: &str, out: &mut Out<'_, '_>) -> Result<(), Reject> {
    let v = number_text(text).ok_or("not a number")?;
    out.name.clear();
    if rules.name.is_empty() {
        push_snake(topic.rsplit('/').next().unwrap_or(topic), &mut out.name);
    } else {
        out.name.push_str(rules.name);
    }
    out.put_named(&[], v, Kind::Gauge);
    Ok(())
}

fn json_doc(text: &str) -> Result<Value, Reject> {
    serde_json::from_str(text).map_err(|_| "not JSON")
}

/// A JSON leaf as a number: numbers, booleans, and "ON"/"OFF".
fn json_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) if s.eq_ignore_ascii_case("on") => Some(1.0),
        Value::String(s) if s.eq_ignore_ascii_case("off") => Some(0.0),
        _ => None,
    }
}

/// The value at a dotted path (`ENERGY.Power`; `ENERGY.Power.1` for an array's second element).
fn at_path<'v>(doc: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(doc, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) => a.get(key.parse::<usize>().ok()?),
        _ => None,
    })
}

/// The deepest a flattened document is walked: bounded work for any payload.
const MAX_DEPTH: usize = 6;

fn json(rules: &Rules<'_>, text: &str, out: &mut Out<'_, '_>) -> Result<(), Reject> {
    let doc = json_doc(text)?;
    let prefix = rules.name;
    if rules.fields.is_empty() {
        let mut name = String::new();
        if !prefix.is_empty() {
            name.push_str(prefix);
        }
        flatten(&doc, &mut name, rules, "", 0, out);
        return Ok(());
    }
    for field in rules.fields {
        let (path, rename) = field.split_once('=').unwrap_or((field, ""));
        let Some(v) = at_path(&doc, path).and_then(json_number) else {
            continue;
        };
        out.name.clear();
        if rename.is_empty() {
            if !prefix.is_empty() {
                out.name.push_str(prefix);
                out.name.push('_');
            }
            push_snake(path, &mut out.name);
        } else {
            out.name.push_str(rename);
        }
        let kind = kind_of(rules, path);
        out.put_named(&[], v, kind);
    }
    Ok(())
}

fn kind_of(rules: &Rules<'_>, path: &str) -> Kind {
    if rules.counters.iter().any(|c| c == path) {
        Kind::Counter
    } else {
        Kind::Gauge
    }
}

/// Every numeric leaf of objects, named by its path (`ENERGY.Power` → `<prefix>_energy_power`).
fn flatten(v: &Value, name: &mut String, rules: &Rules<'_>, path: &str, depth: usize, out: &mut Out<'_, '_>) {
    match v {
        Value::Object(m) if depth < MAX_DEPTH => {
            for (key, child) in m {
                let mark = name.len();
                if !name.is_empty() {
                    name.push('_');
                }
                push_snake(key, name);
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                flatten(child, name, rules, &child_path, depth + 1, out);
                name.truncate(mark);
            }
        }
        leaf => {
            if let Some(x) = json_number(leaf) {
                let kind = kind_of(rules, path);
                out.put(name, &[], x, kind);
            }
        }
    }
}

/// Influx line protocol: `measurement[,tag=v…] field=v[,field=v…] [timestamp]`, a line per
/// point; each numeric field is `<measurement>_<field>` with the tags as labels. String
/// fields are skipped; the timestamp is ignored (readings are aggregated per interval).
fn influx(rules: &Rules<'_>, text: &str, out: &mut Out<'_, '_>) -> Result<(), Reject> {
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        influx_line(rules, line, out)?;
    }
    Ok(())
}

/// Splits at unescaped `sep` outside double quotes.
fn split_unescaped(text: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut escaped = false;
    let mut quoted = false;
    let mut parts = Vec::new();
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter()
}

fn unescape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\\') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out.into()
}

fn influx_line(rules: &Rules<'_>, line: &str, out: &mut Out<'_, '_>) -> Result<(), Reject> {
    let mut sections = split_unescaped(line, ' ').filter(|s| !s.is_empty());
    let series = sections.next().ok_or("an empty line")?;
    let fields = sections.next().ok_or("a line without fields")?;
    let mut head = split_unescaped(series, ',');
    let measurement = unescape(head.next().unwrap_or(""));
    if measurement.is_empty() {
        return Err("a line without a measurement");
    }
    let mut tags: Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> = Vec::new();
    for tag in head {
        let mut kv = split_unescaped(tag, '=');
        let (Some(k), Some(v), None) = (kv.next(), kv.next(), kv.next()) else {
            return Err("a tag that is not key=value");
        };
        if tags.len() < MAX_LABELS {
            tags.push((unescape(k), unescape(v)));
        }
    }
    let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    for field in split_unescaped(fields, ',') {
        let (key, raw) = field.split_once('=').ok_or("a field that is not key=value")?;
        let Some(v) = influx_value(raw) else {
            continue;
        };
        out.name.clear();
        if !rules.name.is_empty() {
            out.name.push_str(rules.name);
            out.name.push('_');
        }
        push_snake(&measurement, &mut out.name);
        out.name.push('_');
        push_snake(&unescape(key), &mut out.name);
        out.put_named(&tag_refs, v, Kind::Gauge);
    }
    Ok(())
}

fn influx_value(raw: &str) -> Option<f64> {
    if raw.starts_with('"') {
        return None;
    }
    match raw {
        "t" | "T" | "true" | "True" | "TRUE" => return Some(1.0),
        "f" | "F" | "false" | "False" | "FALSE" => return Some(0.0),
        _ => {}
    }
    let digits = raw.strip_suffix(['i', 'u']).unwrap_or(raw);
    digits.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Tasmota's `tele/<device>/SENSOR`: `ENERGY` (Total, Today, Yesterday in kWh; Power in W;
/// Voltage, Current …) and one object per sensor (`AM2301`, `DS18B20`, `BME280` …) with
/// Temperature (in `TempUnit`), Humidity, DewPoint, Pressure …
fn tasmota(doc: &Value, out: &mut Out<'_, '_>) {
    let Value::Object(top) = doc else { return };
    let fahrenheit = top.get("TempUnit").and_then(Value::as_str) == Some("F");
    for (key, v) in top {
        let Value::Object(fields) = v else { continue };
        if key == "ENERGY" {
            for (field, fv) in fields {
                let Some((name, kind)) = tasmota_energy_name(field) else { continue };
                tasmota_values(fv, name, &[], kind, out);
            }
            continue;
        }
        let sensor = [("sensor", key.as_str())];
        for (field, fv) in fields {
            let Some(x) = json_number(fv) else { continue };
            let (name, x) = match field.as_str() {
                "Temperature" => ("tasmota_temperature_celsius", celsius(x, fahrenheit)),
                "DewPoint" => ("tasmota_dew_point_celsius", celsius(x, fahrenheit)),
                "Humidity" => ("tasmota_humidity_percent", x),
                "Pressure" => ("tasmota_pressure_hpa", x),
                "Illuminance" => ("tasmota_illuminance_lux", x),
                "CarbonDioxide" | "eCO2" => ("tasmota_co2_ppm", x),
                other => {
                    out.name.clear();
                    out.name.push_str("tasmota_");
                    push_snake(other, &mut out.name);
                    out.put_named(&sensor, x, Kind::Gauge);
                    continue;
                }
            };
            out.put(name, &sensor, x, Kind::Gauge);
        }
    }
}

fn celsius(x: f64, fahrenheit: bool) -> f64 {
    if fahrenheit {
        (x - 32.0) * 5.0 / 9.0
    } else {
        x
    }
}

fn tasmota_energy_name(field: &str) -> Option<(&'static str, Kind)> {
    Some(match field {
        "Total" => ("tasmota_energy_total_kwh", Kind::Counter),
        "Today" => ("tasmota_energy_today_kwh", Kind::Gauge),
        "Yesterday" => ("tasmota_energy_yesterday_kwh", Kind::Gauge),
        "Power" => ("tasmota_power_w", Kind::Gauge),
        "ApparentPower" => ("tasmota_apparent_power_va", Kind::Gauge),
        "ReactivePower" => ("tasmota_reactive_power_var", Kind::Gauge),
        "Factor" => ("tasmota_power_factor", Kind::Gauge),
        "Voltage" => ("tasmota_voltage_v", Kind::Gauge),
        "Current" => ("tasmota_current_a", Kind::Gauge),
        "Frequency" => ("tasmota_frequency_hz", Kind::Gauge),
        _ => return None,
    })
}

/// A value or, on a multi-channel device, an array of them (`channel` 1, 2 …).
fn tasmota_values(v: &Value, name: &str, extra: &[(&str, &str)], kind: Kind, out: &mut Out<'_, '_>) {
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate().take(16) {
                if let Some(x) = json_number(item) {
                    let channel = (i + 1).to_string();
                    out.put(name, &[("channel", channel.as_str())], x, kind);
                }
            }
        }
        other => {
            if let Some(x) = json_number(other) {
                out.put(name, extra, x, kind);
            }
        }
    }
}

/// Shelly Gen2 `<id>/status/<component>:<n>` (switch, pm1, cover, temperature, humidity,
/// devicepower): `apower` W, `voltage` V, `current` A, `freq` Hz, `pf`, `aenergy.total` and
/// `ret_aenergy.total` in Wh (written in kWh), `temperature.tC`, `output`; `tC`, `rh` and
/// `battery.percent` of the sensor components.
fn shelly(doc: &Value, out: &mut Out<'_, '_>) {
    let Value::Object(m) = doc else { return };
    let simple: [(&str, &str); 8] = [
        ("apower", "shelly_power_w"),
        ("voltage", "shelly_voltage_v"),
        ("current", "shelly_current_a"),
        ("freq", "shelly_frequency_hz"),
        ("pf", "shelly_power_factor"),
        ("output", "shelly_output"),
        ("tC", "shelly_temperature_celsius"),
        ("rh", "shelly_humidity_percent"),
    ];
    for (field, name) in simple {
        if let Some(x) = m.get(field).and_then(json_number) {
            out.put(name, &[], x, Kind::Gauge);
        }
    }
    let wh = |path: &str| at_path(doc, path).and_then(json_number);
    if let Some(x) = wh("aenergy.total") {
        out.put("shelly_energy_total_kwh", &[], x / 1000.0, Kind::Counter);
    }
    if let Some(x) = wh("ret_aenergy.total") {
        out.put("shelly_returned_energy_total_kwh", &[], x / 1000.0, Kind::Counter);
    }
    if let Some(x) = wh("temperature.tC") {
        out.put("shelly_device_temperature_celsius", &[], x, Kind::Gauge);
    }
    if let Some(x) = wh("battery.percent") {
        out.put("shelly_battery_percent", &[], x, Kind::Gauge);
    }
}

/// ESPHome's `<node>/sensor/<object id>/state` (a number) and
/// `<node>/binary_sensor/<object id>/state` (ON/OFF): `esphome_<object id>`, with a unit
/// suffix when the object id names the quantity (temperature → `_celsius`, humidity →
/// `_percent`, power → `_w`, voltage → `_v`, current → `_a`). State topics carry no unit,
/// so energy sensors keep their bare name: their unit is the device's configuration.
fn esphome(topic: &str, text: &str, out: &mut Out<'_, '_>) -> Result<(), Reject> {
    let v = number_text(text).ok_or("not a number")?;
    let mut levels = topic.rsplit('/');
    let _state = levels.next();
    let object = levels.next().ok_or("not an ESPHome state topic")?;
    out.name.clear();
    out.name.push_str("esphome_");
    push_snake(object, &mut out.name);
    let suffix = [
        ("temperature", "_celsius"),
        ("humidity", "_percent"),
        ("voltage", "_v"),
        ("current", "_a"),
        ("power", "_w"),
    ]
    .iter()
    .find(|(word, _)| object.to_ascii_lowercase().contains(word))
    .map(|(_, s)| *s);
    if let Some(s) = suffix {
        if !out.name.ends_with(s) {
            out.name.push_str(s);
        }
    }
    out.put_named(&[], v, Kind::Gauge);
    Ok(())
}

/// Zigbee2MQTT's `zigbee2mqtt/<friendly name>` device document: the exposed numeric and
/// binary properties, named with their documented units.
fn zigbee(doc: &Value, out: &mut Out<'_, '_>) {
    let Value::Object(m) = doc else { return };
    for (key, v) in m {
        let Some(x) = json_number(v) else { continue };
        let (name, kind) = match key.as_str() {
            "temperature" | "local_temperature" | "device_temperature" => {
                out.name.clear();
                out.name.push_str("zigbee_");
                out.name.push_str(key);
                out.name.push_str("_celsius");
                out.put_named(&[], x, Kind::Gauge);
                continue;
            }
            "humidity" => ("zigbee_humidity_percent", Kind::Gauge),
            "pressure" => ("zigbee_pressure_hpa", Kind::Gauge),
            "battery" => ("zigbee_battery_percent", Kind::Gauge),
            "power" => ("zigbee_power_w", Kind::Gauge),
            "energy" => ("zigbee_energy_kwh", Kind::Counter),
            "current" => ("zigbee_current_a", Kind::Gauge),
            "illuminance_lux" => ("zigbee_illuminance_lux", Kind::Gauge),
            "co2" => ("zigbee_co2_ppm", Kind::Gauge),
            other => {
                out.name.clear();
                out.name.push_str("zigbee_");
                push_snake(other, &mut out.name);
                out.put_named(&[], x, Kind::Gauge);
                continue;
            }
        };
        out.put(name, &[], x, kind);
    }
}

#[cfg(test)]
mod tests;

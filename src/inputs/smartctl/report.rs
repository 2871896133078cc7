//! smartctl's JSON (`--json --all`) turned into samples, and its exit status decoded.

use crate::core::Emitter;
use serde_json::{Map, Value};

/// smartctl's exit status bits (smartctl(8), RETURN VALUES).
pub const EXIT_BITS: [&str; 8] = [
    "command line did not parse, or the device type is unknown",
    "device open failed, or the device is in a low-power mode (nocheck)",
    "a SMART or other command to the disk failed, or a SMART data structure has a bad checksum",
    "SMART status check returned DISK FAILING",
    "prefail attributes are at or below their threshold",
    "SMART status OK, but usage or prefail attributes were at or below threshold in the past",
    "the device error log contains records of errors",
    "the self-test log contains records of errors",
];

/// Bits 0 and 1: smartctl could not read the device, so its JSON holds no health data.
pub const FATAL_BITS: i32 = 0b11;

/// `bit 2 (…), bit 6 (…)` for a log line.
pub fn describe_exit_bits(status: i32) -> String {
    let mut s = String::new();
    for (bit, what) in EXIT_BITS.iter().enumerate() {
        if status & (1 << bit) != 0 {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(&format!("bit {bit} ({what})"));
        }
    }
    s
}

/// Who the disk is: the labels of every health sample.
pub struct Identity<'a> {
    pub model: &'a str,
    pub serial: &'a str,
    pub protocol: &'a str,
    pub firmware: &'a str,
}

pub fn identity(doc: &Value) -> Identity<'_> {
    fn s(v: &Value) -> Option<&str> {
        v.as_str()
    }
    Identity {
        model: s(&doc["model_name"])
            .or_else(|| s(&doc["scsi_model_name"]))
            .or_else(|| s(&doc["scsi_product"]))
            .unwrap_or(""),
        serial: s(&doc["serial_number"]).unwrap_or(""),
        protocol: s(&doc["device"]["protocol"]).unwrap_or(""),
        firmware: s(&doc["firmware_version"])
            .or_else(|| s(&doc["scsi_revision"]))
            .unwrap_or(""),
    }
}

/// The messages smartctl attached (`smartctl.messages[].string`), joined.
pub fn messages(doc: &Value) -> String {
    let mut s = String::new();
    for m in doc["smartctl"]["messages"].as_array().into_iter().flatten() {
        if let Some(text) = m["string"].as_str() {
            if !s.is_empty() {
                s.push_str("; ");
            }
            s.push_str(text);
        }
    }
    s
}

/// A JSON number, or a number in a string (SCSI's `gigabytes_processed: "11523.849"`).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// Writes the health samples of one device. `wanted` filters ATA attributes (by name or
/// id) and NVMe health-log fields; empty keeps all.
pub struct Writer<'e, 'a, 'w> {
    pub em: &'e mut Emitter<'a>,
    pub device: &'w str,
    pub id: Identity<'w>,
    pub wanted: &'w [String],
    /// Reused for metric names built from field names.
    pub name: String,
}

impl Writer<'_, '_, '_> {
    fn gauge(&mut self, name: &str, extra: Option<(&str, &str)>, value: f64) {
        let base = [
            ("device", self.device),
            ("model", self.id.model),
            ("serial", self.id.serial),
            ("protocol", self.id.protocol),
        ];
        match extra {
            None => self.em.gauge(name, &base, value),
            Some(kv) => {
                let [a, b, c, d] = base;
                self.em.gauge(name, &[a, b, c, d, kv], value)
            }
        }
    }

    /// `smart_info`: the disk as a device of its own for outputs that show devices (the MQTT
    /// output's Home Assistant discovery), only when smartctl told its model and serial.
    fn declare(&mut self) {
        let id = &self.id;
        if id.model.is_empty() || id.serial.is_empty() {
            return;
        }
        let labels = [
            ("device", self.device),
            ("model", id.model),
            ("serial", id.serial),
            ("protocol", id.protocol),
            ("version", id.firmware),
        ];
        let n = if id.firmware.is_empty() { 4 } else { 5 };
        self.em.gauge("smart_info", &labels[..n], 1.0);
    }

    fn wants(&self, name: &str, id: Option<u64>) -> bool {
        self.wanted.is_empty()
            || self
                .wanted
                .iter()
                .any(|w| w == name || id.is_some_and(|id| w.parse() == Ok(id)))
    }

    pub fn write(&mut self, doc: &Value) {
        self.declare();
        if let Some(passed) = doc["smart_status"]["passed"].as_bool() {
            self.gauge("smart_passed", None, if passed { 1.0 } else { 0.0 });
        }
        if let Some(t) = number(&doc["temperature"]["current"]) {
            self.gauge("smart_temperature_c", None, t);
        }
        if let Some(h) = number(&doc["power_on_time"]["hours"]) {
            self.gauge("smart_power_on_hours", None, h);
        }
        let cycles = number(&doc["power_cycle_count"]).or_else(|| {
            number(&doc["scsi_start_stop_cycle_counter"]["accumulated_start_stop_cycles"])
        });
        if let Some(c) = cycles {
            self.gauge("smart_power_cycles", None, c);
        }
        if let Some(table) = doc["ata_smart_attributes"]["table"].as_array() {
            self.write_ata(table);
        }
        if let Some(log) = doc["nvme_smart_health_information_log"].as_object() {
            self.write_nvme(log);
        }
        if let Some(d) = number(&doc["scsi_grown_defect_list"]) {
            self.gauge("smart_scsi_grown_defects", None, d);
        }
        if let Some(counters) = doc["scsi_error_counter_log"].as_object() {
            self.write_scsi_errors(counters);
        }
    }

    fn write_ata(&mut self, table: &[Value]) {
        for (i, a) in table.iter().enumerate() {
            let (Some(name), Some(id)) = (a["name"].as_str(), a["id"].as_u64()) else {
                continue;
            };
            if !self.wants(name, Some(id)) {
                continue;
            }
            // Vendor-unknown attributes all share one name: tell them apart by id.
            let repeated = table
                .iter()
                .enumerate()
                .any(|(j, b)| j != i && b["name"].as_str() == Some(name));
            let label = if repeated {
                format!("{name}_{id}")
            } else {
                name.to_string()
            };
            for (field, suffix) in [
                (&a["value"], "value"),
                (&a["worst"], "worst"),
                (&a["thresh"], "threshold"),
                (&a["raw"]["value"], "raw"),
            ] {
                if let Some(v) = number(field) {
                    let metric = ["smart_attribute_", suffix].concat();
                    self.gauge(&metric, Some(("attribute", &label)), v);
                }
            }
        }
    }

    fn write_nvme(&mut self, log: &Map<String, Value>) {
        let mut name = std::mem::take(&mut self.name);
        for (field, v) in log {
            if !self.wants(field, None) {
                continue;
            }
            name.clear();
            name.push_str("smart_nvme_");
            name.push_str(field);
            match v {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(x) = number(item) {
                            let index = i.to_string();
                            self.gauge(&name, Some(("index", &index)), x);
                        }
                    }
                }
                other => {
                    if let Some(x) = number(other) {
                        self.gauge(&name, None, x);
                    }
                }
            }
        }
        self.name = name;
    }

    fn write_scsi_errors(&mut self, counters: &Map<String, Value>) {
        let mut name = std::mem::take(&mut self.name);
        for (operation, fields) in counters {
            let Some(fields) = fields.as_object() else {
                continue;
            };
            for (field, v) in fields {
                if let Some(x) = number(v) {
                    name.clear();
                    name.push_str("smart_scsi_");
                    name.push_str(field);
                    self.gauge(&name, Some(("operation", operation)), x);
                }
            }
        }
        self.name = name;
    }
}

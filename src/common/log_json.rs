//! A log record as one JSON object: the document the redissearch output stores and the line
//! stdout and MQTT print. One writer, so that the three agree on field names.

use super::json::write_string;
use crate::core::logs::{facility_name, severity_name, LogRecord};
use std::fmt::Write as _;

/// Appends `record` as a JSON object (no newline):
/// `{"timestamp":…,"received":…,"severity":"err","severity_code":3,"facility":"daemon",
/// "facility_code":3,"host":…,"appname":…,"procid":…,"msgid":…,"message":…,"source":…,
/// "structured_data":{"<sd-id>_<param>":…}}`. Times are ms since the epoch; empty text fields
/// are written as empty strings, so every document has every field.
pub fn write_record(record: &LogRecord<'_>, out: &mut String) {
    let _ = write!(
        out,
        "{{\"timestamp\":{},\"received\":{},\"severity\":\"{}\",\"severity_code\":{},\"facility\":\"{}\",\"facility_code\":{}",
        record.ts_ms,
        record.received_ms,
        severity_name(record.severity),
        record.severity,
        facility_name(record.facility),
        record.facility
    );
    for (key, value) in [
        ("host", &record.hostname),
        ("appname", &record.appname),
        ("procid", &record.procid),
        ("msgid", &record.msgid),
        ("message", &record.message),
        ("source", &record.source),
    ] {
        let _ = write!(out, ",\"{key}\":");
        write_string(value, out);
    }
    out.push_str(",\"structured_data\":{");
    for (i, p) in record.structured.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let name = if p.name.is_empty() { &p.id } else { &p.name };
        write_string(name, out);
        out.push(':');
        write_string(&p.value, out);
    }
    out.push_str("}}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::logs::SdParam;

    #[test]
    fn every_field_is_written_and_text_is_escaped() {
        let r = LogRecord {
            ts_ms: 1000,
            received_ms: 2000,
            seq: 1,
            severity: 3,
            facility: 3,
            hostname: "nas".into(),
            appname: "smartd".into(),
            message: "sda: \"bad\" sector\n".into(),
            structured: vec![SdParam {
                id: "origin".into(),
                name: "origin_ip".into(),
                value: "10.0.0.2".into(),
            }],
            ..LogRecord::default()
        };
        let mut out = String::new();
        write_record(&r, &mut out);
        assert_eq!(
            out,
            "{\"timestamp\":1000,\"received\":2000,\"severity\":\"err\",\"severity_code\":3,\
             \"facility\":\"daemon\",\"facility_code\":3,\"host\":\"nas\",\"appname\":\"smartd\",\
             \"procid\":\"\",\"msgid\":\"\",\"message\":\"sda: \\\"bad\\\" sector\\n\",\
             \"source\":\"\",\"structured_data\":{\"origin_ip\":\"10.0.0.2\"}}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["message"], "sda: \"bad\" sector\n");
    }
}

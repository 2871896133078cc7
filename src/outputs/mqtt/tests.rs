use super::topics::{family, json_payload, level, series_topic, value_payload};
use super::*;
use crate::core::SeriesTable;

fn cfg(yaml: &str) -> Result<Config, String> {
    yaml_serde::from_str::<Config>(yaml).map_err(|e| e.to_string())
}

fn built(yaml: &str) -> Result<Mqtt, String> {
    build(
        &cfg(yaml)?,
        &OutputCtx {
            hostname: "pi4".into(),
            key: "mqtt".into(),
        },
    )
    .map_err(|e| e.to_string())
}

#[test]
fn units_pick_device_and_state_class() {
    let k = |n: &str| {
        let k = sensor_kind(n);
        (k.device_class, k.state_class, k.unit)
    };
    assert_eq!(
        k("sma_meter_power_import_w"),
        (Some("power"), "measurement", Some("W"))
    );
    assert_eq!(
        k("sma_inverter_power_ac_kw"),
        (Some("power"), "measurement", Some("kW"))
    );
    assert_eq!(
        k("sma_meter_energy_import_wh"),
        (Some("energy"), "total_increasing", Some("Wh"))
    );
    assert_eq!(
        k("sma_inverter_energy_total_kwh"),
        (Some("energy"), "total_increasing", Some("kWh"))
    );
    assert_eq!(
        k("w1_temperature_c"),
        (Some("temperature"), "measurement", Some("°C"))
    );
    assert_eq!(
        k("cpu_temperature_celsius"),
        (Some("temperature"), "measurement", Some("°C"))
    );
    assert_eq!(
        k("sma_meter_voltage_l1_v"),
        (Some("voltage"), "measurement", Some("V"))
    );
    assert_eq!(
        k("sma_meter_current_l1_a"),
        (Some("current"), "measurement", Some("A"))
    );
    assert_eq!(
        k("sma_meter_frequency_hz"),
        (Some("frequency"), "measurement", Some("Hz"))
    );
    assert_eq!(k("cpu_usage_percent"), (None, "measurement", Some("%")));
    assert_eq!(
        k("mem_used_bytes"),
        (Some("data_size"), "measurement", Some("B"))
    );
    assert_eq!(
        k("net_rx_bytes_rate"),
        (Some("data_rate"), "measurement", Some("B/s"))
    );
    assert_eq!(k("system_load1"), (None, "measurement", None));
    // A suffix must be whole: `_hw` is not Wh, `_rc` not °C … but `_c` at the end is.
    assert_eq!(k("processes_total"), (None, "measurement", None));
}

#[test]
fn topic_levels_cannot_split_or_wildcard() {
    assert_eq!(level("eth0"), "eth0");
    assert_eq!(level("/"), "_");
    assert_eq!(level("/boot/efi"), "_boot_efi");
    assert_eq!(level("a+b#c"), "a_b_c");
    assert_eq!(level(""), "_");
}

#[test]
fn series_topics_and_payloads() {
    let mut t = SeriesTable::new("pi4", 10);
    let id = t
        .intern("disk_used_bytes", "", &[("path", "/"), ("dev", "sda1")])
        .unwrap();
    let mut out = String::new();
    series_topic("rtcollector/pi4", t.get(id), &mut out);
    assert_eq!(out, "rtcollector/pi4/disk_used_bytes/sda1/_");
    value_payload(3.0, &mut out);
    assert_eq!(out, "3");
    value_payload(-0.125, &mut out);
    assert_eq!(out, "-0.125");
    let quoted = t.intern("m", "", &[("q", "a\"b\\c\n")]).unwrap();
    let s = Sample {
        series: quoted,
        ts_ms: 5,
        value: 1.5,
    };
    json_payload(&s, t.get(quoted), &mut out);
    assert_eq!(
        out,
        r#"{"value":1.5,"timestamp_ms":5,"labels":{"host":"pi4","q":"a\"b\\c\n"}}"#
    );
    assert_eq!(family("cpu_usage_percent"), "cpu");
    assert_eq!(family("uptime"), "uptime");
}

/// The messages a plan made, as (topic, payload) text.
fn planned(o: &Mqtt) -> Vec<(String, String)> {
    o.messages
        .iter()
        .map(|m| (m.topic.clone(), String::from_utf8(m.payload.clone()).unwrap()))
        .collect()
}

fn payload_of<'a>(msgs: &'a [(String, String)], topic: &str) -> &'a str {
    msgs.iter()
        .find(|(t, _)| t == topic)
        .map(|(_, p)| p.as_str())
        .unwrap_or_else(|| panic!("nothing on {topic}: {msgs:#?}"))
}

fn samples(ids: &[(SeriesId, f64)]) -> Vec<Sample> {
    ids.iter()
        .map(|&(series, value)| Sample { series, ts_ms: 0, value })
        .collect()
}

const INVERTER_INFO: &[(&str, &str)] = &[
    ("inverter", "roof"),
    ("manufacturer", "SMA"),
    ("model", "SMA Inverter"),
    ("serial", "1900123456"),
];

#[test]
fn an_inverter_is_its_own_device_reached_through_the_agent() {
    let mut o = built("homeassistant: {enabled: true}\nlayout: json").unwrap();
    let mut t = SeriesTable::new("pi4", 10);
    let total = t
        .intern(
            "sma_inverter_energy_total_wh",
            "",
            &[("inverter", "roof"), ("serial", "1900123456")],
        )
        .unwrap();
    let info = t.intern("sma_inverter_info", "", INVERTER_INFO).unwrap();
    o.round = 1;
    // The info comes after the value in the batch: the device is still known for it.
    o.plan(&samples(&[(total, 10.0), (info, 1.0)]), &t);
    let msgs = planned(&o);
    let config = "homeassistant/sensor/pi4/sma_inverter_energy_total_wh_roof_1900123456/config";
    assert_eq!(
        payload_of(&msgs, config),
        concat!(
            r#"{"name":"PV energy total","#,
            r#""unique_id":"rtcollector_pi4_sma_inverter_energy_total_wh_roof_1900123456","#,
            r#""object_id":"sma_inverter_1900123456_pv_energy_total","#,
            r#""default_entity_id":"sensor.sma_inverter_1900123456_pv_energy_total","#,
            r#""state_topic":"rtcollector/pi4/sma_inverter_energy_total_wh/roof/1900123456","#,
            r#""value_template":"{{ value_json.value }}","#,
            r#""availability":[{"topic":"rtcollector/pi4/status","#,
            r#""payload_available":"online","payload_not_available":"offline"}],"availability_mode":"all","#,
            r#""unit_of_measurement":"Wh","device_class":"energy","state_class":"total_increasing","#,
            r#""device":{"identifiers":["sma_1900123456"],"name":"SMA Inverter 1900123456","#,
            r#""manufacturer":"SMA","model":"SMA Inverter","serial_number":"1900123456","#,
            r#""via_device":"rtcollector_pi4"}}"#
        )
    );
    // The info series is no entity; an earlier build's config for it is removed.
    let legacy = "homeassistant/sensor/pi4/sma_inverter_info_roof_1900123456/config";
    assert_eq!(payload_of(&msgs, legacy), "");
    assert_eq!(msgs.iter().filter(|(t, _)| t.ends_with("/config")).count(), 2, "{msgs:#?}");
}

/// Issue 23: readable names within the device, entity ids from the device's name, the
/// firmware as the device's `sw_version`, and no new entity when it changes.
#[test]
fn meter_entities_are_named_within_their_device() {
    let mut o = built("homeassistant: {enabled: true}").unwrap();
    let mut t = SeriesTable::new("pi4", 20);
    let info = |t: &mut SeriesTable, version| {
        let labels = [
            ("manufacturer", "SMA"),
            ("model", "SMA Energy Meter"),
            ("serial", "3011842589"),
            ("susy_id", "349"),
            ("version", version),
        ];
        t.intern("sma_em_info", "", &labels).unwrap()
    };
    let v1 = info(&mut t, "2.3.4.R");
    let on = |name| [("phase", name), ("serial", "3011842589")];
    let import = t.intern("sma_em_energy_import_wh", "", &on("total")).unwrap();
    let power = t.intern("sma_em_power_net_w", "", &on("L1")).unwrap();
    let volts = t.intern("sma_em_voltage_v", "", &on("L2")).unwrap();
    let pf = t.intern("sma_em_power_factor", "", &on("total")).unwrap();
    let varh = t.intern("sma_em_reactive_energy_import_varh", "", &on("total")).unwrap();
    let va = t.intern("sma_em_apparent_import_va", "", &on("L3")).unwrap();
    o.round = 1;
    let batch = samples(&[(v1, 1.0), (import, 1.0), (power, 1.0), (volts, 1.0), (pf, 1.0), (varh, 1.0), (va, 1.0)]);
    o.plan(&batch, &t);
    let msgs = planned(&o);
    let cfg = |object: &str| -> serde_json::Value {
        let topic = format!("homeassistant/sensor/pi4/{object}/config");
        serde_json::from_str(payload_of(&msgs, &topic)).unwrap()
    };
    let c = cfg("sma_em_energy_import_wh_total_3011842589");
    assert_eq!(c["name"], "Grid import energy");
    assert_eq!(c["default_entity_id"], "sensor.sma_energy_meter_3011842589_grid_import_energy");
    assert_eq!(c["object_id"], "sma_energy_meter_3011842589_grid_import_energy");
    assert_eq!(c["device"]["name"], "SMA Energy Meter 3011842589");
    assert_eq!(c["device"]["sw_version"], "2.3.4.R");
    assert_eq!(c["device"]["identifiers"][0], "sma_3011842589");
    assert_eq!(cfg("sma_em_power_net_w_L1_3011842589")["name"], "Power L1");
    assert_eq!(cfg("sma_em_voltage_v_L2_3011842589")["name"], "Voltage L2");
    let c = cfg("sma_em_power_factor_total_3011842589");
    assert_eq!((c["name"].as_str(), c["device_class"].as_str()), (Some("Power factor"), Some("power_factor")));
    assert!(c.get("unit_of_measurement").is_none(), "{c}");
    let c = cfg("sma_em_reactive_energy_import_varh_total_3011842589");
    assert_eq!((c["unit_of_measurement"].as_str(), c["state_class"].as_str()), (Some("varh"), Some("total_increasing")));
    assert!(c.get("device_class").is_none(), "no class older Home Assistants refuse: {c}");
    let c = cfg("sma_em_apparent_import_va_L3_3011842589");
    assert_eq!((c["unit_of_measurement"].as_str(), c["device_class"].as_str()), (Some("VA"), Some("apparent_power")));

    // A firmware update: the same entities (same config topics), the device's new version.
    let v2 = info(&mut t, "2.3.5.R");
    o.plan(&samples(&[(v2, 1.0), (import, 2.0)]), &t);
    let msgs = planned(&o);
    let topic = "homeassistant/sensor/pi4/sma_em_energy_import_wh_total_3011842589/config";
    let c: serde_json::Value = serde_json::from_str(payload_of(&msgs, topic)).unwrap();
    assert_eq!(c["device"]["sw_version"], "2.3.5.R");
    assert_eq!(c["default_entity_id"], "sensor.sma_energy_meter_3011842589_grid_import_energy");
}

/// A condition change keeps one entity: an `enum` whose state is the label's value.
#[test]
fn a_state_label_is_the_state_of_one_enum_entity() {
    let mut o = built("homeassistant: {enabled: true}").unwrap();
    let mut t = SeriesTable::new("pi4", 20);
    let info = t.intern("sma_inverter_info", "", INVERTER_INFO).unwrap();
    let cond = |t: &mut SeriesTable, state| {
        let labels = [("condition", state), ("inverter", "roof"), ("serial", "1900123456")];
        t.intern("sma_inverter_condition", "", &labels).unwrap()
    };
    let ok = cond(&mut t, "ok");
    o.round = 1;
    o.plan(&samples(&[(info, 1.0), (ok, 307.0)]), &t);
    let first = planned(&o);
    let config = "homeassistant/sensor/pi4/sma_inverter_condition_roof_1900123456/config";
    let c: serde_json::Value = serde_json::from_str(payload_of(&first, config)).unwrap();
    assert_eq!(c["name"], "Condition");
    assert_eq!(c["device_class"], "enum");
    assert_eq!(c["options"], serde_json::json!(["ok", "warning", "fault", "off", "unknown"]));
    assert_eq!(c["state_topic"], "rtcollector/pi4/sma_inverter_condition/roof/1900123456");
    assert!(c.get("unit_of_measurement").is_none() && c.get("state_class").is_none(), "{c}");
    assert_eq!(payload_of(&first, "rtcollector/pi4/sma_inverter_condition/roof/1900123456"), "ok");
    // The code still goes where it went, for other subscribers.
    assert_eq!(payload_of(&first, "rtcollector/pi4/sma_inverter_condition/ok/roof/1900123456"), "307");
    // An earlier build's per-state entity is removed.
    let legacy = "homeassistant/sensor/pi4/sma_inverter_condition_ok_roof_1900123456/config";
    assert_eq!(payload_of(&first, legacy), "");

    let warning = cond(&mut t, "warning");
    o.plan(&samples(&[(warning, 455.0)]), &t);
    let second = planned(&o);
    assert_eq!(payload_of(&second, "rtcollector/pi4/sma_inverter_condition/roof/1900123456"), "warning");
    assert_eq!(payload_of(&second, config), payload_of(&first, config), "the same entity");
}

/// `_up` makes the device's entities unavailable, and available again; the `_up` entity
/// itself stays available with the agent.
#[test]
fn a_device_is_available_while_its_up_series_says_so() {
    let mut o = built("homeassistant: {enabled: true}").unwrap();
    let mut t = SeriesTable::new("pi4", 20);
    let info = t.intern("sma_inverter_info", "", INVERTER_INFO).unwrap();
    let up = t.intern("sma_inverter_up", "", &[("inverter", "roof")]).unwrap();
    let power = t
        .intern("sma_inverter_ac_power_w", "", &[("inverter", "roof"), ("serial", "1900123456")])
        .unwrap();
    let availability = "rtcollector/pi4/device/sma_1900123456/availability";
    o.round = 1;
    o.plan(&samples(&[(up, 1.0), (info, 1.0), (power, 5.0)]), &t);
    let msgs = planned(&o);
    assert_eq!(payload_of(&msgs, availability), "online");
    assert_eq!(msgs[0].0, availability, "availability goes before the configs: {msgs:#?}");
    let c: serde_json::Value = serde_json::from_str(payload_of(
        &msgs,
        "homeassistant/sensor/pi4/sma_inverter_ac_power_w_roof_1900123456/config",
    ))
    .unwrap();
    assert_eq!(c["name"], "PV power");
    assert_eq!(c["availability"][1]["topic"], availability);
    assert_eq!(c["availability_mode"], "all");
    let c: serde_json::Value =
        serde_json::from_str(payload_of(&msgs, "homeassistant/sensor/pi4/sma_inverter_up_roof/config")).unwrap();
    assert_eq!(c["device"]["identifiers"][0], "sma_1900123456", "on the inverter's device");
    assert_eq!(c["availability"].as_array().unwrap().len(), 1, "{c}");

    // Unchanged: nothing more. Silent: offline, retained. Back: online.
    o.plan(&samples(&[(up, 1.0)]), &t);
    assert!(planned(&o).iter().all(|(t, _)| t != availability));
    o.plan(&samples(&[(up, 0.0)]), &t);
    assert_eq!(payload_of(&planned(&o), availability), "offline");
    assert!(o.messages[0].retain);
    o.plan(&samples(&[(up, 1.0)]), &t);
    assert_eq!(payload_of(&planned(&o), availability), "online");
}

/// A disk smartctl declared (model and serial, no maker): a device of its own, its entities
/// named without the labels that describe the device.
#[test]
fn a_declared_disk_is_a_device_without_a_maker() {
    let mut o = built("homeassistant: {enabled: true}").unwrap();
    let mut t = SeriesTable::new("pi4", 10);
    let disk = [("device", "sda"), ("model", "Samsung SSD 870"), ("protocol", "ATA"), ("serial", "S62A")];
    let info: Vec<_> = disk.iter().copied().chain([("version", "SVT02B6Q")]).collect();
    let info = t.intern("smart_info", "", &info).unwrap();
    let temp = t.intern("smart_temperature_c", "", &disk).unwrap();
    let exit = t.intern("smart_exit_status", "", &[("device", "sda")]).unwrap();
    o.round = 1;
    o.plan(&samples(&[(temp, 30.0), (exit, 0.0), (info, 1.0)]), &t);
    let msgs = planned(&o);
    let cfg = |object: &str| -> serde_json::Value {
        let topic = format!("homeassistant/sensor/pi4/{object}/config");
        serde_json::from_str(payload_of(&msgs, &topic)).unwrap()
    };
    let c = cfg("smart_temperature_c_sda_Samsung_SSD_870_ATA_S62A");
    assert_eq!(c["name"], "Temperature");
    assert_eq!(c["default_entity_id"], "sensor.samsung_ssd_870_s62a_temperature");
    assert_eq!(
        c["device"],
        serde_json::json!({"identifiers": ["smart_S62A"], "name": "Samsung SSD 870 S62A",
            "model": "Samsung SSD 870", "serial_number": "S62A", "sw_version": "SVT02B6Q",
            "via_device": "rtcollector_pi4"})
    );
    assert_eq!(cfg("smart_exit_status_sda")["device"]["identifiers"][0], "smart_S62A");
}

/// A `serial` label alone makes no device: only a declared one does.
#[test]
fn a_serial_without_a_declared_device_stays_on_the_agent() {
    let mut o = built("homeassistant: {enabled: true}").unwrap();
    let mut t = SeriesTable::new("pi4", 10);
    let disk = t
        .intern("smartctl_temperature_c", "", &[("device", "sda"), ("serial", "WD-123")])
        .unwrap();
    o.round = 1;
    o.plan(&samples(&[(disk, 30.0)]), &t);
    let msgs = planned(&o);
    let c: serde_json::Value = serde_json::from_str(payload_of(
        &msgs,
        "homeassistant/sensor/pi4/smartctl_temperature_c_sda_WD-123/config",
    ))
    .unwrap();
    assert_eq!(c["device"]["identifiers"][0], "rtcollector_pi4");
    assert_eq!(c["name"], "smartctl_temperature_c sda");
    assert_eq!(c["default_entity_id"], "sensor.rtcollector_pi4_smartctl_temperature_c_sda_wd_123");
}

#[test]
fn defaults_and_derived_names() {
    let c = cfg("{}").unwrap();
    assert_eq!((c.host.as_str(), c.port, c.qos, c.retain), ("127.0.0.1", 1883, 1, false));
    assert_eq!(c.layout, Layout::Value);
    assert_eq!(c.topic_prefix("pi4"), "rtcollector/pi4");
    assert_eq!(c.client_id("pi4"), "rtcollector-pi4");
    assert_eq!(c.homeassistant.discovery_prefix, "homeassistant");
    let c = cfg("topic_prefix: home/pi/\nclient_id: x").unwrap();
    assert_eq!(c.topic_prefix("pi4"), "home/pi");
    assert_eq!(c.client_id("pi4"), "x");
}

#[test]
fn bad_options_are_config_errors() {
    let err = |yaml: &str| match built(yaml) {
        Ok(_) => panic!("{yaml}: accepted"),
        Err(e) => e,
    };
    assert!(err("qos: 3").contains("0, 1 or 2"));
    assert!(err("password: x").contains("username"));
    assert!(err("layout: batch\nhomeassistant: {enabled: true}").contains("layout"));
    assert!(err("topic_prefix: a/+/b").contains("`+`"));
    assert!(err("include_patterns: ['(']").contains("include_patterns"));
    assert!(err("ssl_ca_certs: /x.pem").contains("ssl: true"));
    assert!(err("bogus: 1").contains("unknown field"));
    #[cfg(feature = "tls")]
    assert!(err("ssl: true\nssl_ca_certs: /nonexistent/ca.pem").contains("ssl_ca_certs"));
}

#[test]
fn build_does_not_connect_or_start_a_thread_and_keeps_the_password_out_of_debug() {
    let before = std::fs::read_dir("/proc/self/task").unwrap().count();
    let cfg = cfg("host: 192.0.2.1\nusername: u\npassword: hunter2").unwrap();
    assert!(!format!("{cfg:?}").contains("hunter2"));
    let o = build(
        &cfg,
        &OutputCtx {
            hostname: "pi4".into(),
            key: "mqtt".into(),
        },
    )
    .unwrap();
    assert!(o.run.is_none());
    // Other tests may start threads meanwhile; this one started none of its own.
    assert!(std::fs::read_dir("/proc/self/task").unwrap().count() <= before + 1);
}

#[test]
fn planning_caches_topics_and_filters_once_per_series() {
    let mut o = built("include_patterns: ['^cpu']\nhomeassistant: {enabled: true}").unwrap();
    let mut t = SeriesTable::new("pi4", 10);
    let cpu = t.intern("cpu_usage_percent", "", &[("cpu", "0")]).unwrap();
    let mem = t.intern("mem_used_bytes", "", &[]).unwrap();
    let batch = [cpu, mem, cpu].map(|series| Sample {
        series,
        ts_ms: 0,
        value: 1.0,
    });
    o.round = 1;
    assert_eq!(o.plan(&batch, &t), 2);
    let topics: Vec<(&str, bool)> = o
        .messages
        .iter()
        .map(|m| (m.topic.as_str(), m.retain))
        .collect();
    assert_eq!(
        topics,
        [
            ("homeassistant/sensor/pi4/cpu_usage_percent_0/config", true),
            ("rtcollector/pi4/cpu_usage_percent/0", false),
            ("rtcollector/pi4/cpu_usage_percent/0", false),
        ]
    );
    // Same round: no discovery again. A new round (connection, HA birth): once more.
    assert_eq!(o.plan(&batch, &t), 2);
    assert_eq!(o.messages.len(), 2);
    o.round = 2;
    o.plan(&batch, &t);
    assert_eq!(o.messages.len(), 3);
}

#[test]
fn default_entity_ids_are_valid_home_assistant_object_ids() {
    let id = |s: &str| {
        let mut out = String::new();
        discovery::push_entity_object_id(s, &mut out);
        out
    };
    assert_eq!(id("rtcollector_pi4_cpu_usage_percent_cpu0"), "rtcollector_pi4_cpu_usage_percent_cpu0");
    assert_eq!(id("rtcollector_Pi-4__disk_used_bytes__"), "rtcollector_pi_4_disk_used_bytes");
    assert_eq!(id("_-x-_"), "x");
    assert_eq!(id("--"), "rtcollector");
}

#[test]
fn only_a_broker_that_hung_up_without_an_mqtt_answer_gets_the_tls_hint() {
    use crate::common::mqtt::describe;
    use rumqttc::{ConnectionError, Packet, StateError};
    let reset = || std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    let hung_up = ConnectionError::MqttState(StateError::Io(reset()));
    assert!(describe(&hung_up, "b:1883", false, true).ends_with("set `ssl: true`"));
    assert!(!describe(&hung_up, "b:8883", false, false).contains("ssl"));
    let answered = ConnectionError::NotConnAck(Packet::PingResp);
    let msg = describe(&answered, "b:1883", false, true);
    assert_eq!(
        msg,
        "the broker at b:1883 answered the login with PingResp instead of CONNACK; is it an MQTT 3.1.1 broker?"
    );
}

/// A series slot given to another series after the first was forgotten: the cached topic,
/// filter verdict and discovery belong to the earlier series and are made afresh.
#[test]
fn a_reused_series_slot_gets_its_own_topic_and_discovery() {
    let mut o = built("include_patterns: ['^cpu']\nhomeassistant: {enabled: true}").unwrap();
    let mut t = SeriesTable::new("pi4", 10);
    t.set_forget_after(Some(std::time::Duration::from_secs(1)));
    t.begin_collection(0);
    let old = t.intern("cpu_old_percent", "", &[]).unwrap();
    t.end_collection();
    let at = |series| [Sample { series, ts_ms: 0, value: 1.0 }];
    o.round = 1;
    assert_eq!(o.plan(&at(old), &t), 1);
    t.begin_collection(5_000);
    t.end_collection();
    t.sweep(|_| {}, |_| {});
    t.begin_collection(5_000);
    let new = t.intern("cpu_new_percent", "", &[]).unwrap();
    let filtered = t.intern("mem_used_bytes", "", &[]).unwrap();
    t.end_collection();
    assert_eq!(new, old, "the slot is reused");
    assert_eq!(o.plan(&at(new), &t), 1);
    let topics: Vec<&str> = o.messages.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(
        topics,
        [
            "homeassistant/sensor/pi4/cpu_new_percent/config",
            "rtcollector/pi4/cpu_new_percent"
        ]
    );
    assert_eq!(o.plan(&at(filtered), &t), 0);
}

/// Issue 23, item 7: the README's discovery example and example topics are what the code
/// sends for an SMA meter's series.
#[test]
fn the_readme_example_is_what_discovery_sends() {
    let readme = include_str!("README.md");
    let start = readme.find("```json\n").expect("the example") + "```json\n".len();
    let example: serde_json::Value =
        serde_json::from_str(&readme[start..][..readme[start..].find("```").unwrap()]).unwrap();

    let mut o = built("homeassistant: {enabled: true}").unwrap();
    let mut t = SeriesTable::new("pi4", 10);
    let info = [
        ("manufacturer", "SMA"),
        ("model", "SMA Energy Meter"),
        ("serial", "3011842589"),
        ("susy_id", "349"),
        ("version", "2.13.6.R"),
    ];
    let info = t.intern("sma_em_info", "", &info).unwrap();
    let up = t.intern("sma_em_up", "", &[("serial", "3011842589")]).unwrap();
    let on = [("phase", "total"), ("serial", "3011842589")];
    let import = t.intern("sma_em_energy_import_wh", "", &on).unwrap();
    let power = t.intern("sma_em_power_import_w", "", &on).unwrap();
    o.round = 1;
    o.plan(&samples(&[(info, 1.0), (up, 1.0), (import, 987654.0), (power, 1234.5)]), &t);
    let msgs = planned(&o);
    let topic = "homeassistant/sensor/pi4/sma_em_energy_import_wh_total_3011842589/config";
    let sent: serde_json::Value = serde_json::from_str(payload_of(&msgs, topic)).unwrap();
    assert_eq!(sent, example);

    let block = &readme[readme.find("## Example output").unwrap()..];
    for line in block.lines().filter(|l| l.starts_with("rtcollector/pi4/sma_em_")) {
        let (topic, value) = line.split_once(' ').unwrap();
        assert_eq!(payload_of(&msgs, topic), value, "{line}");
    }
}

use super::discovery::{config_payload, config_topic, Context};
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

#[test]
fn an_inverter_is_its_own_device_reached_through_the_agent() {
    let mut t = SeriesTable::new("pi4.lan", 10);
    let id = t
        .intern(
            "sma_inverter_energy_total_wh",
            "",
            &[("serial", "1900123456")],
        )
        .unwrap();
    let ctx = Context {
        discovery_prefix: "homeassistant",
        node: "pi4_lan",
        host: "pi4.lan",
        availability_topic: "rtcollector/pi4.lan/status",
        json_payload: true,
    };
    let mut topic = String::new();
    config_topic(&ctx, t.get(id), &mut topic);
    assert_eq!(
        topic,
        "homeassistant/sensor/pi4_lan/sma_inverter_energy_total_wh_1900123456/config"
    );
    let mut out = String::new();
    config_payload(&ctx, t.get(id), "st", &mut out);
    assert_eq!(
        out,
        concat!(
            r#"{"name":"sma_inverter_energy_total_wh","#,
            r#""unique_id":"rtcollector_pi4_lan_sma_inverter_energy_total_wh_1900123456","#,
            r#""object_id":"rtcollector_pi4_lan_sma_inverter_energy_total_wh_1900123456","#,
            r#""default_entity_id":"sensor.rtcollector_pi4_lan_sma_inverter_energy_total_wh_1900123456","#,
            r#""state_topic":"st","value_template":"{{ value_json.value }}","#,
            r#""availability_topic":"rtcollector/pi4.lan/status","#,
            r#""payload_available":"online","payload_not_available":"offline","#,
            r#""unit_of_measurement":"Wh","device_class":"energy","state_class":"total_increasing","#,
            r#""device":{"identifiers":["sma_1900123456"],"name":"SMA Inverter 1900123456","#,
            r#""manufacturer":"SMA","model":"SMA Inverter","serial_number":"1900123456","#,
            r#""via_device":"rtcollector_pi4_lan"}}"#
        )
    );
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

use super::*;
use crate::inputs::testutil;

fn config(yaml: &str) -> Config {
    yaml_serde::from_str(yaml).unwrap()
}

fn ctx() -> BuildCtx {
    BuildCtx::with_roots("/proc", "/sys")
}

#[test]
fn options_at_fault_are_named() {
    for (yaml, key) in [
        ("topics: []", "topics"),
        ("topics: [{data_format: value}]", "topics"),
        ("topics: [{topic: \"a/b+/c\"}]", "topics"),
        ("topics: [{topic: \"a/#/c\"}]", "topics"),
        ("topics: [{topic: \"a/+x-y\"}]", "topics"),
        ("topics: [{topic: a/+/b, topic_labels: a/+x}]", "topics"),
        ("qos: 3\ntopics: [{data_format: tasmota}]", "qos"),
        ("password: x\ntopics: [{data_format: tasmota}]", "password"),
        ("host: \"\"\ntopics: [{data_format: tasmota}]", "host"),
        ("ignore_topics: [\"a#\"]\ntopics: [{data_format: tasmota}]", "ignore_topics"),
    ] {
        let e = build(&config(yaml), &ctx()).err().unwrap_or_else(|| panic!("{yaml} built"));
        assert_eq!(e.option, Some(key), "{yaml}: {e:?}");
    }
}

#[test]
fn the_password_never_prints() {
    let cfg = config("username: u\npassword: hunter2\ntopics: [{data_format: tasmota}]");
    assert!(!crate::config::yaml_text::flow(&cfg).contains("hunter2"));
    let input = build(&cfg, &ctx()).unwrap();
    assert!(!format!("{:?}", input.endpoint).contains("hunter2"));
}

#[test]
fn patterns_give_filters_and_labels() {
    assert_eq!(
        parse_pattern("tele/+device/SENSOR").unwrap(),
        ("tele/+/SENSOR".to_string(), vec![(1, "device".to_string())])
    );
    assert_eq!(parse_pattern("a/+/#").unwrap(), ("a/+/#".to_string(), vec![]));
}

#[test]
fn messages_are_aggregated_per_interval_with_topic_labels_and_own_topics_ignored() {
    let cfg = config(
        "topics:\n  - data_format: tasmota\n  - topic: home/+room/temp\n    name: room_temperature_celsius\n    aggregate: mean\n    labels: {site: home}\n",
    );
    let built = build(&cfg, &ctx()).unwrap();
    let input = built.feeder();
    let mut h = testutil::Harness::new(Box::new(built));
    let energy = |total: f64, power: f64| {
        format!("{{\"ENERGY\":{{\"Total\":{total},\"Power\":{power}}}}}")
    };
    input.take("tele/plug1/SENSOR", energy(1.5, 40.0).as_bytes());
    input.take("tele/plug1/SENSOR", energy(1.6, 50.0).as_bytes());
    input.take("home/kitchen/temp", b"20");
    input.take("home/kitchen/temp", b"21");
    input.take("rtcollector/testhost/home/kitchen/temp", b"99");
    input.take("tele/plug1/SENSOR", b"garbage");
    let got = h.collect(10_000);
    assert_eq!(got["tasmota_power_w{device=plug1}"], 50.0);
    assert_eq!(got["tasmota_energy_total_kwh{device=plug1}"], 1.6);
    assert_eq!(got["room_temperature_celsius{room=kitchen,site=home}"], 20.5);
    assert_eq!(got["mqtt_consumer_messages_total{result=received}"], 6.0);
    assert_eq!(got["mqtt_consumer_messages_total{result=ignored}"], 1.0);
    assert_eq!(got["mqtt_consumer_messages_total{result=malformed}"], 1.0);
    let again = h.collect(20_000);
    assert!(!again.has("tasmota_power_w{device=plug1}"), "nothing new: {again:?}");
}

#[test]
fn sample_is_valid() {
    let cfg: Config = testutil::sample_options(SAMPLE);
    build(&cfg, &ctx()).unwrap();
}

/// A preset on its default topic also reads its devices' availability topic, before any
/// catch-all pattern, as the device's `_up`; a custom topic has none.
#[test]
fn a_presets_availability_topic_is_its_devices_up() {
    let cfg = config(
        "topics:\n  - data_format: tasmota\n  - data_format: zigbee2mqtt\n  - topic: other/+device/SENSOR\n    data_format: tasmota\n  - topic: \"#\"\n",
    );
    let built = build(&cfg, &ctx()).unwrap();
    let input = built.feeder();
    let mut h = testutil::Harness::new(Box::new(built));
    input.take("tele/plug1/LWT", b"Offline");
    input.take("zigbee2mqtt/lamp/availability", br#"{"state":"online"}"#);
    input.take("zigbee2mqtt/lamp", br#"{"state":"ON"}"#);
    input.take("other/plug2/LWT", b"Online");
    let got = h.collect(10_000);
    assert_eq!(got["tasmota_up{device=plug1}"], 0.0);
    assert_eq!(got["tasmota_info{device=plug1,model=Tasmota}"], 1.0);
    assert_eq!(got["zigbee_up{device=lamp}"], 1.0);
    assert_eq!(got["zigbee_state{device=lamp}"], 1.0);
    assert!(!got.has("tasmota_up{device=plug2}"), "{got:?}");
    assert_eq!(got["mqtt_consumer_messages_total{result=malformed}"], 1.0, "`Online` as a number");
}

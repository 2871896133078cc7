use super::*;

/// What a sink received: (name, labels as `k=v,…`, value, counter).
#[derive(Default)]
struct Got(Vec<(String, String, f64, bool)>);

impl Sink for Got {
    fn put(&mut self, name: &str, labels: &[(&str, &str)], value: f64, kind: Kind) {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.0.push((name.to_string(), labels.join(","), value, kind == Kind::Counter));
    }
}

fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/inputs/mqtt_consumer/testdata")
            .join(name),
    )
    .unwrap()
}

fn parse_as(format: Format, topic: &str, payload: &[u8], labels: &[(&str, &str)]) -> Got {
    parse_rules(&Rules { format, name: "", fields: &[], counters: &[] }, topic, payload, labels)
}

fn parse_rules(rules: &Rules<'_>, topic: &str, payload: &[u8], labels: &[(&str, &str)]) -> Got {
    let mut got = Got::default();
    parse(rules, topic, payload, labels, &mut got).unwrap();
    got
}

fn row(name: &str, labels: &str, value: f64, counter: bool) -> (String, String, f64, bool) {
    (name.to_string(), labels.to_string(), value, counter)
}

#[test]
fn tasmota_energy_and_sensors() {
    let dev = [("device", "plug1")];
    let got = parse_as(Format::Tasmota, "tele/plug1/SENSOR", &testdata("tasmota_energy.json"), &dev);
    let l = "device=plug1";
    assert_eq!(
        got.0,
        [
            row("tasmota_apparent_power_va", l, 52.0, false),
            row("tasmota_current_a", l, 0.226, false),
            row("tasmota_power_factor", l, 0.87, false),
            row("tasmota_power_w", l, 45.0, false),
            row("tasmota_reactive_power_var", l, 26.0, false),
            row("tasmota_energy_today_kwh", l, 0.421, false),
            row("tasmota_energy_total_kwh", l, 12.345, true),
            row("tasmota_voltage_v", l, 231.0, false),
            row("tasmota_energy_yesterday_kwh", l, 0.812, false),
        ]
    );
    let got = parse_as(Format::Tasmota, "tele/th/SENSOR", &testdata("tasmota_am2301.json"), &[]);
    assert_eq!(
        got.0,
        [
            row("tasmota_dew_point_celsius", "sensor=AM2301", 10.2, false),
            row("tasmota_humidity_percent", "sensor=AM2301", 48.2, false),
            row("tasmota_temperature_celsius", "sensor=AM2301", 21.6, false),
        ]
    );
    let f = br#"{"DS18B20":{"Temperature":212},"TempUnit":"F"}"#;
    assert_eq!(parse_as(Format::Tasmota, "t", f, &[]).0, [row("tasmota_temperature_celsius", "sensor=DS18B20", 100.0, false)]);
    let two = br#"{"ENERGY":{"Power":[10,20]}}"#;
    assert_eq!(
        parse_as(Format::Tasmota, "t", two, &[]).0,
        [row("tasmota_power_w", "channel=1", 10.0, false), row("tasmota_power_w", "channel=2", 20.0, false)]
    );
}

#[test]
fn shelly_gen2_switch_status() {
    let labels = [("device", "shellyplusplugs-1"), ("component", "switch:0")];
    let got = parse_as(Format::Shelly, "shellyplusplugs-1/status/switch:0", &testdata("shelly_switch.json"), &labels);
    let l = "device=shellyplusplugs-1,component=switch:0";
    assert_eq!(
        got.0,
        [
            row("shelly_power_w", l, 45.3, false),
            row("shelly_voltage_v", l, 230.1, false),
            row("shelly_current_a", l, 0.215, false),
            row("shelly_output", l, 1.0, false),
            row("shelly_energy_total_kwh", l, 12.345678, true),
            row("shelly_device_temperature_celsius", l, 38.2, false),
        ]
    );
}

#[test]
fn esphome_state_topics() {
    let got = parse_as(Format::Esphome, "livingroom/sensor/living_room_temperature/state", &testdata("esphome_temperature.txt"), &[("node", "livingroom")]);
    assert_eq!(got.0, [row("esphome_living_room_temperature_celsius", "node=livingroom", 21.37, false)]);
    let got = parse_as(Format::Esphome, "n/binary_sensor/door/state", b"ON", &[]);
    assert_eq!(got.0, [row("esphome_door", "", 1.0, false)]);
}

#[test]
fn zigbee2mqtt_devices() {
    let got = parse_as(Format::Zigbee2mqtt, "zigbee2mqtt/kitchen", &testdata("zigbee2mqtt_climate.json"), &[]);
    assert_eq!(
        got.0,
        [
            row("zigbee_battery_percent", "", 97.0, false),
            row("zigbee_humidity_percent", "", 45.12, false),
            row("zigbee_linkquality", "", 156.0, false),
            row("zigbee_pressure_hpa", "", 1013.2, false),
            row("zigbee_temperature_celsius", "", 21.45, false),
            row("zigbee_voltage", "", 2985.0, false),
        ]
    );
    let got = parse_as(Format::Zigbee2mqtt, "zigbee2mqtt/tv", &testdata("zigbee2mqtt_plug.json"), &[]);
    assert_eq!(
        got.0,
        [
            row("zigbee_current_a", "", 0.2, false),
            row("zigbee_energy_kwh", "", 3.21, true),
            row("zigbee_linkquality", "", 120.0, false),
            row("zigbee_power_w", "", 45.0, false),
            row("zigbee_state", "", 1.0, false),
            row("zigbee_voltage", "", 230.0, false),
        ]
    );
}

#[test]
fn influx_lines() {
    let got = parse_as(Format::Influx, "x", &testdata("influx.txt"), &[]);
    assert_eq!(
        got.0,
        [
            row("weather_temperature", "location=garden", 12.5, false),
            row("weather_humidity", "location=garden", 81.0, false),
            row("weather_raining", "location=garden", 0.0, false),
            row("weather_temperature", "location=roof top", 9.25, false),
        ]
    );
}

#[test]
fn values_and_json_fields() {
    let rules = Rules { format: Format::Value, name: "room_temperature_celsius", fields: &[], counters: &[] };
    assert_eq!(parse_rules(&rules, "home/kitchen/temperature", b" 21.5\n", &[]).0, [row("room_temperature_celsius", "", 21.5, false)]);
    assert_eq!(parse_as(Format::Value, "home/kitchen/Temperature", b"OFF", &[]).0, [row("temperature", "", 0.0, false)]);
    let fields = ["ENERGY.Power=plug_power_w".to_string(), "ENERGY.Total".to_string()];
    let counters = ["ENERGY.Total".to_string()];
    let rules = Rules { format: Format::Json, name: "esp", fields: &fields, counters: &counters };
    assert_eq!(
        parse_rules(&rules, "t", &testdata("tasmota_energy.json"), &[]).0,
        [row("plug_power_w", "", 45.0, false), row("esp_energy_total", "", 12.345, true)]
    );
    let rules = Rules { format: Format::Json, name: "dev", fields: &[], counters: &[] };
    assert_eq!(
        parse_rules(&rules, "t", br#"{"a":{"bC":1,"s":"x","l":[1]},"ok":true}"#, &[]).0,
        [row("dev_a_b_c", "", 1.0, false), row("dev_ok", "", 1.0, false)]
    );
}

#[test]
fn payloads_without_a_reading_are_rejected_with_a_reason() {
    for (format, payload, why) in [
        (Format::Value, &b"warm"[..], "not a number"),
        (Format::Value, b"nan", "not a number"),
        (Format::Tasmota, b"{\"Time\":\"x\"}", "no numeric value in it"),
        (Format::Shelly, b"[1,2", "not JSON"),
        (Format::Influx, b"weather", "without fields"),
        (Format::Influx, b"weather,a temperature=1", "tag"),
        (Format::Json, &[0xff, 0x00], "not UTF-8"),
    ] {
        let mut got = Got::default();
        let rules = Rules { format, name: "", fields: &[], counters: &[] };
        let e = parse(&rules, "a/b", payload, &[], &mut got).unwrap_err();
        assert!(e.contains(why), "{format:?} {payload:?}: {e}");
    }
}

#[test]
fn garbage_never_panics() {
    let alphabet = b"{}[]\":,.=\\ \n0123456789eE-+tfONx\xc3\xa9";
    let mut seed = 7u64;
    let mut got = Got::default();
    for format in [Format::Value, Format::Json, Format::Influx, Format::Tasmota, Format::Shelly, Format::Esphome, Format::Zigbee2mqtt] {
        let rules = Rules { format, name: "", fields: &[], counters: &[] };
        for _ in 0..5_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = (seed >> 40) as usize % 48;
            let payload: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 50)) as usize + i * 7) % alphabet.len()])
                .collect();
            let _ = parse(&rules, "a/b/c", &payload, &[], &mut got);
        }
    }
    // Deep nesting is walked only so far.
    let deep = format!("{}1{}", "{\"a\":".repeat(500), "}".repeat(500));
    let rules = Rules { format: Format::Json, name: "", fields: &[], counters: &[] };
    let _ = parse(&rules, "t", deep.as_bytes(), &[], &mut got);
}

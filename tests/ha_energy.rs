//! Issue 8's promise, end to end: "the SMA meter and inverter energy counters land in Home
//! Assistant's Energy dashboard without any YAML on the HA side". The built agent reads a real
//! input (Speedwire datagrams sent by the test on `lo`; the simulated inverter on pymodbus) and
//! publishes to a private Mosquitto with `homeassistant: {enabled: true}`; a real subscriber
//! reads back the retained discovery configs and the values on their state topics.
//!
//! What the Energy dashboard lists is a sensor with `device_class: energy`, `state_class:
//! total_increasing` (or `total`) and an energy unit (`Wh`, `kWh` …) whose state is a number.
//!
//! Needs `RTC_MOSQUITTO_BIN_DIR` and `RTC_PYMODBUS_PYTHON`:
//!
//! ```sh
//! export RTC_MOSQUITTO_BIN_DIR="$(scripts/setup-mosquitto)"
//! export RTC_PYMODBUS_PYTHON="$(scripts/setup-pymodbus)"
//! cargo test --test ha_energy
//! ```
//!
//! Fails, never skips, without them.
#![cfg(all(feature = "mqtt", feature = "sma-em", feature = "modbus"))]

mod support;

use rtcollector::inputs::sma_energy_meter::encode::Builder;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};
use support::agent::Agent;
use support::mosquitto::{by_topic, Broker, Msg, Sub};
use support::ports::free_udp_port;
use support::pymodbus::Sim;
use support::scratch::Scratch;

const WAIT: Duration = Duration::from_secs(30);

/// An agent on `host` with `inputs` (YAML list items), collecting and flushing every second
/// to an `mqtt` output with Home Assistant discovery on.
fn start_agent(s: &Scratch, host: &str, broker: &Broker, inputs: &str) -> Agent {
    let config = s.config(&format!(
        "hostname: {host}\ninterval: 1s\nflush_interval: 1s\nbuffer_dir: {}\ninputs:\n{inputs}\
         outputs:\n  - mqtt:\n      host: 127.0.0.1\n      port: {}\n      homeassistant: {{enabled: true}}\n",
        s.dir.path().join("buffer").display(),
        broker.port
    ));
    Agent::start(&config)
}

/// Reads `sub` until a message has arrived on every topic of `topics`, calling `tick` between
/// reads (to keep a source talking). Fails after [`WAIT`] with what came and the agent's log.
fn until_all(sub: &Sub, agent: &Agent, topics: &[&str], mut tick: impl FnMut()) -> Vec<Msg> {
    let deadline = Instant::now() + WAIT;
    let mut got: Vec<Msg> = Vec::new();
    while !topics.iter().all(|t| got.iter().any(|m| m.topic == *t)) {
        assert!(
            Instant::now() < deadline,
            "not all of {topics:#?} arrived within {WAIT:?}; got {got:#?}\nagent: {:#?}",
            agent.drain()
        );
        tick();
        got.extend(sub.until(Duration::from_millis(300), |_| false));
    }
    got
}

/// Every payload that arrived on `topic`: each collection publishes the same exact value.
#[track_caller]
fn assert_values(got: &[Msg], topic: &str, want: &str) {
    let values: Vec<&str> = got
        .iter()
        .filter(|m| m.topic == topic)
        .map(|m| m.payload.as_str())
        .collect();
    assert!(
        !values.is_empty() && values.iter().all(|v| *v == want),
        "{topic}: want {want}, got {values:?}"
    );
}

/// The retained discovery configs a subscriber that comes later (Home Assistant after a
/// restart) gets, by object id.
fn retained_configs(broker: &Broker, host: &str) -> BTreeMap<String, Value> {
    let late = Sub::start(broker, &["-t", "homeassistant/#"]);
    let msgs = late.settle(Duration::from_millis(700));
    let prefix = format!("homeassistant/sensor/{host}/");
    msgs.iter()
        .map(|m| {
            assert!(m.retained, "discovery configs are retained: {m:#?}");
            let object = m
                .topic
                .strip_prefix(&prefix)
                .and_then(|t| t.strip_suffix("/config"))
                .unwrap_or_else(|| panic!("not a sensor config of {host}: {m:#?}"));
            let v: Value = serde_json::from_str(&m.payload)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", m.topic, m.payload));
            (object.to_string(), v)
        })
        .collect()
}

fn config<'a>(configs: &'a BTreeMap<String, Value>, object: &str) -> &'a Value {
    configs
        .get(object)
        .unwrap_or_else(|| panic!("no config for {object}; have {:#?}", configs.keys()))
}

/// What the Energy dashboard (energy) or a power card (power) needs, and the sensor's device.
#[track_caller]
fn assert_sensor(cfg: &Value, class: (&str, &str, &str), device: &Value) {
    assert_eq!(
        (
            &cfg["device_class"],
            &cfg["state_class"],
            &cfg["unit_of_measurement"]
        ),
        (&json!(class.0), &json!(class.1), &json!(class.2)),
        "{cfg:#}"
    );
    assert!(
        cfg.get("value_template").is_none(),
        "the value layout's payload is the bare number: {cfg:#}"
    );
    assert_eq!(&cfg["device"], device, "{cfg:#}");
}

/// The device of an SMA meter or inverter: its own, by serial, reached through the agent;
/// `sw_version` is the firmware the meter announces (`unknown` until it does).
fn sma_device(model: &str, serial: &str, host: &str, sw_version: Option<&str>) -> Value {
    let mut device = json!({
        "identifiers": [format!("sma_{serial}")],
        "name": format!("{model} {serial}"),
        "manufacturer": "SMA",
        "model": model,
        "serial_number": serial,
        "via_device": format!("rtcollector_{host}")
    });
    if let Some(v) = sw_version {
        device["sw_version"] = json!(v);
    }
    device
}

const METER: u32 = 1_901_000_001;
/// Counters in Ws, as the meter sends them; the input publishes Wh (÷ 3600).
const IMPORT_WS: u64 = 36_001_800;
const EXPORT_WS: u64 = 7_205_400;
/// Power in 0.1 W.
const IMPORT_POWER: u32 = 12_345;

#[test]
fn sma_energy_meter_counters_are_energy_sensors_on_the_meters_device() {
    let broker = Broker::anonymous();
    let sub = Sub::start(&broker, &[]);
    let s = Scratch::new();
    let port = free_udp_port();
    let host = "meterhost";
    let agent = start_agent(
        &s,
        host,
        &broker,
        &format!("  - sma_energy_meter:\n      port: {port}\n      interface: lo\n"),
    );
    let (lines, ok) = agent.wait_for(WAIT, |l| l.contains("sma_energy_meter: listening on"));
    assert!(ok, "the agent did not start listening: {lines:#?}");

    // Unicast, as a Home Manager in "direct meter communication" sends; one datagram per
    // tick, all with the same readings, so every interval's mean and last counter are exact.
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut ticker = 0u32;
    let mut send = || {
        let d = Builder::new(METER, ticker)
            .current(1, IMPORT_POWER)
            .current(2, 0)
            .counter(1, IMPORT_WS)
            .counter(2, EXPORT_WS)
            .bytes();
        sender.send_to(&d, ("127.0.0.1", port)).unwrap();
        ticker += 1_000;
    };
    let state = |name: &str| format!("rtcollector/{host}/{name}/total/{METER}");
    let (import, export, power) = (
        state("sma_em_energy_import_wh"),
        state("sma_em_energy_export_wh"),
        state("sma_em_power_import_w"),
    );
    let got = until_all(&sub, &agent, &[&import, &export, &power], &mut send);
    assert_values(&got, &import, "10000.5");
    assert_values(&got, &export, "2001.5");
    assert_values(&got, &power, "1234.5");
    assert_eq!(
        by_topic(&got)[&format!("rtcollector/{host}/status")].payload,
        "online"
    );

    let configs = retained_configs(&broker, host);
    let serial = METER.to_string();
    let device = sma_device("SMA Energy Meter", &serial, host, Some("unknown"));
    assert!(
        device["identifiers"][0].as_str().unwrap().contains(&serial),
        "{device}"
    );
    let energy = ("energy", "total_increasing", "Wh");
    // Issue 23 renamed the entities ("sma_em_energy_import_wh total" before) and moved the
    // availability into a list with the meter's own topic.
    for (name, topic, readable) in [
        ("sma_em_energy_import_wh", &import, "Grid import energy"),
        ("sma_em_energy_export_wh", &export, "Grid export energy"),
    ] {
        let cfg = config(&configs, &format!("{name}_total_{serial}"));
        assert_sensor(cfg, energy, &device);
        assert_eq!(cfg["state_topic"], json!(topic), "{cfg:#}");
        assert_eq!(cfg["name"], json!(readable));
        assert_eq!(
            cfg["availability"],
            json!([
                {"topic": format!("rtcollector/{host}/status"),
                 "payload_available": "online", "payload_not_available": "offline"},
                {"topic": format!("rtcollector/{host}/device/sma_{serial}/availability"),
                 "payload_available": "online", "payload_not_available": "offline"}
            ])
        );
    }
    let cfg = config(&configs, &format!("sma_em_power_import_w_total_{serial}"));
    assert_sensor(cfg, ("power", "measurement", "W"), &device);
    assert_eq!(cfg["state_topic"], json!(power));

    // The meter is its own device, not the agent's host.
    let host_device = json!([format!("rtcollector_{host}")]);
    let on_host: Vec<&String> = configs
        .iter()
        .filter(|(_, c)| c["device"]["identifiers"] == host_device)
        .map(|(o, _)| o)
        .collect();
    assert!(
        on_host.iter().all(|o| !o.contains(&serial)),
        "a series of the meter on the host's device: {on_host:#?}"
    );
}

const INVERTER: u32 = 1_234_567_890;
const TOTAL_WH: u64 = 123_456_789_012;

#[test]
fn sma_inverter_total_yield_is_an_energy_sensor_on_the_inverters_device() {
    // The serial, and a defined register in each block the input reads (the simulator refuses
    // a read that touches none).
    let sim = Sim::start(json!({"unit": 3, "values": {
        "30057": ["u32", INVERTER],
        "30201": ["u32", 307],
        "30513": ["u64", TOTAL_WH],
        "30775": ["s32", 4_321],
        "30953": ["s32", 415],
    }}));
    let broker = Broker::anonymous();
    let sub = Sub::start(&broker, &[]);
    let s = Scratch::new();
    let host = "invhost";
    let agent = start_agent(
        &s,
        host,
        &broker,
        &format!(
            "  - sma_inverter:\n      inverters:\n        - {{name: roof, host: 127.0.0.1, port: {}}}\n",
            sim.port
        ),
    );
    let state = |name: &str| format!("rtcollector/{host}/{name}/roof/{INVERTER}");
    let (total, power, temperature) = (
        state("sma_inverter_energy_total_wh"),
        state("sma_inverter_ac_power_w"),
        state("sma_inverter_temperature_c"),
    );
    let got = until_all(&sub, &agent, &[&total, &power, &temperature], || {});
    assert_values(&got, &total, "123456789012");
    assert_values(&got, &power, "4321");
    assert_values(&got, &temperature, "41.5");

    let configs = retained_configs(&broker, host);
    let serial = INVERTER.to_string();
    let device = sma_device("SMA Inverter", &serial, host, None);
    let cfg = config(
        &configs,
        &format!("sma_inverter_energy_total_wh_roof_{serial}"),
    );
    assert_sensor(cfg, ("energy", "total_increasing", "Wh"), &device);
    assert_eq!(cfg["state_topic"], json!(total), "{cfg:#}");
    assert_eq!(cfg["name"], json!("PV energy total"));
    let cfg = config(&configs, &format!("sma_inverter_ac_power_w_roof_{serial}"));
    assert_sensor(cfg, ("power", "measurement", "W"), &device);
    assert_eq!(cfg["state_topic"], json!(power));
    let cfg = config(
        &configs,
        &format!("sma_inverter_temperature_c_roof_{serial}"),
    );
    assert_sensor(cfg, ("temperature", "measurement", "°C"), &device);
    assert_eq!(cfg["state_topic"], json!(temperature));
}

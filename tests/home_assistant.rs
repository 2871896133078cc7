//! Issue 23 against a real Home Assistant: what a person sees once the agent publishes SMA
//! meter and inverter readings with discovery on. The test starts a private Mosquitto, a Home
//! Assistant (scratch config dir, free port, onboarded through its API, MQTT set up through a
//! config entry of its own flow), the simulated inverter (pymodbus) and the built agent, sends
//! Speedwire datagrams on `lo`, and reads entities, devices and `energy/validate` over Home
//! Assistant's websocket API: names, entity ids, classes and units, the devices, availability
//! when the meter and the inverter go silent and come back, and a condition change that keeps
//! one entity.
//!
//! Run once per Home Assistant: the newest that installs here (2025.4.4 on CPython 3.13) and
//! 2024.3.3 (CPython 3.12):
//!
//! ```sh
//! export RTC_MOSQUITTO_BIN_DIR="$(scripts/setup-mosquitto)"
//! export RTC_PYMODBUS_PYTHON="$(scripts/setup-pymodbus)"
//! export RTC_HA_PYTHON="$(scripts/setup-home-assistant)"
//! export RTC_HA_2024_PYTHON="$(scripts/setup-home-assistant 2024.3.3)"
//! cargo test --test home_assistant
//! ```
//!
//! Fails, never skips, without them.
#![cfg(all(feature = "mqtt", feature = "sma-em", feature = "modbus"))]

mod support;

use rtcollector::inputs::sma_energy_meter::encode::Builder;
use serde_json::{json, Value};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::agent::Agent;
use support::home_assistant::HomeAssistant;
use support::mosquitto::Broker;
use support::ports::free_udp_port;
use support::pymodbus::Sim;
use support::scratch::Scratch;

/// Generous: Home Assistant on a busy 2-core machine; a deadline, not a measurement.
const WAIT: Duration = Duration::from_secs(90);
const HOST: &str = "pvhost";
const METER: u32 = 1_901_000_001;
const INVERTER: u32 = 1_234_567_890;

fn inverter_registers(condition: u32) -> Value {
    json!({"unit": 3, "values": {
        "30057": ["u32", INVERTER],
        "30201": ["u32", condition],
        "30513": ["u64", 123_456_789_012u64],
        "30775": ["s32", 4_321],
        "30953": ["s32", 415],
    }})
}

/// Sends the meter's datagram every 200 ms while `talking` is set, until `stop`.
fn meter_sender(
    port: u16,
    talking: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut ticker = 0u32;
        while !stop.load(Ordering::Relaxed) {
            if talking.load(Ordering::Relaxed) {
                let mut b = Builder::new(METER, ticker)
                    .current(1, 12_345)
                    .current(2, 0)
                    .counter(1, 36_001_800)
                    .counter(2, 7_205_400)
                    .counter(3, 3_601_800);
                b.push_version([2, 3, 4, b'R']);
                let _ = sender.send_to(&b.bytes(), ("127.0.0.1", port));
                ticker += 200;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

#[track_caller]
fn attr<'a>(state: &'a Value, name: &str) -> &'a Value {
    &state["attributes"][name]
}

fn scenario(python_env: &str) {
    let broker = Broker::anonymous();
    let mut ha = HomeAssistant::start(python_env, broker.port);
    let mut sim = Sim::start(inverter_registers(307));
    let s = Scratch::new();
    let port = free_udp_port();
    let config = s.config(&format!(
        "hostname: {HOST}\ninterval: 1s\nflush_interval: 1s\nbuffer_dir: {}\ninputs:\n\
         \x20 - sma_energy_meter:\n      port: {port}\n      interface: lo\n\
         \x20 - sma_inverter:\n      inverters:\n        - {{name: roof, host: 127.0.0.1, port: {}}}\n\
         outputs:\n  - mqtt:\n      host: 127.0.0.1\n      port: {}\n      homeassistant: {{enabled: true}}\n",
        s.dir.path().join("buffer").display(),
        sim.port,
        broker.port
    ));
    let agent = Agent::start(&config);
    let (lines, ok) = agent.wait_for(WAIT, |l| l.contains("sma_energy_meter: listening on"));
    assert!(ok, "the agent did not start listening: {lines:#?}");
    let (talking, stop) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(false)),
    );
    let sender = meter_sender(port, talking.clone(), stop.clone());

    // Names within the device, entity ids from the device's name, classes and units.
    let meter = format!("sensor.sma_energy_meter_{METER}");
    let import = ha.wait_state(&format!("{meter}_grid_import_energy"), "10000.5", WAIT);
    assert_eq!(
        attr(&import, "friendly_name"),
        &json!(format!("SMA Energy Meter {METER} Grid import energy"))
    );
    assert_eq!(attr(&import, "device_class"), "energy");
    assert_eq!(attr(&import, "state_class"), "total_increasing");
    assert_eq!(attr(&import, "unit_of_measurement"), "Wh");
    let power = ha.wait_state(&format!("{meter}_import_power"), "1234.5", WAIT);
    assert_eq!(attr(&power, "device_class"), "power");
    let varh = ha.wait_state(&format!("{meter}_reactive_import_energy"), "1000.5", WAIT);
    assert_eq!(attr(&varh, "unit_of_measurement"), "varh");
    let inverter = format!("sensor.sma_inverter_{INVERTER}");
    let condition = ha.wait_state(&format!("{inverter}_condition"), "ok", WAIT);
    assert_eq!(attr(&condition, "device_class"), "enum");
    // Home Assistant 2024.3's MQTT sensor has no `options` yet: it drops the key and keeps an
    // `enum` sensor whose state is the condition.
    let options = match ha.version.starts_with("2024.3") {
        true => json!(null),
        false => json!(["ok", "warning", "fault", "off", "unknown"]),
    };
    assert_eq!(attr(&condition, "options"), &options);
    ha.wait_state(&format!("{inverter}_pv_energy_total"), "123456789012", WAIT);
    ha.wait_state(&format!("{inverter}_reachable"), "1", WAIT);

    // Devices: the meter and the inverter with maker, model, serial and firmware; no device
    // made from a bare serial.
    let devices = ha.ws(json!({"type": "config/device_registry/list"}));
    let device = |id: &str| {
        devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["identifiers"] == json!([["mqtt", id]]))
            .unwrap_or_else(|| panic!("no device {id}: {devices:#}"))
            .clone()
    };
    let m = device(&format!("sma_{METER}"));
    assert_eq!(
        (
            &m["name"],
            &m["manufacturer"],
            &m["model"],
            &m["sw_version"]
        ),
        (
            &json!(format!("SMA Energy Meter {METER}")),
            &json!("SMA"),
            &json!("SMA Energy Meter"),
            &json!("2.3.4.R")
        )
    );
    let i = device(&format!("sma_{INVERTER}"));
    assert_eq!(
        (&i["manufacturer"], &i["model"]),
        (&json!("SMA"), &json!("SMA Inverter"))
    );
    assert!(
        devices
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["manufacturer"] != "unknown"),
        "a stray device: {devices:#}"
    );
    let entities = ha.ws(json!({"type": "config/entity_registry/list"}));
    let on_inverter: Vec<&str> = entities
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["device_id"] == i["id"])
        .filter_map(|e| e["entity_id"].as_str())
        .collect();
    assert!(
        on_inverter.contains(&format!("{inverter}_reachable").as_str()),
        "sma_inverter_up on the inverter: {on_inverter:#?}"
    );

    // The Energy dashboard takes the meter's counters without complaint.
    let flow = |from: &str, to: &str| {
        json!({"type": "grid",
               "flow_from": [{"stat_energy_from": from, "stat_cost": null, "entity_energy_price": null, "number_energy_price": null}],
               "flow_to": [{"stat_energy_to": to, "stat_compensation": null, "entity_energy_price": null, "number_energy_price": null}],
               "cost_adjustment_day": 0})
    };
    ha.ws(json!({"type": "energy/save_prefs",
                 "energy_sources": [flow(&format!("{meter}_grid_import_energy"), &format!("{meter}_grid_export_energy"))],
                 "device_consumption": []}));
    // Unit, classes, a numeric state: all checked. A fresh Home Assistant has no long-term
    // statistics until its first 5-minute compile, so `statistics_not_defined` is the one issue
    // it may name (what the Energy dashboard shows for a new sensor too).
    let validation = ha.ws(json!({"type": "energy/validate"}));
    let issues = validation["energy_sources"][0]
        .as_array()
        .expect("one source")
        .clone();
    assert!(
        issues.iter().all(|i| i["type"] == "statistics_not_defined"),
        "{validation:#}"
    );
    assert_eq!(
        validation["energy_sources"].as_array().map(Vec::len),
        Some(1),
        "{validation:#}"
    );

    // Silence: the meter's entities go unavailable, and come back with it.
    talking.store(false, Ordering::Relaxed);
    ha.wait_state(&format!("{meter}_grid_import_energy"), "unavailable", WAIT);
    talking.store(true, Ordering::Relaxed);
    ha.wait_state(&format!("{meter}_grid_import_energy"), "10000.5", WAIT);

    // The inverter stops answering: its entities go unavailable but its reachability.
    sim.stop();
    ha.wait_state(&format!("{inverter}_pv_energy_total"), "unavailable", WAIT);
    ha.wait_state(&format!("{inverter}_reachable"), "0", WAIT);
    // Back, with a warning: the same condition entity changes its state.
    sim.restart_with(inverter_registers(455));
    ha.wait_state(&format!("{inverter}_condition"), "warning", WAIT);
    ha.wait_state(&format!("{inverter}_pv_energy_total"), "123456789012", WAIT);
    let entities = ha.ws(json!({"type": "config/entity_registry/list"}));
    let conditions: Vec<&str> = entities
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["entity_id"].as_str())
        .filter(|e| e.contains("condition"))
        .collect();
    assert_eq!(
        conditions,
        [format!("{inverter}_condition")],
        "one condition entity"
    );

    // Every config taken as it is: no refused config, no deprecated option (`object_id` beside
    // `default_entity_id` is not one from 2025.10 on).
    let complaints = ha.mqtt_complaints();
    assert!(
        complaints.is_empty(),
        "Home Assistant {}: {complaints:#?}",
        ha.version
    );

    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    drop(agent);
}

#[test]
fn home_assistant_newest_shows_devices_and_entities_as_a_person_would() {
    scenario("RTC_HA_PYTHON");
}

#[test]
fn home_assistant_2024_shows_devices_and_entities_as_a_person_would() {
    scenario("RTC_HA_2024_PYTHON");
}

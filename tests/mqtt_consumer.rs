//! The `mqtt_consumer` input against a private Mosquitto: `mosquitto_pub` publishes the
//! recorded payloads of each preset (src/inputs/mqtt_consumer/testdata, written from the
//! vendors' documented formats) and Influx lines; exact values and labels are read back from
//! a Redis Stack through the `redistimeseries` output. The broker restarted mid-run (the
//! consumer subscribes again); a flood of 50 000 messages/s for 10 s (bounded RSS, drops and
//! refused series counted); a Tasmota plug's energy counter announced to Home Assistant as
//! an energy sensor by the agent's own MQTT output on the same broker, without a loop and
//! over one shared connection; an output that reloads join, leave and join again the
//! consumer's connection.
//!
//! Needs `RTC_MOSQUITTO_BIN_DIR` and `RTC_REDIS_STACK_DIR` (scripts/setup-mosquitto,
//! scripts/setup-redis-stack); fails, never skips, without them.
#![cfg(all(feature = "mqtt-consumer", feature = "mqtt"))]

mod support;

use nix::sys::signal::Signal;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use support::agent::Agent;
use support::mosquitto::{Broker, Sub};
use support::mqtt_flood::Flood;
use support::redis_server::{query, text, ts_labels, Server};
use support::samples::samples;
use support::scratch::Scratch;

const WAIT: Duration = Duration::from_secs(30);

fn testdata(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/inputs/mqtt_consumer/testdata")
            .join(name),
    )
    .unwrap()
}

/// Every series of `host` in Redis: `name{label=value,…}` (host left out) → its last value.
fn redis_values(redis: &Server, host: &str) -> BTreeMap<String, f64> {
    let mut con = redis.client();
    let keys: Vec<String> = query(&mut con, &["TS.QUERYINDEX", &format!("host={host}")]);
    let mut out = BTreeMap::new();
    for key in keys {
        let labels = ts_labels(&mut con, &key);
        let name = labels
            .iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let rest: Vec<String> = labels
            .iter()
            .filter(|(k, _)| k != "name" && k != "host")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let id = if rest.is_empty() {
            name
        } else {
            format!("{name}{{{}}}", rest.join(","))
        };
        let last: Vec<redis::Value> = query(&mut con, &["TS.GET", &key]);
        if let Some(v) = last.get(1) {
            out.insert(id, text(v).parse().unwrap_or(f64::NAN));
        }
    }
    out
}

/// Calls `publish` and reads Redis until every `want` holds its value; fails with what
/// Redis has and the agent's log.
fn until_in_redis(
    redis: &Server,
    host: &str,
    agent: &Agent,
    want: &[(&str, f64)],
    mut publish: impl FnMut(),
) {
    let deadline = Instant::now() + WAIT;
    loop {
        publish();
        std::thread::sleep(Duration::from_millis(500));
        let got = redis_values(redis, host);
        if want.iter().all(|(k, v)| got.get(*k) == Some(v)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not in Redis within {WAIT:?}: {:#?}\nRedis has {got:#?}\nagent: {:#?}",
            want.iter()
                .filter(|(k, v)| got.get(*k) != Some(v))
                .collect::<Vec<_>>(),
            agent.drain()
        );
    }
}

#[test]
fn presets_and_influx_lines_reach_redis_with_exact_values_and_labels_across_a_broker_restart() {
    let mut broker = Broker::anonymous();
    let redis = Server::stack(&[]);
    let s = Scratch::new();
    let host = "consumerhost";
    let config = s.config(&format!(
        "hostname: {host}\ninterval: 1s\nflush_interval: 1s\ninputs:\n  - mqtt_consumer:\n      \
         port: {}\n      topics:\n        - data_format: tasmota\n        - data_format: shelly\n        \
         - data_format: esphome\n        - data_format: zigbee2mqtt\n        - topic: influx/+site\n          \
         data_format: influx\noutputs:\n  - redistimeseries:\n      url: {}\n",
        broker.port,
        redis.url()
    ));
    let agent = Agent::start(&config);
    let (lines, ok) = agent.wait_for(WAIT, |l| l.contains("mqtt_consumer: connected to"));
    assert!(ok, "the consumer did not connect: {lines:#?}");

    let publish_all = |broker: &Broker| {
        broker.publish("tele/plug1/SENSOR", &testdata("tasmota_energy.json"));
        broker.publish("tele/th1/SENSOR", &testdata("tasmota_am2301.json"));
        broker.publish(
            "shellyplusplugs-a1/status/switch:0",
            &testdata("shelly_switch.json"),
        );
        broker.publish(
            "livingroom/sensor/living_room_temperature/state",
            &testdata("esphome_temperature.txt"),
        );
        broker.publish("zigbee2mqtt/kitchen", &testdata("zigbee2mqtt_climate.json"));
        broker.publish("zigbee2mqtt/tv_plug", &testdata("zigbee2mqtt_plug.json"));
        broker.publish("influx/garden", &testdata("influx.txt"));
    };
    let want = [
        ("tasmota_power_w{device=plug1}", 45.0),
        ("tasmota_energy_total_kwh{device=plug1}", 12.345),
        ("tasmota_voltage_v{device=plug1}", 231.0),
        (
            "tasmota_temperature_celsius{device=th1,sensor=AM2301}",
            21.6,
        ),
        ("tasmota_humidity_percent{device=th1,sensor=AM2301}", 48.2),
        (
            "shelly_power_w{component=switch:0,device=shellyplusplugs-a1}",
            45.3,
        ),
        (
            "shelly_energy_total_kwh{component=switch:0,device=shellyplusplugs-a1}",
            12.345678,
        ),
        (
            "shelly_output{component=switch:0,device=shellyplusplugs-a1}",
            1.0,
        ),
        (
            "esphome_living_room_temperature_celsius{node=livingroom}",
            21.37,
        ),
        ("zigbee_temperature_celsius{device=kitchen}", 21.45),
        ("zigbee_humidity_percent{device=kitchen}", 45.12),
        ("zigbee_power_w{device=tv_plug}", 45.0),
        ("zigbee_energy_kwh{device=tv_plug}", 3.21),
        ("zigbee_state{device=tv_plug}", 1.0),
        ("weather_temperature{location=garden,site=garden}", 12.5),
        ("weather_humidity{location=garden,site=garden}", 81.0),
        ("weather_temperature{location=roof top,site=garden}", 9.25),
        // Each preset's devices, declared for Home Assistant (not the influx site).
        ("tasmota_info{device=plug1,model=Tasmota}", 1.0),
        ("tasmota_info{device=th1,model=Tasmota}", 1.0),
        ("shelly_info{device=shellyplusplugs-a1,model=Shelly}", 1.0),
        ("esphome_info{model=ESPHome,node=livingroom}", 1.0),
        ("zigbee_info{device=kitchen,model=Zigbee2MQTT}", 1.0),
    ];
    until_in_redis(&redis, host, &agent, &want, || publish_all(&broker));

    // The broker goes away and comes back on the same port: the consumer connects and
    // subscribes again, and a new reading arrives.
    broker.stop();
    let (lines, ok) = agent.wait_for(WAIT, |l| {
        l.contains("mqtt_consumer: ") && l.contains("retrying")
    });
    assert!(
        ok,
        "the consumer did not notice the broker leaving: {lines:#?}"
    );
    broker.spawn();
    let (lines, ok) = agent.wait_for(WAIT, |l| l.contains("mqtt_consumer: connected to"));
    assert!(ok, "the consumer did not connect again: {lines:#?}");
    let after = r#"{"ENERGY":{"Total":12.5,"Power":60}}"#;
    until_in_redis(
        &redis,
        host,
        &agent,
        &[
            ("tasmota_power_w{device=plug1}", 60.0),
            ("tasmota_energy_total_kwh{device=plug1}", 12.5),
        ],
        || broker.publish("tele/plug1/SENSOR", after),
    );
    let got = redis_values(&redis, host);
    assert_eq!(
        got.get("mqtt_consumer_messages_total{result=malformed}"),
        Some(&0.0),
        "{got:#?}"
    );
}

/// The retained discovery config of `object` on `host`'s node.
fn retained_config(broker: &Broker, host: &str, object: &str) -> Option<Value> {
    let late = Sub::start(
        broker,
        &[
            "-t",
            &format!("homeassistant/sensor/{host}/{object}/config"),
        ],
    );
    let msgs = late.settle(Duration::from_millis(700));
    msgs.last()
        .map(|m| serde_json::from_str(&m.payload).expect("JSON config"))
}

#[test]
fn a_tasmota_plugs_energy_counter_is_a_home_assistant_energy_sensor_without_a_loop() {
    let broker = Broker::anonymous();
    let s = Scratch::new();
    let host = "plughost";
    // The consumer listens to everything, the agent's own output's topics included: those
    // are left out by default, so nothing the output publishes comes back as a reading.
    let config = s.config(&format!(
        "hostname: {host}\ninterval: 1s\nflush_interval: 1s\ninputs:\n  - mqtt_consumer:\n      \
         port: {port}\n      topics:\n        - topic: tele/+device/SENSOR\n          data_format: tasmota\n        \
         - topic: \"#\"\n          data_format: value\noutputs:\n  - mqtt:\n      port: {port}\n      \
         homeassistant: {{enabled: true}}\n  - stdout:\n      format: json\n",
        port = broker.port
    ));
    let agent = Agent::start(&config);
    let (lines, ok) = agent.wait_for(WAIT, |l| {
        l.contains("mqtt_consumer") && l.contains("connected to")
    });
    assert!(ok, "the consumer did not connect: {lines:#?}");
    let object = "tasmota_energy_total_kwh_plug1";
    let deadline = Instant::now() + WAIT;
    let cfg = loop {
        broker.publish("tele/plug1/SENSOR", &testdata("tasmota_energy.json"));
        if let Some(cfg) = retained_config(&broker, host, object) {
            break cfg;
        }
        assert!(
            Instant::now() < deadline,
            "no discovery config for {object}: {:#?}",
            agent.drain()
        );
    };
    assert_eq!(
        (
            &cfg["device_class"],
            &cfg["state_class"],
            &cfg["unit_of_measurement"]
        ),
        (&json!("energy"), &json!("total_increasing"), &json!("kWh")),
        "{cfg:#}"
    );
    // The plug is a device of its own (the preset's `tasmota_info`), not the agent's host.
    assert_eq!(cfg["device"]["name"], json!("Tasmota plug1"), "{cfg:#}");
    assert_eq!(cfg["device"]["model"], json!("Tasmota"), "{cfg:#}");
    let state_topic = cfg["state_topic"].as_str().unwrap().to_string();
    let state = Sub::start(&broker, &["-t", &state_topic]);
    // The plug keeps publishing, as plugs do (an interval without a reading writes nothing).
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    while !got
        .iter()
        .any(|m: &support::mosquitto::Msg| m.payload == "12.345")
    {
        assert!(Instant::now() < deadline, "{state_topic}: {got:#?}");
        broker.publish("tele/plug1/SENSOR", &testdata("tasmota_energy.json"));
        got.extend(state.until(Duration::from_secs(1), |m| m.payload == "12.345"));
    }

    // No loop: the agent's own topics were received (by `#`) but ignored.
    std::thread::sleep(Duration::from_secs(2));
    let out: Vec<String> = agent
        .drain()
        .into_iter()
        .filter_map(|l| l.strip_prefix("OUT ").map(str::to_string))
        .collect();
    let got = samples(&out.join("\n"));
    // A loop would read `rtcollector/plughost/tasmota_power_w/plug1` as a value named by its
    // last level.
    assert!(
        !got.contains_key("plug1"),
        "the agent's own topics came back as readings: {got:#?}"
    );
    let ignored = got
        .get("mqtt_consumer_messages_total{result=ignored}")
        .and_then(|v| v["value"].as_f64());
    assert!(ignored.is_some_and(|n| n > 0.0), "{got:#?}");

    // The output and the consumer share one thread and one connection.
    let pid = agent.child.id();
    assert_eq!(thread_names(pid), ["async-io", "mqtt", "rtcollector"]);
    assert_eq!(connections_to(pid, broker.port), 1, "{}", broker.log());

    // The plug's last will (`tele/plug1/LWT`, retained, as Tasmota sends it) is the device's
    // availability in Home Assistant.
    let availability = Sub::start(
        &broker,
        &[
            "-t",
            &format!("rtcollector/{host}/device/tasmota_plug1/availability"),
        ],
    );
    for (lwt, want) in [("Offline", "offline"), ("Online", "online")] {
        broker.publish_retained("tele/plug1/LWT", lwt);
        let got = availability.until(WAIT, |m| m.payload == want);
        assert!(got.iter().any(|m| m.payload == want), "{lwt}: {got:#?}");
    }
}

/// The agent's established TCP connections to `port` on 127.0.0.1.
fn connections_to(pid: u32, port: u16) -> usize {
    let sockets: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap();
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 9 && f[3] == "01" && sockets.contains(f[9]))
        .filter(|f| {
            let remote = f[2].rsplit(':').next().unwrap_or("");
            u16::from_str_radix(remote, 16) == Ok(port)
        })
        .count()
}

/// Publishes `value` on `topic` until the agent prints it as the sample `name`.
fn until_read(agent: &Agent, broker: &Broker, topic: &str, value: &str, name: &str) {
    let want: f64 = value.parse().unwrap();
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    loop {
        broker.publish(topic, value);
        let (lines, _) = agent.wait_for(Duration::from_millis(700), |_| false);
        out.extend(
            lines
                .into_iter()
                .filter_map(|l| l.strip_prefix("OUT ").map(str::to_string)),
        );
        let got = samples(&out.join("\n"));
        if got.get(name).and_then(|s| s["value"].as_f64()) == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "no {name} = {value}: {got:#?}");
    }
}

/// Writes `text` as the agent's config (with its `buffer_dir`) and waits for the reload.
fn reload_to(agent: &Agent, s: &Scratch, text: &str, buffer: &std::path::Path) {
    s.config(&format!("{text}buffer_dir: {}\n", buffer.display()));
    agent.signal(Signal::SIGHUP);
    let (lines, ok) = agent.wait_for(WAIT, |l| l.contains("reloaded"));
    assert!(ok, "no reload: {lines:#?}");
}

/// Waits until the agent has one `mqtt` thread and one connection to the broker.
fn until_one_connection(agent: &Agent, broker: &Broker) {
    let pid = agent.child.id();
    let deadline = Instant::now() + WAIT;
    loop {
        let (threads, conns) = (thread_names(pid), connections_to(pid, broker.port));
        if threads.iter().filter(|t| *t == "mqtt").count() == 1 && conns == 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "threads {threads:?}, {conns} connections: {}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An MQTT output that a reload adds joins the consumer's connection (reconnecting once with
/// its own client id and `offline` last will); one that a reload removes leaves it to the
/// consumer; one added again with the same options joins without reconnecting. The
/// consumer reads on throughout, never what the output publishes (a prefix of its own,
/// outside the default `ignore_topics`), and the agent keeps one thread and one connection.
#[test]
fn an_output_joins_and_leaves_the_consumers_connection_across_reloads() {
    let broker = Broker::anonymous();
    let s = Scratch::new();
    let port = broker.port;
    let consumer_only = format!(
        "hostname: joinhost\ninterval: 1s\nflush_interval: 1s\ninputs:\n  - mqtt_consumer:\n      \
         port: {port}\n      topics:\n        - topic: sensors/#\n          data_format: value\n        \
         - topic: house/#\n          data_format: value\noutputs:\n  - stdout:\n      format: json\n"
    );
    let with_output =
        format!("{consumer_only}  - mqtt:\n      port: {port}\n      topic_prefix: house/agent\n");
    let config = s.config(&consumer_only);
    let buffer = config.parent().unwrap().join("buffer");
    let agent = Agent::start(&config);
    let (lines, ok) = agent.wait_for(WAIT, |l| l.contains("mqtt_consumer: connected to"));
    assert!(ok, "the consumer did not connect: {lines:#?}");
    until_read(&agent, &broker, "sensors/t1", "1.5", "t1");
    let status = Sub::start(&broker, &["-t", "house/agent/status"]);
    let said = |want: &'static str| {
        let got = status.until(WAIT, |m| m.payload == want);
        assert!(got.iter().any(|m| m.payload == want), "no {want}: {got:#?}");
    };
    let reload = |text: &str| reload_to(&agent, &s, text, &buffer);
    let joins = |log: &str| log.matches("as rtcollector-joinhost (").count();

    // Joined: one reconnection, with the output's client id.
    reload(&with_output);
    said("online");
    until_one_connection(&agent, &broker);
    until_read(&agent, &broker, "sensors/t2", "2.5", "t2");
    let log = broker.log();
    assert_eq!(joins(&log), 1, "{log}");
    assert_eq!(
        log.matches("as rtcollector-in-joinhost (").count(),
        1,
        "{log}"
    );

    // Left: the consumer keeps the connection.
    reload(&consumer_only);
    said("offline");
    until_read(&agent, &broker, "sensors/t3", "3.5", "t3");
    until_one_connection(&agent, &broker);

    // Joined again with the options the connection has: no reconnection.
    reload(&with_output);
    said("online");
    until_read(&agent, &broker, "sensors/t4", "4.5", "t4");
    until_one_connection(&agent, &broker);
    assert_eq!(joins(&broker.log()), 1, "{}", broker.log());

    // Nothing the output published came back: `online` would be a malformed reading.
    let (lines, _) = agent.wait_for(Duration::from_secs(2), |_| false);
    let out: Vec<String> = lines
        .into_iter()
        .filter_map(|l| l.strip_prefix("OUT ").map(str::to_string))
        .collect();
    let got = samples(&out.join("\n"));
    let count = |result: &str| {
        got.get(&format!("mqtt_consumer_messages_total{{result={result}}}"))
            .and_then(|v| v["value"].as_f64())
    };
    assert_eq!(count("malformed"), Some(0.0), "{got:#?}");
    assert!(count("ignored").is_some_and(|n| n > 0.0), "{got:#?}");

    // The connection carries the output's last will.
    agent.signal(Signal::SIGKILL);
    said("offline");
}

/// VmRSS of a process, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// 50 000 messages/s for 10 s from 1 000 Tasmota plugs: memory stays bounded, and what the
/// agent could not take is counted (the channel's drops, series beyond `max_series`).
#[test]
fn a_flood_is_bounded_and_its_drops_are_counted() {
    let broker = Broker::start(
        "allow_anonymous true\nmax_queued_messages 100000\nmax_queued_bytes 0\n",
        Vec::new(),
    );
    let s = Scratch::new();
    let config = s.config(&format!(
        "hostname: floodhost\ninterval: 1s\nflush_interval: 1s\ninputs:\n  - mqtt_consumer:\n      \
         port: {}\n      max_series: 2000\n      queue_size: 1000\n      topics:\n        \
         - data_format: tasmota\noutputs:\n  - stdout:\n      format: json\n",
        broker.port
    ));
    let agent = Agent::start(&config);
    let (lines, ok) = agent.wait_for(WAIT, |l| l.contains("mqtt_consumer: connected to"));
    assert!(ok, "the consumer did not connect: {lines:#?}");
    let pid = agent.child.id();
    let before = rss_bytes(pid);

    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut flood = Flood::connect(broker.port, "flood");
    let (sent, _took) = flood.run(500_000, 50_000, |i, topic, payload| {
        let _ = std::fmt::Write::write_fmt(topic, format_args!("tele/plug{}/SENSOR", i % 1000));
        let _ = std::io::Write::write_fmt(
            payload,
            format_args!(
                r#"{{"ENERGY":{{"Total":{}.5,"Power":{},"Voltage":230,"Current":0.2}}}}"#,
                i / 1000,
                i % 100
            ),
        );
    });
    flood.close();
    // Enough collections for the counters to settle.
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    let (received, dropped, refused, series) = loop {
        let (lines, _) = agent.wait_for(Duration::from_millis(500), |_| false);
        out.extend(
            lines
                .into_iter()
                .filter_map(|l| l.strip_prefix("OUT ").map(str::to_string)),
        );
        let got = samples(&out.join("\n"));
        let v = |k: &str| got.get(k).and_then(|s| s["value"].as_f64()).unwrap_or(0.0);
        let counts = (
            v("mqtt_consumer_messages_total{result=received}"),
            v("mqtt_consumer_messages_total{result=dropped}"),
            v("mqtt_consumer_readings_dropped_total"),
            v("mqtt_consumer_series"),
        );
        out.retain(|l| l.contains("mqtt_consumer_"));
        // Settled: the channel is empty once received + dropped stops growing.
        std::thread::sleep(Duration::from_millis(1200));
        let (lines, _) = agent.wait_for(Duration::from_millis(100), |_| false);
        out.extend(
            lines
                .into_iter()
                .filter_map(|l| l.strip_prefix("OUT ").map(str::to_string)),
        );
        let again = samples(&out.join("\n"));
        let v2 = |k: &str| {
            again
                .get(k)
                .and_then(|s| s["value"].as_f64())
                .unwrap_or(0.0)
        };
        if counts.0 > 0.0 && v2("mqtt_consumer_messages_total{result=received}") == counts.0 {
            break counts;
        }
        assert!(
            Instant::now() < deadline,
            "the counters did not settle: {counts:?}"
        );
    };
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().unwrap();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "flood: sent {sent}, received {received}, dropped {dropped} (channel full), readings refused {refused}, series {series}, RSS {} KiB before, peak {} KiB",
        before / 1024,
        peak / 1024
    );
    assert_eq!(sent, 500_000);
    assert!(received + dropped <= sent as f64, "more than was sent");
    assert!(received > 0.0);
    // 1 000 plugs × 4 readings = 4 000 series, and room for 2 000: the rest counted.
    assert_eq!(series, 2000.0);
    assert!(
        refused > 0.0,
        "readings of series beyond max_series are counted"
    );
    // Bounded: a channel of 1 000 messages and 2 000 series, whatever the flood.
    assert!(
        peak < before + 48 * 1024 * 1024,
        "RSS grew from {before} to {peak} bytes"
    );
}

/// The agent's thread names, sorted.
fn thread_names(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect();
    names.sort();
    names
}

/// A reload that changes the output's broker options (here the host name of the same broker)
/// leaves the consumer on the old connection, which kept the output's client id: it goes
/// back to the consumer's own id before the new output connects, so the two never push each
/// other off the broker.
#[test]
fn an_output_that_moves_away_gets_its_client_id_back_from_the_consumers() {
    let broker = Broker::anonymous();
    let s = Scratch::new();
    let port = broker.port;
    let base = format!(
        "hostname: movehost\ninterval: 1s\nflush_interval: 1s\ninputs:\n  - mqtt_consumer:\n      \
         port: {port}\n      topics:\n        - topic: sensors/#\n          data_format: value\n\
         outputs:\n  - stdout:\n      format: json\n"
    );
    let on = |host: &str| format!("{base}  - mqtt:\n      host: {host}\n      port: {port}\n");
    let config = s.config(&on("127.0.0.1"));
    let buffer = config.parent().unwrap().join("buffer");
    let agent = Agent::start(&config);
    let status = Sub::start(&broker, &["-t", "rtcollector/movehost/status"]);
    let online = |m: &support::mosquitto::Msg| m.payload == "online";
    assert!(status.until(WAIT, online).iter().any(online));
    until_one_connection(&agent, &broker);

    reload_to(&agent, &s, &on("localhost"), &buffer);
    let (lines, ok) = agent.wait_for(WAIT, |l| l.contains("goes back to its own client id"));
    assert!(ok, "{lines:#?}");
    assert!(status.until(WAIT, online).iter().any(online));
    until_read(&agent, &broker, "sensors/t1", "1.5", "t1");
    // Both settled: the consumer's connection and the output's, each under its own id.
    std::thread::sleep(Duration::from_secs(3));
    until_read(&agent, &broker, "sensors/t2", "2.5", "t2");
    let log = broker.log();
    assert!(!log.contains("already connected"), "{log}");
    // The output's id: its first connection (or the one it joined and reconnected) and the
    // new one; the consumer's: now, and at the start if it connected before the output.
    assert_eq!(log.matches("as rtcollector-movehost (").count(), 2, "{log}");
    let consumer = log.matches("as rtcollector-in-movehost (").count();
    assert!((1..=2).contains(&consumer), "{log}");
    assert_eq!(connections_to(agent.child.id(), port), 2, "{log}");
    // And no more connections after a while.
    std::thread::sleep(Duration::from_secs(3));
    let agents = |log: &str| log.matches("as rtcollector-").count();
    assert_eq!(agents(&broker.log()), agents(&log), "{}", broker.log());
}

/// Two consumers of one broker share one `mqtt` thread and one connection, and both get
/// their messages; a consumer of another broker gets a thread of its own.
#[test]
fn consumers_of_one_broker_share_one_thread() {
    let broker = Broker::anonymous();
    let other = Broker::anonymous();
    let s = Scratch::new();
    let consumer = |port: u16, topic: &str, name: &str| {
        format!(
            "  - mqtt_consumer:\n      port: {port}\n      topics:\n        - topic: {topic}\n          name: {name}\n"
        )
    };
    let config = s.config(&format!(
        "hostname: sharehost\ninterval: 1s\nflush_interval: 1s\ninputs:\n{}{}outputs:\n  - stdout:\n      format: json\n",
        consumer(broker.port, "a/+x", "first"),
        consumer(broker.port, "b/+x", "second"),
    ));
    let agent = Agent::start(&config);
    let (lines, ok) = agent.wait_for(WAIT, |l| l.contains("mqtt_consumer: connected to"));
    assert!(ok, "the consumers did not connect: {lines:#?}");
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    loop {
        broker.publish("a/1", "1.5");
        broker.publish("b/2", "2.5");
        let (lines, _) = agent.wait_for(Duration::from_millis(700), |_| false);
        out.extend(
            lines
                .into_iter()
                .filter_map(|l| l.strip_prefix("OUT ").map(str::to_string)),
        );
        let got = samples(&out.join("\n"));
        let v = |k: &str| got.get(k).and_then(|s| s["value"].as_f64());
        if v("first{x=1}") == Some(1.5) && v("second{x=2}") == Some(2.5) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not both consumers' readings: {got:#?}"
        );
    }
    assert_eq!(
        thread_names(agent.child.id()),
        ["async-io", "mqtt", "rtcollector"]
    );
    // One connection: the broker logs one client connecting.
    let log = broker.log();
    assert_eq!(
        log.matches("as rtcollector-in-sharehost").count(),
        1,
        "{log}"
    );
    drop(agent);

    let config = s.config(&format!(
        "hostname: sharehost\ninterval: 1s\ninputs:\n{}{}outputs:\n  - stdout:\n      format: json\n",
        consumer(broker.port, "a/+x", "first"),
        consumer(other.port, "b/+x", "second"),
    ));
    let agent = Agent::start(&config);
    // A thread shows its parent's name until it has set its own: wait for the names.
    let want = ["async-io", "mqtt", "mqtt", "rtcollector"];
    let deadline = Instant::now() + WAIT;
    while thread_names(agent.child.id()) != want {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            thread_names(agent.child.id())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

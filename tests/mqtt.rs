//! The `mqtt` output against a real Mosquitto broker, started per test on a free loopback port
//! with its own config file and stopped by PID. What arrives is read back with a real
//! subscriber (`mosquitto_sub`), retained flag included (tests/support/mosquitto.rs).
//!
//! Needs `RTC_MOSQUITTO_BIN_DIR`, printed by `scripts/setup-mosquitto`:
//!
//! ```sh
//! export RTC_MOSQUITTO_BIN_DIR="$(scripts/setup-mosquitto)"
//! cargo test --test mqtt
//! ```
//!
//! Fails, never skips, without it.
#![cfg(feature = "mqtt")]

mod support;

use nix::sys::signal::Signal;
use rtcollector::core::{Output, OutputError, Sample, SeriesTable, SeriesView, WriteReport};
use rtcollector::outputs::mqtt::{build, Config, Mqtt};
use rtcollector::outputs::OutputCtx;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use support::agent::Agent;
use support::clock::now_ms;
use support::logs::{capture_logs, logs_containing};
use support::mosquitto::{bin_dir, by_topic, Broker, Msg, Sub};
use support::scratch::{fixture, Scratch};

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const SERIAL: &str = "3012345678";

// ---- the output driven from the library, with exact samples ----------------------------

/// Built and started, as the agent's output runner does before the first write.
fn output(yaml: &str) -> Mqtt {
    capture_logs();
    let cfg: Config = yaml_serde::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    let mut o = build(
        &cfg,
        &OutputCtx {
            hostname: "test".into(),
            key: "mqtt".into(),
        },
    )
    .unwrap_or_else(|e| panic!("{yaml}: {e}"));
    smol::block_on(o.start()).unwrap_or_else(|e| panic!("{yaml}: cannot start: {e}"));
    o
}

/// Name, labels, value.
type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// The series of the exact tests: a power, an energy counter, a temperature, a size and a
/// percentage with a `/` in a label value.
fn table() -> (RefCell<SeriesTable>, Vec<Sample>) {
    let mut t = SeriesTable::new("test", 100);
    let rows: [Row; 5] = [
        ("sma_meter_power_import_w", &[("serial", SERIAL)], 1234.5),
        (
            "sma_meter_energy_import_wh",
            &[("serial", SERIAL)],
            987654.0,
        ),
        ("sensor_temperature_c", &[("chip", "cpu")], 48.25),
        ("mem_used_bytes", &[], 1024.0),
        ("disk_used_percent", &[("path", "/")], 12.5),
    ];
    let batch = rows
        .iter()
        .map(|(name, labels, value)| Sample {
            series: t.intern(name, "", labels).unwrap(),
            ts_ms: T0,
            value: *value,
        })
        .collect();
    (RefCell::new(t), batch)
}

fn write(
    o: &mut Mqtt,
    table: &RefCell<SeriesTable>,
    batch: &[Sample],
) -> Result<WriteReport, OutputError> {
    smol::block_on(o.write(batch, SeriesView(table)))
}

/// Writes until the output has connected (the first writes say Retry while it connects).
fn write_ok(o: &mut Mqtt, table: &RefCell<SeriesTable>, batch: &[Sample]) -> WriteReport {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match write(o, table, batch) {
            Ok(r) => return r,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("no successful write within 15s: {e}"),
        }
    }
}

fn payloads(msgs: &[Msg], prefix: &str) -> BTreeMap<String, String> {
    by_topic(msgs)
        .into_iter()
        .filter(|(t, _)| t.starts_with(prefix) && !t.ends_with("/status"))
        .map(|(t, m)| (t, m.payload))
        .collect()
}

#[test]
fn value_layout_publishes_the_bare_number_on_one_topic_per_series() {
    let broker = Broker::anonymous();
    let sub = Sub::start(&broker, &[]);
    let (table, batch) = table();
    let mut o = output(&format!("port: {}\nhost: 127.0.0.1\n", broker.port));
    let report = write_ok(&mut o, &table, &batch);
    assert_eq!(
        report,
        WriteReport {
            written: 5,
            rejected: 0
        }
    );
    let got = sub.until(Duration::from_secs(10), |m| {
        m.topic == "rtcollector/test/disk_used_percent/_"
    });
    let want: BTreeMap<String, String> = [
        ("rtcollector/test/disk_used_percent/_", "12.5"),
        ("rtcollector/test/mem_used_bytes", "1024"),
        ("rtcollector/test/sensor_temperature_c/cpu", "48.25"),
        (
            "rtcollector/test/sma_meter_energy_import_wh/3012345678",
            "987654",
        ),
        (
            "rtcollector/test/sma_meter_power_import_w/3012345678",
            "1234.5",
        ),
    ]
    .iter()
    .map(|(t, p)| (t.to_string(), p.to_string()))
    .collect();
    assert_eq!(payloads(&got, "rtcollector/test/"), want, "{got:#?}");
    let status = by_topic(&got);
    assert_eq!(status["rtcollector/test/status"].payload, "online");
    assert!(
        got.iter()
            .all(|m| !m.retained || m.topic.starts_with("rtc-test/")),
        "samples are not retained by default: {got:#?}"
    );
    // A late subscriber sees the retained `online` only.
    let late = Sub::start(&broker, &[]);
    let retained = late.settle(Duration::from_millis(500));
    assert_eq!(
        retained,
        vec![Msg {
            retained: true,
            topic: "rtcollector/test/status".into(),
            payload: "online".into()
        }]
    );
}

#[test]
fn start_connects_before_any_write_and_close_says_offline_and_disconnects() {
    let broker = Broker::anonymous();
    let sub = Sub::start(&broker, &["-t", "life/#"]);
    // `output` starts it: online is out with no write yet.
    let mut o = output(&format!(
        "port: {}\nhost: 127.0.0.1\nclient_id: life\ntopic_prefix: life\n",
        broker.port
    ));
    let got = sub.until(Duration::from_secs(10), |m| {
        m.topic == "life/status" && m.payload == "online"
    });
    assert!(
        got.iter()
            .any(|m| m.topic == "life/status" && m.payload == "online"),
        "{got:#?}"
    );
    let (table, batch) = table();
    assert_eq!(write_ok(&mut o, &table, &batch).written, 5);
    smol::block_on(o.close());
    drop(sub);
    // Retained: a subscriber that comes later is told so.
    let later = Sub::start(&broker, &["-t", "life/status"]);
    let got = later.until(Duration::from_secs(10), |m| m.payload == "offline");
    assert!(
        got.iter().any(|m| m.payload == "offline" && m.retained),
        "{got:#?}"
    );
    // A DISCONNECT (no last will), sent before close returned: nothing is left to drop.
    assert!(
        broker.log().contains("Client life disconnected"),
        "{}",
        broker.log()
    );
    assert!(
        matches!(write(&mut o, &table, &batch), Err(OutputError::Retry(_))),
        "a closed output writes nothing"
    );
}

#[test]
fn json_layout_carries_value_timestamp_and_labels() {
    let broker = Broker::anonymous();
    let sub = Sub::start(&broker, &[]);
    let (table, batch) = table();
    let mut o = output(&format!(
        "port: {}\nhost: 127.0.0.1\nlayout: json\ntopic_prefix: home/agent\nretain: true\nqos: 2\n",
        broker.port
    ));
    write_ok(&mut o, &table, &batch);
    let got = sub.until(Duration::from_secs(10), |m| {
        m.topic == "home/agent/disk_used_percent/_"
    });
    let p = payloads(&got, "home/agent/");
    assert_eq!(p.len(), 5, "{got:#?}");
    let v: serde_json::Value =
        serde_json::from_str(&p["home/agent/sma_meter_power_import_w/3012345678"]).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"value": 1234.5, "timestamp_ms": T0,
            "labels": {"host": "test", "serial": SERIAL}})
    );
    let v: serde_json::Value = serde_json::from_str(&p["home/agent/disk_used_percent/_"]).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"value": 12.5, "timestamp_ms": T0,
            "labels": {"host": "test", "path": "/"}})
    );
    // `retain: true`: a late subscriber gets the last value of every series.
    let late = Sub::start(&broker, &[]);
    let retained = late.settle(Duration::from_millis(500));
    assert_eq!(payloads(&retained, "home/agent/"), p);
    assert!(retained.iter().all(|m| m.retained));
}

#[test]
fn batch_layout_sends_one_json_array_per_input_and_per_family_when_the_input_is_unknown() {
    let broker = Broker::anonymous();
    let sub = Sub::start(&broker, &[]);
    let (table, mut batch) = table();
    {
        // The SMA series come from an input; the others as if read back from an old buffer.
        let mut t = table.borrow_mut();
        let input = t.origin_id("sma_energy_meter");
        t.set_origin(batch[0].series, input);
        t.set_origin(batch[1].series, input);
    }
    // A second tick of the power series: both land in the same `sma` array, in order.
    batch.push(Sample {
        ts_ms: T0 + 1000,
        value: 1300.0,
        ..batch[0]
    });
    let mut o = output(&format!(
        "port: {}\nhost: 127.0.0.1\nlayout: batch\n",
        broker.port
    ));
    assert_eq!(write_ok(&mut o, &table, &batch).written, 6);
    let got = sub.until(Duration::from_secs(10), |m| {
        m.topic == "rtcollector/test/disk"
    });
    let p = payloads(&got, "rtcollector/test/");
    let topics: Vec<&str> = p.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        topics,
        [
            "rtcollector/test/disk",
            "rtcollector/test/mem",
            "rtcollector/test/sensor",
            "rtcollector/test/sma_energy_meter"
        ]
    );
    let sma: serde_json::Value =
        serde_json::from_str(&p["rtcollector/test/sma_energy_meter"]).unwrap();
    assert_eq!(
        sma,
        serde_json::json!([
            {"name": "sma_meter_power_import_w", "value": 1234.5, "timestamp_ms": T0,
             "labels": {"host": "test", "serial": SERIAL}},
            {"name": "sma_meter_energy_import_wh", "value": 987654, "timestamp_ms": T0,
             "labels": {"host": "test", "serial": SERIAL}},
            {"name": "sma_meter_power_import_w", "value": 1300, "timestamp_ms": T0 + 1000,
             "labels": {"host": "test", "serial": SERIAL}},
        ])
    );
    let mem: serde_json::Value = serde_json::from_str(&p["rtcollector/test/mem"]).unwrap();
    assert_eq!(
        mem,
        serde_json::json!([{"name": "mem_used_bytes", "value": 1024, "timestamp_ms": T0,
            "labels": {"host": "test"}}])
    );
}

fn config_of(msgs: &[Msg], object: &str) -> serde_json::Value {
    let topic = format!("homeassistant/sensor/test/{object}/config");
    let m = msgs
        .iter()
        .find(|m| m.topic == topic)
        .unwrap_or_else(|| panic!("no {topic} in {msgs:#?}"));
    serde_json::from_str(&m.payload)
        .unwrap_or_else(|e| panic!("{topic}: not JSON ({e}): {}", m.payload))
}

#[test]
fn home_assistant_discovery_is_retained_typed_by_unit_and_sent_again_after_a_birth() {
    let broker = Broker::anonymous();
    let (table, batch) = table();
    let mut o = output(&format!(
        "port: {}\nhost: 127.0.0.1\nhomeassistant: {{enabled: true}}\n",
        broker.port
    ));
    write_ok(&mut o, &table, &batch);
    // A subscriber that comes later (as Home Assistant after a restart) gets the configs,
    // retained.
    let sub = Sub::start(&broker, &["-t", "homeassistant/#"]);
    let retained = sub.settle(Duration::from_millis(700));
    let configs: Vec<&Msg> = retained
        .iter()
        .filter(|m| m.topic.starts_with("homeassistant/"))
        .collect();
    assert_eq!(configs.len(), 5, "one config per series: {retained:#?}");
    assert!(configs.iter().all(|m| m.retained), "{configs:#?}");

    // Issue 23: a `serial` label alone makes no device (no `_info` declared one), so these
    // series are the agent's; availability is a list (a declared device adds its own topic).
    let agent_device = serde_json::json!({"identifiers": ["rtcollector_test"], "name": "test",
        "manufacturer": "rtcollector", "model": "rtcollector agent",
        "sw_version": env!("CARGO_PKG_VERSION")});
    let power = config_of(&retained, "sma_meter_power_import_w_3012345678");
    assert_eq!(
        power,
        serde_json::json!({
            "name": "sma_meter_power_import_w",
            "unique_id": "rtcollector_test_sma_meter_power_import_w_3012345678",
            "object_id": "rtcollector_test_sma_meter_power_import_w_3012345678",
            "default_entity_id": "sensor.rtcollector_test_sma_meter_power_import_w_3012345678",
            "state_topic": "rtcollector/test/sma_meter_power_import_w/3012345678",
            "availability": [{"topic": "rtcollector/test/status",
                "payload_available": "online", "payload_not_available": "offline"}],
            "availability_mode": "all",
            "unit_of_measurement": "W",
            "device_class": "power",
            "state_class": "measurement",
            "device": agent_device
        })
    );
    let energy = config_of(&retained, "sma_meter_energy_import_wh_3012345678");
    assert_eq!(energy["device_class"], "energy");
    assert_eq!(energy["state_class"], "total_increasing");
    assert_eq!(energy["unit_of_measurement"], "Wh");
    assert_eq!(energy["device"], agent_device);
    let temp = config_of(&retained, "sensor_temperature_c_cpu");
    assert_eq!(
        (
            &temp["device_class"],
            &temp["state_class"],
            &temp["unit_of_measurement"]
        ),
        (
            &serde_json::json!("temperature"),
            &serde_json::json!("measurement"),
            &serde_json::json!("°C")
        )
    );
    assert_eq!(temp["name"], "sensor_temperature_c cpu");
    assert_eq!(temp["device"], agent_device);
    let bytes = config_of(&retained, "mem_used_bytes");
    assert_eq!(bytes["device_class"], "data_size");
    assert_eq!(bytes["unit_of_measurement"], "B");
    let pct = config_of(&retained, "disk_used_percent__");
    assert_eq!(pct["unit_of_measurement"], "%");
    assert!(pct.get("device_class").is_none());

    // Sent once per connection: the next flush has samples only.
    let live = Sub::start(&broker, &["-t", "homeassistant/#"]);
    let _ = live.settle(Duration::from_millis(300));
    write_ok(&mut o, &table, &batch);
    let again = live.settle(Duration::from_millis(500));
    assert!(
        again.iter().all(|m| !m.topic.starts_with("homeassistant/")),
        "{again:#?}"
    );
    // Home Assistant's birth message: the configs come again at the next flush.
    broker.publish("homeassistant/status", "online");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut resent = Vec::new();
    while resent.len() < 5 && Instant::now() < deadline {
        write_ok(&mut o, &table, &batch);
        resent.extend(
            live.settle(Duration::from_millis(200))
                .into_iter()
                .filter(|m| m.topic.ends_with("/config")),
        );
    }
    assert_eq!(resent.len(), 5, "{resent:#?}");
    assert_eq!(
        config_of(&resent, "sma_meter_power_import_w_3012345678"),
        power
    );
}

#[test]
fn include_and_exclude_patterns_filter_by_metric_name() {
    let broker = Broker::anonymous();
    let sub = Sub::start(&broker, &[]);
    let (table, batch) = table();
    // Everything `sma_` except energy; but an include match wins: `_percent$` is included
    // although `^disk` is excluded.
    let mut o = output(&format!(
        "port: {}\nhost: 127.0.0.1\ninclude_patterns: ['^sma_meter_power', '_percent$']\nexclude_patterns: ['^disk']\n",
        broker.port
    ));
    assert_eq!(write_ok(&mut o, &table, &batch).written, 2);
    let got = sub.until(Duration::from_secs(10), |m| {
        m.topic.contains("disk_used_percent")
    });
    let _ = got;
    let all: Vec<Msg> = got
        .into_iter()
        .chain(sub.settle(Duration::from_millis(500)))
        .collect();
    let topics: Vec<String> = payloads(&all, "rtcollector/test/").into_keys().collect();
    assert_eq!(
        topics,
        [
            "rtcollector/test/disk_used_percent/_",
            "rtcollector/test/sma_meter_power_import_w/3012345678"
        ]
    );
    let mut o = output(&format!(
        "port: {}\nhost: 127.0.0.1\nclient_id: second\ntopic_prefix: ex\nexclude_patterns: ['_wh$', '^mem']\n",
        broker.port
    ));
    assert_eq!(write_ok(&mut o, &table, &batch).written, 3);
    let got = sub.until(Duration::from_secs(10), |m| {
        m.topic == "ex/disk_used_percent/_"
    });
    let topics: Vec<String> = payloads(&got, "ex/").into_keys().collect();
    assert_eq!(
        topics,
        [
            "ex/disk_used_percent/_",
            "ex/sensor_temperature_c/cpu",
            "ex/sma_meter_power_import_w/3012345678"
        ]
    );
}

fn password_broker() -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwd");
    let out = Command::new(bin_dir().join("mosquitto_passwd"))
        .args(["-c", "-b"])
        .arg(&file)
        .args(["agent", "s3cret-pw"])
        .output()
        .expect("mosquitto_passwd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let broker = Broker::start(
        &format!("allow_anonymous false\npassword_file {}\n", file.display()),
        ["-u", "agent", "-P", "s3cret-pw"]
            .map(String::from)
            .to_vec(),
    );
    std::mem::forget(dir); // the broker reads the file at start and on reload
    broker
}

/// Writes until the output reports a Retry whose text contains `needle`.
fn retry_containing(
    o: &mut Mqtt,
    table: &RefCell<SeriesTable>,
    batch: &[Sample],
    needle: &str,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match write(o, table, batch) {
            Err(OutputError::Retry(m)) if m.contains(needle) => return m,
            Ok(r) => panic!("expected a failure with `{needle}`, got {r:?}"),
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no `{needle}` within 15s; last: {e}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn username_and_password_from_a_password_file() {
    let broker = password_broker();
    let sub = Sub::start(&broker, &[]);
    let (table, batch) = table();
    let mut o = output(&format!(
        "port: {}\nhost: 127.0.0.1\nusername: agent\npassword: s3cret-pw\n",
        broker.port
    ));
    assert_eq!(write_ok(&mut o, &table, &batch).written, 5);
    let got = sub.until(Duration::from_secs(10), |m| {
        m.topic == "rtcollector/test/mem_used_bytes"
    });
    assert_eq!(
        payloads(&got, "rtcollector/test/mem_used_bytes")["rtcollector/test/mem_used_bytes"],
        "1024"
    );

    let mut wrong = output(&format!(
        "port: {}\nhost: 127.0.0.1\nclient_id: wrong\nusername: agent\npassword: not-it\n",
        broker.port
    ));
    let msg = retry_containing(&mut wrong, &table, &batch, "refused");
    assert!(
        msg.contains("not authorized") || msg.contains("bad user name or password"),
        "{msg}"
    );
    let mut anonymous = output(&format!(
        "port: {}\nhost: 127.0.0.1\nclient_id: anon\n",
        broker.port
    ));
    retry_containing(&mut anonymous, &table, &batch, "not authorized");
    // Both keep retrying (0.5 s, 1 s, 2 s …) meanwhile, and log nothing new.
    std::thread::sleep(Duration::from_secs(4));
    let refused: Vec<String> = logs_containing("refused the connection: not authorized")
        .into_iter()
        .filter(|l| l.contains(&format!("127.0.0.1:{}", broker.port)))
        .collect();
    assert_eq!(
        refused.len(),
        2,
        "one line per output and state change, not one per attempt: {refused:#?}"
    );
    assert!(
        logs_containing("not-it").is_empty() && logs_containing("s3cret").is_empty(),
        "a password is never logged"
    );
}

#[cfg(feature = "tls")]
#[test]
fn tls_with_a_ca_made_at_test_time() {
    let certs = tempfile::tempdir().unwrap();
    let ca = support::certs::make_certs(certs.path(), "mqttca");
    let d = certs.path().display();
    let broker = Broker::start(
        &format!(
            "allow_anonymous true\ncafile {ca}\ncertfile {d}/mqttca-server.pem\nkeyfile {d}/mqttca-server.key\n",
            ca = ca.display()
        ),
        vec!["--cafile".into(), ca.display().to_string()],
    );
    let sub = Sub::start(&broker, &[]);
    let (table, batch) = table();
    let mut o = output(&format!(
        "port: {}\nhost: 127.0.0.1\nssl: true\nssl_ca_certs: {}\n",
        broker.port,
        ca.display()
    ));
    assert_eq!(write_ok(&mut o, &table, &batch).written, 5);
    let got = sub.until(Duration::from_secs(10), |m| {
        m.topic == "rtcollector/test/mem_used_bytes"
    });
    assert_eq!(
        payloads(&got, "rtcollector/test/mem_used_bytes")["rtcollector/test/mem_used_bytes"],
        "1024"
    );

    // Verification is on: another CA's broker is refused, with the reason.
    let other = tempfile::tempdir().unwrap();
    let other_ca = support::certs::make_certs(other.path(), "otherca");
    let mut o = output(&format!(
        "port: {}\nhost: 127.0.0.1\nclient_id: other\nssl: true\nssl_ca_certs: {}\n",
        broker.port,
        other_ca.display()
    ));
    let msg = retry_containing(&mut o, &table, &batch, "TLS failure");
    assert!(msg.contains("UnknownIssuer"), "{msg}");
    // Plain MQTT to the TLS port: the hint says so.
    let mut plain = output(&format!(
        "port: {}\nhost: 127.0.0.1\nclient_id: plain\n",
        broker.port
    ));
    let msg = retry_containing(&mut plain, &table, &batch, "hung up while connecting");
    assert!(msg.contains("set `ssl: true`"), "{msg}");
}

/// A broker whose certificate is self-signed and marked as a CA (`openssl req -x509`'s
/// default) is refused whatever ssl_ca_certs says; the message says what to remake.
#[cfg(feature = "tls")]
#[test]
fn tls_with_a_self_signed_ca_certificate_says_what_to_remake() {
    let certs = tempfile::tempdir().unwrap();
    support::certs::self_signed_cert(certs.path(), "as-ca", &[]);
    let d = certs.path().display();
    let broker = Broker::start(
        &format!("allow_anonymous true\ncertfile {d}/as-ca.pem\nkeyfile {d}/as-ca.key\n"),
        vec!["--cafile".into(), format!("{d}/as-ca.pem")],
    );
    let (table, batch) = table();
    let mut o = output(&format!(
        "port: {}\nhost: 127.0.0.1\nssl: true\nssl_ca_certs: {d}/as-ca.pem\n",
        broker.port
    ));
    let msg = retry_containing(&mut o, &table, &batch, "TLS failure");
    assert!(
        msg.contains("the broker's certificate is a CA certificate (CaUsedAsEndEntity);")
            && msg.contains("a broker's own, even with ssl_ca_certs set to it")
            && msg.contains("-addext basicConstraints=critical,CA:FALSE"),
        "{msg}"
    );
}

// ---- the built agent ---------------------------------------------------------------------

fn agent_config(s: &Scratch, host: &str, port: u16, extra: &str) -> PathBuf {
    let procfs = fixture("basic").join("proc");
    s.config(&format!(
        "hostname: {host}\ninterval: 1s\nflush_interval: 1s\nprocfs_root: {}\nbuffer_dir: {}\ninputs: [linux_mem]\noutputs:\n  - mqtt:\n      host: 127.0.0.1\n      port: {port}\n{extra}",
        procfs.display(),
        s.dir.path().join("buffer").display()
    ))
}

#[test]
fn the_agent_in_batch_layout_sends_each_inputs_samples_on_its_own_topic() {
    let broker = Broker::anonymous();
    let sub = Sub::start(&broker, &["-t", "rtcollector/batch/#"]);
    let s = Scratch::new();
    let procfs = fixture("basic").join("proc");
    let config = s.config(&format!(
        "hostname: batch\ninterval: 1s\nflush_interval: 1s\nprocfs_root: {}\nbuffer_dir: {}\ninputs: [linux_mem, system]\noutputs:\n  - mqtt:\n      host: 127.0.0.1\n      port: {}\n      layout: batch\n",
        procfs.display(),
        s.dir.path().join("buffer").display(),
        broker.port
    ));
    let _agent = Agent::start(&config);
    let mut seen: std::collections::BTreeMap<String, serde_json::Value> = Default::default();
    sub.until(Duration::from_secs(20), |m| {
        if m.topic != "rtcollector/batch/status" {
            let array = serde_json::from_str(&m.payload)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", m.topic, m.payload));
            seen.insert(m.topic.clone(), array);
        }
        seen.len() == 2
    });
    let topics: Vec<&str> = seen.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        topics,
        ["rtcollector/batch/linux_mem", "rtcollector/batch/system"]
    );
    let names = |topic: &str| -> Vec<String> {
        seen[topic]
            .as_array()
            .unwrap_or_else(|| panic!("{topic}: not an array"))
            .iter()
            .map(|item| item["name"].as_str().unwrap().to_string())
            .collect()
    };
    let mem = names("rtcollector/batch/linux_mem");
    assert!(mem.contains(&"mem_total_bytes".to_string()), "{mem:?}");
    assert!(mem.iter().all(|n| n.starts_with("mem_")), "{mem:?}");
    let system = names("rtcollector/batch/system");
    assert!(system.contains(&"system_load1".to_string()), "{system:?}");
    assert!(
        system.iter().all(|n| n.starts_with("system_")),
        "{system:?}"
    );
}

#[test]
fn the_last_will_says_offline_when_the_agent_is_killed() {
    let broker = Broker::anonymous();
    let sub = Sub::start(&broker, &["-t", "rtcollector/will/status"]);
    let s = Scratch::new();
    let agent = Agent::start(&agent_config(&s, "will", broker.port, ""));
    let got = sub.until(Duration::from_secs(15), |m| {
        m.topic == "rtcollector/will/status" && m.payload == "online"
    });
    assert!(got.iter().any(|m| m.payload == "online"), "{got:#?}");
    // Threads: main, smol's async-io and mqtt.
    let threads = std::fs::read_dir(format!("/proc/{}/task", agent.pid()))
        .unwrap()
        .count();
    assert!(threads <= 3, "{threads} threads with an MQTT output");
    agent.signal(Signal::SIGKILL);
    let got = sub.until(Duration::from_secs(15), |m| {
        m.topic == "rtcollector/will/status" && m.payload == "offline"
    });
    assert!(
        got.iter()
            .any(|m| m.topic == "rtcollector/will/status" && m.payload == "offline"),
        "{got:#?}"
    );
    // Retained: whoever looks later sees it too.
    let late = Sub::start(&broker, &["-t", "rtcollector/will/status"]);
    let retained = late.settle(Duration::from_millis(500));
    assert!(
        retained.contains(&Msg {
            retained: true,
            topic: "rtcollector/will/status".into(),
            payload: "offline".into()
        }),
        "{retained:#?}"
    );
}

#[test]
fn a_clean_stop_says_offline_and_the_first_flush_does_not_report_the_output_down() {
    let broker = Broker::anonymous();
    let sub = Sub::start(&broker, &["-t", "rtcollector/clean/#"]);
    let s = Scratch::new();
    let mut agent = Agent::start(&agent_config(&s, "clean", broker.port, ""));
    let got = sub.until(Duration::from_secs(15), |m| {
        m.topic == "rtcollector/clean/mem_total_bytes"
    });
    assert!(
        got.iter()
            .any(|m| m.topic == "rtcollector/clean/mem_total_bytes"),
        "{got:#?}"
    );
    agent.signal(Signal::SIGTERM);
    agent
        .wait_exit(Duration::from_secs(15))
        .expect("the agent stops on SIGTERM");
    let got = sub.until(Duration::from_secs(5), |m| {
        m.topic == "rtcollector/clean/status" && m.payload == "offline"
    });
    assert!(
        got.iter()
            .any(|m| m.topic == "rtcollector/clean/status" && m.payload == "offline"),
        "{got:#?}"
    );
    // A DISCONNECT (no last will): mosquitto logs "disconnected", not "closed its connection".
    assert!(
        broker
            .log()
            .contains("Client rtcollector-clean disconnected"),
        "{}",
        broker.log()
    );
    let lines = agent.drain();
    assert!(
        lines.iter().all(|l| !l.contains("is down")),
        "connecting is not an outage: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains(&format!(
            "output mqtt: connected to 127.0.0.1:{}",
            broker.port
        ))),
        "{lines:#?}"
    );
}

#[test]
fn a_reload_closes_the_old_output_before_the_new_one_connects_with_the_same_client_id() {
    let broker = Broker::anonymous();
    let sub = Sub::start(&broker, &["-t", "rtcollector/reload/status"]);
    let s = Scratch::new();
    let agent = Agent::start(&agent_config(&s, "reload", broker.port, ""));
    let online = |m: &Msg| m.payload == "online";
    let got = sub.until(Duration::from_secs(15), online);
    assert!(got.iter().any(online), "{got:#?}");
    agent.signal(Signal::SIGHUP);
    let (lines, reloaded) = agent.wait_for(Duration::from_secs(15), |l| l.contains("reloaded"));
    assert!(reloaded, "{lines:#?}");
    let mut payloads = Vec::new();
    sub.until(Duration::from_secs(15), |m| {
        payloads.push(m.payload.clone());
        m.payload == "online"
    });
    assert_eq!(
        payloads,
        ["offline", "online"],
        "a goodbye, then the new connection"
    );
    let log = broker.log();
    assert!(
        log.contains("Client rtcollector-reload disconnected"),
        "the old output sent DISCONNECT: {log}"
    );
    assert!(
        !log.contains("already connected"),
        "the new output did not have to take the client id over: {log}"
    );
}

/// A broker that stops reading (SIGSTOP) fills the client's request channel: writes end in
/// `write_timeout`, some while a message waits for room. Once the broker reads again, the
/// output is up again on the same connection: a write cut while waiting leaves no message
/// counted that was never handed over (which would keep every later write waiting for an
/// ack that cannot come, until a reconnection).
#[test]
fn writes_cut_by_write_timeout_on_a_full_channel_do_not_stall_the_connection() {
    let broker = Broker::anonymous();
    let s = Scratch::new();
    let procfs = fixture("basic").join("proc");
    // linux_mem ten times a second: about 150 QoS 1 messages a second, so the 100 in
    // flight and the 64 of the request channel fill within seconds.
    let config = s.config(&format!(
        "hostname: stall\ninterval: 100ms\nflush_interval: 1s\nprocfs_root: {}\nbuffer_dir: {}\ninputs: [linux_mem]\noutputs:\n  - mqtt:\n      host: 127.0.0.1\n      port: {}\n      qos: 1\n      write_timeout: 1s\n",
        procfs.display(),
        s.dir.path().join("buffer").display(),
        broker.port
    ));
    let agent = Agent::start(&config);
    let (lines, ok) = agent.wait_for(Duration::from_secs(15), |l| l.contains("connected to"));
    assert!(ok, "{lines:#?}");
    let pid = nix::unistd::Pid::from_raw(broker.pid().expect("broker runs") as i32);
    nix::sys::signal::kill(pid, Signal::SIGSTOP).unwrap();
    let (lines, down) = agent.wait_for(Duration::from_secs(20), |l| {
        l.contains("output mqtt is down") && l.contains("write_timeout")
    });
    // Several more writes cut, with the channel full by now.
    std::thread::sleep(Duration::from_secs(4));
    nix::sys::signal::kill(pid, Signal::SIGCONT).unwrap();
    assert!(
        down,
        "the writes did not time out: {lines:#?}\n{}",
        broker.log()
    );
    let (lines, up) = agent.wait_for(Duration::from_secs(20), |l| {
        l.contains("output mqtt is up again")
    });
    assert!(up, "the output stayed down: {lines:#?}\n{}", broker.log());
    assert_eq!(
        broker.log().matches("as rtcollector-stall (").count(),
        1,
        "one connection throughout: {}",
        broker.log()
    );
}

#[test]
fn qos1_samples_of_a_30s_broker_outage_arrive_after_the_restart() {
    // A broker that keeps sessions across restarts, and a subscriber with a persistent
    // session, so whatever the broker accepts arrives at the subscriber.
    let mut broker = Broker::start(
        "allow_anonymous true\npersistence true\npersistence_location $DIR/\nautosave_interval 1\n",
        Vec::new(),
    );
    let sub = Sub::start(
        &broker,
        &["-t", "rtcollector/gap/#", "-q", "1", "-c", "-i", "gap-sub"],
    );
    let s = Scratch::new();
    let agent = Agent::start(&agent_config(
        &s,
        "gap",
        broker.port,
        "      layout: json\n      qos: 1\n",
    ));
    let topic = "rtcollector/gap/mem_total_bytes";
    let stamp = |m: &Msg| -> Option<i64> {
        (m.topic == topic).then(|| {
            let v: serde_json::Value = serde_json::from_str(&m.payload).unwrap();
            v["timestamp_ms"].as_i64().unwrap()
        })
    };
    let mut stamps: Vec<i64> = Vec::new();
    let first = sub.until(Duration::from_secs(15), |m| stamp(m).is_some());
    stamps.extend(first.iter().filter_map(stamp));
    assert!(!stamps.is_empty(), "no sample before the outage");
    stamps.extend(
        sub.until(Duration::from_secs(2), |_| false)
            .iter()
            .filter_map(stamp),
    );
    broker.stop();
    let stopped = now_ms();
    std::thread::sleep(Duration::from_secs(30));
    broker.spawn();
    let restarted = now_ms();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stamps.last().is_none_or(|&t| t < restarted + 3000) && Instant::now() < deadline {
        stamps.extend(
            sub.until(Duration::from_secs(1), |_| false)
                .iter()
                .filter_map(stamp),
        );
    }
    stamps.sort_unstable();
    stamps.dedup();
    let from = stamps[0];
    let missing: Vec<i64> = (from..=restarted + 3000)
        .step_by(1000)
        .filter(|t| stamps.binary_search(t).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "every second from {from} through the outage ({stopped}..{restarted}) arrived; missing {missing:?}; agent: {:#?}",
        agent.drain()
    );
    let lines = agent.drain();
    let down: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("output mqtt: broker at") && l.contains("unreachable"))
        .collect();
    assert_eq!(down.len(), 1, "one line for the outage: {lines:#?}");
}

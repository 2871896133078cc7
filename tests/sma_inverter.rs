//! The `sma_inverter` input against pymodbus, an independent Modbus TCP implementation:
//! a simulated SMA inverter (tests/fixtures/sma_inverter/sim_inverter.py, started by
//! tests/support/pymodbus.rs) per test on a free loopback port, with register values chosen
//! here, killed by PID when dropped.
//!
//! Needs `RTC_PYMODBUS_PYTHON`, the python of a virtualenv with pymodbus 3.x:
//!
//! ```sh
//! export RTC_PYMODBUS_PYTHON="$(scripts/setup-pymodbus)"
//! cargo test --test sma_inverter
//! ```
//!
//! Nothing is skipped: without it, or when the simulator does not start, the tests fail.

#![cfg(feature = "modbus")]

mod support;

use nix::sys::signal::Signal;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use support::agent::{once_samples, Agent};
use support::pymodbus::Sim;
use support::samples::{samples, value};
use support::scratch::{fixture, Scratch};

fn inverter_yaml(name: &str, sim: &Sim, extra: &str) -> String {
    format!(
        "      - {{name: {name}, host: 127.0.0.1, port: {}{extra}}}\n",
        sim.port
    )
}

fn config(s: &Scratch, head: &str, inverters: &str, options: &str, more_inputs: &str) -> PathBuf {
    s.config(&format!(
        "hostname: testbox\nbuffer_dir: {}\n{head}inputs:\n  - sma_inverter:\n      inverters:\n{inverters}{options}{more_inputs}outputs:\n  - stdout:\n      format: json\n",
        s.dir.path().join("buffer").display()
    ))
}

/// Every default register with a value, as the simulator takes them.
fn full_values() -> Value {
    json!({
        "30057": ["u32", 1_234_567_890u32],
        "30201": ["u32", 307],
        "30217": ["u32", 51],
        "30513": ["u64", 123_456_789_012u64],
        "30517": ["u64", 12_345],
        "30769": ["s32", 8_123],
        "30771": ["s32", 61_234],
        "30773": ["s32", 4_975],
        "30775": ["s32", -25],
        "30777": ["s32", -8],
        "30779": ["s32", -9],
        "30781": ["s32", -8],
        "30783": ["u32", 23_012],
        "30785": ["u32", 23_105],
        "30787": ["u32", 22_998],
        "30795": ["u32", 21_567],
        "30803": ["u32", 5_002],
        "30953": ["s32", -53],
        "30957": ["s32", 1_500],
        "30959": ["s32", 45_210],
        "30961": ["s32", 0]
    })
}

const SERIAL: &str = "1234567890";

fn key(name: &str, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(",{extra}")
    };
    // key_of sorts labels by key: `condition`, `inverter`, `phase`, `serial`, `string`.
    let mut labels: Vec<String> = vec![format!("inverter=roof"), format!("serial={SERIAL}")];
    labels.extend(
        extra
            .split(',')
            .filter(|l| !l.is_empty())
            .map(str::to_string),
    );
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

#[test]
fn every_default_metric_is_read_and_scaled_in_four_requests() {
    let sim = Sim::start(json!({"unit": 3, "values": full_values()}));
    let s = Scratch::new();
    let path = config(&s, "", &inverter_yaml("roof", &sim, ""), "", "");
    let (got, err) = once_samples(&path);
    let expected: &[(&str, &str, f64)] = &[
        ("sma_inverter_condition", "condition=ok", 307.0),
        ("sma_inverter_grid_relay", "", 51.0),
        ("sma_inverter_energy_total_wh", "", 123_456_789_012.0),
        ("sma_inverter_energy_today_wh", "", 12_345.0),
        ("sma_inverter_dc_current_a", "string=a", 8.123),
        ("sma_inverter_dc_voltage_v", "string=a", 612.34),
        ("sma_inverter_dc_power_w", "string=a", 4_975.0),
        ("sma_inverter_ac_power_w", "", -25.0),
        ("sma_inverter_ac_power_w", "phase=L1", -8.0),
        ("sma_inverter_ac_power_w", "phase=L2", -9.0),
        ("sma_inverter_ac_power_w", "phase=L3", -8.0),
        ("sma_inverter_grid_voltage_v", "phase=L1", 230.12),
        ("sma_inverter_grid_voltage_v", "phase=L2", 231.05),
        ("sma_inverter_grid_voltage_v", "phase=L3", 229.98),
        ("sma_inverter_grid_current_a", "", 21.567),
        ("sma_inverter_frequency_hz", "", 50.02),
        ("sma_inverter_temperature_c", "", -5.3),
        ("sma_inverter_dc_current_a", "string=b", 1.5),
        ("sma_inverter_dc_voltage_v", "string=b", 452.1),
        ("sma_inverter_dc_power_w", "string=b", 0.0),
    ];
    for (name, labels, want) in expected {
        assert_eq!(value(&got, &key(name, labels)), *want, "{name}{{{labels}}}");
    }
    assert_eq!(value(&got, "sma_inverter_up{inverter=roof}"), 1.0);
    // The device declaration for Home Assistant discovery (issue 23).
    assert_eq!(
        value(
            &got,
            "sma_inverter_info{inverter=roof,manufacturer=SMA,model=SMA Inverter,serial=1234567890}"
        ),
        1.0
    );
    assert_eq!(got.len(), expected.len() + 2, "{:#?}", got.keys());
    assert!(!err.contains("WARN"), "{err}");
    // One serial read when connecting, then the four blocks of the plan.
    assert_eq!(
        sim.requests(),
        [
            "fc=3 unit=3 addr=30057 count=2 -> ok",
            "fc=3 unit=3 addr=30201 count=18 -> ok",
            "fc=3 unit=3 addr=30513 count=8 -> ok",
            "fc=3 unit=3 addr=30769 count=36 -> ok",
            "fc=3 unit=3 addr=30953 count=10 -> ok",
        ]
    );
}

#[test]
fn nan_markers_give_no_sample_and_input_registers_work() {
    let mut values = full_values();
    let nan = |words: &[u16]| json!(["raw", words]);
    let v = values.as_object_mut().unwrap();
    v.insert("30217".into(), nan(&[0x00FF, 0xFFFD])); // enum
    v.insert("30513".into(), nan(&[0xFFFF; 4])); // u64
    v.insert("30775".into(), nan(&[0x8000, 0x0000])); // s32
    v.insert("30959".into(), nan(&[0x7FFF, 0xFFFF])); // s32, evcc's second marker
    v.insert("30787".into(), nan(&[0xFFFF, 0xFFFF])); // u32
    v.insert("30201".into(), nan(&[0xFFFF, 0xFFFF])); // enum, all ones
    let sim = Sim::start(json!({"unit": 3, "values": values}));
    let s = Scratch::new();
    let path = config(
        &s,
        "",
        &inverter_yaml("roof", &sim, ""),
        "      function: input\n",
        "",
    );
    let (got, _) = once_samples(&path);
    for gone in [
        key("sma_inverter_grid_relay", ""),
        key("sma_inverter_energy_total_wh", ""),
        key("sma_inverter_ac_power_w", ""),
        key("sma_inverter_dc_voltage_v", "string=b"),
        key("sma_inverter_grid_voltage_v", "phase=L3"),
    ] {
        assert!(!got.contains_key(&gone), "NaN gave a sample: {gone}");
    }
    assert!(
        !got.keys().any(|k| k.starts_with("sma_inverter_condition")),
        "{got:#?}"
    );
    assert_eq!(
        value(&got, &key("sma_inverter_energy_today_wh", "")),
        12_345.0
    );
    assert_eq!(
        value(&got, &key("sma_inverter_ac_power_w", "phase=L2")),
        -9.0
    );
    assert_eq!(got.len(), 20 - 6 + 2, "{:#?}", got.keys()); // + up, info
    assert!(sim.requests().iter().all(|l| l.starts_with("fc=4 ")));
}

#[test]
fn unit_id_auto_asks_register_42109_on_unit_1() {
    let sim = Sim::start(json!({"unit": 7, "unit_query": true, "values": full_values()}));
    let s = Scratch::new();
    let path = config(
        &s,
        "",
        &inverter_yaml("roof", &sim, ", unit_id: auto"),
        "",
        "",
    );
    let (got, _) = once_samples(&path);
    assert_eq!(value(&got, &key("sma_inverter_frequency_hz", "")), 50.02);
    let requests = sim.requests();
    assert_eq!(requests[0], "fc=3 unit=1 addr=42109 count=4 -> ok");
    assert!(
        requests[1..].iter().all(|l| l.contains("unit=7 ")),
        "{requests:#?}"
    );
}

#[test]
fn an_exception_on_a_block_leads_to_per_register_reads_once() {
    let sim = Sim::start(json!({"unit": 3, "reject": [30795], "values": full_values()}));
    let s = Scratch::new();
    let path = config(
        &s,
        "interval: 1s\nflush_interval: 200ms\n",
        &inverter_yaml("roof", &sim, ""),
        "",
        "",
    );
    let mut agent = Agent::start(&path);
    // Three cycles: the first splits the block, the next ones use the new plan.
    let (lines, ok) = agent.wait_for(Duration::from_secs(30), |_| {
        sim.requests()
            .iter()
            .filter(|l| l.contains("addr=30201 "))
            .count()
            >= 3
    });
    assert!(ok, "three cycles: {lines:#?}\n{:#?}", sim.requests());
    // The outcome of the split is on stdout of the first and later cycles alike.
    let (more, ok) = agent.wait_for(Duration::from_secs(10), |l| {
        l.contains("sma_inverter_frequency_hz")
    });
    assert!(ok, "{more:#?}");
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(6)).expect("exit");
    let mut all = lines;
    all.extend(more);
    all.extend(agent.drain());
    let out: String = all
        .iter()
        .filter_map(|l| l.strip_prefix("OUT "))
        .map(|l| format!("{l}\n"))
        .collect();
    let got = samples(&out);
    assert!(!got.contains_key(&key("sma_inverter_grid_current_a", "")));
    assert_eq!(value(&got, &key("sma_inverter_frequency_hz", "")), 50.02);
    assert_eq!(
        value(&got, &key("sma_inverter_grid_voltage_v", "phase=L3")),
        229.98
    );

    let requests = sim.requests();
    let cycle1: Vec<&str> = requests[..16].iter().map(String::as_str).collect();
    assert_eq!(
        cycle1,
        [
            "fc=3 unit=3 addr=30057 count=2 -> ok",
            "fc=3 unit=3 addr=30201 count=18 -> ok",
            "fc=3 unit=3 addr=30513 count=8 -> ok",
            "fc=3 unit=3 addr=30769 count=36 -> exception",
            "fc=3 unit=3 addr=30769 count=2 -> ok",
            "fc=3 unit=3 addr=30771 count=2 -> ok",
            "fc=3 unit=3 addr=30773 count=2 -> ok",
            "fc=3 unit=3 addr=30775 count=2 -> ok",
            "fc=3 unit=3 addr=30777 count=2 -> ok",
            "fc=3 unit=3 addr=30779 count=2 -> ok",
            "fc=3 unit=3 addr=30781 count=2 -> ok",
            "fc=3 unit=3 addr=30783 count=2 -> ok",
            "fc=3 unit=3 addr=30785 count=2 -> ok",
            "fc=3 unit=3 addr=30787 count=2 -> ok",
            "fc=3 unit=3 addr=30795 count=2 -> exception",
            "fc=3 unit=3 addr=30803 count=2 -> ok",
        ]
    );
    let later: Vec<&str> = requests[16..].iter().map(String::as_str).collect();
    assert_eq!(
        later[..6],
        [
            "fc=3 unit=3 addr=30953 count=10 -> ok",
            "fc=3 unit=3 addr=30201 count=18 -> ok",
            "fc=3 unit=3 addr=30513 count=8 -> ok",
            "fc=3 unit=3 addr=30769 count=20 -> ok",
            "fc=3 unit=3 addr=30803 count=2 -> ok",
            "fc=3 unit=3 addr=30953 count=10 -> ok",
        ]
    );
    assert!(!later.iter().any(|l| l.contains("exception")), "{later:#?}");
    let splits = all
        .iter()
        .filter(|l| l.starts_with("ERR") && l.contains("rejected registers 30769..30804"))
        .count();
    assert_eq!(splits, 1, "{all:#?}");
}

#[test]
fn a_silent_inverter_hits_the_timeout_and_other_inputs_keep_their_schedule() {
    let silent = Sim::start_with(json!({"unit": 3, "values": full_values()}), true);
    let s = Scratch::new();
    let root = fixture("basic");
    // The inverter's timeout is longer than every interval: a stalled schedule would show.
    let path = config(
        &s,
        &format!(
            "interval: 1s\nflush_interval: 200ms\nprocfs_root: {}\nsysfs_root: {}\n",
            root.join("proc").display(),
            root.join("sys").display()
        ),
        &inverter_yaml("roof", &silent, ""),
        "      timeout: 4s\n",
        "  - linux_mem\n",
    );
    let mut agent = Agent::start(&path);
    let stamps = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let (lines, ok) = agent.wait_for(Duration::from_secs(30), |l| {
        if l.contains("\"mem_total_bytes\"") {
            let v: Value = serde_json::from_str(l.strip_prefix("OUT ").unwrap()).unwrap();
            stamps
                .borrow_mut()
                .insert(v["timestamp_ms"].as_i64().unwrap());
        }
        stamps.borrow().len() >= 5
    });
    assert!(ok, "linux_mem ran 5 times: {lines:#?}");
    // By now the inverter's first request has timed out (4 s < 5 runs of 1 s).
    let (more, ok) = agent.wait_for(Duration::from_secs(10), |l| {
        l.contains("sma_inverter_up") && l.contains("\"value\":0")
    });
    assert!(ok, "{lines:#?}\n{more:#?}");
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(6)).expect("exit");
    let mut all = lines;
    all.extend(more);
    all.extend(agent.drain());
    let silences: Vec<&String> = all
        .iter()
        .filter(|l| l.contains("is not answering"))
        .collect();
    assert_eq!(silences.len(), 1, "{all:#?}");
    assert!(
        silences[0].contains("no answer to a read request within the timeout"),
        "{silences:?}"
    );
    assert!(
        silent.requests().iter().any(|l| l.ends_with("-> silent")),
        "the request reached the simulator"
    );
}

#[test]
fn a_restarted_inverter_is_read_again_with_one_log_line_each_way() {
    let mut sim = Sim::start(json!({"unit": 3, "values": full_values()}));
    let s = Scratch::new();
    // debug: the retries the agent makes quietly are in the failure message. The default
    // timeout (3s): a simulator slowed down by a busy machine must not fail the first read
    // after the restart, which would put the next attempt one backoff step (16-32 s) later.
    let path = config(
        &s,
        "interval: 1s\nflush_interval: 200ms\ndebug: true\n",
        &inverter_yaml("roof", &sim, ""),
        "",
        "",
    );
    let mut agent = Agent::start(&path);
    let up = |v: u8| {
        move |l: &str| l.contains("sma_inverter_up") && l.contains(&format!("\"value\":{v}"))
    };
    let (mut all, ok) = agent.wait_for(Duration::from_secs(20), up(1));
    assert!(ok, "{all:#?}");
    sim.stop();
    let (lines, ok) = agent.wait_for(Duration::from_secs(20), up(0));
    all.extend(lines);
    assert!(ok, "{all:#?}");
    // Several cycles down, then the same port again.
    let (lines, _) = agent.wait_for(Duration::from_secs(3), |_| false);
    all.extend(lines);
    sim.spawn();
    // Attempts back off 1, 2, 4, 8, 16, 32 s after the stop: the next one may be half a
    // minute away, and a failed one puts the one after that up to a minute later.
    let (lines, ok) = agent.wait_for(Duration::from_secs(75), |l| l.contains("answers again"));
    all.extend(lines);
    assert!(ok, "{all:#?}");
    let (lines, ok) = agent.wait_for(Duration::from_secs(20), |l| {
        l.contains("sma_inverter_frequency_hz") && l.contains("50.02")
    });
    all.extend(lines);
    assert!(ok, "{all:#?}");
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(6)).expect("exit");
    all.extend(agent.drain());
    let logged = |needle: &str| {
        all.iter()
            .filter(|l| l.starts_with("ERR") && !l.contains("[DEBUG]") && l.contains(needle))
            .count()
    };
    assert_eq!(logged("is not answering"), 1, "{all:#?}");
    assert_eq!(logged("answers again"), 1, "{all:#?}");
    assert_eq!(logged("closed the connection"), 1, "{all:#?}");
    assert_eq!(
        logged("input sma_inverter"),
        0,
        "silence is not an input error: {all:#?}"
    );
}

/// pymodbus only logs a failed bind: the simulator must say so and exit, or a restart on a
/// taken port would print READY and the test would wait for an inverter that is not there.
/// While a simulator is stopped its port stays reserved, so nothing else can take it.
#[test]
fn a_simulator_that_cannot_listen_exits_with_the_reason_and_a_stopped_ones_port_stays_held() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = taken.local_addr().expect("its address").port();
    let s = Scratch::new();
    let cfg = s.write(
        "sim.json",
        &json!({"unit": 3, "values": full_values()}).to_string(),
    );
    let file = |name: &str| std::fs::File::create(s.dir.path().join(name)).expect("create");
    let mut child = std::process::Command::new(support::pymodbus::python())
        .arg(support::pymodbus::script())
        .args(["--port", &port.to_string(), "--config"])
        .arg(&cfg)
        .stdout(file("stdout"))
        .stderr(file("stderr"))
        .spawn()
        .expect("run the simulator");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |name: &str| std::fs::read_to_string(s.dir.path().join(name)).expect("read");
    let err = read("stderr");
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    assert_eq!(read("stdout"), "", "no READY: {err}");
    assert!(
        err.contains(&format!(
            "sim_inverter: cannot listen on 127.0.0.1:{port}: "
        )) && err.contains("Address already in use"),
        "{err}"
    );

    let mut sim = Sim::start(json!({"unit": 3, "values": full_values()}));
    sim.stop();
    // A bind without SO_REUSEADDR, as for another program's server or an outgoing
    // connection's source port (std's TcpListener sets SO_REUSEADDR, so not that).
    let plain = rustix::net::socket_with(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .expect("a socket");
    let other = rustix::net::bind(
        &plain,
        &std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, sim.port),
    );
    assert_eq!(
        other,
        Err(rustix::io::Errno::ADDRINUSE),
        "port {}",
        sim.port
    );
    let refused = std::net::TcpStream::connect(("127.0.0.1", sim.port));
    assert!(
        refused.is_err(),
        "a stopped simulator answered: {refused:?}"
    );
    sim.spawn();
    std::net::TcpStream::connect(("127.0.0.1", sim.port)).expect("the restarted simulator");
}

#[test]
fn two_inverters_are_read_in_one_collection_with_their_own_labels() {
    let roof = Sim::start(json!({"unit": 3, "values": full_values()}));
    let mut garage_values = full_values();
    let g = garage_values.as_object_mut().unwrap();
    g.insert("30057".into(), json!(["u32", 99]));
    g.insert("30775".into(), json!(["s32", 3210]));
    g.insert("30201".into(), json!(["u32", 455]));
    let garage = Sim::start(json!({"unit": 4, "values": garage_values}));
    let s = Scratch::new();
    let inverters =
        inverter_yaml("roof", &roof, "") + &inverter_yaml("garage", &garage, ", unit_id: 4");
    let path = config(&s, "", &inverters, "", "");
    let (got, _) = once_samples(&path);
    assert_eq!(value(&got, &key("sma_inverter_ac_power_w", "")), -25.0);
    assert_eq!(
        value(&got, "sma_inverter_ac_power_w{inverter=garage,serial=99}"),
        3210.0
    );
    assert_eq!(
        value(
            &got,
            "sma_inverter_condition{condition=warning,inverter=garage,serial=99}"
        ),
        455.0
    );
    assert_eq!(value(&got, "sma_inverter_up{inverter=garage}"), 1.0);
    assert_eq!(value(&got, "sma_inverter_up{inverter=roof}"), 1.0);
    assert_eq!(got.len(), 2 * 22); // each with its up and info
}

#[test]
fn a_hanging_inverter_does_not_hold_back_the_other_in_the_same_collection() {
    let good = Sim::start(json!({"unit": 3, "values": full_values()}));
    let hung = Sim::start_with(json!({"unit": 3, "values": full_values()}), true);
    let s = Scratch::new();
    let inverters = inverter_yaml("roof", &good, "") + &inverter_yaml("hung", &hung, "");
    let path = config(&s, "", &inverters, "      timeout: 2s\n", "");
    let (got, err) = once_samples(&path);
    assert_eq!(value(&got, &key("sma_inverter_frequency_hz", "")), 50.02);
    assert_eq!(value(&got, "sma_inverter_up{inverter=hung}"), 0.0);
    assert_eq!(err.matches("is not answering").count(), 1, "{err}");
    // Concurrent reads: the good inverter's five requests all reached its simulator.
    assert_eq!(good.requests().len(), 5);
}

#[test]
fn battery_and_custom_registers_are_read_in_the_same_plan() {
    let mut values = full_values();
    let v = values.as_object_mut().unwrap();
    for (addr, kind, raw) in [
        ("30843", "s32", -12_345i64),
        ("30845", "u32", 87),
        ("30849", "s32", 215),
        ("30851", "u32", 52_310),
        ("31393", "u32", 0),
        ("31395", "u32", 2_750),
        ("30805", "s32", -420),
    ] {
        v.insert(addr.into(), json!([kind, raw]));
    }
    let sim = Sim::start(json!({"unit": 3, "values": values}));
    let s = Scratch::new();
    let path = config(
        &s,
        "",
        &inverter_yaml("roof", &sim, ", battery: true"),
        "      registers:\n        - default\n        - {address: 30805, type: s32, name: sma_inverter_reactive_power_var, unit: var, labels: {kind: grid}}\n",
        "",
    );
    let (got, _) = once_samples(&path);
    for (name, labels, want) in [
        ("sma_inverter_battery_current_a", "", -12.345),
        ("sma_inverter_battery_soc_percent", "", 87.0),
        ("sma_inverter_battery_temperature_c", "", 21.5),
        ("sma_inverter_battery_voltage_v", "", 523.1),
        ("sma_inverter_battery_charge_power_w", "", 0.0),
        ("sma_inverter_battery_discharge_power_w", "", 2_750.0),
        ("sma_inverter_reactive_power_var", "kind=grid", -420.0),
        ("sma_inverter_frequency_hz", "", 50.02),
    ] {
        assert_eq!(value(&got, &key(name, labels)), want, "{name}");
    }
    assert_eq!(got.len(), 22 + 7);
    // The battery block joins the DC block; 30805 fits in it too; 31393 is one more read.
    let reads: Vec<String> = sim.requests()[1..].to_vec();
    assert_eq!(
        reads,
        [
            "fc=3 unit=3 addr=30201 count=18 -> ok",
            "fc=3 unit=3 addr=30513 count=8 -> ok",
            "fc=3 unit=3 addr=30769 count=84 -> ok",
            "fc=3 unit=3 addr=30953 count=10 -> ok",
            "fc=3 unit=3 addr=31393 count=4 -> ok",
        ]
    );
}

#[test]
fn a_block_refused_register_by_register_too_is_reported_as_an_error() {
    let sim = Sim::start(json!({
        "unit": 3,
        "reject": [30953, 30957, 30959, 30961],
        "values": full_values()
    }));
    let s = Scratch::new();
    let path = config(&s, "", &inverter_yaml("roof", &sim, ""), "", "");
    let (got, err) = once_samples(&path);
    assert!(!got.contains_key(&key("sma_inverter_temperature_c", "")));
    assert_eq!(value(&got, &key("sma_inverter_frequency_hz", "")), 50.02);
    assert_eq!(got.len(), 22 - 4);
    assert!(
        err.contains("input sma_inverter: inverter roof: registers 30953..30962 refused"),
        "{err}"
    );
    let requests = sim.requests();
    let tail: Vec<&str> = requests[requests.len() - 5..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "fc=3 unit=3 addr=30953 count=10 -> exception",
            "fc=3 unit=3 addr=30953 count=2 -> exception",
            "fc=3 unit=3 addr=30957 count=2 -> exception",
            "fc=3 unit=3 addr=30959 count=2 -> exception",
            "fc=3 unit=3 addr=30961 count=2 -> exception",
        ]
    );
}

//! The `otlp` output into a receiver that decodes with the OpenTelemetry project's own
//! protobuf bindings (tests/support/otlp_receiver.py; Debian's Prometheus is built without
//! its OTLP receiver): exact values, counters as monotonic cumulative sums, the resource's
//! `host.name` and `service.name`, the endpoint and headers from the standard
//! OTEL_EXPORTER_OTLP_* environment; the receiver down for a while: every second arrives.
//!
//! Needs `RTC_OTLP_PYTHON` (see tests/support/otlp.rs); fails, never skips, without it.
#![cfg(feature = "otlp")]

mod support;

use serde_json::Value;
use std::time::Duration;
use support::agent::Agent;
use support::otlp::Receiver;
use support::scratch::{fixture, fixture_mem_total_bytes, Scratch};
use support::wait::wait_until;

fn start_agent(s: &Scratch, rx: &Receiver) -> Agent {
    let config = s.config(&format!(
        "hostname: otlptest\ninterval: 1s\nflush_interval: 1s\nprocfs_root: {}\nbuffer_dir: {}\n\
         inputs: [linux_mem, linux_net]\noutputs:\n  - otlp:\n      timeout: 2s\n",
        fixture("basic").join("proc").display(),
        s.dir.path().join("buffer").display(),
    ));
    let endpoint = format!("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{}", rx.port);
    Agent::start_under(
        &[
            "env",
            &endpoint,
            "OTEL_EXPORTER_OTLP_HEADERS=X-Scope-OrgID=home",
        ],
        &config,
    )
}

/// Every metric named `name` in `requests`, as (its JSON, the resource's attributes).
fn metrics<'a>(requests: &'a [Value], name: &str) -> Vec<(&'a Value, &'a Value)> {
    let mut out = Vec::new();
    for r in requests {
        for rm in r["request"]["resourceMetrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                for m in sm["metrics"].as_array().into_iter().flatten() {
                    if m["name"] == name {
                        out.push((m, &rm["resource"]["attributes"]));
                    }
                }
            }
        }
    }
    out
}

fn attribute<'a>(attrs: &'a Value, key: &str) -> Option<&'a str> {
    attrs.as_array()?.iter().find(|a| a["key"] == key)?["value"]["stringValue"].as_str()
}

/// (time in ms, value) of every data point of `name`.
fn points(requests: &[Value], name: &str, data: &str) -> Vec<(i64, f64)> {
    metrics(requests, name)
        .iter()
        .flat_map(|(m, _)| {
            m[data]["dataPoints"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|p| {
            let ns: i64 = p["timeUnixNano"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(-1);
            (ns / 1_000_000, p["asDouble"].as_f64().unwrap_or(f64::NAN))
        })
        .collect()
}

#[test]
fn a_receiver_gets_exact_values_counters_as_sums_and_the_resource() {
    let rx = Receiver::start();
    let s = Scratch::new();
    let _agent = start_agent(&s, &rx);
    assert!(
        wait_until(Duration::from_secs(30), || !metrics(
            &rx.received(),
            "net_rx_bytes"
        )
        .is_empty()),
        "nothing arrived\n{}",
        rx.log()
    );
    let got = rx.received();
    let first = &got[0];
    assert_eq!(first["path"], "/v1/metrics", "{first}");
    assert_eq!(first["headers"]["X-Scope-OrgID"], "home", "{first}");
    assert_eq!(first["headers"]["Content-Type"], "application/x-protobuf");

    let mem = metrics(&got, "mem_total_bytes");
    let (m, resource) = mem[0];
    assert_eq!(attribute(resource, "host.name"), Some("otlptest"));
    assert_eq!(attribute(resource, "service.name"), Some("rtcollector"));
    let p = &m["gauge"]["dataPoints"][0];
    assert_eq!(
        p["asDouble"].as_f64(),
        Some(fixture_mem_total_bytes()),
        "{m}"
    );
    assert_eq!(attribute(&p["attributes"], "host"), Some("otlptest"));
    let ns: i64 = p["timeUnixNano"].as_str().unwrap().parse().unwrap();
    assert_eq!(ns % 1_000_000_000, 0, "on the second");

    let (rx_m, _) = metrics(&got, "net_rx_bytes")[0];
    let sum = &rx_m["sum"];
    assert_eq!(
        sum["aggregationTemporality"], "AGGREGATION_TEMPORALITY_CUMULATIVE",
        "{rx_m}"
    );
    assert_eq!(sum["isMonotonic"], true);
    let eth0 = sum["dataPoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| attribute(&p["attributes"], "iface") == Some("eth0"))
        .expect("eth0");
    assert_eq!(eth0["asDouble"].as_f64(), Some(98_765_432_101.0));
    assert!(
        metrics(&got, "net_rx_bytes_rate").is_empty(),
        "rates are left out"
    );
}

#[test]
fn a_receiver_that_answers_503_for_a_while_gets_every_second_afterwards() {
    let rx = Receiver::start();
    let s = Scratch::new();
    let agent = start_agent(&s, &rx);
    assert!(wait_until(Duration::from_secs(30), || !rx
        .received()
        .is_empty()));
    rx.set_down(true);
    let (_, down) = agent.wait_for(Duration::from_secs(10), |l| l.contains("is down"));
    assert!(down, "the output did not notice the 503s");
    std::thread::sleep(Duration::from_secs(5));
    rx.set_down(false);
    let (_, up) = agent.wait_for(Duration::from_secs(15), |l| l.contains("is up again"));
    assert!(up, "the output did not come back");
    std::thread::sleep(Duration::from_secs(2));
    let mut stamps: Vec<i64> = points(&rx.received(), "mem_total_bytes", "gauge")
        .into_iter()
        .map(|(t, v)| {
            assert_eq!(v, fixture_mem_total_bytes());
            t
        })
        .collect();
    stamps.sort_unstable();
    stamps.dedup();
    let gaps: Vec<_> = stamps.windows(2).filter(|w| w[1] - w[0] != 1000).collect();
    assert!(gaps.is_empty(), "gaps {gaps:?} in {stamps:?}");
    assert!(stamps.len() >= 8, "{stamps:?}");
}

/// A real OTLP receiver with a query API: VictoriaMetrics stores exactly what the agent
/// collected, under the agent's names, with the data points' and the resource's attributes
/// as labels.
#[test]
fn victoriametrics_stores_exact_values_under_the_agent_s_names() {
    let vm = support::victoriametrics::VictoriaMetrics::start();
    let s = Scratch::new();
    let config = s.config(&format!(
        "hostname: vmtest\ninterval: 1s\nflush_interval: 1s\nprocfs_root: {}\nbuffer_dir: {}\n\
         inputs: [linux_mem, linux_net]\noutputs:\n  - otlp:\n      \
         endpoint: http://127.0.0.1:{}/opentelemetry/v1/metrics\n",
        fixture("basic").join("proc").display(),
        s.dir.path().join("buffer").display(),
        vm.port
    ));
    let _agent = Agent::start(&config);
    let mem = vm.wait_for("mem_total_bytes{host=\"vmtest\"}", Duration::from_secs(30));
    assert_eq!(mem.len(), 1, "{mem:?}");
    assert_eq!(mem[0].1, fixture_mem_total_bytes());
    assert_eq!(mem[0].0["host.name"], "vmtest", "the resource's attributes");
    assert_eq!(mem[0].0["service.name"], "rtcollector");
    let rx = vm.wait_for("net_rx_bytes{iface=\"eth0\"}", Duration::from_secs(30));
    assert_eq!(rx.len(), 1, "{rx:?}");
    assert_eq!(rx[0].1, 98_765_432_101.0);
    assert!(
        vm.query("{__name__=~\".*_rate\"}").is_empty(),
        "rates are left out"
    );
}

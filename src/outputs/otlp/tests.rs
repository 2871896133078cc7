use super::*;
use crate::common::protobuf::read_fields as fields;
use crate::core::SeriesKind::{Counter, Gauge, Rate};

fn ctx() -> OutputCtx {
    OutputCtx {
        hostname: "pi".into(),
        key: "otlp".into(),
    }
}

fn with_env(yaml: &str, vars: &[(&str, &str)]) -> Result<Otlp, BuildError> {
    let cfg: Config = yaml_serde::from_str(yaml).unwrap();
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    build_with_env(&cfg, &ctx(), &move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
}

#[test]
fn the_endpoint_and_headers_come_from_the_config_or_the_environment() {
    let o = with_env("{}", &[]).unwrap();
    assert_eq!(o.poster.url().authority(), "localhost:4318");
    assert_eq!(o.poster.url().path, "/v1/metrics");
    let o = with_env("{}", &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).unwrap();
    assert_eq!((o.poster.url().host.as_str(), o.poster.url().path.as_str()), ("collector", "/v1/metrics"));
    let o = with_env(
        "{}",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://b:2/otlp/v1/metrics"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Basic%20eHg6eXk=, X-Tenant = home"),
        ],
    )
    .unwrap();
    assert_eq!((o.poster.url().host.as_str(), o.poster.url().path.as_str()), ("b", "/otlp/v1/metrics"));
    assert!(o.headers.contains(&("Authorization".into(), "Basic eHg6eXk=".into())), "{:?}", o.headers);
    assert!(o.headers.contains(&("X-Tenant".into(), "home".into())));
    let o = with_env(
        "endpoint: http://c:3/v1/metrics\nheaders: {X-Tenant: lab}\n",
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"), ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=home")],
    )
    .unwrap();
    assert_eq!(o.poster.url().host, "c", "the config wins");
    let tenants: Vec<_> = o.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("x-tenant")).collect();
    assert_eq!(tenants, [&("X-Tenant".to_string(), "lab".to_string())]);
    let e = with_env("{}", &[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")]).err().unwrap();
    assert_eq!(e.option, Some("headers"));
    assert_eq!(with_env("endpoint: ftp://x\n", &[]).err().unwrap().option, Some("endpoint"));
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// (key, value) of each `KeyValue` with a string value among `fields` numbered `field`.
fn attributes(f: &[(u64, Vec<u8>)], field: u64) -> Vec<(String, String)> {
    f.iter()
        .filter(|(n, _)| *n == field)
        .map(|(_, kv)| {
            let kv = fields(kv);
            (text(&kv[0].1), text(&fields(&kv[1].1)[0].1))
        })
        .collect()
}

#[test]
fn a_batch_is_one_metric_per_name_counters_as_monotonic_cumulative_sums() {
    let mut t = SeriesTable::new("pi", 10);
    let rx = t.intern_kind("net_rx_bytes", "", &[("iface", "eth0")], Counter).unwrap();
    let mem = t.intern_kind("mem_used", "", &[], Gauge).unwrap();
    let rate = t.intern_kind("net_rx_bytes_rate", "", &[("iface", "eth0")], Rate).unwrap();
    let s = |series, ts_ms, value| Sample { series, ts_ms, value };
    let batch = [s(rx, 2000, 20.0), s(mem, 1000, 1.0), s(rate, 1000, 3.0), s(rx, 1000, 10.0)];
    let mut o = with_env("{}", &[]).unwrap();
    assert_eq!(o.encode(&batch, &t), 3);
    let request = fields(&o.proto);
    assert_eq!(request.len(), 1, "one ResourceMetrics");
    let rm = fields(&request[0].1);
    let resource = fields(&rm[0].1);
    assert_eq!(
        attributes(&resource, 1),
        [("host.name".to_string(), "pi".to_string()), ("service.name".into(), "rtcollector".into())]
    );
    let scope = fields(&rm[1].1);
    let metrics: Vec<Vec<(u64, Vec<u8>)>> = scope.iter().filter(|(n, _)| *n == 2).map(|(_, m)| fields(m)).collect();
    assert_eq!(metrics.len(), 2);
    // mem_used: a Gauge (field 5) with one point.
    assert_eq!(text(&metrics[0][0].1), "mem_used");
    assert_eq!(metrics[0][1].0, 5);
    // net_rx_bytes: a Sum (field 7), two points in time order, cumulative and monotonic.
    assert_eq!(text(&metrics[1][0].1), "net_rx_bytes");
    assert_eq!(metrics[1][1].0, 7);
    let sum = fields(&metrics[1][1].1);
    let points: Vec<_> = sum.iter().filter(|(n, _)| *n == 1).map(|(_, p)| fields(p)).collect();
    let at = |p: &[(u64, Vec<u8>)], f: u64| p.iter().find(|(n, _)| *n == f).unwrap().1.clone();
    let stamps: Vec<u64> = points.iter().map(|p| u64::from_le_bytes(at(p, 3)[..8].try_into().unwrap())).collect();
    assert_eq!(stamps, [1_000_000_000, 2_000_000_000]);
    let values: Vec<f64> = points.iter().map(|p| f64::from_le_bytes(at(p, 4)[..8].try_into().unwrap())).collect();
    assert_eq!(values, [10.0, 20.0]);
    assert_eq!(
        attributes(&points[0], 7),
        [("host".to_string(), "pi".to_string()), ("iface".into(), "eth0".into())]
    );
    let flag = |f: u64| u64::from_le_bytes(at(&sum, f)[..8].try_into().unwrap());
    assert_eq!((flag(2), flag(3)), (CUMULATIVE, 1));
}

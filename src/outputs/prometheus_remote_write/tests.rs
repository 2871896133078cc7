use super::wire::tests::unsnappy;
use super::*;
use crate::core::SeriesKind::{Counter, Gauge, Rate};

use crate::common::protobuf::read_fields as fields;

/// The decoded request: per series its labels and samples.
type Decoded = Vec<(Vec<(String, String)>, Vec<(f64, i64)>)>;

fn decode(body: &[u8]) -> Decoded {
    fields(body)
        .into_iter()
        .map(|(f, ts)| {
            assert_eq!(f, 1, "WriteRequest.timeseries");
            let mut labels = Vec::new();
            let mut samples = Vec::new();
            for (f, v) in fields(&ts) {
                let inner = fields(&v);
                match f {
                    1 => labels.push((
                        String::from_utf8(inner[0].1.clone()).unwrap(),
                        String::from_utf8(inner[1].1.clone()).unwrap(),
                    )),
                    2 => samples.push((
                        f64::from_le_bytes(inner[0].1[..8].try_into().unwrap()),
                        i64::from_le_bytes(inner[1].1[..8].try_into().unwrap()),
                    )),
                    f => panic!("TimeSeries field {f}"),
                }
            }
            (labels, samples)
        })
        .collect()
}

fn output() -> RemoteWrite {
    let cfg: Config = yaml_serde::from_str("url: http://127.0.0.1:1/api/v1/write\n").unwrap();
    let ctx = OutputCtx {
        hostname: "pi".into(),
        key: "prometheus_remote_write".into(),
    };
    build(&cfg, &ctx).unwrap()
}

#[test]
fn a_batch_becomes_one_series_each_sorted_named_and_in_time_order() {
    let mut t = SeriesTable::new("pi", 10);
    let rx = t.intern_kind("net_rx_bytes", "", &[("iface", "eth0"), ("Zone", "a")], Counter).unwrap();
    let mem = t.intern_kind("mem_used", "", &[], Gauge).unwrap();
    let rate = t.intern_kind("net_rx_bytes_rate", "", &[("iface", "eth0")], Rate).unwrap();
    let s = |series, ts_ms, value| Sample { series, ts_ms, value };
    let batch = [s(mem, 2000, 2.0), s(rx, 2000, 20.0), s(rate, 2000, 1.0), s(mem, 1000, 1.0), s(rx, 1000, 10.0)];
    let mut o = output();
    assert_eq!(o.encode(&batch, &t), 4, "the rate is left out");
    let mut packed = Vec::new();
    wire::snappy(&o.proto, &mut packed, &mut Vec::new());
    let got = decode(&unsnappy(&packed));
    let l = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    assert_eq!(
        got,
        vec![
            (
                l(&[("Zone", "a"), ("__name__", "net_rx_bytes_total"), ("host", "pi"), ("iface", "eth0")]),
                vec![(10.0, 1000), (20.0, 2000)]
            ),
            (l(&[("__name__", "mem_used"), ("host", "pi")]), vec![(1.0, 1000), (2.0, 2000)]),
        ]
    );
}

#[test]
fn config_errors_name_their_key() {
    let ctx = OutputCtx {
        hostname: "pi".into(),
        key: "prometheus_remote_write".into(),
    };
    for (yaml, key) in [
        ("url: ftp://x/\n", "url"),
        ("url: http://u:p@x/\n", "url"),
        ("password: x\n", "password"),
        ("username: u\npassword: p\nbearer_token: t\n", "bearer_token"),
        ("headers: {\"Bad Header\": x}\n", "headers"),
        ("ssl: true\n", "ssl"),
    ] {
        let cfg: Config = yaml_serde::from_str(yaml).unwrap();
        let e = build(&cfg, &ctx).err().unwrap_or_else(|| panic!("{yaml}: no error"));
        assert_eq!(e.option, Some(key), "{yaml}: {}", e.message);
    }
}

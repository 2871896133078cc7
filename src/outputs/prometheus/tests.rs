use super::exposition::{render, Format};
use super::server::{parse_head, Request};
use super::*;
use crate::core::SeriesKind::{self, Counter, Gauge, Rate};

/// A series to intern: name, labels, kind.
type Def<'a> = (&'a str, &'a [(&'a str, &'a str)], SeriesKind);

fn table(series: &[Def]) -> (SeriesTable, Vec<SeriesId>) {
    let mut t = SeriesTable::new("pi", 100);
    let ids = series
        .iter()
        .map(|(name, labels, kind)| t.intern_kind(name, "", labels, *kind).unwrap())
        .collect();
    (t, ids)
}

fn sample(series: SeriesId, ts_ms: i64, value: f64) -> Sample {
    Sample {
        series,
        ts_ms,
        value,
    }
}

fn scrape(latest: &Latest, t: &SeriesTable, format: Format, timestamps: bool) -> String {
    let mut live = Vec::new();
    latest.live(t, crate::core::clock::now_ms(), &mut live);
    let mut out = Vec::new();
    render(&live, t, format, timestamps, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn families_are_typed_grouped_and_rates_left_out() {
    let (t, ids) = table(&[
        ("net_rx_bytes", &[("interface", "eth0")], Counter),
        ("mem_used", &[], Gauge),
        ("net_rx_bytes_rate", &[("interface", "eth0")], Rate),
        ("net_rx_bytes", &[("interface", "wlan0")], Counter),
    ]);
    let latest = Latest::new(None, false);
    let batch: Vec<Sample> = ids.iter().map(|&id| sample(id, 1000, f64::from(id) + 0.5)).collect();
    latest.accept(&batch, &t);
    assert_eq!(
        scrape(&latest, &t, Format::Text, false),
        "# HELP mem_used mem_used from rtcollector\n\
         # TYPE mem_used gauge\n\
         mem_used{host=\"pi\"} 1.5\n\
         # HELP net_rx_bytes_total net_rx_bytes from rtcollector\n\
         # TYPE net_rx_bytes_total counter\n\
         net_rx_bytes_total{host=\"pi\",interface=\"eth0\"} 0.5\n\
         net_rx_bytes_total{host=\"pi\",interface=\"wlan0\"} 3.5\n"
    );
    assert_eq!(
        scrape(&latest, &t, Format::OpenMetrics, true),
        "# HELP mem_used mem_used from rtcollector\n\
         # TYPE mem_used gauge\n\
         mem_used{host=\"pi\"} 1.5 1.000\n\
         # HELP net_rx_bytes net_rx_bytes from rtcollector\n\
         # TYPE net_rx_bytes counter\n\
         net_rx_bytes_total{host=\"pi\",interface=\"eth0\"} 0.5 1.000\n\
         net_rx_bytes_total{host=\"pi\",interface=\"wlan0\"} 3.5 1.000\n\
         # EOF\n"
    );
    let with_rates = Latest::new(None, true);
    with_rates.accept(&batch, &t);
    assert!(scrape(&with_rates, &t, Format::Text, true)
        .contains("# TYPE net_rx_bytes_rate gauge\nnet_rx_bytes_rate{host=\"pi\",interface=\"eth0\"} 2.5 1000\n"));
}

#[test]
fn label_values_are_escaped_and_names_made_valid() {
    let (t, ids) = table(&[("1wire-temp", &[("path", "a\\b \"c\"\nd"), ("x:y", "1")], Gauge)]);
    let latest = Latest::new(None, false);
    latest.accept(&[sample(ids[0], 0, -2.0)], &t);
    assert_eq!(
        scrape(&latest, &t, Format::Text, false),
        "# HELP _1wire_temp 1wire-temp from rtcollector\n# TYPE _1wire_temp gauge\n_1wire_temp{host=\"pi\",path=\"a\\\\b \\\"c\\\"\\nd\",x_y=\"1\"} -2\n"
    );
}

#[test]
fn the_latest_value_wins_and_expired_series_go() {
    let (t, ids) = table(&[("a", &[], Gauge), ("b", &[], Gauge)]);
    let latest = Latest::new(None, false);
    latest.accept(&[sample(ids[0], 0, 1.0), sample(ids[1], 0, 1.0)], &t);
    latest.accept(&[sample(ids[0], 10_000, 2.0), sample(ids[1], 10_000, 7.0)], &t);
    let now = crate::core::clock::now_ms();
    let mut live = Vec::new();
    latest.live(&t, now, &mut live);
    assert_eq!(live.iter().map(|(_, e)| e.value).collect::<Vec<_>>(), [2.0, 7.0]);
    // Two periods of 10 s since they were seen: gone; one period: still there.
    latest.live(&t, now + 15_000, &mut live);
    assert_eq!(live.len(), 2);
    latest.live(&t, now + 25_000, &mut live);
    assert!(live.is_empty());
    let fixed = Latest::new(Some(1000), false);
    fixed.accept(&[sample(ids[0], 0, 1.0)], &t);
    fixed.live(&t, now + 5_000, &mut live);
    assert!(live.is_empty(), "expiration: 1s");
}

#[test]
fn request_heads_are_parsed_as_scrapers_send_them() {
    let head = b"GET /metrics?x=1 HTTP/1.1\r\nHost: pi:8000\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\nAuthorization: Basic dTpw\r\n";
    assert_eq!(
        parse_head(head),
        Some(Request {
            method: "GET",
            path: "/metrics",
            accept: "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            authorization: Some("Basic dTpw"),
            content_type: "",
            content_length: None,
            chunked: false,
            expect_continue: false,
            close: false,
        })
    );
    assert_eq!(Format::of_accept(parse_head(head).unwrap().accept), Format::OpenMetrics);
    assert!(parse_head(b"GET / HTTP/1.0").unwrap().close);
    assert!(parse_head(b"GET /\r\n").is_none());
    assert!(parse_head(b"GET / HTTP/1.1\r\nbroken header").is_none());
    assert!(parse_head(&[0xff, 0xfe]).is_none());
}

#[test]
fn a_password_without_a_user_is_a_config_error() {
    let cfg: Config = yaml_serde::from_str("password: x\n").unwrap();
    let ctx = OutputCtx {
        hostname: "h".into(),
        key: "prometheus".into(),
    };
    let e = build(&cfg, &ctx).err().expect("an error");
    assert_eq!(e.option, Some("password"));
    let cfg: Config = yaml_serde::from_str("path: metrics\n").unwrap();
    assert_eq!(build(&cfg, &ctx).err().expect("an error").option, Some("path"));
    let cfg: Config = yaml_serde::from_str("listen: localhost\n").unwrap();
    assert_eq!(build(&cfg, &ctx).err().expect("an error").option, Some("listen"));
}

#[test]
fn a_series_that_comes_later_takes_its_place_in_the_order() {
    let (t, ids) = table(&[("b", &[], Gauge), ("a", &[], Gauge), ("c", &[], Gauge)]);
    let latest = Latest::new(None, false);
    latest.accept(&[sample(ids[0], 0, 1.0)], &t);
    let names = |latest: &Latest| {
        let mut live = Vec::new();
        latest.live(&t, crate::core::clock::now_ms(), &mut live);
        live.iter()
            .map(|(id, _)| t.get(*id).name.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&latest), ["b"]);
    latest.accept(&[sample(ids[2], 0, 1.0), sample(ids[1], 0, 1.0)], &t);
    assert_eq!(names(&latest), ["a", "b", "c"]);
    assert_eq!(names(&latest), ["a", "b", "c"], "the kept order");
}

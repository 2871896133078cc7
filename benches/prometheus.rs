//! A scrape of the `prometheus` output's endpoint: time, bytes and allocations per scrape of
//! M series (default 10 000: half counters, half gauges, 100 names with an `idx` label).
//!
//! ```sh
//! cargo bench --bench prometheus                      # M=10000, 200 scrapes
//! RTC_BENCH_SERIES=1000 RTC_BENCH_SCRAPES=500 cargo bench --bench prometheus
//! ```
//!
//! The output runs on its own thread's executor, as in the agent; this thread scrapes over
//! one keep-alive connection into a reused buffer, so the allocations counted (the whole
//! process) are the endpoint's. Both formats: 0.0.4 and OpenMetrics.

mod common;
#[path = "common/counting_alloc.rs"]
mod counting_alloc;
#[path = "../tests/support/mod.rs"]
mod support;

use common::env_or;
use counting_alloc::ALLOCS;
use rtcollector::core::output::{Buffering, SeriesHandle};
use rtcollector::core::{Output, Sample, SeriesKind, SeriesTable};
use rtcollector::outputs::prometheus::{build, Config};
use rtcollector::outputs::OutputCtx;
use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Starts the endpoint with `m` series on a thread of its own; its port.
fn serve(m: usize) -> u16 {
    let port = support::ports::free_port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let cfg: Config =
            yaml_serde::from_str(&format!("listen: 127.0.0.1\nport: {port}\n")).unwrap();
        let ctx = OutputCtx {
            hostname: "bench".into(),
            key: "prometheus".into(),
        };
        let mut out = build(&cfg, &ctx).unwrap();
        let Buffering::Latest(sink) = out.buffering() else {
            panic!("a latest-value output");
        };
        let table = Rc::new(RefCell::new(SeriesTable::new("bench", m + 10)));
        let samples: Vec<Sample> = (0..m)
            .map(|i| {
                let kind = if i % 2 == 0 {
                    SeriesKind::Counter
                } else {
                    SeriesKind::Gauge
                };
                let idx = i.to_string();
                let series = table
                    .borrow_mut()
                    .intern_kind(
                        &format!("bench_metric_{}", i % 100),
                        "",
                        &[("idx", &idx)],
                        kind,
                    )
                    .unwrap();
                Sample {
                    series,
                    ts_ms: 1_700_000_000_000,
                    value: i as f64 * 1.5,
                }
            })
            .collect();
        sink.accept(&samples, &table.borrow());
        futures_lite::future::block_on(out.start()).unwrap();
        let serving = out
            .serve(SeriesHandle(table.clone()))
            .expect("a serve future");
        tx.send(()).unwrap();
        futures_lite::future::block_on(serving);
    });
    rx.recv().unwrap();
    port
}

/// One scrape on `c` into `buf`; the body's length.
fn scrape(c: &mut TcpStream, accept: &str, buf: &mut Vec<u8>) -> usize {
    // One write, as a scraper sends it (write! would send three segments, and Nagle's
    // algorithm would hold the later ones for the server's delayed ACK).
    let request = format!("GET /metrics HTTP/1.1\r\nHost: b\r\nAccept: {accept}\r\n\r\n");
    c.write_all(request.as_bytes()).unwrap();
    buf.clear();
    let mut chunk = [0u8; 64 * 1024];
    let (head_end, length) = loop {
        let n = c.read(&mut chunk).unwrap();
        assert!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.parse().ok())
                .expect("Content-Length");
            break (end + 4, length);
        }
    };
    while buf.len() < head_end + length {
        let n = c.read(&mut chunk).unwrap();
        assert!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    length
}

fn main() {
    let m: usize = env_or("RTC_BENCH_SERIES", 10_000);
    let n: usize = env_or("RTC_BENCH_SCRAPES", 200);
    let port = serve(m);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::with_capacity(4 << 20);
    println!("prometheus endpoint, {m} series, {n} scrapes per format over one connection");
    println!("| format | ms per scrape (median) | bytes | allocations per scrape |");
    println!("|---|---|---|---|");
    for (label, accept) in [
        ("text 0.0.4", "text/plain;version=0.0.4"),
        (
            "OpenMetrics 1.0",
            "application/openmetrics-text;version=1.0.0",
        ),
    ] {
        for _ in 0..5 {
            scrape(&mut c, accept, &mut buf);
        }
        let mut times = Vec::with_capacity(n);
        let before = ALLOCS.load(Relaxed);
        let mut bytes = 0;
        for _ in 0..n {
            let t = Instant::now();
            bytes = scrape(&mut c, accept, &mut buf);
            times.push(t.elapsed());
        }
        let allocs = (ALLOCS.load(Relaxed) - before) as f64 / n as f64;
        times.sort();
        let median = times[n / 2].as_secs_f64() * 1000.0;
        println!("| {label} | {median:.2} | {bytes} | {allocs:.1} |");
    }
}

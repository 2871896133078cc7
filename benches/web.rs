//! The web inputs' costs: parsing a status page (ns per page, allocations), and one
//! `http_response` collection against a local server (µs per collection of 1 and of 8 URLs,
//! each on its own request thread; allocations per URL).
//!
//! Run: `cargo bench --bench web` (optionally `-- ROUNDS`, default 200 collections).

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::ALLOCS;
use rtcollector::core::metric::SeriesTable;
use rtcollector::core::rate::RateTracker;
use rtcollector::core::{Emitter, Input, Sample};
use rtcollector::inputs::apache::parse_server_status;
use rtcollector::inputs::http_response;
use rtcollector::inputs::nginx::parse_stub_status;
use rtcollector::inputs::BuildCtx;
use std::cell::RefCell;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

const STUB_STATUS: &str = "Active connections: 291 \nserver accepts handled requests\n 16630948 16630948 31070465 \nReading: 6 Writing: 179 Waiting: 106 \n";

/// An Apache `?auto` page with a 400-slot scoreboard (16 processes × 25 threads).
fn apache_page() -> String {
    let board: String = "_W_K_R__C.".repeat(40);
    format!(
        "127.0.0.1\nServerVersion: Apache/2.4.71 (Debian)\nServerMPM: event\n\
         ParentServerConfigGeneration: 1\nParentServerMPMGeneration: 0\nServerUptimeSeconds: 86400\n\
         ServerUptime: 1 day\nLoad1: 0.25\nLoad5: 0.50\nLoad15: 0.75\nTotal Accesses: 1234567\n\
         Total kBytes: 7654321\nTotal Duration: 99999\nCPUUser: 12.5\nCPUSystem: 3.25\n\
         CPUChildrenUser: 0\nCPUChildrenSystem: 0\nCPULoad: .0182\nUptime: 86400\n\
         ReqPerSec: 14.2889\nBytesPerSec: 90718.9\nBytesPerReq: 6348.87\nDurationPerReq: .081\n\
         BusyWorkers: 120\nGracefulWorkers: 0\nIdleWorkers: 160\nProcesses: 16\nStopping: 0\n\
         ConnsTotal: 140\nConnsAsyncWriting: 2\nConnsAsyncKeepAlive: 30\nConnsAsyncClosing: 1\n\
         Scoreboard: {board}\n"
    )
}

fn per_op<T>(n: u32, mut f: impl FnMut() -> T) -> (f64, f64) {
    let a0 = ALLOCS.load(Relaxed);
    let t0 = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    let ns = t0.elapsed().as_nanos() as f64 / n as f64;
    (ns, (ALLOCS.load(Relaxed) - a0) as f64 / n as f64)
}

/// A server answering every connection with a small 200 (Connection: close).
fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\nConnection: close\r\n\r\nstatus: healthy\n",
                );
            });
        }
    });
    format!("http://{addr}/health")
}

fn collections(urls: usize, rounds: u32) -> (f64, f64) {
    let url = serve();
    let cfg = http_response::Config {
        urls: (0..urls).map(|i| format!("{url}?{i}")).collect(),
        response_string_match: "healthy".into(),
        timeout: rtcollector::config::Dur(Duration::from_secs(5)),
        ..Default::default()
    };
    let mut input = http_response::build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).unwrap();
    let table = RefCell::new(SeriesTable::new("bench", 10_000));
    let mut rates = RateTracker::default();
    let mut buf: Vec<Sample> = Vec::with_capacity(256);
    let mut run = || {
        buf.clear();
        let mut em = Emitter::new(&table, &mut rates, &mut buf, 0);
        smol::block_on(input.collect(&mut em)).unwrap();
        assert!(em.take_partial_failure().is_none());
        assert_eq!(em.emitted(), urls * 5);
    };
    run(); // series interned, TLS config warm
    let a0 = ALLOCS.load(Relaxed);
    let t0 = Instant::now();
    for _ in 0..rounds {
        run();
    }
    let us = t0.elapsed().as_micros() as f64 / rounds as f64;
    let allocs = (ALLOCS.load(Relaxed) - a0) as f64 / rounds as f64 / urls as f64;
    (us, allocs)
}

fn main() {
    let rounds: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let (ns, allocs) = per_op(200_000, || {
        parse_stub_status(STUB_STATUS.as_bytes()).unwrap()
    });
    println!("nginx stub_status parse:        {ns:8.0} ns/page   {allocs:.1} allocations/page");
    let page = apache_page();
    let (ns, allocs) = per_op(50_000, || parse_server_status(page.as_bytes()).unwrap());
    println!(
        "apache ?auto parse ({} bytes): {ns:8.0} ns/page   {allocs:.1} allocations/page",
        page.len()
    );
    for urls in [1, 8] {
        let (us, allocs) = collections(urls, rounds);
        println!(
            "http_response, {urls} URL(s) on loopback: {us:8.0} µs/collection   {allocs:.0} allocations per URL check"
        );
    }
}

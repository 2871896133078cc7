//! The `prometheus` output scraped by a real Prometheus (Debian 13's 2.53, private per
//! test): exact values and labels read back through Prometheus's query API, counters typed
//! as counters (its metadata API), the agent's `_rate` series left out, the exposition clean
//! under `promtool check metrics`, basic authentication.
//!
//! Needs `RTC_PROMETHEUS_BIN_DIR` (see tests/support/prometheus.rs); fails, never skips,
//! without it.
#![cfg(feature = "prometheus")]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::agent::Agent;
use support::ports::free_port;
use support::prometheus::{promtool_check, Prometheus};
use support::scratch::{fixture, fixture_mem_total_bytes, Scratch};
use support::web_servers::http_get;

/// The agent on the `basic` fixture, collecting every second, with a `prometheus` output
/// on `port` (plus `extra` options).
fn agent(s: &Scratch, port: u16, extra: &str) -> Agent {
    let config = s.config(&format!(
        "hostname: promtest\ninterval: 1s\nprocfs_root: {}\nbuffer_dir: {}\n\
         inputs: [linux_mem, linux_net]\noutputs:\n  - prometheus:\n      listen: 127.0.0.1\n      \
         port: {port}\n{extra}",
        fixture("basic").join("proc").display(),
        s.dir.path().join("buffer").display(),
    ));
    let agent = Agent::start(&config);
    let (lines, up) = agent.wait_for(Duration::from_secs(10), |l| l.contains("for Prometheus"));
    assert!(up, "the endpoint did not start: {lines:?}");
    agent
}

#[test]
fn prometheus_scrapes_exact_values_typed_and_labelled() {
    let s = Scratch::new();
    let port = free_port();
    let _agent = agent(&s, port, "");
    let prom = Prometheus::start(&format!(
        "    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
    ));

    let mem = prom.wait_for("mem_total_bytes", Duration::from_secs(30));
    assert_eq!(mem.len(), 1, "{mem:?}");
    assert_eq!(mem[0].0["host"], "promtest");
    assert_eq!(mem[0].1, fixture_mem_total_bytes());

    // A counter, per interface, with its exact value from the fixture's /proc/net/dev; its
    // samples end in `_total`, as Prometheus names counters.
    let rx = prom.wait_for(
        "net_rx_bytes_total{iface=\"eth0\"}",
        Duration::from_secs(30),
    );
    assert_eq!(rx.len(), 1, "{rx:?}");
    assert_eq!(rx[0].1, 98_765_432_101.0);
    assert_eq!(rx[0].0["host"], "promtest");
    let meta = prom.api("metadata?metric=net_rx_bytes");
    assert_eq!(meta["net_rx_bytes"][0]["type"], "counter", "{meta}");
    let meta = prom.api("metadata?metric=mem_total_bytes");
    assert_eq!(meta["mem_total_bytes"][0]["type"], "gauge", "{meta}");
    // The agent's rates are left out: Prometheus computes them.
    assert!(prom.query("{__name__=~\".*_rate\"}").is_empty());
    // Every target is up and Prometheus found nothing wrong with what it scraped.
    let up = prom.query("up");
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].1, 1.0, "{}", prom.api("targets"));

    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    let (clean, out) = promtool_check(&body);
    assert!(clean, "promtool check metrics: {out}\n{body}");
}

/// The exposition as Prometheus asks for it (OpenMetrics first): a counter's samples end in
/// `_total`, the body ends in `# EOF`, and promtool finds nothing wrong with it either.
#[test]
fn openmetrics_when_the_scraper_asks_for_it() {
    let s = Scratch::new();
    let port = free_port();
    let _agent = agent(&s, port, "");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            c,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        if text.contains("net_rx_bytes") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        body.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
        "{body}"
    );
    let (_, body) = body.split_once("\r\n\r\n").unwrap();
    assert!(body.contains("# TYPE net_rx_bytes counter\n"), "{body}");
    assert!(
        body.contains("# HELP net_rx_bytes net_rx_bytes from rtcollector's linux_net input\n"),
        "{body}"
    );
    assert!(
        body.contains("net_rx_bytes_total{host=\"promtest\",iface=\"eth0\"} 98765432101\n"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
}

#[test]
fn basic_authentication_keeps_others_out() {
    let s = Scratch::new();
    let port = free_port();
    let _agent = agent(&s, port, "      username: prom\n      password: s3cret\n");
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("mem_total_bytes"));
    let prom = Prometheus::start(&format!(
        "    basic_auth:\n      username: prom\n      password: s3cret\n    \
         static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
    ));
    let mem = prom.wait_for("mem_total_bytes", Duration::from_secs(30));
    assert_eq!(mem[0].1, fixture_mem_total_bytes());
    // A wrong password: the target is down, and says why.
    let wrong = Prometheus::start(&format!(
        "    basic_auth:\n      username: prom\n      password: wrong\n    \
         static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
    ));
    let down = wrong.wait_for("up == 0", Duration::from_secs(30));
    assert_eq!(down.len(), 1);
    let targets = wrong.api("targets").to_string();
    assert!(targets.contains("401"), "{targets}");
}

/// HTTPS with a certificate from a CA made for the test: Prometheus verifies it against
/// that CA and scrapes; a plain HTTP request gets no metrics.
#[test]
fn prometheus_scrapes_over_tls_verified_against_the_test_ca() {
    let s = Scratch::new();
    let certs = support::certs::make_server_certs(s.dir.path());
    let port = free_port();
    let _agent = agent(
        &s,
        port,
        &format!(
            "      tls_cert: {}\n      tls_key: {}\n",
            certs.cert.display(),
            certs.key.display()
        ),
    );
    let prom = Prometheus::start(&format!(
        "    scheme: https\n    tls_config:\n      ca_file: {}\n      server_name: localhost\n    \
         static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n",
        certs.ca.display()
    ));
    let mem = prom.wait_for("mem_total_bytes", Duration::from_secs(30));
    assert_eq!(mem[0].1, fixture_mem_total_bytes());
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(c, "GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = Vec::new();
    let _ = c.read_to_end(&mut text);
    assert!(
        !String::from_utf8_lossy(&text).contains("mem_total_bytes"),
        "plain HTTP got metrics"
    );
}

/// `max_connections` idle clients hold every slot: a further connection is closed at once;
/// after `read_timeout` the idle ones are gone and a scrape is served again.
#[test]
fn idle_clients_cannot_hold_the_endpoint() {
    let s = Scratch::new();
    let port = free_port();
    let agent = agent(
        &s,
        port,
        "      max_connections: 2\n      read_timeout: 2s\n",
    );
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // The agent accepts the idle ones before this one (one accept loop, in order).
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = write!(extra, "GET /metrics HTTP/1.0\r\n\r\n");
    let mut text = String::new();
    let _ = extra.read_to_string(&mut text);
    assert_eq!(text, "", "a connection beyond max_connections was served");
    let (lines, warned) = agent.wait_for(Duration::from_secs(5), |l| l.contains("max_connections"));
    assert!(warned, "{lines:?}");
    // The idle clients stay connected; the agent drops them after read_timeout.
    let mut last = (0, String::new());
    let served = support::wait::wait_until(Duration::from_secs(15), || {
        last = try_get(port).unwrap_or_default();
        last.0 == 200
    });
    assert!(served, "never served again: {last:?}");
    assert!(last.1.contains("mem_total_bytes"), "{}", last.1);
    drop(idle);
}

/// A GET of /metrics that may meet a closed connection: `None` then.
fn try_get(port: u16) -> Option<(u16, String)> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(c, "GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    c.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n")?.1.to_string()))
}

//! The web inputs (`http_response`, `nginx`, `apache`) against real servers: private nginx
//! and Apache instances on free loopback ports, each with its own config in a temp dir,
//! stopped by PID; an HTTPS nginx with a CA and certificate made by `openssl` at test time;
//! and a TCP listener that accepts and never answers.
//!
//! The binaries come from `RTC_NGINX_BIN` / `RTC_APACHE_BIN` (and `RTC_APACHE_MODULES`) or
//! Debian's paths, which `scripts/setup-web-peers` installs. Nothing is skipped: a missing
//! binary or a server that does not start fails the test and says why.
#![cfg(feature = "http")]

mod support;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use support::agent::{once_samples, Agent};
use support::certs::make_server_certs;
use support::clock::now_secs;
use support::samples::value;
use support::scratch::Scratch;
use support::web_servers::{apache, http_get, nginx, APACHE_THREADS};

const DAY: f64 = 86_400.0;

/// Runs `rtcollector run --once` on `inputs` (YAML list items) with JSON stdout.
fn once(inputs: &str) -> (BTreeMap<String, Value>, String) {
    let s = Scratch::new();
    once_samples(&s.config(&format!(
        "hostname: webtest\ninterval: 10s\ninputs:\n{inputs}outputs:\n  - stdout:\n      format: json\n"
    )))
}

#[test]
fn http_response_reports_status_length_and_match_from_nginx() {
    let ng = nginx(None);
    let hello = ng.url("/hello");
    let teapot = ng.url("/teapot");
    let moved = ng.url("/moved");
    let (got, _) = once(&format!(
        "  - http_response:\n      urls: [\"{hello}\", \"{teapot}\", \"{moved}\"]\n      \
         response_status_code: 200\n      response_string_match: \"health[yi]\"\n      \
         headers: {{X-Check: rtcollector}}\n"
    ));
    let at = |name: &str, url: &str| value(&got, &format!("http_response_{name}{{url={url}}}"));
    assert_eq!(at("status_code", &hello), 200.0);
    assert_eq!(
        at("content_length", &hello),
        "hello from nginx, healthy\n".len() as f64
    );
    assert_eq!(at("string_match", &hello), 1.0);
    assert_eq!(at("status_code_match", &hello), 1.0);
    assert_eq!(at("result_code", &hello), 0.0);
    assert!(at("response_time", &hello) > 0.0);

    assert_eq!(at("status_code", &teapot), 418.0);
    assert_eq!(at("content_length", &teapot), 15.0);
    assert_eq!(at("string_match", &teapot), 0.0);
    assert_eq!(at("status_code_match", &teapot), 0.0);
    assert_eq!(at("result_code", &teapot), 0.0, "any status is a response");

    // Redirects are followed by default: /moved lands on /hello.
    assert_eq!(at("status_code", &moved), 200.0);
    assert_eq!(at("string_match", &moved), 1.0);
    assert!(
        !got.keys().any(|k| k.contains("cert_expiry")),
        "no TLS here"
    );
    let sample = &got[&format!("http_response_status_code{{url={hello}}}")];
    assert_eq!(sample["labels"]["host"], "webtest");
}

#[test]
fn http_response_reads_the_certificate_expiry_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_server_certs(dir.path());
    let ng = nginx(Some(&certs));
    let tls_port = ng.tls_port.unwrap();
    let by_name = format!("https://localhost:{tls_port}/");
    let by_ip = format!("https://127.0.0.1:{tls_port}/ip");
    let expected_left = certs.made_at + 30.0 * DAY - now_secs();

    // Verified against the test CA.
    let (got, _) = once(&format!(
        "  - http_response:\n      urls: [\"{by_name}\", \"{by_ip}\"]\n      tls_ca: {}\n      \
         response_string_match: \"^secure\"\n",
        certs.ca.display()
    ));
    for url in [&by_name, &by_ip] {
        let at = |name: &str| value(&got, &format!("http_response_{name}{{url={url}}}"));
        assert_eq!(at("result_code"), 0.0, "{url}");
        assert_eq!(at("status_code"), 200.0);
        assert_eq!(at("content_length"), "secure hello\n".len() as f64);
        assert_eq!(at("string_match"), 1.0);
        let left = at("cert_expiry");
        assert!(
            (left - expected_left).abs() < DAY,
            "cert_expiry {left} s, expected about {expected_left} s (30 days)"
        );
    }

    // The default trust (Mozilla's roots) refuses the test CA: a connection error, 2.
    let (got, err) = once(&format!(
        "  - http_response:\n      urls: [\"{by_name}\"]\n"
    ));
    assert_eq!(
        value(&got, &format!("http_response_result_code{{url={by_name}}}")),
        2.0
    );
    assert!(!got.contains_key(&format!("http_response_status_code{{url={by_name}}}")));
    assert!(err.contains("UnknownIssuer"), "{err}");

    // insecure_skip_verify accepts it, and the expiry is still read.
    let (got, _) = once(&format!(
        "  - http_response:\n      urls: [\"{by_name}\"]\n      insecure_skip_verify: true\n"
    ));
    assert_eq!(
        value(&got, &format!("http_response_result_code{{url={by_name}}}")),
        0.0
    );
    let left = value(&got, &format!("http_response_cert_expiry{{url={by_name}}}"));
    assert!((left - expected_left).abs() < DAY, "{left}");
}

#[test]
fn a_hanging_endpoint_times_out_while_the_rest_reports() {
    let ng = nginx(None);
    // Accepts connections and never answers.
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging_url = format!("http://{}/", hanging.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<TcpStream> = hanging.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let hello = ng.url("/hello");
    let started = Instant::now();
    let (got, err) = once(&format!(
        "  - http_response:\n      urls: [\"{hanging_url}\", \"{hello}\"]\n      timeout: 1s\n  - nginx:\n      status_url: \"{}\"\n",
        ng.url("/nginx_status")
    ));
    let took = started.elapsed();
    assert_eq!(
        value(
            &got,
            &format!("http_response_result_code{{url={hanging_url}}}")
        ),
        1.0,
        "timeout"
    );
    assert!(!got.contains_key(&format!("http_response_response_time{{url={hanging_url}}}")));
    assert_eq!(
        value(&got, &format!("http_response_status_code{{url={hello}}}")),
        200.0
    );
    let labels = format!("{{port={},server=127.0.0.1}}", ng.port);
    assert!(value(&got, &format!("nginx_active{labels}")) >= 1.0);
    assert!(
        err.contains(&hanging_url) && err.contains("timed out"),
        "{err}"
    );
    // Bounded by the timeout (1 s) and its grace (1 s), not by the silent server.
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
fn nginx_counts_connections_and_requests() {
    let ng = nginx(None);
    for _ in 0..3 {
        assert_eq!(http_get(ng.port, "/hello").0, 200);
    }
    let (got, err) = once(&format!(
        "  - nginx:\n      status_url: \"{}\"\n",
        ng.url("/nginx_status")
    ));
    assert!(!err.contains("WARN"), "{err}");
    let l = format!("{{port={},server=127.0.0.1}}", ng.port);
    let v = |name: &str| value(&got, &format!("{name}{l}"));
    // Three requests of ours, and the status request itself.
    assert_eq!(v("nginx_requests"), 4.0);
    assert!(v("nginx_active") >= 1.0);
    assert_eq!(
        v("nginx_writing"),
        1.0,
        "the status request is being answered"
    );
    assert_eq!(
        v("nginx_active"),
        v("nginx_reading") + v("nginx_writing") + v("nginx_waiting")
    );
    assert!(v("nginx_accepts") >= 4.0);
    assert_eq!(v("nginx_accepts"), v("nginx_handled"));
    assert_eq!(v("nginx_dropped"), 0.0);
}

#[test]
fn nginx_refuses_a_page_that_is_not_stub_status() {
    let ng = nginx(None);
    let (got, err) = once(&format!(
        "  - nginx:\n      status_url: \"{}\"\n  - nginx:\n      status_url: \"{}\"\n",
        ng.url("/not-a-status-page"),
        ng.url("/nowhere"),
    ));
    assert!(!got.keys().any(|k| k.starts_with("nginx_")), "{got:?}");
    assert!(err.contains("not a stub_status page"), "{err}");
    assert!(err.contains("HTTP status 404"), "{err}");
}

#[test]
fn a_garbage_status_page_is_counted_every_time_and_logged_once() {
    let ng = nginx(None);
    let s = Scratch::new();
    let path = s.config(&format!(
        "hostname: webtest\ninterval: 200ms\ninputs:\n  - nginx:\n      status_url: \"{}\"\n  - internal\n\
         outputs:\n  - stdout:\n      format: json\n",
        ng.url("/not-a-status-page")
    ));
    let agent = Agent::start(&path);
    let (lines, ok) = agent.wait_for(Duration::from_secs(20), |l| {
        l.contains("\"internal_agent_gather_errors\"")
            && l.split("\"value\":")
                .nth(1)
                .and_then(|v| v.split([',', '}']).next())
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| v >= 3.0)
    });
    assert!(ok, "three failed collections are counted: {lines:#?}");
    let warnings: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("WARN") && l.contains("input nginx"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("not a stub_status page"),
        "{}",
        warnings[0]
    );
    assert!(
        !lines.iter().any(|l| l.contains("\"nginx_")),
        "nothing half-read is written"
    );
}

#[test]
fn apache_reports_workers_consistent_with_its_scoreboard() {
    let ap = apache();
    let (got, err) = once(&format!(
        "  - apache:\n      status_url: \"{}\"\n",
        ap.url("/server-status?auto")
    ));
    assert!(!err.contains("WARN"), "{err}");
    let l = format!("{{port={},server=127.0.0.1}}", ap.port);
    let v = |name: &str| value(&got, &format!("apache_{name}{l}"));
    let board: f64 = [
        "waiting",
        "starting",
        "reading",
        "sending",
        "keepalive",
        "dnslookup",
        "closing",
        "logging",
        "finishing",
        "idle_cleanup",
        "open",
    ]
    .iter()
    .map(|s| v(&format!("scboard_{s}")))
    .sum();
    assert_eq!(board, APACHE_THREADS as f64, "one slot per thread");
    assert_eq!(v("BusyWorkers") + v("IdleWorkers"), APACHE_THREADS as f64);
    // The only request in progress is the status request itself.
    assert_eq!(v("BusyWorkers"), 1.0);
    assert_eq!(v("scboard_sending"), 1.0);
    assert_eq!(v("IdleWorkers"), v("scboard_waiting"));
    assert!(v("TotalAccesses") >= 1.0);
    assert!(v("ServerUptimeSeconds") >= 0.0);
    assert_eq!(v("ParentServerConfigGeneration"), 1.0);
}

#[test]
fn between_collections_the_agent_is_back_to_two_threads() {
    let ng = nginx(None);
    let s = Scratch::new();
    let path = s.config(&format!(
        "hostname: webtest\ninterval: 5s\ninputs:\n  - http_response:\n      urls: [\"{}\", \"{}\", \"{}\"]\n  - nginx:\n      status_url: \"{}\"\noutputs:\n  - stdout:\n      format: json\n",
        ng.url("/hello"),
        ng.url("/teapot"),
        ng.url("/moved"),
        ng.url("/nginx_status")
    ));
    let mut agent = Agent::start(&path);
    let (lines, ok) = agent.wait_for(Duration::from_secs(15), |l| {
        l.contains("\"http_response_result_code\"")
    });
    assert!(ok, "{lines:#?}");
    // Each request's thread (core::offload) ends with the request.
    let threads = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", agent.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|t| t.trim().parse::<u32>().ok())
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut seen = threads();
    while seen > 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        seen = threads();
    }
    assert!(seen <= 2, "{seen} threads 3 s after a collection");
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(6));
}

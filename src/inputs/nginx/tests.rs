use super::*;
use crate::inputs::testutil::{sample_options, Harness};

/// As nginx 1.22 writes it (note the trailing spaces).
const PAGE: &str = "Active connections: 3 \nserver accepts handled requests\n 17 15 42 \nReading: 0 Writing: 1 Waiting: 2 \n";

#[test]
fn parses_a_stub_status_page() {
    assert_eq!(
        parse_stub_status(PAGE.as_bytes()),
        Ok(StubStatus {
            active: 3,
            accepts: 17,
            handled: 15,
            requests: 42,
            reading: 0,
            writing: 1,
            waiting: 2,
        })
    );
    // Without the last newline, with CRLF line ends.
    assert!(parse_stub_status(PAGE.trim_end().as_bytes()).is_ok());
    assert!(parse_stub_status(PAGE.replace('\n', "\r\n").as_bytes()).is_ok());
}

#[test]
fn truncated_pages_are_errors() {
    // Cut at every line boundary and inside the last numbers: never a partial result.
    for cut in 0..PAGE.len() {
        let page = &PAGE[..cut];
        let complete = page.trim_end().ends_with("Waiting: 2");
        assert_eq!(
            parse_stub_status(page.as_bytes()).is_ok(),
            complete,
            "cut at {cut}: {page:?}"
        );
    }
    assert_eq!(
        parse_stub_status(b"Active connections: 3 \nserver accepts handled requests\n"),
        Err(StubError::Truncated { line: 3 })
    );
}

#[test]
fn garbage_pages_are_errors() {
    for (page, line) in [
        ("<html><body>Welcome to nginx!</body></html>\n", 1),
        ("Active connections: x\nserver accepts handled requests\n1 1 1\nReading: 0 Writing: 1 Waiting: 0\n", 1),
        ("Active connections: -1\nserver accepts handled requests\n1 1 1\nReading: 0 Writing: 1 Waiting: 0\n", 1),
        ("Active connections: 1\nserver accepts requests\n1 1 1\nReading: 0 Writing: 1 Waiting: 0\n", 2),
        ("Active connections: 1\nserver accepts handled requests\n1 1\nReading: 0 Writing: 1 Waiting: 0\n", 3),
        ("Active connections: 1\nserver accepts handled requests\n1 1 1 1\nReading: 0 Writing: 1 Waiting: 0\n", 3),
        ("Active connections: 1\nserver accepts handled requests\n1 1 1\nWriting: 1 Reading: 0 Waiting: 0\n", 4),
        ("Active connections: 1\nserver accepts handled requests\n1 1 1\nReading: 0 Writing: 1 Waiting: 0 Extra: 1\n", 4),
    ] {
        assert_eq!(
            parse_stub_status(page.as_bytes()),
            Err(StubError::Unexpected { line }),
            "{page:?}"
        );
    }
    assert!(parse_stub_status(&[0xff, 0xfe, b'\n']).is_err());
}

#[test]
fn writes_rtcollectors_metrics_with_rates_for_the_counters() {
    let nginx = build(
        &Config {
            status_url: "http://127.0.0.1:8080/nginx_status".into(),
            ..Config::default()
        },
        &BuildCtx::with_roots("/proc", "/sys"),
    )
    .unwrap();
    let status = parse_stub_status(PAGE.as_bytes()).unwrap();
    let mut h = Harness::new(Box::new(Emits(nginx, status)));
    let c = h.collect(10_000);
    let l = "{port=8080,server=127.0.0.1}";
    let expected = [
        ("nginx_active", 3.0),
        ("nginx_accepts", 17.0),
        ("nginx_handled", 15.0),
        ("nginx_requests", 42.0),
        ("nginx_reading", 0.0),
        ("nginx_writing", 1.0),
        ("nginx_waiting", 2.0),
        ("nginx_dropped", 2.0),
    ];
    for (name, value) in expected {
        assert_eq!(c.get(&format!("{name}{l}")), Some(value), "{name}");
    }
    assert_eq!(c.samples.len(), expected.len());
    let c = h.collect(20_000);
    assert_eq!(c.get(&format!("nginx_requests_rate{l}")), Some(0.0));
}

/// Emits a parsed page without fetching, to check names and labels.
struct Emits(Nginx, StubStatus);

impl Input for Emits {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        self.0.emit(&self.1, em);
        crate::core::ready(Ok(()))
    }
}

#[test]
fn sample_is_the_default() {
    let s: Config = sample_options(SAMPLE);
    let d = Config::default();
    assert_eq!((s.status_url, s.timeout), (d.status_url, d.timeout));
}

#[test]
fn bad_urls_are_refused_at_build() {
    let ctx = BuildCtx::with_roots("/proc", "/sys");
    for url in ["localhost/nginx_status", "ftp://h/x", ""] {
        let cfg = Config {
            status_url: url.into(),
            ..Config::default()
        };
        assert!(build(&cfg, &ctx).is_err(), "{url:?}");
    }
}

/// Unreachable from a config file (the parser takes 10ms at least), but a caller building
/// the options by hand learns which option is wrong, not a message led by `nginx:`.
#[test]
fn a_zero_timeout_names_the_option() {
    let cfg = Config {
        timeout: Dur(Duration::ZERO),
        ..Config::default()
    };
    let e = build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).err();
    assert_eq!(e, Some(BuildError::at("timeout", "must be more than 0")));
}

/// Serves `response` once on a loopback port; returns the status URL.
fn serve_once(response: &'static [u8]) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/nginx_status", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 2048];
        let _ = s.read(&mut buf);
        let _ = s.write_all(response);
    });
    url
}

#[test]
fn a_page_cut_short_in_transfer_writes_nothing() {
    // Content-Length promises more than arrives before the connection closes.
    let url = serve_once(
        b"HTTP/1.1 200 OK\r\nContent-Length: 97\r\nConnection: close\r\n\r\nActive connections: 3 \nserver accepts handled requests\n 17 15 42 \n",
    );
    let cfg = Config {
        status_url: url.clone(),
        timeout: Dur(Duration::from_secs(5)),
    };
    let mut h = Harness::new(Box::new(build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).unwrap()));
    let c = h.collect(1_000);
    let e = c.error.expect("a cut page is an error");
    assert!(e.0.contains(&url), "{e}");
    assert!(c.samples.is_empty(), "{:?}", c.samples);
}

//! The web inputs (`http_response`, `nginx`, `apache`) against real servers: private nginx
//! and Apache instances on free loopback ports, each with its own config in a temp dir,
//! stopped by PID; an HTTPS nginx with a CA and certificate made by `openssl` at test time;
//! and a TCP listener that accepts and never answers.
//!
//! The binaries come from `RTC_NGINX_BIN` / `RTC_APACHE_BIN` (and `RTC_APACHE_MODULES`) or
//! Debian's paths, which `scripts/setup-web-peers` installs. Nothing is skipped: a missing
//! binary or a server that does not start fails the test and says why.
#![cfg(feature = "http")]

mod util;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use util::*;

const DAY: f64 = 86_400.0;

fn binary(env: &str, default: &str, what: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.exists(),
        "{what} not found at {} : run scripts/setup-web-peers (installs Debian's nginx-light and \
         apache2), or set {env} to the binary",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A web server process, stopped by its PID when dropped.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    tls_port: Option<u16>,
    name: &'static str,
}

impl Server {
    /// Waits until every port accepts connections, or fails with the server's error log.
    fn wait_ready(mut self) -> Server {
        let deadline = Instant::now() + Duration::from_secs(15);
        let ports: Vec<u16> = std::iter::once(self.port).chain(self.tls_port).collect();
        for port in ports {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!(
                        "{} exited at start ({status}):\n{}",
                        self.name,
                        self.error_log()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "{} does not listen on {port} after 15 s:\n{}",
                    self.name,
                    self.error_log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Certificates made by `openssl` for one test: a CA, and a server certificate for
/// `localhost` and 127.0.0.1 valid for 30 days.
struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// When the server certificate was made (its notAfter is 30 days later).
    made_at: f64,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian package `openssl`) is needed to make test certificates");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_certs(dir: &Path) -> Certs {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "60",
        "-subj",
        "/CN=rtcollector test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-new", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    let made_at = now_secs();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    );
    Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        made_at,
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A private nginx: stub_status at /nginx_status, a few fixed answers, and with `certs` an
/// HTTPS server too.
fn nginx(certs: Option<&Certs>) -> Server {
    let bin = binary("RTC_NGINX_BIN", "/usr/sbin/nginx", "nginx");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let port = free_port();
    let tls_port = certs.map(|_| free_port());
    let tls_server = match (certs, tls_port) {
        (Some(c), Some(p)) => format!(
            "server {{ listen 127.0.0.1:{p} ssl; ssl_certificate {}; ssl_certificate_key {};\n\
             location / {{ return 200 \"secure hello\\n\"; }} }}\n",
            c.cert.display(),
            c.key.display()
        ),
        _ => String::new(),
    };
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  default_type text/plain;\n\
           client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           server {{\n    listen 127.0.0.1:{port};\n\
             location = /nginx_status {{ stub_status; }}\n\
             location = /hello {{ return 200 \"hello from nginx, healthy\\n\"; }}\n\
             location = /teapot {{ return 418 \"short and stout\"; }}\n\
             location = /moved {{ return 301 /hello; }}\n\
             location = /not-a-status-page {{ return 200 \"<html><body>It works!</body></html>\\n\"; }}\n\
           }}\n  {tls_server}}}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let child = Command::new(&bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    Server {
        child,
        dir,
        port,
        tls_port,
        name: "nginx",
    }
    .wait_ready()
}

/// Apache's worker threads in the test config: one process of this many threads.
const APACHE_THREADS: u32 = 5;

/// A private Apache (event MPM, one process of [`APACHE_THREADS`] threads) with mod_status.
fn apache() -> Server {
    let bin = binary("RTC_APACHE_BIN", "/usr/sbin/apache2", "apache2");
    let modules = std::env::var_os("RTC_APACHE_MODULES")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/apache2/modules"));
    for m in ["mod_mpm_event.so", "mod_authz_core.so", "mod_status.so"] {
        assert!(
            modules.join(m).exists(),
            "{} has no {m}: run scripts/setup-web-peers, or set RTC_APACHE_MODULES",
            modules.display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let m = modules.display();
    let port = free_port();
    std::fs::create_dir(dir.path().join("htdocs")).unwrap();
    // As root, Apache's children must run as someone else.
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let user = if root {
        "User www-data\nGroup www-data\n"
    } else {
        ""
    };
    let conf = format!(
        "ServerRoot \"{d}\"\nDefaultRuntimeDir \"{d}\"\nPidFile \"{d}/httpd.pid\"\n\
         Mutex file:{d} default\nErrorLog \"{d}/error.log\"\nLogLevel warn\n\
         ServerName localhost\nListen 127.0.0.1:{port}\nDocumentRoot \"{d}/htdocs\"\n{user}\
         LoadModule mpm_event_module {m}/mod_mpm_event.so\n\
         LoadModule authz_core_module {m}/mod_authz_core.so\n\
         LoadModule status_module {m}/mod_status.so\n\
         ServerLimit 1\nStartServers 1\nThreadLimit {t}\nThreadsPerChild {t}\n\
         MaxRequestWorkers {t}\nMinSpareThreads 1\nMaxSpareThreads {t}\n\
         ExtendedStatus On\n\
         <Location \"/server-status\">\n  SetHandler server-status\n</Location>\n",
        t = APACHE_THREADS
    );
    let conf_path = dir.path().join("httpd.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(&bin)
        .arg("-f")
        .arg(&conf_path)
        .args(["-D", "FOREGROUND"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let server = Server {
        child,
        dir,
        port,
        tls_port: None,
        name: "apache2",
    }
    .wait_ready();
    // Listening comes before the worker threads are up: wait for all of them.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, page) = http_get(port, "/server-status?auto");
        let n = |key: &str| {
            page.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        if let (Some(busy), Some(idle)) = (n("BusyWorkers:"), n("IdleWorkers:")) {
            if busy + idle == APACHE_THREADS {
                return server;
            }
        }
        assert!(
            Instant::now() < deadline,
            "apache2's workers are not all up after 15 s:\n{page}\n{}",
            server.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One plain HTTP/1.0 GET from the test itself: status and body.
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// Runs `rtcollector run --once` on `inputs` (YAML list items) with JSON stdout; fails if it
/// takes more than 60 s.
fn once(inputs: &str) -> (BTreeMap<String, Value>, String) {
    let s = Scratch::new();
    let path = s.config(&format!(
        "hostname: webtest\ninterval: 10s\ninputs:\n{inputs}outputs:\n  - stdout:\n      format: json\n"
    ));
    let mut child = bin()
        .args(["run", "--once", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rtcollector");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rtcollector --once did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    (samples(&stdout(&o)), stderr(&o))
}

fn value(got: &BTreeMap<String, Value>, key: &str) -> f64 {
    got.get(key)
        .and_then(|v| v["value"].as_f64())
        .unwrap_or_else(|| panic!("no `{key}` in {:#?}", got.keys().collect::<Vec<_>>()))
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
    let certs = make_certs(dir.path());
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

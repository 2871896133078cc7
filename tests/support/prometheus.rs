//! A private Prometheus per test (Debian 13's 2.53), on a free loopback port with its own
//! config and data directory, scraping the targets a test names every second; stopped (and
//! its log shown on failure) when dropped. Queries go to its HTTP API; `promtool check
//! metrics` lints an exposition.
//!
//! Needs `RTC_PROMETHEUS_BIN_DIR`, printed by `scripts/setup-prometheus`:
//!
//! ```sh
//! export RTC_PROMETHEUS_BIN_DIR="$(scripts/setup-prometheus)"
//! ```
//!
//! Fails, never skips, without it.

use super::ports::{reserve_port, ReservedPort};
use super::web_servers::http_get;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN_ENV: &str = "RTC_PROMETHEUS_BIN_DIR";

pub fn bin_dir() -> PathBuf {
    let Some(dir) = std::env::var_os(BIN_ENV).filter(|d| !d.is_empty()) else {
        panic!(
            "{BIN_ENV} is not set. These tests scrape with a real Prometheus: run\n    \
             export {BIN_ENV}=\"$(scripts/setup-prometheus)\"\nfirst (it fetches Debian 13's \
             prometheus and promtool packages into a private cache)"
        );
    };
    let dir = PathBuf::from(dir);
    for b in ["prometheus", "promtool"] {
        assert!(
            dir.join(b).exists(),
            "{BIN_ENV}={} has no {b}: run scripts/setup-prometheus again",
            dir.display()
        );
    }
    dir
}

pub struct Prometheus {
    child: Option<Child>,
    pub port: u16,
    /// Keeps `port` ours while Prometheus is stopped for a restart.
    _port_hold: ReservedPort,
    args: Vec<String>,
    pub dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scrapes `job` every second with the YAML of its `scrape_config` (`static_configs`,
    /// `basic_auth`, …) after `job_name` and the intervals.
    pub fn start(scrape_config: &str) -> Prometheus {
        Prometheus::start_with(scrape_config, &[])
    }

    /// As [`Prometheus::start`], with more command-line flags
    /// (`--web.enable-remote-write-receiver`).
    pub fn start_with(scrape_config: &str, flags: &[&str]) -> Prometheus {
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: agent\n{scrape_config}"
            ),
        )
        .expect("write prometheus.yml");
        let hold = reserve_port();
        let port = hold.port;
        let mut args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        args.extend(flags.iter().map(|f| f.to_string()));
        let mut p = Prometheus {
            child: None,
            port,
            _port_hold: hold,
            args,
            dir,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let bin = bin_dir().join("prometheus");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("prometheus.log"))
            .expect("log file");
        let child = Command::new(&bin)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    /// SIGKILL; its data directory stays.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Started again on its port with its data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("prometheus exited with {status}\n{}", self.log());
            }
            let ready = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && http_get(self.port, "/-/ready").0 == 200;
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 30 s\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/<what>` as JSON; fails the test on anything but `"status": "success"`.
    pub fn api(&self, what: &str) -> serde_json::Value {
        let (status, body) = http_get(self.port, &format!("/api/v1/{what}"));
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{what}: {status} {e}: {body}\n{}", self.log()));
        assert_eq!(v["status"], "success", "{what}: {body}\n{}", self.log());
        v["data"].clone()
    }

    /// The instant vector of `query`: each series' labels and value.
    pub fn query(&self, query: &str) -> Vec<(serde_json::Value, f64)> {
        instant_vector(&self.api(&format!("query?query={}", encode(query))))
    }

    /// The raw samples of the one series `selector` picks over the last `seconds`: their
    /// timestamps (ms) and values.
    pub fn samples(&self, selector: &str, seconds: u64) -> Vec<(i64, f64)> {
        let data = self.api(&format!(
            "query?query={}",
            encode(&format!("{selector}[{seconds}s]"))
        ));
        let result = data["result"].as_array().cloned().unwrap_or_default();
        assert!(
            result.len() <= 1,
            "{selector}: more than one series: {data}"
        );
        result
            .first()
            .and_then(|s| s["values"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let t = p[0].as_f64().unwrap_or(f64::NAN);
                let v = p[1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                ((t * 1000.0).round() as i64, v)
            })
            .collect()
    }

    /// Waits until `query` returns at least one series; its result.
    pub fn wait_for(&self, query: &str, timeout: Duration) -> Vec<(serde_json::Value, f64)> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.query(query);
            if !got.is_empty() {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{query}: nothing within {timeout:?}; targets: {}\n{}",
                self.api("targets"),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- prometheus log ---\n{}", self.log());
        }
    }
}

/// `promtool check metrics` on `exposition`: its output, and whether it found nothing.
pub fn promtool_check(exposition: &str) -> (bool, String) {
    let mut child = Command::new(bin_dir().join("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success() && text.trim().is_empty(), text)
}

/// Each series of a query API's instant-vector `data`: its labels and value.
pub fn instant_vector(data: &serde_json::Value) -> Vec<(serde_json::Value, f64)> {
    data["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|s| {
                    let v = s["value"][1].as_str().and_then(|v| v.parse().ok());
                    (s["metric"].clone(), v.unwrap_or(f64::NAN))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Percent-encodes a query for a URL.
pub fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

//! A private VictoriaMetrics per test (Debian 13's 1.112), on a free loopback port with its
//! own data directory: an OTLP/HTTP receiver (`/opentelemetry/v1/metrics`) with Prometheus's
//! query API, stopped (its log shown on failure) when dropped.
//!
//! Needs `RTC_VICTORIAMETRICS_BIN_DIR`, printed by `scripts/setup-victoriametrics`:
//!
//! ```sh
//! export RTC_VICTORIAMETRICS_BIN_DIR="$(scripts/setup-victoriametrics)"
//! ```
//!
//! Fails, never skips, without it.

use super::ports::free_port;
use super::prometheus::{encode, instant_vector};
use super::web_servers::http_get;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN_ENV: &str = "RTC_VICTORIAMETRICS_BIN_DIR";

pub struct VictoriaMetrics {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl VictoriaMetrics {
    pub fn start() -> VictoriaMetrics {
        let Some(dir) = std::env::var_os(BIN_ENV).filter(|d| !d.is_empty()) else {
            panic!(
                "{BIN_ENV} is not set. These tests read back from a real VictoriaMetrics: run\n    \
                 export {BIN_ENV}=\"$(scripts/setup-victoriametrics)\"\nfirst"
            );
        };
        let bin = PathBuf::from(dir).join("victoria-metrics");
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("vm.log")).expect("log file");
        let child = Command::new(&bin)
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("data").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            // Instant queries see samples up to now, not up to 30 s ago.
            .arg("-search.latencyOffset=0s")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut vm = VictoriaMetrics { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = vm.child.try_wait() {
                panic!("victoria-metrics exited with {status}\n{}", vm.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http_get(port, "/health").0 == 200
            {
                return vm;
            }
            assert!(
                Instant::now() < deadline,
                "victoria-metrics not ready in 30 s\n{}",
                vm.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("vm.log")).unwrap_or_default()
    }

    /// The instant vector of `query`: each series' labels and value.
    pub fn query(&self, query: &str) -> Vec<(serde_json::Value, f64)> {
        let (status, body) = http_get(self.port, &format!("/api/v1/query?query={}", encode(query)));
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{query}: {status} {e}: {body}\n{}", self.log()));
        instant_vector(&v["data"])
    }

    pub fn wait_for(&self, query: &str, timeout: Duration) -> Vec<(serde_json::Value, f64)> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.query(query);
            if !got.is_empty() {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{query}: nothing within {timeout:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- victoria-metrics log ---\n{}", self.log());
        }
    }
}

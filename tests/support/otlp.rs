//! A private OTLP/HTTP receiver per test (`otlp_receiver.py` beside this file), decoding with
//! the OpenTelemetry project's protobuf bindings; what it received is read back as JSON.
//!
//! Needs `RTC_OTLP_PYTHON`, printed by `scripts/setup-otlp`:
//!
//! ```sh
//! export RTC_OTLP_PYTHON="$(scripts/setup-otlp)"
//! ```
//!
//! Fails, never skips, without it.

use super::ports::free_port;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const PYTHON_ENV: &str = "RTC_OTLP_PYTHON";

pub struct Receiver {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Receiver {
    pub fn start() -> Receiver {
        let Some(python) = std::env::var_os(PYTHON_ENV).filter(|p| !p.is_empty()) else {
            panic!(
                "{PYTHON_ENV} is not set. These tests decode with the OpenTelemetry protobuf \
                 bindings: run\n    export {PYTHON_ENV}=\"$(scripts/setup-otlp)\"\nfirst"
            );
        };
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = free_port();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/otlp_receiver.py");
        let log = std::fs::File::create(dir.path().join("receiver.log")).expect("log");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(port.to_string())
            .arg(dir.path().join("received.jsonl"))
            .arg(dir.path().join("fail"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", PathBuf::from(&python).display()));
        let mut first = String::new();
        let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first);
        let r = Receiver { child, port, dir };
        assert_eq!(
            first.trim(),
            "ready",
            "the OTLP receiver did not start\n{}",
            r.log()
        );
        r
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("receiver.log")).unwrap_or_default()
    }

    /// Every request received so far: path, headers and the request as JSON.
    pub fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("received.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// While set, every request is answered 503.
    pub fn set_down(&self, down: bool) {
        let flag = self.dir.path().join("fail");
        match down {
            true => std::fs::write(flag, "").expect("fail flag"),
            false => {
                let _ = std::fs::remove_file(flag);
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- OTLP receiver log ---\n{}", self.log());
        }
    }
}

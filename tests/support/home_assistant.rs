//! A real Home Assistant per test, driven by `home_assistant.py` beside this file (started with
//! the python of the venv `scripts/setup-home-assistant` made): a scratch config dir, a free
//! port, onboarding and the MQTT config entry through Home Assistant's API, then websocket
//! commands and states on request.
//!
//! ```sh
//! export RTC_HA_PYTHON="$(scripts/setup-home-assistant)"                 # 2025.4.4
//! export RTC_HA_2024_PYTHON="$(scripts/setup-home-assistant 2024.3.3)"   # the 2024 era
//! ```
//!
//! Fails, never skips, without them; when Home Assistant cannot start, the failure shows its
//! log.

use super::ports::free_port;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

pub struct HomeAssistant {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    dir: tempfile::TempDir,
    pub version: String,
}

impl HomeAssistant {
    /// Starts Home Assistant with the python `env` names, talking to the broker on
    /// `mqtt_port`; returns once it is onboarded and its MQTT entry is set up.
    pub fn start(env: &str, mqtt_port: u16) -> HomeAssistant {
        let Some(python) = std::env::var_os(env).filter(|p| !p.is_empty()) else {
            panic!(
                "{env} is not set. This test runs a real Home Assistant: run\n    \
                 export RTC_HA_PYTHON=\"$(scripts/setup-home-assistant)\"\n    \
                 export RTC_HA_2024_PYTHON=\"$(scripts/setup-home-assistant 2024.3.3)\"\nfirst"
            );
        };
        let dir = tempfile::tempdir().expect("a temp dir");
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/home_assistant.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(dir.path())
            .arg(free_port().to_string())
            .arg(mqtt_port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("driver.log")).expect("driver log"),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", PathBuf::from(&python).display()));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut ha = HomeAssistant {
            child,
            stdin,
            stdout,
            dir,
            version: String::new(),
        };
        let first = ha.read_line();
        match first.get("ready").and_then(Value::as_str) {
            Some(v) => ha.version = v.to_string(),
            None => panic!(
                "Home Assistant did not start: {first}\n{}",
                ha.log_tail(200)
            ),
        }
        ha
    }

    fn read_line(&mut self) -> Value {
        let mut line = String::new();
        let _ = self.stdout.read_line(&mut line);
        serde_json::from_str(&line)
            .unwrap_or_else(|_| json!({"error": format!("driver said {line:?}")}))
    }

    fn request(&mut self, req: Value) -> Value {
        let stdin = self.stdin.as_mut().expect("driver stdin");
        writeln!(stdin, "{req}").expect("write to the driver");
        stdin.flush().expect("flush");
        self.read_line()
    }

    /// The result of a websocket command; fails the test when Home Assistant refused it.
    pub fn ws(&mut self, msg: Value) -> Value {
        let answer = self.request(json!({ "ws": msg }));
        assert_eq!(answer["success"], json!(true), "{msg} failed: {answer}");
        answer["result"].clone()
    }

    /// The state object of `entity`, `None` while there is none.
    pub fn state(&mut self, entity: &str) -> Option<Value> {
        let s = self.request(json!({ "state": entity }));
        s.get("state").is_some().then_some(s)
    }

    /// Polls `entity` until its state is `want`; fails with what it was and the log.
    #[track_caller]
    pub fn wait_state(&mut self, entity: &str, want: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.state(entity);
            if let Some(s) = s.as_ref().filter(|s| s["state"] == want) {
                return s.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "{entity} is not {want} after {timeout:?}: {s:?}\n{}",
                    self.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Home Assistant's log lines at WARNING or ERROR from its MQTT integration: a discovery
    /// config it refused, a deprecated option.
    pub fn mqtt_complaints(&self) -> Vec<String> {
        let text =
            std::fs::read_to_string(self.dir.path().join("home-assistant.log")).unwrap_or_default();
        text.lines()
            .filter(|l| {
                l.contains("components.mqtt") && (l.contains("WARNING") || l.contains("ERROR"))
            })
            .map(str::to_string)
            .collect()
    }

    /// The last `lines` lines of Home Assistant's log and the driver's.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for file in ["driver.log", "stdout.log", "home-assistant.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- {file} ---\n"));
            out.push_str(&all[all.len().saturating_sub(lines)..].join("\n"));
            out.push('\n');
        }
        out
    }
}

impl Drop for HomeAssistant {
    /// Closing stdin ends the driver, which stops Home Assistant (SIGTERM, then SIGKILL).
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(200));
        }
    }
}

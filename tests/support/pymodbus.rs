//! A simulated SMA inverter (tests/fixtures/sma_inverter/sim_inverter.py) on pymodbus, an
//! independent Modbus TCP implementation: one process per test on a free loopback port, with
//! register values chosen by the test, killed by PID when dropped.
//!
//! Needs `RTC_PYMODBUS_PYTHON`, the python of a virtualenv with pymodbus 3.x:
//!
//! ```sh
//! export RTC_PYMODBUS_PYTHON="$(scripts/setup-pymodbus)"
//! ```
//!
//! Nothing is skipped: without it, or when the simulator does not start, the test fails.

use super::ports::{reserve_port, ReservedPort};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const PYTHON_ENV: &str = "RTC_PYMODBUS_PYTHON";

pub fn python() -> PathBuf {
    let Some(py) = std::env::var_os(PYTHON_ENV).filter(|p| !p.is_empty()) else {
        panic!(
            "{PYTHON_ENV} is not set. These tests run a simulated SMA inverter on pymodbus: run\n    \
             export {PYTHON_ENV}=\"$(scripts/setup-pymodbus)\"\nfirst (it makes a virtualenv with \
             pymodbus 3.x under ~/.cache/rtcollector-test/pymodbus)"
        );
    };
    let py = PathBuf::from(py);
    let check = Command::new(&py)
        .args(["-c", "import pymodbus.server, pymodbus.simulator"])
        .output()
        .unwrap_or_else(|e| panic!("{PYTHON_ENV}={}: {e}", py.display()));
    assert!(
        check.status.success(),
        "{PYTHON_ENV}={} cannot import pymodbus: {}; run scripts/setup-pymodbus again",
        py.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    py
}

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sma_inverter/sim_inverter.py")
}

/// A simulated inverter process.
pub struct Sim {
    child: Option<Child>,
    pub port: u16,
    /// Keeps `port` ours while the simulator is stopped for a restart.
    _port_hold: ReservedPort,
    dir: tempfile::TempDir,
    silent: bool,
    /// Whether the simulator writes [`Sim::requests`]' log.
    log_requests: bool,
}

impl Sim {
    pub fn start(config: Value) -> Sim {
        Sim::start_with(config, false)
    }

    pub fn start_with(config: Value, silent: bool) -> Sim {
        Sim::launch(config, silent, true)
    }

    /// For a bench: no request log, whose write and flush per request would be timed too.
    pub fn start_unlogged(config: Value) -> Sim {
        Sim::launch(config, false, false)
    }

    fn launch(config: Value, silent: bool, log_requests: bool) -> Sim {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("sim.json"), config.to_string()).expect("write config");
        let hold = reserve_port();
        let mut sim = Sim {
            child: None,
            port: hold.port,
            _port_hold: hold,
            dir,
            silent,
            log_requests,
        };
        sim.spawn();
        sim
    }

    pub fn spawn(&mut self) {
        let mut cmd = Command::new(python());
        cmd.arg(script())
            .args(["--port", &self.port.to_string()])
            .arg("--config")
            .arg(self.dir.path().join("sim.json"))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(self.stderr_path()).expect("stderr file"),
            ));
        if self.silent {
            cmd.arg("--silent");
        }
        if self.log_requests {
            cmd.arg("--log").arg(self.log_path());
        }
        let mut child = cmd.spawn().expect("start the simulator");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = BufReader::new(out).read_line(&mut first);
            let _ = tx.send(first);
        });
        let first = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        if !first.starts_with("READY") {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "the simulated inverter did not start on port {} ({status:?}): {}",
                self.port,
                std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
            );
        }
        self.child = Some(child);
    }

    /// Stops the simulator and starts it again on the same port with other registers.
    pub fn restart_with(&mut self, config: Value) {
        self.stop();
        std::fs::write(self.dir.path().join("sim.json"), config.to_string()).expect("write config");
        self.spawn();
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("requests.log")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr")
    }

    /// The simulator's stderr and request log, for a failure message.
    pub fn logs(&self) -> String {
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_else(|e| format!("({e})"));
        format!(
            "simulated inverter on port {}:\n-- stderr:\n{}\n-- requests:\n{}",
            self.port,
            read(self.stderr_path()),
            read(self.log_path())
        )
    }

    /// One line per request: `fc=3 unit=3 addr=30201 count=18 -> ok`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
        // The logs live in the temp dir that goes with `self`: a failing test shows them.
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

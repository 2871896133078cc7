//! The built binary: one-shot runs (`run`, `run --once`) and a running agent whose output a
//! test reads line by line.

use super::samples::samples;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a `run --once` may take before the test fails: generous, for a loaded machine.
const ONCE_TIMEOUT: Duration = Duration::from_secs(60);

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rtcollector"))
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run rtcollector")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `rtcollector run --once --config <config>` with `env` set; fails the test if it has not
/// finished within [`ONCE_TIMEOUT`], so that a hung input shows as a failure, not a hang.
pub fn run_once(config: &Path, env: &[(&str, &str)]) -> Output {
    let mut child = bin()
        .args(["run", "--once", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rtcollector");
    // Read both pipes while waiting, so that a chatty run cannot fill one and block.
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let out = std::thread::spawn(move || read_all(out));
    let err = std::thread::spawn(move || read_all(err));
    let deadline = Instant::now() + ONCE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for rtcollector") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rtcollector --once did not finish within {ONCE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn read_all(pipe: Option<impl std::io::Read>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut p) = pipe {
        let _ = p.read_to_end(&mut buf);
    }
    buf
}

/// [`run_once`] that must succeed: its JSON samples by key, and its log (stderr).
pub fn once_samples(config: &Path) -> (BTreeMap<String, Value>, String) {
    let o = run_once(config, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    (samples(&stdout(&o)), stderr(&o))
}

/// A running agent, killed on drop.
pub struct Agent {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Agent {
    /// Starts `rtcollector run` on `config`. A config that names no `buffer_dir` gets one
    /// beside it, so that agents of tests running in parallel do not share the default one
    /// (the second would be refused: one agent per buffer_dir).
    pub fn start(config: &Path) -> Agent {
        Agent::start_under(&[], config)
    }

    /// Starts the agent as the last arguments of `prefix` (a wrapper such as `unshare`
    /// that ends by exec'ing its arguments), or directly when `prefix` is empty.
    pub fn start_under(prefix: &[&str], config: &Path) -> Agent {
        let (tx, lines) = mpsc::channel();
        let tx2 = tx.clone();
        Agent::launch(
            prefix,
            config,
            move |l| drop(tx.send(format!("OUT {l}"))),
            move |l| drop(tx2.send(format!("ERR {l}"))),
            lines,
        )
    }

    /// Starts the agent as [`Agent::start_under`] does, handing each line of its stdout to
    /// `on_out` and of its stderr to `on_err` (on reader threads) instead of keeping them for
    /// [`Agent::wait_for`]: for a run long enough that its output should be summed up as it
    /// comes rather than kept.
    pub fn start_reading(
        prefix: &[&str],
        config: &Path,
        on_out: impl FnMut(String) + Send + 'static,
        on_err: impl FnMut(String) + Send + 'static,
    ) -> Agent {
        let (_, lines) = mpsc::channel();
        Agent::launch(prefix, config, on_out, on_err, lines)
    }

    fn launch(
        prefix: &[&str],
        config: &Path,
        on_out: impl FnMut(String) + Send + 'static,
        on_err: impl FnMut(String) + Send + 'static,
        lines: mpsc::Receiver<String>,
    ) -> Agent {
        let text = std::fs::read_to_string(config).expect("read config");
        if !text.contains("buffer_dir:") {
            let dir = config.parent().expect("config in a dir").join("buffer");
            let text = format!("{}\nbuffer_dir: {}\n", text.trim_end(), dir.display());
            std::fs::write(config, text).expect("write config");
        }
        let mut cmd = match prefix.split_first() {
            None => bin(),
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(env!("CARGO_BIN_EXE_rtcollector"));
                c
            }
        };
        let mut child = cmd
            .args(["run", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start agent");
        read_lines(child.stdout.take().expect("stdout"), on_out);
        read_lines(child.stderr.take().expect("stderr"), on_err);
        Agent { child, lines }
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// Lines (prefixed `OUT ` or `ERR `) until `pred` matches one or `timeout` passes.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> (Vec<String>, bool) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = pred(&l);
                    seen.push(l);
                    if hit {
                        return (seen, true);
                    }
                }
                Err(_) => break,
            }
        }
        (seen, false)
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), sig).expect("send signal");
    }

    /// Waits for exit; returns the status and the time it took.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some((status, start.elapsed()));
            }
            // Fine enough for the outage bench, which reports how long a stop took.
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Everything printed so far (drains the channel).
    pub fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

fn read_lines(
    pipe: impl std::io::Read + Send + 'static,
    mut each: impl FnMut(String) + Send + 'static,
) {
    std::thread::spawn(move || {
        for l in BufReader::new(pipe).lines().map_while(Result::ok) {
            each(l);
        }
    });
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Running the built binary in tests: temp dirs, configs, JSON samples.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rtcollector"))
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A UDP port nobody listens on right now.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free loopback UDP port")
        .port()
}

/// A temp dir holding a config file.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    pub fn config(&self, text: &str) -> PathBuf {
        self.write("config.yaml", text)
    }
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

/// One JSON line of the stdout output, keyed like the unit tests: `name{label=value,…}`
/// with labels sorted and `host` left out.
pub fn key_of(v: &serde_json::Value) -> String {
    let name = v["name"].as_str().expect("name").to_string();
    let labels: Vec<String> = v["labels"]
        .as_object()
        .expect("labels")
        .iter()
        .filter(|(k, _)| *k != "host")
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    if labels.is_empty() {
        name
    } else {
        format!("{name}{{{}}}", labels.join(","))
    }
}

/// All JSON samples of an output, by key (the last value wins).
pub fn samples(out: &str) -> BTreeMap<String, serde_json::Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .map(|v| (key_of(&v), v))
        .collect()
}

/// A running agent, killed on drop.
pub struct Agent {
    pub child: Child,
    lines: std::sync::mpsc::Receiver<String>,
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
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start agent");
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(format!("OUT {l}"));
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("ERR {l}"));
            }
        });
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
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything printed so far (drains the channel).
    pub fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

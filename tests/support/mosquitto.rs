//! A private Mosquitto broker per test, on a free loopback port with its own config file,
//! stopped by PID; and a real subscriber (`mosquitto_sub`) that reads back what arrives,
//! retained flag included.
//!
//! Needs `RTC_MOSQUITTO_BIN_DIR`, printed by `scripts/setup-mosquitto`:
//!
//! ```sh
//! export RTC_MOSQUITTO_BIN_DIR="$(scripts/setup-mosquitto)"
//! ```
//!
//! Fails, never skips, without it.

use super::ports::{reserve_port, ReservedPort};
use nix::sys::signal::Signal;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN_ENV: &str = "RTC_MOSQUITTO_BIN_DIR";

pub fn bin_dir() -> PathBuf {
    let Some(dir) = std::env::var_os(BIN_ENV).filter(|d| !d.is_empty()) else {
        panic!(
            "{BIN_ENV} is not set. These tests run a real Mosquitto broker: run\n    \
             export {BIN_ENV}=\"$(scripts/setup-mosquitto)\"\nfirst (it installs mosquitto and \
             mosquitto-clients with apt-get when missing)"
        );
    };
    let dir = PathBuf::from(dir);
    for b in [
        "mosquitto",
        "mosquitto_sub",
        "mosquitto_pub",
        "mosquitto_passwd",
    ] {
        assert!(
            dir.join(b).exists(),
            "{BIN_ENV}={} has no {b}: run scripts/setup-mosquitto again",
            dir.display()
        );
    }
    dir
}

/// A private broker.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    /// Keeps `port` ours while the broker is stopped for a restart.
    _port_hold: ReservedPort,
    pub dir: tempfile::TempDir,
    /// Arguments mosquitto_sub/mosquitto_pub need (credentials, TLS).
    pub client_args: Vec<String>,
}

impl Broker {
    pub fn anonymous() -> Broker {
        Broker::start("allow_anonymous true\n", Vec::new())
    }

    /// `listener PORT 127.0.0.1` followed by `extra`.
    pub fn start(extra: &str, client_args: Vec<String>) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let hold = reserve_port();
        let port = hold.port;
        let extra = extra.replace("$DIR", &dir.path().display().to_string());
        // Started as root, mosquitto drops to user `mosquitto`, which cannot read our temp
        // files (certificates, persistence): stay who we are.
        let root =
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
        let user = if root { "user root\n" } else { "" };
        std::fs::write(
            dir.path().join("mosquitto.conf"),
            format!("{user}listener {port} 127.0.0.1\n{extra}"),
        )
        .unwrap();
        let mut b = Broker {
            child: None,
            port,
            _port_hold: hold,
            dir,
            client_args,
        };
        b.spawn();
        b
    }

    /// The broker's process id while it runs (to stop and continue it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn spawn(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        let log = std::fs::File::create(self.dir.path().join("mosquitto.log")).unwrap();
        let child = Command::new(bin_dir().join("mosquitto"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "mosquitto on port {} did not start ({exited:?}); log:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// SIGTERM by PID: mosquitto saves its persistence file on the way out.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
            let _ = c.wait();
        }
    }

    pub fn publish(&self, topic: &str, payload: &str) {
        self.publish_with(topic, payload, &[]);
    }

    /// Publishes a retained message, as devices send their last will and state.
    pub fn publish_retained(&self, topic: &str, payload: &str) {
        self.publish_with(topic, payload, &["-r"]);
    }

    fn publish_with(&self, topic: &str, payload: &str, extra: &[&str]) {
        let out = Command::new(bin_dir().join("mosquitto_pub"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q", "1"])
            .args(&self.client_args)
            .args(["-t", topic, "-m", payload])
            .args(extra)
            .output()
            .expect("mosquitto_pub");
        assert!(
            out.status.success(),
            "mosquitto_pub: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub retained: bool,
    pub topic: String,
    pub payload: String,
}

/// `mosquitto_sub -F '%r %t %p'` on `#`, killed on drop.
pub struct Sub {
    child: Child,
    lines: mpsc::Receiver<Msg>,
    /// What arrived while waiting for the ready marker (retained messages come first).
    early: RefCell<std::collections::VecDeque<Msg>>,
}

impl Sub {
    pub fn start(broker: &Broker, extra: &[&str]) -> Sub {
        let mut child = Command::new(bin_dir().join("mosquitto_sub"))
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
            .args(&broker.client_args)
            .args(["-F", "%r %t %p", "-t", "rtc-test/#"])
            .args(if extra.contains(&"-t") {
                &[][..]
            } else {
                &["-t", "#"][..]
            })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto_sub");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let mut parts = l.splitn(3, ' ');
                let msg = Msg {
                    retained: parts.next() == Some("1"),
                    topic: parts.next().unwrap_or("").to_string(),
                    payload: parts.next().unwrap_or("").to_string(),
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
        });
        let sub = Sub {
            child,
            lines,
            early: RefCell::default(),
        };
        // Ready when our own marker comes back.
        let marker = format!("rtc-test/ready/{}", std::process::id());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            broker.publish(&marker, "x");
            let got = sub.until(Duration::from_millis(300), |m| m.topic == marker);
            let ready = got.iter().any(|m| m.topic == marker);
            sub.early.borrow_mut().extend(
                got.into_iter()
                    .filter(|m| !m.topic.starts_with("rtc-test/")),
            );
            if ready {
                return sub;
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto_sub did not subscribe within 10s"
            );
        }
    }

    pub fn next(&self, timeout: Duration) -> Option<Msg> {
        if let Some(m) = self.early.borrow_mut().pop_front() {
            return Some(m);
        }
        self.lines.recv_timeout(timeout).ok()
    }

    /// Messages until one matches `done` or `timeout` passes.
    pub fn until(&self, timeout: Duration, mut done: impl FnMut(&Msg) -> bool) -> Vec<Msg> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left).ok_or(()) {
                Ok(m) => {
                    let hit = done(&m);
                    got.push(m);
                    if hit {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        got
    }

    /// Everything that arrives until nothing has come for `quiet` (test markers left out).
    pub fn settle(&self, quiet: Duration) -> Vec<Msg> {
        let mut got = Vec::new();
        while let Some(m) = self.next(quiet) {
            if !m.topic.starts_with("rtc-test/") {
                got.push(m);
            }
        }
        got
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last message per topic, markers and the status topic left out.
pub fn by_topic(msgs: &[Msg]) -> BTreeMap<String, Msg> {
    msgs.iter()
        .filter(|m| !m.topic.starts_with("rtc-test/"))
        .map(|m| (m.topic.clone(), m.clone()))
        .collect()
}

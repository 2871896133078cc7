//! Private Redis servers: a `redis-server` per test, with the Redis Stack modules
//! (RedisTimeSeries, RediSearch, RedisJSON) or without any, on a reserved loopback port,
//! killed by PID when dropped; and readers for what a test finds in them.
//!
//! The server comes from `RTC_REDIS_STACK_DIR`, which `scripts/setup-redis-stack` prints:
//!
//! ```sh
//! export RTC_REDIS_STACK_DIR="$(scripts/setup-redis-stack)"
//! cargo test --test redistimeseries
//! ```
//!
//! Nothing is skipped: without it, or when a server does not start, the test fails and says
//! why (with the server's log). Instead of Redis Stack, `RTC_REDIS_SERVER` may name a
//! redis-server that has RedisTimeSeries (Redis 8 or later) for the private servers;
//! `RTC_TEST_REDIS_URL` (a server of your own, e.g. in Docker) is used by the tests that only
//! need *a* server ([`Redis::any`]); the TLS, ACL, restart and plain-Redis tests always start
//! their own.

use super::ports::{free_port, reserve_port, ReservedPort};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const STACK_ENV: &str = "RTC_REDIS_STACK_DIR";
pub const URL_ENV: &str = "RTC_TEST_REDIS_URL";
pub const SERVER_ENV: &str = "RTC_REDIS_SERVER";

/// The directory made by `scripts/setup-redis-stack`.
pub fn stack_dir() -> PathBuf {
    let Some(dir) = std::env::var_os(STACK_ENV).filter(|d| !d.is_empty()) else {
        panic!(
            "{STACK_ENV} is not set. These tests run a real Redis Stack server: run\n    \
             export {STACK_ENV}=\"$(scripts/setup-redis-stack)\"\nfirst (it downloads and caches \
             Redis Stack under ~/.cache/rtcollector-test/redis-stack), or set {SERVER_ENV} to a \
             redis-server that has RedisTimeSeries (Redis 8 or later)"
        );
    };
    let dir = PathBuf::from(dir);
    let server = dir.join("bin/redis-stack-server");
    assert!(
        server.exists(),
        "{STACK_ENV}={} has no bin/redis-stack-server: run scripts/setup-redis-stack again",
        dir.display()
    );
    dir
}

/// A redis-server with RedisTimeSeries: `RTC_REDIS_SERVER` (e.g. Redis 8's) when set, else
/// the Redis Stack wrapper in [`stack_dir`].
pub fn stack_server() -> PathBuf {
    if let Some(bin) = std::env::var_os(SERVER_ENV).filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.exists(),
            "{SERVER_ENV}={} does not exist",
            bin.display()
        );
        return bin;
    }
    stack_dir().join("bin/redis-stack-server")
}

/// `redis-benchmark`: the Redis Stack one, else the one on PATH (Debian's redis-tools).
pub fn redis_benchmark() -> PathBuf {
    if let Some(dir) = std::env::var_os(STACK_ENV).filter(|d| !d.is_empty()) {
        let rb = PathBuf::from(dir).join("bin/redis-benchmark");
        if rb.exists() {
            return rb;
        }
    }
    PathBuf::from("redis-benchmark")
}

/// Debian's module-less `redis-server`.
pub fn plain_redis_server() -> PathBuf {
    if let Some(dir) = std::env::var_os(STACK_ENV).filter(|d| !d.is_empty()) {
        let linked = PathBuf::from(dir).join("bin/plain-redis-server");
        if linked.exists() {
            return linked;
        }
    }
    let system = PathBuf::from("/usr/bin/redis-server");
    assert!(
        system.exists(),
        "no plain redis-server: `apt-get install redis-server` (scripts/setup-redis-stack does it)"
    );
    system
}

/// A private redis-server process.
pub struct Server {
    child: Option<Child>,
    bin: PathBuf,
    args: Vec<String>,
    /// Plain-text port (always open: the tests read back through it).
    pub port: u16,
    /// Keeps `port` ours while the server is stopped for a restart.
    _port_hold: ReservedPort,
    pub dir: tempfile::TempDir,
    password: Option<String>,
}

impl Server {
    /// Redis Stack with its modules.
    pub fn stack(extra: &[&str]) -> Server {
        Server::start(stack_server(), extra)
    }

    /// Debian's redis-server without any module.
    pub fn plain(extra: &[&str]) -> Server {
        Server::start(plain_redis_server(), extra)
    }

    /// Redis Stack with a TLS port (returned) beside the plain one, presenting `cert` and
    /// `key`, checking client certificates against `ca` when given; `auth_clients` is
    /// redis' `--tls-auth-clients`: no, optional or yes.
    pub fn stack_tls(
        cert: &Path,
        key: &Path,
        ca: Option<&Path>,
        auth_clients: &str,
    ) -> (Server, u16) {
        let tls_port = free_port();
        let (port, cert, key) = (tls_port.to_string(), path_arg(cert), path_arg(key));
        let mut args = vec![
            "--tls-port",
            &port,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
        ];
        let ca = ca.map(path_arg);
        if let Some(ca) = &ca {
            args.extend(["--tls-ca-cert-file", ca]);
        }
        args.extend(["--tls-auth-clients", auth_clients]);
        (Server::stack(&args), tls_port)
    }

    fn start(bin: PathBuf, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let hold = reserve_port();
        let port = hold.port;
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            &dir.path().display().to_string(),
            "--logfile",
            &dir.path().join("redis.log").display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let password = extra
            .iter()
            .position(|a| *a == "--requirepass")
            .map(|i| extra[i + 1].to_string());
        let mut s = Server {
            child: None,
            bin,
            args,
            port,
            _port_hold: hold,
            dir,
            password,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.bin)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let child = self.child.as_mut().expect("started");
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!(
                    "redis-server {} exited with {status} before answering PING\nstderr: {err}\nlog:\n{}",
                    self.bin.display(),
                    self.log()
                );
            }
            if ping(self.port, self.password.as_deref()) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "redis-server on port {} did not answer PING within 20s\nlog:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL by PID): data is gone, as after a crash without persistence.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `sig` to the server (SIGSTOP makes a server that accepts but never answers).
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("server running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("signal the server");
    }

    /// Starts it again with the same arguments and port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// An admin connection on the plain port (as the default user).
    pub fn client(&self) -> redis::Connection {
        let url = match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/", self.port),
            None => self.url(),
        };
        redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .expect("admin connection to the test server")
    }
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ping(port: u16, password: Option<&str>) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut req = String::new();
    if let Some(p) = password {
        req.push_str(&format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{p}\r\n", p.len()));
    }
    req.push_str("*1\r\n$4\r\nPING\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if text.contains("+PONG") {
            return true;
        }
        if text.starts_with('-') && !text.contains("+OK") {
            return false;
        }
    }
    false
}

/// A server for tests that need only one with RedisTimeSeries: `RTC_TEST_REDIS_URL` when
/// set, else a private Redis Stack.
pub struct Redis {
    pub url: String,
    pub server: Option<Server>,
}

impl Redis {
    pub fn any() -> Redis {
        match std::env::var(URL_ENV) {
            Ok(url) if !url.is_empty() => Redis { url, server: None },
            _ => {
                let s = Server::stack(&[]);
                Redis {
                    url: s.url(),
                    server: Some(s),
                }
            }
        }
    }

    pub fn client(&self) -> redis::Connection {
        match &self.server {
            Some(s) => s.client(),
            None => redis::Client::open(self.url.as_str())
                .and_then(|c| c.get_connection())
                .unwrap_or_else(|e| panic!("cannot connect to {URL_ENV}: {e}")),
        }
    }
}

/// Runs `redis-cli`-like commands for reading back.
pub fn query<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")))
}

/// TS.INFO as (field, value) pairs.
pub fn ts_info(con: &mut redis::Connection, key: &str) -> Vec<(String, redis::Value)> {
    let v: redis::Value = query(con, &["TS.INFO", key]);
    let redis::Value::Array(items) = v else {
        panic!("TS.INFO {key}: {v:?}")
    };
    items
        .chunks(2)
        .map(|kv| (text(&kv[0]), kv[1].clone()))
        .collect()
}

pub fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        redis::Value::Double(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

pub fn info_field(info: &[(String, redis::Value)], name: &str) -> redis::Value {
    info.iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("TS.INFO has no {name}"))
        .1
        .clone()
}

/// The labels of a series, sorted.
pub fn ts_labels(con: &mut redis::Connection, key: &str) -> Vec<(String, String)> {
    let info = ts_info(con, key);
    let redis::Value::Array(pairs) = info_field(&info, "labels") else {
        panic!("labels of {key}")
    };
    let mut out: Vec<(String, String)> = pairs
        .iter()
        .map(|p| match p {
            redis::Value::Array(kv) => (text(&kv[0]), text(&kv[1])),
            other => panic!("label {other:?}"),
        })
        .collect();
    out.sort();
    out
}

/// TS.RANGE key - + as (timestamp, value).
pub fn ts_range(con: &mut redis::Connection, key: &str) -> Vec<(i64, f64)> {
    let v: Vec<(i64, String)> = query(con, &["TS.RANGE", key, "-", "+"]);
    v.into_iter()
        .map(|(t, s)| (t, s.parse().expect("a number")))
        .collect()
}

//! Private SOCKS proxies: microsocks (SOCKS5, with or without username/password) and Dante's
//! danted (SOCKS4 and SOCKS5 without authentication: its username method checks the system's
//! users; Dante 1.4 does not implement SOCKS4a, it connects to 0.0.0.1), one per test on a reserved loopback port, stopped by PID when
//! dropped. Their logs show the connections they made, so a test can prove its traffic went
//! through the proxy.
//!
//! Needs `RTC_SOCKS_BIN_DIR`, printed by `scripts/setup-socks`:
//!
//! ```sh
//! export RTC_SOCKS_BIN_DIR="$(scripts/setup-socks)"
//! ```
//!
//! Fails, never skips, without it or when a proxy does not start (with the proxy's log).

use super::ports::{reserve_port, ReservedPort};
use nix::sys::signal::Signal;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN_ENV: &str = "RTC_SOCKS_BIN_DIR";

pub fn bin(name: &str) -> PathBuf {
    let Some(dir) = std::env::var_os(BIN_ENV).filter(|d| !d.is_empty()) else {
        panic!(
            "{BIN_ENV} is not set. These tests run real SOCKS proxies: run\n    \
             export {BIN_ENV}=\"$(scripts/setup-socks)\"\nfirst (it installs microsocks and \
             dante-server with apt-get when missing)"
        );
    };
    let path = PathBuf::from(dir).join(name);
    assert!(
        path.exists(),
        "{BIN_ENV} has no {name} ({}): run scripts/setup-socks again",
        path.display()
    );
    path
}

/// Which proxy program, and how it is started.
#[derive(Clone)]
enum Kind {
    /// `Some((user, password))` for RFC 1929 authentication.
    Microsocks(Option<(String, String)>),
    Dante,
}

/// A private proxy.
pub struct Proxy {
    child: Option<Child>,
    kind: Kind,
    pub port: u16,
    /// Keeps `port` ours while the proxy is stopped for a restart.
    _port_hold: ReservedPort,
    pub dir: tempfile::TempDir,
}

impl Proxy {
    /// microsocks without authentication.
    pub fn microsocks() -> Proxy {
        Proxy::start(Kind::Microsocks(None))
    }

    /// microsocks that wants `user` and `password`.
    pub fn microsocks_auth(user: &str, password: &str) -> Proxy {
        Proxy::start(Kind::Microsocks(Some((user.into(), password.into()))))
    }

    /// danted: SOCKS4 and SOCKS5 without authentication.
    pub fn dante() -> Proxy {
        Proxy::start(Kind::Dante)
    }

    fn start(kind: Kind) -> Proxy {
        let hold = reserve_port();
        let mut p = Proxy {
            child: None,
            kind,
            port: hold.port,
            _port_hold: hold,
            dir: tempfile::tempdir().expect("temp dir"),
        };
        p.spawn();
        p
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("proxy.log")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let port = self.port.to_string();
        let mut cmd = match &self.kind {
            Kind::Microsocks(auth) => {
                let mut c = Command::new(bin("microsocks"));
                c.args(["-i", "127.0.0.1", "-p", &port]);
                if let Some((u, p)) = auth {
                    c.args(["-u", u, "-P", p]);
                }
                c
            }
            Kind::Dante => {
                let conf = self.dir.path().join("danted.conf");
                std::fs::write(&conf, dante_config(self.port)).unwrap();
                let mut c = Command::new(bin("danted"));
                c.arg("-f")
                    .arg(&conf)
                    .arg("-p")
                    .arg(self.dir.path().join("danted.pid"))
                    .args(["-N", "1"]);
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the SOCKS proxy: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "the SOCKS proxy on port {} did not start ({exited:?}); log:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the proxy has logged so far (both runs, across a restart).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stops the proxy (SIGTERM by PID: danted then stops its child processes too).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
            let _ = c.wait();
        }
    }

    /// Starts microsocks again on the same port, now wanting `user` and `password`.
    pub fn restart_with_auth(&mut self, user: &str, password: &str) {
        self.stop();
        self.kind = Kind::Microsocks(Some((user.into(), password.into())));
        self.spawn();
    }

    /// True when the proxy's process (or one of its children) holds a TCP socket whose local
    /// address is 127.0.0.1:`port`: the proxy's side of a connection that a server sees
    /// coming from that port, which proves the connection was made by the proxy.
    pub fn holds_local_port(&self, port: u16) -> bool {
        let Some(child) = &self.child else {
            return false;
        };
        let inodes = socket_inodes(child.id());
        let local = format!("0100007F:{port:04X}");
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        table.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 9 && f[1] == local && inodes.contains(&f[9].to_string())
        })
    }

    /// `socks5://…` (or another scheme) with the proxy's address: `scheme://[auth@]127.0.0.1:PORT`.
    pub fn url(&self, scheme: &str, auth: &str) -> String {
        format!("{scheme}://{auth}127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The inodes of the sockets that `pid` and its descendants hold open.
fn socket_inodes(pid: u32) -> Vec<String> {
    let mut pids = vec![pid];
    let mut i = 0;
    while i < pids.len() {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", pids[i]))
            .unwrap_or_default();
        pids.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
        i += 1;
    }
    let mut inodes = Vec::new();
    for p in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{p}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let target = std::fs::read_link(fd.path()).unwrap_or_default();
            let target = target.to_string_lossy();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
            {
                inodes.push(inode.to_string());
            }
        }
    }
    inodes
}

/// danted on loopback: no authentication, every connection logged. As root it must be told
/// which users to switch to; `nobody` exists everywhere.
fn dante_config(port: u16) -> String {
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    let users = if root {
        "user.privileged: root\nuser.unprivileged: nobody\n"
    } else {
        ""
    };
    format!(
        "logoutput: stderr\n\
         internal: 127.0.0.1 port = {port}\n\
         external: 127.0.0.1\n\
         clientmethod: none\n\
         socksmethod: none\n\
         {users}\
         client pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  log: error\n}}\n\
         socks pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  command: connect\n  log: connect error\n}}\n"
    )
}

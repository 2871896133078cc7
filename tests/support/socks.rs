//! Private SOCKS proxies: microsocks (SOCKS5, with or without username/password), Dante's
//! danted (SOCKS4 and SOCKS5 without authentication: its username method checks the system's
//! users; Dante 1.4 does not implement SOCKS4a, it connects to 0.0.0.1) and OpenSSH's dynamic
//! forwarding (`ssh -D` to a private sshd: SOCKS4a), one per test on a reserved loopback port,
//! stopped by PID when dropped. Their logs show the connections they made, so a test can prove its traffic went
//! through the proxy.
//!
//! Needs `RTC_SOCKS_BIN_DIR`, printed by `scripts/setup-socks`:
//!
//! ```sh
//! export RTC_SOCKS_BIN_DIR="$(scripts/setup-socks)"
//! ```
//!
//! Fails, never skips, without it or when a proxy does not start (with the proxy's log).

use super::ports::{free_port, reserve_port, ReservedPort};
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
    /// `ssh -D` through a private sshd, which makes the connections.
    Ssh,
}

/// A private proxy.
pub struct Proxy {
    child: Option<Child>,
    /// The sshd behind `ssh -D`.
    sshd: Option<Child>,
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

    /// `ssh -D` (SOCKS4, SOCKS4a and SOCKS5 without authentication) to a private sshd that
    /// lets this user in with a key made here.
    pub fn ssh() -> Proxy {
        Proxy::start(Kind::Ssh)
    }

    fn start(kind: Kind) -> Proxy {
        let hold = reserve_port();
        let mut p = Proxy {
            child: None,
            sshd: None,
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
            Kind::Ssh => self.ssh_command(),
        };
        self.child = Some(self.start_listening(&mut cmd, self.port, "the SOCKS proxy"));
    }

    /// Starts the private sshd and returns the `ssh -D` command that logs in to it.
    fn ssh_command(&mut self) -> Command {
        let dir = self.dir.path();
        for key in ["host_key", "client_key"] {
            let out = Command::new(bin("ssh-keygen"))
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key))
                .output()
                .expect("ssh-keygen");
            assert!(out.status.success(), "ssh-keygen: {out:?}");
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        let sshd_port = free_port();
        let conf = dir.join("sshd_config");
        std::fs::write(&conf, sshd_config(sshd_port, dir)).unwrap();
        // As root sshd wants its privilege separation directory, which only the system
        // service creates (/run is emptied at boot).
        if is_root() {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        let mut sshd = Command::new(bin("sshd"));
        sshd.args(["-D", "-e", "-f"]).arg(&conf);
        self.sshd = Some(self.start_listening(&mut sshd, sshd_port, "sshd"));
        let user = Command::new("id").arg("-un").output().expect("id -un");
        let user = String::from_utf8(user.stdout).unwrap();
        let mut c = Command::new(bin("ssh"));
        c.args(["-N", "-F", "/dev/null", "-D"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-p", &sshd_port.to_string(), "-i"])
            .arg(dir.join("client_key"))
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "ExitOnForwardFailure=yes",
                "-o",
                "LogLevel=ERROR",
            ])
            .arg(format!("{}@127.0.0.1", user.trim()));
        c
    }

    /// Starts `cmd`, its output appended to the log, and waits until it listens on `port`;
    /// fails the test with the log when it does not.
    fn start_listening(&self, cmd: &mut Command, port: u16, what: &str) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{what} on port {port} did not start ({exited:?}); log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    /// What the proxy has logged so far (both runs, across a restart).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stops the proxy (SIGTERM by PID: danted and sshd then stop their child processes too).
    pub fn stop(&mut self) {
        for child in [self.child.take(), self.sshd.take()].into_iter().flatten() {
            terminate(child);
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
        let inodes: Vec<String> = [&self.child, &self.sshd]
            .into_iter()
            .flatten()
            .flat_map(|c| socket_inodes(c.id()))
            .collect();
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

fn terminate(mut child: Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
    let _ = child.wait();
}

fn is_root() -> bool {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0
}

/// sshd on loopback for this user only, by the key in `dir`, forwarding allowed; at DEBUG1
/// it logs the target of each forwarded connection as it was asked for (a name or an address).
fn sshd_config(port: u16, dir: &std::path::Path) -> String {
    let d = dir.display();
    format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
         AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\n\
         PermitRootLogin prohibit-password\nStrictModes no\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nUsePAM no\nAllowTcpForwarding yes\n\
         LogLevel DEBUG1\n"
    )
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

//! Debian's MariaDB (10.11), started privately per test as `nobody` in a temp dir on a
//! reserved loopback port, with TLS (a test CA's server certificate), a password user for
//! the agent, and root without a password on its unix socket for the `mariadb` client, the
//! oracle. Killed by PID when dropped; its error log is printed when a test fails.
//!
//! Needs `RTC_MARIADB_BIN_DIR`, a directory with `mariadbd`, `mariadb` and
//! `mariadb-install-db` (symbolic links are resolved: `nobody` may not enter the cache):
//!
//! ```sh
//! export RTC_MARIADB_BIN_DIR="$(scripts/setup-mariadb)"
//! ```
//!
//! Nothing is skipped: without it, or when the server does not start, the test fails.

use super::certs;
use super::ports::{reserve_port, ReservedPort};
use super::postgres::{as_nobody, give_to_nobody};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN_DIR_ENV: &str = "RTC_MARIADB_BIN_DIR";
pub const USER: &str = "rtc_metrics";
pub const PASSWORD: &str = "rtc-maria-pass";

/// The real path of binary `name` from the bin dir.
pub fn bin(name: &str) -> PathBuf {
    let Some(dir) = std::env::var_os(BIN_DIR_ENV).filter(|d| !d.is_empty()) else {
        panic!(
            "{BIN_DIR_ENV} is not set. These tests run Debian's MariaDB: run\n    \
             export {BIN_DIR_ENV}=\"$(scripts/setup-mariadb)\"\nfirst (it installs mariadb-server)"
        );
    };
    let path = PathBuf::from(&dir).join(name);
    std::fs::canonicalize(&path).unwrap_or_else(|e| {
        panic!(
            "{BIN_DIR_ENV}={}: no {name} there ({e}); run scripts/setup-mariadb again",
            PathBuf::from(dir).display()
        )
    })
}

pub struct Mariadb {
    child: Option<Child>,
    pub port: u16,
    _reserved: ReservedPort,
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    /// Further server options (a replication pair's server ids and binary log).
    options: Vec<String>,
}

impl Mariadb {
    pub fn start() -> Mariadb {
        Mariadb::start_with(&[])
    }

    /// A server with further `mariadbd` options.
    pub fn start_with(options: &[&str]) -> Mariadb {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = certs::make_certs(dir.path(), "myca");
        std::fs::create_dir(dir.path().join("tmp")).expect("tmp dir");
        give_to_nobody(dir.path());
        // Its own TMPDIR: servers bootstrapping at once in a shared /tmp take each other's
        // temporary tables ("Unknown table 'mysql.tmp_user_sys'").
        let out = as_nobody(&bin("mariadb-install-db"))
            .env("TMPDIR", dir.path().join("tmp"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let reserved = reserve_port();
        let mut m = Mariadb {
            child: None,
            port: reserved.port,
            _reserved: reserved,
            dir,
            ca,
            options: options.iter().map(|o| o.to_string()).collect(),
        };
        m.run();
        m.sql(&format!(
            "CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; \
             CREATE USER '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}'; \
             GRANT REPLICA MONITOR ON *.* TO '{USER}'@'127.0.0.1';"
        ));
        m
    }

    /// A replica of `primary` (which must run with `--log-bin` and `--server-id=1`), its
    /// replication started from the primary's current binary log position.
    pub fn replica_of(primary: &Mariadb) -> Mariadb {
        primary.sql(&format!(
            "CREATE USER 'rtc_repl'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; \
             GRANT REPLICATION SLAVE ON *.* TO 'rtc_repl'@'127.0.0.1';"
        ));
        // From the primary's position now: the users made above exist on the replica too.
        let position = primary.sql("SHOW MASTER STATUS");
        let mut fields = position.split('\t');
        let (file, pos) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        let replica = Mariadb::start_with(&["--server-id=2", "--read-only"]);
        replica.sql(&format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='rtc_repl', \
             MASTER_PASSWORD='{PASSWORD}', MASTER_LOG_FILE='{file}', MASTER_LOG_POS={pos}, \
             MASTER_CONNECT_RETRY=1; START SLAVE;",
            primary.port
        ));
        replica
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("err.log")
    }

    pub fn logs(&self) -> String {
        format!(
            "mariadbd on 127.0.0.1:{}:\n{}",
            self.port,
            std::fs::read_to_string(self.log_path()).unwrap_or_else(|e| format!("({e})"))
        )
    }

    /// Starts the server and waits until the client gets in on the socket.
    pub fn run(&mut self) {
        let d = self.dir.path();
        let child = as_nobody(&bin("mariadbd"))
            .arg("--no-defaults")
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", self.log_path().display()))
            .arg(format!(
                "--ssl-cert={}",
                d.join("myca-server.pem").display()
            ))
            .arg(format!("--ssl-key={}", d.join("myca-server.key").display()))
            .arg(format!("--ssl-ca={}", self.ca.display()))
            .args([
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=16M",
                "--performance-schema=OFF",
            ])
            .args(&self.options)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if c.try_wait().ok().flatten().is_some() {
                    panic!("mariadbd exited at start:\n{}", self.logs());
                }
            }
            if self.try_sql("SELECT 1").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "mariadbd did not accept connections within 30 s:\n{}",
            self.logs()
        );
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn try_sql(&self, sql: &str) -> Option<String> {
        let o = Command::new(bin("mariadb"))
            .arg("--no-defaults")
            .arg("-S")
            .arg(self.socket())
            .args([
                "-u",
                "root",
                "-N",
                "-B",
                "--skip-ssl",
                "--connect-timeout=5",
                "-e",
                sql,
            ])
            .output()
            .expect("run mariadb");
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// The client's rows (tab-separated) for `sql`, as root over the socket.
    pub fn sql(&self, sql: &str) -> String {
        let o = Command::new(bin("mariadb"))
            .arg("--no-defaults")
            .arg("-S")
            .arg(self.socket())
            // Without TLS: Ssl_accepts then counts the agent's connections only.
            .args(["-u", "root", "-N", "-B", "--skip-ssl", "-e", sql])
            .output()
            .expect("run mariadb");
        assert!(
            o.status.success(),
            "mariadb `{sql}`: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A one-row answer as `name: value` lines (the client's vertical form).
    pub fn vertical(&self, sql: &str) -> String {
        let o = Command::new(bin("mariadb"))
            .arg("--no-defaults")
            .arg("-S")
            .arg(self.socket())
            .args(["-u", "root", "--skip-ssl", "-E", "-e", sql])
            .output()
            .expect("run mariadb");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `SHOW GLOBAL STATUS` as name → value.
    pub fn status(&self) -> std::collections::BTreeMap<String, String> {
        self.sql("SHOW GLOBAL STATUS")
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

//! Debian's PostgreSQL (15), started privately per test as the unprivileged user `nobody`
//! (PostgreSQL refuses to run as root) in a temp dir on a reserved loopback port, with TLS
//! (a test CA's server certificate), password logins for SCRAM and md5 users, trust on its
//! unix socket for `psql`, the oracle. A streaming replica of it is made with pg_basebackup.
//! Killed by PID when dropped; its log is printed when a test fails.
//!
//! Needs `RTC_POSTGRES_BIN_DIR`, the directory with `initdb`, `postgres`, `psql` and
//! `pg_basebackup`:
//!
//! ```sh
//! export RTC_POSTGRES_BIN_DIR="$(scripts/setup-postgres)"
//! ```
//!
//! Nothing is skipped: without it, or when the server does not start, the test fails.

use super::certs;
use super::ports::{reserve_port, ReservedPort};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN_DIR_ENV: &str = "RTC_POSTGRES_BIN_DIR";
/// A SCRAM-SHA-256 login (the default of PostgreSQL 14+).
pub const USER: &str = "rtc_metrics";
pub const PASSWORD: &str = "rtc-pg-pass";
/// A login whose password is stored as md5.
pub const MD5_USER: &str = "rtc_md5";

pub fn bin_dir() -> PathBuf {
    let Some(dir) = std::env::var_os(BIN_DIR_ENV).filter(|d| !d.is_empty()) else {
        panic!(
            "{BIN_DIR_ENV} is not set. These tests run Debian's PostgreSQL: run\n    \
             export {BIN_DIR_ENV}=\"$(scripts/setup-postgres)\"\nfirst (it installs postgresql)"
        );
    };
    let dir = PathBuf::from(dir);
    for b in ["initdb", "postgres", "psql", "pg_basebackup"] {
        assert!(
            dir.join(b).exists(),
            "{BIN_DIR_ENV}={}: no {b} there; run scripts/setup-postgres again",
            dir.display()
        );
    }
    dir
}

/// uid and gid of `nobody`, whom the servers run as.
pub const BIN_DIR_17_ENV: &str = "RTC_POSTGRES17_BIN_DIR";

/// PostgreSQL 17's binaries, from `scripts/setup-postgres17` (Debian 13's packages unpacked
/// with their glibc).
pub fn bin_dir_17() -> PathBuf {
    let Some(dir) = std::env::var_os(BIN_DIR_17_ENV).filter(|d| !d.is_empty()) else {
        panic!(
            "{BIN_DIR_17_ENV} is not set. This test runs PostgreSQL 17: run\n    \
             export {BIN_DIR_17_ENV}=\"$(scripts/setup-postgres17)\"\nfirst"
        );
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("postgres").exists(),
        "{BIN_DIR_17_ENV}={}: no postgres there; run scripts/setup-postgres17 again",
        dir.display()
    );
    dir
}

pub fn nobody() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let o = Command::new("id")
            .args([flag, "nobody"])
            .output()
            .expect("run id");
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .expect("a `nobody` user to run the database servers as")
    };
    (id("-u"), id("-g"))
}

/// Makes `path` (and everything under it) belong to `nobody`.
pub fn give_to_nobody(path: &Path) {
    let (uid, gid) = nobody();
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .status()
        .expect("chown");
    assert!(st.success(), "chown -R nobody {}", path.display());
}

/// A command run as `nobody`.
pub fn as_nobody(program: &Path) -> Command {
    let (uid, gid) = nobody();
    let mut c = Command::new(program);
    c.uid(uid).gid(gid).env("HOME", "/nonexistent");
    c
}

pub struct Postgres {
    /// Where its binaries are: [`bin_dir`], or PostgreSQL 17's ([`bin_dir_17`]).
    bins: PathBuf,
    child: Option<Child>,
    pub port: u16,
    _reserved: ReservedPort,
    pub dir: tempfile::TempDir,
    /// The data directory's name under `dir` (`data`, or `replica` for a standby).
    data: &'static str,
    /// The test CA that signed the server's certificate.
    pub ca: PathBuf,
}

impl Postgres {
    /// A fresh primary with TLS on.
    pub fn start() -> Postgres {
        Postgres::start_from(bin_dir())
    }

    /// A fresh PostgreSQL 17 primary with TLS on ([`bin_dir_17`]).
    pub fn start_17() -> Postgres {
        Postgres::start_from(bin_dir_17())
    }

    fn start_from(bins: PathBuf) -> Postgres {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = certs::make_certs(dir.path(), "pgca");
        give_to_nobody(dir.path());
        std::fs::write(dir.path().join("pwfile"), "postgres\n").unwrap();
        give_to_nobody(&dir.path().join("pwfile"));
        let out = as_nobody(&bins.join("initdb"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let reserved = reserve_port();
        let mut pg = Postgres {
            bins: bins.clone(),
            child: None,
            port: reserved.port,
            _reserved: reserved,
            dir,
            data: "data",
            ca,
        };
        pg.configure(true);
        pg.run();
        pg.psql(
            "postgres",
            &format!(
                "CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor; \
             SET password_encryption = 'md5'; \
             CREATE ROLE {MD5_USER} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor;"
            ),
        );
        pg
    }

    /// A streaming replica of `primary`, named `application_name` in its pg_stat_replication.
    pub fn replica_of(primary: &Postgres, application_name: &str) -> Postgres {
        let bins = primary.bins.clone();
        let dir = tempfile::tempdir().expect("temp dir");
        give_to_nobody(dir.path());
        let out = as_nobody(&bins.join("pg_basebackup"))
            .arg("-D")
            .arg(dir.path().join("replica"))
            .arg("-h")
            .arg(primary.socket_dir())
            .args([
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ])
            .output()
            .expect("run pg_basebackup");
        assert!(
            out.status.success(),
            "pg_basebackup failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            primary.logs()
        );
        let reserved = reserve_port();
        let mut pg = Postgres {
            bins,
            child: None,
            port: reserved.port,
            _reserved: reserved,
            dir,
            data: "replica",
            ca: primary.ca.clone(),
        };
        // pg_basebackup -R wrote primary_conninfo; the name the primary lists it under.
        let auto = pg.data_dir().join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).unwrap();
        text = text.replace(
            "primary_conninfo = '",
            &format!("primary_conninfo = 'application_name={application_name} "),
        );
        std::fs::write(&auto, text).unwrap();
        std::fs::create_dir_all(pg.socket_dir()).unwrap();
        give_to_nobody(pg.dir.path());
        pg.configure(false);
        pg.run();
        pg
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join(self.data)
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join(format!("{}-sock", self.data))
    }

    /// Settings appended to postgresql.conf, and the logins pg_hba.conf allows.
    fn configure(&self, ssl: bool) {
        std::fs::create_dir_all(self.socket_dir()).unwrap();
        let d = self.dir.path();
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             ssl = {}\nssl_cert_file = '{}'\nssl_key_file = '{}'\n\
             autovacuum = off\nfsync = off\ncheckpoint_timeout = 1h\nlogging_collector = off\n\
             log_connections = on\nhot_standby_feedback = on\nwal_receiver_status_interval = 1s\n",
            self.port,
            self.socket_dir().display(),
            if ssl { "on" } else { "off" },
            d.join("pgca-server.pem").display(),
            d.join("pgca-server.key").display(),
        );
        let path = self.data_dir().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&conf);
        std::fs::write(&path, text).unwrap();
        let hba = format!(
            "local all all trust\nlocal replication all trust\n\
             host all {MD5_USER} 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 scram-sha-256\n"
        );
        std::fs::write(self.data_dir().join("pg_hba.conf"), hba).unwrap();
        if ssl {
            // PostgreSQL wants its key private to its user.
            use std::os::unix::fs::PermissionsExt;
            let key = d.join("pgca-server.key");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        give_to_nobody(d);
    }

    /// Starts the server on its port and waits until psql gets in.
    pub fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = as_nobody(&self.bins.join("postgres"))
            .arg("-D")
            .arg(self.data_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if c.try_wait().ok().flatten().is_some() {
                    panic!("postgres exited at start:\n{}", self.logs());
                }
            }
            if self.try_psql("postgres", "SELECT 1").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "postgres did not accept connections within 30 s:\n{}",
            self.logs()
        );
    }

    /// Stops the server (fast shutdown: sessions ended, then a checkpoint).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.data))
    }

    pub fn logs(&self) -> String {
        format!(
            "postgres ({}) on 127.0.0.1:{}:\n{}",
            self.data,
            self.port,
            std::fs::read_to_string(self.log_path()).unwrap_or_else(|e| format!("({e})"))
        )
    }

    fn psql_output(&self, db: &str, sql: &str) -> Output {
        Command::new(self.bins.join("psql"))
            .arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args([
                "-X",
                "-q",
                "-At",
                "-F",
                "\t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .expect("run psql")
    }

    fn try_psql(&self, db: &str, sql: &str) -> Option<String> {
        let o = self.psql_output(db, sql);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// psql's rows (tab-separated) for `sql` in `db`, as the superuser over the socket.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let o = self.psql_output(db, sql);
        assert!(
            o.status.success(),
            "psql `{sql}`: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// One row of `sql` as column name → text, through psql's expanded output.
    pub fn row(&self, db: &str, sql: &str) -> std::collections::BTreeMap<String, String> {
        let o = Command::new(self.bins.join("psql"))
            .arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-X", "-q", "-At", "-x", "-F", "\t", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            o.status.success(),
            "psql `{sql}`: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Immediate shutdown: the test is over.
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT);
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

//! Debian's net-snmp `snmpd`, started privately per test on a free loopback UDP port with its
//! own config and persistent directory (no root-owned state), and `snmpget`/`snmpwalk` from
//! the same package as the oracle. Values that change on purpose come from
//! tests/fixtures/snmp/pass_persist.py. Killed by PID when dropped; its log is printed when
//! the test fails.
//!
//! Needs `RTC_SNMP_BIN_DIR`, a directory with `snmpd`, `snmpget` and `snmpwalk`:
//!
//! ```sh
//! export RTC_SNMP_BIN_DIR="$(scripts/setup-snmp)"
//! ```
//!
//! Nothing is skipped: without it, or when snmpd does not start, the test fails.

use super::ports::free_udp_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN_DIR_ENV: &str = "RTC_SNMP_BIN_DIR";
pub const COMMUNITY: &str = "rtc-test-community";
pub const V3_USER: &str = "rtcv3";
pub const AUTH_PASS: &str = "rtc-auth-pass";
pub const PRIV_PASS: &str = "rtc-priv-pass";
/// More v3 users, one per protocol pair: (name, authProtocol, privacyProtocol), with
/// [`AUTH_PASS`] and [`PRIV_PASS`]; an empty protocol means the user has none (its level is
/// authNoPriv or noAuthNoPriv).
pub const V3_USERS: &[(&str, &str, &str)] = &[
    ("rtc-md5-des", "MD5", "DES"),
    ("rtc-sha-des", "SHA", "DES"),
    ("rtc-sha224", "SHA-224", ""),
    ("rtc-sha256-aes", "SHA-256", "AES"),
    ("rtc-sha384", "SHA-384", ""),
    ("rtc-sha512-aes", "SHA-512", "AES"),
    ("rtc-md5", "MD5", ""),
    ("rtc-noauth", "", ""),
];
/// The subtree pass_persist.py serves the moving counters under.
pub const COUNTER32: &str = "1.3.6.1.4.1.99999.1.1.0";
pub const COUNTER64: &str = "1.3.6.1.4.1.99999.1.2.0";

pub fn bin_dir() -> PathBuf {
    let Some(dir) = std::env::var_os(BIN_DIR_ENV).filter(|d| !d.is_empty()) else {
        panic!(
            "{BIN_DIR_ENV} is not set. These tests run Debian's snmpd: run\n    \
             export {BIN_DIR_ENV}=\"$(scripts/setup-snmp)\"\nfirst (it installs the snmpd and snmp packages)"
        );
    };
    let dir = PathBuf::from(dir);
    for b in ["snmpd", "snmpget", "snmpwalk"] {
        assert!(
            dir.join(b).exists(),
            "{BIN_DIR_ENV}={}: no {b} there; run scripts/setup-snmp again",
            dir.display()
        );
    }
    dir
}

/// What the private snmpd serves besides its own MIB modules.
#[derive(Clone, Default)]
pub struct Served {
    /// Counter32 start and step per get (pass_persist.py `--c32`).
    pub c32: (u64, u64),
    /// Counter64 start and step.
    pub c64: (u64, u64),
    /// Replace the machine's ifTable/ifXTable by this many made-up interfaces.
    pub interfaces: Option<usize>,
}

pub struct Snmpd {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Snmpd {
    pub fn start(served: &Served) -> Snmpd {
        let bins = bin_dir();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("persist")).expect("persist dir");
        std::fs::create_dir(dir.path().join("client")).expect("client dir");
        std::fs::write(dir.path().join("snmpd.conf"), config(served)).expect("snmpd.conf");
        let mut d = Snmpd {
            child: None,
            port: 0,
            dir,
        };
        let mut last_log = String::new();
        // A free port may be taken between the probe and snmpd's bind: try a few.
        for _ in 0..3 {
            d.port = free_udp_port();
            d.spawn(&bins, served);
            if d.wait_ready() {
                return d;
            }
            last_log = d.logs();
            d.stop();
        }
        panic!("snmpd did not start:\n{last_log}");
    }

    fn spawn(&mut self, bins: &Path, served: &Served) {
        let mut cmd = Command::new(bins.join("snmpd"));
        cmd.args(["-f", "-C", "-c"])
            .arg(self.dir.path().join("snmpd.conf"))
            .arg("-Lf")
            .arg(self.log_path())
            .args(["-M", "/nonexistent", "-m", ""]);
        if served.interfaces.is_some() {
            // The machine's interfaces make way for pass_persist.py's table.
            cmd.args(["-I", "-ifTable,ifXTable,interfaces"]);
        }
        cmd.arg(format!("udp:127.0.0.1:{}", self.port))
            .env("SNMP_PERSISTENT_DIR", self.dir.path().join("persist"))
            .env("MIBS", "")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(self.dir.path().join("stderr")).expect("stderr file"),
            ));
        self.child = Some(cmd.spawn().expect("start snmpd"));
    }

    /// Waits until snmpget gets sysUpTime; false if snmpd exited or 20 s passed.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if c.try_wait().ok().flatten().is_some() {
                    return false;
                }
            }
            let o = self.tool("snmpget", &["-t", "0.5", "-r", "0", "1.3.6.1.2.1.1.3.0"]);
            if o.status.success() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("snmpd.log")
    }

    /// snmpd's log and stderr, for a failure message.
    pub fn logs(&self) -> String {
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_else(|e| format!("({e})"));
        format!(
            "snmpd on udp 127.0.0.1:{}:\n-- log:\n{}\n-- stderr:\n{}",
            self.port,
            read(self.log_path()),
            read(self.dir.path().join("stderr"))
        )
    }

    /// An snmp tool (`snmpget`, `snmpwalk`) run against this snmpd with v2c: numeric OIDs,
    /// raw numbers (`-On -Oqt -Oe`), no MIB files, its state in the test's directory.
    pub fn tool(&self, name: &str, args: &[&str]) -> Output {
        Command::new(bin_dir().join(name))
            .args(["-v2c", "-c", COMMUNITY, "-On", "-Oqte", "-m", ""])
            .args(args[..args.len() - 1].iter())
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&args[args.len() - 1..])
            .env("MIBS", "")
            .env("SNMP_PERSISTENT_DIR", self.dir.path().join("client"))
            .env("SNMPCONFPATH", self.dir.path().join("client"))
            .output()
            .expect("run an snmp tool")
    }

    /// The oracle's `(oid, value)` lines of `snmpget` or `snmpwalk` for `oid` (numeric, no
    /// leading dot; strings without their quotes).
    pub fn oracle(&self, tool: &str, oid: &str) -> Vec<(String, String)> {
        let o = self.tool(tool, &["-t", "5", "-r", "1", oid]);
        assert!(
            o.status.success(),
            "{tool} {oid}: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| {
                (
                    k.trim_start_matches('.').to_string(),
                    v.trim().trim_matches('"').to_string(),
                )
            })
            .collect()
    }

    /// One value by `snmpget`, as a number.
    pub fn get_number(&self, oid: &str) -> f64 {
        let got = self.oracle("snmpget", oid);
        let (_, v) = got
            .first()
            .unwrap_or_else(|| panic!("snmpget {oid}: no value"));
        v.parse()
            .unwrap_or_else(|_| panic!("snmpget {oid}: `{v}` is not a number"))
    }
}

fn config(served: &Served) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snmp/pass_persist.py");
    let pass = |prefix: &str, extra: &str| {
        format!(
            "pass_persist .{prefix} /usr/bin/python3 {} --prefix .{prefix} {extra}\n",
            script.display()
        )
    };
    let mut c = format!(
        "rocommunity {COMMUNITY} 127.0.0.1\n\
         createUser {V3_USER} SHA {AUTH_PASS} AES {PRIV_PASS}\n\
         rouser {V3_USER} priv\n\
         dontLogTCPWrappersConnects yes\n"
    );
    for (user, auth, privacy) in V3_USERS {
        let (level, keys) = match (*auth, *privacy) {
            ("", _) => ("noauth", String::new()),
            (a, "") => ("auth", format!(" {a} {AUTH_PASS}")),
            (a, p) => ("priv", format!(" {a} {AUTH_PASS} {p} {PRIV_PASS}")),
        };
        c += &format!("createUser {user}{keys}\nrouser {user} {level}\n");
    }
    c += &pass(
        "1.3.6.1.4.1.99999",
        &format!(
            "--c32 {}:{} --c64 {}:{}",
            served.c32.0, served.c32.1, served.c64.0, served.c64.1
        ),
    );
    if let Some(n) = served.interfaces {
        c += &pass("1.3.6.1.2.1.2.2", &format!("--rows {n}"));
        c += &pass("1.3.6.1.2.1.31.1.1", &format!("--rows {n}"));
    }
    c
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        self.stop();
    }
}

//! `system`: load averages, uptime, online CPUs and logged-in users.

use crate::config::BuildError;
use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::{fields, read_parsed, ProcFile};
use crate::inputs::BuildCtx;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::PathBuf;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Load averages, uptime, online CPU count and logged-in users.
- system:
    # The utmp file listing login sessions; when it does not exist (routers,
    # containers), the user counts are 0.
    utmp_path: /var/run/utmp
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The utmp file (binary login records).
    pub utmp_path: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            utmp_path: PathBuf::from(DEFAULT_UTMP),
        }
    }
}

pub const DEFAULT_UTMP: &str = "/var/run/utmp";

pub struct System {
    loadavg: ProcFile,
    uptime: ProcFile,
    stat: ProcFile,
    utmp_path: PathBuf,
    utmp_buf: Vec<u8>,
    /// The user names of one collection, reused to count distinct ones.
    users: Vec<[u8; UT_NAMESIZE]>,
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<System, BuildError> {
    if cfg.utmp_path.as_os_str().is_empty() {
        return Err(BuildError::at("utmp_path", "must not be empty"));
    }
    Ok(System {
        loadavg: ProcFile::new(ctx.procfs_root.join("loadavg")),
        uptime: ProcFile::new(ctx.procfs_root.join("uptime")),
        stat: ProcFile::new(ctx.procfs_root.join("stat")),
        utmp_path: cfg.utmp_path.clone(),
        utmp_buf: Vec::with_capacity(UTMP_RECORD * 16),
        users: Vec::with_capacity(16),
    })
}

/// A number that is finite (Rust's float parser also accepts `nan` and `inf`).
fn finite(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// /proc/loadavg: `0.42 0.36 0.31 3/318 24517` → the three load averages.
pub fn parse_loadavg(text: &str) -> Result<[f64; 3], String> {
    let mut f = fields(text);
    let mut next = || {
        f.next()
            .and_then(finite)
            .ok_or_else(|| format!("expected three load averages, got `{}`", text.trim()))
    };
    Ok([next()?, next()?, next()?])
}

/// /proc/uptime: `356789.42 1312345.67` → seconds since boot.
pub fn parse_uptime(text: &str) -> Result<f64, String> {
    fields(text)
        .next()
        .and_then(finite)
        .filter(|v| *v >= 0.0)
        .ok_or_else(|| format!("expected the uptime in seconds, got `{}`", text.trim()))
}

/// The online CPUs: the `cpuN` lines of /proc/stat (the kernel lists online CPUs only).
pub fn count_cpus(text: &str) -> Result<u32, String> {
    let n = text
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|rest| rest.as_bytes().first().is_some_and(u8::is_ascii_digit))
        })
        .count();
    if n == 0 {
        return Err("no cpuN lines".into());
    }
    Ok(n as u32)
}

/// Size of one glibc/musl `struct utmp` on Linux (x86_64, aarch64, armv7, mips, i386).
pub const UTMP_RECORD: usize = 384;
/// `ut_type` of a login session.
pub const USER_PROCESS: i16 = 7;
const UT_USER_OFFSET: usize = 44;
const UT_NAMESIZE: usize = 32;

/// Counts the USER_PROCESS records of a utmp file and the distinct user names among them.
/// `names` is scratch space, reused between calls.
pub fn count_users(data: &[u8], names: &mut Vec<[u8; UT_NAMESIZE]>) -> Result<(u32, u32), String> {
    if data.len() % UTMP_RECORD != 0 {
        return Err(format!(
            "{} bytes is not a whole number of {UTMP_RECORD}-byte utmp records",
            data.len()
        ));
    }
    names.clear();
    for rec in data.chunks_exact(UTMP_RECORD) {
        if i16::from_ne_bytes([rec[0], rec[1]]) != USER_PROCESS {
            continue;
        }
        let mut name = [0u8; UT_NAMESIZE];
        name.copy_from_slice(&rec[UT_USER_OFFSET..UT_USER_OFFSET + UT_NAMESIZE]);
        names.push(name);
    }
    let sessions = names.len() as u32;
    names.sort_unstable();
    names.dedup();
    Ok((sessions, names.len() as u32))
}

impl System {
    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        match read_parsed(&mut self.loadavg, parse_loadavg) {
            Ok([l1, l5, l15]) => {
                em.gauge("system_load1", &[], l1);
                em.gauge("system_load5", &[], l5);
                em.gauge("system_load15", &[], l15);
            }
            Err(e) => em.partial_failure(e),
        }
        match read_parsed(&mut self.uptime, parse_uptime) {
            Ok(up) => em.gauge("system_uptime", &[], up),
            Err(e) => em.partial_failure(e),
        }
        match read_parsed(&mut self.stat, count_cpus) {
            Ok(n) => em.gauge("system_n_cpus", &[], n as f64),
            Err(e) => em.partial_failure(e),
        }
        match self.read_users() {
            Ok((users, unique)) => {
                em.gauge("system_n_users", &[], users as f64);
                em.gauge("system_n_unique_users", &[], unique as f64);
            }
            Err(e) => em.partial_failure(e),
        }
        Ok(())
    }

    /// A missing utmp is no sessions: many routers and containers have none.
    fn read_users(&mut self) -> Result<(u32, u32), InputError> {
        self.utmp_buf.clear();
        match std::fs::File::open(&self.utmp_path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(InputError::io(&self.utmp_path, &e)),
            Ok(mut f) => f
                .read_to_end(&mut self.utmp_buf)
                .map_err(|e| InputError::io(&self.utmp_path, &e))?,
        };
        count_users(&self.utmp_buf, &mut self.users)
            .map_err(|e| InputError::parse(&self.utmp_path, e))
    }
}

impl Input for System {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

//! `kernel`: context switches, interrupts, forks and boot time (/proc/stat), paging
//! (/proc/vmstat), entropy, pressure stall information (/proc/pressure) and file handles
//! (/proc/sys/fs/file-nr).

use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::{fields, keyed_values, read_parsed, ProcFile};
use crate::inputs::BuildCtx;
use nix::errno::Errno;
use serde::{Deserialize, Serialize};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Context switches, interrupts, forks, paging, entropy, pressure stall information
# (PSI, kernels with CONFIG_PSI) and file handles.
- kernel
";

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {}

/// The PSI resources reported, as named under /proc/pressure.
pub const PSI_RESOURCES: [&str; 3] = ["cpu", "memory", "io"];

pub struct Kernel {
    stat: ProcFile,
    vmstat: ProcFile,
    entropy: ProcFile,
    file_nr: ProcFile,
    pressure: [PsiFile; 3],
}

pub fn build(_cfg: &Config, ctx: &BuildCtx) -> Result<Kernel, String> {
    let root = &ctx.procfs_root;
    Ok(Kernel {
        stat: ProcFile::new(root.join("stat")),
        vmstat: ProcFile::new(root.join("vmstat")),
        entropy: ProcFile::new(root.join("sys/kernel/random/entropy_avail")),
        file_nr: ProcFile::new(root.join("sys/fs/file-nr")),
        pressure: PSI_RESOURCES.map(|r| PsiFile {
            resource: r,
            file: ProcFile::new(root.join("pressure").join(r)),
        }),
    })
}

/// The counters of /proc/stat this input reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatCounters {
    /// Boot time, seconds since the epoch.
    pub boot_time: u64,
    pub context_switches: u64,
    /// All interrupts since boot (the first number of the `intr` line).
    pub interrupts: u64,
    pub processes_forked: u64,
}

/// `btime`, `ctxt`, `intr` and `processes` from /proc/stat; all are required.
pub fn parse_stat(text: &str) -> Result<StatCounters, String> {
    const KEYS: [&str; 4] = ["btime", "ctxt", "intr", "processes"];
    let mut v = [None; 4];
    keyed_values(text, &KEYS, &mut v)?;
    match v {
        [Some(boot_time), Some(context_switches), Some(interrupts), Some(processes_forked)] => {
            Ok(StatCounters {
                boot_time,
                context_switches,
                interrupts,
                processes_forked,
            })
        }
        _ => Err(missing(&KEYS, &v)),
    }
}

/// `pgpgin` and `pgpgout` from /proc/vmstat; both are required.
pub fn parse_vmstat(text: &str) -> Result<(u64, u64), String> {
    const KEYS: [&str; 2] = ["pgpgin", "pgpgout"];
    let mut v = [None; 2];
    keyed_values(text, &KEYS, &mut v)?;
    match v {
        [Some(pgin), Some(pgout)] => Ok((pgin, pgout)),
        _ => Err(missing(&KEYS, &v)),
    }
}

fn missing(keys: &[&str], values: &[Option<u64>]) -> String {
    let absent: Vec<&str> = keys
        .iter()
        .zip(values)
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
    format!("missing {}", absent.join(", "))
}

/// A file holding one whole number (entropy_avail).
pub fn parse_number(text: &str) -> Result<u64, String> {
    let mut f = fields(text);
    match (f.next().and_then(|v| v.parse().ok()), f.next()) {
        (Some(n), None) => Ok(n),
        _ => Err(format!("expected one number, got `{}`", text.trim())),
    }
}

/// /proc/sys/fs/file-nr: allocated handles, allocated but unused ones (always 0 since
/// Linux 2.6), and the maximum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FileNr {
    pub allocated: u64,
    pub unused: u64,
    pub max: u64,
}

pub fn parse_file_nr(text: &str) -> Result<FileNr, String> {
    let mut f = fields(text).map(|v| v.parse::<u64>().ok());
    match (f.next(), f.next(), f.next(), f.next()) {
        (Some(Some(allocated)), Some(Some(unused)), Some(Some(max)), None) => Ok(FileNr {
            allocated,
            unused,
            max,
        }),
        _ => Err(format!(
            "expected `allocated unused max`, got `{}`",
            text.trim()
        )),
    }
}

/// One line of a /proc/pressure file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Psi {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Stall time since boot, microseconds.
    pub total_us: u64,
}

/// The `some` and `full` lines of a /proc/pressure file. `some` is required; `full` is
/// absent from /proc/pressure/cpu before Linux 5.13. Lines of other kinds are ignored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pressure {
    pub some: Psi,
    pub full: Option<Psi>,
}

pub fn parse_pressure(text: &str) -> Result<Pressure, String> {
    let (mut some, mut full) = (None, None);
    for line in text.lines() {
        let mut f = fields(line);
        let slot = match f.next() {
            Some("some") => &mut some,
            Some("full") => &mut full,
            _ => continue,
        };
        let bad = || format!("bad line `{line}`");
        let mut avg = |key: &str| {
            f.next()
                .and_then(|kv| kv.strip_prefix(key))
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .ok_or_else(bad)
        };
        let (avg10, avg60, avg300) = (avg("avg10=")?, avg("avg60=")?, avg("avg300=")?);
        let total_us = f
            .next()
            .and_then(|kv| kv.strip_prefix("total="))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(bad)?;
        *slot = Some(Psi {
            avg10,
            avg60,
            avg300,
            total_us,
        });
    }
    let some = some.ok_or("no `some` line")?;
    Ok(Pressure { some, full })
}

/// A /proc/pressure file. Its errors have meanings of their own: kernels 4.20–5.x booted
/// with `psi=0` keep the files but fail reads with EOPNOTSUPP, which means "no PSI" just as
/// a missing file does.
struct PsiFile {
    resource: &'static str,
    file: ProcFile,
}

impl PsiFile {
    fn read(&mut self) -> Result<Option<Pressure>, InputError> {
        match self.file.read_io() {
            Ok(bytes) => std::str::from_utf8(bytes)
                .map_err(|_| "content is not text".to_string())
                .and_then(parse_pressure)
                .map(Some)
                .map_err(|e| InputError::parse(self.file.path(), e)),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(Errno::EOPNOTSUPP as i32) =>
            {
                Ok(None)
            }
            Err(e) => Err(InputError::io(self.file.path(), &e)),
        }
    }
}

impl Kernel {
    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        match read_parsed(&mut self.stat, parse_stat) {
            Ok(s) => {
                em.gauge("kernel_boot_time", &[], s.boot_time as f64);
                em.counter("kernel_context_switches", &[], s.context_switches as f64);
                em.counter("kernel_interrupts", &[], s.interrupts as f64);
                em.counter("kernel_processes_forked", &[], s.processes_forked as f64);
            }
            Err(e) => em.partial_failure(e),
        }
        match read_parsed(&mut self.vmstat, parse_vmstat) {
            Ok((pgin, pgout)) => {
                em.counter("kernel_disk_pages_in", &[], pgin as f64);
                em.counter("kernel_disk_pages_out", &[], pgout as f64);
            }
            Err(e) => em.partial_failure(e),
        }
        match read_parsed(&mut self.entropy, parse_number) {
            Ok(n) => em.gauge("kernel_entropy_avail", &[], n as f64),
            Err(e) => em.partial_failure(e),
        }
        for file in &mut self.pressure {
            match file.read() {
                Ok(Some(p)) => {
                    emit_psi(em, file.resource, "some", &p.some);
                    if let Some(full) = &p.full {
                        emit_psi(em, file.resource, "full", full);
                    }
                }
                Ok(None) => {}
                Err(e) => em.partial_failure(e),
            }
        }
        match read_parsed(&mut self.file_nr, parse_file_nr) {
            Ok(f) => {
                let used = f.allocated.saturating_sub(f.unused);
                em.gauge("kernel_fd_allocated", &[], f.allocated as f64);
                em.gauge("kernel_fd_used", &[], used as f64);
                em.gauge("kernel_fd_max", &[], f.max as f64);
                if f.max > 0 {
                    em.gauge(
                        "kernel_fd_used_percent",
                        &[],
                        100.0 * used as f64 / f.max as f64,
                    );
                }
            }
            Err(e) => em.partial_failure(e),
        }
        Ok(())
    }
}

fn emit_psi(em: &mut Emitter, resource: &str, kind: &str, p: &Psi) {
    let labels = [("resource", resource), ("type", kind)];
    em.gauge("kernel_pressure_avg10", &labels, p.avg10);
    em.gauge("kernel_pressure_avg60", &labels, p.avg60);
    em.gauge("kernel_pressure_avg300", &labels, p.avg300);
    em.counter("kernel_pressure_total_us", &labels, p.total_us as f64);
}

impl Input for Kernel {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

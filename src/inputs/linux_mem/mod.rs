//! `linux_mem`: memory from /proc/meminfo.

use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::{fields, ProcFile};
use crate::inputs::BuildCtx;
use serde::{Deserialize, Serialize};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "- linux_mem\n";

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {}

pub struct LinuxMem {
    meminfo: ProcFile,
}

pub fn build(_cfg: &Config, ctx: &BuildCtx) -> Result<LinuxMem, String> {
    Ok(LinuxMem {
        meminfo: ProcFile::new(ctx.procfs_root.join("meminfo")),
    })
}

/// The /proc/meminfo fields this input uses, in bytes.
#[derive(Debug, Default, PartialEq)]
pub struct MemInfo {
    pub total: u64,
    pub free: u64,
    /// `None` before Linux 3.14, which had no MemAvailable.
    pub available: Option<u64>,
    pub buffers: u64,
    pub cached: u64,
    pub sreclaimable: u64,
}

/// Parses /proc/meminfo. MemTotal and MemFree are required; a line that has a known key but
/// no number makes the whole file garbage, so no half-read values are reported.
pub fn parse_meminfo(text: &str) -> Result<MemInfo, String> {
    let mut m = MemInfo::default();
    let (mut have_total, mut have_free) = (false, false);
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "MemTotal" => {
                have_total = true;
                &mut m.total
            }
            "MemFree" => {
                have_free = true;
                &mut m.free
            }
            "MemAvailable" => m.available.insert(0),
            "Buffers" => &mut m.buffers,
            "Cached" => &mut m.cached,
            "SReclaimable" => &mut m.sreclaimable,
            _ => continue,
        };
        *slot = kib_value(rest).ok_or_else(|| format!("bad value for {key}: `{}`", rest.trim()))?;
    }
    if !(have_total && have_free) {
        return Err("MemTotal or MemFree missing".into());
    }
    Ok(m)
}

/// `  16318412 kB` → bytes.
pub fn kib_value(rest: &str) -> Option<u64> {
    let mut f = fields(rest);
    let n: u64 = f.next()?.parse().ok()?;
    match f.next() {
        Some("kB") => n.checked_mul(1024),
        None => Some(n),
        Some(_) => None,
    }
}

impl LinuxMem {
    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        let parsed = parse_meminfo(self.meminfo.read()?);
        let m = parsed.map_err(|e| InputError::parse(self.meminfo.path(), e))?;
        let cached = m.cached + m.sreclaimable;
        let available = m.available.unwrap_or(m.free + m.buffers + cached).min(m.total);
        let used = m.total - available;
        em.gauge("mem_total_bytes", &[], m.total as f64);
        em.gauge("mem_available_bytes", &[], available as f64);
        em.gauge("mem_used_bytes", &[], used as f64);
        em.gauge("mem_free_bytes", &[], m.free as f64);
        em.gauge("mem_buffers_bytes", &[], m.buffers as f64);
        em.gauge("mem_cached_bytes", &[], cached as f64);
        if m.total > 0 {
            em.gauge("mem_used_percent", &[], 100.0 * used as f64 / m.total as f64);
            em.gauge("mem_available_percent", &[], 100.0 * available as f64 / m.total as f64);
        }
        Ok(())
    }
}

impl Input for LinuxMem {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

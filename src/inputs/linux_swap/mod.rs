//! `linux_swap`: swap space from /proc/meminfo and swap traffic from /proc/vmstat.

use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::{keyed_values, read_parsed, ProcFile};
use crate::inputs::BuildCtx;
use serde::{Deserialize, Serialize};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Swap space (total, free, used) and bytes swapped in and out, with rates.
- linux_swap
";

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {}

pub struct LinuxSwap {
    meminfo: ProcFile,
    vmstat: ProcFile,
    page_size: u64,
}

pub fn build(_cfg: &Config, ctx: &BuildCtx) -> Result<LinuxSwap, String> {
    Ok(LinuxSwap {
        meminfo: ProcFile::new(ctx.procfs_root.join("meminfo")),
        vmstat: ProcFile::new(ctx.procfs_root.join("vmstat")),
        page_size: page_size()?,
    })
}

/// The kernel's page size: pswpin/pswpout count pages.
pub fn page_size() -> Result<u64, String> {
    use nix::unistd::{sysconf, SysconfVar};
    match sysconf(SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) if n > 0 => Ok(n as u64),
        other => Err(format!("cannot read the page size: {other:?}")),
    }
}

/// Swap space in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SwapSpace {
    pub total: u64,
    pub free: u64,
}

/// SwapTotal and SwapFree from /proc/meminfo; both are required.
pub fn parse_meminfo(text: &str) -> Result<SwapSpace, String> {
    let mut v = [None; 2];
    keyed_values(text, &["SwapTotal", "SwapFree"], &mut v)?;
    match v {
        [Some(total), Some(free)] => Ok(SwapSpace { total, free }),
        _ => Err("SwapTotal or SwapFree missing".into()),
    }
}

/// pswpin and pswpout (pages) from /proc/vmstat; both are required.
pub fn parse_vmstat(text: &str) -> Result<(u64, u64), String> {
    let mut v = [None; 2];
    keyed_values(text, &["pswpin", "pswpout"], &mut v)?;
    match v {
        [Some(pin), Some(pout)] => Ok((pin, pout)),
        _ => Err("pswpin or pswpout missing".into()),
    }
}

impl LinuxSwap {
    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        match read_parsed(&mut self.meminfo, parse_meminfo) {
            Ok(s) => {
                // SwapFree can lag SwapTotal briefly during swapoff; never report negative use.
                let used = s.total.saturating_sub(s.free);
                em.gauge("swap_total", &[], s.total as f64);
                em.gauge("swap_free", &[], s.free as f64);
                em.gauge("swap_used", &[], used as f64);
                let percent = if s.total == 0 {
                    0.0
                } else {
                    100.0 * used as f64 / s.total as f64
                };
                em.gauge("swap_used_percent", &[], percent);
            }
            Err(e) => em.partial_failure(e),
        }
        match read_parsed(&mut self.vmstat, parse_vmstat) {
            Ok((pages_in, pages_out)) => {
                let ps = self.page_size as f64;
                em.counter("swap_in", &[], pages_in as f64 * ps);
                em.counter("swap_out", &[], pages_out as f64 * ps);
            }
            Err(e) => em.partial_failure(e),
        }
        Ok(())
    }
}

impl Input for LinuxSwap {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

//! `linux_io`: block device traffic from /proc/diskstats.

use crate::config::BuildError;
use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::{fields, numbers_into, Known, NameFilter, ProcFile};
use crate::inputs::BuildCtx;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Reads, writes, bytes and busy time per block device, with per-second rates.
# Whole disks only by default: partitions and loop, ram, zram and fd devices are left out.
# A device named in include_devices is always reported; one matching include_patterns is
# reported even if it is a loop/ram/zram/fd device (partitions still need
# include_partitions). When include_patterns is not empty, devices matching none of them
# are dropped; exclude_devices and exclude_patterns drop the devices they match.
- linux_io:
    include_devices: []      # exact names, e.g. [mmcblk0p2, zram0]
    exclude_devices: []      # exact names, e.g. [sr0]
    include_patterns: []     # regexes, e.g. [\"^sd\", \"^nvme\"]
    exclude_patterns: []     # regexes, e.g. [\"^dm-\"]
    include_partitions: false
";

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub include_devices: Vec<String>,
    pub exclude_devices: Vec<String>,
    pub include_patterns: Vec<String>,
    pub exclude_patterns: Vec<String>,
    pub include_partitions: bool,
}

pub struct LinuxIo {
    diskstats: ProcFile,
    /// `<sysfs_root>/class/block`.
    class_block: PathBuf,
    choice: Choice,
    /// Whether each device seen is reported (decided once, when it first shows up).
    devices: Known<bool>,
    /// This collection's counters (index into `devices`), written once the whole file parsed.
    rows: Vec<(usize, DiskCounters)>,
}

/// Which devices are reported.
struct Choice {
    filter: NameFilter,
    include_devices: Vec<String>,
    /// Matches exactly the names that match an include pattern.
    by_pattern: NameFilter,
    include_partitions: bool,
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<LinuxIo, BuildError> {
    let filter = NameFilter::new(
        &cfg.include_devices,
        &cfg.exclude_devices,
        &cfg.include_patterns,
        &cfg.exclude_patterns,
    )?;
    // Include patterns win over the exclusion of everything: only their matches pass.
    let by_pattern = NameFilter::new(&[], &[], &cfg.include_patterns, &[".*".into()])?;
    Ok(LinuxIo {
        diskstats: ProcFile::new(ctx.procfs_root.join("diskstats")),
        class_block: ctx.sysfs_root.join("class/block"),
        choice: Choice {
            filter,
            include_devices: cfg.include_devices.clone(),
            by_pattern,
            include_partitions: cfg.include_partitions,
        },
        devices: Known::default(),
        rows: Vec::with_capacity(8),
    })
}

/// The counters of one device that are reported.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct DiskCounters {
    pub reads: u64,
    pub read_sectors: u64,
    pub writes: u64,
    pub write_sectors: u64,
    /// Milliseconds spent doing I/O; `None` on the short partition lines of kernels
    /// before 2.6.25.
    pub io_time_ms: Option<u64>,
}

/// Parses one /proc/diskstats line: `major minor name` then 11 counters (kernels before
/// 4.18), 15 (with discards, 4.18+) or 17 (with flushes, 5.5+); later kernels may add
/// more. Partitions on kernels before 2.6.25 have 4 counters.
pub fn parse_diskstats_line(line: &str) -> Result<(&str, DiskCounters), String> {
    let mut f = fields(line);
    let (Some(major), Some(minor), Some(name)) = (f.next(), f.next(), f.next()) else {
        return Err(format!("truncated line `{}`", line.trim()));
    };
    if major.parse::<u32>().is_err() || minor.parse::<u32>().is_err() {
        return Err(format!("bad device numbers in `{}`", line.trim()));
    }
    let mut v = [0u64; 11];
    let n = numbers_into(f, &mut v, name)?;
    let c = match n {
        4 => DiskCounters {
            reads: v[0],
            read_sectors: v[1],
            writes: v[2],
            write_sectors: v[3],
            io_time_ms: None,
        },
        11 | 15 | 17.. => DiskCounters {
            reads: v[0],
            read_sectors: v[2],
            writes: v[4],
            write_sectors: v[6],
            io_time_ms: Some(v[9]),
        },
        _ => return Err(format!("{name}: {n} counters, expected 11, 15 or 17")),
    };
    Ok((name, c))
}

/// Calls `each` for every device line of /proc/diskstats; any bad line fails the file.
pub fn parse_diskstats(text: &str, mut each: impl FnMut(&str, DiskCounters)) -> Result<(), String> {
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let (name, c) = parse_diskstats_line(line)?;
        each(name, c);
    }
    Ok(())
}

/// RAM disks, compressed RAM (zram), loop devices and floppies: not disks worth watching
/// by default. Their partitions (`loop0p1`) count too.
pub fn is_virtual(name: &str) -> bool {
    ["loop", "ram", "zram", "fd"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// Guesses from the name alone whether a device is a partition, for when sysfs does not
/// know it: `sda1`, `vdb2`, `hdc3`, `xvda1`, and `<disk ending in a digit>p<n>` as in
/// `mmcblk0p1`, `nvme0n1p2`, `md0p1`.
pub fn looks_like_partition(name: &str) -> bool {
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if base.len() == name.len() || base.is_empty() {
        return false;
    }
    if let Some(disk) = base.strip_suffix('p') {
        return disk.ends_with(|c: char| c.is_ascii_digit());
    }
    ["xvd", "sd", "hd", "vd"].iter().any(|p| {
        base.strip_prefix(p)
            .is_some_and(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_lowercase()))
    })
}

/// Whether `name` is a partition: sysfs has `class/block/<name>/partition` for partitions
/// only. Names with `/` (`cciss/c0d0`) appear with `!` in sysfs.
fn is_partition(class_block: &Path, name: &str) -> bool {
    let dir = class_block.join(name.replace('/', "!"));
    if dir.is_dir() {
        dir.join("partition").exists()
    } else {
        looks_like_partition(name)
    }
}

impl Choice {
    fn reports(&self, class_block: &Path, name: &str) -> bool {
        if !self.filter.allows(name) {
            return false;
        }
        if self.include_devices.iter().any(|d| d == name) {
            return true;
        }
        if is_virtual(name) {
            return self.by_pattern.allows(name);
        }
        self.include_partitions || !is_partition(class_block, name)
    }
}

impl LinuxIo {
    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        self.rows.clear();
        self.devices.begin();
        let (devices, rows) = (&mut self.devices, &mut self.rows);
        let (choice, class_block) = (&self.choice, &self.class_block);
        let mut duplicate = false;
        let parsed = parse_diskstats(self.diskstats.read()?, |name, c| {
            let (i, first) = devices.find_or_insert(name, |n| choice.reports(class_block, n));
            duplicate |= !first;
            if devices.get(i).state {
                rows.push((i, c));
            }
        });
        match parsed {
            Ok(()) if duplicate => {
                return Err(InputError::parse(
                    self.diskstats.path(),
                    "device listed twice",
                ))
            }
            Ok(()) => {}
            Err(e) => return Err(InputError::parse(self.diskstats.path(), e)),
        }
        self.devices.sweep();
        for &(i, c) in &self.rows {
            let labels = [("device", &*self.devices.get(i).name)];
            em.counter("diskio_reads", &labels, c.reads as f64);
            em.counter("diskio_writes", &labels, c.writes as f64);
            em.counter("diskio_read_bytes", &labels, c.read_sectors as f64 * 512.0);
            em.counter(
                "diskio_write_bytes",
                &labels,
                c.write_sectors as f64 * 512.0,
            );
            if let Some(t) = c.io_time_ms {
                em.counter("diskio_io_time_ms", &labels, t as f64);
            }
        }
        Ok(())
    }
}

impl Input for LinuxIo {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

//! `zfs`: pool state and I/O, per-dataset I/O and the ARC from the SPL kstats
//! (/proc/spl/kstat/zfs), and optionally pool capacity from `zpool list`.

mod kstat;

use crate::config::{range, BuildError, Dur};
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::command::{self, Captured, Limits, Outcome};
use crate::inputs::support::ProcFile;
use crate::inputs::BuildCtx;
use kstat::Value;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use kstat::{for_each_named, health_code, pool_io, zpool_line, PoolIo, ZpoolLine};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# ZFS (OpenZFS on Linux): pool state and I/O, per-dataset I/O and the ARC from the kernel's
# kstats under <procfs_root>/spl/kstat/zfs, no zpool binary needed; capacity and
# fragmentation need `zpool list` (zpool: true).
- zfs:
    arc: true            # ARC size, target, hits and misses (with rates), hit ratio
    datasets: true       # reads, writes and bytes per dataset (the objset kstats)
    zpool: false         # also run `zpool list -Hp` for size, allocated, free, fragmentation
    zpool_path: zpool    # on PATH, or a full path
    timeout: 10s         # per zpool run; killed after this
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub arc: bool,
    pub datasets: bool,
    pub zpool: bool,
    pub zpool_path: String,
    #[serde(deserialize_with = "range::timeout")]
    pub timeout: Dur,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            arc: true,
            datasets: true,
            zpool: false,
            zpool_path: "zpool".into(),
            timeout: Dur(Duration::from_secs(10)),
        }
    }
}

/// Most of `zpool list`'s output kept: a line per pool.
const ZPOOL_OUTPUT_MAX: usize = 256 * 1024;

/// How long a killed zpool may take to be reaped before it is left to the reaper.
const REAP_GRACE: Duration = Duration::from_secs(5);

/// ARC figures that are sizes in bytes: (kstat name, metric).
const ARC_GAUGES: &[(&str, &str)] = &[
    ("size", "zfs_arc_size_bytes"),
    ("c", "zfs_arc_c_bytes"),
    ("c_min", "zfs_arc_c_min_bytes"),
    ("c_max", "zfs_arc_c_max_bytes"),
    ("data_size", "zfs_arc_data_size_bytes"),
    ("metadata_size", "zfs_arc_metadata_size_bytes"),
    ("mru_size", "zfs_arc_mru_size_bytes"),
    ("mfu_size", "zfs_arc_mfu_size_bytes"),
    ("arc_meta_used", "zfs_arc_meta_used_bytes"),
    ("l2_size", "zfs_arc_l2_size_bytes"),
    ("l2_asize", "zfs_arc_l2_asize_bytes"),
];

/// ARC figures that are event counters, written with a `_rate`.
const ARC_COUNTERS: &[(&str, &str)] = &[
    ("hits", "zfs_arc_hits"),
    ("misses", "zfs_arc_misses"),
    ("demand_data_hits", "zfs_arc_demand_data_hits"),
    ("demand_data_misses", "zfs_arc_demand_data_misses"),
    ("demand_metadata_hits", "zfs_arc_demand_metadata_hits"),
    ("demand_metadata_misses", "zfs_arc_demand_metadata_misses"),
    ("prefetch_data_hits", "zfs_arc_prefetch_data_hits"),
    ("prefetch_data_misses", "zfs_arc_prefetch_data_misses"),
    ("mru_hits", "zfs_arc_mru_hits"),
    ("mfu_hits", "zfs_arc_mfu_hits"),
    ("mru_ghost_hits", "zfs_arc_mru_ghost_hits"),
    ("mfu_ghost_hits", "zfs_arc_mfu_ghost_hits"),
    ("l2_hits", "zfs_arc_l2_hits"),
    ("l2_misses", "zfs_arc_l2_misses"),
    ("evict_skip", "zfs_arc_evict_skip"),
    ("memory_throttle_count", "zfs_arc_memory_throttle_count"),
];

/// A dataset's (objset kstat's) counters.
const OBJSET_COUNTERS: &[(&str, &str)] = &[
    ("reads", "zfs_dataset_reads"),
    ("writes", "zfs_dataset_writes"),
    ("nread", "zfs_dataset_read_bytes"),
    ("nwritten", "zfs_dataset_written_bytes"),
    ("nunlinks", "zfs_dataset_unlinks"),
    ("nunlinked", "zfs_dataset_unlinked"),
];

/// One pool's kstat files, kept open from one collection to the next.
struct Pool {
    name: String,
    state: ProcFile,
    io: ProcFile,
    objsets: Vec<ProcFile>,
    /// Whether its `state` kstat gave the health this collection (`zpool list` then does not).
    health_seen: bool,
}

struct Zpool {
    program: String,
    timeout: Duration,
    out: Captured,
}

pub struct Zfs {
    /// `<procfs_root>/spl/kstat/zfs`.
    dir: PathBuf,
    arc: Option<ProcFile>,
    datasets: bool,
    pools: Vec<Pool>,
    zpool: Option<Zpool>,
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<Zfs, BuildError> {
    if cfg.zpool && cfg.zpool_path.trim().is_empty() {
        return Err(BuildError::at("zpool_path", "must not be empty"));
    }
    let dir = ctx.procfs_root.join("spl/kstat/zfs");
    Ok(Zfs {
        arc: cfg.arc.then(|| ProcFile::new(dir.join("arcstats"))),
        dir,
        datasets: cfg.datasets,
        pools: Vec::new(),
        zpool: cfg.zpool.then(|| Zpool {
            program: cfg.zpool_path.clone(),
            timeout: cfg.timeout.0,
            out: Captured::default(),
        }),
    })
}

impl Zfs {
    async fn collect_async(&mut self, em: &mut Emitter<'_>) -> Result<(), InputError> {
        if !self.dir.is_dir() {
            return Err(InputError::new(format!(
                "{}: no such directory: the zfs kernel module is not loaded (or procfs_root is not the host's /proc)",
                self.dir.display()
            )));
        }
        if let Some(arc) = &mut self.arc {
            if let Err(e) = emit_arc(arc, em) {
                em.partial_failure(e);
            }
        }
        self.rescan_pools()
            .map_err(|e| InputError::io(&self.dir, &e))?;
        for pool in &mut self.pools {
            if let Err(e) = emit_pool(pool, self.datasets, em) {
                em.partial_failure(e);
            }
        }
        if let Some(zpool) = &mut self.zpool {
            if let Err(e) = emit_zpool_list(zpool, &self.pools, em).await {
                em.partial_failure(e);
            }
        }
        Ok(())
    }

    /// The pools are the directories of the kstat directory (its files are module-wide
    /// kstats). Pools kept from the last collection keep their open files.
    fn rescan_pools(&mut self) -> std::io::Result<()> {
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            seen.push(name);
        }
        seen.sort_unstable();
        let mut old = std::mem::take(&mut self.pools);
        for name in seen {
            let pool = match old.iter().position(|p| p.name == name) {
                Some(i) => old.swap_remove(i),
                None => Pool::new(&self.dir, name),
            };
            self.pools.push(pool);
        }
        Ok(())
    }
}

impl Pool {
    fn new(dir: &Path, name: String) -> Self {
        let d = dir.join(&name);
        Pool {
            state: ProcFile::new(d.join("state")),
            io: ProcFile::new(d.join("io")),
            objsets: Vec::new(),
            name,
            health_seen: false,
        }
    }

    fn dir(&self) -> &Path {
        self.state.path().parent().unwrap_or(Path::new("."))
    }

    /// The pool's objset kstats (one per mounted dataset), files kept open across
    /// collections while their dataset stays.
    fn rescan_objsets(&mut self) -> std::io::Result<()> {
        let mut old = std::mem::take(&mut self.objsets);
        for entry in std::fs::read_dir(self.dir())? {
            let path = entry?.path();
            let is_objset = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("objset-"));
            if !is_objset {
                continue;
            }
            let file = match old.iter().position(|f| f.path() == path) {
                Some(i) => old.swap_remove(i),
                None => ProcFile::new(path),
            };
            self.objsets.push(file);
        }
        self.objsets.sort_unstable_by(|a, b| a.path().cmp(b.path()));
        Ok(())
    }
}

/// The ARC's sizes, counters (with rates) and the hit ratio over the last interval.
fn emit_arc(arc: &mut ProcFile, em: &mut Emitter) -> Result<(), InputError> {
    let path = arc.path().to_path_buf();
    let text = arc.read()?;
    kstat::check_named(text).map_err(|e| InputError::parse(&path, e))?;
    let (mut hits, mut misses) = (None, None);
    for_each_named(text, |name, value| {
        let Value::Number(v) = value else {
            return;
        };
        if let Some((_, metric)) = ARC_GAUGES.iter().find(|(k, _)| *k == name) {
            em.gauge(metric, &[], v);
        } else if let Some((_, metric)) = ARC_COUNTERS.iter().find(|(k, _)| *k == name) {
            let rate = em.counter(metric, &[], v);
            match name {
                "hits" => hits = rate,
                "misses" => misses = rate,
                _ => {}
            }
        }
    })
    .map_err(|e| InputError::parse(&path, e))?;
    if let (Some(h), Some(m)) = (hits, misses) {
        if h + m > 0.0 {
            em.gauge("zfs_arc_hit_ratio_percent", &[], h / (h + m) * 100.0);
        }
    }
    Ok(())
}

/// A pool's health, its I/O kstat (OpenZFS before 2.1) and its datasets' I/O.
fn emit_pool(pool: &mut Pool, datasets: bool, em: &mut Emitter) -> Result<(), InputError> {
    let labels = [("pool", pool.name.as_str())];
    pool.health_seen = false;
    let mut failure = None;
    match pool.state.read_optional() {
        Ok(Some(text)) => match health_code(text) {
            Some(code) => {
                em.gauge("zfs_pool_health", &labels, code);
                pool.health_seen = true;
            }
            None => failure = Some(InputError::parse(pool.state.path(), "not a pool state")),
        },
        Ok(None) => {}
        Err(e) => failure = Some(e),
    }
    let io_path = pool.io.path().to_path_buf();
    match pool.io.read_optional() {
        Ok(Some(text)) => match pool_io(text) {
            Ok(io) => {
                em.counter("zfs_pool_read_bytes", &labels, io.nread as f64);
                em.counter("zfs_pool_written_bytes", &labels, io.nwritten as f64);
                em.counter("zfs_pool_reads", &labels, io.reads as f64);
                em.counter("zfs_pool_writes", &labels, io.writes as f64);
            }
            Err(e) => {
                failure.get_or_insert(InputError::parse(&io_path, e));
            }
        },
        Ok(None) => {}
        Err(e) => {
            failure.get_or_insert(e);
        }
    }
    if datasets {
        if let Err(e) = emit_datasets(pool, em) {
            failure.get_or_insert(e);
        }
    }
    failure.map_or(Ok(()), Err)
}

fn emit_datasets(pool: &mut Pool, em: &mut Emitter) -> Result<(), InputError> {
    let dir = pool.dir().to_path_buf();
    pool.rescan_objsets()
        .map_err(|e| InputError::io(&dir, &e))?;
    let mut failure = None;
    for file in &mut pool.objsets {
        let path = file.path().to_path_buf();
        let text = match file.read_io() {
            Ok(bytes) => std::str::from_utf8(bytes).map_err(|_| "content is not text"),
            // Gone: the dataset was unmounted since the listing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                failure.get_or_insert(InputError::io(&path, &e));
                continue;
            }
        };
        let result = text.and_then(|t| emit_objset(&pool.name, t, em));
        if let Err(e) = result {
            failure.get_or_insert(InputError::parse(&path, e));
        }
    }
    failure.map_or(Ok(()), Err)
}

/// One objset kstat: its `dataset_name` is the label of its counters.
fn emit_objset(pool: &str, text: &str, em: &mut Emitter) -> Result<(), &'static str> {
    kstat::check_named(text)?;
    let mut dataset = None;
    for_each_named(text, |name, value| {
        if let ("dataset_name", Value::Text(t)) = (name, value) {
            dataset = Some(t);
        }
    })?;
    let dataset = dataset.filter(|d| !d.is_empty()).ok_or("no dataset_name")?;
    let labels = [("pool", pool), ("dataset", dataset)];
    for_each_named(text, |name, value| {
        if let (Some((_, metric)), Value::Number(v)) =
            (OBJSET_COUNTERS.iter().find(|(k, _)| *k == name), value)
        {
            em.counter(metric, &labels, v);
        }
    })
}

/// Size, allocated, free, fragmentation and capacity of every pool from `zpool list`;
/// the health too for a pool whose `state` kstat did not give it.
async fn emit_zpool_list(
    zpool: &mut Zpool,
    pools: &[Pool],
    em: &mut Emitter<'_>,
) -> Result<(), InputError> {
    let mut cmd = std::process::Command::new(&zpool.program);
    cmd.args(["list", "-Hp", "-o", kstat::ZPOOL_COLUMNS]);
    let limits = Limits {
        timeout: zpool.timeout,
        stdout_cap: ZPOOL_OUTPUT_MAX,
        stderr_cap: 4096,
        reap_grace: REAP_GRACE,
    };
    let what = format!("`{} list -Hp -o {}`", zpool.program, kstat::ZPOOL_COLUMNS);
    match command::run(cmd, &limits, &mut zpool.out).await {
        Outcome::Exited(status) if status.success() => {}
        Outcome::Exited(status) => {
            let stderr = String::from_utf8_lossy(&zpool.out.stderr);
            return Err(InputError::new(format!(
                "{what}: {status}: {}",
                stderr.lines().next().unwrap_or("").trim()
            )));
        }
        Outcome::TimedOut { .. } => {
            return Err(InputError::new(format!(
                "{what}: no answer within {:?}: killed",
                zpool.timeout
            )))
        }
        Outcome::NotStarted(e) => {
            return Err(InputError::new(format!(
                "{what}: cannot start it: {e} (install zfsutils or set zpool_path)"
            )))
        }
        Outcome::WaitFailed(e) => return Err(InputError::new(format!("{what}: {e}"))),
    }
    let text = std::str::from_utf8(&zpool.out.stdout)
        .map_err(|_| InputError::new(format!("{what}: output is not text")))?;
    let mut failure = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let z = match zpool_line(line) {
            Ok(z) => z,
            Err(e) => {
                failure.get_or_insert(InputError::new(format!("{what}: `{line}`: {e}")));
                continue;
            }
        };
        let labels = [("pool", z.name)];
        em.gauge("zfs_pool_size_bytes", &labels, z.size);
        em.gauge("zfs_pool_allocated_bytes", &labels, z.alloc);
        em.gauge("zfs_pool_free_bytes", &labels, z.free);
        if let Some(frag) = z.frag {
            em.gauge("zfs_pool_fragmentation_percent", &labels, frag);
        }
        em.gauge("zfs_pool_capacity_percent", &labels, z.cap);
        let from_kstat = pools.iter().any(|p| p.name == z.name && p.health_seen);
        if !from_kstat {
            if let Some(code) = health_code(z.health) {
                em.gauge("zfs_pool_health", &labels, code);
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

impl Input for Zfs {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(self.collect_async(em))
    }
}

#[cfg(test)]
mod tests;

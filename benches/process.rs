//! The `process` input on the live /proc: µs and heap allocations per collection for a group
//! of 1 and of 20 processes among ~200, found by name (every process looked at), and the
//! same 1 and 20 through a pid file and a cgroup-style pid list (only those looked at).
//!
//! The bench starts `sleep` children under two names of their own (symlinks) and as many
//! filler children as bring the machine to ~200 processes (`RTC_BENCH_PROCESSES`), and
//! kills them at the end.
//!
//! Run: `cargo bench --bench process` (optionally `-- ROUNDS`, default 500).

#[path = "common/mod.rs"]
mod common;
#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::ALLOCS;
use rtcollector::core::metric::SeriesTable;
use rtcollector::core::rate::RateTracker;
use rtcollector::core::{Emitter, Input, Sample};
use rtcollector::inputs::BuildCtx;
use std::cell::RefCell;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

fn input(yaml: &str, sysfs: &Path) -> Box<dyn Input> {
    let text = format!("inputs:\n  - {yaml}\n");
    let cfg = rtcollector::config::parse(Path::new("bench.yaml"), &text)
        .unwrap_or_else(|e| panic!("{yaml}: {e}"));
    cfg.inputs[0]
        .options
        .build(&BuildCtx::with_roots("/proc", sysfs))
        .unwrap()
}

/// Collects `rounds` times; prints µs and allocations per collection and the group's count.
fn bench(name: &str, input: &mut dyn Input, rounds: u64) {
    let table = RefCell::new(SeriesTable::new("bench", 100_000));
    let mut rates = RateTracker::default();
    let mut buf: Vec<Sample> = Vec::with_capacity(4096);
    let mut once = |ts: i64, buf: &mut Vec<Sample>| {
        buf.clear();
        let mut em = Emitter::new(&table, &mut rates, buf, ts);
        let r = smol::block_on(input.collect(&mut em));
        let partial = em.take_partial_failure();
        assert!(r.is_ok() && partial.is_none(), "{name}: {r:?} {partial:?}");
    };
    // Two warm-up collections: open files, series, the CPU baseline.
    once(0, &mut buf);
    once(10_000, &mut buf);
    let allocs = ALLOCS.load(Relaxed);
    let start = Instant::now();
    for i in 2..rounds + 2 {
        once(i as i64 * 10_000, &mut buf);
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    let per = (ALLOCS.load(Relaxed) - allocs) as f64 / rounds as f64;
    let count = {
        let t = table.borrow();
        buf.iter()
            .find(|s| &*t.get(s.series).name == "process_count")
            .map_or(f64::NAN, |s| s.value)
    };
    println!(
        "{name:<40} {us:>9.1} µs/collection {per:>6.1} allocs/collection {count:>4} matching {:>4} samples",
        buf.len()
    );
}

/// Children killed at the end.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(link: &Path, n: usize, kids: &mut Children) {
    if !link.exists() {
        std::os::unix::fs::symlink("/bin/sleep", link).unwrap();
    }
    for _ in 0..n {
        let c = Command::new(link)
            .arg("3600")
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep starts");
        kids.0.push(c);
    }
}

fn processes_now() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter(|e| {
            e.as_ref().is_ok_and(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
        })
        .count()
}

fn main() {
    let rounds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let target: usize = common::env_or("RTC_BENCH_PROCESSES", 200);
    let dir = tempfile::tempdir().unwrap();
    let mut kids = Children(Vec::new());
    spawn(&dir.path().join("rtcbone"), 1, &mut kids);
    spawn(&dir.path().join("rtcbtwenty"), 20, &mut kids);
    let filler = target.saturating_sub(processes_now());
    spawn(&dir.path().join("rtcbfill"), filler, &mut kids);
    // Pid lists as a pid file and a unit's cgroup.procs would give them.
    let pid_file = dir.path().join("one.pid");
    std::fs::write(&pid_file, format!("{}\n", kids.0[0].id())).unwrap();
    let unit = dir.path().join("sys/fs/cgroup/system.slice/twenty.service");
    std::fs::create_dir_all(&unit).unwrap();
    let twenty: String = kids.0[1..21]
        .iter()
        .map(|c| format!("{}\n", c.id()))
        .collect();
    std::fs::write(unit.join("cgroup.procs"), twenty).unwrap();
    let sysfs = dir.path().join("sys");
    // Let the children reach their sleep.
    std::thread::sleep(std::time::Duration::from_millis(300));
    println!(
        "{rounds} collections each, {} processes on the machine",
        processes_now()
    );
    for (name, yaml) in [
        (
            "by name, 1 match",
            "process: {proc_regex: '^rtcbone$', name: one}",
        ),
        (
            "by name, 20 matches",
            "process: {proc_regex: '^rtcbtwenty$', name: twenty}",
        ),
        (
            "by name, 20 matches, per_pid",
            "process: {proc_regex: '^rtcbtwenty$', name: twenty, per_pid: true}",
        ),
        (
            "by name, 1 match, memory: false",
            "process: {proc_regex: '^rtcbone$', name: one, memory: false}",
        ),
        (
            "pid_file, 1 match",
            &format!("process: {{pid_file: {}, name: one}}", pid_file.display()),
        ),
        (
            "systemd_unit, 20 matches",
            "process: {systemd_unit: twenty, name: twenty}",
        ),
    ] {
        bench(name, &mut *input(yaml, &sysfs), rounds);
    }
    drop(kids);
}

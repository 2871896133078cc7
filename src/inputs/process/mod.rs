//! `process`: CPU, memory, threads, open files and disk I/O of one group of processes
//! (pollect's `Process`, Telegraf's `procstat`), from /proc/<pid>.

mod parse;
mod pidfs;

use crate::config::BuildError;
use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::BuildCtx;
use pidfs::{Got, PidDir, PidError};
use regex_lite::Regex;
use rustix::fd::OwnedFd;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use parse::{parse_stat, PidStat};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# One group of processes (pollect's `Process`, Telegraf's `procstat`): how many match, their
# CPU %, memory, threads, open files and disk I/O, summed. A process belongs to the group
# when it matches every selector given; add one entry per group.
- process:
    name: nginx                   # the `process` label; default: the first selector's text
    proc_regex: \"^nginx$\"         # regex over the process name (the kernel's comm, 15 bytes)
    # exe: \"^nginx$\"              # the same, Telegraf's key (both must match when both are given)
    # pattern: \"nginx: worker\"    # regex over the whole command line
    # user: www-data              # only this user's processes (a name from /etc/passwd, or a uid)
    # pid_file: /run/nginx.pid    # only the process in this file: no walk over /proc
    # systemd_unit: nginx.service # only the processes of this unit's cgroup: no walk over /proc
    memory: true                  # RSS, PSS, virtual size (pollect's `memory`)
    load: true                    # CPU % from the second collection on (pollect's `load`)
    per_pid: false                # also each process's own series, label `pid`
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub name: String,
    /// pollect's `procRegex` is accepted too.
    #[serde(alias = "procRegex")]
    pub proc_regex: String,
    pub exe: String,
    pub pattern: String,
    pub user: String,
    pub pid_file: String,
    pub systemd_unit: String,
    pub memory: bool,
    pub load: bool,
    pub per_pid: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: String::new(),
            proc_regex: String::new(),
            exe: String::new(),
            pattern: String::new(),
            user: String::new(),
            pid_file: String::new(),
            systemd_unit: String::new(),
            memory: true,
            load: true,
            per_pid: false,
        }
    }
}

/// At most this many `/proc/<pid>/stat` files stay open between collections when every
/// process is looked at (the name and user selectors), and at most an eighth of the open-file
/// limit: several `process` entries and `processes` share that limit.
const MAX_HELD: usize = 256;

/// Where the candidates come from: every process, or a list that names only a few.
enum Candidates {
    All,
    PidFile(PathBuf),
    /// A systemd unit's `cgroup.procs`: the unified (v2) hierarchy's, then the v1 `systemd`
    /// one's. A missing file means the unit is not running.
    Cgroup([PathBuf; 2]),
}

/// A process's CPU ticks at the last collection, to take the next one's difference from.
#[derive(Debug, Clone, Copy)]
struct CpuMark {
    pid: u32,
    start_ticks: u64,
    utime: u64,
    stime: u64,
}

/// A figure that some processes may refuse to show (another user's, without root).
#[derive(Debug, Default, Clone, Copy)]
struct Guarded {
    sum: u64,
    /// Some process refused: the sum is partial and is left out.
    denied: bool,
}

impl Guarded {
    fn add(&mut self, got: &Got<u64>) {
        match got {
            Got::Value(v) => self.sum += v,
            Got::Denied => self.denied = true,
            Got::Gone => {}
        }
    }
}

/// The group's sums over one collection.
#[derive(Debug, Default)]
struct Totals {
    count: u64,
    threads: u64,
    rss: u64,
    vsize: u64,
    pss: Guarded,
    fds: Guarded,
    read: Guarded,
    write: Guarded,
    /// CPU ticks since the last collection of the processes seen in both.
    cpu_user: u64,
    cpu_system: u64,
    cpu_seen: bool,
    oldest_start: Option<u64>,
}

/// One process's figures, for the group's sums and its own series.
struct One {
    threads: u64,
    rss: u64,
    vsize: u64,
    pss: Got<u64>,
    fds: Got<u64>,
    read: Got<u64>,
    write: Got<u64>,
    /// CPU ticks since the last collection, if the process was seen in it.
    cpu: Option<(u64, u64)>,
    start_ticks: u64,
}

pub struct Process {
    name: String,
    names: Vec<Regex>,
    pattern: Option<Regex>,
    uid: Option<u32>,
    candidates: Candidates,
    memory: bool,
    load: bool,
    per_pid: bool,
    proc: PidDir,
    /// The pids a pid file or cgroup named, sorted; reused.
    pids: Vec<u32>,
    /// Stat files kept open, by ascending pid, and this collection's list (swapped).
    held: Vec<(u32, OwnedFd)>,
    next: Vec<(u32, OwnedFd)>,
    max_held: usize,
    prev_cpu: Vec<CpuMark>,
    cpu: Vec<CpuMark>,
    /// The tick of the last collection, for CPU %.
    prev_ts: Option<i64>,
    totals: Totals,
    clk_tck: f64,
    page_size: u64,
    /// Seconds since the epoch at boot (/proc/stat's `btime`), read at the first collection.
    boot_time: Option<u64>,
    /// Which refusals have been logged: PSS, file descriptors, I/O.
    told: [bool; 3],
    /// The first unreadable smaps_rollup, fd or io of this collection (the process still
    /// counts, without that figure).
    garbage: Option<(u32, PidError)>,
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<Process, BuildError> {
    let regex = |key: &'static str, text: &str| {
        Regex::new(text).map_err(|e| BuildError::at(key, format!("invalid pattern `{text}`: {e}")))
    };
    let mut names = Vec::new();
    for (key, text) in [("proc_regex", &cfg.proc_regex), ("exe", &cfg.exe)] {
        if !text.is_empty() {
            names.push(regex(key, text)?);
        }
    }
    let pattern = match cfg.pattern.as_str() {
        "" => None,
        p => Some(regex("pattern", p)?),
    };
    let uid = match cfg.user.as_str() {
        "" => None,
        u => Some(resolve_user(u).map_err(|e| BuildError::at("user", e))?),
    };
    let candidates = if !cfg.pid_file.is_empty() {
        if !cfg.systemd_unit.is_empty() {
            return Err(BuildError::at(
                "systemd_unit",
                "give pid_file or systemd_unit, not both",
            ));
        }
        Candidates::PidFile(PathBuf::from(&cfg.pid_file))
    } else if !cfg.systemd_unit.is_empty() {
        Candidates::Cgroup(unit_cgroup_procs(&ctx.sysfs_root, &cfg.systemd_unit))
    } else {
        Candidates::All
    };
    let selectors = [
        &cfg.proc_regex,
        &cfg.exe,
        &cfg.pattern,
        &cfg.user,
        &cfg.pid_file,
        &cfg.systemd_unit,
    ];
    let Some(first) = selectors.iter().find(|s| !s.is_empty()) else {
        return Err(BuildError::entry(
            "give at least one of proc_regex, exe, pattern, user, pid_file, systemd_unit",
        ));
    };
    let name = if cfg.name.is_empty() {
        first.to_string()
    } else {
        cfg.name.clone()
    };
    Ok(Process {
        name,
        names,
        pattern,
        uid,
        candidates,
        memory: cfg.memory,
        load: cfg.load,
        per_pid: cfg.per_pid,
        proc: PidDir::new(&ctx.procfs_root),
        pids: Vec::new(),
        held: Vec::new(),
        next: Vec::new(),
        max_held: held_cap(),
        prev_cpu: Vec::new(),
        cpu: Vec::new(),
        prev_ts: None,
        totals: Totals::default(),
        clk_tck: sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap_or(100) as f64,
        page_size: sysconf(nix::unistd::SysconfVar::PAGE_SIZE).unwrap_or(4096),
        boot_time: None,
        told: [false; 3],
        garbage: None,
    })
}

fn sysconf(var: nix::unistd::SysconfVar) -> Option<u64> {
    let v = nix::unistd::sysconf(var).ok()??;
    u64::try_from(v).ok().filter(|&v| v > 0)
}

/// [`MAX_HELD`], or an eighth of the soft open-file limit if that is less.
fn held_cap() -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    MAX_HELD.min(usize::try_from(soft / 8).unwrap_or(MAX_HELD))
}

/// A uid, or a user name looked up in /etc/passwd (once, at build: a user added later needs
/// a reload).
fn resolve_user(user: &str) -> Result<u32, String> {
    if let Ok(uid) = user.parse() {
        return Ok(uid);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| format!("cannot look up `{user}`: /etc/passwd: {e}"))?;
    parse::uid_in_passwd(&passwd, user)
        .ok_or_else(|| format!("no user `{user}` in /etc/passwd (give the uid instead)"))
}

/// The `cgroup.procs` files of a systemd unit: `nginx` is `nginx.service` under
/// `system.slice`; a name with a `/` is a path under the cgroup root as it is
/// (`user.slice/user-1000.slice/user@1000.service`).
fn unit_cgroup_procs(sysfs_root: &Path, unit: &str) -> [PathBuf; 2] {
    let rel = if unit.contains('/') {
        unit.trim_matches('/').to_string()
    } else if unit.contains('.') {
        format!("system.slice/{unit}")
    } else {
        format!("system.slice/{unit}.service")
    };
    let root = sysfs_root.join("fs/cgroup");
    [
        root.join(&rel).join("cgroup.procs"),
        root.join("systemd").join(&rel).join("cgroup.procs"),
    ]
}

impl Process {
    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        self.totals = Totals::default();
        self.cpu.clear();
        if self.boot_time.is_none() {
            self.boot_time = self.proc.boot_time();
        }
        let result = self.visit_candidates(em);
        if let Err(e) = result {
            self.proc.forget();
            return Err(e);
        }
        self.emit_totals(em);
        std::mem::swap(&mut self.prev_cpu, &mut self.cpu);
        self.prev_ts = Some(em.ts_ms());
        Ok(())
    }

    /// Looks at every candidate process in ascending pid order, keeping the stat files of
    /// the ones still there for the next collection.
    fn visit_candidates(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        self.next.clear();
        let mut held = std::mem::take(&mut self.held);
        let mut old = held.drain(..).peekable();
        let mut failure: Option<(u32, PidError)> = None;
        let mut visit = |me: &mut Self, pid: u32, em: &mut Emitter| {
            // Files of processes listed before this one (or listed out of order) are closed.
            while old.next_if(|h| h.0 < pid).is_some() {}
            let kept = old.next_if(|h| h.0 == pid).map(|h| h.1);
            match me.visit(pid, kept, em) {
                Ok(Some(fd)) if me.next.len() < me.max_held => me.next.push((pid, fd)),
                Ok(_) => {}
                Err(e) => {
                    failure.get_or_insert((pid, e));
                }
            }
        };
        if matches!(self.candidates, Candidates::All) {
            self.pids.clear();
            self.proc.list(&mut self.pids)?;
        } else {
            self.listed_pids()?;
        }
        let pids = std::mem::take(&mut self.pids);
        for &pid in &pids {
            visit(self, pid, em);
        }
        self.pids = pids;
        drop(old);
        self.held = held;
        std::mem::swap(&mut self.held, &mut self.next);
        if let Some((pid, e)) = failure.or(self.garbage.take()) {
            em.partial_failure(self.proc.error(pid, e));
        }
        Ok(())
    }

    /// The pids a pid file or a unit's cgroup names, sorted, into `self.pids`. A missing
    /// file is no process: a daemon that is not running, or a unit that is stopped.
    fn listed_pids(&mut self) -> Result<(), InputError> {
        self.pids.clear();
        let paths: &[PathBuf] = match &self.candidates {
            Candidates::All => return Ok(()),
            Candidates::PidFile(p) => std::slice::from_ref(p),
            Candidates::Cgroup(paths) => paths,
        };
        for path in paths {
            match self.proc.read_listing(path, &mut self.pids) {
                Ok(true) => break,
                Ok(false) => continue,
                Err(e) => return Err(e),
            }
        }
        self.pids.sort_unstable();
        self.pids.dedup();
        Ok(())
    }

    /// Reads process `pid`'s stat (through `kept` if there is one), and if it matches, its
    /// figures; returns the stat file to keep (`None`: the process has gone).
    fn visit(
        &mut self,
        pid: u32,
        kept: Option<OwnedFd>,
        em: &mut Emitter,
    ) -> Result<Option<OwnedFd>, PidError> {
        let Some(fd) = self.proc.read_stat(pid, kept)? else {
            return Ok(None);
        };
        let stat = parse_stat(self.proc.stat_text()).map_err(PidError::Parse)?;
        if !self.name_matches(stat.comm) {
            return Ok(Some(fd));
        }
        let stat = copy_stat(&stat);
        if !self.others_match(pid, &fd)? {
            return Ok(Some(fd));
        }
        let one = self.figures(pid, &stat);
        self.add(&one);
        if self.per_pid {
            self.emit_one(pid, &one, em);
        }
        Ok(Some(fd))
    }

    /// Whether the process name passes the name selectors (`proc_regex`, `exe`): checked
    /// first, as it is in the stat line already read.
    fn name_matches(&self, comm: &[u8]) -> bool {
        if self.names.is_empty() {
            return true;
        }
        let comm = String::from_utf8_lossy(comm);
        self.names.iter().all(|r| r.is_match(&comm))
    }

    /// Whether a process passes the other selectors: the owner costs one `fstat`, the
    /// command line one more file.
    fn others_match(&mut self, pid: u32, fd: &OwnedFd) -> Result<bool, PidError> {
        if let Some(uid) = self.uid {
            match rustix::fs::fstat(fd) {
                Ok(st) if st.st_uid == uid => {}
                Ok(_) => return Ok(false),
                Err(e) if pidfs::gone(e) => return Ok(false),
                Err(e) => return Err(PidError::Io(e, "stat")),
            }
        }
        if let Some(pattern) = &self.pattern {
            let cmdline = match self.proc.cmdline(pid) {
                Got::Value(text) => text,
                Got::Gone | Got::Denied => return Ok(false),
            };
            if !pattern.is_match(&String::from_utf8_lossy(cmdline)) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A matching process's figures: from its stat line, and the files only its owner (or
    /// root) may read.
    fn figures(&mut self, pid: u32, stat: &StatCopy) -> One {
        let mark = CpuMark {
            pid,
            start_ticks: stat.start_ticks,
            utime: stat.utime,
            stime: stat.stime,
        };
        let cpu = self
            .prev_cpu
            .binary_search_by_key(&pid, |m| m.pid)
            .ok()
            .map(|i| self.prev_cpu[i])
            // The same pid with another start time is another process.
            .filter(|p| p.start_ticks == mark.start_ticks)
            .map(|p| {
                (
                    mark.utime.saturating_sub(p.utime),
                    mark.stime.saturating_sub(p.stime),
                )
            });
        self.cpu.push(mark);
        let pss = if self.memory {
            let got = self.proc.pss(pid);
            self.or_garbage(pid, got)
        } else {
            Got::Gone
        };
        let got = self.proc.open_fds(pid);
        let fds = self.or_garbage(pid, got);
        let got = self.proc.io(pid);
        let (read, write) = match self.or_garbage(pid, got) {
            Got::Value((r, w)) => (Got::Value(r), Got::Value(w)),
            Got::Denied => (Got::Denied, Got::Denied),
            Got::Gone => (Got::Gone, Got::Gone),
        };
        let one = One {
            threads: stat.threads,
            rss: stat.rss_pages * self.page_size,
            vsize: stat.vsize,
            pss,
            fds,
            read,
            write,
            cpu,
            start_ticks: stat.start_ticks,
        };
        self.tell_refusals(pid, &one);
        one
    }

    /// The figure, or `Gone` for a file that could not be read or parsed (kept as the
    /// collection's partial failure).
    fn or_garbage<T>(&mut self, pid: u32, got: Result<Got<T>, PidError>) -> Got<T> {
        got.unwrap_or_else(|e| {
            self.garbage.get_or_insert((pid, e));
            Got::Gone
        })
    }

    /// Says once per figure that a process refused it, and what that leaves out.
    fn tell_refusals(&mut self, pid: u32, one: &One) {
        let figures = [
            (&one.pss, "smaps_rollup", "process_pss_bytes"),
            (&one.fds, "fd", "process_open_fds"),
            (&one.read, "io", "process_read_bytes and process_write_bytes"),
        ];
        for (i, (got, file, metrics)) in figures.into_iter().enumerate() {
            if matches!(got, Got::Denied) && !self.told[i] {
                self.told[i] = true;
                log::warn!(
                    "process `{}`: {}/{pid}/{file}: permission denied; {metrics} are left out while a process of the group is another user's (run the agent as root or as that user to have them)",
                    self.name,
                    self.proc.root().display()
                );
            }
        }
    }

    fn add(&mut self, one: &One) {
        let t = &mut self.totals;
        t.count += 1;
        t.threads += one.threads;
        t.rss += one.rss;
        t.vsize += one.vsize;
        t.pss.add(&one.pss);
        t.fds.add(&one.fds);
        t.read.add(&one.read);
        t.write.add(&one.write);
        if let Some((user, system)) = one.cpu {
            t.cpu_user += user;
            t.cpu_system += system;
            t.cpu_seen = true;
        }
        t.oldest_start = Some(t.oldest_start.map_or(one.start_ticks, |s| s.min(one.start_ticks)));
    }

    /// CPU ticks over the time since the last collection, in percent of one core.
    fn cpu_percent(&self, ticks: u64, ts_ms: i64) -> Option<f64> {
        let elapsed_ms = ts_ms - self.prev_ts?;
        (elapsed_ms > 0).then(|| ticks as f64 / self.clk_tck * 100_000.0 / elapsed_ms as f64)
    }

    fn start_seconds(&self, start_ticks: u64) -> Option<f64> {
        Some(self.boot_time? as f64 + (start_ticks as f64 / self.clk_tck).floor())
    }

    fn emit_totals(&self, em: &mut Emitter) {
        let t = &self.totals;
        let labels = [("process", self.name.as_str())];
        em.gauge("process_count", &labels, t.count as f64);
        if t.count == 0 {
            return;
        }
        let cpu = t.cpu_seen.then_some((t.cpu_user, t.cpu_system));
        let one = One {
            threads: t.threads,
            rss: t.rss,
            vsize: t.vsize,
            pss: guarded(&t.pss),
            fds: guarded(&t.fds),
            read: guarded(&t.read),
            write: guarded(&t.write),
            cpu,
            start_ticks: t.oldest_start.unwrap_or(0),
        };
        self.emit_figures(&one, &labels, em);
    }

    fn emit_one(&self, pid: u32, one: &One, em: &mut Emitter) {
        let mut buf = [0u8; 10];
        let labels = [("process", self.name.as_str()), ("pid", decimal(pid, &mut buf))];
        self.emit_figures(one, &labels, em);
    }

    fn emit_figures(&self, one: &One, labels: &[(&str, &str)], em: &mut Emitter) {
        em.gauge("process_threads", labels, one.threads as f64);
        if self.memory {
            em.gauge("process_rss_bytes", labels, one.rss as f64);
            // pollect's name.
            em.gauge("process_virtual_memory", labels, one.vsize as f64);
            if let Got::Value(pss) = one.pss {
                em.gauge("process_pss_bytes", labels, pss as f64);
            }
        }
        if let Got::Value(fds) = one.fds {
            em.gauge("process_open_fds", labels, fds as f64);
        }
        if let (Got::Value(r), Got::Value(w)) = (&one.read, &one.write) {
            em.counter("process_read_bytes", labels, *r as f64);
            em.counter("process_write_bytes", labels, *w as f64);
        }
        if let Some(start) = self.start_seconds(one.start_ticks) {
            em.gauge("process_start_time_seconds", labels, start);
        }
        if !self.load {
            return;
        }
        let ts = em.ts_ms();
        let Some((user, system)) = one.cpu else {
            return;
        };
        let (Some(u), Some(s)) = (self.cpu_percent(user, ts), self.cpu_percent(system, ts)) else {
            return;
        };
        em.gauge("process_cpu_user_percent", labels, u);
        em.gauge("process_cpu_system_percent", labels, s);
        // pollect's name: user and system together.
        em.gauge("process_load_percent", labels, u + s);
    }
}

fn guarded(g: &Guarded) -> Got<u64> {
    if g.denied {
        Got::Denied
    } else {
        Got::Value(g.sum)
    }
}

/// The stat figures `process` keeps past the read buffer's next use.
struct StatCopy {
    utime: u64,
    stime: u64,
    threads: u64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: u64,
}

fn copy_stat(s: &PidStat) -> StatCopy {
    StatCopy {
        utime: s.utime,
        stime: s.stime,
        threads: s.threads,
        start_ticks: s.start_ticks,
        vsize: s.vsize,
        rss_pages: s.rss_pages,
    }
}

/// `n` in decimal, in `buf`.
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

impl Input for Process {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

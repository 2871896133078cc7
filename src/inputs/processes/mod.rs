//! `processes`: process and thread counts by state, from /proc/<pid>/stat.

use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::{pid_of, STAT_MAX};
use crate::inputs::BuildCtx;
use nix::errno::Errno;
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags, RawDir, SeekFrom};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Processes and threads, and processes per state (running, sleeping, zombie, …).
- processes
";

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {}

/// At most this many `/proc/<pid>/stat` files stay open between collections (one file
/// descriptor each), and at most a quarter of the open-file limit; further processes are
/// opened and closed every collection.
pub const MAX_HELD: usize = 512;

/// [`MAX_HELD`], or a quarter of the soft open-file limit if that is less.
fn held_cap() -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    MAX_HELD.min(usize::try_from(soft / 4).unwrap_or(MAX_HELD))
}


pub struct Processes {
    root: PathBuf,
    /// The open procfs directory, rewound every collection and listed with `RawDir` into
    /// `dents`, so listing processes allocates nothing (std's and nix's iterators copy
    /// every name).
    dir: Option<OwnedFd>,
    dents: Vec<std::mem::MaybeUninit<u8>>,
    /// Stat files kept open from the last collection, by ascending pid (the order procfs
    /// lists processes in). Re-reading an open file at offset 0 is one system call; opening,
    /// reading and closing it again costs three more and a path lookup, and `processes` is
    /// the costliest Linux input.
    held: Vec<Held>,
    /// This collection's list, swapped with `held` at its end (both keep their capacity).
    next: Vec<Held>,
    /// How many files may stay open: see [`MAX_HELD`].
    max_held: usize,
    buf: Box<[u8; STAT_MAX]>,
}

struct Held {
    pid: u32,
    fd: OwnedFd,
}

pub fn build(_cfg: &Config, ctx: &BuildCtx) -> Result<Processes, String> {
    Ok(Processes {
        root: ctx.procfs_root.clone(),
        dir: None,
        dents: vec![std::mem::MaybeUninit::uninit(); 16 * 1024],
        held: Vec::new(),
        next: Vec::new(),
        max_held: held_cap(),
        buf: Box::new([0; STAT_MAX]),
    })
}

/// Processes per state, and threads over all processes.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Counts {
    pub total: u64,
    pub threads: u64,
    pub running: u64,
    pub sleeping: u64,
    pub zombie: u64,
    pub blocked: u64,
    pub stopped: u64,
    pub dead: u64,
    pub paging: u64,
    pub parked: u64,
    pub idle: u64,
}

impl Counts {
    /// Counts one process. A state letter this input does not know (a future kernel's) still
    /// counts in `total` and `threads`.
    pub fn add(&mut self, state: u8, threads: u64) {
        self.total += 1;
        self.threads += threads;
        let slot = match state {
            b'R' => &mut self.running,
            b'S' => &mut self.sleeping,
            b'Z' => &mut self.zombie,
            b'D' => &mut self.blocked,
            b'T' | b't' => &mut self.stopped,
            b'X' | b'x' => &mut self.dead,
            b'W' => &mut self.paging,
            b'P' => &mut self.parked,
            b'I' => &mut self.idle,
            _ => return,
        };
        *slot += 1;
    }
}

/// `(state, num_threads)` from the content of /proc/<pid>/stat.
///
/// The command name (field 2) is in parentheses and may itself contain spaces and `)`, and
/// need not be UTF-8, so the fields are counted from the last `)`: the state is field 3 and
/// num_threads field 20.
pub fn parse_pid_stat(text: &[u8]) -> Result<(u8, u64), &'static str> {
    let close = text
        .iter()
        .rposition(|&b| b == b')')
        .ok_or("no `)` after the command name")?;
    let mut f = text[close + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|s| !s.is_empty());
    let state = match f.next() {
        Some(&[s]) if s.is_ascii_alphabetic() => s,
        _ => return Err("bad state field"),
    };
    let threads = f
        .nth(16)
        .and_then(|t| std::str::from_utf8(t).ok())
        .and_then(|t| t.parse::<u64>().ok())
        .ok_or("bad or missing num_threads field")?;
    Ok((state, threads))
}

/// Whether a read or open failed because the process has exited.
fn gone(e: Errno) -> bool {
    e == Errno::ESRCH || e == Errno::ENOENT
}

/// Opens `<pid>/stat` under the procfs directory `dir`; `None` when the process has gone.
fn open_stat(dir: &OwnedFd, pid: u32) -> Result<Option<OwnedFd>, Errno> {
    use std::io::Write;
    let mut path = [0u8; 24];
    let mut w = &mut path[..];
    // Cannot fail: a u32, "/stat" and the NUL take at most 16 bytes.
    let _ = write!(w, "{pid}/stat\0");
    let len = 24 - w.len();
    let path = std::ffi::CStr::from_bytes_with_nul(&path[..len]).map_err(|_| Errno::EINVAL)?;
    match rustix::fs::openat(dir, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if gone(Errno::from_raw(e.raw_os_error())) => Ok(None),
        Err(e) => Err(Errno::from_raw(e.raw_os_error())),
    }
}

/// Reads the whole stat file at offset 0 into `buf`; `Ok(0)`: the process has exited.
fn read_stat(fd: &OwnedFd, buf: &mut [u8; STAT_MAX]) -> Result<usize, Errno> {
    loop {
        match rustix::io::pread(fd, &mut buf[..], 0) {
            Ok(n) => return Ok(n),
            Err(e) if e == rustix::io::Errno::INTR => continue,
            Err(e) if gone(Errno::from_raw(e.raw_os_error())) => return Ok(0),
            Err(e) => return Err(Errno::from_raw(e.raw_os_error())),
        }
    }
}

/// Why one process could not be counted.
enum PidError {
    Io(Errno),
    Parse(&'static str),
}

impl Processes {
    fn count(&mut self) -> Result<Counts, InputError> {
        let io_err = |root: &std::path::Path, e: rustix::io::Errno| {
            InputError::io(root, &std::io::Error::from_raw_os_error(e.raw_os_error()))
        };
        let dir = match &self.dir {
            Some(fd) => fd,
            None => {
                let fd = rustix::fs::open(
                    &self.root,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err(&self.root, e))?;
                self.dir.insert(fd)
            }
        };
        // Left over if the last collection stopped part way.
        self.next.clear();
        rustix::fs::seek(dir, SeekFrom::Start(0)).map_err(|e| io_err(&self.root, e))?;
        let mut entries = RawDir::new(dir, &mut self.dents);
        let mut counts = Counts::default();
        let mut old = self.held.drain(..).peekable();
        let mut failure = None;
        while let Some(entry) = entries.next() {
            let entry = entry.map_err(|e| io_err(&self.root, e))?;
            let Some(pid) = pid_of(entry.file_name().to_bytes()) else {
                continue;
            };
            // Files of processes listed before this one (or listed out of order) are closed.
            while old.next_if(|h| h.pid < pid).is_some() {}
            let kept = old.next_if(|h| h.pid == pid).map(|h| h.fd);
            match count_one(dir, pid, kept, &mut self.buf, &mut counts) {
                Ok(Some(fd)) if self.next.len() < self.max_held => {
                    self.next.push(Held { pid, fd })
                }
                Ok(_) => {}
                Err(e) => {
                    failure.get_or_insert((pid, e));
                }
            }
        }
        drop(old);
        std::mem::swap(&mut self.held, &mut self.next);
        self.next.clear();
        match failure {
            None => Ok(counts),
            Some((pid, e)) => {
                let path = self.root.join(pid.to_string()).join("stat");
                Err(match e {
                    PidError::Io(e) => InputError::io(&path, &std::io::Error::from(e)),
                    PidError::Parse(e) => InputError::parse(&path, e),
                })
            }
        }
    }

    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        let c = match self.count() {
            Ok(c) => c,
            Err(e) => {
                // Reopen next time, in case the procfs root was remounted.
                self.dir = None;
                return Err(e);
            }
        };
        em.gauge("processes_total", &[], c.total as f64);
        em.gauge("processes_total_threads", &[], c.threads as f64);
        em.gauge("processes_running", &[], c.running as f64);
        em.gauge("processes_sleeping", &[], c.sleeping as f64);
        em.gauge("processes_zombie", &[], c.zombie as f64);
        em.gauge("processes_blocked", &[], c.blocked as f64);
        em.gauge("processes_stopped", &[], c.stopped as f64);
        em.gauge("processes_dead", &[], c.dead as f64);
        em.gauge("processes_paging", &[], c.paging as f64);
        em.gauge("processes_parked", &[], c.parked as f64);
        em.gauge("processes_idle", &[], c.idle as f64);
        Ok(())
    }
}

/// Counts process `pid` through its kept stat file, or a newly opened one when there is none
/// or the kept one belonged to an exited process whose pid was reused; returns the file to
/// keep (`None`: the process has gone).
fn count_one(
    dir: &OwnedFd,
    pid: u32,
    kept: Option<OwnedFd>,
    buf: &mut [u8; STAT_MAX],
    counts: &mut Counts,
) -> Result<Option<OwnedFd>, PidError> {
    let reopened = kept.is_none();
    let mut fd = match kept {
        Some(fd) => fd,
        None => match open_stat(dir, pid).map_err(PidError::Io)? {
            Some(fd) => fd,
            None => return Ok(None),
        },
    };
    let mut n = read_stat(&fd, buf).map_err(PidError::Io)?;
    if n == 0 && !reopened {
        fd = match open_stat(dir, pid).map_err(PidError::Io)? {
            Some(fd) => fd,
            None => return Ok(None),
        };
        n = read_stat(&fd, buf).map_err(PidError::Io)?;
    }
    if n == 0 {
        return Ok(None);
    }
    if n == STAT_MAX {
        return Err(PidError::Parse("a stat line longer than 4 KiB"));
    }
    let (state, threads) = parse_pid_stat(&buf[..n]).map_err(PidError::Parse)?;
    counts.add(state, threads);
    Ok(Some(fd))
}

impl Input for Processes {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

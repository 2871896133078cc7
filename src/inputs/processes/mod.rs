//! `processes`: process and thread counts by state, from /proc/<pid>/stat.

use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::BuildCtx;
use nix::errno::Errno;
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags, RawDir, SeekFrom};
use serde::Deserialize;
use std::ffi::OsStr;
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Processes and threads, and processes per state (running, sleeping, zombie, …).
- processes
";

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {}

pub struct Processes {
    root: PathBuf,
    /// The open procfs directory, rewound every collection and listed with `RawDir` into
    /// `dents`, so listing processes allocates nothing (std's and nix's iterators copy
    /// every name).
    dir: Option<OwnedFd>,
    dents: Vec<std::mem::MaybeUninit<u8>>,
    /// `<root>/<pid>/stat`, rebuilt in place for every process.
    path: PathBuf,
    buf: Vec<u8>,
}

pub fn build(_cfg: &Config, ctx: &BuildCtx) -> Result<Processes, String> {
    let root = ctx.procfs_root.clone();
    let mut path = PathBuf::with_capacity(root.as_os_str().len() + 32);
    path.push(&root);
    Ok(Processes {
        root,
        dir: None,
        dents: vec![std::mem::MaybeUninit::uninit(); 16 * 1024],
        path,
        buf: Vec::with_capacity(1024),
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

/// How reading one process's stat ended.
enum StatRead {
    Ok,
    /// The process exited between the directory listing and the read.
    Gone,
}

/// Reads `path` into `buf`; a process that has gone is not an error.
fn read_stat(path: &std::path::Path, buf: &mut Vec<u8>) -> std::io::Result<StatRead> {
    buf.clear();
    let gone = |e: &std::io::Error| {
        e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(Errno::ESRCH as i32)
    };
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if gone(&e) => return Ok(StatRead::Gone),
        Err(e) => return Err(e),
    };
    match f.read_to_end(buf) {
        Ok(0) => Ok(StatRead::Gone),
        Ok(_) => Ok(StatRead::Ok),
        Err(e) if gone(&e) => Ok(StatRead::Gone),
        Err(e) => Err(e),
    }
}

impl Processes {
    fn count(&mut self) -> Result<Counts, InputError> {
        let io_err = |root: &std::path::Path, e: rustix::io::Errno| {
            InputError::io(root, &std::io::Error::from_raw_os_error(e.raw_os_error()))
        };
        let fd = match &self.dir {
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
        rustix::fs::seek(fd, SeekFrom::Start(0)).map_err(|e| io_err(&self.root, e))?;
        let mut entries = RawDir::new(fd, &mut self.dents);
        let mut counts = Counts::default();
        while let Some(entry) = entries.next() {
            let entry = entry.map_err(|e| io_err(&self.root, e))?;
            let name = entry.file_name().to_bytes();
            if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
                continue;
            }
            self.path.push(OsStr::from_bytes(name));
            self.path.push("stat");
            let result = match read_stat(&self.path, &mut self.buf) {
                Ok(StatRead::Gone) => Ok(()),
                Ok(StatRead::Ok) => match parse_pid_stat(&self.buf) {
                    Ok((state, threads)) => {
                        counts.add(state, threads);
                        Ok(())
                    }
                    Err(e) => Err(InputError::parse(&self.path, e)),
                },
                Err(e) => Err(InputError::io(&self.path, &e)),
            };
            self.path.pop();
            self.path.pop();
            result?;
        }
        Ok(counts)
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

impl Input for Processes {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

//! Reading /proc/<pid> files for `process`: the procfs directory kept open and listed with
//! `RawDir` (no allocation per entry, as `processes` does), stat files re-read through kept
//! descriptors, the rest opened per collection for matching processes only, all into
//! buffers reused across collections.

use crate::core::InputError;
use crate::inputs::support::{pid_of, STAT_MAX};
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags, RawDir, SeekFrom};
use rustix::io::Errno;
use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};

use super::parse;

/// A figure of one process, or why there is none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Got<T> {
    Value(T),
    /// The process exited meanwhile (or has no such file).
    Gone,
    /// Another user's process, and the agent is not root.
    Denied,
}

/// Why one process could not be looked at.
pub enum PidError {
    Io(Errno, &'static str),
    Parse(&'static str),
}

/// The longest command line matched against `pattern`; the rest is cut off.
const CMDLINE_MAX: usize = 32 * 1024;
/// smaps_rollup and io are under 1 KiB.
const SMALL_MAX: usize = 8 * 1024;

pub struct PidDir {
    root: PathBuf,
    dir: Option<OwnedFd>,
    dents: Vec<MaybeUninit<u8>>,
    fd_dents: Vec<MaybeUninit<u8>>,
    stat: Box<[u8; STAT_MAX]>,
    stat_len: usize,
    buf: Vec<u8>,
}

/// Whether a failed open or read means the process has exited.
pub fn gone(e: Errno) -> bool {
    e == Errno::SRCH || e == Errno::NOENT
}

fn denied(e: Errno) -> bool {
    e == Errno::ACCESS || e == Errno::PERM
}

/// `<pid>/<file>` as a C string in `buf`.
fn pid_path<'b>(buf: &'b mut [u8; 40], pid: u32, file: &str) -> &'b CStr {
    use std::io::Write;
    let mut w = &mut buf[..];
    // Cannot fail for the file names used here: a u32, a short name and the NUL fit.
    let _ = write!(w, "{pid}/{file}\0");
    let len = 40 - w.len();
    CStr::from_bytes_with_nul(&buf[..len]).unwrap_or(c"")
}

/// Reads `fd` from offset 0 into `buf` (grown up to `cap`); the length read.
fn read_at_zero(fd: &OwnedFd, buf: &mut Vec<u8>, cap: usize) -> Result<usize, Errno> {
    let mut len = 0;
    loop {
        if len == buf.len() {
            if len >= cap {
                return Ok(len);
            }
            buf.resize((buf.len() * 2).clamp(1024, cap), 0);
        }
        match rustix::io::pread(fd, &mut buf[len..], len as u64) {
            Ok(0) => return Ok(len),
            Ok(n) => len += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}

impl PidDir {
    pub fn new(root: &Path) -> Self {
        PidDir {
            root: root.to_path_buf(),
            dir: None,
            dents: Vec::new(),
            fd_dents: Vec::new(),
            stat: Box::new([0; STAT_MAX]),
            stat_len: 0,
            buf: Vec::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Drops the directory, so the next collection opens it again (a remounted root).
    pub fn forget(&mut self) {
        self.dir = None;
    }

    fn dir(&mut self) -> Result<&OwnedFd, Errno> {
        if self.dir.is_none() {
            let fd = rustix::fs::open(
                &self.root,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            self.dir = Some(fd);
        }
        Ok(self.dir.as_ref().expect("opened above"))
    }

    fn root_error(&self, e: Errno) -> InputError {
        InputError::io(&self.root, &std::io::Error::from_raw_os_error(e.raw_os_error()))
    }

    /// Every process's pid, in the order procfs lists them (ascending), appended to `pids`.
    pub fn list(&mut self, pids: &mut Vec<u32>) -> Result<(), InputError> {
        if self.dents.is_empty() {
            self.dents = vec![MaybeUninit::uninit(); 16 * 1024];
        }
        let dir = match self.dir() {
            Ok(_) => self.dir.as_ref().expect("opened"),
            Err(e) => return Err(self.root_error(e)),
        };
        let listed = (|| {
            rustix::fs::seek(dir, SeekFrom::Start(0))?;
            let mut entries = RawDir::new(dir, &mut self.dents);
            while let Some(entry) = entries.next() {
                if let Some(pid) = pid_of(entry?.file_name().to_bytes()) {
                    pids.push(pid);
                }
            }
            Ok(())
        })();
        listed.map_err(|e| self.root_error(e))
    }

    /// /proc/stat's boot time.
    pub fn boot_time(&self) -> Option<u64> {
        parse::boot_time(&std::fs::read(self.root.join("stat")).ok()?)
    }

    /// The pids listed in `path` (a pid file, a cgroup.procs), appended to `pids`;
    /// `Ok(false)` when there is no such file. Opened afresh every time: a daemon replaces
    /// its pid file, and systemd makes a new cgroup at each start of a unit.
    pub fn read_listing(&mut self, path: &Path, pids: &mut Vec<u32>) -> Result<bool, InputError> {
        let fd = match rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(false),
            Err(e) => return Err(io_error(path, e)),
        };
        let n = read_at_zero(&fd, &mut self.buf, 1 << 20).map_err(|e| io_error(path, e))?;
        parse::pid_lines(&self.buf[..n], pids).map_err(|e| InputError::parse(path, e))?;
        Ok(true)
    }

    fn open_pid(&mut self, pid: u32, file: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        let mut path = [0u8; 40];
        let path = pid_path(&mut path, pid, file);
        let dir = self.dir()?;
        rustix::fs::openat(dir, path, flags | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
    }

    /// Reads process `pid`'s stat line through `kept`, or a newly opened file when there is
    /// none or the kept one belonged to an exited process whose pid was reused; returns the
    /// file to keep (`None`: the process has gone). The line is [`PidDir::stat_text`].
    pub fn read_stat(&mut self, pid: u32, kept: Option<OwnedFd>) -> Result<Option<OwnedFd>, PidError> {
        let reopened = kept.is_none();
        let open = |me: &mut Self| match me.open_pid(pid, "stat", OFlags::empty()) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if gone(e) => Ok(None),
            Err(e) => Err(PidError::Io(e, "stat")),
        };
        let mut fd = match kept {
            Some(fd) => fd,
            None => match open(self)? {
                Some(fd) => fd,
                None => return Ok(None),
            },
        };
        let mut n = self.pread_stat(&fd)?;
        if n == 0 && !reopened {
            fd = match open(self)? {
                Some(fd) => fd,
                None => return Ok(None),
            };
            n = self.pread_stat(&fd)?;
        }
        if n == 0 {
            return Ok(None);
        }
        if n == STAT_MAX {
            return Err(PidError::Parse("a stat line longer than 4 KiB"));
        }
        self.stat_len = n;
        Ok(Some(fd))
    }

    /// The stat file's content, or 0 when its process has exited.
    fn pread_stat(&mut self, fd: &OwnedFd) -> Result<usize, PidError> {
        loop {
            match rustix::io::pread(fd, &mut self.stat[..], 0) {
                Ok(n) => return Ok(n),
                Err(Errno::INTR) => continue,
                Err(e) if gone(e) => return Ok(0),
                Err(e) => return Err(PidError::Io(e, "stat")),
            }
        }
    }

    pub fn stat_text(&self) -> &[u8] {
        &self.stat[..self.stat_len]
    }

    /// Reads `<pid>/<file>` whole (up to `cap`) into the shared buffer: opened, read and
    /// closed, as only matching processes get here.
    fn read_pid_file(&mut self, pid: u32, file: &str, cap: usize) -> Result<Got<usize>, Errno> {
        let fd = match self.open_pid(pid, file, OFlags::empty()) {
            Ok(fd) => fd,
            Err(e) if gone(e) => return Ok(Got::Gone),
            Err(e) if denied(e) => return Ok(Got::Denied),
            Err(e) => return Err(e),
        };
        match read_at_zero(&fd, &mut self.buf, cap) {
            Ok(n) => Ok(Got::Value(n)),
            Err(e) if gone(e) => Ok(Got::Gone),
            Err(e) if denied(e) => Ok(Got::Denied),
            Err(e) => Err(e),
        }
    }

    /// `<pid>/<file>` parsed with `parse`; I/O errors other than gone and denied, and
    /// content that does not parse, are `Err`.
    fn parsed<T>(
        &mut self,
        pid: u32,
        file: &'static str,
        parse: impl Fn(&[u8]) -> Result<T, &'static str>,
    ) -> Result<Got<T>, PidError> {
        match self.read_pid_file(pid, file, SMALL_MAX) {
            Ok(Got::Value(n)) => parse(&self.buf[..n]).map(Got::Value).map_err(PidError::Parse),
            Ok(Got::Gone) => Ok(Got::Gone),
            Ok(Got::Denied) => Ok(Got::Denied),
            Err(e) => Err(PidError::Io(e, file)),
        }
    }

    /// The command line, arguments separated by spaces (empty for a kernel thread).
    pub fn cmdline(&mut self, pid: u32) -> Got<&[u8]> {
        match self.read_pid_file(pid, "cmdline", CMDLINE_MAX) {
            Ok(Got::Value(n)) => Got::Value(parse::cmdline_text(&mut self.buf[..n])),
            Ok(Got::Denied) => Got::Denied,
            Ok(Got::Gone) | Err(_) => Got::Gone,
        }
    }

    /// Proportional set size in bytes (Linux 4.14+; earlier kernels: `Gone`).
    pub fn pss(&mut self, pid: u32) -> Result<Got<u64>, PidError> {
        self.parsed(pid, "smaps_rollup", parse::pss_bytes)
    }

    /// Storage bytes read and written.
    pub fn io(&mut self, pid: u32) -> Result<Got<(u64, u64)>, PidError> {
        self.parsed(pid, "io", parse::io_bytes)
    }

    /// The number of open file descriptors: the entries of `<pid>/fd`.
    pub fn open_fds(&mut self, pid: u32) -> Result<Got<u64>, PidError> {
        let fd = match self.open_pid(pid, "fd", OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(e) if gone(e) => return Ok(Got::Gone),
            Err(e) if denied(e) => return Ok(Got::Denied),
            Err(e) => return Err(PidError::Io(e, "fd")),
        };
        if self.fd_dents.is_empty() {
            self.fd_dents = vec![MaybeUninit::uninit(); 8 * 1024];
        }
        let mut entries = RawDir::new(&fd, &mut self.fd_dents);
        let mut n = 0;
        while let Some(entry) = entries.next() {
            match entry {
                Ok(e) if matches!(e.file_name().to_bytes(), b"." | b"..") => {}
                Ok(_) => n += 1,
                Err(e) if gone(e) => return Ok(Got::Gone),
                Err(e) if denied(e) => return Ok(Got::Denied),
                Err(e) => return Err(PidError::Io(e, "fd")),
            }
        }
        Ok(Got::Value(n))
    }

    /// The error of one process, naming its file.
    pub fn error(&self, pid: u32, e: PidError) -> InputError {
        match e {
            PidError::Io(e, file) => io_error(&self.root.join(pid.to_string()).join(file), e),
            PidError::Parse(what) => {
                InputError::parse(&self.root.join(pid.to_string()), what)
            }
        }
    }
}

fn io_error(path: &Path, e: Errno) -> InputError {
    InputError::io(path, &std::io::Error::from_raw_os_error(e.raw_os_error()))
}

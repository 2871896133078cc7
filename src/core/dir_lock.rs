//! One running agent per `buffer_dir`. Two agents sharing it would append to the same
//! segments and overwrite each other's read position: samples replayed twice or skipped.
//! Like vmagent's and Prometheus's data directories, the directory holds a lock file with an
//! advisory `flock`, which the kernel releases when the process ends however it ends (no
//! stale lock after `kill -9` or a power cut). The file holds the owner's pid, for the
//! message the second agent gives.

use rustix::fs::FlockOperation;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The lock file's name inside `buffer_dir`.
pub const LOCK_FILE: &str = "rtcollector.lock";

/// Held for as long as the agent runs; dropping it releases the directory.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock; its pid, if the file names one.
    Busy { holder: Option<u32> },
    /// The directory or the file cannot be made or locked.
    Io(std::io::Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Busy { holder: Some(pid) } => {
                write!(f, "in use by another rtcollector (pid {pid})")
            }
            LockError::Busy { holder: None } => write!(f, "in use by another rtcollector"),
            LockError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<std::io::Error> for LockError {
    fn from(e: std::io::Error) -> Self {
        LockError::Io(e)
    }
}

impl DirLock {
    /// Creates `dir` if needed and takes its lock without waiting.
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        std::fs::create_dir_all(dir)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(LOCK_FILE))?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(LockError::Busy {
                    holder: holder_pid(&mut file),
                })
            }
            Err(e) => return Err(LockError::Io(e.into())),
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{}", std::process::id())?;
        Ok(DirLock { _file: file })
    }
}

fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let buffer = dir.path().join("not/yet/there");
        let first = DirLock::acquire(&buffer).expect("first lock");
        // flock locks belong to the open file, so a second open in this process conflicts
        // just as another process's would.
        match DirLock::acquire(&buffer) {
            Err(LockError::Busy { holder }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(first);
        DirLock::acquire(&buffer).expect("free again once the first is dropped");
    }

    #[test]
    fn a_stale_pid_from_a_dead_agent_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "4242\n").unwrap();
        let _lock = DirLock::acquire(dir.path()).expect("no process holds the lock");
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
    }

    #[test]
    fn an_unmakeable_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            DirLock::acquire(&file.join("buffer")),
            Err(LockError::Io(_))
        ));
    }
}

//! One running agent per `buffer_dir`. Two agents sharing it would append to the same
//! segments and overwrite each other's read position: samples replayed twice or skipped.
//!
//! Like vmagent's and Prometheus's data directories, the directory is locked with an
//! advisory `flock`, which the kernel releases when the process ends however it ends (no
//! stale lock after `kill -9` or a power cut). The lock is taken on the directory itself, so
//! nothing is written for it: a healthy agent leaves flash alone (the directory is created
//! empty if missing). The second agent finds the holder's pid in /proc/locks.

use rustix::fs::FlockOperation;
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

/// Held for as long as the agent runs; dropping it releases the directory.
#[derive(Debug)]
pub struct DirLock {
    _dir: File,
}

#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock; its pid, if /proc/locks shows it.
    Busy { holder: Option<u32> },
    /// The directory cannot be made, opened or locked.
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
        // Only the agent's user may read what it buffers, whatever the umask.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // A directory opens read-only; std adds O_CLOEXEC.
        let file = File::open(dir)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DirLock { _dir: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(LockError::Busy {
                holder: holder(dir).ok().flatten(),
            }),
            Err(e) => Err(LockError::Io(e.into())),
        }
    }
}

/// The pid of the agent holding `dir`, read from /proc/locks without touching the lock
/// (`None`: no agent runs on it). Fails when `dir` cannot be read.
pub fn holder(dir: &Path) -> std::io::Result<Option<u32>> {
    let meta = std::fs::metadata(dir)?;
    let locks = std::fs::read_to_string("/proc/locks")?;
    Ok(flock_holder(&locks, meta.dev(), meta.ino()))
}

/// The pid holding an exclusive `flock` on the file `dev`/`ino`, from the text of
/// /proc/locks, whose lines read `1: FLOCK  ADVISORY  WRITE 4242 fd:01:131090 0 EOF`
/// (device as hex major:minor). Some filesystems (btrfs subvolumes) print another device
/// than `stat` gives, so a lone lock on the same inode number counts too. A holder in
/// another pid namespace shows as pid 0: unknown.
pub fn flock_holder(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let want_dev = format!(
        "{:02x}:{:02x}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    );
    let mut same_inode = locks.lines().filter_map(|line| {
        let mut f = line.split_whitespace().skip(1);
        let (kind, _, mode, pid, file) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
        let (file_dev, file_ino) = file.rsplit_once(':')?;
        (kind == "FLOCK" && mode == "WRITE" && file_ino.parse() == Ok(ino))
            .then(|| Some((file_dev == want_dev, pid.parse::<u32>().ok()?)))
            .flatten()
    });
    let first = same_inode.next()?;
    let holder = if first.0 {
        Some(first.1)
    } else {
        let rest: Vec<_> = same_inode.collect();
        match rest.iter().find(|(exact, _)| *exact) {
            Some(&(_, pid)) => Some(pid),
            None if rest.is_empty() => Some(first.1),
            None => None,
        }
    };
    holder.filter(|&pid| pid != 0)
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
    fn the_holder_is_found_without_taking_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()).unwrap(), None);
        let lock = DirLock::acquire(dir.path()).unwrap();
        assert_eq!(holder(dir.path()).unwrap(), Some(std::process::id()));
        drop(lock);
        assert_eq!(holder(dir.path()).unwrap(), None);
    }

    #[test]
    fn locking_writes_nothing_into_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _lock = DirLock::acquire(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_holder_is_read_from_proc_locks_lines() {
        let locks = "\
1: POSIX  ADVISORY  WRITE 10 fd:01:77 0 EOF
2: FLOCK  ADVISORY  READ 11 fd:01:77 0 EOF
3: FLOCK  ADVISORY  WRITE 12 fd:02:77 0 EOF
4: FLOCK  ADVISORY  WRITE 4242 fd:01:77 0 EOF
";
        let dev = nix::sys::stat::makedev(0xfd, 1);
        assert_eq!(flock_holder(locks, dev, 77), Some(4242));
        assert_eq!(flock_holder(locks, dev, 78), None);
        assert_eq!(flock_holder("garbage\n\n1: FLOCK", dev, 77), None);
        // btrfs: another device number than stat's, but the only lock on that inode.
        let btrfs = "1: FLOCK  ADVISORY  WRITE 77 00:2d:4096 0 EOF\n";
        assert_eq!(
            flock_holder(btrfs, nix::sys::stat::makedev(0, 0x31), 4096),
            Some(77)
        );
        // Two such locks on different devices: which one is ours is not known.
        let two = "1: FLOCK  ADVISORY  WRITE 77 00:2d:4096 0 EOF\n2: FLOCK  ADVISORY  WRITE 78 00:2e:4096 0 EOF\n";
        assert_eq!(
            flock_holder(two, nix::sys::stat::makedev(0, 0x31), 4096),
            None
        );
        // A holder in another pid namespace.
        let hidden = "4: FLOCK  ADVISORY  WRITE 0 fd:01:77 0 EOF\n";
        assert_eq!(flock_holder(hidden, dev, 77), None);
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

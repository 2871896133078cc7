//! Reading small /proc and /sys files into a buffer that is reused every collection.

use crate::core::InputError;
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A file read again on every collection, into the same buffer. The file is opened once and
/// read again from offset 0 each time (procfs and sysfs regenerate their content on a read
/// at offset 0); it is opened again when reading the kept descriptor fails.
pub struct ProcFile {
    path: PathBuf,
    /// Always initialized to its full length; the content is `buf[..len]`.
    buf: Vec<u8>,
    len: usize,
    file: Option<File>,
}

impl ProcFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ProcFile {
            path: path.into(),
            buf: vec![0; 4096],
            len: 0,
            file: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's whole content. Errors name the file; content that is not UTF-8 is garbage.
    pub fn read(&mut self) -> Result<&str, InputError> {
        self.fill().map_err(|e| InputError::io(&self.path, &e))?;
        std::str::from_utf8(&self.buf[..self.len])
            .map_err(|_| InputError::parse(&self.path, "content is not text"))
    }

    /// The file's whole content, or the I/O error itself, for a caller that gives some
    /// errors a meaning of their own.
    pub fn read_io(&mut self) -> std::io::Result<&[u8]> {
        self.fill()?;
        Ok(&self.buf[..self.len])
    }

    fn fill(&mut self) -> std::io::Result<()> {
        self.len = 0;
        let kept = match &self.file {
            Some(f) => read_all_at(f, &mut self.buf),
            None => Err(ErrorKind::NotFound.into()),
        };
        self.len = match kept {
            Ok(n) => n,
            // Not open yet, or the kept descriptor went stale (a remount, a device or
            // process gone): open the file again, once.
            Err(_) => {
                self.file = None;
                let f = File::open(&self.path)?;
                let n = read_all_at(&f, &mut self.buf)?;
                self.file = Some(f);
                n
            }
        };
        Ok(())
    }

    /// Like [`ProcFile::read`], but a missing file is `Ok(None)` (an optional kernel feature).
    pub fn read_optional(&mut self) -> Result<Option<&str>, InputError> {
        match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => self.read().map(Some),
        }
    }
}

/// Reads `f` from offset 0 to its end into `buf`, growing it when full; the length read.
fn read_all_at(f: &File, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize((buf.len() * 2).max(4096), 0);
        }
        match f.read_at(&mut buf[len..], len as u64) {
            Ok(0) => return Ok(len),
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whitespace-separated fields of a line.
pub fn fields(line: &str) -> std::str::SplitAsciiWhitespace<'_> {
    line.split_ascii_whitespace()
}

/// Parses unsigned numbers from `tokens` into `out`, in order, and returns how many there
/// were: columns beyond `out.len()` (added by a newer kernel) are counted, not stored. Any
/// token that is not a number fails the whole line; `what` names it in the message.
pub fn numbers_into<'a>(
    tokens: impl Iterator<Item = &'a str>,
    out: &mut [u64],
    what: &str,
) -> Result<usize, String> {
    let mut n = 0;
    for tok in tokens {
        let x: u64 = tok
            .parse()
            .map_err(|_| format!("{what}: bad number `{tok}`"))?;
        if let Some(slot) = out.get_mut(n) {
            *slot = x;
        }
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_rereads_into_the_same_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "a 1\n").unwrap();
        let mut f = ProcFile::new(&p);
        assert_eq!(f.read().unwrap(), "a 1\n");
        std::fs::write(&p, "b 2\n").unwrap();
        assert_eq!(f.read().unwrap(), "b 2\n");
    }

    #[test]
    fn grows_past_the_initial_buffer_and_shrinks_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        let big = "x 1\n".repeat(5000);
        std::fs::write(&p, &big).unwrap();
        let mut f = ProcFile::new(&p);
        assert_eq!(f.read().unwrap(), big);
        std::fs::write(&p, "y 2\n").unwrap();
        assert_eq!(f.read().unwrap(), "y 2\n");
        std::fs::write(&p, "").unwrap();
        assert_eq!(f.read().unwrap(), "");
    }

    #[test]
    fn a_kept_procfs_file_is_generated_again() {
        let mut f = ProcFile::new("/proc/uptime");
        let first: f64 = fields(f.read().unwrap()).next().unwrap().parse().unwrap();
        assert!(f.file.is_some(), "kept open");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let second: f64 = fields(f.read().unwrap()).next().unwrap().parse().unwrap();
        assert!(second > first, "{first} then {second}");
    }

    #[test]
    fn a_file_that_appears_later_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("late");
        let mut f = ProcFile::new(&p);
        assert!(f.read().is_err());
        std::fs::write(&p, "c 3\n").unwrap();
        assert_eq!(f.read().unwrap(), "c 3\n");
    }

    #[test]
    fn a_failing_kept_descriptor_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "d 4\n").unwrap();
        let mut f = ProcFile::new(&p);
        assert_eq!(f.read().unwrap(), "d 4\n");
        // A descriptor whose reads fail (EISDIR), as a stale one after a remount would.
        f.file = Some(std::fs::File::open(dir.path()).unwrap());
        std::fs::write(&p, "e 5\n").unwrap();
        assert_eq!(f.read().unwrap(), "e 5\n");
        assert!(f.read().is_ok(), "the new descriptor is kept");
    }

    #[test]
    fn errors_name_the_file() {
        let mut f = ProcFile::new("/nonexistent/rtcollector/x");
        let e = f.read().unwrap_err();
        assert!(e.0.contains("/nonexistent/rtcollector/x"), "{e}");
        assert_eq!(f.read_optional().unwrap(), None);
    }

    #[test]
    fn numbers_fill_the_slots_and_count_the_rest() {
        let mut v = [0u64; 2];
        assert_eq!(numbers_into(fields("1 2 3"), &mut v, "x"), Ok(3));
        assert_eq!(v, [1, 2]);
        assert_eq!(
            numbers_into(fields("1 two"), &mut v, "cpu0"),
            Err("cpu0: bad number `two`".to_string())
        );
    }

    #[test]
    fn binary_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g");
        std::fs::write(&p, [0xff, 0xfe, 0x00]).unwrap();
        assert!(ProcFile::new(&p).read().is_err());
    }
}

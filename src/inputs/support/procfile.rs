//! Reading small /proc and /sys files into a buffer that is reused every collection.

use crate::core::InputError;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A file read again on every collection, into the same buffer.
pub struct ProcFile {
    path: PathBuf,
    buf: Vec<u8>,
}

impl ProcFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ProcFile {
            path: path.into(),
            buf: Vec::with_capacity(4096),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's whole content. Errors name the file; content that is not UTF-8 is garbage.
    pub fn read(&mut self) -> Result<&str, InputError> {
        self.buf.clear();
        std::fs::File::open(&self.path)
            .and_then(|mut f| f.read_to_end(&mut self.buf))
            .map_err(|e| InputError::io(&self.path, &e))?;
        std::str::from_utf8(&self.buf)
            .map_err(|_| InputError::parse(&self.path, "content is not text"))
    }

    /// Like [`ProcFile::read`], but a missing file is `Ok(None)` (an optional kernel feature).
    pub fn read_optional(&mut self) -> Result<Option<&str>, InputError> {
        match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => self.read().map(Some),
        }
    }
}

/// Whitespace-separated fields of a line.
pub fn fields(line: &str) -> std::str::SplitAsciiWhitespace<'_> {
    line.split_ascii_whitespace()
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
    fn errors_name_the_file() {
        let mut f = ProcFile::new("/nonexistent/rtcollector/x");
        let e = f.read().unwrap_err();
        assert!(e.0.contains("/nonexistent/rtcollector/x"), "{e}");
        assert_eq!(f.read_optional().unwrap(), None);
    }

    #[test]
    fn binary_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g");
        std::fs::write(&p, [0xff, 0xfe, 0x00]).unwrap();
        assert!(ProcFile::new(&p).read().is_err());
    }
}

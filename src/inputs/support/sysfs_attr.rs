//! One integer sysfs attribute (`temp1_input`, `w1/…/temperature`), kept open and read
//! again from offset 0 each collection: no path lookup and no allocation per reading.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Why an attribute gave no value.
#[derive(Debug)]
pub enum AttrError {
    /// The read failed: EIO from a sensor that did not answer, ENODATA, EISDIR…
    Io(io::Error),
    /// The content is not one integer.
    NotANumber,
}

impl std::fmt::Display for AttrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrError::Io(e) => write!(f, "{e}"),
            AttrError::NotANumber => f.write_str("not a number"),
        }
    }
}

/// Longest content read: an attribute holds one integer and a newline.
const MAX_LEN: usize = 32;

pub struct IntAttr {
    file: File,
}

impl IntAttr {
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(IntAttr {
            file: File::open(path)?,
        })
    }

    /// The attribute's value now (sysfs regenerates it on a read at offset 0).
    pub fn read(&self) -> Result<i64, AttrError> {
        let mut buf = [0u8; MAX_LEN];
        let n = loop {
            match self.file.read_at(&mut buf, 0) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(AttrError::Io(e)),
            }
        };
        parse_int(&buf[..n]).ok_or(AttrError::NotANumber)
    }
}

/// One decimal integer with surrounding whitespace, as sysfs prints it.
pub fn parse_int(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_again_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("temp1_input");
        std::fs::write(&p, "45000\n").unwrap();
        let a = IntAttr::open(&p).unwrap();
        assert_eq!(a.read().unwrap(), 45000);
        std::fs::write(&p, "-1250\n").unwrap();
        assert_eq!(a.read().unwrap(), -1250);
        std::fs::write(&p, "hot\n").unwrap();
        assert!(matches!(a.read(), Err(AttrError::NotANumber)));
    }

    #[test]
    fn a_directory_fails_on_read_not_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let a = IntAttr::open(dir.path()).unwrap();
        assert!(matches!(a.read(), Err(AttrError::Io(_))));
    }
}

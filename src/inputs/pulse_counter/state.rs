//! The energy counter of each line, kept across restarts: one small text file per line,
//! `<buffer_dir>/pulse_counter/<chip>-<offset>.wh`, holding the energy in Wh. Replaced
//! atomically (`core::atomic_file`), so a power cut leaves the old or the
//! new value, never a torn one.

use std::fs;
use crate::core::atomic_file;
use std::io;
use std::path::{Path, PathBuf};

/// The file of line `offset` of `chip` (a name such as `gpiochip0`).
pub fn file_of(dir: &Path, chip: &str, offset: u32) -> PathBuf {
    dir.join(format!("{chip}-{offset}.wh"))
}

#[derive(Debug, Clone, PartialEq)]
pub enum LoadError {
    Io(String),
    /// Not a finite, non-negative number.
    Corrupt(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => f.write_str(e),
            LoadError::Corrupt(text) => write!(f, "not an energy in Wh: `{text}`"),
        }
    }
}

pub fn parse(text: &str) -> Result<f64, LoadError> {
    let t = text.trim();
    match t.parse::<f64>() {
        Ok(wh) if wh.is_finite() && wh >= 0.0 => Ok(wh),
        _ => Err(LoadError::Corrupt(t.chars().take(40).collect())),
    }
}

/// The saved energy, or `None` when the file does not exist yet (a new meter).
pub fn load(path: &Path) -> Result<Option<f64>, LoadError> {
    match fs::read_to_string(path) {
        Ok(text) => parse(&text).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LoadError::Io(format!("{}: {e}", path.display()))),
    }
}

/// Writes `energy_wh` to `path` atomically, creating its folder if needed.
pub fn save(path: &Path, energy_wh: f64) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    // `{}` prints the shortest text that reads back as the same f64.
    atomic_file::replace(path, format!("{energy_wh}\n").as_bytes())
}

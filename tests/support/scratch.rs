//! Files a test hands the agent: a temp dir for its config, and the checked-in fixtures.

use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A temp dir holding a config file.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    pub fn config(&self, text: &str) -> PathBuf {
        self.write("config.yaml", text)
    }
}

/// MemTotal of the `basic` fixture's /proc/meminfo, in bytes (what `mem_total_bytes` is).
pub fn fixture_mem_total_bytes() -> f64 {
    let meminfo = std::fs::read_to_string(fixture("basic").join("proc/meminfo")).unwrap();
    let kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("MemTotal in the fixture");
    kb * 1024.0
}

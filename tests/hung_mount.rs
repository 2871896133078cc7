//! A network filesystem whose server is gone: statfs on it blocks in the kernel for good.
//! Played by a FUSE filesystem whose statfs never answers (tests/fixtures/hung_mount/
//! hangfs.py: the caller waits uninterruptibly, even through SIGKILL, as on a hard NFS
//! mount). The agent must go on collecting everything else.
//!
//! Needs root, /dev/fuse and `RTC_FUSE_PYTHON` (a python with fusepy):
//!
//! ```sh
//! export RTC_FUSE_PYTHON="$(scripts/setup-fuse)"
//! ```
//!
//! Nothing is skipped: without them the test fails and says why.

mod support;
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::agent::Agent;
use support::scratch::{fixture, Scratch};

const PYTHON_ENV: &str = "RTC_FUSE_PYTHON";

/// The mounted hanging filesystem; dropping it kills its process (which releases every
/// blocked caller) and detaches the mount.
struct HangFs {
    child: Child,
    mountpoint: PathBuf,
}

impl HangFs {
    fn mount(mountpoint: &Path) -> HangFs {
        let Some(python) = std::env::var_os(PYTHON_ENV).filter(|p| !p.is_empty()) else {
            panic!(
                "{PYTHON_ENV} is not set. This test mounts a FUSE filesystem that plays a dead \
                 NFS server: run\n    export {PYTHON_ENV}=\"$(scripts/setup-fuse)\"\nfirst (root)"
            );
        };
        std::fs::create_dir_all(mountpoint).unwrap();
        let mut child = Command::new(python)
            .arg(fixture("hung_mount").join("hangfs.py"))
            .arg(mountpoint)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hangfs.py");
        let give_up = Instant::now() + Duration::from_secs(15);
        while !is_mounted(mountpoint) {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read;
                child.stderr.take().unwrap().read_to_string(&mut err).ok();
                panic!("hangfs.py exited ({status}) without mounting: {err}");
            }
            assert!(
                Instant::now() < give_up,
                "hangfs.py did not mount within 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        HangFs {
            child,
            mountpoint: mountpoint.to_path_buf(),
        }
    }

    /// Kills the filesystem's process: blocked statfs calls then fail instead of waiting.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HangFs {
    fn drop(&mut self) {
        self.kill();
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mountpoint)
            .status();
    }
}

fn is_mounted(mountpoint: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = mountpoint.to_string_lossy();
    mounts.lines().any(|l| {
        let mut f = l.split(' ');
        f.nth(4) == Some(&*want) && l.contains(" - fuse.hangfs ")
    })
}

/// Threads of `pid` named `name`.
fn threads_named(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|comm| comm.trim_end() == name)
                .count()
        })
        .unwrap_or(0)
}

/// Distinct timestamps of the JSON samples named `name` whose labels contain `label`.
fn stamps(lines: &[String], name: &str, label: &str) -> std::collections::BTreeSet<i64> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("OUT "))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["name"] == name && v["labels"].to_string().contains(label))
        .filter_map(|v| v["timestamp_ms"].as_i64())
        .collect()
}

#[test]
fn a_dead_network_mount_stalls_only_its_own_figures() {
    let s = Scratch::new();
    let mnt = s.dir.path().join("nas");
    let fs = HangFs::mount(&mnt);
    let path = s.config(&format!(
        "hostname: hungtest\ninterval: 1s\ninputs:\n  - linux_mem\n  - linux_disk:\n      mount_points: [\"/\", \"{}\"]\noutputs:\n  - stdout:\n      format: json\n",
        mnt.display()
    ));
    let mut agent = Agent::start(&path);
    // Declared after the agent, so dropped before it when an assertion fails: an agent
    // thread blocked in statfs keeps the agent from exiting until the filesystem is gone.
    let mut fs = fs;
    let (_, started) = agent.wait_for(Duration::from_secs(10), |l| l.contains("started"));
    assert!(started);
    std::thread::sleep(Duration::from_millis(6_500));
    let pid = agent.child.id();
    let stuck = threads_named(pid, "rtc-statvfs");
    let lines = agent.drain();

    // Everything else goes on every second, / included.
    let mem = stamps(&lines, "mem_total_bytes", "");
    assert!(mem.len() >= 5, "linux_mem at {mem:?}: {lines:#?}");
    let root = stamps(&lines, "disk_total_bytes", "\"mount\":\"/\"");
    assert!(root.len() >= 3, "/ at {root:?}: {lines:#?}");
    let nas = stamps(&lines, "disk_total_bytes", &mnt.to_string_lossy());
    assert!(nas.is_empty(), "{lines:#?}");
    let said = lines
        .iter()
        .filter(|l| l.starts_with("ERR") && l.contains("no answer within 2s"))
        .count();
    assert_eq!(said, 1, "one warning for the hang: {lines:#?}");
    // One blocked call in all, not one more per collection.
    assert_eq!(stuck, 1, "statvfs threads");

    // The server "comes back" (here: its process ends): the blocked call returns and the
    // thread with it; the agent stops as usual.
    fs.kill();
    let give_up = Instant::now() + Duration::from_secs(10);
    while threads_named(pid, "rtc-statvfs") > 0 {
        assert!(
            Instant::now() < give_up,
            "the statvfs thread outlived the hang"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    agent.signal(Signal::SIGTERM);
    let (status, _) = agent.wait_exit(Duration::from_secs(6)).expect("exits");
    assert!(status.success(), "{status:?}");
}

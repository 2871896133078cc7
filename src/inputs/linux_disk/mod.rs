//! `linux_disk`: filesystem space and inodes per mount point (mounts list + statvfs).

use crate::core::offload::{self, InFlight};
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::{fields, Known, ProcFile};
use crate::inputs::BuildCtx;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Space and inodes of each mounted filesystem, as df shows them.
- linux_disk:
    # Filesystem types left out (setting this replaces the whole list).
    ignore_fs: [tmpfs, devtmpfs, devfs, iso9660, overlay, aufs, squashfs, rootfs, ramfs,
                proc, sysfs, cgroup, cgroup2, pstore, securityfs, selinuxfs, debugfs,
                tracefs, configfs, fusectl, mqueue, hugetlbfs, bpf, autofs, binfmt_misc,
                nsfs, efivarfs, devpts, rpc_pipefs, nfsd, fuse.lxcfs, fuse.gvfsd-fuse,
                fuse.portal, fuse.snapfuse]
    # If not empty, only these mount points, whatever their type.
    mount_points: []           # e.g. [/, /boot, /mnt/usb]
    # In a container with the host's / mounted at /hostfs (and procfs_root: /hostfs/proc):
    host_mount_prefix: \"\"      # e.g. /hostfs
";

/// Pseudo and read-only image filesystems: no space to watch.
pub const DEFAULT_IGNORE_FS: &[&str] = &[
    "tmpfs",
    "devtmpfs",
    "devfs",
    "iso9660",
    "overlay",
    "aufs",
    "squashfs",
    "rootfs",
    "ramfs",
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "pstore",
    "securityfs",
    "selinuxfs",
    "debugfs",
    "tracefs",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "bpf",
    "autofs",
    "binfmt_misc",
    "nsfs",
    "efivarfs",
    "devpts",
    "rpc_pipefs",
    "nfsd",
    "fuse.lxcfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "fuse.snapfuse",
];

/// Filesystems whose statvfs waits for a server, which may never answer: on a hard mount
/// the call then blocks in the kernel for good. Any FUSE filesystem (`fuse`, `fuse.*`: sshfs,
/// rclone, s3fs…; `fuseblk`: ntfs-3g, exfat-fuse) counts too, since it waits for a
/// user-space process.
pub const MAY_BLOCK_FS: &[&str] = &[
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "lustre", "afs",
    "ncpfs", "coda", "davfs",
];

/// Whether statvfs on a filesystem of this type may block for good.
pub fn may_block(fstype: &str) -> bool {
    fstype == "fuse"
        || fstype == "fuseblk"
        || fstype.starts_with("fuse.")
        || MAY_BLOCK_FS.contains(&fstype)
}

thread_local! {
    /// The claim of each mount point's remote statvfs, by path, shared by every build of the
    /// input: a reload (which builds it anew) starts no second call beside one that hangs.
    static REMOTE_CALLS: RefCell<HashMap<PathBuf, InFlight>> = RefCell::default();
}

fn remote_claim(path: &std::path::Path) -> InFlight {
    REMOTE_CALLS.with(|c| c.borrow_mut().entry(path.to_path_buf()).or_default().clone())
}

/// How long one collection waits for the statvfs calls of filesystems that may block.
/// A healthy server answers in milliseconds.
pub const REMOTE_BOUND: Duration = Duration::from_secs(2);

/// Name of the threads those calls run on.
pub const STATVFS_THREAD: &str = "rtc-statvfs";

/// statvfs needs little stack; this is address space until touched.
const STATVFS_STACK: usize = 64 * 1024;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub ignore_fs: Vec<String>,
    pub mount_points: Vec<String>,
    pub host_mount_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ignore_fs: DEFAULT_IGNORE_FS.iter().map(|s| s.to_string()).collect(),
            mount_points: Vec::new(),
            host_mount_prefix: String::new(),
        }
    }
}

pub struct LinuxDisk {
    mounts: ProcFile,
    ignore_fs: Vec<String>,
    mount_points: Vec<String>,
    prefix: String,
    /// Each mount point seen, by its escaped name in the mounts file.
    points: Known<MountPoint>,
}

/// A mount point and what is mounted there.
struct MountPoint {
    /// Unescaped, as the `mount` label.
    mount: Box<str>,
    /// `host_mount_prefix` + `mount`: what statvfs is called on.
    stat_path: PathBuf,
    /// Listed in `mount_points` (when that is not empty).
    listed: bool,
    /// What was mounted there lately; usually one. The last line for a mount point in the
    /// file is the one on top, the one statvfs sees.
    mounted: Vec<Mounted>,
    current: usize,
    /// A statvfs of this mount point running on its own thread (filesystems that may
    /// block): while one hangs, no second is started.
    statvfs: InFlight,
    /// Since when the running statvfs has had no answer, once a collection gave up on it.
    hung_since: Cell<Option<Instant>>,
}

struct Mounted {
    /// As in the mounts file, to compare without unescaping.
    raw_device: Box<str>,
    device: Box<str>,
    fstype: Box<str>,
    report: bool,
    /// See [`may_block`].
    may_block: bool,
    used: bool,
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<LinuxDisk, String> {
    // The mounts of pid 1 are the host's when procfs_root is the host's /proc seen from a
    // container, and the same as our own on a host. With hidepid, /proc/1 is not readable:
    // then our own mounts.
    let init = ctx.procfs_root.join("1/mounts");
    let path = if std::fs::File::open(&init).is_ok() {
        init
    } else {
        ctx.procfs_root.join("self/mounts")
    };
    Ok(LinuxDisk {
        mounts: ProcFile::new(path),
        ignore_fs: cfg.ignore_fs.clone(),
        mount_points: cfg
            .mount_points
            .iter()
            .map(|m| match m.trim_end_matches('/') {
                "" => "/".to_string(),
                t => t.to_string(),
            })
            .collect(),
        prefix: cfg.host_mount_prefix.trim_end_matches('/').to_string(),
        points: Known::default(),
    })
}

/// One line of /proc/mounts: device, mount point, type (still escaped as in the file).
#[derive(Debug, PartialEq)]
pub struct MountLine<'a> {
    pub device: &'a str,
    pub mount: &'a str,
    pub fstype: &'a str,
}

/// Parses `device mountpoint fstype options dump pass`.
pub fn parse_mount_line(line: &str) -> Result<MountLine<'_>, String> {
    let mut f = fields(line);
    let (Some(device), Some(mount), Some(fstype), Some(_options), Some(dump), Some(pass)) =
        (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
    else {
        return Err(format!("truncated line `{}`", line.trim()));
    };
    if dump.parse::<u32>().is_err() || pass.parse::<u32>().is_err() || f.next().is_some() {
        return Err(format!("unexpected line `{}`", line.trim()));
    }
    Ok(MountLine {
        device,
        mount,
        fstype,
    })
}

/// Undoes the kernel's octal escapes in /proc/mounts (`\040` space, `\011` tab, `\012`
/// newline, `\134` backslash). Anything else is kept as it is.
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| (d[0] - b'0') as u32 * 64 + (d[1] - b'0') as u32 * 8 + (d[2] - b'0') as u32)
            .filter(|&v| v <= 0xff);
        match octal {
            Some(v) => {
                out.push(v as u8);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Space and inodes of one filesystem, as statvfs gives them.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Fragment size: the unit of the block counts.
    pub frsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    /// Free blocks available to unprivileged users.
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
}

/// The figures written for a filesystem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskFigures {
    pub total: f64,
    pub used: f64,
    pub free: f64,
    /// `None` when nothing is used or available (an empty pseudo filesystem).
    pub used_percent: Option<f64>,
    /// `None` when the filesystem has no inode count (btrfs, vfat).
    pub inodes_used_percent: Option<f64>,
}

/// As `df`: used = total − free (root's reserve counts as neither used nor available),
/// used% = used / (used + available).
pub fn figures(u: &Usage) -> DiskFigures {
    let size = u.frsize as f64;
    let used_blocks = u.blocks.saturating_sub(u.bfree);
    let used = used_blocks as f64 * size;
    let free = u.bavail as f64 * size;
    let base = used_blocks as f64 + u.bavail as f64;
    let used_inodes = u.files.saturating_sub(u.ffree);
    DiskFigures {
        total: u.blocks as f64 * size,
        used,
        free,
        used_percent: (base > 0.0).then(|| 100.0 * used_blocks as f64 / base),
        inodes_used_percent: (u.files > 0).then(|| 100.0 * used_inodes as f64 / u.files as f64),
    }
}

/// statvfs of `path`, in plain integers.
// The counts are 32-bit on some 32-bit targets, so the `from`s are not useless there.
#[allow(clippy::useless_conversion)]
pub fn usage(path: &std::path::Path) -> nix::Result<Usage> {
    let s = nix::sys::statvfs::statvfs(path)?;
    Ok(Usage {
        frsize: u64::from(s.fragment_size()),
        blocks: u64::from(s.blocks()),
        bfree: u64::from(s.blocks_free()),
        bavail: u64::from(s.blocks_available()),
        files: u64::from(s.files()),
        ffree: u64::from(s.files_free()),
    })
}

impl LinuxDisk {
    /// Reads the mounts file into `points`; nothing is written unless it all parsed.
    fn read(&mut self) -> Result<(), InputError> {
        self.points.begin();
        let text = self.mounts.read()?;
        let parsed = note_mounts(
            text,
            &mut self.points,
            &self.ignore_fs,
            &self.mount_points,
            &self.prefix,
        );
        parsed.map_err(|e| InputError::parse(self.mounts.path(), e))?;
        self.points.sweep();
        Ok(())
    }

    /// Local filesystems are asked inline (statvfs answers from memory); those that may
    /// block are asked on threads of their own, all at once, and waited for at most
    /// [`REMOTE_BOUND`], so a dead NFS server costs this input one mount point, not the agent
    /// its only executor thread.
    async fn collect(&mut self, em: &mut Emitter<'_>) -> Result<(), InputError> {
        self.read()?;
        let mut failed = false;
        let mut remote: Option<(smol::channel::Sender<Answer>, smol::channel::Receiver<Answer>)> =
            None;
        let mut waiting = 0usize;
        for (i, e) in self.points.seen_indexed() {
            let p = &e.state;
            let m = &p.mounted[p.current];
            if !(p.listed && m.report) {
                continue;
            }
            if m.may_block {
                let (tx, _) = remote.get_or_insert_with(|| smol::channel::bounded(self.points.len()));
                match start_statvfs(i, p, tx.clone()) {
                    Ok(()) => waiting += 1,
                    Err(err) => report_once(em, &mut failed, err),
                }
                continue;
            }
            take_usage(em, &mut failed, p, usage(&p.stat_path));
        }
        if let Some((tx, rx)) = remote {
            drop(tx);
            self.await_remote(em, &rx, waiting, &mut failed).await;
        }
        Ok(())
    }

    /// Takes the answers of the remote statvfs calls until all came or the bound passed;
    /// mount points without an answer are reported and marked hung.
    async fn await_remote(
        &self,
        em: &mut Emitter<'_>,
        rx: &smol::channel::Receiver<Answer>,
        mut waiting: usize,
        failed: &mut bool,
    ) {
        let mut deadline = smol::Timer::after(REMOTE_BOUND);
        while waiting > 0 {
            let answer = futures_lite::future::or(async { rx.recv().await.ok() }, async {
                (&mut deadline).await;
                None
            })
            .await;
            let Some(answer) = answer else {
                break;
            };
            waiting -= 1;
            take_usage(em, failed, &self.points.get(answer.0).state, answer.1);
        }
        // Answers that came in just as the bound passed.
        while let Ok((i, result)) = rx.try_recv() {
            waiting -= 1;
            take_usage(em, failed, &self.points.get(i).state, result);
        }
        if waiting == 0 {
            return;
        }
        let now = Instant::now();
        for e in self.points.seen() {
            let p = &e.state;
            if p.statvfs.is_running() && p.hung_since.get().is_none() {
                p.hung_since.set(Some(now));
                report_once(
                    em,
                    failed,
                    InputError::new(format!(
                        "statvfs {}: no answer within {REMOTE_BOUND:?} (is the server of this {} mount down?); not asked again until that call returns",
                        p.stat_path.display(),
                        p.mounted[p.current].fstype
                    )),
                );
            }
        }
    }
}

/// A remote statvfs answer: the mount point's index and what statvfs said.
type Answer = (usize, nix::Result<Usage>);

/// Starts the statvfs of mount point `i` on a thread of its own, answering on `tx`; refuses
/// while the previous call for it still hangs.
fn start_statvfs(
    i: usize,
    p: &MountPoint,
    tx: smol::channel::Sender<Answer>,
) -> Result<(), InputError> {
    let Some(claim) = p.statvfs.try_claim() else {
        let since = p.hung_since.get().map_or(Duration::ZERO, |t| t.elapsed());
        return Err(InputError::new(format!(
            "statvfs {}: the call started {}s ago still has no answer; skipped",
            p.stat_path.display(),
            since.as_secs()
        )));
    };
    if p.hung_since.take().is_some() {
        log::info!(
            "linux_disk: statvfs {} returned; asking again",
            p.stat_path.display()
        );
    }
    let path = p.stat_path.clone();
    offload::start_thread(STATVFS_THREAD, STATVFS_STACK, move || {
        let answer = usage(&path);
        // Released when the call returns, however long after the collection gave up, and
        // before the answer is sent, so the next collection may ask again at once.
        drop(claim);
        let _ = tx.try_send((i, answer));
    })
    .map_err(|e| InputError::new(format!("statvfs {}: {e}", p.stat_path.display())))
}

/// What statvfs said of mount point `p`: its figures, or its error.
fn take_usage(em: &mut Emitter, failed: &mut bool, p: &MountPoint, result: nix::Result<Usage>) {
    match result {
        Ok(u) => emit_usage(em, p, &u),
        Err(err) => report_once(
            em,
            failed,
            InputError::new(format!("statvfs {}: {err}", p.stat_path.display())),
        ),
    }
}

/// The first failure of a collection is the input's partial failure; the others go to the
/// debug log.
fn report_once(em: &mut Emitter, failed: &mut bool, err: InputError) {
    log::debug!("linux_disk: {err}");
    if !*failed {
        em.partial_failure(err);
        *failed = true;
    }
}

fn emit_usage(em: &mut Emitter, p: &MountPoint, u: &Usage) {
    let m = &p.mounted[p.current];
    let f = figures(u);
    let labels = [
        ("mount", &*p.mount),
        ("device", &*m.device),
        ("fstype", &*m.fstype),
    ];
    em.gauge("disk_total_bytes", &labels, f.total);
    em.gauge("disk_used_bytes", &labels, f.used);
    em.gauge("disk_free_bytes", &labels, f.free);
    if let Some(pct) = f.used_percent {
        em.gauge("disk_used_percent", &labels, pct);
    }
    if let Some(pct) = f.inodes_used_percent {
        em.gauge("disk_inodes_used_percent", &labels, pct);
    }
}

/// Records every line of a mounts file in `points`: which mount points exist and what is
/// on top of each. New names are unescaped and their statvfs path built once.
fn note_mounts(
    text: &str,
    points: &mut Known<MountPoint>,
    ignore_fs: &[String],
    mount_points: &[String],
    prefix: &str,
) -> Result<(), String> {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let m = parse_mount_line(line)?;
        let (i, first) = points.find_or_insert(m.mount, |raw| {
            let mount = unescape(raw);
            let stat_path = PathBuf::from(format!("{prefix}{mount}"));
            MountPoint {
                listed: mount_points.is_empty() || mount_points.iter().any(|p| *p == mount),
                // Only network and FUSE paths go into the shared registry, which would
                // otherwise keep every container's overlay mount ever seen.
                statvfs: if may_block(m.fstype) {
                    remote_claim(&stat_path)
                } else {
                    InFlight::default()
                },
                stat_path,
                mount: mount.into(),
                mounted: Vec::with_capacity(1),
                current: 0,
                hung_since: Cell::new(None),
            }
        });
        let p = &mut points.get_mut(i).state;
        if first {
            p.mounted.iter_mut().for_each(|x| x.used = false);
        }
        let found = p
            .mounted
            .iter()
            .position(|x| &*x.raw_device == m.device && &*x.fstype == m.fstype);
        p.current = match found {
            Some(k) => k,
            None => {
                // What was mounted here before and is gone now is forgotten.
                p.mounted.retain(|x| x.used);
                p.mounted.push(Mounted {
                    raw_device: m.device.into(),
                    device: unescape(m.device).into(),
                    fstype: m.fstype.into(),
                    report: !mount_points.is_empty() || !ignore_fs.iter().any(|t| t == m.fstype),
                    may_block: may_block(m.fstype),
                    used: false,
                });
                p.mounted.len() - 1
            }
        };
        p.mounted[p.current].used = true;
    }
    Ok(())
}

impl Input for LinuxDisk {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(LinuxDisk::collect(self, em))
    }
}

#[cfg(test)]
mod tests;

use super::*;
use crate::inputs::testutil::{Collected, Harness};
use std::path::Path;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn parses_mount_lines_and_unescapes_names() {
    let m = parse_mount_line("/dev/sda1 /mnt/my\\040disk ext4 rw,relatime 0 0").unwrap();
    assert_eq!(
        m,
        MountLine {
            device: "/dev/sda1",
            mount: "/mnt/my\\040disk",
            fstype: "ext4",
        }
    );
    assert_eq!(unescape(m.mount), "/mnt/my disk");
    assert_eq!(unescape("/a\\011b\\012c\\134d"), "/a\tb\nc\\d");
    assert_eq!(unescape("/plain"), "/plain");
    assert!(matches!(unescape("/plain"), Cow::Borrowed(_)));
    assert_eq!(unescape("/odd\\04"), "/odd\\04", "not an escape: kept");
    assert_eq!(unescape("/odd\\999x"), "/odd\\999x");
    assert_eq!(
        unescape("/caf\\303\\251"),
        "/café",
        "UTF-8 bytes escaped one by one"
    );
}

#[test]
fn garbage_lines_are_rejected() {
    assert!(parse_mount_line("/dev/sda1 / ext4").is_err(), "truncated");
    assert!(parse_mount_line("/dev/sda1 / ext4 rw 0").is_err());
    assert!(parse_mount_line("/dev/sda1 / ext4 rw 0 x").is_err());
    assert!(parse_mount_line("/dev/sda1 / ext4 rw 0 0 extra").is_err());
}

#[test]
fn figures_follow_df() {
    // 4 KiB blocks: 1000 in all, 300 free of which 250 for unprivileged users (50 kept
    // for root); 100 inodes, 40 free.
    let f = figures(&Usage {
        frsize: 4096,
        blocks: 1000,
        bfree: 300,
        bavail: 250,
        files: 100,
        ffree: 40,
    });
    assert_eq!(
        f,
        DiskFigures {
            total: 4_096_000.0,
            used: 2_867_200.0,
            free: 1_024_000.0,
            used_percent: Some(100.0 * 700.0 / 950.0),
            inodes_used_percent: Some(60.0),
        }
    );
    // No inode count (btrfs, vfat) and nothing at all (an empty pseudo filesystem).
    let f = figures(&Usage {
        frsize: 4096,
        blocks: 10,
        bfree: 10,
        bavail: 10,
        files: 0,
        ffree: 0,
    });
    assert_eq!((f.used_percent, f.inodes_used_percent), (Some(0.0), None));
    let f = figures(&Usage::default());
    assert_eq!((f.total, f.used_percent), (0.0, None));
}

/// A tempdir holding `proc/<mounts_at>` and the directories mount points refer to, for
/// `host_mount_prefix` = the tempdir.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new(mounts_at: &str, mounts: &str, dirs: &[&str]) -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("proc").join(mounts_at);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, mounts).unwrap();
        for d in dirs {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Tree { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn harness(&self, cfg: Config) -> Harness {
        let cfg = Config {
            host_mount_prefix: self.root().to_string_lossy().into_owned(),
            ..cfg
        };
        let ctx = BuildCtx::with_roots(self.root().join("proc"), self.root().join("sys"));
        Harness::new(Box::new(build(&cfg, &ctx).unwrap()))
    }
}

/// Collects until the mount's figures equal statvfs's exactly, taken before and after the
/// collection with the same result. Other processes write to the filesystem (the tests
/// beside this one among them): a file written and removed during the collection leaves
/// statvfs the same before and after while the collection saw it, so a mismatch is retried.
/// Wrong arithmetic never matches; up to 50 attempts, the last one's values in the failure.
fn collect_and_check(h: &mut Harness, path: &Path, labels: &str) -> Collected {
    let key = |name: &str| format!("{name}{{{labels}}}");
    let reading = |got: &Collected| {
        (
            got[&key("disk_total_bytes")],
            got[&key("disk_used_bytes")],
            got[&key("disk_free_bytes")],
            got.get(&key("disk_used_percent")),
            got.get(&key("disk_inodes_used_percent")),
        )
    };
    let mut attempt = 0;
    loop {
        let before = usage(path).unwrap();
        let got = h.collect(1_000 + attempt);
        let settled = usage(path).unwrap() == before;
        let f = figures(&before);
        let want = (f.total, f.used, f.free, f.used_percent, f.inodes_used_percent);
        if settled && reading(&got) == want {
            return got;
        }
        attempt += 1;
        assert!(
            attempt < 50,
            "{labels}: collected (total, used, free, used %, inodes used %) {:?}, statvfs {want:?}",
            reading(&got)
        );
    }
}

fn mounts_reported(got: &Collected) -> Vec<&str> {
    let mut m: Vec<&str> = got
        .keys_starting("disk_total_bytes{")
        .iter()
        .map(|k| k.split(",mount=").nth(1).unwrap().trim_end_matches('}'))
        .collect();
    m.sort_unstable();
    m
}

const MOUNTS: &str = "\
rootfs / rootfs rw 0 0
/dev/root / ext4 rw,noatime 0 0
devtmpfs /dev devtmpfs rw,relatime,size=1876480k,nr_inodes=469120,mode=755 0 0
proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev,size=787360k,nr_inodes=819200,mode=755 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0
/dev/mmcblk0p1 /boot/firmware vfat rw,relatime,fmask=0022,dmask=0022,codepage=437 0 2
/dev/sda1 /mnt/usb\\040disk ext4 rw,relatime 0 0
/dev/sdb1 /mnt/over ext4 rw,relatime 0 0
tmpfs /mnt/over tmpfs rw,relatime 0 0
";

#[test]
fn reports_real_filesystems_under_the_prefix_with_exact_values() {
    let t = Tree::new(
        "self/mounts",
        MOUNTS,
        &["boot/firmware", "mnt/usb disk", "mnt/over", "run"],
    );
    let mut h = t.harness(Config::default());
    let got = collect_and_check(&mut h, t.root(), "device=/dev/root,fstype=ext4,mount=/");
    assert_eq!(got.error, None);
    // rootfs under /dev/root and the tmpfs over /mnt/over are hidden; pseudo filesystems
    // are ignored; the escaped space is decoded.
    assert_eq!(
        mounts_reported(&got),
        ["/", "/boot/firmware", "/mnt/usb disk"]
    );
    collect_and_check(
        &mut h,
        &t.root().join("mnt/usb disk"),
        "device=/dev/sda1,fstype=ext4,mount=/mnt/usb disk",
    );
    collect_and_check(
        &mut h,
        &t.root().join("boot/firmware"),
        "device=/dev/mmcblk0p1,fstype=vfat,mount=/boot/firmware",
    );
}

#[test]
fn a_mount_that_cannot_be_statted_is_skipped_and_noted() {
    // /mnt/gone has no directory under the prefix: statvfs fails, as on a dead mount.
    let t = Tree::new(
        "self/mounts",
        "/dev/root / ext4 rw 0 0\n/dev/sdc1 /mnt/gone ext4 rw 0 0\n/dev/sdd1 /mnt/gone2 xfs rw 0 0\n",
        &[],
    );
    let mut h = t.harness(Config::default());
    let got = collect_and_check(&mut h, t.root(), "device=/dev/root,fstype=ext4,mount=/");
    let e = got.error.clone().expect("partial failure");
    assert!(e.0.starts_with("statvfs "), "{e}");
    assert!(e.0.contains("/mnt/gone"), "{e}");
    assert_eq!(mounts_reported(&got), ["/"]);
    // Still failing: noted again on the next collection.
    assert!(h.collect(5_000).error.is_some());
}

#[test]
fn mount_points_pick_mounts_whatever_their_type() {
    let t = Tree::new("self/mounts", MOUNTS, &["run", "mnt/over"]);
    let mut h = t.harness(Config {
        mount_points: s(&["/run/", "/mnt/over", "/not/mounted"]),
        ..Config::default()
    });
    let got = collect_and_check(
        &mut h,
        &t.root().join("run"),
        "device=tmpfs,fstype=tmpfs,mount=/run",
    );
    assert_eq!(got.error, None);
    assert_eq!(mounts_reported(&got), ["/mnt/over", "/run"]);
    assert!(got.has("disk_total_bytes{device=tmpfs,fstype=tmpfs,mount=/mnt/over}"));
}

#[test]
fn ignore_fs_replaces_the_default_list() {
    let t = Tree::new(
        "self/mounts",
        "/dev/root / ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\n/dev/sda1 /data xfs rw 0 0\n",
        &["run", "data"],
    );
    let mut h = t.harness(Config {
        ignore_fs: s(&["xfs"]),
        ..Config::default()
    });
    let got = h.collect(1_000);
    assert_eq!(got.error, None);
    assert_eq!(mounts_reported(&got), ["/", "/run"]);
}

#[test]
fn mounts_of_pid_1_are_preferred_to_our_own() {
    let t = Tree::new("1/mounts", "/dev/root / ext4 rw 0 0\n", &[]);
    std::fs::create_dir_all(t.root().join("proc/self")).unwrap();
    std::fs::write(
        t.root().join("proc/self/mounts"),
        "overlay / overlay rw 0 0\n/dev/vdb /data ext4 rw 0 0\n",
    )
    .unwrap();
    let mut h = t.harness(Config::default());
    let got = h.collect(1_000);
    assert_eq!(got.error, None);
    assert_eq!(mounts_reported(&got), ["/"]);
}

#[test]
fn mounts_that_change_between_collections_are_followed() {
    let t = Tree::new("self/mounts", "/dev/root / ext4 rw 0 0\n", &["media/usb"]);
    let file = t.root().join("proc/self/mounts");
    let mut h = t.harness(Config::default());
    assert_eq!(mounts_reported(&h.collect(1_000)), ["/"]);
    std::fs::write(
        &file,
        "/dev/root / ext4 rw 0 0\n/dev/sdb1 /media/usb vfat rw 0 0\n",
    )
    .unwrap();
    let got = h.collect(2_000);
    assert!(got.has("disk_total_bytes{device=/dev/sdb1,fstype=vfat,mount=/media/usb}"));
    // Another stick at the same place.
    std::fs::write(
        &file,
        "/dev/root / ext4 rw 0 0\n/dev/sdc1 /media/usb exfat rw 0 0\n",
    )
    .unwrap();
    let got = h.collect(3_000);
    assert!(got.has("disk_total_bytes{device=/dev/sdc1,fstype=exfat,mount=/media/usb}"));
    assert!(!got.has("disk_total_bytes{device=/dev/sdb1,fstype=vfat,mount=/media/usb}"));
    std::fs::write(&file, "/dev/root / ext4 rw 0 0\n").unwrap();
    assert_eq!(mounts_reported(&h.collect(4_000)), ["/"]);
}

#[test]
fn garbage_or_truncated_files_are_errors_naming_the_file() {
    let t = Tree::new("self/mounts", "/dev/root / ext4 rw 0 0\n", &[]);
    let file = t.root().join("proc/self/mounts");
    let mut h = t.harness(Config::default());
    crate::inputs::testutil::assert_bad_contents_rejected(
        &mut h,
        &file,
        &[
            "/dev/root / ext4 rw 0 0\n/dev/sda1 /data ext4 rw,rela",
            "/dev/root / ext4 rw zero 0\n",
            "garbage\n",
        ],
    );
}

fn sample_options() -> Config {
    crate::inputs::testutil::sample_options(SAMPLE)
}

#[test]
fn sample_is_valid_and_shows_the_defaults() {
    let (c, d) = (sample_options(), Config::default());
    assert_eq!(c.ignore_fs, d.ignore_fs);
    assert_eq!(c.mount_points, d.mount_points);
    assert_eq!(c.host_mount_prefix, d.host_mount_prefix);
}

#[test]
fn network_and_fuse_filesystems_may_block_local_ones_do_not() {
    for t in ["nfs", "nfs4", "cifs", "smb3", "9p", "ceph", "fuse", "fuse.sshfs", "fuse.rclone"] {
        assert!(may_block(t), "{t}");
    }
    assert!(may_block("fuseblk"), "ntfs-3g waits on its process too");
    for t in ["ext4", "xfs", "btrfs", "vfat", "f2fs", "zfs", "fusectl"] {
        assert!(!may_block(t), "{t}");
    }
}

#[test]
fn mounts_that_may_block_are_asked_on_their_own_threads_with_the_same_figures() {
    let t = Tree::new(
        "self/mounts",
        "/dev/root / ext4 rw 0 0\nnas:/export /mnt/nas nfs4 rw 0 0\nme@host:/ /mnt/ssh fuse.sshfs rw 0 0\nnas:/gone /mnt/gone nfs rw 0 0\n",
        &["mnt/nas", "mnt/ssh"],
    );
    let mut h = t.harness(Config::default());
    let got = collect_and_check(
        &mut h,
        &t.root().join("mnt/nas"),
        "device=nas:/export,fstype=nfs4,mount=/mnt/nas",
    );
    assert_eq!(mounts_reported(&got), ["/", "/mnt/nas", "/mnt/ssh"]);
    // A remote mount that fails answers with its error, as a local one does.
    let e = got.error.clone().expect("partial failure");
    assert!(e.0.starts_with("statvfs ") && e.0.contains("/mnt/gone"), "{e}");
    collect_and_check(
        &mut h,
        &t.root().join("mnt/ssh"),
        "device=me@host:/,fstype=fuse.sshfs,mount=/mnt/ssh",
    );
    // Every claim was released when its call returned: asked again, answered again.
    let again = h.collect(9_000);
    assert_eq!(mounts_reported(&again), ["/", "/mnt/nas", "/mnt/ssh"]);
}

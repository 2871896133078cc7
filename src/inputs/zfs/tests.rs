use super::*;
use crate::inputs::testutil::{fixture_dir, sample_options, Collected, Harness};

/// A copy of tests/fixtures/zfs to change files in, and its build context.
fn scratch() -> (tempfile::TempDir, BuildCtx) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let dest = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &dest);
            } else {
                std::fs::copy(e.path(), dest).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&fixture_dir("zfs").join("proc"), &dir.path().join("proc"));
    let ctx = BuildCtx::with_roots(dir.path().join("proc"), dir.path().join("sys"));
    (dir, ctx)
}

fn kstats(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("proc/spl/kstat/zfs")
}

fn harness(cfg: Config, ctx: &BuildCtx) -> Harness {
    Harness::new(Box::new(build(&cfg, ctx).unwrap()))
}

fn standin() -> String {
    fixture_dir("zfs").join("zpool").to_string_lossy().into_owned()
}

fn with_zpool(program: String) -> Config {
    Config {
        zpool: true,
        zpool_path: program,
        ..Config::default()
    }
}

fn ok(got: Collected) -> Collected {
    assert!(got.error.is_none(), "{:?}", got.error);
    got
}

#[test]
fn the_sample_is_the_default() {
    let c: Config = sample_options(SAMPLE);
    let d = Config::default();
    assert_eq!(
        (c.arc, c.datasets, c.zpool, c.zpool_path, c.timeout.0),
        (d.arc, d.datasets, d.zpool, d.zpool_path, d.timeout.0)
    );
}

#[test]
fn arc_sizes_and_counters_from_arcstats() {
    let (dir, ctx) = scratch();
    let mut h = harness(Config::default(), &ctx);
    let got = ok(h.collect(10_000));
    assert_eq!(got["zfs_arc_size_bytes"], 4123456789.0);
    assert_eq!(got["zfs_arc_c_bytes"], 4294967296.0);
    assert_eq!(got["zfs_arc_c_min_bytes"], 520093696.0);
    assert_eq!(got["zfs_arc_c_max_bytes"], 8321499136.0);
    assert_eq!(got["zfs_arc_mfu_size_bytes"], 1900000000.0);
    assert_eq!(got["zfs_arc_meta_used_bytes"], 600000000.0);
    assert_eq!(got["zfs_arc_hits"], 9876543.0);
    assert_eq!(got["zfs_arc_misses"], 123457.0);
    assert_eq!(got["zfs_arc_demand_metadata_misses"], 40000.0);
    assert!(!got.has("zfs_arc_hits_rate"), "no rate from the first reading");
    assert!(!got.has("zfs_arc_hit_ratio_percent"));
    // Figures not in the table are not written.
    assert!(got.keys_starting("zfs_arc_hash").is_empty());

    // 10 s later: 900 more hits, 100 more misses.
    let arc = kstats(&dir).join("arcstats");
    let text = std::fs::read_to_string(&arc).unwrap();
    let text = text
        .replace("9876543\n", "9877443\n")
        .replace("123457\n", "123557\n");
    std::fs::write(&arc, text).unwrap();
    let got = ok(h.collect(20_000));
    assert_eq!(got["zfs_arc_hits_rate"], 90.0);
    assert_eq!(got["zfs_arc_misses_rate"], 10.0);
    assert_eq!(got["zfs_arc_hit_ratio_percent"], 90.0);
}

#[test]
fn pools_health_io_and_datasets() {
    let (_dir, ctx) = scratch();
    let got = ok(harness(Config::default(), &ctx).collect(1_000));
    assert_eq!(got["zfs_pool_health{pool=tank}"], 0.0);
    assert_eq!(got["zfs_pool_health{pool=rpool}"], 1.0, "DEGRADED");
    assert_eq!(got["zfs_pool_read_bytes{pool=tank}"], 1296109568.0);
    assert_eq!(got["zfs_pool_written_bytes{pool=tank}"], 1021284352.0);
    assert_eq!(got["zfs_pool_reads{pool=tank}"], 58640.0);
    assert_eq!(got["zfs_pool_writes{pool=tank}"], 75361.0);
    assert!(!got.has("zfs_pool_reads{pool=rpool}"), "no io kstat (OpenZFS 2.1+)");
    assert_eq!(
        got["zfs_dataset_read_bytes{dataset=tank/media files,pool=tank}"],
        9876543210.0
    );
    assert_eq!(got["zfs_dataset_writes{dataset=tank,pool=tank}"], 1200.0);
    assert_eq!(got["zfs_dataset_unlinked{dataset=tank,pool=tank}"], 15.0);
    assert_eq!(
        got["zfs_dataset_written_bytes{dataset=rpool/ROOT/debian,pool=rpool}"],
        7700.0
    );
    assert!(got.keys_starting("zfs_pool_size").is_empty(), "no zpool run");

    let off = Config {
        arc: false,
        datasets: false,
        ..Config::default()
    };
    let got = ok(harness(off, &ctx).collect(1_000));
    assert!(got.keys_starting("zfs_arc").is_empty());
    assert!(got.keys_starting("zfs_dataset").is_empty());
    assert!(got.has("zfs_pool_health{pool=tank}"));
}

#[test]
fn zpool_list_gives_capacity_and_the_health_the_kstats_lack() {
    let (dir, ctx) = scratch();
    let mut h = harness(with_zpool(standin()), &ctx);
    let got = ok(h.collect(1_000));
    assert_eq!(got["zfs_pool_size_bytes{pool=tank}"], 7937099726848.0);
    assert_eq!(got["zfs_pool_allocated_bytes{pool=tank}"], 3174839890739.0);
    assert_eq!(got["zfs_pool_free_bytes{pool=tank}"], 4762259836109.0);
    assert_eq!(got["zfs_pool_fragmentation_percent{pool=tank}"], 12.0);
    assert_eq!(got["zfs_pool_capacity_percent{pool=tank}"], 40.0);
    assert_eq!(got["zfs_pool_capacity_percent{pool=rpool}"], 18.0);
    assert!(!got.has("zfs_pool_fragmentation_percent{pool=rpool}"), "`-`");
    // The Harness fails on a series written twice: the kstat's health is the only one.
    assert_eq!(got["zfs_pool_health{pool=rpool}"], 1.0);
    std::fs::remove_file(kstats(&dir).join("rpool/state")).unwrap();
    let got = ok(h.collect(2_000));
    assert_eq!(got["zfs_pool_health{pool=rpool}"], 1.0, "from zpool list");
}

#[test]
fn a_failing_zpool_is_one_error_and_the_kstats_still_count() {
    let (dir, ctx) = scratch();
    let broken = dir.path().join("zpool-broken");
    std::os::unix::fs::symlink(standin(), &broken).unwrap();
    let got = harness(with_zpool(broken.display().to_string()), &ctx).collect(1_000);
    let e = got.error.clone().expect("error");
    assert!(e.0.contains("cannot be auto-loaded"), "{e}");
    assert!(got.has("zfs_arc_size_bytes"));
    assert!(got.keys_starting("zfs_pool_size").is_empty());

    let missing = dir.path().join("no-zpool-here");
    let got = harness(with_zpool(missing.display().to_string()), &ctx).collect(1_000);
    let e = got.error.expect("error");
    assert!(e.0.contains("install zfsutils or set zpool_path"), "{e}");
}

#[test]
fn no_zfs_module_is_an_error_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = BuildCtx::with_roots(dir.path(), dir.path());
    let got = harness(Config::default(), &ctx).collect(1_000);
    let e = got.error.expect("error");
    assert!(e.0.contains("zfs kernel module is not loaded"), "{e}");
    assert!(got.samples.is_empty());
}

#[test]
fn damaged_kstats_are_errors_naming_the_file_and_the_rest_goes_on() {
    let (dir, ctx) = scratch();
    let z = kstats(&dir);
    let mut h = harness(Config::default(), &ctx);
    let arc = z.join("arcstats");
    let good = std::fs::read_to_string(&arc).unwrap();
    for bad in [
        "".to_string(),
        good.replacen("13 1 0x01", "13 1", 1),
        good.replace("name                            type data", "nom type data"),
        good.replace("size                            4    4123456789", "size 4 lots"),
        good.replace("hits                            4    9876543", "hits"),
    ] {
        std::fs::write(&arc, &bad).unwrap();
        let got = h.collect(1_000);
        let e = got.error.clone().unwrap_or_else(|| panic!("accepted {bad:?}"));
        assert!(e.0.contains("arcstats"), "{e}");
        assert!(got.keys_starting("zfs_arc").is_empty(), "nothing half-read");
        assert!(got.has("zfs_pool_health{pool=tank}"));
    }
    std::fs::write(&arc, good).unwrap();
    std::fs::write(z.join("tank/state"), "SIDEWAYS\n").unwrap();
    std::fs::write(z.join("tank/objset-0x85"), "31 1 0x01 7 2160 1 2\nname type data\nwrites 4 1\n").unwrap();
    let got = h.collect(2_000);
    let e = got.error.clone().expect("error");
    assert!(e.0.contains("tank/state"), "{e}");
    assert!(!got.has("zfs_pool_health{pool=tank}"));
    assert!(got.has("zfs_pool_reads{pool=tank}"));
    assert!(got.has("zfs_dataset_reads{dataset=tank,pool=tank}"));
    std::fs::write(z.join("tank/state"), "ONLINE\n").unwrap();
    let e = h.collect(3_000).error.expect("the objset without a name");
    assert!(e.0.contains("objset-0x85") && e.0.contains("dataset_name"), "{e}");
}

#[test]
fn pools_and_datasets_come_and_go() {
    let (dir, ctx) = scratch();
    let z = kstats(&dir);
    let mut h = harness(Config::default(), &ctx);
    ok(h.collect(1_000));
    std::fs::remove_dir_all(z.join("rpool")).unwrap();
    std::fs::remove_file(z.join("tank/objset-0x85")).unwrap();
    let got = ok(h.collect(2_000));
    assert!(got.keys_starting("zfs_pool_health{pool=rpool").is_empty());
    assert!(got.keys_starting("zfs_dataset_reads{dataset=tank/media").is_empty());
    std::fs::create_dir(z.join("backup")).unwrap();
    std::fs::write(z.join("backup/state"), "ONLINE\n").unwrap();
    let got = ok(h.collect(3_000));
    assert_eq!(got["zfs_pool_health{pool=backup}"], 0.0);
}

#[test]
fn kstat_rows_and_lines() {
    let mut rows = Vec::new();
    for_each_named("1 1 0x01 2 2 3 4\nname type data\na 4 7\nb 7 x y\nc 3 -2\n", |n, v| {
        rows.push((n.to_string(), v.clone_text()))
    })
    .unwrap();
    assert_eq!(
        rows,
        [
            ("a".to_string(), "7".to_string()),
            ("b".to_string(), "x y".to_string()),
            ("c".to_string(), "-2".to_string())
        ]
    );
    assert_eq!(health_code("ONLINE\n"), Some(0.0));
    assert_eq!(health_code("online"), None);
    assert!(zpool_line("tank\t1\t2\t3\t4\t5").is_err());
    assert!(zpool_line("tank\t1\t2\t3\t4\t5\tWEIRD").is_err());
    assert!(zpool_line("tank\t1\tx\t3\t4\t5\tONLINE").is_err());
    assert_eq!(zpool_line("t\t1\t2\t3\t4%\t5%\tONLINE").unwrap().frag, Some(4.0));
    assert!(pool_io("12 3 0x00 1 80 1 2\nnread nwritten reads\n1 2 3\n").is_err());
    assert!(pool_io("12 3 0x00 1 80 1 2\nnread nwritten reads writes\n1 2 3\n").is_err());
}

impl Value<'_> {
    fn clone_text(&self) -> String {
        match self {
            Value::Number(n) => n.to_string(),
            Value::Text(t) => t.to_string(),
        }
    }
}

/// The machine's own kstats, when it has ZFS: the ARC size as arcstats says it.
#[test]
fn live_kstats_when_the_machine_has_zfs() {
    let dir = Path::new("/proc/spl/kstat/zfs");
    if !dir.is_dir() {
        // Straight to the terminal: libtest captures eprintln! of a passing test.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED live_kstats_when_the_machine_has_zfs: {} does not exist (no zfs kernel module on this machine); only the fixture trees were tested ***\n",
            dir.display()
        );
        return;
    }
    let ctx = BuildCtx::with_roots("/proc", "/sys");
    let got = ok(harness(Config::default(), &ctx).collect(1_000));
    let text = std::fs::read_to_string(dir.join("arcstats")).unwrap();
    let c_max: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("c_max "))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(got["zfs_arc_c_max_bytes"], c_max);
}

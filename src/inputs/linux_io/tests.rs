use super::*;
use crate::inputs::testutil::{collect_fixture, fixture_dir, Collected, Harness};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The devices reported, sorted.
fn devices(got: &Collected) -> Vec<&str> {
    let mut d: Vec<&str> = got
        .keys_starting("diskio_reads{")
        .iter()
        .map(|k| {
            k.trim_start_matches("diskio_reads{device=")
                .trim_end_matches('}')
        })
        .collect();
    d.sort_unstable();
    d
}

fn with(cfg: Config) -> impl FnOnce(&BuildCtx) -> Box<dyn Input> {
    move |ctx| Box::new(build(&cfg, ctx).unwrap())
}

#[test]
fn parses_the_20_field_format_of_linux_5_5() {
    let (name, c) = parse_diskstats_line(
        "   8       0 sda 183204 2210 23865722 201034 95012 66710 14326712 893221 0 412330 1094255 120 0 1048576 12 11201 30110",
    )
    .unwrap();
    assert_eq!(name, "sda");
    assert_eq!(
        c,
        DiskCounters {
            reads: 183_204,
            read_sectors: 23_865_722,
            writes: 95_012,
            write_sectors: 14_326_712,
            io_time_ms: Some(412_330),
        }
    );
}

#[test]
fn parses_the_18_and_14_field_formats_and_old_partition_lines() {
    let (_, c) = parse_diskstats_line(
        " 202      16 xvdb 30211 120 4190022 80110 1021 200 80216 6010 0 50120 86120 0 0 0 0",
    )
    .unwrap();
    assert_eq!(
        (
            c.reads,
            c.read_sectors,
            c.writes,
            c.write_sectors,
            c.io_time_ms
        ),
        (30_211, 4_190_022, 1021, 80_216, Some(50_120))
    );
    let (_, c) = parse_diskstats_line(
        "   8    0 sda 4581 1253 130622 61170 2310 5324 61264 35430 0 30790 96600",
    )
    .unwrap();
    assert_eq!(
        (
            c.reads,
            c.read_sectors,
            c.writes,
            c.write_sectors,
            c.io_time_ms
        ),
        (4581, 130_622, 2310, 61_264, Some(30_790))
    );
    let (name, c) = parse_diskstats_line("   8    1 sda1 4400 128410 7634 61072").unwrap();
    assert_eq!(name, "sda1");
    assert_eq!(
        c,
        DiskCounters {
            reads: 4400,
            read_sectors: 128_410,
            writes: 7634,
            write_sectors: 61_072,
            io_time_ms: None,
        }
    );
}

#[test]
fn garbage_lines_are_rejected() {
    assert!(
        parse_diskstats_line("   8    0 sda 1 2 3 4 5 6 7 8 9 10").is_err(),
        "truncated"
    );
    assert!(parse_diskstats_line("   8    0 sda 1 2 3 4 5 6 7 8 9 10 11 12").is_err());
    assert!(parse_diskstats_line("   8    0 sda 1 2 3 4 5 6 7 8 9 10 x").is_err());
    assert!(parse_diskstats_line("   x    0 sda 1 2 3 4 5 6 7 8 9 10 11").is_err());
    assert!(parse_diskstats_line("   8    0").is_err());
    assert!(
        parse_diskstats("", |_, _| {}).is_ok(),
        "no block devices at all"
    );
}

#[test]
fn partitions_are_guessed_from_names_when_sysfs_does_not_know_them() {
    for p in [
        "sda1",
        "vdb12",
        "hdc3",
        "xvda1",
        "mmcblk0p2",
        "nvme0n1p1",
        "md127p1",
    ] {
        assert!(looks_like_partition(p), "{p}");
    }
    for d in [
        "sda",
        "nvme0n1",
        "mmcblk0",
        "mmcblk0boot0",
        "md127",
        "dm-3",
        "sr0",
        "mtdblock4",
        "ubiblock0_1",
        "zram0",
        "1",
    ] {
        assert!(!looks_like_partition(d), "{d}");
    }
    for v in ["loop0", "loop0p1", "ram15", "zram0", "fd0"] {
        assert!(is_virtual(v), "{v}");
    }
    for d in ["sda", "loopy", "fd", "ramdisk"] {
        assert!(!is_virtual(d), "{d}");
    }
}

#[test]
fn whole_disks_by_default_with_exact_values() {
    let got = collect_fixture("basic", with(Config::default()));
    // nvme0n1 is not in the fixture's sysfs: the name decides, and it is a disk (its
    // partition nvme0n1p1 is left out the same way).
    assert_eq!(devices(&got), ["dm-0", "mmcblk0", "nvme0n1", "sda", "sr0"]);
    assert_eq!(got["diskio_reads{device=sda}"], 183_204.0);
    assert_eq!(got["diskio_writes{device=sda}"], 95_012.0);
    assert_eq!(got["diskio_read_bytes{device=sda}"], 23_865_722.0 * 512.0);
    assert_eq!(got["diskio_write_bytes{device=sda}"], 14_326_712.0 * 512.0);
    assert_eq!(got["diskio_io_time_ms{device=sda}"], 412_330.0);
    assert_eq!(
        got["diskio_read_bytes{device=mmcblk0}"],
        1_520_766.0 * 512.0
    );
    assert_eq!(got["diskio_io_time_ms{device=nvme0n1}"], 240_117.0);
    // Five devices, five counters each, no rates on the first reading.
    assert_eq!(got.samples.len(), 25);
}

#[test]
fn options_bring_in_partitions_and_virtual_devices_or_leave_disks_out() {
    let got = collect_fixture(
        "basic",
        with(Config {
            include_partitions: true,
            exclude_devices: s(&["sr0"]),
            exclude_patterns: s(&["^dm-"]),
            ..Config::default()
        }),
    );
    assert_eq!(
        devices(&got),
        [
            "mmcblk0",
            "mmcblk0p1",
            "mmcblk0p2",
            "nvme0n1",
            "nvme0n1p1",
            "sda",
            "sda1"
        ]
    );

    let got = collect_fixture(
        "basic",
        with(Config {
            include_devices: s(&["zram0", "mmcblk0p2"]),
            ..Config::default()
        }),
    );
    assert_eq!(
        devices(&got),
        [
            "dm-0",
            "mmcblk0",
            "mmcblk0p2",
            "nvme0n1",
            "sda",
            "sr0",
            "zram0"
        ]
    );
    assert_eq!(got["diskio_writes{device=zram0}"], 10_872.0);

    // Include patterns restrict to their matches and bring in virtual devices, but not
    // partitions.
    let got = collect_fixture(
        "basic",
        with(Config {
            include_patterns: s(&["^loop", "^mmcblk"]),
            ..Config::default()
        }),
    );
    assert_eq!(devices(&got), ["loop0", "loop1", "mmcblk0"]);

    let ctx = BuildCtx::with_roots("/nonexistent", "/nonexistent");
    let bad = Config {
        exclude_patterns: s(&["[sd"]),
        ..Config::default()
    };
    assert!(build(&bad, &ctx).is_err());
}

#[test]
fn kernel_4_18_format_and_sysfs_winning_over_the_name() {
    // A Xen guest whose xvda1 and xvda2 are whole disks: sysfs says so (no `partition`
    // file), whatever the names suggest. xvdb1 is a real partition.
    let got = collect_fixture("diskstats-4.18", with(Config::default()));
    assert_eq!(devices(&got), ["xvda1", "xvda2", "xvdb"]);
    assert_eq!(
        got["diskio_write_bytes{device=xvda1}"],
        71_833_880.0 * 512.0
    );
    assert_eq!(got["diskio_io_time_ms{device=xvda2}"], 44_100.0);
    assert_eq!(got["diskio_reads{device=xvdb}"], 30_211.0);
}

#[test]
fn old_kernel_format_without_sysfs() {
    let got = collect_fixture("diskstats-old-kernel", with(Config::default()));
    assert_eq!(devices(&got), ["hda", "sda"]);
    assert_eq!(got["diskio_read_bytes{device=hda}"], 9_550_688.0 * 512.0);
    assert_eq!(got["diskio_io_time_ms{device=hda}"], 3_376_340.0);
    assert_eq!(got["diskio_writes{device=sda}"], 2310.0);

    let got = collect_fixture(
        "diskstats-old-kernel",
        with(Config {
            include_partitions: true,
            ..Config::default()
        }),
    );
    assert_eq!(devices(&got), ["hda", "hda1", "hda2", "sda", "sda1"]);
    assert_eq!(got["diskio_reads{device=sda1}"], 4400.0);
    assert_eq!(got["diskio_read_bytes{device=sda1}"], 128_410.0 * 512.0);
    assert_eq!(got["diskio_writes{device=sda1}"], 7634.0);
    assert_eq!(got["diskio_write_bytes{device=sda1}"], 61_072.0 * 512.0);
    assert!(
        !got.has("diskio_io_time_ms{device=sda1}"),
        "short partition lines have no busy time"
    );
}

/// A procfs root in a tempdir with a copy of basic/proc/diskstats, and basic's sysfs.
fn harness_on_copy(cfg: &Config) -> (tempfile::TempDir, std::path::PathBuf, Harness) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("diskstats");
    std::fs::copy(fixture_dir("basic").join("proc/diskstats"), &file).unwrap();
    let ctx = BuildCtx::with_roots(dir.path(), fixture_dir("basic").join("sys"));
    let h = Harness::new(Box::new(build(cfg, &ctx).unwrap()));
    (dir, file, h)
}

#[test]
fn rates_from_the_second_reading_and_none_across_a_reset() {
    let (_dir, file, mut h) = harness_on_copy(&Config::default());
    h.collect(1_000_000);
    // 5 s later: sda read 1000 sectors in 50 reads and wrote 2000 in 100, busy 2500 ms;
    // mmcblk0's counters went back (a 32-bit kernel wrapped them).
    let later = std::fs::read_to_string(&file)
        .unwrap()
        .replace(
            " sda 183204 2210 23865722 201034 95012 66710 14326712 893221 0 412330 ",
            " sda 183254 2210 23866722 201034 95112 66710 14328712 893221 0 414830 ",
        )
        .replace(
            " mmcblk0 20518 8362 1520766 93640 8512 11032 455360 141210 0 118760 ",
            " mmcblk0 20 8362 766 93640 12 11032 360 141210 0 760 ",
        );
    std::fs::write(&file, later).unwrap();
    let got = h.collect(1_005_000);
    assert_eq!(got.error, None);
    assert_eq!(got["diskio_reads_rate{device=sda}"], 10.0);
    assert_eq!(got["diskio_writes_rate{device=sda}"], 20.0);
    assert_eq!(
        got["diskio_read_bytes_rate{device=sda}"],
        1000.0 * 512.0 / 5.0
    );
    assert_eq!(
        got["diskio_write_bytes_rate{device=sda}"],
        2000.0 * 512.0 / 5.0
    );
    assert_eq!(got["diskio_io_time_ms_rate{device=sda}"], 500.0);
    assert_eq!(got["diskio_reads_rate{device=nvme0n1}"], 0.0);
    assert_eq!(got["diskio_reads{device=mmcblk0}"], 20.0);
    assert!(got
        .keys_starting("diskio_")
        .iter()
        .all(|k| !(k.contains("_rate") && k.contains("mmcblk0"))));
    assert_eq!(
        got.samples.len(),
        25 + 20,
        "every counter of the other four devices has a rate"
    );
}

#[test]
fn garbage_or_truncated_files_are_errors_naming_the_file() {
    let (_dir, file, mut h) = harness_on_copy(&Config::default());
    crate::inputs::testutil::assert_bad_contents_rejected(
        &mut h,
        &file,
        &[
        "   8       0 sda 183204 2210 23865722 201034 95012 66710 14326712 893221 0 412330 1094255\n 179 0 mmcblk0 20518 8362 15",
        "   8       0 sda 183204 2210 23865722 201034 95012 66710 14326712 893221 0 412330 -1\n",
        "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n",
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
    assert_eq!(c.include_devices, d.include_devices);
    assert_eq!(c.exclude_devices, d.exclude_devices);
    assert_eq!(c.include_patterns, d.include_patterns);
    assert_eq!(c.exclude_patterns, d.exclude_patterns);
    assert_eq!(c.include_partitions, d.include_partitions);
}

use super::*;
use crate::inputs::testutil::{fixture_dir, Harness};
use std::path::Path;

/// A procfs root in a tempdir holding a copy of fixture `name`'s /proc/stat.
fn proc_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    put_stat(dir.path(), name);
    dir
}

fn put_stat(dir: &Path, fixture: &str) {
    std::fs::copy(fixture_dir(fixture).join("proc/stat"), dir.join("stat")).unwrap();
}

fn harness(dir: &Path, cfg: &Config) -> Harness {
    let ctx = BuildCtx::with_roots(dir, dir.join("nosys"));
    Harness::new(Box::new(build(cfg, &ctx).unwrap()))
}

#[test]
fn parses_a_modern_line_without_counting_guests_twice() {
    let (name, j, n) =
        parse_cpu_line("cpu0 349210 540 112130 6335010 10210 7 9830 850 300 20").unwrap();
    assert_eq!((name, n), ("cpu0", 10));
    assert_eq!(
        j,
        Jiffies {
            user: 349_210,
            nice: 540,
            system: 112_130,
            idle: 6_335_010,
            iowait: 10_210,
            irq: 7,
            softirq: 9830,
            steal: 850,
        }
    );
}

#[test]
fn old_kernels_with_fewer_columns_are_read() {
    let (_, j, _) = parse_cpu_line("cpu  10 20 30 40").unwrap();
    assert_eq!((j.user, j.idle, j.iowait, j.steal), (10, 40, 0, 0));
}

#[test]
fn garbage_lines_are_rejected() {
    assert!(parse_cpu_line("cpu0 1 2 x 4").is_err());
    assert!(parse_cpu_line("cpu0 1 2").is_err(), "truncated");
    assert!(parse_cpu_line("cpufreq 1 2 3 4").is_err());
    assert!(parse_stat("intr 1 2\nctxt 3\n", |_, _| {}).is_err());
    assert!(parse_stat("", |_, _| {}).is_err());
}

#[test]
fn shares_split_the_interval() {
    let before = Jiffies::default();
    let now = Jiffies {
        user: 60,
        nice: 10,
        system: 5,
        idle: 10,
        iowait: 5,
        irq: 3,
        softirq: 2,
        steal: 5,
    };
    let p = percents(&before, &now).unwrap();
    assert_eq!(
        p,
        Percents {
            usage: 85.0,
            user: 70.0,
            system: 10.0,
            iowait: 5.0,
            steal: 5.0,
            idle: 10.0,
        }
    );
    assert_eq!(percents(&now, &now), None, "no time passed");
    assert_eq!(percents(&now, &before), None, "counters went back");
}

/// basic/proc/stat then cpu-later/proc/stat: the total moved by 1000 jiffies (300 of
/// user and nice, of which 60 guest that must not count twice), cpu0 by 1000, cpu1 not at
/// all, cpu2's idle went back, cpu3 by 500.
#[test]
fn first_collection_reports_deltas_from_the_build_baseline() {
    let dir = proc_copy("basic");
    let mut h = harness(dir.path(), &Config::default());
    put_stat(dir.path(), "cpu-later");
    let got = h.collect(1_000);
    assert_eq!(got.error, None);

    let total = |m: &str| got[&format!("{m}{{cpu=total}}")];
    assert_eq!(total("cpu_usage_percent"), 46.0);
    assert_eq!(total("cpu_user_percent"), 30.0);
    assert_eq!(total("cpu_system_percent"), 14.0);
    assert_eq!(total("cpu_iowait_percent"), 4.0);
    assert_eq!(total("cpu_steal_percent"), 2.0);
    assert_eq!(total("cpu_idle_percent"), 50.0);

    assert_eq!(got["cpu_usage_percent{cpu=cpu0}"], 15.0);
    assert_eq!(got["cpu_user_percent{cpu=cpu0}"], 10.0);
    assert_eq!(got["cpu_system_percent{cpu=cpu0}"], 5.0);
    assert_eq!(got["cpu_iowait_percent{cpu=cpu0}"], 5.0);
    assert_eq!(got["cpu_steal_percent{cpu=cpu0}"], 0.0);
    assert_eq!(got["cpu_idle_percent{cpu=cpu0}"], 80.0);

    assert_eq!(got["cpu_usage_percent{cpu=cpu3}"], 80.0);
    assert_eq!(got["cpu_user_percent{cpu=cpu3}"], 50.0);
    assert_eq!(got["cpu_system_percent{cpu=cpu3}"], 25.0);
    assert_eq!(got["cpu_iowait_percent{cpu=cpu3}"], 0.0);
    assert_eq!(got["cpu_steal_percent{cpu=cpu3}"], 5.0);
    assert_eq!(got["cpu_idle_percent{cpu=cpu3}"], 20.0);

    assert!(
        got.keys_starting("cpu_")
            .iter()
            .all(|k| !k.contains("cpu1") && !k.contains("cpu2")),
        "no delta (cpu1) or a counter going back (cpu2) writes nothing: {:?}",
        got.samples.keys()
    );
    assert_eq!(got.samples.len(), 18);

    // The same file again: no time passed anywhere, so nothing is written.
    assert!(h.collect(2_000).samples.is_empty());
}

#[test]
fn options_select_total_or_cores() {
    let dir = proc_copy("basic");
    let only_total = Config {
        percpu: false,
        totalcpu: true,
    };
    let mut h = harness(dir.path(), &only_total);
    let mut h2 = harness(
        dir.path(),
        &Config {
            percpu: true,
            totalcpu: false,
        },
    );
    put_stat(dir.path(), "cpu-later");
    let got = h.collect(1_000);
    assert_eq!(got.samples.len(), 6);
    assert_eq!(got["cpu_usage_percent{cpu=total}"], 46.0);
    let got = h2.collect(1_000);
    assert_eq!(got.samples.len(), 12);
    assert!(!got.has("cpu_usage_percent{cpu=total}"));
    assert_eq!(got["cpu_idle_percent{cpu=cpu0}"], 80.0);

    let ctx = BuildCtx::with_roots(dir.path(), dir.path());
    let none = Config {
        percpu: false,
        totalcpu: false,
    };
    assert!(build(&none, &ctx).is_err());
}

#[test]
fn a_core_that_goes_offline_and_back_starts_a_new_baseline() {
    let dir = proc_copy("basic");
    let stat = dir.path().join("stat");
    let mut h = harness(dir.path(), &Config::default());
    std::fs::write(&stat, "cpu  100 0 100 800 0\ncpu0 50 0 50 400 0\nintr 1\n").unwrap();
    // Everything went back against the fixture baseline: nothing.
    assert!(h.collect(1_000).samples.is_empty());
    std::fs::write(
        &stat,
        "cpu  200 0 200 1600 0\ncpu0 100 0 100 800 0\ncpu1 70 0 10 20 0\nintr 1\n",
    )
    .unwrap();
    let got = h.collect(2_000);
    assert_eq!(got["cpu_usage_percent{cpu=total}"], 20.0);
    assert_eq!(got["cpu_usage_percent{cpu=cpu0}"], 20.0);
    assert!(!got.has("cpu_usage_percent{cpu=cpu1}"), "cpu1 is new");
    std::fs::write(
        &stat,
        "cpu  300 0 300 2400 0\ncpu0 150 0 150 1200 0\ncpu1 80 0 20 100 0\nintr 1\n",
    )
    .unwrap();
    let got = h.collect(3_000);
    assert_eq!(got["cpu_usage_percent{cpu=cpu1}"], 20.0);
    assert_eq!(got["cpu_idle_percent{cpu=cpu1}"], 80.0);
}

#[test]
fn garbage_or_truncated_files_are_errors_naming_the_file() {
    let dir = proc_copy("basic");
    let stat = dir.path().join("stat");
    let mut h = harness(dir.path(), &Config::default());
    crate::inputs::testutil::assert_bad_contents_rejected(
        &mut h,
        &stat,
        &[
            "cpu  1394910 2260 438950 25370790 41560 20 18140 3420 1250 10\ncpu0 349310 540 11",
            "cpu  1 2 3 4 5\ncpu0 1 2 three 4 5\n",
            "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\ncpu1 1 2 3 4 5 6 7 8 9",
            "cpu  1 2 3 4 5\ncpu  1 2 3 4 5\n",
            "",
        ],
    );
}

#[test]
fn a_missing_file_at_build_is_reported_by_the_first_collection() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(dir.path(), &Config::default());
    assert!(h.collect(1_000).error.is_some());
    put_stat(dir.path(), "basic");
    assert!(h.collect(2_000).samples.is_empty(), "the baseline");
    put_stat(dir.path(), "cpu-later");
    assert_eq!(h.collect(3_000)["cpu_idle_percent{cpu=total}"], 50.0);
}

fn sample_options() -> Config {
    crate::inputs::testutil::sample_options(SAMPLE)
}

#[test]
fn sample_is_valid_and_shows_the_defaults() {
    let (c, d) = (sample_options(), Config::default());
    assert_eq!((c.percpu, c.totalcpu), (d.percpu, d.totalcpu));
}

use super::*;
use std::path::PathBuf;
use crate::inputs::testutil::{collect_fixture, fixture_dir, Harness};
use std::path::Path;

fn input(ctx: &BuildCtx) -> Box<dyn Input> {
    Box::new(build(&Config::default(), ctx).unwrap())
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The basic fixture's proc tree, copied into a temp dir to be changed.
fn scratch() -> (tempfile::TempDir, PathBuf, BuildCtx) {
    let dir = tempfile::tempdir().unwrap();
    let proc = dir.path().join("proc");
    copy_tree(&fixture_dir("basic").join("proc"), &proc);
    let ctx = BuildCtx::with_roots(&proc, dir.path().join("sys"));
    (dir, proc, ctx)
}

#[test]
fn parses_the_stat_counters() {
    let s = parse_stat(
        "cpu  1 2 3\nintr 500 1 2 3\nctxt 900\nbtime 1700000000\nprocesses 77\nprocs_running 1\n",
    )
    .unwrap();
    assert_eq!(
        s,
        StatCounters {
            boot_time: 1_700_000_000,
            context_switches: 900,
            interrupts: 500,
            processes_forked: 77,
        }
    );
    assert_eq!(
        parse_stat("intr 500\nbtime 1\n").unwrap_err(),
        "missing ctxt, processes"
    );
    assert!(parse_stat("intr 500\nctxt x\nbtime 1\nprocesses 2\n").is_err());
}

#[test]
fn parses_pressure_files_old_and_new() {
    let p = parse_pressure(
        "some avg10=1.25 avg60=0.87 avg300=0.52 total=183420661\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    )
    .unwrap();
    assert_eq!(
        p.some,
        Psi {
            avg10: 1.25,
            avg60: 0.87,
            avg300: 0.52,
            total_us: 183_420_661
        }
    );
    assert_eq!(p.full.unwrap().total_us, 0);
    // /proc/pressure/cpu before Linux 5.13 has no `full` line.
    let p = parse_pressure("some avg10=0.10 avg60=0.20 avg300=0.30 total=42\n").unwrap();
    assert_eq!(p.full, None);
    assert_eq!(p.some.total_us, 42);
}

#[test]
fn garbage_pressure_is_rejected() {
    assert!(parse_pressure("").is_err());
    assert!(parse_pressure("full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").is_err());
    assert!(parse_pressure("some avg10=0.10 avg60=0.20 avg300=0.30\n").is_err());
    assert!(parse_pressure("some avg10=0.10 avg60=0.20 total=1 avg300=0.30\n").is_err());
    assert!(parse_pressure("some avg10=x avg60=0.20 avg300=0.30 total=1\n").is_err());
    assert!(parse_pressure("some avg10=nan avg60=0.20 avg300=0.30 total=1\n").is_err());
    assert!(parse_pressure("some avg10=0.1 avg60=0.20 avg300=0.30 total=-1\n").is_err());
}

#[test]
fn parses_file_nr_and_entropy() {
    assert_eq!(
        parse_file_nr("1344\t0\t9223372036854775807\n").unwrap(),
        FileNr {
            allocated: 1344,
            unused: 0,
            max: 9_223_372_036_854_775_807
        }
    );
    assert!(parse_file_nr("1344\t0\n").is_err());
    assert!(parse_file_nr("1344 0 10 4\n").is_err());
    assert_eq!(parse_number("256\n").unwrap(), 256);
    assert!(parse_number("").is_err());
    assert!(parse_number("25 6").is_err());
}

#[test]
fn reports_exact_values_from_the_fixture() {
    let got = collect_fixture("basic", input);
    // tests/fixtures/basic/proc/stat
    assert_eq!(got["kernel_boot_time"], 1_699_900_000.0);
    assert_eq!(got["kernel_context_switches"], 402_118_532.0);
    assert_eq!(got["kernel_interrupts"], 215_874_360.0);
    assert_eq!(got["kernel_processes_forked"], 1_286_552.0);
    // vmstat
    assert_eq!(got["kernel_disk_pages_in"], 48_213_966.0);
    assert_eq!(got["kernel_disk_pages_out"], 130_557_224.0);
    assert_eq!(got["kernel_entropy_avail"], 256.0);
    // pressure/{cpu,memory,io}
    assert_eq!(got["kernel_pressure_avg10{resource=cpu,type=some}"], 1.25);
    assert_eq!(got["kernel_pressure_avg60{resource=cpu,type=some}"], 0.87);
    assert_eq!(got["kernel_pressure_avg300{resource=cpu,type=some}"], 0.52);
    assert_eq!(
        got["kernel_pressure_total_us{resource=cpu,type=some}"],
        183_420_661.0
    );
    assert_eq!(got["kernel_pressure_avg10{resource=cpu,type=full}"], 0.0);
    assert_eq!(
        got["kernel_pressure_avg10{resource=memory,type=some}"],
        0.31
    );
    assert_eq!(
        got["kernel_pressure_avg300{resource=memory,type=full}"],
        0.01
    );
    assert_eq!(
        got["kernel_pressure_total_us{resource=memory,type=full}"],
        4_410_392.0
    );
    assert_eq!(got["kernel_pressure_avg10{resource=io,type=some}"], 4.02);
    assert_eq!(got["kernel_pressure_avg60{resource=io,type=full}"], 2.2);
    assert_eq!(
        got["kernel_pressure_total_us{resource=io,type=full}"],
        611_207_771.0
    );
    // sys/fs/file-nr: 1344 0 97812
    assert_eq!(got["kernel_fd_allocated"], 1344.0);
    assert_eq!(got["kernel_fd_used"], 1344.0);
    assert_eq!(got["kernel_fd_max"], 97_812.0);
    assert!((got["kernel_fd_used_percent"] - 1.374_064).abs() < 1e-6);
    // 7 from stat, vmstat and entropy + 4 fd + 6 PSI lines × 4; no rates from a single reading.
    assert_eq!(got.samples.len(), 7 + 4 + 6 * 4);
    assert!(got
        .keys_starting("kernel_")
        .iter()
        .all(|k| !k.contains("_rate")));
}

#[test]
fn a_kernel_without_psi_reports_the_rest_quietly() {
    let got = collect_fixture("router-minimal", input);
    assert!(got.keys_starting("kernel_pressure").is_empty());
    assert_eq!(got["kernel_boot_time"], 1_700_100_000.0);
    assert_eq!(got["kernel_fd_max"], 11_825.0);
}

#[test]
fn rates_from_the_second_reading_and_not_across_a_reset() {
    let (_dir, proc, ctx) = scratch();
    let stat = std::fs::read_to_string(proc.join("stat")).unwrap();
    let mut h = Harness::new(input(&ctx));
    h.collect(10_000);
    std::fs::write(
        proc.join("stat"),
        stat.replace("ctxt 402118532", "ctxt 402138532"),
    )
    .unwrap();
    std::fs::write(
        proc.join("pressure/io"),
        "some avg10=4.02 avg60=2.91 avg300=1.77 total=720613894\nfull avg10=3.10 avg60=2.20 avg300=1.30 total=611207771\n",
    )
    .unwrap();
    let got = h.collect(20_000);
    assert_eq!(got["kernel_context_switches_rate"], 2000.0);
    assert_eq!(got["kernel_interrupts_rate"], 0.0);
    assert_eq!(
        got["kernel_pressure_total_us_rate{resource=io,type=some}"],
        50_000.0
    );
    assert_eq!(
        got["kernel_pressure_total_us_rate{resource=io,type=full}"],
        0.0
    );
    // A reboot: every counter starts again from a small value.
    std::fs::write(
        proc.join("stat"),
        "cpu0 1 1 1 1\nintr 100 1\nctxt 500\nbtime 1700000000\nprocesses 10\n",
    )
    .unwrap();
    let got = h.collect(30_000);
    assert_eq!(got["kernel_context_switches"], 500.0);
    assert_eq!(got["kernel_boot_time"], 1_700_000_000.0);
    assert!(!got.has("kernel_context_switches_rate"));
    assert!(!got.has("kernel_processes_forked_rate"));
    std::fs::write(
        proc.join("stat"),
        "cpu0 1 1 1 1\nintr 200 1\nctxt 1500\nbtime 1700000000\nprocesses 20\n",
    )
    .unwrap();
    let got = h.collect(40_000);
    assert_eq!(got["kernel_context_switches_rate"], 100.0);
    assert_eq!(got["kernel_interrupts_rate"], 10.0);
    assert_eq!(got["kernel_processes_forked_rate"], 1.0);
}

#[test]
fn one_garbage_file_does_not_hide_the_others() {
    let (_dir, proc, ctx) = scratch();
    std::fs::write(proc.join("pressure/memory"), "some avg10=0.31 avg60=").unwrap();
    std::fs::write(proc.join("stat"), "cpu  1 2 3\nintr 12").unwrap();
    std::fs::remove_file(proc.join("sys/kernel/random/entropy_avail")).unwrap();
    let got = Harness::new(input(&ctx)).collect(1_000);
    let e = got.error.clone().expect("a partial failure");
    // The first failure is the one reported.
    assert!(
        e.0.contains(&proc.join("stat").display().to_string()),
        "{e}"
    );
    assert!(!got.has("kernel_boot_time"));
    assert!(!got.has("kernel_entropy_avail"));
    assert!(got
        .keys_starting("kernel_pressure_avg10{resource=memory")
        .is_empty());
    assert_eq!(got["kernel_pressure_avg10{resource=cpu,type=some}"], 1.25);
    assert_eq!(got["kernel_pressure_avg10{resource=io,type=some}"], 4.02);
    assert_eq!(got["kernel_disk_pages_in"], 48_213_966.0);
    assert_eq!(got["kernel_fd_used"], 1344.0);
}

#[test]
fn a_garbage_pressure_file_is_reported_by_name() {
    let (_dir, proc, ctx) = scratch();
    std::fs::write(proc.join("pressure/io"), "garbage\n").unwrap();
    let got = Harness::new(input(&ctx)).collect(1_000);
    let e = got.error.clone().expect("a partial failure");
    assert!(
        e.0.contains(&proc.join("pressure/io").display().to_string()),
        "{e}"
    );
    assert!(got
        .keys_starting("kernel_pressure_avg10{resource=io")
        .is_empty());
    assert!(got.has("kernel_pressure_avg10{resource=memory,type=full}"));
}

#[test]
fn the_sample_is_a_valid_config() {
    let text: String = SAMPLE.lines().map(|l| format!("  {l}\n")).collect();
    crate::config::parse(Path::new("sample.yaml"), &format!("inputs:\n{text}")).unwrap();
}

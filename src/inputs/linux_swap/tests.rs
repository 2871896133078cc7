use super::*;
use crate::inputs::testutil::{collect_fixture, fixture_dir, Harness};
use std::path::Path;

fn input(ctx: &BuildCtx) -> Box<dyn Input> {
    Box::new(build(&Config::default(), ctx).unwrap())
}

/// A proc root in a temp dir with the basic fixture's meminfo and the given vmstat.
fn scratch(vmstat: &str) -> (tempfile::TempDir, BuildCtx) {
    let dir = tempfile::tempdir().unwrap();
    let proc = dir.path().join("proc");
    std::fs::create_dir(&proc).unwrap();
    std::fs::copy(
        fixture_dir("basic").join("proc/meminfo"),
        proc.join("meminfo"),
    )
    .unwrap();
    std::fs::write(proc.join("vmstat"), vmstat).unwrap();
    let ctx = BuildCtx::with_roots(&proc, dir.path().join("sys"));
    (dir, ctx)
}

#[test]
fn parses_swap_space_and_traffic() {
    let s = parse_meminfo("MemTotal: 10 kB\nSwapTotal:  4 kB\nSwapFree:  1 kB\n").unwrap();
    assert_eq!(
        s,
        SwapSpace {
            total: 4096,
            free: 1024
        }
    );
    assert_eq!(
        parse_vmstat("pgpgin 5\npswpin 7\npswpout 9\n").unwrap(),
        (7, 9)
    );
}

#[test]
fn missing_or_garbage_fields_are_rejected() {
    assert!(parse_meminfo("SwapTotal: 4 kB\n").is_err());
    assert!(parse_meminfo("SwapTotal: 4 kB\nSwapFree: many kB\n").is_err());
    assert!(parse_vmstat("pswpin 7\n").is_err());
    assert!(parse_vmstat("pswpin 7\npswpout -1\n").is_err());
}

#[test]
fn reports_exact_values_from_the_fixture() {
    let got = collect_fixture("basic", input);
    // meminfo: SwapTotal 2097148 kB, SwapFree 1835004 kB; vmstat: pswpin 20411, pswpout 65535.
    let ps = page_size().unwrap() as f64;
    assert_eq!(got["swap_total"], 2_097_148.0 * 1024.0);
    assert_eq!(got["swap_free"], 1_835_004.0 * 1024.0);
    assert_eq!(got["swap_used"], 262_144.0 * 1024.0);
    assert!((got["swap_used_percent"] - 12.500_024).abs() < 1e-5);
    assert_eq!(got["swap_in"], 20_411.0 * ps);
    assert_eq!(got["swap_out"], 65_535.0 * ps);
    assert!(!got.has("swap_in_rate"), "no rate from a single reading");
    assert_eq!(got.samples.len(), 6);
}

#[test]
fn no_swap_is_zero_percent_not_an_error() {
    let got = collect_fixture("router-minimal", input);
    assert_eq!(got["swap_total"], 0.0);
    assert_eq!(got["swap_used"], 0.0);
    assert_eq!(got["swap_used_percent"], 0.0);
    assert_eq!(got["swap_in"], 0.0);
}

#[test]
fn rates_skip_a_counter_reset() {
    let (dir, ctx) = scratch("pswpin 100\npswpout 1000\n");
    let vmstat = dir.path().join("proc/vmstat");
    let ps = page_size().unwrap() as f64;
    let mut h = Harness::new(input(&ctx));
    h.collect(0);
    std::fs::write(&vmstat, "pswpin 150\npswpout 1000\n").unwrap();
    let got = h.collect(10_000);
    assert_eq!(got["swap_in_rate"], 5.0 * ps);
    assert_eq!(got["swap_out_rate"], 0.0);
    // A smaller value (a reboot under a restored agent state, or a wrap) gives no rate.
    std::fs::write(&vmstat, "pswpin 10\npswpout 1010\n").unwrap();
    let got = h.collect(20_000);
    assert_eq!(got["swap_in"], 10.0 * ps);
    assert!(!got.has("swap_in_rate"));
    assert_eq!(got["swap_out_rate"], 1.0 * ps);
    std::fs::write(&vmstat, "pswpin 30\npswpout 1010\n").unwrap();
    let got = h.collect(30_000);
    assert_eq!(got["swap_in_rate"], 2.0 * ps);
}

#[test]
fn a_truncated_vmstat_spoils_only_the_traffic() {
    let (dir, ctx) = scratch("pgpgin 1\npswpin 12\npswp");
    let got = Harness::new(input(&ctx)).collect(0);
    let e = got.error.clone().expect("partial failure");
    assert!(
        e.0.contains(&dir.path().join("proc/vmstat").display().to_string()),
        "{e}"
    );
    assert!(e.0.contains("pswpin or pswpout missing"), "{e}");
    assert!(!got.has("swap_in"));
    assert_eq!(got["swap_total"], 2_097_148.0 * 1024.0);
}

#[test]
fn a_missing_meminfo_spoils_only_the_space() {
    let (dir, ctx) = scratch("pswpin 1\npswpout 2\n");
    std::fs::remove_file(dir.path().join("proc/meminfo")).unwrap();
    let got = Harness::new(input(&ctx)).collect(0);
    assert!(got.error.clone().expect("error").0.contains("meminfo"));
    assert!(!got.has("swap_total"));
    assert!(got.has("swap_in"));
}

#[test]
fn the_sample_is_a_valid_config() {
    let text: String = SAMPLE.lines().map(|l| format!("  {l}\n")).collect();
    crate::config::parse(Path::new("sample.yaml"), &format!("inputs:\n{text}")).unwrap();
}

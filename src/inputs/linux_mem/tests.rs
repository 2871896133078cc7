use super::*;
use crate::inputs::testutil::collect_fixture;

#[test]
fn parses_a_modern_meminfo() {
    let m = parse_meminfo(
        "MemTotal:        1000 kB\nMemFree:          100 kB\nMemAvailable:     600 kB\nBuffers:           50 kB\nCached:           300 kB\nSReclaimable:      20 kB\nHugePages_Total:       0\n",
    )
    .unwrap();
    assert_eq!(
        m,
        MemInfo {
            total: 1_024_000,
            free: 102_400,
            available: Some(614_400),
            buffers: 51_200,
            cached: 307_200,
            sreclaimable: 20_480,
        }
    );
}

#[test]
fn garbage_values_are_rejected_whole() {
    assert!(parse_meminfo("MemTotal: lots kB\nMemFree: 1 kB\n").is_err());
    assert!(parse_meminfo("MemFree: 1 kB\n").is_err());
    assert!(parse_meminfo("").is_err());
}

#[test]
fn reports_exact_values_from_the_fixture() {
    let got = collect_fixture("basic", |ctx| {
        Box::new(build(&Config::default(), ctx).unwrap())
    });
    // MemTotal 8046600 kB, MemAvailable 5731380 kB, MemFree 1925624, Buffers 212344,
    // Cached 3452256, SReclaimable 243612 (see tests/fixtures/basic/proc/meminfo).
    let kib = |n: f64| n * 1024.0;
    assert_eq!(got["mem_total_bytes"], kib(8_046_600.0));
    assert_eq!(got["mem_available_bytes"], kib(5_731_380.0));
    assert_eq!(got["mem_used_bytes"], kib(8_046_600.0 - 5_731_380.0));
    assert_eq!(got["mem_free_bytes"], kib(1_925_624.0));
    assert_eq!(got["mem_buffers_bytes"], kib(212_344.0));
    assert_eq!(got["mem_cached_bytes"], kib(3_452_256.0 + 243_612.0));
    assert!((got["mem_used_percent"] - 28.7730).abs() < 1e-3);
    assert!((got["mem_available_percent"] - 71.2270).abs() < 1e-3);
}

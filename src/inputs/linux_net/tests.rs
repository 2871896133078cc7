use super::*;
use crate::inputs::testutil::{collect_fixture, fixture_dir, Harness};
use std::path::{Path, PathBuf};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// A procfs root in a tempdir with a copy of basic/proc/net/dev; returns the file's path.
fn proc_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("net")).unwrap();
    let dev = dir.path().join("net/dev");
    std::fs::copy(fixture_dir("basic").join("proc/net/dev"), &dev).unwrap();
    (dir, dev)
}

fn harness(dir: &Path, cfg: &Config) -> Harness {
    let ctx = BuildCtx::with_roots(dir, dir.join("nosys"));
    Harness::new(Box::new(build(cfg, &ctx).unwrap()))
}

const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

#[test]
fn parses_a_line_whose_counter_touches_the_colon() {
    let (name, c) = parse_dev_line(
        "  eth0:98765432101 81234567    3   17    0     0          0     12345 12345678901 23456789    1    2    0     0       0          0",
    )
    .unwrap();
    assert_eq!(name, "eth0");
    assert_eq!(
        c,
        NetCounters {
            rx_bytes: 98_765_432_101,
            rx_packets: 81_234_567,
            rx_errs: 3,
            rx_drop: 17,
            tx_bytes: 12_345_678_901,
            tx_packets: 23_456_789,
            tx_errs: 1,
            tx_drop: 2,
        }
    );
}

#[test]
fn garbage_lines_are_rejected() {
    assert!(parse_dev_line("eth0: 1 2 3").is_err(), "truncated");
    assert!(parse_dev_line("eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x").is_err());
    assert!(parse_dev_line("eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16").is_err());
    assert!(parse_dev_line(": 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16").is_err());
    assert!(parse_net_dev("", |_, _| {}).is_err(), "no header");
    assert!(
        parse_net_dev(HEADER, |_, _| {}).is_ok(),
        "no interfaces is fine"
    );
}

#[test]
fn reports_exact_counters_from_the_fixture() {
    let got = collect_fixture("basic", |ctx| {
        Box::new(build(&Config::default(), ctx).unwrap())
    });
    assert_eq!(got["net_rx_bytes{iface=eth0}"], 98_765_432_101.0);
    assert_eq!(got["net_rx_packets{iface=eth0}"], 81_234_567.0);
    assert_eq!(got["net_rx_errs{iface=eth0}"], 3.0);
    assert_eq!(got["net_rx_drop{iface=eth0}"], 17.0);
    assert_eq!(got["net_tx_bytes{iface=eth0}"], 12_345_678_901.0);
    assert_eq!(got["net_tx_packets{iface=eth0}"], 23_456_789.0);
    assert_eq!(got["net_tx_errs{iface=eth0}"], 1.0);
    assert_eq!(got["net_tx_drop{iface=eth0}"], 2.0);
    assert_eq!(got["net_rx_bytes{iface=eth0.100}"], 5_120_000.0);
    assert_eq!(got["net_rx_drop{iface=eth0.100}"], 4.0);
    assert_eq!(got["net_tx_packets{iface=eth0.100}"], 20_000.0);
    assert_eq!(got["net_rx_drop{iface=wlan0}"], 250.0);
    assert_eq!(got["net_tx_errs{iface=wlan0}"], 5.0);
    assert_eq!(got["net_tx_bytes{iface=veth1a2b3c4}"], 8192.0);
    // Six interfaces, eight counters each, no rates on the first reading.
    assert_eq!(got.samples.len(), 48);
    assert!(got
        .keys_starting("net_")
        .iter()
        .all(|k| !k.contains("rate")));
}

#[test]
fn rates_and_bits_from_the_second_reading_and_none_across_a_reset() {
    let (dir, dev) = proc_copy();
    let mut h = harness(dir.path(), &Config::default());
    h.collect(1_000_000);
    // 10 s later: eth0 received 10 MB and sent 2.5 MB, eth0.100 sent 1000 bytes;
    // wlan0's counters restarted (driver reloaded).
    let later = format!(
        "{HEADER}\
    lo:   84320     812    0    0    0     0          0         0    84320     812    0    0    0     0       0          0
  eth0:98775432101 81244567    3   18    0     0          0     12345 12348178901 23466789    1    2    0     0       0          0
eth0.100: 5120000   40000    0    4    0     0          0       120  2561000   20010    0    0    0     0       0          0
 wlan0:   10240      20    0    0    0     0          0         0     2048      10    0    0    0     0       0          0
docker0:       0       0    0    0    0     0          0         0     1234      15    0    0    0     0       0          0
veth1a2b3c4:    4096      32    0    0    0     0          0         0     8192      64    0    0    0     0       0          0
"
    );
    std::fs::write(&dev, later).unwrap();
    let got = h.collect(1_010_000);
    assert_eq!(got.error, None);
    assert_eq!(got["net_rx_bytes_rate{iface=eth0}"], 1_000_000.0);
    assert_eq!(got["net_rx_bytes_bits_rate{iface=eth0}"], 8_000_000.0);
    assert_eq!(got["net_tx_bytes_rate{iface=eth0}"], 250_000.0);
    assert_eq!(got["net_tx_bytes_bits_rate{iface=eth0}"], 2_000_000.0);
    assert_eq!(got["net_rx_packets_rate{iface=eth0}"], 1000.0);
    assert_eq!(got["net_tx_packets_rate{iface=eth0}"], 1000.0);
    assert_eq!(got["net_rx_drop_rate{iface=eth0}"], 0.1);
    assert_eq!(got["net_rx_errs_rate{iface=eth0}"], 0.0);
    assert_eq!(got["net_tx_bytes_rate{iface=eth0.100}"], 100.0);
    assert_eq!(got["net_tx_bytes_bits_rate{iface=eth0.100}"], 800.0);
    assert_eq!(got["net_rx_bytes_bits_rate{iface=eth0.100}"], 0.0);
    // wlan0 went back: its raw values are written, its rates are not.
    assert_eq!(got["net_rx_bytes{iface=wlan0}"], 10_240.0);
    assert!(!got.has("net_rx_bytes_rate{iface=wlan0}"));
    assert!(!got.has("net_rx_bytes_bits_rate{iface=wlan0}"));
    assert!(!got.has("net_tx_bytes_bits_rate{iface=wlan0}"));
    assert!(!got.has("net_rx_drop_rate{iface=wlan0}"));
    // Of wlan0's errors and drops, only rx_errs (0 → 0) did not go back.
    assert_eq!(got["net_rx_errs_rate{iface=wlan0}"], 0.0);
    assert!(!got.has("net_tx_errs_rate{iface=wlan0}"));

    // The next step counts from the restarted values.
    let later = std::fs::read_to_string(&dev)
        .unwrap()
        .replace(" wlan0:   10240      20", " wlan0:   30720      40");
    std::fs::write(&dev, later).unwrap();
    let got = h.collect(1_020_000);
    assert_eq!(got["net_rx_bytes_rate{iface=wlan0}"], 2048.0);
    assert_eq!(got["net_rx_bytes_bits_rate{iface=wlan0}"], 16_384.0);
    assert_eq!(got["net_rx_packets_rate{iface=wlan0}"], 2.0);
}

#[test]
fn filters_follow_the_include_and_exclude_options() {
    let cfg = Config {
        exclude_patterns: s(&["^veth", "^docker"]),
        exclude_interfaces: s(&["lo"]),
        include_interfaces: s(&["docker0"]),
        ..Config::default()
    };
    let got = collect_fixture("basic", |ctx| Box::new(build(&cfg, ctx).unwrap()));
    let ifaces: Vec<&str> = got
        .keys_starting("net_rx_bytes{")
        .iter()
        .map(|k| {
            k.trim_start_matches("net_rx_bytes{iface=")
                .trim_end_matches('}')
        })
        .collect();
    assert_eq!(ifaces, ["docker0", "eth0.100", "eth0", "wlan0"]);

    let cfg = Config {
        include_patterns: s(&[r"^eth\d+"]),
        exclude_interfaces: s(&["eth0"]),
        ..Config::default()
    };
    let got = collect_fixture("basic", |ctx| Box::new(build(&cfg, ctx).unwrap()));
    assert_eq!(
        got.keys_starting("net_rx_bytes{"),
        ["net_rx_bytes{iface=eth0.100}", "net_rx_bytes{iface=eth0}"],
        "an include pattern wins over an excluded name and restricts the rest"
    );

    let ctx = BuildCtx::with_roots("/nonexistent", "/nonexistent");
    let bad = Config {
        include_patterns: s(&["(eth"]),
        ..Config::default()
    };
    let e = build(&bad, &ctx).err().unwrap().to_string();
    assert!(e.starts_with("include_patterns"), "{e}");
}

#[test]
fn garbage_or_truncated_files_are_errors_naming_the_file() {
    let (dir, dev) = proc_copy();
    let mut h = harness(dir.path(), &Config::default());
    let bad: Vec<String> = vec![
        format!("{HEADER}  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n wlan0: 1 2 3 4 5"),
        format!("{HEADER}  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 -1\n"),
        format!("{HEADER}  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"),
        "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n".to_string(),
        String::new(),
    ];
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    crate::inputs::testutil::assert_bad_contents_rejected(&mut h, &dev, &bad);
}

fn sample_options() -> Config {
    crate::inputs::testutil::sample_options(SAMPLE)
}

#[test]
fn sample_is_valid_and_shows_the_defaults() {
    let (c, d) = (sample_options(), Config::default());
    assert_eq!(c.exclude_patterns, d.exclude_patterns);
    assert_eq!(c.include_patterns, d.include_patterns);
    assert_eq!(c.exclude_interfaces, d.exclude_interfaces);
    assert_eq!(c.include_interfaces, d.include_interfaces);
}

use super::*;
use crate::inputs::testutil::{collect_fixture, fixture_dir, Harness};
use std::path::{Path, PathBuf};

fn input(ctx: &BuildCtx) -> Box<dyn Input> {
    Box::new(build(&Config::default(), ctx).unwrap())
}

/// A proc root in a temp dir with the basic fixture's snmp and snmp6.
fn scratch() -> (tempfile::TempDir, PathBuf, BuildCtx) {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("proc/net");
    std::fs::create_dir_all(&net).unwrap();
    for f in ["snmp", "snmp6"] {
        std::fs::copy(fixture_dir("basic").join("proc/net").join(f), net.join(f)).unwrap();
    }
    let ctx = BuildCtx::with_roots(dir.path().join("proc"), dir.path().join("sys"));
    (dir, net, ctx)
}

#[test]
fn gauges_are_the_settings_and_current_levels() {
    assert!(is_gauge("Ip", "Forwarding"));
    assert!(is_gauge("Ip", "DefaultTTL"));
    for f in ["RtoAlgorithm", "RtoMin", "RtoMax", "MaxConn", "CurrEstab"] {
        assert!(is_gauge("Tcp", f), "{f}");
    }
    assert!(!is_gauge("Ip", "InDiscards"));
    assert!(!is_gauge("Udp", "CurrEstab"));
    assert_eq!(prefix("IcmpMsg"), None);
    assert_eq!(prefix("UdpLite"), None);
}

#[test]
fn snmp6_lines_are_checked_whole_and_only_ip6_is_taken() {
    let text = "Ip6InReceives \t5\nIcmp6InMsgs 3\nIp6OutDiscards 2\nUdp6InDatagrams 9\n";
    check_snmp6(text).unwrap();
    assert_eq!(
        ip6_fields(text).collect::<Vec<_>>(),
        [("InReceives", 5.0), ("OutDiscards", 2.0)]
    );
    assert!(check_snmp6("Ip6InReceives\n").is_err());
    assert!(check_snmp6("Ip6InReceives 5 6\n").is_err());
    assert!(check_snmp6("Ip6InReceives -5\n").is_err());
    assert!(check_snmp6("Ip6InReceives 5\nIp6InDiscards x\n").is_err());
}

#[test]
fn reports_every_field_from_the_fixture() {
    let got = collect_fixture("basic", input);
    // tests/fixtures/basic/proc/net/snmp and snmp6
    for (name, want) in [
        ("nstat_ip_Forwarding", 1.0),
        ("nstat_ip_DefaultTTL", 64.0),
        ("nstat_ip_InReceives", 18_234_567.0),
        ("nstat_ip_InDiscards", 41.0),
        ("nstat_ip_OutNoRoutes", 19.0),
        ("nstat_ip_OutTransmits", 17_201_112.0),
        ("nstat_icmp_InMsgs", 2231.0),
        ("nstat_icmp_InErrors", 17.0),
        ("nstat_icmp_OutRateLimitHost", 3.0),
        ("nstat_icmp_OutAddrMaskReps", 0.0),
        ("nstat_tcp_RtoMax", 120_000.0),
        ("nstat_tcp_MaxConn", -1.0),
        ("nstat_tcp_CurrEstab", 4.0),
        ("nstat_tcp_RetransSegs", 30_871.0),
        ("nstat_tcp_InCsumErrors", 2.0),
        ("nstat_udp_InDatagrams", 390_118.0),
        ("nstat_udp_NoPorts", 1204.0),
        ("nstat_udp_MemErrors", 0.0),
        ("nstat_ip6_InReceives", 2_202_931.0),
        ("nstat_ip6_InDiscards", 9.0),
        ("nstat_ip6_InOctets", 2_980_144_120.0),
        ("nstat_ip6_OutTransmits", 1_870_230.0),
    ] {
        assert_eq!(got[name], want, "{name}");
    }
    assert_eq!(got.keys_starting("nstat_ip_").len(), 20);
    assert_eq!(got.keys_starting("nstat_icmp_").len(), 29);
    assert_eq!(got.keys_starting("nstat_tcp_").len(), 15);
    assert_eq!(got.keys_starting("nstat_udp_").len(), 9);
    assert_eq!(got.keys_starting("nstat_ip6_").len(), 33);
    assert_eq!(
        got.samples.len(),
        20 + 29 + 15 + 9 + 33,
        "no IcmpMsg, UdpLite, Icmp6, Udp6"
    );
}

#[test]
fn counters_get_rates_gauges_do_not_and_resets_are_skipped() {
    let (_dir, net, ctx) = scratch();
    let snmp = std::fs::read_to_string(net.join("snmp")).unwrap();
    let snmp6 = std::fs::read_to_string(net.join("snmp6")).unwrap();
    let mut h = Harness::new(input(&ctx));
    let first = h.collect(0);
    std::fs::write(
        net.join("snmp"),
        snmp.replace(" 0 41 17354402 ", " 0 61 17354402 ").replace(
            "Tcp: 1 200 120000 -1 254301 98112 4021 2210 4 ",
            "Tcp: 1 200 120000 -1 254301 98112 4021 2210 9 ",
        ),
    )
    .unwrap();
    std::fs::write(
        net.join("snmp6"),
        snmp6.replace("\t2202931\n", "\t2202941\n"),
    )
    .unwrap();
    let got = h.collect(10_000);
    assert_eq!(got["nstat_ip_InDiscards_rate"], 2.0);
    assert_eq!(got["nstat_ip_InReceives_rate"], 0.0);
    assert_eq!(got["nstat_ip6_InReceives_rate"], 1.0);
    assert_eq!(got["nstat_tcp_CurrEstab"], 9.0);
    assert!(!got.has("nstat_tcp_CurrEstab_rate"));
    assert!(!got.has("nstat_ip_Forwarding_rate"));
    assert!(!got.has("nstat_tcp_MaxConn_rate"));
    // Every counter got its rate: 106 values, 7 of them gauges.
    assert_eq!(got.samples.len(), first.samples.len() + 106 - 7);
    // The counters restart (the network namespace was recreated): no rate this step.
    std::fs::write(
        net.join("snmp"),
        snmp.replace(" 0 41 17354402 ", " 0 1 17354402 "),
    )
    .unwrap();
    let got = h.collect(20_000);
    assert_eq!(got["nstat_ip_InDiscards"], 1.0);
    assert!(!got.has("nstat_ip_InDiscards_rate"));
    let got = h.collect(30_000);
    assert_eq!(got["nstat_ip_InDiscards_rate"], 0.0);
}

#[test]
fn a_changed_layout_renames_the_changed_positions() {
    let (_dir, net, ctx) = scratch();
    std::fs::write(
        net.join("snmp"),
        "Ip: Forwarding InReceives\nIp: 2 10\nUdp: InDatagrams\nUdp: 5\n",
    )
    .unwrap();
    let mut h = Harness::new(input(&ctx));
    let got = h.collect(0);
    assert_eq!(got["nstat_ip_Forwarding"], 2.0);
    assert_eq!(got["nstat_udp_InDatagrams"], 5.0);
    std::fs::write(
        net.join("snmp"),
        "Ip: Forwarding DefaultTTL InReceives\nIp: 2 64 20\nUdp: InDatagrams NoPorts\nUdp: 6 1\n",
    )
    .unwrap();
    let got = h.collect(1_000);
    assert_eq!(got["nstat_ip_DefaultTTL"], 64.0);
    assert_eq!(got["nstat_ip_InReceives"], 20.0);
    assert_eq!(got["nstat_ip_InReceives_rate"], 10.0);
    assert_eq!(got["nstat_udp_InDatagrams_rate"], 1.0);
    assert_eq!(got["nstat_udp_NoPorts"], 1.0);
    assert_eq!(got.keys_starting("nstat_ip_").len(), 4);
}

#[test]
fn without_ipv6_only_snmp_is_reported() {
    let got = collect_fixture("router-minimal", input);
    assert!(got.keys_starting("nstat_ip6_").is_empty());
    assert_eq!(got["nstat_ip_ForwDatagrams"], 88_120_344.0);
    assert_eq!(got.keys_starting("nstat_udp_").len(), 7);
}

#[test]
fn a_truncated_snmp_reports_nothing_of_it() {
    let (_dir, net, ctx) = scratch();
    let snmp = std::fs::read_to_string(net.join("snmp")).unwrap();
    let cut = snmp.find("Udp: 390118").unwrap() + 8;
    std::fs::write(net.join("snmp"), &snmp[..cut]).unwrap();
    let got = Harness::new(input(&ctx)).collect(0);
    let e = got.error.clone().expect("partial failure");
    assert!(e.0.contains(&net.join("snmp").display().to_string()), "{e}");
    assert!(e.0.contains("Udp: 9 names but 1 values"), "{e}");
    assert!(!got.has("nstat_ip_InReceives"), "nothing half-parsed");
    assert_eq!(got.keys_starting("nstat_ip6_").len(), 33);
}

#[test]
fn a_garbage_snmp6_is_reported_and_snmp_still_is() {
    let (_dir, net, ctx) = scratch();
    std::fs::write(net.join("snmp6"), "Ip6InReceives 12\nIp6InHdrErrors\n").unwrap();
    let got = Harness::new(input(&ctx)).collect(0);
    let e = got.error.clone().expect("partial failure");
    assert!(
        e.0.contains(&net.join("snmp6").display().to_string()),
        "{e}"
    );
    assert!(got.keys_starting("nstat_ip6_").is_empty());
    assert_eq!(got["nstat_ip_InDiscards"], 41.0);
}

#[test]
fn the_sample_is_a_valid_config() {
    let text: String = SAMPLE.lines().map(|l| format!("  {l}\n")).collect();
    crate::config::parse(Path::new("sample.yaml"), &format!("inputs:\n{text}")).unwrap();
}

use super::*;
use crate::inputs::testutil::{collect_fixture, fixture_dir, Harness};

fn input(ctx: &BuildCtx) -> Box<dyn Input> {
    Box::new(build(&Config::default(), ctx).unwrap())
}

const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

fn socket(sl: u32, st: &str) -> String {
    format!("{sl:4}: 0F02000A:B5E2 22D8BA8E:01BB {st} 00000000:00000000 00:00000000 00000000  1000        0 40123 1 0000000000000000 24 4 30 10 -1\n")
}

/// A proc root in a temp dir with the basic fixture's net/ files.
fn scratch() -> (tempfile::TempDir, PathBuf, BuildCtx) {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("proc/net");
    std::fs::create_dir_all(&net).unwrap();
    for f in ["tcp", "tcp6", "snmp", "netstat"] {
        std::fs::copy(fixture_dir("basic").join("proc/net").join(f), net.join(f)).unwrap();
    }
    let ctx = BuildCtx::with_roots(dir.path().join("proc"), dir.path().join("sys"));
    (dir, net, ctx)
}

fn count(text: &str, chunk: usize) -> Result<StateCounts, ScanError> {
    let mut counts = StateCounts::default();
    count_states(text.as_bytes(), &mut vec![0; chunk], &mut counts).map(|_| counts)
}

#[test]
fn reads_the_state_column_only() {
    assert_eq!(line_state(socket(0, "0A").as_bytes()), Ok(0x0A));
    assert_eq!(line_state(socket(0, "0b").as_bytes()), Ok(0x0B));
    assert!(line_state(b"   0: 0F02000A:B5E2 22D8BA8E:01BB").is_err());
    assert!(line_state(socket(0, "0G").as_bytes()).is_err());
    assert!(line_state(socket(0, "010").as_bytes()).is_err());
}

#[test]
fn counting_does_not_depend_on_where_reads_split_lines() {
    let mut text = HEADER.to_string();
    for (i, st) in ["01", "0A", "06", "01", "0B", "0C", "0A", "01"]
        .iter()
        .enumerate()
    {
        text += &socket(i as u32, st);
    }
    let whole = count(&text, 64 * 1024).unwrap();
    assert_eq!(whole[0x01], 3);
    assert_eq!(whole[0x0A], 2);
    assert_eq!(whole[0x06], 1);
    assert_eq!(whole[0x0B], 1);
    assert_eq!(whole.iter().sum::<u64>(), 7, "state 0x0C is not counted");
    for chunk in [160, 161, 200, 333, 4096] {
        assert_eq!(count(&text, chunk).unwrap(), whole, "chunk {chunk}");
    }
    // The last line may lack its newline.
    assert_eq!(count(text.trim_end(), 200).unwrap(), whole);
}

#[test]
fn garbage_socket_tables_are_rejected() {
    let err = |text: &str| match count(text, 4096) {
        Err(ScanError::Parse(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(err(""), "empty file");
    assert_eq!(err(&socket(0, "01")), "no `sl local_address …` header");
    assert_eq!(
        err(&format!("{HEADER}{}   1: 0F0", socket(0, "01"))),
        "fewer than 4 columns"
    );
    assert_eq!(
        err(&format!("{HEADER}{}", socket(0, "zz"))),
        "state is not hex"
    );
    assert!(matches!(
        count(&format!("{HEADER}{}", socket(0, "01")), 100),
        Err(ScanError::Parse("a line longer than the read buffer"))
    ));
    // A header alone is an empty table.
    assert_eq!(count(HEADER, 4096).unwrap(), StateCounts::default());
}

#[test]
fn reports_exact_values_from_the_fixture() {
    let got = collect_fixture("basic", input);
    // net/tcp + net/tcp6
    for (name, want) in [
        ("tcp_established", 3.0),
        ("tcp_syn_sent", 1.0),
        ("tcp_syn_recv", 0.0),
        ("tcp_fin_wait1", 1.0),
        ("tcp_fin_wait2", 0.0),
        ("tcp_time_wait", 3.0),
        ("tcp_close", 0.0),
        ("tcp_close_wait", 1.0),
        ("tcp_last_ack", 0.0),
        ("tcp_listen", 5.0),
        ("tcp_closing", 1.0),
        // net/snmp Tcp:
        ("tcp_active_opens", 254_301.0),
        ("tcp_passive_opens", 98_112.0),
        ("tcp_attempt_fails", 4021.0),
        ("tcp_estab_resets", 2210.0),
        ("tcp_curr_estab", 4.0),
        ("tcp_in_segs", 16_920_411.0),
        ("tcp_out_segs", 17_510_322.0),
        ("tcp_retrans_segs", 30_871.0),
        ("tcp_in_errs", 12.0),
        ("tcp_out_rsts", 44_190.0),
        // net/netstat TcpExt:
        ("tcp_syn_retrans", 5120.0),
        ("tcp_syncookies_sent", 17.0),
        ("tcp_syncookies_recv", 9.0),
        ("tcp_syncookies_failed", 4.0),
        ("tcp_embryonic_rsts", 23.0),
        ("tcp_listen_overflows", 310.0),
        ("tcp_listen_drops", 312.0),
    ] {
        assert_eq!(got[name], want, "{name}");
    }
    assert_eq!(got.samples.len(), 28);
}

#[test]
fn without_ipv6_and_on_an_old_kernel() {
    // router-minimal: no net/tcp6; TcpExt without TCPSynRetrans (before Linux 3.x).
    let got = collect_fixture("router-minimal", input);
    assert_eq!(got["tcp_listen"], 2.0);
    assert_eq!(got["tcp_established"], 1.0);
    assert_eq!(got["tcp_closing"], 0.0);
    assert_eq!(got["tcp_listen_drops"], 0.0);
    assert!(!got.has("tcp_syn_retrans"));
}

#[test]
fn counter_rates_and_a_reset() {
    let (_dir, net, ctx) = scratch();
    let snmp = std::fs::read_to_string(net.join("snmp")).unwrap();
    let netstat = std::fs::read_to_string(net.join("netstat")).unwrap();
    let mut h = Harness::new(input(&ctx));
    assert!(!h.collect(0).has("tcp_in_segs_rate"));
    std::fs::write(
        net.join("snmp"),
        snmp.replace(" 16920411 17510322 ", " 16921411 17510322 "),
    )
    .unwrap();
    let got = h.collect(5_000);
    assert_eq!(got["tcp_in_segs_rate"], 200.0);
    assert_eq!(got["tcp_out_segs_rate"], 0.0);
    assert_eq!(got["tcp_syn_retrans_rate"], 0.0);
    assert!(!got.has("tcp_curr_estab_rate"), "CurrEstab is a gauge");
    assert!(!got.has("tcp_listen_drops_rate"));
    // After a reboot of a network namespace the counters start again: no rate that step.
    std::fs::write(net.join("snmp"), snmp.replace(" 16920411 ", " 100 ")).unwrap();
    std::fs::write(net.join("netstat"), netstat.replace(" 5120 ", " 3 ")).unwrap();
    let got = h.collect(10_000);
    assert_eq!(got["tcp_in_segs"], 100.0);
    assert!(!got.has("tcp_in_segs_rate"));
    assert!(!got.has("tcp_syn_retrans_rate"));
    std::fs::write(net.join("netstat"), netstat.replace(" 5120 ", " 13 ")).unwrap();
    let got = h.collect(20_000);
    assert_eq!(got["tcp_syn_retrans_rate"], 1.0);
}

#[test]
fn a_garbage_file_spoils_only_its_own_metrics() {
    let (_dir, net, ctx) = scratch();
    let tcp6 = std::fs::read_to_string(net.join("tcp6")).unwrap();
    std::fs::write(net.join("tcp6"), format!("{tcp6}  12: 0000")).unwrap();
    let snmp = std::fs::read_to_string(net.join("snmp")).unwrap();
    let cut = snmp.find("Tcp: 1 200").unwrap() + 20;
    std::fs::write(net.join("snmp"), &snmp[..cut]).unwrap();
    let got = Harness::new(input(&ctx)).collect(0);
    let e = got.error.clone().expect("partial failure");
    assert!(e.0.contains(&net.join("tcp6").display().to_string()), "{e}");
    assert!(!got.has("tcp_listen"), "no half-counted states");
    assert!(!got.has("tcp_in_segs"));
    assert_eq!(got["tcp_listen_drops"], 312.0);
    assert_eq!(got.samples.len(), 7);
}

#[test]
fn a_missing_ipv4_table_is_an_error() {
    let (_dir, net, ctx) = scratch();
    std::fs::remove_file(net.join("tcp")).unwrap();
    let got = Harness::new(input(&ctx)).collect(0);
    assert!(got.error.clone().expect("error").0.contains("net/tcp"));
    assert!(!got.has("tcp_established"));
    assert!(got.has("tcp_in_segs"));
}

#[test]
fn the_sample_is_a_valid_config() {
    let text: String = SAMPLE.lines().map(|l| format!("  {l}\n")).collect();
    crate::config::parse(Path::new("sample.yaml"), &format!("inputs:\n{text}")).unwrap();
}

/// One netlink message: header (length, type, flags 0, seq, pid 0) and payload, padded to 4.
fn nlmsg(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(payload);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

/// An `inet_diag_msg` of a socket in `state`.
fn diag_msg(state: u8) -> Vec<u8> {
    let mut p = vec![0; 72];
    p[0] = AF_INET;
    p[1] = state;
    p
}

#[test]
fn the_netlink_request_is_a_tcp_dump_of_all_states() {
    let req = diag_request(AF_INET6, 7);
    assert_eq!(req.len(), 72);
    assert_eq!(u32::from_ne_bytes(req[0..4].try_into().unwrap()), 72);
    assert_eq!(u16::from_ne_bytes(req[4..6].try_into().unwrap()), 20);
    assert_eq!(u16::from_ne_bytes(req[6..8].try_into().unwrap()), 0x301);
    assert_eq!(u32::from_ne_bytes(req[8..12].try_into().unwrap()), 7);
    assert_eq!(&req[16..20], &[AF_INET6, 6, 0, 0]);
    assert_eq!(u32::from_ne_bytes(req[20..24].try_into().unwrap()) & 0xfff, 0xfff);
    assert!(req[24..].iter().all(|&b| b == 0));
}

#[test]
fn the_compat_request_dumps_every_family() {
    let req = diag_request_compat(9);
    assert_eq!(req.len(), 76);
    assert_eq!(u32::from_ne_bytes(req[0..4].try_into().unwrap()), 76);
    assert_eq!(u16::from_ne_bytes(req[4..6].try_into().unwrap()), 18);
    assert_eq!(u16::from_ne_bytes(req[6..8].try_into().unwrap()), 0x301);
    assert_eq!(u32::from_ne_bytes(req[8..12].try_into().unwrap()), 9);
    assert!(req[20..68].iter().all(|&b| b == 0), "no socket filter");
    assert_eq!(u32::from_ne_bytes(req[68..72].try_into().unwrap()) & 0xfff, 0xfff);
    assert_eq!(&req[72..], &[0; 4]);
    // Its replies are of type 18.
    let mut counts = StateCounts::default();
    let mut data = nlmsg(18, 9, &diag_msg(0x0A));
    data.extend(nlmsg(3, 9, &0i32.to_ne_bytes()));
    assert_eq!(parse_diag(&data, 9, &mut counts), Ok(Dump::Done));
    assert_eq!(counts[0x0A], 1);
}

#[test]
fn netlink_replies_two_sockets_then_done() {
    let mut data = nlmsg(20, 5, &diag_msg(0x0A));
    data.extend(nlmsg(20, 5, &diag_msg(0x01)));
    // An inet_diag_msg with attributes after it, of a length that is not a multiple of 4.
    let mut long = diag_msg(0x01);
    long.extend_from_slice(&[1, 2, 3, 4, 5]);
    data.extend(nlmsg(20, 5, &long));
    let mut counts = StateCounts::default();
    assert_eq!(parse_diag(&data, 5, &mut counts), Ok(Dump::More));
    assert_eq!(counts[0x0A], 1);
    assert_eq!(counts[0x01], 2);
    // The next datagram: a leftover of an earlier dump (skipped), a state out of range
    // (not counted), and the end.
    let mut data = nlmsg(20, 4, &diag_msg(0x06));
    data.extend(nlmsg(3, 4, &0i32.to_ne_bytes()));
    data.extend(nlmsg(20, 5, &diag_msg(0x0C)));
    data.extend(nlmsg(3, 5, &0i32.to_ne_bytes()));
    assert_eq!(parse_diag(&data, 5, &mut counts), Ok(Dump::Done));
    assert_eq!(counts.iter().sum::<u64>(), 3);
    assert_eq!(counts[0x06], 0);
}

#[test]
fn truncated_netlink_replies_are_errors() {
    let mut data = nlmsg(20, 1, &diag_msg(0x01));
    data.extend(nlmsg(3, 1, &0i32.to_ne_bytes()));
    let whole = data.len();
    for cut in 1..whole {
        let mut counts = StateCounts::default();
        let got = parse_diag(&data[..cut], 1, &mut counts);
        if cut == 88 {
            // Exactly the first message: a datagram boundary.
            assert_eq!(got, Ok(Dump::More));
        } else {
            assert!(matches!(got, Err(DiagError::Parse(_))), "cut {cut}: {got:?}");
        }
    }
    // A header whose length is shorter than a header, or beyond the data.
    let mut counts = StateCounts::default();
    let mut bad = nlmsg(20, 1, &diag_msg(0x01));
    bad[0..4].copy_from_slice(&8u32.to_ne_bytes());
    assert!(parse_diag(&bad, 1, &mut counts).is_err());
    bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
    assert!(parse_diag(&bad, 1, &mut counts).is_err());
    // A socket message too short for an inet_diag_msg.
    let short = nlmsg(20, 1, &[0, 1, 0, 0]);
    assert_eq!(
        parse_diag(&short, 1, &mut counts),
        Err(DiagError::Parse("truncated inet_diag_msg"))
    );
    assert_eq!(parse_diag(&[], 1, &mut counts), Ok(Dump::More));
}

#[test]
fn netlink_errors_are_reported() {
    // NLMSG_ERROR: -errno then the request's header.
    let mut payload = (-2i32).to_ne_bytes().to_vec();
    payload.extend_from_slice(&diag_request(AF_INET, 3)[..16]);
    let mut counts = StateCounts::default();
    assert_eq!(
        parse_diag(&nlmsg(2, 3, &payload), 3, &mut counts),
        Err(DiagError::Kernel(2))
    );
    assert_eq!(
        parse_diag(&nlmsg(2, 3, &[0, 0]), 3, &mut counts),
        Err(DiagError::Parse("truncated NLMSG_ERROR"))
    );
    // A dump that failed part way ends with a negative NLMSG_DONE.
    assert_eq!(
        parse_diag(&nlmsg(3, 3, &(-4i32).to_ne_bytes()), 3, &mut counts),
        Err(DiagError::Kernel(4))
    );
}

#[test]
fn netlink_is_used_only_under_the_real_proc() {
    let (_dir, _net, ctx) = scratch();
    assert!(!build(&Config::default(), &ctx).unwrap().uses_netlink());
    let real = BuildCtx::with_roots("/proc", "/sys");
    let off = Config { use_netlink: false };
    assert!(!build(&off, &real).unwrap().uses_netlink());
}

#[test]
fn netlink_and_proc_count_the_same_listening_sockets() {
    let ctx = BuildCtx::with_roots("/proc", "/sys");
    let mut ns = build(&Config::default(), &ctx).unwrap();
    if !ns.uses_netlink() {
        eprintln!("netlink sock_diag is not available here; skipped");
        return;
    }
    let _v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // Absent when IPv6 is off.
    let v6 = std::net::TcpListener::bind("[::1]:0").ok();
    let ours = 1 + u64::from(v6.is_some());
    let mut per_family = Diag::open().unwrap();
    per_family.compat = false;
    // Other processes may open or close listeners between the reads: retry a few times.
    let mut last = None;
    for _ in 0..20 {
        let compat = ns.diag.as_mut().unwrap().count().unwrap();
        let proc = ns.proc_states().unwrap();
        let v2 = per_family.count().unwrap();
        assert!(compat[0x0A] >= ours, "our listeners are counted");
        if compat[0x0A] == proc[0x0A] && v2[0x0A] == proc[0x0A] {
            return;
        }
        last = Some((compat[0x0A], proc[0x0A], v2[0x0A]));
    }
    panic!("netlink and /proc disagree on LISTEN: {last:?}");
}

#[test]
fn a_dump_abandoned_part_way_does_not_spoil_the_next() {
    let Ok(mut diag) = Diag::open() else {
        eprintln!("netlink sock_diag is not available here; skipped");
        return;
    };
    // Enough sockets for a dump of several datagrams.
    let _listeners: Vec<_> = (0..100)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    // A receive buffer too small for the first reply: the dump is abandoned part way.
    diag.buf.truncate(16);
    assert_eq!(
        diag.count(),
        Err(DiagError::Parse("a reply larger than the receive buffer"))
    );
    diag.buf.resize(NETLINK_BUF, 0);
    assert!(diag.count().unwrap()[0x0A] >= 100);
    assert!(diag.compat, "no EBUSY taken for a kernel without TCPDIAG_GETSOCK");
    assert!(diag.count().unwrap()[0x0A] >= 100);
}

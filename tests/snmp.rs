//! The `snmp` input against Debian's net-snmp `snmpd`, started privately per test
//! (tests/support/snmpd.rs), with `snmpget`/`snmpwalk` from the same package as the oracle in
//! the same run. Values that change on purpose (counters about to wrap, a 50-interface
//! table) come from tests/fixtures/snmp/pass_persist.py.
//!
//! ```sh
//! export RTC_SNMP_BIN_DIR="$(scripts/setup-snmp)"
//! cargo test --test snmp
//! ```
//!
//! Nothing is skipped: without snmpd, or when it does not start, the tests fail.

#![cfg(feature = "snmp")]

mod support;

use rtcollector::inputs::snmp::{build, Config, Snmp};
use rtcollector::inputs::BuildCtx;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use support::agent::Agent;
use support::collect::{get, Collector};
use support::samples::key_of;
use support::scratch::Scratch;
use support::snmpd::{self, Served, Snmpd};

/// The input built from `yaml`, collected on demand.
struct Run {
    input: Snmp,
    c: Collector,
}

impl Run {
    fn new(yaml: &str) -> Run {
        let cfg: Config = yaml_serde::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let input = build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).expect("build");
        Run {
            input,
            c: Collector::default(),
        }
    }

    /// One collection at `ts_ms`: samples by `name{label=value,…}` (no host), or the error.
    fn collect(&mut self, ts_ms: i64) -> Result<BTreeMap<String, f64>, String> {
        self.c.collect(&mut self.input, ts_ms)
    }

    /// One collection: what it wrote, and the error (a partial failure writes the rest).
    fn collect_partly(&mut self, ts_ms: i64) -> (BTreeMap<String, f64>, Option<String>) {
        self.c.collect_partly(&mut self.input, ts_ms)
    }

    fn ok(&mut self, ts_ms: i64, d: &Snmpd) -> BTreeMap<String, f64> {
        self.collect(ts_ms)
            .unwrap_or_else(|e| panic!("collection failed: {e}\n{}", d.logs()))
    }
}

fn v2c(d: &Snmpd, rest: &str) -> String {
    format!(
        "{{host: 127.0.0.1, port: {}, snmpVersion: 2c, communityString: {}, timeout: 5s, {rest}}}",
        d.port,
        snmpd::COMMUNITY
    )
}

fn v3(d: &Snmpd, auth: &str, privacy: &str, rest: &str) -> String {
    format!(
        "{{host: 127.0.0.1, port: {}, snmpVersion: 3, username: {}, authPassPhrase: {auth}, authProtocol: SHA, \
         privacyPassPhrase: {privacy}, privacyProtocol: AES, timeout: 5s, {rest}}}",
        d.port,
        snmpd::V3_USER
    )
}

fn agent_label(d: &Snmpd) -> String {
    format!("agent=127.0.0.1:{}", d.port)
}

/// sysUpTime ticks while we look: the agent's value lies between two oracle reads around it.
fn assert_uptime_between_oracle_reads(d: &Snmpd, run: &mut Run) {
    let before = d.get_number("1.3.6.1.2.1.1.3.0");
    let got = run.ok(1_000, d);
    let after = d.get_number("1.3.6.1.2.1.1.3.0");
    let v = get(&got, &format!("up{{{}}}", agent_label(d)));
    assert!(
        before <= v && v <= after,
        "sysUpTime {v} not within the oracle's {before}..{after}"
    );
}

#[test]
fn sys_uptime_over_v2c_v1_and_v3_sha_aes_matches_snmpget() {
    let d = Snmpd::start(&Served::default());
    let metrics = "metrics: [{name: up, oid: sysUpTime.0}]";
    assert_uptime_between_oracle_reads(&d, &mut Run::new(&v2c(&d, metrics)));
    assert_uptime_between_oracle_reads(&d, &mut Run::new(&v2c(&d, metrics).replace("2c", "1")));
    let mut run = Run::new(&v3(&d, snmpd::AUTH_PASS, snmpd::PRIV_PASS, metrics));
    assert_uptime_between_oracle_reads(&d, &mut run);
    // The session keeps the engine and its clock: a second collection needs no discovery.
    assert_uptime_between_oracle_reads(&d, &mut run);
}

#[test]
fn every_v3_auth_and_privacy_protocol_pair_reads_sys_uptime() {
    let d = Snmpd::start(&Served::default());
    for (user, auth, privacy) in snmpd::V3_USERS {
        let mut yaml = format!(
            "{{host: 127.0.0.1, port: {}, snmpVersion: 3, username: {user}, timeout: 5s, metrics: [{{name: up, oid: sysUpTime.0}}]",
            d.port
        );
        if !auth.is_empty() {
            yaml += &format!(
                ", authProtocol: {auth}, authPassPhrase: {}",
                snmpd::AUTH_PASS
            );
        }
        if !privacy.is_empty() {
            yaml += &format!(
                ", privacyProtocol: {privacy}, privacyPassPhrase: {}",
                snmpd::PRIV_PASS
            );
        }
        yaml += "}";
        let mut run = Run::new(&yaml);
        let before = d.get_number("1.3.6.1.2.1.1.3.0");
        let got = run
            .collect(1_000)
            .unwrap_or_else(|e| panic!("{user}: {e}\n{}", d.logs()));
        let after = d.get_number("1.3.6.1.2.1.1.3.0");
        let v = get(&got, &format!("up{{{}}}", agent_label(&d)));
        assert!(
            before <= v && v <= after,
            "{user}: sysUpTime {v} not within {before}..{after}"
        );
    }
}

/// The interface preset against `snmpwalk` of the same columns: the stable ones exactly, the
/// octet counters (loopback moves while we look) between two oracle walks.
fn assert_interfaces_match_snmpwalk(d: &Snmpd, yaml: &str, in_octets_col: &str, v1: bool) {
    let walk = |col: &str| -> BTreeMap<String, String> {
        d.oracle("snmpwalk", col)
            .into_iter()
            .map(|(oid, v)| (oid[col.len() + 1..].to_string(), v))
            .collect()
    };
    let descr = walk("1.3.6.1.2.1.2.2.1.2");
    let names = if v1 {
        descr.clone()
    } else {
        walk("1.3.6.1.2.1.31.1.1.1.1")
    };
    let oper = walk("1.3.6.1.2.1.2.2.1.8");
    let admin = walk("1.3.6.1.2.1.2.2.1.7");
    let in_before = walk(in_octets_col);
    let mut run = Run::new(yaml);
    let got = run.ok(1_000, d);
    let in_after = walk(in_octets_col);
    assert!(!descr.is_empty(), "the oracle walked no interfaces");
    for (index, descr) in &descr {
        let name = names.get(index).filter(|n| !n.is_empty()).unwrap_or(descr);
        let labels = format!(
            "{},descr={descr},index={index},interface={name}",
            agent_label(d)
        );
        let num = |m: &BTreeMap<String, String>| m[index].parse::<f64>().unwrap();
        assert_eq!(
            get(&got, &format!("snmp_if_oper_status{{{labels}}}")),
            num(&oper),
            "{index}"
        );
        assert_eq!(
            get(&got, &format!("snmp_if_admin_status{{{labels}}}")),
            num(&admin),
            "{index}"
        );
        let octets = get(&got, &format!("snmp_if_in_octets{{{labels}}}"));
        assert!(
            num(&in_before) <= octets && octets <= num(&in_after),
            "{name}: in octets {octets} not within the oracle's {}..{}",
            num(&in_before),
            num(&in_after)
        );
    }
    let rows = got
        .keys()
        .filter(|k| k.starts_with("snmp_if_oper_status{"))
        .count();
    assert_eq!(rows, descr.len(), "one row per interface the oracle walked");
}

#[test]
fn interface_walk_on_this_machine_matches_snmpwalk_over_v2c_and_v1() {
    let d = Snmpd::start(&Served::default());
    assert_interfaces_match_snmpwalk(
        &d,
        &v2c(&d, "interfaces: true"),
        "1.3.6.1.2.1.31.1.1.1.6",
        false,
    );
    // v1: GETNEXT walks and the 32-bit counters (v1 has no Counter64).
    let v1 = v2c(&d, "interfaces: true").replace("2c", "1");
    assert_interfaces_match_snmpwalk(&d, &v1, "1.3.6.1.2.1.2.2.1.10", true);
}

#[test]
fn fifty_interfaces_walk_in_bulk_with_exact_values_and_rates_over_v3() {
    let d = Snmpd::start(&Served {
        interfaces: Some(50),
        ..Served::default()
    });
    let names = d.oracle("snmpwalk", "1.3.6.1.2.1.31.1.1.1.1");
    assert_eq!(names.len(), 50, "{}", d.logs());
    let hc_in = d.oracle("snmpwalk", "1.3.6.1.2.1.31.1.1.1.6");
    let mut run = Run::new(&v3(
        &d,
        snmpd::AUTH_PASS,
        snmpd::PRIV_PASS,
        "interfaces: true, max_repetitions: 20",
    ));
    let first = run.ok(10_000, &d);
    let second = run.ok(12_000, &d);
    for ((oid, name), (_, octets)) in names.iter().zip(&hc_in) {
        let i = oid.rsplit('.').next().unwrap();
        let labels = format!(
            "{},descr=port{i},index={i},interface={name}",
            agent_label(&d)
        );
        assert_eq!(
            get(&first, &format!("snmp_if_in_octets{{{labels}}}")),
            octets.parse::<f64>().unwrap()
        );
        assert_eq!(get(&first, &format!("snmp_if_speed_bps{{{labels}}}")), 1e9);
        // The table stands still: the rate is 0 from the second collection on.
        assert!(!first.contains_key(&format!("snmp_if_in_octets_rate{{{labels}}}")));
        assert_eq!(
            get(&second, &format!("snmp_if_in_octets_rate{{{labels}}}")),
            0.0
        );
    }
    assert_eq!(
        first
            .keys()
            .filter(|k| k.starts_with("snmp_if_oper_status{"))
            .count(),
        50
    );
}

#[test]
fn counter_rates_cross_32_and_64_bit_wraps() {
    const STEP: u64 = 1000;
    let served = Served {
        c32: ((1 << 32) - 1500, STEP),
        c64: (u64::MAX - 1499, STEP),
        interfaces: None,
    };
    let d = Snmpd::start(&served);
    // The oracle's read moves each counter once; every collection then moves it once more.
    let c32 = d.get_number(snmpd::COUNTER32);
    let c64 = d.get_number(snmpd::COUNTER64);
    assert_eq!(
        (c32, c64),
        ((1u64 << 32) as f64 - 1500.0, u64::MAX as f64 - 1499.0)
    );
    let metrics = format!(
        "metrics: [{{name: c32, oid: {}, mode: counter}}, {{name: c64, oid: {}, mode: rate}}]",
        snmpd::COUNTER32,
        snmpd::COUNTER64
    );
    let mut run = Run::new(&v2c(&d, &metrics));
    let a = agent_label(&d);
    let first = run.ok(10_000, &d);
    assert_eq!(
        get(&first, &format!("c32{{{a}}}")),
        ((1u64 << 32) - 500) as f64
    );
    assert!(
        !first.contains_key(&format!("c64{{{a}}}")),
        "mode rate: nothing before a second reading"
    );
    let second = run.ok(12_000, &d);
    assert_eq!(get(&second, &format!("c32{{{a}}}")), 500.0, "wrapped");
    assert_eq!(get(&second, &format!("c32_rate{{{a}}}")), STEP as f64 / 2.0);
    assert_eq!(get(&second, &format!("c64{{{a}}}")), STEP as f64 / 2.0);
    let third = run.ok(13_000, &d);
    assert_eq!(get(&third, &format!("c32_rate{{{a}}}")), STEP as f64);
    assert_eq!(get(&third, &format!("c64{{{a}}}")), STEP as f64);
}

#[test]
fn a_range_reads_every_oid_and_a_missing_one_is_named() {
    let d = Snmpd::start(&Served::default());
    let oper = d.oracle("snmpwalk", "1.3.6.1.2.1.2.2.1.8");
    let last: u32 = oper
        .last()
        .unwrap()
        .0
        .rsplit('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let yaml = v2c(
        &d,
        &format!("metrics: [{{name: st, oid: \"ifOperStatus.${{n}}\", range: {{from: 1, to: {}, label: n}}}}]", last + 1),
    );
    // One past the table: named in the error; the others written all the same, in v2c
    // (noSuchInstance for that one) and in v1 (noSuchName for the whole request, asked again
    // without it).
    for yaml in [yaml.clone(), yaml.replace("2c", "1")] {
        let (got, err) = Run::new(&yaml).collect_partly(1_000);
        let err = err.expect("the missing OID is an error");
        assert!(
            err.contains(&format!("no value at 1.3.6.1.2.1.2.2.1.8.{}", last + 1)),
            "{err}"
        );
        for (oid, v) in &oper {
            let n = oid.rsplit('.').next().unwrap();
            assert_eq!(
                get(&got, &format!("st{{{},n={n}}}", agent_label(&d))),
                v.parse::<f64>().unwrap(),
                "{yaml}"
            );
        }
        assert_eq!(got.len(), oper.len(), "{yaml}");
    }
    // Within the table: no error.
    let yaml = yaml.replace(&format!("to: {}", last + 1), &format!("to: {last}"));
    assert_eq!(Run::new(&yaml).ok(2_000, &d).len(), oper.len());
}

/// The running agent with a wrong community, a wrong v3 auth pass phrase and a wrong v3
/// privacy pass phrase: each input logs one clear warning for its failing streak, however
/// many collections fail, and the other inputs run on.
#[test]
fn wrong_credentials_are_logged_once_per_input() {
    let d = Snmpd::start(&Served::default());
    let s = Scratch::new();
    let port = d.port;
    // Agents do not answer a wrong community or what they cannot decrypt: those wait for a
    // short timeout. The others are answered, and get time enough on a loaded machine.
    let entry = |timeout: &str, extra: &str| {
        format!(
            "  - snmp:\n      host: 127.0.0.1\n      port: {port}\n      interval: 1s\n      timeout: {timeout}\n      retries: 0\n{extra}      metrics: [{{name: up, oid: sysUpTime.0}}]\n"
        )
    };
    let config = s.config(&format!(
        "hostname: testbox\nbuffer_dir: {}\ninputs:\n{}{}{}{}  - internal:\n      interval: 1s\noutputs:\n  - stdout:\n      format: json\n",
        s.dir.path().join("buffer").display(),
        entry("200ms", "      snmpVersion: 2c\n      communityString: not-the-community\n"),
        entry(
            "5s",
            &format!(
            "      snmpVersion: 3\n      username: {}\n      authPassPhrase: wrong-auth-pass\n      privacyPassPhrase: {}\n",
            snmpd::V3_USER,
            snmpd::PRIV_PASS
        )
        ),
        entry(
            "200ms",
            &format!(
            "      snmpVersion: 3\n      username: {}\n      authPassPhrase: {}\n      privacyPassPhrase: wrong-priv-pass\n",
            snmpd::V3_USER,
            snmpd::AUTH_PASS
        )
        ),
        entry("5s", &format!("      snmpVersion: 2c\n      communityString: {}\n", snmpd::COMMUNITY)),
    ));
    let agent = Agent::start(&config);
    // Until each failing input has failed three times (the agent's own error counters).
    let failing = ["snmp", "snmp#2", "snmp#3"];
    let errors_of = |lines: &[String], input: &str| -> f64 {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("OUT "))
            .map(|j| serde_json::from_str::<Value>(j).expect("a JSON line"))
            .filter(|v| key_of(v) == format!("internal_gather_errors{{input={input}}}"))
            .filter_map(|v| v["value"].as_f64())
            .fold(0.0, f64::max)
    };
    let mut lines: Vec<String> = Vec::new();
    for _ in 0..60 {
        lines.extend(agent.wait_for(Duration::from_secs(1), |_| false).0);
        if failing.iter().all(|i| errors_of(&lines, i) >= 3.0) {
            break;
        }
    }
    let log = lines.join("\n");
    for i in failing {
        assert!(
            errors_of(&lines, i) >= 3.0,
            "{i} did not fail three times:\n{log}\n{}",
            d.logs()
        );
    }
    let warnings = |needle: &str| {
        lines
            .iter()
            .filter(|l| l.contains("[WARN]") && l.contains(needle))
            .count()
    };
    assert_eq!(warnings("input snmp: "), 1, "{log}");
    assert_eq!(warnings("input snmp#2: "), 1, "{log}");
    assert_eq!(warnings("input snmp#3: "), 1, "{log}");
    assert_eq!(
        warnings("input snmp#4: "),
        0,
        "the right credentials work:\n{log}"
    );
    assert_eq!(
        warnings("a wrong communityString looks like this"),
        1,
        "{log}"
    );
    assert_eq!(
        warnings("wrong authPassPhrase or authProtocol (usmStatsWrongDigests)"),
        1,
        "{log}"
    );
    assert_eq!(
        warnings("a wrong privacyPassPhrase or privacyProtocol looks like this"),
        1,
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("OUT ") && l.contains("\"name\":\"up\"")),
        "the input with the right community wrote its value:\n{log}"
    );
    // Secrets never print.
    for secret in [
        "not-the-community",
        "wrong-auth-pass",
        "wrong-priv-pass",
        snmpd::PRIV_PASS,
        snmpd::AUTH_PASS,
    ] {
        assert!(!log.contains(secret), "`{secret}` in the log:\n{log}");
    }
}

//! The `redistimeseries` output against real servers: Redis Stack (RedisTimeSeries) started
//! per test, TLS with a CA made at test time, ACL users, a restart mid-run, and Debian's plain
//! redis-server. Everything is checked by reading back from the server.
//!
//! Needs `RTC_REDIS_STACK_DIR` (see tests/support/mod.rs); fails, never skips, without it.

mod support;

use rtcollector::core::{Output, OutputError, Sample, SeriesTable, SeriesView, WriteReport};
use rtcollector::outputs::redistimeseries::RedisTimeSeries;
use std::cell::RefCell;
use std::time::{Duration, Instant};
#[cfg(feature = "tls")]
use support::certs::{make_certs, self_signed_cert};
use support::logs::logs_containing;
use support::ports::free_port;
use support::queued_output::{redistimeseries, QueuedOutput};
use support::redis_server::*;

/// 2023-11-14T22:13:20Z, a whole second.
const T0: i64 = 1_700_000_000_000;

fn output(yaml: &str) -> RedisTimeSeries {
    redistimeseries(yaml)
}

fn write(
    o: &mut RedisTimeSeries,
    table: &RefCell<SeriesTable>,
    batch: &[Sample],
) -> Result<WriteReport, OutputError> {
    futures_lite::future::block_on(o.write(batch, SeriesView(table)))
}

fn retry_message(r: Result<WriteReport, OutputError>) -> String {
    match r {
        Err(OutputError::Retry(m)) => m,
        other => panic!("expected OutputError::Retry, got {other:?}"),
    }
}

/// A host name no other test (or earlier run on a shared server) uses.
fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn s(series: u32, ts_ms: i64, value: f64) -> Sample {
    Sample {
        series,
        ts_ms,
        value,
    }
}

/// The agent's own queue and flush loop around an output.
fn queued(o: RedisTimeSeries, host: &str) -> QueuedOutput {
    QueuedOutput::new(Box::new(o), host)
}

#[test]
fn series_get_keys_labels_retention_and_policy_and_are_found_by_queryindex() {
    let r = Redis::any();
    let host = unique("keys");
    let mut o = output(&format!(
        "url: {}\nretention: 7d\nlabels: {{site: lab}}\n",
        r.url
    ));
    let table = RefCell::new(SeriesTable::new(&host, 100));
    let rx = table
        .borrow_mut()
        .intern("net_rx_bytes", "", &[("iface", "eth0")])
        .unwrap();
    let mem = table
        .borrow_mut()
        .intern("mem_used_percent", "", &[])
        .unwrap();
    let report = write(&mut o, &table, &[s(rx, T0, 1024.0), s(mem, T0, 42.5)]).unwrap();
    assert_eq!(
        report,
        WriteReport {
            written: 2,
            rejected: 0
        }
    );

    let mut c = r.client();
    let rx_key = format!("net_rx_bytes:{host}:eth0");
    let mem_key = format!("mem_used_percent:{host}");
    let want = |pairs: &[(&str, &str)]| {
        let mut v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        ts_labels(&mut c, &rx_key),
        want(&[
            ("host", &host),
            ("iface", "eth0"),
            ("name", "net_rx_bytes"),
            ("site", "lab")
        ])
    );
    assert_eq!(
        ts_labels(&mut c, &mem_key),
        want(&[
            ("host", &host),
            ("name", "mem_used_percent"),
            ("site", "lab")
        ])
    );
    let info = ts_info(&mut c, &rx_key);
    assert_eq!(text(&info_field(&info, "retentionTime")), "604800000");
    assert_eq!(text(&info_field(&info, "duplicatePolicy")), "last");
    assert_eq!(ts_range(&mut c, &rx_key), vec![(T0, 1024.0)]);

    let found: Vec<String> = query(
        &mut c,
        &[
            "TS.QUERYINDEX",
            "name=net_rx_bytes",
            &format!("host={host}"),
        ],
    );
    assert_eq!(found, vec![rx_key.clone()]);
    let mut all: Vec<String> = query(&mut c, &["TS.QUERYINDEX", &format!("host={host}")]);
    all.sort();
    assert_eq!(all, vec![mem_key, rx_key]);
}

#[test]
fn rtcollector_key_format_and_existing_block_keys_get_the_policy() {
    let r = Redis::any();
    let host = unique("legacy");
    let name = format!("net_rx_bytes_{}", host.replace('-', "_"));
    let key = format!("{name}_eth0");
    let mut c = r.client();
    // As made by a server whose default policy is BLOCK.
    let _: () = query(
        &mut c,
        &[
            "TS.CREATE",
            &key,
            "DUPLICATE_POLICY",
            "BLOCK",
            "RETENTION",
            "1000",
        ],
    );
    let mut o = output(&format!(
        "url: {}\nkey_format: \"{{name}}{{_values}}\"\nchunk_size: 512\nencoding: uncompressed\n",
        r.url
    ));
    let table = RefCell::new(SeriesTable::new(&host, 100));
    let id = table
        .borrow_mut()
        .intern(&name, "", &[("iface", "eth0")])
        .unwrap();
    let r1 = write(&mut o, &table, &[s(id, T0, 1.0)]).unwrap();
    // The same timestamp again: with BLOCK this would be refused.
    let r2 = write(&mut o, &table, &[s(id, T0, 2.0)]).unwrap();
    assert_eq!(
        (r1.written, r1.rejected, r2.written, r2.rejected),
        (1, 0, 1, 0)
    );
    assert_eq!(ts_range(&mut c, &key), vec![(T0, 2.0)]);
    let info = ts_info(&mut c, &key);
    assert_eq!(text(&info_field(&info, "duplicatePolicy")), "last");
    assert_eq!(text(&info_field(&info, "chunkSize")), "512");
    assert!(ts_labels(&mut c, &key).contains(&("name".into(), name.clone())));
    let found: Vec<String> = query(&mut c, &["TS.QUERYINDEX", &format!("name={name}")]);
    assert_eq!(found, vec![key]);
}

#[test]
fn exact_values_and_timestamps_over_several_flushes_and_too_old_samples_are_counted() {
    let r = Redis::any();
    let host = unique("values");
    let mut o = output(&format!("url: {}\nretention: 60s\n", r.url));
    let table = RefCell::new(SeriesTable::new(&host, 100));
    let a = table
        .borrow_mut()
        .intern("cpu_usage_percent", "", &[("cpu", "total")])
        .unwrap();
    let b = table.borrow_mut().intern("load1", "", &[]).unwrap();
    let values = [0.0, -1.5, 1e15, 1e-9, 12.345678901234567, 42.0];
    let mut expect_a = Vec::new();
    let mut expect_b = Vec::new();
    for flush in 0..3i64 {
        let mut batch = Vec::new();
        for (k, v) in values.iter().enumerate() {
            let ts = T0 + flush * 10_000 + k as i64 * 1000;
            batch.push(s(a, ts, *v + flush as f64));
            batch.push(s(b, ts + 1, -*v));
            expect_a.push((ts, *v + flush as f64));
            expect_b.push((ts + 1, -*v));
        }
        let report = write(&mut o, &table, &batch).unwrap();
        assert_eq!(report.written, batch.len() as u64, "flush {flush}");
        assert_eq!(report.rejected, 0);
    }
    let mut c = r.client();
    let ka = format!("cpu_usage_percent:{host}:total");
    let kb = format!("load1:{host}");
    assert_eq!(ts_range(&mut c, &ka), expect_a);
    assert_eq!(ts_range(&mut c, &kb), expect_b);

    // One sample older than the 60 s retention, one NaN, two good ones: the two bad ones
    // are dropped and counted, the rest written.
    let last = expect_a.last().unwrap().0;
    let report = write(
        &mut o,
        &table,
        &[
            s(a, last - 3_600_000, 1.0),
            s(a, last + 1000, 7.0),
            s(b, last + 1000, f64::NAN),
            s(b, last + 1001, 8.0),
        ],
    )
    .unwrap();
    assert_eq!(
        report,
        WriteReport {
            written: 2,
            rejected: 2
        }
    );
    assert_eq!(ts_range(&mut c, &ka).last(), Some(&(last + 1000, 7.0)));
    assert_eq!(ts_range(&mut c, &kb).last(), Some(&(last + 1001, 8.0)));
    assert!(
        !logs_containing(&format!("of {ka}: ERR TSDB")).is_empty(),
        "a debug line names the key of the refused sample"
    );
}

#[test]
fn downsampling_rules_are_created_and_aggregates_get_values() {
    let r = Redis::any();
    let host = unique("down");
    let mut o = output(&format!(
        "url: {}\ndownsample:\n  - {{every: 1s, aggregation: avg, retention: 2y}}\n  - {{every: 2s, aggregation: max, metrics: ['cpu_*']}}\n",
        r.url
    ));
    let table = RefCell::new(SeriesTable::new(&host, 100));
    let cpu = table.borrow_mut().intern("cpu_temp", "", &[]).unwrap();
    let mem = table.borrow_mut().intern("mem_used", "", &[]).unwrap();
    // Buckets [T0, T0+1s) and [T0+1s, T0+2s) close when a later sample arrives.
    let samples = [
        (0, 1.0),
        (500, 3.0),
        (1000, 5.0),
        (1500, 7.0),
        (2000, 9.0),
        (4000, 1.0),
    ];
    for (dt, v) in samples {
        // One flush per sample: rules must survive across flushes.
        let rep = write(
            &mut o,
            &table,
            &[s(cpu, T0 + dt, v), s(mem, T0 + dt, v * 10.0)],
        )
        .unwrap();
        assert_eq!(rep.written, 2);
    }
    let mut c = r.client();
    let cpu_key = format!("cpu_temp:{host}");
    let info = ts_info(&mut c, &cpu_key);
    let rules = format!("{:?}", info_field(&info, "rules"));
    assert!(
        rules.contains("avg_1s") && rules.contains("max_2s"),
        "{rules}"
    );
    let mem_info = ts_info(&mut c, &format!("mem_used:{host}"));
    let mem_rules = format!("{:?}", info_field(&mem_info, "rules"));
    assert!(
        mem_rules.contains("avg_1s") && !mem_rules.contains("max_2s"),
        "{mem_rules}"
    );

    let avg = format!("{cpu_key}:avg_1s");
    assert_eq!(
        ts_range(&mut c, &avg),
        vec![(T0, 2.0), (T0 + 1000, 6.0), (T0 + 2000, 9.0)]
    );
    assert_eq!(
        ts_range(&mut c, &format!("{cpu_key}:max_2s")),
        vec![(T0, 7.0), (T0 + 2000, 9.0)]
    );
    assert_eq!(
        ts_range(&mut c, &format!("mem_used:{host}:avg_1s")),
        vec![(T0, 20.0), (T0 + 1000, 60.0), (T0 + 2000, 90.0)]
    );
    let avg_info = ts_info(&mut c, &avg);
    assert_eq!(text(&info_field(&avg_info, "retentionTime")), "63072000000");
    let labels = ts_labels(&mut c, &avg);
    for l in [
        ("aggregation", "avg"),
        ("bucket", "1s"),
        ("name", "cpu_temp"),
        ("host", host.as_str()),
    ] {
        assert!(
            labels.contains(&(l.0.into(), l.1.into())),
            "{l:?} in {labels:?}"
        );
    }
    let found: Vec<String> = query(
        &mut c,
        &[
            "TS.QUERYINDEX",
            &format!("host={host}"),
            "aggregation=avg",
            "bucket=1s",
        ],
    );
    assert_eq!(found.len(), 2, "{found:?}");
    // Raw series only: `aggregation=` means "has no such label".
    let raw: Vec<String> = query(
        &mut c,
        &["TS.QUERYINDEX", &format!("host={host}"), "aggregation="],
    );
    assert_eq!(raw.len(), 2, "{raw:?}");
}

#[test]
fn acl_user_writes_inside_its_key_pattern_and_gets_a_clear_error_outside() {
    let server = Server::stack(&[]);
    let mut admin = server.client();
    let _: () = query(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "writer",
            "on",
            ">s3cret-pw",
            "~allowed:*",
            "+@all",
        ],
    );
    let yaml = |user: &str, pw: &str| {
        format!(
            "host: 127.0.0.1\nport: {}\nusername: {user}\npassword: {pw}\nkey_format: \"{{name}}:{{host}}\"\n",
            server.port
        )
    };
    let mut o = output(&yaml("writer", "s3cret-pw"));
    let table = RefCell::new(SeriesTable::new("h", 100));
    let ok = table.borrow_mut().intern("allowed:cpu", "", &[]).unwrap();
    let denied = table.borrow_mut().intern("forbidden:cpu", "", &[]).unwrap();
    let report = write(
        &mut o,
        &table,
        &[s(ok, T0, 1.0), s(denied, T0, 2.0), s(ok, T0 + 1000, 3.0)],
    )
    .unwrap();
    assert_eq!(
        report,
        WriteReport {
            written: 2,
            rejected: 1
        }
    );
    assert_eq!(
        ts_range(&mut admin, "allowed:cpu:h"),
        vec![(T0, 1.0), (T0 + 1000, 3.0)]
    );
    let exists: i64 = query(&mut admin, &["EXISTS", "forbidden:cpu:h"]);
    assert_eq!(exists, 0);
    let warned = logs_containing("no permission to write `forbidden:cpu:h` as ACL user `writer`");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("NOPERM"), "{warned:?}");
    // Next flush: the denied series is skipped without a new warning.
    let report = write(
        &mut o,
        &table,
        &[s(denied, T0 + 2000, 2.0), s(ok, T0 + 2000, 4.0)],
    )
    .unwrap();
    assert_eq!((report.written, report.rejected), (1, 1));
    assert_eq!(
        logs_containing("no permission to write `forbidden:cpu:h`").len(),
        1
    );

    // Wrong password and unknown user: the batch is kept (Retry), the message is clear and
    // holds no password.
    for (user, pw) in [("writer", "wrong-pw-123"), ("nobody", "s3cret-pw")] {
        let mut bad = output(&yaml(user, pw));
        let msg = retry_message(write(&mut bad, &table, &[s(ok, T0, 1.0)]));
        assert!(msg.contains("WRONGPASS") && msg.contains(user), "{msg}");
        assert!(!msg.contains(pw), "{msg}");
    }
}

#[test]
fn password_only_login_and_missing_password_errors() {
    let server = Server::stack(&["--requirepass", "pa55word"]);
    let table = RefCell::new(SeriesTable::new("h", 100));
    let id = table.borrow_mut().intern("m", "", &[]).unwrap();
    let base = format!("host: 127.0.0.1\nport: {}\n", server.port);

    let mut good = output(&format!("{base}password: pa55word\n"));
    assert_eq!(
        write(&mut good, &table, &[s(id, T0, 1.0)]).unwrap().written,
        1
    );
    let mut url = output(&format!(
        "url: redis://:pa55word@127.0.0.1:{}/2\n",
        server.port
    ));
    assert_eq!(
        write(&mut url, &table, &[s(id, T0, 2.0)]).unwrap().written,
        1
    );
    let mut c = server.client();
    assert_eq!(ts_range(&mut c, "m:h"), vec![(T0, 1.0)]);
    let _: () = query(&mut c, &["SELECT", "2"]);
    assert_eq!(
        ts_range(&mut c, "m:h"),
        vec![(T0, 2.0)],
        "url's /2 selects db 2"
    );

    let mut none = output(&base);
    let msg = retry_message(write(&mut none, &table, &[s(id, T0, 1.0)]));
    assert!(msg.contains("NOAUTH") && msg.contains("password"), "{msg}");
    let mut wrong = output(&format!("{base}password: nope-nope\n"));
    let msg = retry_message(write(&mut wrong, &table, &[s(id, T0, 1.0)]));
    assert!(
        msg.contains("WRONGPASS") && !msg.contains("nope-nope"),
        "{msg}"
    );
}

#[cfg(feature = "tls")]
#[test]
fn tls_with_a_test_ca_works_and_a_wrong_ca_fails_clearly_keeping_the_batch() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    let ca = make_certs(dir, "ca");
    let other_ca = make_certs(dir, "other");
    let p = |f: &str| dir.join(f).display().to_string();
    let (server, tls_port) = Server::stack_tls(
        &dir.join("ca-server.pem"),
        &dir.join("ca-server.key"),
        Some(&ca),
        "optional",
    );
    let mut c = server.client();

    // The right CA, by host/port keys and by a rediss:// url, with and without a client cert.
    for (i, yaml) in [
        format!(
            "host: 127.0.0.1\nport: {tls_port}\nssl: true\nssl_ca_certs: {}\n",
            ca.display()
        ),
        format!(
            "url: rediss://localhost:{tls_port}\nssl_ca_certs: {}\nssl_certfile: {}\nssl_keyfile: {}\n",
            ca.display(),
            p("ca-client.pem"),
            p("ca-client.key")
        ),
    ]
    .iter()
    .enumerate()
    {
        let host = format!("tls{i}");
        let mut agent = queued(output(yaml), &host);
        let id = agent.intern("tls_metric", &[]);
        agent.push(&[s(id, T0, 1.5), s(id, T0 + 1000, 2.5)]);
        assert!(agent.flush(), "TLS write {i} failed; see logs");
        assert_eq!(agent.queued(), 0);
        assert_eq!(
            ts_range(&mut c, &format!("tls_metric:{host}")),
            vec![(T0, 1.5), (T0 + 1000, 2.5)]
        );
    }

    // A CA that did not sign the server's certificate.
    let mut agent = queued(
        output(&format!(
            "host: 127.0.0.1\nport: {tls_port}\nssl: true\nssl_ca_certs: {}\n",
            other_ca.display()
        )),
        "wrongca",
    );
    let id = agent.intern("tls_metric", &[]);
    agent.push(&[s(id, T0, 1.0), s(id, T0 + 1000, 2.0), s(id, T0 + 2000, 3.0)]);
    assert!(!agent.flush());
    assert_eq!(agent.queued(), 3, "nothing lost: the batch stays queued");
    assert_eq!(agent.written(), 0);
    let down = logs_containing("output redistimeseries is down: TLS handshake");
    assert!(
        down.iter().any(|l| l.contains("not signed by a trusted CA")
            && l.contains("UnknownIssuer")
            && l.contains("ssl_ca_certs")),
        "{down:?}"
    );
    let exists: i64 = query(&mut c, &["EXISTS", "tls_metric:wrongca"]);
    assert_eq!(exists, 0, "nothing written");

    // Connecting by a name the certificate does not list.
    let mut o = output(&format!(
        "url: rediss://127.0.0.2:{tls_port}\nssl_ca_certs: {}\nconnect_timeout: 2s\n",
        ca.display()
    ));
    let table = RefCell::new(SeriesTable::new("h", 10));
    let id = table.borrow_mut().intern("m", "", &[]).unwrap();
    let msg = retry_message(write(&mut o, &table, &[s(id, T0, 1.0)]));
    // 127.0.0.2 is loopback too; the server binds 127.0.0.1 only, so either refused or
    // (where it listens) a name error: both are clear.
    assert!(
        msg.contains("NotValidForName") || msg.contains("cannot connect"),
        "{msg}"
    );

    // A plain-text client against the TLS port.
    let mut plain = output(&format!(
        "host: 127.0.0.1\nport: {tls_port}\nconnect_timeout: 2s\n"
    ));
    let msg = retry_message(write(&mut plain, &table, &[s(id, T0, 1.0)]));
    assert!(
        msg.contains("ssl: true") || msg.contains("connect_timeout"),
        "{msg}"
    );
}

/// Self-signed certificates: OpenSSL's default marks one as a CA, which no ssl_ca_certs
/// can make acceptable (the message says what to remake); one marked CA:FALSE works once
/// ssl_ca_certs names it (the message says so).
#[cfg(feature = "tls")]
#[test]
fn tls_with_a_self_signed_certificate_says_what_to_set() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    let p = |f: &str| dir.join(f).display().to_string();
    self_signed_cert(dir, "as-ca", &[]);
    self_signed_cert(
        dir,
        "leaf",
        &["-addext", "basicConstraints=critical,CA:FALSE"],
    );
    let table = RefCell::new(SeriesTable::new("h", 10));
    let id = table.borrow_mut().intern("selfsigned", "", &[]).unwrap();
    let server_with = |name: &str| {
        let (server, port) = Server::stack_tls(
            &dir.join(format!("{name}.pem")),
            &dir.join(format!("{name}.key")),
            None,
            "no",
        );
        (server, port.to_string())
    };
    let config = |port: &str, ca: Option<&str>| {
        let ca = ca
            .map(|c| format!("ssl_ca_certs: {}\n", p(c)))
            .unwrap_or_default();
        output(&format!("host: 127.0.0.1\nport: {port}\nssl: true\n{ca}"))
    };

    let (_server, port) = server_with("as-ca");
    for ca in [None, Some("as-ca.pem")] {
        let msg = retry_message(write(&mut config(&port, ca), &table, &[s(id, T0, 1.0)]));
        assert!(
            msg.contains("the server's certificate is a CA certificate (CaUsedAsEndEntity);")
                && msg.contains("even with ssl_ca_certs set to it")
                && msg.contains("-addext basicConstraints=critical,CA:FALSE"),
            "{ca:?}: {msg}"
        );
    }

    let (server, port) = server_with("leaf");
    let msg = retry_message(write(&mut config(&port, None), &table, &[s(id, T0, 1.0)]));
    assert!(
        msg.contains("(UnknownIssuer); set ssl_ca_certs to the CA that signed it (for a self-signed certificate, the certificate itself)"),
        "{msg}"
    );
    let report = write(
        &mut config(&port, Some("leaf.pem")),
        &table,
        &[s(id, T0, 1.0)],
    )
    .unwrap();
    assert_eq!(report.written, 1);
    assert_eq!(
        ts_range(&mut server.client(), "selfsigned:h"),
        vec![(T0, 1.0)]
    );
}

/// `ssl: true` is suggested only when the server spoke TLS or said nothing at all: a
/// server that answered in RESP before closing (maxclients here) is not a TLS server.
#[cfg(feature = "tls")]
#[test]
fn a_plain_login_is_told_to_set_ssl_only_when_the_server_did_not_speak_resp() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    self_signed_cert(
        dir,
        "leaf",
        &["-addext", "basicConstraints=critical,CA:FALSE"],
    );
    let (_tls, tls_port) =
        Server::stack_tls(&dir.join("leaf.pem"), &dir.join("leaf.key"), None, "no");
    let table = RefCell::new(SeriesTable::new("h", 10));
    let id = table.borrow_mut().intern("plain", "", &[]).unwrap();
    let plain_login = |port: &str| {
        let mut o = output(&format!(
            "host: 127.0.0.1\nport: {port}\nconnect_timeout: 5s\n"
        ));
        retry_message(write(&mut o, &table, &[s(id, T0, 1.0)]))
    };

    let msg = plain_login(&tls_port.to_string());
    assert!(
        msg.contains("closed the connection while logging in")
            && msg.contains("if it expects TLS, set `ssl: true`"),
        "{msg}"
    );

    let full = Server::stack(&["--maxclients", "1"]);
    let _only_client = full.client();
    // Repeated: the reply and the close race the client's first write.
    for _ in 0..20 {
        let msg = plain_login(&full.port.to_string());
        assert!(
            msg.contains("closed the connection while logging in") && !msg.contains("ssl"),
            "{msg}"
        );
    }

    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port().to_string();
    let closer = std::thread::spawn(move || drop(silent.accept().unwrap()));
    let msg = plain_login(&silent_port);
    closer.join().unwrap();
    assert!(
        msg.contains(
            "(the server sent nothing before closing; if it expects TLS, set `ssl: true`)"
        ),
        "{msg}"
    );
}

#[cfg(feature = "tls")]
#[test]
fn tls_server_requiring_a_client_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    let ca = make_certs(dir, "ca");
    let p = |f: &str| dir.join(f).display().to_string();
    let (server, tls_port) = Server::stack_tls(
        &dir.join("ca-server.pem"),
        &dir.join("ca-server.key"),
        Some(&ca),
        "yes",
    );
    let table = RefCell::new(SeriesTable::new("h", 10));
    let id = table.borrow_mut().intern("mtls", "", &[]).unwrap();
    let base = format!(
        "host: localhost\nport: {tls_port}\nssl: true\nssl_ca_certs: {}\n",
        ca.display()
    );
    let mut with_cert = output(&format!(
        "{base}ssl_certfile: {}\nssl_keyfile: {}\n",
        p("ca-client.pem"),
        p("ca-client.key")
    ));
    assert_eq!(
        write(&mut with_cert, &table, &[s(id, T0, 1.0)])
            .unwrap()
            .written,
        1
    );
    let mut c = server.client();
    assert_eq!(ts_range(&mut c, "mtls:h"), vec![(T0, 1.0)]);

    let mut without = output(&base);
    let msg = retry_message(write(&mut without, &table, &[s(id, T0 + 1, 1.0)]));
    assert!(
        msg.contains("CertificateRequired") && msg.contains("ssl_certfile"),
        "{msg}"
    );
    assert_eq!(ts_range(&mut c, "mtls:h"), vec![(T0, 1.0)]);
}

/// Built without the `tls` feature: asking for TLS is a config error that says so.
#[cfg(not(feature = "tls"))]
#[test]
fn without_the_tls_feature_ssl_is_a_clear_config_error() {
    use rtcollector::outputs::redistimeseries::{build, Config};
    use rtcollector::outputs::OutputCtx;
    for yaml in ["ssl: true\n", "url: rediss://localhost:6380\n"] {
        let cfg: Config = yaml_serde::from_str(yaml).unwrap();
        let ctx = OutputCtx {
            hostname: "h".into(),
            key: "redistimeseries".into(),
        };
        let err = build(&cfg, &ctx).err().expect("a config error").to_string();
        assert!(err.contains("built without TLS"), "{err}");
    }
}

#[test]
fn server_restart_mid_run_reconnects_and_delivers_the_buffer_with_original_timestamps() {
    let mut server = Server::stack(&[]);
    let mut agent = queued(
        output(&format!(
            "host: 127.0.0.1\nport: {}\nconnect_timeout: 1s\nwrite_timeout: 2s\nretention: 1y\n",
            server.port
        )),
        "restart",
    );
    let a = agent.intern("net_rx_bytes", &[("iface", "eth0")]);
    let b = agent.intern("mem_used", &[]);
    agent.push(&[s(a, T0, 1.0), s(b, T0, 2.0)]);
    assert!(agent.flush());

    server.stop();
    let buffered: Vec<Sample> = (1..=50)
        .flat_map(|k| {
            [
                s(a, T0 + k * 1000, k as f64),
                s(b, T0 + k * 1000, -(k as f64)),
            ]
        })
        .collect();
    agent.push(&buffered[..60]);
    assert!(!agent.flush(), "server is down");
    agent.push(&buffered[60..]);
    assert!(!agent.flush(), "still down");
    assert_eq!(agent.queued(), 100);
    assert!(!logs_containing("output redistimeseries is down").is_empty());

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(40);
    while !agent.flush() {
        assert!(
            Instant::now() < deadline,
            "no reconnect within 40s; queued {}",
            agent.queued()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(agent.queued(), 0);
    assert_eq!(agent.written(), 102);
    // The restarted server lost its data (no persistence): the series were created again
    // and every buffered sample arrived with its own timestamp.
    let mut c = server.client();
    let want_a: Vec<(i64, f64)> = (1..=50).map(|k| (T0 + k * 1000, k as f64)).collect();
    let want_b: Vec<(i64, f64)> = (1..=50).map(|k| (T0 + k * 1000, -(k as f64))).collect();
    assert_eq!(ts_range(&mut c, "net_rx_bytes:restart:eth0"), want_a);
    assert_eq!(ts_range(&mut c, "mem_used:restart"), want_b);
    let info = ts_info(&mut c, "mem_used:restart");
    assert_eq!(text(&info_field(&info, "retentionTime")), "31536000000");
    assert!(!logs_containing("output redistimeseries is up again").is_empty());
}

#[test]
fn a_write_cancelled_halfway_does_not_lose_series_creation() {
    let r = Redis::any();
    let host = unique("cancel");
    let mut o = output(&format!("url: {}\n", r.url));
    let table = RefCell::new(SeriesTable::new(&host, 10));
    let a = table.borrow_mut().intern("a", "", &[]).unwrap();
    let b = table.borrow_mut().intern("b", "", &[]).unwrap();
    assert_eq!(write(&mut o, &table, &[s(a, T0, 1.0)]).unwrap().written, 1);
    // Planned and sent, then dropped before the replies are read (as when a stop's flush
    // budget runs out).
    {
        let batch = [s(b, T0, 1.0)];
        let fut = o.write(&batch, SeriesView(&table));
        let polled = futures_lite::future::block_on(futures_lite::future::poll_once(fut));
        assert!(polled.is_none(), "the first poll cannot have the reply yet");
    }
    // Whether or not the cancelled TS.CREATE reached the server, the key may be gone.
    let mut c = r.client();
    let _: i64 = query(&mut c, &["DEL", &format!("b:{host}")]);
    let report = write(&mut o, &table, &[s(b, T0 + 1000, 2.0)]).unwrap();
    assert_eq!(
        report,
        WriteReport {
            written: 1,
            rejected: 0
        }
    );
    assert_eq!(
        ts_range(&mut c, &format!("b:{host}")).last(),
        Some(&(T0 + 1000, 2.0))
    );
    assert!(ts_labels(&mut c, &format!("b:{host}")).contains(&("name".into(), "b".into())));
}

/// A key deleted behind the agent's back is created again and every sample of it in the
/// batch is sent again (only the first was, and the others were counted as dropped).
#[test]
fn every_sample_of_a_deleted_key_is_sent_again() {
    let r = Redis::any();
    let host = unique("deleted");
    let mut o = output(&format!("url: {}\n", r.url));
    let table = RefCell::new(SeriesTable::new(&host, 10));
    let a = table.borrow_mut().intern("a", "", &[]).unwrap();
    assert_eq!(write(&mut o, &table, &[s(a, T0, 0.0)]).unwrap().written, 1);
    let mut c = r.client();
    let _: i64 = query(&mut c, &["DEL", &format!("a:{host}")]);
    let batch: Vec<Sample> = (1..=5).map(|k| s(a, T0 + k * 1000, k as f64)).collect();
    let report = write(&mut o, &table, &batch).unwrap();
    assert_eq!(
        report,
        WriteReport {
            written: 5,
            rejected: 0
        }
    );
    let want: Vec<(i64, f64)> = (1..=5).map(|k| (T0 + k * 1000, k as f64)).collect();
    assert_eq!(ts_range(&mut c, &format!("a:{host}")), want);
}

#[test]
fn plain_redis_without_the_module_says_redis_stack_or_redis_8_is_needed() {
    let server = Server::plain(&[]);
    let mut o = output(&format!("host: 127.0.0.1\nport: {}\n", server.port));
    let table = RefCell::new(SeriesTable::new("h", 10));
    let id = table.borrow_mut().intern("m", "", &[]).unwrap();
    let msg = retry_message(write(&mut o, &table, &[s(id, T0, 1.0)]));
    assert!(
        msg.contains("no RedisTimeSeries module")
            && msg.contains("Redis Stack")
            && msg.contains("Redis 8"),
        "{msg}"
    );
}

#[test]
fn unreachable_host_is_a_retry_with_a_clear_message_and_backoff() {
    let port = free_port();
    let mut o = output(&format!(
        "host: 127.0.0.1\nport: {port}\nconnect_timeout: 1s\n"
    ));
    let table = RefCell::new(SeriesTable::new("h", 10));
    let id = table.borrow_mut().intern("m", "", &[]).unwrap();
    let msg = retry_message(write(&mut o, &table, &[s(id, T0, 1.0)]));
    assert!(
        msg.contains(&format!("cannot connect to 127.0.0.1:{port}")) && msg.contains("refused"),
        "{msg}"
    );
    // Within the backoff the same error comes back without a new attempt.
    let started = Instant::now();
    let again = retry_message(write(&mut o, &table, &[s(id, T0, 1.0)]));
    assert_eq!(again, msg);
    assert!(started.elapsed() < Duration::from_millis(100));
}

/// The built binary: `check` needs no Redis and prints no secret; `run --once` writes the
/// linux_mem input (from the fixture /proc) to Redis.
#[test]
fn binary_check_needs_no_redis_and_run_once_writes() {
    let bin = env!("CARGO_BIN_EXE_rtcollector");
    let dir = tempfile::tempdir().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/basic");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "hostname: offline\nprocfs_root: {fixtures}/proc\ninputs: [linux_mem]\noutputs:\n  - redistimeseries:\n      host: 127.0.0.1\n      port: {}\n      password: hunter2-secret\n  - redistimeseries:\n      url: redis://u:url-secret@127.0.0.1:1/0\n",
            free_port()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin)
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("redistimeseries"), "{text}");
    assert!(
        !text.contains("hunter2-secret") && !text.contains("url-secret"),
        "{text}"
    );

    let r = Redis::any();
    let host = unique("bin");
    std::fs::write(
        &cfg,
        format!(
            "hostname: {host}\nprocfs_root: {fixtures}/proc\ninputs: [linux_mem]\noutputs:\n  - redistimeseries:\n      url: {}\n",
            r.url
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin)
        .args(["run", "--once", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = r.client();
    let keys: Vec<String> = query(
        &mut c,
        &[
            "TS.QUERYINDEX",
            &format!("host={host}"),
            "name=mem_total_bytes",
        ],
    );
    assert_eq!(keys, vec![format!("mem_total_bytes:{host}")]);
    let points = ts_range(&mut c, &keys[0]);
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].1, 8_046_600.0 * 1024.0);
}

/// A host name is looked up on a thread that ends with the lookup: once the agent wrote to
/// `localhost`, it is back to its own two threads (executor and smol's async-io). smol's
/// resolver left a blocking-pool thread for the agent's life here.
#[test]
fn a_host_name_lookup_leaves_no_thread_behind() {
    let server = Server::stack(&[]);
    let dir = tempfile::tempdir().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/basic");
    let host = unique("resolve");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "hostname: {host}\nprocfs_root: {fixtures}/proc\nbuffer_dir: {}\ninterval: 1s\nflush_interval: 1s\ninputs: [linux_mem]\noutputs:\n  - redistimeseries:\n      host: localhost\n      port: {}\n",
            dir.path().join("buffer").display(),
            server.port
        ),
    )
    .unwrap();
    let mut agent = std::process::Command::new(env!("CARGO_BIN_EXE_rtcollector"))
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let threads = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", agent.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|t| t.trim().parse::<u32>().ok())
            .unwrap()
    };
    let key = format!("mem_total_bytes:{host}");
    let mut c = server.client();
    // Bounds on a hang, not speed figures.
    let deadline = Instant::now() + Duration::from_secs(20);
    let exists = |c: &mut redis::Connection| query::<i64>(c, &["EXISTS", &key]) == 1;
    while !exists(&mut c) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let written = exists(&mut c);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = threads();
    while seen > 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        seen = threads();
    }
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(written, "nothing written to {key} through `localhost`");
    assert!(
        seen <= 2,
        "{seen} threads after writing through `localhost`"
    );
}

//! The syslog input into the redissearch output, with real syslog clients and a real Redis
//! Stack: util-linux `logger` (RFC 5424 and RFC 3164, UDP and TCP, octet-counted and
//! newline-framed), `openssl s_client` as a TLS client checking a CA made here, and
//! messages read back with `FT.SEARCH` by severity, program and a word of the message, with
//! exact field values. Then Redis down for a minute while messages arrive, the agent killed
//! -9 once meanwhile: afterwards every message is in RediSearch exactly once.
//!
//! Needs `RTC_REDIS_STACK_DIR` (see tests/support/redis_server.rs); fails, never skips,
//! without it.
#![cfg(all(feature = "syslog", feature = "redissearch"))]

mod support;

use serde_json::Value;
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::agent::Agent;
use support::ports::{free_port, free_udp_port};
use support::redis_server::Server;
use support::scratch::Scratch;
use support::wait::wait_until;

const WAIT: Duration = Duration::from_secs(30);

/// An agent with a syslog input per `servers` entry and a redissearch output to `redis`.
fn config(s: &Scratch, redis: &Server, servers: &[String], extra: &str) -> PathBuf {
    let inputs: String = servers
        .iter()
        .map(|srv| format!("  - syslog:\n      server: \"{srv}\"\n{extra}"))
        .collect();
    s.config(&format!(
        "hostname: sltest\ninterval: 1s\nflush_interval: 1s\nbuffer_dir: {}\n\
         buffer_sync_interval: 1s\ninputs:\n{inputs}outputs:\n  - redissearch:\n      \
         port: {}\n      write_timeout: 2s\n",
        s.dir.path().join("buffer").display(),
        redis.port
    ))
}

/// The documents `FT.SEARCH logs_idx <query>` finds (at most 20 000), as JSON.
fn search(redis: &Server, query: &str) -> Vec<Value> {
    let mut con = redis.client();
    let reply: redis::Value = match redis::cmd("FT.SEARCH")
        .arg("logs_idx")
        .arg(query)
        .arg("LIMIT")
        .arg(0)
        .arg(20_000)
        .query(&mut con)
    {
        Ok(v) => v,
        // No index yet: the agent has not connected.
        Err(_) => return Vec::new(),
    };
    let redis::Value::Array(items) = reply else {
        panic!("FT.SEARCH answered {reply:?}");
    };
    items
        .iter()
        .skip(2)
        .step_by(2)
        .filter_map(|fields| match fields {
            redis::Value::Array(kv) => kv.get(1).map(support::redis_server::text),
            _ => None,
        })
        .map(|doc| serde_json::from_str(&doc).expect("a JSON document"))
        .collect()
}

/// Waits until `query` finds `n` documents; shows the agent's and the server's output if not.
fn wait_docs(redis: &Server, agent: &Agent, query: &str, n: usize) -> Vec<Value> {
    let mut docs = Vec::new();
    if wait_until(WAIT, || {
        docs = search(redis, query);
        docs.len() >= n
    }) {
        return docs;
    }
    panic!(
        "FT.SEARCH {query}: {} of {n} documents: {docs:?}\nagent:\n{}\nredis:\n{}",
        docs.len(),
        agent.drain().join("\n"),
        redis.log()
    );
}

fn logger(args: &[&str]) {
    let out = Command::new("logger")
        .args(args)
        .output()
        .expect("run logger");
    assert!(out.status.success(), "logger {args:?}: {out:?}");
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .expect("hostname")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn logger_messages_over_udp_and_tcp_are_found_with_their_exact_fields() {
    let redis = Server::stack(&[]);
    let (udp, tcp) = (free_udp_port(), free_port());
    let s = Scratch::new();
    let agent = Agent::start(&config(
        &s,
        &redis,
        &[
            format!("udp://127.0.0.1:{udp}"),
            format!("tcp://127.0.0.1:{tcp}"),
        ],
        "",
    ));
    let (udp, tcp) = (udp.to_string(), tcp.to_string());
    assert!(
        wait_until(WAIT, || TcpStream::connect((
            "127.0.0.1",
            tcp.parse::<u16>().unwrap()
        ))
        .is_ok()),
        "the TCP server does not listen: {}",
        agent.drain().join("\n")
    );
    logger(&[
        "--rfc5424",
        "-d",
        "-n",
        "127.0.0.1",
        "-P",
        &udp,
        "-t",
        "myapp",
        "-p",
        "daemon.err",
        "--sd-id",
        "meta@1",
        "--sd-param",
        "ip=\"10.0.0.1\"",
        "disk full on sda",
    ]);
    logger(&[
        "--rfc3164",
        "-d",
        "-n",
        "127.0.0.1",
        "-P",
        &udp,
        "-t",
        "oldapp",
        "-p",
        "user.warning",
        "old style warning",
    ]);
    logger(&[
        "--rfc5424",
        "--octet-count",
        "-T",
        "-n",
        "127.0.0.1",
        "-P",
        &tcp,
        "-t",
        "counted",
        "-p",
        "local0.info",
        "counted over tcp",
    ]);
    logger(&[
        "--rfc3164",
        "-T",
        "-n",
        "127.0.0.1",
        "-P",
        &tcp,
        "-t",
        "framed",
        "-p",
        "mail.notice",
        "newline framed over tcp",
    ]);

    let docs = wait_docs(&redis, &agent, "*", 4);
    assert_eq!(docs.len(), 4, "{docs:?}");
    let host = hostname();

    let err = wait_docs(&redis, &agent, "@severity:{err}", 1);
    assert_eq!(err.len(), 1, "{err:?}");
    let d = &err[0];
    assert_eq!(d["appname"], "myapp");
    assert_eq!(d["facility"], "daemon");
    assert_eq!(d["severity_code"], 3);
    assert_eq!(d["host"], host.as_str());
    assert_eq!(d["message"], "disk full on sda");
    assert_eq!(d["structured_data"]["meta@1_ip"], "10.0.0.1");
    assert_eq!(d["structured_data"]["timeQuality_tzKnown"], "1");
    assert!(
        d["source"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{d}"
    );

    let old = wait_docs(&redis, &agent, "@appname:{oldapp}", 1);
    assert_eq!(
        (
            &old[0]["severity"],
            &old[0]["facility"],
            &old[0]["host"],
            &old[0]["message"]
        ),
        (
            &Value::from("warning"),
            &Value::from("user"),
            &Value::from(host.as_str()),
            &Value::from("old style warning")
        )
    );
    let counted = wait_docs(&redis, &agent, "@message:counted", 1);
    assert_eq!(
        (&counted[0]["appname"], &counted[0]["facility"]),
        (&Value::from("counted"), &Value::from("local0"))
    );
    let framed = wait_docs(&redis, &agent, "@severity:{notice} @facility:{mail}", 1);
    assert_eq!(framed[0]["message"], "newline framed over tcp");
    // Times: RFC 5424's own with microseconds cut to ms; RFC 3164's to the second.
    let ts = old[0]["timestamp"].as_i64().unwrap();
    assert_eq!(ts % 1000, 0, "{}", old[0]);
    let recv = old[0]["received"].as_i64().unwrap();
    assert!((0..5_000).contains(&(recv - ts)), "{}", old[0]);
}

#[test]
fn tls_clients_are_served_with_a_certificate_from_a_ca_made_here() {
    let redis = Server::stack(&[]);
    let s = Scratch::new();
    let certs = support::certs::make_server_certs(s.dir.path());
    let port = free_port();
    let extra = format!(
        "      tls_cert: {}\n      tls_key: {}\n",
        certs.cert.display(),
        certs.key.display()
    );
    let agent = Agent::start(&config(
        &s,
        &redis,
        &[format!("tls://127.0.0.1:{port}")],
        &extra,
    ));
    assert!(
        wait_until(WAIT, || TcpStream::connect(("127.0.0.1", port)).is_ok()),
        "the TLS server does not listen: {}",
        agent.drain().join("\n")
    );
    let msg = "<86>1 2026-12-06T10:00:00.000Z nas sshd 99 - - Accepted publickey for root";
    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-CAfile"])
        .arg(&certs.ca)
        .args([
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl s_client");
    let mut stdin = client.stdin.take().unwrap();
    write!(stdin, "{} {msg}", msg.len()).unwrap();
    stdin.flush().unwrap();
    let docs = wait_docs(&redis, &agent, "@appname:{sshd}", 1);
    // s_client -quiet does not end at the end of its input.
    drop(stdin);
    let _ = client.kill();
    let _ = client.wait();
    assert_eq!(docs[0]["host"], "nas");
    assert_eq!(docs[0]["timestamp"], 1_796_551_200_000i64);
    assert_eq!(docs[0]["severity"], "info");
    assert_eq!(docs[0]["facility"], "authpriv");
    assert_eq!(docs[0]["message"], "Accepted publickey for root");
}

/// `n` RFC 5424 messages `msg <i>` over one TCP connection, octet-counted, paced at
/// `per_second`.
fn send_numbered(port: u16, from: usize, n: usize, per_second: u64) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to the agent");
    let pause = Duration::from_micros(1_000_000 / per_second);
    for i in from..from + n {
        let msg = format!("<14>1 - dev app - - - msg {i}");
        write!(conn, "{} {msg}", msg.len()).expect("send");
        std::thread::sleep(pause);
    }
    conn.flush().unwrap();
}

/// The numbers of the `msg <i>` documents, sorted.
fn numbers(docs: &[Value]) -> Vec<usize> {
    let mut got: Vec<usize> = docs
        .iter()
        .filter_map(|d| d["message"].as_str()?.strip_prefix("msg ")?.parse().ok())
        .collect();
    got.sort_unstable();
    got
}

#[test]
fn redis_down_for_a_minute_and_the_agent_killed_meanwhile_loses_no_message() {
    use nix::sys::signal::Signal;

    // Every write on disk at once: the documents from before the outage survive the kill.
    let mut redis = Server::stack(&["--appendonly", "yes", "--appendfsync", "always"]);
    let port = free_port();
    let s = Scratch::new();
    let config = config(&s, &redis, &[format!("tcp://127.0.0.1:{port}")], "");
    let agent = Agent::start(&config);
    assert!(wait_until(WAIT, || TcpStream::connect(("127.0.0.1", port)).is_ok()));
    send_numbered(port, 0, 100, 100);
    wait_docs(&redis, &agent, "*", 100);

    redis.stop();
    // 100 messages a second for 30 s, then the agent is killed -9 once its last flush
    // has put them on disk, started again, and 30 s more arrive.
    send_numbered(port, 100, 3000, 100);
    std::thread::sleep(Duration::from_secs(3));
    agent.signal(Signal::SIGKILL);
    drop(agent);
    let agent = Agent::start(&config);
    assert!(wait_until(WAIT, || TcpStream::connect(("127.0.0.1", port)).is_ok()));
    send_numbered(port, 3100, 3000, 100);
    redis.restart();

    let docs = wait_docs(&redis, &agent, "*", 6100);
    let got = numbers(&docs);
    assert_eq!(got, (0..6100).collect::<Vec<_>>(), "every message, once");
    let disk = s.dir.path().join("buffer/redissearch/logs");
    assert!(
        wait_until(WAIT, || std::fs::read_dir(&disk)
            .map_or(true, |d| d.count() == 0)),
        "the outage buffer is emptied once replayed"
    );
}

#[test]
fn garbage_long_lines_floods_and_too_many_clients_are_counted_and_bounded() {
    let redis = Server::stack(&[]);
    let (udp, tcp) = (free_udp_port(), free_port());
    let s = Scratch::new();
    let extra = "      max_connections: 8\n      read_buffer_size: 4KiB\n      best_effort: true\n";
    let path = config(
        &s,
        &redis,
        &[
            format!("udp://127.0.0.1:{udp}"),
            format!("tcp://127.0.0.1:{tcp}"),
        ],
        extra,
    );
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "outputs:\n",
        "  - internal\noutputs:\n  - stdout:\n      format: json\n",
    );
    std::fs::write(&path, text).unwrap();
    let agent = Agent::start(&path);
    assert!(wait_until(WAIT, || TcpStream::connect(("127.0.0.1", tcp)).is_ok()));

    // Garbage and a line of 1 MB over TCP, then a good message on the same connection.
    let mut conn = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    conn.write_all(b"\xff\xfe garbage without a priority\n")
        .unwrap();
    let mut long = b"<13>Dec  6 10:00:00 h big: ".to_vec();
    long.resize(1 << 20, b'x');
    long.push(b'\n');
    conn.write_all(&long).unwrap();
    conn.write_all(b"<13>Dec  6 10:00:00 h after: still here\n")
        .unwrap();
    // A client that opens 10 000 connections and keeps them: all but max_connections are
    // closed by the agent at once.
    raise_fd_limit(10_500);
    let extra_clients: Vec<TcpStream> = (0..10_000)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", tcp)).ok())
        .collect();
    assert!(
        extra_clients.len() > 9_000,
        "{} connections opened",
        extra_clients.len()
    );
    // A UDP flood.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..20_000 {
        let _ = sock.send_to(
            format!("<13>1 - h flood - - - {i}").as_bytes(),
            ("127.0.0.1", udp),
        );
    }
    let after = wait_docs(&redis, &agent, "@appname:{after}", 1);
    assert_eq!(after[0]["message"], "still here");
    let big = wait_docs(&redis, &agent, "@appname:{big}", 1);
    assert_eq!(
        big[0]["message"].as_str().unwrap().len(),
        4096 - 27,
        "cut to read_buffer_size"
    );
    let raw = wait_docs(&redis, &agent, "@message:garbage", 1);
    assert_eq!(
        raw[0]["severity"], "notice",
        "kept as raw text (best_effort)"
    );
    drop(extra_clients);
    // The counters, from the internal input's and the syslog input's own samples.
    let refused = |l: &str| -> Option<f64> {
        let v: Value = serde_json::from_str(l.strip_prefix("OUT ")?).ok()?;
        (v["name"] == "syslog_connections_refused").then(|| v["value"].as_f64())?
    };
    let (lines, found) = agent.wait_for(WAIT, |l| refused(l).is_some_and(|n| n >= 9_000.0));
    assert!(
        found,
        "the extra connections are not counted: {}",
        lines.join("\n")
    );
    let (lines, found) = agent.wait_for(WAIT, |l| {
        l.contains("\"name\":\"syslog_truncated\"") && l.contains("\"value\":1,")
    });
    assert!(
        found,
        "the long line is not counted as truncated: {}",
        lines.join("\n")
    );
    let (lines, found) = agent.wait_for(WAIT, |l| {
        l.contains("\"name\":\"internal_memstats_sys_bytes\"")
    });
    assert!(found, "{}", lines.join("\n"));
    let rss = lines
        .iter()
        .rev()
        .find_map(|l| {
            let v: Value = serde_json::from_str(l.strip_prefix("OUT ")?).ok()?;
            (v["name"] == "internal_memstats_sys_bytes").then(|| v["value"].as_f64())?
        })
        .unwrap();
    assert!(
        rss < 64.0 * 1024.0 * 1024.0,
        "RSS {rss} bytes after the flood"
    );
}

/// The Python rtcollector's exec JSON: its `logs` entries become log records too, which
/// stdout prints as `{"log": …}` lines beside the samples.
#[test]
fn exec_json_logs_become_log_records() {
    let s = Scratch::new();
    let script = s.write(
        "report.sh",
        "#!/bin/sh\necho '{\"metrics\": {\"cpu_temp\": 72.5}, \"logs\": [{\"message\": \"CPU temp is high\", \"level\": \"warning\"}, \"plain entry\"]}'\n",
    );
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    let config = s.config(&format!(
        "hostname: exechost\ninputs:\n  - exec:\n      commands: [\"{}\"]\n      data_format: json\n\
         outputs:\n  - stdout:\n      format: json\n",
        script.display()
    ));
    let out = support::agent::run_once(&config, &[]);
    let stdout = support::agent::stdout(&out);
    let logs: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("log").cloned())
        .collect();
    assert_eq!(logs.len(), 2, "{stdout}\n{}", support::agent::stderr(&out));
    assert_eq!(
        (
            &logs[0]["message"],
            &logs[0]["severity"],
            &logs[0]["host"],
            &logs[0]["appname"]
        ),
        (
            &Value::from("CPU temp is high"),
            &Value::from("warning"),
            &Value::from("exechost"),
            &Value::from("exec")
        )
    );
    assert_eq!(
        (&logs[1]["message"], &logs[1]["severity"]),
        (&Value::from("plain entry"), &Value::from("info"))
    );
    assert!(stdout.contains("\"name\":\"cpu_temp\""), "{stdout}");
}

/// Lets this process hold `n` descriptors (the soft limit, up to the hard one).
fn raise_fd_limit(n: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < n {
        setrlimit(Resource::RLIMIT_NOFILE, n.min(hard), hard).expect("setrlimit");
    }
}

/// A binary of `scripts/setup-syslog-clients`.
fn client_bin(name: &str) -> PathBuf {
    let Some(dir) = std::env::var_os("RTC_SYSLOG_BIN_DIR").filter(|d| !d.is_empty()) else {
        panic!(
            "RTC_SYSLOG_BIN_DIR is not set. These tests forward through real rsyslog and busybox: run\n    \
             export RTC_SYSLOG_BIN_DIR=\"$(scripts/setup-syslog-clients)\"\nfirst"
        );
    };
    let bin = PathBuf::from(dir).join(name);
    assert!(
        bin.exists(),
        "{} is missing: run scripts/setup-syslog-clients again",
        bin.display()
    );
    bin
}

/// rsyslog forwarding with `omfwd`, as a server would: RFC 5424 octet-counted over TCP and
/// its traditional format over UDP, from messages logged to its own (private) socket.
#[test]
fn rsyslog_forwards_rfc5424_over_tcp_and_its_traditional_format_over_udp() {
    let redis = Server::stack(&[]);
    let (udp, tcp) = (free_udp_port(), free_port());
    let s = Scratch::new();
    let agent = Agent::start(&config(
        &s,
        &redis,
        &[
            format!("udp://127.0.0.1:{udp}"),
            format!("tcp://127.0.0.1:{tcp}"),
        ],
        "",
    ));
    assert!(wait_until(WAIT, || TcpStream::connect(("127.0.0.1", tcp)).is_ok()));
    let dir = s.dir.path();
    let socket = dir.join("rsyslog.sock");
    std::fs::write(
        dir.join("rsyslog.conf"),
        format!(
            "global(workDirectory=\"{d}\")\nmodule(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{sock}\")\n\
             if $programname == 'viatcp' then action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{tcp}\" protocol=\"tcp\" \
             TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\")\n\
             if $programname == 'viaudp' then action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{udp}\" protocol=\"udp\" \
             template=\"RSYSLOG_TraditionalForwardFormat\")\n",
            d = dir.display(),
            sock = socket.display(),
        ),
    )
    .unwrap();
    let mut rsyslogd = Command::new(client_bin("rsyslogd"))
        .arg("-n")
        .arg("-f")
        .arg(dir.join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.join("rsyslog.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rsyslogd");
    let ready = wait_until(WAIT, || socket.exists());
    if !ready {
        let _ = rsyslogd.kill();
        let out = rsyslogd.wait_with_output().unwrap();
        panic!(
            "rsyslogd made no socket: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let sock = socket.display().to_string();
    let log = |tag: &str, prio: &str, msg: &str| {
        let out = Command::new(client_bin("logger"))
            .args(["-u", &sock, "-i", "-t", tag, "-p", prio, msg])
            .output()
            .expect("run logger");
        assert!(out.status.success(), "{out:?}");
    };
    log(
        "viatcp",
        "auth.warning",
        "Failed password for root from 10.0.0.9",
    );
    log("viaudp", "cron.info", "job done");
    let tcp_doc = wait_docs(&redis, &agent, "@appname:{viatcp}", 1);
    let udp_doc = wait_docs(&redis, &agent, "@appname:{viaudp}", 1);
    let _ = rsyslogd.kill();
    let _ = rsyslogd.wait();
    let host = hostname();
    let d = &tcp_doc[0];
    assert_eq!(
        (&d["severity"], &d["facility"], &d["host"], &d["message"]),
        (
            &Value::from("warning"),
            &Value::from("auth"),
            &Value::from(host.as_str()),
            &Value::from("Failed password for root from 10.0.0.9")
        )
    );
    assert!(d["procid"].as_str().unwrap().parse::<u32>().is_ok(), "{d}");
    let (ts, recv) = (
        d["timestamp"].as_i64().unwrap(),
        d["received"].as_i64().unwrap(),
    );
    assert!(
        (0..5_000).contains(&(recv - ts)),
        "its own time, in ms: {d}"
    );
    let d = &udp_doc[0];
    assert_eq!(
        (&d["severity"], &d["facility"], &d["host"], &d["message"]),
        (
            &Value::from("info"),
            &Value::from("cron"),
            &Value::from(host.as_str()),
            &Value::from("job done")
        )
    );
}

/// busybox `syslogd -R`, what small routers run: RFC 3164 over UDP without a host name.
/// It listens on /dev/log only, so it runs in a mount namespace of its own whose /dev is
/// a scratch directory (with /dev/null bound into it).
#[test]
fn busybox_syslogd_forwards_as_a_router_does() {
    let redis = Server::stack(&[]);
    let udp = free_udp_port();
    let s = Scratch::new();
    let agent = Agent::start(&config(&s, &redis, &[format!("udp://127.0.0.1:{udp}")], ""));
    let (lines, found) = agent.wait_for(WAIT, |l| l.contains("syslog: listening on"));
    assert!(found, "{}", lines.join("\n"));
    let dev = s.dir.path().join("dev");
    std::fs::create_dir(&dev).unwrap();
    let bb = client_bin("busybox").display().to_string();
    let script = format!(
        "set -e; touch {dev}/null; mount --bind /dev/null {dev}/null; mount --bind {dev} /dev; \
         {bb} syslogd -n -R 127.0.0.1:{udp} & P=$!; \
         for i in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done; \
         {bb} logger -t dnsmasq -p daemon.err 'query[A] example.org from 10.0.0.2'; \
         {bb} logger 'no tag given'; sleep 1; kill $P",
        dev = dev.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    assert!(out.status.success(), "busybox in a namespace: {out:?}");
    let d = &wait_docs(&redis, &agent, "@appname:{dnsmasq}", 1)[0];
    assert_eq!(
        (&d["severity"], &d["facility"], &d["host"], &d["message"]),
        (
            &Value::from("err"),
            &Value::from("daemon"),
            &Value::from(""),
            &Value::from("query[A] example.org from 10.0.0.2")
        )
    );
    let d = &wait_docs(&redis, &agent, "@message:tag", 1)[0];
    assert_eq!(
        (&d["appname"], &d["message"]),
        (&Value::from("root"), &Value::from("no tag given"))
    );
}

/// `mqtt` with `logs: true` publishes each record as its JSON document under
/// `<topic_prefix>/logs/<sender's host>`, beside the samples; a real Mosquitto and
/// `mosquitto_sub` read them back.
#[cfg(feature = "mqtt")]
#[test]
fn mqtt_publishes_log_records_when_asked() {
    use support::mosquitto::{Broker, Sub};
    let broker = Broker::anonymous();
    let sub = Sub::start(&broker, &["-t", "rtcollector/mqhost/logs/#"]);
    let udp = free_udp_port();
    let s = Scratch::new();
    let config = s.config(&format!(
        "hostname: mqhost\ninterval: 1s\nflush_interval: 1s\ninputs:\n  - syslog:\n      \
         server: \"udp://127.0.0.1:{udp}\"\noutputs:\n  - mqtt:\n      port: {}\n      logs: true\n",
        broker.port
    ));
    let agent = Agent::start(&config);
    let (lines, found) = agent.wait_for(WAIT, |l| l.contains("syslog: listening on"));
    assert!(found, "{}", lines.join("\n"));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let got = sub.until(Duration::from_secs(2), |m| m.topic.contains("/logs/"));
    assert!(got.is_empty(), "nothing before a message: {got:?}");
    sock.send_to(
        b"<11>1 - gw.lan hostapd - - - wlan0: STA left",
        ("127.0.0.1", udp),
    )
    .unwrap();
    let got = sub.until(WAIT, |m| m.topic.contains("/logs/"));
    let msg = got
        .iter()
        .find(|m| m.topic == "rtcollector/mqhost/logs/gw.lan")
        .unwrap_or_else(|| {
            panic!(
                "{got:?}\nagent:\n{}\nbroker:\n{}",
                agent.drain().join("\n"),
                broker.log()
            )
        });
    assert!(!msg.retained);
    let doc: Value = serde_json::from_str(&msg.payload).unwrap();
    assert_eq!(
        (
            &doc["severity"],
            &doc["facility"],
            &doc["appname"],
            &doc["message"]
        ),
        (
            &Value::from("err"),
            &Value::from("user"),
            &Value::from("hostapd"),
            &Value::from("wlan0: STA left")
        )
    );
}

//! The application inputs (`exec`, `redis`, `docker`) through the built binary: `--once` with
//! the stdout output as JSON, or a running agent, asserting exact values.
//!
//! `redis` runs against real servers: Debian's redis-server (`/usr/bin/redis-server`) and,
//! for TLS, Redis Stack (`RTC_REDIS_STACK_DIR`, see tests/support/mod.rs); it fails, never
//! skips, without them. `docker` runs against a small HTTP server on a unix socket in this
//! file, serving recorded Docker Engine API answers from tests/fixtures/docker/.

mod support;

use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use support::agent::{once_samples, Agent};
use support::samples::value;
use support::scratch::{fixture, Scratch};

fn config(inputs: &str, extra: &str) -> String {
    format!(
        "hostname: testbox\ninterval: 10s\n{extra}inputs:\n{inputs}outputs:\n  - stdout:\n      format: json\n"
    )
}

/// Runs `--once` on `inputs`; returns the samples and the log (stderr).
fn once(inputs: &str) -> (BTreeMap<String, serde_json::Value>, String) {
    let s = Scratch::new();
    once_samples(&s.config(&config(inputs, "")))
}

/// An executable script `name` in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn threads(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------------- exec

#[test]
fn exec_once_reads_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let lines = script(
        dir.path(),
        "lines.sh",
        "echo 'cpu_temp 72.4 source=exec zone=cpu'\necho 'garbage here'\necho 'fan_rpm 1200'\n",
    );
    let json = script(
        dir.path(),
        "json.sh",
        "echo '{\"metrics\": {\"disk_used\": 81, \"ok\": true}, \"logs\": [{\"message\": \"disk check done\", \"level\": \"warning\"}]}'\n",
    );
    let (got, log) = once(&format!(
        "  - exec:\n      commands: ['{lines}']\n      data_format: metrics\n  - exec:\n      commands: [['{json}']]\n"
    ));
    assert_eq!(
        value(
            &got,
            &format!("cpu_temp{{cmd={lines},source=exec,zone=cpu}}")
        ),
        72.4
    );
    assert_eq!(
        value(&got, &format!("fan_rpm{{cmd={lines},source=exec}}")),
        1200.0
    );
    assert_eq!(
        value(&got, &format!("exec_malformed_lines{{cmd={lines}}}")),
        1.0
    );
    assert_eq!(
        value(&got, &format!("disk_used{{cmd={json},source=exec}}")),
        81.0
    );
    assert_eq!(value(&got, &format!("ok{{cmd={json},source=exec}}")), 1.0);
    assert_eq!(
        value(&got, &format!("exec_malformed_lines{{cmd={json}}}")),
        0.0
    );
    assert_eq!(
        got[&format!("fan_rpm{{cmd={lines},source=exec}}")]["labels"]["host"],
        "testbox"
    );
    assert!(
        log.contains(&format!("exec `{json}`: disk check done")),
        "the JSON document's log entry goes to the agent log: {log}"
    );
    assert!(
        log.contains("1 malformed line(s) skipped; the first, line 2"),
        "{log}"
    );
}

#[test]
fn exec_hung_command_does_not_hold_up_other_inputs_and_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let hang = script(dir.path(), "hang.sh", "echo 'never 1'\nexec sleep 600\n");
    let tick = script(dir.path(), "tick.sh", "echo 'tick 1'\n");
    let s = Scratch::new();
    let path = s.config(&config(
        &format!(
            "  - exec:\n      commands: ['{hang}']\n      data_format: metrics\n      timeout: 4s\n      interval: 10s\n\
             \x20 - exec:\n      commands: ['{tick}']\n      data_format: metrics\n      interval: 500ms\n"
        ),
        // Flushed as often as the quick input collects: with the default (the 10 s
        // interval), an agent started just before a 10 s boundary writes the quick input's
        // samples only after the hung command is killed, and the test saw one.
        "flush_interval: 500ms\n",
    ));
    let agent = Agent::start(&path);
    // While the first command hangs, the other input keeps its 500 ms schedule: three
    // collections with different timestamps arrive before the hung one is killed at 4 s.
    let stamps = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let (lines, ok) = agent.wait_for(Duration::from_secs(30), |l| {
        if l.contains("still running after timeout") {
            return true;
        }
        if let Some(json) = l.strip_prefix("OUT ") {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            if v["name"] == "tick" {
                stamps
                    .borrow_mut()
                    .insert(v["timestamp_ms"].as_i64().unwrap());
            }
        }
        false
    });
    assert!(ok, "{lines:#?}");
    assert!(
        stamps.borrow().len() >= 3,
        "the quick input ran {} times while the other hung: {lines:#?}",
        stamps.borrow().len()
    );
    assert!(
        !lines.iter().any(|l| l.contains("\"never\"")),
        "a killed command's output is dropped"
    );
    // The killed `sleep` is gone: no child of the agent runs it any more.
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", agent.child.id()))
            .unwrap_or_default();
    for pid in children.split_whitespace() {
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!cmdline.contains("600"), "still running: {cmdline}");
    }
}

/// A full series table (`max_series`) is said once with the count when an input starts
/// losing new series, and once more, with the streak's total, when all fit again.
#[test]
fn exec_series_beyond_max_series_are_logged_once_per_streak() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    // Collection 1: one series (and exec's own three); 2 and 3: 30 new names each;
    // from 4 on: the known one only.
    let names = script(
        dir.path(),
        "names.sh",
        &format!(
            "n=$(($(cat {c} 2>/dev/null || echo 0) + 1)); echo $n > {c}\necho 'known 1'\n\
             if [ $n -eq 2 ] || [ $n -eq 3 ]; then i=0; while [ $i -lt 30 ]; do echo \"new_${{n}}_$i 1\"; i=$((i+1)); done; fi\n",
            c = count.display()
        ),
    );
    let s = Scratch::new();
    let text = config(
        &format!("  - exec:\n      commands: ['{names}']\n      data_format: metrics\n"),
        "max_series: 10\n",
    )
    .replace("interval: 10s", "interval: 500ms");
    let mut agent = Agent::start(&s.config(&text));
    let (lines, ok) = agent.wait_for(Duration::from_secs(20), |l| {
        l.contains("fit in the series table again")
    });
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(6));
    assert!(ok, "{lines:#?}");
    let full: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("series table is full"))
        .collect();
    assert_eq!(full.len(), 1, "{lines:#?}");
    // Collection 2 had room for 6 of its 30 (10 - known - exec's three).
    assert!(
        full[0].contains("[WARN] input exec: the series table is full (max_series: 10): 24 samples of new series dropped;"),
        "{full:?}"
    );
    let again: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("fit in the series table again"))
        .collect();
    assert_eq!(again.len(), 1, "{lines:#?}");
    assert!(
        again[0].contains("[INFO] input exec: all its series fit in the series table again (54 samples of new series were dropped while it was full)"),
        "{again:?}"
    );
}

#[test]
fn exec_keeps_the_agent_at_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let tick = script(dir.path(), "tick.sh", "echo 'tick 1'\n");
    let s = Scratch::new();
    let path = s.config(&config(
        &format!("  - exec:\n      commands: ['{tick}']\n      data_format: metrics\n"),
        "",
    ));
    let path = {
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("interval: 10s", "interval: 200ms");
        s.config(&text)
    };
    let mut agent = Agent::start(&path);
    let count = std::cell::Cell::new(0);
    let (lines, ok) = agent.wait_for(Duration::from_secs(10), |l| {
        if l.contains("\"tick\"") {
            count.set(count.get() + 1);
        }
        count.get() >= 3
    });
    assert!(ok, "{lines:#?}");
    assert_eq!(
        threads(agent.child.id()),
        2,
        "commands ran, no reaper thread"
    );
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(6));
}

// --------------------------------------------------------------------------------- redis

/// `redis` input options for a local server on `port`.
fn redis_input(port: u16, extra: &str) -> String {
    format!("  - redis:\n      host: 127.0.0.1\n      port: {port}\n{extra}")
}

#[test]
fn redis_once_reports_info_and_keyspace() {
    let server = support::redis_server::Server::plain(&[]);
    {
        let mut c = server.client();
        for args in [
            &["SET", "a", "1"][..],
            &["SET", "b", "2", "EX", "3600"],
            &["SET", "c", "3"],
            &["SELECT", "5"],
            &["SET", "x", "1"],
            &["SET", "y", "2"],
        ] {
            let _: redis::Value = support::redis_server::query(&mut c, args);
        }
    } // the admin connection is closed: the agent is the only client
    let (got, log) = once(&redis_input(
        server.port,
        "      metrics: [connected_clients, used_memory, total_commands_processed, role]\n",
    ));
    let port = server.port;
    let l = |db: &str| format!("{{db={db},port={port},server=127.0.0.1}}");
    assert_eq!(
        value(&got, &format!("redis_keyspace_keys{}", l("db0"))),
        3.0
    );
    assert_eq!(
        value(&got, &format!("redis_keyspace_expires{}", l("db0"))),
        1.0
    );
    assert_eq!(
        value(&got, &format!("redis_keyspace_keys{}", l("db5"))),
        2.0
    );
    assert_eq!(
        value(&got, &format!("redis_keyspace_expires{}", l("db5"))),
        0.0
    );
    let s = format!("{{port={port},server=127.0.0.1}}");
    assert_eq!(value(&got, &format!("redis_connected_clients{s}")), 1.0);
    assert!(value(&got, &format!("redis_used_memory{s}")) > 0.0);
    assert!(value(&got, &format!("redis_total_commands_processed{s}")) >= 6.0);
    assert_eq!(
        value(&got, &format!("redis_replication_connected_slaves{s}")),
        0.0
    );
    assert!(!got.contains_key(&format!("redis_role{s}")));
    assert!(
        log.contains("INFO field `role` is `master`, not a number; not written"),
        "{log}"
    );
    assert!(
        !got.keys().any(|k| k.starts_with("redis_uptime")),
        "only the selected fields"
    );
}

#[test]
fn redis_acl_user_needs_only_info_and_errors_are_clear() {
    let server = support::redis_server::Server::plain(&[]);
    {
        let mut c = server.client();
        let _: redis::Value = support::redis_server::query(
            &mut c,
            &[
                "ACL",
                "SETUSER",
                "metrics",
                "on",
                ">s3cret-pw",
                "-@all",
                "+info",
            ],
        );
        let _: redis::Value = support::redis_server::query(
            &mut c,
            &[
                "ACL",
                "SETUSER",
                "noinfo",
                "on",
                ">s3cret-pw",
                "-@all",
                "+ping",
            ],
        );
    }
    let port = server.port;
    let (got, log) = once(&redis_input(
        port,
        "      username: metrics\n      password: s3cret-pw\n      metrics: [connected_clients]\n",
    ));
    assert_eq!(
        value(
            &got,
            &format!("redis_connected_clients{{port={port},server=127.0.0.1}}")
        ),
        1.0,
        "{log}"
    );

    let (got, log) = once(&redis_input(
        port,
        "      username: noinfo\n      password: s3cret-pw\n",
    ));
    assert!(got.keys().all(|k| !k.starts_with("redis_")), "{got:?}");
    assert!(
        log.contains(
            "refused INFO (NOPERM): give the user the command, e.g. `ACL SETUSER <user> +info`"
        ),
        "{log}"
    );

    let (_, log) = once(&redis_input(
        port,
        "      username: metrics\n      password: wrong-pw\n",
    ));
    assert!(log.contains("authentication failed"), "{log}");
    assert!(
        !log.contains("wrong-pw") && !log.contains("s3cret"),
        "{log}"
    );
}

#[test]
fn redis_over_tls_with_a_ca_made_at_test_time() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    let ca = support::certs::make_certs(dir, "ca");
    let (_server, tls_port) = support::redis_server::Server::stack_tls(
        &dir.join("ca-server.pem"),
        &dir.join("ca-server.key"),
        Some(&ca),
        "no",
    );
    let (got, log) = once(&format!(
        "  - redis:\n      url: rediss://localhost:{tls_port}\n      ssl_ca_certs: {}\n      metrics: [connected_clients]\n",
        ca.display()
    ));
    assert_eq!(
        value(
            &got,
            &format!("redis_connected_clients{{port={tls_port},server=localhost}}")
        ),
        1.0,
        "{log}"
    );
    // Without the CA the server is not trusted: one clear error, nothing written.
    let (got, log) = once(&format!(
        "  - redis:\n      host: localhost\n      port: {tls_port}\n      ssl: true\n"
    ));
    assert!(got.keys().all(|k| !k.starts_with("redis_")));
    assert!(log.contains("not signed by a trusted CA"), "{log}");
}

// -------------------------------------------------------------------------------- docker

/// A stand-in for the Docker engine: an HTTP/1.1 server on a unix socket answering from
/// tests/fixtures/docker/ (the list with Content-Length, stats chunked, 404 for `oneshot`).
/// Records each request path and the most requests it had in flight at once.
struct FakeEngine {
    dir: tempfile::TempDir,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    max_in_flight: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

const WEB: &str = "3f1c9a7b2e4d5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcd";
const CACHE: &str = "a9e8d7c6b5a4938271605f4e3d2c1b0a99887766554433221100ffeeddccbbaa";

impl FakeEngine {
    fn start() -> FakeEngine {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join("docker.sock"))
            .expect("bind the fake engine's socket");
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let max_in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stats_seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (reqs, max) = (requests.clone(), max_in_flight.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let (reqs, max, in_flight, stats_seen) = (
                    reqs.clone(),
                    max.clone(),
                    in_flight.clone(),
                    stats_seen.clone(),
                );
                std::thread::spawn(move || {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(now, Ordering::SeqCst);
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&req).into_owned();
                    let path = text.split(' ').nth(1).unwrap_or("").to_string();
                    reqs.lock().unwrap().push(path.clone());
                    let fixture = |f: &str| std::fs::read(fixture("docker").join(f)).unwrap();
                    let stats = |f: &str| {
                        // Hold the answer until both stats requests have arrived (or 2 s
                        // passed, when the client sends one at a time), so a client that
                        // sends them together is seen with both in flight.
                        stats_seen.fetch_add(1, Ordering::SeqCst);
                        let until = std::time::Instant::now() + Duration::from_secs(2);
                        while stats_seen.load(Ordering::SeqCst) < 2
                            && std::time::Instant::now() < until
                        {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        let body = fixture(f);
                        let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                        for part in body.chunks(700) {
                            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                            out.extend_from_slice(part);
                            out.extend_from_slice(b"\r\n");
                        }
                        out.extend_from_slice(b"0\r\n\r\n");
                        out
                    };
                    let answer = if path == "/containers/json" {
                        let body = fixture("containers.json");
                        let mut out = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                        out.extend_from_slice(&body);
                        out
                    } else if path == format!("/containers/{WEB}/stats?stream=false") {
                        stats("stats-web.json")
                    } else if path == format!("/containers/{CACHE}/stats?stream=false") {
                        stats("stats-cache.json")
                    } else {
                        let body = format!("{{\"message\":\"No such container: {path}\"}}");
                        format!("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
                    };
                    let _ = conn.write_all(&answer);
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        FakeEngine {
            dir,
            requests,
            max_in_flight,
        }
    }

    fn endpoint(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }
}

#[test]
fn docker_once_reports_containers_like_docker_stats() {
    let engine = FakeEngine::start();
    let (got, log) = once(&format!(
        "  - docker:\n      endpoint: {}\n",
        engine.endpoint()
    ));
    let web = "container_id=3f1c9a7b2e4d,container_image=nginx:1.25-alpine,container_name=web,container_status=running";
    let cache = "container_id=a9e8d7c6b5a4,container_image=redis:7,container_name=cache,container_status=running";
    let v = |name: &str, labels: &str| value(&got, &format!("{name}{{{labels}}}"));
    assert_eq!(v("docker_cpu_percent", web), 5.0);
    assert_eq!(v("docker_cpu_usage_total", web), 41_870_123_000.0);
    assert_eq!(v("docker_cpu_usage_in_usermode", web), 32_760_123_000.0);
    assert_eq!(v("docker_cpu_usage_in_kernelmode", web), 9_110_000_000.0);
    assert_eq!(v("docker_cpu_system", web), 8_650_420_000_000_000.0);
    assert_eq!(v("docker_mem_usage", web), 41_943_040.0);
    assert_eq!(v("docker_mem_limit", web), 536_870_912.0);
    assert_eq!(v("docker_mem_percent", web), 7.8125);
    let eth0 = format!("{web},interface=eth0");
    assert_eq!(v("docker_net_rx_bytes", &eth0), 1_234_567.0);
    assert_eq!(v("docker_net_tx_bytes", &eth0), 7_654_321.0);
    assert_eq!(v("docker_net_rx_packets", &eth0), 8901.0);
    assert_eq!(v("docker_net_tx_packets", &eth0), 6543.0);

    assert_eq!(v("docker_cpu_percent", cache), 20.0);
    assert_eq!(v("docker_mem_usage", cache), 83_886_080.0);
    assert_eq!(v("docker_mem_percent", cache), 3.90625);
    assert_eq!(v("docker_mem_max_usage", cache), 125_829_120.0);
    assert_eq!(v("docker_mem_failcnt", cache), 0.0);
    assert_eq!(v("docker_mem_total_rss", cache), 73_400_320.0);
    assert_eq!(v("docker_mem_total_cache", cache), 31_457_280.0);
    assert_eq!(v("docker_mem_total_pgmajfault", cache), 12.0);
    assert_eq!(
        v("docker_net_rx_dropped", &format!("{cache},interface=eth0")),
        2.0
    );
    assert_eq!(
        v("docker_net_rx_errors", &format!("{cache},interface=eth1")),
        1.0
    );
    assert_eq!(
        v("docker_net_tx_bytes", &format!("{cache},interface=eth1")),
        2048.0
    );

    assert!(
        !got.keys().any(|k| k.contains("oneshot")),
        "the container that went away (404) is skipped"
    );
    assert!(
        !log.contains("WARN"),
        "a container gone since the list is not an error: {log}"
    );
    let reqs = engine.requests.lock().unwrap();
    assert_eq!(reqs.iter().filter(|p| *p == "/containers/json").count(), 1);
    assert!(
        engine
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 2,
        "stats requests run concurrently"
    );
    assert_eq!(
        reqs.len(),
        4,
        "the list, then one stats request per container: {reqs:?}"
    );
}

#[test]
fn docker_stats_requests_stay_within_max_concurrent() {
    let engine = FakeEngine::start();
    let (got, _) = once(&format!(
        "  - docker:\n      endpoint: {}\n      max_concurrent: 1\n",
        engine.endpoint()
    ));
    assert!(got.keys().any(|k| k.starts_with("docker_cpu_percent")));
    assert_eq!(
        engine
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[test]
fn docker_without_an_engine_is_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let (got, log) = once(&format!(
        "  - docker:\n      endpoint: unix://{}\n",
        socket.display()
    ));
    assert!(got.keys().all(|k| !k.starts_with("docker_")));
    let msg = format!(
        "no Docker socket at {}: is the Docker engine installed and running here?",
        socket.display()
    );
    assert_eq!(log.matches(&msg).count(), 1, "{log}");
}

//! The Redis clients through real SOCKS proxies (`socks5_proxy`, `socks4_proxy`): microsocks
//! for SOCKS5 with and without username/password, danted for SOCKS4 and SOCKS5, OpenSSH's
//! `ssh -D` for SOCKS4a (which Dante 1.4 does not implement),
//! against a private Redis Stack. Each test reads the values back from Redis and proves the
//! connection was the proxy's: the socket Redis sees the agent on is held by the proxy's
//! process, and with the proxy stopped the output goes down while Redis is still up.
//!
//! Needs `RTC_REDIS_STACK_DIR` (scripts/setup-redis-stack) and `RTC_SOCKS_BIN_DIR`
//! (scripts/setup-socks); fails, never skips, without them.

mod support;

use rtcollector::core::Sample;
use std::time::{Duration, Instant};
use support::logs::logs_containing;
use support::queued_output::{redistimeseries, QueuedOutput};
use support::redis_server::{query, text, ts_range, Server};
use support::socks::Proxy;

/// 2023-11-14T22:13:20Z, a whole second.
const T0: i64 = 1_700_000_000_000;

/// The agent's own queue and flush loop around a `redistimeseries` output built from `yaml`.
struct Agent(QueuedOutput);

impl Agent {
    fn new(yaml: &str, host: &str) -> Agent {
        Agent(QueuedOutput::new(Box::new(redistimeseries(yaml)), host))
    }

    fn series(&self, name: &str) -> u32 {
        self.0.intern(name, &[])
    }

    fn push(&self, series: u32, from_s: i64, count: i64) {
        let samples: Vec<Sample> = (0..count)
            .map(|k| Sample {
                series,
                ts_ms: T0 + (from_s + k) * 1000,
                value: (from_s + k) as f64 * 1.5,
            })
            .collect();
        self.0.push(&samples);
    }

    fn flush(&mut self) -> bool {
        self.0.flush()
    }

    fn queued(&self) -> usize {
        self.0.queued()
    }
}

/// What `push(series, from_s, count)` wrote, as TS.RANGE returns it.
fn pushed(from_s: i64, count: i64) -> Vec<(i64, f64)> {
    (from_s..from_s + count)
        .map(|k| (T0 + k * 1000, k as f64 * 1.5))
        .collect()
}

/// The agent's connections as Redis sees them (CLIENT LIST): id and source port of each.
fn agent_clients(c: &mut redis::Connection) -> Vec<(u64, u16)> {
    let list: redis::Value = query(c, &["CLIENT", "LIST"]);
    text(&list)
        .lines()
        .filter(|l| l.contains("lib-name=rtcollector"))
        .filter_map(|l| {
            let field = |name: &str| l.split(' ').find_map(|f| f.strip_prefix(name));
            let id = field("id=")?.parse().ok()?;
            let port = field("addr=")?.rsplit(':').next()?.parse().ok()?;
            Some((id, port))
        })
        .collect()
}

/// Writes three samples of a series of its own through `yaml` and asserts they arrived,
/// and that the connection Redis saw the agent on is one the proxy holds.
fn write_through(proxy: &Proxy, server: &Server, yaml: &str, host: &str) {
    let mut c = server.client();
    // Connections of earlier agents may still be closing: only the new one is looked at.
    let before = agent_clients(&mut c);
    let mut agent = Agent::new(yaml, host);
    let id = agent.series("proxied");
    agent.push(id, 0, 3);
    assert!(
        agent.flush(),
        "{host}: the write through the proxy failed: {:?}\nproxy log:\n{}",
        logs_containing("is down"),
        proxy.log()
    );
    assert_eq!(ts_range(&mut c, &format!("proxied:{host}")), pushed(0, 3));
    let new: Vec<(u64, u16)> = agent_clients(&mut c)
        .into_iter()
        .filter(|client| !before.contains(client))
        .collect();
    assert_eq!(
        new.len(),
        1,
        "{host}: one new connection of the agent: {new:?}"
    );
    let port = new[0].1;
    assert!(
        proxy.holds_local_port(port),
        "{host}: Redis sees the agent on port {port}, which is not the proxy's"
    );
}

#[test]
fn socks5_through_microsocks_with_and_without_auth_and_with_remote_dns() {
    let server = Server::stack(&[]);
    let port = server.port;
    let open = Proxy::microsocks();
    let auth = Proxy::microsocks_auth("metrics", "s3cret");
    for (proxy, url, redis_host, host) in [
        (&open, open.url("socks5", ""), "127.0.0.1", "ms-open"),
        (
            &auth,
            auth.url("socks5", "metrics:s3cret@"),
            "127.0.0.1",
            "ms-auth",
        ),
        // Remote DNS: the agent sends the name `localhost`, the proxy resolves it.
        (&open, open.url("socks5h", ""), "localhost", "ms-remote-dns"),
    ] {
        let yaml = format!("host: {redis_host}\nport: {port}\nsocks5_proxy: \"{url}\"\n");
        write_through(proxy, &server, &yaml, host);
    }
    // A proxy that wants a password, asked without one, says so.
    let mut agent = Agent::new(
        &format!(
            "host: 127.0.0.1\nport: {port}\nsocks5_proxy: {}\n",
            auth.url("socks5", "")
        ),
        "ms-noauth",
    );
    let id = agent.series("proxied");
    agent.push(id, 0, 1);
    assert!(!agent.flush());
    let want = format!(
        "SOCKS5 proxy 127.0.0.1:{} wants authentication: set user:password in socks5_proxy",
        auth.port
    );
    assert!(
        !logs_containing(&want).is_empty(),
        "{:?}",
        logs_containing("is down")
    );
}

#[test]
fn a_stopped_proxy_takes_the_output_down_while_redis_is_up() {
    let server = Server::stack(&[]);
    let mut proxy = Proxy::microsocks();
    let yaml = format!(
        "host: 127.0.0.1\nport: {}\nconnect_timeout: 2s\nsocks5_proxy: {}\n",
        server.port,
        proxy.url("socks5", "")
    );
    let mut agent = Agent::new(&yaml, "ms-stopped");
    let id = agent.series("proxied");
    agent.push(id, 0, 2);
    assert!(agent.flush());
    proxy.stop();
    agent.push(id, 2, 2);
    assert!(
        !agent.flush(),
        "the agent's connection went with the proxy: the write must fail"
    );
    assert_eq!(agent.queued(), 2, "nothing lost: the batch stays queued");
    // A fresh connection cannot be made without the proxy, though Redis answers.
    let mut fresh = Agent::new(&yaml, "ms-stopped-fresh");
    let id2 = fresh.series("proxied");
    fresh.push(id2, 0, 1);
    assert!(!fresh.flush());
    let want = format!(
        "cannot connect to SOCKS5 proxy 127.0.0.1:{}: Connection refused",
        proxy.port
    );
    assert!(
        !logs_containing(&want).is_empty(),
        "{:?}",
        logs_containing("is down")
    );
    let mut c = server.client();
    assert_eq!(ts_range(&mut c, "proxied:ms-stopped"), pushed(0, 2));
}

#[test]
fn socks4_socks5_and_socks5h_through_dante() {
    let server = Server::stack(&[]);
    let port = server.port;
    let proxy = Proxy::dante();
    for (key, scheme, redis_host, host) in [
        ("socks4_proxy", "socks4", "127.0.0.1", "dante-4"),
        ("socks5_proxy", "socks5", "127.0.0.1", "dante-5"),
        ("socks5_proxy", "socks5h", "localhost", "dante-5h"),
    ] {
        let yaml = format!(
            "host: {redis_host}\nport: {port}\n{key}: {}\n",
            proxy.url(scheme, "")
        );
        write_through(&proxy, &server, &yaml, host);
    }
    // danted logged each connection it made to Redis.
    let log = proxy.log();
    let to_redis = log
        .lines()
        .filter(|l| l.contains("pass(1): tcp/connect") && l.contains(&format!("127.0.0.1.{port}")))
        .count();
    assert_eq!(to_redis, 3, "danted's connections to Redis:\n{log}");
}

#[test]
fn a_wrong_proxy_password_is_a_clear_error_and_the_batch_waits_for_the_right_one() {
    let server = Server::stack(&[]);
    let mut proxy = Proxy::microsocks_auth("metrics", "right-one");
    let mut agent = Agent::new(
        &format!(
            "host: 127.0.0.1\nport: {}\nconnect_timeout: 2s\nsocks5_proxy: \"socks5://metrics:Hunter2Wrong@127.0.0.1:{}\"\n",
            server.port, proxy.port
        ),
        "wrongpass",
    );
    let id = agent.series("proxied");
    agent.push(id, 0, 5);
    assert!(!agent.flush());
    assert_eq!(agent.queued(), 5, "nothing lost: the batch stays queued");
    let want = format!(
        "output redistimeseries is down: SOCKS5 proxy 127.0.0.1:{} refused the username/password (user `metrics`)",
        proxy.port
    );
    assert!(
        !logs_containing(&want).is_empty(),
        "{:?}",
        logs_containing("is down")
    );
    assert!(
        logs_containing("Hunter2Wrong").is_empty(),
        "the password is in a log line"
    );
    agent.push(id, 5, 5);
    assert!(!agent.flush());

    // The proxy now takes the agent's password: the buffered samples arrive with their own
    // timestamps.
    proxy.restart_with_auth("metrics", "Hunter2Wrong");
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
    let mut c = server.client();
    assert_eq!(ts_range(&mut c, "proxied:wrongpass"), pushed(0, 10));
}

/// The `redis` input, through the built binary, reads INFO through a SOCKS4 proxy.
#[cfg(feature = "apps")]
#[test]
fn the_redis_input_through_a_socks4_proxy() {
    use support::agent::once_samples;
    use support::samples::value;
    use support::scratch::Scratch;
    let server = Server::plain(&[]);
    {
        let mut c = server.client();
        for key in ["a", "b", "c"] {
            let _: redis::Value = query(&mut c, &["SET", key, "1"]);
        }
    }
    let proxy = Proxy::dante();
    let port = server.port;
    let s = Scratch::new();
    let config = s.config(&format!(
        "hostname: testbox\ninputs:\n  - redis:\n      host: 127.0.0.1\n      port: {port}\n      socks4_proxy: {}\n      metrics: [connected_clients]\noutputs:\n  - stdout:\n      format: json\n",
        proxy.url("socks4", "")
    ));
    let (got, log) = once_samples(&config);
    let l = format!("{{db=db0,port={port},server=127.0.0.1}}");
    assert_eq!(
        value(&got, &format!("redis_keyspace_keys{l}")),
        3.0,
        "{log}"
    );
    let proxy_log = proxy.log();
    assert!(
        proxy_log
            .lines()
            .any(|l| l.contains(&format!("127.0.0.1.{port}"))),
        "danted logged no connection to Redis:\n{proxy_log}"
    );
}

/// TLS goes on top of the proxied stream: the certificate is checked against the Redis
/// host's name, which the proxy resolves (socks5h).
#[cfg(feature = "tls")]
#[test]
fn tls_through_a_socks5_proxy() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    let ca = support::certs::make_certs(dir, "ca");
    let (server, tls_port) = Server::stack_tls(
        &dir.join("ca-server.pem"),
        &dir.join("ca-server.key"),
        Some(&ca),
        "optional",
    );
    let proxy = Proxy::microsocks();
    let yaml = format!(
        "url: rediss://localhost:{tls_port}\nssl_ca_certs: {}\nsocks5_proxy: {}\n",
        ca.display(),
        proxy.url("socks5h", "")
    );
    write_through(&proxy, &server, &yaml, "ms-tls");
}

/// SOCKS4a (Dante 1.4 lacks it) through OpenSSH's dynamic forwarding: the name `localhost`
/// goes to the proxy, whose sshd resolves it and connects.
#[test]
fn socks4a_and_socks5h_through_ssh_dynamic_forwarding() {
    let server = Server::stack(&[]);
    let proxy = Proxy::ssh();
    for (key, scheme, host) in [
        ("socks4_proxy", "socks4a", "ssh-4a"),
        ("socks5_proxy", "socks5h", "ssh-5h"),
    ] {
        let yaml = format!(
            "host: localhost\nport: {}\n{key}: {}\n",
            server.port,
            proxy.url(scheme, "")
        );
        write_through(&proxy, &server, &yaml, host);
    }
    // sshd was asked for the name, not an address the agent had resolved.
    let log = proxy.log();
    let asked = format!("target localhost port {}", server.port);
    assert_eq!(log.matches(&asked).count(), 2, "`{asked}` twice in:\n{log}");
}

/// A proxy that accepts the connection and never answers: the handshake is inside
/// `connect_timeout`, and the message names the proxy.
#[test]
fn a_proxy_that_never_answers_is_bounded_by_connect_timeout() {
    // Connections complete in the kernel's backlog; nothing ever reads or answers them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = silent.local_addr().unwrap().port();
    let mut agent = Agent::new(
        &format!(
            "host: 127.0.0.1\nport: 6379\nconnect_timeout: 500ms\nsocks5_proxy: socks5://127.0.0.1:{proxy_port}\n"
        ),
        "silent",
    );
    let id = agent.series("proxied");
    agent.push(id, 0, 1);
    assert!(!agent.flush());
    assert_eq!(agent.queued(), 1);
    let want = format!(
        "no connection to 127.0.0.1:6379 through SOCKS5 proxy 127.0.0.1:{proxy_port} within connect_timeout (500ms)"
    );
    assert!(
        !logs_containing(&want).is_empty(),
        "{:?}",
        logs_containing("is down")
    );
}

/// The built agent with a wrong proxy password: the down line names the proxy and the user,
/// no line holds the password, and once the config is fixed by SIGHUP every sample collected
/// meanwhile arrives with its own timestamp, without a gap.
#[test]
fn the_agent_with_a_wrong_proxy_password_keeps_its_samples_until_a_reload_fixes_it() {
    use nix::sys::signal::Signal;
    use support::scratch::{fixture, Scratch};
    let server = Server::stack(&[]);
    let proxy = Proxy::microsocks_auth("metrics", "right-one");
    let s = Scratch::new();
    let config = |password: &str| {
        format!(
            "hostname: wrongproxy\ninterval: 1s\nflush_interval: 1s\nprocfs_root: {}\ninputs: [linux_mem]\noutputs:\n  - redistimeseries:\n      host: 127.0.0.1\n      port: {}\n      socks5_proxy: \"socks5://metrics:{password}@127.0.0.1:{}\"\n",
            fixture("basic").join("proc").display(),
            server.port,
            proxy.port
        )
    };
    let path = s.config(&config("Hunter2Wrong"));
    let agent = support::agent::Agent::start(&path);
    let (lines, down) = agent.wait_for(Duration::from_secs(15), |l| l.contains("is down"));
    assert!(down, "{lines:#?}");
    let want = format!(
        "output redistimeseries is down: SOCKS5 proxy 127.0.0.1:{} refused the username/password (user `metrics`)",
        proxy.port
    );
    assert!(lines.last().unwrap().contains(&want), "{lines:#?}");
    // A few more seconds of samples wait in the buffer.
    std::thread::sleep(Duration::from_secs(3));
    let fixed_at = support::clock::now_ms();
    std::fs::write(&path, config("right-one")).unwrap();
    agent.signal(Signal::SIGHUP);
    let (more, up) = agent.wait_for(Duration::from_secs(20), |l| l.contains("is up again"));
    assert!(up, "{more:#?}");
    for l in lines.iter().chain(&more) {
        assert!(
            !l.contains("Hunter2Wrong") && !l.contains("right-one"),
            "{l}"
        );
    }
    let mut c = server.client();
    let wait_until = Instant::now() + Duration::from_secs(10);
    let stamps = loop {
        let got: Vec<i64> = ts_range(&mut c, "mem_total_bytes:wrongproxy")
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        if got.last().is_some_and(|&t| t >= fixed_at) || Instant::now() > wait_until {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let before_fix: Vec<i64> = stamps.iter().copied().filter(|&t| t < fixed_at).collect();
    assert!(
        before_fix.len() >= 3,
        "the samples of the outage arrived: {stamps:?} (fixed at {fixed_at})"
    );
    let gaps: Vec<&[i64]> = before_fix
        .windows(2)
        .filter(|w| w[1] - w[0] != 1000)
        .collect();
    assert!(gaps.is_empty(), "1 s ticks without a gap: {stamps:?}");
}

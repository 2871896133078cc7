//! Log records end to end: messages/s from UDP and from TCP through the built agent's
//! `syslog` input into a local Redis Stack through the `redissearch` output, the agent's CPU
//! per 1000 messages, and its RSS while messages wait during an outage (10 000 on disk, and
//! the default 2 MiB log buffer full in memory with no usable disk).
//!
//! ```sh
//! export RTC_REDIS_STACK_DIR="$(scripts/setup-redis-stack)"
//! cargo bench --bench syslog                       # N=100000 messages per transport
//! RTC_BENCH_MESSAGES=20000 cargo bench --bench syslog
//! ```
//!
//! The agent is the release binary (`target/release/rtcollector`, as `cargo bench` builds
//! it); its CPU time comes from /proc/<pid>/stat, so the sender and Redis are not counted.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::env_or;
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use support::agent::Agent;
use support::ports::{free_port, free_udp_port};
use support::redis_server::Server;
use support::scratch::Scratch;
use support::wait::wait_until;

/// A message of about 120 bytes, as routers write them.
fn message(i: usize) -> String {
    format!("<30>1 2026-12-06T10:00:00.000Z router dnsmasq 812 - - query[A] host{i}.example.org from 192.168.1.{}", i % 250)
}

/// The agent's user + system CPU time so far, in clock ticks.
fn cpu_ticks(agent: &Agent) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", agent.pid())).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15; after "pid (comm) " the list starts at field 3.
    n(11) + n(12)
}

fn rss_kib(agent: &Agent) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", agent.pid()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn docs(redis: &Server) -> u64 {
    let mut con = redis.client();
    redis::cmd("DBSIZE").query::<u64>(&mut con).unwrap_or(0)
}

fn start(s: &Scratch, redis: &Server, udp: u16, tcp: u16, extra: &str) -> Agent {
    let config = s.config(&format!(
        "hostname: bench\ninterval: 1s\nflush_interval: 1s\n{extra}inputs:\n  - syslog:\n      server: \"udp://127.0.0.1:{udp}\"\n  \
         - syslog:\n      server: \"tcp://127.0.0.1:{tcp}\"\noutputs:\n  - redissearch:\n      port: {}\n",
        redis.port
    ));
    let agent = Agent::start(&config);
    assert!(
        wait_until(Duration::from_secs(30), || TcpStream::connect((
            "127.0.0.1",
            tcp
        ))
        .is_ok()),
        "the agent does not listen: {}",
        agent.drain().join("\n")
    );
    agent
}

/// Waits until Redis holds `want` keys more than `base`, or their count has not grown for
/// 3 s (datagrams lost on the way); returns the messages/s from `t0` to the last growth,
/// the agent's CPU ms per 1000 messages, and how many arrived.
fn measure(
    redis: &Server,
    agent: &Agent,
    base: u64,
    want: u64,
    t0: Instant,
    cpu0: u64,
) -> (f64, f64, u64) {
    let (mut last, mut grew_at, mut cpu_at) = (0, Instant::now(), cpu_ticks(agent));
    loop {
        let got = docs(redis) - base;
        if got > last {
            (last, grew_at, cpu_at) = (got, Instant::now(), cpu_ticks(agent));
        }
        if got >= want || grew_at.elapsed() > Duration::from_secs(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = grew_at.duration_since(t0).as_secs_f64();
    let hz = 100.0; // USER_HZ on Linux
    let cpu_ms = (cpu_at - cpu0) as f64 * 1000.0 / hz;
    (
        last as f64 / elapsed,
        cpu_ms * 1000.0 / last.max(1) as f64,
        last,
    )
}

fn main() {
    let n: usize = env_or("RTC_BENCH_MESSAGES", 100_000);
    let redis = Server::stack(&[]);
    let s = Scratch::new();
    let (udp, tcp) = (free_udp_port(), free_port());
    let agent = start(&s, &redis, udp, tcp, "");

    // TCP, octet-counted, one connection, as fast as the agent reads.
    let (t0, cpu0, base) = (Instant::now(), cpu_ticks(&agent), docs(&redis));
    let mut conn = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let mut out = Vec::with_capacity(1 << 20);
    for i in 0..n {
        let m = message(i);
        let _ = write!(out, "{} {m}", m.len());
        if out.len() > 1 << 19 {
            conn.write_all(&out).unwrap();
            out.clear();
        }
    }
    conn.write_all(&out).unwrap();
    let (rate, cpu, got) = measure(&redis, &agent, base, n as u64, t0, cpu0);
    println!(
        "tcp: {got} messages, {rate:.0} messages/s end to end, agent CPU {cpu:.1} ms per 1000"
    );

    // UDP, paced: a datagram that finds the socket's receive buffer full is lost.
    let (t0, cpu0, base) = (Instant::now(), cpu_ticks(&agent), docs(&redis));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Paced at about 25 000 a second (sends of 125 every 5 ms).
    for i in 0..n {
        let _ = sock.send_to(message(n + i).as_bytes(), ("127.0.0.1", udp));
        if i % 125 == 124 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let (rate, cpu, got) = measure(&redis, &agent, base, n as u64, t0, cpu0);
    println!("udp: {got} of {n} messages arrived, {rate:.0} messages/s end to end, agent CPU {cpu:.1} ms per 1000");
    drop(agent);

    // An outage: 10 000 messages wait (to disk, as the ring fills or a flush fails).
    let mut redis = redis;
    let s2 = Scratch::new();
    let (udp, tcp) = (free_udp_port(), free_port());
    let agent = start(&s2, &redis, udp, tcp, "");
    let idle = rss_kib(&agent);
    redis.stop();
    let mut conn = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    for i in 0..10_000 {
        let m = message(i);
        write!(conn, "{} {m}", m.len()).unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    println!(
        "outage: RSS {idle} KiB idle, {} KiB with 10 000 messages waiting (on disk)",
        rss_kib(&agent)
    );
    drop(agent);

    // The default log buffer (2 MiB) full in memory: no usable disk.
    let s3 = Scratch::new();
    let blocked = s3.write("not-a-dir", "");
    let (udp, tcp) = (free_udp_port(), free_port());
    let agent = start(
        &s3,
        &redis,
        udp,
        tcp,
        &format!("buffer_dir: {}/buffer\n", blocked.display()),
    );
    let idle = rss_kib(&agent);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..60_000 {
        let _ = sock.send_to(message(i).as_bytes(), ("127.0.0.1", udp));
        if i % 500 == 499 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    println!(
        "memory only: RSS {idle} KiB idle, {} KiB with the 2 MiB log buffer full (60 000 messages sent, the oldest dropped)",
        rss_kib(&agent)
    );
}

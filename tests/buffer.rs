//! The outage buffer end to end: the built agent collecting every second into a private
//! Redis Stack that is stopped and started, the agent SIGKILLed or SIGTERMed mid-outage,
//! and read back from Redis. The no-gap test has the 60 s outage; the others last
//! ~10 s to keep CI short: what they test does not depend on the length.
//!
//! Needs `RTC_REDIS_STACK_DIR` (see tests/support/mod.rs); fails, never skips, without it.

mod support;

use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::agent::{run, stderr, stdout, Agent};
use support::clock::now_ms;
use support::redis_server::{query, ts_range, Server};
use support::scratch::{fixture, Scratch};
use support::wait::wait_until;

/// Redis with an append-only file synced on every write: a restart keeps what was written
/// before the outage, so the whole run can be checked for gaps.
fn durable_redis() -> Server {
    Server::stack(&["--appendonly", "yes", "--appendfsync", "always"])
}

fn config(s: &Scratch, host: &str, port: u16) -> (PathBuf, PathBuf) {
    let buffer = s.dir.path().join("buffer");
    let procfs = fixture("basic").join("proc");
    let path = s.config(&format!(
        "hostname: {host}\ninterval: 1s\nflush_interval: 1s\nprocfs_root: {}\nbuffer_dir: {}\nbuffer_sync_interval: 1s\ninputs: [linux_mem]\noutputs:\n  - redistimeseries:\n      url: redis://127.0.0.1:{port}/\n",
        procfs.display(),
        buffer.display()
    ));
    (path, buffer.join("redistimeseries"))
}

/// Timestamps of `mem_total_bytes` for `host` in Redis (empty while it is down).
fn stamps(server: &Server, host: &str) -> Vec<i64> {
    let Ok(client) = redis::Client::open(server.url()) else {
        return Vec::new();
    };
    let Ok(mut c) = client.get_connection() else {
        return Vec::new();
    };
    let key = format!("mem_total_bytes:{host}");
    let exists: i64 = query(&mut c, &["EXISTS", &key]);
    if exists == 0 {
        return Vec::new();
    }
    ts_range(&mut c, &key).into_iter().map(|(t, _)| t).collect()
}

/// Polls until Redis holds a sample stamped at or after `ts`.
fn wait_for_stamp(server: &Server, host: &str, ts: i64, timeout: Duration) -> Vec<i64> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = stamps(server, host);
        if got.last().is_some_and(|&t| t >= ts) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The gaps (missing 1 s ticks) between `from` and `to`, inclusive.
fn missing(got: &[i64], from: i64, to: i64) -> Vec<i64> {
    let first = from.div_euclid(1000) * 1000 + 1000;
    (first..=to)
        .step_by(1000)
        .filter(|t| got.binary_search(t).is_err())
        .collect()
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_60s_outage_is_replayed_from_disk_with_original_timestamps_and_no_gap() {
    let s = Scratch::new();
    let mut server = durable_redis();
    let host = "outage";
    let (path, buffer) = config(&s, host, server.port);
    let agent = Agent::start(&path);
    let first = wait_for_stamp(&server, host, 0, Duration::from_secs(10));
    assert!(!first.is_empty(), "the agent writes while Redis is up");

    server.stop();
    let stopped = now_ms();
    assert!(
        wait_until(Duration::from_secs(5), || segment_files(&buffer) > 0),
        "during the outage samples go to {}",
        buffer.display()
    );
    // The outage: a minute of collecting every second with Redis down.
    std::thread::sleep(Duration::from_secs(60));
    server.restart();
    let restarted = now_ms();
    let got = wait_for_stamp(&server, host, restarted + 2000, Duration::from_secs(60));
    let lost = missing(&got, first[0], restarted + 2000);
    assert!(
        lost.is_empty(),
        "every second from the first sample through the outage (stopped at {stopped}, back at {restarted}) is in Redis; missing {lost:?}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || segment_files(&buffer) == 0),
        "a drained buffer leaves no segment"
    );
    let lines = agent.drain();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("writing buffered samples to")),
        "{lines:#?}"
    );
}

#[test]
fn samples_buffered_before_a_sigkill_arrive_after_the_restart() {
    let s = Scratch::new();
    let mut server = durable_redis();
    let host = "killed";
    let (path, buffer) = config(&s, host, server.port);
    let mut agent = Agent::start(&path);
    let first = wait_for_stamp(&server, host, 0, Duration::from_secs(10));
    assert!(!first.is_empty());
    server.stop();
    std::thread::sleep(Duration::from_secs(6));
    assert!(segment_files(&buffer) > 0);
    agent.signal(Signal::SIGKILL);
    let killed = now_ms();
    agent.wait_exit(Duration::from_secs(5)).expect("killed");
    drop(agent);

    let _agent = Agent::start(&path);
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    // What was collected more than the sync interval (1 s) plus one flush (1 s) before the
    // kill was on disk.
    let must_have = killed - 2000;
    let got = wait_for_stamp(&server, host, killed + 3000, Duration::from_secs(60));
    let lost = missing(&got, first[0], must_have);
    assert!(
        lost.is_empty(),
        "missing {lost:?} of those before {must_have}"
    );
}

#[test]
fn sigterm_during_an_outage_persists_memory_and_a_restart_delivers_everything() {
    let s = Scratch::new();
    let mut server = durable_redis();
    let host = "termed";
    let (path, buffer) = config(&s, host, server.port);
    let mut agent = Agent::start(&path);
    let first = wait_for_stamp(&server, host, 0, Duration::from_secs(10));
    assert!(!first.is_empty());
    server.stop();
    std::thread::sleep(Duration::from_secs(5));
    agent.signal(Signal::SIGTERM);
    let termed = now_ms();
    let (status, _) = agent.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(status.success());
    drop(agent);
    assert!(segment_files(&buffer) > 0);

    let out = run(&["buffer", "status", "--config", path.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("output redistimeseries"), "{text}");
    let on_disk: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("samples on disk: "))
        .and_then(|n| n.parse().ok())
        .expect("a sample count");
    assert!(on_disk >= 4 * 3, "{text}");

    let _agent = Agent::start(&path);
    std::thread::sleep(Duration::from_secs(1));
    server.restart();
    let got = wait_for_stamp(&server, host, termed + 3000, Duration::from_secs(60));
    // Every tick up to the last one collected before SIGTERM.
    let lost = missing(&got, first[0], termed - 1000);
    assert!(lost.is_empty(), "missing {lost:?}");
}

/// The "is down" line says where the samples wait: `--once` opens no outage buffer and
/// makes one attempt, a running agent buffers on disk and retries.
#[test]
fn the_down_line_tells_what_happens_to_the_samples_with_and_without_once() {
    let s = Scratch::new();
    let mut server = durable_redis();
    let port = server.port;
    server.stop();
    let (path, buffer) = config(&s, "downline", port);
    let o = run(&["run", "--once", "--config", path.to_str().unwrap()]);
    let log = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{log}");
    let down: Vec<&str> = log.lines().filter(|l| l.contains("is down")).collect();
    assert_eq!(down.len(), 1, "{log}");
    assert!(
        down[0].contains(" samples in memory (this run keeps no outage buffer and does not retry)"),
        "{log}"
    );
    assert!(!log.contains("on disk"), "{log}");
    assert!(!buffer.parent().unwrap().exists(), "--once made buffer_dir");

    let agent = Agent::start(&path);
    let (lines, ok) = agent.wait_for(Duration::from_secs(15), |l| l.contains("is down"));
    assert!(ok, "{lines:#?}");
    assert!(
        lines
            .last()
            .unwrap()
            .contains(" samples in memory, then on disk; retrying"),
        "{lines:#?}"
    );
}

#[test]
fn a_healthy_run_writes_nothing_under_buffer_dir() {
    let s = Scratch::new();
    let server = durable_redis();
    let host = "healthy";
    let (path, buffer) = config(&s, host, server.port);
    // As a service's StateDirectory provides it: the very first start of an agent creates
    // buffer_dir (empty, for its lock), one directory block written once in its life.
    std::fs::create_dir_all(buffer.parent().unwrap()).unwrap();
    let agent = Agent::start(&path);
    let got = wait_for_stamp(&server, host, now_ms() + 4000, Duration::from_secs(15));
    assert!(got.len() >= 4);
    let io = std::fs::read_to_string(format!("/proc/{}/io", agent.pid())).unwrap_or_default();
    let written = io
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(!buffer.exists(), "{} was created", buffer.display());
    // buffer_dir itself exists, empty: the agent locks it (an flock writes nothing).
    let in_buffer_dir: Vec<_> = std::fs::read_dir(buffer.parent().unwrap())
        .unwrap()
        .collect();
    assert!(in_buffer_dir.is_empty(), "{in_buffer_dir:?}");
    if let Some(n) = written {
        assert_eq!(n, 0, "/proc/<pid>/io write_bytes of a healthy agent");
    }
}

#[test]
fn an_unwritable_buffer_dir_means_memory_only_with_an_error_not_a_crash() {
    let s = Scratch::new();
    let mut server = durable_redis();
    let host = "nodisk";
    let file = s.write("not-a-dir", "x");
    let procfs = fixture("basic").join("proc");
    let path = s.config(&format!(
        "hostname: {host}\ninterval: 1s\nflush_interval: 1s\nprocfs_root: {}\nbuffer_dir: {}\ninputs: [linux_mem]\noutputs:\n  - redistimeseries:\n      url: redis://127.0.0.1:{}/\n",
        procfs.display(),
        file.join("buffer").display(),
        server.port
    ));
    let mut agent = Agent::start(&path);
    let first = wait_for_stamp(&server, host, 0, Duration::from_secs(10));
    assert!(!first.is_empty());
    server.stop();
    let (lines, found) = agent.wait_for(Duration::from_secs(10), |l| {
        l.contains("buffering in memory only")
    });
    assert!(found, "{lines:#?}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(agent.child.try_wait().unwrap().is_none(), "still running");
    server.restart();
    let restarted = now_ms();
    let got = wait_for_stamp(&server, host, restarted + 2000, Duration::from_secs(60));
    let lost = missing(&got, first[0], restarted + 2000);
    assert!(
        lost.is_empty(),
        "the memory ring covered the outage; missing {lost:?}"
    );
}

#[test]
fn garbage_in_the_buffer_dir_does_not_stop_the_agent() {
    let s = Scratch::new();
    let server = durable_redis();
    let host = "garbage";
    let (path, buffer) = config(&s, host, server.port);
    std::fs::create_dir_all(&buffer).unwrap();
    std::fs::write(
        buffer.join("0000000000000000.seg"),
        b"RF\x10\x00\x00\x00garbage-torn",
    )
    .unwrap();
    std::fs::write(buffer.join("0000000000000001.seg"), vec![0xa5; 5000]).unwrap();
    std::fs::write(buffer.join("position"), b"nonsense").unwrap();
    std::fs::write(buffer.join("README"), b"not ours").unwrap();
    let agent = Agent::start(&path);
    let got = wait_for_stamp(&server, host, now_ms() + 2000, Duration::from_secs(20));
    assert!(got.len() >= 2, "the agent runs and delivers");
    let lines = agent.drain();
    assert!(
        lines.iter().any(|l| l.contains("damaged")),
        "a warning about the damaged files: {lines:#?}"
    );
}

/// `name: N` from `rtcollector buffer status`.
fn status_number(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in {text}"))
}

const MEM_SERIES: [&str; 8] = [
    "mem_total_bytes",
    "mem_available_bytes",
    "mem_used_bytes",
    "mem_free_bytes",
    "mem_buffers_bytes",
    "mem_cached_bytes",
    "mem_used_percent",
    "mem_available_percent",
];

#[test]
fn a_full_disk_buffer_drops_the_oldest_and_counts_exactly_what_redis_lacks() {
    let s = Scratch::new();
    let mut server = durable_redis();
    let host = "capped";
    let buffer = s.dir.path().join("buffer");
    let procfs = fixture("basic").join("proc");
    // 8 samples every 100 ms into a 16 KiB outage buffer: a 30 s outage needs about twice that.
    let path = s.config(&format!(
        "hostname: {host}\ninterval: 100ms\nflush_interval: 100ms\nprocfs_root: {}\nbuffer_dir: {}\nbuffer_sync_interval: 1s\nmax_disk_buffer: 16KiB\ninputs: [linux_mem]\noutputs:\n  - redistimeseries:\n      url: redis://127.0.0.1:{}/\n",
        procfs.display(),
        buffer.display(),
        server.port
    ));
    let mut agent = Agent::start(&path);
    let first = wait_for_stamp(&server, host, 0, Duration::from_secs(10));
    assert!(!first.is_empty(), "the agent writes while Redis is up");
    server.stop();
    std::thread::sleep(Duration::from_secs(30));
    agent.signal(Signal::SIGTERM);
    let termed = now_ms();
    let (status, _) = agent.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(status.success());
    let lines = agent.drain();
    let full = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    assert_eq!(
        (
            full("outage buffer full"),
            full("the full outage buffer dropped")
        ),
        (1, 1),
        "one line when the drops start, one with the totals: {lines:#?}"
    );
    drop(agent);
    // The second agent's first tick comes well after this.
    std::thread::sleep(Duration::from_secs(2));

    let out = run(&["buffer", "status", "--config", path.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let dropped = status_number(&text, "dropped");
    let on_disk = status_number(&text, "samples on disk");
    assert!(dropped > 0, "the cap was reached: {text}");
    assert!(
        status_number(&text, "bytes on disk") <= 16 * 1024,
        "the cap holds: {text}"
    );

    server.restart();
    let mut agent = Agent::start(&path);
    let buffer_dir = buffer.join("redistimeseries");
    assert!(
        wait_until(Duration::from_secs(30), || segment_files(&buffer_dir) == 0),
        "the outage buffer drains"
    );
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(10)).expect("exits");

    // Everything the first agent collected lies between its first sample and the last one
    // it persisted; the second agent starts later, after a gap that nobody collected.
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_connection().unwrap();
    let ticks: Vec<i64> = ts_range(&mut c, &format!("mem_total_bytes:{host}"))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let last_of_first_run = *ticks
        .iter()
        .rev()
        .find(|&&t| t <= termed)
        .expect("samples of the first run");
    let expected_ticks: Vec<i64> = (first[0]..=last_of_first_run).step_by(100).collect();
    let mut missing_samples = 0u64;
    for name in MEM_SERIES {
        let got: std::collections::BTreeSet<i64> = ts_range(&mut c, &format!("{name}:{host}"))
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        missing_samples += expected_ticks.iter().filter(|t| !got.contains(t)).count() as u64;
        // The newest data is intact: the last 5 s before the stop all arrived.
        let newest: Vec<&i64> = expected_ticks
            .iter()
            .filter(|&&t| t > last_of_first_run - 5_000)
            .filter(|t| !got.contains(t))
            .collect();
        assert!(
            newest.is_empty(),
            "{name}: newest samples missing: {newest:?}"
        );
    }
    // A stall of two intervals or more (a starved test machine) skips collections, and the
    // agent says how many: those ticks were never collected, so nothing of them is lost.
    let never_collected: u64 = lines
        .iter()
        .filter_map(|l| l.split_once(" runs skipped"))
        .filter_map(|(before, _)| before.rsplit(' ').next()?.parse::<u64>().ok())
        .sum::<u64>()
        * MEM_SERIES.len() as u64;
    assert_eq!(
        missing_samples,
        dropped + never_collected,
        "what Redis lacks is exactly what the buffer counted as dropped ({on_disk} were on disk) and the ticks the agent said it skipped: {lines:#?}"
    );
}

/// Start offsets and payload lengths of the frames of a segment (`RF`, u32 len, u32 crc).
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 10 <= bytes.len() && &bytes[at..at + 2] == b"RF" {
        let len = u32::from_le_bytes(bytes[at + 2..at + 6].try_into().unwrap()) as usize;
        out.push((at, len));
        at += 10 + len;
    }
    out
}

#[test]
fn flipped_bytes_a_torn_tail_and_a_lost_position_file_lose_only_the_damaged_frames() {
    let s = Scratch::new();
    let mut server = durable_redis();
    let host = "damaged";
    let (path, buffer) = config(&s, host, server.port);
    let mut agent = Agent::start(&path);
    let first = wait_for_stamp(&server, host, 0, Duration::from_secs(10));
    assert!(!first.is_empty());
    server.stop();
    std::thread::sleep(Duration::from_secs(10));
    agent.signal(Signal::SIGTERM);
    let termed = now_ms();
    assert!(agent
        .wait_exit(Duration::from_secs(10))
        .expect("exits")
        .0
        .success());
    drop(agent);

    let mut segments: Vec<PathBuf> = std::fs::read_dir(&buffer)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    let last = segments.last().expect("a segment").clone();
    let mut bytes = std::fs::read(&last).unwrap();
    let list = frames(&bytes);
    assert!(list.len() >= 5, "one frame per failed flush: {list:?}");
    // A byte in the payload of a frame in the middle (not the first: it names the series).
    let (mid, len) = list[list.len() / 2];
    bytes[mid + 10 + len / 2] ^= 0x5a;
    // The last frame torn, as by a power cut during its write.
    bytes.truncate(bytes.len() - 3);
    std::fs::write(&last, &bytes).unwrap();
    let _ = std::fs::remove_file(buffer.join("position"));

    server.restart();
    let agent = Agent::start(&path);
    assert!(
        wait_until(Duration::from_secs(30), || segment_files(&buffer) == 0),
        "the agent starts and drains what is readable"
    );
    let (lines, reported) = agent.wait_for(Duration::from_secs(5), |l| l.contains("damaged frame"));
    assert!(reported, "the damage is reported: {lines:#?}");

    let got = wait_for_stamp(&server, host, termed + 2000, Duration::from_secs(30));
    let lost: Vec<i64> = missing(&got, first[0], termed - 1000);
    assert!(
        (1..=4).contains(&lost.len()),
        "only the ticks of the two damaged frames are lost, not their neighbours: {lost:?}"
    );
}

/// A SIGTERM stops the agent within its promised 5 s also while a write hangs (a Redis that
/// accepts but never answers, whose write timeout is 10 s), and also behind a storm of
/// SIGHUPs whose reload waits for that write (the storm used to fill the signal queue and
/// drop the SIGTERM). The hanging write is given up, its batch goes to disk with the rest,
/// and the next start delivers every sample.
fn sigterm_while_a_write_hangs(host: &str, sighups: usize) {
    let s = Scratch::new();
    let server = durable_redis();
    let (path, _) = config(&s, host, server.port);
    let mut agent = Agent::start(&path);
    let first = wait_for_stamp(&server, host, 0, Duration::from_secs(10));
    assert!(!first.is_empty(), "{:#?}", agent.drain());
    server.signal(Signal::SIGSTOP);
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..sighups {
        agent.signal(Signal::SIGHUP);
        std::thread::sleep(Duration::from_millis(5));
    }
    agent.signal(Signal::SIGTERM);
    let termed = now_ms();
    let exited = agent.wait_exit(Duration::from_secs(6));
    let lines = agent.drain();
    server.signal(Signal::SIGCONT);
    let (status, _) =
        exited.unwrap_or_else(|| panic!("still running 6 s after SIGTERM: {lines:#?}"));
    assert!(status.success(), "{status:?}: {lines:#?}");
    let reloads = lines
        .iter()
        .filter(|l| l.contains("SIGHUP: reloading"))
        .count();
    assert!(
        reloads <= 2,
        "SIGHUPs that arrive during a reload make one more reload, not one each: {reloads}"
    );
    drop(agent);

    let _agent = Agent::start(&path);
    let got = wait_for_stamp(&server, host, termed + 2000, Duration::from_secs(60));
    let lost = missing(&got, first[0], termed - 1000);
    assert!(lost.is_empty(), "missing {lost:?}: {lines:#?}");
}

#[test]
fn sigterm_stops_the_agent_while_a_write_hangs_and_loses_nothing() {
    sigterm_while_a_write_hangs("hungterm", 0);
}

#[test]
fn sigterm_behind_a_storm_of_sighups_during_a_hanging_write_still_stops_the_agent() {
    sigterm_while_a_write_hangs("hupstorm", 400);
}

/// A reload that fixes a down output logs that it is up again, as a recovery without a
/// reload does (the new output's runner used to start as if nothing had failed).
#[test]
fn a_reload_that_fixes_a_down_output_logs_that_it_is_up_again() {
    let s = Scratch::new();
    let server = durable_redis();
    let host = "fixed";
    let unused = support::ports::free_port();
    let (path, _) = config(&s, host, unused);
    let agent = Agent::start(&path);
    let (lines, down) = agent.wait_for(Duration::from_secs(15), |l| l.contains("is down"));
    assert!(down, "{lines:#?}");
    let text = std::fs::read_to_string(&path).unwrap();
    let fixed = text.replace(&format!(":{unused}/"), &format!(":{}/", server.port));
    assert_ne!(text, fixed);
    std::fs::write(&path, fixed).unwrap();
    agent.signal(Signal::SIGHUP);
    let (lines, up) = agent.wait_for(Duration::from_secs(15), |l| l.contains("is up again"));
    assert!(up, "{lines:#?}");
    assert!(!wait_for_stamp(&server, host, 0, Duration::from_secs(10)).is_empty());
}

/// Where the retry tests put the agent's outage buffer.
#[derive(Clone, Copy, Debug)]
enum Disk {
    Usable,
    /// `buffer_dir` lies under a regular file: it can never be created.
    UnderAFile,
    /// A 16 KiB tmpfs, filled before the agent starts.
    Full,
    /// A read-only tmpfs.
    ReadOnly,
    /// An empty 32 KiB tmpfs: it fills during the outage.
    FillsUp,
}

/// The agent's `buffer_dir` for `disk`, and the wrapper that prepares it: the tmpfs cases
/// mount in a private mount namespace of their own (`unshare`), which needs no root.
fn buffer_for(s: &Scratch, disk: Disk) -> (PathBuf, Vec<String>) {
    let root = s.dir.path();
    let mnt = root.join("mnt");
    let mount = |opts: &str, then: &str| {
        std::fs::create_dir_all(&mnt).unwrap();
        let m = mnt.display();
        let script = format!("set -e; mount -t tmpfs -o {opts} tmpfs '{m}'; {then} exec \"$@\"");
        ["unshare", "-rm", "sh", "-c", &script, "sh"]
            .map(String::from)
            .to_vec()
    };
    match disk {
        Disk::Usable => (root.join("buffer"), Vec::new()),
        Disk::UnderAFile => (s.write("not-a-dir", "x").join("buffer"), Vec::new()),
        Disk::Full => {
            let fill = format!(
                "head -c 1048576 /dev/zero > '{}/fill' || true;",
                mnt.display()
            );
            (mnt.join("buffer"), mount("size=16k", &fill))
        }
        Disk::ReadOnly => (mnt.join("buffer"), mount("ro,size=1m", "")),
        Disk::FillsUp => (mnt.join("buffer"), mount("size=32k", "")),
    }
}

/// Redis stopped for 8 s while every interval fills a batch (8 samples a tick, batches of
/// 4): when it is back, the agent must send everything by itself, on its flush schedule,
/// without waiting for a signal, whatever the outage buffer can do.
fn a_down_output_sends_everything_by_itself_once_redis_is_back(disk: Disk, host: &str) {
    let s = Scratch::new();
    let mut server = durable_redis();
    let (buffer, wrapper) = buffer_for(&s, disk);
    let procfs = fixture("basic").join("proc");
    let path = s.config(&format!(
        "hostname: {host}\ninterval: 1s\nflush_interval: 1s\nmetric_batch_size: 4\nprocfs_root: {}\nbuffer_dir: {}\nbuffer_sync_interval: 1s\ninputs: [linux_mem]\noutputs:\n  - redistimeseries:\n      url: redis://127.0.0.1:{}/\n",
        procfs.display(),
        buffer.display(),
        server.port
    ));
    let prefix: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let agent = Agent::start_under(&prefix, &path);
    let first = wait_for_stamp(&server, host, 0, Duration::from_secs(10));
    assert!(
        !first.is_empty(),
        "the agent writes while Redis is up ({disk:?}): {:#?}",
        agent.drain()
    );
    server.stop();
    std::thread::sleep(Duration::from_secs(8));
    server.restart();
    let restarted = now_ms();
    let got = wait_for_stamp(&server, host, restarted + 3000, Duration::from_secs(30));
    let lost = missing(&got, first[0], restarted + 3000);
    assert!(
        lost.is_empty() && got.last().is_some_and(|&t| t >= restarted + 3000),
        "{disk:?}: every second is in Redis without a signal (back at {restarted}, newest {:?}); missing {lost:?}\nagent: {:#?}",
        got.last(),
        agent.drain()
    );
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_connection().unwrap();
    for name in MEM_SERIES {
        let n = ts_range(&mut c, &format!("{name}:{host}"))
            .into_iter()
            .filter(|&(t, _)| t <= restarted + 3000)
            .count();
        let want = got.iter().filter(|&&t| t <= restarted + 3000).count();
        assert_eq!(n, want, "{disk:?}: {name} has every tick too");
    }
}

#[test]
fn a_down_output_with_a_usable_disk_retries_on_its_own() {
    a_down_output_sends_everything_by_itself_once_redis_is_back(Disk::Usable, "retry-disk");
}

#[test]
fn a_down_output_whose_disk_can_never_be_made_retries_on_its_own() {
    a_down_output_sends_everything_by_itself_once_redis_is_back(Disk::UnderAFile, "retry-nodir");
}

#[test]
fn a_down_output_with_a_full_disk_retries_on_its_own() {
    a_down_output_sends_everything_by_itself_once_redis_is_back(Disk::Full, "retry-full");
}

#[test]
fn a_down_output_with_a_read_only_disk_retries_on_its_own() {
    a_down_output_sends_everything_by_itself_once_redis_is_back(Disk::ReadOnly, "retry-ro");
}

/// A disk that fills during the outage (300 extra series a second into a 32 KiB tmpfs): what
/// reached it before it filled is sent as soon as Redis is back, before the newer samples
/// held in memory, not a minute later when the disk is tried again for writing.
#[test]
fn what_a_disk_held_before_it_filled_is_sent_as_soon_as_redis_is_back() {
    let s = Scratch::new();
    let mut server = durable_redis();
    let host = "fills-up";
    let (buffer, wrapper) = buffer_for(&s, Disk::FillsUp);
    let script = s.write(
        "gen.sh",
        "awk 'BEGIN { for (i = 1; i <= 300; i++) print \"fill_\" i, i }'\n",
    );
    let procfs = fixture("basic").join("proc");
    let path = s.config(&format!(
        "hostname: {host}\ninterval: 1s\nflush_interval: 1s\nprocfs_root: {}\nbuffer_dir: {}\nbuffer_sync_interval: 1s\ninputs:\n  - linux_mem\n  - exec:\n      commands: [\"sh {}\"]\n      data_format: metrics\noutputs:\n  - redistimeseries:\n      url: redis://127.0.0.1:{}/\n",
        procfs.display(),
        buffer.display(),
        script.display(),
        server.port
    ));
    let prefix: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let agent = Agent::start_under(&prefix, &path);
    let first = wait_for_stamp(&server, host, 0, Duration::from_secs(10));
    assert!(!first.is_empty(), "{:#?}", agent.drain());
    server.stop();
    let (lines, filled) = agent.wait_for(Duration::from_secs(20), |l| {
        l.contains("No space left on device")
    });
    assert!(filled, "the tmpfs fills during the outage: {lines:#?}");
    std::thread::sleep(Duration::from_secs(3));
    server.restart();
    let restarted = now_ms();
    // Well within the minute after which the disk would be tried again for writing.
    let got = wait_for_stamp(&server, host, restarted + 3000, Duration::from_secs(20));
    let lost = missing(&got, first[0], restarted + 3000);
    assert!(
        lost.is_empty(),
        "every second is in Redis, also those written to the disk before it filled; missing {lost:?}\nagent: {:#?}",
        agent.drain()
    );
}

/// 300 series a second into a ring of 500, and a Redis that accepts connections but never
/// answers (SIGSTOP) for 8 s: while a write waits for its timeout, the ring fills several
/// times over. It must go to disk rather than drop, and everything arrives, each once.
#[test]
fn samples_arriving_during_a_hanging_write_go_to_disk_instead_of_being_dropped() {
    let s = Scratch::new();
    let server = durable_redis();
    let host = "hang";
    let buffer = s.dir.path().join("buffer");
    let path = s.config(&format!(
        "hostname: {host}\ninterval: 1s\nflush_interval: 1s\nmax_buffer_size: 500\nmetric_batch_size: 100\nbuffer_dir: {}\nbuffer_sync_interval: 1s\ninputs:\n  - exec:\n      commands: [\"seq 0 299 | sed 's/.*/hc_& &/'\"]\n      shell: true\n      data_format: metrics\noutputs:\n  - redistimeseries:\n      url: redis://127.0.0.1:{}/\n",
        buffer.display(),
        server.port
    ));
    let mut agent = Agent::start(&path);
    // Keys carry the exec input's labels after the name.
    let series = |c: &mut redis::Connection, name: &str| -> Vec<i64> {
        let keys: Vec<String> = query(c, &["KEYS", &format!("{name}:*")]);
        match keys.first() {
            Some(key) => ts_range(c, key).into_iter().map(|(t, _)| t).collect(),
            None => Vec::new(),
        }
    };
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_connection().unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || !series(&mut c, "hc_299")
            .is_empty()),
        "the agent writes while Redis answers: {:#?}",
        agent.drain()
    );
    let first = series(&mut c, "hc_0")[0];
    drop(c);
    server.signal(Signal::SIGSTOP);
    std::thread::sleep(Duration::from_secs(8));
    server.signal(Signal::SIGCONT);
    let resumed = now_ms();
    let mut c = client.get_connection().unwrap();
    let until = resumed + 3000;
    let caught_up = wait_until(Duration::from_secs(40), || {
        series(&mut c, "hc_299").last().is_some_and(|&t| t >= until)
    });
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(10)).expect("exits");
    let lines = agent.drain();
    assert!(caught_up, "caught up after SIGCONT: {lines:#?}");
    for name in ["hc_0", "hc_150", "hc_299"] {
        let got = series(&mut c, name);
        let lost = missing(&got, first - 1000, until);
        assert!(
            lost.is_empty(),
            "{name}: every second from {first} to {until}; missing {lost:?}\nagent: {lines:#?}"
        );
    }
    let dropped = lines.iter().filter(|l| l.contains("dropped")).count();
    assert_eq!(dropped, 0, "nothing was dropped: {lines:#?}");
}

/// Samples of the first run (stamped at or before `until`) of every `linux_mem` series.
fn samples_until(server: &Server, host: &str, until: i64) -> u64 {
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_connection().unwrap();
    MEM_SERIES
        .iter()
        .map(|name| {
            ts_range(&mut c, &format!("{name}:{host}"))
                .into_iter()
                .filter(|&(t, _)| t <= until)
                .count() as u64
        })
        .sum()
}

/// `mode & 0o777` of `path`.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// An outage under umask 000, then a restart that finds a directory named like a segment
/// and a frame whose length field reads 0xFFFFFFFF: the files were private, the directory
/// is skipped with one line, only the damaged frame is lost (logged once), and the startup
/// line promises exactly what arrives.
#[test]
fn an_unreadable_entry_and_a_bad_length_lose_only_themselves_and_the_promise_holds() {
    let s = Scratch::new();
    let mut server = durable_redis();
    let host = "edges";
    let (path, buffer) = config(&s, host, server.port);
    let umask_000 = ["sh", "-c", "umask 000; exec \"$@\"", "sh"];
    let mut agent = Agent::start_under(&umask_000, &path);
    let first = wait_for_stamp(&server, host, 0, Duration::from_secs(10));
    assert!(!first.is_empty());
    server.stop();
    std::thread::sleep(Duration::from_secs(8));
    agent.signal(Signal::SIGTERM);
    let termed = now_ms();
    assert!(agent
        .wait_exit(Duration::from_secs(10))
        .expect("exits")
        .0
        .success());
    drop(agent);

    let mut segments: Vec<PathBuf> = std::fs::read_dir(&buffer)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    assert_eq!(mode(buffer.parent().unwrap()), 0o700, "buffer_dir");
    assert_eq!(mode(&buffer), 0o700, "the output's directory");
    assert_eq!(mode(&buffer.join("position")), 0o600, "position");
    for seg in &segments {
        assert_eq!(mode(seg), 0o600, "{}", seg.display());
    }

    let last = segments.last().expect("a segment").clone();
    let mut bytes = std::fs::read(&last).unwrap();
    let list = frames(&bytes);
    assert!(list.len() >= 4, "one frame per failed flush: {list:?}");
    // Not the first frame: it names the series.
    let (mid, _) = list[list.len() / 2];
    bytes[mid + 2..mid + 6].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&last, &bytes).unwrap();
    std::fs::create_dir(buffer.join("00000000000000f0.seg")).unwrap();

    server.restart();
    let before = samples_until(&server, host, termed);
    let agent = Agent::start(&path);
    let (lines, promised) = agent.wait_for(Duration::from_secs(10), |l| {
        l.contains("buffered samples on disk will be sent first")
    });
    assert!(promised, "{lines:#?}");
    let promise: u64 = lines
        .last()
        .and_then(|l| l.split(" buffered samples").next())
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count in {lines:#?}"));
    let status = run(&["buffer", "status", "--config", path.to_str().unwrap()]);
    let text = stdout(&status);
    assert!(
        text.contains(&format!(
            "samples in memory: not visible from here (held by pid {}",
            agent.child.id()
        )),
        "{text}"
    );
    assert!(
        wait_until(Duration::from_secs(30), || segment_files(&buffer) == 1),
        "the readable segments drain, the directory stays: {:#?}",
        agent.drain()
    );
    let got = wait_for_stamp(&server, host, termed + 2000, Duration::from_secs(30));
    let lost = missing(&got, first[0], termed - 1000);
    assert_eq!(lost.len(), 1, "only the damaged frame's tick: {lost:?}");
    let arrived = samples_until(&server, host, termed) - before;
    assert_eq!(arrived, promise, "the startup line promised what arrived");
    let mut lines = lines;
    lines.extend(agent.drain());
    let count = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    assert_eq!(count("unreadable entr"), 1, "{lines:#?}");
    assert_eq!(count("damaged frame"), 1, "logged once: {lines:#?}");
}

/// A user who cannot read `buffer_dir` is told so, with a non-zero exit, never `0 samples`.
#[test]
fn buffer_status_says_when_it_cannot_read_the_buffer_and_fails() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let buffer = s.dir.path().join("buffer");
    std::fs::create_dir_all(buffer.join("stdout")).unwrap();
    std::fs::set_permissions(&buffer, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = s.config(&format!(
        "buffer_dir: {}\noutputs: [stdout]\n",
        buffer.display()
    ));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_rtcollector"))
        .args(["buffer", "status", "--config", path.to_str().unwrap()])
        .output()
        .expect("setpriv runs");
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}{err}");
    assert!(!text.contains("samples on disk"), "{text}");
    assert!(
        err.contains("cannot read its outage buffer") && err.contains("Permission denied"),
        "{err}"
    );
}

/// The case: an agent running as a user of its own finds a root-owned `0600` file
/// named like a segment in its buffer. It is skipped with one line naming the error; the
/// agent's own segments are replayed and nothing is lost.
#[test]
fn a_segment_the_agents_user_cannot_read_is_skipped_and_the_rest_replayed() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let mut server = durable_redis();
    let host = "notmine";
    let (path, buffer) = config(&s, host, server.port);
    let buffer_dir = buffer.parent().unwrap();
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::create_dir(buffer_dir).unwrap();
    std::os::unix::fs::chown(buffer_dir, Some(65534), Some(65534)).unwrap();
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let mut agent = Agent::start_under(&nobody, &path);
    let first = wait_for_stamp(&server, host, 0, Duration::from_secs(10));
    assert!(!first.is_empty(), "{:#?}", agent.drain());
    server.stop();
    std::thread::sleep(Duration::from_secs(6));
    agent.signal(Signal::SIGTERM);
    let termed = now_ms();
    assert!(agent
        .wait_exit(Duration::from_secs(10))
        .expect("exits")
        .0
        .success());
    drop(agent);
    assert!(segment_files(&buffer) > 0);
    let foreign = buffer.join("00000000000000f0.seg");
    std::fs::write(&foreign, b"RF not the agent's").unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o600)).unwrap();

    server.restart();
    let agent = Agent::start_under(&nobody, &path);
    assert!(
        wait_until(Duration::from_secs(30), || segment_files(&buffer) == 1),
        "the agent's own segments drain: {:#?}",
        agent.drain()
    );
    let got = wait_for_stamp(&server, host, termed + 2000, Duration::from_secs(30));
    let lines = agent.drain();
    let lost = missing(&got, first[0], termed - 1000);
    assert!(lost.is_empty(), "missing {lost:?}: {lines:#?}");
    let skipped: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("unreadable entr"))
        .collect();
    assert_eq!(skipped.len(), 1, "{lines:#?}");
    assert!(skipped[0].contains("Permission denied"), "{skipped:?}");
    assert!(
        !lines.iter().any(|l| l.contains("memory only")),
        "the outage buffer stays in use: {lines:#?}"
    );
}

/// Every `fresh_<n>_<i>` key in Redis with its samples, by tick `n` and name `i`.
fn fresh_keys(server: &Server) -> std::collections::BTreeMap<(u64, u64), Vec<(i64, f64)>> {
    let mut c = server.client();
    let keys: Vec<String> = query(&mut c, &["KEYS", "fresh_*"]);
    keys.into_iter()
        .map(|k| {
            let mut parts = k.trim_start_matches("fresh_").split('_');
            let n = parts
                .next()
                .and_then(|p| p.parse().ok())
                .expect("fresh_<n>_<i>");
            let i = parts
                .next()
                .and_then(|p| p.parse().ok())
                .expect("fresh_<n>_<i>");
            ((n, i), ts_range(&mut c, &k))
        })
        .collect()
}

/// An exec that prints five names never seen before at every tick, far more than
/// `max_series` over the run, through a Redis outage longer than `forget_series_after`:
/// forgotten series make room for new ones, and no sample is written under another
/// series' name (each name's only value is the one printed for it), also for samples that
/// waited in memory or on disk while their series was forgotten and its slot reused.
#[test]
fn new_series_keep_arriving_past_max_series_and_none_takes_another_ones_name() {
    let s = Scratch::new();
    let mut server = durable_redis();
    let count = s.dir.path().join("count");
    let script = s.dir.path().join("fresh.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nn=$(($(cat {c} 2>/dev/null || echo 0) + 1)); echo $n > {c}\n\
             for i in 0 1 2 3 4; do echo \"fresh_${{n}}_$i $((n * 100 + i))\"; done\n",
            c = count.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = s.config(&format!(
        "hostname: fresh\ninterval: 500ms\nflush_interval: 500ms\nmax_series: 120\nforget_series_after: 1s\n\
         buffer_dir: {}\ninputs:\n  - exec:\n      commands: ['{}']\n      data_format: metrics\n\
         outputs:\n  - redistimeseries:\n      url: redis://127.0.0.1:{}/\n      key_format: '{{name}}'\n",
        s.dir.path().join("buffer").display(),
        script.display(),
        server.port
    ));
    let mut agent = Agent::start(&path);
    let ticks_in_redis =
        |server: &Server| fresh_keys(server).keys().map(|k| k.0).max().unwrap_or(0);
    assert!(
        wait_until(Duration::from_secs(20), || ticks_in_redis(&server) >= 15),
        "{:#?}",
        agent.drain()
    );
    // An outage longer than forget_series_after: what waits was forgotten meanwhile.
    server.stop();
    std::thread::sleep(Duration::from_secs(3));
    server.restart();
    let before = ticks_in_redis(&server);
    assert!(
        wait_until(Duration::from_secs(60), || ticks_in_redis(&server)
            >= before + 50),
        "{:#?}",
        agent.drain()
    );
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(10)).expect("exit");
    let lines = agent.drain();
    let got = fresh_keys(&server);
    let last = got.keys().map(|k| k.0).max().unwrap();
    assert!(
        last * 5 >= 120 * 5 / 2,
        "many more names than max_series: {last} ticks"
    );
    for ((n, i), samples) in &got {
        let want = (n * 100 + i) as f64;
        assert!(
            samples.len() == 1 && samples[0].1 == want,
            "fresh_{n}_{i} holds {samples:?}, not one sample of {want}"
        );
    }
    // Every tick through the last one is complete: nothing refused for want of room, and
    // what waited through the outage arrived.
    let missing: Vec<(u64, u64)> = (1..=last)
        .flat_map(|n| (0..5).map(move |i| (n, i)))
        .filter(|k| !got.contains_key(k))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?}; log:\n{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("series table is full")),
        "{lines:#?}"
    );
}

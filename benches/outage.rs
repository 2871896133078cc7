//! The outage buffer under stress (issue 24): the agent binary built with this profile
//! against a private Redis Stack on 127.0.0.1, in five scenarios, each ending with an
//! account of every sample. The figures of a run are in README.md, "Reliability under
//! stress".
//!
//! 1. `high-cardinality`: 2 000 series a second, Redis stopped for 60 s then started; the
//!    agent must send everything by itself (no signal) through its ring and outage buffer;
//! 2. `full-disk`: `buffer_dir` on a 256 KiB tmpfs, a 30 s outage that does not fit it;
//! 3. `read-only-disk`: `buffer_dir` on a read-only tmpfs, a 30 s outage (memory only);
//! 4. `kill-9-mid-replay`: a 60 s backlog on disk, Redis back, SIGKILL while it is replayed,
//!    then a new agent;
//! 5. `sighup-storm`: 400 SIGHUPs 5 ms apart during an outage, then SIGTERM (exit within
//!    5 s), then a new agent once Redis is back.
//!
//! The samples come from an `exec` script that numbers its runs in a file: run `n` prints
//! `hc_1 … hc_S` with value `n` at `ts = T0 + n s`, so what was produced is known exactly
//! (runs × series) and each sample in Redis is checked against its run. The agent's own
//! count of what it dropped comes from its `internal` input, read on a second output
//! (`stdout`, which never fails) so that it is seen even when Redis never gets it; the
//! internal samples share the ring with the exec ones, so the internal samples that
//! stdout saw and Redis lacks are accounted too. A row:
//!
//! `unaccounted = produced − delivered − counted as dropped (− lost in RAM at a SIGKILL)`,
//!
//! which must be 0; with `duplicate_policy: block` a sample written twice would be
//! refused and counted, so it shows as a negative `unaccounted`. The program exits 1 when
//! a scenario has anything unaccounted, a wrong value, a stop slower than 5 s or a backlog
//! that never drained, printing the agent's and Redis's logs of that scenario.
//!
//! ```sh
//! export RTC_REDIS_STACK_DIR="$(scripts/setup-redis-stack)"
//! cargo bench --bench outage                     # about 5 minutes
//! RTC_OUTAGE_SERIES=500 RTC_OUTAGE_SECS=20 RTC_OUTAGE_SHORT_SECS=10 cargo bench --bench outage
//! RTC_OUTAGE_ONLY=full-disk,read-only-disk cargo bench --bench outage
//! ```
//!
//! Also `RTC_OUTAGE_TMPFS_KIB` (256), `RTC_OUTAGE_SIGHUPS` (400) and `RTC_OUTAGE_LINGER_SECS`
//! (2: how long an agent runs on after catching up before its SIGTERM). The tmpfs scenarios
//! mount in a private mount namespace (`unshare -rm`), which needs no root.

mod common;

#[path = "../tests/support/mod.rs"]
mod support;

use common::env_or;
use nix::sys::signal::Signal;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::clock::now_ms;
use support::redis_server::{text, Server};

const BIN: &str = env!("CARGO_BIN_EXE_rtcollector");
/// `max_buffer_size` of every scenario: the default.
const RING: u64 = 5000;
/// SIGTERM's promise.
const STOP_BUDGET: Duration = Duration::from_secs(5);

struct Knobs {
    series: u64,
    outage: Duration,
    short_outage: Duration,
    tmpfs_kib: u64,
    sighups: u64,
    linger: Duration,
}

impl Knobs {
    fn from_env() -> Knobs {
        Knobs {
            series: env_or("RTC_OUTAGE_SERIES", 2000u64).max(1),
            outage: Duration::from_secs(env_or("RTC_OUTAGE_SECS", 60u64)),
            short_outage: Duration::from_secs(env_or("RTC_OUTAGE_SHORT_SECS", 30u64)),
            tmpfs_kib: env_or("RTC_OUTAGE_TMPFS_KIB", 256u64),
            sighups: env_or("RTC_OUTAGE_SIGHUPS", 400u64),
            linger: Duration::from_secs(env_or("RTC_OUTAGE_LINGER_SECS", 2u64)),
        }
    }
}

/// Where a scenario's agent keeps its outage buffer.
#[derive(Clone, Copy)]
enum Disk {
    Usable,
    /// A tmpfs of this many KiB, as the agent's user sees a full filesystem.
    Small(u64),
    ReadOnly,
}

/// What stdout showed of one agent process: the generated samples it printed, the others
/// (`internal_*`, the exec input's own `exec_*`; identity, timestamp), and the
/// redistimeseries output's drop count.
#[derive(Default)]
struct Witness {
    exec_samples: u64,
    internal: HashSet<(String, i64)>,
    dropped: u64,
}

/// `name{k=v,…}` without `host` (and the `name` label Redis adds), labels sorted.
fn identity<'a>(name: &str, labels: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut l: Vec<(&str, &str)> = labels
        .filter(|(k, _)| *k != "host" && *k != "name")
        .collect();
    l.sort();
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

impl Witness {
    fn read_line(&mut self, line: &str) {
        if line.starts_with("{\"name\":\"hc_") {
            self.exec_samples += 1;
            return;
        }
        if !line.starts_with('{') {
            return;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            return;
        };
        let name = v["name"].as_str().unwrap_or_default();
        let labels = v["labels"].as_object();
        let pairs = labels
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()));
        let id = identity(name, pairs);
        let ts = v["timestamp_ms"].as_i64().unwrap_or_default();
        if name == "internal_write_metrics_dropped"
            && v["labels"]["output"].as_str() == Some("redistimeseries")
        {
            self.dropped = v["value"].as_f64().unwrap_or_default() as u64;
        }
        self.internal.insert((id, ts));
    }
}

/// One `rtcollector run` (the tests' agent process), its stdout read into a [`Witness`] as
/// it comes, its log kept.
struct Agent {
    process: support::agent::Agent,
    witness: Arc<Mutex<Witness>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    fn start(wrapper: &[String], config: &Path) -> Agent {
        let witness = Arc::new(Mutex::new(Witness::default()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (w, lg) = (witness.clone(), log.clone());
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let process = support::agent::Agent::start_reading(
            &wrapper,
            config,
            move |l| w.lock().unwrap().read_line(&l),
            move |l| lg.lock().unwrap().push(l),
        );
        Agent {
            process,
            witness,
            log,
        }
    }

    fn signal(&self, sig: Signal) {
        self.process.signal(sig);
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<Duration> {
        self.process.wait_exit(timeout).map(|(_, took)| took)
    }

    /// SIGTERM now; how long the agent took to exit (None: still running after 15 s,
    /// then killed).
    fn terminate(&mut self) -> Option<Duration> {
        self.signal(Signal::SIGTERM);
        let took = self.wait_exit(Duration::from_secs(15));
        if took.is_none() {
            let _ = self.process.child.kill();
        }
        let _ = self.process.child.wait();
        took
    }
}

/// What one agent process left: its witness, log, and drop count.
struct Life {
    witness: Witness,
    log: Vec<String>,
}

/// One scenario's world: its Redis, config, exec script and the agents it ran.
struct Scenario {
    name: &'static str,
    dir: tempfile::TempDir,
    host: String,
    t0: i64,
    series: u64,
    server: Server,
    config: PathBuf,
    wrapper: Vec<String>,
    lives: Vec<Life>,
    buffer: PathBuf,
    /// How long the agent runs on after catching up, before its SIGTERM.
    linger: Duration,
    notes: Vec<String>,
    stop_times: Vec<Duration>,
    problems: Vec<String>,
    /// Samples lost in RAM at a SIGKILL: (exec runs `(from, to]`, internal samples from ms).
    kill_tail: Option<(u64, u64, i64)>,
}

impl Scenario {
    fn new(name: &'static str, knobs: &Knobs, disk: Disk) -> Scenario {
        let dir = tempfile::tempdir().expect("temp dir");
        // Redis with an append-only file synced on every write: what it acknowledged
        // before it was killed is still there after the restart.
        let server = Server::stack(&["--appendonly", "yes", "--appendfsync", "always"]);
        let host = format!("stress-{name}");
        let t0 = now_ms() / 1000 * 1000;
        let script = dir.path().join("gen.sh");
        // The run counter is written after the output: a run cut short by a stop or a
        // kill is not counted (its output is dropped whole, never half-read).
        std::fs::write(
            &script,
            format!(
                "n=$(( $(cat '{d}/runs' 2>/dev/null || echo 0) + 1 ))\n\
                 awk -v n=$n -v ts=$(( {t0} + n * 1000 )) -v s={s} \
                 'BEGIN {{ for (i = 1; i <= s; i++) print \"hc_\" i, n, \"ts=\" ts }}'\n\
                 echo $n > '{d}/runs.tmp' && mv '{d}/runs.tmp' '{d}/runs'\n",
                d = dir.path().display(),
                s = knobs.series,
            ),
        )
        .expect("write the exec script");
        let (buffer, wrapper) = buffer_for(dir.path(), disk);
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "hostname: {host}\ninterval: 1s\nflush_interval: 1s\nmax_buffer_size: {RING}\n\
                 buffer_dir: {}\nbuffer_sync_interval: 1s\n\
                 inputs:\n  - exec:\n      commands: [\"sh {}\"]\n      data_format: metrics\n  - internal\n\
                 outputs:\n  - redistimeseries:\n      url: redis://127.0.0.1:{}/\n      duplicate_policy: block\n  - stdout:\n      format: json\n",
                buffer.display(),
                script.display(),
                server.port
            ),
        )
        .expect("write the config");
        Scenario {
            name,
            dir,
            host,
            t0,
            series: knobs.series,
            server,
            config,
            wrapper,
            lives: Vec::new(),
            buffer,
            linger: knobs.linger,
            notes: Vec::new(),
            stop_times: Vec::new(),
            problems: Vec::new(),
            kill_tail: None,
        }
    }

    fn start(&self) -> Agent {
        Agent::start(&self.wrapper, &self.config)
    }

    /// Runs the exec script completed so far.
    fn runs(&self) -> u64 {
        std::fs::read_to_string(self.dir.path().join("runs"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    fn run_ts(&self, n: u64) -> i64 {
        self.t0 + n as i64 * 1000
    }

    /// The newest timestamp of `hc_i` in Redis (0 when it has none, or Redis is down).
    fn newest(&self, i: u64) -> i64 {
        let Ok(mut c) = redis::Client::open(self.server.url()).and_then(|c| c.get_connection())
        else {
            return 0;
        };
        // The exec input adds its `cmd` and `source` labels to the key: find it by labels.
        let got: redis::RedisResult<redis::Value> = redis::cmd("TS.MGET")
            .arg("FILTER")
            .arg(format!("name=hc_{i}"))
            .arg(format!("host={}", self.host))
            .query(&mut c);
        let Ok(redis::Value::Array(series)) = got else {
            return 0;
        };
        match series.first() {
            Some(redis::Value::Array(entry)) => match entry.get(2) {
                Some(redis::Value::Array(sample)) => match sample.first() {
                    Some(redis::Value::Int(ts)) => *ts,
                    _ => 0,
                },
                _ => 0,
            },
            _ => 0,
        }
    }

    /// Waits until the first and last series hold the run before the newest one.
    fn wait_caught_up(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let want = self.run_ts(self.runs().saturating_sub(1));
            if self.runs() > 1 && self.newest(1) >= want && self.newest(self.series) >= want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    fn wait_first_data(&mut self, agent: &Agent) {
        if !self.wait_caught_up(Duration::from_secs(30)) {
            self.problems
                .push("no data in Redis 30 s after the start".into());
            self.print_logs(&[agent]);
        }
    }

    /// Sleeps until just after a flush: the tick's exec run is done and sent, the next
    /// one far, so a stop cuts no run short.
    fn after_a_flush() {
        let ms = now_ms().rem_euclid(1000);
        std::thread::sleep(Duration::from_millis((1600 - ms) as u64 % 1000 + 1));
    }

    /// SIGTERM, and the agent's life recorded; a stop slower than 5 s is a problem. First
    /// two more ticks: the `internal` input reports drops at its next run, and the last
    /// drops happen at the tick before the output is back.
    fn stop(&mut self, mut agent: Agent) {
        std::thread::sleep(self.linger);
        Scenario::after_a_flush();
        // Seen through the agent's /proc root: a tmpfs lives in its mount namespace only.
        let segments = std::fs::read_dir(format!(
            "/proc/{}/root{}/redistimeseries",
            agent.process.child.id(),
            self.buffer.display()
        ))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
                .count()
        })
        .unwrap_or(0);
        if segments > 0 {
            self.notes.push(format!(
                "{segments} segment files still in buffer_dir at the stop"
            ));
        }
        let took = agent.terminate();
        match took {
            Some(t) if t <= STOP_BUDGET => self.stop_times.push(t),
            Some(t) => {
                self.stop_times.push(t);
                self.problems
                    .push(format!("SIGTERM took {t:.1?} (budget {STOP_BUDGET:?})"));
            }
            None => self
                .problems
                .push("still running 15 s after SIGTERM (killed)".into()),
        }
        self.bury(agent);
    }

    fn bury(&mut self, agent: Agent) {
        // The reader threads end with the pipes; give them a moment to read the rest.
        std::thread::sleep(Duration::from_millis(300));
        let witness = std::mem::take(&mut *agent.witness.lock().unwrap());
        let log = std::mem::take(&mut *agent.log.lock().unwrap());
        self.lives.push(Life { witness, log });
    }

    /// The outage: Redis killed (no persistence lost: appendfsync always) for `span`.
    fn outage(&mut self, span: Duration) {
        self.server.stop();
        std::thread::sleep(span);
    }

    fn redis_back_and_drain(&mut self, timeout: Duration) {
        self.server.restart();
        let back = Instant::now();
        if self.wait_caught_up(timeout) {
            self.notes.push(format!(
                "caught up {:.0?} after Redis was back",
                back.elapsed()
            ));
        } else {
            self.problems.push(format!(
                "not caught up {timeout:?} after Redis was back (run {}, newest hc_1 {})",
                self.runs(),
                self.newest(1)
            ));
        }
    }

    /// `samples on disk` of `rtcollector buffer status`.
    fn on_disk(&self) -> Option<u64> {
        let out = Command::new(BIN)
            .args(["buffer", "status", "--config"])
            .arg(&self.config)
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.trim().strip_prefix("samples on disk: ")?.parse().ok())
    }

    fn print_logs(&self, running: &[&Agent]) {
        eprintln!("===== {}: agent logs =====", self.name);
        for (i, life) in self.lives.iter().enumerate() {
            eprintln!("--- agent {} ---", i + 1);
            for l in &life.log {
                eprintln!("{l}");
            }
        }
        for a in running {
            eprintln!("--- running agent ---");
            for l in a.log.lock().unwrap().iter() {
                eprintln!("{l}");
            }
        }
        let redis_log =
            std::fs::read_to_string(self.server.dir.path().join("redis.log")).unwrap_or_default();
        eprintln!("===== {}: redis log (last 60 lines) =====", self.name);
        let lines: Vec<&str> = redis_log.lines().collect();
        for l in &lines[lines.len().saturating_sub(60)..] {
            eprintln!("{l}");
        }
    }
}

/// The agent's `buffer_dir` for `disk`, and the wrapper that mounts its tmpfs.
fn buffer_for(root: &Path, disk: Disk) -> (PathBuf, Vec<String>) {
    let mnt = root.join("mnt");
    let mount = |opts: String| {
        std::fs::create_dir_all(&mnt).expect("mount point");
        let script = format!(
            "set -e; mount -t tmpfs -o {opts} tmpfs '{}'; exec \"$@\"",
            mnt.display()
        );
        ["unshare", "-rm", "sh", "-c", &script, "sh"]
            .map(String::from)
            .to_vec()
    };
    match disk {
        Disk::Usable => (root.join("buffer"), Vec::new()),
        Disk::Small(kib) => (mnt.join("buffer"), mount(format!("size={kib}k"))),
        Disk::ReadOnly => (mnt.join("buffer"), mount("ro,size=1m".into())),
    }
}

/// Every series of `host` in Redis: identity → samples.
fn redis_contents(server: &Server, host: &str) -> HashMap<String, Vec<(i64, f64)>> {
    let mut c = server.client();
    let v: redis::Value = redis::cmd("TS.MRANGE")
        .arg("-")
        .arg("+")
        .arg("WITHLABELS")
        .arg("FILTER")
        .arg(format!("host={host}"))
        .query(&mut c)
        .expect("TS.MRANGE");
    let redis::Value::Array(series) = v else {
        panic!("TS.MRANGE: {v:?}")
    };
    let mut out = HashMap::new();
    for s in series {
        let redis::Value::Array(parts) = s else {
            panic!("TS.MRANGE entry: {s:?}")
        };
        let [_, redis::Value::Array(labels), redis::Value::Array(samples)] = &parts[..] else {
            panic!("TS.MRANGE entry: {parts:?}")
        };
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|kv| match kv {
                redis::Value::Array(kv) => (text(&kv[0]), text(&kv[1])),
                other => panic!("label {other:?}"),
            })
            .collect();
        let name = labels
            .iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.clone())
            .expect("a name label");
        let id = identity(&name, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let samples = samples
            .iter()
            .map(|p| match p {
                redis::Value::Array(p) => (
                    text(&p[0]).parse().expect("a timestamp"),
                    text(&p[1]).parse().expect("a value"),
                ),
                other => panic!("sample {other:?}"),
            })
            .collect();
        out.insert(id, samples);
    }
    out
}

/// One scenario's figures.
#[derive(Default)]
struct Figures {
    produced: u64,
    delivered: u64,
    /// Samples in Redis that no run made, or with another run's value.
    wrong: u64,
    missing: u64,
    internal_missing: u64,
    counted_dropped: u64,
    lost_at_kill: u64,
    unaccounted: i64,
    out_of_order: u64,
}

fn account(s: &Scenario) -> Figures {
    let runs = s.runs();
    let contents = redis_contents(&s.server, &s.host);
    let mut f = Figures {
        produced: runs * s.series,
        ..Figures::default()
    };
    // Generated series (`hc_{i}{cmd=…,source=exec}`): run n is at t0 + n s with value n.
    let by_name: HashMap<&str, &[(i64, f64)]> = contents
        .iter()
        .filter_map(|(id, v)| Some((id.split_once('{')?.0, v.as_slice())))
        .filter(|(name, _)| name.starts_with("hc_"))
        .collect();
    let mut missing_by_run: BTreeMap<u64, u64> = BTreeMap::new();
    for i in 1..=s.series {
        let got = by_name
            .get(format!("hc_{i}").as_str())
            .copied()
            .unwrap_or_default();
        let mut seen = HashSet::new();
        let mut last = i64::MIN;
        for &(ts, value) in got {
            if ts <= last {
                f.out_of_order += 1;
            }
            last = ts;
            let n = (ts - s.t0) / 1000;
            let ok = (ts - s.t0) % 1000 == 0
                && n >= 1
                && n as u64 <= runs
                && value == n as f64
                && seen.insert(n);
            if ok {
                f.delivered += 1;
            } else {
                f.wrong += 1;
            }
        }
        for n in 1..=runs {
            if !seen.contains(&(n as i64)) {
                *missing_by_run.entry(n).or_default() += 1;
            }
        }
    }
    f.missing = missing_by_run.values().sum();
    // Internal samples stdout saw that Redis lacks.
    let redis_internal: HashSet<(&str, i64)> = contents
        .iter()
        .filter(|(id, _)| !id.starts_with("hc_"))
        .flat_map(|(id, v)| v.iter().map(move |(ts, _)| (id.as_str(), *ts)))
        .collect();
    let mut internal_missing_from = Vec::new();
    for life in &s.lives {
        for (id, ts) in &life.witness.internal {
            if !redis_internal.contains(&(id.as_str(), *ts)) {
                internal_missing_from.push(*ts);
            }
        }
        f.counted_dropped += life.witness.dropped;
    }
    f.internal_missing = internal_missing_from.len() as u64;
    if let Some((from, to, ms)) = s.kill_tail {
        f.lost_at_kill = missing_by_run
            .range(from + 1..=to)
            .map(|(_, n)| n)
            .sum::<u64>()
            + internal_missing_from.iter().filter(|&&t| t >= ms).count() as u64;
    }
    f.unaccounted =
        (f.missing + f.internal_missing) as i64 - f.counted_dropped as i64 - f.lost_at_kill as i64;
    if !missing_by_run.is_empty() {
        let mut spans: Vec<(u64, u64, u64)> = Vec::new();
        for (&r, &n) in &missing_by_run {
            match spans.last_mut() {
                Some((_, to, m)) if *to + 1 == r && *m == n => *to = r,
                _ => spans.push((r, r, n)),
            }
        }
        let runs: Vec<String> = spans
            .iter()
            .map(|(a, b, n)| format!("{a}-{b}:{n}"))
            .collect();
        eprintln!(
            "{}: generated samples missing by run (runs:series each, {} runs): {}",
            s.name,
            missing_by_run.len(),
            runs.join(" ")
        );
    }
    f
}

fn high_cardinality(k: &Knobs) -> Scenario {
    let mut s = Scenario::new("high-cardinality", k, Disk::Usable);
    let agent = s.start();
    s.wait_first_data(&agent);
    s.outage(k.outage);
    s.redis_back_and_drain(Duration::from_secs(180));
    s.stop(agent);
    s
}

fn small_disk(name: &'static str, k: &Knobs, disk: Disk) -> Scenario {
    let mut s = Scenario::new(name, k, disk);
    let agent = s.start();
    s.wait_first_data(&agent);
    s.outage(k.short_outage);
    s.redis_back_and_drain(Duration::from_secs(120));
    s.stop(agent);
    s
}

fn kill_mid_replay(k: &Knobs) -> Scenario {
    let mut s = Scenario::new("kill-9-mid-replay", k, Disk::Usable);
    let mut agent = s.start();
    s.wait_first_data(&agent);
    let before = s.newest(1);
    s.outage(k.outage);
    let backlog = s.on_disk();
    s.server.restart();
    // Kill as soon as the replay has begun: the oldest buffered run reached Redis.
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.newest(1) <= before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    agent.signal(Signal::SIGKILL);
    let killed_ms = now_ms();
    agent.wait_exit(Duration::from_secs(5));
    // An orphaned exec run may still finish and count itself.
    std::thread::sleep(Duration::from_millis(500));
    let killed_at_run = s.runs();
    s.bury(agent);
    let left = s.on_disk();
    s.notes.push(format!(
        "on disk before Redis was back: {}, left at the kill: {}",
        backlog.map_or("?".into(), |n| n.to_string()),
        left.map_or("?".into(), |n| n.to_string())
    ));
    if left.unwrap_or(0) == 0 {
        s.problems
            .push("the kill did not happen during the replay (nothing left on disk)".into());
    }
    // What the killed agent had in RAM only: its ring (at most max_buffer_size) of the
    // runs just before the kill, and their internal samples.
    let ticks_in_ring = RING.div_ceil(s.series) + 1;
    s.kill_tail = Some((
        killed_at_run.saturating_sub(ticks_in_ring),
        killed_at_run,
        killed_ms - ticks_in_ring as i64 * 1000 - 1000,
    ));
    let agent = s.start();
    if !s.wait_caught_up(Duration::from_secs(180)) {
        s.problems
            .push("the restarted agent did not catch up within 180 s".into());
    }
    s.stop(agent);
    s
}

fn sighup_storm(k: &Knobs) -> Scenario {
    let mut s = Scenario::new("sighup-storm", k, Disk::Usable);
    let mut agent = s.start();
    s.wait_first_data(&agent);
    s.server.stop();
    std::thread::sleep(k.short_outage / 2);
    for _ in 0..k.sighups {
        agent.signal(Signal::SIGHUP);
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = agent.terminate();
    match took {
        Some(t) => {
            s.stop_times.push(t);
            if t > STOP_BUDGET {
                s.problems
                    .push(format!("SIGTERM after the storm took {t:.1?}"));
            }
        }
        None => s
            .problems
            .push("still running 15 s after the SIGTERM behind the storm".into()),
    }
    s.bury(agent);
    let reloads = s.lives[0]
        .log
        .iter()
        .filter(|l| l.contains("SIGHUP: reloading"))
        .count();
    s.notes
        .push(format!("{} SIGHUPs made {reloads} reloads", k.sighups));
    let agent = s.start();
    std::thread::sleep(k.short_outage / 2);
    s.redis_back_and_drain(Duration::from_secs(120));
    s.stop(agent);
    s
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let k = Knobs::from_env();
    let only = std::env::var("RTC_OUTAGE_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|o| o.trim() == name);
    type Run = fn(&Knobs) -> Scenario;
    let all: [(&str, Run); 5] = [
        ("high-cardinality", high_cardinality),
        ("full-disk", |k| {
            small_disk("full-disk", k, Disk::Small(k.tmpfs_kib))
        }),
        ("read-only-disk", |k| {
            small_disk("read-only-disk", k, Disk::ReadOnly)
        }),
        ("kill-9-mid-replay", kill_mid_replay),
        ("sighup-storm", sighup_storm),
    ];
    println!(
        "{} series/s (exec) + internal, interval and flush 1 s, max_buffer_size {RING}, outages {:?} / {:?}, Redis Stack on 127.0.0.1",
        k.series, k.outage, k.short_outage
    );
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for (name, run) in all.iter().filter(|(n, _)| wanted(n)) {
        let started = Instant::now();
        let s = run(&k);
        let f = account(&s);
        let mut problems = s.problems.clone();
        if f.unaccounted != 0 {
            problems.push(format!("{} samples unaccounted", f.unaccounted));
        }
        if f.wrong != 0 {
            problems.push(format!("{} wrong samples in Redis", f.wrong));
        }
        if f.lost_at_kill > RING + 100 {
            problems.push(format!(
                "{} lost at the kill: more than the ring holds",
                f.lost_at_kill
            ));
        }
        let stops: Vec<String> = s.stop_times.iter().map(|t| format!("{t:.2?}")).collect();
        let row = format!(
            "| {name} | {} | {} | {} | {} | {} | {} | **{}** | {} | {} |",
            f.produced,
            f.delivered,
            f.internal_missing,
            f.counted_dropped,
            f.lost_at_kill,
            f.wrong + f.out_of_order,
            f.unaccounted,
            stops.join(", "),
            s.notes.join("; "),
        );
        println!("{row}   [{:.0?}]", started.elapsed());
        if !problems.is_empty() {
            println!("  PROBLEMS in {name}: {}", problems.join("; "));
            s.print_logs(&[]);
            failed.push(*name);
        }
        rows.push(row);
    }
    println!();
    println!("| scenario | exec samples produced | in Redis | other samples missing (internal, exec_*) | counted as dropped | lost in RAM at SIGKILL | wrong or out of order | unaccounted | SIGTERM → exit | notes |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    if !failed.is_empty() {
        println!("FAILED: {}", failed.join(", "));
        std::process::exit(1);
    }
}

//! The running agent: one-shot collection on fixture trees, signals, reload, threads,
//! and one broken input not stopping the others.

mod support;
use nix::sys::signal::Signal;
use std::time::Duration;
use support::agent::{run, stderr, stdout, Agent};
use support::samples::samples;
use support::scratch::{fixture, Scratch};

fn fixture_config(fixture_name: &str, inputs: &str, extra: &str) -> String {
    let root = fixture(fixture_name);
    format!(
        "hostname: testbox\nprocfs_root: {}\nsysfs_root: {}\n{extra}inputs:\n{inputs}outputs:\n  - stdout:\n      format: json\n",
        root.join("proc").display(),
        root.join("sys").display()
    )
}

#[test]
fn once_reports_exact_values_from_a_fixture_tree() {
    let s = Scratch::new();
    let path = s.config(&fixture_config("basic", "  - linux_mem\n", ""));
    let o = run(&["run", "--once", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = samples(&stdout(&o));
    let kib = |n: u64| serde_json::json!(n * 1024);
    assert_eq!(got["mem_total_bytes"]["value"], kib(8_046_600));
    assert_eq!(got["mem_available_bytes"]["value"], kib(5_731_380));
    assert_eq!(got["mem_free_bytes"]["value"], kib(1_925_624));
    assert_eq!(got["mem_total_bytes"]["labels"]["host"], "testbox");
    let ts = got["mem_total_bytes"]["timestamp_ms"].as_i64().unwrap();
    assert_eq!(ts % 10_000, 0, "timestamps fall on the interval boundary");
}

#[test]
fn once_runs_every_linux_input_on_the_fixture_tree() {
    let s = Scratch::new();
    let inputs: String = [
        "linux_cpu",
        "linux_mem",
        "linux_io",
        "linux_net",
        "linux_swap",
        "system",
        "processes",
        "kernel",
        "netstat",
        "nstat",
    ]
    .iter()
    .map(|n| format!("  - {n}\n"))
    .collect();
    let path = s.config(&fixture_config("basic", &inputs, ""));
    let o = run(&["run", "--once", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("WARN"),
        "no input failed: {}",
        stderr(&o)
    );
    let got = samples(&stdout(&o));
    let value = |k: &str| {
        got.get(k).unwrap_or_else(|| panic!("no sample {k}"))["value"]
            .as_f64()
            .unwrap()
    };
    // Each figure below is read straight from a file of tests/fixtures/basic/proc.
    assert_eq!(value("diskio_read_bytes{device=sda}"), 23_865_722.0 * 512.0);
    assert_eq!(value("net_rx_bytes{iface=eth0}"), 98_765_432_101.0);
    assert_eq!(value("net_rx_bytes{iface=eth0.100}"), 5_120_000.0);
    assert_eq!(value("system_load1"), 0.42);
    assert_eq!(value("system_n_cpus"), 4.0);
    assert_eq!(value("kernel_context_switches"), 402_118_532.0);
    assert_eq!(value("kernel_pressure_avg10{resource=io,type=some}"), 4.02);
    assert_eq!(value("kernel_fd_used"), 1344.0);
    assert_eq!(value("tcp_active_opens"), 254_301.0);
    assert_eq!(value("nstat_tcp_ActiveOpens"), 254_301.0);
    assert_eq!(value("processes_total"), 12.0);
    assert_eq!(value("mem_total_bytes"), 8_046_600.0 * 1024.0);
    // A static tree has no CPU time passing between the baseline and the collection.
    assert!(!got.keys().any(|k| k.starts_with("cpu_")));
    // Every sample of the run carries the same interval-boundary timestamp.
    let stamps: std::collections::BTreeSet<i64> = got
        .values()
        .map(|v| v["timestamp_ms"].as_i64().unwrap())
        .collect();
    assert_eq!(stamps.len(), 1, "{stamps:?}");
}

#[test]
fn a_garbage_proc_file_fails_only_its_input() {
    let s = Scratch::new();
    let path = s.config(&fixture_config(
        "garbage",
        "  - linux_mem\n  - internal\n",
        "",
    ));
    let o = run(&["run", "--once", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = samples(&stdout(&o));
    assert!(
        !got.keys().any(|k| k.starts_with("mem_")),
        "no half-parsed memory values"
    );
    assert!(
        got.contains_key("internal_memstats_sys_bytes"),
        "the other input still reports"
    );
    let err = stderr(&o);
    assert_eq!(err.matches("input linux_mem:").count(), 1, "{err}");
    assert!(err.contains("meminfo"), "the error names the file: {err}");
}

#[test]
fn a_failing_input_logs_once_while_it_keeps_failing() {
    let s = Scratch::new();
    let path = s.config(&fixture_config(
        "garbage",
        "  - linux_mem\n  - internal\n",
        "interval: 200ms\n",
    ));
    let mut agent = Agent::start(&path);
    let (lines, ok) = agent.wait_for(Duration::from_secs(10), |l| {
        l.contains("internal_agent_gather_errors\"") && l.contains("\"value\":4")
    });
    assert!(ok, "the input ran at least 4 times: {lines:#?}");
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(6)).expect("exit");
    let mut all = lines;
    all.extend(agent.drain());
    let warnings = all
        .iter()
        .filter(|l| l.starts_with("ERR") && l.contains("input linux_mem:"))
        .count();
    assert_eq!(warnings, 1, "{all:#?}");
}

#[test]
fn sigterm_flushes_and_exits_zero_within_five_seconds() {
    let s = Scratch::new();
    // Flushes only every minute: what is printed after SIGTERM comes from the final flush.
    let path = s.config(&fixture_config(
        "basic",
        "  - linux_mem\n",
        "interval: 1s\nflush_interval: 1m\n",
    ));
    let mut agent = Agent::start(&path);
    let (_, started) = agent.wait_for(Duration::from_secs(10), |l| l.contains("started"));
    assert!(started);
    // Let at least one collection happen.
    std::thread::sleep(Duration::from_millis(2_200));
    agent.signal(Signal::SIGTERM);
    let (status, took) = agent.wait_exit(Duration::from_secs(6)).expect("exited");
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let out: Vec<String> = agent.drain();
    assert!(
        out.iter()
            .any(|l| l.starts_with("OUT") && l.contains("\"mem_total_bytes\"")),
        "the final flush delivered the buffered samples: {out:#?}"
    );
}

#[test]
fn sighup_reloads_and_a_bad_config_keeps_the_old_one() {
    let s = Scratch::new();
    let good = fixture_config("basic", "  - linux_mem\n", "interval: 200ms\n");
    let path = s.config(&good);
    let mut agent = Agent::start(&path);
    let (_, ok) = agent.wait_for(Duration::from_secs(10), |l| {
        l.contains("\"mem_total_bytes\"")
    });
    assert!(ok);

    s.config("interval: [broken\n");
    agent.signal(Signal::SIGHUP);
    let (lines, failed) = agent.wait_for(Duration::from_secs(5), |l| l.contains("reload failed"));
    assert!(failed, "{lines:#?}");
    let (_, still) = agent.wait_for(Duration::from_secs(5), |l| {
        l.contains("\"mem_total_bytes\"")
    });
    assert!(still, "the old config keeps running");

    s.config(&fixture_config(
        "basic",
        "  - linux_mem\n  - internal\n",
        "interval: 200ms\n",
    ));
    agent.signal(Signal::SIGHUP);
    let (lines, reloaded) =
        agent.wait_for(Duration::from_secs(5), |l| l.contains("reloaded: 2 inputs"));
    assert!(reloaded, "{lines:#?}");
    let (_, new_input) = agent.wait_for(Duration::from_secs(5), |l| {
        l.contains("\"internal_agent_threads\"")
    });
    assert!(new_input, "the reloaded config's new input runs");
    agent.signal(Signal::SIGTERM);
    assert!(agent
        .wait_exit(Duration::from_secs(6))
        .expect("exit")
        .0
        .success());
}

#[test]
fn idle_agent_uses_at_most_two_threads() {
    let s = Scratch::new();
    let path = s.config(&fixture_config(
        "basic",
        "  - linux_mem\n  - internal\n",
        "interval: 200ms\n",
    ));
    let mut agent = Agent::start(&path);
    let (lines, ok) = agent.wait_for(Duration::from_secs(10), |l| {
        l.contains("\"internal_agent_threads\"")
    });
    assert!(ok, "{lines:#?}");
    std::thread::sleep(Duration::from_millis(500));
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.child.id())).unwrap();
    let threads: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(threads <= 2, "{threads} threads");
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(6));
}

#[test]
fn sigint_also_stops_cleanly() {
    let s = Scratch::new();
    let path = s.config(&fixture_config("basic", "  - linux_mem\n", ""));
    let mut agent = Agent::start(&path);
    let (_, started) = agent.wait_for(Duration::from_secs(10), |l| l.contains("started"));
    assert!(started);
    agent.signal(Signal::SIGINT);
    let (status, _) = agent.wait_exit(Duration::from_secs(6)).expect("exited");
    assert!(status.success());
}

#[test]
fn a_second_agent_on_the_same_buffer_dir_is_refused_naming_the_first() {
    let s = Scratch::new();
    let buffer = s.dir.path().join("shared-buffer");
    let path = s.config(&fixture_config(
        "basic",
        "  - linux_mem\n",
        &format!("buffer_dir: {}\n", buffer.display()),
    ));
    let mut first = Agent::start(&path);
    let (_, started) = first.wait_for(Duration::from_secs(10), |l| l.contains("started"));
    assert!(started);
    let second = run(&["run", "--config", path.to_str().unwrap()]);
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let message = stderr(&second);
    assert!(
        message.contains(&format!(
            "buffer_dir {} is in use by another rtcollector (pid {})",
            buffer.display(),
            first.child.id()
        )),
        "{message}"
    );
    assert!(!message.contains("started"), "{message}");
    let status = run(&["buffer", "status", "--config", path.to_str().unwrap()]);
    assert!(
        stdout(&status).starts_with(&format!(
            "buffer_dir {}: in use by rtcollector pid {}\n",
            buffer.display(),
            first.child.id()
        )),
        "{}",
        stdout(&status)
    );
    first.signal(Signal::SIGTERM);
    first
        .wait_exit(Duration::from_secs(6))
        .expect("first exits");
    // The lock went with the first agent: a new one starts on the same directory.
    let mut third = Agent::start(&path);
    let (lines, started) = third.wait_for(Duration::from_secs(10), |l| l.contains("started"));
    assert!(started, "{lines:#?}");
    third.signal(Signal::SIGTERM);
    third
        .wait_exit(Duration::from_secs(6))
        .expect("third exits");
}

/// Timestamps of the JSON lines of metric `name` among `lines`.
fn stamps_of(lines: &[String], name: &str) -> Vec<i64> {
    let needle = format!("{{\"name\":\"{name}\"");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("OUT "))
        .filter(|l| l.starts_with(&needle))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            v["timestamp_ms"].as_i64().expect("timestamp_ms")
        })
        .collect()
}

/// A reload that leaves an input's config as it was keeps that input running: its rate
/// baselines survive, so the ticks right after a SIGHUP have their `_rate` series too (a
/// rebuilt input needs a tick to take a new baseline, and that tick had none).
#[test]
fn a_reload_keeps_unchanged_inputs_running_with_their_baselines() {
    let s = Scratch::new();
    let path = s.config(
        "interval: 1s\ninputs:\n  - kernel\n  - linux_mem\noutputs:\n  - stdout:\n      format: json\n",
    );
    let mut agent = Agent::start(&path);
    let (lines, ok) = agent.wait_for(Duration::from_secs(10), |l| {
        l.contains("\"kernel_context_switches_rate\"")
    });
    assert!(ok, "{lines:#?}");
    // An output option changes; the inputs' do not.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}metric_batch_size: 900\n")).unwrap();
    agent.signal(Signal::SIGHUP);
    let (lines, reloaded) = agent.wait_for(Duration::from_secs(10), |l| {
        l.contains("reloaded: 2 inputs")
    });
    assert!(reloaded, "{lines:#?}");
    std::thread::sleep(Duration::from_millis(3500));
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(6)).expect("exits");
    let after = agent.drain();
    let ticks = stamps_of(&after, "mem_total_bytes");
    let with_rate = stamps_of(&after, "kernel_context_switches_rate");
    assert!(ticks.len() >= 3, "{after:#?}");
    assert_eq!(
        with_rate, ticks,
        "every tick after the reload has its rate: {after:#?}"
    );
    let reload_line = lines.last().expect("the reload line");
    assert!(
        reload_line.contains("(2 unchanged, kept running)"),
        "{reload_line}"
    );
}

#[test]
fn a_reload_with_values_that_used_to_abort_keeps_the_running_agent() {
    let s = Scratch::new();
    let path = s.config(&fixture_config(
        "basic",
        "  - linux_mem\n",
        "interval: 200ms\n",
    ));
    let mut agent = Agent::start(&path);
    let (_, ok) = agent.wait_for(Duration::from_secs(10), |l| {
        l.contains("\"mem_total_bytes\"")
    });
    assert!(ok);
    for (extra, message) in [
        // A ring of 2e9 samples aborted on allocation; a batch of 2^64-1 panicked.
        (
            "interval: 200ms\nmax_buffer_size: 2000000000\n",
            "max_buffer_size: must be at most 10000000",
        ),
        (
            "interval: 200ms\nmetric_batch_size: 18446744073709551615\n",
            "metric_batch_size: must be at most 100000",
        ),
        ("interval: 1e300\n", "interval: must be at most 1d"),
    ] {
        s.config(&fixture_config("basic", "  - linux_mem\n", extra));
        agent.signal(Signal::SIGHUP);
        let (lines, failed) = agent.wait_for(Duration::from_secs(5), |l| {
            l.contains("reload failed") && l.contains(message)
        });
        assert!(failed, "{extra}: {lines:#?}");
        let (_, still) = agent.wait_for(Duration::from_secs(5), |l| {
            l.contains("\"mem_total_bytes\"")
        });
        assert!(still, "{extra}: the old config keeps running");
    }
    s.config("interval: 200ms\ninputs: [linux_mem]\noutputs: []\n");
    agent.signal(Signal::SIGHUP);
    let (lines, failed) = agent.wait_for(Duration::from_secs(5), |l| {
        l.contains("reload failed") && l.contains("no outputs")
    });
    assert!(failed, "{lines:#?}");
    let (_, still) = agent.wait_for(Duration::from_secs(5), |l| {
        l.contains("\"mem_total_bytes\"")
    });
    assert!(
        still,
        "a config without outputs does not replace the running one"
    );
    agent.signal(Signal::SIGTERM);
    assert!(agent
        .wait_exit(Duration::from_secs(6))
        .expect("exit")
        .0
        .success());
}

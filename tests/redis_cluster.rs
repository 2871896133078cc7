//! The `redistimeseries` output on a real Redis Cluster: six Redis Stack nodes (three
//! masters, three replicas) made with `redis-cli --cluster create`, per test. Samples of
//! several hosts land on their slots with labels, policy and downsampling; resharding and a
//! failover while writing lose nothing. Everything is read back from the node that owns
//! each key.
//!
//! Needs `RTC_REDIS_STACK_DIR` (see tests/support/mod.rs); fails, never skips, without it.
#![cfg(feature = "cluster")]

mod support;

use rtcollector::common::redis::cluster::hash_slot;
use rtcollector::core::{Output, OutputError, Sample, SeriesTable, SeriesView, WriteReport};
use rtcollector::outputs::redistimeseries::RedisTimeSeries;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::queued_output::redistimeseries;
use support::redis_cluster::RedisCluster;
use support::redis_server::{info_field, text, ts_info, ts_labels, ts_range};

/// 2023-11-14T22:13:20Z, a whole second.
const T0: i64 = 1_700_000_000_000;

fn output(yaml: &str) -> RedisTimeSeries {
    redistimeseries(yaml)
}

/// Writes `batch` as the agent would: again after each `Retry`, and the samples it
/// deferred again, until all are taken.
fn write_until_taken(
    o: &mut RedisTimeSeries,
    table: &RefCell<SeriesTable>,
    batch: &[Sample],
    cluster: &RedisCluster,
) -> WriteReport {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut left = batch.to_vec();
    let mut total = WriteReport::default();
    loop {
        let last = match futures_lite::future::block_on(o.write(&left, SeriesView(table))) {
            Ok(r) => {
                total.written += r.written;
                total.rejected += r.rejected;
                let Some(d) = o.deferred() else {
                    return total;
                };
                let why = d.why.to_string();
                left = d.samples.iter().map(|&i| left[i as usize]).collect();
                why
            }
            Err(OutputError::Retry(e)) => e,
            Err(e) => panic!("{e:?}"),
        };
        assert!(
            Instant::now() < deadline,
            "a batch was not taken within 60s: {last}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes `batch` once and expects none of it taken: the error, or why every sample was
/// deferred.
fn not_taken(o: &mut RedisTimeSeries, table: &RefCell<SeriesTable>, batch: &[Sample]) -> String {
    match futures_lite::future::block_on(o.write(batch, SeriesView(table))) {
        Err(OutputError::Retry(e)) => e,
        Ok(r) => {
            let d = o.deferred().expect("nothing taken, so everything deferred");
            assert_eq!((r.written, d.samples.len()), (0, batch.len()), "{r:?}");
            d.why.to_string()
        }
        other => panic!("{other:?}"),
    }
}

fn s(series: u32, ts_ms: i64, value: f64) -> Sample {
    Sample {
        series,
        ts_ms,
        value,
    }
}

/// A host name whose hash tag falls in the first `below` slots (the first master's, and
/// the ones `redis-cli --cluster reshard` moves first).
fn host_in_low_slots(tag: &str, below: u16) -> String {
    (0..)
        .map(|i| format!("{tag}{i}"))
        .find(|h| hash_slot(h.as_bytes()) < below)
        .expect("some name")
}

#[test]
fn hosts_land_on_their_slot_with_labels_policy_and_downsampling() {
    let cl = RedisCluster::start(3, 1);
    let yaml = format!(
        "cluster: true\nnodes: {}\nretention: 30d\nduplicate_policy: max\nlabels: {{site: lab}}\n\
         downsample:\n  - {{every: 1m, aggregation: avg, retention: 1y}}\n",
        cl.seeds_yaml()
    );
    let mut owners = BTreeSet::new();
    for h in 1..=10 {
        let host = format!("host{h}");
        let mut o = output(&yaml);
        let table = RefCell::new(SeriesTable::new(&host, 100));
        let rx = table
            .borrow_mut()
            .intern("net_rx_bytes", "", &[("iface", "eth0")])
            .unwrap();
        let mem = table.borrow_mut().intern("mem_used", "", &[]).unwrap();
        let batch: Vec<Sample> = (0..20)
            .flat_map(|k| {
                [
                    s(rx, T0 + k * 1000, (k * h) as f64),
                    s(mem, T0 + k * 1000, 0.5 + k as f64),
                ]
            })
            .collect();
        let r = write_until_taken(&mut o, &table, &batch, &cl);
        assert_eq!((r.written, r.rejected), (40, 0));

        let key = format!("net_rx_bytes:{{{host}}}:eth0");
        assert_eq!(cl.keyslot(&key), hash_slot(host.as_bytes()));
        let owner = cl.owner_of_slot(cl.keyslot(&key), &[]);
        owners.insert(owner);
        let mut c = cl.nodes[owner].client();
        let want: Vec<(i64, f64)> = (0..20).map(|k| (T0 + k * 1000, (k * h) as f64)).collect();
        assert_eq!(ts_range(&mut c, &key), want, "{key}");
        let mem_key = format!("mem_used:{{{host}}}");
        let want: Vec<(i64, f64)> = (0..20).map(|k| (T0 + k * 1000, 0.5 + k as f64)).collect();
        assert_eq!(ts_range(&mut c, &mem_key), want, "{mem_key}");
        let labels = ts_labels(&mut c, &key);
        for (k, v) in [
            ("host", host.as_str()),
            ("iface", "eth0"),
            ("name", "net_rx_bytes"),
            ("site", "lab"),
        ] {
            assert!(labels.contains(&(k.into(), v.into())), "{labels:?}");
        }
        let info = ts_info(&mut c, &key);
        assert_eq!(text(&info_field(&info, "retentionTime")), "2592000000");
        assert_eq!(
            text(&info_field(&info, "duplicatePolicy")).to_lowercase(),
            "max"
        );
        // The destination is on the same node (RedisTimeSeries wants it on the shard),
        // with the rule in place.
        let dest = format!("{key}:avg_1m");
        let dest_info = ts_info(&mut c, &dest);
        assert_eq!(text(&info_field(&dest_info, "sourceKey")), key);
        assert_eq!(
            text(&info_field(&dest_info, "retentionTime")),
            "31536000000"
        );
    }
    assert!(
        owners.len() >= 2,
        "ten hosts should spread over the masters: {owners:?}"
    );
}

#[test]
fn keys_without_a_hash_tag_spread_over_slots_and_are_written_per_slot() {
    let cl = RedisCluster::start(3, 1);
    let mut o = output(&format!(
        "cluster: true\nnodes: {}\nkey_format: \"{{name}}:{{host}}{{:values}}\"\n",
        cl.seeds_yaml()
    ));
    let table = RefCell::new(SeriesTable::new("spread", 100));
    let ids: Vec<u32> = (0..30)
        .map(|i| {
            table
                .borrow_mut()
                .intern("disk_used", "", &[("device", &format!("sd{i}"))])
                .unwrap()
        })
        .collect();
    let batch: Vec<Sample> = (0..5)
        .flat_map(|k| {
            ids.iter()
                .map(move |&id| s(id, T0 + k * 1000, (id as i64 * 10 + k) as f64))
        })
        .collect();
    let r = write_until_taken(&mut o, &table, &batch, &cl);
    assert_eq!((r.written, r.rejected), (150, 0));
    let mut owners = BTreeSet::new();
    for (i, &id) in ids.iter().enumerate() {
        let key = format!("disk_used:spread:sd{i}");
        let owner = cl.owner_of_slot(cl.keyslot(&key), &[]);
        owners.insert(owner);
        let want: Vec<(i64, f64)> = (0..5)
            .map(|k| (T0 + k * 1000, (id as i64 * 10 + k) as f64))
            .collect();
        assert_eq!(ts_range(&mut cl.nodes[owner].client(), &key), want, "{key}");
    }
    assert_eq!(owners.len(), 3, "thirty keys over three masters");
    let counters = o.cluster_counters().expect("cluster mode");
    assert_eq!(counters.moved, 0, "the map was right from the start");
}

/// Writes one sample per series per "second" (timestamps T0 + k s) while `during` runs
/// after `start` writes; then `after` more. Returns how many seconds were written.
fn write_through(
    o: &mut RedisTimeSeries,
    table: &RefCell<SeriesTable>,
    ids: &[u32],
    cl: &mut RedisCluster,
    start: i64,
    mut during: impl FnMut(&mut RedisCluster, i64) -> bool,
    after: i64,
) -> i64 {
    let mut k = 0;
    let mut done_at = None;
    loop {
        let batch: Vec<Sample> = ids
            .iter()
            .map(|&id| s(id, T0 + k * 1000, (k * 100 + id as i64) as f64))
            .collect();
        let r = write_until_taken(o, table, &batch, cl);
        assert_eq!(r.rejected, 0);
        k += 1;
        if k >= start && done_at.is_none() && during(cl, k) {
            done_at = Some(k);
        }
        if done_at.is_some_and(|d| k >= d + after) {
            return k;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn assert_every_second(cl: &RedisCluster, dead: &[usize], host: &str, ids: &[u32], seconds: i64) {
    for (i, &id) in ids.iter().enumerate() {
        let key = format!("m{i}:{{{host}}}");
        let mut c = cl.client_for(&key, dead);
        let want: Vec<(i64, f64)> = (0..seconds)
            .map(|k| (T0 + k * 1000, (k * 100 + id as i64) as f64))
            .collect();
        let got = ts_range(&mut c, &key);
        if got.len() != want.len() {
            for (n, node) in cl
                .nodes
                .iter()
                .enumerate()
                .filter(|(n, _)| !dead.contains(n))
            {
                let mut c = node.client();
                let _ = redis::cmd("READONLY").query::<()>(&mut c);
                let r: redis::RedisResult<Vec<(i64, String)>> = redis::cmd("TS.RANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .query(&mut c);
                let role: redis::RedisResult<Vec<redis::Value>> = redis::cmd("ROLE").query(&mut c);
                eprintln!(
                    "{key} on node {n} (port {}, {:?}): {:?} samples",
                    node.port,
                    role.map(|r| r.first().cloned()),
                    r.map(|v| v.len())
                );
            }
        }
        assert_eq!(got.len(), want.len(), "{key}: samples missing");
        assert_eq!(got, want, "{key}");
    }
}

fn series(table: &RefCell<SeriesTable>, n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| {
            table
                .borrow_mut()
                .intern(&format!("m{i}"), "", &[])
                .unwrap()
        })
        .collect()
}

#[test]
fn resharding_while_writing_loses_nothing() {
    let mut cl = RedisCluster::start(3, 1);
    let host = host_in_low_slots("reshard", 100);
    let slot = hash_slot(host.as_bytes());
    let from = cl.owner_of_slot(slot, &[]);
    let to = cl.owner_of_slot(16383, &[]);
    assert_ne!(from, to);
    let mut o = output(&format!("cluster: true\nnodes: {}\n", cl.seeds_yaml()));
    let table = RefCell::new(SeriesTable::new(&host, 100));
    let ids = series(&table, 20);
    let mut child = None;
    let seconds = write_through(
        &mut o,
        &table,
        &ids,
        &mut cl,
        5,
        |cl, _| {
            let c = child.get_or_insert_with(|| cl.reshard(from, to, 300));
            match c.try_wait().expect("reshard status") {
                Some(status) => {
                    assert!(status.success(), "reshard failed\n{}", cl.logs());
                    true
                }
                None => false,
            }
        },
        5,
    );
    assert_eq!(cl.owner_of_slot(slot, &[]), to, "the host's slot moved");
    assert_every_second(&cl, &[], &host, &ids, seconds);
    // The output learned of the move by a redirect (MOVED, or ASK mid-migration), or by
    // reading the slot map again while the slots moved: a map whose masters show no replica
    // yet is read every 5 s, and on a loaded machine that read can fall between the slot's
    // move and the next write (seen in CI: moved 0, asked 0, two map reads). Which one it was
    // is timing; that it was seen, and nothing lost, is not.
    let counters = o.cluster_counters().expect("cluster mode");
    assert!(
        counters.moved + counters.asked > 0 || counters.refreshes >= 2,
        "the move was seen: {counters:?}"
    );
}

#[test]
fn failover_while_writing_loses_nothing() {
    let mut cl = RedisCluster::start(3, 1);
    let host = "failover".to_string();
    let slot = hash_slot(host.as_bytes());
    let master = cl.owner_of_slot(slot, &[]);
    let mut o = output(&format!(
        "cluster: true\nnodes: {}\nconnect_timeout: 1s\nwrite_timeout: 2s\n",
        cl.seeds_yaml()
    ));
    let table = RefCell::new(SeriesTable::new(&host, 100));
    let ids = series(&table, 20);
    let mut killed = false;
    let seconds = write_through(
        &mut o,
        &table,
        &ids,
        &mut cl,
        10,
        |cl, _| {
            if !killed {
                cl.kill(master);
                killed = true;
            }
            cl.owner_of_slot(slot, &[master]) != master
        },
        10,
    );
    cl.wait_ok(&[master], Duration::from_secs(30));
    assert_every_second(&cl, &[master], &host, &ids, seconds);
    let counters = o.cluster_counters().expect("cluster mode");
    assert!(
        counters.refreshes >= 2,
        "the map was read again: {counters:?}"
    );
}

/// A master down under Redis's default `cluster-node-timeout` of 15 s: until its replica
/// takes over, the samples of the devices on its slots are deferred (kept on disk), while
/// every other device's series stay current on the other masters; once the replica has
/// taken over, the deferred samples follow and nothing is missing.
#[test]
fn a_master_down_holds_back_only_the_series_on_its_slots() {
    use rtcollector::core::spill::SpillConfig;
    use support::queued_output::QueuedOutput;

    let mut cl = RedisCluster::start_with_timeout(3, 1, true, 15_000);
    let device_on = |master: Option<usize>, not: Option<usize>| {
        (0..)
            .map(|i| format!("dev{i}"))
            .find(|d| {
                let owner = cl.owner_of_slot(hash_slot(d.as_bytes()), &[]);
                master.is_none_or(|m| owner == m) && not.is_none_or(|n| owner != n)
            })
            .expect("some name")
    };
    let down_dev = device_on(None, None);
    let master = cl.owner_of_slot(hash_slot(down_dev.as_bytes()), &[]);
    let up_dev = device_on(None, Some(master));
    let up_master = cl.owner_of_slot(hash_slot(up_dev.as_bytes()), &[]);

    let scratch = support::scratch::Scratch::new();
    let o = output(&format!(
        "cluster: true\nnodes: {}\nkey_format: \"{{name}}:{{{{{{dev}}}}}}\"\nconnect_timeout: 1s\nwrite_timeout: 2s\n",
        cl.seeds_yaml()
    ));
    let mut q = QueuedOutput::new(Box::new(o), "agent");
    q.runner.queue.attach_spills(SpillConfig {
        dir: scratch.dir.path().join("buffer"),
        max_bytes: 16 << 20,
        sync_interval: Duration::from_secs(1),
    });
    let devices = [down_dev.as_str(), up_dev.as_str()];
    // (device, metric, series id)
    let ids: Vec<(usize, usize, u32)> = (0..2)
        .flat_map(|d| (0..5).map(move |i| (d, i)))
        .map(|(d, i)| (d, i, q.intern(&format!("m{i}"), &[("dev", devices[d])])))
        .collect();
    let round = |q: &mut QueuedOutput, k: i64| {
        let batch: Vec<Sample> = ids
            .iter()
            .map(|&(_, _, id)| s(id, T0 + k * 1000, (k * 100 + i64::from(id)) as f64))
            .collect();
        q.push(&batch);
        q.flush()
    };
    let latest = |cl: &RedisCluster, node: usize, key: &str| -> Option<i64> {
        let mut c = cl.nodes[node].client();
        let got: redis::RedisResult<Vec<redis::Value>> =
            redis::cmd("TS.GET").arg(key).query(&mut c);
        match got.ok()?.first()? {
            redis::Value::Int(t) => Some(*t),
            _ => None,
        }
    };

    let mut k = 0;
    for _ in 0..3 {
        assert!(round(&mut q, k), "written while all is well\n{}", cl.logs());
        k += 1;
    }
    cl.kill(master);
    let killed = Instant::now();
    let mut current_rounds = 0;
    // Well within the node timeout nobody has failed the master: the other masters take
    // writes, and the up device's series must be current after every flush.
    while killed.elapsed() < Duration::from_secs(10) {
        assert!(round(&mut q, k), "a flush failed as a whole\n{}", cl.logs());
        for i in 0..5 {
            let key = format!("m{i}:{{{up_dev}}}");
            assert_eq!(
                latest(&cl, up_master, &key),
                Some(T0 + k * 1000),
                "{key} is behind {:?} after the master of {down_dev} died\n{}",
                killed.elapsed(),
                cl.logs()
            );
        }
        current_rounds += 1;
        k += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    let waiting = q.runner.queue.deferred_stats.disk_samples.get();
    assert!(
        waiting >= 5 * current_rounds,
        "the dead master's samples wait on disk: {waiting} for {current_rounds} rounds"
    );
    assert!(
        q.runner.queue.stats.disk_samples.get() == 0,
        "nothing else did"
    );

    // The replica takes over; then a few more rounds carry the deferred samples.
    let deadline = Instant::now() + Duration::from_secs(60);
    while cl.owner_of_slot(hash_slot(down_dev.as_bytes()), &[master]) == master {
        assert!(Instant::now() < deadline, "no failover\n{}", cl.logs());
        round(&mut q, k);
        k += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    cl.wait_ok(&[master], Duration::from_secs(30));
    for _ in 0..3 {
        assert!(
            round(&mut q, k),
            "written after the failover\n{}",
            cl.logs()
        );
        k += 1;
    }
    assert_eq!(q.runner.queue.deferred_stats.disk_samples.get(), 0);
    for &(d, i, id) in &ids {
        let key = format!("m{i}:{{{}}}", devices[d]);
        let mut c = cl.client_for(&key, &[master]);
        let want: Vec<(i64, f64)> = (0..k)
            .map(|j| (T0 + j * 1000, (j * 100 + i64::from(id)) as f64))
            .collect();
        assert_eq!(ts_range(&mut c, &key), want, "{key}");
    }
}

/// The real agent's config: `inputs` every second into the cluster, a disk buffer synced
/// every second.
fn agent_config(
    s: &support::scratch::Scratch,
    cl: &RedisCluster,
    host: &str,
    inputs: &str,
) -> std::path::PathBuf {
    s.config(&format!(
        "hostname: {host}\ninterval: 1s\nflush_interval: 1s\nprocfs_root: {}\nbuffer_dir: {}\n\
         buffer_sync_interval: 1s\ninputs: [{inputs}]\noutputs:\n  - redistimeseries:\n      \
         cluster: true\n      nodes: {}\n      connect_timeout: 1s\n      write_timeout: 2s\n",
        support::scratch::fixture("basic").join("proc").display(),
        s.dir.path().join("buffer").display(),
        cl.seeds_yaml()
    ))
}

/// Neighbouring timestamps further apart than one second.
fn gaps(stamps: &[i64]) -> Vec<(i64, i64)> {
    stamps
        .windows(2)
        .filter(|w| w[1] - w[0] != 1000)
        .map(|w| (w[0], w[1]))
        .collect()
}

/// The timestamps of `key`, read from the master that owns it (none while nobody does).
fn stamps(cl: &RedisCluster, dead: &[usize], key: &str) -> Vec<i64> {
    let owner = cl.owner_of_slot(cl.keyslot(key), dead);
    if dead.contains(&owner) {
        return Vec::new();
    }
    let mut c = cl.nodes[owner].client();
    let exists: i64 = redis::cmd("EXISTS").arg(key).query(&mut c).unwrap_or(0);
    if exists == 0 {
        return Vec::new();
    }
    ts_range(&mut c, key).into_iter().map(|(t, _)| t).collect()
}

fn wait_for_stamps(cl: &RedisCluster, dead: &[usize], key: &str, after: i64) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = stamps(cl, dead, key);
        if got.iter().filter(|&&t| t > after).count() >= 3 {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{key}: no 3 samples after {after} within 60s: {got:?}\n{}",
            cl.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_agent_killed_during_a_failover_replays_its_disk_buffer_into_the_new_topology() {
    use nix::sys::signal::Signal;
    use support::agent::Agent;
    use support::clock::now_ms;
    use support::scratch::Scratch;

    let mut cl = RedisCluster::start(3, 1);
    let host = "killed";
    let key = format!("mem_total_bytes:{{{host}}}");
    let master = cl.owner_of_slot(hash_slot(host.as_bytes()), &[]);
    let s = Scratch::new();
    let config = agent_config(&s, &cl, host, "linux_mem, internal");
    let mut agent = Agent::start(&config);
    let started = now_ms();
    wait_for_stamps(&cl, &[], &key, started);

    cl.kill(master);
    // Its samples are deferred (the slot map still comes from the other masters).
    let (_, down) = agent.wait_for(Duration::from_secs(30), |l| {
        l.contains("is down") || l.contains("samples deferred")
    });
    assert!(
        down,
        "the output did not notice the dead master\n{}",
        cl.logs()
    );
    // Two flushes more: the ring has gone to the disk buffer and been synced.
    std::thread::sleep(Duration::from_millis(2500));
    let killed_at = now_ms();
    agent.signal(Signal::SIGKILL);
    agent.wait_exit(Duration::from_secs(10));
    let mut agent = Agent::start(&config);
    let restarted_at = now_ms();
    cl.wait_ok(&[master], Duration::from_secs(60));
    let got = wait_for_stamps(&cl, &[master], &key, restarted_at + 1000);
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(10));

    // One sample a second, with one gap at most: while no agent ran (a second either
    // side for the tick's alignment). What was collected before the kill, during the
    // failover, came from the disk buffer.
    let gaps = gaps(&got);
    assert!(gaps.len() <= 1, "gaps {gaps:?} in {got:?}");
    for (a, b) in &gaps {
        assert!(
            *a >= killed_at - 2000 && *b <= restarted_at + 2000,
            "a gap {a}..{b} outside the agent's own absence {killed_at}..{restarted_at}: {got:?}"
        );
    }
    assert!(got[0] <= started + 2000, "from the start: {got:?}");
    let masters = stamps(
        &cl,
        &[master],
        &format!("internal_write_cluster_masters:{{{host}}}:redistimeseries"),
    );
    assert!(!masters.is_empty(), "internal reports the cluster");
}

#[test]
fn the_whole_cluster_down_for_a_minute_loses_nothing() {
    use nix::sys::signal::Signal;
    use support::agent::Agent;
    use support::clock::now_ms;
    use support::scratch::Scratch;

    let mut cl = RedisCluster::start(3, 1);
    let host = "blackout";
    let key = format!("mem_total_bytes:{{{host}}}");
    let s = Scratch::new();
    let config = agent_config(&s, &cl, host, "linux_mem");
    let mut agent = Agent::start(&config);
    let started = now_ms();
    wait_for_stamps(&cl, &[], &key, started);
    let all: Vec<usize> = (0..cl.nodes.len()).collect();
    for &i in &all {
        cl.kill(i);
    }
    // Its samples are deferred (the slot map still comes from the other masters).
    let (_, down) = agent.wait_for(Duration::from_secs(30), |l| {
        l.contains("is down") || l.contains("samples deferred")
    });
    assert!(down, "the output did not notice the cluster going down");
    std::thread::sleep(Duration::from_secs(60));
    for &i in &all {
        cl.restart(i);
    }
    let back = now_ms();
    cl.wait_ok(&[], Duration::from_secs(60));
    let got = wait_for_stamps(&cl, &[], &key, back + 1000);
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(10));
    let gaps = gaps(&got);
    assert!(gaps.is_empty(), "gaps {gaps:?} in {got:?}");
    assert!(got[0] <= started + 2000, "from the start: {got:?}");
    assert!(
        got.len() >= 60,
        "the minute is there: {} samples",
        got.len()
    );
}

#[test]
fn cluster_mode_and_server_mode_mixed_up_say_which_to_set() {
    let cl = RedisCluster::start(3, 0);
    let single = support::redis_server::Server::stack(&[]);
    // cluster: true against a server that is not in a cluster.
    let mut o = output(&format!(
        "cluster: true\nnodes: [\"127.0.0.1:{}\"]\n",
        single.port
    ));
    let table = RefCell::new(SeriesTable::new("mixed", 10));
    let id = table.borrow_mut().intern("m", "", &[]).unwrap();
    let batch = [s(id, T0, 1.0)];
    let e = match futures_lite::future::block_on(o.write(&batch, SeriesView(&table))) {
        Err(OutputError::Retry(e)) => e,
        other => panic!("{other:?}"),
    };
    assert!(e.contains("cluster-enabled yes"), "{e}");
    // A single-server output against a node of a cluster, for a key another node owns.
    let host = host_in_low_slots("mixed", 5461);
    let other = (0..3)
        .find(|&n| cl.owner_of_slot(hash_slot(host.as_bytes()), &[]) != n)
        .unwrap();
    let mut o = output(&format!(
        "host: 127.0.0.1\nport: {}\nkey_format: \"{{name}}:{{{{{{host}}}}}}\"\n",
        cl.nodes[other].port
    ));
    let table = RefCell::new(SeriesTable::new(&host, 10));
    let id = table.borrow_mut().intern("m", "", &[]).unwrap();
    let e = match futures_lite::future::block_on(o.write(&[s(id, T0, 1.0)], SeriesView(&table))) {
        Err(OutputError::Retry(e)) => e,
        other => panic!("{other:?}"),
    };
    assert!(
        e.contains("is a Redis Cluster node (MOVED") && e.contains("set `cluster: true`"),
        "{e}"
    );
}

/// Every node of the cluster through one SOCKS5 proxy: the connections each master sees
/// from the agent are sockets of the proxy, and without the proxy nothing is written.
#[cfg(feature = "socks")]
#[test]
fn every_node_is_reached_through_the_socks_proxy() {
    use support::socks::Proxy;

    let cl = RedisCluster::start(3, 0);
    let mut proxy = Proxy::microsocks();
    let mut o = output(&format!(
        "cluster: true\nnodes: {}\nkey_format: \"{{name}}:{{host}}{{:values}}\"\nsocks5_proxy: \"{}\"\nconnect_timeout: 2s\n",
        cl.seeds_yaml(),
        proxy.url("socks5", "")
    ));
    let table = RefCell::new(SeriesTable::new("proxied", 100));
    let ids: Vec<u32> = (0..30)
        .map(|i| {
            table
                .borrow_mut()
                .intern("disk_used", "", &[("device", &format!("sd{i}"))])
                .unwrap()
        })
        .collect();
    let batch: Vec<Sample> = ids.iter().map(|&id| s(id, T0, id as f64)).collect();
    let r = write_until_taken(&mut o, &table, &batch, &cl);
    assert_eq!(r.written, 30);
    for (i, &id) in ids.iter().enumerate() {
        let key = format!("disk_used:proxied:sd{i}");
        let mut c = cl.client_for(&key, &[]);
        assert_eq!(ts_range(&mut c, &key), vec![(T0, id as f64)], "{key}");
    }
    for (n, node) in cl.nodes.iter().enumerate() {
        let mut c = node.client();
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
        let ports: Vec<u16> = list
            .lines()
            .filter(|l| l.contains("lib-name=rtcollector"))
            .filter_map(|l| {
                let addr = l.split(' ').find_map(|f| f.strip_prefix("addr="))?;
                addr.rsplit(':').next()?.parse().ok()
            })
            .collect();
        assert!(!ports.is_empty(), "node {n} has no connection of the agent");
        for p in ports {
            assert!(
                proxy.holds_local_port(p),
                "node {n}: the agent's connection from port {p} is not the proxy's\n{}",
                proxy.log()
            );
        }
    }
    proxy.stop();
    // The first write may find a connection the proxy's end closed; the next ones try the
    // proxy again and say so. Nothing is written either way.
    let later: Vec<Sample> = ids.iter().map(|&id| s(id, T0 + 1000, 0.0)).collect();
    let mut errors = Vec::new();
    for _ in 0..3 {
        errors.push(not_taken(&mut o, &table, &later));
        std::thread::sleep(Duration::from_millis(600));
    }
    assert!(errors.iter().any(|e| e.contains("proxy")), "{errors:?}");
}

/// A slot half way through a migration (MIGRATING on its owner, IMPORTING on the other
/// node): a series new to it is answered with ASK, created on the importing node behind
/// ASKING, and found there once the slot has moved.
#[test]
fn a_new_series_in_a_migrating_slot_follows_ask() {
    let cl = RedisCluster::start(3, 0);
    let host = "asked";
    let slot = hash_slot(host.as_bytes());
    let from = cl.owner_of_slot(slot, &[]);
    let to = (0..3).find(|&n| n != from).unwrap();
    let setslot = |node: usize, args: &[&str]| {
        let mut c = cl.nodes[node].client();
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SETSLOT").arg(slot);
        for a in args {
            cmd.arg(*a);
        }
        let _: () = cmd.query(&mut c).expect("CLUSTER SETSLOT");
    };
    setslot(to, &["IMPORTING", &cl.node_id(from)]);
    setslot(from, &["MIGRATING", &cl.node_id(to)]);

    let mut o = output(&format!("cluster: true\nnodes: {}\n", cl.seeds_yaml()));
    let table = RefCell::new(SeriesTable::new(host, 10));
    let id = table.borrow_mut().intern("m", "", &[]).unwrap();
    let batch: Vec<Sample> = (0..5).map(|k| s(id, T0 + k * 1000, k as f64)).collect();
    let r = write_until_taken(&mut o, &table, &batch, &cl);
    assert_eq!((r.written, r.rejected), (5, 0));
    let counters = o.cluster_counters().expect("cluster mode");
    assert!(counters.asked >= 1, "{counters:?}");
    assert_eq!(counters.moved, 0, "{counters:?}");

    // Finish the migration (no key was left on the old owner) and read back.
    for n in 0..3 {
        setslot(n, &["NODE", &cl.node_id(to)]);
    }
    let key = format!("m:{{{host}}}");
    let want: Vec<(i64, f64)> = (0..5).map(|k| (T0 + k * 1000, k as f64)).collect();
    assert_eq!(ts_range(&mut cl.nodes[to].client(), &key), want);
}

/// A replica that stops answering: WAIT comes back short, the batch is kept and sent again,
/// and once the cluster has marked the replica failed (it leaves the slot map) the writes
/// go on without waiting for it.
#[test]
fn a_replica_that_stops_answering_holds_writes_only_until_the_cluster_drops_it() {
    use nix::sys::signal::Signal;

    let cl = RedisCluster::start(3, 1);
    let host = "waited";
    let slot = hash_slot(host.as_bytes());
    let master = cl.owner_of_slot(slot, &[]);
    let master_id = cl.node_id(master);
    let replica = (0..cl.nodes.len())
        .find(|&n| {
            let mut c = cl.nodes[n].client();
            let info: String = redis::cmd("INFO").arg("replication").query(&mut c).unwrap();
            info.contains("role:slave") && {
                let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut c).unwrap();
                nodes
                    .lines()
                    .any(|l| l.contains("myself") && l.contains(&master_id))
            }
        })
        .expect("the master's replica");
    let mut o = output(&format!(
        "cluster: true\nnodes: {}\nwrite_timeout: 3s\n",
        cl.seeds_yaml()
    ));
    let table = RefCell::new(SeriesTable::new(host, 10));
    let ids = series(&table, 5);
    let first: Vec<Sample> = ids.iter().map(|&id| s(id, T0, 1.0)).collect();
    assert_eq!(write_until_taken(&mut o, &table, &first, &cl).written, 5);
    // A replica is in CLUSTER SLOTS once it has had a first write: the output reads the
    // map again within seconds while a master shows none.
    let deadline = Instant::now() + Duration::from_secs(30);
    while o.cluster_counters().expect("cluster mode").replicas < 3 {
        assert!(
            Instant::now() < deadline,
            "the replicas never appeared in the map"
        );
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(write_until_taken(&mut o, &table, &first, &cl).written, 5);
    }

    cl.nodes[replica].signal(Signal::SIGSTOP);
    let second: Vec<Sample> = ids.iter().map(|&id| s(id, T0 + 1000, 2.0)).collect();
    // Not taken: the samples are deferred, to be sent again.
    let e = not_taken(&mut o, &table, &second);
    assert!(e.contains("replicas") && e.contains("acknowledged"), "{e}");
    let r = write_until_taken(&mut o, &table, &second, &cl);
    cl.nodes[replica].signal(Signal::SIGCONT);
    assert_eq!((r.written, r.rejected), (5, 0));
    for i in 0..5 {
        let key = format!("m{i}:{{{host}}}");
        assert_eq!(
            ts_range(&mut cl.nodes[master].client(), &key),
            vec![(T0, 1.0), (T0 + 1000, 2.0)]
        );
    }
}

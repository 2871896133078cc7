//! `internal`: the agent's own figures: what it gathered, wrote and dropped, how long each
//! input took, how full each output's buffer is, its memory and its threads.

use crate::core::stats::{AgentStats, OutputStats};
use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::{fields, ProcFile};
use crate::inputs::BuildCtx;
use serde::{Deserialize, Serialize};
use std::rc::Rc;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# The agent's own figures (samples gathered/written/dropped, per-input gather time,
# per-output buffer use, memory, threads).
- internal
";

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {}

pub struct Internal {
    stats: Rc<AgentStats>,
    statm: ProcFile,
    status: ProcFile,
    page_size: f64,
}

pub fn build(_cfg: &Config, ctx: &BuildCtx) -> Result<Internal, String> {
    // The agent's own process, wherever procfs_root points for the host's figures.
    Ok(Internal {
        stats: ctx.stats.clone(),
        statm: ProcFile::new("/proc/self/statm"),
        // Not /proc/self/stat: qemu-user reports 0 threads there, status is right.
        status: ProcFile::new("/proc/self/status"),
        page_size: page_size(),
    })
}

fn page_size() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as f64
}

/// Resident pages: the second field of /proc/self/statm.
pub fn parse_statm_resident(text: &str) -> Option<u64> {
    fields(text).nth(1)?.parse().ok()
}

/// Thread count: the `Threads:` line of /proc/self/status.
pub fn parse_status_threads(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

impl Internal {
    /// The output's outage buffer (see `core::spill`).
    fn disk_buffer(em: &mut Emitter, o: &OutputStats, l: &[(&str, &str)]) {
        em.gauge(
            "internal_write_disk_buffer_samples",
            l,
            o.disk_samples.get() as f64,
        );
        em.gauge(
            "internal_write_disk_buffer_segments",
            l,
            o.disk_segments.get() as f64,
        );
        em.gauge(
            "internal_write_disk_buffer_bytes",
            l,
            o.disk_bytes.get() as f64,
        );
        em.counter(
            "internal_write_disk_written_bytes",
            l,
            o.disk_written_bytes.get() as f64,
        );
        em.gauge(
            "internal_write_disk_dropped",
            l,
            o.disk_dropped.get() as f64,
        );
        em.gauge(
            "internal_write_disk_damaged_frames",
            l,
            o.disk_corrupt_frames.get() as f64,
        );
        em.gauge(
            "internal_write_disk_io_errors",
            l,
            o.disk_io_errors.get() as f64,
        );
    }

    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        let s = &self.stats;
        em.counter(
            "internal_agent_metrics_gathered",
            &[],
            s.gathered.get() as f64,
        );
        em.counter(
            "internal_agent_metrics_written",
            &[],
            s.written.get() as f64,
        );
        em.counter(
            "internal_agent_metrics_dropped",
            &[],
            s.dropped.get() as f64,
        );
        em.counter(
            "internal_agent_gather_errors",
            &[],
            s.gather_errors.get() as f64,
        );
        for i in s.inputs.borrow().iter() {
            let l = [("input", i.name.as_str())];
            em.gauge(
                "internal_gather_gather_time_ns",
                &l,
                i.last_gather_ns.get() as f64,
            );
            em.counter(
                "internal_gather_metrics_gathered",
                &l,
                i.gathered.get() as f64,
            );
            em.gauge("internal_gather_errors", &l, i.errors.get() as f64);
            em.gauge("internal_gather_slow_runs", &l, i.slow_runs.get() as f64);
        }
        for o in s.outputs.borrow().iter() {
            let l = [("output", o.name.as_str())];
            em.gauge(
                "internal_write_write_time_ns",
                &l,
                o.last_flush_ns.get() as f64,
            );
            em.counter("internal_write_metrics_written", &l, o.written.get() as f64);
            em.gauge("internal_write_metrics_dropped", &l, o.dropped.get() as f64);
            em.gauge("internal_write_batches", &l, o.batches.get() as f64);
            em.gauge(
                "internal_write_failed_batches",
                &l,
                o.failed_batches.get() as f64,
            );
            em.gauge("internal_write_buffer_size", &l, o.buffer_len.get() as f64);
            em.gauge("internal_write_buffer_limit", &l, o.buffer_cap.get() as f64);
            Self::disk_buffer(em, o, &l);
            for (name, value) in o.own.borrow().iter() {
                em.gauge_suffixed("internal_write_", name, &l, *value as f64);
            }
        }
        let resident = parse_statm_resident(self.statm.read()?)
            .ok_or_else(|| InputError::parse(self.statm.path(), "no resident page count"))?;
        em.gauge(
            "internal_memstats_sys_bytes",
            &[],
            resident as f64 * self.page_size,
        );
        let threads = parse_status_threads(self.status.read()?)
            .ok_or_else(|| InputError::parse(self.status.path(), "no thread count"))?;
        em.gauge("internal_agent_threads", &[], threads as f64);
        Ok(())
    }
}

impl Input for Internal {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::stats::add;
    use crate::inputs::testutil::Harness;

    #[test]
    fn parses_own_process_files() {
        assert_eq!(parse_statm_resident("2000 512 300 10 0 400 0\n"), Some(512));
        let status = "Name:\trtcollector\nState:\tS (sleeping)\nThreads:\t2\nSigQ:\t0/1\n";
        assert_eq!(parse_status_threads(status), Some(2));
        assert_eq!(parse_status_threads("garbage"), None);
    }

    #[test]
    fn reports_agent_counters_and_per_plugin_figures() {
        let ctx = BuildCtx::with_roots("/proc", "/sys");
        add(&ctx.stats.gathered, 120);
        add(&ctx.stats.written, 100);
        add(&ctx.stats.dropped, 3);
        let input = ctx.stats.input("linux_mem");
        add(&input.gathered, 8);
        input.last_gather_ns.set(15_000);
        let output = ctx.stats.output("stdout");
        output.buffer_len.set(7);
        output.buffer_cap.set(5000);
        output.disk_samples.set(1234);
        output.disk_written_bytes.set(20_000);
        output.set_own("cluster_moved", 2);
        output.set_own("cluster_moved", 3);
        let mut h = Harness::new(Box::new(build(&Config::default(), &ctx).unwrap()));
        let c = h.collect(1_000);
        assert!(c.error.is_none(), "{:?}", c.error);
        assert_eq!(c["internal_agent_metrics_gathered"], 120.0);
        assert_eq!(c["internal_agent_metrics_written"], 100.0);
        assert_eq!(c["internal_agent_metrics_dropped"], 3.0);
        assert_eq!(
            c["internal_gather_gather_time_ns{input=linux_mem}"],
            15_000.0
        );
        assert_eq!(c["internal_gather_metrics_gathered{input=linux_mem}"], 8.0);
        assert_eq!(c["internal_write_buffer_size{output=stdout}"], 7.0);
        assert_eq!(c["internal_write_buffer_limit{output=stdout}"], 5000.0);
        assert_eq!(
            c["internal_write_disk_buffer_samples{output=stdout}"],
            1234.0
        );
        assert_eq!(
            c["internal_write_disk_written_bytes{output=stdout}"],
            20_000.0
        );
        assert_eq!(c["internal_write_disk_io_errors{output=stdout}"], 0.0);
        assert_eq!(c["internal_write_cluster_moved{output=stdout}"], 3.0);
        assert!(c["internal_memstats_sys_bytes"] > 0.0);
        assert!(c["internal_agent_threads"] >= 1.0);
        add(&ctx.stats.gathered, 100);
        let c = h.collect(11_000);
        assert_eq!(c["internal_agent_metrics_gathered_rate"], 10.0);
    }
}

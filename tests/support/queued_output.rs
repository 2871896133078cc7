//! An output inside the agent's own queue and flush loop, driven from the test's thread:
//! what the agent does around an output (ring, retries, the outage log lines), without
//! the rest of the agent. And the `redistimeseries` output built from a YAML snippet.

use super::logs::capture_logs;
use rtcollector::core::hub::{Hub, OutputQueue};
use rtcollector::core::output::OutputRunner;
use rtcollector::core::shared::Shared;
use rtcollector::core::stats::AgentStats;
use rtcollector::core::{Output, Sample, SeriesTable};
use rtcollector::outputs::redistimeseries::{build, Config, RedisTimeSeries};
use rtcollector::outputs::OutputCtx;
use std::cell::RefCell;
use std::rc::Rc;

/// A `redistimeseries` output from `yaml` (output key `redistimeseries`), with the
/// library's log captured for [`super::logs::logs_containing`].
pub fn redistimeseries(yaml: &str) -> RedisTimeSeries {
    capture_logs();
    let cfg: Config = yaml_serde::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    build(
        &cfg,
        &OutputCtx {
            hostname: "test".into(),
            key: "redistimeseries".into(),
        },
    )
    .unwrap_or_else(|e| panic!("build: {e}"))
}

pub struct QueuedOutput {
    pub shared: Shared,
    pub runner: OutputRunner,
}

impl QueuedOutput {
    /// `output` behind a ring of 10 000 samples and batches of 1 000, its series on `host`.
    pub fn new(output: Box<dyn Output>, host: &str) -> QueuedOutput {
        let stats = Rc::new(AgentStats::default());
        let shared = Shared {
            table: Rc::new(RefCell::new(SeriesTable::new(host, 10_000))),
            hub: Rc::new(Hub::default()),
            stats: stats.clone(),
        };
        let queue = Rc::new(OutputQueue::new(
            "redistimeseries",
            10_000,
            1000,
            stats.output("redistimeseries"),
        ));
        QueuedOutput {
            runner: OutputRunner::new("redistimeseries", output, queue),
            shared,
        }
    }

    pub fn intern(&self, name: &str, labels: &[(&str, &str)]) -> u32 {
        self.shared
            .table
            .borrow_mut()
            .intern(name, "", labels)
            .unwrap()
    }

    pub fn push(&self, samples: &[Sample]) {
        self.runner.queue.push(samples);
    }

    /// One flush, as the agent's flush tick does it; true when everything queued went.
    pub fn flush(&mut self) -> bool {
        futures_lite::future::block_on(self.runner.flush(&self.shared))
    }

    pub fn queued(&self) -> usize {
        self.runner.queue.ring.borrow().len()
    }

    pub fn written(&self) -> u64 {
        self.runner.queue.stats.written.get()
    }
}

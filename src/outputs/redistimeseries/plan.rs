//! Planning a write: the key of each series (built once), the creation commands for
//! series new on this connection, and the samples as `TS.MADD`s, in one pipeline whose
//! reply slots say what each reply answers. Pure: no I/O here.

use super::{Created, Pipelined, RedisTimeSeries, SeriesState, MADD_MAX};
use crate::core::metric::{Series, SeriesId};
use crate::core::{Sample, SeriesTable, WriteReport};
use redis::Pipeline;
use std::time::Instant;

/// Where one `TS.MADD` ends besides [`MADD_MAX`] samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// Only at the size limit.
    Size,
    /// At each series, so that a refusal names its series.
    Series,
    /// At each hash slot: a cluster refuses a command whose keys span two (CROSSSLOT).
    Slot,
}

/// How long a WAIT for replicas may block the write, at most.
#[cfg(feature = "cluster")]
const WAIT_MS: u64 = 1000;

impl RedisTimeSeries {
    pub(super) fn state(&mut self, id: SeriesId, table: &SeriesTable) -> &mut SeriesState {
        let generation = table.generation(id);
        let key_format = &self.key_format;
        table
            .state_slot(&mut self.series, id, |st| st.generation)
            .get_or_insert_with(|| {
                let mut key = String::new();
                key_format.render(table.get(id), &mut key);
                #[cfg(feature = "cluster")]
                let slot = crate::common::redis::cluster::hash_slot(key.as_bytes());
                #[cfg(not(feature = "cluster"))]
                let slot = 0;
                SeriesState {
                    generation,
                    key: key.into(),
                    slot,
                    created: Created::No,
                    denied_until: None,
                    warned: false,
                }
            })
    }

    /// Fills `self.pipe`: creation commands for new series, then the samples as TS.MADD,
    /// split as `split` says (the order of one series' samples is kept), then WAIT when
    /// `self.wait` asks for replicas. `only` limits it to those batch indices. With
    /// `self.asking`, every command goes after an ASKING.
    pub(super) fn plan(
        &mut self,
        batch: &[Sample],
        only: Option<&[u32]>,
        split: Split,
        table: &SeriesTable,
        report: &mut WriteReport,
    ) {
        self.pipe.clear();
        self.pipelined.clear();
        self.order.clear();
        let now = Instant::now();
        let all = 0..batch.len() as u32;
        let indices: &mut dyn Iterator<Item = u32> = match only {
            Some(list) => &mut list.iter().copied(),
            None => &mut all.into_iter(),
        };
        for i in indices {
            let s = batch[i as usize];
            let idx = s.series as usize;
            self.state(s.series, table);
            let name = self.name.as_str();
            let st = self.series[idx].as_mut().expect("state exists");
            if let Some(until) = st.denied_until {
                if now < until {
                    report.rejected += 1;
                    log::debug!(
                        "output {name}: dropped a sample of {}: no permission",
                        st.key
                    );
                    continue;
                }
                st.denied_until = None;
            }
            if !s.value.is_finite() {
                report.rejected += 1;
                log::debug!(
                    "output {name}: dropped {} at {} of {}: RedisTimeSeries stores no NaN or infinity",
                    s.value,
                    s.ts_ms,
                    st.key
                );
                continue;
            }
            if st.created == Created::No {
                st.created = Created::Pending;
                self.push_create(s.series, table);
            }
            self.order.push(i);
        }
        // One key for both kinds of split (one sort in the binary). Stable: samples of one
        // series keep their order. Usually already in order (a host's keys share one slot).
        let series = &self.series;
        if split != Split::Size
            && !self
                .order
                .is_sorted_by_key(|&i| group_of(series, batch, split, i))
        {
            self.order
                .sort_by_key(|&i| group_of(series, batch, split, i));
        }
        let mut start = 0;
        while start < self.order.len() {
            let mut end = (start + MADD_MAX).min(self.order.len());
            if split != Split::Size {
                let group = |i: u32| group_of(&self.series, batch, split, i);
                let first = group(self.order[start]);
                end = start
                    + self.order[start..end]
                        .iter()
                        .take_while(|&&i| group(i) == first)
                        .count();
            }
            self.asking();
            self.pipe.cmd("TS.MADD");
            for &i in &self.order[start..end] {
                let s = batch[i as usize];
                let key = &self.series[s.series as usize]
                    .as_ref()
                    .expect("planned")
                    .key;
                self.pipe.arg(&**key).arg(s.ts_ms).arg(s.value);
            }
            self.pipelined.push(Pipelined::Madd(start as u32, end as u32));
            start = end;
        }
        #[cfg(feature = "cluster")]
        if self.wait > 0 && !self.order.is_empty() {
            self.pipe.cmd("WAIT").arg(self.wait).arg(WAIT_MS);
            self.pipelined.push(Pipelined::Wait(self.wait));
        }
    }

    /// An ASKING before the next command when the round goes to a node an ASK named.
    fn asking(&mut self) {
        if cfg!(feature = "cluster") && self.asking {
            self.pipe.cmd("ASKING");
            self.pipelined.push(Pipelined::Asking);
        }
    }

    fn push_create(&mut self, id: SeriesId, table: &SeriesTable) {
        let series = table.get(id);
        let key = &self.series[id as usize].as_ref().expect("state exists").key;
        let labels = series_labels(&self.labels, series);
        let pipe = &mut self.pipe;
        let asking = |pipe: &mut Pipeline, pipelined: &mut Vec<Pipelined>| {
            if cfg!(feature = "cluster") && self.asking {
                pipe.cmd("ASKING");
                pipelined.push(Pipelined::Asking);
            }
        };
        asking(pipe, &mut self.pipelined);
        pipe.cmd("TS.CREATE").arg(&**key);
        if let Some(r) = self.retention {
            pipe.arg("RETENTION").arg(r);
        }
        if let Some(e) = self.encoding {
            pipe.arg("ENCODING").arg(e.as_arg());
        }
        if let Some(c) = self.chunk_size {
            pipe.arg("CHUNK_SIZE").arg(c);
        }
        pipe.arg("DUPLICATE_POLICY").arg(self.policy.as_arg());
        push_labels(pipe, &labels, &[]);
        self.pipelined.push(Pipelined::Create(id));

        asking(pipe, &mut self.pipelined);
        pipe.cmd("TS.ALTER").arg(&**key);
        if let Some(r) = self.retention {
            pipe.arg("RETENTION").arg(r);
        }
        if let Some(c) = self.chunk_size {
            pipe.arg("CHUNK_SIZE").arg(c);
        }
        pipe.arg("DUPLICATE_POLICY").arg(self.policy.as_arg());
        push_labels(pipe, &labels, &[]);
        self.pipelined.push(Pipelined::Alter(id));

        for rule in self.rules.iter().filter(|r| r.applies_to(&series.name)) {
            let dest = format!("{key}{}", rule.suffix);
            asking(pipe, &mut self.pipelined);
            pipe.cmd("TS.CREATE").arg(&dest);
            if let Some(r) = rule.retention {
                pipe.arg("RETENTION").arg(r);
            }
            if let Some(e) = self.encoding {
                pipe.arg("ENCODING").arg(e.as_arg());
            }
            if let Some(c) = self.chunk_size {
                pipe.arg("CHUNK_SIZE").arg(c);
            }
            pipe.arg("DUPLICATE_POLICY").arg("LAST");
            push_labels(
                pipe,
                &labels,
                &[
                    ("aggregation", rule.aggregation.name()),
                    ("bucket", &rule.bucket),
                ],
            );
            self.pipelined.push(Pipelined::Rule(id));
            asking(pipe, &mut self.pipelined);
            pipe.cmd("TS.CREATERULE")
                .arg(&**key)
                .arg(&dest)
                .arg("AGGREGATION")
                .arg(rule.aggregation.name())
                .arg(rule.every_ms);
            self.pipelined.push(Pipelined::Rule(id));
        }
    }
}

/// What a TS.MADD must not span under `split`: the series, or its key's hash slot.
fn group_of(series: &[Option<SeriesState>], batch: &[Sample], split: Split, i: u32) -> u32 {
    let id = batch[i as usize].series;
    match split {
        Split::Slot => series[id as usize]
            .as_ref()
            .map_or(0, |st| u32::from(st.slot)),
        _ => id,
    }
}

/// The labels of a series: the output's `labels`, the sample's own (host included), and
/// `name`; later ones win. Empty values are left out (RedisTimeSeries refuses them).
fn series_labels<'a>(fixed: &'a [(String, String)], series: &'a Series) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(fixed.len() + series.labels.len() + 1);
    for (k, v) in fixed {
        if series.label(k).is_none() && k != "name" {
            out.push((k, v));
        }
    }
    for (k, v) in series.labels.iter() {
        if &**k != "name" && !v.is_empty() {
            out.push((k, v));
        }
    }
    out.push(("name", &series.name));
    out
}

fn push_labels(pipe: &mut Pipeline, labels: &[(&str, &str)], extra: &[(&str, &str)]) {
    pipe.arg("LABELS");
    for (k, v) in labels.iter().chain(extra) {
        pipe.arg(*k).arg(*v);
    }
}

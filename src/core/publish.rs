//! How a push listener hands on what it receives between collections (an HTTP ingress, an
//! MQTT consumer), and learns whether the agent took it: the idea of Telegraf's
//! `ServiceInput.Start(Accumulator)`. See [`Input::listen_with`](super::input::Input::listen_with).

use super::clock;
use super::emit::Emitter;
use super::metric::{Sample, SeriesTable};
use super::rate::RateTracker;
use super::shared::Shared;
use super::stats::{add, InputStats};
use std::cell::RefCell;
use std::rc::Rc;

/// What became of one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Every output's queue took the samples (this many).
    Accepted(usize),
    /// An output's queue has no room for them without dropping older samples (its ring is
    /// full and it has no usable outage buffer): nothing was published, so the sender can be
    /// told to try again later (HTTP 503) and nothing is lost.
    QueueFull,
}

/// A listener's handle for publishing samples into the hub, given once when the input starts.
///
/// Samples carry the input's current interval boundary (the time of the publish floored to
/// the input's interval), as collected ones carry their tick's, so they line up with the
/// other inputs'; a sample whose source gave its own time keeps it ([`Emitter::gauge_at`]).
/// Counters get their `_rate` series from the publisher's own readings, apart from
/// `collect`'s.
pub struct Publisher {
    input: String,
    shared: Rc<Shared>,
    stats: Rc<InputStats>,
    interval_ms: i64,
    rates: RateTracker,
    buf: Vec<Sample>,
    /// A log record being encoded (reused).
    #[cfg(feature = "logs")]
    log_buf: Vec<u8>,
    #[cfg(feature = "logs")]
    warned_no_log_output: bool,
}

impl Publisher {
    pub fn new(input: &str, shared: Rc<Shared>, stats: Rc<InputStats>, interval_ms: i64) -> Self {
        Publisher {
            input: input.to_string(),
            shared,
            stats,
            interval_ms: interval_ms.max(1),
            rates: RateTracker::default(),
            buf: Vec::new(),
            #[cfg(feature = "logs")]
            log_buf: Vec::new(),
            #[cfg(feature = "logs")]
            warned_no_log_output: false,
        }
    }

    /// Publishes a log record to every output that takes logs, unless one of them cannot
    /// take it without dropping older records (then nothing is published: `QueueFull`).
    /// A record that no output takes is accepted and goes nowhere (logged once).
    #[cfg(feature = "logs")]
    pub fn publish_log(&mut self, record: &super::logs::LogRecord<'_>) -> Published {
        self.log_buf.clear();
        if let Err(e) = super::logs::encode(record, &mut self.log_buf) {
            log::debug!("input {}: a log record not encoded: {e}", self.input);
            return Published::Accepted(0);
        }
        let hub = &self.shared.hub;
        if !hub.has_room_for_log(self.log_buf.len()) {
            return Published::QueueFull;
        }
        if !hub.publish_log(&self.log_buf)
            && !std::mem::replace(&mut self.warned_no_log_output, true)
        {
            log::warn!(
                "input {}: no output takes log records (redissearch, stdout or mqtt with `logs: true` do): they are counted and dropped",
                self.input
            );
        }
        Published::Accepted(1)
    }

    /// Publishes what `emit` writes, stamped with the current interval boundary.
    pub fn publish(&mut self, emit: impl FnOnce(&mut Emitter<'_>)) -> Published {
        let ts_ms = clock::floor_boundary(clock::now_ms(), self.interval_ms);
        self.publish_at(ts_ms, emit)
    }

    /// Publishes what `emit` writes, stamped `ts_ms` unless a sample gives its own time.
    ///
    /// A refused publish has still interned its series and, for counters, taken the reading
    /// as the baseline of the next rate; nothing of it reaches an output.
    pub fn publish_at(&mut self, ts_ms: i64, emit: impl FnOnce(&mut Emitter<'_>)) -> Published {
        let table: &RefCell<SeriesTable> = &self.shared.table;
        self.buf.clear();
        table.borrow_mut().begin_collection(ts_ms);
        let origin = table.borrow_mut().origin_id(&self.input);
        let mut em = Emitter::new(table, &mut self.rates, &mut self.buf, ts_ms);
        em.set_origin(origin);
        emit(&mut em);
        let unstorable = em.unstorable();
        let outcome = if self.shared.hub.has_room_for(self.buf.len()) {
            self.shared
                .hub
                .publish(&self.buf, &table.borrow(), &self.shared.stats);
            add(&self.stats.gathered, self.buf.len() as u64);
            add(&self.shared.stats.gathered, self.buf.len() as u64);
            Published::Accepted(self.buf.len())
        } else {
            Published::QueueFull
        };
        if unstorable > 0 {
            add(&self.shared.stats.dropped, unstorable);
            log::debug!(
                "input {}: {unstorable} pushed samples refused by the series table",
                self.input
            );
        }
        table.borrow_mut().end_collection();
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hub::{Hub, OutputQueue};
    use crate::core::stats::AgentStats;

    fn shared_with_queue(capacity: usize) -> (Rc<Shared>, Rc<OutputQueue>) {
        let stats: Rc<AgentStats> = Rc::default();
        let queue = Rc::new(OutputQueue::new("o", capacity, 100, stats.output("o")));
        let hub = Hub::default();
        hub.set_queues(vec![queue.clone()]);
        let shared = Rc::new(Shared {
            table: Rc::new(RefCell::new(SeriesTable::new("h", 100))),
            hub: Rc::new(hub),
            stats,
        });
        (shared, queue)
    }

    /// What the queue holds: name, timestamp, value.
    fn queued(shared: &Shared, queue: &OutputQueue) -> Vec<(String, i64, f64)> {
        let mut held: Vec<Sample> = Vec::new();
        queue.ring.borrow().peek_into(usize::MAX, &mut held);
        let table = shared.table.borrow();
        held.iter()
            .map(|s| (table.get(s.series).name.to_string(), s.ts_ms, s.value))
            .collect()
    }

    #[test]
    fn published_samples_carry_the_stamp_unless_their_source_gave_a_time_and_counters_get_rates() {
        let (shared, queue) = shared_with_queue(10);
        let mut p = Publisher::new("push", shared.clone(), Rc::default(), 10_000);
        let first = p.publish_at(10_000, |em| {
            em.gauge("g", &[], 1.0);
            em.gauge_at("own", &[], 2.0, 12_345);
            em.counter("c", &[], 100.0);
        });
        assert_eq!(first, Published::Accepted(3));
        assert_eq!(
            p.publish_at(20_000, |em| {
                em.counter("c", &[], 150.0);
            }),
            Published::Accepted(2)
        );
        assert_eq!(
            queued(&shared, &queue),
            [
                ("g".to_string(), 10_000, 1.0),
                ("own".to_string(), 12_345, 2.0),
                ("c".to_string(), 10_000, 100.0),
                ("c".to_string(), 20_000, 150.0),
                ("c_rate".to_string(), 20_000, 5.0),
            ]
        );
        assert_eq!(shared.stats.gathered.get(), 5);
        let origin = shared.table.borrow_mut().intern("g", "", &[]).unwrap();
        assert_eq!(shared.table.borrow().origin(origin), Some("push"));
    }

    #[test]
    fn a_publish_is_stamped_with_the_current_interval_boundary() {
        let (shared, queue) = shared_with_queue(10);
        let mut p = Publisher::new("push", shared.clone(), Rc::default(), 60_000);
        assert_eq!(
            p.publish(|em| em.gauge("g", &[], 1.0)),
            Published::Accepted(1)
        );
        let got = queued(&shared, &queue);
        assert_eq!(got[0].1 % 60_000, 0, "{got:?}");
    }

    #[test]
    fn a_full_queue_without_a_disk_buffer_refuses_the_publish_and_keeps_what_it_holds() {
        let (shared, queue) = shared_with_queue(3);
        let mut p = Publisher::new("push", shared.clone(), Rc::default(), 1000);
        let two = |v: f64| {
            move |em: &mut Emitter<'_>| {
                em.gauge("a", &[], v);
                em.gauge("b", &[], v);
            }
        };
        assert_eq!(p.publish_at(0, two(1.0)), Published::Accepted(2));
        assert_eq!(p.publish_at(1000, two(2.0)), Published::QueueFull);
        assert_eq!(
            queued(&shared, &queue),
            [("a".to_string(), 0, 1.0), ("b".to_string(), 0, 1.0)],
            "nothing published, nothing dropped"
        );
        assert_eq!(queue.stats.dropped.get(), 0);
        assert_eq!(shared.stats.gathered.get(), 2);
        // Once the output has taken its batch, there is room again.
        queue.ring.borrow_mut().consume(2);
        assert_eq!(p.publish_at(1000, two(2.0)), Published::Accepted(2));
    }

    #[test]
    fn a_full_ring_with_a_disk_buffer_is_room_the_ring_goes_to_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (shared, queue) = shared_with_queue(2);
        *queue.spill.borrow_mut() = Some(crate::core::spill::Spill::new(
            crate::core::spill::SpillConfig {
                dir: dir.path().join("o"),
                max_bytes: 1 << 20,
                sync_interval: std::time::Duration::from_secs(10),
            },
            queue.stats.clone(),
        ));
        let mut p = Publisher::new("push", shared.clone(), Rc::default(), 1000);
        for ts in [0, 1000] {
            let published = p.publish_at(ts, |em| {
                em.gauge("a", &[], 1.0);
                em.gauge("b", &[], 1.0);
            });
            assert_eq!(published, Published::Accepted(2));
        }
        assert_eq!(queue.stats.disk_samples.get(), 2);
        assert_eq!(queue.ring.borrow().len(), 2);
        assert_eq!(
            p.publish_at(2000, |em| {
                for name in ["a", "b", "c"] {
                    em.gauge(name, &[], 1.0);
                }
            }),
            Published::QueueFull,
            "more than the ring holds at all would drop some"
        );
    }
}

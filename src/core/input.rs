//! The input contract and the loop that runs one input on its schedule.

use super::clock;
use super::emit::{Emitter, InputError};
use super::metric::{Sample, SeriesTable};
use super::publish::Publisher;
use super::rate::RateTracker;
use super::shared::Shared;
use super::stats::{add, AgentStats, InputStats};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A source of samples. `collect` is called once per tick and never overlaps itself.
///
/// Blocking work must be short (reading /proc is); anything that waits on the network
/// must await, so the other inputs keep their schedule. Blocking work that waits (a
/// blocking client, a slow device file) goes through `core::offload::on_thread`.
pub trait Input: 'static {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a>;

    /// For inputs that receive between collections (a multicast listener, GPIO edges):
    /// a future that runs beside the schedule for the input's whole life and hands what it
    /// receives to `collect` through state they share. Taken once, when the input starts.
    fn listen(&mut self) -> Option<ListenFuture> {
        None
    }

    /// [`Input::listen`] for inputs that are pushed to (an HTTP ingress, an MQTT consumer):
    /// the listener publishes what it receives itself through `publisher`, and learns
    /// whether the agent took it or its queues are full (to answer 503). Default: the input's
    /// [`Input::listen`], without the publisher.
    fn listen_with(&mut self, publisher: Publisher) -> Option<ListenFuture> {
        drop(publisher);
        self.listen()
    }
}

pub type CollectFuture<'a> = Pin<Box<dyn Future<Output = Result<(), InputError>> + 'a>>;
pub type ListenFuture = Pin<Box<dyn Future<Output = ()>>>;

/// Wraps a synchronous collection as a [`CollectFuture`].
pub fn ready(result: Result<(), InputError>) -> CollectFuture<'static> {
    Box::pin(std::future::ready(result))
}

/// How one input is scheduled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub interval: Duration,
    pub jitter: Duration,
}

/// A collection under way, for the series table (nothing is freed meanwhile); ends when
/// the samples are published or the collection is cancelled.
struct Collecting<'a>(&'a RefCell<SeriesTable>);

impl<'a> Collecting<'a> {
    fn begin(table: &'a RefCell<SeriesTable>, ts_ms: i64) -> Self {
        table.borrow_mut().begin_collection(ts_ms);
        Collecting(table)
    }
}

impl Drop for Collecting<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().end_collection();
    }
}

/// An input with the state the scheduler keeps for it.
pub struct InputRunner {
    pub name: String,
    input: Box<dyn Input>,
    rates: RateTracker,
    buf: Vec<Sample>,
    stats: Rc<InputStats>,
    failing: bool,
    /// Samples of new series dropped for want of room since the table filled up for this
    /// input, or `None` while its series fit.
    refused_streak: Option<u64>,
}

impl InputRunner {
    pub fn new(name: &str, input: Box<dyn Input>, stats: Rc<InputStats>) -> Self {
        InputRunner {
            name: name.to_string(),
            input,
            rates: RateTracker::default(),
            buf: Vec::new(),
            stats,
            failing: false,
            refused_streak: None,
        }
    }

    /// Runs one collection stamped `ts_ms` and publishes what it produced.
    pub async fn collect_once(&mut self, ts_ms: i64, shared: &Shared) {
        let started = Instant::now();
        self.buf.clear();
        let origin = shared.table.borrow_mut().origin_id(&self.name);
        let collecting = Collecting::begin(&shared.table, ts_ms);
        let mut em = Emitter::new(&shared.table, &mut self.rates, &mut self.buf, ts_ms);
        em.set_origin(origin);
        #[cfg(feature = "logs")]
        em.set_hub(&shared.hub);
        let result = self.input.collect(&mut em).await;
        let partial = em.take_partial_failure();
        let unstorable = em.unstorable();
        let refused_for_room = em.refused_for_room();
        let error = result.err().or(partial);
        let elapsed = started.elapsed();
        self.stats.last_gather_ns.set(elapsed.as_nanos() as u64);
        add(&self.stats.gathered, self.buf.len() as u64);
        add(&shared.stats.gathered, self.buf.len() as u64);
        if unstorable > 0 {
            add(&shared.stats.dropped, unstorable);
            log::debug!(
                "input {}: {unstorable} samples refused by the series table",
                self.name
            );
        }
        self.note_refusals(refused_for_room, &shared.table.borrow());
        self.note_outcome(error, &shared.stats);
        shared
            .hub
            .publish(&self.buf, &shared.table.borrow(), &shared.stats);
        drop(collecting);
        shared.table.borrow_mut().sweep(
            |held| shared.hub.mark_held(held),
            |ids| shared.hub.forget(ids),
        );
        // Rate state for series gone for an hour (a removed interface, an exited process)
        // is dropped so it cannot grow without bound.
        self.rates.forget_older_than(ts_ms, 3_600_000);
    }

    /// A full series table drops every sample of a new series, which is data lost for good:
    /// the first collection that loses some is a warning with the count, the first one that
    /// loses none again says how many went in between.
    fn note_refusals(&mut self, refused: u64, table: &SeriesTable) {
        match (self.refused_streak, refused) {
            (None, 0) => {}
            (None, n) => {
                log::warn!(
                    "input {}: the series table is full (max_series: {}): {n} samples of new series dropped; until it has room, further drops are counted in internal_agent_metrics_dropped and logged at debug level",
                    self.name,
                    table.max_series()
                );
                self.refused_streak = Some(n);
            }
            (Some(total), 0) => {
                log::info!(
                    "input {}: all its series fit in the series table again ({total} samples of new series were dropped while it was full)",
                    self.name
                );
                self.refused_streak = None;
            }
            (Some(total), n) => self.refused_streak = Some(total + n),
        }
    }

    /// Logs the first error of a failing streak at warn and the recovery at info; errors in
    /// between go to debug, so a broken source does not flood the log.
    fn note_outcome(&mut self, error: Option<InputError>, agent: &AgentStats) {
        match error {
            Some(e) => {
                add(&self.stats.errors, 1);
                add(&agent.gather_errors, 1);
                if self.failing {
                    log::debug!("input {}: {e}", self.name);
                } else {
                    log::warn!("input {}: {e} (further errors of this input are logged at debug level until it recovers)", self.name);
                    self.failing = true;
                }
            }
            None if self.failing => {
                log::info!("input {}: recovered", self.name);
                self.failing = false;
            }
            None => {}
        }
    }

    /// The input's listener, if it has one, with a publisher stamping at the input's
    /// interval; see [`Input::listen_with`].
    pub fn take_listener(
        &mut self,
        schedule: Schedule,
        shared: &Rc<Shared>,
    ) -> Option<ListenFuture> {
        let interval_ms = i64::try_from(schedule.interval.as_millis()).unwrap_or(i64::MAX);
        let publisher = Publisher::new(&self.name, shared.clone(), self.stats.clone(), interval_ms);
        self.input.listen_with(publisher)
    }

    /// Collects on every interval boundary until the task is dropped, with the input's
    /// listener (if any) running beside it in the same task.
    pub async fn run(mut self, schedule: Schedule, shared: Rc<Shared>) {
        match self.take_listener(schedule, &shared) {
            Some(listener) => {
                let listener = async {
                    listener.await;
                    std::future::pending::<()>().await
                };
                futures_lite::future::or(self.run_schedule(schedule, shared), listener).await
            }
            None => self.run_schedule(schedule, shared).await,
        }
    }

    async fn run_schedule(&mut self, schedule: Schedule, shared: Rc<Shared>) {
        let interval_ms = (schedule.interval.as_millis() as i64).max(1);
        let jitter_max = schedule.jitter.as_millis() as i64;
        let seed = name_seed(&self.name);
        let mut tick = clock::next_boundary(clock::now_ms(), interval_ms);
        loop {
            if tick - clock::now_ms() > interval_ms {
                // The wall clock stepped back (NTP on a board without RTC): re-align.
                tick = clock::next_boundary(clock::now_ms(), interval_ms);
            }
            let fire_at = tick + clock::jitter_ms(seed, tick, jitter_max);
            sleep_until_wall(fire_at).await;
            let started = Instant::now();
            self.collect_once(tick, &shared).await;
            let took = started.elapsed();
            let now = clock::now_ms();
            let took_ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
            let skipped = match clock::after_run(tick, now, interval_ms, took_ms) {
                clock::AfterRun::Next => 0,
                clock::AfterRun::Slow { skipped } => {
                    add(&self.stats.slow_runs, 1);
                    log::warn!(
                        "input {} is slow: one run took {:?}, longer than its interval of {:?}; skipping {skipped} run(s)",
                        self.name,
                        took,
                        schedule.interval
                    );
                    skipped
                }
                clock::AfterRun::Realign { skipped } => {
                    log::info!(
                        "input {}: {skipped} runs skipped: the clock stepped forward or the agent was stalled",
                        self.name
                    );
                    skipped
                }
            };
            tick += (skipped + 1) * interval_ms;
        }
    }
}

fn name_seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Sleeps until a wall-clock time, re-checking after each wake so a clock step (NTP on a
/// board without RTC) does not leave the agent asleep for a wrong span.
pub async fn sleep_until_wall(at_ms: i64) {
    loop {
        let left = at_ms - clock::now_ms();
        if left <= 0 {
            return;
        }
        smol::Timer::after(Duration::from_millis(left.min(10_000) as u64)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hub::Hub;
    use std::cell::Cell;

    /// Counts what its listener received; `collect` reports the count.
    struct Listening {
        received: Rc<Cell<u32>>,
    }

    impl Input for Listening {
        fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
            em.gauge("received", &[], self.received.get() as f64);
            ready(Ok(()))
        }

        fn listen(&mut self) -> Option<ListenFuture> {
            let received = self.received.clone();
            Some(Box::pin(async move {
                loop {
                    received.set(received.get() + 1);
                    smol::future::yield_now().await;
                }
            }))
        }
    }

    #[test]
    fn a_listener_runs_beside_the_schedule_in_the_same_task() {
        let received = Rc::new(Cell::new(0));
        let input = Listening {
            received: received.clone(),
        };
        let runner = InputRunner::new("listening", Box::new(input), Rc::default());
        let shared = Rc::new(Shared {
            table: Rc::new(RefCell::new(SeriesTable::new("h", 100))),
            hub: Rc::new(Hub::default()),
            stats: Rc::default(),
        });
        let schedule = Schedule {
            interval: Duration::from_secs(3600),
            jitter: Duration::ZERO,
        };
        smol::block_on(futures_lite::future::or(
            runner.run(schedule, shared),
            async {
                smol::Timer::after(Duration::from_millis(20)).await;
            },
        ));
        assert!(received.get() > 0, "the listener never ran");
    }

    /// Publishes one reading from its listener and keeps what it was told.
    struct Pushed {
        told: Rc<Cell<Option<crate::core::publish::Published>>>,
    }

    impl Input for Pushed {
        fn collect<'a>(&'a mut self, _: &'a mut Emitter<'_>) -> CollectFuture<'a> {
            ready(Ok(()))
        }

        fn listen_with(&mut self, mut publisher: Publisher) -> Option<ListenFuture> {
            let told = self.told.clone();
            Some(Box::pin(async move {
                told.set(Some(publisher.publish(|em| em.gauge("pushed", &[], 7.0))));
            }))
        }
    }

    #[test]
    fn a_push_listener_publishes_through_its_publisher_into_the_outputs_queues() {
        let told = Rc::new(Cell::new(None));
        let stats: Rc<AgentStats> = Rc::default();
        let queue = Rc::new(crate::core::hub::OutputQueue::new(
            "o",
            10,
            10,
            stats.output("o"),
        ));
        let hub = Hub::default();
        hub.set_queues(vec![queue.clone()]);
        let shared = Rc::new(Shared {
            table: Rc::new(RefCell::new(SeriesTable::new("h", 100))),
            hub: Rc::new(hub),
            stats: stats.clone(),
        });
        let input = Pushed { told: told.clone() };
        let runner = InputRunner::new("pushed", Box::new(input), stats.input("pushed"));
        let schedule = Schedule {
            interval: Duration::from_secs(3600),
            jitter: Duration::ZERO,
        };
        let until_told = async {
            while told.get().is_none() {
                smol::future::yield_now().await;
            }
        };
        smol::block_on(futures_lite::future::or(
            runner.run(schedule, shared.clone()),
            until_told,
        ));
        assert_eq!(
            told.get(),
            Some(crate::core::publish::Published::Accepted(1))
        );
        let mut held: Vec<Sample> = Vec::new();
        queue.ring.borrow().peek_into(10, &mut held);
        assert_eq!(held.len(), 1);
        assert_eq!(&*shared.table.borrow().get(held[0].series).name, "pushed");
        assert_eq!(held[0].value, 7.0);
        assert_eq!(
            held[0].ts_ms % 3_600_000,
            0,
            "stamped at the input's interval"
        );
        assert_eq!(stats.input("pushed").gathered.get(), 1);
    }
}

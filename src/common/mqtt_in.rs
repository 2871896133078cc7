//! Subscriptions for the `mqtt_consumer` inputs: one thread, `mqtt-in`, per broker and
//! login, however many consumers subscribe there (rumqttc's event loop needs tokio, as for
//! the output's `mqtt` thread in [`super::mqtt`]).
//!
//! Consumers with the same [`BrokerKey`] share the thread and its one connection: each
//! adds its topic filters, and every incoming message goes to each consumer with a
//! matching filter through that consumer's bounded channel. A full channel drops the
//! message and counts it there ([`Subscription::dropped`]), so the thread never waits on
//! the agent; after every (re)connection the thread subscribes every filter again. The
//! thread ends when the last consumer of its broker drops its subscription.

use crate::core::backoff::Backoff;
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often a backoff sleep looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(250);
/// rumqttc's request channel: subscribe requests only.
const REQUESTS: usize = 64;
/// The longest message taken; a longer one ends the connection (rumqttc's rule), so it is
/// generous: a Zigbee2MQTT device document is a few hundred bytes.
pub const MAX_INCOMING: usize = 256 * 1024;

/// One received message.
#[derive(Debug)]
pub struct Message {
    pub topic: String,
    pub payload: bytes::Bytes,
}

/// What identifies a connection: consumers with equal keys share one. Holds the password
/// (in memory only: never printed, see the manual `Debug`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BrokerKey {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: bool,
}

impl std::fmt::Debug for BrokerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} as {}", self.host, self.port, self.client_id)
    }
}

/// What a connection is made with, beside its key.
pub struct Connect {
    pub options: MqttOptions,
    pub connect_timeout: Duration,
}

/// A consumer's side: its messages, and what the connection is doing.
pub struct Subscription {
    pub messages: async_channel::Receiver<Message>,
    /// Messages for this consumer dropped because its channel was full.
    pub dropped: Arc<AtomicU64>,
    id: u64,
    broker: Arc<Broker>,
}

impl Subscription {
    /// Whether the connection is up; and why the last attempt failed, if it did.
    pub fn status(&self) -> (bool, Option<String>) {
        let s = self.broker.lock();
        (s.connected, s.last_error.clone())
    }

    /// How many connections the thread has made (tests: a broker restart is a second one).
    pub fn connections(&self) -> u64 {
        self.broker.lock().connections
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let last = {
            let mut s = self.broker.lock();
            let Some(at) = s.consumers.iter().position(|c| c.id == self.id) else {
                return;
            };
            let gone = s.consumers.remove(at);
            // Filters no other consumer uses would only bring messages nobody reads.
            for f in &gone.filters {
                if !s.consumers.iter().any(|c| c.filters.contains(f)) {
                    let _ = self.broker.client.try_unsubscribe(f.as_str());
                }
            }
            s.consumers.is_empty()
        };
        if last {
            self.broker.stop.store(true, Ordering::Relaxed);
            // Ends the thread's poll at once; the stop flag covers a thread in backoff.
            let _ = self.broker.client.try_disconnect();
            let mut brokers = registry();
            if brokers
                .get(&self.broker.key)
                .is_some_and(|w| w.as_ptr() == Arc::as_ptr(&self.broker))
            {
                brokers.remove(&self.broker.key);
            }
        }
    }
}

struct Consumer {
    id: u64,
    filters: Vec<String>,
    qos: QoS,
    tx: async_channel::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

#[derive(Default)]
struct State {
    consumers: Vec<Consumer>,
    connected: bool,
    connections: u64,
    last_error: Option<String>,
}

struct Broker {
    key: BrokerKey,
    client: AsyncClient,
    state: Mutex<State>,
    stop: AtomicBool,
}

impl Broker {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Routing state stays consistent at every step; a panic elsewhere must not stop it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn registry() -> MutexGuard<'static, HashMap<BrokerKey, Weak<Broker>>> {
    static BROKERS: OnceLock<Mutex<HashMap<BrokerKey, Weak<Broker>>>> = OnceLock::new();
    BROKERS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Subscribes `filters` on the broker of `key`, on its running thread or a new one.
/// `capacity` bounds the consumer's channel. Fails only when no thread can be started.
pub fn subscribe(
    key: BrokerKey,
    connect: impl FnOnce() -> Connect,
    filters: Vec<String>,
    qos: QoS,
    capacity: usize,
) -> Result<Subscription, String> {
    let (tx, messages) = async_channel::bounded(capacity.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    let id = next_id();
    let consumer = Consumer {
        id,
        filters: filters.clone(),
        qos,
        tx,
        dropped: dropped.clone(),
    };
    let mut brokers = registry();
    let running = brokers
        .get(&key)
        .and_then(Weak::upgrade)
        .filter(|b| !b.stop.load(Ordering::Relaxed));
    let broker = match running {
        Some(broker) => {
            let connected = {
                let mut s = broker.lock();
                s.consumers.push(consumer);
                s.connected
            };
            // Subscribed now when connected; otherwise at the coming connection.
            if connected {
                for f in &filters {
                    let _ = broker.client.try_subscribe(f.as_str(), qos);
                }
            }
            broker
        }
        None => {
            let Connect {
                options,
                connect_timeout,
            } = connect();
            let (client, mut eventloop) = AsyncClient::new(options, REQUESTS);
            let mut network = rumqttc::NetworkOptions::new();
            network.set_connection_timeout(connect_timeout.as_secs_f64().ceil().max(1.0) as u64);
            eventloop.set_network_options(network);
            let broker = Arc::new(Broker {
                key: key.clone(),
                client,
                state: Mutex::new(State {
                    consumers: vec![consumer],
                    ..State::default()
                }),
                stop: AtomicBool::new(false),
            });
            spawn(broker.clone(), eventloop)?;
            brokers.insert(key, Arc::downgrade(&broker));
            broker
        }
    };
    Ok(Subscription {
        messages,
        dropped,
        id,
        broker,
    })
}

/// The thread holds the broker weakly: the consumers own it, and the last one's drop stops it.
fn spawn(broker: Arc<Broker>, eventloop: EventLoop) -> Result<(), String> {
    let weak = Arc::downgrade(&broker);
    let addr = format!("{}:{}", broker.key.host, broker.key.port);
    let plain = !broker.key.tls;
    std::thread::Builder::new()
        .name("mqtt-in".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    log::error!("mqtt_consumer: cannot start the MQTT runtime: {e}");
                    return;
                }
            };
            let mut driver = Driver {
                broker: weak,
                addr,
                plain,
                eventloop,
                backoff: Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
                shown: None,
            };
            rt.block_on(driver.run());
        })
        .map(drop)
        .map_err(|e| format!("cannot start the mqtt-in thread: {e}"))
}

struct Driver {
    broker: Weak<Broker>,
    addr: String,
    plain: bool,
    eventloop: EventLoop,
    backoff: Backoff,
    /// The state last logged, so each change is logged once.
    shown: Option<String>,
}

impl Driver {
    async fn run(&mut self) {
        loop {
            let Some(broker) = self.broker.upgrade() else {
                return;
            };
            if broker.stop.load(Ordering::Relaxed) {
                return;
            }
            drop(broker);
            match self.eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => self.on_connect(),
                Ok(Event::Incoming(Packet::Publish(p))) => self.route(p.topic, p.payload),
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(ConnectionError::RequestsDone) => return,
                Err(e) => self.on_error(&e).await,
            }
        }
    }

    /// Subscribes every consumer's filters again: the session may be new.
    fn on_connect(&mut self) {
        self.backoff.reset();
        let Some(broker) = self.broker.upgrade() else {
            return;
        };
        let mut s = broker.lock();
        s.connected = true;
        s.connections += 1;
        s.last_error = None;
        for c in &s.consumers {
            for f in &c.filters {
                // The request channel holds 64; a filter that does not fit is taken at the
                // next connection (logged: the consumer would otherwise wait silently).
                if broker.client.try_subscribe(f.as_str(), c.qos).is_err() {
                    log::warn!("mqtt_consumer: could not subscribe {f} on {}", self.addr);
                }
            }
        }
        drop(s);
        self.show(format!("connected to {}", self.addr), false);
    }

    /// Hands a message to each consumer with a matching filter.
    fn route(&mut self, topic: String, payload: bytes::Bytes) {
        let Some(broker) = self.broker.upgrade() else {
            return;
        };
        let s = broker.lock();
        let mut wanted = s
            .consumers
            .iter()
            .filter(|c| c.filters.iter().any(|f| matches(f, &topic)));
        let Some(first) = wanted.next() else {
            return;
        };
        // The usual case, one consumer: the topic moves instead of being copied.
        let rest: Vec<&Consumer> = wanted.collect();
        for c in &rest {
            let copy = Message {
                topic: topic.clone(),
                payload: payload.clone(),
            };
            if c.tx.try_send(copy).is_err() {
                c.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if first.tx.try_send(Message { topic, payload }).is_err() {
            first.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn on_error(&mut self, e: &ConnectionError) {
        let was_connected = match self.broker.upgrade() {
            Some(b) => std::mem::replace(&mut b.lock().connected, false),
            None => return,
        };
        let text = super::mqtt::describe(e, &self.addr, was_connected, self.plain);
        if let Some(b) = self.broker.upgrade() {
            b.lock().last_error = Some(text.clone());
        }
        self.show(text, true);
        let mut left = self.backoff.next_delay();
        while !left.is_zero() {
            match self.broker.upgrade() {
                Some(b) if !b.stop.load(Ordering::Relaxed) => {}
                _ => return,
            }
            let step = left.min(STOP_CHECK);
            tokio::time::sleep(step).await;
            left -= step;
        }
    }

    fn show(&mut self, text: String, bad: bool) {
        if self.shown.as_deref() == Some(text.as_str()) {
            return;
        }
        if bad {
            log::warn!(
                "mqtt_consumer: {text}; retrying with backoff up to {}s",
                BACKOFF_MAX.as_secs()
            );
        } else {
            log::info!("mqtt_consumer: {text}");
        }
        self.shown = Some(text);
    }
}

/// Whether `topic` matches the MQTT filter `filter` (`+` one level, `#` the rest). As MQTT
/// says, a filter starting with a wildcard does not match topics starting with `$`.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut levels = topic.split('/');
    for f in filter.split('/') {
        match (f, levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(t)) if f == t => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_mqtt_says() {
        for (filter, topic, want) in [
            ("tele/+/SENSOR", "tele/plug1/SENSOR", true),
            ("tele/+/SENSOR", "tele/plug1/STATE", false),
            ("tele/+/SENSOR", "tele/a/b/SENSOR", false),
            ("zigbee2mqtt/#", "zigbee2mqtt/lamp", true),
            ("zigbee2mqtt/#", "zigbee2mqtt", true),
            ("#", "a/b/c", true),
            ("#", "$SYS/broker/uptime", false),
            ("+/status/+", "shelly1/status/switch:0", true),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/b", false),
            ("a/+", "a/", true),
        ] {
            assert_eq!(matches(filter, topic), want, "{filter} {topic}");
        }
    }
}

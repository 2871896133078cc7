//! A connection's thread: rumqttc's event loop on a tokio `current_thread` runtime (the
//! only tokio runtimes in the agent), named `mqtt`, one per shared connection. It connects
//! (again, with backoff), says `online` for the output and subscribes every consumer's
//! filters after each connection, counts the output's acknowledgements, and routes incoming
//! messages: Home Assistant's births to the output, the rest to each consumer whose filters
//! match. It never waits on the agent.

use super::{matches, Connection, Dial, Message, State};
use crate::core::backoff::Backoff;
use futures_lite::future;
use rumqttc::{ConnectReturnCode, ConnectionError, Event, EventLoop, Outgoing, Packet, QoS};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often a backoff sleep looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(250);

/// Starts the thread of `conn`, which it holds weakly: its users own the connection. Fails
/// only when the OS cannot start a thread.
pub(super) fn spawn(
    conn: &Arc<Connection>,
    mut eventloop: EventLoop,
    connect_timeout: Duration,
    control: async_channel::Receiver<()>,
) -> Result<(), String> {
    eventloop.set_network_options(network(connect_timeout));
    let conn = Arc::downgrade(conn);
    std::thread::Builder::new()
        .name("mqtt".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    log::error!("mqtt: cannot start the MQTT runtime: {e}");
                    if let Some(c) = conn.upgrade() {
                        c.lock().last_error = Some(format!("no MQTT runtime: {e}"));
                        c.notify();
                    }
                    return;
                }
            };
            let mut driver = Driver {
                conn,
                eventloop,
                control,
                backoff: Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
                shown: None,
            };
            rt.block_on(driver.run());
            if let Some(c) = driver.conn.upgrade() {
                c.finished.store(true, Ordering::Relaxed);
            }
        })
        .map(drop)
        .map_err(|e| format!("cannot start the mqtt thread: {e}"))
}

fn network(connect_timeout: Duration) -> rumqttc::NetworkOptions {
    let mut network = rumqttc::NetworkOptions::new();
    // rumqttc counts whole seconds.
    network.set_connection_timeout(connect_timeout.as_secs_f64().ceil().max(1.0) as u64);
    // A flush waits for the acks of its last messages: do not let Nagle hold them back.
    network.set_tcp_nodelay(true);
    network
}

struct Driver {
    conn: Weak<Connection>,
    eventloop: EventLoop,
    /// Woken when the connection has new options to connect with.
    control: async_channel::Receiver<()>,
    backoff: Backoff,
    /// The state last logged, so each change is logged once.
    shown: Option<String>,
}

/// What ended a wait on the event loop.
enum Woke {
    Polled(Result<Event, ConnectionError>),
    Control,
}

impl Driver {
    async fn run(&mut self) {
        loop {
            let Some(conn) = self.live() else {
                return;
            };
            let dial = conn.lock().reconfigure.take();
            if let Some(dial) = dial {
                self.reconnect_with(dial);
            }
            drop(conn);
            let (eventloop, control) = (&mut self.eventloop, &self.control);
            let woke = future::or(async { Woke::Polled(eventloop.poll().await) }, async {
                let _ = control.recv().await;
                Woke::Control
            })
            .await;
            match woke {
                Woke::Control => {}
                Woke::Polled(Ok(Event::Incoming(Packet::ConnAck(_)))) => self.on_connect(),
                Woke::Polled(Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_)))) => {
                    self.on_ack()
                }
                Woke::Polled(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    self.on_message(p.topic, p.payload)
                }
                Woke::Polled(Ok(Event::Outgoing(Outgoing::Disconnect))) => return,
                Woke::Polled(Ok(Event::Outgoing(_))) => self.on_taken(),
                Woke::Polled(Ok(_)) => {}
                Woke::Polled(Err(ConnectionError::RequestsDone)) => return,
                Woke::Polled(Err(e)) => self.on_error(&e).await,
            }
        }
    }

    /// The connection while it has users and is not told to stop. One whose last user is
    /// leaving ends once it is down: nobody would say goodbye on a new connection.
    fn live(&self) -> Option<Arc<Connection>> {
        let conn = self.conn.upgrade()?;
        if conn.stop.load(Ordering::Relaxed) {
            return None;
        }
        let s = conn.lock();
        let gone = s.closing && !s.connected;
        drop(s);
        (!gone).then_some(conn)
    }

    /// Drops the current connection (an output joined with its own client id and last
    /// will, or left a client id another output needs): the next poll connects with `dial`.
    /// What was not sent is dropped: the joining output has sent nothing yet (a leaving
    /// one's `offline` is said by its last will when this connection drops), and every
    /// filter is subscribed again on connecting.
    fn reconnect_with(&mut self, dial: Dial) {
        self.eventloop.mqtt_options = dial.options;
        self.eventloop.network_options = network(dial.connect_timeout);
        self.eventloop.clean();
        self.eventloop.pending.clear();
        // A wake-up sent before this one was applied would cut the next poll short, perhaps
        // in the middle of writing a packet.
        while self.control.try_recv().is_ok() {}
        self.backoff.reset();
        self.shown = None;
    }

    fn on_connect(&mut self) {
        self.backoff.reset();
        let Some(conn) = self.live() else {
            return;
        };
        let addr = conn.endpoint.addr();
        let who = {
            let mut s = conn.lock();
            if s.reconfigure.is_some() {
                // Made with the old options: the loop connects again with the new ones.
                return;
            }
            if s.closing {
                // Its last user left while it was down: nothing to connect for.
                drop(s);
                conn.stop.store(true, Ordering::Relaxed);
                return;
            }
            s.connected = true;
            s.epoch += 1;
            s.handed = 0;
            s.acked = 0;
            s.want = 0;
            s.last_error = None;
            subscribe_all(&conn, &mut s, &addr);
            s.who()
        };
        self.show(&who, format!("connected to {addr}"), false);
        conn.notify();
    }

    /// A request left the channel: room for the output, if it waits for some.
    fn on_taken(&mut self) {
        let Some(conn) = self.conn.upgrade() else {
            return;
        };
        let waiting = std::mem::take(&mut conn.lock().room_wanted);
        if waiting {
            conn.notify();
        }
    }

    fn on_ack(&mut self) {
        let Some(conn) = self.conn.upgrade() else {
            return;
        };
        let reached = {
            let mut s = conn.lock();
            s.acked += 1;
            s.acked >= s.want
        };
        if reached {
            conn.notify();
        }
    }

    /// A Home Assistant birth to the output; the message to each consumer with a matching
    /// filter, unless it is the output's own and the consumer skips those.
    fn on_message(&mut self, topic: String, payload: bytes::Bytes) {
        let Some(conn) = self.conn.upgrade() else {
            return;
        };
        let mut s = conn.lock();
        if let Some(out) = &s.output {
            if out.ha_status.as_deref() == Some(topic.as_str()) && payload.as_ref() == b"online" {
                log::info!(
                    "{}: Home Assistant came online: sending discovery again",
                    out.who
                );
                s.ha_births += 1;
                conn.notify();
            }
        }
        route(&s, topic, payload);
    }

    async fn on_error(&mut self, e: &ConnectionError) {
        let Some(conn) = self.live() else {
            return;
        };
        let plain = conn.endpoint.tls.is_none();
        let addr = conn.endpoint.addr();
        let (text, who) = {
            let mut s = conn.lock();
            let text = describe(e, &addr, s.connected, plain);
            s.connected = false;
            s.last_error = Some(text.clone());
            // The output hands messages only while `connected`, under this lock: what it
            // handed before is dropped here rather than sent on the next connection, where
            // its ack would be counted for a batch it is not part of. Subscriptions are made
            // again on connecting.
            self.eventloop.clean();
            self.eventloop.pending.clear();
            (text, s.who())
        };
        conn.notify();
        drop(conn);
        self.show(&who, text, true);
        let mut left = self.backoff.next_delay();
        while !left.is_zero() {
            let Some(conn) = self.live() else {
                return;
            };
            if conn.lock().reconfigure.is_some() {
                return;
            }
            drop(conn);
            let step = left.min(STOP_CHECK);
            tokio::time::sleep(step).await;
            left -= step;
        }
    }

    /// Logs a state once, when it differs from the last one logged.
    fn show(&mut self, who: &str, text: String, bad: bool) {
        let first_connect = self.shown.is_none() && !bad;
        if self.shown.as_deref() == Some(text.as_str()) {
            return;
        }
        if bad {
            log::warn!(
                "{who}: {text}; retrying with backoff up to {}s",
                BACKOFF_MAX.as_secs()
            );
        } else if first_connect {
            log::info!("{who}: {text}");
        } else {
            log::info!("{who}: {text} again");
        }
        self.shown = Some(text);
    }
}

/// Hands a message to each consumer with a matching filter; one whose channel is full
/// misses it, counted.
pub(super) fn route(s: &State, topic: String, payload: bytes::Bytes) {
    let own = s.own.as_deref().is_some_and(|own| matches(own, &topic));
    let mut wanted = s.consumers.iter().filter(|c| {
        if !c.filters.iter().any(|f| matches(f, &topic)) {
            return false;
        }
        if own && c.skip_own {
            c.skipped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    });
    let Some(first) = wanted.next() else {
        return;
    };
    for c in wanted {
        let copy = Message {
            topic: topic.clone(),
            payload: payload.clone(),
        };
        if c.tx.try_send(copy).is_err() {
            c.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    // The usual case, one consumer: the topic moves instead of being copied.
    if first.tx.try_send(Message { topic, payload }).is_err() {
        first.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// After a connection: `online` for the output, then every subscription again (the session
/// is new). The request channel is drained by this thread, so `try_` never waits on itself;
/// a request that does not fit is taken at the next connection, and logged.
fn subscribe_all(conn: &Connection, s: &mut State, addr: &str) {
    if let Some(out) = &s.output {
        let online = conn
            .client
            .try_publish(out.status.as_str(), QoS::AtLeastOnce, true, "online");
        if online.is_ok() {
            s.handed += 1;
        }
        if let Some(t) = &out.ha_status {
            let _ = conn.client.try_subscribe(t.as_str(), QoS::AtLeastOnce);
        }
    }
    for c in &s.consumers {
        for f in &c.filters {
            if conn.client.try_subscribe(f.as_str(), c.qos).is_err() {
                log::warn!("mqtt_consumer: could not subscribe {f} on {addr}; trying at the next connection");
            }
        }
    }
}

/// The failure in words an operator can act on. Never includes the password. The
/// `ssl: true` hint goes only with a plain connection the broker closed without an MQTT
/// answer (a TLS listener resets a plain client), never with one it answered.
pub fn describe(e: &ConnectionError, addr: &str, was_connected: bool, plain: bool) -> String {
    let tls_hint = if plain {
        "; if the broker expects TLS on this port, set `ssl: true`"
    } else {
        ""
    };
    match e {
        ConnectionError::ConnectionRefused(code) => match code {
            ConnectReturnCode::BadUserNamePassword => format!(
                "the broker at {addr} refused the login: bad user name or password; check username and password"
            ),
            ConnectReturnCode::NotAuthorized => format!(
                "the broker at {addr} refused the connection: not authorized; set username and password, or allow this user/client id on the broker"
            ),
            other => format!("the broker at {addr} refused the connection: {other:?}"),
        },
        ConnectionError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "broker at {addr} unreachable: connection refused (is it running, is the port right?)"
        ),
        ConnectionError::Io(io) if !was_connected => {
            format!("broker at {addr} unreachable: {io}")
        }
        #[cfg(feature = "tls")]
        ConnectionError::Tls(t) => format!("TLS failure with {addr}: {}", tls_reason(t, addr)),
        ConnectionError::NetworkTimeout => format!(
            "no connection to {addr} within connect_timeout: broker unreachable or not answering"
        ),
        other if was_connected => format!("lost the connection to {addr}: {other}"),
        // It answered in MQTT, so it is no TLS port: the `ssl: true` hint would mislead.
        ConnectionError::NotConnAck(packet) => format!(
            "the broker at {addr} answered the login with {packet:?} instead of CONNACK; is it an MQTT 3.1.1 broker?"
        ),
        other => format!("the broker at {addr} hung up while connecting ({other}){tls_hint}"),
    }
}

/// A TLS failure in words: the rustls error inside rumqttc's, explained as for any client.
#[cfg(feature = "tls")]
fn tls_reason(e: &rumqttc::TlsError, addr: &str) -> String {
    let rustls_error = match e {
        rumqttc::TlsError::TLS(r) => Some(r),
        rumqttc::TlsError::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    let host = addr.rsplit_once(':').map_or(addr, |(host, _port)| host);
    match rustls_error {
        Some(r) => crate::common::tls::explain(r, "broker", host),
        None => e.to_string(),
    }
}

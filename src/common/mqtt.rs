//! The MQTT client's event loop (the `mqtt` output's, and any plugin's that talks MQTT).
//!
//! The `mqtt` thread: rumqttc's event loop needs tokio, so it runs here, on one named thread
//! with a tokio `current_thread` runtime, the only tokio runtime in the agent. The smol side
//! hands it messages through rumqttc's bounded request channel ([`AsyncClient`]) and learns
//! what happened (connected, acknowledged, Home Assistant restarted) from [`Link`]: counters
//! under a mutex plus a bounded wake-up channel of capacity 1. When that channel is full a
//! wake-up is already pending and the reader will see the newest counters, so nothing is lost
//! and the thread never blocks on the agent.

use crate::core::backoff::Backoff;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, Outgoing, Packet, QoS,
};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often a backoff sleep looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(250);

/// What the thread tells the agent. `epoch` counts connections; `handed` and `acked` count,
/// within the current connection, QoS 1/2 publishes given to the client and acknowledged by
/// the broker (PUBACK, PUBCOMP). rumqttc starts every connection with a clean session and
/// drops what was not acknowledged, so `acked >= handed` means all of it arrived.
#[derive(Debug, Default)]
pub struct LinkState {
    pub connected: bool,
    pub epoch: u64,
    pub handed: u64,
    pub acked: u64,
    /// The `acked` count the agent waits for: acks below it wake nobody, so a batch of a
    /// thousand messages costs one wake-up, not a thousand.
    pub want: u64,
    /// `online` messages seen on Home Assistant's status topic.
    pub ha_births: u64,
    /// Why the last connection attempt failed; never holds the password.
    pub last_error: Option<String>,
    pub stop: bool,
}

pub struct Link {
    state: Mutex<LinkState>,
    wake: async_channel::Sender<()>,
}

impl Link {
    pub fn new() -> (Arc<Link>, async_channel::Receiver<()>) {
        let (wake, rx) = async_channel::bounded(1);
        let link = Link {
            state: Mutex::new(LinkState::default()),
            wake,
        };
        (Arc::new(link), rx)
    }

    pub fn lock(&self) -> MutexGuard<'_, LinkState> {
        // A panic while holding the lock cannot leave the counters half-updated in a way
        // that matters more than stopping the output would.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        let _ = self.wake.try_send(());
    }

    pub fn stop(&self) {
        self.lock().stop = true;
    }
}

/// What the thread publishes and listens to by itself.
pub struct Topics {
    /// `<prefix>/status`: `online` (retained) after each connect; the last will says `offline`.
    pub status: String,
    /// `<discovery_prefix>/status` when Home Assistant discovery is on.
    pub ha_status: Option<String>,
}

/// Starts the thread. Fails only when the OS cannot start a thread. `who` names the plugin in
/// messages (`output mqtt`); `plain`: no TLS.
pub fn spawn(
    who: &str,
    addr: String,
    plain: bool,
    eventloop: EventLoop,
    client: AsyncClient,
    link: Arc<Link>,
    topics: Topics,
) -> Result<std::thread::JoinHandle<()>, String> {
    let who = who.to_string();
    std::thread::Builder::new()
        .name("mqtt".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    log::error!("{who}: cannot start the MQTT runtime: {e}");
                    link.lock().last_error = Some(format!("no MQTT runtime: {e}"));
                    return;
                }
            };
            let mut driver = Driver {
                who,
                addr,
                plain,
                eventloop,
                client,
                link,
                topics,
                backoff: Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
                shown: None,
            };
            rt.block_on(driver.run());
        })
        .map_err(|e| format!("cannot start the mqtt thread: {e}"))
}

struct Driver {
    /// The plugin, for messages (`output mqtt`).
    who: String,
    addr: String,
    /// Plain MQTT: a broker that hangs up during the handshake may want TLS.
    plain: bool,
    eventloop: EventLoop,
    client: AsyncClient,
    link: Arc<Link>,
    topics: Topics,
    backoff: Backoff,
    /// The state last logged, so each change is logged once.
    shown: Option<String>,
}

impl Driver {
    async fn run(&mut self) {
        loop {
            if self.link.lock().stop {
                return;
            }
            match self.eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => self.on_connect(),
                Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) => {
                    let reached = {
                        let mut s = self.link.lock();
                        s.acked += 1;
                        s.acked >= s.want
                    };
                    if reached {
                        self.link.notify();
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let birth = self.topics.ha_status.as_deref() == Some(p.topic.as_str())
                        && p.payload.as_ref() == b"online";
                    if birth {
                        log::info!(
                            "{}: Home Assistant came online: sending discovery again",
                            self.who
                        );
                        self.link.lock().ha_births += 1;
                        self.link.notify();
                    }
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(ConnectionError::RequestsDone) => return,
                Err(e) => self.on_error(&e).await,
            }
        }
    }

    fn on_connect(&mut self) {
        self.backoff.reset();
        {
            let mut s = self.link.lock();
            s.connected = true;
            s.epoch += 1;
            s.handed = 0;
            s.acked = 0;
            s.want = 0;
            s.last_error = None;
            // The request channel is drained by this thread, so `try_` never waits on itself;
            // a full channel only delays `online` until the next connection.
            let online = self.client.try_publish(
                self.topics.status.as_str(),
                QoS::AtLeastOnce,
                true,
                "online",
            );
            if online.is_ok() {
                s.handed += 1;
            }
        }
        if let Some(t) = &self.topics.ha_status {
            let _ = self.client.try_subscribe(t.as_str(), QoS::AtLeastOnce);
        }
        self.show(format!("connected to {}", self.addr), false);
        self.link.notify();
    }

    async fn on_error(&mut self, e: &ConnectionError) {
        let text = {
            let mut s = self.link.lock();
            let text = describe(e, &self.addr, s.connected, self.plain);
            s.connected = false;
            s.last_error = Some(text.clone());
            text
        };
        self.link.notify();
        self.show(text, true);
        let mut left = self.backoff.next_delay();
        while !left.is_zero() {
            if self.link.lock().stop {
                return;
            }
            let step = left.min(STOP_CHECK);
            tokio::time::sleep(step).await;
            left -= step;
        }
    }

    /// Logs a state once, when it differs from the last one logged.
    fn show(&mut self, text: String, bad: bool) {
        let first_connect = self.shown.is_none() && !bad;
        if self.shown.as_deref() == Some(text.as_str()) {
            return;
        }
        if bad {
            log::warn!(
                "{}: {text}; retrying with backoff up to {}s",
                self.who,
                BACKOFF_MAX.as_secs()
            );
        } else if first_connect {
            log::info!("{}: {text}", self.who);
        } else {
            log::info!("{}: {text} again", self.who);
        }
        self.shown = Some(text);
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

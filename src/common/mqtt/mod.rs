//! MQTT connections, shared: one connection and one thread (named `mqtt`) per broker and
//! login, serving the `mqtt` output and every `mqtt_consumer` input that can use it.
//!
//! rumqttc's event loop needs tokio, so each connection's loop runs on its own thread with a
//! tokio `current_thread` runtime ([`driver`]); the agent's side stays on the smol executor.
//! Who shares: users with equal [`Endpoint`]s (host, port, credentials, TLS files) whose
//! sessions agree. An output shares with consumers that name no client id of their own (or
//! its id) and use a clean session; consumers share with each other when their client ids
//! (if named) and clean-session choices agree. Whichever starts first opens the connection;
//! an output that joins a consumers' connection makes it reconnect once with the output's
//! options (its client id and its `offline` last will), and the consumers subscribe again.
//!
//! What crosses the thread boundary: the output hands messages to rumqttc's bounded request
//! channel and learns of connections, acknowledgements and Home Assistant births from the
//! counters in [`State`] plus a wake-up channel of capacity 1 (a full channel means a wake-up
//! is pending, and the reader will see the newest counters). Each consumer gets its messages
//! through a bounded channel of its own; a full one drops the message and counts it there.
//! The thread never waits on the agent. It ends when its last user leaves.

mod driver;

pub use driver::describe;

use crate::common::tls::TlsFiles;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

/// rumqttc's request channel: a full channel makes the output's write wait.
pub const REQUESTS: usize = 64;
/// The longest message taken; a longer one ends the connection (rumqttc's rule), so it is
/// generous: a Zigbee2MQTT device document is a few hundred bytes.
pub const MAX_INCOMING: usize = 256 * 1024;

/// The broker and the login: users with equal endpoints may share a connection. Holds the
/// password (in memory only: never printed, see the manual `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// TLS with these files and checks; `None`: plain MQTT.
    pub tls: Option<TlsKey>,
}

impl Endpoint {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The TLS settings a connection was made with: two users share only when they trust the
/// same CAs and present the same certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsKey {
    pub ca_certs: Option<PathBuf>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

impl TlsKey {
    pub fn of(files: &TlsFiles<'_>) -> TlsKey {
        TlsKey {
            ca_certs: files.ca_certs.map(PathBuf::from),
            certfile: files.certfile.map(PathBuf::from),
            keyfile: files.keyfile.map(PathBuf::from),
            insecure_skip_verify: files.insecure_skip_verify,
        }
    }
}

/// How to connect, beside the endpoint.
#[derive(Clone)]
pub struct Dial {
    pub options: MqttOptions,
    pub connect_timeout: Duration,
}

/// What the options say to the broker that matters for sharing: a change of any of these
/// needs a new connection.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Session {
    client_id: String,
    keep_alive: Duration,
    clean: bool,
    will: Option<String>,
}

impl Session {
    fn of(options: &MqttOptions) -> Session {
        Session {
            client_id: options.client_id(),
            keep_alive: options.keep_alive(),
            clean: options.clean_session(),
            will: options.last_will().map(|w| w.topic),
        }
    }
}

/// What the output asks of its connection.
pub struct OutputSide {
    /// The plugin, for messages (`output mqtt`).
    pub who: String,
    /// `<prefix>/status`: `online` (retained) after each connect; the last will says `offline`.
    pub status: String,
    /// `<discovery_prefix>/status` when Home Assistant discovery is on.
    pub ha_status: Option<String>,
    /// The filter of what the output publishes (`<prefix>/#`): consumers that keep the
    /// default `ignore_topics` are not handed these, so the two never loop.
    pub own: String,
}

struct Consumer {
    id: u64,
    /// The client id its config names, if any.
    client_id: Option<String>,
    filters: Vec<String>,
    qos: QoS,
    skip_own: bool,
    tx: async_channel::Sender<Message>,
    dropped: Arc<AtomicU64>,
    skipped: Arc<AtomicU64>,
}

/// One received message, for a consumer.
#[derive(Debug)]
pub struct Message {
    pub topic: String,
    pub payload: bytes::Bytes,
}

/// The connection's state. The public fields are the output's accounting: `epoch` counts
/// connections; `handed` and `acked` count, within the current connection, QoS 1/2
/// publishes given to the client and acknowledged by the broker (PUBACK, PUBCOMP). Every
/// connection starts with a clean session and rumqttc drops what was not acknowledged, so
/// `acked >= handed` means all of it arrived. Consumers publish nothing, so they never move
/// these counters.
#[derive(Default)]
pub struct State {
    pub connected: bool,
    pub epoch: u64,
    pub handed: u64,
    pub acked: u64,
    /// The `acked` count the output waits for: acks below it wake nobody, so a batch of a
    /// thousand messages costs one wake-up, not a thousand.
    pub want: u64,
    /// `online` messages seen on Home Assistant's status topic.
    pub ha_births: u64,
    /// The output found the request channel full: the thread wakes it when it takes the
    /// next request.
    pub room_wanted: bool,
    /// Why the last connection attempt failed; never holds the password.
    pub last_error: Option<String>,
    session: Option<Session>,
    output: Option<OutputSide>,
    /// The filter of what the connection's output publishes ([`OutputSide::own`]); kept
    /// after the output leaves, as its last will is: its goodbye and will come after.
    own: Option<String>,
    consumers: Vec<Consumer>,
    /// Options to connect with instead, once the thread gets to it.
    reconfigure: Option<Dial>,
    /// The consumers' own options (the first consumer's), to go back to when an output
    /// that left needs its client id elsewhere.
    fallback: Option<Dial>,
    /// No user left: nobody may join; the thread ends after the last user's goodbye.
    closing: bool,
}

impl State {
    /// Whether a consumer with these wishes can use this connection.
    fn takes_consumer(&self, client_id: Option<&str>, clean: bool) -> bool {
        let Some(session) = &self.session else {
            return false;
        };
        !self.closing
            && session.clean == clean
            && client_id.is_none_or(|id| id == session.client_id)
    }

    /// Whether an output with this client id can use this connection (perhaps after a
    /// reconnection with its options).
    fn takes_output(&self, client_id: &str) -> bool {
        let Some(session) = &self.session else {
            return false;
        };
        !self.closing
            && self.output.is_none()
            && session.clean
            && self
                .consumers
                .iter()
                .all(|c| c.client_id.as_deref().is_none_or(|id| id == client_id))
    }

    fn has_users(&self) -> bool {
        self.output.is_some() || !self.consumers.is_empty()
    }

    /// For messages: who uses the connection.
    fn who(&self) -> String {
        match (&self.output, self.consumers.len()) {
            (Some(o), 0) => o.who.clone(),
            (Some(o), _) => format!("{} (with mqtt_consumer)", o.who),
            (None, _) => "mqtt_consumer".to_string(),
        }
    }

    /// Whether a filter still serves someone other than the one leaving.
    fn filter_in_use(&self, filter: &str) -> bool {
        self.consumers
            .iter()
            .any(|c| c.filters.iter().any(|f| f == filter))
            || self
                .output
                .as_ref()
                .is_some_and(|o| o.ha_status.as_deref() == Some(filter))
    }
}

pub struct Connection {
    endpoint: Endpoint,
    client: AsyncClient,
    state: Mutex<State>,
    /// Wakes the output: a connection, an acknowledgement it waits for, a birth.
    wake: async_channel::Sender<()>,
    woken: async_channel::Receiver<()>,
    /// Wakes the thread: new options to connect with.
    control: async_channel::Sender<()>,
    /// The thread must end now (its users have said goodbye, or could not).
    stop: AtomicBool,
    /// The thread has ended.
    finished: AtomicBool,
}

impl Connection {
    /// The connection and the receiving end of its control channel (the thread's).
    fn new(
        endpoint: Endpoint,
        client: AsyncClient,
        state: State,
    ) -> (Arc<Connection>, async_channel::Receiver<()>) {
        let (wake, woken) = async_channel::bounded(1);
        let (control, controlled) = async_channel::bounded(1);
        let conn = Arc::new(Connection {
            endpoint,
            client,
            state: Mutex::new(state),
            wake,
            woken,
            control,
            stop: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        });
        (conn, controlled)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every step leaves the state consistent; a panic elsewhere must not stop the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        let _ = self.wake.try_send(());
    }

    /// Ends the thread at once: told by DISCONNECT, or at its next look at the stop flag
    /// when the request channel is full or it is not connected.
    fn shut(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.client.try_disconnect();
    }

    /// Takes this connection out of the registry, so nobody joins it any more.
    fn unregister(self: &Arc<Self>) {
        registry().retain(|w| w.strong_count() > 0 && w.as_ptr() != Arc::as_ptr(self));
    }
}

fn registry() -> MutexGuard<'static, Vec<Weak<Connection>>> {
    static CONNECTIONS: OnceLock<Mutex<Vec<Weak<Connection>>>> = OnceLock::new();
    CONNECTIONS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The first running connection to `endpoint` whose state `fits`.
fn find(
    connections: &[Weak<Connection>],
    endpoint: &Endpoint,
    fits: impl Fn(&State) -> bool,
) -> Option<Arc<Connection>> {
    connections
        .iter()
        .filter_map(Weak::upgrade)
        .find(|c| &c.endpoint == endpoint && fits(&c.lock()))
}

/// Opens a connection with `state` as its users and starts its thread.
fn open(
    connections: &mut Vec<Weak<Connection>>,
    endpoint: Endpoint,
    dial: Dial,
    mut state: State,
) -> Result<Arc<Connection>, String> {
    state.session = Some(Session::of(&dial.options));
    let (client, eventloop) = AsyncClient::new(dial.options.clone(), REQUESTS);
    let (conn, controlled) = Connection::new(endpoint, client, state);
    driver::spawn(&conn, eventloop, dial.connect_timeout, controlled)?;
    connections.retain(|w| w.strong_count() > 0);
    connections.push(Arc::downgrade(&conn));
    Ok(conn)
}

/// The output's hold on its connection.
pub struct OutputLink {
    conn: Arc<Connection>,
    attached: bool,
}

/// Joins the connection to `endpoint` that can serve the output, or opens one. Fails only
/// when no thread can be started.
pub fn attach_output(
    endpoint: Endpoint,
    dial: Dial,
    side: OutputSide,
) -> Result<OutputLink, String> {
    let session = Session::of(&dial.options);
    let mut connections = registry();
    let found = find(&connections, &endpoint, |s| {
        s.takes_output(&session.client_id)
    });
    if let Some(conn) = found {
        let mut s = conn.lock();
        // Checked again under the lock: its last consumer may have left meanwhile.
        if s.takes_output(&session.client_id) {
            join_as_output(&conn, &mut s, session, dial, side);
            drop(s);
            return Ok(OutputLink {
                conn,
                attached: true,
            });
        }
    }
    release_client_id(&connections, &session.client_id, &side.who);
    let state = State {
        own: Some(side.own.clone()),
        output: Some(side),
        ..State::default()
    };
    let conn = open(&mut connections, endpoint, dial, state)?;
    Ok(OutputLink {
        conn,
        attached: true,
    })
}

/// An output that left a connection to its consumers left its client id on it; an output
/// that needs that id on another connection (a reload changed the broker options) gets it
/// back: that connection reconnects with its consumers' own options, or the two would push
/// each other off the broker.
fn release_client_id(connections: &[Weak<Connection>], client_id: &str, who: &str) {
    for conn in connections.iter().filter_map(Weak::upgrade) {
        let mut s = conn.lock();
        let holds = s.output.is_none()
            && !s.closing
            && s.session.as_ref().is_some_and(|x| x.client_id == client_id);
        let Some(dial) = s.fallback.clone().filter(|_| holds) else {
            continue;
        };
        log::info!(
            "{who}: the mqtt_consumer connection to {} goes back to its own client id `{}`",
            conn.endpoint.addr(),
            dial.options.client_id()
        );
        s.session = Some(Session::of(&dial.options));
        s.own = None;
        s.reconfigure = Some(dial);
        s.connected = false;
        s.last_error = None;
        let _ = conn.control.try_send(());
    }
}

/// Adds the output to a consumers' connection: a reconnection when its client id or last
/// will differ from the connection's (both are said only when connecting), else `online`
/// and the Home Assistant subscription now.
fn join_as_output(
    conn: &Connection,
    s: &mut State,
    session: Session,
    dial: Dial,
    side: OutputSide,
) {
    log::info!(
        "{}: sharing the connection to {} with mqtt_consumer",
        side.who,
        conn.endpoint.addr()
    );
    if s.session.as_ref() != Some(&session) {
        s.session = Some(session);
        s.reconfigure = Some(dial);
        s.connected = false;
        s.last_error = None;
        let _ = conn.control.try_send(());
    } else if s.connected {
        let online =
            conn.client
                .try_publish(side.status.as_str(), QoS::AtLeastOnce, true, "online");
        if online.is_ok() {
            s.handed += 1;
        }
        if let Some(t) = &side.ha_status {
            let _ = conn.client.try_subscribe(t.as_str(), QoS::AtLeastOnce);
        }
    }
    s.own = Some(side.own.clone());
    s.output = Some(side);
}

impl OutputLink {
    pub fn client(&self) -> &AsyncClient {
        &self.conn.client
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.conn.lock()
    }

    /// Waits for a change: a connection, a failure, the acks asked for, a birth.
    pub async fn changed(&self) {
        let _ = self.conn.woken.recv().await;
    }

    /// Leaves the connection. `true` when nobody else uses it: the caller then says goodbye
    /// (`offline`, DISCONNECT), waits for [`OutputLink::finished`] and calls
    /// [`OutputLink::stop`]. Otherwise the connection goes on for the consumers.
    pub fn leave(&mut self) -> bool {
        if !std::mem::take(&mut self.attached) {
            return false;
        }
        let last = {
            let mut s = self.conn.lock();
            if let Some(t) = s.output.take().and_then(|o| o.ha_status) {
                if !s.filter_in_use(&t) {
                    let _ = self.conn.client.try_unsubscribe(t.as_str());
                }
            }
            s.closing = !s.has_users();
            s.closing
        };
        if last {
            self.conn.unregister();
        }
        last
    }

    /// Whether the thread has ended (after a DISCONNECT).
    pub fn finished(&self) -> bool {
        self.conn.finished.load(Ordering::Relaxed)
    }

    /// Ends the thread if this output was its last user.
    pub fn stop(&self) {
        if self.conn.lock().closing {
            self.conn.shut();
        }
    }
}

impl Drop for OutputLink {
    /// Not left explicitly: leaves now, and ends the thread if it was the last user.
    fn drop(&mut self) {
        if self.leave() {
            self.conn.shut();
        }
    }
}

/// What a consumer asks for.
pub struct Wish {
    pub endpoint: Endpoint,
    /// The client id its config names; `None`: any connection to the endpoint serves.
    pub client_id: Option<String>,
    pub clean_session: bool,
    pub filters: Vec<String>,
    pub qos: QoS,
    /// Not handed what the output on the same connection publishes.
    pub skip_own: bool,
    /// Bounds the consumer's channel.
    pub capacity: usize,
}

/// A consumer's side: its messages, and what the connection is doing.
pub struct Subscription {
    pub messages: async_channel::Receiver<Message>,
    /// Messages for this consumer dropped because its channel was full.
    pub dropped: Arc<AtomicU64>,
    /// Messages its filters matched but not handed over: the output sharing the connection
    /// published them (with `skip_own`).
    pub skipped: Arc<AtomicU64>,
    id: u64,
    conn: Arc<Connection>,
    /// Filters to subscribe from the consumer's task: it joined a connection already up.
    catch_up: Vec<String>,
    qos: QoS,
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Subscribes the wished filters on a connection that can serve them, or a new one made
/// with `dial`. Fails only when no thread can be started.
pub fn subscribe(wish: Wish, dial: impl FnOnce() -> Dial) -> Result<Subscription, String> {
    let (tx, messages) = async_channel::bounded(wish.capacity.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    let skipped = Arc::new(AtomicU64::new(0));
    let id = next_id();
    let consumer = Consumer {
        id,
        client_id: wish.client_id.clone(),
        filters: wish.filters.clone(),
        qos: wish.qos,
        skip_own: wish.skip_own,
        tx,
        dropped: dropped.clone(),
        skipped: skipped.clone(),
    };
    let mut connections = registry();
    let fits = |s: &State| s.takes_consumer(wish.client_id.as_deref(), wish.clean_session);
    if let Some(conn) = find(&connections, &wish.endpoint, fits) {
        let mut s = conn.lock();
        // Checked again under the lock: its last user may have left meanwhile.
        if fits(&s) {
            // Subscribed by the consumer's task when connected (the output may have filled
            // the request channel: that waits for room); otherwise at the coming connection.
            let now = s.connected && s.reconfigure.is_none();
            let catch_up = if now { wish.filters } else { Vec::new() };
            if s.fallback.is_none() {
                s.fallback = Some(dial());
            }
            s.consumers.push(consumer);
            drop(s);
            return Ok(Subscription {
                messages,
                dropped,
                skipped,
                id,
                conn,
                catch_up,
                qos: wish.qos,
            });
        }
    }
    let dial = dial();
    let state = State {
        consumers: vec![consumer],
        fallback: Some(dial.clone()),
        ..State::default()
    };
    let conn = open(&mut connections, wish.endpoint, dial, state)?;
    Ok(Subscription {
        messages,
        dropped,
        skipped,
        id,
        conn,
        catch_up: Vec::new(),
        qos: wish.qos,
    })
}

impl Subscription {
    /// Subscribes what joining a connection already up left to subscribe, waiting for room
    /// in the request channel; a new connection meanwhile subscribes them anyway (twice is
    /// harmless). Run by the consumer's task before it reads.
    pub fn catch_up(&mut self) -> impl std::future::Future<Output = ()> + 'static {
        let client = self.conn.client.clone();
        let (filters, qos) = (std::mem::take(&mut self.catch_up), self.qos);
        async move {
            for f in filters {
                let _ = client.subscribe(f, qos).await;
            }
        }
    }

    /// Whether the connection is up; and why the last attempt failed, if it did.
    pub fn status(&self) -> (bool, Option<String>) {
        let s = self.conn.lock();
        (s.connected, s.last_error.clone())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let last = {
            let mut s = self.conn.lock();
            let Some(at) = s.consumers.iter().position(|c| c.id == self.id) else {
                return;
            };
            let gone = s.consumers.remove(at);
            // Filters nobody else uses would only bring messages nobody reads.
            for f in &gone.filters {
                if !s.filter_in_use(f) {
                    let _ = self.conn.client.try_unsubscribe(f.as_str());
                }
            }
            s.closing = !s.has_users();
            s.closing
        };
        if last {
            self.conn.unregister();
            self.conn.shut();
        }
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
mod tests;

//! `mqtt`: publishes samples to an MQTT broker, in one of three layouts, with an availability
//! topic and optional Home Assistant discovery.
//!
//! Threads: rumqttc's event loop needs tokio, so it runs on a thread named `mqtt` with a
//! tokio `current_thread` runtime ([`crate::common::mqtt`]): the connection's, shared with
//! the `mqtt_consumer` inputs of the same broker and login, joined (or opened) by
//! [`Output::start`] and left by [`Output::close`]. This side stays on the agent's smol
//! executor: it hands messages to rumqttc's client (a bounded channel, capacity
//! [`mqtt::REQUESTS`]) and learns of acknowledgements through [`OutputLink`].
//!
//! Delivery: a write returns when every message of the batch is acknowledged (QoS 1 and 2) or
//! handed to the client (QoS 0). While the broker is away, or when the connection drops
//! before all acknowledgements arrived, the write fails with [`OutputError::Retry`] and the
//! batch stays in the agent's outage buffer (memory ring, then disk) to be sent again, so
//! QoS 1 and 2 are at-least-once across outages: a batch cut by a disconnect is sent again
//! whole, and the broker may see part of it twice.

mod config;
mod devices;
mod discovery;
mod topics;

#[cfg(test)]
mod tests;

pub use config::{Config, HomeAssistant, Layout};
pub use discovery::{sensor_kind, SensorKind};

use crate::config::BuildError;
use crate::core::output::{CloseFuture, StartFuture};
use crate::core::{Output, OutputError, Sample, SeriesId, SeriesTable, SeriesView, WriteFuture, WriteReport};
use crate::common::filter::NameFilter;
use crate::outputs::OutputCtx;
use crate::common::mqtt::{self, Dial, Endpoint, OutputLink, OutputSide, TlsKey};
use devices::{Devices, Role};
use futures_lite::future;
use rumqttc::{LastWill, MqttOptions, QoS};
use std::time::Duration;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Publishes samples to an MQTT broker: `value` = one topic per series with the bare number,
# `json` = the same topics with value, timestamp and labels, `batch` = one JSON array per
# flush and input. `<topic_prefix>/status` says online/offline (retained).
- mqtt:
    host: 127.0.0.1                # an IP address avoids a resolver thread
    port: 1883
    # client_id: rtcollector-myhost
    # username: rtcollector
    # password: secret:mqtt/password
    # ssl: true                    # usually with port: 8883
    # ssl_ca_certs: /etc/rtcollector/mqtt-ca.pem
    # ssl_certfile: /etc/rtcollector/client.pem
    # ssl_keyfile: /etc/rtcollector/client.key
    # keep_alive: 30s
    # qos: 1                       # 0, 1 or 2; 1 and 2 survive broker outages (buffered)
    # retain: false
    # topic_prefix: rtcollector/myhost
    # layout: value                # value | json | batch
    # include_patterns: [\"^sma_\", \"^cpu_usage\"]   # regexes on the metric name
    # exclude_patterns: [\"_rate$\"]
    # homeassistant: {enabled: true, discovery_prefix: homeassistant}
    # logs: false                  # also log records (syslog input) under <topic_prefix>/logs/<host>
";

/// Largest packet we send: a `batch` message is cut into arrays of at most [`BATCH_PAYLOAD`].
const MAX_PACKET: usize = 1 << 20;
/// A `batch` array is closed and sent when it reaches this size.
pub const BATCH_PAYLOAD: usize = 64 * 1024;

/// Per series, computed once: whether it is published, its topic, and the discovery round
/// its config message was last sent in.
struct SeriesState {
    /// The series slot's generation this state was made for (see `SeriesTable::generation`).
    generation: u32,
    allowed: bool,
    topic: Box<str>,
    /// What it is to Home Assistant's devices.
    role: Role,
    /// Where the value of its state label goes (Home Assistant on, a state label present).
    state_topic: Option<Box<str>>,
    /// Its declared device, looked up again when `Devices::epoch` moves past `devices_epoch`.
    device: Option<usize>,
    devices_epoch: u64,
    /// What its config message was last sent for: the round, the device and its revision.
    discovered: (u64, Option<usize>, u64),
}


/// How long closing the output waits for room to hand over `offline` and DISCONNECT, and
/// then for the thread to send them.
const GOODBYE: Duration = Duration::from_secs(1);

/// One message to hand to the client.
struct Message {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
}

pub struct Mqtt {
    name: String,
    addr: String,
    endpoint: Endpoint,
    options: MqttOptions,
    qos: QoS,
    retain: bool,
    layout: Layout,
    prefix: String,
    status_topic: String,
    ha: Option<HomeAssistant>,
    node: String,
    write_timeout: Duration,
    connect_timeout: Duration,
    filter: NameFilter,
    run: Option<OutputLink>,
    series: Vec<Option<SeriesState>>,
    /// Bumped on every new connection and every Home Assistant birth: series whose
    /// `discovered` differs get their config message again.
    round: u64,
    seen_epoch: u64,
    seen_births: u64,
    messages: Vec<Message>,
    topic: String,
    payload: String,
    /// Publishes log records too (`logs: true`).
    logs: bool,
    devices: Devices,
    /// Per device (by index): the round its availability was last published in.
    availability_sent: Vec<u64>,
}

/// Builds the output without touching the network (`rtcollector check` must work without a
/// broker); the TLS files are read here so a bad path is a config error.
pub fn build(cfg: &Config, ctx: &OutputCtx) -> Result<Mqtt, BuildError> {
    cfg.validate()?;
    let filter = NameFilter::new(&[], &[], &cfg.include_patterns, &cfg.exclude_patterns)?;
    let prefix = cfg.topic_prefix(&ctx.hostname);
    let status_topic = format!("{prefix}/status");
    let mut options = MqttOptions::new(cfg.client_id(&ctx.hostname), cfg.host.clone(), cfg.port);
    options
        .set_keep_alive(cfg.keep_alive.0)
        .set_clean_session(true)
        // Consumers of the broker may share the connection: their limit on what comes in.
        .set_max_packet_size(mqtt::MAX_INCOMING, MAX_PACKET)
        .set_request_channel_capacity(mqtt::REQUESTS)
        .set_last_will(LastWill::new(
            status_topic.as_str(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(user) = &cfg.username {
        let password = cfg.password.as_ref().map_or("", |p| p.expose());
        options.set_credentials(user.as_str(), password);
    }
    #[cfg(feature = "tls")]
    if cfg.tls.ssl {
        let tls = crate::common::tls::rustls_config(&cfg.tls.files(), &ctx.key)?;
        options.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ));
    }
    #[cfg(not(feature = "logs"))]
    if cfg.logs {
        return Err(BuildError::at(
            "logs",
            "this binary was built without log records (cargo feature `syslog` or `redissearch`)",
        ));
    }
    let mut node = String::new();
    discovery::push_id(&ctx.hostname, &mut node);
    Ok(Mqtt {
        name: ctx.key.clone(),
        addr: format!("{}:{}", cfg.host, cfg.port),
        endpoint: Endpoint {
            host: cfg.host.clone(),
            port: cfg.port,
            username: cfg.username.clone(),
            password: cfg.password.as_ref().map(|p| p.expose().to_string()),
            tls: cfg.tls.ssl.then(|| TlsKey::of(&cfg.tls.files())),
        },
        options,
        qos: match cfg.qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        },
        retain: cfg.retain,
        layout: cfg.layout,
        prefix,
        status_topic,
        ha: cfg.homeassistant.enabled.then(|| cfg.homeassistant.clone()),
        node,
        write_timeout: cfg.write_timeout.0,
        connect_timeout: cfg.connect_timeout.0,
        filter,
        run: None,
        series: Vec::new(),
        round: 0,
        seen_epoch: 0,
        seen_births: 0,
        messages: Vec::new(),
        topic: String::new(),
        payload: String::new(),
        logs: cfg.logs,
        devices: Devices::default(),
        availability_sent: Vec::new(),
    })
}

impl Output for Mqtt {
    fn claim(&self) -> Option<crate::core::output::Claim> {
        Some(crate::core::output::Claim {
            option: "client_id",
            what: format!("client id `{}` at {}", self.options.client_id(), self.addr),
            why: "two clients with one id push each other off the broker; give each output its own client_id",
        })
    }

    /// Joins (or opens) the connection and waits for its first connection attempt.
    fn start(&mut self) -> StartFuture<'_> {
        Box::pin(async {
            if self.run.is_none() {
                self.attach()?;
                self.first_attempt().await;
            }
            Ok(())
        })
    }

    fn write<'a>(&'a mut self, batch: &'a [Sample], series: SeriesView<'a>) -> WriteFuture<'a> {
        Box::pin(self.write_batch(batch, series))
    }

    #[cfg(feature = "logs")]
    fn kinds(&self) -> crate::core::output::Kinds {
        match self.logs {
            true => crate::core::output::Kinds::Both,
            false => crate::core::output::Kinds::Samples,
        }
    }

    #[cfg(feature = "logs")]
    fn write_logs<'a>(&'a mut self, batch: &'a crate::core::logs::LogBatch) -> WriteFuture<'a> {
        Box::pin(self.write_log_batch(batch))
    }

    fn close(&mut self) -> CloseFuture<'_> {
        Box::pin(self.goodbye())
    }
}

impl Drop for Mqtt {
    /// Not closed (a stop that ran out of time, a test): says `offline` and, as the
    /// connection's last user, asks the thread to leave, without waiting; when the request
    /// channel is full, the thread ends at its next look at the stop flag instead.
    fn drop(&mut self) {
        let Some(mut run) = self.run.take() else {
            return;
        };
        let last = run.leave();
        let connected = run.lock().connected;
        let client = run.client();
        let said = connected
            && client
                .try_publish(self.status_topic.as_str(), QoS::AtMostOnce, true, "offline")
                .is_ok();
        if last && !(said && client.try_disconnect().is_ok()) {
            run.stop();
        }
    }
}

impl Mqtt {
    /// Says `offline` and leaves cleanly (a reload builds a new output with the same client
    /// id). As the connection's last user it ends the thread with a DISCONNECT, waiting up
    /// to [`GOODBYE`] for room in the request channel and as long again for the thread, so
    /// `offline` is out before the process exits; a thread still connecting or backing off
    /// ends at its next look at the stop flag. Otherwise the connection goes on for the
    /// `mqtt_consumer` inputs that share it.
    async fn goodbye(&mut self) {
        let Some(mut run) = self.run.take() else {
            return;
        };
        let last = run.leave();
        let connected = run.lock().connected;
        if connected {
            // The request channel may be full of the last flush: wait for room (bounded),
            // or the DISCONNECT would be lost and the thread linger until its next ping.
            let handed = async {
                let status = self.status_topic.as_str();
                let client = run.client();
                let _ = client.publish(status, QoS::AtMostOnce, true, "offline").await;
                if last {
                    let _ = client.disconnect().await;
                }
            };
            let give_up = async {
                smol::Timer::after(GOODBYE).await;
            };
            future::or(handed, give_up).await;
            let deadline = std::time::Instant::now() + GOODBYE;
            while last && !run.finished() && std::time::Instant::now() < deadline {
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        }
        // Only now: the thread looks at the flag before each request, so setting it
        // earlier would drop the goodbye unsent.
        run.stop();
    }

    async fn write_batch(
        &mut self,
        batch: &[Sample],
        series: SeriesView<'_>,
    ) -> Result<WriteReport, OutputError> {
        let epoch = self.adopt_connection()?;
        let written = series.with(|table| self.plan(batch, table));
        let limit = self.write_timeout;
        let late = format!(
            "the broker at {} did not acknowledge the batch within write_timeout ({}ms)",
            self.addr,
            limit.as_millis()
        );
        let work = self.send(epoch);
        let timeout = async {
            smol::Timer::after(limit).await;
            Err(OutputError::Retry(late))
        };
        future::or(work, timeout).await?;
        Ok(WriteReport {
            written,
            rejected: 0,
        })
    }

    /// Each record as its JSON document on `<prefix>/logs/<its host>` (never retained),
    /// acknowledged as a sample batch is.
    #[cfg(feature = "logs")]
    async fn write_log_batch(
        &mut self,
        batch: &crate::core::logs::LogBatch,
    ) -> Result<WriteReport, OutputError> {
        let epoch = self.adopt_connection()?;
        let mut written = 0;
        for (_, record) in batch.records() {
            let Ok(record) = record else { continue };
            self.payload.clear();
            crate::common::log_json::write_record(&record, &mut self.payload);
            let host = match record.hostname.as_ref() {
                "" => "unknown",
                h => h,
            };
            let topic = format!("{}/logs/{}", self.prefix, topics::level(host));
            self.messages.push(Message {
                topic,
                payload: self.payload.as_bytes().to_vec(),
                retain: false,
            });
            written += 1;
        }
        let limit = self.write_timeout;
        let late = format!(
            "the broker at {} did not acknowledge the log records within write_timeout",
            self.addr
        );
        let work = self.send(epoch);
        let timeout = async {
            smol::Timer::after(limit).await;
            Err(OutputError::Retry(late))
        };
        future::or(work, timeout).await?;
        Ok(WriteReport {
            written,
            rejected: batch.len() as u64 - written,
        })
    }

    fn attach(&mut self) -> Result<(), OutputError> {
        let dial = Dial {
            options: self.options.clone(),
            connect_timeout: self.connect_timeout,
        };
        let side = OutputSide {
            who: format!("output {}", self.name),
            status: self.status_topic.clone(),
            ha_status: self
                .ha
                .as_ref()
                .map(|h| format!("{}/status", h.discovery_prefix.trim_end_matches('/'))),
            own: format!("{}/#", self.prefix),
        };
        let link = mqtt::attach_output(self.endpoint.clone(), dial, side).map_err(OutputError::Retry)?;
        self.run = Some(link);
        Ok(())
    }

    /// Waits for the outcome of the first connection attempt, so the first flush neither
    /// fails merely because the connection is not up yet nor reports the output as down.
    async fn first_attempt(&self) {
        let Some(run) = &self.run else {
            return;
        };
        let give_up = async {
            smol::Timer::after(self.connect_timeout + Duration::from_secs(1)).await;
        };
        let settled = async {
            loop {
                {
                    let s = run.lock();
                    if s.connected || s.last_error.is_some() {
                        return;
                    }
                }
                run.changed().await;
            }
        };
        future::or(settled, give_up).await;
    }

    /// The current connection, or Retry while there is none. A new connection or a Home
    /// Assistant birth starts a new discovery round.
    fn adopt_connection(&mut self) -> Result<u64, OutputError> {
        let Some(run) = &self.run else {
            return Err(OutputError::Retry("not started".into()));
        };
        let s = run.lock();
        if !s.connected {
            let why = s
                .last_error
                .clone()
                .unwrap_or_else(|| format!("connecting to {}", self.addr));
            return Err(OutputError::Retry(why));
        }
        if s.epoch != self.seen_epoch || s.ha_births != self.seen_births {
            self.seen_epoch = s.epoch;
            self.seen_births = s.ha_births;
            self.round += 1;
        }
        Ok(s.epoch)
    }

    /// Turns the batch (and the discovery messages it needs) into `self.messages`. Returns
    /// how many samples are published (the rest are filtered out).
    fn plan(&mut self, batch: &[Sample], table: &SeriesTable) -> u64 {
        self.messages.clear();
        let mut written = 0;
        match self.layout {
            Layout::Value | Layout::Json => {
                self.note_devices(batch, table);
                for s in batch {
                    if !self.state(s.series, table).allowed {
                        continue;
                    }
                    written += 1;
                    self.discover(s.series, table);
                    let series = table.get(s.series);
                    if self.layout == Layout::Value {
                        topics::value_payload(s.value, &mut self.payload);
                    } else {
                        topics::json_payload(s, series, &mut self.payload);
                    }
                    let st = self.state(s.series, table);
                    let (topic, state_topic) = (String::from(&*st.topic), st.state_topic.clone());
                    self.push_message(topic, false);
                    if let Some(state_topic) = state_topic {
                        self.payload.clear();
                        self.payload.push_str(discovery::state_label(series).unwrap_or_default());
                        self.push_message(state_topic.into(), false);
                    }
                }
            }
            Layout::Batch => written = self.plan_batch(batch, table),
        }
        written
    }

    /// One JSON array per input (the config key that wrote the series; the metric family for
    /// a series whose input is unknown), in the order they first appear; an array is closed
    /// and sent at [`BATCH_PAYLOAD`] bytes.
    fn plan_batch(&mut self, batch: &[Sample], table: &SeriesTable) -> u64 {
        let mut written = 0;
        let mut open: Vec<(&str, String)> = Vec::new();
        for s in batch {
            if !self.state(s.series, table).allowed {
                continue;
            }
            written += 1;
            let series = table.get(s.series);
            let family = table
                .origin(s.series)
                .unwrap_or_else(|| topics::family(&series.name));
            let i = match open.iter().position(|(f, _)| *f == family) {
                Some(i) => i,
                None => {
                    open.push((family, String::with_capacity(1024)));
                    open.len() - 1
                }
            };
            let buf = &mut open[i].1;
            buf.push(if buf.is_empty() { '[' } else { ',' });
            topics::batch_item(s, series, buf);
            if buf.len() >= BATCH_PAYLOAD {
                buf.push(']');
                let payload = std::mem::take(buf).into_bytes();
                self.push_batch(family, payload);
            }
        }
        for (family, mut buf) in open {
            if !buf.is_empty() {
                buf.push(']');
                self.push_batch(family, buf.into_bytes());
            }
        }
        written
    }

    fn push_batch(&mut self, family: &str, payload: Vec<u8>) {
        let mut topic = String::with_capacity(self.prefix.len() + family.len() + 1);
        topic.push_str(&self.prefix);
        topic.push('/');
        topics::push_level(family, &mut topic);
        self.messages.push(Message {
            topic,
            payload,
            retain: self.retain,
        });
    }

    fn push_message(&mut self, topic: String, discovery: bool) {
        self.messages.push(Message {
            topic,
            payload: self.payload.as_bytes().to_vec(),
            retain: discovery || self.retain,
        });
    }

    /// Devices declared and their availability, from the batch's `_info` and `_up` series
    /// (filtered out or not), before any config is planned: a device's entities are
    /// discovered on it from its first batch. A changed availability is published at once.
    fn note_devices(&mut self, batch: &[Sample], table: &SeriesTable) {
        if self.ha.is_none() {
            return;
        }
        // Declarations first: an `_up` may come before its device's `_info`.
        for s in batch {
            if self.state(s.series, table).role == Role::Info {
                self.devices.declare(table.get(s.series));
            }
        }
        for s in batch {
            if self.state(s.series, table).role == Role::Up {
                if let Some((index, changed)) = self.devices.note_up(table.get(s.series), s.value) {
                    self.publish_availability(index, changed);
                }
            }
        }
    }

    /// `online`/`offline` of device `index`, retained, when it changed or this round has not
    /// said it yet.
    fn publish_availability(&mut self, index: usize, changed: bool) {
        if self.availability_sent.len() <= index {
            self.availability_sent.resize(index + 1, 0);
        }
        if !changed && self.availability_sent[index] == self.round {
            return;
        }
        self.availability_sent[index] = self.round;
        let device = self.devices.get(index);
        let mut topic = String::new();
        discovery::device_availability_topic(&self.discovery_context(""), device, &mut topic);
        let word = if device.available == Some(true) { "online" } else { "offline" };
        self.payload.clear();
        self.payload.push_str(word);
        self.push_message(topic, true);
    }

    fn discovery_context<'a>(&'a self, host: &'a str) -> discovery::Context<'a> {
        let prefix = self.ha.as_ref().map_or("", |h| h.discovery_prefix.trim_end_matches('/'));
        discovery::Context {
            discovery_prefix: prefix,
            node: &self.node,
            host,
            availability_topic: &self.status_topic,
            json_payload: self.layout == Layout::Json,
            topic_prefix: &self.prefix,
        }
    }

    /// Queues the series' Home Assistant config message when this round has not sent it, or
    /// its device changed since; and, once per round, the removal of a config an earlier
    /// build made for it under another object id.
    fn discover(&mut self, id: SeriesId, table: &SeriesTable) {
        if self.ha.is_none() {
            return;
        }
        let round = self.round;
        let series = table.get(id);
        let devices_epoch = self.devices.epoch;
        let st = self.state(id, table);
        let (role, mut device, stale) = (st.role, st.device, st.devices_epoch != devices_epoch);
        // Looked up only when a device was added since: not per sample.
        if stale {
            device = self.devices.find(series);
        }
        let revision = device.map_or(0, |i| self.devices.get(i).revision);
        let st = self.state(id, table);
        (st.device, st.devices_epoch) = (device, devices_epoch);
        let now = (round, device, revision);
        if st.discovered == now {
            return;
        }
        let first_this_round = st.discovered.0 != round;
        st.discovered = now;
        let state_topic = String::from(st.state_topic.as_deref().unwrap_or(&st.topic));
        // The reused buffers are taken out while the context borrows `self`.
        let (mut topic, mut payload) = (std::mem::take(&mut self.topic), std::mem::take(&mut self.payload));
        let mut legacy = String::new();
        let ctx = self.discovery_context(table.host());
        let clear_legacy =
            first_this_round && discovery::legacy_config_topic(&ctx, series, role, &mut legacy);
        if role != Role::Info {
            let entity = discovery::Entity {
                series,
                state_topic: &state_topic,
                device: device.map(|i| self.devices.get(i)),
                up: role == Role::Up,
            };
            discovery::config_topic(&ctx, series, &mut topic);
            discovery::config_payload(&ctx, &entity, &mut payload);
        }
        if clear_legacy {
            self.messages.push(Message {
                topic: legacy,
                payload: Vec::new(),
                retain: true,
            });
        }
        if role != Role::Info {
            self.messages.push(Message {
                topic: topic.clone(),
                payload: payload.as_bytes().to_vec(),
                retain: true,
            });
        }
        (self.topic, self.payload) = (topic, payload);
    }

    /// The cached state of a series, made at its first sight.
    fn state(&mut self, id: SeriesId, table: &SeriesTable) -> &mut SeriesState {
        let generation = table.generation(id);
        let (filter, prefix, ha) = (&self.filter, &self.prefix, self.ha.is_some());
        table
            .state_slot(&mut self.series, id, |st| st.generation)
            .get_or_insert_with(|| {
                let series = table.get(id);
                let mut topic = String::new();
                topics::series_topic(prefix, series, &mut topic);
                let state_topic = (ha && discovery::state_label(series).is_some()).then(|| {
                    let mut t = String::new();
                    discovery::state_topic(prefix, series, &mut t);
                    t.into()
                });
                SeriesState {
                    generation,
                    allowed: filter.allows(&series.name),
                    topic: topic.into(),
                    role: devices::role(series),
                    state_topic,
                    device: None,
                    devices_epoch: u64::MAX,
                    discovered: (0, None, 0),
                }
            })
    }

    /// Hands `self.messages` to the client and, for QoS 1 and 2, waits until the broker has
    /// acknowledged all of them on connection `epoch`.
    async fn send(&mut self, epoch: u64) -> Result<(), OutputError> {
        let Some(run) = &self.run else {
            return Err(OutputError::Retry("not started".into()));
        };
        let counted = self.qos != QoS::AtMostOnce;
        let lost = || {
            OutputError::Retry(format!(
                "lost the connection to {} before the broker acknowledged the batch",
                self.addr
            ))
        };
        let mut target = 0;
        for m in self.messages.drain(..) {
            let (mut topic, mut payload, retain) = (m.topic, m.payload, m.retain);
            loop {
                // Handed and counted under the lock, with the connection it goes out on:
                // a message waiting for room could otherwise go out on the next connection
                // and its ack be counted for a batch of that one.
                let refused = {
                    let mut s = run.lock();
                    if !s.connected || s.epoch != epoch {
                        return Err(lost());
                    }
                    match run.client().try_publish(topic, self.qos, retain, payload) {
                        Ok(()) => {
                            if counted {
                                s.handed += 1;
                            }
                            target = s.handed;
                            None
                        }
                        Err(rumqttc::ClientError::TryRequest(rumqttc::Request::Publish(p))) => {
                            // Set with the failed try, under one lock: the thread's next
                            // taken request wakes us.
                            s.room_wanted = true;
                            Some(p)
                        }
                        Err(e) => return Err(OutputError::Retry(format!("mqtt: {e}"))),
                    }
                };
                let Some(p) = refused else {
                    break;
                };
                if run.finished() {
                    return Err(OutputError::Retry("the mqtt thread is gone".into()));
                }
                // The request channel is full: the thread is writing.
                (topic, payload) = (p.topic, p.payload.into());
                run.changed().await;
            }
        }
        if !counted {
            return Ok(());
        }
        run.lock().want = target;
        loop {
            {
                let s = run.lock();
                if !s.connected || s.epoch != epoch {
                    return Err(lost());
                }
                if s.acked >= target {
                    return Ok(());
                }
            }
            run.changed().await;
        }
    }
}

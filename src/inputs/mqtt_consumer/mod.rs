//! `mqtt_consumer`: smart plugs and sensors that publish on MQTT (Tasmota, Shelly Gen2,
//! ESPHome, Zigbee2MQTT, or any number, JSON or Influx line payload), aggregated per
//! interval. The connection is `common::mqtt`'s: one `mqtt` thread per broker and login,
//! shared with the MQTT output and the other consumers that can use it; messages cross to
//! the executor through a bounded channel.

pub mod aggregate;
mod devices;
pub mod formats;

use crate::common::mqtt::{self, Dial, Endpoint, Subscription, TlsKey, Wish};
use crate::common::tls::{check_options, TlsKeys};
use crate::config::range;
use crate::config::shared::with_shared;
use crate::config::{BuildError, Dur, Secret};
use crate::core::input::ListenFuture;
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::BuildCtx;
use aggregate::{Aggregate, How};
use formats::{Format, Kind, Rules};
use rumqttc::{MqttOptions, QoS};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Devices that publish on MQTT: smart plugs and sensors (Tasmota, Shelly Gen2, ESPHome,
# Zigbee2MQTT presets), or numbers, JSON and Influx lines on any topic; aggregated per
# interval. One connection per broker for all consumers. `+name` in a topic makes that
# level a label.
- mqtt_consumer:
    host: 127.0.0.1
    port: 1883
    # username: rtc
    # password: secret:mqtt/password
    # ssl: true
    # client_id: rtcollector-in-<host>
    qos: 0
    topics:
      - data_format: tasmota            # tele/+device/SENSOR
      - data_format: shelly             # +device/status/+component
      # - data_format: esphome          # +node/sensor/+/state
      # - data_format: zigbee2mqtt      # zigbee2mqtt/+device
      # - topic: home/+room/temperature
      #   data_format: value
      #   name: room_temperature_celsius
      #   aggregate: mean               # last (default), mean, min, max
      # - topic: esp/+device/json
      #   data_format: json
      #   name: esp                     # names: esp_<path>
      #   fields: [ENERGY.Power=plug_power_w, ENERGY.Total=plug_energy_kwh]
      #   counters: [ENERGY.Total]
      # - topic: sensors/influx
      #   data_format: influx
    # The agent's own MQTT output publishes under rtcollector/<host>: not consumed.
    # ignore_topics: [rtcollector/<host>/#]
";

/// One topic pattern and how its payloads are read.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Topic {
    /// An MQTT filter; `+name` is a `+` whose level becomes label `name`. Default: the
    /// preset's topic.
    pub topic: Option<String>,
    /// Labels from levels of another pattern of the same shape (`tele/+device/SENSOR`),
    /// when `topic` itself names none.
    pub topic_labels: Option<String>,
    pub data_format: Format,
    /// `value`: the metric name (default: the topic's last level); `json`, `influx`: a
    /// prefix of the names.
    pub name: Option<String>,
    pub fields: Vec<String>,
    pub counters: Vec<String>,
    pub aggregate: How,
    /// Labels added to every reading of the topic.
    pub labels: BTreeMap<String, String>,
}

/// The TLS keys (`ssl`, `ssl_ca_certs`…) are [`TlsKeys`], written flat among these.
#[derive(Debug, Deserialize, Serialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct Config {
    pub host: String,
    #[serde(deserialize_with = "range::port")]
    pub port: u16,
    /// The id of a connection of its own, default `rtcollector-in-<host>`; unset, the
    /// consumer may share the MQTT output's connection (and id).
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    #[serde(skip)]
    pub tls: TlsKeys,
    #[serde(deserialize_with = "range::dur::<_, 0, { 65_535 * range::SECOND_MS }>")]
    pub keep_alive: Dur,
    #[serde(deserialize_with = "range::timeout")]
    pub connect_timeout: Dur,
    pub qos: u8,
    pub clean_session: bool,
    pub topics: Vec<Topic>,
    /// Topics not consumed (MQTT filters); default the agent's own MQTT output's,
    /// `rtcollector/<host>/#`, so the two never loop.
    pub ignore_topics: Option<Vec<String>>,
    /// Distinct series kept per interval; readings of further ones are dropped and counted.
    #[serde(deserialize_with = "range::count::<_, 1, 1_000_000>")]
    pub max_series: usize,
    /// Messages waiting between the MQTT thread and the agent; more are dropped and counted.
    #[serde(deserialize_with = "range::count::<_, 1, 1_000_000>")]
    pub queue_size: usize,
}

with_shared!(Config, tls: TlsKeys, before "keep_alive");

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: None,
            username: None,
            password: None,
            tls: TlsKeys::default(),
            keep_alive: Dur(Duration::from_secs(30)),
            connect_timeout: Dur(Duration::from_secs(5)),
            qos: 0,
            clean_session: true,
            topics: Vec::new(),
            ignore_topics: None,
            max_series: 1000,
            queue_size: 4096,
        }
    }
}

/// A compiled topic pattern.
#[derive(Debug, Clone)]
struct Pattern {
    filter: String,
    /// (level index, label name)
    captures: Vec<(usize, String)>,
    format: Format,
    name: String,
    fields: Vec<String>,
    counters: Vec<String>,
    how: How,
    labels: Vec<(String, String)>,
    /// The preset's availability topic (its default topic only): the filter, the level that
    /// names the device and the label it goes in.
    availability: Option<(&'static str, usize, String)>,
}

impl Pattern {
    fn compile(t: &Topic) -> Result<Pattern, String> {
        let written = match (&t.topic, t.data_format.default_topic()) {
            (Some(p), _) => p.as_str(),
            (None, Some(d)) => d,
            (None, None) => return Err("`topic` is required for this data_format".into()),
        };
        let (filter, mut captures) = parse_pattern(written)?;
        if let Some(other) = &t.topic_labels {
            let (shape, named) = parse_pattern(other)?;
            if shape.split('/').count() != filter.split('/').count() {
                return Err(format!("topic_labels `{other}` has not the levels of `{written}`"));
            }
            captures = named;
        }
        if t.fields.iter().chain(&t.counters).any(|f| f.is_empty()) {
            return Err("`fields` and `counters` need paths such as ENERGY.Power".into());
        }
        let mut labels: Vec<(String, String)> = t.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        labels.retain(|(k, _)| !captures.iter().any(|(_, c)| c == k));
        if captures.len() + labels.len() > 8 {
            return Err("at most 8 labels from the topic and `labels` together".into());
        }
        let default_filter = t.data_format.default_topic().and_then(|d| parse_pattern(d).ok());
        let availability = devices::availability(t.data_format)
            .filter(|_| default_filter.is_some_and(|(f, _)| f == filter))
            .and_then(|(filter, level)| {
                let (_, label) = captures.iter().find(|(at, _)| *at == level)?;
                Some((filter, level, label.clone()))
            });
        Ok(Pattern {
            availability,
            filter,
            captures,
            format: t.data_format,
            name: t.name.clone().unwrap_or_default(),
            fields: t.fields.clone(),
            counters: t.counters.clone(),
            how: t.aggregate,
            labels,
        })
    }
}

/// `tele/+device/SENSOR` → the filter `tele/+/SENSOR` and label `device` at level 1.
fn parse_pattern(written: &str) -> Result<(String, Vec<(usize, String)>), String> {
    if written.is_empty() {
        return Err("a topic must not be empty".into());
    }
    let mut filter = Vec::new();
    let mut captures = Vec::new();
    let levels: Vec<&str> = written.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if let Some(label) = level.strip_prefix('+') {
            if !label.is_empty() {
                if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(format!("`+{label}`: a label name is made of A-Z a-z 0-9 _"));
                }
                captures.push((i, label.to_string()));
            }
            filter.push("+");
        } else if *level == "#" && i == levels.len() - 1 {
            filter.push("#");
        } else if level.contains(['+', '#']) {
            return Err(format!("`{written}`: `+` and `#` must be whole levels (`#` the last)"));
        } else {
            filter.push(level);
        }
    }
    Ok((filter.join("/"), captures))
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<MqttConsumer, BuildError> {
    if cfg.host.is_empty() {
        return Err(BuildError::at("host", "must not be empty"));
    }
    if cfg.qos > 2 {
        return Err(BuildError::at("qos", format!("{} is not an MQTT QoS; use 0, 1 or 2", cfg.qos)));
    }
    if cfg.username.is_none() && cfg.password.is_some() {
        return Err(BuildError::at("password", "MQTT sends a password only with a `username`"));
    }
    if cfg.keep_alive.0 < Duration::from_secs(1) && !cfg.keep_alive.0.is_zero() {
        return Err(BuildError::at("keep_alive", "at least 1s (or 0 to turn pings off)"));
    }
    check_options(cfg.tls.ssl, &cfg.tls.files(), "`ssl: true`")?;
    if cfg.topics.is_empty() {
        return Err(BuildError::at("topics", "name at least one topic (or a preset's data_format)"));
    }
    let patterns = cfg
        .topics
        .iter()
        .map(Pattern::compile)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BuildError::at("topics", e))?;
    let ignore = match &cfg.ignore_topics {
        Some(list) => list.clone(),
        None => vec![format!("rtcollector/{}/#", own_level(&ctx.hostname))],
    };
    for f in &ignore {
        parse_pattern(f).map_err(|e| BuildError::at("ignore_topics", e))?;
    }
    #[cfg(feature = "tls")]
    let tls = if cfg.tls.ssl {
        Some(crate::common::tls::rustls_config(&cfg.tls.files(), "mqtt_consumer")?)
    } else {
        None
    };
    #[cfg(not(feature = "tls"))]
    if cfg.tls.ssl {
        return Err(BuildError::at("ssl", "this binary was built without TLS (cargo feature `tls`)"));
    }
    let client_id = cfg.client_id.clone().unwrap_or_else(|| format!("rtcollector-in-{}", ctx.hostname));
    let endpoint = Endpoint {
        host: cfg.host.clone(),
        port: cfg.port,
        username: cfg.username.clone(),
        password: cfg.password.as_ref().map(|p| p.expose().to_string()),
        tls: cfg.tls.ssl.then(|| TlsKey::of(&cfg.tls.files())),
    };
    let mut options = MqttOptions::new(client_id, cfg.host.clone(), cfg.port);
    options
        .set_keep_alive(cfg.keep_alive.0)
        .set_clean_session(cfg.clean_session)
        .set_max_packet_size(mqtt::MAX_INCOMING, 4096);
    if let Some(user) = &cfg.username {
        options.set_credentials(user.as_str(), cfg.password.as_ref().map_or("", |p| p.expose()));
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = tls {
        options.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls)));
    }
    Ok(MqttConsumer {
        endpoint,
        client_id: cfg.client_id.clone(),
        clean_session: cfg.clean_session,
        skip_own: cfg.ignore_topics.is_none(),
        options,
        connect_timeout: cfg.connect_timeout.0,
        qos: match cfg.qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        },
        queue: cfg.queue_size,
        state: Rc::new(RefCell::new(State {
            patterns,
            ignore,
            aggregate: Aggregate::new(cfg.max_series),
            devices: devices::Devices::default(),
            // Until the first collection: a device seen before it is not forgotten at it.
            now_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            counts: Counts::default(),
            logged: [false; 2],
            subscription: None,
        })),
    })
}

/// The host as the MQTT output writes it in its default prefix.
fn own_level(host: &str) -> String {
    let mut out: String = host.chars().map(|c| if matches!(c, '/' | '+' | '#' | '\0') { '_' } else { c }).collect();
    if out.is_empty() {
        out.push('_');
    }
    out
}

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    received: u64,
    malformed: u64,
    ignored: u64,
}

struct State {
    patterns: Vec<Pattern>,
    ignore: Vec<String>,
    aggregate: Aggregate,
    devices: devices::Devices,
    /// The last collection's time: when a device is seen, to within an interval.
    now_ms: i64,
    counts: Counts,
    /// Malformed payload and full series table, each logged once.
    logged: [bool; 2],
    subscription: Option<Result<Subscription, String>>,
}

impl State {
    /// A preset's availability message: the device's `_up`. Before the topic patterns, so
    /// that a catch-all pattern (`#`) does not read a last will as a number; `false` for any
    /// other topic, or a payload that says neither online nor offline (the patterns may
    /// read it then).
    fn take_availability(&mut self, topic: &str, payload: &[u8]) -> bool {
        let found = self.patterns.iter().find_map(|p| {
            let (filter, level, label) = p.availability.as_ref()?;
            mqtt::matches(filter, topic).then_some((p.format, *level, label))
        });
        let Some((format, level, label)) = found else {
            return false;
        };
        let Some(device) = topic.split('/').nth(level) else {
            return false;
        };
        let Some(up) = devices::read_availability(payload) else {
            return false;
        };
        self.devices.said(format, &[(label.as_str(), device)], up, self.now_ms);
        true
    }

    /// Reads one message into the aggregate, or counts why not.
    fn take(&mut self, topic: &str, payload: &[u8]) {
        self.counts.received += 1;
        if self.ignore.iter().any(|f| mqtt::matches(f, topic)) {
            self.counts.ignored += 1;
            return;
        }
        if self.take_availability(topic, payload) {
            return;
        }
        let Some(p) = self.patterns.iter().find(|p| mqtt::matches(&p.filter, topic)) else {
            self.counts.ignored += 1;
            return;
        };
        let levels: heapless::Vec<&str, 32> = topic.split('/').take(32).collect();
        let mut labels: heapless::Vec<(&str, &str), 16> = heapless::Vec::new();
        for (i, name) in &p.captures {
            if let Some(level) = levels.get(*i) {
                let _ = labels.push((name.as_str(), *level));
            }
        }
        let from_topic = labels.len();
        for (k, v) in &p.labels {
            let _ = labels.push((k.as_str(), v.as_str()));
        }
        let rules = Rules {
            format: p.format,
            name: &p.name,
            fields: &p.fields,
            counters: &p.counters,
        };
        self.aggregate.how = p.how;
        let refused_before = self.aggregate.refused;
        let parsed = formats::parse(&rules, topic, payload, &labels, &mut self.aggregate);
        if parsed.is_ok() {
            self.devices.saw(p.format, &labels[..from_topic], self.now_ms);
        }
        if let Err(why) = parsed {
            self.counts.malformed += 1;
            if !self.logged[0] {
                self.logged[0] = true;
                log::warn!("mqtt_consumer: a {}-byte payload on {topic} gave nothing: {why} (counted in mqtt_consumer_messages_total{{result=\"malformed\"}}, not logged again)", payload.len());
            }
        }
        if self.aggregate.refused > refused_before && !self.logged[1] {
            self.logged[1] = true;
            log::warn!("mqtt_consumer: more series than max_series ({}); readings of new ones are dropped (counted in mqtt_consumer_readings_dropped_total, not logged again)", self.aggregate.series());
        }
    }
}

pub struct MqttConsumer {
    endpoint: Endpoint,
    /// The client id the config names: `None` lets the consumer share any connection to
    /// its broker, the MQTT output's included.
    client_id: Option<String>,
    clean_session: bool,
    /// `ignore_topics` left at its default: also not handed what an MQTT output sharing the
    /// connection publishes, whatever its prefix.
    skip_own: bool,
    options: MqttOptions,
    connect_timeout: Duration,
    qos: QoS,
    queue: usize,
    state: Rc<RefCell<State>>,
}

/// Feeds messages to a consumer as if they had arrived (tests and the bench).
pub struct Feeder(Rc<RefCell<State>>);

impl Feeder {
    pub fn take(&self, topic: &str, payload: &[u8]) {
        self.0.borrow_mut().take(topic, payload);
    }
}

impl MqttConsumer {
    pub fn feeder(&self) -> Feeder {
        Feeder(self.state.clone())
    }

    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        let mut state = self.state.borrow_mut();
        let now_ms = em.ts_ms();
        state.now_ms = now_ms;
        state.devices.declare(now_ms, aggregate::FORGET_MS, |name, labels, v| em.gauge(name, labels, v));
        state.aggregate.drain(now_ms, aggregate::FORGET_MS, |name, labels, value, kind| match kind {
            Kind::Gauge => em.gauge(name, labels, value),
            Kind::Counter => {
                em.counter(name, labels, value);
            }
        });
        let mut c = state.counts;
        let (dropped, skipped) = match &state.subscription {
            Some(Ok(s)) => (s.dropped.load(Ordering::Relaxed), s.skipped.load(Ordering::Relaxed)),
            _ => (0, 0),
        };
        // The shared connection left out the output's own messages: received and ignored.
        c.received += skipped;
        c.ignored += skipped;
        for (result, n) in [
            ("received", c.received),
            ("malformed", c.malformed),
            ("ignored", c.ignored),
            ("dropped", dropped),
        ] {
            em.counter_value("mqtt_consumer_messages_total", &[("result", result)], n as f64);
        }
        em.counter_value("mqtt_consumer_readings_dropped_total", &[], state.aggregate.refused as f64);
        em.gauge("mqtt_consumer_series", &[], state.aggregate.series() as f64);
        match &state.subscription {
            Some(Err(e)) => Err(InputError::new(e.clone())),
            Some(Ok(s)) => match s.status() {
                (false, Some(e)) => Err(InputError::new(e)),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }
}

impl Input for MqttConsumer {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        crate::core::ready(self.collect_sync(em))
    }

    fn listen(&mut self) -> Option<ListenFuture> {
        let filters: Vec<String> = {
            let state = self.state.borrow();
            let mut f: Vec<String> = state.patterns.iter().map(|p| p.filter.clone()).collect();
            f.extend(state.patterns.iter().filter_map(|p| Some(p.availability.as_ref()?.0.to_string())));
            f.sort();
            f.dedup();
            f
        };
        let options = self.options.clone();
        let connect_timeout = self.connect_timeout;
        let wish = Wish {
            endpoint: self.endpoint.clone(),
            client_id: self.client_id.clone(),
            clean_session: self.clean_session,
            filters,
            qos: self.qos,
            skip_own: self.skip_own,
            capacity: self.queue,
        };
        let mut subscribed = mqtt::subscribe(wish, move || Dial {
            options,
            connect_timeout,
        });
        let ready = subscribed
            .as_mut()
            .ok()
            .map(|s| (s.messages.clone(), s.catch_up()));
        self.state.borrow_mut().subscription = Some(subscribed);
        let state = self.state.clone();
        Some(Box::pin(async move {
            let Some((messages, catch_up)) = ready else {
                return;
            };
            catch_up.await;
            while let Ok(m) = messages.recv().await {
                state.borrow_mut().take(&m.topic, &m.payload);
                // Drain what is already there without a wake-up per message.
                while let Ok(m) = messages.try_recv() {
                    state.borrow_mut().take(&m.topic, &m.payload);
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests;

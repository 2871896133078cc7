//! The options of the `mqtt` output, as written in the config, and their checks (no network
//! access here: `rtcollector check` must work without a broker).

use crate::common::tls::{check_options, TlsKeys};
use crate::config::shared::with_shared;
use crate::config::{BuildError, Dur, Secret};
use crate::config::range;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The TLS keys (`ssl`, `ssl_ca_certs`…) are [`TlsKeys`], written flat among these.
#[derive(Debug, Deserialize, Serialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct Config {
    pub host: String,
    #[serde(deserialize_with = "range::port")]
    pub port: u16,
    /// Default `rtcollector-<host>`. Two agents with the same id push each other off the broker.
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    #[serde(skip)]
    pub tls: TlsKeys,
    #[serde(deserialize_with = "range::dur::<_, 0, { 65_535 * range::SECOND_MS }>")]
    pub keep_alive: Dur,
    #[serde(deserialize_with = "range::timeout")]
    pub connect_timeout: Dur,
    /// How long one flush waits for the broker's acknowledgements (QoS 1 and 2).
    #[serde(deserialize_with = "range::timeout")]
    pub write_timeout: Dur,
    pub qos: u8,
    pub retain: bool,
    /// Default `rtcollector/<host>`.
    pub topic_prefix: Option<String>,
    pub layout: Layout,
    /// Regexes on the metric name: when given, only matching metrics are published; an
    /// include match wins over an exclude match.
    pub include_patterns: Vec<String>,
    pub exclude_patterns: Vec<String>,
    pub homeassistant: HomeAssistant,
    /// Also publish log records (the syslog input's) as JSON under `<topic_prefix>/logs/<host>`.
    pub logs: bool,
}

with_shared!(Config, tls: TlsKeys, before "keep_alive");

impl Default for Config {
    fn default() -> Self {
        Config {
            // An address, not `localhost`: resolving a name costs tokio a blocking-pool
            // thread at each connect.
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: None,
            username: None,
            password: None,
            tls: TlsKeys::default(),
            keep_alive: Dur(Duration::from_secs(30)),
            connect_timeout: Dur(Duration::from_secs(5)),
            write_timeout: Dur(Duration::from_secs(10)),
            qos: 1,
            retain: false,
            topic_prefix: None,
            layout: Layout::Value,
            include_patterns: Vec::new(),
            exclude_patterns: Vec::new(),
            homeassistant: HomeAssistant::default(),
            logs: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `<prefix>/<metric>[/<label value>…]`, payload the bare number.
    #[default]
    Value,
    /// Same topics, payload `{"value":…,"timestamp_ms":…,"labels":{…}}`.
    Json,
    /// `<prefix>/<input>`, payload a JSON array of samples, one message per flush and input.
    Batch,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HomeAssistant {
    pub enabled: bool,
    pub discovery_prefix: String,
}

impl Default for HomeAssistant {
    fn default() -> Self {
        HomeAssistant {
            enabled: false,
            discovery_prefix: "homeassistant".into(),
        }
    }
}

impl Config {
    /// Checks what the broker would refuse later, so `check` reports it now.
    pub fn validate(&self) -> Result<(), BuildError> {
        if self.host.is_empty() {
            return Err(BuildError::at("host", "must not be empty"));
        }
        if self.port == 0 {
            return Err(BuildError::at("port", "must be 1 to 65535"));
        }
        if self.qos > 2 {
            return Err(BuildError::at(
                "qos",
                format!("{} is not an MQTT QoS; use 0, 1 or 2", self.qos),
            ));
        }
        if self.username.is_none() && self.password.is_some() {
            return Err(BuildError::at(
                "password",
                "MQTT sends a password only with a `username`",
            ));
        }
        if self.connect_timeout.0.is_zero() || self.write_timeout.0.is_zero() {
            return Err("connect_timeout and write_timeout must be more than 0".into());
        }
        if self.keep_alive.0 < Duration::from_secs(1) && !self.keep_alive.0.is_zero() {
            return Err(BuildError::at(
                "keep_alive",
                "at least 1s (or 0 to turn pings off)",
            ));
        }
        if let Some(p) = &self.topic_prefix {
            check_topic("topic_prefix", p)?;
        }
        if self.homeassistant.enabled {
            check_topic("discovery_prefix", &self.homeassistant.discovery_prefix)
                .map_err(|e| BuildError::at("homeassistant", format!("discovery_prefix: {}", e.message)))?;
            if self.layout == Layout::Batch {
                return Err(BuildError::at(
                    "homeassistant",
                    "discovery needs one topic per series; use `layout: value` or `layout: json`",
                ));
            }
        }
        check_options(self.tls.ssl, &self.tls.files(), "`ssl: true`")?;
        Ok(())
    }

    pub fn topic_prefix(&self, host: &str) -> String {
        match &self.topic_prefix {
            Some(p) => p.trim_end_matches('/').to_string(),
            None => format!("rtcollector/{}", super::topics::level(host)),
        }
    }

    pub fn client_id(&self, host: &str) -> String {
        match &self.client_id {
            Some(id) => id.clone(),
            None => format!("rtcollector-{host}"),
        }
    }
}

/// A topic we publish under: not empty and no wildcards.
fn check_topic(key: &'static str, topic: &str) -> Result<(), BuildError> {
    if topic.trim_end_matches('/').is_empty() {
        return Err(BuildError::at(key, "must not be empty"));
    }
    if topic.contains(['+', '#', '\0']) {
        return Err(BuildError::at(
            key,
            format!("`{topic}` contains `+`, `#` or NUL, which MQTT does not allow in a topic to publish to"),
        ));
    }
    Ok(())
}

//! Every output, one module each, and the registry that maps config names to them.

use crate::core::Output;
use std::fmt;

/// What an output may need from the agent when it is built.
pub struct OutputCtx {
    pub hostname: String,
    /// Unique per output in the config (`stdout`, `stdout#2`): names its stats and files.
    pub key: String,
}

/// An output's parsed options, able to build the output.
/// `Send`: a reloaded config is parsed on a thread of its own.
pub trait OutputOptions: fmt::Debug + Send {
    fn build(&self, ctx: &OutputCtx) -> Result<Box<dyn Output>, crate::config::BuildError>;
    /// The options as YAML on one line, secrets masked (`check`'s plan).
    fn yaml(&self) -> String;
}

crate::config::entry::plugin_registry! {
    Outputs, OutputOptions, OutputCtx, Output, "output", &[];

    "stdout" => stdout: "prints samples as JSON lines or a readable table",
    "redistimeseries" => redistimeseries: "writes samples to RedisTimeSeries (Redis Stack or Redis 8), one labelled key per series",
    "mqtt" => mqtt if "mqtt": "publishes samples to an MQTT broker, with Home Assistant discovery",
    "prometheus" => prometheus if "prometheus": "serves the latest value of each series on an HTTP endpoint that Prometheus scrapes",
    "otlp" => otlp if "otlp": "pushes batches as OTLP/HTTP protobuf metrics to an OpenTelemetry collector, buffered through outages",
    "redissearch" => redissearch if "redissearch": "stores log records (the syslog input's) as RedisJSON documents indexed by RediSearch, buffered through outages",
    "prometheus_remote_write" => prometheus_remote_write if "remote-write": "pushes batches to a Prometheus remote-write receiver (Prometheus, VictoriaMetrics, Mimir), buffered through outages",
}

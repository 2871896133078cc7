//! The YAML config: rtcollector's keys, plus roots for /proc and /sys, environment
//! interpolation, secrets, and errors that point at file, line, column and key.

pub mod entry;
pub mod interp;
pub mod locate;
pub mod secret;
pub mod units;
pub mod yaml_text;

pub use entry::{Common, Entry, Registry};
pub use secret::{Secret, SecretStore};
pub use units::{Dur, Millis, Size};

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub type InputEntry = Entry<crate::inputs::Inputs>;
pub type OutputEntry = Entry<crate::outputs::Outputs>;

/// The whole config file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file's text, to point at an option whose error is found when its plugin is built.
    #[serde(skip)]
    pub source: Source,
    /// How often inputs collect (a bare number is seconds).
    #[serde(default = "default_interval")]
    pub interval: Dur,
    /// How often outputs flush; defaults to `interval`.
    #[serde(default)]
    pub flush_interval: Option<Dur>,
    /// Samples each output keeps while it cannot deliver; the oldest go first when full.
    #[serde(default = "default_max_buffer_size")]
    pub max_buffer_size: usize,
    /// An output flushes early once this many samples wait.
    #[serde(default = "default_batch_size")]
    pub metric_batch_size: usize,
    /// Accepted for rtcollector compatibility: buffering is always reported in the log.
    #[serde(default)]
    pub warn_on_buffer: bool,
    /// The `host` label; empty means the system hostname.
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub debug: bool,
    /// Collect once, flush, exit.
    #[serde(default)]
    pub once: bool,
    /// Each input's tick is delayed by a random amount below this.
    #[serde(default)]
    pub collection_jitter: Dur,
    /// Where /proc is (a container mounts the host's elsewhere); `HOST_PROC` also sets it.
    #[serde(default)]
    pub procfs_root: Option<PathBuf>,
    /// Where /sys is; `HOST_SYS` also sets it.
    #[serde(default)]
    pub sysfs_root: Option<PathBuf>,
    /// Where outputs keep samples they could not deliver (one folder per output key).
    #[serde(default = "default_buffer_dir")]
    pub buffer_dir: PathBuf,
    /// How often the disk buffer is fsynced during an outage (and always at shutdown): a
    /// power loss costs at most this much of the buffered data.
    #[serde(default = "default_buffer_sync_interval")]
    pub buffer_sync_interval: Dur,
    /// Most bytes of each output's disk buffer; the oldest segment is dropped when full.
    #[serde(default = "default_max_disk_buffer")]
    pub max_disk_buffer: Size,
    /// Most distinct series the agent tracks; samples of further series are dropped and counted.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// A series unseen this long leaves the series table (its slot is reused once nothing
    /// holds it); `0s` keeps every series.
    #[serde(default = "default_forget_series_after")]
    pub forget_series_after: Dur,
    #[serde(default)]
    pub secret_store: Option<SecretStore>,
    #[serde(default)]
    pub inputs: Vec<InputEntry>,
    #[serde(default)]
    pub outputs: Vec<OutputEntry>,
}

fn default_interval() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_max_buffer_size() -> usize {
    5000
}
fn default_batch_size() -> usize {
    1000
}
fn default_buffer_dir() -> PathBuf {
    PathBuf::from("/var/lib/rtcollector/buffer")
}
fn default_buffer_sync_interval() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_max_disk_buffer() -> Size {
    Size(64 << 20)
}
fn default_max_series() -> usize {
    100_000
}
fn default_forget_series_after() -> Dur {
    Dur(Duration::from_secs(3600))
}

impl Config {
    /// How long an unseen series stays in the series table; `None`: for ever. Never less
    /// than two intervals of the slowest input, whose series would otherwise be forgotten
    /// between its collections (losing their rate baselines every time).
    pub fn forget_series_after(&self) -> Option<Duration> {
        let slowest = self
            .inputs
            .iter()
            .map(|e| e.common.interval.unwrap_or(self.interval).0)
            .max()
            .unwrap_or(self.interval.0);
        Some(self.forget_series_after.0)
            .filter(|d| !d.is_zero())
            .map(|d| d.max(slowest.saturating_mul(2)))
    }

    pub fn flush_interval(&self) -> Duration {
        self.flush_interval.unwrap_or(self.interval).0
    }

    /// The disk buffer of the output with this key.
    pub fn spill_config(&self, key: &str) -> crate::core::spill::SpillConfig {
        crate::core::spill::SpillConfig {
            dir: self.buffer_dir.join(key),
            max_bytes: self.max_disk_buffer.0,
            sync_interval: self.buffer_sync_interval.0,
        }
    }

    pub fn procfs_root(&self) -> PathBuf {
        root(&self.procfs_root, "HOST_PROC", "/proc")
    }

    pub fn sysfs_root(&self) -> PathBuf {
        root(&self.sysfs_root, "HOST_SYS", "/sys")
    }

    pub fn hostname(&self) -> String {
        if !self.hostname.is_empty() {
            return self.hostname.clone();
        }
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    }

    pub fn input_interval(&self, entry: &InputEntry) -> Duration {
        entry.common.interval.unwrap_or(self.interval).0
    }

    fn validate(&self) -> Result<(), String> {
        if self.interval.0 < Duration::from_millis(100) {
            return Err("interval: must be at least 100ms".into());
        }
        if self.flush_interval().is_zero() {
            return Err("flush_interval: must be more than 0".into());
        }
        if self.metric_batch_size == 0 {
            return Err("metric_batch_size: must be at least 1".into());
        }
        for (i, e) in self.inputs.iter().enumerate() {
            if e.common
                .interval
                .is_some_and(|d| d.0 < Duration::from_millis(100))
            {
                return Err(format!(
                    "inputs[{i}].{}.interval: must be at least 100ms",
                    e.name
                ));
            }
        }
        Ok(())
    }
}

fn root(configured: &Option<PathBuf>, env: &str, default: &str) -> PathBuf {
    configured
        .clone()
        .or_else(|| {
            std::env::var_os(env)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(default))
}

/// The text of a config file; never printed (it may hold passwords).
#[derive(Default)]
pub struct Source(pub String);

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Source(..)")
    }
}

/// A config problem, pointing into the file where it can.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Only what must be known before the full parse: where secrets come from.
#[derive(Deserialize, Default)]
struct Preamble {
    #[serde(default)]
    secret_store: Option<SecretStore>,
}

/// Reads, interpolates, parses and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.into(),
        line: None,
        column: None,
        message: format!("cannot read config: {e}"),
    })?;
    parse(path, &text)
}

/// Parses config text; `path` is used in messages.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let text =
        interp::interpolate(text, |name| std::env::var(name).ok()).map_err(|e| ConfigError {
            file: path.into(),
            line: Some(e.line),
            column: Some(e.column),
            message: e.message,
        })?;
    let yaml_error = |e: yaml_serde::Error| from_yaml_error(path, e);
    // An empty file is a valid config with every default.
    let text = if text.trim().is_empty() { "{}" } else { &text };
    let preamble: Preamble = yaml_serde::from_str(text).map_err(yaml_error)?;
    let store = preamble.secret_store.unwrap_or_default();
    let mut config: Config =
        secret::with_store(&store, || yaml_serde::from_str(text)).map_err(yaml_error)?;
    config.source = Source(text.to_owned());
    config.validate().map_err(|message| ConfigError {
        file: path.into(),
        line: None,
        column: None,
        message,
    })?;
    Ok(config)
}

fn from_yaml_error(path: &Path, e: yaml_serde::Error) -> ConfigError {
    let location = e.location();
    let mut message = e.to_string();
    // The location is shown up front, as file:line:column.
    if let Some(at) = message.rfind(" at line ") {
        if message[at..].contains(" column ") {
            message.truncate(at);
        }
    }
    ConfigError {
        file: path.into(),
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
        message,
    }
}

//! `apache`: Apache httpd's mod_status page in its machine-readable form
//! (`server-status?auto`): `Key: value` lines and the worker scoreboard.

use crate::config::{BuildError, Dur};
use crate::config::range;
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::http::StatusPage;
use crate::inputs::BuildCtx;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Apache workers, requests, traffic and the scoreboard from mod_status. Enable it with
#   <Location \"/server-status\"> SetHandler server-status; Require local </Location>
# (ExtendedStatus On, the default since 2.3.6, adds the request and traffic totals).
- apache:
    status_url: \"http://localhost/server-status?auto\"
    timeout: 5s                # the whole request, connect to last byte
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub status_url: String,
    #[serde(deserialize_with = "range::timeout")]
    pub timeout: Dur,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            status_url: "http://localhost/server-status?auto".into(),
            timeout: Dur(Duration::from_secs(5)),
        }
    }
}

/// `?auto` keys written as `apache_<key without spaces>`, as the Python rtcollector does. The first
/// two are totals since the start: written with a per-second `_rate`.
pub const COUNTERS: [&str; 2] = ["Total Accesses", "Total kBytes"];
pub const GAUGES: [&str; 21] = [
    "CPULoad",
    "Uptime",
    "ReqPerSec",
    "BytesPerSec",
    "BytesPerReq",
    "BusyWorkers",
    "IdleWorkers",
    "ConnsTotal",
    "ConnsAsyncWriting",
    "ConnsAsyncKeepAlive",
    "ConnsAsyncClosing",
    "ServerUptimeSeconds",
    "Load1",
    "Load5",
    "Load15",
    "CPUUser",
    "CPUSystem",
    "CPUChildrenUser",
    "CPUChildrenSystem",
    "ParentServerConfigGeneration",
    "ParentServerMPMGeneration",
];

/// Scoreboard characters and the state each is counted as (`apache_scboard_<state>`).
pub const SCOREBOARD: [(u8, &str); 11] = [
    (b'_', "waiting"),
    (b'S', "starting"),
    (b'R', "reading"),
    (b'W', "sending"),
    (b'K', "keepalive"),
    (b'D', "dnslookup"),
    (b'C', "closing"),
    (b'L', "logging"),
    (b'G', "finishing"),
    (b'I', "idle_cleanup"),
    (b'.', "open"),
];

const KNOWN: usize = COUNTERS.len() + GAUGES.len();

/// One `?auto` page: the known keys' values (`None`: not on the page, e.g. the
/// ExtendedStatus totals when it is off) and the scoreboard counts in [`SCOREBOARD`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerStatus {
    pub values: [Option<f64>; KNOWN],
    pub scoreboard: [u32; SCOREBOARD.len()],
}

impl ServerStatus {
    pub fn get(&self, key: &str) -> Option<f64> {
        key_index(key).and_then(|i| self.values[i])
    }

    pub fn slots(&self, state: &str) -> Option<u32> {
        let i = SCOREBOARD.iter().position(|(_, s)| *s == state)?;
        Some(self.scoreboard[i])
    }
}

fn key_index(key: &str) -> Option<usize> {
    COUNTERS.iter().chain(GAUGES.iter()).position(|k| *k == key)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusError {
    /// No `Scoreboard:` line, or no `BusyWorkers:`/`IdleWorkers:`: not a `?auto` page, or
    /// one cut short.
    Missing(&'static str),
    /// A known key's value is not a number.
    BadValue { line: usize },
    /// A scoreboard character Apache does not write.
    BadScoreboard { line: usize },
    /// A known key appears twice.
    Repeated { line: usize },
    NotText,
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusError::Missing(key) => write!(
                f,
                "not a complete server-status?auto page: no `{key}:` line (is status_url the mod_status URL, with ?auto?)"
            ),
            StatusError::BadValue { line } => write!(f, "line {line}: the value is not a number"),
            StatusError::BadScoreboard { line } => {
                write!(f, "line {line}: the scoreboard has a character Apache does not write")
            }
            StatusError::Repeated { line } => write!(f, "line {line}: a key is repeated"),
            StatusError::NotText => f.write_str("the page is not text"),
        }
    }
}

/// Parses a `server-status?auto` page. Unknown keys (ServerVersion, TLS cache lines, …) are
/// skipped; a malformed known line rejects the whole page.
pub fn parse_server_status(page: &[u8]) -> Result<ServerStatus, StatusError> {
    let text = std::str::from_utf8(page).map_err(|_| StatusError::NotText)?;
    let mut values = [None; KNOWN];
    let mut scoreboard = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some((key, value)) = line.split_once(": ") else {
            continue; // the first line (host name), blank lines
        };
        let value = value.trim();
        if key == "Scoreboard" {
            if scoreboard.is_some() {
                return Err(StatusError::Repeated { line: n });
            }
            scoreboard = Some(count_scoreboard(value).ok_or(StatusError::BadScoreboard { line: n })?);
        } else if let Some(k) = key_index(key) {
            if values[k].is_some() {
                return Err(StatusError::Repeated { line: n });
            }
            let v: f64 = value.parse().map_err(|_| StatusError::BadValue { line: n })?;
            if !v.is_finite() {
                return Err(StatusError::BadValue { line: n });
            }
            values[k] = Some(v);
        }
    }
    let scoreboard = scoreboard.ok_or(StatusError::Missing("Scoreboard"))?;
    for required in ["BusyWorkers", "IdleWorkers"] {
        if values[key_index(required).unwrap_or(0)].is_none() {
            return Err(StatusError::Missing(required));
        }
    }
    Ok(ServerStatus { values, scoreboard })
}

fn count_scoreboard(board: &str) -> Option<[u32; SCOREBOARD.len()]> {
    if board.is_empty() {
        return None;
    }
    let mut counts = [0; SCOREBOARD.len()];
    for b in board.bytes() {
        let i = SCOREBOARD.iter().position(|(c, _)| *c == b)?;
        counts[i] += 1;
    }
    Some(counts)
}

pub struct Apache {
    page: StatusPage,
    server: String,
    port: String,
    /// `apache_<key>` per known key, built once.
    names: Vec<String>,
    /// `apache_scboard_<state>`, built once.
    board_names: Vec<String>,
}

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<Apache, BuildError> {
    if cfg.timeout.0.is_zero() {
        return Err(BuildError::at("timeout", "must be more than 0"));
    }
    let page =
        StatusPage::new(&cfg.status_url, cfg.timeout.0)
        .map_err(|e| BuildError::at("status_url", e))?;
    let (server, port) = page.target().host_port();
    Ok(Apache {
        page,
        server,
        port: port.to_string(),
        names: COUNTERS
            .iter()
            .chain(GAUGES.iter())
            .map(|k| format!("apache_{}", k.replace(' ', "")))
            .collect(),
        board_names: SCOREBOARD
            .iter()
            .map(|(_, s)| format!("apache_scboard_{s}"))
            .collect(),
    })
}

impl Apache {
    fn emit(&self, s: &ServerStatus, em: &mut Emitter) {
        let labels = [("server", self.server.as_str()), ("port", self.port.as_str())];
        for (i, (name, value)) in self.names.iter().zip(s.values).enumerate() {
            let Some(v) = value else { continue };
            if i < COUNTERS.len() {
                em.counter(name, &labels, v);
            } else {
                em.gauge(name, &labels, v);
            }
        }
        for (name, &count) in self.board_names.iter().zip(&s.scoreboard) {
            em.gauge(name, &labels, count as f64);
        }
    }
}

impl Input for Apache {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(async move {
            let page = self.page.fetch().await.map_err(InputError::new)?;
            let status = parse_server_status(&page)
                .map_err(|e| InputError::new(format!("{}: {e}", self.page.target().shown)))?;
            self.emit(&status, em);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;

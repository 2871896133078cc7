//! `nginx`: the `stub_status` page of nginx (ngx_http_stub_status_module).
//!
//! ```text
//! Active connections: 2
//! server accepts handled requests
//!  16 16 31
//! Reading: 0 Writing: 1 Waiting: 1
//! ```

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
# nginx connections and requests from its stub_status page. Enable it in nginx with
#   location = /nginx_status { stub_status; allow 127.0.0.1; deny all; }
- nginx:
    status_url: \"http://localhost/nginx_status\"
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
            status_url: "http://localhost/nginx_status".into(),
            timeout: Dur(Duration::from_secs(5)),
        }
    }
}

pub struct Nginx {
    page: StatusPage,
    server: String,
    port: String,
}

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<Nginx, BuildError> {
    if cfg.timeout.0.is_zero() {
        return Err(BuildError::at("timeout", "must be more than 0"));
    }
    let page = StatusPage::new(&cfg.status_url, cfg.timeout.0)
        .map_err(|e| BuildError::at("status_url", e))?;
    let (server, port) = page.target().host_port();
    Ok(Nginx {
        page,
        server,
        port: port.to_string(),
    })
}

/// One stub_status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StubStatus {
    pub active: u64,
    pub accepts: u64,
    pub handled: u64,
    pub requests: u64,
    pub reading: u64,
    pub writing: u64,
    pub waiting: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StubError {
    /// The page ended before line `n` (1-based) was complete.
    Truncated { line: usize },
    /// Line `n` is not what stub_status writes there.
    Unexpected { line: usize },
}

impl fmt::Display for StubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StubError::Truncated { line } => {
                write!(f, "not a stub_status page: it ends before line {line}")
            }
            StubError::Unexpected { line } => write!(
                f,
                "not a stub_status page: line {line} is not in its format (is status_url the stub_status location?)"
            ),
        }
    }
}

/// Parses a stub_status page; all four lines must be there and well-formed, or nothing is
/// taken from it.
pub fn parse_stub_status(page: &[u8]) -> Result<StubStatus, StubError> {
    let text = std::str::from_utf8(page).map_err(|_| StubError::Unexpected { line: 1 })?;
    let mut lines = text.lines();
    let mut line = |n: usize| lines.next().ok_or(StubError::Truncated { line: n });

    let active = after_label(line(1)?, "Active connections:").ok_or(StubError::Unexpected { line: 1 })?;
    if line(2)?.split_whitespace().ne(["server", "accepts", "handled", "requests"]) {
        return Err(StubError::Unexpected { line: 2 });
    }
    let counts = numbers::<3>(line(3)?).ok_or(StubError::Unexpected { line: 3 })?;
    let [reading, writing, waiting] =
        labelled_all(line(4)?, ["Reading:", "Writing:", "Waiting:"]).ok_or(StubError::Unexpected { line: 4 })?;
    Ok(StubStatus {
        active,
        accepts: counts[0],
        handled: counts[1],
        requests: counts[2],
        reading,
        writing,
        waiting,
    })
}

/// `Label: N` with nothing else on the line.
fn after_label(line: &str, label: &str) -> Option<u64> {
    line.trim().strip_prefix(label)?.trim().parse().ok()
}

/// `A: n B: n C: n` with exactly these labels in this order.
fn labelled_all(line: &str, labels: [&str; 3]) -> Option<[u64; 3]> {
    let mut words = line.split_whitespace();
    let mut out = [0; 3];
    for (slot, label) in out.iter_mut().zip(labels) {
        if words.next()? != label {
            return None;
        }
        *slot = words.next()?.parse().ok()?;
    }
    words.next().is_none().then_some(out)
}

/// Exactly `N` unsigned numbers separated by white space.
fn numbers<const N: usize>(line: &str) -> Option<[u64; N]> {
    let mut words = line.split_whitespace();
    let mut out = [0; N];
    for slot in &mut out {
        *slot = words.next()?.parse().ok()?;
    }
    words.next().is_none().then_some(out)
}

impl Nginx {
    fn emit(&self, s: &StubStatus, em: &mut Emitter) {
        let labels = [("server", self.server.as_str()), ("port", self.port.as_str())];
        em.gauge("nginx_active", &labels, s.active as f64);
        em.counter("nginx_accepts", &labels, s.accepts as f64);
        em.counter("nginx_handled", &labels, s.handled as f64);
        em.counter("nginx_requests", &labels, s.requests as f64);
        em.gauge("nginx_reading", &labels, s.reading as f64);
        em.gauge("nginx_writing", &labels, s.writing as f64);
        em.gauge("nginx_waiting", &labels, s.waiting as f64);
        if let Some(dropped) = s.accepts.checked_sub(s.handled) {
            em.gauge("nginx_dropped", &labels, dropped as f64);
        }
    }
}

impl Input for Nginx {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(async move {
            let page = self.page.fetch().await.map_err(InputError::new)?;
            let status = parse_stub_status(&page)
                .map_err(|e| InputError::new(format!("{}: {e}", self.page.target().shown)))?;
            self.emit(&status, em);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;

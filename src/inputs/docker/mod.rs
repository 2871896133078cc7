//! `docker`: per-container CPU percent, memory and network from the Docker Engine API on its
//! unix socket: the running containers are listed once per collection, then their stats are
//! fetched a few at a time.

pub mod api;
pub mod http;

use crate::config::{BuildError, Dur};
use crate::config::range;
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::BuildCtx;
use api::{Container, Stats};
use futures_lite::future;
use http::HttpError;
use serde::{Deserialize, Serialize};
use smol::Timer;
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Per-container CPU percent, memory and network traffic from the Docker Engine API.
# The agent's user must be able to open the socket: root, or the `docker` group (which is
# as good as root on that host).
- docker:
    endpoint: \"unix:///var/run/docker.sock\"
    # How long one API request may take (a stats request takes the engine about 1-2 s).
    timeout: 5s
    # Stats requests in flight at once.
    max_concurrent: 4
";

/// The container list may be this large; a larger answer is an error.
pub const LIST_CAP: usize = 4 * 1024 * 1024;
/// One container's stats may be this large.
pub const STATS_CAP: usize = 1024 * 1024;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub endpoint: String,
    #[serde(deserialize_with = "range::timeout")]
    pub timeout: Dur,
    #[serde(deserialize_with = "range::count::<_, 1, 64>")]
    pub max_concurrent: usize,
    /// The Python rtcollector's Swarm switch: accepted, but services are not collected.
    pub gather_services: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint: "unix:///var/run/docker.sock".into(),
            timeout: Dur(Duration::from_secs(5)),
            max_concurrent: 4,
            gather_services: false,
        }
    }
}

/// The socket path of `unix:///path` (or a bare absolute path).
pub fn socket_path(endpoint: &str) -> Result<PathBuf, BuildError> {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    if path.starts_with('/') {
        Ok(PathBuf::from(path))
    } else {
        Err(BuildError::at("endpoint", format!(
            "`{endpoint}` is not unix:///path/to/docker.sock; only the engine's unix socket is supported"
        )))
    }
}

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<Docker, BuildError> {
    if cfg.timeout.0.is_zero() {
        return Err(BuildError::at("timeout", "must be more than 0"));
    }
    if cfg.max_concurrent == 0 {
        return Err(BuildError::at("max_concurrent", "must be 1 or more"));
    }
    if cfg.gather_services {
        log::warn!("input docker: gather_services (Swarm services) is not supported; only containers are collected");
    }
    Ok(Docker {
        socket: socket_path(&cfg.endpoint)?,
        timeout: cfg.timeout.0,
        max_concurrent: cfg.max_concurrent,
    })
}

/// One container's stats; `Ok(None)` when it went away since the list.
type StatsResult = Result<Option<Stats>, String>;

pub struct Docker {
    socket: PathBuf,
    timeout: Duration,
    max_concurrent: usize,
}

impl Input for Docker {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(async move {
            let containers = self.containers().await?;
            let stats = self.all_stats(&containers).await;
            for (c, s) in containers.iter().zip(stats) {
                match s {
                    Ok(Some(s)) => emit(c, &s, em),
                    Ok(None) => {}
                    Err(e) => em.partial_failure(InputError::new(format!(
                        "stats of container {}: {e}",
                        c.name()
                    ))),
                }
            }
            Ok(())
        })
    }
}

impl Docker {
    /// The running containers, in the engine's order.
    async fn containers(&self) -> Result<Vec<Container>, InputError> {
        let body = self
            .get("/containers/json", LIST_CAP)
            .await
            .map_err(|e| InputError::new(self.explain(&e, "listing containers")))?;
        serde_json::from_slice(&body).map_err(|e| {
            InputError::new(format!(
                "{}: the container list is not what the Docker API sends: {e}",
                self.socket.display()
            ))
        })
    }

    /// Stats of every container, at most `max_concurrent` requests at a time. `Ok(None)`:
    /// the container stopped or went away since it was listed.
    async fn all_stats(&self, containers: &[Container]) -> Vec<StatsResult> {
        let results: Vec<RefCell<Option<StatsResult>>> =
            containers.iter().map(|_| RefCell::new(None)).collect();
        let next = Cell::new(0);
        let ex = smol::LocalExecutor::new();
        let workers: Vec<_> = (0..self.max_concurrent.min(containers.len()))
            .map(|_| {
                ex.spawn(async {
                    loop {
                        let i = next.get();
                        let Some(c) = containers.get(i) else {
                            return;
                        };
                        next.set(i + 1);
                        let r = self.stats(c).await;
                        *results[i].borrow_mut() = Some(r);
                    }
                })
            })
            .collect();
        ex.run(async {
            for w in workers {
                w.await;
            }
        })
        .await;
        drop(ex);
        results
            .into_iter()
            .map(|r| r.into_inner().unwrap_or(Ok(None)))
            .collect()
    }

    async fn stats(&self, c: &Container) -> StatsResult {
        if !c.id_is_safe() {
            return Err(format!("unusable container id `{}`", c.id));
        }
        let path = format!("/containers/{}/stats?stream=false", c.id);
        match self.get(&path, STATS_CAP).await {
            Ok(body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| format!("not what the Docker API sends: {e}")),
            // Gone (404) or no longer running (409) since the list: not an error.
            Err(HttpError::Status(404 | 409, _)) => {
                log::debug!("input docker: container {} went away", c.name());
                Ok(None)
            }
            Err(HttpError::Connect(e)) => Err(connect_hint(&self.socket, &e)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// One request, bounded by the timeout.
    async fn get(&self, path: &str, cap: usize) -> Result<Vec<u8>, HttpError> {
        let request = async { Some(http::get(&self.socket, path, cap).await) };
        let timer = async {
            Timer::after(self.timeout).await;
            None
        };
        future::or(request, timer)
            .await
            .unwrap_or(Err(HttpError::Timeout(self.timeout)))
    }

    /// The error in words an operator can act on; the socket's usual failures get one
    /// clear message each.
    fn explain(&self, e: &HttpError, doing: &str) -> String {
        let socket = self.socket.display();
        match e {
            HttpError::Connect(io) => connect_hint(&self.socket, io),
            other => format!("{doing} at {socket}: {other}"),
        }
    }
}

/// What a failed connect to the engine's socket means.
pub fn connect_hint(socket: &Path, e: &std::io::Error) -> String {
    let s = socket.display();
    match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "no Docker socket at {s}: is the Docker engine installed and running here? (set `endpoint` if it listens elsewhere)"
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "permission denied on {s}: run the agent as root or in the `docker` group (as good as root on this host)"
        ),
        std::io::ErrorKind::ConnectionRefused => format!(
            "nothing accepts connections on {s}: the Docker engine is stopped"
        ),
        _ => format!("cannot connect to {s}: {e}"),
    }
}

/// Writes one container's figures.
fn emit(c: &Container, s: &Stats, em: &mut Emitter<'_>) {
    let labels = [
        ("container_name", c.name()),
        ("container_id", c.short_id()),
        ("container_image", c.image.as_str()),
        ("container_status", c.state.as_str()),
    ];
    let mut gauge = |name: &str, v: Option<u64>| {
        if let Some(v) = v {
            em.gauge(name, &labels, v as f64);
        }
    };
    let cpu = &s.cpu_stats;
    gauge("docker_cpu_usage_total", cpu.cpu_usage.total_usage);
    gauge("docker_cpu_usage_in_usermode", cpu.cpu_usage.usage_in_usermode);
    gauge("docker_cpu_usage_in_kernelmode", cpu.cpu_usage.usage_in_kernelmode);
    gauge("docker_cpu_system", cpu.system_cpu_usage);
    let m = &s.memory_stats;
    gauge("docker_mem_usage", s.memory_usage());
    gauge("docker_mem_limit", m.limit);
    gauge("docker_mem_max_usage", m.max_usage);
    gauge("docker_mem_failcnt", m.failcnt);
    for field in [
        "total_rss",
        "total_cache",
        "total_inactive_file",
        "total_active_file",
        "total_pgmajfault",
    ] {
        if let Some(&v) = m.stats.get(field) {
            em.gauge_suffixed("docker_mem_", field, &labels, v as f64);
        }
    }
    if let Some(p) = s.cpu_percent() {
        em.gauge("docker_cpu_percent", &labels, p);
    }
    if let Some(p) = s.memory_percent() {
        em.gauge("docker_mem_percent", &labels, p);
    }
    for (iface, n) in &s.networks {
        let labels = [
            labels[0],
            labels[1],
            labels[2],
            labels[3],
            ("interface", iface.as_str()),
        ];
        for (name, v, counter) in [
            ("docker_net_rx_bytes", n.rx_bytes, true),
            ("docker_net_tx_bytes", n.tx_bytes, true),
            ("docker_net_rx_packets", n.rx_packets, false),
            ("docker_net_tx_packets", n.tx_packets, false),
            ("docker_net_rx_errors", n.rx_errors, false),
            ("docker_net_tx_errors", n.tx_errors, false),
            ("docker_net_rx_dropped", n.rx_dropped, false),
            ("docker_net_tx_dropped", n.tx_dropped, false),
        ] {
            match v {
                Some(v) if counter => {
                    em.counter(name, &labels, v as f64);
                }
                Some(v) => em.gauge(name, &labels, v as f64),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! The parts of the Docker Engine API answers this input reads, and the figures `docker
//! stats` derives from them. Every field is optional: engines and cgroup versions differ.

use serde::Deserialize;
use std::collections::BTreeMap;

/// One entry of `GET /containers/json`.
#[derive(Debug, Deserialize, PartialEq)]
pub struct Container {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Names", default)]
    pub names: Vec<String>,
    #[serde(rename = "Image", default)]
    pub image: String,
    #[serde(rename = "State", default)]
    pub state: String,
}

impl Container {
    /// The first name without its leading `/`, or the short id.
    pub fn name(&self) -> &str {
        self.names
            .first()
            .map(|n| n.trim_start_matches('/'))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.short_id())
    }

    /// The 12-character id `docker ps` shows.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// Whether the id can go into a URL path as it is (the engine's ids are 64 hex digits).
    pub fn id_is_safe(&self) -> bool {
        !self.id.is_empty() && self.id.bytes().all(|b| b.is_ascii_alphanumeric())
    }
}

/// `GET /containers/{id}/stats?stream=false`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub cpu_stats: CpuStats,
    pub precpu_stats: CpuStats,
    pub memory_stats: MemoryStats,
    pub networks: BTreeMap<String, Network>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    pub system_cpu_usage: Option<u64>,
    pub online_cpus: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    pub total_usage: Option<u64>,
    pub usage_in_kernelmode: Option<u64>,
    pub usage_in_usermode: Option<u64>,
    /// cgroup v1 only.
    pub percpu_usage: Option<Vec<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    pub usage: Option<u64>,
    pub max_usage: Option<u64>,
    pub failcnt: Option<u64>,
    pub limit: Option<u64>,
    pub stats: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Network {
    pub rx_bytes: Option<u64>,
    pub rx_packets: Option<u64>,
    pub rx_errors: Option<u64>,
    pub rx_dropped: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub tx_packets: Option<u64>,
    pub tx_errors: Option<u64>,
    pub tx_dropped: Option<u64>,
}

impl Stats {
    /// CPU percent as `docker stats` computes it: the container's CPU time over the host's
    /// between the two readings the engine took, times the online CPUs, × 100 (so 200 is two
    /// CPUs busy). `None` without a previous reading or a CPU count.
    pub fn cpu_percent(&self) -> Option<f64> {
        let now = &self.cpu_stats;
        let before = &self.precpu_stats;
        let system_delta = now
            .system_cpu_usage?
            .checked_sub(before.system_cpu_usage.filter(|&s| s > 0)?)?;
        let cpu_delta = now
            .cpu_usage
            .total_usage?
            .saturating_sub(before.cpu_usage.total_usage.unwrap_or(0));
        let cpus = match now.online_cpus {
            Some(n) if n > 0 => n as f64,
            _ => now.cpu_usage.percpu_usage.as_ref().map(|p| p.len() as f64)?,
        };
        if system_delta == 0 || cpus == 0.0 {
            return None;
        }
        Some(cpu_delta as f64 / system_delta as f64 * cpus * 100.0)
    }

    /// Memory in use as `docker stats` shows it: the usage minus inactive page cache
    /// (`total_inactive_file` on cgroup v1, `inactive_file` on v2), which the kernel can
    /// drop at any time.
    pub fn memory_usage(&self) -> Option<u64> {
        let m = &self.memory_stats;
        let usage = m.usage?;
        let inactive = m
            .stats
            .get("total_inactive_file")
            .or_else(|| m.stats.get("inactive_file"))
            .copied()
            .unwrap_or(0);
        Some(if inactive < usage {
            usage - inactive
        } else {
            usage
        })
    }

    /// [`Self::memory_usage`] in percent of the limit.
    pub fn memory_percent(&self) -> Option<f64> {
        let limit = self.memory_stats.limit.filter(|&l| l > 0)?;
        Some(self.memory_usage()? as f64 / limit as f64 * 100.0)
    }
}

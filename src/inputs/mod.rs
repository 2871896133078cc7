//! Every input, one module each, and the registry that maps config names to them.
//!
//! An input module has a `Config` (serde, `deny_unknown_fields`, every field defaulted),
//! a `build(&Config, &BuildCtx)` that validates and returns the input (or a
//! [`BuildError`](crate::config::BuildError) naming the option at fault; a plain `String`
//! when no option is), a README with its metric table, and its tests beside it.

pub mod support;
#[cfg(test)]
pub mod testutil;

use crate::core::stats::AgentStats;
use crate::core::Input;
use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;

/// What an input may need from the agent when it is built.
pub struct BuildCtx {
    pub procfs_root: PathBuf,
    pub sysfs_root: PathBuf,
    pub hostname: String,
    pub stats: Rc<AgentStats>,
    /// Where inputs keep state that must survive a restart (the config's `buffer_dir`).
    pub state_dir: PathBuf,
}

impl BuildCtx {
    /// For tests and benchmarks: the given roots and fresh stats.
    pub fn with_roots(procfs_root: impl Into<PathBuf>, sysfs_root: impl Into<PathBuf>) -> Self {
        BuildCtx {
            procfs_root: procfs_root.into(),
            sysfs_root: sysfs_root.into(),
            hostname: "testhost".into(),
            stats: Rc::default(),
            state_dir: std::env::temp_dir().join("rtcollector-state"),
        }
    }
}

/// An input's parsed options, able to build the input.
/// `Send`: a reloaded config is parsed on a thread of its own.
pub trait InputOptions: fmt::Debug + Send {
    fn build(&self, ctx: &BuildCtx) -> Result<Box<dyn Input>, crate::config::BuildError>;
    /// The options as YAML on one line, secrets masked (`check`'s plan).
    fn yaml(&self) -> String;
}

crate::config::entry::plugin_registry! {
    Inputs, InputOptions, BuildCtx, Input, "input", &["interval"];

    "linux_cpu" => linux_cpu: "CPU time split (user, system, iowait, steal, idle) per core and in total, in percent",
    "linux_mem" => linux_mem: "memory: total, available, used, free, buffers, cached",
    "linux_disk" => linux_disk: "filesystem space and inodes per mount point",
    "linux_io" => linux_io: "block device reads, writes, bytes and busy time, with rates",
    "linux_net" => linux_net: "network interface bytes, packets, errors and drops, with rates",
    "linux_swap" => linux_swap: "swap space and swap-in/out traffic",
    "system" => system: "load averages, uptime, logged-in users, CPU count",
    "processes" => processes: "process and thread counts by state",
    "process" => process if "process": "one group of processes by name, command line, user, pid file or systemd unit: count, CPU %, memory (RSS, PSS), threads, open files, disk I/O",
    "kernel" => kernel: "context switches, interrupts, forks, paging, entropy, pressure stall (PSI), file descriptors",
    "netstat" => netstat: "TCP connections by state and TCP counters",
    "nstat" => nstat: "IP, IPv6, TCP, UDP and ICMP counters from /proc/net/snmp and snmp6",
    "rpi_i2c" => rpi_i2c if "rpi": "environmental sensors on the I2C bus (BME280, BMP280, SHT3x): temperature, humidity, pressure",
    "pulse_counter" => pulse_counter if "rpi": "S0 pulse outputs of energy meters on GPIO: energy and power",
    "sensors" => sensors if "sensors": "hardware sensors from /sys/class/hwmon (temperatures, fans, voltages, currents, power) and thermal zones",
    "onewire" => onewire if "sensors": "1-wire temperature sensors (DS18B20 and friends) from /sys/bus/w1",
    "smartctl" => smartctl if "smartctl": "disk health from smartctl's JSON (ATA attributes, NVMe health log, SCSI counters); needs root",
    "sma_inverter" => sma_inverter if "modbus": "SMA PV and battery inverters read over Modbus TCP (SMA register map, NaN-safe)",
    "http_response" => http_response if "http": "HTTP(S) checks: response time, status, content length, string match, certificate expiry",
    "nginx" => nginx if "http": "nginx stub_status: connections and requests",
    "apache" => apache if "http": "Apache mod_status (server-status?auto): workers, requests, traffic, scoreboard",
    "sma_energy_meter" => sma_energy_meter if "sma-em": "SMA Energy Meter / Sunny Home Manager readings received over Speedwire multicast",
    "zfs" => zfs if "zfs": "ZFS pools (state, I/O, capacity with zpool), per-dataset I/O and the ARC (size, hits, misses, hit ratio) from the SPL kstats",
    "internal" => internal: "the agent's own figures: samples gathered, written, dropped, memory, threads",
    "exec" => exec if "apps": "runs commands and reads metrics from their output (the Python rtcollector's line format or JSON)",
    "redis" => redis_info if "apps": "a Redis server's INFO: memory, clients, commands, keyspace, with rates",
    "docker" => docker if "apps": "per-container CPU, memory and network from the Docker Engine API",
    "http_ingress" => http_ingress if "http-ingress": "metrics POSTed by scripts and devices (pollect's HttpIngress JSON, Prometheus-style or exec lines), published at once",
    "mqtt_consumer" => mqtt_consumer if "mqtt-consumer": "smart plugs and sensors on MQTT (Tasmota, Shelly Gen2, ESPHome, Zigbee2MQTT presets; numbers, JSON, Influx lines), aggregated per interval",
    "postgres" => postgres if "postgres": "a PostgreSQL server: pg_stat_database per database, background writer and checkpointer, replication lag, custom queries",
    "mariadb" => mariadb if "mariadb": "a MariaDB or MySQL server: SHOW GLOBAL STATUS (a chosen list, counters with rates), replica lag",
    "snmp" => snmp if "snmp": "an SNMP agent (v1, v2c, v3): single OIDs, ranges, walked tables, ifTable/ifXTable interfaces with rates",
    "syslog" => syslog if "syslog": "a syslog server (RFC 5424, RFC 3164 over UDP, TCP, TLS, unix sockets): messages become log records for redissearch and stdout",
}

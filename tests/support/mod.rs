//! What the integration tests (and the benches that start peers) share, one file per job:
//!
//! - [`agent`]: the built binary, one-shot (`run --once`) or running, its output read back;
//!   [`queued_output`]: one output in the agent's queue and flush loop, in the test's thread;
//! - [`samples`]: its JSON samples by key; [`scratch`]: temp configs and the fixtures;
//! - [`collect`]: an input built in the test process, collected on demand;
//! - [`ports`]: free and reserved loopback ports; [`wait`]: polling with a timeout;
//!   [`clock`]: the wall clock as the agent stamps samples;
//! - real peers, each failing the test with its log when it cannot start: [`redis_server`],
//!   [`redis_cluster`] (six of them made a cluster),
//!   [`mosquitto`], [`pymodbus`] (the simulated SMA inverter), [`web_servers`] (nginx, Apache),
//!   [`socks`] (microsocks, danted, ssh -D), [`prometheus`] (scraping, and its query API),
//!   [`snmpd`] (net-snmp, with snmpget/snmpwalk as the oracle), [`postgres`] (PostgreSQL and a
//!   streaming replica, psql as the oracle), [`mariadb`] (MariaDB, its client as the oracle),
//!   [`otlp`] (a receiver decoding with the OpenTelemetry protobuf bindings), [`victoriametrics`]
//!   (OTLP in, the query API out), [`home_assistant`] (a real Home Assistant, onboarded, read
//!   over its websocket API); [`certs`] for the TLS ones; [`logs`] captures the log of library
//!   code run in-process; [`mqtt_flood`]: a raw MQTT publisher paced to a rate (the consumer's
//!   flood test and bench).
//!
//! A test binary declares `mod support;` and names what it uses as `support::<file>::…`.

// Every test binary (and bench) compiles this whole module and uses a part of it; rustc
// judges dead code per binary, so nearly every helper is "dead" in most of them. To find a
// helper that no binary uses, build all targets without this line and look for an item
// warned about in each of them (none was when the module was split).
#![allow(dead_code)]

pub mod agent;
pub mod certs;
pub mod clock;
pub mod collect;
pub mod home_assistant;
pub mod logs;
pub mod mariadb;
pub mod mosquitto;
pub mod mqtt_flood;
pub mod otlp;
pub mod ports;
pub mod postgres;
pub mod prometheus;
pub mod pymodbus;
pub mod queued_output;
pub mod redis_cluster;
pub mod redis_server;
pub mod samples;
pub mod scratch;
pub mod snmpd;
pub mod socks;
pub mod victoriametrics;
pub mod wait;
pub mod web_servers;

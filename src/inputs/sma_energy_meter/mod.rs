//! `sma_energy_meter`: SMA Energy Meter / Sunny Home Manager 2.0 readings received over
//! Speedwire (UDP multicast 239.12.255.254:9522, or unicast from a Home Manager), averaged
//! over each collection interval. Strictly passive: nothing is ever sent.

pub mod aggregate;
pub mod encode;
pub mod socket;
pub mod wire;

use crate::core::input::ListenFuture;
use crate::config::range;
use crate::config::BuildError;
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::BuildCtx;
use aggregate::{Aggregate, Outcome, AVERAGED, COUNTERS, PHASES, REASONS, WS_PER_WH};
use serde::{Deserialize, Serialize};
use smol::Async;
use socket::Join;
use std::cell::RefCell;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# SMA Energy Meter / Sunny Home Manager 2.0 readings (grid import and export, per phase)
# received over Speedwire multicast; averaged over each interval. Never sends anything.
- sma_energy_meter:
    port: 9522
    # Join 239.12.255.254 on this interface (by name, or by one of its addresses with
    # interface_ip); default: the interface of the default route.
    # interface: eth0
    # interface_ip: 192.168.1.10
    # false: unicast only (Home Manager \"direct meter communication\").
    multicast: true
    # Only these meters (serial numbers); empty: every meter on the group (at most 16).
    serials: []
    # Also write the minimum and maximum of each averaged value over the interval.
    stats: []
";

/// Extra figures of averaged values over the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    Min,
    Max,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    #[serde(deserialize_with = "range::port")]
    pub port: u16,
    pub interface: Option<String>,
    pub interface_ip: Option<Ipv4Addr>,
    pub multicast: bool,
    pub serials: Vec<u32>,
    pub stats: Vec<Stat>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: wire::PORT,
            interface: None,
            interface_ip: None,
            multicast: true,
            serials: Vec::new(),
            stats: Vec::new(),
        }
    }
}

/// A receive buffer larger than any energy-meter datagram (610 bytes); longer datagrams
/// are cut to it, which the decoder tolerates (it stops at the end tag).
const RECV_BUF: usize = 2048;
/// How long after a failed socket setup (interface missing or without address yet) the
/// listener tries again.
const RETRY: Duration = Duration::from_secs(10);
/// A meter sends at least once a second: an interval with nothing after the socket has
/// been open this long is a silence worth reporting.
const SILENCE_GRACE: Duration = Duration::from_secs(2);
/// A meter silent for this many intervals in a row is reported down (`sma_em_up` 0): one lost
/// datagram (UDP, a busy switch) is not an outage.
const DOWN_AFTER_INTERVALS: u32 = 3;

/// What the listener is doing, for `collect` to report.
#[derive(Debug)]
enum Listening {
    Starting,
    Open { what: String, since: Instant },
    Failed(String),
}

/// What the listener and `collect` share.
#[derive(Debug)]
pub struct State {
    pub aggregate: Aggregate,
    listening: Listening,
    /// Reasons already logged once.
    logged: [bool; REASONS.len()],
}

impl State {
    pub fn new(serials: &[u32]) -> Self {
        State {
            aggregate: Aggregate::new(serials),
            listening: Listening::Starting,
            logged: [false; REASONS.len()],
        }
    }

    /// Decodes one received datagram and adds it to the interval, or counts why not.
    pub fn receive(&mut self, bytes: &[u8], now: Instant) -> Outcome {
        let outcome = match wire::decode(bytes) {
            Ok(d) => self.aggregate.add(&d, now),
            Err(e) => {
                self.aggregate.reject(e.slot());
                if !self.logged[e.slot()] {
                    self.logged[e.slot()] = true;
                    if e.is_other_traffic() {
                        log::debug!("sma_energy_meter: ignoring a {}-byte datagram: {e} (counted in sma_em_datagrams_rejected_total, not logged again)", bytes.len());
                    } else {
                        log::warn!("sma_energy_meter: rejected a {}-byte datagram: {e} (counted in sma_em_datagrams_rejected_total, not logged again)", bytes.len());
                    }
                }
                return Outcome::Rejected(e.slot());
            }
        };
        if let Outcome::Rejected(reason) = outcome {
            if !self.logged[reason] {
                self.logged[reason] = true;
                log::info!("sma_energy_meter: a datagram not used: {} (counted in sma_em_datagrams_rejected_total, not logged again)", REASONS[reason]);
            }
        }
        outcome
    }
}

pub struct SmaEnergyMeter {
    state: Rc<RefCell<State>>,
    port: u16,
    join: Join,
    procfs_root: PathBuf,
    min: bool,
    max: bool,
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<SmaEnergyMeter, BuildError> {
    let join = match (&cfg.interface, cfg.interface_ip, cfg.multicast) {
        (Some(_), Some(_), _) => return Err("set `interface` or `interface_ip`, not both".into()),
        (_, _, false) => Join::None,
        (Some(name), None, true) => {
            if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
                return Err(BuildError::at(
                    "interface",
                    format!("`{name}` is not an interface name"),
                ));
            }
            Join::Interface(name.clone())
        }
        (None, Some(ip), true) => Join::Address(ip),
        (None, None, true) => Join::DefaultRoute,
    };
    if cfg.port == 0 {
        return Err(BuildError::at("port", "must not be 0"));
    }
    Ok(SmaEnergyMeter {
        state: Rc::new(RefCell::new(State::new(&cfg.serials))),
        port: cfg.port,
        join,
        procfs_root: ctx.procfs_root.clone(),
        min: cfg.stats.contains(&Stat::Min),
        max: cfg.stats.contains(&Stat::Max),
    })
}

impl SmaEnergyMeter {
    /// The state the listener fills, for tests that feed datagrams directly.
    pub fn state(&self) -> Rc<RefCell<State>> {
        self.state.clone()
    }

    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        let mut state = self.state.borrow_mut();
        let now = Instant::now();
        let forgotten = state.aggregate.forget_silent(now);
        if forgotten > 0 {
            log::info!("sma_energy_meter: forgot {forgotten} meter(s) silent for an hour");
        }
        let agg = &mut state.aggregate;
        let mut silent: Option<u32> = None;
        for m in &agg.meters {
            if m.interval.datagrams == 0 {
                // Reported every silent interval; the runner logs only the first of a streak.
                silent.get_or_insert(m.serial);
                if m.silent_intervals + 1 >= DOWN_AFTER_INTERVALS {
                    em.gauge("sma_em_up", &[("serial", &m.serial_text)], 0.0);
                }
                continue;
            }
            self.emit_meter(m, em);
        }
        for (reason, count) in REASONS.iter().zip(agg.rejected) {
            if count > 0 {
                em.gauge("sma_em_datagrams_rejected_total", &[("reason", reason)], count as f64);
            }
        }
        let any = agg.interval_datagrams() > 0;
        agg.reset_intervals();
        match &state.listening {
            Listening::Failed(e) => Err(InputError::new(format!("not listening: {e}"))),
            Listening::Open { what, since }
                if !any && now.saturating_duration_since(*since) >= SILENCE_GRACE =>
            {
                Err(InputError::new(format!(
                    "no energy-meter datagram received in this interval ({what})"
                )))
            }
            _ => {
                if let Some(serial) = silent {
                    em.partial_failure(InputError::new(format!(
                        "meter {serial} sent nothing in this interval"
                    )));
                }
                Ok(())
            }
        }
    }

    fn emit_meter(&self, m: &aggregate::Meter, em: &mut Emitter) {
        let serial = m.serial_text.as_str();
        // `manufacturer` and `model` declare the meter as a device to outputs that show
        // devices (the MQTT output's Home Assistant discovery), `version` is its firmware.
        em.gauge(
            "sma_em_info",
            &[
                ("manufacturer", "SMA"),
                ("model", "SMA Energy Meter"),
                ("serial", serial),
                ("susy_id", &m.susy_text),
                ("version", &m.version_text),
            ],
            1.0,
        );
        em.gauge("sma_em_up", &[("serial", serial)], 1.0);
        em.gauge("sma_em_datagrams_total", &[("serial", serial)], m.datagrams as f64);
        for (metric, accs) in AVERAGED.iter().zip(&m.interval.averaged) {
            for (phase, acc) in PHASES.iter().zip(accs) {
                let Some(mean) = acc.mean() else { continue };
                let labels = [("serial", serial), ("phase", *phase)];
                em.gauge(metric.name, &labels, mean / metric.per_unit);
                if self.min {
                    em.gauge_suffixed(metric.name, "_min", &labels, acc.min as f64 / metric.per_unit);
                }
                if self.max {
                    em.gauge_suffixed(metric.name, "_max", &labels, acc.max as f64 / metric.per_unit);
                }
            }
        }
        for ((name, _), last) in COUNTERS.iter().zip(&m.interval.last) {
            for (phase, value) in PHASES.iter().zip(last) {
                if let Some(v) = value {
                    em.gauge(name, &[("serial", serial), ("phase", phase)], *v as f64 / WS_PER_WH);
                }
            }
        }
    }
}

/// Receives into one reused buffer until the socket fails.
async fn receive(socket: Async<UdpSocket>, state: &RefCell<State>) -> std::io::Error {
    let mut buf = [0u8; RECV_BUF];
    loop {
        match socket.recv(&mut buf).await {
            Ok(n) => {
                state.borrow_mut().receive(&buf[..n], Instant::now());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return e,
        }
    }
}

/// Opens the socket (again after [`RETRY`] when that fails) and receives.
async fn listen(state: Rc<RefCell<State>>, port: u16, join: Join, procfs_root: PathBuf) {
    loop {
        let opened = socket::open(port, &join, &procfs_root)
            .and_then(|(s, what)| Ok((Async::new(s).map_err(|e| e.to_string())?, what)));
        match opened {
            Ok((sock, what)) => {
                log::info!("sma_energy_meter: listening on {what}");
                state.borrow_mut().listening = Listening::Open {
                    what,
                    since: Instant::now(),
                };
                let e = receive(sock, &state).await;
                state.borrow_mut().listening = Listening::Failed(format!("receiving: {e}"));
            }
            Err(e) => state.borrow_mut().listening = Listening::Failed(e),
        }
        smol::Timer::after(RETRY).await;
    }
}

impl Input for SmaEnergyMeter {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        crate::core::ready(self.collect_sync(em))
    }

    fn listen(&mut self) -> Option<ListenFuture> {
        Some(Box::pin(listen(
            self.state.clone(),
            self.port,
            self.join.clone(),
            self.procfs_root.clone(),
        )))
    }
}

#[cfg(test)]
mod tests;

//! `sma_inverter`: SMA PV and battery inverters read over Modbus TCP (SMA profile).
//!
//! Every inverter is read concurrently within one collection, each request bounded by
//! `timeout`, so an inverter that hangs delays nothing beyond its own timeout. An inverter
//! that stops answering (at night most do) is logged once when it goes silent and once when
//! it answers again, and is retried with a capped backoff in between.

pub mod conn;
pub mod plan;
pub mod registers;

use crate::config::units::Dur;
use crate::config::BuildError;
use crate::config::range;
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::BuildCtx;
use conn::{Function, LinkError, Retry};
use plan::Plan;
use registers::{Kind, Register, RegisterEntry, Role, SERIAL_REGISTER};
use serde::{Deserialize, Deserializer, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio_modbus::client::Context;
use tokio_modbus::slave::{Slave, SlaveContext};

/// The `serial` label while the inverter does not tell its serial number.
const UNKNOWN_SERIAL: &str = "unknown";

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# SMA PV and battery inverters over Modbus TCP (SMA profile; enable the Modbus server on
# the inverter first). Energy, AC/DC power, voltages, currents, frequency, temperature,
# condition and grid relay; a register that reads NaN (as at night) gives no sample.
- sma_inverter:
    inverters:
      - name: roof
        host: 192.168.1.50
        port: 502
        unit_id: 3          # or `auto`: asked from the inverter (register 42109 on unit 1)
        battery: false      # true for Sunny Boy Storage: SOC, battery power, voltage
    timeout: 3s             # bounds the connect and every request
    function: holding       # or `input` (0x04)
    registers: default      # or a list: [default, {address: 30805, type: s32, name: sma_inverter_reactive_power_var}]
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub inverters: Vec<InverterConfig>,
    #[serde(deserialize_with = "range::timeout")]
    pub timeout: Dur,
    pub function: Function,
    pub registers: Registers,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            inverters: Vec::new(),
            timeout: Dur(Duration::from_secs(3)),
            function: Function::Holding,
            registers: Registers::Preset(registers::Preset::Default),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InverterConfig {
    pub name: String,
    pub host: String,
    #[serde(default = "default_port")]
    #[serde(deserialize_with = "range::port")]
    pub port: u16,
    #[serde(default)]
    pub unit_id: UnitId,
    #[serde(default)]
    pub battery: bool,
}

fn default_port() -> u16 {
    502
}

/// `unit_id: 3` or `unit_id: auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitId {
    Fixed(u8),
    Auto,
}

impl Default for UnitId {
    fn default() -> Self {
        UnitId::Fixed(3)
    }
}

/// As it is written: the number, or `auto`.
impl Serialize for UnitId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UnitId::Fixed(n) => s.serialize_u8(*n),
            UnitId::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for UnitId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u8),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) if n > 0 => Ok(UnitId::Fixed(n)),
            Raw::Word(w) if w == "auto" => Ok(UnitId::Auto),
            _ => Err(serde::de::Error::custom(
                "unit_id must be a number from 1 to 255 or `auto`",
            )),
        }
    }
}

/// `registers: default` or a list of `default` and custom registers.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Registers {
    Preset(registers::Preset),
    List(Vec<RegisterEntry>),
}

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<SmaInverter, BuildError> {
    if cfg.inverters.is_empty() {
        return Err(BuildError::at("inverters", "list at least one inverter ({name, host})"));
    }
    if cfg.timeout.0.is_zero() {
        return Err(BuildError::at("timeout", "must be more than 0"));
    }
    let entries = match &cfg.registers {
        Registers::Preset(_) => None,
        Registers::List(l) => Some(l.as_slice()),
    };
    let mut inverters = Vec::with_capacity(cfg.inverters.len());
    for (i, inv) in cfg.inverters.iter().enumerate() {
        if inv.name.is_empty() || inv.host.is_empty() {
            return Err(BuildError::at("inverters", format!("item {i}: name and host are required")));
        }
        if cfg.inverters[..i].iter().any(|o| o.name == inv.name) {
            return Err(BuildError::at("inverters", format!("item {i}: name `{}` is used twice", inv.name)));
        }
        let regs = registers::resolve(entries, inv.battery).map_err(|e| BuildError::at("registers", e))?;
        inverters.push(Inverter::new(inv, regs));
    }
    Ok(SmaInverter {
        inverters,
        function: cfg.function,
        timeout: cfg.timeout.0,
    })
}

pub struct SmaInverter {
    inverters: Vec<Inverter>,
    function: Function,
    timeout: Duration,
}

impl SmaInverter {
    /// Requests sent in the last collection, over every inverter (for the benchmark).
    pub fn requests_last_cycle(&self) -> u32 {
        self.inverters.iter().map(|i| i.requests).sum()
    }

    /// Read requests per cycle in each inverter's current plan.
    pub fn planned_requests(&self) -> Vec<usize> {
        self.inverters.iter().map(|i| i.plan.blocks.len()).collect()
    }
}

/// One inverter: its connection, read plan and the values of the last cycle.
struct Inverter {
    name: String,
    host: String,
    port: u16,
    unit_id: UnitId,
    regs: Vec<Register>,
    plan: Plan,
    /// This cycle's value per register (scaled), `None` for NaN or not read.
    values: Vec<Option<f64>>,
    ctx: Option<Context>,
    serial: String,
    backoff: Retry,
    /// When it stopped answering; `None` while it answers (or before the first attempt).
    silent_since: Option<Instant>,
    answered: bool,
    /// A problem this cycle that is not silence (a malformed answer, a rejected register).
    problem: Option<String>,
    requests: u32,
}

impl Inverter {
    fn new(cfg: &InverterConfig, regs: Vec<Register>) -> Inverter {
        Inverter {
            name: cfg.name.clone(),
            host: cfg.host.clone(),
            port: cfg.port,
            unit_id: cfg.unit_id,
            plan: Plan::new(&regs),
            values: vec![None; regs.len()],
            regs,
            ctx: None,
            serial: String::new(),
            backoff: Retry::default(),
            silent_since: None,
            answered: false,
            problem: None,
            requests: 0,
        }
    }

    /// One cycle: connect if needed, then every block of the plan.
    async fn poll(&mut self, function: Function, timeout: Duration) {
        self.values.fill(None);
        self.answered = false;
        self.problem = None;
        self.requests = 0;
        if self.ctx.is_none() && !self.backoff.ready(Instant::now()) {
            return;
        }
        match self.read_all(function, timeout).await {
            Ok(()) => {
                self.answered = true;
                self.backoff.succeeded();
                if let Some(since) = self.silent_since.take() {
                    log::info!(
                        "sma_inverter: inverter {} answers again after {}s of silence",
                        self.name,
                        since.elapsed().as_secs()
                    );
                }
            }
            Err(e) => {
                self.ctx = None;
                self.values.fill(None);
                let wait = self.backoff.failed(Instant::now());
                if self.silent_since.is_none() {
                    self.silent_since = Some(Instant::now());
                    log::warn!(
                        "sma_inverter: inverter {} ({}:{}) is not answering: {e}; retrying with backoff (now {}s, at most 60s), quietly until it answers",
                        self.name, self.host, self.port, wait.as_secs()
                    );
                } else {
                    log::debug!("sma_inverter: inverter {}: {e}", self.name);
                }
            }
        }
    }

    async fn read_all(&mut self, function: Function, timeout: Duration) -> Result<(), LinkError> {
        if self.ctx.is_none() {
            self.open(timeout).await?;
        }
        if self.serial.is_empty() || self.serial == UNKNOWN_SERIAL {
            self.read_serial(function, timeout).await?;
        }
        let mut at = 0;
        while at < self.plan.blocks.len() {
            let block = self.plan.blocks[at].clone();
            self.requests += 1;
            let ctx = self.ctx.as_mut().expect("connected above");
            match conn::read(ctx, function, block.start, block.count, timeout).await? {
                Ok(words) => {
                    for i in block.regs.clone() {
                        if self.plan.rejected[i] {
                            continue;
                        }
                        let off = (self.regs[i].address - block.start) as usize;
                        self.values[i] = self.decode(i, &words[off..]);
                    }
                    at += 1;
                }
                Err(code) if !block.split => {
                    let ok = self.read_one_by_one(function, timeout, &block).await?;
                    if ok.iter().any(|&a| a) {
                        let rejected = self.plan.split(at, &self.regs, &ok);
                        log::info!(
                            "sma_inverter: inverter {} rejected registers {}..{} as one read ({code:?}); read one by one from now on, without {rejected:?}",
                            self.name,
                            block.start,
                            block.start as u32 + block.count as u32 - 1
                        );
                        // Its registers were just read: go on after the blocks it became.
                        at = self.first_block_after(block.regs.end);
                    } else {
                        // Every register refused: a state of the device, not of its model.
                        // Nothing is remembered; the block is asked again next cycle.
                        self.note(format!(
                            "registers {}..{} refused ({code:?}), also one by one",
                            block.start,
                            block.start as u32 + block.count as u32 - 1
                        ));
                        at += 1;
                    }
                }
                Err(code) => {
                    self.note(format!(
                        "registers {}..{} refused ({code:?})",
                        block.start,
                        block.start as u32 + block.count as u32 - 1
                    ));
                    at += 1;
                }
            }
        }
        Ok(())
    }

    /// Index of the first block whose registers come after register index `end`.
    fn first_block_after(&self, end: usize) -> usize {
        self.plan
            .blocks
            .iter()
            .position(|b| b.regs.start >= end)
            .unwrap_or(self.plan.blocks.len())
    }

    /// Reads each register of `block` on its own, keeping the values; which ones answered.
    async fn read_one_by_one(
        &mut self,
        function: Function,
        timeout: Duration,
        block: &plan::Block,
    ) -> Result<Vec<bool>, LinkError> {
        let mut ok = Vec::with_capacity(block.regs.len());
        for i in block.regs.clone() {
            let (address, words) = (self.regs[i].address, self.regs[i].kind.words());
            self.requests += 1;
            let ctx = self.ctx.as_mut().expect("connected");
            match conn::read(ctx, function, address, words, timeout).await? {
                Ok(w) => {
                    self.values[i] = self.decode(i, &w);
                    ok.push(true);
                }
                Err(_) => ok.push(false),
            }
        }
        Ok(ok)
    }

    /// Connects and learns the unit id if asked to.
    async fn open(&mut self, timeout: Duration) -> Result<(), LinkError> {
        let mut ctx = conn::connect(&self.host, self.port, timeout).await?;
        let unit = match self.unit_id {
            UnitId::Fixed(u) => u,
            UnitId::Auto => {
                self.requests += 1;
                conn::query_unit_id(&mut ctx, timeout).await?
            }
        };
        ctx.set_slave(Slave(unit));
        self.ctx = Some(ctx);
        self.serial.clear();
        Ok(())
    }

    /// Reads the serial number (30057) once per connection; while the inverter reports it
    /// as NaN (still booting) it is asked again each cycle and the label says `unknown`.
    async fn read_serial(&mut self, function: Function, timeout: Duration) -> Result<(), LinkError> {
        self.requests += 1;
        let ctx = self.ctx.as_mut().expect("connected");
        let serial = conn::read(ctx, function, SERIAL_REGISTER, 2, timeout).await?;
        self.serial = match serial.ok().map(|w| registers::decode(Kind::U32, &w)) {
            Some(Ok(Some(n))) => format!("{n}"),
            _ => UNKNOWN_SERIAL.into(),
        };
        Ok(())
    }

    /// The scaled value of register `i` from the words starting at its address.
    fn decode(&mut self, i: usize, words: &[u16]) -> Option<f64> {
        let reg = &self.regs[i];
        match registers::decode(reg.kind, words) {
            Ok(raw) => raw.map(|r| reg.scale.apply(r)),
            Err(e) => {
                let msg = format!("register {}: {e}", reg.address);
                self.note(msg);
                None
            }
        }
    }

    fn note(&mut self, msg: String) {
        if self.problem.is_none() {
            self.problem = Some(format!("inverter {}: {msg}", self.name));
        }
    }

    fn emit(&self, em: &mut Emitter<'_>) {
        let up = if self.answered { 1.0 } else { 0.0 };
        em.gauge("sma_inverter_up", &[("inverter", &self.name)], up);
        // Declares the inverter as a device (with the `inverter` label as its key, so
        // `sma_inverter_up` is the device's too) once it told its serial.
        if !self.serial.is_empty() && self.serial != UNKNOWN_SERIAL {
            let labels = [
                ("inverter", self.name.as_str()),
                ("manufacturer", "SMA"),
                ("model", "SMA Inverter"),
                ("serial", &self.serial),
            ];
            em.gauge("sma_inverter_info", &labels, 1.0);
        }
        let mut labels: Vec<(&str, &str)> = Vec::with_capacity(8);
        for (reg, value) in self.regs.iter().zip(&self.values) {
            let Some(value) = *value else { continue };
            labels.clear();
            labels.push(("inverter", &self.name));
            labels.push(("serial", &self.serial));
            labels.extend(reg.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            if reg.role == Role::Condition {
                labels.push(("condition", registers::condition_label(value)));
            }
            em.gauge(&reg.name, &labels, value);
        }
    }
}

impl Input for SmaInverter {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(async move {
            let (function, timeout) = (self.function, self.timeout);
            poll_all(&mut self.inverters, function, timeout).await;
            for inv in &mut self.inverters {
                inv.emit(em);
                if let Some(p) = inv.problem.take() {
                    em.partial_failure(InputError::new(p));
                }
            }
            Ok::<(), InputError>(())
        })
    }
}

/// Polls every inverter at once and waits for all; each is bounded by its own timeouts.
async fn poll_all(inverters: &mut [Inverter], function: Function, timeout: Duration) {
    let mut polls: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = inverters
        .iter_mut()
        .map(|inv| Box::pin(inv.poll(function, timeout)) as Pin<Box<dyn Future<Output = ()> + '_>>)
        .collect();
    let mut done = vec![false; polls.len()];
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (poll, done) in polls.iter_mut().zip(done.iter_mut()) {
            if !*done {
                *done = poll.as_mut().poll(cx).is_ready();
                all &= *done;
            }
        }
        if all {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests;

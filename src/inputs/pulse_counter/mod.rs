//! `pulse_counter`: S0 pulse outputs of energy meters on GPIO lines.
//!
//! Edges come from the kernel's GPIO character device (uAPI v2, [`uapi`]): one line
//! request for all pins with edge detection and the kernel's debounce, its fd read
//! through `smol::Async` in the input's listener. No polling, no thread per pin, no rppal
//! (rppal's interrupts start a thread per pin; it is only used for I2C). Any Linux board
//! with `/dev/gpiochipN` works. The arithmetic is in [`meter`], persistence in [`state`].

pub mod meter;
pub mod state;
pub mod uapi;

use crate::config::units::Millis;
use crate::config::range;
use crate::core::input::ListenFuture;
use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::BuildCtx;
use futures_lite::{AsyncRead, AsyncReadExt};
use meter::{Meter, Verdict};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;
use uapi::{LineEvent, LineRequest, EVENT_SIZE};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Energy meters with an S0 pulse output (DIN-rail meters) on GPIO lines: energy in Wh
# (kept across restarts in buffer_dir/pulse_counter/) and power in W. Needs read/write
# access to /dev/gpiochipN (group gpio on Raspberry Pi OS); no root.
- pulse_counter:
    chip: gpiochip0    # `gpiodetect` lists the chips; the Pi's header is gpiochip0
                       # (gpiochip4 on a Pi 5 with a kernel older than 6.6.45)
    debounce: 10ms     # the kernel drops edges not stable this long; S0 pulses last >= 30 ms
    edge: falling      # falling: S0+ on the pin, S0- on ground, bias pull_up
    bias: pull_up      # pull_up, pull_down, disabled or as_is
    pins:              # pin: the line offset on the chip (the BCM GPIO number on a Pi)
      - {pin: 17, name: heatpump, impulses_per_kwh: 1000}
";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeOption {
    #[default]
    Falling,
    Rising,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bias {
    #[default]
    PullUp,
    PullDown,
    Disabled,
    /// Leave the line's bias as the firmware or device tree set it.
    AsIs,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PinConfig {
    pub pin: u32,
    pub name: String,
    #[serde(default = "default_impulses_per_kwh")]
    pub impulses_per_kwh: f64,
}

fn default_impulses_per_kwh() -> f64 {
    1000.0
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// A chip name under /dev (`gpiochip0`) or a path.
    pub chip: String,
    #[serde(deserialize_with = "range::millis::<_, 0, { range::SECOND_MS }>")]
    pub debounce: Millis,
    pub edge: EdgeOption,
    pub bias: Bias,
    pub pins: Vec<PinConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            chip: "gpiochip0".into(),
            debounce: Millis(10),
            edge: EdgeOption::Falling,
            bias: Bias::PullUp,
            pins: Vec::new(),
        }
    }
}

/// How long the listener waits before requesting the lines again after a failure.
const RETRY: Duration = Duration::from_secs(30);
/// Events read per `read`; the kernel queues 16 per line by default.
const EVENTS_PER_READ: usize = 16;

/// What the listener needs to request the lines.
struct Setup {
    chip_path: PathBuf,
    offsets: Vec<u32>,
    flags: u64,
    debounce_us: u32,
    state_files: Vec<PathBuf>,
}

/// The state of one line, shared by the listener (writes) and `collect` (reads).
struct Pin {
    offset: u32,
    meter: Meter,
    /// Events the kernel dropped because its queue was full (gaps in `line_seqno`).
    lost: u64,
    last_line_seqno: Option<u32>,
    /// The energy last written to (or read from) the state file.
    saved_wh: Option<f64>,
    /// False when the state file exists but could not be read: it is then never
    /// overwritten, so a passing I/O or permission problem cannot erase the count.
    persist: bool,
}

enum Status {
    /// The listener has not run yet.
    Starting,
    Open,
    Failed(String),
}

struct Lines {
    pins: Vec<Pin>,
    status: Status,
    /// Whether the saved energies were loaded (the listener does it before counting).
    restored: bool,
    /// A problem to report once (a corrupt state file, a refused debounce).
    notice: Option<String>,
    /// Events that could not be decoded or name a line not requested.
    bad_events: u64,
}

pub struct PulseCounter {
    lines: Rc<RefCell<Lines>>,
    setup: Option<Setup>,
    chip: String,
    /// Per pin: the `pin` and `meter` label values.
    labels: Vec<(String, String)>,
    state_files: Vec<PathBuf>,
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<PulseCounter, String> {
    validate(cfg)?;
    let chip_path = if cfg.chip.starts_with('/') {
        PathBuf::from(&cfg.chip)
    } else {
        PathBuf::from("/dev").join(&cfg.chip)
    };
    let chip = chip_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| cfg.chip.clone());
    let debounce_ns = cfg.debounce.0.saturating_mul(1_000_000);
    let state_dir = ctx.state_dir.join("pulse_counter");
    let state_files: Vec<PathBuf> = cfg
        .pins
        .iter()
        .map(|p| state::file_of(&state_dir, &chip, p.pin))
        .collect();
    let pins = cfg
        .pins
        .iter()
        .map(|p| Pin {
            offset: p.pin,
            meter: Meter::new(p.impulses_per_kwh, debounce_ns),
            lost: 0,
            last_line_seqno: None,
            saved_wh: None,
            persist: true,
        })
        .collect();
    Ok(PulseCounter {
        lines: Rc::new(RefCell::new(Lines {
            pins,
            status: Status::Starting,
            restored: false,
            notice: None,
            bad_events: 0,
        })),
        setup: Some(Setup {
            chip_path,
            offsets: cfg.pins.iter().map(|p| p.pin).collect(),
            flags: line_flags(cfg.edge, cfg.bias),
            debounce_us: cfg.debounce.0.saturating_mul(1000).min(u32::MAX as u64) as u32,
            state_files: state_files.clone(),
        }),
        chip,
        labels: cfg
            .pins
            .iter()
            .map(|p| (p.pin.to_string(), p.name.clone()))
            .collect(),
        state_files,
    })
}

fn validate(cfg: &Config) -> Result<(), String> {
    if cfg.pins.is_empty() {
        return Err("`pins` is empty: list the meters, e.g. [{pin: 17, name: heatpump, impulses_per_kwh: 1000}]".into());
    }
    if cfg.pins.len() > uapi::LINES_MAX {
        return Err(format!(
            "{} pins; one chip request takes at most {}",
            cfg.pins.len(),
            uapi::LINES_MAX
        ));
    }
    for (i, p) in cfg.pins.iter().enumerate() {
        if p.name.is_empty() {
            return Err(format!("pins[{i}]: `name` is empty"));
        }
        if !(p.impulses_per_kwh.is_finite() && p.impulses_per_kwh > 0.0) {
            return Err(format!(
                "pins[{i}]: impulses_per_kwh must be a positive number (the meter's imp/kWh)"
            ));
        }
        if cfg.pins[..i].iter().any(|q| q.pin == p.pin) {
            return Err(format!("pins[{i}]: pin {} is listed twice", p.pin));
        }
    }
    if cfg.chip.is_empty() {
        return Err("`chip` is empty: name a GPIO chip such as gpiochip0".into());
    }
    Ok(())
}

fn line_flags(edge: EdgeOption, bias: Bias) -> u64 {
    let edge = match edge {
        EdgeOption::Falling => uapi::FLAG_EDGE_FALLING,
        EdgeOption::Rising => uapi::FLAG_EDGE_RISING,
    };
    let bias = match bias {
        Bias::PullUp => uapi::FLAG_BIAS_PULL_UP,
        Bias::PullDown => uapi::FLAG_BIAS_PULL_DOWN,
        Bias::Disabled => uapi::FLAG_BIAS_DISABLED,
        Bias::AsIs => 0,
    };
    uapi::FLAG_INPUT | edge | bias
}

/// CLOCK_MONOTONIC in ns: the clock of the kernel's event timestamps.
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

impl Lines {
    /// Loads each pin's saved energy. A damaged file is reported once and that pin counts
    /// from 0 (its counter resets, which rates handle) and overwrites it; a file that
    /// cannot be read is reported once and that pin counts from 0 without saving.
    fn restore(&mut self, files: &[PathBuf]) {
        for (pin, file) in self.pins.iter_mut().zip(files) {
            let msg = match state::load(file) {
                Ok(wh) => {
                    let wh = wh.unwrap_or(0.0);
                    pin.meter.restore(wh);
                    pin.saved_wh = Some(wh);
                    continue;
                }
                Err(e @ state::LoadError::Corrupt(_)) => {
                    format!("{}: {e}; counting from 0", file.display())
                }
                Err(e @ state::LoadError::Io(_)) => {
                    pin.persist = false;
                    format!("{e}; counting from 0 and not saving this meter until restart")
                }
            };
            log::warn!("pulse_counter: {msg}");
            self.notice.get_or_insert(msg);
        }
        self.restored = true;
    }

    fn on_event(&mut self, ev: &LineEvent) {
        let Some(pin) = self.pins.iter_mut().find(|p| p.offset == ev.offset) else {
            self.bad_events += 1;
            return;
        };
        if let Some(prev) = pin.last_line_seqno {
            let gap = ev.line_seqno.wrapping_sub(prev);
            pin.lost += u64::from(gap.saturating_sub(1));
        }
        pin.last_line_seqno = Some(ev.line_seqno);
        if pin.meter.on_pulse(ev.timestamp_ns) == Verdict::Bounced {
            log::trace!("pulse_counter: line {} bounced", ev.offset);
        }
    }
}

/// Reads edge events until the source fails or closes; returns why it stopped.
async fn read_events<R: AsyncRead + Unpin>(mut source: R, lines: &RefCell<Lines>) -> String {
    let mut buf = [0u8; EVENT_SIZE * EVENTS_PER_READ];
    loop {
        let n = match source.read(&mut buf).await {
            Ok(0) => return "the GPIO line request was closed".into(),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return format!("reading GPIO events: {e}"),
        };
        let mut lines = lines.borrow_mut();
        // The kernel hands out whole events only; a partial one would be a kernel bug.
        for chunk in buf[..n].chunks(EVENT_SIZE) {
            match LineEvent::parse(chunk) {
                Ok(ev) => lines.on_event(&ev),
                Err(e) => {
                    if lines.bad_events == 0 {
                        log::warn!("pulse_counter: {e}");
                    }
                    lines.bad_events += 1;
                }
            }
        }
    }
}

/// Opens the chip and requests the lines; the error says what to do about it.
fn open_lines(setup: &Setup, lines: &RefCell<Lines>) -> Result<smol::Async<File>, String> {
    let path = setup.chip_path.display();
    let chip = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&setup.chip_path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!(
                "{path} does not exist: `gpiodetect` (package gpiod) lists this board's GPIO chips"
            ),
            io::ErrorKind::PermissionDenied => format!(
                "{path}: permission denied: add the agent's user to group gpio (Raspberry Pi OS) or give it access with a udev rule; no root needed"
            ),
            _ => format!("{path}: {e}"),
        })?;
    let mut req = LineRequest::new(&setup.offsets, setup.flags, setup.debounce_us, "rtcollector");
    let line = match uapi::request_lines(&chip, &mut req) {
        Err(e) if setup.debounce_us > 0 && e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
            // Older or unusual kernels may refuse the debounce attribute: debounce by
            // timestamp only (the meter does that anyway).
            let mut plain = LineRequest::new(&setup.offsets, setup.flags, 0, "rtcollector");
            let line = uapi::request_lines(&chip, &mut plain);
            if line.is_ok() {
                let msg = format!("{path}: the kernel refused the debounce setting; debouncing by event time only");
                log::warn!("pulse_counter: {msg}");
                lines.borrow_mut().notice.get_or_insert(msg);
            }
            line
        }
        other => other,
    }
    .map_err(|e| request_error(&path.to_string(), &setup.offsets, &e))?;
    smol::Async::new(line).map_err(|e| format!("{path}: cannot wait on GPIO events: {e}"))
}

fn request_error(path: &str, offsets: &[u32], e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) if code == rustix::io::Errno::BUSY.raw_os_error() => format!(
            "{path}: line(s) {offsets:?} already in use by another program or driver (`gpioinfo` shows the consumer): {e}"
        ),
        Some(code) if code == rustix::io::Errno::INVAL.raw_os_error() => format!(
            "{path}: the kernel refused lines {offsets:?} (an offset beyond this chip's lines? `gpioinfo` lists them): {e}"
        ),
        // ENOSYS: qemu-user, which does not pass GPIO ioctls through, says this instead.
        Some(code)
            if code == rustix::io::Errno::NOTTY.raw_os_error()
                || code == rustix::io::Errno::NOSYS.raw_os_error() =>
        {
            format!(
            "{path}: not a GPIO chip, or a kernel without the GPIO character device v2 (5.10 or newer is needed): {e}"
        )
        }
        _ => format!("{path}: requesting lines {offsets:?}: {e}"),
    }
}

/// The listener: restores the counters, requests the lines and reads their events for
/// the input's whole life, requesting again after [`RETRY`] when that fails.
async fn listen_forever(setup: Setup, lines: Rc<RefCell<Lines>>) {
    lines.borrow_mut().restore(&setup.state_files);
    loop {
        let why = match open_lines(&setup, &lines) {
            Ok(line) => {
                {
                    let mut l = lines.borrow_mut();
                    l.status = Status::Open;
                    // A new request numbers its events from 1 again.
                    for p in l.pins.iter_mut() {
                        p.last_line_seqno = None;
                    }
                }
                read_events(line, &lines).await
            }
            Err(e) => e,
        };
        lines.borrow_mut().status = Status::Failed(why);
        smol::Timer::after(RETRY).await;
    }
}

impl PulseCounter {
    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        let now_ns = monotonic_ns();
        let mut lines = self.lines.borrow_mut();
        if let Some(notice) = lines.notice.take() {
            em.partial_failure(InputError(notice));
        }
        match &lines.status {
            Status::Open => {}
            Status::Starting => return Ok(()),
            Status::Failed(why) => return Err(InputError(why.clone())),
        }
        if !lines.restored {
            return Ok(());
        }
        for ((pin, (offset, name)), file) in
            lines.pins.iter_mut().zip(&self.labels).zip(&self.state_files)
        {
            // `name` is the metric name in the outputs, so the meter's name is the `meter` label.
            let labels = [("chip", &*self.chip), ("pin", &**offset), ("meter", &**name)];
            let energy = pin.meter.energy_wh();
            em.gauge("pulse_energy_wh", &labels, energy);
            if let Some(p) = pin.meter.power_w(now_ns) {
                em.gauge("pulse_power_w", &labels, p);
            }
            em.gauge("pulse_bounced", &labels, pin.meter.bounced() as f64);
            em.gauge("pulse_lost", &labels, pin.lost as f64);
            if let Err(e) = save_if_changed(pin, file) {
                em.partial_failure(InputError(e));
            }
        }
        if lines.bad_events > 0 {
            em.gauge("pulse_bad_events", &[("chip", &*self.chip)], lines.bad_events as f64);
        }
        Ok(())
    }

    fn save_all(&mut self) {
        let mut lines = self.lines.borrow_mut();
        if !lines.restored {
            return;
        }
        for (pin, file) in lines.pins.iter_mut().zip(&self.state_files) {
            if let Err(e) = save_if_changed(pin, file) {
                log::warn!("pulse_counter: {e}");
            }
        }
    }
}

/// Writes the pin's energy when it changed since it was loaded or last written: at most
/// once per collection, never per pulse (flash wear), and nothing for a meter without pulses.
fn save_if_changed(pin: &mut Pin, file: &std::path::Path) -> Result<(), String> {
    let energy = pin.meter.energy_wh();
    if !pin.persist || pin.saved_wh == Some(energy) {
        return Ok(());
    }
    state::save(file, energy).map_err(|e| format!("saving {}: {e}", file.display()))?;
    pin.saved_wh = Some(energy);
    Ok(())
}

impl Input for PulseCounter {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }

    fn listen(&mut self) -> Option<ListenFuture> {
        let setup = self.setup.take()?;
        Some(Box::pin(listen_forever(setup, self.lines.clone())))
    }
}

impl Drop for PulseCounter {
    /// Pulses since the last collection are saved at shutdown and on reload (the new
    /// input loads them when its listener starts, after this one is dropped).
    fn drop(&mut self) {
        self.save_all();
    }
}

#[cfg(test)]
mod tests;

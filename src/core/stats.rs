//! The agent's own counters, read by the `internal` input and by `check`/status output.
//!
//! Everything runs on one thread, so plain `Cell`s are enough.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

#[derive(Default)]
pub struct AgentStats {
    pub gathered: Cell<u64>,
    pub written: Cell<u64>,
    pub dropped: Cell<u64>,
    pub gather_errors: Cell<u64>,
    pub inputs: RefCell<Vec<Rc<InputStats>>>,
    pub outputs: RefCell<Vec<Rc<OutputStats>>>,
}

#[derive(Default)]
pub struct InputStats {
    pub name: String,
    pub gathered: Cell<u64>,
    pub errors: Cell<u64>,
    pub last_gather_ns: Cell<u64>,
    pub slow_runs: Cell<u64>,
}

#[derive(Default)]
pub struct OutputStats {
    pub name: String,
    pub written: Cell<u64>,
    pub dropped: Cell<u64>,
    pub batches: Cell<u64>,
    pub failed_batches: Cell<u64>,
    pub last_flush_ns: Cell<u64>,
    pub buffer_len: Cell<u64>,
    pub buffer_cap: Cell<u64>,
    /// The outage buffer (`core::spill`): samples waiting on disk, its files and bytes.
    pub disk_samples: Cell<u64>,
    pub disk_segments: Cell<u64>,
    pub disk_bytes: Cell<u64>,
    /// Running totals: bytes written to flash, samples dropped from it (cap reached,
    /// unreadable), frames skipped as damaged, I/O errors (each one means memory-only).
    pub disk_written_bytes: Cell<u64>,
    pub disk_dropped: Cell<u64>,
    pub disk_corrupt_frames: Cell<u64>,
    pub disk_io_errors: Cell<u64>,
    /// Whether the output's last write failed. Here rather than in the runner so that a
    /// reload, which builds a new runner, still logs the recovery of an output it fixed.
    pub down: Cell<bool>,
    /// The output's own counters (see `Output::counters`), by name.
    pub own: RefCell<Vec<(&'static str, u64)>>,
}

impl OutputStats {
    pub fn set_own(&self, name: &'static str, value: u64) {
        let mut own = self.own.borrow_mut();
        match own.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => own.push((name, value)),
        }
    }
}

pub fn add(c: &Cell<u64>, n: u64) {
    c.set(c.get().wrapping_add(n));
}

impl AgentStats {
    /// Stats for an input, kept across reloads when the name matches so counters stay monotonic.
    pub fn input(&self, name: &str) -> Rc<InputStats> {
        let mut all = self.inputs.borrow_mut();
        if let Some(s) = all.iter().find(|s| s.name == name) {
            return s.clone();
        }
        let s = Rc::new(InputStats {
            name: name.to_string(),
            ..Default::default()
        });
        all.push(s.clone());
        s
    }

    pub fn output(&self, name: &str) -> Rc<OutputStats> {
        let mut all = self.outputs.borrow_mut();
        if let Some(s) = all.iter().find(|s| s.name == name) {
            return s.clone();
        }
        let s = Rc::new(OutputStats {
            name: name.to_string(),
            ..Default::default()
        });
        all.push(s.clone());
        s
    }

    /// Forget inputs and outputs that a reload removed.
    pub fn retain(&self, inputs: &[String], outputs: &[String]) {
        self.inputs
            .borrow_mut()
            .retain(|s| inputs.contains(&s.name));
        self.outputs
            .borrow_mut()
            .retain(|s| outputs.contains(&s.name));
    }
}

//! The read plan: registers grouped into as few requests as possible.
//!
//! A request reads at most [`MAX_READ`] registers and never splits a 32- or 64-bit value
//! (SMA: the words of one value must be read in one operation). Registers in the gaps of a
//! block are read too: SMA answers them with NaN markers, which cost bytes but not a round
//! trip. A block the device rejects with an exception is read register by register once;
//! the registers that failed are remembered and not asked for again, the ones that worked
//! are read from then on in runs of strictly adjacent registers.

use super::registers::Register;
use std::ops::Range;

/// The most registers one Read Holding/Input Registers request may ask for (Modbus).
pub const MAX_READ: u32 = 125;

/// One request: registers `start .. start + count`, covering `regs` of the register list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub start: u16,
    pub count: u16,
    pub regs: Range<usize>,
    /// Made from the per-register reads after an exception: never split again.
    pub split: bool,
}

/// The blocks of one inverter and what its exceptions taught.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub blocks: Vec<Block>,
    /// Registers (by index) the device rejected on their own: never read again.
    pub rejected: Vec<bool>,
}

impl Plan {
    /// Greedy grouping of address-sorted, non-overlapping registers: each block takes every
    /// following register that still fits in [`MAX_READ`] words from its start, which gives
    /// the fewest blocks for points on a line.
    pub fn new(regs: &[Register]) -> Plan {
        Plan {
            blocks: group(regs, 0..regs.len(), false),
            rejected: vec![false; regs.len()],
        }
    }

    /// Replaces block `at` after it was read register by register: `ok[i]` tells whether
    /// register `block.regs.start + i` was answered. Returns the addresses rejected.
    pub fn split(&mut self, at: usize, regs: &[Register], ok: &[bool]) -> Vec<u16> {
        let block = self.blocks.remove(at);
        let mut rejected = Vec::new();
        for (i, &answered) in block.regs.clone().zip(ok) {
            if !answered {
                self.rejected[i] = true;
                rejected.push(regs[i].address);
            }
        }
        let adjacent = |a: &Register, b: &Register| b.address as u32 == a.end();
        let mut runs = Vec::new();
        let mut i = block.regs.start;
        while i < block.regs.end {
            if self.rejected[i] {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < block.regs.end && !self.rejected[j] && adjacent(&regs[j - 1], &regs[j]) {
                j += 1;
            }
            runs.extend(group(regs, i..j, true));
            i = j;
        }
        for (k, b) in runs.into_iter().enumerate() {
            self.blocks.insert(at + k, b);
        }
        rejected
    }

    /// Registers read per cycle, counting gaps (for the README figure).
    pub fn words(&self) -> u32 {
        self.blocks.iter().map(|b| b.count as u32).sum()
    }
}

fn group(regs: &[Register], range: Range<usize>, split: bool) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut i = range.start;
    while i < range.end {
        let start = regs[i].address;
        let mut j = i + 1;
        while j < range.end && regs[j].end() - start as u32 <= MAX_READ {
            j += 1;
        }
        blocks.push(Block {
            start,
            count: (regs[j - 1].end() - start as u32) as u16,
            regs: i..j,
            split,
        });
        i = j;
    }
    blocks
}

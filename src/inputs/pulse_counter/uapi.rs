//! The Linux GPIO character device, uAPI v2 (`<linux/gpio.h>`, kernel 5.10+): requesting
//! input lines with edge detection and debounce, and decoding the edge events read from
//! the line fd. Layouts are the kernel header's; tests check every size and offset.

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

pub const LINES_MAX: usize = 64;
pub const NUM_ATTRS_MAX: usize = 10;
pub const MAX_NAME_SIZE: usize = 32;

pub const FLAG_INPUT: u64 = 1 << 2;
pub const FLAG_EDGE_RISING: u64 = 1 << 4;
pub const FLAG_EDGE_FALLING: u64 = 1 << 5;
pub const FLAG_BIAS_PULL_UP: u64 = 1 << 8;
pub const FLAG_BIAS_PULL_DOWN: u64 = 1 << 9;
pub const FLAG_BIAS_DISABLED: u64 = 1 << 10;

pub const ATTR_ID_DEBOUNCE: u32 = 3;

pub const EVENT_RISING_EDGE: u32 = 1;
pub const EVENT_FALLING_EDGE: u32 = 2;

/// `union { __aligned_u64 flags; __aligned_u64 values; __u32 debounce_period_us; }`
#[repr(C)]
#[derive(Clone, Copy)]
pub union AttrValue {
    pub flags: u64,
    pub values: u64,
    pub debounce_period_us: u32,
}

/// `struct gpio_v2_line_attribute`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LineAttribute {
    pub id: u32,
    pub padding: u32,
    pub value: AttrValue,
}

/// `struct gpio_v2_line_config_attribute`: an attribute and the lines (bits of the
/// request's `offsets` index) it applies to.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LineConfigAttribute {
    pub attr: LineAttribute,
    pub mask: u64,
}

/// `struct gpio_v2_line_config`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LineConfig {
    pub flags: u64,
    pub num_attrs: u32,
    pub padding: [u32; 5],
    pub attrs: [LineConfigAttribute; NUM_ATTRS_MAX],
}

/// `struct gpio_v2_line_request`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LineRequest {
    pub offsets: [u32; LINES_MAX],
    pub consumer: [u8; MAX_NAME_SIZE],
    pub config: LineConfig,
    pub num_lines: u32,
    pub event_buffer_size: u32,
    pub padding: [u32; 5],
    pub fd: i32,
}

/// `GPIO_V2_GET_LINE_IOCTL = _IOWR(0xB4, 0x07, struct gpio_v2_line_request)`
pub const GET_LINE_IOCTL: rustix::ioctl::Opcode =
    rustix::ioctl::opcode::read_write::<LineRequest>(0xB4, 0x07);

/// Size of one `struct gpio_v2_line_event` as read from a line fd.
pub const EVENT_SIZE: usize = 48;

impl LineRequest {
    /// Input lines at `offsets` reporting `flags` edges, with the kernel's debounce when
    /// `debounce_us` is not zero. The kernel zeroes nothing: every padding is zero here.
    pub fn new(offsets: &[u32], flags: u64, debounce_us: u32, consumer: &str) -> Self {
        let zero_attr = LineConfigAttribute {
            attr: LineAttribute {
                id: 0,
                padding: 0,
                value: AttrValue { flags: 0 },
            },
            mask: 0,
        };
        let mut req = LineRequest {
            offsets: [0; LINES_MAX],
            consumer: [0; MAX_NAME_SIZE],
            config: LineConfig {
                flags,
                num_attrs: 0,
                padding: [0; 5],
                attrs: [zero_attr; NUM_ATTRS_MAX],
            },
            num_lines: offsets.len().min(LINES_MAX) as u32,
            event_buffer_size: 0,
            padding: [0; 5],
            fd: -1,
        };
        for (slot, &o) in req.offsets.iter_mut().zip(offsets) {
            *slot = o;
        }
        // Leave room for the terminating NUL.
        for (slot, b) in req.consumer[..MAX_NAME_SIZE - 1]
            .iter_mut()
            .zip(consumer.bytes())
        {
            *slot = b;
        }
        if debounce_us > 0 {
            let mut value = AttrValue { flags: 0 };
            value.debounce_period_us = debounce_us;
            req.config.attrs[0] = LineConfigAttribute {
                attr: LineAttribute {
                    id: ATTR_ID_DEBOUNCE,
                    padding: 0,
                    value,
                },
                mask: mask_of_all(req.num_lines),
            };
            req.config.num_attrs = 1;
        }
        req
    }
}

/// Bits 0..n set: "every line of this request".
fn mask_of_all(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Requests the lines from an open chip; returns the line fd the events are read from.
pub fn request_lines(chip: &File, req: &mut LineRequest) -> io::Result<File> {
    // SAFETY: GET_LINE_IOCTL is _IOWR with the size of LineRequest, whose layout is the
    // kernel's `struct gpio_v2_line_request` (checked in tests); the kernel writes `fd`.
    unsafe {
        rustix::ioctl::ioctl(
            chip,
            rustix::ioctl::Updater::<GET_LINE_IOCTL, LineRequest>::new(req),
        )?;
    }
    if req.fd < 0 {
        return Err(io::Error::other("the kernel returned no line fd"));
    }
    // SAFETY: on success the kernel installed a new fd that nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(req.fd) }))
}

mod field {
    use std::ops::Range;
    pub const TIMESTAMP_NS: Range<usize> = 0..8;
    pub const ID: Range<usize> = 8..12;
    pub const OFFSET: Range<usize> = 12..16;
    pub const SEQNO: Range<usize> = 16..20;
    pub const LINE_SEQNO: Range<usize> = 20..24;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    Rising,
    Falling,
}

/// One decoded `struct gpio_v2_line_event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineEvent {
    /// CLOCK_MONOTONIC nanoseconds (no `EVENT_CLOCK_*` flag is requested).
    pub timestamp_ns: u64,
    pub edge: Edge,
    /// The line offset on the chip.
    pub offset: u32,
    /// Sequence number across all lines of the request.
    pub seqno: u32,
    /// Sequence number of this line: a gap means the kernel's buffer overflowed.
    pub line_seqno: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventError {
    Truncated(usize),
    UnknownId(u32),
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventError::Truncated(n) => write!(f, "GPIO event of {n} bytes, {EVENT_SIZE} expected"),
            EventError::UnknownId(id) => write!(f, "GPIO event with unknown id {id}"),
        }
    }
}

fn u32_at(b: &[u8], r: std::ops::Range<usize>) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[r]);
    u32::from_ne_bytes(a)
}

impl LineEvent {
    /// Decodes one event; the kernel writes them in the machine's byte order.
    pub fn parse(b: &[u8]) -> Result<LineEvent, EventError> {
        if b.len() != EVENT_SIZE {
            return Err(EventError::Truncated(b.len()));
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[field::TIMESTAMP_NS]);
        let edge = match u32_at(b, field::ID) {
            EVENT_RISING_EDGE => Edge::Rising,
            EVENT_FALLING_EDGE => Edge::Falling,
            id => return Err(EventError::UnknownId(id)),
        };
        Ok(LineEvent {
            timestamp_ns: u64::from_ne_bytes(ts),
            edge,
            offset: u32_at(b, field::OFFSET),
            seqno: u32_at(b, field::SEQNO),
            line_seqno: u32_at(b, field::LINE_SEQNO),
        })
    }

    /// The bytes the kernel would write for this event (for tests and simulations).
    pub fn emit(&self, b: &mut [u8; EVENT_SIZE]) {
        b.fill(0);
        b[field::TIMESTAMP_NS].copy_from_slice(&self.timestamp_ns.to_ne_bytes());
        let id = match self.edge {
            Edge::Rising => EVENT_RISING_EDGE,
            Edge::Falling => EVENT_FALLING_EDGE,
        };
        b[field::ID].copy_from_slice(&id.to_ne_bytes());
        b[field::OFFSET].copy_from_slice(&self.offset.to_ne_bytes());
        b[field::SEQNO].copy_from_slice(&self.seqno.to_ne_bytes());
        b[field::LINE_SEQNO].copy_from_slice(&self.line_seqno.to_ne_bytes());
    }
}

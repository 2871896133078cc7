//! The Speedwire energy-meter datagram, decoded without allocating (smoltcp `wire` style:
//! every length is checked before it is used, then accessors read what was checked).
//!
//! Layout (big-endian; offsets from the start of the UDP payload):
//!
//! ```text
//!  0  "SMA\0"
//!  4  tag0 length (4), tag0 id (0x02A0)
//!  8  group (1; 0xFFFFFFFF in discovery requests)
//! 12  data2 length L (bytes from offset 16 up to the end tag), tag 0x0010
//! 16  protocol id 0x6069 (0x6081: two more bytes follow, and everything below shifts by 2)
//! 18  SUSy-ID, serial (u32), ticker in ms (u32)
//! 28  OBIS records up to 16 + L, each a 4-byte id (channel, index, type, tariff) and a
//!     4-byte (type 4) or 8-byte (type 8) value; the software version is id 90 00 00 00
//! 16+L  end tag 00 00 00 00; anything after it is ignored
//! ```

use std::net::Ipv4Addr;

/// The group every SMA energy meter and Home Manager sends to.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 12, 255, 254);
/// The port they send to.
pub const PORT: u16 = 9522;

pub const MAGIC: [u8; 4] = *b"SMA\0";
pub const TAG0_ID: u16 = 0x02A0;
pub const DATA2_TAG: u16 = 0x0010;
pub const DISCOVERY_GROUP: u32 = 0xFFFF_FFFF;
pub const PROTOCOL_EMETER: u16 = 0x6069;
/// Home Manager 2.0 unicast ("direct meter communication") on some firmware.
pub const PROTOCOL_EMETER_EXT: u16 = 0x6081;
/// The channel of the software-version record.
pub const VERSION_CHANNEL: u8 = 144;

/// Bytes before the data2 payload (magic, tag0, group, data2 length and tag).
const DATA2_START: usize = 16;
/// Bytes of the end tag.
const END_TAG_LEN: usize = 4;
/// Record values are kept for OBIS indexes below this; higher ones are skipped (every
/// index a meter documents is below 80).
pub const INDEXES: usize = 128;

/// Why a datagram was not decoded. The first three are other Speedwire traffic on the same
/// group or port and are expected; the rest are damaged energy-meter datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Does not start with `SMA\0`.
    NotSpeedwire,
    /// A discovery request (group 0xFFFFFFFF) or response, or another tag than data2.
    Discovery,
    /// Another protocol id: inverter traffic (0x6065), 0x6073, encrypted 0x6075, …
    OtherProtocol(u16),
    /// Fewer bytes than the header or the data2 length says.
    Truncated,
    /// tag0 is not `00 04 02 A0`.
    BadHeader,
    /// The data2 length cannot hold the meter header.
    BadLength,
    /// A record of a type whose length is unknown, or one that crosses the data2 end.
    BadRecord,
    /// The four bytes after the records are missing or not zero.
    NoEndTag,
}

/// Every kind of [`DecodeError`], for counters kept in an array.
pub const DECODE_ERRORS: usize = 8;

impl DecodeError {
    /// A short name for the `reason` label.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::NotSpeedwire => "not_speedwire",
            DecodeError::Discovery => "discovery",
            DecodeError::OtherProtocol(_) => "other_protocol",
            DecodeError::Truncated => "truncated",
            DecodeError::BadHeader => "bad_header",
            DecodeError::BadLength => "bad_length",
            DecodeError::BadRecord => "bad_record",
            DecodeError::NoEndTag => "no_end_tag",
        }
    }

    /// Other traffic that is expected on the group: not a sign of damage.
    pub fn is_other_traffic(&self) -> bool {
        matches!(
            self,
            DecodeError::NotSpeedwire | DecodeError::Discovery | DecodeError::OtherProtocol(_)
        )
    }

    /// A dense index below [`DECODE_ERRORS`].
    pub fn slot(&self) -> usize {
        match self {
            DecodeError::NotSpeedwire => 0,
            DecodeError::Discovery => 1,
            DecodeError::OtherProtocol(_) => 2,
            DecodeError::Truncated => 3,
            DecodeError::BadHeader => 4,
            DecodeError::BadLength => 5,
            DecodeError::BadRecord => 6,
            DecodeError::NoEndTag => 7,
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::OtherProtocol(p) => write!(f, "protocol id {p:#06x}"),
            e => f.write_str(e.reason()),
        }
    }
}

/// The raw values of one datagram by OBIS index: 4-byte "current average" records and
/// 8-byte counters, each with a presence bit (a 600-byte datagram has no frequency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Records {
    current: [u32; INDEXES],
    counter: [u64; INDEXES],
    has_current: u128,
    has_counter: u128,
}

impl Default for Records {
    fn default() -> Self {
        Records {
            current: [0; INDEXES],
            counter: [0; INDEXES],
            has_current: 0,
            has_counter: 0,
        }
    }
}

impl Records {
    /// The type-4 value of `index`, raw (0.1 W, mA, mV, 0.001, …).
    pub fn current(&self, index: u8) -> Option<u32> {
        let i = index as usize;
        (i < INDEXES && self.has_current & (1 << i) != 0).then(|| self.current[i])
    }

    /// The type-8 counter of `index`, raw (Ws, vars, VAs).
    pub fn counter(&self, index: u8) -> Option<u64> {
        let i = index as usize;
        (i < INDEXES && self.has_counter & (1 << i) != 0).then(|| self.counter[i])
    }

    /// How many values were kept.
    pub fn len(&self) -> u32 {
        self.has_current.count_ones() + self.has_counter.count_ones()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set_current(&mut self, index: u8, value: u32) {
        let i = index as usize;
        if i < INDEXES {
            self.current[i] = value;
            self.has_current |= 1 << i;
        }
    }

    fn set_counter(&mut self, index: u8, value: u64) {
        let i = index as usize;
        if i < INDEXES {
            self.counter[i] = value;
            self.has_counter |= 1 << i;
        }
    }
}

/// One decoded energy-meter datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub protocol: u16,
    pub susy_id: u16,
    pub serial: u32,
    /// Milliseconds since the meter started; wraps after about 49.7 days.
    pub ticker_ms: u32,
    /// Major, minor, build, release letter (`02 0F 07 52` = 2.15.7.R).
    pub version: Option<[u8; 4]>,
    pub records: Records,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    (be32(b, at) as u64) << 32 | be32(b, at + 4) as u64
}

/// Decodes one UDP payload. Pure: no allocation, no state; a datagram is either decoded
/// whole or rejected, never half.
pub fn decode(bytes: &[u8]) -> Result<Datagram, DecodeError> {
    if bytes.get(..4) != Some(&MAGIC[..]) {
        return Err(DecodeError::NotSpeedwire);
    }
    if bytes.len() < 12 {
        return Err(DecodeError::Truncated);
    }
    if be16(bytes, 4) != 4 || be16(bytes, 6) != TAG0_ID {
        return Err(DecodeError::BadHeader);
    }
    if be32(bytes, 8) == DISCOVERY_GROUP {
        return Err(DecodeError::Discovery);
    }
    if bytes.len() < DATA2_START + 2 {
        return Err(DecodeError::Truncated);
    }
    if be16(bytes, 14) != DATA2_TAG {
        return Err(DecodeError::Discovery);
    }
    let protocol = be16(bytes, 16);
    let header_len = match protocol {
        PROTOCOL_EMETER => 12,
        PROTOCOL_EMETER_EXT => 14,
        other => return Err(DecodeError::OtherProtocol(other)),
    };
    let data2_len = be16(bytes, 12) as usize;
    if data2_len < header_len {
        return Err(DecodeError::BadLength);
    }
    let data2_end = DATA2_START + data2_len;
    if bytes.len() < data2_end {
        return Err(DecodeError::Truncated);
    }
    if bytes.get(data2_end..data2_end + END_TAG_LEN) != Some(&[0u8; END_TAG_LEN][..]) {
        return Err(DecodeError::NoEndTag);
    }
    // 0x6081 has two more bytes after the protocol id; the rest is shifted by them.
    let meter = DATA2_START + 2 + (header_len - 12);
    let mut datagram = Datagram {
        protocol,
        susy_id: be16(bytes, meter),
        serial: be32(bytes, meter + 2),
        ticker_ms: be32(bytes, meter + 6),
        version: None,
        records: Records::default(),
    };
    walk_records(
        &bytes[DATA2_START + header_len..data2_end],
        &mut datagram,
    )?;
    Ok(datagram)
}

/// Walks the OBIS records, which must fill `records` exactly. Unknown indexes are skipped
/// by their type's length.
fn walk_records(records: &[u8], out: &mut Datagram) -> Result<(), DecodeError> {
    let mut at = 0;
    while at < records.len() {
        let id = records.get(at..at + 4).ok_or(DecodeError::BadRecord)?;
        let (channel, index, kind) = (id[0], id[1], id[2]);
        let value_len = match (channel, kind) {
            (VERSION_CHANNEL, 0) => 4,
            (_, 4) => 4,
            (_, 8) => 8,
            _ => return Err(DecodeError::BadRecord),
        };
        let value_at = at + 4;
        if records.len() < value_at + value_len {
            return Err(DecodeError::BadRecord);
        }
        match (channel, kind) {
            (VERSION_CHANNEL, 0) => {
                let v = &records[value_at..value_at + 4];
                out.version = Some([v[0], v[1], v[2], v[3]]);
            }
            (_, 4) => out.records.set_current(index, be32(records, value_at)),
            _ => out.records.set_counter(index, be64(records, value_at)),
        }
        at = value_at + value_len;
    }
    Ok(())
}

/// `2.15.7.R` from `02 0F 07 52`; a release byte that is not a letter is shown as a number.
pub fn version_text(v: [u8; 4]) -> String {
    if v[3].is_ascii_alphabetic() {
        format!("{}.{}.{}.{}", v[0], v[1], v[2], v[3] as char)
    } else {
        format!("{}.{}.{}.{}", v[0], v[1], v[2], v[3])
    }
}

//! Datagrams built as a meter builds them, for the tests, the benchmark and the fuzz
//! target. The agent itself never sends anything.

use super::wire::{
    DATA2_TAG, MAGIC, PROTOCOL_EMETER, PROTOCOL_EMETER_EXT, TAG0_ID, VERSION_CHANNEL,
};

/// A datagram under construction: header fields, then records in the order added.
#[derive(Debug, Clone)]
pub struct Builder {
    pub protocol: u16,
    pub group: u32,
    pub susy_id: u16,
    pub serial: u32,
    pub ticker_ms: u32,
    records: Vec<u8>,
}

impl Builder {
    /// An Energy Meter 2.0 (SUSy-ID 349) datagram without records.
    pub fn new(serial: u32, ticker_ms: u32) -> Self {
        Builder {
            protocol: PROTOCOL_EMETER,
            group: 1,
            susy_id: 349,
            serial,
            ticker_ms,
            records: Vec::new(),
        }
    }

    /// The datagram a meter sends: every index of the SMA table with `value(index, type)`
    /// as its raw value, the frequency (index 14) when `frequency`, then the version
    /// record. 600 bytes, or 608 with the frequency.
    pub fn full(serial: u32, ticker_ms: u32, frequency: bool, value: impl Fn(u8, u8) -> u64) -> Self {
        let mut b = Builder::new(serial, ticker_ms);
        let both = |b: &mut Builder, i: u8| {
            b.push_current(i, value(i, 4) as u32);
            b.push_counter(i, value(i, 8));
        };
        for i in [1, 2, 3, 4, 9, 10] {
            both(&mut b, i);
        }
        b.push_current(13, value(13, 4) as u32);
        if frequency {
            b.push_current(14, value(14, 4) as u32);
        }
        for phase in [20, 40, 60] {
            for i in [1, 2, 3, 4, 9, 10] {
                both(&mut b, phase + i);
            }
            for i in [11, 12, 13] {
                b.push_current(phase + i, value(phase + i, 4) as u32);
            }
        }
        b.push_version([2, 15, 7, b'R']);
        b
    }

    pub fn protocol(mut self, protocol: u16) -> Self {
        self.protocol = protocol;
        self
    }

    pub fn current(mut self, index: u8, raw: u32) -> Self {
        self.push_current(index, raw);
        self
    }

    pub fn counter(mut self, index: u8, raw: u64) -> Self {
        self.push_counter(index, raw);
        self
    }

    /// A record with any id and value bytes, for malformed datagrams.
    pub fn raw_record(mut self, id: [u8; 4], value: &[u8]) -> Self {
        self.records.extend_from_slice(&id);
        self.records.extend_from_slice(value);
        self
    }

    pub fn push_current(&mut self, index: u8, raw: u32) {
        self.records.extend_from_slice(&[0, index, 4, 0]);
        self.records.extend_from_slice(&raw.to_be_bytes());
    }

    pub fn push_counter(&mut self, index: u8, raw: u64) {
        self.records.extend_from_slice(&[0, index, 8, 0]);
        self.records.extend_from_slice(&raw.to_be_bytes());
    }

    pub fn push_version(&mut self, v: [u8; 4]) {
        self.records.extend_from_slice(&[VERSION_CHANNEL, 0, 0, 0]);
        self.records.extend_from_slice(&v);
    }

    /// The UDP payload: header, records, end tag.
    pub fn bytes(&self) -> Vec<u8> {
        let ext = self.protocol == PROTOCOL_EMETER_EXT;
        let meter_header = if ext { 14 } else { 12 };
        let data2_len = meter_header + self.records.len();
        let mut out = Vec::with_capacity(16 + data2_len + 4);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&TAG0_ID.to_be_bytes());
        out.extend_from_slice(&self.group.to_be_bytes());
        out.extend_from_slice(&(data2_len as u16).to_be_bytes());
        out.extend_from_slice(&DATA2_TAG.to_be_bytes());
        out.extend_from_slice(&self.protocol.to_be_bytes());
        if ext {
            out.extend_from_slice(&[0, 3]);
        }
        out.extend_from_slice(&self.susy_id.to_be_bytes());
        out.extend_from_slice(&self.serial.to_be_bytes());
        out.extend_from_slice(&self.ticker_ms.to_be_bytes());
        out.extend_from_slice(&self.records);
        out.extend_from_slice(&[0; 4]);
        out
    }
}

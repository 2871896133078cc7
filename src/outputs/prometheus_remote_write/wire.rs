//! Prometheus remote-write 1.0 on the wire: a `WriteRequest` protobuf, snappy-compressed
//! (the block format, not the framed one).
//!
//! Both are small enough to own: the message has three nested types, and the compressor is
//! the greedy one-hash-table scheme of the reference implementation's fast path. Writes
//! into buffers the output reuses; nothing here allocates once they are warm.

use crate::common::protobuf::{bytes, double, int, key, nested, varint, LEN};

/// `Label { name = 1; value = 2; }` as field `field` of the enclosing message.
pub fn label(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    nested(out, 1, |out| {
        repaired(out, 1, name, false, b"");
        bytes(out, 2, value);
    });
}

/// The `__name__` label: `base`, and `_total` for a counter.
pub fn name_label(out: &mut Vec<u8>, base: &str, total: bool) {
    nested(out, 1, |out| {
        bytes(out, 1, b"__name__");
        let suffix: &[u8] = if total { b"_total" } else { b"" };
        repaired(out, 2, base.as_bytes(), true, suffix);
    });
}

/// A name as Prometheus allows it (a receiver drops a series whose names it does not, and
/// still answers 2xx): every other character as `_`, a leading digit after a `_`; `:` only
/// in a metric name. Then `suffix`.
fn repaired(out: &mut Vec<u8>, field: u32, name: &[u8], metric: bool, suffix: &[u8]) {
    let lead = name.first().is_none_or(u8::is_ascii_digit);
    key(out, field, LEN);
    varint(out, (usize::from(lead) + name.len() + suffix.len()) as u64);
    if lead {
        out.push(b'_');
    }
    out.extend(name.iter().map(|&b| match b {
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => b,
        b':' if metric => b,
        _ => b'_',
    }));
    out.extend_from_slice(suffix);
}

/// `Sample { double value = 1; int64 timestamp = 2; }` as field 2 of a `TimeSeries`.
pub fn sample(out: &mut Vec<u8>, value: f64, ts_ms: i64) {
    nested(out, 2, |out| {
        double(out, 1, value);
        int(out, 2, ts_ms as u64);
    });
}

/// Compresses `input` in snappy's block format into `out` (cleared first); `table` is the
/// reused hash table.
pub fn snappy(input: &[u8], out: &mut Vec<u8>, table: &mut Vec<u32>) {
    out.clear();
    varint(out, input.len() as u64);
    // The reference implementation works on blocks of 64 KiB, so offsets fit two bytes.
    for block in input.chunks(1 << 16) {
        snappy_block(block, out, table);
    }
}

const HASH_BITS: u32 = 14;

fn load32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn hash(v: u32) -> usize {
    (v.wrapping_mul(0x1e35_a7bd) >> (32 - HASH_BITS)) as usize
}

fn snappy_block(src: &[u8], out: &mut Vec<u8>, table: &mut Vec<u32>) {
    table.clear();
    table.resize(1 << HASH_BITS, u32::MAX);
    let mut literal_start = 0;
    let mut i = 0;
    // A match needs four bytes to hash and the end is left to the literal.
    while src.len() >= 4 && i + 4 <= src.len() {
        let h = hash(load32(src, i));
        let candidate = table[h];
        table[h] = i as u32;
        let c = candidate as usize;
        if candidate != u32::MAX && load32(src, c) == load32(src, i) {
            literal(out, &src[literal_start..i]);
            let mut len = 4;
            while i + len < src.len() && src[c + len] == src[i + len] {
                len += 1;
            }
            copy(out, i - c, len);
            i += len;
            literal_start = i;
        } else {
            i += 1;
        }
    }
    literal(out, &src[literal_start..]);
}

fn literal(out: &mut Vec<u8>, lit: &[u8]) {
    if lit.is_empty() {
        return;
    }
    let n = lit.len() - 1;
    if n < 60 {
        out.push((n as u8) << 2);
    } else if n < 1 << 8 {
        out.extend_from_slice(&[60 << 2, n as u8]);
    } else {
        out.extend_from_slice(&[61 << 2, n as u8, (n >> 8) as u8]);
    }
    out.extend_from_slice(lit);
}

/// A copy with a two-byte offset, in pieces of at most 64 bytes.
fn copy(out: &mut Vec<u8>, offset: usize, mut len: usize) {
    while len > 0 {
        // Leave at least 4 for a last piece (a copy-2 is 1 to 64 long; keep it simple and
        // valid: any length from 1 works).
        let piece = len.min(64);
        out.push((((piece - 1) as u8) << 2) | 2);
        out.extend_from_slice(&(offset as u16).to_le_bytes());
        len -= piece;
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A snappy block decoder, for the tests only (Prometheus decodes in production).
    pub fn unsnappy(src: &[u8]) -> Vec<u8> {
        let (mut len, mut shift, mut i) = (0usize, 0, 0);
        loop {
            let b = src[i];
            i += 1;
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                break;
            }
        }
        let mut out = Vec::with_capacity(len);
        while i < src.len() {
            let tag = src[i];
            i += 1;
            match tag & 3 {
                0 => {
                    let mut n = usize::from(tag >> 2);
                    if n >= 60 {
                        let extra = n - 59;
                        n = (0..extra).map(|k| usize::from(src[i + k]) << (8 * k)).sum();
                        i += extra;
                    }
                    out.extend_from_slice(&src[i..i + n + 1]);
                    i += n + 1;
                }
                2 => {
                    let n = usize::from(tag >> 2) + 1;
                    let off = usize::from(u16::from_le_bytes([src[i], src[i + 1]]));
                    i += 2;
                    for _ in 0..n {
                        out.push(out[out.len() - off]);
                    }
                }
                t => panic!("tag type {t} not written by our compressor"),
            }
        }
        assert_eq!(out.len(), len);
        out
    }

    #[test]
    fn snappy_round_trips_and_compresses_repetition() {
        let mut out = Vec::new();
        let mut table = Vec::new();
        let mut text = Vec::new();
        for i in 0..5000 {
            text.extend_from_slice(format!("net_rx_bytes_total{{host=\"pi\",iface=\"eth{}\"}} {i}\n", i % 3).as_bytes());
        }
        for input in [&b""[..], b"a", b"abcd", b"abcdabcdabcdabcdabcd", &text, &[7u8; 200_000]] {
            snappy(input, &mut out, &mut table);
            assert_eq!(unsnappy(&out), input);
        }
        snappy(&text, &mut out, &mut table);
        assert!(out.len() * 4 < text.len(), "{} of {}", out.len(), text.len());
    }

    #[test]
    fn protobuf_fields_are_encoded_as_the_spec_says() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        label(&mut out, b"a", b"bc");
        // field 1, LEN, length 7: (field 1 "a") (field 2 "bc")
        assert_eq!(out, [0x0a, 7, 0x0a, 1, b'a', 0x12, 2, b'b', b'c']);
        out.clear();
        sample(&mut out, 1.5, 1000);
        let mut want = vec![0x12, 12, 0x09];
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0xe8, 0x07]);
        assert_eq!(out, want);
        // A body longer than one varint byte of length.
        out.clear();
        nested(&mut out, 1, |o| o.extend_from_slice(&[0; 300]));
        assert_eq!(&out[..3], &[0x0a, 0xac, 0x02]);
        assert_eq!(out.len(), 303);
    }
}

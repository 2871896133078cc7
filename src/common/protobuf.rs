//! The protobuf wire format, writing side only, for the push outputs' messages (remote
//! write's `WriteRequest`, OTLP's `ExportMetricsServiceRequest`): a handful of field
//! writers into a reused buffer instead of a protobuf crate and generated code.

pub const VARINT: u8 = 0;
pub const I64: u8 = 1;
pub const LEN: u8 = 2;

/// Appends `v` as a varint.
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a field key: field number and wire type.
pub fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field) << 3 | u64::from(wire));
}

/// Appends a length-delimited field whose body `body` writes. Three bytes are reserved for
/// the length and the body shifted when it needs more (over 2 MiB) or fewer.
pub fn nested(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    key(out, field, LEN);
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0]);
    body(out);
    let len = out.len() - at - 3;
    let mut prefix = [0u8; 10];
    let mut n = 0;
    let mut v = len as u64;
    while v >= 0x80 {
        prefix[n] = v as u8 | 0x80;
        v >>= 7;
        n += 1;
    }
    prefix[n] = v as u8;
    n += 1;
    out.splice(at..at + 3, prefix[..n].iter().copied());
}

/// A `string` or `bytes` field.
pub fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A `double` field.
pub fn double(out: &mut Vec<u8>, field: u32, v: f64) {
    key(out, field, I64);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A `fixed64` field.
pub fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, I64);
    out.extend_from_slice(&v.to_le_bytes());
}

/// An `int64`, `uint32`, `bool` or enum field.
pub fn int(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, VARINT);
    varint(out, v);
}

/// A message's fields as (field number, the bytes of a LEN field or the little-endian
/// bytes of a number), for tests that read back what was written.
#[cfg(test)]
pub fn read_fields(mut b: &[u8]) -> Vec<(u64, Vec<u8>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let x = b[0];
            *b = &b[1..];
            v |= u64::from(x & 0x7f) << shift;
            shift += 7;
            if x < 0x80 {
                return v;
            }
        }
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        let value = match key & 7 {
            0 => varint(&mut b).to_le_bytes().to_vec(),
            1 => {
                let v = b[..8].to_vec();
                b = &b[8..];
                v
            }
            2 => {
                let n = varint(&mut b) as usize;
                let v = b[..n].to_vec();
                b = &b[n..];
                v
            }
            w => panic!("wire type {w}"),
        };
        out.push((key >> 3, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_encoded_as_the_spec_says() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        nested(&mut out, 1, |o| {
            bytes(o, 1, b"a");
            bytes(o, 2, b"bc");
        });
        assert_eq!(out, [0x0a, 7, 0x0a, 1, b'a', 0x12, 2, b'b', b'c']);
        out.clear();
        nested(&mut out, 1, |o| o.extend_from_slice(&[0; 300]));
        assert_eq!(&out[..3], &[0x0a, 0xac, 0x02]);
        assert_eq!(out.len(), 303);
        out.clear();
        double(&mut out, 1, 1.5);
        fixed64(&mut out, 3, 7);
        int(&mut out, 2, 1000);
        let mut want = vec![0x09];
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.push(0x19);
        want.extend_from_slice(&7u64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0xe8, 0x07]);
        assert_eq!(out, want);
    }
}

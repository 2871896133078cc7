//! The part of BER (X.690) that SNMP uses: definite lengths, integers, octet strings, OIDs,
//! NULL, sequences and the SNMP application types.
//!
//! The reader never panics and never allocates: every length is checked against what is
//! left before a slice is taken (smoltcp `wire` style, as the Speedwire decoder), and
//! numbers wider than their type are errors, not truncations. The writer appends to a
//! reused `Vec` and patches lengths in place.

use std::fmt;

pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OBJECT_ID: u8 = 0x06;
pub const SEQUENCE: u8 = 0x30;
pub const IP_ADDRESS: u8 = 0x40;
pub const COUNTER32: u8 = 0x41;
pub const GAUGE32: u8 = 0x42;
pub const TIMETICKS: u8 = 0x43;
pub const OPAQUE: u8 = 0x44;
pub const COUNTER64: u8 = 0x46;
pub const NO_SUCH_OBJECT: u8 = 0x80;
pub const NO_SUCH_INSTANCE: u8 = 0x81;
pub const END_OF_MIB_VIEW: u8 = 0x82;

/// The most sub-identifiers an OID may have (RFC 2578 §3.5).
pub const MAX_ARCS: usize = 128;

/// Why bytes did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BerError {
    /// Fewer bytes than a header or a length says.
    Truncated,
    /// An indefinite length, or a length field longer than 4 bytes.
    BadLength,
    /// Another tag than the one the grammar wants here.
    UnexpectedTag { want: u8, got: u8 },
    /// An integer wider than its type, or an empty one.
    BadInteger,
    /// An OID with too many arcs, a sub-identifier over 32 bits, or cut in the middle.
    BadOid,
    /// Bytes left over inside a sequence that should have ended.
    TrailingBytes,
}

impl fmt::Display for BerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BerError::Truncated => f.write_str("truncated"),
            BerError::BadLength => f.write_str("bad length field"),
            BerError::UnexpectedTag { want, got } => {
                write!(f, "tag {got:#04x} where {want:#04x} belongs")
            }
            BerError::BadInteger => f.write_str("bad integer"),
            BerError::BadOid => f.write_str("bad object identifier"),
            BerError::TrailingBytes => f.write_str("trailing bytes"),
        }
    }
}

/// A cursor over BER bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Where the cursor is, as an offset into the bytes it was made from.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next tag without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn byte(&mut self) -> Result<u8, BerError> {
        let b = *self.buf.get(self.pos).ok_or(BerError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn length(&mut self) -> Result<usize, BerError> {
        let first = self.byte()?;
        if first < 0x80 {
            return Ok(first as usize);
        }
        let n = (first & 0x7f) as usize;
        // 0x80 is the indefinite form, which SNMP never uses; over 4 bytes cannot fit a datagram.
        if n == 0 || n > 4 {
            return Err(BerError::BadLength);
        }
        let mut len = 0usize;
        for _ in 0..n {
            len = (len << 8) | self.byte()? as usize;
        }
        Ok(len)
    }

    /// One TLV: its tag and content, the content checked to lie within the bytes.
    pub fn any(&mut self) -> Result<(u8, &'a [u8]), BerError> {
        let tag = self.byte()?;
        let len = self.length()?;
        let rest = self.buf.len() - self.pos;
        if len > rest {
            return Err(BerError::Truncated);
        }
        let content = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok((tag, content))
    }

    /// One TLV whose tag must be `want`: its content.
    pub fn expect(&mut self, want: u8) -> Result<&'a [u8], BerError> {
        let (got, content) = self.any()?;
        if got != want {
            return Err(BerError::UnexpectedTag { want, got });
        }
        Ok(content)
    }

    /// A constructed value of tag `want`, as a reader over its content.
    pub fn nested(&mut self, want: u8) -> Result<Reader<'a>, BerError> {
        self.expect(want).map(Reader::new)
    }

    pub fn integer(&mut self) -> Result<i64, BerError> {
        signed(self.expect(INTEGER)?)
    }

    pub fn octets(&mut self) -> Result<&'a [u8], BerError> {
        self.expect(OCTET_STRING)
    }

    pub fn oid(&mut self) -> Result<Oid, BerError> {
        Oid::from_ber(self.expect(OBJECT_ID)?)
    }

    /// Fails unless everything was read.
    pub fn finish(&self) -> Result<(), BerError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(BerError::TrailingBytes)
        }
    }
}

/// A two's complement integer of at most 8 bytes.
pub fn signed(content: &[u8]) -> Result<i64, BerError> {
    if content.is_empty() || content.len() > 8 {
        return Err(BerError::BadInteger);
    }
    let mut v: i64 = if content[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in content {
        v = (v << 8) | b as i64;
    }
    Ok(v)
}

/// An unsigned value (Counter32, Gauge32, TimeTicks, Counter64): up to 8 bytes, or 9 with a
/// leading zero; `max` is the largest value of its type.
pub fn unsigned(content: &[u8], max: u64) -> Result<u64, BerError> {
    let digits = match content {
        [] => return Err(BerError::BadInteger),
        [0, rest @ ..] if !rest.is_empty() => rest,
        all => all,
    };
    if digits.len() > 8 {
        return Err(BerError::BadInteger);
    }
    // A 32-bit type sent as a negative number (some agents do) is read as its bit pattern.
    let v = digits.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64);
    let v = if digits.len() == content.len() && digits[0] & 0x80 != 0 && max == u32::MAX as u64 {
        v & max
    } else {
        v
    };
    if v > max {
        return Err(BerError::BadInteger);
    }
    Ok(v)
}

/// An object identifier, kept inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Oid {
    len: u8,
    arcs: [u32; MAX_ARCS],
}

impl Oid {
    pub const EMPTY: Oid = Oid {
        len: 0,
        arcs: [0; MAX_ARCS],
    };

    /// From arcs; `None` when there are more than [`MAX_ARCS`].
    pub fn from_arcs(arcs: &[u32]) -> Option<Oid> {
        let mut o = Oid::EMPTY;
        for &a in arcs {
            o.push(a)?;
        }
        Some(o)
    }

    pub fn arcs(&self) -> &[u32] {
        &self.arcs[..self.len as usize]
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, arc: u32) -> Option<()> {
        let slot = self.arcs.get_mut(self.len as usize)?;
        *slot = arc;
        self.len += 1;
        Some(())
    }

    /// Whether `self` lies strictly under `prefix`.
    pub fn is_under(&self, prefix: &Oid) -> bool {
        self.len > prefix.len && self.arcs().starts_with(prefix.arcs())
    }

    /// The arcs after `prefix` (empty when `self` is not under it).
    pub fn suffix(&self, prefix: &Oid) -> &[u32] {
        if self.is_under(prefix) {
            &self.arcs()[prefix.len()..]
        } else {
            &[]
        }
    }

    fn from_ber(content: &[u8]) -> Result<Oid, BerError> {
        let mut o = Oid::EMPTY;
        let mut value: u64 = 0;
        let mut first = true;
        let mut in_arc = false;
        for &b in content {
            value = (value << 7) | (b & 0x7f) as u64;
            in_arc = true;
            if value > u32::MAX as u64 {
                return Err(BerError::BadOid);
            }
            if b & 0x80 != 0 {
                continue;
            }
            in_arc = false;
            if first {
                // The first byte holds two arcs: 40 * x + y, x at most 2.
                first = false;
                let x = (value / 40).min(2) as u32;
                let y = (value - x as u64 * 40) as u32;
                o.push(x).ok_or(BerError::BadOid)?;
                o.push(y).ok_or(BerError::BadOid)?;
            } else {
                o.push(value as u32).ok_or(BerError::BadOid)?;
            }
            value = 0;
        }
        if in_arc || o.is_empty() {
            return Err(BerError::BadOid);
        }
        Ok(o)
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.arcs().iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

impl PartialOrd for Oid {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Lexicographic by arc, as agents order a walk.
impl Ord for Oid {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.arcs().cmp(other.arcs())
    }
}

/// Appends BER to a reused buffer. A constructed value is opened with [`Writer::open`] and
/// closed with [`Writer::close`], which writes its length in front of the content.
pub struct Writer<'a> {
    pub buf: &'a mut Vec<u8>,
}

/// Where a constructed value's content starts (from [`Writer::open`]).
#[derive(Clone, Copy)]
pub struct Open(usize);

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Writer { buf }
    }

    /// The tag, and one byte reserved for the length (moved if the length needs more).
    pub fn open(&mut self, tag: u8) -> Open {
        self.buf.push(tag);
        self.buf.push(0);
        Open(self.buf.len())
    }

    pub fn close(&mut self, open: Open) {
        let len = self.buf.len() - open.0;
        let mut head = [0u8; 5];
        let n = length_bytes(len, &mut head);
        let at = open.0 - 1;
        self.buf[at] = head[0];
        if n > 1 {
            // Rare (content over 127 bytes): make room for the longer length form.
            self.buf.splice(at + 1..at + 1, head[1..n].iter().copied());
        }
    }

    pub fn tlv(&mut self, tag: u8, content: &[u8]) {
        self.buf.push(tag);
        let mut head = [0u8; 5];
        let n = length_bytes(content.len(), &mut head);
        self.buf.extend_from_slice(&head[..n]);
        self.buf.extend_from_slice(content);
    }

    pub fn integer(&mut self, v: i64) {
        let bytes = v.to_be_bytes();
        // The shortest two's complement form: drop leading bytes that only repeat the sign.
        let mut start = 0;
        while start < 7 {
            let (b, next) = (bytes[start], bytes[start + 1]);
            if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
                start += 1;
            } else {
                break;
            }
        }
        self.tlv(INTEGER, &bytes[start..]);
    }

    pub fn octets(&mut self, v: &[u8]) {
        self.tlv(OCTET_STRING, v);
    }

    pub fn null(&mut self) {
        self.tlv(NULL, &[]);
    }

    pub fn oid(&mut self, oid: &Oid) {
        let open = self.open(OBJECT_ID);
        let arcs = oid.arcs();
        let (x, y) = (
            arcs.first().copied().unwrap_or(0),
            arcs.get(1).copied().unwrap_or(0),
        );
        self.base128(x as u64 * 40 + y as u64);
        for &a in arcs.iter().skip(2) {
            self.base128(a as u64);
        }
        self.close(open);
    }

    fn base128(&mut self, v: u64) {
        let mut groups = [0u8; 10];
        let mut n = 0;
        let mut v = v;
        loop {
            groups[n] = (v & 0x7f) as u8;
            n += 1;
            v >>= 7;
            if v == 0 {
                break;
            }
        }
        for i in (0..n).rev() {
            let more = if i > 0 { 0x80 } else { 0 };
            self.buf.push(groups[i] | more);
        }
    }
}

/// The length field for `len` into `out`; how many bytes it took.
fn length_bytes(len: usize, out: &mut [u8; 5]) -> usize {
    if len < 0x80 {
        out[0] = len as u8;
        return 1;
    }
    let be = (len as u32).to_be_bytes();
    let skip = be.iter().take_while(|&&b| b == 0).count();
    let n = 4 - skip;
    out[0] = 0x80 | n as u8;
    out[1..=n].copy_from_slice(&be[skip..]);
    n + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(s: &str) -> Oid {
        let arcs: Vec<u32> = s.split('.').map(|a| a.parse().unwrap()).collect();
        Oid::from_arcs(&arcs).unwrap()
    }

    #[test]
    fn integers_round_trip_in_their_shortest_form() {
        for v in [0i64, 1, 127, 128, 255, 256, -1, -128, -129, i32::MAX as i64, i64::MIN, i64::MAX] {
            let mut buf = Vec::new();
            Writer::new(&mut buf).integer(v);
            let mut r = Reader::new(&buf);
            assert_eq!(r.integer().unwrap(), v, "{v}: {buf:02x?}");
            assert!(r.is_empty());
        }
        let mut buf = Vec::new();
        Writer::new(&mut buf).integer(128);
        assert_eq!(buf, [0x02, 0x02, 0x00, 0x80]);
    }

    #[test]
    fn oids_round_trip() {
        for s in ["1.3.6.1.2.1.1.3.0", "1.3.6.1.4.1.2021.10.1.3.1", "2.999.4294967295", "0.0"] {
            let o = oid(s);
            let mut buf = Vec::new();
            Writer::new(&mut buf).oid(&o);
            assert_eq!(Reader::new(&buf).oid().unwrap(), o, "{s}");
            assert_eq!(o.to_string(), s);
        }
        // sysUpTime.0 as net-snmp sends it.
        let bytes = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x03, 0x00];
        assert_eq!(Reader::new(&bytes).oid().unwrap(), oid("1.3.6.1.2.1.1.3.0"));
    }

    #[test]
    fn long_lengths_are_written_and_read() {
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf);
        let open = w.open(SEQUENCE);
        w.octets(&[7u8; 300]);
        w.close(open);
        assert_eq!(&buf[..4], &[0x30, 0x82, 0x01, 0x30]);
        let mut r = Reader::new(&buf);
        let mut seq = r.nested(SEQUENCE).unwrap();
        assert_eq!(seq.octets().unwrap().len(), 300);
        assert!(seq.finish().is_ok() && r.finish().is_ok());
    }

    #[test]
    fn bad_bytes_are_errors() {
        assert_eq!(Reader::new(&[0x02]).integer(), Err(BerError::Truncated));
        assert_eq!(Reader::new(&[0x02, 0x05, 1]).integer(), Err(BerError::Truncated));
        assert_eq!(Reader::new(&[0x02, 0x80, 1]).integer(), Err(BerError::BadLength));
        assert_eq!(Reader::new(&[0x02, 0x00]).integer(), Err(BerError::BadInteger));
        assert_eq!(Reader::new(&[0x02, 0x85, 0, 0, 0, 0, 1]).integer(), Err(BerError::BadLength));
        assert_eq!(Reader::new(&[0x06, 0x02, 0x2b, 0x86]).oid(), Err(BerError::BadOid));
        assert_eq!(
            Reader::new(&[0x06, 0x06, 0x2b, 0x90, 0x80, 0x80, 0x80, 0x00]).oid(),
            Err(BerError::BadOid),
            "an arc over 32 bits"
        );
        assert_eq!(
            Reader::new(&[0x04, 0x00]).integer(),
            Err(BerError::UnexpectedTag { want: INTEGER, got: OCTET_STRING })
        );
    }

    #[test]
    fn unsigned_types_take_a_leading_zero_and_reject_overflow() {
        assert_eq!(unsigned(&[0x00, 0xff, 0xff, 0xff, 0xff], u32::MAX as u64), Ok(u32::MAX as u64));
        assert_eq!(unsigned(&[0xff, 0xff, 0xff, 0xfe], u32::MAX as u64), Ok(0xffff_fffe));
        assert_eq!(unsigned(&[0x01, 0, 0, 0, 0], u32::MAX as u64), Err(BerError::BadInteger));
        assert_eq!(unsigned(&[0x00, 0xff, 0, 0, 0, 0, 0, 0, 1], u64::MAX), Ok(0xff00_0000_0000_0001));
        assert_eq!(unsigned(&[], u64::MAX), Err(BerError::BadInteger));
    }
}

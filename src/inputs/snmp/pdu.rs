//! SNMP messages: v1/v2c community messages and v3 messages (RFC 3412, 3416), written into
//! a reused buffer and read without allocating or panicking.

use super::ber::{self, BerError, Oid, Reader, Writer};

pub const GET: u8 = 0xa0;
pub const GET_NEXT: u8 = 0xa1;
pub const RESPONSE: u8 = 0xa2;
pub const GET_BULK: u8 = 0xa5;
pub const REPORT: u8 = 0xa8;

/// v3 msgFlags bits.
pub const FLAG_AUTH: u8 = 1;
pub const FLAG_PRIV: u8 = 2;
pub const FLAG_REPORTABLE: u8 = 4;
/// The user-based security model's number.
pub const USM: i64 = 3;
/// The largest message we accept, told to the agent as msgMaxSize.
pub const MAX_MESSAGE: usize = 65507;

/// A value as the agent sent it; strings borrow the message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Integer(i64),
    Octets(&'a [u8]),
    Null,
    ObjectId,
    IpAddress([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Opaque(&'a [u8]),
    Counter64(u64),
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

impl<'a> Value<'a> {
    fn decode(tag: u8, c: &'a [u8]) -> Result<Value<'a>, BerError> {
        const U32: u64 = u32::MAX as u64;
        Ok(match tag {
            ber::INTEGER => Value::Integer(ber::signed(c)?),
            ber::OCTET_STRING => Value::Octets(c),
            ber::NULL => Value::Null,
            ber::OBJECT_ID => Value::ObjectId,
            ber::IP_ADDRESS => Value::IpAddress(c.try_into().map_err(|_| BerError::BadInteger)?),
            ber::COUNTER32 => Value::Counter32(ber::unsigned(c, U32)? as u32),
            ber::GAUGE32 => Value::Gauge32(ber::unsigned(c, U32)? as u32),
            ber::TIMETICKS => Value::TimeTicks(ber::unsigned(c, U32)? as u32),
            ber::OPAQUE => Value::Opaque(c),
            ber::COUNTER64 => Value::Counter64(ber::unsigned(c, u64::MAX)?),
            ber::NO_SUCH_OBJECT => Value::NoSuchObject,
            ber::NO_SUCH_INSTANCE => Value::NoSuchInstance,
            ber::END_OF_MIB_VIEW => Value::EndOfMibView,
            got => {
                return Err(BerError::UnexpectedTag {
                    want: ber::INTEGER,
                    got,
                })
            }
        })
    }

    /// One of v2's exceptions: the agent has no value here.
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView
        )
    }
}

/// A received PDU; its variable bindings are read one by one.
#[derive(Debug, Clone)]
pub struct Pdu<'a> {
    pub kind: u8,
    pub request_id: i64,
    pub error_status: i64,
    pub error_index: i64,
    varbinds: Reader<'a>,
}

impl<'a> Pdu<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Pdu<'a>, BerError> {
        let (kind, content) = r.any()?;
        if !matches!(kind, RESPONSE | REPORT) {
            return Err(BerError::UnexpectedTag {
                want: RESPONSE,
                got: kind,
            });
        }
        let mut p = Reader::new(content);
        let request_id = p.integer()?;
        let error_status = p.integer()?;
        let error_index = p.integer()?;
        let varbinds = p.nested(ber::SEQUENCE)?;
        p.finish()?;
        Ok(Pdu {
            kind,
            request_id,
            error_status,
            error_index,
            varbinds,
        })
    }

    /// The next variable binding, `None` after the last.
    pub fn next_varbind(&mut self) -> Option<Result<(Oid, Value<'a>), BerError>> {
        if self.varbinds.is_empty() {
            return None;
        }
        Some(self.read_varbind())
    }

    fn read_varbind(&mut self) -> Result<(Oid, Value<'a>), BerError> {
        let mut vb = self.varbinds.nested(ber::SEQUENCE)?;
        let oid = vb.oid()?;
        let (tag, content) = vb.any()?;
        let value = Value::decode(tag, content)?;
        vb.finish()?;
        Ok((oid, value))
    }
}

/// What a request asks: the PDU type, and for GETBULK the max-repetitions.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub kind: u8,
    pub request_id: i32,
    pub max_repetitions: i64,
}

/// The PDU of a request: every OID with a NULL value.
pub fn write_pdu(w: &mut Writer<'_>, ask: Ask, oids: &[Oid]) {
    let pdu = w.open(ask.kind);
    w.integer(ask.request_id as i64);
    if ask.kind == GET_BULK {
        w.integer(0); // non-repeaters
        w.integer(ask.max_repetitions);
    } else {
        w.integer(0);
        w.integer(0);
    }
    let list = w.open(ber::SEQUENCE);
    for oid in oids {
        let vb = w.open(ber::SEQUENCE);
        w.oid(oid);
        w.null();
        w.close(vb);
    }
    w.close(list);
    w.close(pdu);
}

/// A v1 (`version` 0) or v2c (1) message into `buf` (cleared first).
pub fn write_community(buf: &mut Vec<u8>, version: i64, community: &[u8], ask: Ask, oids: &[Oid]) {
    buf.clear();
    let mut w = Writer::new(buf);
    let msg = w.open(ber::SEQUENCE);
    w.integer(version);
    w.octets(community);
    write_pdu(&mut w, ask, oids);
    w.close(msg);
}

/// A v1/v2c answer: checks the version and community it came with.
pub fn read_community<'a>(
    bytes: &'a [u8],
    version: i64,
    community: &[u8],
) -> Result<Pdu<'a>, MessageError> {
    let mut outer = Reader::new(bytes);
    let mut msg = outer.nested(ber::SEQUENCE)?;
    if msg.integer()? != version {
        return Err(MessageError::Foreign);
    }
    if msg.octets()? != community {
        return Err(MessageError::Foreign);
    }
    let pdu = Pdu::read(&mut msg)?;
    msg.finish()?;
    Ok(pdu)
}

/// Why a received datagram was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    Ber(BerError),
    /// Another version, community, security model or message id: not an answer to us.
    Foreign,
    /// Its HMAC does not verify.
    BadDigest,
    /// Its encrypted part does not decrypt into a scoped PDU.
    Undecryptable,
}

impl From<BerError> for MessageError {
    fn from(e: BerError) -> Self {
        MessageError::Ber(e)
    }
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::Ber(e) => write!(f, "malformed message: {e}"),
            MessageError::Foreign => f.write_str("an answer to another request"),
            MessageError::BadDigest => f.write_str("an answer whose authentication does not verify"),
            MessageError::Undecryptable => f.write_str("an answer that does not decrypt"),
        }
    }
}

/// The USM security parameters of a v3 message.
#[derive(Debug, Clone, Copy)]
pub struct SecParams<'a> {
    pub engine_id: &'a [u8],
    pub boots: i64,
    pub time: i64,
    pub user: &'a [u8],
    pub auth: &'a [u8],
    pub privacy: &'a [u8],
    /// Where `auth`'s bytes lie in the whole message (to zero them for the HMAC check).
    pub auth_at: usize,
}

/// A v3 message as received, before its scoped PDU is verified and decrypted.
#[derive(Debug, Clone, Copy)]
pub struct V3Message<'a> {
    pub msg_id: i64,
    pub flags: u8,
    pub sec: SecParams<'a>,
    /// The scoped PDU: plain (a SEQUENCE's content) or the encrypted octets.
    pub scoped: &'a [u8],
    pub encrypted: bool,
}

/// Offset of `inner` within `outer`: both come from the same datagram.
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize)
}

pub fn read_v3(bytes: &[u8]) -> Result<V3Message<'_>, MessageError> {
    let mut outer = Reader::new(bytes);
    let mut msg = outer.nested(ber::SEQUENCE)?;
    if msg.integer()? != 3 {
        return Err(MessageError::Foreign);
    }
    let mut global = msg.nested(ber::SEQUENCE)?;
    let msg_id = global.integer()?;
    let _max_size = global.integer()?;
    let flags = *global.octets()?.first().ok_or(BerError::Truncated)?;
    if global.integer()? != USM {
        return Err(MessageError::Foreign);
    }
    let mut sp = Reader::new(msg.octets()?).nested(ber::SEQUENCE)?;
    let engine_id = sp.octets()?;
    let boots = sp.integer()?;
    let time = sp.integer()?;
    let user = sp.octets()?;
    let auth = sp.octets()?;
    let privacy = sp.octets()?;
    let (tag, scoped) = msg.any()?;
    let encrypted = match tag {
        ber::SEQUENCE => false,
        ber::OCTET_STRING => true,
        got => {
            return Err(BerError::UnexpectedTag {
                want: ber::SEQUENCE,
                got,
            }
            .into())
        }
    };
    msg.finish()?;
    Ok(V3Message {
        msg_id,
        flags,
        sec: SecParams {
            engine_id,
            boots,
            time,
            user,
            auth,
            privacy,
            auth_at: offset_in(bytes, auth),
        },
        scoped,
        encrypted,
    })
}

/// The PDU inside a scoped PDU's content (contextEngineID, contextName, PDU).
pub fn read_scoped(content: &[u8]) -> Result<Pdu<'_>, MessageError> {
    let mut r = Reader::new(content);
    let _context_engine = r.octets()?;
    let _context_name = r.octets()?;
    Ok(Pdu::read(&mut r)?)
}

/// A decrypted scoped PDU (a whole SEQUENCE, DES padding after it ignored).
pub fn read_decrypted(plain: &[u8]) -> Result<Pdu<'_>, MessageError> {
    let mut r = Reader::new(plain);
    let content = r.expect(ber::SEQUENCE).map_err(|_| MessageError::Undecryptable)?;
    read_scoped(content)
}

/// What a v3 message carries besides its PDU.
pub struct V3Header<'a> {
    pub msg_id: i32,
    pub flags: u8,
    pub engine_id: &'a [u8],
    pub boots: u32,
    pub time: u32,
    pub user: &'a [u8],
    pub mac_len: usize,
    pub salt: &'a [u8],
}

/// Writes a v3 message into `buf` (cleared first). The scoped PDU is `scoped` (a whole
/// SEQUENCE, or with privacy its ciphertext); the authentication parameters are zeros of
/// `mac_len` bytes, whose offset is returned so the HMAC can be written over them.
pub fn write_v3(buf: &mut Vec<u8>, h: &V3Header<'_>, scoped: &[u8], encrypted: bool) -> usize {
    buf.clear();
    let mut w = Writer::new(buf);
    let msg = w.open(ber::SEQUENCE);
    w.integer(3);
    let global = w.open(ber::SEQUENCE);
    w.integer(h.msg_id as i64);
    w.integer(MAX_MESSAGE as i64);
    w.octets(&[h.flags]);
    w.integer(USM);
    w.close(global);
    let sp_octets = w.open(ber::OCTET_STRING);
    let sp = w.open(ber::SEQUENCE);
    w.octets(h.engine_id);
    w.integer(h.boots as i64);
    w.integer(h.time as i64);
    w.octets(h.user);
    w.octets(&[0u8; super::usm::MAX_MAC][..h.mac_len]);
    w.octets(h.salt);
    w.close(sp);
    w.close(sp_octets);
    if encrypted {
        w.octets(scoped);
    } else {
        w.buf.extend_from_slice(scoped);
    }
    w.close(msg);
    // Closing moves bytes when a length needs the long form: read the offset back.
    read_v3(buf).map_or(0, |m| m.sec.auth_at)
}

/// A scoped PDU (contextEngineID, empty context name, the request) into `buf` (cleared).
pub fn write_scoped(buf: &mut Vec<u8>, context_engine: &[u8], ask: Ask, oids: &[Oid]) {
    buf.clear();
    let mut w = Writer::new(buf);
    let s = w.open(ber::SEQUENCE);
    w.octets(context_engine);
    w.octets(b"");
    write_pdu(&mut w, ask, oids);
    w.close(s);
}

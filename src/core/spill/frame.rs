//! The envelope of every frame in the outage buffer's files: `b"RF"`, payload length
//! (u32 LE), CRC-32 of the payload (u32 LE), payload. The store reads and writes frames
//! without knowing what the payload holds; a codec (see [`super::codec`]) gives it meaning.

pub const MAGIC: [u8; 2] = *b"RF";
pub const HEADER_LEN: usize = 10;
/// No frame is larger; a length above it means the header itself is damaged.
pub const MAX_PAYLOAD: usize = 16 << 20;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// What a frame header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A payload of this length with this CRC follows.
    Frame { len: usize, crc: u32 },
    /// Not a frame start: the rest of the segment cannot be trusted.
    Damaged,
}

pub fn parse_header(h: &[u8; HEADER_LEN]) -> Header {
    let len = u32::from_le_bytes([h[2], h[3], h[4], h[5]]) as usize;
    if h[..2] != MAGIC || len > MAX_PAYLOAD {
        return Header::Damaged;
    }
    let crc = u32::from_le_bytes([h[6], h[7], h[8], h[9]]);
    Header::Frame { len, crc }
}

pub fn crc_ok(payload: &[u8], crc: u32) -> bool {
    CRC.checksum(payload) == crc
}

pub fn checksum(bytes: &[u8]) -> u32 {
    CRC.checksum(bytes)
}

/// Appends `payload` as one frame to `out`.
pub fn seal(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&CRC.checksum(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

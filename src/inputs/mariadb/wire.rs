//! The MySQL client/server protocol as MariaDB and MySQL speak it, the part a monitoring
//! client needs: packets, the v10 handshake and the client's answer, the password digests
//! (mysql_native_password, caching_sha2_password's fast path), and text result sets. Every
//! read goes through a cursor that checks lengths first: hostile bytes give an error, never a
//! panic.

use sha1::Sha1;
use sha2::{Digest, Sha256};

pub const CLIENT_LONG_PASSWORD: u32 = 1;
pub const CLIENT_PROTOCOL_41: u32 = 0x200;
pub const CLIENT_SSL: u32 = 0x800;
pub const CLIENT_TRANSACTIONS: u32 = 0x2000;
pub const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
pub const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
/// utf8mb4_general_ci: names and values arrive as UTF-8.
pub const UTF8MB4: u8 = 45;
/// The largest packet accepted (a status row is tens of bytes).
pub const MAX_PACKET: usize = 1 << 20;
pub const COM_QUERY: u8 = 3;

pub use crate::inputs::support::db::Cursor;

/// MySQL's length-encoded fields, on the shared [`Cursor`].
pub trait LenEnc<'a> {
    /// A length-encoded integer; `None` also for 0xFB (NULL) and 0xFF, which are no integers.
    fn lenenc(&mut self) -> Option<u64>;
    fn lenenc_str(&mut self) -> Option<&'a [u8]>;
    /// A result row's cell: `Some(None)` for NULL.
    fn cell(&mut self) -> Option<Option<&'a [u8]>>;
}

impl<'a> LenEnc<'a> for Cursor<'a> {
    fn lenenc(&mut self) -> Option<u64> {
        match self.u8()? {
            n @ 0..=0xfa => Some(u64::from(n)),
            0xfc => self.u16_le().map(u64::from),
            0xfd => self.take(3).map(|b| u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16),
            0xfe => self.take(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
            _ => None,
        }
    }

    fn lenenc_str(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.lenenc()?).ok()?;
        self.take(n)
    }

    fn cell(&mut self) -> Option<Option<&'a [u8]>> {
        if self.rest().first() == Some(&0xfb) {
            self.take(1);
            return Some(None);
        }
        self.lenenc_str().map(Some)
    }
}

/// The server's first packet.
#[derive(Debug)]
pub struct Handshake {
    pub server_version: String,
    pub capabilities: u32,
    /// The 20-byte scramble the password digests use.
    pub nonce: Vec<u8>,
    pub plugin: String,
}

pub fn handshake(body: &[u8]) -> Result<Handshake, String> {
    let bad = || "the server's greeting is damaged or not MySQL/MariaDB".to_string();
    let mut c = Cursor::new(body);
    match c.u8() {
        Some(10) => {}
        Some(0xff) => return Err(error_text(body)),
        Some(v) => return Err(format!("the server speaks protocol version {v}, not 10")),
        None => return Err(bad()),
    }
    let server_version = String::from_utf8_lossy(c.cstr().ok_or_else(bad)?).into_owned();
    c.u32_le().ok_or_else(bad)?; // connection id
    let mut nonce = c.take(8).ok_or_else(bad)?.to_vec();
    c.u8().ok_or_else(bad)?; // filler
    let low = c.u16_le().ok_or_else(bad)?;
    let mut capabilities = u32::from(low);
    let mut plugin = String::from("mysql_native_password");
    if let (Some(_charset), Some(_status), Some(high)) = (c.u8(), c.u16_le(), c.u16_le()) {
        capabilities |= u32::from(high) << 16;
        let auth_len = c.u8().ok_or_else(bad)?;
        c.take(10).ok_or_else(bad)?; // reserved (MariaDB: its extended capabilities)
        if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let n = (usize::from(auth_len).saturating_sub(8)).max(13);
            let part = c.take(n).ok_or_else(bad)?;
            // The last byte is a NUL that is not part of the scramble.
            nonce.extend_from_slice(&part[..n - 1]);
        }
        if capabilities & CLIENT_PLUGIN_AUTH != 0 {
            if let Some(p) = c.cstr().or(Some(c.rest())) {
                plugin = String::from_utf8_lossy(p).into_owned();
            }
        }
    }
    if capabilities & CLIENT_PROTOCOL_41 == 0 {
        return Err(format!("the server ({server_version}) is older than MySQL 4.1"));
    }
    Ok(Handshake {
        server_version,
        capabilities,
        nonce,
        plugin,
    })
}

/// An ERR packet's code, state and message as one line.
pub fn error_text(body: &[u8]) -> String {
    let mut c = Cursor::new(body);
    let _ = c.u8();
    let code = c.u16_le().unwrap_or(0);
    let mut rest = c.rest();
    if rest.first() == Some(&b'#') && rest.len() >= 6 {
        rest = &rest[6..];
    }
    format!("error {code}: {}", String::from_utf8_lossy(rest))
}

/// The capability flags this client asks for (`ssl`: CLIENT_SSL too).
pub fn client_flags(ssl: bool) -> u32 {
    let base = CLIENT_LONG_PASSWORD
        | CLIENT_PROTOCOL_41
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH;
    if ssl {
        base | CLIENT_SSL
    } else {
        base
    }
}

/// A packet with sequence number `seq` whose payload `body` writes, built in `out`.
pub fn packet(out: &mut Vec<u8>, seq: u8, body: impl FnOnce(&mut Vec<u8>)) {
    out.clear();
    out.extend_from_slice(&[0, 0, 0, seq]);
    body(out);
    let len = (out.len() - 4) as u32;
    out[..3].copy_from_slice(&len.to_le_bytes()[..3]);
}

/// The fixed start of the handshake response, which is the whole SSL request.
fn response_head(b: &mut Vec<u8>, flags: u32) {
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&(MAX_PACKET as u32).to_le_bytes());
    b.push(UTF8MB4);
    b.extend_from_slice(&[0; 23]);
}

pub fn ssl_request(out: &mut Vec<u8>, seq: u8) {
    packet(out, seq, |b| response_head(b, client_flags(true)));
}

pub fn handshake_response(
    out: &mut Vec<u8>,
    seq: u8,
    ssl: bool,
    user: &str,
    auth: &[u8],
    plugin: &str,
) {
    packet(out, seq, |b| {
        response_head(b, client_flags(ssl));
        b.extend_from_slice(user.as_bytes());
        b.push(0);
        b.push(auth.len() as u8);
        b.extend_from_slice(auth);
        b.extend_from_slice(plugin.as_bytes());
        b.push(0);
    });
}

pub fn query(out: &mut Vec<u8>, sql: &str) {
    packet(out, 0, |b| {
        b.push(COM_QUERY);
        b.extend_from_slice(sql.as_bytes());
    });
}

/// mysql_native_password: SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password))); nothing
/// for an empty password.
pub fn native_password(password: &str, nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mix = Sha1::new().chain_update(nonce).chain_update(stage2).finalize();
    stage1.iter().zip(mix).map(|(a, b)| a ^ b).collect()
}

/// caching_sha2_password's scramble: SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce).
pub fn caching_sha2(password: &str, nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let p1 = Sha256::digest(password.as_bytes());
    let p2 = Sha256::digest(p1);
    let mix = Sha256::new().chain_update(p2).chain_update(nonce).finalize();
    p1.iter().zip(mix).map(|(a, b)| a ^ b).collect()
}

/// The scramble is the first 20 bytes of what an auth switch sends (a NUL may follow).
pub fn switch_nonce(data: &[u8]) -> &[u8] {
    match data.last() {
        Some(0) => &data[..data.len() - 1],
        _ => data,
    }
}

/// Column type codes that hold numbers (decimal, tiny, short, long, float, double,
/// longlong, int24, year, newdecimal; bit as 0/1 text is not: it arrives as raw bytes).
pub fn is_numeric_type(t: u8) -> bool {
    matches!(t, 0..=5 | 8 | 9 | 13 | 246)
}

/// An EOF packet (0xFE and shorter than 9 bytes), as opposed to a row starting with a
/// 0xFE length.
pub fn is_eof(body: &[u8]) -> bool {
    body.first() == Some(&0xfe) && body.len() < 9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_password_as_mysql_computes_it() {
        // Python: sha1(p) ^ sha1(nonce + sha1(sha1(p))) for p = "secret", nonce = 20 * "a".
        let got = native_password("secret", &[b'a'; 20]);
        let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, NATIVE_SECRET_AAAA);
        assert!(native_password("", b"x").is_empty());
    }

    #[test]
    fn caching_sha2_as_mysql_computes_it() {
        let got = caching_sha2("secret", &[b'a'; 20]);
        let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, SHA2_SECRET_AAAA);
    }

    const NATIVE_SECRET_AAAA: &str = "512ae2a4d1572c011140a7362190e07e79eb03d2";
    const SHA2_SECRET_AAAA: &str = "799c49eda5c0064a85e6d990894653bddc202236fe5bcb6f76e3eae1bc73f498";

    #[test]
    fn lenenc_and_cells() {
        let mut c = Cursor::new(&[0xfc, 0x01, 0x00, 0xfb, 0x02, b'o', b'k', 0xfd, 1]);
        assert_eq!(c.lenenc(), Some(1));
        assert_eq!(c.cell(), Some(None));
        assert_eq!(c.cell(), Some(Some(&b"ok"[..])));
        assert_eq!(c.lenenc(), None);
    }

    #[test]
    fn greetings_of_hostile_bytes_never_panic() {
        let mut hello = vec![10];
        hello.extend_from_slice(b"10.11.6-MariaDB\0");
        hello.extend_from_slice(&[1, 0, 0, 0]);
        hello.extend_from_slice(b"abcdefgh\0");
        hello.extend_from_slice(&0xf7ffu16.to_le_bytes());
        hello.push(45);
        hello.extend_from_slice(&[2, 0]);
        hello.extend_from_slice(&0x81bfu16.to_le_bytes());
        hello.push(21);
        hello.extend_from_slice(&[0; 10]);
        hello.extend_from_slice(b"ijklmnopqrst\0");
        hello.extend_from_slice(b"mysql_native_password\0");
        let h = handshake(&hello).unwrap();
        assert_eq!(h.nonce, b"abcdefghijklmnopqrst");
        assert_eq!(h.plugin, "mysql_native_password");
        assert_eq!(h.server_version, "10.11.6-MariaDB");
        let mut seed = 0x9e37_79b9u32;
        for cut in 0..hello.len() {
            let _ = handshake(&hello[..cut]);
        }
        for _ in 0..5000 {
            let mut m = hello.clone();
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let i = seed as usize % m.len();
            m[i] = (seed >> 8) as u8;
            let _ = handshake(&m);
            let _ = error_text(&m);
            let mut c = Cursor::new(&m);
            while c.cell().is_some() {}
        }
    }

    #[test]
    fn errors_read_as_one_line() {
        let mut e = vec![0xff];
        e.extend_from_slice(&1045u16.to_le_bytes());
        e.extend_from_slice(b"#28000Access denied for user 'x'@'localhost'");
        assert_eq!(error_text(&e), "error 1045: Access denied for user 'x'@'localhost'");
        assert_eq!(error_text(&[0xff]), "error 0: ");
    }
}

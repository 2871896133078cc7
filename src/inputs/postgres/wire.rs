//! PostgreSQL's frontend/backend protocol (version 3.0), the part a monitoring client needs:
//! the messages it sends, built into a reused buffer, and the backend's messages read by a
//! cursor that checks every length first, so hostile bytes give an error, never a panic.
//! SCRAM-SHA-256 (RFC 5802/7677) and the md5 password digest live here too.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Protocol 3.0 in the startup message.
pub const PROTOCOL_3: i32 = 196_608;
/// The SSLRequest code.
pub const SSL_REQUEST: i32 = 80_877_103;
/// The largest backend message accepted: a statistics row is small; a custom query that
/// returns more is refused rather than let grow the agent's memory.
pub const MAX_MESSAGE: usize = 1 << 20;

pub use crate::inputs::support::db::Cursor;

/// A frontend message of type `tag` (0: the untyped startup and SSL requests) built in
/// `out`: the tag, a length placeholder, then what `body` writes; the length is set at the end.
pub fn message(out: &mut Vec<u8>, tag: u8, body: impl FnOnce(&mut Vec<u8>)) {
    out.clear();
    if tag != 0 {
        out.push(tag);
    }
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out);
    let len = (out.len() - len_at) as i32;
    out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
}

pub fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

pub fn startup(out: &mut Vec<u8>, user: &str, dbname: &str) {
    message(out, 0, |b| {
        b.extend_from_slice(&PROTOCOL_3.to_be_bytes());
        for (k, v) in [
            ("user", user),
            ("database", dbname),
            ("application_name", "rtcollector"),
            ("client_encoding", "UTF8"),
        ] {
            cstr(b, k);
            cstr(b, v);
        }
        b.push(0);
    });
}

pub fn ssl_request(out: &mut Vec<u8>) {
    message(out, 0, |b| b.extend_from_slice(&SSL_REQUEST.to_be_bytes()));
}

pub fn query(out: &mut Vec<u8>, sql: &str) {
    message(out, b'Q', |b| cstr(b, sql));
}

pub fn password(out: &mut Vec<u8>, text: &str) {
    message(out, b'p', |b| cstr(b, text));
}

/// An ErrorResponse's severity, SQLSTATE and message as one line.
pub fn error_text(body: &[u8]) -> String {
    let mut c = Cursor::new(body);
    let (mut severity, mut code, mut text) = ("ERROR".into(), String::new(), String::new());
    while let Some(field) = c.u8() {
        if field == 0 {
            break;
        }
        let Some(v) = c.cstr() else { break };
        let v = String::from_utf8_lossy(v).into_owned();
        match field {
            b'S' => severity = v,
            b'C' => code = v,
            b'M' => text = v,
            _ => {}
        }
    }
    if text.is_empty() {
        text = "(no message)".into();
    }
    format!("{severity} {code}: {text}")
}

/// The md5 password answer: "md5" + hex(md5(hex(md5(password + user)) + salt)).
pub fn md5_password(user: &str, password: &str, salt: &[u8]) -> String {
    use md5::Md5;
    let inner = hex(&Md5::new().chain_update(password).chain_update(user).finalize());
    let outer = Md5::new().chain_update(inner).chain_update(salt).finalize();
    format!("md5{}", hex(&outer))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// SCRAM-SHA-256 from the client's side, without channel binding (`n,,`).
pub struct Scram {
    client_nonce: String,
    /// client-first-message-bare, kept for the AuthMessage.
    first_bare: String,
    server_signature: Option<[u8; 32]>,
}

impl Scram {
    /// `nonce`: random bytes (printable once base64-encoded, as the RFC wants).
    pub fn new(nonce: &[u8]) -> Scram {
        let client_nonce = crate::common::base64::encode(nonce);
        // The user name goes in the startup message; PostgreSQL ignores it here.
        let first_bare = format!("n=,r={client_nonce}");
        Scram {
            client_nonce,
            first_bare,
            server_signature: None,
        }
    }

    pub fn client_first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// The client-final-message for the server-first-message `server_first`.
    pub fn client_final(&mut self, password: &str, server_first: &[u8]) -> Result<String, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "the server's SCRAM message is not UTF-8".to_string())?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in server_first.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = crate::common::base64::decode(v),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                _ => {}
            }
        }
        let bad = || format!("the server's SCRAM message `{server_first}` is malformed");
        let nonce = nonce.filter(|n| n.starts_with(&self.client_nonce)).ok_or_else(bad)?;
        let salt = salt.ok_or_else(bad)?;
        // PostgreSQL uses 4096; a hostile server must not make us spin for long.
        let iterations = iterations.filter(|&i| (1..=1_000_000).contains(&i)).ok_or_else(bad)?;
        let salted = hi(password.as_bytes(), &salt, iterations);
        let client_key = hmac(&salted, &[b"Client Key"]);
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let client_signature = hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(&salted, &[b"Server Key"]);
        self.server_signature = Some(hmac(&server_key, &[auth_message.as_bytes()]));
        Ok(format!(
            "{without_proof},p={}",
            crate::common::base64::encode(&proof)
        ))
    }

    /// Checks the server-final-message: the server proves it knew the password too.
    pub fn verify_final(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final).unwrap_or("");
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the server refused the SCRAM login: {e}"));
        }
        let got = text.strip_prefix("v=").and_then(crate::common::base64::decode);
        match (got, self.server_signature) {
            (Some(got), Some(want)) if got == want => Ok(()),
            _ => Err("the server's SCRAM signature is wrong: it does not know the password".into()),
        }
    }
}

/// PBKDF2-HMAC-SHA-256 with one block: SCRAM's Hi().
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut u = hmac(password, &[salt, &1u32.to_be_bytes()]);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &[&u]);
        out.iter_mut().zip(u).for_each(|(o, x)| *o ^= x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_matches_rfc_7677_example() {
        // RFC 7677 section 3: user "user", password "pencil".
        let mut s = Scram {
            client_nonce: "rOprNGfwEbeRWgbNEkqO".into(),
            first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            server_signature: None,
        };
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = s.client_final("pencil", server_first).unwrap();
        assert_eq!(
            fin,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(s.verify_final(b"v=AAAA").is_err());
        assert!(s.verify_final(b"e=invalid-proof").is_err());
    }

    #[test]
    fn scram_refuses_a_foreign_nonce_and_garbage() {
        let mut s = Scram::new(b"0123456789abcdef");
        assert!(s.client_final("pw", b"r=other,s=QUJD,i=4096").is_err());
        assert!(s.client_final("pw", b"\xff\xfe").is_err());
        assert!(s.client_final("pw", b"").is_err());
        let n = s.client_nonce.clone();
        assert!(s.client_final("pw", format!("r={n}x,s=QUJD,i=0").as_bytes()).is_err());
        assert!(s.client_final("pw", format!("r={n}x,s=QUJD,i=2").as_bytes()).is_ok());
    }

    #[test]
    fn md5_as_libpq_computes_it() {
        // Python: "md5" + md5(md5(b"secretalice").hexdigest().encode() + b"salt").hexdigest()
        assert_eq!(
            md5_password("alice", "secret", b"salt"),
            "md5986e2194384c07f4fd1df4b1351b3e68"
        );
    }

    #[test]
    fn messages_carry_their_length() {
        let mut out = Vec::new();
        query(&mut out, "SELECT 1");
        assert_eq!(out, b"Q\0\0\0\x0dSELECT 1\0");
        ssl_request(&mut out);
        assert_eq!(out, [0, 0, 0, 8, 4, 210, 22, 47]);
    }

    #[test]
    fn cursor_stops_at_the_end() {
        let mut c = Cursor::new(b"ab\0\x00\x01");
        assert_eq!(c.cstr(), Some(&b"ab"[..]));
        assert_eq!(c.i32_be(), None);
        assert_eq!(c.i16_be(), Some(1));
        assert_eq!(c.u8(), None);
        assert_eq!(c.cstr(), None);
        assert_eq!(error_text(b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"),
            "FATAL 28P01: password authentication failed");
        assert_eq!(error_text(b"S"), "ERROR : (no message)");
    }
}

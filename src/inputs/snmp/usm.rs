//! SNMPv3's user-based security model (RFC 3414, RFC 3826, RFC 7860): keys from pass
//! phrases, localized to the agent's engine ID; HMAC authentication; DES-CBC and
//! AES-128-CFB privacy. The two cipher modes are written here (a few lines each) rather
//! than pulled in as crates.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use hmac::digest::Digest;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};

/// `authProtocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum AuthProtocol {
    #[serde(rename = "MD5")]
    Md5,
    #[serde(rename = "SHA", alias = "SHA1", alias = "SHA-1")]
    Sha1,
    #[serde(rename = "SHA-224", alias = "SHA224")]
    Sha224,
    #[serde(rename = "SHA-256", alias = "SHA256")]
    Sha256,
    #[serde(rename = "SHA-384", alias = "SHA384")]
    Sha384,
    #[serde(rename = "SHA-512", alias = "SHA512")]
    Sha512,
}

/// `privacyProtocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum PrivProtocol {
    #[serde(rename = "DES")]
    Des,
    #[serde(rename = "AES", alias = "AES128", alias = "AES-128")]
    Aes128,
}

/// The longest HMAC truncation (SHA-512: 48 bytes).
pub const MAX_MAC: usize = 48;

impl AuthProtocol {
    /// Bytes of msgAuthenticationParameters: the truncated HMAC.
    pub fn mac_len(self) -> usize {
        match self {
            AuthProtocol::Md5 | AuthProtocol::Sha1 => 12,
            AuthProtocol::Sha224 => 16,
            AuthProtocol::Sha256 => 24,
            AuthProtocol::Sha384 => 32,
            AuthProtocol::Sha512 => 48,
        }
    }

    /// Ku: the digest of the pass phrase repeated over 1 MiB (RFC 3414 A.2).
    pub fn password_key(self, pass: &[u8]) -> Vec<u8> {
        match self {
            AuthProtocol::Md5 => stretch::<md5::Md5>(pass),
            AuthProtocol::Sha1 => stretch::<sha1::Sha1>(pass),
            AuthProtocol::Sha224 => stretch::<sha2::Sha224>(pass),
            AuthProtocol::Sha256 => stretch::<sha2::Sha256>(pass),
            AuthProtocol::Sha384 => stretch::<sha2::Sha384>(pass),
            AuthProtocol::Sha512 => stretch::<sha2::Sha512>(pass),
        }
    }

    /// Kul: Ku bound to one engine, H(Ku | engineID | Ku).
    pub fn localize(self, ku: &[u8], engine_id: &[u8]) -> Vec<u8> {
        match self {
            AuthProtocol::Md5 => localize::<md5::Md5>(ku, engine_id),
            AuthProtocol::Sha1 => localize::<sha1::Sha1>(ku, engine_id),
            AuthProtocol::Sha224 => localize::<sha2::Sha224>(ku, engine_id),
            AuthProtocol::Sha256 => localize::<sha2::Sha256>(ku, engine_id),
            AuthProtocol::Sha384 => localize::<sha2::Sha384>(ku, engine_id),
            AuthProtocol::Sha512 => localize::<sha2::Sha512>(ku, engine_id),
        }
    }

    /// The truncated HMAC of `msg` under `key` into `out`; its length.
    pub fn mac(self, key: &[u8], msg: &[u8], out: &mut [u8; MAX_MAC]) -> usize {
        let n = self.mac_len();
        match self {
            AuthProtocol::Md5 => mac::<Hmac<md5::Md5>>(key, msg, &mut out[..n]),
            AuthProtocol::Sha1 => mac::<Hmac<sha1::Sha1>>(key, msg, &mut out[..n]),
            AuthProtocol::Sha224 => mac::<Hmac<sha2::Sha224>>(key, msg, &mut out[..n]),
            AuthProtocol::Sha256 => mac::<Hmac<sha2::Sha256>>(key, msg, &mut out[..n]),
            AuthProtocol::Sha384 => mac::<Hmac<sha2::Sha384>>(key, msg, &mut out[..n]),
            AuthProtocol::Sha512 => mac::<Hmac<sha2::Sha512>>(key, msg, &mut out[..n]),
        }
        n
    }
}

fn stretch<D: Digest>(pass: &[u8]) -> Vec<u8> {
    let mut d = D::new();
    if !pass.is_empty() {
        let mut block = [0u8; 64];
        let mut at = 0usize;
        for _ in 0..(1 << 20) / 64 {
            for b in block.iter_mut() {
                *b = pass[at % pass.len()];
                at += 1;
            }
            d.update(block);
        }
    }
    d.finalize().to_vec()
}

fn localize<D: Digest>(ku: &[u8], engine_id: &[u8]) -> Vec<u8> {
    let mut d = D::new();
    d.update(ku);
    d.update(engine_id);
    d.update(ku);
    d.finalize().to_vec()
}

fn mac<M: Mac + KeyInit>(key: &[u8], msg: &[u8], out: &mut [u8]) {
    // Any key length is valid for HMAC, so this never fails.
    let Ok(mut m) = <M as Mac>::new_from_slice(key) else {
        return;
    };
    m.update(msg);
    let tag = m.finalize().into_bytes();
    let n = out.len().min(tag.len());
    out[..n].copy_from_slice(&tag[..n]);
}

/// Why a message could not be decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptError {
    /// The localized key is too short for the cipher.
    ShortKey,
    /// msgPrivacyParameters is not 8 bytes, or a DES ciphertext is not whole blocks.
    BadLength,
}

impl PrivProtocol {
    /// Encrypts `plain` into `out` (cleared first). `salt` is the 8 bytes sent as
    /// msgPrivacyParameters: unique per message under one key.
    pub fn encrypt(
        self,
        key: &[u8],
        boots: u32,
        time: u32,
        salt: [u8; 8],
        plain: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptError> {
        out.clear();
        match self {
            PrivProtocol::Aes128 => {
                let (cipher, mut iv) = aes_setup(key, boots, time, &salt)?;
                out.extend_from_slice(plain);
                for chunk in out.chunks_mut(16) {
                    let mut ks = iv;
                    cipher.encrypt_block(&mut ks);
                    for (b, k) in chunk.iter_mut().zip(ks.iter()) {
                        *b ^= k;
                    }
                    // CFB feeds the ciphertext back; a short last chunk ends the message.
                    iv[..chunk.len()].copy_from_slice(chunk);
                }
            }
            PrivProtocol::Des => {
                let (cipher, mut prev) = des_setup(key, &salt)?;
                out.extend_from_slice(plain);
                // Padded to whole blocks; the agent reads the scoped PDU's own length.
                out.resize(plain.len().div_ceil(8) * 8, 0);
                for chunk in out.chunks_mut(8) {
                    for (b, p) in chunk.iter_mut().zip(prev.iter()) {
                        *b ^= p;
                    }
                    let block = GenericArray::from_mut_slice(chunk);
                    cipher.encrypt_block(block);
                    prev.copy_from_slice(chunk);
                }
            }
        }
        Ok(())
    }

    /// Decrypts `cipher_text` into `out` (cleared first).
    pub fn decrypt(
        self,
        key: &[u8],
        boots: u32,
        time: u32,
        priv_params: &[u8],
        cipher_text: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptError> {
        out.clear();
        let salt: [u8; 8] = priv_params.try_into().map_err(|_| CryptError::BadLength)?;
        match self {
            PrivProtocol::Aes128 => {
                let (cipher, mut iv) = aes_setup(key, boots, time, &salt)?;
                out.extend_from_slice(cipher_text);
                for chunk in out.chunks_mut(16) {
                    let mut ks = iv;
                    cipher.encrypt_block(&mut ks);
                    iv[..chunk.len()].copy_from_slice(chunk);
                    for (b, k) in chunk.iter_mut().zip(ks.iter()) {
                        *b ^= k;
                    }
                }
            }
            PrivProtocol::Des => {
                if cipher_text.len() % 8 != 0 {
                    return Err(CryptError::BadLength);
                }
                let (cipher, mut prev) = des_setup(key, &salt)?;
                out.extend_from_slice(cipher_text);
                for chunk in out.chunks_mut(8) {
                    let mut this = [0u8; 8];
                    this.copy_from_slice(chunk);
                    cipher.decrypt_block(GenericArray::from_mut_slice(chunk));
                    for (b, p) in chunk.iter_mut().zip(prev.iter()) {
                        *b ^= p;
                    }
                    prev = this;
                }
            }
        }
        Ok(())
    }
}

/// AES-128 with the first 16 key bytes; IV = boots | time | salt (RFC 3826 §3.1.2.1).
fn aes_setup(
    key: &[u8],
    boots: u32,
    time: u32,
    salt: &[u8; 8],
) -> Result<(aes::Aes128, GenericArray<u8, aes::cipher::consts::U16>), CryptError> {
    let k = key.get(..16).ok_or(CryptError::ShortKey)?;
    let cipher = aes::Aes128::new_from_slice(k).map_err(|_| CryptError::ShortKey)?;
    let mut iv = GenericArray::default();
    iv[..4].copy_from_slice(&boots.to_be_bytes());
    iv[4..8].copy_from_slice(&time.to_be_bytes());
    iv[8..].copy_from_slice(salt);
    Ok((cipher, iv))
}

/// DES with key bytes 0..8; IV = pre-IV (key bytes 8..16) XOR salt (RFC 3414 §8.1.1.1).
fn des_setup(key: &[u8], salt: &[u8; 8]) -> Result<(des::Des, [u8; 8]), CryptError> {
    let k = key.get(..8).ok_or(CryptError::ShortKey)?;
    let pre_iv = key.get(8..16).ok_or(CryptError::ShortKey)?;
    let cipher = des::Des::new_from_slice(k).map_err(|_| CryptError::ShortKey)?;
    let mut iv = [0u8; 8];
    for (i, b) in iv.iter_mut().enumerate() {
        *b = pre_iv[i] ^ salt[i];
    }
    Ok((cipher, iv))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// RFC 3414 A.3.1 and A.3.2: "maplesyrup" for engine 00…02.
    #[test]
    fn keys_match_the_rfc_examples() {
        let engine = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let ku = AuthProtocol::Md5.password_key(b"maplesyrup");
        assert_eq!(hex(&ku), "9faf3283884e92834ebc9847d8edd963");
        assert_eq!(
            hex(&AuthProtocol::Md5.localize(&ku, &engine)),
            "526f5eed9fcce26f8964c2930787d82b"
        );
        let ku = AuthProtocol::Sha1.password_key(b"maplesyrup");
        assert_eq!(hex(&ku), "9fb5cc0381497b3793528939ff788d5d79145211");
        assert_eq!(
            hex(&AuthProtocol::Sha1.localize(&ku, &engine)),
            "6695febc9288e36282235fc7151f128497b38f3f"
        );
    }

    #[test]
    fn both_ciphers_round_trip_any_length() {
        let key: Vec<u8> = (0u8..20).collect();
        let salt = [9, 8, 7, 6, 5, 4, 3, 2];
        for proto in [PrivProtocol::Aes128, PrivProtocol::Des] {
            for len in [0usize, 1, 7, 8, 15, 16, 17, 100] {
                let plain: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
                let (mut c, mut p) = (Vec::new(), Vec::new());
                proto.encrypt(&key, 3, 1234, salt, &plain, &mut c).unwrap();
                if len > 0 {
                    assert_ne!(&c[..len], &plain[..], "{proto:?} {len}");
                }
                proto.decrypt(&key, 3, 1234, &salt, &c, &mut p).unwrap();
                assert_eq!(&p[..len], &plain[..], "{proto:?} {len}");
            }
        }
    }

    #[test]
    fn bad_privacy_parameters_are_errors() {
        let key = [1u8; 16];
        let mut out = Vec::new();
        assert_eq!(
            PrivProtocol::Des.decrypt(&key, 0, 0, &[0; 8], &[0; 7], &mut out),
            Err(CryptError::BadLength)
        );
        assert_eq!(
            PrivProtocol::Aes128.decrypt(&key, 0, 0, &[0; 3], &[0; 16], &mut out),
            Err(CryptError::BadLength)
        );
        assert_eq!(
            PrivProtocol::Aes128.decrypt(&key[..8], 0, 0, &[0; 8], &[0; 16], &mut out),
            Err(CryptError::ShortKey)
        );
    }
}

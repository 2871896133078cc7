//! Just enough DER to read a certificate's `notAfter`: a walk down
//! `Certificate → tbsCertificate → validity → notAfter`, with every length checked.
//!
//! ```text
//! Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
//!     version [0] EXPLICIT OPTIONAL, serialNumber INTEGER, signature SEQUENCE,
//!     issuer SEQUENCE, validity SEQUENCE { notBefore Time, notAfter Time }, … }, … }
//! Time ::= UTCTime "YYMMDDHHMMSSZ" | GeneralizedTime "YYYYMMDDHHMMSSZ"
//! ```

use std::fmt;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xA0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerError {
    /// The input ended inside an element.
    Truncated,
    /// An element had another tag than the structure allows there.
    UnexpectedTag { expected: u8, found: u8 },
    /// A length form DER does not allow (indefinite, or more than 4 length bytes).
    BadLength,
    /// The time is not `YYMMDDHHMMSSZ` / `YYYYMMDDHHMMSSZ` or names no real date.
    BadTime,
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DerError::Truncated => f.write_str("certificate truncated"),
            DerError::UnexpectedTag { expected, found } => write!(
                f,
                "certificate malformed: tag {found:#04x} where {expected:#04x} belongs"
            ),
            DerError::BadLength => f.write_str("certificate malformed: bad DER length"),
            DerError::BadTime => f.write_str("certificate malformed: bad notAfter time"),
        }
    }
}

/// A cursor over DER elements.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Der { rest: buf }
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element: its tag and contents.
    fn any(&mut self) -> Result<(u8, &'a [u8]), DerError> {
        let (&tag, after_tag) = self.rest.split_first().ok_or(DerError::Truncated)?;
        let (&first, mut after_len) = after_tag.split_first().ok_or(DerError::Truncated)?;
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7F) as usize;
            if n == 0 || n > 4 {
                return Err(DerError::BadLength);
            }
            let bytes = after_len.get(..n).ok_or(DerError::Truncated)?;
            after_len = &after_len[n..];
            bytes.iter().fold(0usize, |acc, &b| acc << 8 | b as usize)
        };
        let contents = after_len.get(..len).ok_or(DerError::Truncated)?;
        self.rest = &after_len[len..];
        Ok((tag, contents))
    }

    fn expect(&mut self, expected: u8) -> Result<&'a [u8], DerError> {
        let (found, contents) = self.any()?;
        if found != expected {
            return Err(DerError::UnexpectedTag { expected, found });
        }
        Ok(contents)
    }
}

/// The certificate's `notAfter` in seconds since the Unix epoch.
pub fn not_after(cert_der: &[u8]) -> Result<i64, DerError> {
    let cert = Der::new(cert_der).expect(SEQUENCE)?;
    let mut tbs = Der::new(Der::new(cert).expect(SEQUENCE)?);
    if tbs.peek_tag() == Some(VERSION) {
        tbs.any()?;
    }
    tbs.expect(INTEGER)?; // serialNumber
    tbs.expect(SEQUENCE)?; // signature algorithm
    tbs.expect(SEQUENCE)?; // issuer
    let mut validity = Der::new(tbs.expect(SEQUENCE)?);
    validity.any()?; // notBefore
    match validity.any()? {
        (UTC_TIME, t) => utc_time(t),
        (GENERALIZED_TIME, t) => generalized_time(t),
        (found, _) => Err(DerError::UnexpectedTag {
            expected: UTC_TIME,
            found,
        }),
    }
}

/// `YYMMDDHHMMSSZ`; RFC 5280: YY < 50 is 20YY.
fn utc_time(t: &[u8]) -> Result<i64, DerError> {
    if t.len() != 13 || t[12] != b'Z' {
        return Err(DerError::BadTime);
    }
    let yy = digits(&t[0..2])?;
    let year = if yy < 50 { 2000 + yy } else { 1900 + yy };
    seconds(year, &t[2..12])
}

/// `YYYYMMDDHHMMSSZ`.
fn generalized_time(t: &[u8]) -> Result<i64, DerError> {
    if t.len() != 15 || t[14] != b'Z' {
        return Err(DerError::BadTime);
    }
    seconds(digits(&t[0..4])?, &t[4..14])
}

/// `MMDDHHMMSS` of `year` as Unix seconds.
fn seconds(year: i64, t: &[u8]) -> Result<i64, DerError> {
    let (month, day) = (digits(&t[0..2])?, digits(&t[2..4])?);
    let (h, m, s) = (digits(&t[4..6])?, digits(&t[6..8])?, digits(&t[8..10])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return Err(DerError::BadTime);
    }
    Ok(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

fn digits(d: &[u8]) -> Result<i64, DerError> {
    d.iter().try_fold(0i64, |acc, &b| {
        if b.is_ascii_digit() {
            Ok(acc * 10 + (b - b'0') as i64)
        } else {
            Err(DerError::BadTime)
        }
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER element with a short or long length, as an encoder writes it.
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match contents.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(contents);
        out
    }

    fn cert(version: bool, not_after: Vec<u8>) -> Vec<u8> {
        let mut tbs = Vec::new();
        if version {
            tbs.extend(tlv(VERSION, &tlv(INTEGER, &[2])));
        }
        tbs.extend(tlv(INTEGER, &[0x01, 0x02, 0x03]));
        tbs.extend(tlv(SEQUENCE, &tlv(0x06, &[0x2A, 0x86, 0x48])));
        tbs.extend(tlv(SEQUENCE, &[0u8; 200])); // an issuer long enough for a long length
        let mut validity = tlv(UTC_TIME, b"240101000000Z");
        validity.extend(not_after);
        tbs.extend(tlv(SEQUENCE, &validity));
        tbs.extend(tlv(SEQUENCE, &[])); // subject
        let mut c = tlv(SEQUENCE, &tbs);
        c.extend(tlv(SEQUENCE, &[])); // signatureAlgorithm
        c.extend(tlv(0x03, &[0]));
        tlv(SEQUENCE, &c)
    }

    #[test]
    fn reads_utc_and_generalized_not_after() {
        // date -u -d 2026-12-23T12:34:56Z +%s
        let utc = cert(true, tlv(UTC_TIME, b"261223123456Z"));
        assert_eq!(not_after(&utc), Ok(1_798_029_296));
        let gen = cert(false, tlv(GENERALIZED_TIME, b"20500101000000Z"));
        assert_eq!(not_after(&gen), Ok(2_524_608_000));
        // 1999: YY >= 50 is 19YY
        let old = cert(true, tlv(UTC_TIME, b"991231235959Z"));
        assert_eq!(not_after(&old), Ok(946_684_799));
    }

    #[test]
    fn truncated_or_malformed_certificates_are_errors() {
        let good = cert(true, tlv(UTC_TIME, b"261223123456Z"));
        for cut in 0..good.len() {
            assert!(not_after(&good[..cut]).is_err(), "cut at {cut} accepted");
        }
        assert_eq!(
            not_after(&cert(true, tlv(UTC_TIME, b"26122312345xZ"))),
            Err(DerError::BadTime)
        );
        assert_eq!(
            not_after(&cert(true, tlv(UTC_TIME, b"261323123456Z"))),
            Err(DerError::BadTime)
        );
        assert_eq!(
            not_after(&cert(true, tlv(INTEGER, b"261223123456Z"))),
            Err(DerError::UnexpectedTag {
                expected: UTC_TIME,
                found: INTEGER
            })
        );
        assert_eq!(not_after(&[0x30, 0x80, 0, 0]), Err(DerError::BadLength));
        assert!(not_after(b"-----BEGIN CERTIFICATE-----").is_err());
    }
}

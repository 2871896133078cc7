//! Syslog messages as senders really write them: RFC 5424 (structured data, BOM, NILVALUE)
//! and RFC 3164 ("BSD") with its variants: no year, no host name, a tag without a pid, an
//! RFC 3339 time as rsyslog writes, no time at all. Every function reads a byte slice by
//! checked steps and cannot panic on any input (tested with random bytes).

use crate::core::clock;
use crate::core::logs::{LogRecord, SdParam};
use std::borrow::Cow;

/// Why a message could not be read as the standard tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// No `<PRI>` at the start, or a priority above 191.
    Priority,
    /// Not version 1 (RFC 5424), or a field missing after it.
    Header,
    Timestamp,
    StructuredData,
}

impl ParseError {
    pub fn as_str(self) -> &'static str {
        match self {
            ParseError::Priority => "priority",
            ParseError::Header => "header",
            ParseError::Timestamp => "timestamp",
            ParseError::StructuredData => "structured data",
        }
    }
}

/// Which standard a message is read by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Standard {
    #[serde(rename = "RFC5424")]
    Rfc5424,
    #[serde(rename = "RFC3164")]
    Rfc3164,
}

/// Reads `msg`: as RFC 5424 when it has that standard's version field (`<PRI>1 `), else as
/// RFC 3164 (a port gets both from different senders). `standard` decides a message that
/// has the version field but does not parse as RFC 5424: an error under RFC5424, BSD text
/// under RFC3164. `received_ms` stands in for a missing time and tells a year-less RFC 3164
/// time its year. `sd_separator` joins an SD-ID and a parameter name (`meta_ip`).
pub fn parse<'a>(
    msg: &'a [u8],
    standard: Standard,
    received_ms: i64,
    sd_separator: &str,
) -> Result<LogRecord<'a>, ParseError> {
    if !looks_like_5424(msg) {
        return parse_3164(msg, received_ms);
    }
    match parse_5424(msg, received_ms, sd_separator) {
        Err(_) if standard == Standard::Rfc3164 => parse_3164(msg, received_ms),
        other => other,
    }
}

/// The message kept as raw text when it cannot be read (`best_effort`): severity notice,
/// facility user unless a readable `<PRI>` says otherwise.
pub fn raw<'a>(msg: &'a [u8], received_ms: i64) -> LogRecord<'a> {
    let (pri, rest) = priority(msg).unwrap_or((13, msg));
    LogRecord {
        ts_ms: received_ms,
        received_ms,
        severity: (pri & 7) as u8,
        facility: (pri >> 3) as u8,
        message: text(trim_end(rest)),
        ..LogRecord::default()
    }
}

fn looks_like_5424(msg: &[u8]) -> bool {
    matches!(priority(msg), Ok((_, [b'1', b' ', ..])))
}

/// `<PRI>` and the rest.
fn priority(msg: &[u8]) -> Result<(u16, &[u8]), ParseError> {
    let rest = msg.strip_prefix(b"<").ok_or(ParseError::Priority)?;
    let end = rest
        .iter()
        .take(4)
        .position(|&b| b == b'>')
        .ok_or(ParseError::Priority)?;
    let digits = &rest[..end];
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return Err(ParseError::Priority);
    }
    let pri = number(digits).ok_or(ParseError::Priority)?;
    if pri > 191 {
        return Err(ParseError::Priority);
    }
    Ok((pri as u16, &rest[end + 1..]))
}

fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')),
    )
}

/// Text from bytes: borrowed when valid UTF-8, else with replacement characters.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().take_while(|&&b| b == b' ').count();
    &bytes[start..]
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r' | b'\0'))
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

/// The next space-separated field and what follows the space (empty at the end).
fn field(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

/// A header field: NILVALUE (`-`) is empty; at most `max` printable ASCII characters.
fn header_field(f: &[u8], max: usize) -> Result<Cow<'_, str>, ParseError> {
    if f.is_empty() || f.len() > max || !f.iter().all(|b| (33..=126).contains(b)) {
        return Err(ParseError::Header);
    }
    Ok(if f == b"-" { Cow::Borrowed("") } else { text(f) })
}

fn parse_5424<'a>(
    msg: &'a [u8],
    received_ms: i64,
    sd_separator: &str,
) -> Result<LogRecord<'a>, ParseError> {
    let (pri, rest) = priority(msg)?;
    let (version, rest) = field(rest);
    if version != b"1" {
        return Err(ParseError::Header);
    }
    let (ts, rest) = field(rest);
    let ts_ms = match ts {
        b"-" => received_ms,
        t => rfc3339_ms(t).ok_or(ParseError::Timestamp)?,
    };
    let (hostname, rest) = field(rest);
    let (appname, rest) = field(rest);
    let (procid, rest) = field(rest);
    let (msgid, rest) = field(rest);
    let mut structured = Vec::new();
    let rest = structured_data(rest, sd_separator, &mut structured)?;
    let message = match rest {
        [] => &[][..],
        [b' ', m @ ..] => m,
        _ => return Err(ParseError::StructuredData),
    };
    let message = message.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(message);
    // rsyslog's RFC 5424 template puts a space of the message property after the one
    // RFC 5424 asks for.
    let message = trim_start(message);
    Ok(LogRecord {
        ts_ms,
        received_ms,
        severity: (pri & 7) as u8,
        facility: (pri >> 3) as u8,
        hostname: header_field(hostname, 255)?,
        appname: header_field(appname, 48)?,
        procid: header_field(procid, 128)?,
        msgid: header_field(msgid, 32)?,
        message: text(trim_end(message)),
        structured,
        ..LogRecord::default()
    })
}

/// Reads STRUCTURED-DATA (`-` or `[id k="v" …]…`) into `out`; returns what follows it.
fn structured_data<'a>(
    s: &'a [u8],
    sep: &str,
    out: &mut Vec<SdParam<'a>>,
) -> Result<&'a [u8], ParseError> {
    if let Some(rest) = s.strip_prefix(b"-") {
        return Ok(rest);
    }
    let mut rest = s;
    if !rest.starts_with(b"[") {
        return Err(ParseError::StructuredData);
    }
    while let Some(inner) = rest.strip_prefix(b"[") {
        let id_end = inner
            .iter()
            .position(|&b| b == b' ' || b == b']')
            .ok_or(ParseError::StructuredData)?;
        let id = sd_name(&inner[..id_end])?;
        let mut p = &inner[id_end..];
        let mut any = false;
        while let Some(after) = p.strip_prefix(b" ") {
            let eq = after
                .iter()
                .position(|&b| b == b'=')
                .ok_or(ParseError::StructuredData)?;
            let name = sd_name(&after[..eq])?;
            let quoted = after[eq + 1..]
                .strip_prefix(b"\"")
                .ok_or(ParseError::StructuredData)?;
            let (value, after_value) = sd_value(quoted)?;
            out.push(SdParam {
                name: joined(&id, sep, &name),
                id: id.clone(),
                value,
            });
            any = true;
            p = after_value;
        }
        if !any {
            out.push(SdParam {
                id: id.clone(),
                ..SdParam::default()
            });
        }
        rest = p.strip_prefix(b"]").ok_or(ParseError::StructuredData)?;
    }
    Ok(rest)
}

fn sd_name(name: &[u8]) -> Result<Cow<'_, str>, ParseError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .iter()
            .all(|&b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'));
    if ok {
        Ok(text(name))
    } else {
        Err(ParseError::StructuredData)
    }
}

fn joined<'a>(id: &Cow<'a, str>, sep: &str, name: &Cow<'a, str>) -> Cow<'a, str> {
    Cow::Owned(format!("{id}{sep}{name}"))
}

/// A PARAM-VALUE up to its closing quote, unescaped (`\"`, `\\`, `\]`); borrowed when it
/// has no escapes. Returns the value and what follows the quote.
fn sd_value(s: &[u8]) -> Result<(Cow<'_, str>, &[u8]), ParseError> {
    let mut i = 0;
    let mut escaped = false;
    while let Some(&b) = s.get(i) {
        match b {
            b'\\' => {
                escaped = true;
                i += 2;
            }
            b'"' => {
                let raw = &s[..i];
                let value = if escaped { unescape(raw) } else { text(raw) };
                return Ok((value, &s[i + 1..]));
            }
            _ => i += 1,
        }
    }
    Err(ParseError::StructuredData)
}

fn unescape(raw: &[u8]) -> Cow<'static, str> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter().copied().peekable();
    while let Some(b) = it.next() {
        if b == b'\\' {
            if let Some(&n) = it.peek() {
                if matches!(n, b'"' | b'\\' | b']') {
                    out.push(n);
                    it.next();
                    continue;
                }
            }
        }
        out.push(b);
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// An RFC 3339 time (`2003-10-11T22:14:15.003Z`, `…+02:00`, up to 9 fraction digits) as
/// ms since the epoch.
pub fn rfc3339_ms(t: &[u8]) -> Option<i64> {
    let (date, rest) = (t.get(..10)?, t.get(10..)?);
    if !matches!(rest.first(), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (y, mo, d) = (
        number(date.get(..4)?)?,
        number(date.get(5..7)?)?,
        number(date.get(8..10)?)?,
    );
    if date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let time = &rest[1..];
    let (h, mi, s) = clock_time(time.get(..8)?)?;
    let mut rest = &time[8..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        let digits = &frac[..n];
        for (i, &d) in digits.iter().take(3).enumerate() {
            ms += i64::from(d - b'0') * [100, 10, 1][i];
        }
        rest = &frac[n..];
    }
    let offset_min = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), hh1, hh2, b':', mm1, mm2] => {
            let hh = number(&[*hh1, *hh2])? as i64;
            let mm = number(&[*mm1, *mm2])? as i64;
            if hh > 23 || mm > 59 {
                return None;
            }
            let m = hh * 60 + mm;
            if *sign == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    let days = civil_days(y as i64, mo, d)?;
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + s) - offset_min * 60;
    Some(secs * 1000 + ms)
}

/// `hh:mm:ss`.
fn clock_time(t: &[u8]) -> Option<(u32, u32, u32)> {
    if t.len() != 8 || t[2] != b':' || t[5] != b':' {
        return None;
    }
    let (h, m, s) = (number(&t[..2])?, number(&t[3..5])?, number(&t[6..8])?);
    // 60: a leap second, as RFC 3339 allows.
    (h < 24 && m < 60 && s <= 60).then_some((h, m, s))
}

/// Days since 1970-01-01 of a valid date.
fn civil_days(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || !(1..=9999).contains(&y) {
        return None;
    }
    Some(clock::days_from_civil(y, m, d))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
    b"Dec",
];

fn parse_3164(msg: &[u8], received_ms: i64) -> Result<LogRecord<'_>, ParseError> {
    let (pri, rest) = priority(msg)?;
    let rest = trim_end(rest);
    let (ts_ms, hostname, rest) = match bsd_time(rest, received_ms) {
        Some((ts, after)) => {
            let (host, after) = host_name(after);
            (ts, host, after)
        }
        None => match field(rest) {
            (t, after) if t.len() >= 19 && t.get(4) == Some(&b'-') => {
                let ts = rfc3339_ms(t).ok_or(ParseError::Timestamp)?;
                let (host, after) = host_name(after);
                (ts, host, after)
            }
            // No time: a minimal sender, which writes no host name either.
            _ => (received_ms, &[][..], rest),
        },
    };
    let (appname, procid, message) = tag(rest);
    Ok(LogRecord {
        ts_ms,
        received_ms,
        severity: (pri & 7) as u8,
        facility: (pri >> 3) as u8,
        hostname: text(hostname),
        appname: text(appname),
        procid: text(procid),
        message: text(message),
        ..LogRecord::default()
    })
}

/// `Mmm dd hh:mm:ss ` (day padded with a space or a zero) at the start of `s`, in UTC,
/// in the year that puts it nearest before `received_ms` (at most a day ahead of it:
/// clocks differ); and what follows.
fn bsd_time(s: &[u8], received_ms: i64) -> Option<(i64, &[u8])> {
    let month = MONTHS.iter().position(|m| s.get(..3) == Some(&m[..]))? as u32 + 1;
    if s.get(3) != Some(&b' ') {
        return None;
    }
    let day_part = s.get(4..6)?;
    let day = match day_part {
        [b' ', d] => number(&[*d])?,
        d => number(d)?,
    };
    if s.get(6) != Some(&b' ') {
        return None;
    }
    let (h, mi, sec) = clock_time(s.get(7..15)?)?;
    let rest = match s.get(15) {
        None => &[][..],
        Some(b' ') => &s[16..],
        Some(_) => return None,
    };
    let now_year = clock::civil_from_days(received_ms.div_euclid(86_400_000)).0;
    let ms_in = |y: i64| {
        civil_days(y, month, day)
            .map(|d| (d * 86_400 + i64::from(h * 3600 + mi * 60 + sec)) * 1000)
    };
    let ts = [now_year, now_year - 1, now_year + 1]
        .into_iter()
        .filter_map(ms_in)
        .filter(|&ts| ts <= received_ms + 86_400_000)
        .max()?;
    Some((ts, rest))
}

/// The host name, unless the sender left it out: the first word is the tag when it ends
/// in `:` or holds a `[pid]`.
fn host_name(s: &[u8]) -> (&[u8], &[u8]) {
    let (first, rest) = field(s);
    let is_tag = first.ends_with(b":") || first.contains(&b'[') || rest.is_empty();
    if is_tag || first.is_empty() {
        (&[], s)
    } else {
        (first, rest)
    }
}

/// `tag[pid]: message`, `tag: message`, or a message without a tag.
fn tag(s: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let (first, rest) = field(s);
    let word = first.strip_suffix(b":").unwrap_or(first);
    let ok_tag = first.len() <= 64 + 2
        && !word.is_empty()
        && (first.ends_with(b":") || first.ends_with(b"]:") || first.ends_with(b"]"));
    if !ok_tag {
        return (&[], &[], s);
    }
    match word.iter().position(|&b| b == b'[') {
        Some(open) if word.ends_with(b"]") => (&word[..open], &word[open + 1..word.len() - 1], rest),
        _ => (word, &[], rest),
    }
}

#[cfg(test)]
mod tests;

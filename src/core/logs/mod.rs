//! Log records: the second kind of item the pipeline moves (the first is samples).
//!
//! A record travels encoded (postcard) from the input that made it to every output that
//! takes logs: in each such output's [`queue::LogQueue`] (a byte ring bounded in bytes) and,
//! during an outage, in the log part of its outage buffer (`<buffer_dir>/<key>/logs`).
//! Outputs read records back borrowed from the encoded bytes ([`LogBatch::records`]), so
//! moving a record costs one copy of its bytes per output and no allocation per field.

pub mod queue;

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// One log entry. Text fields are empty when the source did not give them.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct LogRecord<'a> {
    /// The entry's own time (ms since the epoch) if it carried one, else `received_ms`.
    /// First field: [`timestamp_of`] reads it without decoding the rest.
    pub ts_ms: i64,
    /// When the agent received it.
    pub received_ms: i64,
    /// Counts the records an input made in this process: with `received_ms` it tells two
    /// identical lines apart, so that only a replayed copy gets the same [`record_id`].
    pub seq: u64,
    /// 0 (emergency) to 7 (debug), as syslog numbers them.
    pub severity: u8,
    /// 0 (kern) to 23 (local7), as syslog numbers them.
    pub facility: u8,
    #[serde(borrow)]
    pub hostname: Cow<'a, str>,
    #[serde(borrow)]
    pub appname: Cow<'a, str>,
    #[serde(borrow)]
    pub procid: Cow<'a, str>,
    #[serde(borrow)]
    pub msgid: Cow<'a, str>,
    #[serde(borrow)]
    pub message: Cow<'a, str>,
    /// RFC 5424 structured data, one entry per parameter (an element without parameters
    /// has one entry with an empty name).
    #[serde(borrow)]
    pub structured: Vec<SdParam<'a>>,
    /// Who sent it: the peer's address, a socket path, or the input's name.
    #[serde(borrow)]
    pub source: Cow<'a, str>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct SdParam<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow)]
    pub value: Cow<'a, str>,
}

pub const SEVERITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

pub const FACILITY_NAMES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// The name of a severity number (`info`); "unknown" past 7.
pub fn severity_name(severity: u8) -> &'static str {
    SEVERITY_NAMES
        .get(usize::from(severity))
        .copied()
        .unwrap_or("unknown")
}

/// The name of a facility number (`daemon`); "unknown" past 23.
pub fn facility_name(facility: u8) -> &'static str {
    FACILITY_NAMES
        .get(usize::from(facility))
        .copied()
        .unwrap_or("unknown")
}

/// A severity from a level word as scripts and loggers write it (`info`, `WARN`,
/// `error`, `fatal`…, or a digit); `None` when the word means nothing.
pub fn severity_from_word(word: &str) -> Option<u8> {
    let w = word.trim().to_ascii_lowercase();
    let severity = match w.as_str() {
        "emerg" | "emergency" | "panic" => 0,
        "alert" => 1,
        "crit" | "critical" | "fatal" => 2,
        "err" | "error" => 3,
        "warn" | "warning" => 4,
        "notice" => 5,
        "info" | "informational" | "information" => 6,
        "debug" | "trace" => 7,
        d if d.len() == 1 => {
            let n = d.parse::<u8>().ok()?;
            return (n <= 7).then_some(n);
        }
        _ => return None,
    };
    Some(severity)
}

/// Encodes `record` onto the end of `out` (a reused buffer).
pub fn encode(record: &LogRecord<'_>, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    let at = out.len();
    match postcard::to_extend(record, std::mem::take(out)) {
        Ok(v) => {
            *out = v;
            Ok(())
        }
        Err(e) => {
            out.truncate(at);
            Err(e)
        }
    }
}

/// Decodes one encoded record, borrowing its text from `bytes`.
pub fn decode(bytes: &[u8]) -> Result<LogRecord<'_>, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// The `ts_ms` of an encoded record, read without decoding the rest.
pub fn timestamp_of(bytes: &[u8]) -> Option<i64> {
    postcard::take_from_bytes::<i64>(bytes)
        .ok()
        .map(|(ts, _)| ts)
}

/// A stable identity of an encoded record (FNV-1a, 64 bits, over its bytes): the same
/// record read back from the outage buffer gets the same id, so an output that keys
/// documents by it stores a replayed record once. Stable across builds and machines (no
/// `std` hasher, whose algorithm may change).
pub fn record_id(encoded: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in encoded {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Encoded records one after another, each as a u32 LE length and its bytes: what an
/// output is handed to write, and the payload of a frame of the log outage buffer.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct LogBatch {
    bytes: Vec<u8>,
    count: usize,
}

impl LogBatch {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The batch as one payload.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn push_encoded(&mut self, record: &[u8]) {
        self.bytes
            .extend_from_slice(&(record.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(record);
        self.count += 1;
    }

    /// Appends the records of `other`.
    pub fn extend(&mut self, other: &LogBatch) {
        self.bytes.extend_from_slice(&other.bytes);
        self.count += other.count;
    }

    /// A batch from a payload, checking its framing (not its records); `None` when a length
    /// runs past the end.
    pub fn from_payload(payload: &[u8]) -> Option<LogBatch> {
        let count = raw_records(payload).try_fold(0usize, |n, r| r.map(|_| n + 1))?;
        Some(LogBatch {
            bytes: payload.to_vec(),
            count,
        })
    }

    /// The encoded records.
    pub fn raw(&self) -> impl Iterator<Item = &[u8]> + '_ {
        raw_records(&self.bytes).map_while(|r| r)
    }

    /// The records with their [`record_id`]s; a record that does not decode (it cannot
    /// after a CRC check, unless written by a different build) is an `Err`.
    pub fn records(&self) -> impl Iterator<Item = (u64, Result<LogRecord<'_>, postcard::Error>)> {
        self.raw().map(|r| (record_id(r), decode(r)))
    }
}

/// The length-prefixed items of `payload`; `None` for a length that runs past the end (the
/// last item then).
fn raw_records(mut payload: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    std::iter::from_fn(move || {
        let (len, rest) = payload.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let Some(record) = rest.get(..len) else {
            payload = &[];
            return Some(None);
        };
        payload = &rest[len..];
        Some(Some(record))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(msg: &str) -> LogRecord<'_> {
        LogRecord {
            ts_ms: 1_700_000_000_123,
            received_ms: 1_700_000_000_456,
            seq: 7,
            severity: 3,
            facility: 16,
            hostname: "router".into(),
            appname: "dnsmasq".into(),
            procid: "1234".into(),
            msgid: "".into(),
            message: Cow::Borrowed(msg),
            structured: vec![SdParam {
                id: "meta".into(),
                name: "ip".into(),
                value: "10.0.0.1".into(),
            }],
            source: "192.0.2.1:514".into(),
        }
    }

    #[test]
    fn a_record_comes_back_as_it_went_in_with_its_text_borrowed() {
        let r = record("query[A] example.org from 10.0.0.2");
        let mut buf = b"old".to_vec();
        encode(&r, &mut buf).unwrap();
        let back = decode(&buf[3..]).unwrap();
        assert_eq!(back, r);
        assert!(matches!(back.message, Cow::Borrowed(_)));
        assert_eq!(timestamp_of(&buf[3..]), Some(r.ts_ms));
    }

    #[test]
    fn a_batch_holds_records_in_order_and_ids_follow_the_bytes() {
        let mut batch = LogBatch::default();
        let mut buf = Vec::new();
        for m in ["a", "b", "a"] {
            buf.clear();
            let mut r = record(m);
            r.seq = 1;
            encode(&r, &mut buf).unwrap();
            batch.push_encoded(&buf);
        }
        let got: Vec<(u64, String)> = batch
            .records()
            .map(|(id, r)| (id, r.unwrap().message.into_owned()))
            .collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, got[2].0, "same bytes, same id");
        assert_ne!(got[0].0, got[1].0);
        let again = LogBatch::from_payload(batch.as_bytes()).unwrap();
        assert_eq!(again, batch);
    }

    #[test]
    fn a_payload_whose_length_runs_past_its_end_is_refused() {
        let mut batch = LogBatch::default();
        batch.push_encoded(b"abc");
        let mut bytes = batch.as_bytes().to_vec();
        bytes.extend_from_slice(&100u32.to_le_bytes());
        bytes.push(1);
        assert_eq!(LogBatch::from_payload(&bytes), None);
        assert_eq!(LogBatch::from_payload(&[1, 0]).map(|b| b.len()), Some(0));
    }

    #[test]
    fn ids_are_stable_across_builds() {
        // FNV-1a 64 of "a": fixed by the algorithm, not by this build.
        assert_eq!(record_id(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(record_id(b""), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn level_words_map_to_severities() {
        assert_eq!(severity_from_word("WARN"), Some(4));
        assert_eq!(severity_from_word("fatal"), Some(2));
        assert_eq!(severity_from_word("6"), Some(6));
        assert_eq!(severity_from_word("9"), None);
        assert_eq!(severity_from_word("loud"), None);
        assert_eq!(severity_name(4), "warning");
        assert_eq!(facility_name(23), "local7");
    }
}

//! `netstat`: TCP connections by state (/proc/net/tcp, tcp6) and TCP counters
//! (/proc/net/snmp `Tcp:`, /proc/net/netstat `TcpExt:`).

use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::{read_parsed, snmp, ProcFile};
use crate::inputs::BuildCtx;
use serde::Deserialize;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# TCP connections per state (IPv4 and IPv6 together) and TCP counters: opens, resets,
# segments, retransmits, SYN cookies, listen queue overflows.
- netstat
";

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {}

/// The metric of each TCP state, indexed by the kernel's state number (`st` column).
pub const STATES: [(u8, &str); 11] = [
    (0x01, "tcp_established"),
    (0x02, "tcp_syn_sent"),
    (0x03, "tcp_syn_recv"),
    (0x04, "tcp_fin_wait1"),
    (0x05, "tcp_fin_wait2"),
    (0x06, "tcp_time_wait"),
    (0x07, "tcp_close"),
    (0x08, "tcp_close_wait"),
    (0x09, "tcp_last_ack"),
    (0x0A, "tcp_listen"),
    (0x0B, "tcp_closing"),
];

/// `Tcp:` fields of /proc/net/snmp reported as counters with a rate.
const SNMP_COUNTERS: [(&str, &str); 9] = [
    ("ActiveOpens", "tcp_active_opens"),
    ("PassiveOpens", "tcp_passive_opens"),
    ("AttemptFails", "tcp_attempt_fails"),
    ("EstabResets", "tcp_estab_resets"),
    ("InSegs", "tcp_in_segs"),
    ("OutSegs", "tcp_out_segs"),
    ("RetransSegs", "tcp_retrans_segs"),
    ("InErrs", "tcp_in_errs"),
    ("OutRsts", "tcp_out_rsts"),
];

/// `TcpExt:` fields of /proc/net/netstat: `(field, metric, with a rate)`.
const TCPEXT: [(&str, &str, bool); 7] = [
    ("TCPSynRetrans", "tcp_syn_retrans", true),
    ("SyncookiesSent", "tcp_syncookies_sent", false),
    ("SyncookiesRecv", "tcp_syncookies_recv", false),
    ("SyncookiesFailed", "tcp_syncookies_failed", false),
    ("EmbryonicRsts", "tcp_embryonic_rsts", false),
    ("ListenOverflows", "tcp_listen_overflows", false),
    ("ListenDrops", "tcp_listen_drops", false),
];

/// Socket tables are streamed through a buffer of this size, however many sockets there are.
const CHUNK: usize = 16 * 1024;

pub struct Netstat {
    tcp: PathBuf,
    tcp6: PathBuf,
    chunk: Vec<u8>,
    snmp: ProcFile,
    netstat: ProcFile,
}

pub fn build(_cfg: &Config, ctx: &BuildCtx) -> Result<Netstat, String> {
    let net = ctx.procfs_root.join("net");
    Ok(Netstat {
        tcp: net.join("tcp"),
        tcp6: net.join("tcp6"),
        chunk: vec![0; CHUNK],
        snmp: ProcFile::new(net.join("snmp")),
        netstat: ProcFile::new(net.join("netstat")),
    })
}

/// Sockets per state number; index 0 and states above 0x0B are not counted.
pub type StateCounts = [u64; 12];

/// The state number of one socket line of /proc/net/tcp or tcp6: the 4th column, two hex
/// digits. Looks at that column only.
pub fn line_state(line: &[u8]) -> Result<u8, &'static str> {
    let st = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .nth(3)
        .ok_or("fewer than 4 columns")?;
    match st {
        [hi, lo] => match (hex(*hi), hex(*lo)) {
            (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
            _ => Err("state is not hex"),
        },
        _ => Err("state is not two hex digits"),
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Adds the sockets of one /proc/net/tcp-style table, read from `r`, to `counts`. The
/// table is read in `chunk`-sized pieces; only the header and the state column are looked at.
pub fn count_states(
    mut r: impl Read,
    chunk: &mut [u8],
    counts: &mut StateCounts,
) -> Result<(), ScanError> {
    let mut filled = 0;
    let mut header_seen = false;
    loop {
        let n = match r.read(&mut chunk[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(ScanError::Io(e)),
        };
        if n == 0 {
            if filled > 0 {
                on_line(&chunk[..filled], &mut header_seen, counts)?;
            } else if !header_seen {
                return Err(ScanError::Parse("empty file"));
            }
            return Ok(());
        }
        filled += n;
        let mut start = 0;
        while let Some(len) = chunk[start..filled].iter().position(|&b| b == b'\n') {
            on_line(&chunk[start..start + len], &mut header_seen, counts)?;
            start += len + 1;
        }
        chunk.copy_within(start..filled, 0);
        filled -= start;
        if filled == chunk.len() {
            return Err(ScanError::Parse("a line longer than the read buffer"));
        }
    }
}

/// One line of a socket table: the header first, then one socket per line.
fn on_line(line: &[u8], header_seen: &mut bool, counts: &mut StateCounts) -> Result<(), ScanError> {
    if !*header_seen {
        *header_seen = true;
        let first = line
            .split(|b| b.is_ascii_whitespace())
            .find(|f| !f.is_empty());
        return match first {
            Some(b"sl") => Ok(()),
            _ => Err(ScanError::Parse("no `sl local_address …` header")),
        };
    }
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let state = line_state(line).map_err(ScanError::Parse)?;
    if let Some(c) = counts.get_mut(state as usize) {
        *c += 1;
    }
    Ok(())
}

/// Why a socket table could not be counted.
#[derive(Debug)]
pub enum ScanError {
    Io(std::io::Error),
    Parse(&'static str),
}

impl ScanError {
    fn at(self, path: &Path) -> InputError {
        match self {
            ScanError::Io(e) => InputError::io(path, &e),
            ScanError::Parse(e) => InputError::parse(path, e),
        }
    }
}

/// The snmp `Tcp:` values this input reports: the counters of [`SNMP_COUNTERS`] in order,
/// then CurrEstab. A field the kernel does not have stays `None`.
pub fn parse_snmp_tcp(text: &str) -> Result<[Option<f64>; 10], String> {
    let mut out = [None; 10];
    for (section, field, value) in snmp::parse(text)? {
        if section != "Tcp" {
            continue;
        }
        if field == "CurrEstab" {
            out[9] = Some(value);
        } else if let Some(i) = SNMP_COUNTERS.iter().position(|(f, _)| *f == field) {
            out[i] = Some(value);
        }
    }
    Ok(out)
}

/// The netstat `TcpExt:` values of [`TCPEXT`], in order.
pub fn parse_tcpext(text: &str) -> Result<[Option<f64>; 7], String> {
    let mut out = [None; 7];
    for (section, field, value) in snmp::parse(text)? {
        if section != "TcpExt" {
            continue;
        }
        if let Some(i) = TCPEXT.iter().position(|(f, _, _)| *f == field) {
            out[i] = Some(value);
        }
    }
    Ok(out)
}

impl Netstat {
    /// Sockets per state over tcp and tcp6 (which is absent when IPv6 is off).
    fn states(&mut self) -> Result<StateCounts, InputError> {
        let mut counts = StateCounts::default();
        for (path, required) in [(&self.tcp, true), (&self.tcp6, false)] {
            let file = match std::fs::File::open(path) {
                Ok(f) => f,
                Err(e) if !required && e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(InputError::io(path, &e)),
            };
            count_states(file, &mut self.chunk, &mut counts).map_err(|e| e.at(path))?;
        }
        Ok(counts)
    }

    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        match self.states() {
            Ok(counts) => {
                for (state, name) in STATES {
                    em.gauge(name, &[], counts[state as usize] as f64);
                }
            }
            Err(e) => em.partial_failure(e),
        }
        match read_parsed(&mut self.snmp, parse_snmp_tcp) {
            Ok(v) => {
                for ((_, name), value) in SNMP_COUNTERS.iter().zip(v) {
                    if let Some(value) = value {
                        em.counter(name, &[], value);
                    }
                }
                if let Some(curr) = v[9] {
                    em.gauge("tcp_curr_estab", &[], curr);
                }
            }
            Err(e) => em.partial_failure(e),
        }
        match read_parsed(&mut self.netstat, parse_tcpext) {
            Ok(v) => {
                for ((_, name, rate), value) in TCPEXT.iter().zip(v) {
                    match value {
                        Some(value) if *rate => {
                            em.counter(name, &[], value);
                        }
                        Some(value) => em.gauge(name, &[], value),
                        None => {}
                    }
                }
            }
            Err(e) => em.partial_failure(e),
        }
        Ok(())
    }
}

impl Input for Netstat {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

//! `netstat`: TCP connections by state (netlink sock_diag, or /proc/net/tcp and tcp6) and
//! TCP counters (/proc/net/snmp `Tcp:`, /proc/net/netstat `TcpExt:`).

use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::{read_parsed, snmp, ProcFile};
use crate::inputs::BuildCtx;
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use serde::{Deserialize, Serialize};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# TCP connections per state (IPv4 and IPv6 together) and TCP counters: opens, resets,
# segments, retransmits, SYN cookies, listen queue overflows.
- netstat:
    # Count connections through netlink sock_diag (as `ss` does), which is much cheaper than
    # reading /proc/net/tcp and tcp6. /proc is read instead when this is false, when
    # procfs_root is not /proc, or when the kernel refuses netlink.
    use_netlink: true
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub use_netlink: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { use_netlink: true }
    }
}

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
    /// `None`: the socket tables are read from /proc.
    diag: Option<Diag>,
    tcp: PathBuf,
    tcp6: PathBuf,
    chunk: Vec<u8>,
    snmp: ProcFile,
    netstat: ProcFile,
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<Netstat, String> {
    let net = ctx.procfs_root.join("net");
    // Netlink answers for the agent's own network namespace, which is the one /proc/net
    // shows only under the real /proc (not a fixture tree, not a host /proc mounted elsewhere).
    let diag = if cfg.use_netlink && ctx.procfs_root == Path::new("/proc") {
        match Diag::open() {
            Ok(d) => Some(d),
            Err(e) => {
                log::info!("netstat: netlink sock_diag unavailable ({e}), reading /proc/net/tcp");
                None
            }
        }
    } else {
        None
    };
    Ok(Netstat {
        diag,
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

/// `NETLINK_SOCK_DIAG` request type: `SOCK_DIAG_BY_FAMILY`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// The older `TCPDIAG_GETSOCK` request: its dump covers IPv4 and IPv6 in one walk of the
/// kernel's socket hash table (the walk is most of the cost), where `SOCK_DIAG_BY_FAMILY`
/// needs one walk per family.
const TCPDIAG_GETSOCK: u16 = 18;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HDRLEN: usize = 16;
/// `struct inet_diag_req_v2`.
const DIAG_REQ_LEN: usize = 56;
/// `struct inet_diag_req` (of `TCPDIAG_GETSOCK`).
const DIAG_REQ_COMPAT_LEN: usize = 60;
/// `struct inet_diag_msg` (without attributes).
const DIAG_MSG_LEN: usize = 72;
const IPPROTO_TCP: u8 = 6;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;
/// Every TCP state (bit n: state n), with TCP_NEW_SYN_RECV (12) as `ss` asks.
const ALL_STATES: u32 = 0x1fff;
/// Receive buffer of netlink replies; the kernel fills a dump datagram up to this size.
const NETLINK_BUF: usize = 32 * 1024;
/// A dump not answered within this time is an error rather than a hung collection.
const NETLINK_TIMEOUT: Duration = Duration::from_secs(2);

/// A netlink sock_diag socket and its receive buffer, kept for the life of the input.
pub struct Diag {
    fd: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
    /// Whether `TCPDIAG_GETSOCK` is used (until the kernel refuses it).
    compat: bool,
}

/// Why a sock_diag dump failed.
#[derive(Debug, PartialEq, Eq)]
pub enum DiagError {
    /// send/recv on the socket failed.
    Os(Errno),
    /// The kernel answered with an error (a positive errno).
    Kernel(i32),
    /// A reply that is not a well-formed netlink message.
    Parse(&'static str),
}

impl std::fmt::Display for DiagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiagError::Os(e) => write!(f, "netlink sock_diag: {e}"),
            DiagError::Kernel(e) => write!(
                f,
                "netlink sock_diag: kernel error: {}",
                std::io::Error::from_raw_os_error(*e)
            ),
            DiagError::Parse(e) => write!(f, "netlink sock_diag: {e}"),
        }
    }
}

/// Whether a sock_diag dump goes on after one datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Dump {
    More,
    Done,
}

/// The `SOCK_DIAG_BY_FAMILY` dump request of every TCP socket of `family`:
/// `nlmsghdr` then `inet_diag_req_v2`, in native byte order.
pub fn diag_request(family: u8, seq: u32) -> [u8; NLMSG_HDRLEN + DIAG_REQ_LEN] {
    let mut req = [0; NLMSG_HDRLEN + DIAG_REQ_LEN];
    req[0..4].copy_from_slice(&((NLMSG_HDRLEN + DIAG_REQ_LEN) as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid 0: the kernel.
    req[16] = family;
    req[17] = IPPROTO_TCP;
    // idiag_ext 0, pad 0.
    req[20..24].copy_from_slice(&ALL_STATES.to_ne_bytes());
    // inet_diag_sockid: zeros, no filter.
    req
}

/// The `TCPDIAG_GETSOCK` dump request of every TCP socket, IPv4 and IPv6:
/// `nlmsghdr` then `inet_diag_req`, in native byte order.
pub fn diag_request_compat(seq: u32) -> [u8; NLMSG_HDRLEN + DIAG_REQ_COMPAT_LEN] {
    let mut req = [0; NLMSG_HDRLEN + DIAG_REQ_COMPAT_LEN];
    req[0..4].copy_from_slice(&((NLMSG_HDRLEN + DIAG_REQ_COMPAT_LEN) as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
    // idiag_family (ignored by the dump, which is of every family), src_len, dst_len, ext.
    req[16] = AF_INET;
    // inet_diag_sockid (48 bytes): zeros, no filter; then idiag_states and idiag_dbs (0).
    req[68..72].copy_from_slice(&ALL_STATES.to_ne_bytes());
    req
}

fn ne_u16(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn ne_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Adds the sockets of one datagram of a sock_diag dump to `counts`. Messages of another
/// sequence number (left over from an earlier, abandoned dump) are skipped. Every length is
/// checked before it is used.
pub fn parse_diag(data: &[u8], seq: u32, counts: &mut StateCounts) -> Result<Dump, DiagError> {
    let mut off = 0;
    while off < data.len() {
        let rest = &data[off..];
        if rest.len() < NLMSG_HDRLEN {
            return Err(DiagError::Parse("truncated netlink header"));
        }
        let len = ne_u32(rest, 0) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(DiagError::Parse("netlink message length out of bounds"));
        }
        let kind = ne_u16(rest, 4);
        let msg_seq = ne_u32(rest, 8);
        let payload = &rest[NLMSG_HDRLEN..len];
        // NLMSG_ALIGN: messages start at multiples of 4.
        off += (len + 3) & !3;
        if msg_seq != seq {
            continue;
        }
        match kind {
            NLMSG_DONE => {
                // The payload is the dump's result: negative when it failed part way.
                if payload.len() >= 4 {
                    let res = ne_u32(payload, 0) as i32;
                    if res < 0 {
                        return Err(DiagError::Kernel(res.saturating_neg()));
                    }
                }
                return Ok(Dump::Done);
            }
            NLMSG_ERROR => {
                if payload.len() < 4 {
                    return Err(DiagError::Parse("truncated NLMSG_ERROR"));
                }
                match ne_u32(payload, 0) as i32 {
                    0 => {} // an acknowledgement
                    e => return Err(DiagError::Kernel(e.saturating_neg())),
                }
            }
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
                if payload.len() < DIAG_MSG_LEN {
                    return Err(DiagError::Parse("truncated inet_diag_msg"));
                }
                if let Some(c) = counts.get_mut(payload[1] as usize) {
                    *c += 1;
                }
            }
            _ => {} // NLMSG_NOOP and the like
        }
    }
    Ok(Dump::More)
}

impl Diag {
    /// A `NETLINK_SOCK_DIAG` socket; fails on kernels without it or under a seccomp filter.
    pub fn open() -> Result<Diag, Errno> {
        Ok(Diag {
            fd: Self::socket()?,
            buf: vec![0; NETLINK_BUF],
            seq: 0,
            compat: true,
        })
    }

    fn socket() -> Result<OwnedFd, Errno> {
        let fd = net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(net::netlink::SOCK_DIAG),
        )?;
        net::sockopt::set_socket_timeout(&fd, net::sockopt::Timeout::Recv, Some(NETLINK_TIMEOUT))?;
        net::sockopt::set_socket_timeout(&fd, net::sockopt::Timeout::Send, Some(NETLINK_TIMEOUT))?;
        Ok(fd)
    }

    /// Adds the TCP sockets of `family` to `counts` (`None`: of every family).
    pub fn dump(&mut self, family: Option<u8>, counts: &mut StateCounts) -> Result<(), DiagError> {
        self.seq = self.seq.wrapping_add(1);
        let (v2, compat);
        let req: &[u8] = match family {
            Some(family) => {
                v2 = diag_request(family, self.seq);
                &v2
            }
            None => {
                compat = diag_request_compat(self.seq);
                &compat
            }
        };
        loop {
            match net::send(&self.fd, req, SendFlags::empty()) {
                Ok(n) if n == req.len() => break,
                Ok(_) => return Err(DiagError::Parse("request sent in part")),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(DiagError::Os(e)),
            }
        }
        loop {
            // TRUNC: the datagram's full length, to detect one larger than the buffer.
            let n = match net::recv(&self.fd, &mut self.buf[..], RecvFlags::TRUNC) {
                Ok((_, n)) => n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(DiagError::Os(e)),
            };
            if n == 0 {
                return Err(DiagError::Parse("an empty reply"));
            }
            if n > self.buf.len() {
                return Err(DiagError::Parse("a reply larger than the receive buffer"));
            }
            if parse_diag(&self.buf[..n], self.seq, counts)? == Dump::Done {
                return Ok(());
            }
        }
    }

    /// Sockets per state over IPv4 and IPv6 (an IPv6 dump the kernel refuses counts none).
    pub fn count(&mut self) -> Result<StateCounts, DiagError> {
        let counts = self.dumps();
        if let Err(DiagError::Os(_) | DiagError::Parse(_)) = counts {
            // A dump left part way would make the next request fail (EBUSY) and leave its
            // remaining replies queued: start again on a new socket.
            if let Ok(fd) = Self::socket() {
                self.fd = fd;
            }
        }
        counts
    }

    fn dumps(&mut self) -> Result<StateCounts, DiagError> {
        let mut counts = StateCounts::default();
        if self.compat {
            match self.dump(None, &mut counts) {
                // A kernel without TCPDIAG_GETSOCK: one dump per family from now on.
                Err(DiagError::Kernel(_)) => {
                    self.compat = false;
                    counts = StateCounts::default();
                }
                other => return other.map(|_| counts),
            }
        }
        self.dump(Some(AF_INET), &mut counts)?;
        match self.dump(Some(AF_INET6), &mut counts) {
            Err(DiagError::Kernel(e)) if e == Errno::NOENT.raw_os_error() => {}
            Err(DiagError::Kernel(e)) if e == Errno::AFNOSUPPORT.raw_os_error() => {}
            other => other?,
        }
        Ok(counts)
    }
}

impl Netstat {
    /// Whether connections are counted through netlink (else from /proc).
    pub fn uses_netlink(&self) -> bool {
        self.diag.is_some()
    }

    /// Sockets per state: through netlink, or over tcp and tcp6 (which is absent when IPv6
    /// is off).
    fn states(&mut self) -> Result<StateCounts, InputError> {
        if let Some(diag) = &mut self.diag {
            match diag.count() {
                Ok(counts) => return Ok(counts),
                // The kernel refuses the dump (e.g. no tcp_diag module): /proc from now on.
                Err(e @ DiagError::Kernel(_)) => {
                    log::warn!("netstat: {e}; reading /proc/net/tcp from now on");
                    self.diag = None;
                }
                Err(e) => return Err(InputError::new(e.to_string())),
            }
        }
        self.proc_states()
    }

    /// Sockets per state over /proc/net/tcp and tcp6.
    fn proc_states(&mut self) -> Result<StateCounts, InputError> {
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

//! One agent's session: a connected UDP socket on the agent's executor, request ids,
//! timeouts and retries, v3 engine discovery and time, and the GET / walk operations.
//! Buffers are reused across requests, so a warm session allocates nothing per request.

use super::ber::Oid;
use super::pdu::{self, Ask, MessageError, Pdu, Value};
use super::usm::{AuthProtocol, PrivProtocol, MAX_MAC};
use crate::core::offload;
use futures_lite::FutureExt;
use smol::net::UdpSocket;
use std::fmt;
use std::time::{Duration, Instant};

/// The SNMP version and its credentials.
pub enum Security {
    /// v1 (`version` 0) or v2c (1) with a community.
    Community { version: i64, community: Vec<u8> },
    V3(V3User),
}

/// A v3 user: pass phrases are turned into keys once (Ku), localized per engine.
pub struct V3User {
    pub user: Vec<u8>,
    pub auth: Option<(AuthProtocol, Vec<u8>)>,
    pub privacy: Option<(PrivProtocol, Vec<u8>)>,
}

/// What went wrong with a request, in words for the log.
#[derive(Debug, Clone, PartialEq)]
pub enum SnmpError {
    /// No answer within the timeout, after every retry.
    Timeout { tries: u32, timeout: Duration, hint: &'static str },
    /// The socket failed (ICMP port unreachable shows here as "connection refused").
    Io(String),
    /// The host name did not resolve.
    Resolve(String),
    /// The agent answered with an error status.
    Status { status: i64, index: i64 },
    /// A v3 report: the agent refused the request's security.
    Report(&'static str),
    /// The agent answered with bytes we cannot read.
    Malformed(String),
    /// A walk that does not move forward.
    NotIncreasing(String),
}

impl fmt::Display for SnmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnmpError::Timeout { tries, timeout, hint } => {
                write!(f, "no answer in {tries} tries of {timeout:?}{hint}")
            }
            SnmpError::Io(e) => write!(f, "{e}"),
            SnmpError::Resolve(e) => write!(f, "cannot resolve: {e}"),
            SnmpError::Status { status, index } => {
                write!(f, "error status {} ({}) at variable {index}", status, status_name(*status))
            }
            SnmpError::Report(why) => f.write_str(why),
            SnmpError::Malformed(e) => write!(f, "unreadable answer: {e}"),
            SnmpError::NotIncreasing(o) => write!(f, "the walk does not advance (agent returned {o} again)"),
        }
    }
}

fn status_name(s: i64) -> &'static str {
    match s {
        1 => "tooBig",
        2 => "noSuchName",
        3 => "badValue",
        4 => "readOnly",
        5 => "genErr",
        6 => "noAccess",
        16 => "authorizationError",
        _ => "other",
    }
}

/// Which usmStats counter (1.3.6.1.6.3.15.1.1.N.0) an agent's report names.
fn usm_stat(oid: &Oid) -> Option<u32> {
    const USM_STATS: [u32; 9] = [1, 3, 6, 1, 6, 3, 15, 1, 1];
    let arcs = oid.arcs();
    (arcs.len() == 11 && arcs.starts_with(&USM_STATS)).then(|| arcs[9])
}

/// What a report means, for the log.
fn report_meaning(stat: Option<u32>) -> &'static str {
    match stat {
        Some(1) => "v3: the agent does not allow this security level for the user (usmStatsUnsupportedSecLevels): check which pass phrases the user has",
        Some(2) => "v3: not in the agent's time window (usmStatsNotInTimeWindows)",
        Some(3) => "v3: the agent does not know this username (usmStatsUnknownUserNames)",
        Some(4) => "v3: unknown engine ID (usmStatsUnknownEngineIDs)",
        Some(5) => "v3: authentication failed: wrong authPassPhrase or authProtocol (usmStatsWrongDigests)",
        Some(6) => "v3: decryption failed: wrong privacyPassPhrase or privacyProtocol (usmStatsDecryptionErrors)",
        Some(_) => "v3: the agent reported a USM error",
        None => "the agent sent a report instead of an answer",
    }
}

/// The engine we talk to and the keys localized to it.
struct Engine {
    id: Vec<u8>,
    boots: u32,
    time: u32,
    /// When `time` was learnt: the time sent is `time` plus what has passed since.
    at: Instant,
    auth_key: Vec<u8>,
    priv_key: Vec<u8>,
}

/// The socket and the buffers of one agent's requests.
struct Link {
    host: String,
    port: u16,
    socket: Option<UdpSocket>,
    timeout: Duration,
    retries: u32,
    send: Vec<u8>,
    recv: Vec<u8>,
    requests: u64,
    discarded: u64,
}

pub struct Session {
    link: Link,
    security: Security,
    /// Ku per pass phrase, computed at the first v3 request (1 MiB of hashing each).
    ku: Option<(Vec<u8>, Vec<u8>)>,
    engine: Option<Engine>,
    next_id: i32,
    salt: u64,
    scoped: Vec<u8>,
    plain: Vec<u8>,
}

impl Link {
    async fn open(&mut self) -> Result<(), SnmpError> {
        if self.socket.is_none() {
            let addrs = offload::resolve(&self.host, self.port)
                .await
                .map_err(|e| SnmpError::Resolve(format!("{}: {e}", self.host)))?;
            let addr = *addrs
                .first()
                .ok_or_else(|| SnmpError::Resolve(format!("{}: no address", self.host)))?;
            let bind = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let s = UdpSocket::bind(bind).await.map_err(|e| SnmpError::Io(format!("bind: {e}")))?;
            // Connected: the kernel drops datagrams from anyone but the agent.
            s.connect(addr).await.map_err(|e| SnmpError::Io(format!("connect: {e}")))?;
            self.socket = Some(s);
        }
        Ok(())
    }

    /// Sends `self.send` and waits for a datagram that `accept` takes (its length), resending
    /// on timeout. `accept` sees each datagram and says whether it answers this request.
    async fn exchange(&mut self, accept: impl Fn(&[u8]) -> bool) -> Result<usize, SnmpError> {
        let timeout = self.timeout;
        let tries = self.retries + 1;
        self.open().await?;
        let socket = self.socket.as_ref().expect("opened above");
        for _ in 0..tries {
            self.requests += 1;
            if let Err(e) = socket.send(&self.send).await {
                self.socket = None;
                return Err(SnmpError::Io(format!("send: {e}")));
            }
            let deadline = Instant::now() + timeout;
            loop {
                let recv = async { Some(socket.recv(&mut self.recv).await) };
                let timer = async {
                    smol::Timer::at(deadline).await;
                    None
                };
                match recv.or(timer).await {
                    None => break,
                    Some(Ok(n)) if accept(&self.recv[..n]) => return Ok(n),
                    Some(Ok(_)) => self.discarded += 1,
                    Some(Err(e)) => {
                        self.socket = None;
                        return Err(SnmpError::Io(format!("receive: {e}")));
                    }
                }
            }
        }
        Err(SnmpError::Timeout { tries, timeout, hint: "" })
    }
}

impl Session {
    pub fn new(host: &str, port: u16, security: Security, timeout: Duration, retries: u32) -> Self {
        // Ids start somewhere unpredictable, so a restarted agent does not take late answers
        // meant for the previous process as its own.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos() ^ (d.as_secs() as u32) ^ std::process::id());
        Session {
            link: Link {
                host: host.to_string(),
                port,
                socket: None,
                timeout,
                retries,
                send: Vec::with_capacity(512),
                recv: vec![0; pdu::MAX_MESSAGE],
                requests: 0,
                discarded: 0,
            },
            security,
            ku: None,
            engine: None,
            next_id: (seed & 0x3fff_ffff) as i32,
            salt: seed as u64 ^ 0x5bd1_e995_0000_0000,
            scoped: Vec::new(),
            plain: Vec::new(),
        }
    }

    /// Requests sent in this session, retries included (the benchmark's figure).
    pub fn requests(&self) -> u64 {
        self.link.requests
    }

    /// Datagrams dropped as not an answer to the request waited for, or unreadable.
    pub fn discarded(&self) -> u64 {
        self.link.discarded
    }

    fn fresh_id(&mut self) -> i32 {
        self.next_id = (self.next_id + 1) & 0x3fff_ffff;
        self.next_id
    }

    /// One request and its answer, handed to `on_answer` (the PDU borrows the session's
    /// buffers). v3 discovery, and a resync when the agent says our time is off, happen here.
    pub async fn request<R>(
        &mut self,
        kind: u8,
        oids: &[Oid],
        max_repetitions: i64,
        on_answer: impl FnMut(Pdu<'_>) -> Result<R, SnmpError>,
    ) -> Result<R, SnmpError> {
        let hint = self.silence_hint();
        self.request_once(kind, oids, max_repetitions, on_answer).await.map_err(|e| match e {
            SnmpError::Timeout { tries, timeout, .. } => SnmpError::Timeout { tries, timeout, hint },
            e => e,
        })
    }

    /// What else an agent's silence may mean: agents drop what they cannot authenticate.
    fn silence_hint(&self) -> &'static str {
        match &self.security {
            Security::Community { .. } => " (a wrong communityString looks like this: agents do not answer it)",
            Security::V3(u) if u.privacy.is_some() => {
                " (a wrong privacyPassPhrase or privacyProtocol looks like this: net-snmp drops what it cannot decrypt)"
            }
            Security::V3(_) => "",
        }
    }

    async fn request_once<R>(
        &mut self,
        kind: u8,
        oids: &[Oid],
        max_repetitions: i64,
        mut on_answer: impl FnMut(Pdu<'_>) -> Result<R, SnmpError>,
    ) -> Result<R, SnmpError> {
        let request_id = self.fresh_id();
        let ask = Ask { kind, request_id, max_repetitions };
        if let Security::Community { version, community } = &self.security {
            let version = *version;
            pdu::write_community(&mut self.link.send, version, community, ask, oids);
            let want = request_id as i64;
            let n = self
                .link
                .exchange(|b| pdu::read_community(b, version, community).is_ok_and(|p| p.request_id == want))
                .await?;
            let pdu = pdu::read_community(&self.link.recv[..n], version, community)
                .map_err(|e| SnmpError::Malformed(e.to_string()))?;
            return on_answer(pdu);
        }
        for attempt in 0..3 {
            if self.engine.is_none() {
                self.discover().await?;
            }
            let msg_id = self.write_v3_request(ask, oids)?;
            let n = self
                .link
                .exchange(|b| pdu::read_v3(b).is_ok_and(|m| m.msg_id == msg_id as i64))
                .await?;
            let clock = self.open_v3(n)?;
            let report = {
                let mut p = pdu::read_decrypted(&self.plain).map_err(|e| SnmpError::Malformed(e.to_string()))?;
                if p.kind == pdu::REPORT {
                    Some(match p.next_varbind() {
                        Some(Ok((oid, _))) => usm_stat(&oid),
                        _ => None,
                    })
                } else {
                    None
                }
            };
            match report {
                None => {
                    let pdu = pdu::read_decrypted(&self.plain).map_err(|e| SnmpError::Malformed(e.to_string()))?;
                    return on_answer(pdu);
                }
                // Not in the time window: the report carries the agent's clock (RFC 3414
                // §3.2 7b), taken even unauthenticated; then once more.
                Some(Some(2)) if attempt < 2 => {
                    if let Some(e) = self.engine.as_mut() {
                        (e.boots, e.time, e.at) = (clock.0, clock.1, Instant::now());
                    }
                }
                // Unknown engine ID: the agent was replaced; discover again.
                Some(Some(4)) if attempt < 2 => self.engine = None,
                Some(stat) => return Err(SnmpError::Report(report_meaning(stat))),
            }
        }
        Err(SnmpError::Report(report_meaning(Some(2))))
    }

    /// Asks the agent for its engine ID, boots and time (RFC 3414 §4).
    async fn discover(&mut self) -> Result<(), SnmpError> {
        let Security::V3(user) = &self.security else { return Ok(()) };
        if self.ku.is_none() {
            let auth = user.auth.as_ref().map_or(Vec::new(), |(p, pass)| p.password_key(pass));
            let privacy = match (&user.auth, &user.privacy) {
                (Some((p, _)), Some((_, pass))) => p.password_key(pass),
                _ => Vec::new(),
            };
            self.ku = Some((auth, privacy));
        }
        let ask = Ask { kind: pdu::GET, request_id: self.fresh_id(), max_repetitions: 0 };
        let msg_id = self.fresh_id();
        pdu::write_scoped(&mut self.scoped, b"", ask, &[]);
        let header = pdu::V3Header {
            msg_id,
            flags: pdu::FLAG_REPORTABLE,
            engine_id: b"",
            boots: 0,
            time: 0,
            user: b"",
            mac_len: 0,
            salt: b"",
        };
        pdu::write_v3(&mut self.link.send, &header, &self.scoped, false);
        let n = self
            .link
            .exchange(|b| pdu::read_v3(b).is_ok_and(|m| m.msg_id == msg_id as i64))
            .await?;
        let m = pdu::read_v3(&self.link.recv[..n]).map_err(|e| SnmpError::Malformed(e.to_string()))?;
        if m.sec.engine_id.is_empty() {
            return Err(SnmpError::Malformed("engine discovery: the agent sent no engine ID".into()));
        }
        let (auth, privacy) = self.ku.as_ref().expect("made above");
        let Security::V3(user) = &self.security else { return Ok(()) };
        let localize = |ku: &[u8]| match &user.auth {
            Some((p, _)) if !ku.is_empty() => p.localize(ku, m.sec.engine_id),
            _ => Vec::new(),
        };
        self.engine = Some(Engine {
            id: m.sec.engine_id.to_vec(),
            boots: clamp_u32(m.sec.boots),
            time: clamp_u32(m.sec.time),
            at: Instant::now(),
            auth_key: localize(auth),
            priv_key: localize(privacy),
        });
        Ok(())
    }

    /// Writes the v3 request into `self.send`: encrypted and signed as the user asks.
    fn write_v3_request(&mut self, ask: Ask, oids: &[Oid]) -> Result<i32, SnmpError> {
        let msg_id = self.fresh_id();
        let Security::V3(user) = &self.security else { return Ok(msg_id) };
        let engine = self.engine.as_ref().expect("discovered");
        let time = engine.time.saturating_add(engine.at.elapsed().as_secs() as u32);
        pdu::write_scoped(&mut self.scoped, &engine.id, ask, oids);
        let mut flags = pdu::FLAG_REPORTABLE;
        let mut salt = [0u8; 8];
        let mut encrypted = false;
        if let Some((proto, _)) = &user.privacy {
            self.salt = self.salt.wrapping_add(1);
            salt = match proto {
                // DES: boots and a local counter; AES: a 64-bit counter (RFC 3414, 3826).
                PrivProtocol::Des => ((engine.boots as u64) << 32 | (self.salt & 0xffff_ffff)).to_be_bytes(),
                PrivProtocol::Aes128 => self.salt.to_be_bytes(),
            };
            proto
                .encrypt(&engine.priv_key, engine.boots, time, salt, &self.scoped, &mut self.plain)
                .map_err(|e| SnmpError::Malformed(format!("encrypt: {e:?}")))?;
            std::mem::swap(&mut self.scoped, &mut self.plain);
            flags |= pdu::FLAG_PRIV;
            encrypted = true;
        }
        let mac_len = user.auth.as_ref().map_or(0, |(p, _)| p.mac_len());
        if mac_len > 0 {
            flags |= pdu::FLAG_AUTH;
        }
        let header = pdu::V3Header {
            msg_id,
            flags,
            engine_id: &engine.id,
            boots: engine.boots,
            time,
            user: &user.user,
            mac_len,
            salt: if encrypted { &salt } else { b"" },
        };
        let auth_at = pdu::write_v3(&mut self.link.send, &header, &self.scoped, encrypted);
        if let Some((proto, _)) = &user.auth {
            let mut mac = [0u8; MAX_MAC];
            let n = proto.mac(&engine.auth_key, &self.link.send, &mut mac);
            if let Some(slot) = self.link.send.get_mut(auth_at..auth_at + n) {
                slot.copy_from_slice(&mac[..n]);
            }
        }
        Ok(msg_id)
    }

    /// Verifies and decrypts the v3 answer of `n` bytes in the receive buffer; the scoped
    /// PDU (a whole SEQUENCE) lands in `self.plain`. Returns the boots and time it carries.
    fn open_v3(&mut self, n: usize) -> Result<(u32, u32), SnmpError> {
        let malformed = |e: MessageError| SnmpError::Malformed(e.to_string());
        let Security::V3(user) = &self.security else { return Ok((0, 0)) };
        let engine = self.engine.as_mut().expect("discovered before a request");
        let bytes = &mut self.link.recv[..n];
        let m = pdu::read_v3(bytes).map_err(malformed)?;
        let clock = (clamp_u32(m.sec.boots), clamp_u32(m.sec.time));
        let (auth_at, auth_len, flags, encrypted) = (m.sec.auth_at, m.sec.auth.len(), m.flags, m.encrypted);
        let salt: Option<[u8; 8]> = m.sec.privacy.try_into().ok();
        let scoped_at = (m.scoped.as_ptr() as usize).saturating_sub(bytes.as_ptr() as usize);
        let scoped_range = scoped_at..scoped_at + m.scoped.len();
        // An unauthenticated report (wrong digest, unknown user) is read all the same: it
        // says why. Anything signed must verify.
        if flags & pdu::FLAG_AUTH != 0 {
            let Some((proto, _)) = &user.auth else {
                return Err(malformed(MessageError::BadDigest));
            };
            let mut got = [0u8; MAX_MAC];
            let Some(sent) = bytes.get_mut(auth_at..auth_at + auth_len) else {
                return Err(malformed(MessageError::BadDigest));
            };
            let k = auth_len.min(MAX_MAC);
            got[..k].copy_from_slice(&sent[..k]);
            sent.fill(0);
            let mut want = [0u8; MAX_MAC];
            let w = proto.mac(&engine.auth_key, bytes, &mut want);
            if auth_len != w || got[..w] != want[..w] {
                return Err(malformed(MessageError::BadDigest));
            }
            // Authentic: its boots and time are the agent's clock.
            (engine.boots, engine.time, engine.at) = (clock.0, clock.1, Instant::now());
        }
        let scoped = &self.link.recv[scoped_range];
        if encrypted {
            let (Some((proto, _)), Some(salt)) = (&user.privacy, salt) else {
                return Err(malformed(MessageError::Undecryptable));
            };
            proto
                .decrypt(&engine.priv_key, clock.0, clock.1, &salt, scoped, &mut self.plain)
                .map_err(|_| malformed(MessageError::Undecryptable))?;
        } else {
            self.plain.clear();
            super::ber::Writer::new(&mut self.plain).tlv(super::ber::SEQUENCE, scoped);
        }
        Ok(clock)
    }

    /// Values of `oids` by GET, handed to `each` with their position in `oids`. A v1 agent
    /// refuses the whole request for one missing OID (noSuchName): that one is reported as
    /// `NoSuchObject` and the rest asked again.
    pub async fn get(
        &mut self,
        oids: &[Oid],
        each: &mut impl FnMut(usize, Value<'_>),
    ) -> Result<(), SnmpError> {
        // Only after a v1 noSuchName are the OIDs filtered (and these vectors allocated).
        let (mut missing, mut ask, mut list) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            let filtered = !missing.is_empty();
            if filtered {
                ask.clear();
                ask.extend((0..oids.len()).filter(|i| !missing.contains(i)));
                list.clear();
                list.extend(ask.iter().map(|&i| oids[i]));
                if ask.is_empty() {
                    break;
                }
            }
            let sent: &[Oid] = if filtered { &list } else { oids };
            let at = |k: usize| if filtered { ask[k] } else { k };
            let outcome = self
                .request(pdu::GET, sent, 0, |mut p| {
                    if p.error_status == 2 && p.error_index >= 1 {
                        return Ok(Some(p.error_index as usize - 1));
                    }
                    if p.error_status != 0 {
                        return Err(SnmpError::Status { status: p.error_status, index: p.error_index });
                    }
                    for k in 0..sent.len() {
                        match p.next_varbind() {
                            Some(Ok((_, v))) => each(at(k), v),
                            Some(Err(e)) => return Err(SnmpError::Malformed(e.to_string())),
                            None => each(at(k), Value::NoSuchObject),
                        }
                    }
                    Ok(None)
                })
                .await?;
            match outcome {
                Some(pos) if pos < sent.len() => {
                    each(at(pos), Value::NoSuchObject);
                    missing.push(at(pos));
                }
                Some(_) => return Err(SnmpError::Status { status: 2, index: 0 }),
                None => break,
            }
        }
        Ok(())
    }

    /// Every value under `root` in order: GETNEXT for v1, GETBULK (`max_repetitions` per
    /// request) otherwise. At most `limit` values; what comes after is left out.
    pub async fn walk(
        &mut self,
        root: &Oid,
        max_repetitions: i64,
        limit: usize,
        each: &mut impl FnMut(&Oid, Value<'_>),
    ) -> Result<usize, SnmpError> {
        let bulk = !matches!(self.security, Security::Community { version: 0, .. });
        let (kind, reps) = if bulk { (pdu::GET_BULK, max_repetitions) } else { (pdu::GET_NEXT, 0) };
        let mut cursor = *root;
        let mut seen = 0usize;
        loop {
            let step = self
                .request(kind, std::slice::from_ref(&cursor), reps, |mut p| {
                    // v1's end of the MIB is noSuchName on GETNEXT.
                    if p.error_status == 2 && !bulk {
                        return Ok(None);
                    }
                    if p.error_status != 0 {
                        return Err(SnmpError::Status { status: p.error_status, index: p.error_index });
                    }
                    let mut last = None;
                    while let Some(vb) = p.next_varbind() {
                        let (oid, value) = vb.map_err(|e| SnmpError::Malformed(e.to_string()))?;
                        if !oid.is_under(root) || value == Value::EndOfMibView {
                            return Ok(None);
                        }
                        if oid <= last.unwrap_or(cursor) {
                            return Err(SnmpError::NotIncreasing(oid.to_string()));
                        }
                        if seen >= limit {
                            return Ok(None);
                        }
                        each(&oid, value);
                        seen += 1;
                        last = Some(oid);
                    }
                    Ok(last)
                })
                .await?;
            // None: the walk left the subtree or the agent's MIB ended.
            match step {
                None => return Ok(seen),
                Some(next) => cursor = next,
            }
        }
    }
}


fn clamp_u32(v: i64) -> u32 {
    v.clamp(0, u32::MAX as i64) as u32
}

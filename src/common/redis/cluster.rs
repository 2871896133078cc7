//! Redis Cluster routing on the shared client: which node owns a key's hash slot, learned
//! from `CLUSTER SLOTS`, corrected by `MOVED`, with one [`Session`] per node.
//!
//! Why not the redis crate's own cluster client: its async client spawns its connection
//! driver with `smol::spawn` (smol's global executor, which runs on threads of its own) and
//! opens its connections itself, so it would add threads to the agent, bypass the SOCKS
//! proxy and TLS set-up of [`Endpoint`], and retry on its own schedule, hiding from the
//! output which samples were written. Here every node's connection is an ordinary
//! [`Session`] on the agent's one executor, and the output decides what a failure means.

use super::{Connected, Endpoint, Session};
use crate::core::backoff::Backoff;
use redis::{Pipeline, ServerError, Value};
use std::time::{Duration, Instant};

/// The slot map is read again at least this often, so replicas added since (which a
/// write waits for) and moves that caused no redirect yet are seen.
const MAP_MAX_AGE: Duration = Duration::from_secs(60);

/// The same while a master has no replica in the map: CLUSTER SLOTS leaves out a replica
/// until it has received a first write, so a new cluster's replicas appear only after the
/// agent's first writes.
const MAP_MAX_AGE_WITHOUT_REPLICAS: Duration = Duration::from_secs(5);

/// Hash slots in a Redis Cluster.
pub const SLOTS: usize = 16384;

const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

/// The hash slot of `key`: CRC16 of its hash tag (the text between the first `{` and the
/// next `}`, when that is not empty) or of the whole key, modulo 16384.
pub fn hash_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    CRC16.checksum(tagged.unwrap_or(key)) % SLOTS as u16
}

/// The hash tag of `key`, if it has one (see [`hash_slot`]).
pub fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let rest = &key[open + 1..];
    let close = rest.find('}')?;
    (close > 0).then(|| &rest[..close])
}

/// A node as the cluster announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    pub host: String,
    pub port: u16,
}

impl NodeAddr {
    /// Parses `host:port` (`[v6]:port` too).
    pub fn parse(text: &str) -> Option<NodeAddr> {
        let (host, port) = text.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port.parse().ok().filter(|&p| p > 0)?;
        (!host.is_empty()).then(|| NodeAddr {
            host: host.to_string(),
            port,
        })
    }

    pub fn show(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A `MOVED` or `ASK` reply: the slot and the node to ask instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// `ASK`: only for the next command, during a migration; `MOVED`: from now on.
    pub ask: bool,
    pub slot: u16,
    pub to: NodeAddr,
}

impl Redirect {
    /// The redirect in a server error, if it is one: `MOVED 3999 127.0.0.1:6381`. A node
    /// that announces no endpoint (`MOVED 3999 :6381`) means the host of `from`, the node
    /// that replied.
    pub fn of(e: &ServerError, from: &NodeAddr) -> Option<Redirect> {
        let ask = match e.code() {
            "MOVED" => false,
            "ASK" => true,
            _ => return None,
        };
        let mut words = e.details()?.split_whitespace();
        let slot = words
            .next()?
            .parse()
            .ok()
            .filter(|&s| (s as usize) < SLOTS)?;
        let target = words.next()?;
        let to = match target.strip_prefix(':') {
            Some(port) => NodeAddr {
                host: from.host.clone(),
                port: port.parse().ok().filter(|&p| p > 0)?,
            },
            None => NodeAddr::parse(target)?,
        };
        Some(Redirect { ask, slot, to })
    }
}

/// One range of a `CLUSTER SLOTS` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
    pub master: NodeAddr,
    /// How many replicas the master has.
    pub replicas: usize,
}

/// The owner of each slot, as indices into a node list, from a `CLUSTER SLOTS` reply.
/// `asked` is the node the reply came from: an empty address means that node.
pub fn parse_slots(reply: &Value, asked: &NodeAddr) -> Result<Vec<SlotRange>, String> {
    let Value::Array(ranges) = reply else {
        return Err(format!("CLUSTER SLOTS answered {reply:?}"));
    };
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        let Value::Array(fields) = range else {
            return Err("CLUSTER SLOTS: a range is not an array".into());
        };
        let (Some(start), Some(end), Some(Value::Array(master))) =
            (int(fields.first()), int(fields.get(1)), fields.get(2))
        else {
            return Err("CLUSTER SLOTS: a range without start, end and master".into());
        };
        let bad_range = start > end || end >= SLOTS as i64 || start < 0;
        let port = int(master.get(1)).filter(|p| (1..=65535).contains(p));
        let (Some(port), false) = (port, bad_range) else {
            return Err(format!("CLUSTER SLOTS: a bad range {start}-{end} or port"));
        };
        let host = match master.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::SimpleString(s)) => s.clone(),
            _ => String::new(),
        };
        if host == "?" {
            // An endpoint the node does not know: its slots stay without an owner (their
            // samples wait) until a later read names it.
            continue;
        }
        let host = if host.is_empty() {
            asked.host.clone()
        } else {
            host
        };
        out.push(SlotRange {
            start: start as u16,
            end: end as u16,
            master: NodeAddr {
                host,
                port: port as u16,
            },
            replicas: fields.len().saturating_sub(3),
        });
    }
    Ok(out)
}

fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// Counters an output reports through `internal`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClusterCounters {
    pub moved: u64,
    pub asked: u64,
    pub refreshes: u64,
    /// Replicas of the masters in the last map read.
    pub replicas: u64,
}

struct Node {
    addr: NodeAddr,
    session: Session,
    replicas: usize,
    /// The connection was made while reading the slot map: the next [`Cluster::ensure`]
    /// reports it as new, so the user of the connection knows the server may be new.
    made: Option<Connected>,
}

/// The nodes of a cluster and the owner of each slot.
pub struct Cluster {
    seeds: Vec<NodeAddr>,
    /// Every node learned so far (seeds first); a node no longer in the map keeps its
    /// entry, so indices stay valid for the life of the output.
    nodes: Vec<Node>,
    /// `owner[slot]`: an index into `nodes`, or [`NO_OWNER`].
    owner: Box<[u16]>,
    /// The map may be wrong (a node failed, a MOVED was seen): read it again before the
    /// next write.
    stale: bool,
    read_at: Option<Instant>,
    masters: usize,
    template: Endpoint,
    who: String,
    backoff: (Duration, Duration),
    pub counters: ClusterCounters,
}

pub const NO_OWNER: u16 = u16::MAX;

impl Cluster {
    /// `template` carries the login, TLS and proxy every node's connection uses; `seeds`
    /// are where the slot map is first asked for.
    pub fn new(
        template: Endpoint,
        seeds: Vec<NodeAddr>,
        who: String,
        backoff: (Duration, Duration),
    ) -> Cluster {
        let mut c = Cluster {
            seeds: seeds.clone(),
            nodes: Vec::new(),
            owner: vec![NO_OWNER; SLOTS].into_boxed_slice(),
            stale: true,
            read_at: None,
            masters: 0,
            template,
            who,
            backoff,
            counters: ClusterCounters::default(),
        };
        for s in &seeds {
            c.node_index(s);
        }
        c
    }

    /// The index of the node at `addr`, added when new.
    pub fn node_index(&mut self, addr: &NodeAddr) -> usize {
        if let Some(i) = self.nodes.iter().position(|n| &n.addr == addr) {
            return i;
        }
        let endpoint = self.template.for_node(&addr.host, addr.port);
        let session = Session::new(
            endpoint,
            self.who.clone(),
            Backoff::new(self.backoff.0, self.backoff.1),
        );
        self.nodes.push(Node {
            addr: addr.clone(),
            session,
            replicas: 0,
            made: None,
        });
        self.nodes.len() - 1
    }

    /// Whether the connections use TLS.
    pub fn tls(&self) -> bool {
        self.template.target.tls
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Nodes that own at least one slot, in the last map read.
    pub fn masters(&self) -> usize {
        self.masters
    }

    pub fn addr(&self, node: usize) -> &NodeAddr {
        &self.nodes[node].addr
    }

    /// Connects to `node` unless connected (see [`Session::ensure`]).
    pub async fn ensure(&mut self, node: usize) -> Result<Connected, String> {
        let n = &mut self.nodes[node];
        let now = n.session.ensure().await?;
        Ok(match (now, n.made.take()) {
            (Connected::Kept, Some(made)) => made,
            (now, _) => now,
        })
    }

    pub fn disconnect(&mut self, node: usize) {
        self.nodes[node].session.disconnect();
        self.nodes[node].made = None;
    }

    /// The node that owns `slot`, [`NO_OWNER`] when no node is known to.
    pub fn owner(&self, slot: u16) -> u16 {
        self.owner[slot as usize]
    }

    /// Something went wrong with the map (a node failed or redirected): ask again before
    /// the next write.
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// A `MOVED`: the slot has a new owner from now on; the rest of the map is read again
    /// before the next write, since slots seldom move alone.
    pub fn moved(&mut self, slot: u16, to: &NodeAddr) {
        let n = self.node_index(to);
        self.owner[slot as usize] = n as u16;
        self.counters.moved += 1;
        self.stale = true;
    }

    /// Reads the slot map again when it is stale or older than [`MAP_MAX_AGE`]: asks the known masters first, then the
    /// seeds, then every other node, and takes the first answer.
    pub async fn ensure_map(&mut self) -> Result<(), String> {
        let max_age = if self.counters.replicas < self.masters as u64 {
            MAP_MAX_AGE_WITHOUT_REPLICAS
        } else {
            MAP_MAX_AGE
        };
        let old = self.read_at.is_none_or(|t| t.elapsed() >= max_age);
        if !self.stale && !old {
            return Ok(());
        }
        let mut tried = Vec::new();
        let mut order: Vec<usize> = Vec::with_capacity(self.nodes.len());
        let mut owners: Vec<u16> = self
            .owner
            .iter()
            .copied()
            .filter(|&o| o != NO_OWNER)
            .collect();
        owners.sort_unstable();
        owners.dedup();
        order.extend(owners.iter().map(|&o| o as usize));
        for s in self.seeds.clone() {
            let i = self.node_index(&s);
            if !order.contains(&i) {
                order.push(i);
            }
        }
        for i in 0..self.nodes.len() {
            if !order.contains(&i) {
                order.push(i);
            }
        }
        let stale = self.stale;
        let mut last = String::from("no node to ask");
        for i in order {
            match self.read_map_from(i).await {
                Ok(ranges) => {
                    self.apply(&ranges);
                    self.stale = false;
                    self.read_at = Some(Instant::now());
                    self.counters.refreshes += 1;
                    return Ok(());
                }
                Err(e) => {
                    tried.push(self.nodes[i].addr.show());
                    last = e;
                }
            }
        }
        if !stale {
            // Only old: the map in hand is as good as any until a node says otherwise.
            log::debug!("{}: slot map not read again: {last}", self.who);
            self.read_at = Some(Instant::now());
            return Ok(());
        }
        Err(format!(
            "no node of the cluster answered CLUSTER SLOTS (asked {}): {last}",
            tried.join(", ")
        ))
    }

    async fn read_map_from(&mut self, i: usize) -> Result<Vec<SlotRange>, String> {
        let addr = self.nodes[i].addr.clone();
        let node = &mut self.nodes[i];
        let session = &mut node.session;
        let now = session.ensure().await?;
        if now != Connected::Kept {
            node.made = Some(now);
        }
        let mut pipe = redis::pipe();
        pipe.cmd("CLUSTER").arg("SLOTS");
        let reply = session.send(&pipe).await?;
        match reply.first() {
            Some(Value::ServerError(e)) if e.code() == "NOPERM" => Err(format!(
                "{} refused CLUSTER SLOTS to the user (NOPERM): a cluster output's user needs +cluster|slots, +asking and +wait besides the TS commands",
                addr.show()
            )),
            Some(Value::ServerError(e)) => Err(format!(
                "{} answered CLUSTER SLOTS with {} {}: is it a cluster node (`cluster-enabled yes`)?",
                addr.show(),
                e.code(),
                e.details().unwrap_or("")
            )),
            Some(v) => {
                let ranges = parse_slots(v, &addr)?;
                if ranges.is_empty() {
                    return Err(format!("{} knows no slots yet", addr.show()));
                }
                Ok(ranges)
            }
            None => Err(format!("{} sent no reply to CLUSTER SLOTS", addr.show())),
        }
    }

    fn apply(&mut self, ranges: &[SlotRange]) {
        self.owner.fill(NO_OWNER);
        for n in &mut self.nodes {
            n.replicas = 0;
        }
        let mut masters: Vec<usize> = Vec::new();
        for r in ranges {
            let n = self.node_index(&r.master);
            self.nodes[n].replicas = self.nodes[n].replicas.max(r.replicas);
            self.owner[r.start as usize..=r.end as usize].fill(n as u16);
            if !masters.contains(&n) {
                masters.push(n);
            }
        }
        self.masters = masters.len();
        self.counters.replicas = masters.iter().map(|&n| self.nodes[n].replicas as u64).sum();
    }

    /// How many replicas `node` had in the last slot map.
    pub fn replicas(&self, node: usize) -> usize {
        self.nodes[node].replicas
    }

    /// Sends `pipe` to `node` (connected by the caller).
    pub async fn send(&mut self, node: usize, pipe: &Pipeline) -> Result<Vec<Value>, String> {
        self.nodes[node].session.send(pipe).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(hash_slot(b"foo"), 12182);
        assert_eq!(hash_slot(b"123456789"), 12739);
        assert_eq!(hash_slot(b"{user1000}.following"), hash_slot(b"user1000"));
        assert_eq!(hash_slot(b"net_rx_bytes:{pi4}:eth0"), hash_slot(b"pi4"));
        // An empty tag does not count: the whole key is hashed.
        assert_eq!(
            hash_slot(b"foo{}{bar}"),
            CRC16.checksum(b"foo{}{bar}") % 16384
        );
        assert_eq!(hash_slot(b"foo{{bar}}zap"), hash_slot(b"{bar"));
        assert_eq!(hash_tag("a:{pi4}:b"), Some("pi4"));
        assert_eq!(hash_tag("a:{}:b"), None);
        assert_eq!(hash_tag("a:b"), None);
    }

    #[test]
    fn redirects_are_parsed_and_junk_is_not() {
        let e = make_error;
        let from = NodeAddr::parse("10.0.0.9:7001").unwrap();
        let r = Redirect::of(&e("MOVED", "3999 127.0.0.1:6381"), &from).unwrap();
        assert_eq!(
            (r.ask, r.slot, r.to.show()),
            (false, 3999, "127.0.0.1:6381".into())
        );
        let r = Redirect::of(&e("ASK", "1 [::1]:7000"), &from).unwrap();
        assert_eq!((r.ask, r.to.host.as_str(), r.to.port), (true, "::1", 7000));
        // No endpoint announced: the host of the node that replied.
        let r = Redirect::of(&e("MOVED", "7 :6381"), &from).unwrap();
        assert_eq!(r.to, NodeAddr::parse("10.0.0.9:6381").unwrap());
        for (code, detail) in [
            ("MOVED", "99999 h:1"),
            ("MOVED", "1"),
            ("MOVED", "1 h"),
            ("MOVED", "1 h:0"),
            ("MOVED", "x h:1"),
            ("ERR", "1 h:1"),
            ("MOVED", "1 :0"),
        ] {
            assert_eq!(
                Redirect::of(&e(code, detail), &from),
                None,
                "{code} {detail}"
            );
        }
    }

    fn make_error(code: &str, detail: &str) -> ServerError {
        // The crate builds server errors only from replies: parse one.
        let text = format!("-{code} {detail}\r\n");
        match redis::parse_redis_value(text.as_bytes()) {
            Ok(Value::ServerError(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cluster_slots_reply_is_read_with_empty_hosts_meaning_the_node_asked() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                Value::Array(vec![bulk("127.0.0.1"), Value::Int(7000), bulk("id")]),
                Value::Array(vec![bulk("127.0.0.1"), Value::Int(7003), bulk("id2")]),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                Value::Array(vec![bulk(""), Value::Int(7001)]),
            ]),
            // An endpoint the node does not know: no owner for these slots yet.
            Value::Array(vec![
                Value::Int(100),
                Value::Int(200),
                Value::Array(vec![bulk("?"), Value::Int(7009)]),
            ]),
        ]);
        let asked = NodeAddr::parse("10.0.0.9:7001").unwrap();
        let r = parse_slots(&reply, &asked).unwrap();
        assert_eq!((r[0].start, r[0].end, r[0].replicas), (0, 5460, 1));
        assert_eq!(r[0].master, NodeAddr::parse("127.0.0.1:7000").unwrap());
        assert_eq!((r[1].start, r[1].end, r[1].replicas), (5461, 16383, 0));
        assert_eq!(r[1].master, asked);
        assert_eq!(r.len(), 2, "the unknown endpoint is left out");
        for bad in [
            Value::Int(1),
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![
                Value::Int(5),
                Value::Int(2),
                Value::Array(vec![bulk("h"), Value::Int(1)]),
            ])]),
            Value::Array(vec![Value::Array(vec![
                Value::Int(0),
                Value::Int(16384),
                Value::Array(vec![bulk("h"), Value::Int(1)]),
            ])]),
            Value::Array(vec![Value::Array(vec![
                Value::Int(0),
                Value::Int(1),
                Value::Array(vec![bulk("h"), Value::Int(0)]),
            ])]),
        ] {
            assert!(
                parse_slots(&bad, &NodeAddr::parse("h:1").unwrap()).is_err(),
                "{bad:?}"
            );
        }
    }
}

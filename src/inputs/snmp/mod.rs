//! `snmp`: values from one SNMP agent (a router, a switch, a NAS) with pollect's `SnmpGet`
//! options: single OIDs by GET, OID ranges, walked table columns with labels from other
//! columns, the ifTable/ifXTable interface preset; v1, v2c and v3 (USM).
//!
//! Requests go out over UDP on the agent's executor, each bounded by `timeout` and resent
//! `retries` times; an agent that does not answer fails only its own input, once per
//! collection (the first request that times out ends it). The BER codec is our own
//! (`ber.rs`, `pdu.rs`): small, allocation-free when reading, and unable to panic on any
//! datagram (a fuzz-style test runs it on garbage in every test run).

pub mod ber;
pub mod client;
pub mod oids;
pub mod pdu;
pub mod usm;
pub mod values;

use crate::config::range;
use crate::config::units::Dur;
use crate::config::{BuildError, Secret};
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::BuildCtx;
use ber::Oid;
use client::{Security, Session, SnmpError, V3User};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::time::Duration;
use usm::{AuthProtocol, PrivProtocol};
use values::{Column, Num, Rates, MAX_ROWS};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# An SNMP agent (router, switch, NAS, printer): pollect's SnmpGet options. One entry per
# agent; an agent that does not answer fails only its own entry.
- snmp:
    host: 192.168.1.1
    port: 161
    snmpVersion: 2c          # 1 (pollect's default), 2c or 3
    # communityString: public  # v1/v2c, default `public`; `secret:NAME` works here too
    # v3 (usmUserSecurity): authNoPriv with authPassPhrase, authPriv with both pass phrases
    # username: monitor
    # authPassPhrase: secret:snmp/auth
    # authProtocol: SHA       # MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512
    # privacyPassPhrase: secret:snmp/priv
    # privacyProtocol: AES    # AES (AES-128) or DES
    timeout: 2s              # per request; resent `retries` times
    retries: 1
    interfaces: true         # ifTable/ifXTable: octets with rates, errors, status, speed
    metrics:
      - name: snmp_uptime_ticks            # a single OID (hundredths of a second)
        oid: sysUpTime.0
      - name: snmp_load1
        oid: laLoad.1                      # UCD-SNMP-MIB: a number in a string
      - name: snmp_throughput              # mode rate: the per-second change only,
        oid: 1.3.6.1.2.1.16.1.1.1.4.1      # across 32/64-bit counter wraps
        mode: rate
      - name: snmp_interface_link_state    # a range: $${if} becomes 1..10, label `if`
        oid: iso.3.6.1.2.1.2.2.1.8.$${if}  # ($$ because ${...} is an environment variable)
        range: {from: 1, to: 10, label: if}
      - name: snmp_storage_used            # a walk: every row of a column, label `index`,
        oid: hrStorageUsed                 # plus labels read from other columns
        walk: true
        labels: {storage: hrStorageDescr}
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub host: String,
    #[serde(deserialize_with = "range::port")]
    pub port: u16,
    #[serde(rename = "communityString")]
    pub community_string: Secret,
    #[serde(rename = "snmpVersion")]
    pub snmp_version: Version,
    pub username: String,
    #[serde(rename = "authPassPhrase")]
    pub auth_pass_phrase: Secret,
    #[serde(rename = "authProtocol")]
    pub auth_protocol: AuthProtocol,
    #[serde(rename = "privacyPassPhrase")]
    pub privacy_pass_phrase: Secret,
    #[serde(rename = "privacyProtocol")]
    pub privacy_protocol: PrivProtocol,
    pub metrics: Vec<MetricConfig>,
    /// The ifTable/ifXTable preset.
    pub interfaces: bool,
    #[serde(deserialize_with = "range::timeout")]
    pub timeout: Dur,
    #[serde(deserialize_with = "range::count::<_, 0, 10>")]
    pub retries: usize,
    /// Rows asked per GETBULK request in a walk (v2c, v3).
    #[serde(deserialize_with = "range::count::<_, 1, 100>")]
    pub max_repetitions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: String::new(),
            port: 161,
            // Empty means pollect's default, `public` (a set secret would not read back
            // from `check`'s plan, where it prints as `***`).
            community_string: Secret::default(),
            snmp_version: Version::V1,
            username: String::new(),
            auth_pass_phrase: Secret::default(),
            auth_protocol: AuthProtocol::Sha1,
            privacy_pass_phrase: Secret::default(),
            privacy_protocol: PrivProtocol::Aes128,
            metrics: Vec::new(),
            interfaces: false,
            timeout: Dur(Duration::from_secs(2)),
            retries: 1,
            max_repetitions: 25,
        }
    }
}

/// `snmpVersion`: 1, 2 / 2c, or 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2c,
    V3,
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Version::V1 => "1",
            Version::V2c => "2c",
            Version::V3 => "3",
        })
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Word(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Number(n) => n.to_string(),
            Raw::Word(w) => w,
        };
        match text.as_str() {
            "1" | "v1" => Ok(Version::V1),
            "2" | "2c" | "v2c" => Ok(Version::V2c),
            "3" | "v3" => Ok(Version::V3),
            _ => Err(serde::de::Error::custom(format!(
                "snmpVersion `{text}`: write 1, 2c or 3"
            ))),
        }
    }
}

/// One entry of `metrics:`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    pub name: String,
    pub oid: String,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeConfig>,
    /// Every row under `oid` instead of the one value at it.
    #[serde(default)]
    pub walk: bool,
    /// With `walk`: label name → the column whose value (same index) the label takes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// pollect's processing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The value as it is (pollect's "undefined").
    #[default]
    Gauge,
    /// The per-second change only, across counter wraps.
    Rate,
    /// The raw counter and its per-second change as `<name>_rate`.
    Counter,
}

/// `range: {from, to, label}`: the OID's `${label}` takes every number from..=to.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RangeConfig {
    pub from: u32,
    pub to: u32,
    pub label: String,
}

/// pollect's (and net-snmp's) community when none is set.
const DEFAULT_COMMUNITY: &[u8] = b"public";
/// The most OIDs a range may expand to.
const MAX_RANGE: u32 = 4096;
/// OIDs per GET request: small enough for any agent's message size.
const GET_CHUNK: usize = 16;

/// A label of a walked metric: read from `column` at the row's index, or from `fallback`
/// where that column has no such row (ifName missing: ifDescr).
struct LabelColumn {
    name: String,
    column: usize,
    fallback: Option<usize>,
}

enum Source {
    /// Single OIDs: indexes into `Snmp::scalars`, with the range label's value if any.
    Get(Vec<(usize, String)>),
    /// A walked column, or `fallback` when the agent has none of its rows (v1 without
    /// the 64-bit counters).
    Walk { column: usize, fallback: Option<usize>, labels: Vec<LabelColumn> },
}

struct Metric {
    name: String,
    mode: Mode,
    /// Multiplies the value (ifHighSpeed is in Mbit/s), and the fallback column's.
    scale: f64,
    fallback_scale: f64,
    /// The range label's name.
    range_label: Option<String>,
    source: Source,
    rates: Rates,
}

/// A single OID and this collection's number at it.
struct Scalar {
    oid: Oid,
    num: Option<Num>,
}

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<Snmp, BuildError> {
    if cfg.host.is_empty() {
        return Err(BuildError::at("host", "the agent's host name or address is required"));
    }
    if cfg.metrics.is_empty() && !cfg.interfaces {
        return Err(BuildError::at("metrics", "list at least one metric ({name, oid}), or set `interfaces: true`"));
    }
    if cfg.timeout.0.is_zero() {
        return Err(BuildError::at("timeout", "must be more than 0"));
    }
    let security = security(cfg)?;
    let agent = if cfg.port == 161 { cfg.host.clone() } else { format!("{}:{}", cfg.host, cfg.port) };
    let mut plan = Plan::default();
    for (i, m) in cfg.metrics.iter().enumerate() {
        plan.add_configured(i, m)?;
    }
    if cfg.interfaces {
        plan.add_interfaces(cfg.snmp_version == Version::V1);
    }
    plan.mark_fallbacks();
    let session = Session::new(&cfg.host, cfg.port, security, cfg.timeout.0, cfg.retries as u32);
    Ok(Snmp {
        agent,
        session,
        columns: plan.columns,
        scalars: plan.scalars,
        metrics: plan.metrics,
        max_repetitions: cfg.max_repetitions as i64,
        cycle: 0,
        oid_buf: Vec::with_capacity(GET_CHUNK),
        problem: None,
    })
}

fn security(cfg: &Config) -> Result<Security, BuildError> {
    let pass = |s: &Secret| s.expose().as_bytes().to_vec();
    Ok(match cfg.snmp_version {
        Version::V1 | Version::V2c => Security::Community {
            version: if cfg.snmp_version == Version::V1 { 0 } else { 1 },
            community: if cfg.community_string.is_empty() {
                DEFAULT_COMMUNITY.to_vec()
            } else {
                pass(&cfg.community_string)
            },
        },
        Version::V3 => {
            if cfg.username.is_empty() {
                return Err(BuildError::at("username", "v3 needs the user's security name"));
            }
            let auth = (!cfg.auth_pass_phrase.is_empty()).then(|| (cfg.auth_protocol, pass(&cfg.auth_pass_phrase)));
            let privacy =
                (!cfg.privacy_pass_phrase.is_empty()).then(|| (cfg.privacy_protocol, pass(&cfg.privacy_pass_phrase)));
            if privacy.is_some() && auth.is_none() {
                return Err(BuildError::at("privacyPassPhrase", "privacy needs authentication too: set authPassPhrase"));
            }
            // RFC 3414 §11.2: pass phrases shorter than 8 characters are refused by agents.
            let lengths = [
                ("authPassPhrase", auth.as_ref().map(|(_, v)| v.len())),
                ("privacyPassPhrase", privacy.as_ref().map(|(_, v)| v.len())),
            ];
            for (key, len) in lengths {
                if len.is_some_and(|n| n < 8) {
                    return Err(BuildError::at(key, "must be at least 8 characters (RFC 3414)"));
                }
            }
            Security::V3(V3User { user: cfg.username.as_bytes().to_vec(), auth, privacy })
        }
    })
}

/// The columns, single OIDs and metrics the config asks for, each column walked once.
#[derive(Default)]
struct Plan {
    columns: Vec<Column>,
    scalars: Vec<Scalar>,
    metrics: Vec<Metric>,
}

impl Plan {
    fn column(&mut self, oid: Oid) -> usize {
        if let Some(i) = self.columns.iter().position(|c| c.oid == oid) {
            return i;
        }
        self.columns.push(Column::new(oid));
        self.columns.len() - 1
    }

    /// Marks the columns that only stand in for another (ifInOctets for ifHCInOctets), so a
    /// collection walks them only when that one is empty. A column some metric reads for
    /// itself, or for a label, is always walked; so is one whose primary comes after it.
    fn mark_fallbacks(&mut self) {
        let mut needed = vec![false; self.columns.len()];
        let mut stands_in_for = vec![None; self.columns.len()];
        for m in &self.metrics {
            if let Source::Walk { column, fallback, labels } = &m.source {
                needed[*column] = true;
                for l in labels {
                    needed[l.column] = true;
                    if let Some(f) = l.fallback {
                        needed[f] = true;
                    }
                }
                if let Some(f) = fallback {
                    stands_in_for[*f] = Some(*column);
                }
            }
        }
        for (i, c) in self.columns.iter_mut().enumerate() {
            c.only_fallback_of = stands_in_for[i].filter(|&p| !needed[i] && p < i);
        }
    }

    fn add_configured(&mut self, i: usize, m: &MetricConfig) -> Result<(), BuildError> {
        let at = |msg: String| BuildError::at("metrics", format!("item {i} ({}): {msg}", m.name));
        if !valid_name(&m.name) {
            return Err(at("`name` must be letters, digits and `_`, not starting with a digit".into()));
        }
        let source = if m.walk {
            if m.range.is_some() {
                return Err(at("`walk` and `range` do not go together".into()));
            }
            let column = self.column(oids::parse(&m.oid).map_err(at)?);
            let mut labels = Vec::new();
            for (name, oid) in &m.labels {
                if !valid_name(name) || name == "agent" || name == "index" {
                    return Err(at(format!("label `{name}`: letters, digits and `_`; `agent` and `index` are taken")));
                }
                let column = self.column(oids::parse(oid).map_err(at)?);
                labels.push(LabelColumn { name: name.clone(), column, fallback: None });
            }
            Source::Walk { column, fallback: None, labels }
        } else {
            if !m.labels.is_empty() {
                return Err(at("`labels` need `walk: true`".into()));
            }
            Source::Get(self.scalars_of(m).map_err(at)?)
        };
        self.metrics.push(Metric {
            name: m.name.clone(),
            mode: m.mode,
            scale: 1.0,
            fallback_scale: 1.0,
            range_label: m.range.as_ref().map(|r| r.label.clone()),
            source,
            rates: Rates::default(),
        });
        Ok(())
    }

    /// The single OIDs of a get metric: one, or one per number of its range.
    fn scalars_of(&mut self, m: &MetricConfig) -> Result<Vec<(usize, String)>, String> {
        let Some(r) = &m.range else {
            self.scalars.push(Scalar { oid: oids::parse(&m.oid)?, num: None });
            return Ok(vec![(self.scalars.len() - 1, String::new())]);
        };
        if !valid_name(&r.label) || r.label == "agent" {
            return Err(format!("range label `{}`: letters, digits and `_`, not `agent`", r.label));
        }
        if r.from > r.to || r.to - r.from >= MAX_RANGE {
            return Err(format!("range {}..{}: `from` ≤ `to`, at most {MAX_RANGE} numbers", r.from, r.to));
        }
        let placeholder = format!("${{{}}}", r.label);
        if !m.oid.contains(&placeholder) {
            return Err(format!(
                "the oid has no `{placeholder}` for the range (write `$${{{}}}` in the file: `${{…}}` alone is an environment variable)",
                r.label
            ));
        }
        let mut out = Vec::with_capacity((r.to - r.from + 1) as usize);
        for n in r.from..=r.to {
            let text = m.oid.replace(&placeholder, &n.to_string());
            self.scalars.push(Scalar { oid: oids::parse(&text)?, num: None });
            out.push((self.scalars.len() - 1, n.to_string()));
        }
        Ok(out)
    }

    /// The interface preset: IF-MIB's ifTable and ifXTable. The 64-bit counters where the
    /// agent has them (not in v1), else the 32-bit ones; labels `interface` (ifName, else
    /// ifDescr) and `descr` (ifDescr).
    fn add_interfaces(&mut self, v1: bool) {
        let oid = |name: &str| oids::parse(name).expect("a built-in name");
        let descr = self.column(oid("ifDescr"));
        let name = if v1 { descr } else { self.column(oid("ifName")) };
        let labels = || {
            vec![
                LabelColumn { name: "interface".into(), column: name, fallback: Some(descr) },
                LabelColumn { name: "descr".into(), column: descr, fallback: None },
            ]
        };
        let table: [(&str, &str, Option<&str>, Mode, f64); 9] = [
            ("snmp_if_in_octets", "ifHCInOctets", Some("ifInOctets"), Mode::Counter, 1.0),
            ("snmp_if_out_octets", "ifHCOutOctets", Some("ifOutOctets"), Mode::Counter, 1.0),
            ("snmp_if_in_errors", "ifInErrors", None, Mode::Counter, 1.0),
            ("snmp_if_out_errors", "ifOutErrors", None, Mode::Counter, 1.0),
            ("snmp_if_in_discards", "ifInDiscards", None, Mode::Counter, 1.0),
            ("snmp_if_out_discards", "ifOutDiscards", None, Mode::Counter, 1.0),
            ("snmp_if_oper_status", "ifOperStatus", None, Mode::Gauge, 1.0),
            ("snmp_if_admin_status", "ifAdminStatus", None, Mode::Gauge, 1.0),
            ("snmp_if_speed_bps", "ifHighSpeed", Some("ifSpeed"), Mode::Gauge, 1e6),
        ];
        for (metric, col, fallback, mode, scale) in table {
            let (primary, fallback) = match (v1, fallback) {
                // v1 has no Counter64 and no ifXTable: the 32-bit column straight away.
                (true, Some(f)) => (self.column(oid(f)), None),
                (_, f) => (self.column(oid(col)), f.map(|f| self.column(oid(f)))),
            };
            // ifSpeed (the fallback, and v1's only column) is in bit/s already.
            let scale = if v1 && metric == "snmp_if_speed_bps" { 1.0 } else { scale };
            self.metrics.push(Metric {
                name: metric.into(),
                mode,
                scale,
                fallback_scale: 1.0,
                range_label: None,
                source: Source::Walk { column: primary, fallback, labels: labels() },
                rates: Rates::default(),
            });
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

pub struct Snmp {
    /// The `agent` label: the host, with the port when it is not 161.
    agent: String,
    session: Session,
    columns: Vec<Column>,
    scalars: Vec<Scalar>,
    metrics: Vec<Metric>,
    max_repetitions: i64,
    cycle: u64,
    oid_buf: Vec<Oid>,
    /// A problem of this collection that did not end it (a column the agent refused).
    problem: Option<String>,
}

impl Snmp {
    /// Requests sent so far, retries included (the benchmark's figure).
    pub fn requests(&self) -> u64 {
        self.session.requests()
    }

    /// Walks every column that a metric needs, then GETs the single OIDs. A timeout or a
    /// socket error ends the collection (the agent is gone: no use asking more); an error
    /// status on one column or OID is noted and the rest goes on.
    async fn poll(&mut self) -> Result<(), SnmpError> {
        self.cycle += 1;
        self.problem = None;
        for i in 0..self.columns.len() {
            self.columns[i].clear();
            if let Some(primary) = self.columns[i].only_fallback_of {
                if !self.columns[primary].rows().is_empty() {
                    continue;
                }
            }
            let column = &mut self.columns[i];
            let root = column.oid;
            let walked = self
                .session
                .walk(&root, self.max_repetitions, MAX_ROWS, &mut |oid, v| column.push(oid, &v))
                .await;
            match walked {
                Ok(_) => {}
                Err(e @ (SnmpError::Status { .. } | SnmpError::NotIncreasing(_) | SnmpError::Malformed(_))) => {
                    self.problem.get_or_insert_with(|| format!("walk of {root}: {e}"));
                }
                Err(e) => return Err(e),
            }
        }
        self.get_scalars().await
    }

    async fn get_scalars(&mut self) -> Result<(), SnmpError> {
        for s in &mut self.scalars {
            s.num = None;
        }
        let mut start = 0;
        while start < self.scalars.len() {
            let end = (start + GET_CHUNK).min(self.scalars.len());
            self.oid_buf.clear();
            self.oid_buf.extend(self.scalars[start..end].iter().map(|s| s.oid));
            let scalars = &mut self.scalars[start..end];
            let mut absent = None;
            let got = self
                .session
                .get(&self.oid_buf, &mut |i, v| {
                    if v.is_exception() && absent.is_none() {
                        absent = Some(i);
                    }
                    scalars[i].num = values::number(&v);
                })
                .await;
            if let Some(i) = absent {
                let oid = self.oid_buf[i];
                self.problem.get_or_insert_with(|| format!("the agent has no value at {oid}"));
            }
            match got {
                Ok(()) => {}
                Err(e @ (SnmpError::Status { .. } | SnmpError::Malformed(_))) => {
                    self.problem.get_or_insert_with(|| format!("get: {e}"));
                }
                Err(e) => return Err(e),
            }
            start = end;
        }
        Ok(())
    }

    fn emit(&mut self, em: &mut Emitter<'_>) {
        let ts = em.ts_ms();
        let cycle = self.cycle;
        let mut labels: Vec<(&str, &str)> = Vec::with_capacity(8);
        for m in &mut self.metrics {
            match &m.source {
                Source::Get(list) => {
                    for (slot, range_value) in list {
                        let Some(num) = self.scalars[*slot].num else { continue };
                        labels.clear();
                        labels.push(("agent", &self.agent));
                        if let Some(l) = &m.range_label {
                            labels.push((l, range_value));
                        }
                        let rate = m.rates.observe(range_value, num, ts, cycle);
                        write_value(em, &m.name, m.mode, m.scale, &labels, num, rate);
                    }
                }
                Source::Walk { column, fallback, labels: label_columns } => {
                    let (mut col, mut scale) = (&self.columns[*column], m.scale);
                    if col.rows().is_empty() {
                        if let Some(f) = fallback {
                            (col, scale) = (&self.columns[*f], m.fallback_scale);
                        }
                    }
                    for (pos, cell) in col.rows().iter().enumerate() {
                        let Some(num) = cell.num else { continue };
                        labels.clear();
                        labels.push(("agent", &self.agent));
                        labels.push(("index", &cell.index));
                        for l in label_columns {
                            let text = self.columns[l.column]
                                .find(&cell.index, pos)
                                .map(|c| c.text.as_str())
                                .filter(|t| !t.is_empty())
                                .or_else(|| {
                                    l.fallback.and_then(|f| self.columns[f].find(&cell.index, pos)).map(|c| c.text.as_str())
                                });
                            if let Some(t) = text {
                                labels.push((&l.name, t));
                            }
                        }
                        let rate = m.rates.observe(&cell.index, num, ts, cycle);
                        write_value(em, &m.name, m.mode, scale, &labels, num, rate);
                    }
                }
            }
            m.rates.sweep(cycle);
        }
    }
}

fn write_value(em: &mut Emitter<'_>, name: &str, mode: Mode, scale: f64, labels: &[(&str, &str)], num: Num, rate: Option<f64>) {
    match mode {
        Mode::Gauge => em.gauge(name, labels, num.value * scale),
        Mode::Counter => {
            em.counter_value(name, labels, num.value * scale);
            if let Some(r) = rate {
                em.rate_suffixed(name, "_rate", labels, r * scale);
            }
        }
        Mode::Rate => {
            if let Some(r) = rate {
                em.rate_suffixed(name, "", labels, r * scale);
            }
        }
    }
}

impl Input for Snmp {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(async move {
            let polled = self.poll().await;
            if let Err(e) = polled {
                // What came before the failure is not a whole picture: nothing is written,
                // and the rates start again from the next answer.
                for m in &mut self.metrics {
                    m.rates.sweep(u64::MAX);
                }
                return Err(InputError::new(format!("agent {}: {e}", self.agent)));
            }
            self.emit(em);
            if let Some(p) = self.problem.take() {
                em.partial_failure(InputError::new(format!("agent {}: {p}", self.agent)));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;

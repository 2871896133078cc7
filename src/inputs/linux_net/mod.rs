//! `linux_net`: network interface counters from /proc/net/dev.

use crate::config::BuildError;
use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::{fields, Known, NameFilter, ProcFile};
use crate::inputs::BuildCtx;
use serde::{Deserialize, Serialize};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Bytes, packets, errors and drops per interface, with per-second rates.
# An interface named in include_interfaces or matching include_patterns is always
# reported; otherwise exclude_interfaces and exclude_patterns drop it. When
# include_patterns is not empty, interfaces matching none of them are dropped.
- linux_net:
    exclude_patterns: []       # regexes, e.g. [\"^veth\", \"^docker\", \"^br-\"]
    include_patterns: []       # regexes; when given, only matching interfaces are reported
    exclude_interfaces: []     # exact names, e.g. [lo]
    include_interfaces: []     # exact names, reported whatever the exclusions say
";

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub exclude_patterns: Vec<String>,
    pub include_patterns: Vec<String>,
    pub exclude_interfaces: Vec<String>,
    pub include_interfaces: Vec<String>,
}

pub struct LinuxNet {
    dev: ProcFile,
    filter: NameFilter,
    /// Whether each interface seen is reported (the filter's verdict, decided once).
    ifaces: Known<bool>,
    /// This collection's counters (index into `ifaces`), written once the whole file parsed.
    rows: Vec<(usize, NetCounters)>,
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<LinuxNet, BuildError> {
    Ok(LinuxNet {
        dev: ProcFile::new(ctx.procfs_root.join("net/dev")),
        filter: NameFilter::new(
            &cfg.include_interfaces,
            &cfg.exclude_interfaces,
            &cfg.include_patterns,
            &cfg.exclude_patterns,
        )?,
        ifaces: Known::default(),
        rows: Vec::with_capacity(8),
    })
}

/// The counters of one interface that are reported.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errs: u64,
    pub rx_drop: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errs: u64,
    pub tx_drop: u64,
}

/// Columns of an interface line: 8 receive then 8 transmit counters.
const COLUMNS: usize = 16;

/// Parses one interface line, `  eth0: 1 2 3 …` (the colon may touch the first number).
/// Interface names cannot contain `:`, so the first colon ends the name.
pub fn parse_dev_line(line: &str) -> Result<(&str, NetCounters), String> {
    let Some((name, rest)) = line.split_once(':') else {
        return Err(format!("line without `interface:` `{}`", line.trim()));
    };
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("bad interface name in `{}`", line.trim()));
    }
    let mut v = [0u64; COLUMNS];
    let mut n = 0;
    for tok in fields(rest) {
        let x: u64 = tok
            .parse()
            .map_err(|_| format!("{name}: bad number `{tok}`"))?;
        if let Some(slot) = v.get_mut(n) {
            *slot = x;
        }
        n += 1;
    }
    if n < COLUMNS {
        return Err(format!("{name}: {n} columns, {COLUMNS} expected"));
    }
    Ok((
        name,
        NetCounters {
            rx_bytes: v[0],
            rx_packets: v[1],
            rx_errs: v[2],
            rx_drop: v[3],
            tx_bytes: v[8],
            tx_packets: v[9],
            tx_errs: v[10],
            tx_drop: v[11],
        },
    ))
}

/// Calls `each` for every interface of /proc/net/dev. The two header lines (with `|`) and
/// blank lines are skipped; any other line that does not parse fails the whole file.
pub fn parse_net_dev(text: &str, mut each: impl FnMut(&str, NetCounters)) -> Result<(), String> {
    let mut header = false;
    for line in text.lines() {
        if line.contains('|') {
            header = true;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let (name, c) = parse_dev_line(line)?;
        each(name, c);
    }
    if !header {
        return Err("no header: not a /proc/net/dev file".into());
    }
    Ok(())
}

impl LinuxNet {
    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        self.rows.clear();
        self.ifaces.begin();
        let (ifaces, rows, filter) = (&mut self.ifaces, &mut self.rows, &self.filter);
        let mut duplicate = false;
        let parsed = parse_net_dev(self.dev.read()?, |name, c| {
            let (i, first) = ifaces.find_or_insert(name, |n| filter.allows(n));
            duplicate |= !first;
            if ifaces.get(i).state {
                rows.push((i, c));
            }
        });
        match parsed {
            Ok(()) if duplicate => {
                return Err(InputError::parse(self.dev.path(), "interface listed twice"))
            }
            Ok(()) => {}
            Err(e) => return Err(InputError::parse(self.dev.path(), e)),
        }
        self.ifaces.sweep();
        for &(i, c) in &self.rows {
            let labels = [("iface", &*self.ifaces.get(i).name)];
            if let Some(rate) = em.counter("net_rx_bytes", &labels, c.rx_bytes as f64) {
                em.rate_suffixed("net_rx_bytes", "_bits_rate", &labels, rate * 8.0);
            }
            if let Some(rate) = em.counter("net_tx_bytes", &labels, c.tx_bytes as f64) {
                em.rate_suffixed("net_tx_bytes", "_bits_rate", &labels, rate * 8.0);
            }
            em.counter("net_rx_packets", &labels, c.rx_packets as f64);
            em.counter("net_tx_packets", &labels, c.tx_packets as f64);
            em.counter("net_rx_errs", &labels, c.rx_errs as f64);
            em.counter("net_tx_errs", &labels, c.tx_errs as f64);
            em.counter("net_rx_drop", &labels, c.rx_drop as f64);
            em.counter("net_tx_drop", &labels, c.tx_drop as f64);
        }
        Ok(())
    }
}

impl Input for LinuxNet {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

//! `nstat`: every IPv4, ICMP, TCP and UDP counter of /proc/net/snmp and the IPv6 counters
//! of /proc/net/snmp6, named after the kernel's fields (`nstat_ip_InDiscards`).

use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::{snmp, ProcFile};
use crate::inputs::BuildCtx;
use serde::{Deserialize, Serialize};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Every field of the Ip, Icmp, Tcp and Udp sections of /proc/net/snmp and the Ip6 lines of
# /proc/net/snmp6, as nstat_<section>_<Field> with rates (e.g. nstat_ip_InDiscards_rate).
- nstat
";

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {}

pub struct Nstat {
    snmp: ProcFile,
    snmp6: ProcFile,
    snmp_names: NameCache,
    snmp6_names: NameCache,
}

pub fn build(_cfg: &Config, ctx: &BuildCtx) -> Result<Nstat, String> {
    let net = ctx.procfs_root.join("net");
    Ok(Nstat {
        snmp: ProcFile::new(net.join("snmp")),
        snmp6: ProcFile::new(net.join("snmp6")),
        snmp_names: NameCache::default(),
        snmp6_names: NameCache::default(),
    })
}

/// The metric name prefix of a section this input reports.
pub fn prefix(section: &str) -> Option<&'static str> {
    Some(match section {
        "Ip" => "nstat_ip_",
        "Icmp" => "nstat_icmp_",
        "Tcp" => "nstat_tcp_",
        "Udp" => "nstat_udp_",
        "Ip6" => "nstat_ip6_",
        _ => return None,
    })
}

/// Fields that are settings or current levels, not counters: reported without a rate.
pub fn is_gauge(section: &str, field: &str) -> bool {
    matches!(
        (section, field),
        ("Ip", "Forwarding" | "DefaultTTL")
            | (
                "Tcp",
                "RtoAlgorithm" | "RtoMin" | "RtoMax" | "MaxConn" | "CurrEstab"
            )
    )
}

/// The metric names of a file's fields, by position, built on first sight.
///
/// The kernel prints the same fields in the same order every time, so after the first
/// collection each lookup is a comparison with what was at that position before, and no
/// name is built again. Should the layout change, the names at changed positions are
/// rebuilt.
#[derive(Default)]
struct NameCache {
    entries: Vec<Entry>,
    cursor: usize,
}

struct Entry {
    section: Box<str>,
    field: Box<str>,
    name: Box<str>,
    gauge: bool,
}

impl NameCache {
    /// Starts a new pass over the file.
    fn rewind(&mut self) {
        self.cursor = 0;
    }

    /// The entry of the next reported field of this pass.
    fn next(&mut self, section: &str, field: &str, prefix: &str) -> &Entry {
        let fresh = || Entry {
            section: section.into(),
            field: field.into(),
            name: [prefix, field].concat().into(),
            gauge: is_gauge(section, field),
        };
        let i = self.cursor;
        self.cursor += 1;
        match self.entries.get_mut(i) {
            Some(e) if *e.section == *section && *e.field == *field => {}
            Some(e) => *e = fresh(),
            // The cursor moves one step per call, so `i` is the next free index here.
            None => self.entries.push(fresh()),
        }
        &self.entries[i]
    }
}

/// Checks a whole /proc/net/snmp6 text: `Name value` lines, values whole numbers.
pub fn check_snmp6(text: &str) -> Result<(), String> {
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        match (f.next(), f.next(), f.next()) {
            (None, _, _) => {}
            (Some(_), Some(v), None) if v.parse::<u64>().is_ok() => {}
            _ => return Err(format!("bad line `{line}`")),
        }
    }
    Ok(())
}

/// The `Ip6…` lines of a snmp6 text checked by [`check_snmp6`], as
/// `(field without "Ip6", value)`.
pub fn ip6_fields(text: &str) -> impl Iterator<Item = (&str, f64)> {
    text.lines().filter_map(|line| {
        let mut f = line.split_ascii_whitespace();
        let field = f.next()?.strip_prefix("Ip6")?;
        let value = f.next()?.parse::<u64>().ok()?;
        Some((field, value as f64))
    })
}

fn emit(em: &mut Emitter, e: &Entry, value: f64) {
    if e.gauge {
        em.gauge(&e.name, &[], value);
    } else {
        em.counter(&e.name, &[], value);
    }
}

impl Nstat {
    fn collect_snmp(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        let text = self.snmp.read()?;
        let fields = match snmp::parse(text) {
            Ok(f) => f,
            Err(e) => return Err(InputError::parse(self.snmp.path(), e)),
        };
        self.snmp_names.rewind();
        for (section, field, value) in fields {
            let Some(prefix) = prefix(section).filter(|_| section != "Ip6") else {
                continue;
            };
            emit(em, self.snmp_names.next(section, field, prefix), value);
        }
        Ok(())
    }

    /// snmp6 is absent when IPv6 is disabled: nothing to report then.
    fn collect_snmp6(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        let Some(text) = self.snmp6.read_optional()? else {
            return Ok(());
        };
        if let Err(e) = check_snmp6(text) {
            return Err(InputError::parse(self.snmp6.path(), e));
        }
        self.snmp6_names.rewind();
        for (field, value) in ip6_fields(text) {
            emit(em, self.snmp6_names.next("Ip6", field, "nstat_ip6_"), value);
        }
        Ok(())
    }

    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        if let Err(e) = self.collect_snmp(em) {
            em.partial_failure(e);
        }
        if let Err(e) = self.collect_snmp6(em) {
            em.partial_failure(e);
        }
        Ok(())
    }
}

impl Input for Nstat {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

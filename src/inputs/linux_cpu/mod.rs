//! `linux_cpu`: CPU time split per core and in total, from /proc/stat.

use crate::core::{ready, CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::{fields, numbers_into, Known, ProcFile};
use crate::inputs::BuildCtx;
use serde::{Deserialize, Serialize};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# CPU time in percent over each interval, per core (cpu=cpu0, cpu1, ...) and in total (cpu=total).
- linux_cpu:
    percpu: true     # one series set per core
    totalcpu: true   # the all-cores series set
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Report each core (`cpu=cpu0`, …).
    pub percpu: bool,
    /// Report all cores together (`cpu=total`).
    pub totalcpu: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            percpu: true,
            totalcpu: true,
        }
    }
}

pub struct LinuxCpu {
    stat: ProcFile,
    percpu: bool,
    totalcpu: bool,
    /// The previous reading of each `cpu…` line, by its name in the file.
    cpus: Known<Option<Jiffies>>,
    /// This collection's readings (index into `cpus`), applied once the whole file parsed.
    rows: Vec<(usize, Jiffies)>,
}

pub fn build(cfg: &Config, ctx: &BuildCtx) -> Result<LinuxCpu, String> {
    if !cfg.percpu && !cfg.totalcpu {
        return Err("percpu and totalcpu are both false: nothing to report".into());
    }
    let mut cpu = LinuxCpu {
        stat: ProcFile::new(ctx.procfs_root.join("stat")),
        percpu: cfg.percpu,
        totalcpu: cfg.totalcpu,
        cpus: Known::default(),
        rows: Vec::with_capacity(8),
    };
    // The baseline, so the first collection already has a delta. If /proc/stat cannot be
    // read now, the first collection reports why (and becomes the baseline).
    if cpu.read().is_ok() {
        cpu.apply(None);
    }
    Ok(cpu)
}

/// The time counters of one `cpu` line of /proc/stat, in jiffies (USER_HZ).
///
/// `user` already includes `guest` and `nice` includes `guest_nice`, so the guest columns
/// are read (to validate the line) but not added again.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Jiffies {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

/// Shares of one interval, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percents {
    /// Everything but idle and iowait: user + system + steal.
    pub usage: f64,
    /// user + nice (guest time included, as the kernel counts it).
    pub user: f64,
    /// system + irq + softirq.
    pub system: f64,
    pub iowait: f64,
    pub steal: f64,
    pub idle: f64,
}

/// Parses one `cpu…` line: its name (`cpu`, `cpu0`, …), counters and number of columns.
/// Kernels before 2.6.11 have fewer columns; missing ones count as 0. Extra columns must
/// still be numbers.
pub fn parse_cpu_line(line: &str) -> Result<(&str, Jiffies, usize), String> {
    let mut f = fields(line);
    let name = f.next().unwrap_or_default();
    let suffix = name.strip_prefix("cpu").unwrap_or("x");
    if !suffix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("unexpected line `{}`", short(line)));
    }
    let mut v = [0u64; 10];
    let n = numbers_into(f, &mut v, name)?;
    if n < 4 {
        return Err(format!("{name}: only {n} columns, at least 4 expected"));
    }
    let [user, nice, system, idle, iowait, irq, softirq, steal, _guest, _guest_nice] = v;
    Ok((
        name,
        Jiffies {
            user,
            nice,
            system,
            idle,
            iowait,
            irq,
            softirq,
            steal,
        },
        n,
    ))
}

/// Calls `each` with every `cpu…` line of /proc/stat (they come first); stops at the
/// first other line. A bad `cpu` line fails the whole file, and so does one with another
/// number of columns than the first (a truncated file).
pub fn parse_stat(text: &str, mut each: impl FnMut(&str, Jiffies)) -> Result<(), String> {
    let mut columns = None;
    for line in text.lines() {
        if !line.starts_with("cpu") {
            if columns.is_some() {
                break;
            }
            continue;
        }
        let (name, j, n) = parse_cpu_line(line)?;
        let first = *columns.get_or_insert(n);
        if first != n {
            return Err(format!(
                "{name}: {n} columns, the first cpu line has {first}"
            ));
        }
        each(name, j);
    }
    if columns.is_none() {
        return Err("no cpu lines".into());
    }
    Ok(())
}

/// The shares of the interval between two readings; `None` when time did not move
/// forward or any counter went back (counter reset, CPU taken offline and back).
pub fn percents(before: &Jiffies, now: &Jiffies) -> Option<Percents> {
    let d = |a: u64, b: u64| b.checked_sub(a);
    let user = d(before.user, now.user)? + d(before.nice, now.nice)?;
    let system =
        d(before.system, now.system)? + d(before.irq, now.irq)? + d(before.softirq, now.softirq)?;
    let idle = d(before.idle, now.idle)?;
    let iowait = d(before.iowait, now.iowait)?;
    let steal = d(before.steal, now.steal)?;
    let total = user + system + idle + iowait + steal;
    if total == 0 {
        return None;
    }
    let pct = |x: u64| 100.0 * x as f64 / total as f64;
    Some(Percents {
        usage: pct(user + system + steal),
        user: pct(user),
        system: pct(system),
        iowait: pct(iowait),
        steal: pct(steal),
        idle: pct(idle),
    })
}

fn short(line: &str) -> &str {
    match line.char_indices().nth(40) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

impl LinuxCpu {
    /// Reads /proc/stat into `rows`; nothing is applied unless the whole file parsed.
    fn read(&mut self) -> Result<(), InputError> {
        self.rows.clear();
        self.cpus.begin();
        let (percpu, totalcpu) = (self.percpu, self.totalcpu);
        let (cpus, rows) = (&mut self.cpus, &mut self.rows);
        let mut duplicate = false;
        let parsed = parse_stat(self.stat.read()?, |name, j| {
            let wanted = if name == "cpu" { totalcpu } else { percpu };
            if wanted {
                let (i, first) = cpus.find_or_insert(name, |_| None);
                duplicate |= !first;
                rows.push((i, j));
            }
        });
        match parsed {
            Ok(()) if duplicate => Err(InputError::parse(self.stat.path(), "duplicate cpu line")),
            Ok(()) => Ok(()),
            Err(e) => Err(InputError::parse(self.stat.path(), e)),
        }
    }

    /// Makes `rows` the new baseline, writing the shares since the old one if `em` is given.
    fn apply(&mut self, mut em: Option<&mut Emitter>) {
        for &(i, now) in &self.rows {
            let entry = self.cpus.get_mut(i);
            let before = entry.state.replace(now);
            let (Some(em), Some(before)) = (em.as_deref_mut(), before) else {
                continue;
            };
            let Some(p) = percents(&before, &now) else {
                continue;
            };
            let label = if &*entry.name == "cpu" {
                "total"
            } else {
                &entry.name
            };
            let labels = [("cpu", label)];
            em.gauge("cpu_usage_percent", &labels, p.usage);
            em.gauge("cpu_user_percent", &labels, p.user);
            em.gauge("cpu_system_percent", &labels, p.system);
            em.gauge("cpu_iowait_percent", &labels, p.iowait);
            em.gauge("cpu_steal_percent", &labels, p.steal);
            em.gauge("cpu_idle_percent", &labels, p.idle);
        }
        self.cpus.sweep();
    }

    fn collect_sync(&mut self, em: &mut Emitter) -> Result<(), InputError> {
        self.read()?;
        self.apply(Some(em));
        Ok(())
    }
}

impl Input for LinuxCpu {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        ready(self.collect_sync(em))
    }
}

#[cfg(test)]
mod tests;

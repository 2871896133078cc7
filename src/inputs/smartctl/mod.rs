//! `smartctl`: disk health from `smartctl --json --all`, one run per device per collection.

mod report;
mod run;

use crate::config::{BuildError, Dur};
use crate::config::range;
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::command::Captured;
use crate::inputs::BuildCtx;
use regex_lite::Regex;
use report::{describe_exit_bits, identity, messages, Writer, FATAL_BITS};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::Duration;

pub use report::EXIT_BITS;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Disk health through smartctl (smartmontools) and its JSON output. Needs root, or the
# capabilities on smartctl, or use_sudo with a NOPASSWD rule: see the input's README.
# Health changes slowly and each run wakes the disk's firmware: give it a long
# `interval` (5m, say).
- smartctl:
    smartctl_path: smartctl  # on PATH, or a full path
    use_sudo: false          # run `sudo -n smartctl …`
    devices: []              # regexes over /dev names, e.g. [\"^sd[a-z]$\", \"^nvme[0-9]+$\"];
                             # empty: the devices `smartctl --scan-open` finds
    attributes: []           # ATA attribute names or ids and NVMe fields; empty: all
    nocheck: standby         # do not wake a disk in this power mode (never, sleep, standby, idle)
    timeout: 30s             # per smartctl run; killed after this
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub smartctl_path: String,
    pub use_sudo: bool,
    pub devices: Vec<String>,
    pub attributes: Vec<String>,
    pub nocheck: String,
    #[serde(deserialize_with = "range::timeout")]
    pub timeout: Dur,
    /// Where `devices` patterns are matched (a container may mount the host's /dev elsewhere).
    pub dev_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            smartctl_path: "smartctl".into(),
            use_sudo: false,
            devices: Vec::new(),
            attributes: Vec::new(),
            nocheck: "standby".into(),
            timeout: Dur(Duration::from_secs(30)),
            dev_dir: PathBuf::from("/dev"),
        }
    }
}

/// A disk to ask about: its path, its `device` label (the path without `/dev/`) and the
/// `-d` type `--scan-open` gave.
struct Device {
    path: String,
    label: String,
    kind: Option<String>,
}

pub struct Smartctl {
    program: String,
    /// Arguments before smartctl's own (`smartctl` itself when run through sudo).
    prefix: Vec<String>,
    devices: Vec<Regex>,
    dev_dir: PathBuf,
    attributes: Vec<String>,
    nocheck: String,
    timeout: Duration,
    out: Captured,
    /// Each device's last exit status, so a change is logged once.
    last_status: HashMap<String, i32>,
    told_permission: bool,
    /// Per `devices` pattern: whether its matching nothing has been logged (reset once it
    /// matches again, so a disk that goes away later is told once more).
    told_unmatched: Vec<bool>,
}

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<Smartctl, BuildError> {
    if cfg.smartctl_path.trim().is_empty() {
        return Err(BuildError::at("smartctl_path", "must not be empty"));
    }
    if !["never", "sleep", "standby", "idle"].contains(&cfg.nocheck.as_str()) {
        return Err(BuildError::at(
            "nocheck",
            format!("`{}` is not one of never, sleep, standby, idle", cfg.nocheck),
        ));
    }
    if cfg.timeout.0.is_zero() {
        return Err(BuildError::at("timeout", "must be more than 0"));
    }
    let devices = cfg
        .devices
        .iter()
        .map(|p| Regex::new(p).map_err(|e| BuildError::at("devices", format!("invalid pattern `{p}`: {e}"))))
        .collect::<Result<_, _>>()?;
    let (program, prefix) = if cfg.use_sudo {
        ("sudo".to_string(), vec!["-n".into(), cfg.smartctl_path.clone()])
    } else {
        (cfg.smartctl_path.clone(), Vec::new())
    };
    Ok(Smartctl {
        program,
        prefix,
        told_unmatched: vec![false; cfg.devices.len()],
        devices,
        dev_dir: cfg.dev_dir.clone(),
        attributes: cfg.attributes.clone(),
        nocheck: cfg.nocheck.clone(),
        timeout: cfg.timeout.0,
        out: Captured::default(),
        last_status: HashMap::new(),
        told_permission: false,
    })
}

/// `smartctl --scan-open --json`'s devices. smartctl 7.3 leaves `devices` out when it
/// finds none; anything else that is not a list is an error.
pub fn parse_scan(doc: &Value) -> Result<Vec<(String, Option<String>)>, &'static str> {
    if doc["smartctl"].is_null() {
        return Err("not smartctl's JSON (no `smartctl` object)");
    }
    let list = match &doc["devices"] {
        Value::Null => return Ok(Vec::new()),
        Value::Array(list) => list,
        _ => return Err("`devices` is not a list"),
    };
    Ok(list
        .iter()
        .filter_map(|d| {
            let name = d["name"].as_str()?;
            Some((name.to_string(), d["type"].as_str().map(str::to_string)))
        })
        .collect())
}

fn is_permission_problem(msg: &str) -> bool {
    msg.contains("Permission denied") || msg.contains("Operation not permitted")
}

impl Smartctl {
    async fn smartctl(&mut self, args: &[&str]) -> Result<(i32, Option<Value>), InputError> {
        let mut all: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        let status = run::run(&self.program, &all, self.timeout, &mut self.out)
            .await
            .map_err(|e| {
                let hint = match e {
                    run::RunError::Spawn(_) => " (install smartmontools or set smartctl_path)",
                    _ => "",
                };
                InputError::new(format!(
                    "smartctl: `{} {}`: {e}{hint}",
                    self.program,
                    all.join(" ")
                ))
            })?;
        let code = match (status.code(), status.signal()) {
            (Some(c), _) => c,
            (None, Some(sig)) => {
                return Err(InputError::new(format!(
                    "smartctl: `{}` killed by signal {sig}",
                    all.join(" ")
                )))
            }
            (None, None) => -1,
        };
        // A truncated or garbled document is one error; nothing of it is written.
        let doc = serde_json::from_slice::<Value>(&self.out.stdout).ok();
        Ok((code, doc))
    }

    async fn devices(&mut self) -> Result<Vec<Device>, InputError> {
        if !self.devices.is_empty() {
            return self.devices_from_dev_dir();
        }
        let (code, doc) = self.smartctl(&["--scan-open", "--json"]).await?;
        let doc = doc.ok_or_else(|| {
            InputError::new(format!(
                "smartctl --scan-open: output is not JSON (exit status {code})"
            ))
        })?;
        let list = parse_scan(&doc)
            .map_err(|e| InputError::new(format!("smartctl --scan-open: {e}")))?;
        Ok(list
            .into_iter()
            .map(|(path, kind)| Device {
                label: path.strip_prefix("/dev/").unwrap_or(&path).to_string(),
                path,
                kind,
            })
            .collect())
    }

    fn devices_from_dev_dir(&mut self) -> Result<Vec<Device>, InputError> {
        let rd = std::fs::read_dir(&self.dev_dir).map_err(|e| InputError::io(&self.dev_dir, &e))?;
        let mut matched = vec![false; self.devices.len()];
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                let mut any = false;
                for (r, hit) in self.devices.iter().zip(matched.iter_mut()) {
                    if r.is_match(n) {
                        *hit = true;
                        any = true;
                    }
                }
                any
            })
            .collect();
        names.sort();
        self.tell_unmatched_once(&matched);
        Ok(names
            .into_iter()
            .map(|n| Device {
                path: self.dev_dir.join(&n).to_string_lossy().into_owned(),
                label: n,
                kind: None,
            })
            .collect())
    }

    async fn collect_async(&mut self, em: &mut Emitter<'_>) -> Result<(), InputError> {
        for dev in self.devices().await? {
            if let Err(e) = self.collect_device(&dev, em).await {
                em.partial_failure(e);
            }
        }
        Ok(())
    }

    async fn collect_device(&mut self, dev: &Device, em: &mut Emitter<'_>) -> Result<(), InputError> {
        let nocheck = format!("--nocheck={}", self.nocheck);
        let mut args = vec!["--json", "--all", nocheck.as_str()];
        if let Some(kind) = &dev.kind {
            args.extend(["-d", kind.as_str()]);
        }
        args.push(&dev.path);
        let (code, doc) = self.smartctl(&args).await?;
        let device = dev.label.as_str();
        em.gauge("smart_exit_status", &[("device", device)], code as f64);
        self.note_exit_status(device, code);
        let Some(doc) = doc else {
            return Err(InputError::new(format!(
                "smartctl: {}: output is not complete JSON (exit status {code}); nothing written",
                dev.path
            )));
        };
        if code & FATAL_BITS != 0 {
            let msg = messages(&doc);
            if is_permission_problem(&msg) {
                self.tell_permission_once(&msg);
            }
            return Err(InputError::new(format!(
                "smartctl: {}: {}: {msg}",
                dev.path,
                describe_exit_bits(code & FATAL_BITS)
            )));
        }
        let mut w = Writer {
            em,
            device,
            id: identity(&doc),
            wanted: &self.attributes,
            name: String::new(),
        };
        w.write(&doc);
        Ok(())
    }

    /// Logs a device's exit bits when they change: bits 6 and 7 stay set for as long as
    /// the logs hold old errors, so logging them every run would drown the rest.
    fn note_exit_status(&mut self, device: &str, code: i32) {
        let before = self.last_status.insert(device.to_string(), code);
        if before == Some(code) {
            return;
        }
        if code == 0 {
            if before.is_some() {
                log::info!("smartctl: {device}: exit status back to 0");
            }
        } else {
            log::warn!(
                "smartctl: {device}: exit status {code:#04x}: {}",
                describe_exit_bits(code)
            );
        }
    }

    /// A pattern that matches nothing silently reads no disk (a typo, a disk not plugged
    /// in): say so once per pattern, until it matches again.
    fn tell_unmatched_once(&mut self, matched: &[bool]) {
        let mut untold = Vec::new();
        for ((told, hit), pattern) in self.told_unmatched.iter_mut().zip(matched).zip(&self.devices) {
            if *hit {
                *told = false;
            } else if !std::mem::replace(told, true) {
                untold.push(format!("`{}`", pattern.as_str()));
            }
        }
        let (noun, verb, them) = match untold.len() {
            0 => return,
            1 => ("pattern", "matches", "it"),
            _ => ("patterns", "match", "them"),
        };
        log::warn!(
            "smartctl: devices {noun} {} {verb} no device in {}; nothing is read for {them}",
            untold.join(", "),
            self.dev_dir.display()
        );
    }

    fn tell_permission_once(&mut self, msg: &str) {
        if std::mem::replace(&mut self.told_permission, true) {
            return;
        }
        log::error!(
            "smartctl cannot open the disks ({msg}). It needs root: run rtcollector as root, \
             or give smartctl CAP_SYS_RAWIO (ATA/SCSI) and CAP_SYS_ADMIN (NVMe) with \
             `setcap cap_sys_rawio,cap_sys_admin+ep $(command -v smartctl)` and read access to \
             the devices (group `disk`), or set use_sudo: true with a NOPASSWD sudoers rule for smartctl"
        );
    }
}

impl Input for Smartctl {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(self.collect_async(em))
    }
}

#[cfg(test)]
mod tests;

//! The hardware inputs end to end: `sensors` and `onewire` on fixture /sys trees,
//! `smartctl` with the stand-in smartctl of tests/fixtures/smartctl, through the built
//! binary's `--once` and its JSON stdout.

mod support;
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::time::Duration;
use support::agent::{run_once, stderr, stdout, Agent};
use support::samples::samples;
use support::scratch::{fixture, Scratch};

fn config(sysfs_root: &str, inputs: &str, extra: &str) -> String {
    format!(
        "hostname: testbox\nsysfs_root: {sysfs_root}\n{extra}inputs:\n{inputs}outputs:\n  - stdout:\n      format: json\n"
    )
}

fn values(out: &str) -> BTreeMap<String, f64> {
    samples(out)
        .into_iter()
        .map(|(k, v)| (k, v["value"].as_f64().expect("numeric value")))
        .collect()
}

fn once(config_text: &str, path_env: Option<&str>) -> (BTreeMap<String, f64>, String, bool) {
    let s = Scratch::new();
    let path = s.config(config_text);
    let env: Vec<(&str, &str)> = path_env.map(|p| ("PATH", p)).into_iter().collect();
    let o = run_once(&path, &env);
    (values(&stdout(&o)), stderr(&o), o.status.success())
}

fn standin_dir() -> String {
    fixture("smartctl").to_string_lossy().into_owned()
}

#[test]
fn sensors_once_reports_exact_values_from_the_fixture_tree() {
    let sys = fixture("sensors").join("sys");
    let (got, err, ok) = once(&config(sys.to_str().unwrap(), "  - sensors\n", ""), None);
    assert!(ok, "{err}");
    assert!(
        !err.contains("WARN"),
        "unreadable inputs are skipped quietly: {err}"
    );
    assert_eq!(
        got["hwmon_temp_c{chip=platform_coretemp_0,sensor=Package id 0}"],
        51.0
    );
    assert_eq!(
        got["hwmon_temp_c{chip=pci0000:00_0000:00:18_3,sensor=Tctl}"],
        38.125
    );
    assert_eq!(
        got["hwmon_fan_rpm{chip=platform_nct6775_656,sensor=fan1}"],
        1098.0
    );
    assert_eq!(
        got["hwmon_in_v{chip=platform_nct6775_656,sensor=Vcore}"],
        0.792
    );
    assert_eq!(
        got["hwmon_curr_a{chip=platform_nct6775_656,sensor=curr1}"],
        1.5
    );
    assert_eq!(
        got["hwmon_power_w{chip=platform_nct6775_656,sensor=power1}"],
        12.5
    );
    assert_eq!(
        got["hwmon_fan_rpm{chip=platform_asus_nb_wmi_asus,sensor=cpu_fan}"],
        2900.0
    );
    assert_eq!(got["thermal_zone_temp_c{type=cpu-thermal,zone=0}"], 48.312);
    assert_eq!(got.len(), 17, "{:#?}", got.keys());
}

#[test]
fn sensors_raw_units_with_pollects_option_name() {
    let sys = fixture("sensors").join("sys");
    let inputs = "  - sensors:\n      useBaseUnits: false\n      include: [nct]\n";
    let (got, err, ok) = once(&config(sys.to_str().unwrap(), inputs, ""), None);
    assert!(ok, "{err}");
    assert_eq!(
        got["hwmon_in_mv{chip=platform_nct6775_656,sensor=in3}"],
        12_096.0
    );
    assert_eq!(
        got["hwmon_temp_mc{chip=platform_nct6775_656,sensor=SYSTIN}"],
        -1_500.0
    );
    assert!(
        got.keys()
            .all(|k| k.contains("nct6775") || k.starts_with("thermal")),
        "{got:#?}"
    );
}

#[test]
fn onewire_once_reads_both_formats_and_reports_the_bad_ones() {
    let sys = fixture("onewire").join("sys");
    let (got, err, ok) = once(&config(sys.to_str().unwrap(), "  - onewire\n", ""), None);
    assert!(ok, "{err}");
    assert_eq!(got["onewire_temp_c{sensor_id=28-0316a2791aff}"], 21.5);
    assert_eq!(got["onewire_temp_c{sensor_id=28-000005e2fdc3}"], 20.687);
    assert_eq!(got["onewire_temp_c{sensor_id=10-000802b4c6a1}"], -10.125);
    assert_eq!(
        got.len(),
        3,
        "no sample for the CRC failure nor the 85 °C: {got:#?}"
    );
    assert!(
        err.contains("input onewire:") && err.contains("85 °C power-on value"),
        "{err}"
    );
}

#[test]
fn smartctl_on_path_reports_sata_nvme_and_scsi() {
    let path = format!("{}:/usr/bin:/bin", standin_dir());
    let (got, err, ok) = once(&config("/sys", "  - smartctl\n", ""), Some(&path));
    assert!(ok, "{err}");
    let sda = "device=sda,model=Samsung SSD 870 EVO 500GB,protocol=ATA,serial=S62ANJ0R912345X";
    assert_eq!(got[&format!("smart_passed{{{sda}}}")], 1.0);
    assert_eq!(
        got[&format!("smart_attribute_raw{{attribute=Reallocated_Sector_Ct,{sda}}}")],
        0.0
    );
    let sdb = "device=sdb,model=WDC WD30EFRX-68EUZN0,protocol=ATA,serial=WD-WCC4N7XK1234";
    assert_eq!(got[&format!("smart_passed{{{sdb}}}")], 0.0);
    assert_eq!(got["smart_exit_status{device=sdb}"], 88.0);
    assert_eq!(
        got[&format!("smart_attribute_raw{{attribute=Reallocated_Sector_Ct,{sdb}}}")],
        1648.0
    );
    let nvme = "device=nvme0,model=WD Blue SN570 1TB,protocol=NVMe,serial=22047A801234";
    assert_eq!(got[&format!("smart_nvme_percentage_used{{{nvme}}}")], 3.0);
    assert_eq!(got[&format!("smart_power_on_hours{{{nvme}}}")], 6932.0);
    let sdc = "device=sdc,model=SEAGATE ST4000NM0023,operation=read,protocol=SCSI,serial=Z1Z9ABCD0000R1234567";
    assert_eq!(
        got[&format!("smart_scsi_total_errors_corrected{{{sdc}}}")],
        1_802_350.0
    );
    // The failing disk's bits are named in the log.
    assert!(
        err.contains(
            "smartctl: sdb: exit status 0x58: bit 3 (SMART status check returned DISK FAILING)"
        ),
        "{err}"
    );
}

#[test]
fn smartctl_broken_devices_are_errors_not_crashes() {
    let s = Scratch::new();
    let dev = s.dir.path().join("dev");
    std::fs::create_dir(&dev).unwrap();
    for n in ["sda", "sdd", "sde", "sdf", "tty0"] {
        std::fs::write(dev.join(n), "").unwrap();
    }
    let inputs = format!(
        "  - smartctl:\n      smartctl_path: {}/smartctl\n      devices: ['^sd']\n      dev_dir: {}\n      timeout: 1s\n",
        standin_dir(),
        dev.display()
    );
    let (got, err, ok) = once(&config("/sys", &inputs, ""), None);
    assert!(ok, "{err}");
    // The good disk is reported whole; the truncated, hung and refused ones only have
    // their exit status (the hung one has none: it was killed).
    assert_eq!(got["smart_temperature_c{device=sda,model=Samsung SSD 870 EVO 500GB,protocol=ATA,serial=S62ANJ0R912345X}"], 34.0);
    assert_eq!(got["smart_exit_status{device=sdd}"], 0.0);
    assert_eq!(got["smart_exit_status{device=sdf}"], 2.0);
    assert!(
        !got.keys().any(|k| k.contains("sde") || k.contains("tty0")),
        "{got:#?}"
    );
    assert!(
        got.keys()
            .filter(|k| k.contains("sdd") || k.contains("sdf"))
            .count()
            == 2
    );
    // The first failure is the warning; the permission problem is explained once.
    assert!(err.contains("sdd: output is not complete JSON"), "{err}");
    assert_eq!(err.matches("It needs root").count(), 1, "{err}");
    assert!(
        err.contains("setcap cap_sys_rawio,cap_sys_admin+ep"),
        "{err}"
    );
    // The hung stand-in's own child went with it (SIGKILL lands asynchronously: bounded wait).
    let alive = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .any(|c| c == b"sleep\x00119.875\x00")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(), "the hung stand-in's child outlived the agent");
}

/// A `devices` pattern that matches nothing is said once, not per collection, and the
/// disks other patterns match are still read.
#[test]
fn smartctl_patterns_matching_no_device_are_named_once() {
    let s = Scratch::new();
    let dev = s.dir.path().join("dev");
    std::fs::create_dir(&dev).unwrap();
    std::fs::write(dev.join("sda"), "").unwrap();
    let inputs = format!(
        "  - smartctl:\n      smartctl_path: {}/smartctl\n      devices: ['^sda$', '^nvme9n1$', '^hdq']\n      dev_dir: {}\n",
        standin_dir(),
        dev.display()
    );
    let path = s.config(&config("/sys", &inputs, "interval: 1s\n"));
    let mut agent = Agent::start(&path);
    let mut seen = Vec::new();
    for round in 0..3 {
        let (lines, ok) = agent.wait_for(Duration::from_secs(15), |l| {
            l.contains("\"smart_exit_status\"") && l.contains("\"sda\"")
        });
        seen.extend(lines);
        assert!(ok, "collection {round}: {seen:#?}");
    }
    agent.signal(Signal::SIGTERM);
    agent.wait_exit(Duration::from_secs(6)).expect("exit");
    seen.extend(agent.drain());
    let warnings: Vec<&String> = seen
        .iter()
        .filter(|l| l.contains("match no device"))
        .collect();
    assert_eq!(warnings.len(), 1, "{seen:#?}");
    let expected = format!(
        "[WARN] smartctl: devices patterns `^nvme9n1$`, `^hdq` match no device in {}; nothing is read for them",
        dev.display()
    );
    assert!(warnings[0].contains(&expected), "{warnings:?}");
}

/// async-process starts a reaper thread on its first child unless someone drives its
/// reaper: the smartctl input does, so an agent running it stays at its idle threads.
#[test]
fn smartctl_adds_no_thread_to_the_agent() {
    let s = Scratch::new();
    let inputs = format!(
        "  - smartctl:\n      smartctl_path: {}/smartctl\n",
        standin_dir()
    );
    let path = s.config(&config("/sys", &inputs, "interval: 1s\n"));
    let mut agent = Agent::start(&path);
    for round in 0..2 {
        let (lines, ok) = agent.wait_for(Duration::from_secs(15), |l| {
            l.contains("\"smart_exit_status\"") && l.contains("\"nvme0\"")
        });
        assert!(ok, "collection {round}: {lines:#?}");
    }
    let tasks = format!("/proc/{}/task", agent.child.id());
    let names: Vec<String> = std::fs::read_dir(&tasks)
        .unwrap()
        .map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).unwrap())
        .map(|n| n.trim().to_string())
        .collect();
    eprintln!(
        "threads while smartctl runs every second: {} {names:?}",
        names.len()
    );
    assert!(!names.iter().any(|n| n == "async-process"), "{names:?}");
    assert!(names.len() <= 2, "{names:?}");
    agent.signal(Signal::SIGTERM);
    assert!(agent
        .wait_exit(Duration::from_secs(6))
        .expect("exit")
        .0
        .success());
}

use super::*;
use crate::inputs::testutil::{fixture_dir, sample_options, Collected, Harness};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The stand-in smartctl of tests/fixtures/smartctl.
fn standin() -> String {
    fixture_dir("smartctl").join("smartctl").to_string_lossy().into_owned()
}

fn collect(cfg: Config) -> Collected {
    let ctx = BuildCtx::with_roots("/nonexistent", "/nonexistent");
    Harness::new(Box::new(build(&cfg, &ctx).unwrap())).collect(1_000)
}

/// A /dev stand-in holding `names`, for the `devices:` patterns.
fn dev_dir(names: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for n in names {
        std::fs::write(d.path().join(n), "").unwrap();
    }
    d
}

fn with_devices(dev: &tempfile::TempDir, patterns: &[&str]) -> Config {
    Config {
        smartctl_path: standin(),
        devices: s(patterns),
        dev_dir: dev.path().to_path_buf(),
        timeout: Dur(Duration::from_secs(2)),
        ..Config::default()
    }
}

const SDA: &str = "device=sda,model=Samsung SSD 870 EVO 500GB,protocol=ATA,serial=S62ANJ0R912345X";
const SDB: &str = "device=sdb,model=WDC WD30EFRX-68EUZN0,protocol=ATA,serial=WD-WCC4N7XK1234";
const SDC: &str = "device=sdc,model=SEAGATE ST4000NM0023,protocol=SCSI,serial=Z1Z9ABCD0000R1234567";
const NVME: &str = "device=nvme0,model=WD Blue SN570 1TB,protocol=NVMe,serial=22047A801234";

fn with_attr(attribute: &str, labels: &str) -> String {
    // Labels are sorted: attribute comes before device.
    format!("attribute={attribute},{labels}")
}

#[test]
fn scanned_disks_report_exact_health_figures() {
    let got = collect(Config {
        smartctl_path: standin(),
        ..Config::default()
    });
    assert!(got.error.is_none(), "{:?}", got.error);
    // SATA SSD, healthy.
    assert_eq!(got[&*format!("smart_passed{{{SDA}}}")], 1.0);
    assert_eq!(got[&*format!("smart_temperature_c{{{SDA}}}")], 34.0);
    assert_eq!(got[&*format!("smart_power_on_hours{{{SDA}}}")], 12_873.0);
    assert_eq!(got[&*format!("smart_power_cycles{{{SDA}}}")], 412.0);
    assert_eq!(got["smart_exit_status{device=sda}"], 0.0);
    let a = |name: &str| with_attr(name, SDA);
    assert_eq!(got[&*format!("smart_attribute_value{{{}}}", a("Wear_Leveling_Count"))], 98.0);
    assert_eq!(got[&*format!("smart_attribute_worst{{{}}}", a("Airflow_Temperature_Cel"))], 52.0);
    assert_eq!(got[&*format!("smart_attribute_threshold{{{}}}", a("Reallocated_Sector_Ct"))], 10.0);
    assert_eq!(got[&*format!("smart_attribute_raw{{{}}}", a("Total_LBAs_Written"))], 38_212_317_690.0);
    assert_eq!(got[&*format!("smart_attribute_raw{{{}}}", a("Temperature_Celsius"))], 236_224_790_562.0);
    // Two attributes smartctl does not know share a name: told apart by id.
    assert_eq!(got[&*format!("smart_attribute_raw{{{}}}", a("Unknown_Attribute_235"))], 17.0);
    assert_eq!(got[&*format!("smart_attribute_raw{{{}}}", a("Unknown_Attribute_236"))], 0.0);
    // The disk declared as a device (issue 23), with its firmware.
    assert_eq!(got[&*format!("smart_info{{{SDA},version=SVT02B6Q}}")], 1.0);
    assert_eq!(got[&*format!("smart_info{{{NVME},version=234110WD}}")], 1.0);
    // SATA disk failing: exit bits 3, 4 and 6, and still every figure.
    assert_eq!(got["smart_exit_status{device=sdb}"], 88.0);
    assert_eq!(got[&*format!("smart_passed{{{SDB}}}")], 0.0);
    let b = |name: &str| with_attr(name, SDB);
    assert_eq!(got[&*format!("smart_attribute_raw{{{}}}", b("Reallocated_Sector_Ct"))], 1648.0);
    assert_eq!(got[&*format!("smart_attribute_value{{{}}}", b("Raw_Read_Error_Rate"))], 1.0);
    assert_eq!(got[&*format!("smart_attribute_threshold{{{}}}", b("Raw_Read_Error_Rate"))], 51.0);
    assert_eq!(got[&*format!("smart_attribute_raw{{{}}}", b("Current_Pending_Sector"))], 24.0);
    // NVMe: every numeric field of the health log, arrays with an index.
    let n = |m: &str| got[&*format!("smart_nvme_{m}{{{NVME}}}")];
    assert_eq!(n("percentage_used"), 3.0);
    assert_eq!(n("data_units_written"), 41_093_858.0);
    assert_eq!(n("unsafe_shutdowns"), 93.0);
    assert_eq!(n("available_spare_threshold"), 10.0);
    assert_eq!(n("num_err_log_entries"), 2.0);
    let sensor = |i: u32| {
        let labels = NVME.replace(",model=", &format!(",index={i},model="));
        got[&*format!("smart_nvme_temperature_sensors{{{labels}}}")]
    };
    assert_eq!((sensor(0), sensor(1)), (38.0, 45.0));
    assert_eq!(got[&*format!("smart_temperature_c{{{NVME}}}")], 38.0);
    assert_eq!(got.keys_starting("smart_nvme_").len(), 19);
    // SCSI: grown defects, error counters per operation, start-stop cycles.
    assert_eq!(got[&*format!("smart_scsi_grown_defects{{{SDC}}}")], 8.0);
    assert_eq!(got[&*format!("smart_power_cycles{{{SDC}}}")], 74.0);
    assert_eq!(got[&*format!("smart_power_on_hours{{{SDC}}}")], 51_264.0);
    let op = |m: &str, o: &str| {
        let labels = SDC.replace(",protocol=", &format!(",operation={o},protocol="));
        got[&*format!("smart_scsi_{m}{{{labels}}}")]
    };
    assert_eq!(op("errors_corrected_by_eccfast", "read"), 1_802_347.0);
    assert_eq!(op("gigabytes_processed", "read"), 391_204.518);
    assert_eq!(op("total_uncorrected_errors", "verify"), 2.0);
    assert_eq!(op("gigabytes_processed", "verify"), 1.024);
}

#[test]
fn attributes_filter_ata_attributes_and_nvme_fields() {
    let got = collect(Config {
        smartctl_path: standin(),
        attributes: s(&["Reallocated_Sector_Ct", "194", "media_errors"]),
        ..Config::default()
    });
    let attrs: std::collections::BTreeSet<&str> = got
        .samples
        .keys()
        .filter_map(|k| k.split("attribute=").nth(1)?.split(',').next())
        .collect();
    assert_eq!(attrs.into_iter().collect::<Vec<_>>(), ["Reallocated_Sector_Ct", "Temperature_Celsius"]);
    assert_eq!(got.keys_starting("smart_nvme_"), [format!("smart_nvme_media_errors{{{NVME}}}")]);
    // The health summary is not an attribute: always written.
    assert!(got.has(&format!("smart_temperature_c{{{SDA}}}")));
}

#[test]
fn truncated_json_is_one_error_and_nothing_half_read() {
    let dev = dev_dir(&["sdd"]);
    let got = collect(with_devices(&dev, &["^sdd$"]));
    let e = got.error.clone().expect("an error");
    assert!(e.0.contains("sdd: output is not complete JSON"), "{e}");
    assert_eq!(got.samples.keys().collect::<Vec<_>>(), ["smart_exit_status{device=sdd}"]);
}

#[test]
fn a_hang_is_killed_at_the_timeout_with_its_children() {
    let dev = dev_dir(&["sde", "sda"]);
    let mut cfg = with_devices(&dev, &["^sd[ae]$"]);
    cfg.timeout = Dur(Duration::from_millis(500));
    let got = collect(cfg);
    let e = got.error.clone().expect("an error");
    assert!(e.0.contains("no answer within 500ms: killed"), "{e}");
    // The other disk is still reported.
    assert!(got.has(&format!("smart_passed{{{SDA}}}")));
    // The script's own child (`sleep 119.875`) went with it: the whole group was killed.
    // SIGKILL lands asynchronously: wait for it, bounded.
    let sleeping = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .any(|c| c == b"sleep\x00119.875\x00")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sleeping() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!sleeping(), "the stand-in's sleep outlived the timeout");
}

#[test]
fn no_permission_is_reported_with_the_bits() {
    let dev = dev_dir(&["sdf"]);
    let got = collect(with_devices(&dev, &["^sdf$"]));
    let e = got.error.clone().expect("an error");
    assert!(e.0.contains("bit 1 (device open failed"), "{e}");
    assert!(e.0.contains("Permission denied"), "{e}");
    assert_eq!(got["smart_exit_status{device=sdf}"], 2.0);
    assert_eq!(got.samples.len(), 1);
}

#[test]
fn a_missing_smartctl_says_how_to_fix_it() {
    let got = collect(Config {
        smartctl_path: "/nonexistent/smartctl".into(),
        ..Config::default()
    });
    let e = got.error.unwrap();
    assert!(e.0.contains("cannot start it") && e.0.contains("install smartmontools"), "{e}");
}

#[test]
fn exit_bits_are_named() {
    assert_eq!(describe_exit_bits(0), "");
    let d = describe_exit_bits(88);
    assert!(d.starts_with("bit 3 (SMART status check returned DISK FAILING), bit 4 ("), "{d}");
    assert!(d.ends_with("bit 6 (the device error log contains records of errors)"), "{d}");
}

#[test]
fn scan_output_is_checked() {
    let doc: Value = serde_json::from_str(
        r#"{"smartctl":{},"devices":[{"name":"/dev/sda","type":"sat"},{"type":"x"}]}"#,
    )
    .unwrap();
    assert_eq!(parse_scan(&doc).unwrap(), [("/dev/sda".to_string(), Some("sat".to_string()))]);
    assert!(parse_scan(&serde_json::json!({})).is_err());
    assert!(parse_scan(&serde_json::json!({"smartctl": {}, "devices": 3})).is_err());
    // What smartctl 7.3 prints on a machine without disks.
    let none = serde_json::json!({"json_format_version": [1, 0], "smartctl": {"exit_status": 0}});
    assert_eq!(parse_scan(&none).unwrap(), []);
}

#[test]
fn bad_options_are_config_errors() {
    let ctx = BuildCtx::with_roots("/x", "/x");
    let bad = |cfg: Config| build(&cfg, &ctx).err().unwrap().to_string();
    assert!(bad(Config { devices: s(&["("]), ..Config::default() }).starts_with("devices: invalid pattern"));
    assert!(bad(Config { nocheck: "asleep".into(), ..Config::default() }).starts_with("nocheck:"));
    assert!(bad(Config { smartctl_path: " ".into(), ..Config::default() }).contains("empty"));
}

#[test]
fn sample_is_the_default() {
    let c: Config = sample_options(SAMPLE);
    let d = Config::default();
    assert_eq!(
        (c.smartctl_path, c.use_sudo, c.devices, c.attributes, c.nocheck, c.timeout),
        (d.smartctl_path, d.use_sudo, d.devices, d.attributes, d.nocheck, d.timeout)
    );
}

#[test]
fn use_sudo_runs_smartctl_through_sudo_without_a_prompt() {
    let ctx = BuildCtx::with_roots("/x", "/x");
    let cfg = Config {
        use_sudo: true,
        smartctl_path: "/usr/sbin/smartctl".into(),
        ..Config::default()
    };
    let s = build(&cfg, &ctx).unwrap();
    assert_eq!(s.program, "sudo");
    assert_eq!(s.prefix, ["-n", "/usr/sbin/smartctl"]);
}

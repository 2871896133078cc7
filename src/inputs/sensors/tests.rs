use super::*;
use crate::inputs::testutil::{collect_fixture, fixture_dir, sample_options, Harness};
use std::fs;
use std::path::Path;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn fixture(cfg: &Config) -> crate::inputs::testutil::Collected {
    collect_fixture("sensors", |ctx| Box::new(build(cfg, ctx).unwrap()))
}

#[test]
fn reports_every_readable_input_in_base_units() {
    let got = fixture(&Config::default());
    // Chips named from their device's place in /sys/devices.
    assert_eq!(got["hwmon_temp_c{chip=platform_coretemp_0,sensor=Package id 0}"], 51.0);
    assert_eq!(got["hwmon_temp_c{chip=platform_coretemp_0,sensor=Core 0}"], 49.0);
    assert_eq!(got["hwmon_temp_c{chip=platform_coretemp_0,sensor=Core 1}"], 47.5);
    assert_eq!(got["hwmon_temp_c{chip=pci0000:00_0000:00:18_3,sensor=Tctl}"], 38.125);
    // No device link: the driver's name; no label file: the input's own name.
    assert_eq!(got["hwmon_temp_c{chip=acpitz,sensor=temp1}"], 27.8);
    let nct = "platform_nct6775_656";
    assert_eq!(got[&*format!("hwmon_fan_rpm{{chip={nct},sensor=fan1}}")], 1098.0);
    assert_eq!(got[&*format!("hwmon_fan_rpm{{chip={nct},sensor=fan2}}")], 0.0);
    assert_eq!(got[&*format!("hwmon_in_v{{chip={nct},sensor=Vcore}}")], 0.792);
    assert_eq!(got[&*format!("hwmon_in_v{{chip={nct},sensor=in3}}")], 12.096);
    assert_eq!(got[&*format!("hwmon_curr_a{{chip={nct},sensor=curr1}}")], 1.5);
    assert_eq!(got[&*format!("hwmon_power_w{{chip={nct},sensor=power1}}")], 12.5);
    assert_eq!(got[&*format!("hwmon_energy_j{{chip={nct},sensor=energy1}}")], 3600.0);
    assert_eq!(got[&*format!("hwmon_temp_c{{chip={nct},sensor=SYSTIN}}")], -1.5);
    // Two chips on one device get their driver's name appended; two inputs sharing a
    // label get their own name appended.
    assert_eq!(got["hwmon_fan_rpm{chip=platform_asus_nb_wmi_asus,sensor=cpu_fan}"], 2900.0);
    let wmi = "platform_asus_nb_wmi_asus_wmi_sensors";
    assert_eq!(got[&*format!("hwmon_temp_c{{chip={wmi},sensor=CPU Temperature (temp1)}}")], 41.0);
    assert_eq!(got[&*format!("hwmon_temp_c{{chip={wmi},sensor=CPU Temperature (temp2)}}")], 39.0);
    assert_eq!(got["thermal_zone_temp_c{type=cpu-thermal,zone=0}"], 48.312);
    // in1_input cannot be read (EISDIR here, EIO on a real chip), in2 has a label and no
    // input, thermal_zone1's temp cannot be read: all skipped, none is an error.
    assert!(got.keys_starting("hwmon_in_v").iter().all(|k| !k.contains("in1") && !k.contains("+12V")));
    assert!(!got.keys_starting("thermal_zone_temp_c").iter().any(|k| k.contains("gpu")));
    assert_eq!(got.samples.len(), 17, "{:#?}", got.samples.keys());
}

#[test]
fn raw_units_keep_the_kernel_figures_under_names_that_say_so() {
    let cfg = Config {
        use_base_units: false,
        thermal_zones: false,
        ..Config::default()
    };
    let got = fixture(&cfg);
    let nct = "platform_nct6775_656";
    assert_eq!(got[&*format!("hwmon_in_mv{{chip={nct},sensor=Vcore}}")], 792.0);
    assert_eq!(got[&*format!("hwmon_curr_ma{{chip={nct},sensor=curr1}}")], 1500.0);
    assert_eq!(got[&*format!("hwmon_power_uw{{chip={nct},sensor=power1}}")], 12_500_000.0);
    assert_eq!(got[&*format!("hwmon_energy_uj{{chip={nct},sensor=energy1}}")], 3_600_000_000.0);
    assert_eq!(got["hwmon_temp_mc{chip=acpitz,sensor=temp1}"], 27_800.0);
    assert!(got.keys_starting("hwmon_temp_c").is_empty());
    assert!(got.keys_starting("thermal_zone").is_empty());
}

#[test]
fn include_and_exclude_match_chip_or_driver_names() {
    let cfg = Config {
        include: s(&["coretemp", "^acpitz$"]),
        thermal_zones: false,
        ..Config::default()
    };
    let chips: std::collections::BTreeSet<String> = fixture(&cfg)
        .samples
        .keys()
        .map(|k| k.split("chip=").nth(1).unwrap().split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(chips.into_iter().collect::<Vec<_>>(), ["acpitz", "platform_coretemp_0"]);

    let cfg = Config {
        exclude: s(&["^asus", "nct6798"]),
        thermal_zones: false,
        ..Config::default()
    };
    let got = fixture(&cfg);
    assert!(got.keys_starting("hwmon_fan_rpm").is_empty(), "{:#?}", got.samples);
    assert!(got.has("hwmon_temp_c{chip=acpitz,sensor=temp1}"));
}

#[test]
fn bad_patterns_are_config_errors() {
    let ctx = crate::inputs::testutil::fixture_ctx("sensors");
    let cfg = Config {
        exclude: s(&["("]),
        ..Config::default()
    };
    let e = build(&cfg, &ctx).err().unwrap().to_string();
    assert!(e.starts_with("exclude: invalid pattern `(`"), "{e}");
}

#[test]
fn pollect_option_name_is_accepted() {
    let cfg: Config = yaml_serde::from_str("useBaseUnits: false").unwrap();
    assert!(!cfg.use_base_units);
    let cfg: Config = yaml_serde::from_str("use_base_units: false").unwrap();
    assert!(!cfg.use_base_units);
}

#[test]
fn sample_is_the_default() {
    let c: Config = sample_options(SAMPLE);
    let d = Config::default();
    assert_eq!(
        (c.include, c.exclude, c.use_base_units, c.thermal_zones, c.rescan_interval),
        (d.include, d.exclude, d.use_base_units, d.thermal_zones, d.rescan_interval)
    );
}

#[test]
fn node_exporter_name_cleaning() {
    assert_eq!(clean_name("coretemp.0"), "coretemp_0");
    assert_eq!(clean_name("0000:00:18.3"), "0000:00:18_3");
    assert_eq!(clean_name("asus-nb-wmi\n"), "asus_nb_wmi");
    assert_eq!(clean_name("_ACPI Tz._"), "acpi_tz");
}

/// A chip that appears after the start (a USB sensor plugged in) is found on the next
/// scan; the files of known chips are not looked up again in between.
#[test]
fn hotplugged_chips_appear_at_the_next_scan() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path();
    fs::create_dir_all(sys.join("class/hwmon")).unwrap();
    let add_chip = |n: u32, name: &str, milli_c: i64| {
        let d = sys.join(format!("devices/virtual/hwmon/hwmon{n}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("name"), format!("{name}\n")).unwrap();
        fs::write(d.join("temp1_input"), format!("{milli_c}\n")).unwrap();
        std::os::unix::fs::symlink(
            format!("../../devices/virtual/hwmon/hwmon{n}"),
            sys.join(format!("class/hwmon/hwmon{n}")),
        )
        .unwrap();
    };
    add_chip(0, "cpu_thermal", 45_000);
    let cfg = Config {
        rescan_interval: Dur(Duration::ZERO),
        ..Config::default()
    };
    let ctx = BuildCtx::with_roots(sys.join("noproc"), sys);
    let mut h = Harness::new(Box::new(build(&cfg, &ctx).unwrap()));
    let got = h.collect(1_000);
    assert_eq!(got.samples.len(), 1);
    assert_eq!(got["hwmon_temp_c{chip=cpu_thermal,sensor=temp1}"], 45.0);
    add_chip(1, "usb_sensor", -3_250);
    fs::write(sys.join("devices/virtual/hwmon/hwmon0/temp1_input"), "46500\n").unwrap();
    let got = h.collect(2_000);
    assert_eq!(got["hwmon_temp_c{chip=cpu_thermal,sensor=temp1}"], 46.5);
    assert_eq!(got["hwmon_temp_c{chip=usb_sensor,sensor=temp1}"], -3.25);
    assert!(got.error.is_none());
}

#[test]
fn no_hwmon_at_all_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = BuildCtx::with_roots(dir.path(), dir.path());
    let mut h = Harness::new(Box::new(build(&Config::default(), &ctx).unwrap()));
    let got = h.collect(1_000);
    assert!(got.error.is_none());
    assert!(got.samples.is_empty());
}

#[test]
fn the_fixture_tree_links_like_the_kernel() {
    let class = fixture_dir("sensors").join("sys/class/hwmon/hwmon2");
    assert!(fs::symlink_metadata(&class).unwrap().file_type().is_symlink());
    assert!(Path::new(&class).join("device").exists());
}

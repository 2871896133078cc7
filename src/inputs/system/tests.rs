use super::*;
use crate::inputs::testutil::{collect_fixture, fixture_ctx, fixture_dir, Harness};
use std::path::Path;

/// One binary utmp record as glibc writes it.
fn record(ut_type: i16, pid: i32, line: &str, user: &str) -> Vec<u8> {
    let mut r = vec![0u8; UTMP_RECORD];
    r[0..2].copy_from_slice(&ut_type.to_ne_bytes());
    r[4..8].copy_from_slice(&pid.to_ne_bytes());
    r[8..8 + line.len()].copy_from_slice(line.as_bytes());
    r[44..44 + user.len()].copy_from_slice(user.as_bytes());
    r[76..76 + 9].copy_from_slice(b"10.0.0.99");
    r
}

/// A utmp with a boot record, a run level, three sessions of two users, a login prompt and
/// a closed session.
fn sample_utmp() -> Vec<u8> {
    const BOOT_TIME: i16 = 2;
    const RUN_LVL: i16 = 1;
    const LOGIN_PROCESS: i16 = 6;
    const DEAD_PROCESS: i16 = 8;
    [
        record(BOOT_TIME, 0, "~", "reboot"),
        record(RUN_LVL, 53, "~", "runlevel"),
        record(USER_PROCESS, 1201, "pts/0", "pi"),
        record(LOGIN_PROCESS, 880, "tty1", "LOGIN"),
        record(USER_PROCESS, 1388, "pts/1", "pi"),
        record(USER_PROCESS, 1502, "pts/2", "admin"),
        record(DEAD_PROCESS, 1410, "pts/3", "admin"),
    ]
    .concat()
}

fn cfg_with_utmp(path: &Path) -> Config {
    Config {
        utmp_path: path.to_path_buf(),
    }
}

#[test]
fn parses_loadavg_and_uptime() {
    assert_eq!(
        parse_loadavg("0.42 0.36 0.31 3/318 24517\n").unwrap(),
        [0.42, 0.36, 0.31]
    );
    assert_eq!(parse_uptime("356789.42 1312345.67\n").unwrap(), 356_789.42);
}

#[test]
fn garbage_load_and_uptime_are_rejected() {
    assert!(parse_loadavg("0.42 0.36\n").is_err());
    assert!(parse_loadavg("0.42 nan 0.31 1/2 3\n").is_err());
    assert!(parse_loadavg("").is_err());
    assert!(parse_uptime("").is_err());
    assert!(parse_uptime("up 3 days").is_err());
    assert!(parse_uptime("-5 1").is_err());
    assert!(parse_uptime("inf 1").is_err());
}

#[test]
fn counts_only_numbered_cpu_lines() {
    assert_eq!(
        count_cpus("cpu  1 2 3\ncpu0 1 2\ncpu3 1 2\ncpufreq 9\nintr 1\n").unwrap(),
        2
    );
    assert!(count_cpus("cpu  1 2 3\n").is_err());
}

#[test]
fn counts_user_sessions_and_distinct_users() {
    let mut names = Vec::new();
    assert_eq!(count_users(&sample_utmp(), &mut names).unwrap(), (3, 2));
    assert_eq!(count_users(&[], &mut names).unwrap(), (0, 0));
    let e = count_users(&sample_utmp()[..700], &mut names).unwrap_err();
    assert!(e.contains("700 bytes"), "{e}");
}

#[test]
fn reports_exact_values_from_the_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let utmp = dir.path().join("utmp");
    std::fs::write(&utmp, sample_utmp()).unwrap();
    let got = collect_fixture("basic", |ctx| {
        Box::new(build(&cfg_with_utmp(&utmp), ctx).unwrap())
    });
    // tests/fixtures/basic/proc: loadavg `0.42 0.36 0.31 …`, uptime `356789.42 …`,
    // stat has cpu0..cpu3.
    assert_eq!(got["system_load1"], 0.42);
    assert_eq!(got["system_load5"], 0.36);
    assert_eq!(got["system_load15"], 0.31);
    assert_eq!(got["system_uptime"], 356_789.42);
    assert_eq!(got["system_n_cpus"], 4.0);
    assert_eq!(got["system_n_users"], 3.0);
    assert_eq!(got["system_n_unique_users"], 2.0);
    assert_eq!(got.samples.len(), 7);
}

#[test]
fn a_missing_utmp_is_zero_users() {
    let dir = tempfile::tempdir().unwrap();
    let got = collect_fixture("router-minimal", |ctx| {
        Box::new(build(&cfg_with_utmp(&dir.path().join("no-utmp")), ctx).unwrap())
    });
    assert_eq!(got["system_n_users"], 0.0);
    assert_eq!(got["system_n_unique_users"], 0.0);
    assert_eq!(got["system_n_cpus"], 1.0);
    assert_eq!(got["system_load1"], 0.08);
    assert_eq!(got["system_uptime"], 1_209_644.87);
}

#[test]
fn one_bad_file_does_not_hide_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let proc = dir.path().join("proc");
    std::fs::create_dir(&proc).unwrap();
    let basic = fixture_dir("basic").join("proc");
    std::fs::copy(basic.join("stat"), proc.join("stat")).unwrap();
    std::fs::write(proc.join("loadavg"), "0.42 0.3").unwrap();
    // No uptime file at all.
    let utmp = dir.path().join("utmp");
    std::fs::write(&utmp, &sample_utmp()[..UTMP_RECORD + 10]).unwrap();
    let ctx = BuildCtx::with_roots(&proc, dir.path().join("sys"));
    let mut h = Harness::new(Box::new(build(&cfg_with_utmp(&utmp), &ctx).unwrap()));
    let got = h.collect(1_000);
    let e = got.error.as_ref().expect("a partial failure");
    assert!(e.0.contains("loadavg"), "{e}");
    assert_eq!(got.samples.keys().collect::<Vec<_>>(), ["system_n_cpus"]);

    // Once the files are fixed, everything reports again.
    std::fs::write(proc.join("loadavg"), "1.00 0.50 0.25 1/100 42\n").unwrap();
    std::fs::write(proc.join("uptime"), "12.5 40.0\n").unwrap();
    std::fs::write(&utmp, sample_utmp()).unwrap();
    let got = h.collect(2_000);
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got["system_load15"], 0.25);
    assert_eq!(got["system_uptime"], 12.5);
    assert_eq!(got["system_n_users"], 3.0);
}

#[test]
fn an_unreadable_utmp_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    // A directory cannot be read as a file.
    let ctx = fixture_ctx("basic");
    let mut h = Harness::new(Box::new(build(&cfg_with_utmp(dir.path()), &ctx).unwrap()));
    let got = h.collect(1_000);
    let e = got.error.clone().expect("utmp error");
    assert!(e.0.contains(&dir.path().display().to_string()), "{e}");
    assert!(!got.has("system_n_users"));
    assert_eq!(got["system_n_cpus"], 4.0);
}

#[test]
fn config_rejects_unknown_keys_and_an_empty_path() {
    let c: Config = yaml_serde::from_str("utmp_path: /run/utmp").unwrap();
    assert_eq!(c.utmp_path, PathBuf::from("/run/utmp"));
    assert!(yaml_serde::from_str::<Config>("utmp: /run/utmp").is_err());
    let empty = Config {
        utmp_path: PathBuf::new(),
    };
    assert!(build(&empty, &fixture_ctx("basic")).is_err());
    assert_eq!(Config::default().utmp_path, PathBuf::from("/var/run/utmp"));
}

#[test]
fn the_sample_is_a_valid_config() {
    let text: String = SAMPLE.lines().map(|l| format!("  {l}\n")).collect();
    crate::config::parse(Path::new("sample.yaml"), &format!("inputs:\n{text}")).unwrap();
}

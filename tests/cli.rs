//! The command line: commands, exit codes, config errors with file, line, column and key.

mod util;
use util::*;

#[test]
fn version_and_help() {
    let o = run(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim(),
        format!("rtcollector {}", env!("CARGO_PKG_VERSION"))
    );
    let o = run(&["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("rtcollector run [--config PATH] [--once] [--debug]"));
}

#[test]
fn unknown_command_and_flag_exit_2() {
    let o = run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown command `frobnicate`"),
        "{}",
        stderr(&o)
    );
    let o = run(&["run", "--bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--bogus"), "{}", stderr(&o));
}

#[test]
fn inputs_and_outputs_list_every_builtin() {
    let o = run(&["inputs"]);
    assert!(o.status.success());
    let names: Vec<String> = stdout(&o)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    for n in [
        "linux_cpu",
        "linux_mem",
        "linux_disk",
        "linux_io",
        "linux_net",
        "linux_swap",
        "system",
        "processes",
        "kernel",
        "netstat",
        "nstat",
        "internal",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    let o = run(&["outputs"]);
    assert!(stdout(&o).lines().any(|l| l.starts_with("stdout ")));
}

#[test]
fn sample_config_is_valid_and_complete() {
    let o = run(&["sample-config"]);
    assert!(o.status.success());
    let text = stdout(&o);
    let s = Scratch::new();
    let path = s.config(&text);
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "sample config does not validate: {}",
        stderr(&o)
    );
    let plan = stdout(&o);
    let listed = stdout(&run(&["inputs"]));
    for line in listed.lines() {
        let name = line.split_whitespace().next().unwrap();
        assert!(
            plan.contains(&format!("  {name} ")),
            "sample-config lacks input {name}:\n{plan}"
        );
    }
}

/// `check` prints options as they are written in YAML, never in Rust's debug form, and
/// secrets as `***`.
#[test]
fn check_prints_the_plan_in_yaml_form() {
    let s = Scratch::new();
    let mut text = stdout(&run(&["sample-config"]));
    text.push_str(
        "  - redistimeseries:\n      password: hunter2-secret\n      url: redis://u:url-secret@db.example:6380/2\n      chunk_size: 4KiB\n",
    );
    let path = s.config(&text);
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plan = stdout(&o);
    for debug_form in [
        "Some(",
        "None",
        "Dur(",
        "Millis(",
        "Size(",
        "Preset(",
        "InverterConfig",
        "Text",
        "bytes,",
    ] {
        assert!(!plan.contains(debug_form), "`{debug_form}` in:\n{plan}");
    }
    assert!(
        !plan.contains("hunter2") && !plan.contains("url-secret"),
        "{plan}"
    );
    for yaml_form in [
        "stdout           { format: text }",
        "retention: 30d, duplicate_policy: last",
        "url: \"redis://u:***@db.example:6380/2\"",
        "password: ***",
        "chunk_size: 4KiB",
        "(up to 64MiB, fsync every 10s)",
        "collection_jitter: 0s",
    ] {
        assert!(
            plan.contains(yaml_form),
            "`{yaml_form}` missing from:\n{plan}"
        );
    }
    // Inputs of the default build only.
    #[cfg(all(feature = "http", feature = "modbus", feature = "rpi"))]
    for yaml_form in [
        "nginx            every 10s    { status_url: http://localhost/nginx_status, timeout: 5s }",
        "inverters: [{ name: roof, host: 192.168.1.50, port: 502, unit_id: 3, battery: false }], timeout: 3s, function: holding, registers: default",
        "debounce: 10ms, edge: falling, bias: pull_up",
    ] {
        assert!(plan.contains(yaml_form), "`{yaml_form}` missing from:\n{plan}");
    }
}

#[test]
fn default_config_validates() {
    let path = fixture("../../config/rtcollector.yaml");
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("inputs (12):"), "{}", stdout(&o));
}

/// Runs `check` on `config` and returns stderr, asserting exit status 2 and no panic.
fn check_fails(config: &str) -> String {
    let s = Scratch::new();
    let path = s.config(config);
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "expected exit 2, got {:?}: {err}",
        o.status
    );
    assert!(!err.contains("panicked"), "{err}");
    let prefix = format!("error: {}:", path.display());
    assert!(
        err.starts_with(&prefix),
        "message does not name the file: {err}"
    );
    err[prefix.len()..].trim_end().to_string()
}

#[test]
fn unknown_top_level_key() {
    let e = check_fails("interval: 10s\nflush_intervall: 5s\n");
    assert!(e.starts_with("2:1: unknown field `flush_intervall`"), "{e}");
}

#[test]
fn unknown_key_inside_an_input() {
    let e = check_fails("inputs:\n  - linux_mem:\n      bogus: 1\n");
    assert!(
        e.starts_with("3:7: inputs[0].linux_mem: unknown field `bogus`"),
        "{e}"
    );
}

#[test]
fn wrong_type() {
    let e = check_fails("max_buffer_size: lots\n");
    assert!(
        e.starts_with("1:18: max_buffer_size: invalid type: string \"lots\""),
        "{e}"
    );
    let e = check_fails("outputs:\n  - stdout:\n      format: [json]\n");
    assert!(e.starts_with("3:15: outputs[0].stdout.format:"), "{e}");
}

#[test]
fn unknown_input_lists_the_known_ones() {
    let e = check_fails("inputs:\n  - linux_mem\n  - linux_nett\n");
    assert!(
        e.starts_with(
            "3:5: inputs[1]: unknown input `linux_nett`; known inputs: linux_cpu, linux_mem"
        ),
        "{e}"
    );
}

#[test]
fn unknown_output_lists_the_known_ones() {
    let e = check_fails("outputs:\n  - influxdb:\n      url: x\n");
    assert!(
        e.contains("outputs[0]: unknown output `influxdb`; known outputs: ")
            && e.contains("stdout"),
        "{e}"
    );
    assert!(e.starts_with("2:5:"), "{e}");
}

#[test]
fn bad_durations() {
    let e = check_fails("interval: 10 parsecs\n");
    assert!(
        e.starts_with("1:11: interval: invalid duration `10 parsecs`"),
        "{e}"
    );
    let e = check_fails("inputs:\n  - linux_mem:\n      interval: soon\n");
    assert!(
        e.starts_with("3:17: inputs[0].linux_mem.interval: invalid duration `soon`"),
        "{e}"
    );
    let e = check_fails("interval: 10ms\n");
    assert!(e.contains("interval: must be at least 100ms"), "{e}");
}

#[test]
fn unset_environment_variable() {
    let e = check_fails("hostname: ${RTC_TEST_SURELY_UNSET_VAR}\n");
    assert!(
        e.starts_with("1:11: environment variable `RTC_TEST_SURELY_UNSET_VAR` is not set"),
        "{e}"
    );
}

#[test]
fn environment_interpolation_and_defaults_work() {
    let s = Scratch::new();
    let path = s.config("hostname: ${RTC_TEST_HOST}-${RTC_TEST_UNSET:-x}\ninputs: [linux_mem]\n");
    let o = util::bin()
        .args(["check", "--config", path.to_str().unwrap()])
        .env("RTC_TEST_HOST", "pi4")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("hostname: pi4-x"), "{}", stdout(&o));
}

#[test]
fn more_than_one_plugin_in_one_item() {
    let e = check_fails("inputs:\n  - linux_mem: {}\n    linux_cpu: {}\n");
    assert!(e.contains("more than one input in one list item"), "{e}");
}

#[test]
fn missing_config_file() {
    let o = run(&["check", "--config", "/nonexistent/rtcollector.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("error: /nonexistent/rtcollector.yaml: cannot read config:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn yaml_syntax_error() {
    let e = check_fails("inputs:\n  - linux_mem\n - broken: [\n");
    assert!(e.starts_with("3:"), "{e}");
}

#[test]
fn buffer_status_reads_the_files_of_every_output_without_an_agent() {
    let s = Scratch::new();
    let buffer = s.dir.path().join("buffer");
    let path = s.config(&format!(
        "buffer_dir: {}\noutputs: [stdout, stdout]\n",
        buffer.display()
    ));
    let o = run(&["buffer", "status", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.starts_with(&format!(
            "buffer_dir {}: does not exist\n",
            buffer.display()
        )),
        "{text}"
    );
    assert!(text.contains("output stdout\n"), "{text}");
    assert!(text.contains("output stdout#2\n"), "{text}");
    assert!(
        text.contains(&format!("dir: {}", buffer.join("stdout#2").display())),
        "{text}"
    );
    assert!(text.contains("samples on disk: 0"), "{text}");
    assert!(text.contains("oldest: -"), "{text}");
    assert!(!buffer.exists(), "status creates nothing");

    let o = run(&["buffer", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["buffer", "frobnicate", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn disk_buffer_keys_have_defaults_and_bad_values_point_at_the_line() {
    let s = Scratch::new();
    let path = s.config("outputs: [stdout]\n");
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("outage buffer on disk: /var/lib/rtcollector/buffer/stdout (up to 64MiB, fsync every 10s)"),
        "{}",
        stdout(&o)
    );
    let path = s.config("interval: 10s\nmax_disk_buffer: lots\n");
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(":2:"), "{}", stderr(&o));
}

#[test]
fn missing_secret_names_the_variable_and_never_a_value() {
    // The value's own line and column and the whole key path, even with other keys before.
    let e = check_fails(
        "outputs:\n  - redistimeseries:\n      host: r.lan\n      password: secret:redis/nope\n",
    );
    assert!(
        e.starts_with("4:17: outputs[0].redistimeseries.password: secret `redis/nope` not found: environment variable `SECRET_REDIS_NOPE` is not set"),
        "{e}"
    );
}

#[test]
fn errors_found_when_a_plugin_is_built_point_at_the_option() {
    let e = check_fails(
        "inputs:\n  - linux_mem\n  - linux_net:\n      interval: 30s\n      include_patterns: [\"[unclosed\"]\noutputs: [stdout]\n",
    );
    assert!(
        e.starts_with("5:7: inputs[1].linux_net.include_patterns: invalid pattern `[unclosed`"),
        "{e}"
    );
}

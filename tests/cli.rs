//! The command line: commands, exit codes, config errors with file, line, column and key.

mod support;
use support::agent::{bin, run, stderr, stdout};
use support::scratch::{fixture, Scratch};

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
    let path = s.config(
        "hostname: ${RTC_TEST_HOST}-${RTC_TEST_UNSET:-x}\ninputs: [linux_mem]\noutputs: [stdout]\n",
    );
    let o = bin()
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

/// A plugin whose message started with its own name was reported at the plugin's line
/// with its name as the option (`inputs[0].nginx.nginx: …`): the option at fault is now
/// named by the plugin, not guessed from the message.
#[cfg(feature = "http")]
#[test]
fn build_errors_of_the_http_inputs_point_at_their_option() {
    for (config, expected) in [
        (
            "inputs:\n  - nginx:\n      timeout: 5s\n      status_url: \"localhost/nginx_status\"\n",
            "4:7: inputs[0].nginx.status_url: `localhost/nginx_status` is not a URL",
        ),
        (
            "inputs:\n  - linux_mem\n  - apache:\n      status_url: \"ftp://x/\"\n",
            "4:7: inputs[1].apache.status_url: `ftp://x/`: only http:// and https:// URLs can be checked",
        ),
        (
            "inputs:\n  - http_response:\n      urls: [\"http://localhost/\"]\n      method: \"GE T\"\n",
            "4:7: inputs[0].http_response.method: `GE T` is not an HTTP method",
        ),
        (
            "inputs:\n  - http_response:\n      urls: []\n",
            "3:7: inputs[0].http_response.urls: no urls to check",
        ),
    ] {
        let e = check_fails(&format!("{config}outputs: [stdout]\n"));
        assert!(e.starts_with(expected), "{config}: {e}");
    }
}

#[test]
fn numbers_out_of_their_range_point_at_the_value_and_exit_2() {
    for (config, expected) in [
        (
            "max_buffer_size: 1000000000000\n",
            "1:18: max_buffer_size: must be at most 10000000, not 1000000000000 (the range is 1 to 10000000)",
        ),
        (
            "max_buffer_size: 0\n",
            "1:18: max_buffer_size: must be at least 1, not 0 (the range is 1 to 10000000)",
        ),
        (
            "metric_batch_size: 18446744073709551615\n",
            "1:20: metric_batch_size: must be at most 100000, not 18446744073709551615 (the range is 1 to 100000)",
        ),
        (
            "max_series: 0\n",
            "1:13: max_series: must be at least 1, not 0 (the range is 1 to 10000000)",
        ),
        (
            "interval: 0s\n",
            "1:11: interval: must be at least 100ms, not 0s (the range is 100ms to 1d)",
        ),
        (
            "interval: 1e300\n",
            "1:11: interval: must be at most 1d (the range is 100ms to 1d)",
        ),
        (
            "interval: 99999999999999999999999y\n",
            "1:11: interval: duration `99999999999999999999999y` is too long: at most 100y",
        ),
        (
            "max_buffer_size: lots\n",
            "1:18: max_buffer_size: invalid type: string \"lots\", expected a whole number from 1 to 10000000",
        ),
        (
            "outputs:\n  - redistimeseries:\n      port: 70000\n",
            "3:13: outputs[0].redistimeseries.port: must be at most 65535, not 70000 (the range is 1 to 65535)",
        ),
    ] {
        let e = check_fails(&format!("{config}outputs: [stdout]\n"));
        assert_eq!(e, expected, "{config}");
    }
}

#[cfg(feature = "mqtt")]
#[test]
fn an_mqtt_number_out_of_its_range_points_at_the_value_and_exits_2() {
    let e = check_fails("outputs:\n  - mqtt:\n      qos: -1\noutputs: [stdout]\n");
    assert_eq!(
        e,
        "3:12: outputs[0].mqtt.qos: invalid type: integer `-1`, expected a whole number from 0 to 255"
    );
}

/// Two MQTT outputs on one broker with one client id would push each other off it, forever:
/// the second is refused at its `client_id`, or at the entry when the id is the default.
#[cfg(feature = "mqtt")]
#[test]
fn two_mqtt_outputs_with_one_client_id_on_one_broker_are_refused() {
    let e = check_fails(
        "hostname: h\noutputs:\n  - mqtt:\n      client_id: plugs\n  - mqtt:\n      port: 1884\n      client_id: plugs\n  - mqtt:\n      client_id: plugs\n",
    );
    assert_eq!(
        e,
        "9:7: outputs[2].mqtt.client_id: client id `plugs` at 127.0.0.1:1883 is also outputs[0]'s: two clients with one id push each other off the broker; give each output its own client_id"
    );
    let e = check_fails("hostname: h\noutputs:\n  - mqtt: {}\n  - mqtt:\n      layout: batch\n");
    assert_eq!(
        e,
        "4:5: outputs[1].mqtt.client_id: client id `rtcollector-h` at 127.0.0.1:1883 is also outputs[0]'s: two clients with one id push each other off the broker; give each output its own client_id"
    );
}

/// The largest maximum of the process's children so far, in KiB.
fn children_max_rss_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage")
        .max_rss()
}

#[test]
fn check_does_not_allocate_the_buffers_it_describes() {
    // Two outputs with the largest ring and batch: 10 million 20-byte slots each were
    // 400 MB when `check` allocated them (a larger max_buffer_size aborted it).
    let s = Scratch::new();
    let path = s.config(
        "max_buffer_size: 10000000\nmetric_batch_size: 100000\nmax_series: 10000000\noutputs: [stdout, stdout]\n",
    );
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("buffer: 10000000 samples in memory"),
        "{}",
        stdout(&o)
    );
    let rss = children_max_rss_kib();
    assert!(rss < 100 * 1024, "a child of this test used {rss} KiB");
}

#[test]
fn a_byte_order_mark_is_read_as_part_of_the_one_document() {
    let s = Scratch::new();
    let path = s.config("\u{feff}interval: 5s\noutputs: [stdout]\n");
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("interval: 5s"), "{}", stdout(&o));
}

#[test]
fn deep_nesting_and_huge_files_are_refused_before_parsing() {
    let deep = format!(
        "outputs: [stdout]\ninputs: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let e = check_fails(&deep);
    assert_eq!(
        e,
        "2:109: more than 100 `[` or `{` collections inside one another; no config needs that many"
    );
    let huge = format!("outputs: [stdout]\n{}", "#".repeat(2 << 20));
    let e = check_fails(&huge);
    assert_eq!(
        e,
        " the file is larger than 1024 KiB; a config is a few KiB (is this the right file?)"
    );
}

#[test]
fn a_config_without_outputs_is_refused() {
    let e = check_fails("inputs: [linux_mem]\n");
    assert_eq!(
        e,
        " no outputs: what the inputs collect would go nowhere; add one under `outputs:` (for example `- stdout`)"
    );
    let s = Scratch::new();
    let path = s.config("inputs: [linux_mem]\noutputs: []\n");
    let o = run(&["run", "--once", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(":2:1: no outputs: what the inputs collect would go nowhere"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn without_config_the_paths_tried_are_named() {
    let s = Scratch::new();
    let o = bin()
        .arg("check")
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    if std::path::Path::new("/etc/rtcollector/config.yaml").exists() {
        // This machine has a system config: it is the one read.
        assert!(
            stdout(&o).contains("config: /etc/rtcollector/config.yaml")
                || stderr(&o).contains("/etc/rtcollector/config.yaml"),
            "{}{}",
            stdout(&o),
            stderr(&o)
        );
        return;
    }
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!(
            "error: no config file: tried /etc/rtcollector/config.yaml and config/rtcollector.yaml (in {}); name one with --config PATH (`rtcollector sample-config` prints a complete one)\n",
            s.dir.path().canonicalize().unwrap().display()
        )
    );
}

/// Values that may hold a password, malformed in every way `check` refuses: the password
/// text appears in no message, written in the config or through `secret:`.
#[test]
fn no_config_error_quotes_a_password() {
    const SECRET: &str = "Secr3tXYZ";
    let redis_urls = [
        "redis://admin:Secr3tXYZ@h:port/0",
        "redis://admin:Secr3tXYZ@h:0",
        "redis://admin:Secr3tXYZ@h:6379/zero",
        "redis://admin:Secr3tXYZ@[::1",
        "redis://admin:Secr3tXYZ@",
        "redis://Secr3tXYZ:Secr3tXYZ",
        "redis://h/Secr3tXYZ",
        "rediss://admin:%ZZSecr3tXYZ@h",
        "http://admin:Secr3tXYZ@h",
        "Secr3tXYZ",
    ];
    let mut configs = Vec::new();
    for url in redis_urls {
        configs.push((
            format!("outputs:\n  - redistimeseries:\n      url: \"{url}\"\n"),
            None,
        ));
        configs.push((
            "outputs:\n  - redistimeseries:\n      url: secret:redis/url\n".to_string(),
            Some(url),
        ));
        configs.push((
            format!("inputs:\n  - redis_info:\n      url: \"{url}\"\noutputs: [stdout]\n"),
            None,
        ));
    }
    for url in [
        "socks5://admin:Secr3tXYZ@h:port",
        "socks5://admin:Secr3tXYZ@",
        "socks5://:Secr3tXYZ@h",
        "socks4://admin:Secr3tXYZ@h",
        "http://admin:Secr3tXYZ@h",
        "socks5://admin:%ZZSecr3tXYZ@h",
    ] {
        configs.push((
            format!("outputs:\n  - redistimeseries:\n      socks5_proxy: \"{url}\"\n"),
            None,
        ));
        configs.push((
            format!("inputs:\n  - redis_info:\n      socks5_proxy: \"{url}\"\noutputs: [stdout]\n"),
            None,
        ));
    }
    for url in [
        "http://admin:Secr3tXYZ/Pass@h:x/",
        "http://admin:Secr3tXYZ/Pass@/",
        "ftp://admin:Secr3tXYZ@h/",
        "http://admin:Secr3tXYZ@",
        "admin:Secr3tXYZ@h",
    ] {
        configs.push((
            format!("inputs:\n  - http_response:\n      urls: [\"{url}\"]\noutputs: [stdout]\n"),
            None,
        ));
    }
    for (config, secret_url) in &configs {
        let s = Scratch::new();
        let path = s.config(config);
        let mut cmd = bin();
        cmd.args(["check", "--config", path.to_str().unwrap()]);
        if let Some(url) = secret_url {
            cmd.env("SECRET_REDIS_URL", url);
        }
        let o = cmd.output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{config} {secret_url:?}: {err}");
        assert!(
            !err.contains(SECRET) && !err.contains("Pass"),
            "{config} {secret_url:?}: {err}"
        );
        assert!(!stdout(&o).contains(SECRET), "{config}");
    }
}

#[test]
fn a_password_may_hold_a_slash_and_is_never_shown() {
    let s = Scratch::new();
    let path = s.config(
        "outputs:\n  - redistimeseries:\n      url: \"redis://admin:Secr3tXYZ/Pass@127.0.0.1:26499/0\"\n",
    );
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("redis://admin:***@127.0.0.1:26499/0"), "{out}");
    assert!(
        !out.contains("Secr3tXYZ") && !out.contains("Pass@"),
        "{out}"
    );
}

/// Cluster options are checked without the network, each error at its option.
#[cfg(feature = "cluster")]
#[test]
fn cluster_option_errors_point_at_their_option() {
    let out = |rest: &str| format!("outputs:\n  - redistimeseries:\n      host: r.lan\n{rest}");
    let e = check_fails(&out("      nodes: [\"a:7000\"]\n"));
    assert!(
        e.starts_with("4:7: outputs[0].redistimeseries.nodes: seed nodes are for a Redis Cluster"),
        "{e}"
    );
    let e = check_fails(&out(
        "      cluster: true\n      nodes: [\"a:7000\", \"b\"]\n",
    ));
    assert!(
        e.starts_with("5:7: outputs[0].redistimeseries.nodes: `b` is not host:port"),
        "{e}"
    );
    let e = check_fails(&out("      cluster: true\n      db: 2\n"));
    assert!(
        e.starts_with("5:7: outputs[0].redistimeseries.db: a Redis Cluster has only database 0"),
        "{e}"
    );
    let e = check_fails(&out(
        "      cluster: true\n      key_format: \"{name}:{host}\"\n      downsample:\n        - {every: 5m, aggregation: avg}\n",
    ));
    assert!(
        e.starts_with(
            "5:7: outputs[0].redistimeseries.key_format: `{name}:{host}` has no hash tag"
        ),
        "{e}"
    );
    // The default cluster key format has its tag: downsampling is fine.
    let s = Scratch::new();
    let path = s.config(&out(
        "      cluster: true\n      downsample:\n        - {every: 5m, aggregation: avg}\n",
    ));
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A SOCKS proxy's password is masked in the plan, as the Redis password is.
#[cfg(feature = "socks")]
#[test]
fn check_masks_the_proxy_password() {
    let s = Scratch::new();
    let path = s.config(
        "outputs:\n  - redistimeseries:\n      host: r.lan\n      socks5_proxy: \"socks5h://metrics:Secr3tXYZ@10.0.0.1:1080\"\n",
    );
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("socks5_proxy: \"socks5h://metrics:***@10.0.0.1:1080\""),
        "{out}"
    );
    assert!(!out.contains("Secr3tXYZ"), "{out}");
}

#[cfg(feature = "socks")]
#[test]
fn both_proxy_keys_are_a_config_error_at_the_second() {
    let err = check_fails(
        "outputs:\n  - redistimeseries:\n      socks5_proxy: socks5://127.0.0.1:1080\n      socks4_proxy: socks4://127.0.0.1:1080\n",
    );
    assert!(
        err.contains("4:21: outputs[0].redistimeseries.socks4_proxy: socks5_proxy is set already: a connection goes through one proxy, set only one of socks5_proxy and socks4_proxy"),
        "{err}"
    );
}

#[cfg(not(feature = "socks"))]
#[test]
fn without_the_socks_feature_a_proxy_is_a_config_error_that_says_so() {
    let err = check_fails(
        "outputs:\n  - redistimeseries:\n      socks5_proxy: socks5://127.0.0.1:1080\n",
    );
    assert!(
        err.contains("3:7: outputs[0].redistimeseries.socks5_proxy: a SOCKS proxy was set but this binary was built without SOCKS (cargo feature `socks`)"),
        "{err}"
    );
}

#[cfg(feature = "cluster")]
#[test]
fn sum_in_a_cluster_is_a_config_error_at_duplicate_policy() {
    let e = check_fails(
        "outputs:\n  - redistimeseries:\n      cluster: true\n      duplicate_policy: sum\n",
    );
    assert!(
        e.starts_with(
            "4:7: outputs[0].redistimeseries.duplicate_policy: `sum` cannot be used in a cluster"
        ),
        "{e}"
    );
}

use super::parse::*;
use super::*;
use crate::inputs::testutil::{sample_options, Collected, Harness};
use std::path::Path;

/// A script in `dir` named `name` with `body` after the shebang, executable.
fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn harness(yaml: &str) -> Harness {
    let cfg: Config = yaml_serde::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    let ctx = BuildCtx::with_roots("/proc", "/sys");
    Harness::new(Box::new(build(&cfg, &ctx).unwrap_or_else(|e| panic!("{e}")))).allowing_own_timestamps()
}

fn error(c: &Collected) -> String {
    c.error.as_ref().expect("an error").0.clone()
}

#[test]
fn sample_is_a_valid_config() {
    let cfg: Config = sample_options(SAMPLE);
    assert_eq!(cfg.data_format, DataFormat::Json);
    assert_eq!(cfg.timeout.0, Duration::from_secs(5));
    assert_eq!(
        cfg.commands,
        [CommandLine::Line("/usr/local/bin/report-temp --sensor 0".into())]
    );
}

#[test]
fn words_split_like_a_shell_without_expanding() {
    let w = |s: &str| split_words(s).unwrap();
    assert_eq!(w("  a  b\tc "), ["a", "b", "c"]);
    assert_eq!(w(r#"say 'it'"s" "a \"b\" \$HOME" c\ d ''"#), [
        "say",
        "its",
        "a \"b\" $HOME",
        "c d",
        ""
    ]);
    assert_eq!(w(r#""a\nb""#), ["a\\nb"]);
    assert_eq!(w(""), Vec::<String>::new());
    assert!(split_words("'open").is_err());
    assert!(split_words("\"open").is_err());
    assert!(split_words("end\\").is_err());
}

#[test]
fn shell_operators_outside_single_quotes_are_found() {
    assert_eq!(shell_operator("a | b"), Some('|'));
    assert_eq!(shell_operator("echo $HOME"), Some('$'));
    assert_eq!(shell_operator("echo \"$HOME\""), Some('$'));
    assert_eq!(shell_operator("a > out"), Some('>'));
    assert_eq!(shell_operator("echo 'a | b' \\; c"), None);
    assert_eq!(shell_operator("python3 /opt/t.py --x=1"), None);
}

#[test]
fn commands_are_prepared_with_or_without_a_shell() {
    let line = |s: &str| CommandLine::Line(s.into());
    assert_eq!(
        prepare(&line("python3 '/opt/my scripts/t.py' -v"), false).unwrap(),
        Prepared {
            program: "python3".into(),
            args: vec!["/opt/my scripts/t.py".into(), "-v".into()],
            label: "python3 '/opt/my scripts/t.py' -v".into(),
        }
    );
    assert_eq!(
        prepare(&line("a | b"), true).unwrap(),
        Prepared {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "a | b".into()],
            label: "a | b".into(),
        }
    );
    let argv = CommandLine::Argv(vec!["/bin/echo".into(), "a b".into()]);
    assert_eq!(prepare(&argv, false).unwrap().label, "/bin/echo a b");
    assert!(prepare(&line("a | b"), false)
        .unwrap_err()
        .to_string()
        .contains("shell: true"));
    assert!(prepare(&argv, true)
        .unwrap_err()
        .to_string()
        .contains("one string"));
    assert!(prepare(&line("  "), false).is_err());
    assert!(prepare(&CommandLine::Argv(vec![]), false).is_err());
}

#[test]
fn bad_options_are_config_errors() {
    // Rejected when parsed (a value out of its range) or when built.
    let err = |yaml: &str| match yaml_serde::from_str::<Config>(yaml) {
        Err(e) => e.to_string(),
        Ok(cfg) => build(&cfg, &BuildCtx::with_roots("/proc", "/sys"))
            .err()
            .expect("rejected")
            .to_string(),
    };
    assert!(err("{}").contains("at least one command"));
    assert!(err("{commands: [x], environment: [NOEQUALS]}").contains("NAME=value"));
    assert!(err("{commands: [x], environment: ['=v']}").contains("NAME=value"));
    assert!(err("{commands: [x], timeout: 0}").contains("timeout"));
    assert!(yaml_serde::from_str::<Config>("{commands: [x], data_format: csv}").is_err());
    assert!(yaml_serde::from_str::<Config>("{commands: [x], bogus: 1}").is_err());
}

#[test]
fn metric_lines_decode_with_labels_and_timestamp() {
    let l = metric_line(b"cpu_temp 72.4 source=exec host=atila ts=1716734400123")
        .unwrap()
        .unwrap();
    assert_eq!(l.name, "cpu_temp");
    assert_eq!(l.value, 72.4);
    assert_eq!(&l.labels[..], [("source", "exec"), ("host", "atila")]);
    assert_eq!(l.ts_ms, Some(1_716_734_400_123));
    let l = metric_line(b"x -1e3 a=1 a=2").unwrap().unwrap();
    assert_eq!((l.value, &l.labels[..]), (-1000.0, &[("a", "2")][..]));
    assert_eq!(metric_line(b"   ").unwrap(), None);
    assert_eq!(metric_line(b"# a comment 1").unwrap(), None);
}

#[test]
fn malformed_metric_lines_say_why() {
    let e = |l: &[u8]| metric_line(l).unwrap_err();
    assert_eq!(e(b"lonely"), LineError::NoValue);
    assert_eq!(e(b"x abc"), LineError::BadValue);
    assert_eq!(e(b"x nan"), LineError::BadValue);
    assert_eq!(e(b"x inf"), LineError::BadValue);
    assert_eq!(e(b"x 1 novalue"), LineError::BadLabel);
    assert_eq!(e(b"x 1 =v"), LineError::BadLabel);
    assert_eq!(e(b"x 1 k="), LineError::BadLabel);
    assert_eq!(e(b"x 1 ts=soon"), LineError::BadTimestamp);
    assert_eq!(e(b"Traceback (most recent call last):"), LineError::BadValue);
    assert_eq!(e(b"bad/name 1"), LineError::BadName);
    assert_eq!(e(b"x\xff 1"), LineError::NotUtf8);
    let many: String = (0..=LINE_LABELS).map(|i| format!(" l{i}=v")).collect();
    assert_eq!(e(format!("x 1{many}").as_bytes()), LineError::TooManyLabels);
}

#[test]
fn json_documents_structured_and_flat() {
    let doc = json_doc(
        br#"{"metrics": {"cpu_temp": 72.3, "disk_used": 81, "fan_on": true, "label": "x", "bad name": 1},
            "logs": [{"message": "CPU temp is normal", "level": "info"}, {"message": "hot", "level": "WARNING"}, "plain", 5]}"#,
        10,
    )
    .unwrap();
    assert_eq!(
        doc.metrics,
        [
            ("cpu_temp".to_string(), 72.3),
            ("disk_used".to_string(), 81.0),
            ("fan_on".to_string(), 1.0)
        ]
    );
    assert_eq!(
        doc.logs,
        [
            (log::Level::Info, "CPU temp is normal".to_string()),
            (log::Level::Warn, "hot".to_string()),
            (log::Level::Info, "plain".to_string())
        ]
    );
    assert_eq!(doc.skipped, 3, "a string, a bad name and a log entry that is a number");
    let flat = json_doc(br#"{"a": 1, "b": -2.5}"#, 10).unwrap();
    assert_eq!(flat.metrics, [("a".to_string(), 1.0), ("b".to_string(), -2.5)]);
    let capped = json_doc(br#"{"metrics": {}, "logs": ["1", "2", "3"]}"#, 2).unwrap();
    assert_eq!((capped.logs.len(), capped.logs_dropped), (2, 1));
    assert!(matches!(json_doc(b"[1, 2]", 10), Err(JsonError::Shape(_))));
    assert!(matches!(json_doc(br#"{"metrics": 3}"#, 10), Err(JsonError::Shape(_))));
    assert!(matches!(json_doc(b"{\"a\": 1", 10), Err(JsonError::Syntax(_))));
}

#[test]
fn metrics_format_output_becomes_labelled_samples() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "temp.sh",
        "echo 'cpu_temp 72.4 source=exec host=atila'\n\
         echo 'disk_usage_percent 84.3 mount=/data ts=1716734400123'\n\
         echo\n\
         echo '# done'\n\
         printf 'last 3'\n",
    );
    let mut h = harness(&format!("{{commands: ['{s}'], data_format: metrics}}"));
    let c = h.collect(1_000);
    assert_eq!(c.error, None);
    let cmd = format!("cmd={s}");
    assert_eq!(c[&format!("cpu_temp{{{cmd},source=exec}}")], 72.4);
    assert_eq!(c[&format!("disk_usage_percent{{{cmd},mount=/data,source=exec}}")], 84.3);
    assert_eq!(c[&format!("last{{{cmd},source=exec}}")], 3.0);
    assert_eq!(c[&format!("exec_malformed_lines{{{cmd}}}")], 0.0);
    assert_eq!(c[&format!("exec_discarded_bytes{{{cmd}}}")], 0.0);
    assert_eq!(c[&format!("exec_timeouts{{{cmd}}}")], 0.0);
    assert_eq!(c.samples.len(), 6);
    let own: Vec<_> = c.own_timestamps.iter().collect();
    assert_eq!(
        own,
        [(&format!("disk_usage_percent{{{cmd},mount=/data,source=exec}}"), &1716734400123)],
        "only the line with ts= keeps its own time"
    );
}

#[test]
fn json_output_with_argv_environment_and_working_dir() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "report.sh",
        "printf '{\"metrics\": {\"answer\": %s, \"in_dir\": %s}, \"logs\": [{\"message\": \"fine\", \"level\": \"info\"}]}' \
         \"$ANSWER\" \"$(test \"$(pwd)\" = \"$EXPECT_DIR\" && echo 1 || echo 0)\"\n",
    );
    let d = dir.path().display();
    let mut h = harness(&format!(
        "{{commands: [['{s}', 'ignored arg']], working_dir: '{d}', environment: ['ANSWER=42', 'EXPECT_DIR={d}']}}"
    ));
    let c = h.collect(1_000);
    assert_eq!(c.error, None);
    let labels = format!("{{cmd={s} ignored arg,source=exec}}");
    assert_eq!(c[&format!("answer{labels}")], 42.0);
    assert_eq!(c[&format!("in_dir{labels}")], 1.0);
}

#[test]
fn a_hung_command_is_killed_with_its_children_and_others_still_report() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("child-alive");
    // The script starts a background child that would touch the marker later, then hangs.
    let hang = script(
        dir.path(),
        "hang.sh",
        &format!(
            "(sleep 2; touch '{}') &\necho 'early 1'\nexec sleep 60\n",
            marker.display()
        ),
    );
    let quick = script(dir.path(), "quick.sh", "echo 'quick 7'\n");
    let mut h = harness(&format!(
        "{{commands: ['{hang}', '{quick}'], data_format: metrics, timeout: 300ms}}"
    ));
    let c = h.collect(1_000);
    let e = error(&c);
    assert!(e.contains("still running after timeout (300ms): killed"), "{e}");
    assert_eq!(c[&format!("quick{{cmd={quick},source=exec}}")], 7.0);
    assert!(
        !c.has(&format!("early{{cmd={hang},source=exec}}")),
        "a killed command's output is dropped"
    );
    assert_eq!(c[&format!("exec_timeouts{{cmd={hang}}}")], 1.0);
    assert_eq!(c[&format!("exec_timeouts{{cmd={quick}}}")], 0.0);
    // The background child was in the killed group: the marker never appears.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!marker.exists(), "a child of the hung command survived");
    // The next run counts the second timeout.
    assert_eq!(h.collect(2_000)[&format!("exec_timeouts{{cmd={hang}}}")], 2.0);
}

#[test]
fn a_non_zero_exit_skips_the_output_unless_ignore_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "fail.sh",
        "echo 'partial 1'\necho 'sensor not found' >&2\nexit 3\n",
    );
    let mut h = harness(&format!("{{commands: ['{s}'], data_format: metrics}}"));
    let c = h.collect(1_000);
    assert_eq!(
        error(&c),
        format!("`{s}` exited with status 3: sensor not found (output skipped; set ignore_error: true to read it anyway)")
    );
    assert!(!c.has(&format!("partial{{cmd={s},source=exec}}")));
    let mut h = harness(&format!(
        "{{commands: ['{s}'], data_format: metrics, ignore_error: true}}"
    ));
    let c = h.collect(1_000);
    assert_eq!(c.error, None);
    assert_eq!(c[&format!("partial{{cmd={s},source=exec}}")], 1.0);
}

#[test]
fn a_missing_program_is_reported() {
    let mut h = harness("{commands: ['/nonexistent/tool --x']}");
    let e = error(&h.collect(1_000));
    assert!(e.starts_with("cannot run `/nonexistent/tool`: "), "{e}");
}

#[test]
fn garbage_lines_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "garbage.sh",
        "echo 'good 1'\necho 'Traceback (most recent call last):'\necho 'x notanumber'\n\
         printf 'bin\\377 1\\n'\necho 'also_good 2 k=v'\necho 'half 3 k'\n",
    );
    let mut h = harness(&format!("{{commands: ['{s}'], data_format: metrics}}"));
    let c = h.collect(1_000);
    assert_eq!(
        error(&c),
        format!("`{s}`: 4 malformed line(s) skipped; the first, line 2: the value is not a finite number")
    );
    assert_eq!(c[&format!("good{{cmd={s},source=exec}}")], 1.0);
    assert_eq!(c[&format!("also_good{{cmd={s},k=v,source=exec}}")], 2.0);
    assert_eq!(c[&format!("exec_malformed_lines{{cmd={s}}}")], 4.0);
    // Counted across runs.
    assert_eq!(h.collect(2_000)[&format!("exec_malformed_lines{{cmd={s}}}")], 8.0);
}

#[test]
fn garbage_json_is_one_malformed_document() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "notjson.sh", "echo 'temp=5'\n");
    let mut h = harness(&format!("{{commands: ['{s}']}}"));
    let c = h.collect(1_000);
    assert!(error(&c).starts_with(&format!("`{s}`: output skipped: not JSON")), "{c:?}");
    assert_eq!(c[&format!("exec_malformed_lines{{cmd={s}}}")], 1.0);
    assert_eq!(c.samples.len(), 3, "only the exec_ figures");
}

#[test]
fn output_beyond_the_cap_is_discarded_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    // 8 bytes of lines, then 2,000,000 bytes without a newline.
    let s = script(
        dir.path(),
        "chatty.sh",
        "printf 'a 1\\nb 2\\n'\nhead -c 2000000 /dev/zero | tr '\\0' x\n",
    );
    let mut h = harness(&format!(
        "{{commands: ['{s}'], data_format: metrics, timeout: 20s}}"
    ));
    let c = h.collect(1_000);
    assert_eq!(c.error, None, "the cut last line is not a malformed line");
    assert_eq!(c[&format!("a{{cmd={s},source=exec}}")], 1.0);
    assert_eq!(c[&format!("b{{cmd={s},source=exec}}")], 2.0);
    assert_eq!(
        c[&format!("exec_discarded_bytes{{cmd={s}}}")],
        (2_000_008 - STDOUT_CAP) as f64
    );
}

#[test]
fn shell_true_runs_pipelines() {
    let mut h = harness(
        "{commands: ['echo \"piped $((40 + 2))\" | tr p P'], shell: true, data_format: metrics}",
    );
    let c = h.collect(1_000);
    assert_eq!(c.error, None);
    assert_eq!(
        c["PiPed{cmd=echo \"piped $((40 + 2))\" | tr p P,source=exec}"],
        42.0
    );
}

//! The `http_ingress` input posted to by `curl`: pollect's documented JSON and the line
//! formats, exact values and labels read back from the `stdout` output; bad bodies refused
//! with 400 and the reason; a bearer token; a 100 MB body refused before it is read.
//!
//! Needs `RTC_CURL` (`export RTC_CURL="$(scripts/setup-curl)"`); fails, never skips, without it.
#![cfg(feature = "http-ingress")]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::agent::Agent;
use support::ports::reserve_port;
use support::samples::samples;
use support::scratch::Scratch;

const WAIT: Duration = Duration::from_secs(20);

/// The curl that scripts/setup-curl provided.
fn curl() -> Command {
    match std::env::var_os("RTC_CURL").filter(|c| !c.is_empty()) {
        Some(path) => Command::new(path),
        None => panic!(
            "RTC_CURL is not set. These tests post with a real curl: run\n    \
             export RTC_CURL=\"$(scripts/setup-curl)\"\nfirst (it installs curl with apt-get when missing)"
        ),
    }
}

/// The agent with one `http_ingress` on `port` (plus `extra` options, indented 6).
fn agent(s: &Scratch, port: u16, extra: &str) -> Agent {
    let config = s.config(&format!(
        "hostname: ingresstest\ninterval: 1s\nflush_interval: 1s\n\
         inputs:\n  - http_ingress:\n      listen: 127.0.0.1\n      port: {port}\n{extra}\
         outputs:\n  - stdout:\n      format: json\n"
    ));
    let agent = Agent::start(&config);
    let (lines, up) = agent.wait_for(WAIT, |l| l.contains("http_ingress: listening on"));
    assert!(up, "the ingress did not start: {lines:?}");
    agent
}

/// `curl` posting `body`: the status and the answer's body.
fn post(port: u16, body: &str, headers: &[&str]) -> (u16, String) {
    let mut cmd = curl();
    cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "20"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    cmd.args(["--data-binary", body, &format!("http://127.0.0.1:{port}/")]);
    let out = cmd.output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (answer, code) = text.rsplit_once('\n').expect("curl printed the status");
    (code.trim().parse().expect("a status"), answer.to_string())
}

const JSON: &str = "Content-Type: application/json";

/// Reads the agent's JSON lines until every key of `want` holds its value.
fn wait_values(agent: &Agent, want: &[(&str, f64)]) {
    let deadline = Instant::now() + WAIT;
    let mut all = Vec::new();
    while Instant::now() < deadline {
        let (lines, _) = agent.wait_for(Duration::from_millis(300), |_| false);
        all.extend(
            lines
                .into_iter()
                .filter_map(|l| l.strip_prefix("OUT ").map(str::to_string)),
        );
        let got = samples(&all.join("\n"));
        if want
            .iter()
            .all(|(k, v)| got.get(*k).and_then(|s| s["value"].as_f64()) == Some(*v))
        {
            return;
        }
    }
    let got = samples(&all.join("\n"));
    panic!("wanted {want:?}, got {got:#?}");
}

#[test]
fn curl_posts_pollect_json_and_lines_with_exact_values_and_labels() {
    let s = Scratch::new();
    let port = reserve_port();
    let agent = agent(
        &s,
        port.port,
        "      metrics:\n        backup_size: {type: gauge, labels: [job]}\n        \
         backups_done: {type: counter, labels: [job]}\n",
    );
    // pollect's README: {"metrics": {"<name>": {"value": …, "labels": {…}}}}.
    let doc = r#"{"metrics": {"backup_size": {"value": 1234.5, "labels": {"job": "nas", "extra": "x"}},
                  "backups_done": {"value": 1, "labels": {"job": "nas"}}}}"#;
    assert_eq!(post(port.port, doc, &[JSON]), (204, String::new()));
    // A counter's posted value adds to its total, as in pollect.
    let again = r#"{"metrics": {"backups_done": {"value": 2, "labels": {"job": "nas"}}}}"#;
    assert_eq!(post(port.port, again, &[JSON]).0, 204);
    wait_values(
        &agent,
        &[
            ("backup_size{job=nas}", 1234.5),
            ("backups_done{job=nas}", 3.0),
        ],
    );

    let (code, why) = post(port.port, r#"{"metrics": {"other": 1}}"#, &[JSON]);
    assert_eq!(code, 400);
    assert!(why.contains("`other` is not declared"), "{why}");
    let (code, why) = post(port.port, r#"{"metrics": {"backup_size": 1}}"#, &[JSON]);
    assert_eq!(code, 400);
    assert!(why.contains("missing label `job`"), "{why}");
}

#[test]
fn without_declared_metrics_lines_are_gauges_and_bad_bodies_get_400_with_the_reason() {
    let s = Scratch::new();
    let port = reserve_port();
    let agent = agent(&s, port.port, "");
    let lines = "room_temp{room=\"kitchen\"} 21.5\ncpu_temp 72.4 zone=cpu0\n";
    assert_eq!(post(port.port, lines, &["Content-Type: text/plain"]).0, 204);
    wait_values(
        &agent,
        &[
            ("room_temp{room=kitchen}", 21.5),
            ("cpu_temp{zone=cpu0}", 72.4),
        ],
    );
    for (body, reason) in [
        ("{\"metrics\": [1]}", "no `metrics` object"),
        ("{not json", "not JSON"),
        ("temp high", "is not a finite number"),
        ("temp{room=kitchen} 1", "double quotes"),
    ] {
        let (code, why) = post(port.port, body, &[]);
        assert_eq!(code, 400, "{body}: {why}");
        assert!(why.contains(reason), "{body}: {why}");
    }
    // The agent goes on taking good bodies.
    assert_eq!(post(port.port, "after 1", &[]).0, 204);
    wait_values(&agent, &[("after", 1.0)]);
}

#[test]
fn a_bearer_token_is_required_when_set() {
    let s = Scratch::new();
    let port = reserve_port();
    let _agent = agent(&s, port.port, "      token: s3cret-token\n");
    assert_eq!(post(port.port, "x 1", &[]).0, 401);
    assert_eq!(
        post(port.port, "x 1", &["Authorization: Bearer wrong"]).0,
        401
    );
    assert_eq!(
        post(port.port, "x 1", &["Authorization: Bearer s3cret-token"]).0,
        204
    );
}

#[test]
fn a_100_mb_body_is_refused_from_its_length_before_it_is_sent() {
    let s = Scratch::new();
    let port = reserve_port();
    let _agent = agent(&s, port.port, "");
    let big = s.dir.path().join("big");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(100 << 20).unwrap();
    // curl sends `Expect: 100-continue` for a body this size and waits for the answer.
    let out = curl()
        .args([
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{size_upload}",
            "--max-time",
            "20",
        ])
        .args(["--data-binary", &format!("@{}", big.display())])
        .arg(format!("http://127.0.0.1:{}/", port.port))
        .stderr(Stdio::inherit())
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (answer, tail) = text.rsplit_once('\n').unwrap();
    let (code, uploaded) = tail.split_once(' ').unwrap();
    assert_eq!(code, "413", "{text}");
    assert!(answer.contains("at most 65536"), "{answer}");
    let uploaded: f64 = uploaded.parse().unwrap();
    assert!(
        uploaded < (1 << 20) as f64,
        "{uploaded} bytes were sent before the refusal"
    );
}

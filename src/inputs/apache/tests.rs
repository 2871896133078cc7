use super::*;
use crate::inputs::testutil::{sample_options, Harness};

/// The shape Apache 2.4 (event MPM, ExtendedStatus on) writes for `?auto`.
const PAGE: &str = "127.0.0.1
ServerVersion: Apache/2.4.71 (Debian)
ServerMPM: event
Server Built: 2025-07-12T12:00:00
CurrentTime: Monday, 23-Nov-2026 17:00:00 UTC
RestartTime: Monday, 23-Nov-2026 16:59:48 UTC
ParentServerConfigGeneration: 1
ParentServerMPMGeneration: 0
ServerUptimeSeconds: 12
ServerUptime: 12 seconds
Load1: 0.25
Load5: 0.50
Load15: 0.75
Total Accesses: 7
Total kBytes: 3
Total Duration: 4
CPUUser: .01
CPUSystem: .02
CPUChildrenUser: 0
CPUChildrenSystem: 0
CPULoad: .25
Uptime: 12
ReqPerSec: .583333
BytesPerSec: 256
BytesPerReq: 438.857
DurationPerReq: .571429
BusyWorkers: 2
GracefulWorkers: 0
IdleWorkers: 48
Processes: 2
Stopping: 0
ConnsTotal: 1
ConnsAsyncWriting: 0
ConnsAsyncKeepAlive: 1
ConnsAsyncClosing: 0
Scoreboard: __W_K___________________________________________....
";

#[test]
fn parses_a_server_status_page() {
    let s = parse_server_status(PAGE.as_bytes()).unwrap();
    assert_eq!(s.get("Total Accesses"), Some(7.0));
    assert_eq!(s.get("Total kBytes"), Some(3.0));
    assert_eq!(s.get("CPULoad"), Some(0.25));
    assert_eq!(s.get("ReqPerSec"), Some(0.583333));
    assert_eq!(s.get("BusyWorkers"), Some(2.0));
    assert_eq!(s.get("IdleWorkers"), Some(48.0));
    assert_eq!(s.get("ServerUptimeSeconds"), Some(12.0));
    assert_eq!(s.get("Uptime"), Some(12.0));
    assert_eq!(s.get("ParentServerMPMGeneration"), Some(0.0));
    assert_eq!(s.slots("waiting"), Some(46));
    assert_eq!(s.slots("sending"), Some(1));
    assert_eq!(s.slots("keepalive"), Some(1));
    assert_eq!(s.slots("open"), Some(4));
    assert_eq!(s.slots("reading"), Some(0));
    assert_eq!(s.scoreboard.iter().sum::<u32>(), 52);
}

#[test]
fn extended_status_off_leaves_the_totals_out() {
    let page: String = PAGE
        .lines()
        .filter(|l| !l.starts_with("Total ") && !l.starts_with("CPU") && !l.contains("PerSec") && !l.contains("PerReq"))
        .map(|l| format!("{l}\n"))
        .collect();
    let s = parse_server_status(page.as_bytes()).unwrap();
    assert_eq!(s.get("Total Accesses"), None);
    assert_eq!(s.get("BusyWorkers"), Some(2.0));
}

#[test]
fn truncated_pages_are_errors() {
    let end = PAGE.find("Scoreboard").unwrap();
    for cut in 0..end {
        assert!(
            parse_server_status(&PAGE.as_bytes()[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    assert_eq!(
        parse_server_status(&PAGE.as_bytes()[..end]),
        Err(StatusError::Missing("Scoreboard"))
    );
}

#[test]
fn garbage_pages_are_errors() {
    let html = "<html><head><title>Apache Status</title></head><body>\n<h1>Apache Server Status</h1>\n</body></html>\n";
    assert_eq!(
        parse_server_status(html.as_bytes()),
        Err(StatusError::Missing("Scoreboard"))
    );
    let bad_value = PAGE.replace("BusyWorkers: 2", "BusyWorkers: two");
    assert_eq!(
        parse_server_status(bad_value.as_bytes()),
        Err(StatusError::BadValue { line: 27 })
    );
    let nan = PAGE.replace("Load1: 0.25", "Load1: NaN");
    assert_eq!(
        parse_server_status(nan.as_bytes()),
        Err(StatusError::BadValue { line: 11 })
    );
    let bad_board = PAGE.replace("__W_K", "__W_?");
    assert_eq!(
        parse_server_status(bad_board.as_bytes()),
        Err(StatusError::BadScoreboard { line: 36 })
    );
    let twice = format!("{PAGE}BusyWorkers: 3\n");
    assert_eq!(
        parse_server_status(twice.as_bytes()),
        Err(StatusError::Repeated { line: 37 })
    );
    let no_busy = PAGE.replace("BusyWorkers: 2\n", "");
    assert_eq!(
        parse_server_status(no_busy.as_bytes()),
        Err(StatusError::Missing("BusyWorkers"))
    );
    assert_eq!(
        parse_server_status(&[0xC3, 0x28]),
        Err(StatusError::NotText)
    );
}

/// Emits a parsed page without fetching, to check names and labels.
struct Emits(Apache, ServerStatus);

impl Input for Emits {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        self.0.emit(&self.1, em);
        crate::core::ready(Ok(()))
    }
}

#[test]
fn writes_rtcollectors_metric_names() {
    let apache = build(
        &Config {
            status_url: "http://localhost:8081/server-status?auto".into(),
            ..Config::default()
        },
        &BuildCtx::with_roots("/proc", "/sys"),
    )
    .unwrap();
    let status = parse_server_status(PAGE.as_bytes()).unwrap();
    let mut h = Harness::new(Box::new(Emits(apache, status)));
    let c = h.collect(10_000);
    let l = "{port=8081,server=localhost}";
    for (name, value) in [
        ("apache_TotalAccesses", 7.0),
        ("apache_TotalkBytes", 3.0),
        ("apache_BusyWorkers", 2.0),
        ("apache_IdleWorkers", 48.0),
        ("apache_CPULoad", 0.25),
        ("apache_ConnsAsyncKeepAlive", 1.0),
        ("apache_ParentServerConfigGeneration", 1.0),
        ("apache_scboard_waiting", 46.0),
        ("apache_scboard_sending", 1.0),
        ("apache_scboard_open", 4.0),
        ("apache_scboard_idle_cleanup", 0.0),
    ] {
        assert_eq!(c.get(&format!("{name}{l}")), Some(value), "{name}");
    }
    // 23 keys + 11 scoreboard states, no rates on the first collection.
    assert_eq!(c.samples.len(), KNOWN + SCOREBOARD.len());
    let c = h.collect(20_000);
    assert_eq!(c.get(&format!("apache_TotalAccesses_rate{l}")), Some(0.0));
}

#[test]
fn sample_is_the_default() {
    let s: Config = sample_options(SAMPLE);
    let d = Config::default();
    assert_eq!((s.status_url, s.timeout), (d.status_url, d.timeout));
}

use super::http::{dechunk, Response};
use super::*;
use crate::inputs::testutil::{fixture_dir, sample_options, Harness};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir("docker").join(name)).unwrap()
}

fn stats(name: &str) -> Stats {
    serde_json::from_slice(&fixture(name)).unwrap()
}

#[test]
fn sample_is_a_valid_config() {
    let cfg: Config = sample_options(SAMPLE);
    assert_eq!(cfg.endpoint, Config::default().endpoint);
    assert_eq!(cfg.max_concurrent, 4);
}

#[test]
fn endpoints() {
    assert_eq!(
        socket_path("unix:///var/run/docker.sock").unwrap(),
        Path::new("/var/run/docker.sock")
    );
    assert_eq!(
        socket_path("/run/user/1000/docker.sock").unwrap(),
        Path::new("/run/user/1000/docker.sock")
    );
    assert!(socket_path("tcp://10.0.0.2:2375")
        .unwrap_err()
        .to_string()
        .contains("only the engine's unix socket"));
    let cfg: Config =
        yaml_serde::from_str("{endpoint: 'unix:///var/run/docker.sock', gather_services: false}")
            .unwrap();
    assert!(build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).is_ok());
    // Rejected when parsed (out of its range) or when built.
    assert!(yaml_serde::from_str::<Config>("{max_concurrent: 0}")
        .map_or(true, |c| build(&c, &BuildCtx::with_roots("/proc", "/sys")).is_err()));
}

#[test]
fn answers_with_length_chunked_or_until_close() {
    let r = Response::parse(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]").unwrap();
    assert_eq!((r.status, &r.body[..]), (200, &b"[]"[..]));
    let r = Response::parse(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"a\"\r\nA;ext=1\r\n:1234567}\n\r\n0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.body, b"{\"a\":1234567}\n");
    let r = Response::parse(b"HTTP/1.0 404 Not Found\r\n\r\n{\"message\":\"x\"}").unwrap();
    assert_eq!((r.status, &r.body[..]), (404, &b"{\"message\":\"x\"}"[..]));
}

#[test]
fn malformed_answers_are_rejected() {
    let bad = |raw: &[u8]| match Response::parse(raw) {
        Err(HttpError::Malformed(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(bad(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"), "no end of headers");
    assert_eq!(bad(b"SSH-2.0-OpenSSH\r\n\r\n"), "no HTTP/1.x status line");
    assert_eq!(bad(b"HTTP/1.1 2x0 OK\r\n\r\n"), "the status is not a number");
    assert_eq!(
        bad(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"),
        "the body is shorter than Content-Length"
    );
    assert_eq!(
        bad(b"HTTP/1.1 200 OK\r\nBroken header\r\n\r\n"),
        "a header line without `:`"
    );
    assert!(matches!(dechunk(b"zz\r\n"), Err(HttpError::Malformed("a chunk size is not hex"))));
    assert!(matches!(dechunk(b"5\r\nab"), Err(HttpError::Malformed("a truncated chunk"))));
    assert!(matches!(dechunk(b"2\r\nabX"), Err(HttpError::Malformed("a chunk without its CRLF"))));
    assert!(matches!(dechunk(b"2\r\nab\r\n"), Err(HttpError::Malformed("a truncated chunk size"))));
}

#[test]
fn cgroup_v2_figures_as_docker_stats_shows_them() {
    let s = stats("stats-web.json");
    assert_eq!(s.cpu_percent(), Some(5.0));
    assert_eq!(s.memory_usage(), Some(41_943_040));
    assert_eq!(s.memory_percent(), Some(7.8125));
}

#[test]
fn cgroup_v1_figures_count_cpus_from_percpu_usage() {
    let s = stats("stats-cache.json");
    assert_eq!(s.cpu_percent(), Some(20.0));
    assert_eq!(s.memory_usage(), Some(83_886_080));
    assert_eq!(s.memory_percent(), Some(3.90625));
}

#[test]
fn no_previous_reading_means_no_cpu_percent() {
    let mut s = stats("stats-web.json");
    s.precpu_stats = api::CpuStats::default();
    assert_eq!(s.cpu_percent(), None);
    let mut s = stats("stats-web.json");
    s.cpu_stats.online_cpus = None;
    assert_eq!(s.cpu_percent(), None, "no CPU count (cgroup v2 has no percpu_usage)");
    let s: Stats = serde_json::from_str("{}").unwrap();
    assert_eq!((s.cpu_percent(), s.memory_usage(), s.memory_percent()), (None, None, None));
}

#[test]
fn containers_are_named_like_docker_ps() {
    let list: Vec<Container> = serde_json::from_slice(&fixture("containers.json")).unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].name(), "web");
    assert_eq!(list[0].short_id(), "3f1c9a7b2e4d");
    assert_eq!(list[1].image, "redis:7");
    assert!(list.iter().all(Container::id_is_safe));
    let odd = Container {
        id: "../../info".into(),
        names: vec![],
        image: String::new(),
        state: String::new(),
    };
    assert!(!odd.id_is_safe());
    assert_eq!(odd.name(), "../../info", "the short id, for want of a name");
}

#[test]
fn a_missing_socket_is_one_clear_message() {
    let cfg: Config =
        yaml_serde::from_str("{endpoint: 'unix:///nonexistent/docker.sock'}").unwrap();
    let mut h = Harness::new(Box::new(
        build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).unwrap(),
    ));
    let c = h.collect(1_000);
    assert_eq!(
        c.error.unwrap().0,
        "no Docker socket at /nonexistent/docker.sock: is the Docker engine installed and running here? (set `endpoint` if it listens elsewhere)"
    );
    assert!(c.samples.is_empty());
}

#[test]
fn permission_and_refusal_are_explained() {
    use std::io::{Error, ErrorKind};
    let p = Path::new("/var/run/docker.sock");
    assert_eq!(
        connect_hint(p, &Error::from(ErrorKind::PermissionDenied)),
        "permission denied on /var/run/docker.sock: run the agent as root or in the `docker` group (as good as root on this host)"
    );
    assert!(connect_hint(p, &Error::from(ErrorKind::ConnectionRefused)).contains("stopped"));
}

#[test]
fn an_engine_that_does_not_answer_is_bounded_by_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // Accepts and keeps connections open without ever answering.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    let cfg: Config = yaml_serde::from_str(&format!(
        "{{endpoint: 'unix://{}', timeout: 200ms}}",
        socket.display()
    ))
    .unwrap();
    let mut h = Harness::new(Box::new(
        build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).unwrap(),
    ));
    assert_eq!(
        h.collect(1_000).error.unwrap().0,
        format!(
            "listing containers at {}: no answer within timeout (200ms)",
            socket.display()
        )
    );
}

use super::*;

fn config(yaml: &str) -> Config {
    yaml_serde::from_str(yaml).unwrap()
}

#[test]
fn options_at_fault_are_named() {
    let ctx = BuildCtx::with_roots("/proc", "/sys");
    for (yaml, key) in [
        ("listen: here", "listen"),
        ("path: metrics", "path"),
        ("metrics: {\"a b\": {}}", "metrics"),
    ] {
        let e = build(&config(yaml), &ctx).err().unwrap();
        assert_eq!(e.option, Some(key), "{yaml}: {e:?}");
    }
    assert!(build(&config("metrics: {done: {type: counter, labels: [job]}}"), &ctx).is_ok());
}

#[test]
fn the_token_never_prints() {
    let cfg = config("token: hunter2");
    let text = crate::config::yaml_text::flow(&cfg);
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!format!("{cfg:?}").contains("hunter2"));
}

#[test]
fn sample_is_the_default() {
    let cfg: Config = crate::inputs::testutil::sample_options(SAMPLE);
    assert_eq!(cfg.port, Config::default().port);
    assert!(cfg.metrics.is_empty());
}

/// Posts `body` on a fresh connection and returns the answer's status line and headers.
async fn post(addr: std::net::SocketAddr, body: &str) -> String {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    let mut s = smol::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    answer
}

/// A full output queue without a disk buffer: the post is answered 503 with Retry-After,
/// nothing of it is queued, and a counter's increment is not kept (the client sends again).
#[test]
fn full_queues_answer_503_and_take_nothing() {
    use crate::core::hub::{Hub, OutputQueue};
    use crate::core::publish::Publisher;
    use crate::core::shared::Shared;
    use crate::core::stats::AgentStats;
    use crate::core::SeriesTable;
    use std::rc::Rc;

    let stats: Rc<AgentStats> = Rc::default();
    let queue = Rc::new(OutputQueue::new("o", 2, 100, stats.output("o")));
    let hub = Hub::default();
    hub.set_queues(vec![queue.clone()]);
    let shared = Rc::new(Shared {
        table: Rc::new(std::cell::RefCell::new(SeriesTable::new("h", 100))),
        hub: Rc::new(hub),
        stats,
    });
    let cfg = config("listen: 127.0.0.1\nport: 1\nmetrics: {done: {type: counter}, g: {}}");
    let mut input = build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).unwrap();
    // Port 0: any free one (the option's range starts at 1).
    input.settings = Rc::new(Settings {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..Rc::try_unwrap(input.settings).ok().unwrap()
    });
    let publisher = Publisher::new("http_ingress", shared.clone(), Rc::default(), 60_000);
    let listener = input.listen_with(publisher).unwrap();
    let ex = smol::LocalExecutor::new();
    let task = ex.spawn(listener);
    let answers = smol::block_on(ex.run(async {
        while input.local_addr().is_none() {
            smol::future::yield_now().await;
        }
        let addr = input.local_addr().unwrap();
        let first = post(addr, "{\"metrics\": {\"done\": 5}}").await;
        // The counter, its rate and the gauge: three samples for the one slot left.
        let second = post(addr, "{\"metrics\": {\"done\": 5, \"g\": 1}}").await;
        (first, second)
    }));
    drop(task);
    assert!(answers.0.starts_with("HTTP/1.1 204"), "{}", answers.0);
    assert!(answers.1.starts_with("HTTP/1.1 503"), "{}", answers.1);
    assert!(answers.1.contains("Retry-After: 10\r\n"), "{}", answers.1);
    assert_eq!(queue.ring.borrow().len(), 1, "the first post's counter only");
    let state = input.state.borrow();
    assert_eq!(state.totals.values().copied().collect::<Vec<_>>(), [5.0], "the refused increment is not kept");
    assert_eq!(state.answered[STATUSES.iter().position(|s| *s == 503).unwrap()], 1);
}

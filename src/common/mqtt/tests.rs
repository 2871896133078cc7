use super::*;

#[test]
fn filters_match_as_mqtt_says() {
    for (filter, topic, want) in [
        ("tele/+/SENSOR", "tele/plug1/SENSOR", true),
        ("tele/+/SENSOR", "tele/plug1/STATE", false),
        ("tele/+/SENSOR", "tele/a/b/SENSOR", false),
        ("zigbee2mqtt/#", "zigbee2mqtt/lamp", true),
        ("zigbee2mqtt/#", "zigbee2mqtt", true),
        ("#", "a/b/c", true),
        ("#", "$SYS/broker/uptime", false),
        ("+/status/+", "shelly1/status/switch:0", true),
        ("a/b", "a/b/c", false),
        ("a/b/c", "a/b", false),
        ("a/+", "a/", true),
    ] {
        assert_eq!(matches(filter, topic), want, "{filter} {topic}");
    }
}

fn session(client_id: &str, clean: bool) -> Option<Session> {
    Some(Session {
        client_id: client_id.into(),
        keep_alive: Duration::from_secs(30),
        clean,
        will: None,
    })
}

fn consumer(client_id: Option<&str>) -> Consumer {
    Consumer {
        id: next_id(),
        client_id: client_id.map(str::to_string),
        filters: vec!["a/#".into()],
        qos: QoS::AtMostOnce,
        skip_own: true,
        tx: async_channel::bounded(1).0,
        dropped: Arc::default(),
        skipped: Arc::default(),
    }
}

fn output() -> OutputSide {
    OutputSide {
        who: "output mqtt".into(),
        status: "rtcollector/h/status".into(),
        ha_status: Some("homeassistant/status".into()),
        own: "rtcollector/h/#".into(),
    }
}

/// A consumer that names no client id takes any clean connection to its broker; one that
/// names an id only a connection with that id; the session kinds must agree.
#[test]
fn a_consumer_joins_a_connection_whose_session_it_accepts() {
    let s = State {
        session: session("rtcollector-h", true),
        output: Some(output()),
        ..State::default()
    };
    assert!(s.takes_consumer(None, true));
    assert!(s.takes_consumer(Some("rtcollector-h"), true));
    assert!(!s.takes_consumer(Some("other"), true));
    assert!(
        !s.takes_consumer(None, false),
        "a persistent session is its own"
    );
    let closing = State { closing: true, ..s };
    assert!(!closing.takes_consumer(None, true));
}

/// An output joins consumers whose client ids (if named) are its own, on a clean session,
/// and never a connection that has an output already.
#[test]
fn an_output_joins_consumers_that_leave_it_the_client_id() {
    let mut s = State {
        session: session("rtcollector-in-h", true),
        consumers: vec![consumer(None)],
        ..State::default()
    };
    assert!(s.takes_output("rtcollector-h"));
    s.consumers.push(consumer(Some("rtcollector-h")));
    assert!(s.takes_output("rtcollector-h"));
    assert!(!s.takes_output("another-id"));
    s.consumers.truncate(1);
    s.output = Some(output());
    assert!(
        !s.takes_output("rtcollector-h"),
        "one output per connection"
    );
    let persistent = State {
        session: session("rtcollector-in-h", false),
        consumers: vec![consumer(None)],
        ..State::default()
    };
    assert!(!persistent.takes_output("rtcollector-h"));
}

/// Leaving unsubscribes only what nobody else reads: the output's Home Assistant status
/// topic counts as read.
#[test]
fn a_filter_stays_while_someone_reads_it() {
    let mut s = State {
        session: session("rtcollector-h", true),
        output: Some(output()),
        consumers: vec![consumer(None)],
        ..State::default()
    };
    assert!(s.filter_in_use("a/#"));
    assert!(s.filter_in_use("homeassistant/status"));
    assert!(!s.filter_in_use("b/#"));
    s.consumers.clear();
    assert!(!s.filter_in_use("a/#"));
    assert!(s.has_users());
    s.output = None;
    assert!(!s.has_users());
}

/// A message goes to every consumer whose filter matches; what the connection's output
/// publishes is skipped (and counted) for those that skip it; a full channel drops, counted.
#[test]
fn messages_are_routed_by_filter_and_the_outputs_own_are_skipped() {
    let (tx_a, rx_a) = async_channel::bounded(1);
    let (tx_b, rx_b) = async_channel::bounded(4);
    let a = Consumer {
        filters: vec!["house/#".into()],
        tx: tx_a,
        ..consumer(None)
    };
    let b = Consumer {
        filters: vec!["house/#".into(), "tele/+/SENSOR".into()],
        skip_own: false,
        tx: tx_b,
        ..consumer(None)
    };
    let (skipped_a, dropped_a) = (a.skipped.clone(), a.dropped.clone());
    let s = State {
        session: session("rtcollector-h", true),
        own: Some("house/agent/#".into()),
        consumers: vec![a, b],
        ..State::default()
    };
    let send = |topic: &str| driver::route(&s, topic.into(), bytes::Bytes::from_static(b"1"));
    send("house/agent/status");
    assert_eq!(skipped_a.load(Ordering::Relaxed), 1);
    assert!(rx_a.try_recv().is_err());
    assert_eq!(rx_b.try_recv().unwrap().topic, "house/agent/status");
    send("house/kitchen/temp");
    send("house/hall/temp");
    send("tele/plug1/SENSOR");
    send("elsewhere/x");
    assert_eq!(rx_a.try_recv().unwrap().topic, "house/kitchen/temp");
    assert_eq!(
        dropped_a.load(Ordering::Relaxed),
        1,
        "the second did not fit"
    );
    let got: Vec<String> = std::iter::from_fn(|| rx_b.try_recv().ok())
        .map(|m| m.topic)
        .collect();
    assert_eq!(
        got,
        ["house/kitchen/temp", "house/hall/temp", "tele/plug1/SENSOR"]
    );
}

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

fn output_side() -> OutputSide {
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
        output: Some(output_side()),
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
    s.output = Some(output_side());
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
        output: Some(output_side()),
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

fn connection(client_id: &str, output: bool, fallback: Option<&str>) -> Arc<Connection> {
    let options = MqttOptions::new(client_id, "127.0.0.1", 1883);
    let (client, _eventloop) = AsyncClient::new(options.clone(), 4);
    let dial = |id: &str| Dial {
        options: MqttOptions::new(id, "127.0.0.1", 1883),
        connect_timeout: Duration::from_secs(1),
    };
    let state = State {
        session: Some(Session::of(&options)),
        output: output.then(output_side),
        consumers: vec![consumer(None)],
        fallback: fallback.map(dial),
        connected: true,
        ..State::default()
    };
    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        port: 1883,
        username: None,
        password: None,
        tls: None,
    };
    Connection::new(endpoint, client, state).0
}

/// An output that needs the client id a consumers' connection kept from an output that left
/// gets it back: that connection reconnects with the consumers' own options. A connection
/// with an output of its own, or another id, is left alone.
#[test]
fn a_client_id_left_behind_goes_back_to_the_consumers() {
    let kept = connection("rtcollector-h", false, Some("rtcollector-in-h"));
    let busy = connection("rtcollector-h", true, Some("rtcollector-in-h"));
    let other = connection("other", false, Some("rtcollector-in-h"));
    let all: Vec<Weak<Connection>> = [&kept, &busy, &other].map(Arc::downgrade).into();
    release_client_id(&all, "rtcollector-h", "output mqtt");
    let s = kept.lock();
    assert_eq!(s.session.as_ref().unwrap().client_id, "rtcollector-in-h");
    let reconnect = s.reconfigure.as_ref().expect("reconnects");
    assert_eq!(reconnect.options.client_id(), "rtcollector-in-h");
    assert!(!s.connected && s.own.is_none());
    for untouched in [&busy, &other] {
        let s = untouched.lock();
        assert!(s.reconfigure.is_none() && s.connected);
    }
}

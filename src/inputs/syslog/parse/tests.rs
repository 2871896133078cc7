use super::*;

/// 2026-12-06T10:00:00Z
const NOW: i64 = 1_796_551_200_000;

fn p5424(m: &str) -> LogRecord<'_> {
    parse(m.as_bytes(), Standard::Rfc5424, NOW, "_").unwrap()
}

fn p3164(m: &str) -> LogRecord<'_> {
    parse(m.as_bytes(), Standard::Rfc3164, NOW, "_").unwrap()
}

#[test]
fn the_now_constant_is_the_date_it_says() {
    assert_eq!(clock::utc_text(NOW), "2026-12-06T10:00:00.000Z");
}

#[test]
fn rfc5424_with_structured_data_and_a_bom() {
    let m = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \
             [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]\
             [examplePriority@32473 class=\"high\"] \u{feff}An application event log entry";
    let r = p5424(m);
    assert_eq!((r.facility, r.severity), (20, 5));
    assert_eq!(r.ts_ms, 1_065_910_455_003);
    assert_eq!(r.hostname, "mymachine.example.com");
    assert_eq!(r.appname, "evntslog");
    assert_eq!(r.procid, "");
    assert_eq!(r.msgid, "ID47");
    assert_eq!(r.message, "An application event log entry");
    let sd: Vec<(&str, &str, &str)> = r
        .structured
        .iter()
        .map(|p| (&*p.id, &*p.name, &*p.value))
        .collect();
    assert_eq!(
        sd,
        [
            ("exampleSDID@32473", "exampleSDID@32473_iut", "3"),
            ("exampleSDID@32473", "exampleSDID@32473_eventSource", "Application"),
            ("exampleSDID@32473", "exampleSDID@32473_eventID", "1011"),
            ("examplePriority@32473", "examplePriority@32473_class", "high"),
        ]
    );
}

#[test]
fn rfc5424_nil_values_offsets_and_escapes() {
    let r = p5424("<34>1 2003-08-24T05:14:15.000003-07:00 - - - - -");
    assert_eq!(r.ts_ms, 1_061_727_255_000);
    assert_eq!((r.hostname.as_ref(), r.message.as_ref()), ("", ""));
    let r = p5424("<14>1 - host app 42 - [x a=\"q\\\"uote\\]\\\\\"][empty] hi\n");
    assert_eq!(r.ts_ms, NOW, "no time: the time of receipt");
    assert_eq!(r.procid, "42");
    assert_eq!(r.structured[0].value, "q\"uote]\\");
    assert_eq!((&*r.structured[1].id, &*r.structured[1].name), ("empty", ""));
    assert_eq!(r.message, "hi");
}

#[test]
fn rfc5424_damage_is_an_error_not_a_guess() {
    for bad in [
        "<14>1 2003-13-11T22:14:15Z h a p m - x",
        "<14>1 2003-10-11T22:14:15Z h a p m [x a=\"unterminated] x",
        "<14>1 2003-10-11T22:14:15Z h a p m [x a=unquoted] x",
        "<14>1 2003-10-11T22:14:15Z h a p m -x",
        "<14>1 2003-10-11T22:14:15Z h a",
        "<192>1 - - - - - -",
        "<014>1 - - - - - -",
    ] {
        assert!(
            parse(bad.as_bytes(), Standard::Rfc5424, NOW, "_").is_err(),
            "{bad}"
        );
    }
}

#[test]
fn rfc3164_as_devices_send_it() {
    // util-linux logger --rfc3164 and most daemons: host, tag[pid].
    let r = p3164("<13>Dec  6 09:59:58 pi4 myapp[123]: disk almost full");
    assert_eq!(r.ts_ms, NOW - 2_000);
    assert_eq!((r.facility, r.severity), (1, 5));
    assert_eq!(
        (&*r.hostname, &*r.appname, &*r.procid, &*r.message),
        ("pi4", "myapp", "123", "disk almost full")
    );
    // busybox syslogd -R: no host name, a tag without a pid.
    let r = p3164("<30>Dec  6 09:00:00 dnsmasq: query[A] example.org");
    assert_eq!(
        (&*r.hostname, &*r.appname, &*r.procid, &*r.message),
        ("", "dnsmasq", "", "query[A] example.org")
    );
    // rsyslog's traditional forwarding with an RFC 3339 time.
    let r = p3164("<86>2026-12-06T11:00:00.250+01:00 nas sshd[99]: Accepted publickey");
    assert_eq!(r.ts_ms, NOW + 250);
    assert_eq!((&*r.hostname, &*r.appname), ("nas", "sshd"));
    // No time, no tag: all of it is the message.
    let r = p3164("<11>something broke badly");
    assert_eq!((r.ts_ms, &*r.appname), (NOW, ""));
    assert_eq!(r.message, "something broke badly");
    let r = p3164("<11>watchdog: reset");
    assert_eq!((&*r.hostname, &*r.appname, &*r.message), ("", "watchdog", "reset"));
}

#[test]
fn a_year_less_time_takes_the_year_that_puts_it_just_before_receipt() {
    let jan_first = clock::days_from_civil(2027, 1, 1) * 86_400_000 + 60_000;
    let r = parse(
        b"<13>Dec 31 23:59:00 h t: late",
        Standard::Rfc3164,
        jan_first,
        "_",
    )
    .unwrap();
    assert_eq!(clock::utc_text(r.ts_ms), "2026-12-31T23:59:00.000Z");
    // No year near receipt has that day: not a time, the sender's text is kept.
    let r = parse(b"<13>Feb 29 12:00:00 h t: leap", Standard::Rfc3164, NOW, "_").unwrap();
    assert_eq!((r.ts_ms, &*r.message), (NOW, "Feb 29 12:00:00 h t: leap"));
}

#[test]
fn each_standard_falls_back_to_the_other() {
    let r = p5424("<13>Dec  6 09:59:58 pi4 myapp: x");
    assert_eq!(r.hostname, "pi4");
    assert_eq!(r.appname, "myapp");
    let r = p3164("<13>1 - h app - - - x");
    assert_eq!((&*r.hostname, &*r.message), ("h", "x"));
    // A broken 5424 message: an error under RFC5424, BSD text under RFC3164.
    let broken = b"<13>1 2003-13-11T22:14:15Z h a p m - x";
    assert_eq!(
        parse(broken, Standard::Rfc5424, NOW, "_").map(|_| ()),
        Err(ParseError::Timestamp)
    );
    let r = parse(broken, Standard::Rfc3164, NOW, "_").unwrap();
    assert_eq!(r.message, "1 2003-13-11T22:14:15Z h a p m - x");
}

#[test]
fn raw_keeps_what_came() {
    let r = raw(b"<27>garbage \xff\n", NOW);
    assert_eq!((r.facility, r.severity), (3, 3));
    assert_eq!(r.message, "garbage \u{fffd}");
    let r = raw(b"no pri", NOW);
    assert_eq!((r.facility, r.severity, &*r.message), (1, 5, "no pri"));
}

/// Random and mutated bytes never panic, whatever the standard.
#[test]
fn no_input_panics() {
    let seeds: [&[u8]; 4] = [
        b"<165>1 2003-10-11T22:14:15.003Z host app - ID [a b=\"c\\\"\"] msg",
        b"<13>Dec  6 09:59:58 pi4 myapp[123]: disk",
        b"<86>2026-12-06T11:00:00.250+01:00 nas sshd[99]: x",
        b"<0>",
    ];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..50_000 {
        let seed = seeds[(next() % 4) as usize];
        let mut m = seed.to_vec();
        for _ in 0..(next() % 6) {
            let at = (next() as usize) % (m.len() + 1);
            match next() % 3 {
                0 if at < m.len() => m[at] = next() as u8,
                1 => m.insert(at, b"<>[]\"\\ :-T1"[(next() % 11) as usize]),
                _ => m.truncate(at),
            }
        }
        for std in [Standard::Rfc5424, Standard::Rfc3164] {
            let _ = parse(&m, std, NOW, "_");
        }
        let _ = raw(&m, NOW);
        let _ = rfc3339_ms(&m);
    }
}

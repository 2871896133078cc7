//! The handshake against canned proxy replies: every reply is checked before use, a short or
//! hostile one is an error in words (never a panic), and what is sent is byte for byte the
//! protocol's.

use super::*;
use futures_lite::future::block_on;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A proxy that answers `reply` whatever it is sent, then closes; what it was sent is kept.
struct Canned {
    reply: futures_lite::io::Cursor<Vec<u8>>,
    sent: Vec<u8>,
}

impl AsyncRead for Canned {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.reply).poll_read(cx, buf)
    }
}

impl AsyncWrite for Canned {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.sent.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn proxy(text: &str) -> ProxyUrl {
    let key = if text.starts_with("socks5") {
        "socks5_proxy"
    } else {
        "socks4_proxy"
    };
    ProxyUrl::parse(key, text).unwrap()
}

const REDIS: Dest = Dest::Addr(SocketAddr::new(
    IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3)),
    6379,
));

/// Runs the handshake of `url` for `dest` against `reply`: the result and what was sent.
fn run(url: &str, dest: Dest, reply: &[u8]) -> (Result<(), String>, Vec<u8>) {
    let mut s = Canned {
        reply: futures_lite::io::Cursor::new(reply.to_vec()),
        sent: Vec::new(),
    };
    let r = block_on(handshake(&mut s, &proxy(url), dest, "redis.lan:6379"));
    (r, s.sent)
}

const OK5: &[u8] = &[5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0];

#[test]
fn socks5_without_auth_sends_the_greeting_and_connect_to_an_ipv4_address() {
    let (r, sent) = run("socks5://127.0.0.1:1080", REDIS, OK5);
    assert_eq!(r, Ok(()));
    assert_eq!(sent, [5, 1, 0, 5, 1, 0, 1, 10, 1, 2, 3, 0x18, 0xeb]);
}

#[test]
fn socks5_with_auth_sends_rfc1929_then_connect_to_a_name_or_ipv6() {
    let reply = [&[5, 2, 1, 0][..], OK5.get(2..).unwrap()].concat();
    let (r, sent) = run(
        "socks5h://me:p%40ss@127.0.0.1",
        Dest::Name("redis.lan", 6379),
        &reply,
    );
    assert_eq!(r, Ok(()));
    let mut want = vec![5, 2, 0, 2, 1, 2, b'm', b'e', 4, b'p', b'@', b's', b's'];
    want.extend_from_slice(&[5, 1, 0, 3, 9]);
    want.extend_from_slice(b"redis.lan");
    want.extend_from_slice(&[0x18, 0xeb]);
    assert_eq!(sent, want);

    let v6 = Dest::Addr("[::1]:6379".parse().unwrap());
    let (r, sent) = run("socks5://127.0.0.1", v6, OK5);
    assert_eq!(r, Ok(()));
    assert_eq!(sent[3..7], [5, 1, 0, 4]);
    assert_eq!(sent.len(), 3 + 4 + 16 + 2);
}

#[test]
fn every_bound_address_type_is_read_to_its_end_and_not_beyond() {
    // The reply, then a byte of the client's protocol that must stay unread.
    for bound in [
        &[1, 9, 9, 9, 9, 0, 1][..],
        &[4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1],
        &[3, 3, b'a', b'b', b'c', 0, 1],
        &[3, 0, 0, 1],
    ] {
        let reply = [&[5, 0, 5, 0, 0][..], bound, b"+"].concat();
        let mut s = Canned {
            reply: futures_lite::io::Cursor::new(reply.clone()),
            sent: Vec::new(),
        };
        let r = block_on(handshake(&mut s, &proxy("socks5://h"), REDIS, "r:1"));
        assert_eq!(r, Ok(()), "{reply:?}");
        assert_eq!(s.reply.position() as usize, reply.len() - 1, "{reply:?}");
    }
}

#[test]
fn every_prefix_of_a_good_reply_is_a_clear_error_not_a_panic() {
    let auth = [&[5, 2, 1, 0][..], OK5.get(2..).unwrap()].concat();
    for (url, reply) in [
        ("socks5://h:1", OK5.to_vec()),
        ("socks5://u:p@h:1", auth),
        ("socks4://h:1", vec![0, 90, 0, 0, 0, 0, 0, 0]),
    ] {
        for n in 0..reply.len() {
            let (r, _) = run(url, REDIS, &reply[..n]);
            let e = r.unwrap_err();
            assert!(
                e.contains("proxy h:1 closed the connection during the SOCKS handshake"),
                "{url} {n}: {e}"
            );
        }
    }
}

#[test]
fn hostile_replies_are_errors_in_words() {
    // Every byte value in every position of a SOCKS5 and a SOCKS4 reply: never a panic,
    // and any failure names the proxy.
    for url in ["socks5://u:p@h:1", "socks5://h:1", "socks4a://h:1"] {
        for pos in 0..12 {
            for b in 0..=255u8 {
                let mut reply = [&[5, 2, 1, 0][..], OK5.get(2..).unwrap()].concat();
                if url == "socks5://h:1" {
                    reply = OK5.to_vec();
                } else if url.starts_with("socks4") {
                    reply = vec![0, 90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                }
                if let Some(at) = reply.get_mut(pos) {
                    *at = b;
                }
                if let (Err(e), _) = run(url, Dest::Name("r", 1), &reply) {
                    assert!(e.contains("proxy h:1"), "{url} {reply:?}: {e}");
                }
            }
        }
    }
}

#[test]
fn socks5_method_and_auth_errors_say_what_to_set() {
    let (r, _) = run("socks5://127.0.0.1:1080", REDIS, &[5, 2]);
    assert_eq!(
        r.unwrap_err(),
        "SOCKS5 proxy 127.0.0.1:1080 wants authentication: set user:password in socks5_proxy (socks5://user:password@host:port)"
    );
    let (r, _) = run("socks5://u:hunter2@127.0.0.1:1080", REDIS, &[5, 2, 1, 1]);
    let e = r.unwrap_err();
    assert_eq!(
        e,
        "SOCKS5 proxy 127.0.0.1:1080 refused the username/password (user `u`): check them in socks5_proxy"
    );
    let (r, _) = run("socks5://u:hunter2@h", REDIS, &[5, 0xff]);
    assert!(r.unwrap_err().contains("accepts neither"));
    let (r, _) = run("socks5://h", REDIS, &[4, 0]);
    let e = r.unwrap_err();
    assert!(
        e.contains("did not answer as a SOCKS5 proxy (version byte 0x04)"),
        "{e}"
    );
    let (r, _) = run("socks5://h", REDIS, &[5, 0, 0, 0x5a, 0, 1]);
    let e = r.unwrap_err();
    assert!(
        e.contains("did not answer as a SOCKS5 proxy (version byte 0x00)"),
        "{e}"
    );
}

#[test]
fn each_socks5_connect_error_code_is_named() {
    let cases: &[(u8, &str)] = &[
        (1, "SOCKS5 proxy h:1080 cannot reach redis.lan:6379 (general failure)"),
        (2, "SOCKS5 proxy h:1080 does not allow a connection to redis.lan:6379 (its rules refuse it)"),
        (3, "SOCKS5 proxy h:1080 cannot reach redis.lan:6379 (network unreachable)"),
        (4, "SOCKS5 proxy h:1080 cannot reach redis.lan:6379 (host unreachable)"),
        (5, "SOCKS5 proxy h:1080 cannot reach redis.lan:6379 (connection refused)"),
        (6, "SOCKS5 proxy h:1080 cannot reach redis.lan:6379 (TTL expired)"),
        (7, "SOCKS5 proxy h:1080 does not support CONNECT"),
        (8, "SOCKS5 proxy h:1080 does not support the address type asked for redis.lan:6379: use socks5:// so that the agent resolves the name"),
        (9, "SOCKS5 proxy h:1080 refused the connection to redis.lan:6379 (reply code 0x09)"),
    ];
    for (code, want) in cases {
        let (r, _) = run(
            "socks5h://h",
            Dest::Name("redis.lan", 6379),
            &[5, 0, 5, *code, 0, 1, 0, 0, 0, 0, 0, 0],
        );
        assert_eq!(r.unwrap_err(), *want);
    }
    let (r, _) = run("socks5://h", REDIS, &[5, 0, 5, 0, 0, 7]);
    assert!(r.unwrap_err().contains("unknown address type (0x07)"));
}

#[test]
fn socks4_and_4a_requests_and_each_reply_code() {
    let (r, sent) = run("socks4://me@h", REDIS, &[0, 90, 0, 0, 0, 0, 0, 0]);
    assert_eq!(r, Ok(()));
    assert_eq!(sent, [4, 1, 0x18, 0xeb, 10, 1, 2, 3, b'm', b'e', 0]);
    let (r, sent) = run(
        "socks4a://h",
        Dest::Name("redis.lan", 6379),
        &[4, 90, 0, 0, 0, 0, 0, 0],
    );
    assert_eq!(r, Ok(()));
    let mut want = vec![4, 1, 0x18, 0xeb, 0, 0, 0, 1, 0];
    want.extend_from_slice(b"redis.lan\0");
    assert_eq!(sent, want);
    for (code, want) in [
        (91, "SOCKS4 proxy h:1080 refused or failed the connection to redis.lan:6379 (it cannot reach it, or its rules refuse it)"),
        (92, "SOCKS4 proxy h:1080 refused the connection to redis.lan:6379: it wants an identd on this host, which it cannot reach"),
        (93, "SOCKS4 proxy h:1080 refused the connection to redis.lan:6379: identd does not confirm the user id in socks4_proxy"),
        (17, "SOCKS4 proxy h:1080 refused the connection to redis.lan:6379 (reply code 17)"),
    ] {
        let (r, _) = run("socks4://h", REDIS, &[0, code, 0, 0, 0, 0, 0, 0]);
        assert_eq!(r.unwrap_err(), want);
    }
    let (r, _) = run("socks4://h", REDIS, &[5, 0, 0, 0, 0, 0, 0, 0]);
    assert!(r
        .unwrap_err()
        .contains("did not answer as a SOCKS4 proxy (version byte 0x05)"));
    let v6 = Dest::Addr("[::1]:6379".parse().unwrap());
    let (r, sent) = run("socks4://h", v6, &[]);
    assert!(r.unwrap_err().contains("SOCKS4 carries only IPv4"));
    assert!(
        sent.is_empty(),
        "nothing sent for a request that cannot be made"
    );
}

#[test]
fn urls_parse_with_curl_schemes_and_defaults() {
    let p = ProxyUrl::parse("socks5_proxy", "socks5h://user:p%3Ass@proxy.lan:9050/").unwrap();
    assert!(p.socks5 && p.remote_dns);
    assert_eq!((p.host.as_str(), p.port), ("proxy.lan", 9050));
    assert_eq!(p.username.as_deref(), Some("user"));
    assert_eq!(p.password.as_ref().unwrap().expose(), "p:ss");
    let p = ProxyUrl::parse("socks4_proxy", "socks4://[::1]").unwrap();
    assert!(!p.socks5 && !p.remote_dns);
    assert_eq!((p.host.as_str(), p.port), ("::1", 1080));
    assert_eq!(p.addr(), "[::1]:1080");
    let p = ProxyUrl::parse("socks4_proxy", "socks4a://ident@h:1").unwrap();
    assert!(p.remote_dns);
    assert_eq!(p.username.as_deref(), Some("ident"));
}

#[test]
fn a_password_is_masked_in_debug_and_in_check_output() {
    let p = ProxyUrl::parse("socks5_proxy", "socks5://user:hunter2@127.0.0.1:1080").unwrap();
    assert_eq!(format!("{p:?}"), "\"socks5://user:***@127.0.0.1:1080\"");
    let shown = crate::config::yaml_text::flow(&p);
    assert_eq!(shown, "\"socks5://user:***@127.0.0.1:1080\"");
}

#[test]
fn bad_urls_are_refused_without_repeating_them() {
    for (key, bad, want) in [
        (
            "socks5_proxy",
            "http://u:hunter2@h",
            "must start with socks5:// or socks5h://",
        ),
        (
            "socks5_proxy",
            "socks4://hunter2@h",
            "a SOCKS4 proxy goes in socks4_proxy",
        ),
        (
            "socks4_proxy",
            "socks5://h",
            "a SOCKS5 proxy goes in socks5_proxy",
        ),
        (
            "socks4_proxy",
            "socks4://u:hunter2@h",
            "SOCKS4 has no password",
        ),
        (
            "socks5_proxy",
            "socks5://hunter2@h",
            "needs both user and password",
        ),
        (
            "socks5_proxy",
            "socks5://:hunter2@h",
            "needs both user and password",
        ),
        (
            "socks5_proxy",
            "socks5://u:hunter2@h:0",
            "not a number from 1 to 65535",
        ),
        (
            "socks5_proxy",
            "socks5://u:hunter2@h:x",
            "not a number from 1 to 65535",
        ),
        ("socks5_proxy", "socks5://u:hunter2@", "no proxy host"),
        ("socks5_proxy", "socks5://u:hunter2@h/x", "no path"),
        (
            "socks5_proxy",
            "socks5://u:%zzhunter2@h",
            "invalid percent-encoding",
        ),
        ("socks5_proxy", "socks5://u:hunter2@[::1", "unclosed"),
    ] {
        let e = ProxyUrl::parse(key, bad).unwrap_err();
        assert!(e.contains(want), "{bad}: {e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
    let long = format!("socks5://u:{}@h", "x".repeat(256));
    assert!(ProxyUrl::parse("socks5_proxy", &long)
        .unwrap_err()
        .contains("255 bytes"));
}

#[test]
fn random_replies_never_panic() {
    // xorshift: the same replies on every run, so a failure can be reproduced.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for url in ["socks5://u:p@h:1", "socks5h://h:1", "socks4a://h:1"] {
        for _ in 0..3000 {
            let len = (next() % 300) as usize;
            let mut reply: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half of them start as a proxy would, to get past the first checks.
            if next() % 2 == 0 {
                let start: &[u8] = if url.starts_with("socks4") {
                    &[0, 90]
                } else {
                    &[5, 2, 1, 0, 5, 0, 0]
                };
                for (at, b) in reply.iter_mut().zip(start) {
                    *at = *b;
                }
            }
            if let (Err(e), _) = run(url, Dest::Name("r", 1), &reply) {
                assert!(e.contains("proxy h:1"), "{url} {reply:?}: {e}");
            }
        }
    }
}

use super::*;
use crate::inputs::testutil::{sample_options, Harness};
use std::io::{Read, Write};
use std::net::TcpListener;

fn ctx() -> BuildCtx {
    BuildCtx::with_roots("/proc", "/sys")
}

fn config(urls: &[String]) -> Config {
    Config {
        urls: urls.to_vec(),
        timeout: Dur(Duration::from_secs(5)),
        ..Config::default()
    }
}

/// Answers each connection with `response` after reading the request head; as many
/// connections as `times`.
fn serve(response: Vec<u8>, times: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(times) {
            let Ok(mut s) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(&response);
        }
    });
    format!("http://{addr}/check")
}

fn response(status: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[test]
fn a_response_is_measured_and_matched() {
    let url = serve(response("404 Not Found", b"service is healthy"), 1);
    let mut cfg = config(std::slice::from_ref(&url));
    cfg.response_status_code = 200;
    cfg.response_string_match = "health[yi]".into();
    let mut h = Harness::new(Box::new(build(&cfg, &ctx()).unwrap()));
    let c = h.collect(1_000);
    assert!(c.error.is_none(), "{:?}", c.error);
    let l = format!("{{url={url}}}");
    assert_eq!(c.get(&format!("http_response_status_code{l}")), Some(404.0));
    assert_eq!(c.get(&format!("http_response_content_length{l}")), Some(18.0));
    assert_eq!(c.get(&format!("http_response_string_match{l}")), Some(1.0));
    assert_eq!(c.get(&format!("http_response_status_code_match{l}")), Some(0.0));
    assert_eq!(c.get(&format!("http_response_result_code{l}")), Some(0.0));
    assert!(c.get(&format!("http_response_response_time{l}")).unwrap() > 0.0);
    assert!(!c.has(&format!("http_response_cert_expiry{l}")), "plain HTTP has no certificate");
    assert_eq!(c.samples.len(), 6);
}

#[test]
fn the_whole_body_is_counted_but_only_its_head_is_searched() {
    let mut body = vec![b'a'; 100_000];
    body.extend_from_slice(b"NEEDLE");
    let url = serve(response("200 OK", &body), 1);
    let mut cfg = config(std::slice::from_ref(&url));
    cfg.response_string_match = "NEEDLE".into();
    cfg.response_body_max_size = Size(1024);
    let mut h = Harness::new(Box::new(build(&cfg, &ctx()).unwrap()));
    let c = h.collect(1_000);
    let l = format!("{{url={url}}}");
    assert_eq!(c.get(&format!("http_response_content_length{l}")), Some(100_006.0));
    assert_eq!(c.get(&format!("http_response_string_match{l}")), Some(0.0));
}

#[test]
fn failures_get_rtcollectors_result_codes_and_the_other_urls_still_report() {
    // A port with nothing listening: bind, note the port, close.
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    // Accepts and never answers.
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging_url = format!("http://{}/", hanging.local_addr().unwrap());
    let garbage = serve(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(), 1);
    let ok = serve(response("200 OK", b"ok"), 1);
    let urls = [refused.clone(), hanging_url.clone(), garbage.clone(), ok.clone()];
    let mut cfg = config(&urls);
    cfg.timeout = Dur(Duration::from_millis(500));
    let mut h = Harness::new(Box::new(build(&cfg, &ctx()).unwrap()));
    let c = h.collect(1_000);
    let code = |u: &str| c.get(&format!("http_response_result_code{{url={u}}}"));
    assert_eq!(code(&refused), Some(2.0));
    assert_eq!(code(&hanging_url), Some(1.0));
    assert_eq!(code(&garbage), Some(3.0));
    assert_eq!(code(&ok), Some(0.0));
    assert_eq!(c.get(&format!("http_response_status_code{{url={ok}}}")), Some(200.0));
    assert!(!c.has(&format!("http_response_status_code{{url={refused}}}")));
    let e = c.error.expect("a failed URL is a partial failure");
    assert!(e.0.contains(&refused) && e.0.contains("refused"), "{e}");
    drop(hanging);
}

#[test]
fn a_url_still_hanging_from_the_last_collection_gets_no_second_thread() {
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", hanging.local_addr().unwrap());
    let mut cfg = config(std::slice::from_ref(&url));
    cfg.timeout = Dur(Duration::from_secs(3));
    let input = build(&cfg, &ctx()).unwrap();
    let first = input.client.fetch(&input.targets[0], &input.spec, false);
    let second = async {
        smol::Timer::after(Duration::from_millis(100)).await;
        input.client.fetch(&input.targets[0], &input.spec, false).await
    };
    let (first, second) = smol::block_on(futures_lite::future::zip(first, second));
    assert_eq!(first.unwrap_err().result_code(), 1);
    let second = second.unwrap_err();
    assert!(second.to_string().contains("still running"), "{second}");
    drop(hanging);
}

#[test]
fn redirects_are_followed_or_not_as_configured() {
    let target = serve(response("200 OK", b"landed"), 1);
    let redirect = format!("HTTP/1.1 301 Moved\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let from = serve(redirect.clone().into_bytes(), 2);
    let mut cfg = config(std::slice::from_ref(&from));
    cfg.follow_redirects = false;
    let c = Harness::new(Box::new(build(&cfg, &ctx()).unwrap())).collect(1_000);
    assert_eq!(c.get(&format!("http_response_status_code{{url={from}}}")), Some(301.0));
    cfg.follow_redirects = true;
    let c = Harness::new(Box::new(build(&cfg, &ctx()).unwrap())).collect(1_000);
    assert_eq!(c.get(&format!("http_response_status_code{{url={from}}}")), Some(200.0));
    assert_eq!(c.get(&format!("http_response_content_length{{url={from}}}")), Some(6.0));
}

#[test]
fn bad_options_are_refused_at_build_without_showing_secrets() {
    let url = vec!["http://127.0.0.1:1/".to_string()];
    let bad = |f: &dyn Fn(&mut Config)| {
        let mut c = config(&url);
        f(&mut c);
        build(&c, &ctx()).err().expect("refused").to_string()
    };
    assert!(bad(&|c| c.urls.clear()).contains("no urls"));
    assert!(bad(&|c| c.urls = vec!["example.com/health".into()]).contains("not a URL"));
    assert!(bad(&|c| c.method = "GE T".into()).contains("method"));
    assert!(bad(&|c| c.response_string_match = "(".into()).contains("response_string_match"));
    assert!(bad(&|c| c.timeout = Dur(Duration::ZERO)).contains("timeout"));
    let e = bad(&|c| {
        c.headers
            .insert("Authorization".into(), Secret::new("Bearer s3cret\nx"));
    });
    assert!(e.contains("Authorization") && !e.contains("s3cret"), "{e}");
    let e = bad(&|c| c.urls = vec!["ftp://u:pw@h/".into()]);
    assert!(!e.contains("pw"), "{e}");
}

#[test]
fn sample_is_the_default() {
    let s: Config = sample_options(SAMPLE);
    let d = Config::default();
    assert_eq!(s.urls, ["http://localhost/"]);
    assert_eq!(s.method, d.method);
    assert_eq!(s.timeout, d.timeout);
    assert_eq!(s.follow_redirects, d.follow_redirects);
    assert_eq!(s.headers, d.headers);
    assert_eq!(s.response_status_code, d.response_status_code);
    assert_eq!(s.response_string_match, d.response_string_match);
    assert_eq!(s.insecure_skip_verify, d.insecure_skip_verify);
    assert_eq!(s.tls_ca, d.tls_ca);
    assert_eq!(s.response_body_max_size, d.response_body_max_size);
}

#[test]
fn join_all_keeps_the_order() {
    let futures = (0..5u64).map(|i| async move {
        smol::Timer::after(Duration::from_millis(50 - i * 10)).await;
        i
    });
    assert_eq!(smol::block_on(join_all(futures)), [0, 1, 2, 3, 4]);
}

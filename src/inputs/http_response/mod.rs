//! `http_response`: checks HTTP(S) endpoints: response time, status code, body length,
//! a regex over the body, the certificate's remaining lifetime, and the Python rtcollector's
//! result code.
//!
//! All URLs of a collection are requested at once, each on a short-lived thread of its own
//! and each bounded by `timeout`, so one hanging endpoint delays neither the others nor any
//! other input (see `common::http`).

use crate::config::{BuildError, Dur, Secret, Size};
use crate::config::range;
use crate::core::{clock, CollectFuture, Emitter, Input, InputError};
use crate::common::http::{Client, ClientOptions, FetchError, Fetched, RequestSpec, Target};
use crate::inputs::BuildCtx;
use regex_lite::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use ureq::http::{HeaderName, HeaderValue, Method};

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Checks HTTP(S) endpoints: response time, status code, body length, a regex over the
# body, days left on the certificate, and a result code (0 ok, 1 timeout, 2 connection
# failed, 3 bad response, 4 other). All URLs are checked at once, each within timeout.
- http_response:
    urls:                      # http:// or https://; a password in a URL is shown as ***
      - \"http://localhost/\"
    method: GET
    timeout: 5s                # per URL: connect, TLS, request and whole body
    follow_redirects: true
    headers: {}                # e.g. {Authorization: \"secret:api/token\"}
    body: \"\"                   # request body, e.g. for POST
    response_status_code: 0    # when not 0: also write http_response_status_code_match
    response_string_match: \"\"  # regex over the body; when set: http_response_string_match
    insecure_skip_verify: false  # true accepts any certificate (self-signed test servers)
    # tls_ca: /etc/ssl/my-ca.pem  # trust these CAs instead of the built-in Mozilla roots
    response_body_max_size: 32KiB  # body bytes searched by response_string_match
";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub urls: Vec<String>,
    pub method: String,
    #[serde(deserialize_with = "range::timeout")]
    pub timeout: Dur,
    pub follow_redirects: bool,
    pub headers: BTreeMap<String, Secret>,
    pub body: Secret,
    #[serde(deserialize_with = "range::whole::<_, u16, 0, 599>")]
    pub response_status_code: u16,
    pub response_string_match: String,
    pub insecure_skip_verify: bool,
    pub tls_ca: Option<PathBuf>,
    #[serde(deserialize_with = "range::size::<_, 0, { 16 * range::MIB }>")]
    pub response_body_max_size: Size,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            urls: Vec::new(),
            method: "GET".into(),
            timeout: Dur(Duration::from_secs(5)),
            follow_redirects: true,
            headers: BTreeMap::new(),
            body: Secret::default(),
            response_status_code: 0,
            response_string_match: String::new(),
            insecure_skip_verify: false,
            tls_ca: None,
            response_body_max_size: Size(32 * 1024),
        }
    }
}

/// The most body kept for `response_string_match`, whatever the config says.
const MAX_KEEP: u64 = 16 * 1024 * 1024;

pub struct HttpResponse {
    client: Client,
    targets: Vec<Target>,
    spec: Arc<RequestSpec>,
    expect_status: Option<u16>,
    string_match: Option<Regex>,
}

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<HttpResponse, BuildError> {
    if cfg.urls.is_empty() {
        return Err(BuildError::at("urls", "no urls to check"));
    }
    if cfg.timeout.0.is_zero() {
        return Err(BuildError::at("timeout", "must be more than 0"));
    }
    if cfg.response_body_max_size.0 > MAX_KEEP {
        return Err(BuildError::at(
            "response_body_max_size",
            format!("at most {MAX_KEEP} bytes"),
        ));
    }
    let targets = cfg
        .urls
        .iter()
        .map(|u| Target::parse(u))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BuildError::at("urls", e))?;
    let method = Method::from_bytes(cfg.method.trim().to_ascii_uppercase().as_bytes()).map_err(
        |_| BuildError::at("method", format!("`{}` is not an HTTP method", cfg.method)),
    )?;
    let headers = cfg
        .headers
        .iter()
        .map(|(name, value)| {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| BuildError::at("headers", format!("header name `{name}` is not valid")))?;
            // The value may be a secret: the message names the header only.
            let v = HeaderValue::from_str(value.expose()).map_err(|_| {
                BuildError::at("headers", format!("the value of header `{name}` is not valid"))
            })?;
            Ok((n, v))
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    let string_match = match cfg.response_string_match.as_str() {
        "" => None,
        re => Some(Regex::new(re).map_err(|e| BuildError::at("response_string_match", e.to_string()))?),
    };
    // Fails on an unreadable `tls_ca` (the message names it and the file) or a TLS setup
    // problem of the build: the entry as a whole.
    let client = Client::new(&ClientOptions {
        timeout: cfg.timeout.0,
        follow_redirects: cfg.follow_redirects,
        insecure_skip_verify: cfg.insecure_skip_verify,
        tls_ca: cfg.tls_ca.as_deref(),
        keep_bytes: cfg.response_body_max_size.0 as usize,
    })?;
    if cfg.insecure_skip_verify {
        log::warn!("http_response: insecure_skip_verify is on: certificates are NOT checked");
    }
    Ok(HttpResponse {
        client,
        targets,
        spec: Arc::new(RequestSpec {
            method,
            headers,
            body: cfg.body.expose().as_bytes().to_vec(),
        }),
        expect_status: (cfg.response_status_code != 0).then_some(cfg.response_status_code),
        string_match,
    })
}

impl HttpResponse {
    fn emit(&self, target: &Target, result: &Result<Fetched, FetchError>, em: &mut Emitter) {
        let labels = [("url", target.shown.as_str())];
        let fetched = match result {
            Ok(f) => f,
            Err(e) => {
                em.gauge("http_response_result_code", &labels, e.result_code() as f64);
                em.partial_failure(InputError::new(format!("{}: {e}", target.shown)));
                return;
            }
        };
        em.gauge(
            "http_response_response_time",
            &labels,
            fetched.elapsed.as_secs_f64(),
        );
        em.gauge("http_response_status_code", &labels, fetched.status as f64);
        em.gauge(
            "http_response_content_length",
            &labels,
            fetched.length as f64,
        );
        if let Some(re) = &self.string_match {
            let found = re.is_match(&String::from_utf8_lossy(&fetched.head));
            em.gauge("http_response_string_match", &labels, found as u8 as f64);
        }
        if let Some(expected) = self.expect_status {
            let matched = fetched.status == expected;
            em.gauge(
                "http_response_status_code_match",
                &labels,
                matched as u8 as f64,
            );
        }
        match &fetched.cert_not_after {
            Some(Ok(not_after)) => {
                let left = *not_after as f64 - clock::now_ms() as f64 / 1000.0;
                em.gauge("http_response_cert_expiry", &labels, left.round());
            }
            Some(Err(e)) => em.partial_failure(InputError::new(format!(
                "{}: cannot read the certificate's expiry: {e}",
                target.shown
            ))),
            None => {}
        }
        em.gauge("http_response_result_code", &labels, 0.0);
    }
}

impl Input for HttpResponse {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(async move {
            let checks = self
                .targets
                .iter()
                .map(|t| self.client.fetch(t, &self.spec, t.is_https()));
            let results = join_all(checks).await;
            for (target, result) in self.targets.iter().zip(&results) {
                self.emit(target, result, em);
            }
            Ok(())
        })
    }
}

/// Polls all futures together until each has finished; outputs in input order.
async fn join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut running: Vec<Option<Pin<Box<F>>>> = futures.map(|f| Some(Box::pin(f))).collect();
    let mut done: Vec<Option<F::Output>> = running.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, out) in running.iter_mut().zip(done.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests;

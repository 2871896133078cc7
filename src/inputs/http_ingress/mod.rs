//! `http_ingress`: scripts and devices POST metrics to the agent (pollect's `HttpIngress`).
//! A bounded HTTP/1.1 server on the agent's executor (`common::http_server`); what a good
//! body holds is published at once through the input's [`Publisher`], stamped at the
//! input's interval boundary.

pub mod parse;

use crate::common::http_server::{self as http, read_head, read_to, same, within, Response, Stream};
use crate::config::range;
use crate::config::{BuildError, Dur, Secret, Size};
use crate::core::input::ListenFuture;
use crate::core::publish::{Published, Publisher};
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::BuildCtx;
use parse::Point;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::Duration;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Metrics POSTed by scripts and devices (pollect's HttpIngress): pollect's JSON
# ({\"metrics\": {\"name\": {\"value\": 1, \"labels\": {\"k\": \"v\"}}}}) or lines
# (`name{k=\"v\"} 1` or `name 1 k=v`); 204 when taken, 400 with the reason when not.
- http_ingress:
    port: 9300
    # listen: 0.0.0.0
    # token: secret:ingress/token     # clients send `Authorization: Bearer <token>`
    # max_body_size: 64KiB
    # Declared metrics: only these are taken, with these labels (each required);
    # a counter's posted value is added to its total, as pollect does.
    # Without any, every metric is taken as a gauge with the labels it brings.
    metrics: {}
    #  backup_duration_seconds: {type: gauge, labels: [job]}
    #  backups_done: {type: counter}
";

/// How a declared metric's posted values are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The value as posted.
    #[default]
    Gauge,
    /// The posted value is an increment of the metric's total (pollect's counters).
    Counter,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metric {
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Labels every post of the metric must give; others it gives are left out.
    pub labels: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The IP address to listen on.
    pub listen: String,
    #[serde(deserialize_with = "range::port")]
    pub port: u16,
    /// Only POSTs to this path; any path when unset (as pollect).
    pub path: Option<String>,
    pub token: Option<Secret>,
    #[serde(deserialize_with = "range::size::<_, 1, { 16 << 20 }>")]
    pub max_body_size: Size,
    #[serde(deserialize_with = "range::count::<_, 1, 1024>")]
    pub max_connections: usize,
    #[serde(deserialize_with = "range::timeout")]
    pub read_timeout: Dur,
    /// Distinct series (name and labels) whose counter totals are kept; a post that would
    /// add more is refused.
    #[serde(deserialize_with = "range::count::<_, 1, 1_000_000>")]
    pub max_series: usize,
    pub metrics: BTreeMap<String, Metric>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0".into(),
            port: 9300,
            path: None,
            token: None,
            max_body_size: Size(64 * 1024),
            max_connections: 8,
            read_timeout: Dur(Duration::from_secs(10)),
            max_series: 1000,
            metrics: BTreeMap::new(),
        }
    }
}

/// What the server needs from the config.
struct Settings {
    addr: SocketAddr,
    path: Option<String>,
    /// `Bearer <token>`, the Authorization header a post must carry.
    authorization: Option<String>,
    max_body: usize,
    max_connections: usize,
    read_timeout: Duration,
    max_series: usize,
    metrics: BTreeMap<String, Metric>,
}

pub fn build(cfg: &Config, _: &BuildCtx) -> Result<HttpIngress, BuildError> {
    // An address, not a name: resolving one would take smol's blocking pool, a thread.
    let ip: std::net::IpAddr = cfg.listen.parse().map_err(|_| {
        BuildError::at(
            "listen",
            format!("`{}` is not an IP address (0.0.0.0, ::, 127.0.0.1…)", cfg.listen),
        )
    })?;
    if let Some(p) = &cfg.path {
        if !p.starts_with('/') {
            return Err(BuildError::at("path", "must start with `/`"));
        }
    }
    if cfg.token.as_ref().is_some_and(|t| t.is_empty()) {
        return Err(BuildError::at("token", "must not be empty"));
    }
    for (name, metric) in &cfg.metrics {
        let mut probe = Vec::new();
        let line = format!("{name} 0");
        if parse::body(line.as_bytes(), false, &mut probe).is_err() {
            return Err(BuildError::at(
                "metrics",
                format!("`{name}` is not a metric name (A-Z a-z 0-9 _ . : -)"),
            ));
        }
        if metric.labels.len() > parse::MAX_LABELS {
            return Err(BuildError::at(
                "metrics",
                format!("`{name}`: at most {} labels", parse::MAX_LABELS),
            ));
        }
    }
    Ok(HttpIngress {
        settings: Rc::new(Settings {
            addr: SocketAddr::new(ip, cfg.port),
            path: cfg.path.clone(),
            authorization: cfg.token.as_ref().map(|t| format!("Bearer {}", t.expose())),
            max_body: cfg.max_body_size.0 as usize,
            max_connections: cfg.max_connections,
            read_timeout: cfg.read_timeout.0,
            max_series: cfg.max_series,
            metrics: cfg.metrics.clone(),
        }),
        state: Rc::new(RefCell::new(State::default())),
    })
}

/// Answers by status, for `collect`.
const STATUSES: [u16; 9] = [204, 400, 401, 404, 405, 411, 413, 503, 200];

#[derive(Default)]
struct State {
    /// `Err` while the port cannot be bound.
    listening: Option<Result<SocketAddr, String>>,
    answered: [u64; STATUSES.len()],
    samples: u64,
    /// Counter totals by series (`name\0k\0v…`).
    totals: HashMap<String, f64>,
    /// The body being taken apart (reused).
    points: Vec<Point>,
    /// Statuses already logged once.
    logged: [bool; STATUSES.len()],
}

impl State {
    fn note(&mut self, status: u16, why: &str) {
        let Some(i) = STATUSES.iter().position(|s| *s == status) else {
            return;
        };
        self.answered[i] += 1;
        if status >= 400 && !self.logged[i] {
            self.logged[i] = true;
            log::info!("http_ingress: answered {status} ({why}); counted in http_ingress_requests_total, not logged again");
        }
    }
}

pub struct HttpIngress {
    settings: Rc<Settings>,
    state: Rc<RefCell<State>>,
}

impl HttpIngress {
    /// The bound address once listening (tests bind port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.state.borrow().listening.clone()?.ok()
    }
}

impl Input for HttpIngress {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        let state = self.state.borrow();
        for (status, count) in STATUSES.iter().zip(state.answered) {
            if count > 0 {
                let code = status.to_string();
                em.counter("http_ingress_requests_total", &[("status", &code)], count as f64);
            }
        }
        em.counter("http_ingress_samples_total", &[], state.samples as f64);
        let result = match &state.listening {
            Some(Err(e)) => Err(InputError::new(format!("not listening: {e}"))),
            _ => Ok(()),
        };
        crate::core::ready(result)
    }

    fn listen_with(&mut self, publisher: Publisher) -> Option<ListenFuture> {
        Some(Box::pin(listen(
            self.settings.clone(),
            self.state.clone(),
            Rc::new(RefCell::new(publisher)),
        )))
    }
}

/// How long after a failed bind (port in use) the listener tries again.
const RETRY: Duration = Duration::from_secs(10);

async fn listen(settings: Rc<Settings>, state: Rc<RefCell<State>>, publisher: Rc<RefCell<Publisher>>) {
    loop {
        match smol::Async::<TcpListener>::bind(settings.addr) {
            Ok(listener) => {
                let at = listener.get_ref().local_addr().unwrap_or(settings.addr);
                log::info!("http_ingress: listening on http://{at}");
                state.borrow_mut().listening = Some(Ok(at));
                http::serve(listener, settings.max_connections, "input http_ingress", |stream| {
                    let c = Connection {
                        stream: Box::new(stream),
                        settings: settings.clone(),
                        state: state.clone(),
                        publisher: publisher.clone(),
                        buf: Vec::new(),
                    };
                    Box::pin(c.run())
                })
                .await;
            }
            Err(e) => {
                let text = format!("cannot listen on {}: {e}", settings.addr);
                state.borrow_mut().listening = Some(Err(text));
                smol::Timer::after(RETRY).await;
            }
        }
    }
}

struct Connection {
    stream: Box<dyn Stream>,
    settings: Rc<Settings>,
    state: Rc<RefCell<State>>,
    publisher: Rc<RefCell<Publisher>>,
    /// The request head and body as read.
    buf: Vec<u8>,
}

/// What to answer, and whether the connection can go on.
struct Answer {
    status: u16,
    body: String,
    close: bool,
}

impl Answer {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Answer {
            status,
            body: body.into(),
            close: false,
        }
    }

    fn closing(mut self) -> Self {
        self.close = true;
        self
    }
}

impl Connection {
    async fn run(mut self) {
        let timeout = self.settings.read_timeout;
        loop {
            let head_len = match within(timeout, read_head(&mut self.stream, &mut self.buf)).await {
                Some(Ok(Some(n))) => n,
                Some(Ok(None)) => {
                    let _ = self.reply(Answer::new(431, "request head too long\n").closing()).await;
                    return;
                }
                _ => return,
            };
            let answer = self.answer(head_len).await;
            let keep = self.reply(answer).await;
            if !keep {
                return;
            }
        }
    }

    /// Reads the body of the request whose head is `head_len` bytes long and answers it;
    /// the request is consumed from `buf`.
    async fn answer(&mut self, head_len: usize) -> Answer {
        let head = self.buf[..head_len].to_vec();
        let Some(req) = http::parse_head(&head) else {
            return Answer::new(400, "bad request head\n").closing();
        };
        let close = req.close;
        let body_start = head_len + 4;
        let refusal = self.refusal(&req);
        if let Some(answer) = refusal {
            // The body, if any, is not read: the connection cannot be reused.
            return answer.closing();
        }
        let len = req.content_length.unwrap_or(0) as usize;
        if req.method != "POST" {
            self.buf.drain(..body_start.min(self.buf.len()));
            let mut a = Answer::new(200, "alive\n");
            a.close = close || len > 0;
            return a;
        }
        if req.expect_continue && self.buf.len() < body_start + len {
            let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
            let sent = within(self.settings.read_timeout, futures_lite::AsyncWriteExt::write_all(&mut self.stream, interim)).await;
            if !matches!(sent, Some(Ok(()))) {
                return Answer::new(400, "").closing();
            }
        }
        let read = within(self.settings.read_timeout, read_to(&mut self.stream, &mut self.buf, body_start + len)).await;
        if !matches!(read, Some(Ok(()))) {
            return Answer::new(400, "the body did not arrive whole within read_timeout\n").closing();
        }
        let json = req.content_type.contains("json");
        let body: Vec<u8> = self.buf.drain(..body_start + len).skip(body_start).collect();
        let mut a = self.take(&body, json);
        a.close |= close;
        a
    }

    /// The answer to a request refused on its head alone.
    fn refusal(&self, req: &http::Request<'_>) -> Option<Answer> {
        let s = &self.settings;
        if let Some(want) = &s.authorization {
            if !req.authorization.is_some_and(|got| same(got.as_bytes(), want.as_bytes())) {
                return Some(Answer::new(401, "a bearer token is required\n"));
            }
        }
        if req.method != "POST" && req.method != "GET" && req.method != "HEAD" {
            return Some(Answer::new(405, "POST metrics here\n"));
        }
        if let Some(path) = &s.path {
            if req.path != path {
                return Some(Answer::new(404, format!("not found; POST metrics to {path}\n")));
            }
        }
        if req.chunked {
            return Some(Answer::new(411, "send a Content-Length, not a chunked body\n"));
        }
        if req.method == "POST" && req.content_length.is_none() {
            return Some(Answer::new(411, "a Content-Length is required\n"));
        }
        match req.content_length {
            Some(n) if n > s.max_body as u64 => Some(Answer::new(
                413,
                format!("the body is {n} bytes; at most {} are taken (max_body_size)\n", s.max_body),
            )),
            _ => None,
        }
    }

    /// Parses and publishes a body.
    fn take(&self, body: &[u8], json: bool) -> Answer {
        let mut state = self.state.borrow_mut();
        let mut points = std::mem::take(&mut state.points);
        let checked = parse::body(body, json, &mut points)
            .and_then(|()| self.check_declared(&mut points));
        // One series, one counter total, whatever order its labels were posted in.
        for p in &mut points {
            p.labels.sort_unstable();
        }
        let answer = match checked {
            Err(e) => Answer::new(400, format!("{e}\n")),
            Ok(()) => self.publish(&mut state, &points),
        };
        state.points = points;
        let why = answer.body.trim_end().to_string();
        state.note(answer.status, &why);
        answer
    }

    /// Holds the points to the declared metrics: known names, their labels present (and
    /// only those kept). Nothing to check when none are declared.
    fn check_declared(&self, points: &mut [Point]) -> Result<(), String> {
        let declared = &self.settings.metrics;
        if declared.is_empty() {
            return Ok(());
        }
        for p in points {
            let def = declared
                .get(&p.name)
                .ok_or_else(|| format!("metric `{}` is not declared in this input's `metrics`", p.name))?;
            if let Some(missing) = def.labels.iter().find(|l| !p.labels.iter().any(|(k, _)| k == *l)) {
                return Err(format!("metric `{}`: missing label `{missing}`", p.name));
            }
            p.labels.retain(|(k, _)| def.labels.contains(k));
        }
        Ok(())
    }

    fn kind(&self, name: &str) -> Kind {
        self.settings.metrics.get(name).map_or(Kind::Gauge, |m| m.kind)
    }

    /// Publishes the points; counters add to their totals, which change only when the
    /// publish is taken (a 503 is retried by the client and must not count twice).
    fn publish(&self, state: &mut State, points: &[Point]) -> Answer {
        let mut totals: Vec<(String, f64)> = Vec::new();
        for p in points.iter().filter(|p| self.kind(&p.name) == Kind::Counter) {
            let key = series_key(p);
            let before = match totals.iter().find(|(k, _)| *k == key) {
                Some((_, v)) => *v,
                None => match state.totals.get(&key) {
                    Some(v) => *v,
                    None if state.totals.len() + totals.len() >= self.settings.max_series => {
                        return Answer::new(
                            400,
                            format!("more than {} counter series (max_series)", self.settings.max_series),
                        );
                    }
                    None => 0.0,
                },
            };
            match totals.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = before + p.value,
                None => totals.push((key, before + p.value)),
            }
        }
        let outcome = self.publisher.borrow_mut().publish(|em| {
            let mut labels: [(&str, &str); parse::MAX_LABELS] = [("", ""); parse::MAX_LABELS];
            for p in points {
                for (slot, (k, v)) in labels.iter_mut().zip(&p.labels) {
                    *slot = (k, v);
                }
                let labels = &labels[..p.labels.len()];
                match self.kind(&p.name) {
                    Kind::Gauge => match p.ts_ms {
                        Some(ts) => em.gauge_at(&p.name, labels, p.value, ts),
                        None => em.gauge(&p.name, labels, p.value),
                    },
                    Kind::Counter => {
                        let key = series_key(p);
                        let total = totals.iter().find(|(k, _)| *k == key).map_or(0.0, |t| t.1);
                        em.counter(&p.name, labels, total);
                    }
                }
            }
        });
        match outcome {
            Published::Accepted(n) => {
                state.samples += n as u64;
                state.totals.extend(totals);
                Answer::new(204, "")
            }
            Published::QueueFull => Answer::new(503, "the agent's queues are full; try again later\n"),
        }
    }

    async fn reply(&mut self, a: Answer) -> bool {
        let extra = match a.status {
            401 => "WWW-Authenticate: Bearer\r\n",
            503 => "Retry-After: 10\r\n",
            _ => "",
        };
        let response = Response {
            status: a.status,
            content_type: "text/plain",
            body: a.body.as_bytes(),
            head_only: false,
            close: a.close,
            extra,
        };
        http::send(&mut self.stream, &response, self.settings.read_timeout).await
    }
}

fn series_key(p: &Point) -> String {
    let mut key = p.name.clone();
    for (k, v) in &p.labels {
        key.push('\0');
        key.push_str(k);
        key.push('\0');
        key.push_str(v);
    }
    key
}

#[cfg(test)]
mod tests;

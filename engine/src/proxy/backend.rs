//! The backend thread: every HTTP call to an application backend (the
//! Centrifugo-style proxies, the ws2api mode) runs here, on one tokio
//! current-thread runtime with a pooled keep-alive client per endpoint, so a
//! shard never waits on a backend. A shard hands a call over and awaits a
//! `Call` resolved by a mesh message; the shard serves everything else
//! meanwhile.
//!
//! Limits per endpoint: at most `max_in_flight` requests at once (so at
//! most that many connections to it), at most `max_queue` waiting behind
//! them (beyond: `Outcome::Overloaded` at once, without a request), and one
//! deadline for queueing and the request together (`timeout`). A request
//! the caller stopped waiting for keeps its slot until it ends (at most
//! `abandon_after`): a slow backend is not sent more work because it is
//! slow, and a call with almost no time left is not sent at all.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::hub::call::Call;
use crate::hub::mesh::{Mesh, MeshMsg};
use crate::hub::Hub;

/// One backend endpoint and its limits.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The name in config and in /metrics.
    pub name: String,
    pub url: String,
    pub timeout: Duration,
    /// Sent with every request (`static_http_headers`).
    pub static_headers: Vec<(String, String)>,
    pub max_in_flight: usize,
    pub max_queue: usize,
}

/// An HTTP method the proxies use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

/// One request to an endpoint.
pub struct Request {
    pub endpoint: usize,
    pub method: Method,
    /// Appended to the endpoint's URL (ws2api: the client id).
    pub suffix: Option<String>,
    /// Forwarded from the client (besides the endpoint's static ones).
    pub headers: Vec<(String, String)>,
    pub content_type: Option<&'static str>,
    pub body: Bytes,
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The backend answered (any status).
    Response { status: u16, body: Bytes },
    /// No answer within the endpoint's timeout (queueing included).
    Timeout,
    /// No connection, or it broke: the reason.
    Unreachable(String),
    /// Too many requests waiting for this endpoint already.
    Overloaded,
}

impl Outcome {
    /// The body of a 200 answer.
    pub fn ok_body(&self) -> Option<&Bytes> {
        match self {
            Outcome::Response { status: 200, body } => Some(body),
            _ => None,
        }
    }

    /// A short word for logs and the `result` label.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Response { status, .. } if (200..300).contains(status) => "ok",
            Outcome::Response { .. } => "status",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable(_) => "unreachable",
            Outcome::Overloaded => "overloaded",
        }
    }
}

/// Request duration buckets (seconds), for the Prometheus histogram.
pub const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// One endpoint's counters.
#[derive(Default)]
pub struct EndpointMetrics {
    /// By result: ok, status, timeout, unreachable, overloaded.
    pub results: [AtomicU64; 5],
    /// Waiting or in flight now.
    pub pending: AtomicUsize,
    pub buckets: [AtomicU64; BUCKETS.len()],
    pub count: AtomicU64,
    pub sum_us: AtomicU64,
    /// 200 answers the client layer could not use.
    pub malformed: AtomicU64,
}

pub const RESULT_LABELS: [&str; 5] = ["ok", "status", "timeout", "unreachable", "overloaded"];

impl EndpointMetrics {
    fn count(&self, o: &Outcome, took: Option<Duration>) {
        let i = RESULT_LABELS
            .iter()
            .position(|l| *l == o.label())
            .unwrap_or(0);
        self.results[i].fetch_add(1, Ordering::Relaxed);
        if let Some(t) = took {
            let s = t.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    self.buckets[i].fetch_add(1, Ordering::Relaxed);
                }
            }
            self.count.fetch_add(1, Ordering::Relaxed);
            self.sum_us
                .fetch_add(t.as_micros() as u64, Ordering::Relaxed);
        }
    }
}

/// What the shards and the backend thread share.
pub struct Backends {
    pub endpoints: Vec<Endpoint>,
    pub metrics: Vec<EndpointMetrics>,
    tx: mpsc::UnboundedSender<Job>,
}

struct Job {
    req: Request,
    shard: usize,
    call: u64,
}

impl Backends {
    /// Starts the backend thread; it pushes its answers to the shards as
    /// mesh source `src`.
    pub fn start(
        endpoints: Vec<Endpoint>,
        mesh: Arc<Mesh>,
        src: usize,
    ) -> anyhow::Result<Arc<Self>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let me = Arc::new(Backends {
            metrics: endpoints
                .iter()
                .map(|_| EndpointMetrics::default())
                .collect(),
            endpoints,
            tx,
        });
        let shared = me.clone();
        std::thread::Builder::new()
            .name("backends".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime for backend calls");
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, run(shared, mesh, src, rx));
            })?;
        Ok(me)
    }

    /// The endpoint named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.name == name)
    }

    /// Sends `req`; the answer arrives on this shard. A full queue answers
    /// `Overloaded` at once.
    pub fn call(&self, hub: &Rc<Hub>, req: Request) -> Call<Outcome> {
        let m = &self.metrics[req.endpoint];
        let e = &self.endpoints[req.endpoint];
        let (id, call) = hub.open_call::<Outcome>();
        if m.pending.fetch_add(1, Ordering::AcqRel) >= e.max_in_flight + e.max_queue {
            m.pending.fetch_sub(1, Ordering::AcqRel);
            m.count(&Outcome::Overloaded, None);
            hub.calls.resolve(id, Box::new(Outcome::Overloaded));
            return call;
        }
        let job = Job {
            req,
            shard: hub.shard,
            call: id,
        };
        if self.tx.send(job).is_err() {
            // The thread is gone (only at process exit).
            m.pending.fetch_sub(1, Ordering::AcqRel);
            let o = Outcome::Unreachable("backend thread stopped".into());
            hub.calls.resolve(id, Box::new(o));
        }
        call
    }
}

/// The thread's side: one client and one semaphore per endpoint, answers
/// batched per shard.
struct Thread {
    shared: Arc<Backends>,
    clients: Vec<reqwest::Client>,
    urls: Vec<reqwest::Url>,
    /// `http://` endpoints: the lean client (`plain.rs`).
    plain: Vec<Option<super::plain::PlainPool>>,
    permits: Vec<Arc<Semaphore>>,
    mesh: Arc<Mesh>,
    src: usize,
    out: RefCell<Vec<Vec<MeshMsg>>>,
    flush_scheduled: Cell<bool>,
}

async fn run(
    shared: Arc<Backends>,
    mesh: Arc<Mesh>,
    src: usize,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    let mut clients = Vec::new();
    let mut urls = Vec::new();
    let mut permits = Vec::new();
    let mut plain = Vec::new();
    for e in &shared.endpoints {
        let client = reqwest::Client::builder()
            .http1_only()
            // A request the caller gave up on runs on (holding its slot, so
            // a slow backend never gets more than max_in_flight requests at
            // once), but not forever.
            .timeout(abandon_after(e.timeout))
            .pool_max_idle_per_host(e.max_in_flight)
            .pool_idle_timeout(Duration::from_secs(90))
            .connect_timeout(e.timeout)
            .tcp_nodelay(true)
            .build()
            .expect("an HTTP client (TLS roots)");
        clients.push(client);
        let url = reqwest::Url::parse(&e.url).expect("endpoint URLs are checked at load");
        plain.push(super::plain::PlainPool::new(&url, e.timeout));
        urls.push(url);
        permits.push(Arc::new(Semaphore::new(e.max_in_flight.max(1))));
    }
    let t = Rc::new(Thread {
        out: RefCell::new((0..mesh.shards()).map(|_| Vec::new()).collect()),
        shared,
        clients,
        urls,
        plain,
        permits,
        mesh,
        src,
        flush_scheduled: Cell::new(false),
    });
    while let Some(job) = rx.recv().await {
        tokio::task::spawn_local(t.clone().perform(job));
    }
}

impl Thread {
    async fn perform(self: Rc<Self>, job: Job) {
        let Job { req, shard, call } = job;
        let i = req.endpoint;
        let e = &self.shared.endpoints[i];
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + e.timeout);
        let outcome = self.run_within(req, deadline, e.timeout).await;
        let m = &self.shared.metrics[i];
        m.pending.fetch_sub(1, Ordering::AcqRel);
        m.count(&outcome, Some(started.elapsed()));
        if let Outcome::Unreachable(why) = &outcome {
            tracing::debug!(endpoint = %e.name, %why, "backend unreachable");
        }
        self.answer(shard, call, outcome);
    }

    /// Waits for a slot, sends, and answers by `deadline`. A request that
    /// has been sent keeps its slot until it ends, even past the deadline:
    /// giving the slot to the next request would put more load on a
    /// backend that is already slow (and open another connection to it).
    async fn run_within(
        self: &Rc<Self>,
        req: Request,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Outcome {
        let i = req.endpoint;
        let permit = match tokio::time::timeout_at(
            deadline,
            self.permits[i].clone().acquire_owned(),
        )
        .await
        {
            Ok(p) => p.expect("never closed"),
            Err(_) => return Outcome::Timeout,
        };
        // Too little time left to be answered: not worth a request (a queue
        // of calls running out together would otherwise each open and drop
        // a connection).
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left < (timeout / 10).min(Duration::from_millis(100)) {
            return Outcome::Timeout;
        }
        let (tx, rx) = oneshot::channel();
        let me = self.clone();
        tokio::task::spawn_local(async move {
            let o = me.request(req).await;
            drop(permit);
            let _ = tx.send(o);
        });
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(o)) => o,
            Ok(Err(_)) => Outcome::Unreachable("request dropped".into()),
            Err(_) => Outcome::Timeout,
        }
    }

    async fn request(&self, req: Request) -> Outcome {
        let i = req.endpoint;
        let e = &self.shared.endpoints[i];
        if let Some(pool) = &self.plain[i] {
            let headers = req.headers_with(&e.static_headers);
            let sent = pool.request(
                req.method,
                req.suffix.as_deref(),
                &headers,
                req.content_type,
                req.body,
            );
            return match tokio::time::timeout(abandon_after(e.timeout), sent).await {
                Ok(o) => o,
                Err(_) => Outcome::Timeout,
            };
        }
        let url = match &req.suffix {
            None => self.urls[i].clone(),
            Some(s) => match reqwest::Url::parse(&format!("{}{s}", e.url)) {
                Ok(u) => u,
                Err(err) => return Outcome::Unreachable(format!("bad URL: {err}")),
            },
        };
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut b = self.clients[i].request(method, url);
        for (k, v) in e.static_headers.iter().chain(req.headers.iter()) {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some(ct) = req.content_type {
            b = b.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if !req.body.is_empty() || req.method == Method::Post {
            b = b.body(req.body);
        }
        let resp = match b.send().await {
            Ok(r) => r,
            Err(err) => return Outcome::Unreachable(error_chain(&err)),
        };
        let status = resp.status().as_u16();
        match resp.bytes().await {
            Ok(body) => Outcome::Response { status, body },
            Err(err) => Outcome::Unreachable(error_chain(&err)),
        }
    }

    /// Queues the answer for its shard; what this turn queues leaves as one
    /// batch per shard once the tasks ready now have run.
    fn answer(self: &Rc<Self>, shard: usize, call: u64, o: Outcome) {
        let job = MeshMsg::Run(Box::new(move |hub: &Hub| {
            hub.calls.resolve(call, Box::new(o))
        }));
        self.out.borrow_mut()[shard].push(job);
        if !self.flush_scheduled.replace(true) {
            let t = self.clone();
            tokio::task::spawn_local(async move { t.flush() });
        }
    }

    fn flush(&self) {
        self.flush_scheduled.set(false);
        let mut out = self.out.borrow_mut();
        for (dst, batch) in out.iter_mut().enumerate() {
            if !batch.is_empty() {
                self.mesh.push(self.src, dst, std::mem::take(batch));
            }
        }
    }
}

/// How long a request may run at all (the caller's answer comes at its
/// timeout; the request itself is abandoned here).
fn abandon_after(timeout: Duration) -> Duration {
    (timeout * 3).max(Duration::from_secs(5))
}

impl Request {
    /// The endpoint's static headers, then the forwarded ones.
    fn headers_with(&self, statics: &[(String, String)]) -> Vec<(String, String)> {
        if statics.is_empty() {
            return self.headers.clone();
        }
        statics.iter().chain(self.headers.iter()).cloned().collect()
    }
}

/// An error with its causes ("connection refused" is a few levels down).
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl Backends {
    /// The endpoints' counters in Prometheus text (`prefix`: the metric
    /// family prefix, e.g. `ringcast_proxy`).
    pub fn render_metrics(&self, prefix: &str, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# HELP {prefix}_requests_total Calls to application backends, by endpoint and result \
             (ok: 2xx; status: another status; timeout; unreachable; overloaded: refused at once, queue full).\n\
             # TYPE {prefix}_requests_total counter"
        );
        for (e, m) in self.endpoints.iter().zip(&self.metrics) {
            for (i, label) in RESULT_LABELS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{prefix}_requests_total{{proxy=\"{}\",result=\"{label}\"}} {}",
                    e.name,
                    m.results[i].load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP {prefix}_answers_unusable_total 200 answers that were not the protocol's (the client got error 100).\n\
             # TYPE {prefix}_answers_unusable_total counter"
        );
        for (e, m) in self.endpoints.iter().zip(&self.metrics) {
            let _ = writeln!(
                out,
                "{prefix}_answers_unusable_total{{proxy=\"{}\"}} {}",
                e.name,
                m.malformed.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP {prefix}_pending Calls waiting for a connection or in flight now.\n# TYPE {prefix}_pending gauge"
        );
        for (e, m) in self.endpoints.iter().zip(&self.metrics) {
            let _ = writeln!(
                out,
                "{prefix}_pending{{proxy=\"{}\"}} {}",
                e.name,
                m.pending.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP {prefix}_request_seconds Call duration, queueing included.\n# TYPE {prefix}_request_seconds histogram"
        );
        for (e, m) in self.endpoints.iter().zip(&self.metrics) {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{prefix}_request_seconds_bucket{{proxy=\"{}\",le=\"{b}\"}} {}",
                    e.name,
                    m.buckets[i].load(Ordering::Relaxed)
                );
            }
            let count = m.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{prefix}_request_seconds_bucket{{proxy=\"{}\",le=\"+Inf\"}} {count}",
                e.name
            );
            let _ = writeln!(
                out,
                "{prefix}_request_seconds_sum{{proxy=\"{}\"}} {}",
                e.name,
                m.sum_us.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "{prefix}_request_seconds_count{{proxy=\"{}\"}} {count}",
                e.name
            );
        }
    }
}

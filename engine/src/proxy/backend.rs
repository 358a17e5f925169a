//! The backend thread: every HTTP call to an application backend (the
//! Centrifugo-style proxies, the ws2api mode) runs here, on one tokio
//! current-thread runtime with a pooled keep-alive client per endpoint, so a
//! shard never waits on a backend. A shard hands a call over and awaits a
//! `Call` resolved by a mesh message, or, for a call nobody awaits
//! (`Backends::send`), a hook gets the outcome here. The shard serves
//! everything else meanwhile.
//!
//! Per endpoint, calls wait in a FIFO queue of small records (`Job`: who
//! gets the outcome, the method, the URL suffix, the body; about a hundred
//! bytes), and at most `max_in_flight` worker tasks take them from its
//! front, one request at a time each, so at most that many connections go
//! to the endpoint. A queued call is its record, not a task: 15,000 clients
//! closing at once queue 15,000 records, and workers exist only while there
//! is work. Calls start in the order they were handed over.
//!
//! Limits per endpoint: `max_in_flight` as above; at most `max_queue`
//! waiting behind them (beyond: `Outcome::Overloaded` at once, without a
//! request); one deadline for queueing and the request together (`timeout`,
//! from the hand-over). A request the caller stopped waiting for keeps its
//! worker until it ends (at most `abandon_after`): a slow backend is not
//! sent more work because it is slow, and a call with almost no time left is
//! not sent at all.
//!
//! On shutdown (`drain`, once the shards have stopped) the thread takes no
//! new calls and finishes the queued and running ones, up to a deadline; it
//! logs how many it could not deliver by then.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, Notify};

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

use super::outcome::error_chain;
pub use super::outcome::{Method, Outcome};

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

/// What gets the outcome of a call nobody awaits (`Backends::send`): the
/// request's URL suffix and the outcome. It runs on the backends thread (or
/// on the caller's, for a call refused at once).
pub type Hook = dyn Fn(Option<&str>, &Outcome) + Send + Sync;

/// What the shards and the backend thread share.
pub struct Backends {
    pub endpoints: Vec<Endpoint>,
    pub metrics: Vec<EndpointMetrics>,
    tx: mpsc::UnboundedSender<Job>,
    /// The thread, and the order that makes it drain and end (`drain`).
    control: Mutex<Option<(std::thread::JoinHandle<()>, oneshot::Sender<Instant>)>>,
}

/// Who gets a call's outcome.
enum Reply {
    /// The `Call` numbered `call` on shard `shard`.
    Call { shard: u32, call: u64 },
    /// Nobody awaits it: this runs with the outcome.
    Hook(Arc<Hook>),
}

/// One call, as it waits in its endpoint's queue. Kept small: a burst of
/// calls costs one of these each (104 bytes, plus the suffix's and the
/// body's own bytes).
struct Job {
    reply: Reply,
    /// When it was handed over: the deadline is this plus the timeout.
    queued: Instant,
    endpoint: u32,
    method: Method,
    suffix: Option<Box<str>>,
    body: Bytes,
    /// Forwarded headers and the content type, when there are any.
    extra: Option<Box<Extra>>,
}

struct Extra {
    headers: Vec<(String, String)>,
    content_type: Option<&'static str>,
}

impl Job {
    fn new(req: Request, reply: Reply) -> Self {
        let extra = (!req.headers.is_empty() || req.content_type.is_some()).then(|| {
            Box::new(Extra {
                headers: req.headers,
                content_type: req.content_type,
            })
        });
        Job {
            reply,
            queued: Instant::now(),
            endpoint: req.endpoint as u32,
            method: req.method,
            suffix: req.suffix.map(String::into_boxed_str),
            body: req.body,
            extra,
        }
    }
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
        let (drain_tx, drain_rx) = oneshot::channel();
        let me = Arc::new(Backends {
            metrics: endpoints
                .iter()
                .map(|_| EndpointMetrics::default())
                .collect(),
            endpoints,
            tx,
            control: Mutex::new(None),
        });
        let shared = me.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("backends".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime for backend calls");
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, run(shared, mesh, src, rx, drain_rx, ready_tx));
            })?;
        // A call's deadline runs from its hand-over: the first calls must not
        // wait for the HTTP clients to be built (TLS roots; slow in a debug
        // build), so nothing is handed over before they are.
        ready_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the backends thread failed to start"))?;
        *me.control.lock().unwrap_or_else(|e| e.into_inner()) = Some((thread, drain_tx));
        Ok(me)
    }

    /// The endpoint named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.name == name)
    }

    /// Sends `req`; the answer arrives on this shard. A full queue answers
    /// `Overloaded` at once.
    pub fn call(&self, hub: &Rc<Hub>, req: Request) -> Call<Outcome> {
        let (id, call) = hub.open_call::<Outcome>();
        let reply = Reply::Call {
            shard: hub.shard as u32,
            call: id,
        };
        self.submit(req, reply, |_, o| hub.calls.resolve(id, Box::new(o)));
        call
    }

    /// Sends `req` with nobody awaiting the answer: `hook` gets the outcome
    /// (a full queue: `Overloaded`, at once, here). The shard keeps nothing
    /// for it.
    pub fn send(&self, req: Request, hook: &Arc<Hook>) {
        self.submit(req, Reply::Hook(hook.clone()), |job, o| {
            hook(job.suffix.as_deref(), &o)
        });
    }

    /// Hands `req` to the thread, or gives it to `refused` with the outcome
    /// it gets at once.
    fn submit(&self, req: Request, reply: Reply, refused: impl FnOnce(Job, Outcome)) {
        let m = &self.metrics[req.endpoint];
        let e = &self.endpoints[req.endpoint];
        let job = Job::new(req, reply);
        if m.pending.fetch_add(1, Ordering::AcqRel) >= e.max_in_flight + e.max_queue {
            m.pending.fetch_sub(1, Ordering::AcqRel);
            m.count(&Outcome::Overloaded, None);
            return refused(job, Outcome::Overloaded);
        }
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job) {
            // The thread has drained and stopped (shutdown).
            m.pending.fetch_sub(1, Ordering::AcqRel);
            refused(job, Outcome::Unreachable("backend thread stopped".into()));
        }
    }

    /// Shutdown, once the shards have stopped: the thread takes no more
    /// calls, finishes the queued and running ones until `deadline`, logs
    /// what it could not deliver by then, and ends. Returns once it has
    /// ended; later calls return at once.
    ///
    /// Queued `GET`s are dropped, not sent: a GET asks (ws2api's connect),
    /// and whoever asked is gone; the backend would count a connection that
    /// never gets its `DELETE`. Everything else is sent (ws2api: the
    /// messages clients sent, and their closes).
    pub fn drain(&self, deadline: Instant) {
        let control = self
            .control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((thread, order)) = control {
            if order.send(deadline).is_ok() {
                let _ = thread.join();
            }
        }
    }
}

/// The thread's side: one client and one queue per endpoint, answers
/// batched per shard.
struct Thread {
    shared: Arc<Backends>,
    clients: Vec<reqwest::Client>,
    urls: Vec<reqwest::Url>,
    /// `http://` endpoints: the lean client (`plain.rs`).
    plain: Vec<Option<super::plain::PlainPool>>,
    lanes: Vec<Lane>,
    /// Requests out now, over all endpoints (a worker from sending to the
    /// end of its request, abandoned ones included).
    in_flight: Cell<usize>,
    /// Set by `drain`: progress is signalled on `progress`.
    draining: Cell<bool>,
    progress: Notify,
    mesh: Arc<Mesh>,
    src: usize,
    out: RefCell<Vec<Vec<MeshMsg>>>,
    flush_scheduled: Cell<bool>,
}

/// One endpoint's queue and the tasks working on it.
#[derive(Default)]
struct Lane {
    queue: RefCell<VecDeque<Job>>,
    /// Worker tasks running (at most `max_in_flight`).
    workers: Cell<usize>,
    /// The task that times out queued calls while every worker is busy.
    sweeping: Cell<bool>,
}

/// A queue emptied after a burst keeps at most this much room.
const QUEUE_KEPT: usize = 1024;

async fn run(
    shared: Arc<Backends>,
    mesh: Arc<Mesh>,
    src: usize,
    mut rx: mpsc::UnboundedReceiver<Job>,
    mut drain: oneshot::Receiver<Instant>,
    ready: std::sync::mpsc::SyncSender<()>,
) {
    let mut clients = Vec::new();
    let mut urls = Vec::new();
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
    }
    let t = Rc::new(Thread {
        out: RefCell::new((0..mesh.shards()).map(|_| Vec::new()).collect()),
        lanes: shared.endpoints.iter().map(|_| Lane::default()).collect(),
        shared,
        clients,
        urls,
        plain,
        in_flight: Cell::new(0),
        draining: Cell::new(false),
        progress: Notify::new(),
        mesh,
        src,
        flush_scheduled: Cell::new(false),
    });
    if t.plain.iter().any(Option::is_some) {
        tokio::task::spawn_local(reap_idle(Rc::downgrade(&t)));
    }
    let _ = ready.send(());
    let deadline = loop {
        tokio::select! {
            job = rx.recv() => match job {
                Some(job) => t.enqueue(job),
                // Every sender is gone: the process is ending.
                None => return,
            },
            order = &mut drain => match order {
                Ok(deadline) => break deadline,
                Err(_) => return,
            },
        }
    };
    // Shutdown: no more calls; what was handed over before still counts.
    rx.close();
    while let Ok(job) = rx.try_recv() {
        t.enqueue(job);
    }
    let dropped = t.drop_queued_gets();
    t.draining.set(true);
    let (queued, in_flight) = t.pending();
    tracing::info!(
        queued,
        in_flight,
        dropped_connects = dropped,
        "backends: draining"
    );
    let deadline = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
    tokio::pin!(deadline);
    loop {
        let (queued, in_flight) = t.pending();
        if queued + in_flight == 0 {
            tracing::info!(undelivered = 0, "backend calls drained");
            return;
        }
        tokio::select! {
            _ = t.progress.notified() => {}
            _ = &mut deadline => {
                let (queued, in_flight) = t.pending();
                tracing::warn!(
                    undelivered = queued + in_flight,
                    queued,
                    in_flight,
                    "backend calls not delivered by the shutdown deadline"
                );
                return;
            }
        }
    }
}

/// Pooled backend connections closed by one look that make a heap trim
/// worth asking for (each held ~27 KB).
const TRIM_AFTER_REAPED: usize = 32;
/// ... unless the process trimmed this recently.
const TRIM_GAP: Duration = Duration::from_secs(1);

/// Closes pooled backend connections idle for longer than
/// `plain::IDLE_TIMEOUT`, looking twice per timeout, while the thread runs.
/// After a burst (many closed at once) it asks for a heap trim, as the
/// shards do after a burst of client connections, so that the memory those
/// connections held goes back to the OS.
async fn reap_idle(t: std::rc::Weak<Thread>) {
    let mut trim_wanted = false;
    loop {
        tokio::time::sleep(super::plain::IDLE_TIMEOUT / 2).await;
        let Some(t) = t.upgrade() else { return };
        let now = Instant::now();
        let closed: usize = t.plain.iter().flatten().map(|p| p.reap(now)).sum();
        if closed > 0 {
            tracing::debug!(closed, "idle backend connections closed");
        }
        // Not in the look that closed them: a connection's buffers are
        // freed when its task has seen the pool let go of it and ended.
        let why = "idle backend connections closed";
        if trim_wanted && closed == 0 && crate::shard::trim::trim_unless_recent(now, TRIM_GAP, why)
        {
            trim_wanted = false;
        }
        trim_wanted |= closed >= TRIM_AFTER_REAPED;
    }
}

impl Thread {
    /// Queues `job` and starts a worker for it if its endpoint has fewer than
    /// `max_in_flight`; otherwise makes sure queued calls time out.
    fn enqueue(self: &Rc<Self>, job: Job) {
        let i = job.endpoint as usize;
        let lane = &self.lanes[i];
        lane.queue.borrow_mut().push_back(job);
        if lane.workers.get() < self.shared.endpoints[i].max_in_flight.max(1) {
            lane.workers.set(lane.workers.get() + 1);
            tokio::task::spawn_local(self.clone().work(i));
        } else if !lane.sweeping.replace(true) {
            tokio::task::spawn_local(self.clone().sweep(i));
        }
    }

    /// Calls queued (over all endpoints) and requests out.
    fn pending(&self) -> (usize, usize) {
        let queued = self.lanes.iter().map(|l| l.queue.borrow().len()).sum();
        (queued, self.in_flight.get())
    }

    /// Drops the queued GETs (see `Backends::drain`); how many.
    fn drop_queued_gets(self: &Rc<Self>) -> usize {
        let mut n = 0;
        for (i, lane) in self.lanes.iter().enumerate() {
            let gets: Vec<Job> = {
                let mut q = lane.queue.borrow_mut();
                let (gets, rest): (VecDeque<Job>, VecDeque<Job>) =
                    q.drain(..).partition(|j| j.method == Method::Get);
                *q = rest;
                gets.into()
            };
            n += gets.len();
            for j in gets {
                let o = Outcome::Unreachable("shutting down".into());
                self.finish(i, j.reply, j.suffix.as_deref(), o, j.queued);
            }
        }
        n
    }

    /// A worker: takes calls from the front of endpoint `i`'s queue, one
    /// request at a time, until the queue is empty.
    async fn work(self: Rc<Self>, i: usize) {
        let e = &self.shared.endpoints[i];
        let lane = &self.lanes[i];
        let min_left = min_left(e.timeout);
        loop {
            let job = {
                let mut q = lane.queue.borrow_mut();
                let job = q.pop_front();
                if job.is_none() && q.capacity() > QUEUE_KEPT {
                    // The burst is over: its room goes back.
                    *q = VecDeque::new();
                }
                job
            };
            let Some(job) = job else { break };
            let Job {
                reply,
                queued,
                method,
                suffix,
                body,
                extra,
                ..
            } = job;
            let deadline = queued + e.timeout;
            // Too little time left to be answered: not worth a request (a
            // queue of calls running out together would otherwise each open
            // and drop a connection).
            if deadline.saturating_duration_since(Instant::now()) < min_left {
                self.finish(i, reply, suffix.as_deref(), Outcome::Timeout, queued);
                continue;
            }
            self.in_flight.set(self.in_flight.get() + 1);
            let sent = self.request(i, method, suffix.as_deref(), extra.as_deref(), body);
            tokio::pin!(sent);
            let deadline = tokio::time::Instant::from_std(deadline);
            match tokio::time::timeout_at(deadline, &mut sent).await {
                Ok(o) => self.finish(i, reply, suffix.as_deref(), o, queued),
                Err(_) => {
                    self.finish(i, reply, suffix.as_deref(), Outcome::Timeout, queued);
                    // The request keeps this worker until it ends: giving
                    // the slot to the next call would put more load on a
                    // backend that is already slow (and open another
                    // connection to it).
                    let _ = sent.await;
                }
            }
            self.in_flight.set(self.in_flight.get() - 1);
            self.progressed();
        }
        lane.workers.set(lane.workers.get() - 1);
    }

    /// While every worker of endpoint `i` is busy: answers `Timeout` to each
    /// queued call whose time runs out before a worker would take it. The
    /// queue is in deadline order (one timeout per endpoint, calls in the
    /// order handed over, up to the channel's latency between shards), so
    /// only its front is watched.
    async fn sweep(self: Rc<Self>, i: usize) {
        let e = &self.shared.endpoints[i];
        let lane = &self.lanes[i];
        let min_left = min_left(e.timeout);
        loop {
            let front = lane.queue.borrow().front().map(|j| j.queued + e.timeout);
            let Some(deadline) = front else { break };
            // A worker would not send it past this point either.
            let expires = deadline.checked_sub(min_left).unwrap_or(deadline);
            if Instant::now() < expires {
                tokio::time::sleep_until(tokio::time::Instant::from_std(expires)).await;
                continue;
            }
            let job = lane.queue.borrow_mut().pop_front();
            if let Some(j) = job {
                self.finish(i, j.reply, j.suffix.as_deref(), Outcome::Timeout, j.queued);
                self.progressed();
            }
        }
        lane.sweeping.set(false);
    }

    /// A call of endpoint `i` has its outcome: counted, and to whoever gets it.
    fn finish(
        self: &Rc<Self>,
        i: usize,
        reply: Reply,
        suffix: Option<&str>,
        o: Outcome,
        queued: Instant,
    ) {
        let e = &self.shared.endpoints[i];
        let m = &self.shared.metrics[i];
        m.pending.fetch_sub(1, Ordering::AcqRel);
        m.count(&o, Some(queued.elapsed()));
        if let Outcome::Unreachable(why) = &o {
            tracing::debug!(endpoint = %e.name, %why, "backend unreachable");
        }
        match reply {
            Reply::Call { shard, call } => self.answer(shard as usize, call, o),
            Reply::Hook(hook) => hook(suffix, &o),
        }
    }

    /// During the drain: wakes it to look again.
    fn progressed(&self) {
        if self.draining.get() {
            self.progress.notify_one();
        }
    }

    async fn request(
        &self,
        i: usize,
        method: Method,
        suffix: Option<&str>,
        extra: Option<&Extra>,
        body: Bytes,
    ) -> Outcome {
        let e = &self.shared.endpoints[i];
        let (headers, content_type) = match extra {
            Some(x) => (&x.headers[..], x.content_type),
            None => (&[][..], None),
        };
        if let Some(pool) = &self.plain[i] {
            // The endpoint's static headers, then the forwarded ones.
            let headers: Cow<'_, [(String, String)]> = if e.static_headers.is_empty() {
                Cow::Borrowed(headers)
            } else {
                Cow::Owned(e.static_headers.iter().chain(headers).cloned().collect())
            };
            let sent = pool.request(method, suffix, &headers, content_type, body);
            return match tokio::time::timeout(abandon_after(e.timeout), sent).await {
                Ok(o) => o,
                Err(_) => Outcome::Timeout,
            };
        }
        let url = match suffix {
            None => self.urls[i].clone(),
            Some(s) => match reqwest::Url::parse(&format!("{}{s}", e.url)) {
                Ok(u) => u,
                Err(err) => return Outcome::Unreachable(format!("bad URL: {err}")),
            },
        };
        let m = match method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut b = self.clients[i].request(m, url);
        for (k, v) in e.static_headers.iter().chain(headers.iter()) {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some(ct) = content_type {
            b = b.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if !body.is_empty() || method == Method::Post {
            b = b.body(body);
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

/// A call with less time left than this is not sent.
fn min_left(timeout: Duration) -> Duration {
    (timeout / 10).min(Duration::from_millis(100))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::AtomicBool;

    /// A real HTTP/1.1 backend on a loopback port: one thread per
    /// connection, keep-alive; every request's line and body is recorded as
    /// it arrives, then answered `ok` after `delay` (or never, while `hang`).
    struct Backend {
        addr: String,
        seen: Arc<Mutex<Vec<String>>>,
        open: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
        hang: Arc<AtomicBool>,
    }

    fn backend(delay: Duration) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = Backend {
            addr: listener.local_addr().unwrap().to_string(),
            seen: Arc::default(),
            open: Arc::default(),
            peak: Arc::default(),
            hang: Arc::default(),
        };
        let (seen, open, peak, hang) = (
            b.seen.clone(),
            b.open.clone(),
            b.peak.clone(),
            b.hang.clone(),
        );
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(s) = s else { return };
                let (seen, open, peak, hang) =
                    (seen.clone(), open.clone(), peak.clone(), hang.clone());
                std::thread::spawn(move || {
                    let n = open.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    let mut w = s.try_clone().unwrap();
                    let mut r = BufReader::new(s);
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        let mut len = 0;
                        loop {
                            let mut h = String::new();
                            r.read_line(&mut h).unwrap();
                            if h == "\r\n" {
                                break;
                            }
                            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                len = v.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; len];
                        r.read_exact(&mut body).unwrap();
                        seen.lock().unwrap().push(format!(
                            "{} {}",
                            line.trim_end(),
                            String::from_utf8_lossy(&body)
                        ));
                        while hang.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        std::thread::sleep(delay);
                        if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .is_err()
                        {
                            break;
                        }
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        b
    }

    fn start(b: &Backend, timeout: Duration, max_in_flight: usize) -> Arc<Backends> {
        let e = Endpoint {
            name: "t".into(),
            url: format!("http://{}/x/", b.addr),
            timeout,
            static_headers: Vec::new(),
            max_in_flight,
            max_queue: 1000,
        };
        Backends::start(vec![e], Mesh::with_external(1, 1), 1).unwrap()
    }

    fn delete(id: usize) -> Request {
        Request {
            endpoint: 0,
            method: Method::Delete,
            suffix: Some(format!("c{id}")),
            headers: Vec::new(),
            content_type: None,
            body: Bytes::from(format!("bye {id}")),
        }
    }

    /// Outcomes as hooks see them: (suffix, label, when).
    type Seen = Arc<Mutex<Vec<(String, &'static str, Instant)>>>;

    fn hook() -> (Arc<Hook>, Seen) {
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let h: Arc<Hook> = Arc::new(move |suffix: Option<&str>, o: &Outcome| {
            s.lock()
                .unwrap()
                .push((suffix.unwrap_or("").to_string(), o.label(), Instant::now()));
        });
        (h, seen)
    }

    fn wait_until(what: &str, ms: u64, f: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_millis(ms);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_queued_call_is_a_small_record() {
        // The point of the queue: a burst costs about this much per call
        // (plus the suffix and body bytes), not a task and a timer.
        assert!(
            std::mem::size_of::<Job>() <= 104,
            "{}",
            std::mem::size_of::<Job>()
        );
    }

    #[test]
    fn queued_calls_start_in_order_over_at_most_max_in_flight_connections() {
        let b = backend(Duration::from_millis(2));
        let backends = start(&b, Duration::from_secs(10), 1);
        let (h, seen) = hook();
        for i in 0..50 {
            backends.send(delete(i), &h);
        }
        wait_until("50 answers", 10_000, || seen.lock().unwrap().len() == 50);
        let want: Vec<String> = (0..50)
            .map(|i| format!("DELETE /x/c{i} HTTP/1.1 bye {i}"))
            .collect();
        assert_eq!(
            *b.seen.lock().unwrap(),
            want,
            "one connection: in the order handed over"
        );
        assert!(seen.lock().unwrap().iter().all(|(_, l, _)| *l == "ok"));
        assert_eq!(b.peak.load(Ordering::SeqCst), 1);
        assert_eq!(backends.metrics[0].pending.load(Ordering::SeqCst), 0);

        let b = backend(Duration::from_millis(2));
        let backends = start(&b, Duration::from_secs(10), 4);
        let (h, seen) = hook();
        for i in 0..200 {
            backends.send(delete(i), &h);
        }
        wait_until("200 answers", 10_000, || seen.lock().unwrap().len() == 200);
        assert!(
            b.peak.load(Ordering::SeqCst) <= 4,
            "peak {}",
            b.peak.load(Ordering::SeqCst)
        );
    }

    #[test]
    fn pooled_connections_idle_past_the_timeout_are_closed() {
        let b = backend(Duration::from_millis(2));
        let backends = start(&b, Duration::from_secs(10), 4);
        let (h, seen) = hook();
        for i in 0..100 {
            backends.send(delete(i), &h);
        }
        wait_until("100 answers", 10_000, || seen.lock().unwrap().len() == 100);
        let answered = Instant::now();
        assert_eq!(b.open.load(Ordering::SeqCst), 4, "kept alive in the pool");
        wait_until("the idle pool closed", 10_000, || {
            b.open.load(Ordering::SeqCst) == 0
        });
        assert!(
            answered.elapsed() + Duration::from_millis(100) >= super::super::plain::IDLE_TIMEOUT,
            "closed after {:?}, before the idle timeout",
            answered.elapsed()
        );
        // The next call opens a new connection.
        backends.send(delete(100), &h);
        wait_until("one more answer", 10_000, || {
            seen.lock().unwrap().len() == 101
        });
        assert!(seen.lock().unwrap().iter().all(|(_, l, _)| *l == "ok"));
        assert_eq!(b.open.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn queued_calls_time_out_at_their_deadline_while_every_worker_is_stuck() {
        let b = backend(Duration::ZERO);
        b.hang.store(true, Ordering::SeqCst);
        let backends = start(&b, Duration::from_millis(300), 1);
        let (h, seen) = hook();
        let t0 = Instant::now();
        for i in 0..5 {
            backends.send(delete(i), &h);
        }
        wait_until("5 outcomes", 3000, || seen.lock().unwrap().len() == 5);
        let seen = seen.lock().unwrap();
        assert!(seen.iter().all(|(_, l, _)| *l == "timeout"), "{seen:?}");
        // By the 300 ms deadline (less the 30 ms a call needs at least), not
        // when the stuck request gives up (abandon_after: 5 s).
        let last = seen.iter().map(|(_, _, t)| *t - t0).max().unwrap();
        assert!(last < Duration::from_millis(1000), "{last:?}");
        assert_eq!(
            b.seen.lock().unwrap().len(),
            1,
            "the queued ones were not sent"
        );
        b.hang.store(false, Ordering::SeqCst);
    }

    #[test]
    fn drain_sends_what_is_queued_then_the_thread_ends() {
        let b = backend(Duration::from_millis(20));
        let backends = start(&b, Duration::from_secs(10), 2);
        let (h, seen) = hook();
        for i in 0..20 {
            backends.send(delete(i), &h);
        }
        // 20 calls at 2 at once take about 200 ms: most are queued now.
        assert!(b.seen.lock().unwrap().len() < 20);
        backends.drain(Instant::now() + Duration::from_secs(10));
        assert_eq!(b.seen.lock().unwrap().len(), 20, "every queued call sent");
        assert_eq!(seen.lock().unwrap().len(), 20, "and answered");
        // The thread is gone: new calls fail at once.
        let (h, seen) = hook();
        backends.send(delete(99), &h);
        assert_eq!(seen.lock().unwrap()[0].1, "unreachable");
    }

    #[test]
    fn drain_gives_up_at_its_deadline() {
        let b = backend(Duration::ZERO);
        b.hang.store(true, Ordering::SeqCst);
        let backends = start(&b, Duration::from_secs(10), 1);
        let (h, seen) = hook();
        for i in 0..3 {
            backends.send(delete(i), &h);
        }
        wait_until("the first request", 3000, || {
            b.seen.lock().unwrap().len() == 1
        });
        let t0 = Instant::now();
        backends.drain(t0 + Duration::from_millis(200));
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert!(seen.lock().unwrap().is_empty(), "nothing was answered");
        b.hang.store(false, Ordering::SeqCst);
    }
}

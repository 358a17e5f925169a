//! One worker: a thread with its own tokio current_thread runtime (pinned
//! with `--cpu`), running its share of the connections as local tasks.
//!
//! Every scenario has the same phases, driven by the controller:
//! 1. setup: open (and log in / subscribe) the worker's connections;
//! 2. ready: the worker reports, then waits for the measurement window
//!    (CLOCK_MONOTONIC start/end, the same clock in every process);
//! 3. run until the window ends (plus a drain for fanout), close, and
//!    hand back a `Tally`.

use std::cell::RefCell;
use std::net::IpAddr;
use std::ops::Range;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use crate::client::{Rng, WsClient};
use crate::net::{Spread, Target};
use crate::scenario::Plan;
use crate::stats::{mono_ns, Tally};
use crate::transport::{Conn, Endpoint};

/// The measured phase, in CLOCK_MONOTONIC nanoseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Setup,
    Run(Window),
    Abort,
}

/// A tokio deadline for a CLOCK_MONOTONIC timestamp.
pub fn deadline(ns: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_nanos(ns.saturating_sub(mono_ns()))
}

/// The part of the run one process or worker takes: indices of the primary
/// connections (hold/echo connections, fanout subscribers) and of the
/// publishers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub conns: Range<usize>,
    pub pubs: Range<usize>,
}

impl Share {
    pub fn total(&self) -> usize {
        self.conns.len() + self.pubs.len()
    }

    /// Part `i` of `parts`, both ranges cut evenly.
    pub fn split(&self, parts: usize, i: usize) -> Share {
        Share {
            conns: cut(&self.conns, parts, i),
            pubs: cut(&self.pubs, parts, i),
        }
    }
}

fn cut(r: &Range<usize>, parts: usize, i: usize) -> Range<usize> {
    let n = r.len();
    let a = r.start + n * i / parts;
    let b = r.start + n * (i + 1) / parts;
    a..b
}

/// Progress counters one process shares between its workers and the
/// controller thread (read for the progress bar and child reports).
#[derive(Debug, Default)]
pub struct Live {
    pub connected: AtomicU64,
    pub failed: AtomicU64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub ready_workers: AtomicU64,
    pub done_workers: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LiveSnap {
    pub connected: u64,
    pub failed: u64,
    pub sent: u64,
    pub received: u64,
}

impl Live {
    pub fn snap(&self) -> LiveSnap {
        LiveSnap {
            connected: self.connected.load(Relaxed),
            failed: self.failed.load(Relaxed),
            sent: self.sent.load(Relaxed),
            received: self.received.load(Relaxed),
        }
    }
}

impl std::ops::AddAssign for LiveSnap {
    fn add_assign(&mut self, o: LiveSnap) {
        self.connected += o.connected;
        self.failed += o.failed;
        self.sent += o.sent;
        self.received += o.received;
    }
}

/// What a worker thread is handed.
pub struct WorkerCtx {
    pub plan: Arc<Plan>,
    pub share: Share,
    pub live: Arc<Live>,
    /// Worker number across all processes (seeds, pinning).
    pub global_id: usize,
    /// Connect attempts this worker runs at once.
    pub connect_concurrency: usize,
    pub phase: watch::Receiver<Phase>,
}

impl WorkerCtx {
    /// Reports this worker ready and waits for the window (`None`: abort).
    pub async fn ready(&mut self) -> Option<Window> {
        self.live.ready_workers.fetch_add(1, Relaxed);
        let p = self
            .phase
            .wait_for(|p| !matches!(p, Phase::Setup))
            .await
            .map(|p| *p)
            .unwrap_or(Phase::Abort);
        match p {
            Phase::Run(w) => Some(w),
            _ => None,
        }
    }
}

/// Opens connections: bounded concurrency, per-attempt timeout, source
/// address by global connection index.
pub struct Dialer {
    /// `--url` (WebSocket).
    target: Target,
    /// The Centrifugo connections' transport (`--transport`).
    endpoint: Rc<Endpoint>,
    spread: Spread,
    sem: Semaphore,
    timeout: Duration,
}

impl Dialer {
    pub fn new(plan: &Plan, concurrency: usize) -> Dialer {
        Dialer {
            target: plan.target.clone(),
            endpoint: Rc::new(Endpoint::new(plan.transport, &plan.target)),
            spread: plan.spread,
            sem: Semaphore::new(concurrency.max(1)),
            timeout: plan.connect_timeout,
        }
    }
}

/// A worker's shared state and the signals it sends its connection tasks.
pub struct Crew {
    pub tally: Rc<RefCell<Tally>>,
    pub live: Arc<Live>,
    dialer: Rc<Dialer>,
    setup_tx: Option<mpsc::UnboundedSender<()>>,
    setup_rx: mpsc::UnboundedReceiver<()>,
    go_tx: watch::Sender<Option<Window>>,
    stop_tx: watch::Sender<bool>,
    tasks: JoinSet<()>,
    seed: u64,
    spawned: u64,
}

impl Crew {
    pub fn new(ctx: &WorkerCtx) -> Crew {
        let (setup_tx, setup_rx) = mpsc::unbounded_channel();
        Crew {
            tally: Rc::new(RefCell::new(Tally::default())),
            live: ctx.live.clone(),
            dialer: Rc::new(Dialer::new(&ctx.plan, ctx.connect_concurrency)),
            setup_tx: Some(setup_tx),
            setup_rx,
            go_tx: watch::channel(None).0,
            stop_tx: watch::channel(false).0,
            tasks: JoinSet::new(),
            seed: (ctx.global_id as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
            spawned: 0,
        }
    }

    /// Spawns a connection task on this worker's runtime.
    pub fn spawn<F, Fut>(&mut self, f: F)
    where
        F: FnOnce(Hand) -> Fut,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        self.spawned += 1;
        let hand = Hand {
            tally: self.tally.clone(),
            live: self.live.clone(),
            dialer: self.dialer.clone(),
            setup_tx: self.setup_tx.clone(),
            go: self.go_tx.subscribe(),
            stop: self.stop_tx.subscribe(),
            rng: Rng::from_clock(self.seed ^ self.spawned),
        };
        self.tasks.spawn_local(f(hand));
    }

    /// Waits until every task spawned so far has finished its setup.
    pub async fn setup_done(&mut self) {
        self.setup_tx = None;
        while self.setup_rx.recv().await.is_some() {}
    }

    pub fn go(&self, w: Window) {
        self.go_tx.send_replace(Some(w));
    }

    pub fn stop(&self) {
        self.stop_tx.send_replace(true);
    }

    /// Stops the tasks, waits for them (closing is bounded) and returns the tally.
    pub async fn finish(mut self) -> Tally {
        self.stop();
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .is_err()
        {
            self.tally
                .borrow_mut()
                .error("connection tasks still busy 10 s after stop; aborted");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        let t = self.tally.borrow().clone();
        t
    }
}

/// What one connection task holds.
pub struct Hand {
    pub tally: Rc<RefCell<Tally>>,
    pub live: Arc<Live>,
    dialer: Rc<Dialer>,
    setup_tx: Option<mpsc::UnboundedSender<()>>,
    go: watch::Receiver<Option<Window>>,
    stop: watch::Receiver<bool>,
    pub rng: Rng,
}

impl Hand {
    /// Dials WebSocket connection `index` at `--url` (`{i}` in its path
    /// replaced by `index`) and runs `login` on it (echo, raw hold,
    /// client-protocol publishers).
    pub async fn dial<T, F, Fut>(&mut self, index: usize, login: F) -> Option<T>
    where
        F: FnOnce(WsClient) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let t = &self.dialer.target;
        let target = if t.per_conn() {
            t.for_conn(index)
        } else {
            t.clone()
        };
        self.establish(index, move |src, rng| ws_open(target, src, rng, login))
            .await
    }

    /// Dials connection `index` on the run's transport (`--transport`)
    /// and runs `login` on it (the Centrifugo connect/subscribe exchange).
    pub async fn dial_conn<T, F, Fut>(&mut self, index: usize, login: F) -> Option<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let dialer = self.dialer.clone();
        self.establish(index, move |src, rng| async move {
            conn_open(&dialer.endpoint, src, rng, login).await
        })
        .await
    }

    /// Dials connection `index` again after it was lost (a reconnect), as
    /// `dial_conn`: bounded by the connect timeout, but neither counted in
    /// the setup figures nor held back by the setup's connect concurrency.
    pub async fn redial<T, F, Fut>(&mut self, index: usize, login: F) -> anyhow::Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let rng = Rng::new(self.rng.next_u64());
        let d = &self.dialer;
        let open = conn_open(&d.endpoint, d.spread.source(index), rng, login);
        timed(d.timeout, open).await
    }

    /// Sets up connection `index` with `open(source address, rng)` (any
    /// kind: WebSocket, HTTP, TCP publisher) under the worker's connect
    /// concurrency limit and timeout. Counts the attempt either way.
    pub async fn establish<T, F, Fut>(&mut self, index: usize, open: F) -> Option<T>
    where
        F: FnOnce(Option<IpAddr>, Rng) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let dialer = self.dialer.clone();
        let _permit = dialer.sem.acquire().await.ok()?;
        let t0 = mono_ns();
        self.tally.borrow_mut().setup_span(t0, 0);
        let attempt = open(dialer.spread.source(index), Rng::new(self.rng.next_u64()));
        let r = timed(dialer.timeout, attempt).await;
        let t1 = mono_ns();
        let mut t = self.tally.borrow_mut();
        t.attempted += 1;
        t.setup_span(0, t1);
        match r {
            Ok(c) => {
                t.established += 1;
                t.connect_latency.record(t1 - t0);
                self.live.connected.fetch_add(1, Relaxed);
                Some(c)
            }
            Err(e) => {
                t.connect_errors += 1;
                t.error(format!("{e:#}"));
                self.live.failed.fetch_add(1, Relaxed);
                None
            }
        }
    }

    /// This task's setup is over (successful or not).
    pub fn setup_done(&mut self) {
        if let Some(tx) = self.setup_tx.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for the window; `None` when stopped first.
    pub async fn wait_go(&mut self) -> Option<Window> {
        self.setup_done();
        tokio::select! {
            w = self.go.wait_for(Option::is_some) => w.ok().and_then(|w| *w),
            _ = self.stop.wait_for(|s| *s) => None,
        }
    }

    /// The measured window, once it has been announced.
    pub fn window(&self) -> Option<Window> {
        *self.go.borrow()
    }

    /// Resolves when the worker says stop.
    pub async fn until_stop(&mut self) {
        let _ = self.stop.wait_for(|s| *s).await;
    }

    /// A connection lost after it was established.
    pub fn disconnected(&self, why: impl std::fmt::Display) {
        let mut t = self.tally.borrow_mut();
        t.disconnects += 1;
        t.error(why);
    }
}

/// TCP connect (from `src`), the WebSocket upgrade, then `login`.
async fn ws_open<T, F, Fut>(
    target: Target,
    src: Option<IpAddr>,
    mut rng: Rng,
    login: F,
) -> anyhow::Result<T>
where
    F: FnOnce(WsClient) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let c = WsClient::connect(&target, src, &mut rng)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    login(c).await
}

/// Opens a connection on `ep`'s transport (from `src`), then `login`.
async fn conn_open<T, F, Fut>(
    ep: &Rc<Endpoint>,
    src: Option<IpAddr>,
    mut rng: Rng,
    login: F,
) -> anyhow::Result<T>
where
    F: FnOnce(Conn) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    login(Conn::connect(ep, src, &mut rng).await?).await
}

/// `f` bounded by `timeout` (a connect attempt).
async fn timed<T>(
    timeout: Duration,
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("connect timed out after {timeout:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_everything_once() {
        let s = Share {
            conns: 0..10,
            pubs: 10..13,
        };
        let parts: Vec<Share> = (0..4).map(|i| s.split(4, i)).collect();
        assert_eq!(parts.iter().map(Share::total).sum::<usize>(), 13);
        assert_eq!(parts[0].conns, 0..2);
        assert_eq!(parts[3].conns, 7..10);
        assert_eq!(parts[3].pubs, 12..13);
        for w in parts.windows(2) {
            assert_eq!(w[0].conns.end, w[1].conns.start);
            assert_eq!(w[0].pubs.end, w[1].pubs.start);
        }
    }
}

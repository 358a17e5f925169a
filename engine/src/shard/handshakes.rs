//! The shard's handshake workers: tasks that each serve one accepted
//! connection's handshake (`task::serve`) after another, instead of one new
//! task per connection.
//!
//! Why: a handshake task's future is ~2.5 KB, allocated at `accept` and
//! freed once the connection is in the reactor, after the connection's
//! long-lived state (its `Conn`, session, slab entry) was allocated around
//! it. glibc malloc carves later small long-lived allocations out of those
//! freed blocks, and the next handshake's block comes from fresh memory: a
//! burst of connects left ~560 B of unusable free heap per idle SSE stream
//! (`malloc_stats`; docs/why-memory.md). A worker's future is allocated once
//! and reused for every handshake it serves, so no such block is freed per
//! connection.
//!
//! The pool keeps a floor of workers (`[server] handshake_workers`, 256 per
//! node by default, split over the shards) spawned when the shard starts,
//! so their blocks sit together in the start-up heap, below the clients'
//! long-lived chunks, and stay there:
//! a connect burst of up to that many handshakes in flight allocates no
//! worker among the clients' chunks, and frees none there afterwards (the
//! holes glibc could not return: ~30-50 B per subscribed client after a
//! burst of 256; docs/why-subscribed-memory.md). Above the floor the pool is
//! elastic: a connection that finds no idle worker gets a new one
//! (handshakes wait on their peers, so they are never queued behind each
//! other), and a worker above the floor idle for `IDLE` exits, so a bigger
//! burst's extra workers are gone a little after it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use monoio::net::TcpStream;

use super::ceiling::Slot;
use super::service::Service;
use super::{task, ShardCtx};

/// How long a worker above the floor waits for another connection before
/// it exits.
pub(crate) const IDLE: Duration = Duration::from_secs(2);

/// An accepted connection waiting for a worker.
type Job = (TcpStream, Slot);

/// One shard's handshake workers and the connections (`J`) waiting for
/// them.
pub(crate) struct Handshakes<J = Job> {
    jobs: RefCell<VecDeque<J>>,
    /// Parked workers (id, waker), most recently parked last.
    idle: RefCell<Vec<(u64, Waker)>>,
    /// Workers alive, busy or parked.
    workers: Cell<usize>,
    next_id: Cell<u64>,
    /// Connections handed over so far.
    dispatched: Cell<u64>,
    /// Workers kept however long idle (spawned at shard start).
    floor: usize,
    /// How long a worker above the floor waits before it exits.
    idle_exit: Duration,
}

impl<J> Default for Handshakes<J> {
    fn default() -> Self {
        Handshakes::new(0)
    }
}

impl<J> Handshakes<J> {
    /// A pool that keeps `floor` workers.
    pub(crate) fn new(floor: usize) -> Self {
        Handshakes {
            jobs: RefCell::new(VecDeque::new()),
            idle: RefCell::new(Vec::new()),
            workers: Cell::new(0),
            next_id: Cell::new(0),
            dispatched: Cell::new(0),
            floor,
            idle_exit: IDLE,
        }
    }

    /// Counts the floor's workers in (`floor`: the caller spawns that many).
    fn fill(&self) -> usize {
        let n = self.floor.saturating_sub(self.workers.get());
        self.workers.set(self.workers.get() + n);
        n
    }

    /// More workers alive than the floor: a waiting one may exit.
    fn above_floor(&self) -> bool {
        self.workers.get() > self.floor
    }

    /// A worker whose wait timed out exits if the pool is above the floor
    /// (`true`), else keeps waiting.
    fn retire_above_floor(&self) -> bool {
        let above = self.above_floor();
        if above {
            self.retire();
        }
        above
    }

    /// Queues a connection; wakes the most recently parked worker for it,
    /// or asks for a new one (`true`: the caller spawns `worker`).
    fn push(&self, job: J) -> bool {
        self.dispatched.set(self.dispatched.get() + 1);
        self.jobs.borrow_mut().push_back(job);
        match self.idle.borrow_mut().pop() {
            Some((_, w)) => {
                w.wake();
                false
            }
            None => {
                self.workers.set(self.workers.get() + 1);
                true
            }
        }
    }

    /// The next connection for worker `id`, once there is one (parks it
    /// meanwhile).
    async fn next(&self, id: u64) -> J {
        let _unpark = Unpark(self, id);
        poll_fn(|cx| {
            if let Some(job) = self.jobs.borrow_mut().pop_front() {
                return Poll::Ready(job);
            }
            let mut idle = self.idle.borrow_mut();
            match idle.iter_mut().find(|(i, _)| *i == id) {
                Some((_, w)) => w.clone_from(cx.waker()),
                None => idle.push((id, cx.waker().clone())),
            }
            Poll::Pending
        })
        .await
    }

    /// Connections handed over so far (the trim policy's churn).
    pub(crate) fn dispatched(&self) -> u64 {
        self.dispatched.get()
    }

    /// A new worker's id.
    fn new_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// A worker exits: it no longer counts.
    fn retire(&self) {
        self.workers.set(self.workers.get() - 1);
    }
}

/// Takes a worker off the parked list when it stops waiting (it got a
/// connection, or its wait timed out).
struct Unpark<'a, J>(&'a Handshakes<J>, u64);

impl<J> Drop for Unpark<'_, J> {
    fn drop(&mut self) {
        self.0.idle.borrow_mut().retain(|(i, _)| *i != self.1);
    }
}

/// Spawns the floor's workers (at shard start, before the first accept).
pub(crate) fn start<S: Service>(shard: &Rc<ShardCtx<S>>) {
    for _ in 0..shard.handshakes.fill() {
        monoio::spawn(worker(shard.clone()));
    }
}

/// Hands an accepted connection to a handshake worker.
pub(crate) fn dispatch<S: Service>(shard: &Rc<ShardCtx<S>>, stream: TcpStream, slot: Slot) {
    if shard.handshakes.push((stream, slot)) {
        monoio::spawn(worker(shard.clone()));
    }
}

/// Serves handshakes; exits once none came for `IDLE` while above the floor.
async fn worker<S: Service>(shard: Rc<ShardCtx<S>>) {
    work(&shard.handshakes, |(stream, slot)| {
        task::serve(shard.clone(), stream, slot)
    })
    .await
}

/// A worker's loop: `serve` each job in turn. A worker that starts waiting
/// with the pool at or below the floor waits without a timeout (no timer
/// wake-ups for an idle floor); above it, a wait of `idle_exit` ends the
/// worker if the pool is still above the floor then.
async fn work<J, F, Fut>(hs: &Handshakes<J>, mut serve: F)
where
    F: FnMut(J) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let id = hs.new_id();
    loop {
        let job = if hs.above_floor() {
            match monoio::time::timeout(hs.idle_exit, hs.next(id)).await {
                Ok(job) => job,
                Err(_) if hs.retire_above_floor() => return,
                Err(_) => continue,
            }
        } else {
            hs.next(id).await
        };
        serve(job).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Wake};

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count::default());
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn a_connection_with_no_parked_worker_asks_for_a_new_one() {
        let hs = Handshakes::<u32>::default();
        assert!(hs.push(1), "no worker yet: spawn one");
        assert!(hs.push(2), "the first is not parked (busy): another");
        assert_eq!(hs.workers.get(), 2);
        // A worker takes the queued connections in order without parking.
        let (_, w) = waker();
        let mut cx = Context::from_waker(&w);
        let id = hs.new_id();
        assert_eq!(pin!(hs.next(id)).poll(&mut cx), Poll::Ready(1));
        assert_eq!(pin!(hs.next(id)).poll(&mut cx), Poll::Ready(2));
        assert!(hs.idle.borrow().is_empty());
    }

    #[test]
    fn a_parked_worker_is_woken_for_the_next_connection_instead_of_a_new_one() {
        let hs = Handshakes::<u32>::default();
        assert!(hs.push(1));
        let (count, w) = waker();
        let mut cx = Context::from_waker(&w);
        let id = hs.new_id();
        assert_eq!(pin!(hs.next(id)).poll(&mut cx), Poll::Ready(1));
        {
            let mut wait = pin!(hs.next(id));
            assert_eq!(wait.as_mut().poll(&mut cx), Poll::Pending);
            assert_eq!(wait.as_mut().poll(&mut cx), Poll::Pending);
            assert_eq!(
                hs.idle.borrow().len(),
                1,
                "parked once, however often polled"
            );
            assert!(!hs.push(2), "the parked worker takes it: no new worker");
            assert_eq!(count.0.load(Ordering::Relaxed), 1, "and it was woken");
            assert_eq!(wait.as_mut().poll(&mut cx), Poll::Ready(2));
        }
        assert_eq!(hs.workers.get(), 1);
    }

    #[test]
    fn the_most_recently_parked_worker_goes_first_and_a_worker_that_stops_waiting_is_unparked() {
        let hs = Handshakes::<u32>::default();
        let (older, w1) = waker();
        let (newer, w2) = waker();
        let (a, b) = (hs.new_id(), hs.new_id());
        let mut wait_a = Box::pin(hs.next(a));
        let mut wait_b = Box::pin(hs.next(b));
        assert!(wait_a
            .as_mut()
            .poll(&mut Context::from_waker(&w1))
            .is_pending());
        assert!(wait_b
            .as_mut()
            .poll(&mut Context::from_waker(&w2))
            .is_pending());
        // The last parked is woken: the others stay idle, and time out.
        assert!(!hs.push(7));
        assert_eq!(newer.0.load(Ordering::Relaxed), 1);
        assert_eq!(older.0.load(Ordering::Relaxed), 0);
        assert_eq!(
            wait_b.as_mut().poll(&mut Context::from_waker(&w2)),
            Poll::Ready(7)
        );
        drop(wait_b);
        // The older worker's wait ends (its idle timeout): it is no longer
        // parked, so the next connection asks for a new worker instead of
        // waking one that is gone.
        drop(wait_a);
        assert!(hs.idle.borrow().is_empty());
        assert!(hs.push(8));
        assert_eq!(older.0.load(Ordering::Relaxed), 0);
        hs.retire();
        assert_eq!(hs.workers.get(), 0);
    }

    #[test]
    fn the_floor_is_counted_in_once() {
        let hs = Handshakes::<u32>::new(3);
        assert_eq!(hs.fill(), 3);
        assert_eq!(hs.fill(), 0, "already there");
        assert!(!hs.above_floor());
        assert!(!hs.retire_above_floor(), "at the floor: no exit");
        assert_eq!(hs.workers.get(), 3);
    }

    /// Real workers on a monoio runtime with a short idle exit: the floor's
    /// stay however long idle, a burst's extra ones exit.
    #[test]
    fn a_worker_at_the_floor_stays_idle_and_one_above_it_exits() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut hs = Handshakes::<u32>::new(2);
            hs.idle_exit = Duration::from_millis(20);
            let hs = Rc::new(hs);
            let served = Rc::new(RefCell::new(Vec::new()));
            // Each job blocks its worker until `release` is set.
            let release = Rc::new(Cell::new(false));
            let spawn = |hs: &Rc<Handshakes<u32>>| {
                let (hs, served, release) = (hs.clone(), served.clone(), release.clone());
                monoio::spawn(async move {
                    work(&hs, |job| {
                        let (served, release) = (served.clone(), release.clone());
                        async move {
                            while !release.get() {
                                monoio::time::sleep(Duration::from_millis(1)).await;
                            }
                            served.borrow_mut().push(job);
                        }
                    })
                    .await
                })
            };
            for _ in 0..hs.fill() {
                spawn(&hs);
            }
            // The floor's workers park without a timeout.
            wait_for(|| hs.idle.borrow().len() == 2).await;
            monoio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(hs.workers.get(), 2, "idle for 5 x idle_exit: still 2");
            assert_eq!(hs.idle.borrow().len(), 2);
            // A burst of 4 in flight: the 2 parked take 2, 2 more are
            // spawned (no job waits behind another).
            for j in 0..4 {
                if hs.push(j) {
                    spawn(&hs);
                }
            }
            assert_eq!(hs.workers.get(), 4);
            wait_for(|| hs.jobs.borrow().is_empty()).await;
            release.set(true);
            wait_for(|| served.borrow().len() == 4).await;
            // The 2 above the floor exit after idle_exit; the floor stays.
            wait_for(|| hs.workers.get() == 2).await;
            monoio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(hs.workers.get(), 2);
            wait_for(|| hs.idle.borrow().len() == 2).await;
            // And the floor still serves: no new worker for the next one.
            assert!(!hs.push(9));
            wait_for(|| served.borrow().len() == 5).await;
            assert_eq!(hs.workers.get(), 2);
        });
    }

    /// Polls `cond` every millisecond, for at most 5 s.
    async fn wait_for(cond: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(
                std::time::Instant::now() < deadline,
                "condition not met in 5 s"
            );
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

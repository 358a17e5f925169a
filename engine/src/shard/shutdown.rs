//! Graceful shutdown, triggered once (SIGTERM/SIGINT) and seen by every shard.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Instant;

use futures_util::task::AtomicWaker;

pub struct Shutdown {
    triggered: AtomicBool,
    /// When it was first triggered (the graceful shutdown's deadline runs
    /// from here).
    at: OnceLock<Instant>,
    wakers: Box<[AtomicWaker]>,
}

impl Shutdown {
    pub fn new(shards: usize) -> Arc<Shutdown> {
        Arc::new(Shutdown {
            triggered: AtomicBool::new(false),
            at: OnceLock::new(),
            wakers: (0..shards).map(|_| AtomicWaker::new()).collect(),
        })
    }

    pub fn trigger(&self) {
        let _ = self.at.set(Instant::now());
        self.triggered.store(true, Ordering::Release);
        for w in self.wakers.iter() {
            w.wake();
        }
    }

    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::Acquire)
    }

    /// When it was first triggered; `None` before.
    pub fn triggered_at(&self) -> Option<Instant> {
        self.at.get().copied()
    }

    /// Resolves on shard `shard` once shutdown is triggered.
    pub async fn wait(&self, shard: usize) {
        poll_fn(|cx| {
            self.wakers[shard].register(cx.waker());
            if self.is_triggered() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

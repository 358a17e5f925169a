//! Giving freed heap back to the OS after a burst of connection churn.
//!
//! glibc malloc keeps what a burst of connects, closes or short requests
//! (SSE clients answering pings with `POST /emulation`) freed: free chunks
//! among live ones, which it returns only from the top of a heap. After
//! 15,000 idle SSE streams closed, the process stayed at 55-66 MiB of RSS
//! for a live heap of a few MiB; `malloc_trim(0)` (which returns every free
//! page, wherever it is) took it to 11 MiB (docs/why-memory.md). So each
//! shard watches its churn (connections handed to the handshake workers,
//! connections closed) and, once a burst of at least `MIN_CHURN` events has
//! been followed by `QUIET` without any, trims: at most once per
//! `MIN_INTERVAL` in the whole process, since one call trims every arena.
//! The call runs on the shard while it is quiet, never on a message path.

use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::service::Service;
use super::ShardCtx;
use crate::sys;

/// How often a shard looks at its churn.
const TICK: Duration = Duration::from_millis(250);
/// Churn events since the last trim that make a trim worth it.
const MIN_CHURN: u64 = 1000;
/// How long the churn must have stopped.
const QUIET: Duration = Duration::from_millis(500);
/// Least time between two trims of the process.
const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// When one shard trims, from its churn count over time. Pure: the caller
/// passes the time in.
#[derive(Debug)]
pub(crate) struct TrimPolicy {
    min_churn: u64,
    quiet: Duration,
    /// The churn count last seen, and since when it has not moved.
    seen: u64,
    still_since: Instant,
    /// The churn count at the last trim.
    at_trim: u64,
}

impl TrimPolicy {
    pub(crate) fn new(now: Instant, churn: u64, min_churn: u64, quiet: Duration) -> Self {
        TrimPolicy {
            min_churn,
            quiet,
            seen: churn,
            still_since: now,
            at_trim: churn,
        }
    }

    /// Looks at the churn count (monotonic) at `now`: whether a burst big
    /// enough has been followed by quiet long enough. `last_trim` is the
    /// process's last trim, if any; one within `min_interval` defers this
    /// one (the burst stays due).
    pub(crate) fn due(
        &mut self,
        now: Instant,
        churn: u64,
        last_trim: Option<Instant>,
        min_interval: Duration,
    ) -> bool {
        if churn != self.seen {
            self.seen = churn;
            self.still_since = now;
            return false;
        }
        churn - self.at_trim >= self.min_churn
            && now.duration_since(self.still_since) >= self.quiet
            && last_trim.is_none_or(|t| now.duration_since(t) >= min_interval)
    }

    /// A trim was made at this churn count.
    pub(crate) fn trimmed(&mut self) {
        self.at_trim = self.seen;
    }
}

/// The process's last trim (every shard's calls trim the whole heap).
static LAST_TRIM: Mutex<Option<Instant>> = Mutex::new(None);

/// Trims now, unless the process trimmed less than `min_gap` ago; whether
/// it did. For a thread other than a shard's that freed much at once, once
/// per burst (the backends thread closing its idle pool: the shards' trim
/// after the same burst of connects came too early for it).
pub(crate) fn trim_unless_recent(now: Instant, min_gap: Duration, why: &'static str) -> bool {
    let mut last = LAST_TRIM.lock().unwrap_or_else(|e| e.into_inner());
    if last.is_some_and(|at| now.duration_since(at) < min_gap) {
        return false;
    }
    *last = Some(now);
    drop(last);
    trim(now, why);
    true
}

/// `malloc_trim(0)`, logged with what it gave back (the caller has taken
/// its turn in `LAST_TRIM`).
fn trim(now: Instant, why: &'static str) {
    let before = sys::rss_bytes();
    let released = sys::malloc_trim();
    tracing::debug!(
        why,
        released,
        rss_before = before,
        rss_after = sys::rss_bytes(),
        took_us = now.elapsed().as_micros() as u64,
        "heap trimmed"
    );
}

/// Runs one shard's trim policy until the runtime is dropped.
pub(crate) async fn run<S: Service>(shard: Rc<ShardCtx<S>>) {
    let churn = || shard.handshakes.dispatched() + shard.stats.closed_total();
    let mut policy = TrimPolicy::new(Instant::now(), churn(), MIN_CHURN, QUIET);
    loop {
        monoio::time::sleep(TICK).await;
        let now = Instant::now();
        let mut last = LAST_TRIM.lock().unwrap_or_else(|e| e.into_inner());
        if !policy.due(now, churn(), *last, MIN_INTERVAL) {
            continue;
        }
        *last = Some(now);
        drop(last);
        policy.trimmed();
        trim(now, "a burst of connections on a shard");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_burst_is_trimmed_once_it_has_been_quiet() {
        let t0 = Instant::now();
        let mut p = TrimPolicy::new(t0, 0, 100, 500 * MS);
        // The burst: the count moves on every look.
        for (i, churn) in [40, 90, 150].into_iter().enumerate() {
            assert!(!p.due(t0 + (i as u32 + 1) * 250 * MS, churn, None, 10_000 * MS));
        }
        // Still since 750 ms: not yet quiet long enough at 1,000 ms.
        assert!(!p.due(t0 + 1000 * MS, 150, None, 10_000 * MS));
        assert!(p.due(t0 + 1250 * MS, 150, None, 10_000 * MS));
        p.trimmed();
        // Trimmed: nothing more is due until the next burst.
        assert!(!p.due(t0 + 5000 * MS, 150, None, 10_000 * MS));
    }

    #[test]
    fn a_trickle_below_the_minimum_is_not_trimmed() {
        let t0 = Instant::now();
        let mut p = TrimPolicy::new(t0, 1_000, 100, 500 * MS);
        assert!(!p.due(t0 + 250 * MS, 1_050, None, 10_000 * MS));
        assert!(!p.due(t0 + 5000 * MS, 1_050, None, 10_000 * MS));
        // More of it later adds up to a burst.
        assert!(!p.due(t0 + 6000 * MS, 1_120, None, 10_000 * MS));
        assert!(p.due(t0 + 7000 * MS, 1_120, None, 10_000 * MS));
    }

    #[test]
    fn a_recent_trim_elsewhere_defers_this_one() {
        let t0 = Instant::now();
        let mut p = TrimPolicy::new(t0, 0, 100, 500 * MS);
        assert!(!p.due(t0 + 250 * MS, 500, None, 10_000 * MS));
        let other = Some(t0 + 500 * MS);
        assert!(!p.due(t0 + 1000 * MS, 500, other, 10_000 * MS));
        assert!(!p.due(t0 + 10_499 * MS, 500, other, 10_000 * MS));
        assert!(p.due(t0 + 10_500 * MS, 500, other, 10_000 * MS));
    }
}

//! The connection ceiling: how many client connections the process may hold,
//! derived from RLIMIT_NOFILE so the server refuses cleanly (HTTP 503) instead
//! of running into EMFILE.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::sys;

/// File descriptors kept back for listeners, the io_uring/epoll fds, eventfds,
/// log files and API connections.
pub fn reserve_for(shards: usize) -> u64 {
    64 + 8 * shards as u64
}

/// Raises the soft fd limit to the hard limit and returns (limit, ceiling).
pub fn from_fd_limit(shards: usize) -> (u64, usize) {
    let limit = match sys::nofile_limit() {
        Ok((soft, hard)) if soft < hard => sys::set_nofile_soft(hard).map_or(soft, |(s, _)| s),
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    };
    let ceiling = limit.saturating_sub(reserve_for(shards)).max(1);
    (limit, ceiling as usize)
}

#[derive(Debug)]
pub struct Ceiling {
    max: usize,
    current: AtomicUsize,
}

impl Ceiling {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Ceiling {
            max,
            current: AtomicUsize::new(0),
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// Takes a slot, or `None` at the ceiling. The slot is freed on drop.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        let prev = self.current.fetch_add(1, Ordering::Relaxed);
        if prev >= self.max {
            self.current.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Slot(self.clone()))
    }
}

pub struct Slot(Arc<Ceiling>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_returned() {
        let c = Ceiling::new(2);
        let a = c.try_acquire().unwrap();
        let _b = c.try_acquire().unwrap();
        assert!(c.try_acquire().is_none());
        assert_eq!(c.current(), 2);
        drop(a);
        assert!(c.try_acquire().is_some());
    }
}

//! The connection ceiling: how many client connections the process may hold,
//! derived from RLIMIT_NOFILE so the server refuses cleanly (HTTP 503) instead
//! of running into EMFILE; optionally also per source address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::sys;

/// File descriptors kept back for listeners, the io_uring/epoll fds, eventfds,
/// log files and API connections.
pub fn reserve_for(shards: usize) -> u64 {
    64 + 8 * shards as u64
}

/// Descriptors the fd table is grown to at start-up, at most (the fd limit
/// if lower): 512 KiB of kernel memory for 65,536. Beyond that the kernel
/// grows it as connections come, in few, large steps.
const FD_TABLE_AHEAD: u64 = 65_536;

/// Raises the soft fd limit to the hard limit, grows the fd table for it
/// (now, while no shard waits on it: `sys::reserve_fd_table`) and returns
/// (limit, ceiling).
pub fn from_fd_limit(shards: usize) -> (u64, usize) {
    let limit = match sys::nofile_limit() {
        Ok((soft, hard)) if soft < hard => sys::set_nofile_soft(hard).map_or(soft, |(s, _)| s),
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    };
    match sys::reserve_fd_table(limit.min(FD_TABLE_AHEAD)) {
        Ok(size) => tracing::debug!(fd_table = size, "fd table grown ahead"),
        Err(e) => tracing::warn!(error = %e, "could not grow the fd table ahead"),
    }
    let ceiling = limit.saturating_sub(reserve_for(shards)).max(1);
    (limit, ceiling as usize)
}

#[derive(Debug)]
pub struct Ceiling {
    max: usize,
    current: AtomicUsize,
    /// Connections per source address (0: unlimited).
    per_ip: usize,
    by_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was refused before its upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Full,
    PerAddress,
}

impl Ceiling {
    pub fn new(max: usize) -> Arc<Self> {
        Ceiling::with_per_ip(max, 0)
    }

    pub fn with_per_ip(max: usize, per_ip: usize) -> Arc<Self> {
        Arc::new(Ceiling {
            max,
            current: AtomicUsize::new(0),
            per_ip,
            by_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for a connection from `ip`.
    pub fn acquire_for(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let mut slot = self.try_acquire().ok_or(Refusal::Full)?;
        if self.per_ip == 0 {
            return Ok(slot);
        }
        let mut by_ip = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = by_ip.entry(ip).or_insert(0);
        if *n >= self.per_ip {
            return Err(Refusal::PerAddress);
        }
        *n += 1;
        slot.1 = Some(ip);
        Ok(slot)
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
        Some(Slot(self.clone(), None))
    }
}

/// A connection's place under the ceiling; given back on drop.
pub struct Slot(Arc<Ceiling>, Option<IpAddr>);

impl Slot {
    /// Gives up the guard for the address it was taken for, which the
    /// holder hands back to `ceiling` with [`Ceiling::release`]. The
    /// reactor keeps a connection's place this way: 18 bytes in its slab
    /// entry, where the guard takes 32 (docs/why-subscribed-memory.md).
    pub(crate) fn into_ip(mut self, ceiling: &Arc<Ceiling>) -> Option<IpAddr> {
        debug_assert!(Arc::ptr_eq(&self.0, ceiling), "a slot of another ceiling");
        // Dropping the guard gives back one place: take it again first, and
        // keep the address out of its reach.
        self.0.current.fetch_add(1, Ordering::Relaxed);
        self.1.take()
    }
}

impl Ceiling {
    /// Gives back a place taken for `ip` (`Slot::into_ip`).
    pub(crate) fn release(&self, ip: Option<IpAddr>) {
        self.current.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = ip {
            let mut by_ip = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = by_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    by_ip.remove(&ip);
                }
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release(self.1);
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

    #[test]
    fn per_address_limit() {
        let c = Ceiling::with_per_ip(10, 2);
        let ip: IpAddr = [127, 0, 0, 9].into();
        let a = c.acquire_for(ip).unwrap();
        let _b = c.acquire_for(ip).unwrap();
        assert_eq!(c.acquire_for(ip).err(), Some(Refusal::PerAddress));
        let _other = c.acquire_for([127, 0, 0, 10].into()).unwrap();
        drop(a);
        let _again = c.acquire_for(ip).unwrap();
        assert_eq!(c.current(), 3);
    }

    #[test]
    fn a_place_kept_as_its_address_is_given_back_by_release() {
        let c = Ceiling::with_per_ip(10, 1);
        let ip: IpAddr = [127, 0, 0, 9].into();
        let kept = c.acquire_for(ip).unwrap().into_ip(&c);
        assert_eq!(kept, Some(ip));
        assert_eq!(c.current(), 1, "still held");
        assert_eq!(c.acquire_for(ip).err(), Some(Refusal::PerAddress));
        c.release(kept);
        assert_eq!(c.current(), 0);
        let _again = c.acquire_for(ip).unwrap();
    }
}

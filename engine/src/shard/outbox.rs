//! A shard's outbox: which of its connections have output queued (or a close
//! to act on), which have a command reply queued, the reactor task to wake
//! when the first of them arrives, how much a connection may queue (the
//! service's limit, the same for all of them), and the connections' ids.
//!
//! The reactor owns it; every connection it serves holds a handle
//! (`Rc<Outbox>`, one pointer in `Conn`), so queueing a frame puts the
//! connection's slab token here and the reactor takes the lists once per
//! pass. A connection made outside a shard (a test's) has an outbox of its
//! own that nobody takes from.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::task::Waker;

/// A close the server decided on: sent as a close frame, then the socket closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    pub code: u16,
    pub reason: Cow<'static, str>,
}

#[derive(Default)]
pub struct Outbox {
    /// Tokens of connections with something to flush or a close to act on.
    dirty: RefCell<Vec<u32>>,
    /// Connections with a command reply queued since the current flush pass
    /// began: flushed between slices of a long pass, and while the reactor
    /// holds its next pass, instead of waiting for the pass.
    urgent: RefCell<Vec<u32>>,
    /// The reactor task, woken when the dirty list goes from empty to not
    /// (or the urgent one does).
    reactor: Cell<Option<Waker>>,
    /// Queue bytes past which a connection is cut with 3008 (0: never):
    /// the service's `OutboundPolicy`, kept here once rather than in every
    /// `Conn` (32 bits: a limit of 4 GiB or more is 4 GiB).
    limit: u32,
    /// Where the shard's connection ids come from (`new_id`).
    ids: RefCell<Ids>,
    /// Close requests not yet acted on, by connection id (`Conn::close_with`):
    /// kept here, not in every `Conn`, since few connections have one.
    closes: RefCell<HashMap<u64, CloseRequest>>,
}

/// Connection ids: the low 32 bits are a slot no live connection of the
/// shard holds (the one given back last, else a new one), so tables
/// indexed by it (the client registry's) stay about as long as the most
/// connections the shard has had at once; the high 32 bits count
/// the ids given out, so an id is not given out again while a reply
/// addressed to an earlier holder of its slot may still arrive (that takes
/// 2^32 connections on the shard).
#[derive(Default)]
struct Ids {
    /// Slots given back, reused last in first out.
    free: Vec<u32>,
    /// The next slot never given out.
    next: u32,
    /// Ids given out so far (wrapping).
    count: u32,
}

/// The slot of connection id `id` (`Outbox::new_id`).
#[inline]
pub fn slot_of(id: u64) -> usize {
    id as u32 as usize
}

impl Outbox {
    /// The outbox of connections cut past `limit` queued bytes (0: never).
    pub(crate) fn new(limit: usize) -> Self {
        Outbox {
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            ..Outbox::default()
        }
    }

    /// The queue limit in bytes (0: none).
    #[inline]
    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }

    /// `token` has output or a close to act on (the caller puts each
    /// connection here once until the reactor takes the list).
    pub(crate) fn dirty(&self, token: u32) {
        let mut d = self.dirty.borrow_mut();
        d.push(token);
        if d.len() == 1 {
            self.wake();
        }
    }

    /// `token` has a reply queued. `wake`: the reactor may be holding its
    /// flush pass back, so wake it when this is the first such reply.
    pub(crate) fn urgent(&self, token: u32, wake: bool) {
        let mut u = self.urgent.borrow_mut();
        u.push(token);
        if wake && u.len() == 1 {
            self.wake();
        }
    }

    fn wake(&self) {
        if let Some(w) = self.reactor.take() {
            w.wake();
        }
    }

    /// The reactor task to wake (it registers on every poll).
    pub(crate) fn register(&self, w: &Waker) {
        match self.reactor.take() {
            Some(o) if o.will_wake(w) => self.reactor.set(Some(o)),
            _ => self.reactor.set(Some(w.clone())),
        }
    }

    /// Swaps the dirty list into `into` (which the caller has emptied).
    pub(crate) fn take_dirty(&self, into: &mut Vec<u32>) {
        std::mem::swap(&mut *self.dirty.borrow_mut(), into);
    }

    /// Swaps the list of connections with a reply queued into `into`.
    pub(crate) fn take_urgent(&self, into: &mut Vec<u32>) {
        std::mem::swap(&mut *self.urgent.borrow_mut(), into);
    }

    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.borrow().is_empty()
    }

    pub(crate) fn has_urgent(&self) -> bool {
        !self.urgent.borrow().is_empty()
    }

    /// A new connection id: a slot no live connection of the shard holds
    /// (`slot_of`) and a count. Given back with `free_id` when the
    /// connection is dropped.
    pub(crate) fn new_id(&self) -> u64 {
        let mut ids = self.ids.borrow_mut();
        let slot = ids.free.pop().unwrap_or_else(|| {
            let s = ids.next;
            ids.next = s
                .checked_add(1)
                .expect("fewer than 2^32 connections on a shard");
            s
        });
        ids.count = ids.count.wrapping_add(1);
        (u64::from(ids.count) << 32) | u64::from(slot)
    }

    /// Keeps connection `id`'s close request until `take_close`.
    pub(crate) fn put_close(&self, id: u64, req: CloseRequest) {
        self.closes.borrow_mut().insert(id, req);
    }

    /// Connection `id`'s close request, if it has one not taken yet.
    pub(crate) fn take_close(&self, id: u64) -> Option<CloseRequest> {
        let mut closes = self.closes.borrow_mut();
        let req = closes.remove(&id);
        if closes.is_empty() && closes.capacity() > 64 {
            // After a mass close (shutdown, a node-wide disconnect).
            *closes = HashMap::new();
        }
        req
    }

    /// `id`'s slot may be given out again.
    pub(crate) fn free_id(&self, id: u64) {
        self.ids.borrow_mut().free.push(slot_of(id) as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_reactor_is_woken_by_the_first_entry_only() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let o = Outbox::default();
        o.register(&waker);
        o.dirty(3);
        o.dirty(4);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        // Woken once: the waker is spent until the reactor polls again.
        o.register(&waker);
        o.urgent(3, false);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        let mut got = Vec::new();
        o.take_urgent(&mut got);
        assert_eq!(got, [3]);
        got.clear();
        o.urgent(5, true);
        assert_eq!(count.0.load(Ordering::Relaxed), 2);
        assert!(o.has_dirty() && o.has_urgent());
        o.take_dirty(&mut got);
        assert_eq!(got, [3, 4]);
        assert!(!o.has_dirty());
    }

    #[test]
    fn ids_reuse_free_slots_and_never_repeat_soon() {
        let o = Outbox::default();
        let a = o.new_id();
        let b = o.new_id();
        let c = o.new_id();
        assert_eq!([a, b, c].map(slot_of), [0, 1, 2]);
        o.free_id(b);
        let d = o.new_id();
        assert_eq!(slot_of(d), 1, "the free slot is taken again");
        assert_ne!(d, b, "with another id");
        assert_eq!(slot_of(o.new_id()), 3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let id = o.new_id();
            assert!(seen.insert(id));
            o.free_id(id);
        }
        assert!(seen.iter().all(|&id| slot_of(id) == 4));
    }
}

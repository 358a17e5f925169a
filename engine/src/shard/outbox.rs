//! A shard's outbox: which of its connections have output queued (or a close
//! to act on), which have a command reply queued, the reactor task to wake
//! when the first of them arrives, and how much a connection may queue (the
//! service's limit, the same for all of them).
//!
//! The reactor owns it; every connection it serves holds a handle
//! (`Rc<Outbox>`, one pointer in `Conn`), so queueing a frame puts the
//! connection's slab token here and the reactor takes the lists once per
//! pass. A connection made outside a shard (a test's) has an outbox of its
//! own that nobody takes from.

use std::cell::{Cell, RefCell};
use std::task::Waker;

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
}

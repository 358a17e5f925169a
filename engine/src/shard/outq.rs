//! A connection's outbound queue: one frame inline, a ring once more wait
//! together. An idle connection holds no allocation for it, and a quiet one
//! (one frame per flush pass, the usual fan-out subscriber) never makes one.

use std::collections::VecDeque;

use bytes::Bytes;

#[derive(Debug, Default)]
pub(crate) enum OutQueue {
    #[default]
    Empty,
    One(Bytes),
    Many(VecDeque<Bytes>),
}

/// A ring at most this long is freed when it drains: connections that see
/// a few frames at once now and then (a client's replies to its subscribes)
/// do not keep one while idle. Longer ones (a busy connection's) are kept up
/// to `KEEP_MAX`.
const FREE_SMALL: usize = 16;

/// A spilled queue's first ring.
const FIRST_RING: usize = 4;

/// A ring grown past this by a burst is freed once it drains.
const KEEP_MAX: usize = 64;

impl OutQueue {
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            OutQueue::Empty => true,
            OutQueue::One(_) => false,
            OutQueue::Many(d) => d.is_empty(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            OutQueue::Empty => 0,
            OutQueue::One(_) => 1,
            OutQueue::Many(d) => d.len(),
        }
    }

    /// The frames front to back.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Bytes> {
        let (a, b): (&[Bytes], &[Bytes]) = match self {
            OutQueue::Empty => (&[], &[]),
            OutQueue::One(f) => (std::slice::from_ref(f), &[]),
            OutQueue::Many(d) => d.as_slices(),
        };
        a.iter().chain(b)
    }

    pub(crate) fn front(&self) -> Option<&Bytes> {
        match self {
            OutQueue::Empty => None,
            OutQueue::One(f) => Some(f),
            OutQueue::Many(d) => d.front(),
        }
    }

    pub(crate) fn front_mut(&mut self) -> Option<&mut Bytes> {
        match self {
            OutQueue::Empty => None,
            OutQueue::One(f) => Some(f),
            OutQueue::Many(d) => d.front_mut(),
        }
    }

    #[inline]
    pub(crate) fn push_back(&mut self, frame: Bytes) {
        match self {
            OutQueue::Empty => *self = OutQueue::One(frame),
            OutQueue::Many(d) => d.push_back(frame),
            OutQueue::One(_) => self.spill(frame, false),
        }
    }

    pub(crate) fn push_front(&mut self, frame: Bytes) {
        match self {
            OutQueue::Empty => *self = OutQueue::One(frame),
            OutQueue::Many(d) => d.push_front(frame),
            OutQueue::One(_) => self.spill(frame, true),
        }
    }

    /// One frame inline and another coming: both go to a ring.
    #[cold]
    fn spill(&mut self, frame: Bytes, front: bool) {
        let OutQueue::One(first) = std::mem::take(self) else {
            unreachable!("spill from One only")
        };
        let mut d = VecDeque::with_capacity(FIRST_RING);
        if front {
            d.push_back(frame);
            d.push_back(first);
        } else {
            d.push_back(first);
            d.push_back(frame);
        }
        *self = OutQueue::Many(d);
    }

    pub(crate) fn pop_front(&mut self) -> Option<Bytes> {
        let f = match self {
            OutQueue::Empty => None,
            OutQueue::One(_) => match std::mem::take(self) {
                OutQueue::One(f) => Some(f),
                _ => unreachable!(),
            },
            OutQueue::Many(d) => d.pop_front(),
        };
        self.release_if_drained();
        f
    }

    /// Drops every frame.
    pub(crate) fn clear(&mut self) {
        match self {
            OutQueue::Many(d) => d.clear(),
            _ => *self = OutQueue::Empty,
        }
        self.release_if_drained();
    }

    /// An emptied ring goes when it is small (see `FREE_SMALL`) or a burst
    /// grew it (past `KEEP_MAX`).
    fn release_if_drained(&mut self) {
        if let OutQueue::Many(d) = self {
            if d.is_empty() && (d.capacity() <= FREE_SMALL || d.capacity() > KEEP_MAX) {
                *self = OutQueue::Empty;
            }
        }
    }

    /// Allocated ring capacity (0 inline), for tests.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        match self {
            OutQueue::Many(d) => d.capacity(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: u8) -> Bytes {
        Bytes::from(vec![x])
    }

    fn all(q: &OutQueue) -> Vec<u8> {
        q.iter().map(|f| f[0]).collect()
    }

    #[test]
    fn one_frame_stays_inline_and_order_holds_across_the_spill() {
        let mut q = OutQueue::default();
        assert!(q.is_empty());
        q.push_back(b(1));
        assert_eq!((q.len(), q.capacity()), (1, 0));
        q.push_back(b(2));
        q.push_front(b(0));
        assert_eq!(all(&q), [0, 1, 2]);
        assert_eq!(q.pop_front().map(|f| f[0]), Some(0));
        let mut q2 = OutQueue::default();
        q2.push_back(b(5));
        q2.push_front(b(4));
        assert_eq!(all(&q2), [4, 5]);
        assert_eq!(q2.front().map(|f| f[0]), Some(4));
    }

    #[test]
    fn a_small_ring_is_freed_when_it_drains_a_mid_sized_one_kept() {
        let mut q = OutQueue::default();
        q.push_back(b(1));
        q.push_back(b(2));
        assert_eq!(q.capacity(), FIRST_RING);
        q.pop_front();
        q.pop_front();
        assert!(q.is_empty());
        assert_eq!(q.capacity(), 0, "a small ring goes once drained");
        for i in 0..40 {
            q.push_back(b(i));
        }
        while q.pop_front().is_some() {}
        assert!(q.capacity() > FREE_SMALL, "a busy connection's ring stays");
        for i in 0..100 {
            q.push_back(b(i));
        }
        q.clear();
        assert_eq!(q.capacity(), 0, "a burst's ring goes");
        assert_eq!(q.pop_front(), None);
    }
}

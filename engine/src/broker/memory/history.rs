//! A channel's history window on its owner shard: the last publications, each
//! kept as its encoded `{"data":..,"info":..,"offset":N}` object so recovery
//! and the history command splice them into replies without re-encoding.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use crate::broker::Recovery;

pub struct Entry {
    pub offset: u64,
    pub at: Instant,
    /// The publication object, JSON.
    pub publication: Bytes,
}

pub struct History {
    size: usize,
    ttl: Duration,
    entries: VecDeque<Entry>,
}

impl History {
    pub fn new(size: usize, ttl: Duration) -> Self {
        History {
            size,
            ttl,
            entries: VecDeque::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn push(&mut self, offset: u64, publication: Bytes, now: Instant) {
        self.entries.push_back(Entry {
            offset,
            at: now,
            publication,
        });
        while self.entries.len() > self.size {
            self.entries.pop_front();
        }
        self.expire(now);
    }

    /// Drops entries older than the TTL.
    pub fn expire(&mut self, now: Instant) {
        while self
            .entries
            .front()
            .is_some_and(|e| now.duration_since(e.at) >= self.ttl)
        {
            self.entries.pop_front();
        }
    }

    /// Publications after `since` when the window still covers everything from
    /// `since + 1` to `top` (the stream's current offset).
    pub fn recover(&self, since: u64, top: u64) -> Recovery {
        if since > top {
            return Recovery::Unrecoverable;
        }
        if since == top {
            return Recovery::Recovered(Vec::new());
        }
        match self.entries.front() {
            Some(first) if first.offset <= since + 1 => Recovery::Recovered(
                self.entries
                    .iter()
                    .filter(|e| e.offset > since)
                    .map(|e| e.publication.clone())
                    .collect(),
            ),
            _ => Recovery::Unrecoverable,
        }
    }

    /// Up to `limit` publications (all when negative) after `since` (from the
    /// start when `None`), oldest first unless `reverse`.
    pub fn query(&self, since: Option<u64>, limit: i64, reverse: bool) -> Vec<Bytes> {
        if limit == 0 {
            return Vec::new();
        }
        let take = if limit < 0 {
            usize::MAX
        } else {
            limit as usize
        };
        let after = |e: &&Entry| since.is_none_or(|s| e.offset > s);
        if reverse {
            self.entries
                .iter()
                .rev()
                .filter(after)
                .take(take)
                .map(|e| e.publication.clone())
                .collect()
        } else {
            self.entries
                .iter()
                .filter(after)
                .take(take)
                .map(|e| e.publication.clone())
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pubs(h: &History) -> Vec<u64> {
        h.entries.iter().map(|e| e.offset).collect()
    }

    #[test]
    fn window_by_size_and_ttl() {
        let t0 = Instant::now();
        let mut h = History::new(3, Duration::from_secs(10));
        for o in 1..=5 {
            h.push(o, Bytes::from(o.to_string()), t0);
        }
        assert_eq!(pubs(&h), vec![3, 4, 5]);
        h.expire(t0 + Duration::from_secs(11));
        assert!(h.is_empty());
    }

    #[test]
    fn recovery_covers_or_says_not() {
        let t0 = Instant::now();
        let mut h = History::new(3, Duration::from_secs(10));
        for o in 1..=5 {
            h.push(o, Bytes::from(o.to_string()), t0);
        }
        assert_eq!(
            h.recover(2, 5),
            Recovery::Recovered(vec![Bytes::from("3"), Bytes::from("4"), Bytes::from("5")])
        );
        assert_eq!(h.recover(4, 5), Recovery::Recovered(vec![Bytes::from("5")]));
        assert_eq!(h.recover(5, 5), Recovery::Recovered(vec![]));
        assert_eq!(h.recover(1, 5), Recovery::Unrecoverable, "offset 2 is gone");
        assert_eq!(
            h.recover(9, 5),
            Recovery::Unrecoverable,
            "ahead of the stream"
        );
    }

    #[test]
    fn queries() {
        let t0 = Instant::now();
        let mut h = History::new(10, Duration::from_secs(10));
        for o in 1..=5 {
            h.push(o, Bytes::from(o.to_string()), t0);
        }
        let q = |s, l, r| -> Vec<String> {
            h.query(s, l, r)
                .iter()
                .map(|b| String::from_utf8(b.to_vec()).unwrap())
                .collect()
        };
        assert_eq!(q(None, -1, false), vec!["1", "2", "3", "4", "5"]);
        assert_eq!(q(Some(3), -1, false), vec!["4", "5"]);
        assert_eq!(q(None, 2, true), vec!["5", "4"]);
        assert!(q(None, 0, false).is_empty());
    }
}

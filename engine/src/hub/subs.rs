//! A shard's local subscription table: channel → the connections on this shard
//! subscribed to it. Fan-out walks one vector per publication.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;

use super::mesh::ChannelName;
use crate::shard::conn::Conn;
use crate::shard::framing::{FrameSet, Framing};

#[derive(Default)]
pub struct SubTable {
    channels: HashMap<ChannelName, Vec<Rc<Conn>>, ahash::RandomState>,
    /// Subscribers whose stream position is ahead of what this shard has
    /// delivered of the channel (a broker whose reads and publications come
    /// over different connections): each gets publications after its
    /// offset, then joins `channels`.
    ahead: HashMap<ChannelName, Vec<(Rc<Conn>, u64)>, ahash::RandomState>,
    /// The highest offset delivered per channel (positioned deliveries).
    last: HashMap<ChannelName, u64, ahash::RandomState>,
}

impl SubTable {
    pub fn add(&mut self, channel: ChannelName, conn: Rc<Conn>) {
        self.channels.entry(channel).or_default().push(conn);
    }

    /// Removes `conn` from `channel`; returns whether it was there.
    pub fn remove(&mut self, channel: &str, conn: &Rc<Conn>) -> bool {
        let mut found = false;
        if let Some(v) = self.channels.get_mut(channel) {
            if let Some(pos) = v.iter().position(|c| Rc::ptr_eq(c, conn)) {
                v.swap_remove(pos);
                found = true;
                if v.is_empty() {
                    self.channels.remove(channel);
                }
            }
        }
        if !found {
            if let Some(v) = self.ahead.get_mut(channel) {
                if let Some(pos) = v.iter().position(|(c, _)| Rc::ptr_eq(c, conn)) {
                    v.swap_remove(pos);
                    found = true;
                    if v.is_empty() {
                        self.ahead.remove(channel);
                    }
                }
            }
        }
        self.forget_if_empty(channel);
        found
    }

    /// Removes every subscriber of `channel` and returns them.
    pub fn take(&mut self, channel: &str) -> Vec<Rc<Conn>> {
        let mut all = self.channels.remove(channel).unwrap_or_default();
        all.extend(
            self.ahead
                .remove(channel)
                .unwrap_or_default()
                .into_iter()
                .map(|(c, _)| c),
        );
        self.last.remove(channel);
        all
    }

    fn forget_if_empty(&mut self, channel: &str) {
        if !self.channels.contains_key(channel) && !self.ahead.contains_key(channel) {
            self.last.remove(channel);
        }
    }

    /// `conn` (already added) was given position `top`: while this shard
    /// has delivered less of the channel than that, publications up to
    /// `top` may still be on their way here; hold `conn` back from them.
    pub fn hold_until(&mut self, channel: &str, conn: &Rc<Conn>, top: u64) {
        if self.last.get(channel).copied().unwrap_or(0) >= top {
            return;
        }
        let Some(v) = self.channels.get_mut(channel) else {
            return;
        };
        let Some(pos) = v.iter().position(|c| Rc::ptr_eq(c, conn)) else {
            return;
        };
        let (name, _) = self.channels.get_key_value(channel).expect("present");
        let name = name.clone();
        let v = self.channels.get_mut(channel).expect("present");
        let conn = v.swap_remove(pos);
        if v.is_empty() {
            self.channels.remove(channel);
        }
        self.ahead.entry(name).or_default().push((conn, top));
    }

    /// Queues publication `offset` of `channel` for every subscriber whose
    /// position is behind it; returns how many.
    pub fn deliver_positioned(&mut self, channel: &str, offset: u64, frame: &Bytes) -> usize {
        if let Some(v) = self.ahead.get_mut(channel) {
            let mut joined = Vec::new();
            v.retain(|(c, top)| {
                let behind = offset > *top;
                if behind {
                    joined.push(c.clone());
                }
                !behind
            });
            if v.is_empty() {
                self.ahead.remove(channel);
            }
            if !joined.is_empty() {
                let name: ChannelName = channel.into();
                self.channels.entry(name).or_default().extend(joined);
            }
        }
        if self.channels.contains_key(channel) || self.ahead.contains_key(channel) {
            match self.last.get_mut(channel) {
                Some(l) => *l = (*l).max(offset),
                None => {
                    self.last.insert(channel.into(), offset);
                }
            }
        }
        self.deliver(channel, frame)
    }

    /// The local subscribers of `channel`.
    pub fn conns(&self, channel: &str) -> &[Rc<Conn>] {
        self.channels.get(channel).map_or(&[], Vec::as_slice)
    }

    /// Channels with local subscribers.
    pub fn names(&self) -> impl Iterator<Item = &ChannelName> {
        self.channels.keys()
    }

    /// Queues `frame` for every local subscriber of `channel`; returns how many.
    pub fn deliver(&self, channel: &str, frame: &Bytes) -> usize {
        match self.channels.get(channel) {
            Some(v) => {
                // WebSocket subscribers share `frame` as it is (the fast
                // path); the others get their framing's copy, made once
                // per framing, when the first of them is met.
                let mut set: Option<FrameSet<'_>> = None;
                for c in v {
                    if c.framing() == Framing::WebSocket {
                        c.send_framed(frame.clone());
                    } else {
                        c.send_set(set.get_or_insert_with(|| FrameSet::new(frame)));
                    }
                }
                v.len()
            }
            None => 0,
        }
    }

    pub fn channels(&self) -> usize {
        self.channels.len()
    }

    pub fn total_subscriptions(&self) -> usize {
        self.channels.values().map(Vec::len).sum::<usize>()
            + self.ahead.values().map(Vec::len).sum::<usize>()
    }

    pub fn subscribers(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, Vec::len) + self.ahead.get(channel).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_deliver_remove() {
        let mut t = SubTable::default();
        let a = Rc::new(Conn::new(1, 0));
        let b = Rc::new(Conn::new(2, 0));
        let ch: ChannelName = "c".into();
        t.add(ch.clone(), a.clone());
        t.add(ch.clone(), b.clone());
        assert_eq!(t.deliver("c", &Bytes::from_static(b"x")), 2);
        assert!(a.has_output() && b.has_output());
        assert!(t.remove("c", &a));
        assert!(!t.remove("c", &a));
        assert_eq!(t.subscribers("c"), 1);
        assert!(t.remove("c", &b));
        assert_eq!(t.channels(), 0);
    }

    #[test]
    fn a_subscriber_ahead_gets_only_newer_publications() {
        let mut t = SubTable::default();
        let old = Rc::new(Conn::new(1, 0));
        let new = Rc::new(Conn::new(2, 0));
        let ch: ChannelName = "c".into();
        t.add(ch.clone(), old.clone());
        let f = |o: u64| Bytes::from(format!("pub {o}"));
        assert_eq!(t.deliver_positioned("c", 5, &f(5)), 1);
        // `new` was told position 7: 6 and 7 may still arrive here.
        t.add(ch.clone(), new.clone());
        t.hold_until("c", &new, 7);
        assert_eq!(t.subscribers("c"), 2);
        assert_eq!(
            t.deliver_positioned("c", 6, &f(6)),
            1,
            "6 only to the old one"
        );
        assert_eq!(t.deliver_positioned("c", 7, &f(7)), 1);
        assert!(!new.has_output());
        assert_eq!(t.deliver_positioned("c", 8, &f(8)), 2, "8 to both");
        assert!(new.has_output());
        // Position at or behind what was delivered: nothing to hold.
        let late = Rc::new(Conn::new(3, 0));
        t.add(ch.clone(), late.clone());
        t.hold_until("c", &late, 8);
        assert_eq!(t.deliver_positioned("c", 9, &f(9)), 3);
        // A held subscriber can leave before it catches up.
        let gone = Rc::new(Conn::new(4, 0));
        t.add(ch.clone(), gone.clone());
        t.hold_until("c", &gone, 20);
        assert!(t.remove("c", &gone));
        assert_eq!(t.deliver_positioned("c", 21, &f(21)), 3);
        assert_eq!(t.take("c").len(), 3);
        assert_eq!(t.channels(), 0);
    }
}

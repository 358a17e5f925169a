//! A shard's local subscription table: channel → the connections on this shard
//! subscribed to it. Fan-out walks one vector per publication.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;

use super::mesh::ChannelName;
use crate::shard::conn::Conn;

#[derive(Default)]
pub struct SubTable {
    channels: HashMap<ChannelName, Vec<Rc<Conn>>, ahash::RandomState>,
}

impl SubTable {
    pub fn add(&mut self, channel: ChannelName, conn: Rc<Conn>) {
        self.channels.entry(channel).or_default().push(conn);
    }

    /// Removes `conn` from `channel`; returns whether it was there.
    pub fn remove(&mut self, channel: &str, conn: &Rc<Conn>) -> bool {
        let Some(v) = self.channels.get_mut(channel) else {
            return false;
        };
        let Some(pos) = v.iter().position(|c| Rc::ptr_eq(c, conn)) else {
            return false;
        };
        v.swap_remove(pos);
        if v.is_empty() {
            self.channels.remove(channel);
        }
        true
    }

    /// Removes every subscriber of `channel` and returns them.
    pub fn take(&mut self, channel: &str) -> Vec<Rc<Conn>> {
        self.channels.remove(channel).unwrap_or_default()
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
                for c in v {
                    c.send(frame.clone());
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
        self.channels.values().map(Vec::len).sum()
    }

    pub fn subscribers(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, Vec::len)
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
}

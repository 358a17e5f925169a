//! A shard's local subscription table: channel → the connections on this shard
//! subscribed to it. Fan-out walks one vector per publication.
//!
//! Subscribers that asked for fossil deltas (`delta: "fossil"`) sit in a
//! vector of their own with the offset of the last publication each got:
//! they take one of the two shared pushes of [`DeltaFrames`], the delta when
//! they hold the publication before it, else the full payload. Plain
//! subscribers never see that check.
//!
//! Subscribers with a tags filter (`tf`) are grouped by filter: a group's
//! filter is evaluated once per publication on the publication's tags
//! (read from the push once per shard), and the group gets the push or not.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use super::mesh::ChannelName;
use crate::protocol::delta::DeltaFrames;
use crate::protocol::tags::{self, FilterNode};
use crate::shard::conn::Conn;
use crate::shard::framing::{FrameSet, Framing};
use crate::shard::latency::{Stamp, NO_STAMP};

/// A delta subscriber and the offset of the last publication it got (0:
/// none it can build on).
struct DeltaSub {
    conn: Rc<Conn>,
    had: u64,
}

/// Subscribers with one tags filter (equal filters, by their canonical
/// text).
struct FilterGroup {
    key: String,
    filter: Arc<FilterNode>,
    conns: Vec<Rc<Conn>>,
}

/// A subscriber held back until the channel passes offset `top`, and which
/// list it goes back to.
struct Ahead {
    conn: Rc<Conn>,
    top: u64,
    kind: SubKind,
}

/// Which list of a channel a subscriber is in.
#[derive(Clone, Debug)]
pub enum SubKind {
    Plain,
    /// A delta subscriber and the offset of the last publication it got (0:
    /// none it can build on).
    Delta(u64),
    Filtered(Arc<FilterNode>),
}

#[derive(Default)]
pub struct SubTable {
    channels: HashMap<ChannelName, Vec<Rc<Conn>>, ahash::RandomState>,
    /// The fossil-delta subscribers.
    delta: HashMap<ChannelName, Vec<DeltaSub>, ahash::RandomState>,
    /// The subscribers with a tags filter, grouped by filter.
    filtered: HashMap<ChannelName, Vec<FilterGroup>, ahash::RandomState>,
    /// Subscribers whose stream position is ahead of what this shard has
    /// delivered of the channel (a broker whose reads and publications come
    /// over different connections): each gets publications after its
    /// offset, then joins `channels` (or `delta`).
    ahead: HashMap<ChannelName, Vec<Ahead>, ahash::RandomState>,
    /// The highest offset delivered per channel (positioned deliveries).
    last: HashMap<ChannelName, u64, ahash::RandomState>,
}

/// Takes `conn` out of `map[channel]` (matched by `of`), dropping an emptied
/// entry.
fn take_from<T>(
    map: &mut HashMap<ChannelName, Vec<T>, ahash::RandomState>,
    channel: &str,
    conn: &Rc<Conn>,
    of: impl Fn(&T) -> &Rc<Conn>,
) -> Option<T> {
    let v = map.get_mut(channel)?;
    let pos = v.iter().position(|t| Rc::ptr_eq(of(t), conn))?;
    let t = v.swap_remove(pos);
    if v.is_empty() {
        map.remove(channel);
    }
    Some(t)
}

impl SubTable {
    /// The name this table keys `channel` by, if it has subscribers here:
    /// a session that subscribes shares it rather than holding a copy.
    pub fn name(&self, channel: &str) -> Option<ChannelName> {
        fn key<V>(m: &HashMap<ChannelName, V, ahash::RandomState>, c: &str) -> Option<ChannelName> {
            m.get_key_value(c).map(|(k, _)| k.clone())
        }
        key(&self.channels, channel)
            .or_else(|| key(&self.delta, channel))
            .or_else(|| key(&self.filtered, channel))
            .or_else(|| key(&self.ahead, channel))
    }

    pub fn add(&mut self, channel: ChannelName, conn: Rc<Conn>) {
        self.add_as(channel, conn, SubKind::Plain);
    }

    /// Adds `conn` to the list of its kind: a delta subscriber with the
    /// offset it holds, a filtered one to the group of its filter.
    pub fn add_as(&mut self, channel: ChannelName, conn: Rc<Conn>, kind: SubKind) {
        match kind {
            SubKind::Plain => self.channels.entry(channel).or_default().push(conn),
            SubKind::Delta(had) => self
                .delta
                .entry(channel)
                .or_default()
                .push(DeltaSub { conn, had }),
            SubKind::Filtered(filter) => {
                let key = filter.key();
                let groups = self.filtered.entry(channel).or_default();
                match groups.iter_mut().find(|g| g.key == key) {
                    Some(g) => g.conns.push(conn),
                    None => groups.push(FilterGroup {
                        key,
                        filter,
                        conns: vec![conn],
                    }),
                }
            }
        }
    }

    /// The kind of `conn`'s active subscription to `channel` (plain when it
    /// is in neither the delta nor the filtered lists).
    pub fn kind_of(&self, channel: &str, conn: &Rc<Conn>) -> SubKind {
        if let Some(d) = self
            .delta
            .get(channel)
            .and_then(|v| v.iter().find(|d| Rc::ptr_eq(&d.conn, conn)))
        {
            return SubKind::Delta(d.had);
        }
        self.filtered
            .get(channel)
            .and_then(|gs| {
                gs.iter()
                    .find(|g| g.conns.iter().any(|c| Rc::ptr_eq(c, conn)))
            })
            .map_or(SubKind::Plain, |g| SubKind::Filtered(g.filter.clone()))
    }

    /// Takes `conn` out of the filtered groups of `channel`: its filter.
    fn take_filtered(&mut self, channel: &str, conn: &Rc<Conn>) -> Option<Arc<FilterNode>> {
        let groups = self.filtered.get_mut(channel)?;
        let (gi, ci) = groups.iter().enumerate().find_map(|(gi, g)| {
            g.conns
                .iter()
                .position(|c| Rc::ptr_eq(c, conn))
                .map(|ci| (gi, ci))
        })?;
        groups[gi].conns.swap_remove(ci);
        let filter = groups[gi].filter.clone();
        if groups[gi].conns.is_empty() {
            groups.swap_remove(gi);
        }
        if groups.is_empty() {
            self.filtered.remove(channel);
        }
        Some(filter)
    }

    /// Records that delta subscriber `conn` got publication `had` (sent to it
    /// outside the fan-out: a catch-up).
    pub fn delta_had(&mut self, channel: &str, conn: &Rc<Conn>, had: u64) {
        if let Some(d) = self
            .delta
            .get_mut(channel)
            .and_then(|v| v.iter_mut().find(|d| Rc::ptr_eq(&d.conn, conn)))
        {
            d.had = had;
        }
    }

    /// Removes `conn` from `channel`; returns whether it was there.
    pub fn remove(&mut self, channel: &str, conn: &Rc<Conn>) -> bool {
        let found = take_from(&mut self.channels, channel, conn, |c| c).is_some()
            || take_from(&mut self.delta, channel, conn, |d| &d.conn).is_some()
            || self.take_filtered(channel, conn).is_some()
            || take_from(&mut self.ahead, channel, conn, |a| &a.conn).is_some();
        self.forget_if_empty(channel);
        found
    }

    /// Removes every subscriber of `channel` and returns them.
    pub fn take(&mut self, channel: &str) -> Vec<Rc<Conn>> {
        let mut all = self.channels.remove(channel).unwrap_or_default();
        all.extend(
            self.delta
                .remove(channel)
                .unwrap_or_default()
                .into_iter()
                .map(|d| d.conn),
        );
        all.extend(
            self.filtered
                .remove(channel)
                .unwrap_or_default()
                .into_iter()
                .flat_map(|g| g.conns),
        );
        all.extend(
            self.ahead
                .remove(channel)
                .unwrap_or_default()
                .into_iter()
                .map(|a| a.conn),
        );
        self.last.remove(channel);
        all
    }

    fn has(&self, channel: &str) -> bool {
        self.channels.contains_key(channel)
            || self.delta.contains_key(channel)
            || self.filtered.contains_key(channel)
            || self.ahead.contains_key(channel)
    }

    fn forget_if_empty(&mut self, channel: &str) {
        if !self.has(channel) {
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
        let kind = if take_from(&mut self.channels, channel, conn, |c| c).is_some() {
            SubKind::Plain
        } else if let Some(d) = take_from(&mut self.delta, channel, conn, |d| &d.conn) {
            SubKind::Delta(d.had)
        } else if let Some(f) = self.take_filtered(channel, conn) {
            SubKind::Filtered(f)
        } else {
            return;
        };
        self.ahead.entry(channel.into()).or_default().push(Ahead {
            conn: conn.clone(),
            top,
            kind,
        });
    }

    /// Queues publication `offset` of `channel` for every subscriber whose
    /// position is behind it; returns how many.
    pub fn deliver_positioned(
        &mut self,
        channel: &str,
        offset: u64,
        frame: &Bytes,
        delta: Option<&DeltaFrames>,
        since: Stamp,
    ) -> usize {
        if let Some(v) = self.ahead.remove(channel) {
            let (joined, held): (Vec<Ahead>, Vec<Ahead>) =
                v.into_iter().partition(|a| offset > a.top);
            if !held.is_empty() {
                self.ahead.insert(channel.into(), held);
            }
            for a in joined {
                self.add_as(channel.into(), a.conn, a.kind);
            }
        }
        if self.has(channel) {
            match self.last.get_mut(channel) {
                Some(l) => *l = (*l).max(offset),
                None => {
                    self.last.insert(channel.into(), offset);
                }
            }
        }
        self.deliver_publication(channel, frame, delta, since)
    }

    /// Every local subscriber of `channel`, plain, delta and filtered
    /// (presence).
    pub fn conns(&self, channel: &str) -> Vec<&Rc<Conn>> {
        let plain = self.channels.get(channel).map_or(&[][..], Vec::as_slice);
        let delta = self.delta.get(channel).map_or(&[][..], Vec::as_slice);
        let groups = self.filtered.get(channel).map_or(&[][..], Vec::as_slice);
        plain
            .iter()
            .chain(delta.iter().map(|d| &d.conn))
            .chain(groups.iter().flat_map(|g| g.conns.iter()))
            .collect()
    }

    /// Channels with local subscribers (plain, delta or filtered).
    pub fn names(&self) -> impl Iterator<Item = &ChannelName> {
        self.channels
            .keys()
            .chain(
                self.delta
                    .keys()
                    .filter(|k| !self.channels.contains_key(*k)),
            )
            .chain(
                self.filtered
                    .keys()
                    .filter(|k| !self.channels.contains_key(*k) && !self.delta.contains_key(*k)),
            )
    }

    /// Queues `frame` (a push that is the same for everyone: join, leave)
    /// for every local subscriber of `channel`; returns how many.
    pub fn deliver(&self, channel: &str, frame: &Bytes) -> usize {
        let mut set = None;
        let mut n = self.deliver_plain(channel, frame, &mut set, NO_STAMP);
        // (No hashing on a shard without delta subscribers.)
        if let Some(v) = (!self.delta.is_empty())
            .then(|| self.delta.get(channel))
            .flatten()
        {
            for d in v {
                send(&d.conn, frame, &mut set, NO_STAMP);
            }
            n += v.len();
        }
        if let Some(groups) = (!self.filtered.is_empty())
            .then(|| self.filtered.get(channel))
            .flatten()
        {
            for c in groups.iter().flat_map(|g| g.conns.iter()) {
                send(c, frame, &mut set, NO_STAMP);
                n += 1;
            }
        }
        n
    }

    /// Queues a publication for the filtered subscribers of `channel`
    /// whose filter its tags pass; returns how many.
    fn deliver_filtered<'a>(
        &self,
        channel: &str,
        frame: &'a Bytes,
        set: &mut Option<FrameSet<'a>>,
        since: Stamp,
    ) -> usize {
        let Some(groups) = (!self.filtered.is_empty())
            .then(|| self.filtered.get(channel))
            .flatten()
        else {
            return 0;
        };
        let tags = tags::of_frame(frame);
        let mut n = 0;
        for g in groups.iter().filter(|g| g.filter.matches(&tags)) {
            for c in &g.conns {
                send(c, frame, set, since);
            }
            n += g.conns.len();
        }
        n
    }

    /// Queues a publication: `frame` for the plain subscribers, and for the
    /// delta subscribers the form of `delta` each can take (the plain frame
    /// when the publication came without one: its namespace has no deltas).
    pub fn deliver_publication(
        &mut self,
        channel: &str,
        frame: &Bytes,
        delta: Option<&DeltaFrames>,
        since: Stamp,
    ) -> usize {
        let mut set = None;
        let mut n = self.deliver_plain(channel, frame, &mut set, since);
        n += self.deliver_filtered(channel, frame, &mut set, since);
        let delta_subs = if self.delta.is_empty() {
            None
        } else {
            self.delta.get_mut(channel)
        };
        if let Some(v) = delta_subs {
            n += v.len();
            match delta {
                Some(df) => {
                    let (mut full_set, mut patch_set) = (None, None);
                    for d in v {
                        match &df.patch {
                            Some(p) if df.builds_on(d.had) => {
                                send(&d.conn, p, &mut patch_set, since)
                            }
                            _ => send(&d.conn, &df.full, &mut full_set, since),
                        }
                        d.had = df.offset;
                    }
                }
                None => {
                    for d in v {
                        send(&d.conn, frame, &mut set, since);
                        d.had = 0;
                    }
                }
            }
        }
        n
    }

    fn deliver_plain<'a>(
        &self,
        channel: &str,
        frame: &'a Bytes,
        set: &mut Option<FrameSet<'a>>,
        since: Stamp,
    ) -> usize {
        match self.channels.get(channel) {
            Some(v) => {
                for c in v {
                    send(c, frame, set, since);
                }
                v.len()
            }
            None => 0,
        }
    }

    pub fn channels(&self) -> usize {
        self.names().count()
    }

    pub fn total_subscriptions(&self) -> usize {
        self.channels.values().map(Vec::len).sum::<usize>()
            + self.delta.values().map(Vec::len).sum::<usize>()
            + self.filtered_count(None)
            + self.ahead.values().map(Vec::len).sum::<usize>()
    }

    /// Filtered subscribers of `channel` (all channels: None).
    fn filtered_count(&self, channel: Option<&str>) -> usize {
        let count = |gs: &Vec<FilterGroup>| gs.iter().map(|g| g.conns.len()).sum::<usize>();
        match channel {
            Some(c) => self.filtered.get(c).map_or(0, count),
            None => self.filtered.values().map(count).sum(),
        }
    }

    pub fn subscribers(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, Vec::len)
            + self.delta.get(channel).map_or(0, Vec::len)
            + self.filtered_count(Some(channel))
            + self.ahead.get(channel).map_or(0, Vec::len)
    }
}

/// Queues `frame` for `c`: WebSocket subscribers share it as it is (the
/// fast path); the others get their framing's copy, made once per framing
/// (in `set`) when the first of them is met. `since`: when the publication
/// was accepted (its delivery latency is recorded when it is sent), or
/// `NO_STAMP`.
#[inline]
fn send<'a>(c: &Rc<Conn>, frame: &'a Bytes, set: &mut Option<FrameSet<'a>>, since: Stamp) {
    if c.framing() == Framing::WebSocket {
        c.send_delivery(frame.clone(), since);
    } else {
        let set = set.get_or_insert_with(|| FrameSet::new(frame));
        c.send_delivery(set.get(c.framing()), since);
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
        assert_eq!(t.deliver_positioned("c", 5, &f(5), None, NO_STAMP), 1);
        // `new` was told position 7: 6 and 7 may still arrive here.
        t.add(ch.clone(), new.clone());
        t.hold_until("c", &new, 7);
        assert_eq!(t.subscribers("c"), 2);
        assert_eq!(
            t.deliver_positioned("c", 6, &f(6), None, NO_STAMP),
            1,
            "6 only to the old one"
        );
        assert_eq!(t.deliver_positioned("c", 7, &f(7), None, NO_STAMP), 1);
        assert!(!new.has_output());
        assert_eq!(
            t.deliver_positioned("c", 8, &f(8), None, NO_STAMP),
            2,
            "8 to both"
        );
        assert!(new.has_output());
        // Position at or behind what was delivered: nothing to hold.
        let late = Rc::new(Conn::new(3, 0));
        t.add(ch.clone(), late.clone());
        t.hold_until("c", &late, 8);
        assert_eq!(t.deliver_positioned("c", 9, &f(9), None, NO_STAMP), 3);
        // A held subscriber can leave before it catches up.
        let gone = Rc::new(Conn::new(4, 0));
        t.add(ch.clone(), gone.clone());
        t.hold_until("c", &gone, 20);
        assert!(t.remove("c", &gone));
        assert_eq!(t.deliver_positioned("c", 21, &f(21), None, NO_STAMP), 3);
        assert_eq!(t.take("c").len(), 3);
        assert_eq!(t.channels(), 0);
    }

    #[test]
    fn filtered_subscribers_get_what_their_group_passes() {
        use crate::protocol::push::{publication_object_with, publication_push, Fields};
        let filter = |val: &str| -> Arc<FilterNode> {
            Arc::new(
                serde_json::from_str(&format!(r#"{{"key":"kind","cmp":"eq","val":"{val}"}}"#))
                    .unwrap(),
            )
        };
        let mut t = SubTable::default();
        let ch: ChannelName = "c".into();
        let goals = [Rc::new(Conn::new(1, 0)), Rc::new(Conn::new(2, 0))];
        let cards = Rc::new(Conn::new(3, 0));
        let all = Rc::new(Conn::new(4, 0));
        for g in &goals {
            t.add_as(ch.clone(), g.clone(), SubKind::Filtered(filter("goal")));
        }
        t.add_as(ch.clone(), cards.clone(), SubKind::Filtered(filter("card")));
        t.add(ch.clone(), all.clone());
        assert_eq!(t.filtered["c"].len(), 2, "one group per distinct filter");
        assert_eq!(t.subscribers("c"), 4);
        assert!(matches!(t.kind_of("c", &cards), SubKind::Filtered(_)));
        assert!(matches!(t.kind_of("c", &all), SubKind::Plain));
        let publication = |kind: &str| {
            let tags = format!(r#"{{"kind":"{kind}"}}"#);
            let object = publication_object_with(
                b"{}",
                Fields {
                    info: None,
                    tags: Some(tags.as_bytes()),
                },
                1,
            );
            publication_push("c", &object)
        };
        assert_eq!(
            t.deliver_publication("c", &publication("goal"), None, NO_STAMP),
            3
        );
        assert!(goals.iter().all(|g| g.has_output()) && all.has_output());
        assert!(!cards.has_output());
        assert_eq!(
            t.deliver_publication("c", &publication("offside"), None, NO_STAMP),
            1
        );
        // Join/leave pushes reach everyone.
        assert_eq!(t.deliver("c", &Bytes::from_static(b"x")), 4);
        assert!(cards.has_output());
        assert!(t.remove("c", &goals[0]));
        assert!(t.remove("c", &cards));
        assert_eq!(t.filtered["c"].len(), 1, "the emptied group is gone");
        assert_eq!(t.take("c").len(), 2);
        assert_eq!(t.channels(), 0);
    }
}

//! The per-shard messaging state: local subscriptions, the channels this shard
//! owns, and the shard's end of the mesh. A publication goes to its channel's
//! owner, which assigns the offset, encodes the push frame once, and sends that
//! one buffer to every shard with local subscribers.

pub mod call;
pub mod history;
pub mod mesh;
pub mod owner;
pub mod subs;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use self::history::Recovery;
use self::mesh::{owner_of, ChannelName, Member, Mesh, MeshMsg, ReplyTo};
use self::owner::{empty_presence, OwnedChannel};
use self::subs::SubTable;
use crate::client::session::{Session, SubState};
use crate::config::{ChannelOptions, Config};
use crate::protocol::codes::{self, ClientError};
use crate::protocol::push;
use crate::ws::frame::{encode, OpCode};

/// Outbox → mesh → handle rounds one `pump` runs at most.
const PUMP_ROUNDS: usize = 4;

thread_local! {
    /// The epoch reported for a publication that created no stream.
    static NO_EPOCH: Arc<str> = Arc::from("");
}

/// Counters the hub keeps for `/metrics` (written by its shard only).
#[derive(Debug, Default)]
pub struct HubStats {
    pub publications: Cell<u64>,
    pub deliveries: Cell<u64>,
    pub mesh_batches_in: Cell<u64>,
}

pub struct Hub {
    pub shard: usize,
    mesh: Arc<Mesh>,
    pub config: Arc<Config>,
    outbox: RefCell<Vec<Vec<MeshMsg>>>,
    flush_pending: Cell<bool>,
    flusher: Cell<Option<Waker>>,
    pub sessions: RefCell<HashMap<u64, Rc<Session>, ahash::RandomState>>,
    pub subs: RefCell<SubTable>,
    owned: RefCell<HashMap<ChannelName, OwnedChannel, ahash::RandomState>>,
    pub stats: HubStats,
    /// Counters of the shard this hub runs on (for metrics gathering).
    pub shard_stats: Rc<crate::shard::stats::ShardStats>,
    pub(crate) calls: call::Calls,
}

impl Hub {
    /// Creates shard `shard`'s hub and starts its mesh tasks. Must run on the
    /// shard's runtime.
    pub fn start(
        shard: usize,
        mesh: Arc<Mesh>,
        config: Arc<Config>,
        shard_stats: Rc<crate::shard::stats::ShardStats>,
    ) -> Rc<Hub> {
        let hub = Rc::new(Hub {
            shard,
            outbox: RefCell::new((0..mesh.shards()).map(|_| Vec::new()).collect()),
            mesh,
            config,
            flush_pending: Cell::new(false),
            flusher: Cell::new(None),
            sessions: RefCell::default(),
            subs: RefCell::default(),
            owned: RefCell::default(),
            stats: HubStats::default(),
            shard_stats,
            calls: call::Calls::default(),
        });
        monoio::spawn(flush_loop(hub.clone()));
        monoio::spawn(receive_loop(hub.clone()));
        monoio::spawn(expire_loop(hub.clone()));
        hub
    }

    /// The options of `channel`'s namespace; `None` for an unknown namespace.
    pub fn channel_opts(&self, channel: &str) -> Option<&ChannelOptions> {
        self.config.channel_options(channel)
    }

    fn new_channel(&self, channel: &str) -> OwnedChannel {
        let default = ChannelOptions::default();
        OwnedChannel::new(
            self.shards(),
            self.channel_opts(channel).unwrap_or(&default),
        )
    }

    pub fn shards(&self) -> usize {
        self.mesh.shards()
    }

    pub fn owner_of(&self, channel: &str) -> usize {
        owner_of(channel, self.mesh.shards())
    }

    pub fn mesh_depth(&self) -> usize {
        self.mesh.depth(self.shard)
    }

    /// Queues `msg` for shard `dst`; it leaves with the rest of this
    /// scheduler pass's messages for `dst` as one batch.
    pub fn send(&self, dst: usize, msg: MeshMsg) {
        self.outbox.borrow_mut()[dst].push(msg);
        if !self.flush_pending.replace(true) {
            if let Some(w) = self.flusher.take() {
                w.wake();
            }
        }
    }

    /// Hands every queued outbox batch to the mesh (one push and wake-up
    /// per destination). Returns whether anything was queued.
    fn flush_outbox(&self) -> bool {
        self.flush_pending.set(false);
        let batches: Vec<(usize, Vec<MeshMsg>)> = self
            .outbox
            .borrow_mut()
            .iter_mut()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(dst, v)| (dst, std::mem::take(v)))
            .collect();
        let any = !batches.is_empty();
        for (dst, batch) in batches {
            self.mesh.push(self.shard, dst, batch);
        }
        any
    }

    /// Handles one round of the batches other shards (and this one) sent.
    /// Returns the batches taken.
    fn receive_round(&self) -> usize {
        let n = self.mesh.pop_round(self.shard, |batch| {
            for msg in batch {
                self.handle(msg);
            }
        });
        self.stats
            .mesh_batches_in
            .set(self.stats.mesh_batches_in.get() + n as u64);
        n
    }

    /// Runs the hub's pending work now, from inside the reactor's flush
    /// pass: sends the outbox and handles what came in, a few rounds deep
    /// (a publication, then its acknowledgement and deliveries).
    pub fn pump(&self) {
        for _ in 0..PUMP_ROUNDS {
            let sent = self.flush_outbox();
            if self.receive_round() == 0 && !sent {
                break;
            }
        }
    }

    pub fn reply_to(&self, conn: u64, id: u32) -> ReplyTo {
        ReplyTo {
            shard: self.shard as u16,
            conn,
            id,
        }
    }

    /// Channels this shard owns, with their subscriber counts.
    pub fn owned_channels(&self) -> Vec<(ChannelName, u64)> {
        self.owned
            .borrow()
            .iter()
            .filter(|(_, c)| c.total > 0)
            .map(|(n, c)| (n.clone(), c.total))
            .collect()
    }

    /// Presence of a channel this shard owns, as reply JSON fields.
    pub fn presence_fields(&self, channel: &str, stats: bool) -> Bytes {
        let owned = self.owned.borrow();
        let mut out = BytesMut::with_capacity(64);
        match owned.get(channel) {
            Some(ch) if stats => ch.presence_stats_json(&mut out),
            Some(ch) => ch.presence_json(&mut out),
            None => empty_presence(&mut out, stats),
        }
        out.freeze()
    }

    fn handle(&self, msg: MeshMsg) {
        match msg {
            MeshMsg::Subscribe {
                channel,
                member,
                reply,
                recoverable,
                recover,
                expires_at,
            } => self.owner_subscribe(channel, member, reply, recoverable, recover, expires_at),
            MeshMsg::Unsubscribe {
                channel,
                shard,
                client,
            } => self.owner_unsubscribe(channel, shard as usize, &client),
            MeshMsg::Publish {
                channel,
                data,
                info,
                reply,
            } => {
                self.owner_publish(channel, &data, info.as_deref(), reply);
            }
            MeshMsg::Presence {
                channel,
                stats,
                reply,
            } => self.owner_presence(&channel, stats, reply),
            MeshMsg::Deliver { channel, frame } => {
                let n = self.subs.borrow().deliver(&channel, &frame);
                self.stats
                    .deliveries
                    .set(self.stats.deliveries.get() + n as u64);
            }
            MeshMsg::Subscribed {
                channel,
                reply,
                epoch,
                offset,
                recoverable,
                recovery,
                expires_at,
            } => self.on_subscribed(
                channel,
                reply,
                &epoch,
                offset,
                (recoverable, expires_at),
                recovery,
            ),
            MeshMsg::Run(job) => job(self),
            MeshMsg::Reply { reply, line } => {
                if let Some(s) = self.sessions.borrow().get(&reply.conn) {
                    s.conn.reply(encode(OpCode::Text, &line));
                }
            }
        }
    }

    // ---- owner side ----

    fn owner_subscribe(
        &self,
        channel: ChannelName,
        member: Member,
        reply: ReplyTo,
        recoverable: bool,
        recover: Option<(u64, Arc<str>)>,
        expires_at: u64,
    ) {
        let mut owned = self.owned.borrow_mut();
        let ch = owned
            .entry(channel.clone())
            .or_insert_with(|| self.new_channel(&channel));
        ch.per_shard[reply.shard as usize] += 1;
        ch.total += 1;
        // Computed at the moment the subscriber is counted: every later
        // publication reaches it live, every earlier one is in this set.
        let (top, current) = (ch.offset, ch.epoch.clone());
        let recovery = recover.map(|(since, epoch)| match ch.history.as_mut() {
            Some(h) if *epoch == *current => {
                h.expire(Instant::now());
                h.recover(since, top)
            }
            _ => Recovery::Unrecoverable,
        });
        let recoverable = recoverable && ch.history.is_some();
        let join = ch
            .join_leave
            .then(|| push::join_leave_frame(&channel, true, &member.info));
        if ch.presence_on || ch.join_leave {
            ch.presence.insert(member.client.clone(), member);
        }
        self.send(
            reply.shard as usize,
            MeshMsg::Subscribed {
                channel: channel.clone(),
                reply,
                epoch: ch.epoch.clone(),
                offset: ch.offset,
                recoverable,
                recovery,
                expires_at,
            },
        );
        if let Some(frame) = join {
            for s in ch.shards_with_subscribers() {
                self.send(
                    s,
                    MeshMsg::Deliver {
                        channel: channel.clone(),
                        frame: frame.clone(),
                    },
                );
            }
        }
    }

    fn owner_unsubscribe(&self, channel: ChannelName, shard: usize, client: &str) {
        let mut owned = self.owned.borrow_mut();
        let Some(ch) = owned.get_mut(&channel) else {
            return;
        };
        if ch.per_shard[shard] > 0 {
            ch.per_shard[shard] -= 1;
            ch.total -= 1;
        }
        if let Some(m) = ch.presence.remove(client) {
            if ch.join_leave {
                let frame = push::join_leave_frame(&channel, false, &m.info);
                for s in ch.shards_with_subscribers() {
                    self.send(
                        s,
                        MeshMsg::Deliver {
                            channel: channel.clone(),
                            frame: frame.clone(),
                        },
                    );
                }
            }
        }
        if ch.is_idle() {
            owned.remove(&channel);
        }
    }

    /// Acknowledges a client publish (an empty result).
    fn reply_published(&self, r: ReplyTo) {
        let mut line = BytesMut::with_capacity(32);
        push::empty_result(&mut line, r.id, "publish");
        self.send(
            r.shard as usize,
            MeshMsg::Reply {
                reply: r,
                line: line.freeze(),
            },
        );
    }

    /// Assigns the next offset, encodes the push once, and sends it to every
    /// shard with subscribers. Returns (epoch, offset); (empty, 0) when the
    /// channel has no stream and would keep nothing.
    pub fn owner_publish(
        &self,
        channel: ChannelName,
        data: &[u8],
        info: Option<&[u8]>,
        reply: Option<ReplyTo>,
    ) -> (Arc<str>, u64) {
        let mut owned = self.owned.borrow_mut();
        self.stats
            .publications
            .set(self.stats.publications.get() + 1);
        if !owned.contains_key(&channel)
            && !self
                .channel_opts(&channel)
                .is_some_and(|o| o.history_enabled())
        {
            // Nobody subscribed and nothing to keep: the publication reaches
            // no one. No stream is created (and none thrown away again), so
            // there is no offset: 0 and an empty epoch.
            if let Some(r) = reply {
                self.reply_published(r);
            }
            return (NO_EPOCH.with(Arc::clone), 0);
        }
        let ch = owned
            .entry(channel.clone())
            .or_insert_with(|| self.new_channel(&channel));
        ch.offset += 1;
        let (epoch, offset) = (ch.epoch.clone(), ch.offset);
        // The acknowledgement is queued before the deliveries: the publisher's
        // connection is flushed first in the pass that sends them all, so it
        // can send its next publications while the fan-out is on the wire.
        if let Some(r) = reply {
            self.reply_published(r);
        }
        if ch.total > 0 || ch.history.is_some() {
            let object = push::publication_object(data, info, offset);
            if ch.total > 0 {
                let frame = push::publication_push(&channel, &object);
                for s in ch.shards_with_subscribers() {
                    self.send(
                        s,
                        MeshMsg::Deliver {
                            channel: channel.clone(),
                            frame: frame.clone(),
                        },
                    );
                }
            }
            if let Some(h) = ch.history.as_mut() {
                h.push(offset, object, Instant::now());
            }
        } else if ch.is_idle() {
            // Nobody holds a position in this stream: forget it.
            owned.remove(&channel);
        }
        (epoch, offset)
    }

    fn owner_presence(&self, channel: &str, stats: bool, reply: ReplyTo) {
        let mut line = BytesMut::with_capacity(128);
        push::open_result(
            &mut line,
            reply.id,
            if stats { "presence_stats" } else { "presence" },
        );
        line.put_slice(&self.presence_fields(channel, stats));
        push::close_result(&mut line);
        self.send(
            reply.shard as usize,
            MeshMsg::Reply {
                reply,
                line: line.freeze(),
            },
        );
    }

    /// History of a channel this shard owns: (publications, epoch, offset).
    /// `since` with another epoch is an unrecoverable position (112).
    pub fn history_query(
        &self,
        channel: &str,
        since: Option<(u64, String)>,
        limit: i64,
        reverse: bool,
    ) -> Result<(Vec<Bytes>, Arc<str>, u64), ClientError> {
        let mut owned = self.owned.borrow_mut();
        let ch = owned
            .entry(channel.into())
            .or_insert_with(|| self.new_channel(channel));
        let Some(h) = ch.history.as_mut() else {
            return Err(codes::NOT_AVAILABLE);
        };
        h.expire(Instant::now());
        let since = match since {
            Some((offset, epoch)) if epoch == *ch.epoch => Some(offset),
            Some(_) => return Err(codes::UNRECOVERABLE_POSITION),
            None => None,
        };
        Ok((h.query(since, limit, reverse), ch.epoch.clone(), ch.offset))
    }

    /// Expires history and forgets channels nobody needs any more.
    fn expire_owned(&self) {
        let now = Instant::now();
        self.owned.borrow_mut().retain(|_, ch| {
            if let Some(h) = ch.history.as_mut() {
                h.expire(now);
            }
            !ch.is_idle()
        });
    }

    // ---- subscriber side ----

    fn on_subscribed(
        &self,
        channel: ChannelName,
        reply: ReplyTo,
        epoch: &str,
        offset: u64,
        (recoverable, expires_at): (bool, u64),
        recovery: Option<Recovery>,
    ) {
        let session = self.sessions.borrow().get(&reply.conn).cloned();
        let keep = session.as_ref().is_some_and(|s| s.activate(&channel));
        match (keep, session) {
            (true, Some(s)) => {
                let frame = if reply.id == 0 {
                    push::server_subscribe_frame(&channel, epoch, offset)
                } else {
                    let mut line = BytesMut::with_capacity(64);
                    push::open_result(&mut line, reply.id, "subscribe");
                    if recoverable {
                        line.put_slice(b"\"recoverable\":true,");
                    }
                    push::stream_position(&mut line, epoch, offset);
                    if expires_at > 0 {
                        line.put_slice(b",\"expires\":true,\"ttl\":");
                        crate::protocol::json::put_u64(
                            &mut line,
                            expires_at.saturating_sub(crate::auth::unix_now()),
                        );
                    }
                    if let Some(r) = &recovery {
                        line.put_slice(b",\"was_recovering\":true");
                        match r {
                            Recovery::Recovered(pubs) => {
                                line.put_slice(b",\"recovered\":true,\"publications\":");
                                push::put_array(&mut line, pubs);
                            }
                            Recovery::Unrecoverable => line.put_slice(b",\"recovered\":false"),
                        }
                    }
                    push::close_result(&mut line);
                    encode(OpCode::Text, &line)
                };
                self.subs.borrow_mut().add(channel, s.conn.clone());
                s.conn.send(frame);
            }
            (_, session) => {
                // Gone or unsubscribed while the owner was answering: undo.
                let client = session
                    .and_then(|s| s.client_id())
                    .unwrap_or_else(|| "".into());
                self.unsubscribe_at_owner(channel, client);
            }
        }
    }

    pub fn unsubscribe_at_owner(&self, channel: ChannelName, client: Arc<str>) {
        let owner = self.owner_of(&channel);
        self.send(
            owner,
            MeshMsg::Unsubscribe {
                channel,
                shard: self.shard as u16,
                client,
            },
        );
    }

    /// Drops a session: its local subscriptions and its presence everywhere.
    pub fn remove_session(&self, session: &Rc<Session>) {
        self.sessions.borrow_mut().remove(&session.conn.id);
        let client = session.client_id().unwrap_or_else(|| "".into());
        for (channel, state) in session.take_subs() {
            if state == SubState::Active {
                self.subs.borrow_mut().remove(&channel, &session.conn);
                self.unsubscribe_at_owner(channel, client.clone());
            }
            // Pending ones are undone when the owner's answer finds no session.
        }
    }
}

async fn expire_loop(hub: Rc<Hub>) {
    loop {
        monoio::time::sleep(std::time::Duration::from_secs(1)).await;
        hub.expire_owned();
    }
}

async fn flush_loop(hub: Rc<Hub>) {
    loop {
        poll_fn(|cx| {
            if hub.flush_pending.get() {
                Poll::Ready(())
            } else {
                hub.flusher.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
        hub.flush_outbox();
    }
}

async fn receive_loop(hub: Rc<Hub>) {
    loop {
        poll_fn(|cx| {
            hub.mesh.register(hub.shard, cx.waker());
            if hub.mesh.has_pending(hub.shard) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        while hub.receive_round() > 0 {}
    }
}

//! The per-shard messaging state: local subscriptions, the channels this shard
//! owns, and the shard's end of the mesh. A publication goes to its channel's
//! owner, which assigns the offset, encodes the push frame once, and sends that
//! one buffer to every shard with local subscribers.

pub mod call;
pub mod mesh;
pub mod seam;
pub mod subs;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};

use bytes::Bytes;

use self::call::Call;
use self::mesh::{owner_of, ChannelName, Member, Mesh, MeshMsg, ReplyTo};
use self::seam::{
    Broker, Done, HistoryQuery, HistoryResult, Position, PresenceManager, Recovery, SubscribeReq,
    Then,
};
use self::subs::{SubKind, SubTable};
use crate::config::{ChannelOptions, Config};
use crate::protocol::codes::ClientError;
use crate::protocol::delta::DeltaFrames;
use crate::shard::conn::Conn;
pub use crate::shard::latency::{stamp, Stamp, NO_STAMP};

/// Outbox → mesh → handle rounds one `pump` runs at most.
const PUMP_ROUNDS: usize = 4;

/// What a broker answers a subscribe with.
pub struct Accepted<'a> {
    /// The stream position the subscriber starts from.
    pub epoch: &'a str,
    pub offset: u64,
    pub recoverable: bool,
    /// Unix seconds when the subscription token expires (0: never).
    pub expires_at: u64,
    /// Present when recovery was asked for.
    pub recovery: Option<Recovery>,
    /// For presence, once the subscription is active.
    pub member: Option<Member>,
    /// The subscriber wants error 112 rather than `recovered: false`.
    pub reject_unrecovered: bool,
    /// The subscriber takes fossil deltas.
    pub delta: bool,
    /// The subscriber's tags filter.
    pub filter: Option<Arc<crate::protocol::tags::FilterNode>>,
}

/// The client layer as the hub sees it: the sessions of this shard's
/// connections, keyed by connection id. The hub routes answers to them; what
/// a reply says and how it is framed is theirs.
pub trait Clients {
    /// Sends a reply line (one or more JSON replies) to connection `conn`,
    /// if it is still here.
    fn reply(&self, conn: u64, line: &[u8]);
    /// The broker accepted `reply.conn`'s pending subscription to `channel`:
    /// the session makes it active and answers the subscribe with `a`.
    /// Returns the connection, or None when the session is gone or no longer
    /// wants the channel.
    fn activate(&self, channel: &ChannelName, reply: ReplyTo, a: &Accepted<'_>)
        -> Option<Rc<Conn>>;
    /// A client's publish got its result.
    fn published(&self, reply: ReplyTo, result: Result<Position, ClientError>);
    /// The broker could not take `reply.conn`'s subscription to `channel`.
    fn subscribe_failed(&self, channel: &str, reply: ReplyTo, error: ClientError);
    /// `conns` lost their subscription to `channel` (its stream has a gap
    /// or a new epoch): each is told (unsubscribe 2500). Returns the client
    /// ids ("" when anonymous) of the sessions still here.
    fn insufficient(&self, channel: &str, conns: Vec<Rc<Conn>>) -> Vec<Arc<str>>;
    /// The connected sessions (past their connect command), and the users
    /// of the identified ones.
    fn census(&self) -> (usize, Vec<String>);
    /// Connection `conn`'s client id, if it has one.
    fn client_id(&self, conn: u64) -> Option<Arc<str>>;
    /// The client layer itself (for its own code reaching it through a hub).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Publications one catch-up buffer holds before its subscribe fails (100).
const CATCHUP_MAX: usize = 16 * 1024;

/// Publications that reached this shard while a subscribe to their channel
/// was in flight at an asynchronous broker: handed to the new subscriber
/// after its reply when they are newer than the position it was given.
#[derive(Default)]
struct Catchup {
    waiting: u32,
    pubs: Vec<(u64, Bytes, Option<Arc<DeltaFrames>>)>,
    overflow: bool,
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
    clients: Rc<dyn Clients>,
    pub subs: RefCell<SubTable>,
    pub(crate) broker: Box<dyn Broker>,
    presence: Box<dyn PresenceManager>,
    catchup: RefCell<HashMap<ChannelName, Catchup, ahash::RandomState>>,
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
        broker: Box<dyn Broker>,
        presence: Box<dyn PresenceManager>,
        clients: Rc<dyn Clients>,
    ) -> Rc<Hub> {
        let hub = Rc::new(Hub {
            shard,
            outbox: RefCell::new((0..mesh.shards()).map(|_| Vec::new()).collect()),
            mesh,
            config,
            flush_pending: Cell::new(false),
            flusher: Cell::new(None),
            clients,
            subs: RefCell::default(),
            broker,
            presence,
            catchup: RefCell::default(),
            stats: HubStats::default(),
            shard_stats,
            calls: call::Calls::default(),
        });
        monoio::spawn(flush_loop(hub.clone()));
        monoio::spawn(receive_loop(hub.clone()));
        hub.broker.start(&hub);
        hub.presence.start(&hub);
        hub
    }

    /// The client layer of this shard.
    pub fn clients(&self) -> &Rc<dyn Clients> {
        &self.clients
    }

    /// The options of `channel`'s namespace; `None` for an unknown namespace.
    pub fn channel_opts(&self, channel: &str) -> Option<&ChannelOptions> {
        self.config.channel_options(channel)
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

    fn handle(&self, msg: MeshMsg) {
        match msg {
            m @ (MeshMsg::Subscribe(_) | MeshMsg::Unsubscribe { .. } | MeshMsg::Publish { .. }) => {
                self.broker.receive(self, m)
            }
            MeshMsg::Deliver {
                channel,
                frame,
                publication: true,
                delta,
                since,
            } => {
                let n = self.subs.borrow_mut().deliver_publication(
                    &channel,
                    &frame,
                    delta.as_deref(),
                    since,
                );
                self.stats
                    .deliveries
                    .set(self.stats.deliveries.get() + n as u64);
            }
            MeshMsg::Deliver {
                channel,
                frame,
                publication: false,
                ..
            } => {
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
                member,
                reject_unrecovered,
                delta,
                filter,
            } => {
                let a = Accepted {
                    epoch: &epoch,
                    offset,
                    recoverable,
                    expires_at,
                    recovery,
                    member,
                    reject_unrecovered,
                    delta,
                    filter,
                };
                self.on_subscribed(channel, reply, a);
            }
            MeshMsg::Run(job) => job(self),
            MeshMsg::Published { reply, result } => self.clients().published(reply, result),
        }
    }

    /// Sends a reply line to a connection of this shard, if it is still here.
    pub fn reply_line(&self, reply: ReplyTo, line: &[u8]) {
        self.clients().reply(reply.conn, line);
    }

    // ---- through the broker ----

    /// This shard's part of the `channels` API (the broker decides what
    /// that is).
    pub fn channel_counts(&self) -> Vec<(ChannelName, u64)> {
        self.broker.channel_counts(self)
    }

    /// Publishes at once when the broker can (see `Broker::publish_here`).
    pub fn publish_here(&self, channel: &str, data: &[u8]) -> Option<Position> {
        self.broker.publish_here(self, channel, data)
    }

    /// This shard's local subscriptions with their counts.
    pub fn local_channel_counts(&self) -> Vec<(ChannelName, u64)> {
        let subs = self.subs.borrow();
        subs.names()
            .map(|n| (n.clone(), subs.subscribers(n) as u64))
            .collect()
    }

    /// Which broker this node runs on ("memory", "redis").
    pub fn broker_name(&self) -> &'static str {
        self.broker.name()
    }

    pub fn broker(&self) -> &dyn Broker {
        &*self.broker
    }

    /// Publishes; the result goes to `done` on this shard. The one path for
    /// client publishes, the server API and TCP publishers.
    pub fn publish(&self, channel: ChannelName, data: Bytes, info: Option<Bytes>, done: Done) {
        self.broker.publish(self, channel, data, info, None, done);
    }

    /// Publishes to the current subscribers only (no offset, no history).
    pub fn publish_without_history(
        &self,
        channel: ChannelName,
        data: Bytes,
        info: Option<Bytes>,
        done: Done,
    ) {
        self.broker
            .publish_without_history(self, channel, data, info, None, done);
    }

    /// Publishes and resolves to the stream position.
    pub fn publish_wait(
        self: &Rc<Self>,
        channel: ChannelName,
        data: Bytes,
        info: Option<Bytes>,
    ) -> Call<Result<Position, ClientError>> {
        self.publish_tagged(channel, data, info, None)
    }

    /// `publish_wait` with the publication's `tags` (a JSON object of
    /// strings: the server API's).
    pub fn publish_tagged(
        self: &Rc<Self>,
        channel: ChannelName,
        data: Bytes,
        info: Option<Bytes>,
        tags: Option<Bytes>,
    ) -> Call<Result<Position, ClientError>> {
        let (id, call) = self.open_call();
        let done = Done::Call {
            shard: self.shard as u16,
            id,
        };
        self.broker.publish(self, channel, data, info, tags, done);
        call
    }

    /// The message that carries a publish's result to where it is awaited;
    /// builds no hub state, so any thread may call it.
    pub fn publish_result_msg(
        done: Done,
        result: Result<Position, ClientError>,
    ) -> Option<(usize, MeshMsg)> {
        match done {
            Done::Client(reply) => {
                Some((reply.shard as usize, MeshMsg::Published { reply, result }))
            }
            Done::Call { shard, id } => Some((
                shard as usize,
                MeshMsg::Run(Box::new(move |home: &Hub| {
                    home.calls.resolve(id, Box::new(result))
                })),
            )),
            Done::None => None,
        }
    }

    /// A continuation for a broker and the call that resolves when it runs
    /// (on this shard).
    pub fn waiter<T: Send + 'static>(self: &Rc<Self>) -> (Then<T>, Call<T>) {
        let (id, call) = self.open_call();
        let then: Then<T> = Box::new(move |home: &Hub, v: T| home.calls.resolve(id, Box::new(v)));
        (then, call)
    }

    /// `channel` as a shared name: the one this shard's subscription table
    /// holds when the channel has subscribers here (one copy per channel
    /// and shard, not one per subscriber), else a new one.
    pub fn channel_name(&self, channel: &str) -> ChannelName {
        self.subs
            .borrow()
            .name(channel)
            .unwrap_or_else(|| channel.into())
    }

    pub fn subscribe(&self, req: SubscribeReq) {
        self.broker.subscribe(self, req);
    }

    /// A subscriber of this shard left `channel` (its local table entry is
    /// already gone): the broker stops counting it, presence forgets it.
    pub fn unsubscribe_at_owner(&self, channel: ChannelName, client: Arc<str>) {
        let tracked = self
            .channel_opts(&channel)
            .is_some_and(|o| o.presence || o.join_leave);
        if tracked {
            self.presence.remove(self, channel.clone(), client.clone());
        }
        self.broker.unsubscribe(self, channel, client);
    }

    pub fn presence(
        &self,
        channel: ChannelName,
        stats: bool,
        then: Then<Result<Bytes, ClientError>>,
    ) {
        self.presence.get(self, channel, stats, then);
    }

    pub fn history(&self, q: HistoryQuery, then: Then<HistoryResult>) {
        self.broker.history(self, q, then);
    }

    // ---- subscriber side ----

    /// The broker accepted a subscription at this stream position: the
    /// session's pending subscription becomes active and is answered.
    /// Returns the connection when it was kept.
    pub fn on_subscribed(
        &self,
        channel: ChannelName,
        reply: ReplyTo,
        a: Accepted<'_>,
    ) -> Option<Rc<Conn>> {
        let clients = self.clients().clone();
        match clients.activate(&channel, reply, &a) {
            Some(conn) => {
                let kind = if a.delta {
                    // It holds the last recovered publication (sent in full
                    // or as a chain of deltas), or nothing to build on.
                    let had = match &a.recovery {
                        Some(Recovery::Recovered(pubs)) => pubs
                            .last()
                            .and_then(|o| crate::protocol::delta::parts(o))
                            .map_or(0, |p| p.offset),
                        _ => 0,
                    };
                    SubKind::Delta(had)
                } else if let Some(f) = &a.filter {
                    SubKind::Filtered(f.clone())
                } else {
                    SubKind::Plain
                };
                self.subs
                    .borrow_mut()
                    .add_as(channel.clone(), conn.clone(), kind);
                if let Some(m) = a.member {
                    self.presence.add(self, channel, m);
                }
                Some(conn)
            }
            None => {
                // Gone or unsubscribed while the owner was answering: undo.
                let client = clients.client_id(reply.conn).unwrap_or_else(|| "".into());
                self.unsubscribe_at_owner(channel, client);
                None
            }
        }
    }

    /// The broker could not take a subscription (it is unreachable): the
    /// pending entry goes and the client gets `error` (the SDKs retry a
    /// temporary one). Nothing was counted for it.
    pub fn on_subscribe_failed(&self, channel: &str, reply: ReplyTo, error: ClientError) {
        self.clients().subscribe_failed(channel, reply, error);
    }

    /// Opens a catch-up buffer for a subscribe to `channel` in flight.
    pub fn catchup_open(&self, channel: &ChannelName) {
        self.catchup
            .borrow_mut()
            .entry(channel.clone())
            .or_default()
            .waiting += 1;
    }

    /// Ends one subscribe's catch-up: the buffered publications newer than
    /// `top` go to `conn` (the new subscriber), in order. Returns false when
    /// the buffer overflowed (the subscriber cannot be made whole).
    pub fn catchup_close(&self, channel: &str, top: u64, conn: Option<&Rc<Conn>>) -> bool {
        let mut all = self.catchup.borrow_mut();
        let Some(c) = all.get_mut(channel) else {
            return true;
        };
        let ok = !c.overflow;
        if let (Some(conn), true) = (conn, ok) {
            let kind = self.subs.borrow().kind_of(channel, conn);
            let mut had = match kind {
                SubKind::Delta(h) => Some(h),
                _ => None,
            };
            for (offset, frame, delta) in &c.pubs {
                let passes = || match &kind {
                    SubKind::Filtered(f) => f.matches(&crate::protocol::tags::of_frame(frame)),
                    _ => true,
                };
                if *offset > top && passes() {
                    match (had, delta) {
                        (Some(h), Some(df)) => {
                            conn.send(df.for_base(h).clone());
                            had = Some(*offset);
                        }
                        _ => {
                            conn.send(frame.clone());
                        }
                    }
                }
            }
            if let Some(h) = had {
                self.subs.borrow_mut().delta_had(channel, conn, h);
            }
        }
        c.waiting -= 1;
        if c.waiting == 0 {
            all.remove(channel);
        }
        drop(all);
        // Publications up to `top` that this shard has not seen yet may
        // still arrive (the read that gave `top` raced them): not to `conn`.
        if let Some(conn) = conn {
            self.subs.borrow_mut().hold_until(channel, conn, top);
        }
        ok
    }

    /// A publication from an asynchronous broker, accepted (arrived at the
    /// broker's side of this node) at `since`: delivered to the local
    /// subscribers, and kept for subscribes still in flight.
    pub fn deliver_publication(
        &self,
        channel: &str,
        offset: u64,
        frame: &Bytes,
        delta: Option<Arc<DeltaFrames>>,
        since: Stamp,
    ) {
        let n = if offset > 0 {
            self.subs.borrow_mut().deliver_positioned(
                channel,
                offset,
                frame,
                delta.as_deref(),
                since,
            )
        } else {
            self.subs
                .borrow_mut()
                .deliver_publication(channel, frame, delta.as_deref(), since)
        };
        self.stats
            .deliveries
            .set(self.stats.deliveries.get() + n as u64);
        if offset > 0 {
            if let Some(c) = self.catchup.borrow_mut().get_mut(channel) {
                if c.pubs.len() < CATCHUP_MAX {
                    c.pubs.push((offset, frame.clone(), delta));
                } else {
                    c.overflow = true;
                }
            }
        }
    }

    /// Deliveries of a frame that is not a publication (join, leave).
    pub fn deliver_frame(&self, channel: &str, frame: &Bytes) {
        self.subs.borrow().deliver(channel, frame);
    }

    /// The broker saw a gap or a new epoch in `channel`'s stream: every local
    /// subscriber is unsubscribed with 2500 (insufficient state); the SDKs
    /// subscribe again and recover what they can, or learn they cannot.
    pub fn insufficient_state(&self, channel: &str) {
        let conns = self.subs.borrow_mut().take(channel);
        if conns.is_empty() {
            return;
        }
        let name: ChannelName = channel.into();
        for client in self.clients().clone().insufficient(channel, conns) {
            self.unsubscribe_at_owner(name.clone(), client);
        }
    }

    /// Clients of this shard subscribed to channels with presence, per
    /// channel (for a broker that refreshes presence entries).
    pub fn presence_members(&self) -> Vec<(ChannelName, Vec<Arc<str>>)> {
        let clients = self.clients();
        let subs = self.subs.borrow();
        let mut out = Vec::new();
        for name in subs.names() {
            let on = self
                .channel_opts(name)
                .is_some_and(|o| o.presence || o.join_leave);
            if !on {
                continue;
            }
            let clients: Vec<Arc<str>> = subs
                .conns(name)
                .iter()
                .filter_map(|c| clients.client_id(c.id))
                .collect();
            if !clients.is_empty() {
                out.push((name.clone(), clients));
            }
        }
        out
    }

    /// Ends `conn`'s active subscription to `channel` here and at its owner
    /// (presence included).
    pub fn drop_subscription(&self, channel: ChannelName, conn: &Rc<Conn>, client: Arc<str>) {
        self.subs.borrow_mut().remove(&channel, conn);
        self.unsubscribe_at_owner(channel, client);
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

//! The Redis thread: one tokio current-thread runtime that owns every Redis
//! connection of the node. Shards hand it requests over an unbounded channel
//! and never wait; it answers through the mesh (its own FIFO queue to every
//! shard), so a shard sees a channel's publications, subscribe answers and
//! stream-state events in the order this thread produced them.
//!
//! Per Redis server ("link"): one multiplexed command connection (every
//! command pipelined, many in flight) and one PUB/SUB connection. A
//! supervisor connects (through Sentinel when configured), subscribes the
//! node's channels again in batches, checks every history channel's stream
//! position against what the node last saw (a gap or a new epoch: the
//! subscribers are told, 2500), and reconnects when the link dies. A probe
//! published every second over the command connection must come back over
//! PUB/SUB within 3 s, or the link counts as dead even without an error.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::Value;
use tokio::sync::{mpsc, oneshot, Notify};

use super::cluster;
use super::conn::{has_sharded_pubsub, Conn, Pushed, SubSink, SubStream};
use super::keys::{server_of, Keys};
use super::wire::{self, ChannelMsg, ControlKind, ControlMsg};
use super::{scripts, Shared};
use crate::broker::memory::owner::{epoch_string, new_epoch};
use crate::broker::{Control, ControlHandler, Done, HistoryQuery, HistoryResult, Recovery, Then};
use crate::config::{BrokerSection, Config};
use crate::hub::mesh::{ChannelName, Mesh, MeshMsg};
use crate::hub::{stamp, Hub};
use crate::protocol::codes::{self, ClientError};
use crate::protocol::{delta, push};

/// Channels per SUBSCRIBE command when a link (re)subscribes everything.
const SUBSCRIBE_BATCH: usize = 512;
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_DEADLINE: Duration = Duration::from_secs(3);
/// A Cluster link down this long gets a new cluster client.
const CLUSTER_REBUILD: Duration = Duration::from_secs(15);

/// What shards ask of the Redis thread.
pub(crate) enum Req {
    Publish {
        channel: ChannelName,
        /// The publication without offset (wire::publication).
        object: Bytes,
        done: Done,
        /// Kept in the channel's stream (false: delivered only).
        history: bool,
    },
    Subscribe {
        shard: u16,
        channel: ChannelName,
        /// Read the stream position (a channel with history).
        history: bool,
        recover: Option<(u64, Arc<str>)>,
        then: Then<Result<SubscribeRead, ClientError>>,
    },
    Unsubscribe {
        shard: u16,
        channel: ChannelName,
    },
    /// Adds a client (with its ClientInfo) to presence; a join where the
    /// channel has join_leave.
    PresenceAdd {
        channel: ChannelName,
        client: Arc<str>,
        info: Bytes,
    },
    /// Removes a client from presence; a leave where it was present.
    PresenceRemove {
        channel: ChannelName,
        client: Arc<str>,
    },
    History {
        shard: u16,
        q: HistoryQuery,
        then: Then<HistoryResult>,
    },
    Presence {
        shard: u16,
        channel: ChannelName,
        stats: bool,
        then: Then<Result<Bytes, ClientError>>,
    },
    /// A shard's presence members still here, per channel.
    Touch(Vec<(ChannelName, Vec<Arc<str>>)>),
    Control {
        heartbeat: bool,
        json: Vec<u8>,
    },
    /// Every other live node's channels with their client counts.
    Channels {
        shard: u16,
        then: Then<ChannelCounts>,
    },
}

/// Channel → clients, summed over the nodes that answered.
pub type ChannelCounts = std::collections::BTreeMap<String, u64>;

/// How long a survey waits for the other nodes' answers.
const SURVEY_WAIT: Duration = Duration::from_secs(1);

struct Survey {
    waiting: std::collections::HashSet<String>,
    counts: ChannelCounts,
    done: Option<oneshot::Sender<ChannelCounts>>,
}

/// A subscribe's answer: the stream position and, when recovering, what the
/// subscriber missed.
pub struct SubscribeRead {
    pub epoch: Arc<str>,
    pub top: u64,
    pub recovery: Option<Recovery>,
}

enum SubOp {
    Subscribe(Vec<String>, Option<oneshot::Sender<()>>),
    Unsubscribe(Vec<String>),
}

/// A publish waiting for its link's next pipeline.
struct PubJob {
    channel: ChannelName,
    object: Bytes,
    done: Done,
    at: Instant,
    history: bool,
}

/// Publishes per pipeline at most (one round trip carries them all).
const PUBLISH_BATCH: usize = 1024;
/// Publishes waiting for one Redis server at most: beyond it (Redis slower
/// than the publishers, for long) new ones fail at once with error 100
/// instead of growing the node's memory without bound.
const PUBLISH_QUEUE_MAX: usize = 256 * 1024;

struct Link {
    idx: usize,
    /// Publishes, in arrival order; one task sends them as pipelines, one
    /// pipeline at a time, so a channel's publications reach Redis in order.
    pubq: mpsc::UnboundedSender<PubJob>,
    /// Publishes in `pubq` now, and whether it was found full (logged once).
    queued: Cell<usize>,
    full: Cell<bool>,
    cmd: RefCell<Option<Conn>>,
    subq: RefCell<Option<mpsc::UnboundedSender<SubOp>>>,
    up: Cell<bool>,
    /// Wakes the current connection's reader to end it (a fresh one per
    /// connection, so a stale wake-up never ends the next).
    dead: RefCell<Rc<Notify>>,
    probe_seen: Cell<Instant>,
    /// Woken when the probe comes back over PUB/SUB.
    probe_back: Notify,
    /// A Cluster: every channel must be subscribed again once every master
    /// answers (after a connect that could not subscribe them all, or a
    /// node's connection dropped without sharded PUB/SUB; with it, the
    /// probe counts each master's sharded subscriptions instead).
    resync: Cell<bool>,
    /// That resubscription is running now.
    resyncing: Cell<bool>,
}

/// A channel some shard of this node subscribes to.
struct Chan {
    /// Subscribers per shard (pending or active).
    shards: Vec<u32>,
    total: u32,
    /// The last stream position this node saw (publications and reads).
    last: Option<(Arc<str>, u64)>,
    /// The last positioned publication that came over PUB/SUB: one that
    /// is not newer is a second copy (the node held the channel on two
    /// connections for a while, e.g. a master's replica took a subscribe
    /// while the master's connection was being repaired) and is dropped.
    delivered: Option<(Arc<str>, u64)>,
    history: bool,
    /// The SUBSCRIBE was acknowledged on the current connection.
    active: bool,
    /// The Redis Cluster slot of the channel's PUB/SUB name.
    slot: u16,
    /// The namespace lets subscribers take fossil deltas (and sends
    /// publications as deltas: `delta_publish`).
    fossil: bool,
    delta_publish: bool,
    /// The last positioned payload this node saw, and its epoch: the base of
    /// the next delta.
    delta_base: Option<(Arc<str>, delta::Base)>,
}

/// What a positioned publication that came over PUB/SUB is.
enum Arrival {
    Next,
    AfterGap,
    Again,
}

impl Chan {
    /// Whether the publication at `offset` of `epoch` comes after a gap
    /// in what this node saw (publications and reads; a new epoch counts
    /// as one); remembers it as the last position if newer.
    fn gap(&mut self, offset: u64, epoch: &str) -> bool {
        let gap = match &self.last {
            Some((e, o)) => **e != *epoch || offset != o + 1,
            None => false,
        };
        let newer = match &self.last {
            Some((e, o)) => **e != *epoch || offset > *o,
            None => true,
        };
        if newer {
            match &mut self.last {
                // The epoch's text is kept, not made again per publication.
                Some((e, o)) if **e == *epoch => *o = offset,
                _ => self.last = Some((epoch.into(), offset)),
            }
        }
        gap && newer
    }

    /// Whether the publication at `offset` of `epoch` came over PUB/SUB
    /// before (or an older one); remembers it if not.
    fn seen_before(&mut self, epoch: &str, offset: u64) -> bool {
        match &mut self.delivered {
            Some((e, o)) if **e == *epoch => {
                if offset <= *o {
                    return true;
                }
                *o = offset;
            }
            _ => self.delivered = Some((epoch.into(), offset)),
        }
        false
    }
}

struct State {
    shared: Arc<Shared>,
    cfg: Arc<Config>,
    broker: BrokerSection,
    node: Arc<str>,
    keys: Keys,
    mesh: Arc<Mesh>,
    /// This thread's source index in the mesh.
    src: usize,
    links: Vec<Rc<Link>>,
    /// One link for a whole Redis Cluster.
    cluster: bool,
    /// The Cluster has sharded PUB/SUB (SSUBSCRIBE, SPUBLISH); learned at
    /// each connect.
    sharded: Cell<bool>,
    /// When a command error was last logged (at most one a second).
    warned: Cell<Option<Instant>>,
    chans: RefCell<HashMap<ChannelName, Chan, ahash::RandomState>>,
    control: ControlHandler,
    timeout: Duration,
    surveys: RefCell<HashMap<u64, Survey>>,
    next_survey: Cell<u64>,
    /// Per-shard batches for the mesh, and whether a flush is on its way.
    out: RefCell<Vec<Vec<MeshMsg>>>,
    flush_scheduled: Cell<bool>,
    /// This state itself (for the flush task).
    me: RefCell<std::rc::Weak<State>>,
    s_publish: redis::Script,
    s_read: redis::Script,
    s_presence_add: redis::Script,
    s_presence_remove: redis::Script,
    s_presence_touch: redis::Script,
    s_presence_get: redis::Script,
}

/// Starts the thread; returns the request channel.
pub(crate) fn start(
    shared: Arc<Shared>,
    cfg: Arc<Config>,
    mesh: Arc<Mesh>,
    control: ControlHandler,
    rx: mpsc::UnboundedReceiver<Req>,
) -> anyhow::Result<()> {
    let links = shared.links.len();
    std::thread::Builder::new()
        .name("redis".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime for the Redis broker");
            let local = tokio::task::LocalSet::new();
            let broker = cfg.broker.clone();
            let mut pubqs = Vec::new();
            let st = Rc::new(State {
                node: shared.node_uid.clone(),
                keys: Keys::new(&broker.prefix),
                src: mesh.shards(),
                links: (0..links)
                    .map(|idx| {
                        let (pubq, rx) = mpsc::unbounded_channel();
                        pubqs.push(rx);
                        Rc::new(Link {
                            idx,
                            pubq,
                            queued: Cell::new(0),
                            full: Cell::new(false),
                            cmd: RefCell::new(None),
                            subq: RefCell::new(None),
                            up: Cell::new(false),
                            dead: RefCell::new(Rc::new(Notify::new())),
                            probe_seen: Cell::new(Instant::now()),
                            probe_back: Notify::new(),
                            resync: Cell::new(false),
                            resyncing: Cell::new(false),
                        })
                    })
                    .collect(),
                cluster: !broker.cluster_addresses.is_empty(),
                sharded: Cell::new(true),
                warned: Cell::new(None),
                chans: RefCell::default(),
                surveys: RefCell::default(),
                next_survey: Cell::new(1),
                out: RefCell::new((0..mesh.shards()).map(|_| Vec::new()).collect()),
                flush_scheduled: Cell::new(false),
                me: RefCell::new(std::rc::Weak::new()),
                timeout: Duration::from_secs_f64(broker.command_timeout.max(0.05)),
                s_publish: redis::Script::new(scripts::PUBLISH),
                s_read: redis::Script::new(scripts::READ),
                s_presence_add: redis::Script::new(scripts::PRESENCE_ADD),
                s_presence_remove: redis::Script::new(scripts::PRESENCE_REMOVE),
                s_presence_touch: redis::Script::new(scripts::PRESENCE_TOUCH),
                s_presence_get: redis::Script::new(scripts::PRESENCE_GET),
                broker,
                shared,
                cfg,
                mesh,
                control,
            });
            *st.me.borrow_mut() = Rc::downgrade(&st);
            local.block_on(&rt, run(st, rx, pubqs));
        })?;
    Ok(())
}

async fn run(
    st: Rc<State>,
    mut rx: mpsc::UnboundedReceiver<Req>,
    pubqs: Vec<mpsc::UnboundedReceiver<PubJob>>,
) {
    for (link, q) in st.links.iter().zip(pubqs) {
        tokio::task::spawn_local(supervise(st.clone(), link.clone()));
        tokio::task::spawn_local(probe(st.clone(), link.clone()));
        tokio::task::spawn_local(publisher(st.clone(), link.clone(), q));
    }
    while let Some(req) = rx.recv().await {
        st.handle(req);
        // Take what else is queued before yielding, then hand the shards
        // their batches.
        for _ in 0..1024 {
            match rx.try_recv() {
                Ok(req) => st.handle(req),
                Err(_) => break,
            }
        }
        st.flush();
    }
}

/// Sends a link's publishes as pipelines of EVALSHA publish.lua (history)
/// or PUBLISH (none), in order, one pipeline in flight.
async fn publisher(st: Rc<State>, link: Rc<Link>, mut q: mpsc::UnboundedReceiver<PubJob>) {
    let mut jobs = Vec::with_capacity(PUBLISH_BATCH);
    while q.recv_many(&mut jobs, PUBLISH_BATCH).await > 0 {
        let batch = std::mem::take(&mut jobs);
        link.queued
            .set(link.queued.get().saturating_sub(batch.len()));
        if link.queued.get() < PUBLISH_QUEUE_MAX / 2 {
            link.full.set(false);
        }
        let Ok(mut conn) = st.conn(&link) else {
            for job in batch {
                st.publish_failed(job);
            }
            st.flush();
            continue;
        };
        if st.cluster {
            // Channels of many slots cannot share a pipeline in a Cluster:
            // one command each, all sent at once (the cluster client keeps
            // their order per master), each answered on its own.
            let all = batch.iter().map(|job| {
                let (st, mut conn) = (st.clone(), conn.clone());
                async move { tokio::time::timeout(st.timeout, st.publish_one(&mut conn, job)).await }
            });
            let answers = futures_util::future::join_all(all).await;
            for (job, r) in batch.into_iter().zip(answers) {
                let r = st
                    .judge(&link, r)
                    .and_then(|v| parse_published(v).ok_or(codes::INTERNAL));
                st.publish_answer(job, r);
            }
            st.flush();
            continue;
        }
        let mut pipe = redis::pipe();
        for job in &batch {
            st.publish_cmd(&mut pipe, job);
        }
        let r = tokio::time::timeout(st.timeout, pipe.query_async::<Vec<Value>>(&mut conn)).await;
        match st.judge(&link, r) {
            Ok(values) if values.len() == batch.len() => {
                for (job, v) in batch.into_iter().zip(values) {
                    st.publish_answer(job, parse_published(v).ok_or(codes::INTERNAL));
                }
            }
            other => {
                if let Ok(v) = &other {
                    tracing::warn!(got = v.len(), want = batch.len(), "redis pipeline answer");
                }
                for job in batch {
                    st.publish_failed(job);
                }
            }
        }
        st.flush();
    }
}

/// `{offset, epoch}` from publish.lua, or the integer PUBLISH returns (no
/// history: no position).
fn parse_published(v: Value) -> Option<crate::broker::Position> {
    match v {
        Value::Int(_) => Some(("".into(), 0)),
        Value::Array(mut a) if a.len() == 2 => {
            let epoch = match a.pop()? {
                Value::BulkString(b) => String::from_utf8(b).ok()?,
                Value::SimpleString(s) => s,
                _ => return None,
            };
            let offset = match a.pop()? {
                Value::Int(n) if n > 0 => n as u64,
                _ => return None,
            };
            Some((epoch.into(), offset))
        }
        _ => None,
    }
}

impl State {
    /// Queues `msg` for shard `dst`; it leaves with the rest at `flush`.
    fn send(&self, dst: usize, msg: MeshMsg) {
        let mut out = self.out.borrow_mut();
        let first = out.iter().all(Vec::is_empty);
        out[dst].push(msg);
        drop(out);
        if first {
            // Whatever this turn queues goes as one batch per shard, after
            // the tasks ready now have run.
            if !self.flush_scheduled.replace(true) {
                let st = self.me.borrow().upgrade();
                if let Some(st) = st {
                    tokio::task::spawn_local(async move { st.flush() });
                }
            }
        }
    }

    /// Hands every queued batch to the mesh (one push and wake-up per shard).
    fn flush(&self) {
        self.flush_scheduled.set(false);
        let mut out = self.out.borrow_mut();
        for (dst, batch) in out.iter_mut().enumerate() {
            if !batch.is_empty() {
                self.mesh.push(self.src, dst, std::mem::take(batch));
            }
        }
    }

    fn run_on(&self, dst: usize, job: impl FnOnce(&Hub) + Send + 'static) {
        self.send(dst, MeshMsg::Run(Box::new(job)));
    }

    fn link_of(&self, channel: &str) -> &Rc<Link> {
        &self.links[server_of(channel, self.links.len())]
    }

    fn history_opts(&self, channel: &str) -> Option<(usize, u64)> {
        self.cfg
            .channel_options(channel)
            .filter(|o| o.history_enabled())
            .map(|o| (o.history_size, o.history_ttl.ceil().max(1.0) as u64))
    }

    fn handle(self: &Rc<Self>, req: Req) {
        match req {
            Req::Publish {
                channel,
                object,
                done,
                history,
            } => {
                let link = self.link_of(&channel);
                let job = PubJob {
                    channel,
                    object,
                    done,
                    at: Instant::now(),
                    history,
                };
                if link.queued.get() >= PUBLISH_QUEUE_MAX {
                    if !link.full.replace(true) {
                        tracing::warn!(
                            redis = %self.shared.links[link.idx].addr,
                            "publish queue full ({PUBLISH_QUEUE_MAX}): publishes fail with 100 until Redis catches up"
                        );
                    }
                    return self.publish_failed(job);
                }
                match link.pubq.send(job) {
                    Ok(()) => link.queued.set(link.queued.get() + 1),
                    Err(mpsc::error::SendError(job)) => self.publish_failed(job),
                }
            }
            Req::Subscribe {
                shard,
                channel,
                history,
                recover,
                then,
            } => {
                self.count(&channel, shard as usize, 1, history);
                let st = self.clone();
                tokio::task::spawn_local(async move {
                    let r = st.subscribe(&channel, history, recover).await;
                    if r.is_err() {
                        st.shared.metrics.count_error();
                        st.uncount(&channel, shard as usize);
                    }
                    st.run_on(shard as usize, move |h| then(h, r));
                });
            }
            Req::Unsubscribe { shard, channel } => self.uncount(&channel, shard as usize),
            Req::PresenceAdd {
                channel,
                client,
                info,
            } => {
                let join = self
                    .cfg
                    .channel_options(&channel)
                    .is_some_and(|o| o.join_leave);
                let st = self.clone();
                tokio::task::spawn_local(async move {
                    let _ = st.presence_add(&channel, &client, &info, join).await;
                });
            }
            Req::PresenceRemove { channel, client } => {
                let leave = self
                    .cfg
                    .channel_options(&channel)
                    .is_some_and(|o| o.join_leave);
                let st = self.clone();
                tokio::task::spawn_local(async move {
                    let _ = st.presence_remove(&channel, &client, leave).await;
                });
            }
            Req::History { shard, q, then } => {
                let st = self.clone();
                tokio::task::spawn_local(async move {
                    let r = st.history(q).await;
                    st.run_on(shard as usize, move |h| then(h, r));
                });
            }
            Req::Presence {
                shard,
                channel,
                stats,
                then,
            } => {
                let st = self.clone();
                tokio::task::spawn_local(async move {
                    let r = st.presence(&channel, stats).await;
                    st.run_on(shard as usize, move |h| then(h, r));
                });
            }
            Req::Touch(entries) => {
                let st = self.clone();
                tokio::task::spawn_local(async move {
                    for (channel, clients) in entries {
                        let _ = st.presence_touch(&channel, &clients).await;
                    }
                });
            }
            Req::Control { heartbeat, json } => {
                let st = self.clone();
                tokio::task::spawn_local(async move {
                    let kind = if heartbeat {
                        ControlKind::Heartbeat
                    } else {
                        ControlKind::Action
                    };
                    if st.send_control(kind, &json).await.is_err() && !heartbeat {
                        tracing::warn!("control action not sent: the Redis control link is down");
                    }
                });
            }
            Req::Channels { shard, then } => {
                let st = self.clone();
                tokio::task::spawn_local(async move {
                    let counts = st.survey().await;
                    st.run_on(shard as usize, move |h| then(h, counts));
                });
            }
        }
    }
}

// ---- control channel: actions, heartbeats, surveys ----
impl State {
    async fn send_control(&self, kind: ControlKind, json: &[u8]) -> Result<(), ClientError> {
        let msg = wire::control(kind, &self.node, json);
        let link = &self.links[0];
        self.command::<i64>(
            link,
            redis::cmd("PUBLISH").arg(self.keys.control()).arg(&msg[..]),
        )
        .await
        .map(drop)
    }

    /// Asks every other live node for its channels and waits for their
    /// answers (at most `SURVEY_WAIT`; late or silent nodes are left out).
    async fn survey(&self) -> ChannelCounts {
        let waiting: std::collections::HashSet<String> = self.shared.live_nodes();
        if waiting.is_empty() {
            return ChannelCounts::new();
        }
        let id = self.next_survey.get();
        self.next_survey.set(id + 1);
        let (tx, rx) = oneshot::channel();
        self.surveys.borrow_mut().insert(
            id,
            Survey {
                waiting,
                counts: ChannelCounts::new(),
                done: Some(tx),
            },
        );
        let q = serde_json::json!({ "id": id }).to_string();
        if self
            .send_control(ControlKind::Question, q.as_bytes())
            .await
            .is_err()
        {
            self.surveys.borrow_mut().remove(&id);
            return ChannelCounts::new();
        }
        match tokio::time::timeout(SURVEY_WAIT, rx).await {
            Ok(Ok(counts)) => counts,
            _ => {
                let s = self.surveys.borrow_mut().remove(&id);
                let s = s.map(|s| (s.waiting.len(), s.counts));
                let (silent, counts) = s.unwrap_or_default();
                tracing::warn!(
                    silent,
                    "channels survey: some nodes did not answer within 1 s"
                );
                counts
            }
        }
    }

    /// Answers another node's survey with this node's channels.
    fn answer(self: &Rc<Self>, asker: &str, json: &[u8]) {
        #[derive(serde::Deserialize)]
        struct Q {
            id: u64,
        }
        let Ok(q) = serde_json::from_slice::<Q>(json) else {
            return tracing::warn!("survey question not understood");
        };
        let channels: ChannelCounts = self
            .chans
            .borrow()
            .iter()
            .map(|(c, ch)| (c.to_string(), ch.total as u64))
            .collect();
        let a = serde_json::json!({ "to": asker, "id": q.id, "channels": channels }).to_string();
        let st = self.clone();
        tokio::task::spawn_local(async move {
            let _ = st.send_control(ControlKind::Answer, a.as_bytes()).await;
        });
    }

    fn on_answer(&self, node: &str, json: &[u8]) {
        #[derive(serde::Deserialize)]
        struct A {
            to: String,
            id: u64,
            channels: ChannelCounts,
        }
        let Ok(a) = serde_json::from_slice::<A>(json) else {
            return tracing::warn!("survey answer not understood");
        };
        if a.to != *self.node {
            return;
        }
        let mut surveys = self.surveys.borrow_mut();
        let Some(s) = surveys.get_mut(&a.id) else {
            return;
        };
        if !s.waiting.remove(node) {
            return;
        }
        for (c, n) in a.channels {
            *s.counts.entry(c).or_default() += n;
        }
        if s.waiting.is_empty() {
            let mut s = surveys.remove(&a.id).expect("survey");
            if let Some(done) = s.done.take() {
                let _ = done.send(std::mem::take(&mut s.counts));
            }
        }
    }
}

// ---- channels this node holds ----
impl State {
    fn count(&self, channel: &ChannelName, shard: usize, n: u32, history: bool) {
        let mut chans = self.chans.borrow_mut();
        let shards = self.mesh.shards();
        let ch = chans.entry(channel.clone()).or_insert_with(|| {
            let opts = self.cfg.channel_options(channel);
            Chan {
                shards: vec![0; shards],
                total: 0,
                last: None,
                delivered: None,
                slot: cluster::slot_of(self.keys.pubsub(channel).as_bytes()),
                history,
                active: false,
                fossil: opts.is_some_and(|o| o.fossil_allowed()),
                delta_publish: opts.is_some_and(|o| o.delta_on()),
                delta_base: None,
            }
        });
        ch.shards[shard] += n;
        ch.total += n;
        ch.history |= history;
    }

    /// One subscriber of `shard` is gone; the last one of the node ends the
    /// node's PUB/SUB subscription.
    fn uncount(&self, channel: &str, shard: usize) {
        let mut chans = self.chans.borrow_mut();
        let Some(ch) = chans.get_mut(channel) else {
            return;
        };
        if ch.shards[shard] > 0 {
            ch.shards[shard] -= 1;
            ch.total -= 1;
        }
        if ch.total == 0 {
            let was_active = ch.active;
            chans.remove(channel);
            if was_active {
                let link = self.link_of(channel);
                if let Some(q) = link.subq.borrow().as_ref() {
                    let _ = q.send(SubOp::Unsubscribe(vec![self.keys.pubsub(channel)]));
                }
            }
        }
    }

    /// Makes sure the node is subscribed to `channel` in Redis, waiting for
    /// the acknowledgement.
    async fn ensure_subscribed(&self, channel: &str) -> Result<(), ClientError> {
        let active = self.chans.borrow().get(channel).is_some_and(|c| c.active);
        if active {
            return Ok(());
        }
        let link = self.link_of(channel);
        let (tx, rx) = oneshot::channel();
        let sent = match link.subq.borrow().as_ref() {
            Some(q) if link.up.get() || self.cluster => q
                .send(SubOp::Subscribe(vec![self.keys.pubsub(channel)], Some(tx)))
                .is_ok(),
            _ => false,
        };
        if !sent {
            return Err(codes::INTERNAL);
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(())) => {
                if let Some(c) = self.chans.borrow_mut().get_mut(channel) {
                    c.active = true;
                }
                Ok(())
            }
            _ => Err(codes::INTERNAL),
        }
    }

    /// Shards with subscribers of `channel`.
    fn shards_of(&self, channel: &str) -> Vec<usize> {
        self.chans.borrow().get(channel).map_or_else(Vec::new, |c| {
            c.shards
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(i, _)| i)
                .collect()
        })
    }

    /// Tells every shard holding `channel` that its subscribers missed
    /// publications (or the stream started anew): they get 2500.
    fn insufficient(&self, channel: &str) {
        self.shared.metrics.count_insufficient();
        let name: ChannelName = channel.into();
        for dst in self.shards_of(channel) {
            let name = name.clone();
            self.run_on(dst, move |h| h.insufficient_state(&name));
        }
    }
}

// ---- commands ----
impl State {
    /// A command on `link`'s connection, with the command timeout. A
    /// connection-level failure takes the link down (the supervisor
    /// reconnects).
    async fn command<T: redis::FromRedisValue>(
        &self,
        link: &Link,
        cmd: &redis::Cmd,
    ) -> Result<T, ClientError> {
        let mut conn = self.conn(link)?;
        let r = tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await;
        self.judge(link, r)
    }

    async fn script<T: redis::FromRedisValue>(
        &self,
        link: &Link,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<T, ClientError> {
        let mut conn = self.conn(link)?;
        let r = tokio::time::timeout(self.timeout, inv.invoke_async::<T>(&mut conn)).await;
        self.judge(link, r)
    }

    /// The link's connection while it is up. A Cluster's stays in use while
    /// the link is down (some master unreachable): the channels of the
    /// healthy masters keep working, the others fail with the command.
    fn conn(&self, link: &Link) -> Result<Conn, ClientError> {
        match (link.up.get() || self.cluster, link.cmd.borrow().as_ref()) {
            (true, Some(c)) => Ok(c.clone()),
            _ => Err(codes::INTERNAL),
        }
    }

    fn judge<T>(
        &self,
        link: &Link,
        r: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, ClientError> {
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if self.cluster => {
                // The cluster client reconnects nodes and follows slots
                // itself; the probe judges the link.
                self.warn_limited(&format!("redis cluster command: {e}"));
                Err(codes::INTERNAL)
            }
            Ok(Err(e)) => {
                let fatal = e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_unrecoverable_error()
                    || e.code() == Some("READONLY");
                if fatal {
                    self.kill(link, &format!("command failed: {e}"));
                } else if e.code() == Some("NOSCRIPT") {
                    // Someone flushed the scripts: load them again (this
                    // command failed; the next ones will not).
                    tracing::warn!(
                        redis = link.idx,
                        "scripts gone from Redis: loading them again"
                    );
                    if let Ok(mut conn) = self.conn(link) {
                        tokio::task::spawn_local(async move {
                            let _ = load_scripts(&mut conn).await;
                        });
                    }
                } else {
                    tracing::warn!(redis = link.idx, "redis command: {e}");
                }
                Err(codes::INTERNAL)
            }
            Err(_) => Err(codes::INTERNAL),
        }
    }

    /// Logs `what`, unless something was logged less than a second ago.
    fn warn_limited(&self, what: &str) {
        let now = Instant::now();
        if self
            .warned
            .get()
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            self.warned.set(Some(now));
            tracing::warn!("{what}");
        }
    }

    /// Declares `link` down and ends its connection.
    fn kill(&self, link: &Link, why: &str) {
        self.mark_down(link, why);
        link.dead.borrow().notify_one();
    }

    fn mark_down(&self, link: &Link, why: &str) {
        if link.up.replace(false) {
            tracing::warn!(redis = %self.shared.links[link.idx].addr, "redis link down: {why}");
            self.shared.links[link.idx].set_down(why);
        }
    }

    /// Adds `job`'s command to a pipeline.
    fn publish_cmd(&self, pipe: &mut redis::Pipeline, job: &PubJob) {
        let channel = &*job.channel;
        match self.history_opts(channel).filter(|_| job.history) {
            Some((size, ttl)) => {
                pipe.cmd("EVALSHA")
                    .arg(self.s_publish.get_hash())
                    .arg(2)
                    .arg(self.keys.stream(channel))
                    .arg(self.keys.meta(channel))
                    .arg(self.publish_args(job, size, ttl));
            }
            None => {
                let msg = wire::unpositioned(&job.object);
                pipe.cmd(self.publish_command())
                    .arg(self.keys.pubsub(channel))
                    .arg(&msg[..]);
            }
        }
    }

    /// One publish as its own command (a Cluster): the script through
    /// EVALSHA, loaded again where a master does not have it (a promoted
    /// replica).
    async fn publish_one(&self, conn: &mut Conn, job: &PubJob) -> redis::RedisResult<Value> {
        let channel = &*job.channel;
        match self.history_opts(channel).filter(|_| job.history) {
            Some((size, ttl)) => {
                self.s_publish
                    .key(self.keys.stream(channel))
                    .key(self.keys.meta(channel))
                    .arg(self.publish_args(job, size, ttl))
                    .invoke_async(conn)
                    .await
            }
            None => {
                let msg = wire::unpositioned(&job.object);
                redis::cmd(self.publish_command())
                    .arg(self.keys.pubsub(channel))
                    .arg(&msg[..])
                    .query_async(conn)
                    .await
            }
        }
    }

    /// publish.lua's ARGV for `job` (scripts::PUBLISH).
    fn publish_args<'a>(
        &'a self,
        job: &'a PubJob,
        size: usize,
        ttl: u64,
    ) -> impl redis::ToRedisArgs + 'a {
        (
            &job.object[..],
            size,
            ttl,
            self.keys.pubsub(&job.channel),
            self.broker.history_meta_ttl,
            epoch_string(),
            self.publish_command(),
        )
    }

    /// PUBLISH, or SPUBLISH (sharded PUB/SUB) in a Cluster.
    fn publish_command(&self) -> &'static str {
        if self.cluster && self.sharded.get() {
            "spublish"
        } else {
            "publish"
        }
    }

    fn publish_answer(&self, job: PubJob, result: Result<crate::broker::Position, ClientError>) {
        match &result {
            Ok(_) => self.shared.metrics.publish_done(job.at.elapsed()),
            Err(_) => self.shared.metrics.count_error(),
        }
        if let Some((dst, msg)) = Hub::publish_result_msg(job.done, result) {
            self.send(dst, msg);
        }
    }

    fn publish_failed(&self, job: PubJob) {
        self.publish_answer(job, Err(codes::INTERNAL));
    }

    /// READ: the stream position, and the entries `from`..`to`.
    async fn read(
        &self,
        channel: &str,
        range: Option<(String, String, i64, bool)>,
    ) -> Result<Read, ClientError> {
        let link = self.link_of(channel);
        let (from, to, count, reverse) = range.unwrap_or(("-".into(), "+".into(), -1, false));
        let v: Value = self
            .script(
                link,
                &*self
                    .s_read
                    .key(self.keys.stream(channel))
                    .key(self.keys.meta(channel))
                    .arg(&*new_epoch())
                    .arg(self.broker.history_meta_ttl)
                    .arg(from)
                    .arg(to)
                    .arg(count)
                    .arg(if reverse { "1" } else { "0" }),
            )
            .await?;
        parse_read(v).ok_or(codes::INTERNAL)
    }

    async fn subscribe(
        &self,
        channel: &ChannelName,
        history: bool,
        recover: Option<(u64, Arc<str>)>,
    ) -> Result<SubscribeRead, ClientError> {
        self.ensure_subscribed(channel).await?;
        let read = if history {
            let range = recover
                .as_ref()
                .map(|(since, _)| (format!("{}", since + 1), "+".to_string(), 0, false));
            let (top, epoch, entries) = self.read(channel, range).await?;
            if let Some(c) = self.chans.borrow_mut().get_mut(channel) {
                if c.last.is_none() {
                    c.last = Some((epoch.clone(), top));
                }
            }
            let recovery =
                recover.map(|(since, want)| recovery(since, &want, top, &epoch, entries));
            SubscribeRead {
                epoch,
                top,
                recovery,
            }
        } else {
            SubscribeRead {
                epoch: "".into(),
                top: 0,
                recovery: None,
            }
        };
        Ok(read)
    }

    async fn history(&self, q: HistoryQuery) -> HistoryResult {
        let after = q.since.as_ref().map(|(o, _)| o + 1);
        let range = if q.limit == 0 {
            None
        } else {
            let count = q.limit.max(0);
            Some(if q.reverse {
                (
                    "+".to_string(),
                    after.map_or("-".into(), |a| a.to_string()),
                    count,
                    true,
                )
            } else {
                (
                    after.map_or("-".into(), |a| a.to_string()),
                    "+".to_string(),
                    count,
                    false,
                )
            })
        };
        let (top, epoch, entries) = self.read(&q.channel, range).await?;
        if let Some((_, want)) = &q.since {
            if **want != *epoch {
                return Err(codes::UNRECOVERABLE_POSITION);
            }
        }
        let pubs = entries
            .into_iter()
            .map(|(offset, object)| wire::with_offset(&object, offset))
            .collect();
        Ok((pubs, epoch, top))
    }

    async fn presence_add(
        &self,
        channel: &str,
        client: &str,
        info: &[u8],
        join: bool,
    ) -> Result<(), ClientError> {
        let link = self.link_of(channel);
        let (pubsub, msg) = if join {
            (self.keys.pubsub(channel), wire::join_leave(true, info))
        } else {
            (String::new(), Bytes::new())
        };
        self.script::<i64>(
            link,
            &*self
                .s_presence_add
                .key(self.keys.presence_data(channel))
                .key(self.keys.presence_expire(channel))
                .arg(self.presence_ttl())
                .arg(crate::sys::unix_now())
                .arg(client)
                .arg(info)
                .arg(pubsub)
                .arg(&msg[..])
                .arg(self.publish_command()),
        )
        .await
        .map(drop)
    }

    async fn presence_remove(
        &self,
        channel: &str,
        client: &str,
        leave: bool,
    ) -> Result<(), ClientError> {
        let link = self.link_of(channel);
        let pubsub = if leave {
            self.keys.pubsub(channel)
        } else {
            String::new()
        };
        self.script::<i64>(
            link,
            &*self
                .s_presence_remove
                .key(self.keys.presence_data(channel))
                .key(self.keys.presence_expire(channel))
                .arg(client)
                .arg(pubsub)
                .arg(self.publish_command()),
        )
        .await
        .map(drop)
    }

    async fn presence_touch(&self, channel: &str, clients: &[Arc<str>]) -> Result<(), ClientError> {
        let link = self.link_of(channel);
        let mut inv = self.s_presence_touch.prepare_invoke();
        inv.key(self.keys.presence_data(channel))
            .key(self.keys.presence_expire(channel))
            .arg(self.presence_ttl())
            .arg(crate::sys::unix_now());
        for c in clients {
            inv.arg(&**c);
        }
        self.script::<i64>(link, &inv).await.map(drop)
    }

    async fn presence(&self, channel: &str, stats: bool) -> Result<Bytes, ClientError> {
        let link = self.link_of(channel);
        let flat: Vec<Vec<u8>> = self
            .script(
                link,
                &*self
                    .s_presence_get
                    .key(self.keys.presence_data(channel))
                    .key(self.keys.presence_expire(channel))
                    .arg(crate::sys::unix_now()),
            )
            .await?;
        let members: Vec<(&[u8], &[u8])> = flat
            .chunks_exact(2)
            .map(|p| (&p[0][..], &p[1][..]))
            .collect();
        Ok(presence_fields(&members, stats))
    }

    fn presence_ttl(&self) -> u64 {
        self.broker.presence_ttl.ceil().max(1.0) as u64
    }
}

/// A READ script's answer: top offset, epoch, entries (offset, object).
type Read = (u64, Arc<str>, Vec<(u64, Bytes)>);

/// What a subscriber recovering from (`since`, `want`) gets from a read of
/// the entries after `since`.
fn recovery(since: u64, want: &str, top: u64, epoch: &str, entries: Vec<(u64, Bytes)>) -> Recovery {
    // An empty epoch: from the start of the current stream (getState).
    if !want.is_empty() && want != epoch || since > top {
        return Recovery::Unrecoverable;
    }
    if since == top {
        return Recovery::Recovered(Vec::new());
    }
    // Complete only when the window still starts right after `since` and
    // reaches the top.
    let complete = entries.first().is_some_and(|(o, _)| *o == since + 1)
        && entries.last().is_some_and(|(o, _)| *o == top)
        && entries.len() as u64 == top - since;
    if !complete {
        return Recovery::Unrecoverable;
    }
    Recovery::Recovered(
        entries
            .into_iter()
            .map(|(offset, object)| wire::with_offset(&object, offset))
            .collect(),
    )
}

/// `{top, epoch, [[id, [d, payload]], ...]}` from the READ script.
fn parse_read(v: Value) -> Option<Read> {
    let Value::Array(mut parts) = v else {
        return None;
    };
    if parts.len() != 3 {
        return None;
    }
    let entries = parts.pop()?;
    let epoch = parts.pop()?;
    let top = parts.pop()?;
    let top = match top {
        Value::Int(n) if n >= 0 => n as u64,
        _ => return None,
    };
    let epoch: Arc<str> = match epoch {
        Value::BulkString(b) => String::from_utf8(b).ok()?.into(),
        Value::SimpleString(s) => s.into(),
        _ => return None,
    };
    let Value::Array(entries) = entries else {
        return None;
    };
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let Value::Array(mut e) = e else { return None };
        if e.len() != 2 {
            return None;
        }
        let fields = e.pop()?;
        let id = match e.pop()? {
            Value::BulkString(b) => String::from_utf8(b).ok()?,
            Value::SimpleString(s) => s,
            _ => return None,
        };
        let offset: u64 = id.split('-').next()?.parse().ok()?;
        let Value::Array(fields) = fields else {
            return None;
        };
        let payload = fields.into_iter().nth(1)?;
        let Value::BulkString(payload) = payload else {
            return None;
        };
        out.push((offset, Bytes::from(payload)));
    }
    Some((top, epoch, out))
}

/// Presence reply fields from (client, ClientInfo JSON) pairs.
fn presence_fields(members: &[(&[u8], &[u8])], stats: bool) -> Bytes {
    use bytes::BufMut;
    let mut out = bytes::BytesMut::with_capacity(64);
    if stats {
        let mut users: Vec<String> = members
            .iter()
            .filter_map(|(_, info)| {
                serde_json::from_slice::<serde_json::Value>(info)
                    .ok()
                    .and_then(|v| v.get("user").and_then(|u| u.as_str()).map(str::to_string))
            })
            .collect();
        users.sort_unstable();
        users.dedup();
        out.put_slice(b"\"num_clients\":");
        crate::protocol::json::put_u64(&mut out, members.len() as u64);
        out.put_slice(b",\"num_users\":");
        crate::protocol::json::put_u64(&mut out, users.len() as u64);
    } else {
        out.put_slice(b"\"presence\":{");
        let mut first = true;
        for (client, info) in members {
            let (Ok(client), true) = (
                std::str::from_utf8(client),
                serde_json::from_slice::<&serde_json::value::RawValue>(info).is_ok(),
            ) else {
                continue;
            };
            if !first {
                out.put_u8(b',');
            }
            first = false;
            crate::protocol::json::put_str(&mut out, client);
            out.put_u8(b':');
            out.put_slice(info);
        }
        out.put_u8(b'}');
    }
    out.freeze()
}

// ---- the links ----

/// Connects, subscribes, serves, and starts over, for ever.
async fn supervise(st: Rc<State>, link: Rc<Link>) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        match connect(&st, link.idx).await {
            Ok((cmd, sink, stream)) => {
                backoff = Duration::from_millis(100);
                *link.dead.borrow_mut() = Rc::new(Notify::new());
                *link.cmd.borrow_mut() = Some(cmd);
                let (tx, rx) = mpsc::unbounded_channel();
                *link.subq.borrow_mut() = Some(tx);
                tokio::task::spawn_local(sub_task(sink, rx));
                let subscribed = resubscribe(&st, &link).await;
                if let Err(e) = &subscribed {
                    st.shared.links[link.idx].set_down(e);
                    tracing::warn!(redis = %st.shared.links[link.idx].addr, "redis subscribe failed: {e}");
                }
                if subscribed.is_err() && st.cluster {
                    // The masters that answer serve their channels; the
                    // probe subscribes the rest once every master answers.
                    link.resync.set(true);
                    link.probe_seen.set(Instant::now());
                    serve_stream(&st, &link, stream).await;
                } else if subscribed.is_err() {
                    tokio::time::sleep(backoff).await;
                } else {
                    link.probe_seen.set(Instant::now());
                    link.up.set(true);
                    st.shared.links[link.idx].set_up();
                    if !first {
                        st.shared.metrics.count_reconnect();
                    }
                    first = false;
                    tracing::info!(redis = %st.shared.links[link.idx].addr, "redis link up");
                    tokio::task::spawn_local(check_positions(st.clone(), link.clone()));
                    serve_stream(&st, &link, stream).await;
                }
                link.up.set(false);
                *link.cmd.borrow_mut() = None;
                *link.subq.borrow_mut() = None;
                let n = st.links.len();
                for (name, c) in st.chans.borrow_mut().iter_mut() {
                    if server_of(name, n) == link.idx {
                        c.active = false;
                    }
                }
            }
            Err(e) => {
                st.shared.links[link.idx].set_down(&e);
                if first {
                    tracing::warn!(redis = %st.shared.links[link.idx].addr, "redis unreachable: {e}");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// The address to connect to: the configured one, or the master a Sentinel
/// names now (asked again on every reconnect: a failover moves it).
async fn resolve(st: &State, idx: usize) -> Result<redis::ConnectionInfo, String> {
    let b = &st.broker;
    let base = b
        .addresses
        .get(idx)
        .cloned()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let mut info = redis::IntoConnectionInfo::into_connection_info(base.as_str())
        .map_err(|e| format!("{base}: {e}"))?;
    if b.sentinel_addresses.is_empty() {
        return Ok(info);
    }
    let mut last = String::from("no sentinel answered");
    for s in &b.sentinel_addresses {
        let url = if s.starts_with("redis://") {
            s.clone()
        } else {
            format!("redis://{s}")
        };
        let asked = async {
            let client = redis::Client::open(url.as_str())?;
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(&b.sentinel_master)
                .query_async::<Option<(String, u16)>>(&mut c)
                .await
        };
        match tokio::time::timeout(st.timeout, asked).await {
            Ok(Ok(Some((host, port)))) => {
                info = info.set_addr(redis::ConnectionAddr::Tcp(host, port));
                return Ok(info);
            }
            Ok(Ok(None)) => last = format!("sentinel {s}: master {:?} unknown", b.sentinel_master),
            Ok(Err(e)) => last = format!("sentinel {s}: {e}"),
            Err(_) => last = format!("sentinel {s}: timed out"),
        }
    }
    Err(last)
}

async fn connect(st: &State, idx: usize) -> Result<(Conn, SubSink, SubStream), String> {
    if st.cluster {
        return connect_cluster(st).await;
    }
    let info = resolve(st, idx).await?;
    let client = redis::Client::open(info).map_err(|e| e.to_string())?;
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(st.timeout))
        .set_response_timeout(Some(st.timeout));
    let both = async {
        let mut cmd = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        let pubsub = client.get_async_pubsub().await?;
        if !st.broker.sentinel_addresses.is_empty() {
            // A Sentinel may still name a master that has just been demoted.
            let role: Vec<Value> = redis::cmd("ROLE").query_async(&mut cmd).await?;
            if !matches!(role.first(), Some(Value::BulkString(r)) if r == b"master") {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "not a master yet",
                )));
            }
        }
        // Publishes go as EVALSHA in pipelines: the script must be there
        // (a restarted Redis has none).
        let mut cmd = Conn::Node(cmd);
        load_scripts(&mut cmd).await?;
        Ok::<_, redis::RedisError>((cmd, pubsub))
    };
    let (cmd, pubsub) = tokio::time::timeout(st.timeout * 2, both)
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let (mut sink, stream) = pubsub.split();
    let mut own = vec![st.keys.probe(&st.node)];
    if idx == 0 {
        own.push(st.keys.control());
    }
    tokio::time::timeout(st.timeout, sink.subscribe(own))
        .await
        .map_err(|_| "subscribe timed out".to_string())?
        .map_err(|e| e.to_string())?;
    Ok((cmd, SubSink::Node(sink), SubStream::Node(stream)))
}

/// A Cluster: the cluster client from the seed nodes on RESP3 (pushes come
/// through `tx`), every master answering, the node's own channels
/// subscribed (classic PUB/SUB: the cluster bus carries them everywhere).
async fn connect_cluster(st: &State) -> Result<(Conn, SubSink, SubStream), String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = redis::cluster::ClusterClientBuilder::new(st.broker.cluster_addresses.clone())
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(tx)
        .connection_timeout(st.timeout)
        .response_timeout(st.timeout)
        .retries(2)
        .build()
        .map_err(|e| e.to_string())?;
    let up = async {
        let mut c = client.get_async_connection().await?;
        ping_masters(&mut c).await?;
        let sharded = has_sharded_pubsub(&mut c).await?;
        c.subscribe(vec![st.keys.probe(&st.node), st.keys.control()])
            .await?;
        Ok::<_, redis::RedisError>((c, sharded))
    };
    let (c, sharded) = tokio::time::timeout(st.timeout * 2, up)
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    if st.sharded.replace(sharded) != sharded || !sharded {
        tracing::info!(
            sharded,
            "redis cluster: {}",
            if sharded {
                "sharded PUB/SUB (SSUBSCRIBE, SPUBLISH)"
            } else {
                "no sharded PUB/SUB on these servers: classic PUB/SUB over the cluster bus"
            }
        );
    }
    Ok((
        Conn::Cluster(c.clone()),
        SubSink::Cluster(c, sharded),
        SubStream::Cluster(rx),
    ))
}

/// PING on every master of the Cluster: Ok when all of them answer.
async fn ping_masters(c: &mut redis::cluster_async::ClusterConnection) -> redis::RedisResult<()> {
    use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
    c.route_command(
        redis::cmd("PING"),
        RoutingInfo::MultiNode((
            MultipleNodeRoutingInfo::AllMasters,
            Some(ResponsePolicy::AllSucceeded),
        )),
    )
    .await
    .map(drop)
}

/// Loads the scripts sent as EVALSHA in pipelines.
async fn load_scripts(conn: &mut Conn) -> redis::RedisResult<()> {
    for src in [scripts::PUBLISH, scripts::READ] {
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(src)
            .query_async::<String>(conn)
            .await?;
    }
    Ok(())
}

/// Subscribes every channel this node holds on `link`, in batches.
async fn resubscribe(st: &State, link: &Link) -> Result<(), String> {
    let names: Vec<String> = st
        .chans
        .borrow()
        .keys()
        .filter(|c| server_of(c, st.links.len()) == link.idx)
        .map(|c| st.keys.pubsub(c))
        .collect();
    subscribe_again(st, link, names).await
}

/// Subscribes `names` (PUB/SUB names of channels on `link`) again and marks
/// them active.
async fn subscribe_again(st: &State, link: &Link, names: Vec<String>) -> Result<(), String> {
    if names.is_empty() {
        return Ok(());
    }
    let q = link.subq.borrow().clone().ok_or("no link")?;
    let mut waits = Vec::new();
    for batch in names.chunks(SUBSCRIBE_BATCH) {
        let (tx, rx) = oneshot::channel();
        q.send(SubOp::Subscribe(batch.to_vec(), Some(tx)))
            .map_err(|_| "link closed")?;
        waits.push(rx);
    }
    for w in waits {
        tokio::time::timeout(st.timeout * 4, w)
            .await
            .map_err(|_| "resubscribe timed out".to_string())?
            .map_err(|_| "link closed".to_string())?;
    }
    let n = names.len();
    st.shared.metrics.count_resubscribed(n as u64);
    let mut chans = st.chans.borrow_mut();
    for name in &names {
        if let Some(c) = st.keys.channel_of(name).and_then(|c| chans.get_mut(c)) {
            c.active = true;
        }
    }
    tracing::info!(redis = %st.shared.links[link.idx].addr, channels = n, "resubscribed");
    Ok(())
}

/// Serializes SUBSCRIBE / UNSUBSCRIBE on one PUB/SUB connection, batching
/// what is queued.
async fn sub_task(mut sink: SubSink, mut rx: mpsc::UnboundedReceiver<SubOp>) {
    let cluster = matches!(sink, SubSink::Cluster(..));
    while let Some(op) = rx.recv().await {
        let mut ops = vec![op];
        while let Ok(op) = rx.try_recv() {
            ops.push(op);
        }
        let mut i = 0;
        while i < ops.len() {
            // Consecutive subscribes go as one command.
            if let SubOp::Subscribe(..) = &ops[i] {
                let mut names = Vec::new();
                let mut acks = Vec::new();
                while i < ops.len() {
                    let SubOp::Subscribe(n, ack) = &mut ops[i] else {
                        break;
                    };
                    if names.len() + n.len() > SUBSCRIBE_BATCH && !names.is_empty() {
                        break;
                    }
                    names.append(n);
                    acks.extend(ack.take());
                    i += 1;
                }
                match sink.subscribe(names, true).await {
                    Ok(()) => {
                        for a in acks {
                            let _ = a.send(());
                        }
                    }
                    // A Cluster's command fails for the channels of an
                    // unreachable master only: those subscribes fail (the
                    // acks dropped), the connection carries on.
                    Err(e) if cluster => tracing::debug!("redis cluster subscribe: {e}"),
                    Err(_) => return,
                }
            } else if let SubOp::Unsubscribe(n) = &mut ops[i] {
                if sink.unsubscribe(std::mem::take(n)).await.is_err() && !cluster {
                    return;
                }
                i += 1;
            }
        }
    }
}

/// Reads the PUB/SUB connection until it ends or the link is declared dead.
async fn serve_stream(st: &Rc<State>, link: &Rc<Link>, mut stream: SubStream) {
    let probe = st.keys.probe(&st.node);
    let control = st.keys.control();
    let dead = link.dead.borrow().clone();
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = dead.notified() => return,
        };
        let msg = match msg {
            None => {
                st.mark_down(link, "PUB/SUB connection closed");
                return;
            }
            Some(Pushed::Msg(m)) => m,
            Some(Pushed::Subscribed(name)) => {
                if !link.resyncing.get() {
                    st.on_resubscribed(&name);
                }
                continue;
            }
            Some(Pushed::Unsubscribed(name)) => {
                st.on_dropped(link, &name);
                continue;
            }
            Some(Pushed::NodeLost) => {
                // Its subscriptions are gone with it: down until the probe
                // finds every master answering and the channels subscribed
                // again. Sharded ones are counted on each master's
                // connection and those of a short one subscribed again;
                // classic ones (no sharded PUB/SUB) all subscribed again.
                link.resync.set(!st.sharded.get());
                st.mark_down(link, "a node's connection dropped: resubscribing");
                continue;
            }
            Some(Pushed::Other) => continue,
        };
        let name = msg.get_channel_name();
        if name == probe {
            link.probe_seen.set(Instant::now());
            link.probe_back.notify_waiters();
            continue;
        }
        if name == control {
            st.on_control(msg.get_payload_bytes());
            continue;
        }
        let Some(channel) = st.keys.channel_of(name) else {
            continue;
        };
        st.shared.metrics.count_message();
        st.on_channel_msg(channel, msg.get_payload_bytes());
    }
}

impl State {
    /// A Cluster confirmed the sharded subscription of `pubsub`. For a
    /// channel already active this is a resubscription (the cluster client
    /// reconnected a node, or the channel moved): what was published
    /// meanwhile never came over PUB/SUB, so its position is checked.
    fn on_resubscribed(self: &Rc<Self>, pubsub: &str) {
        let Some(channel) = self.keys.channel_of(pubsub) else {
            return;
        };
        let known = self
            .chans
            .borrow()
            .get_key_value(channel)
            .filter(|(_, c)| c.active && c.history)
            .and_then(|(n, c)| c.last.clone().map(|l| (n.clone(), l)));
        if let Some((name, last)) = known {
            let st = self.clone();
            tokio::task::spawn_local(async move { st.check_position(&name, last).await });
        }
    }

    /// A Cluster dropped the sharded subscription of `pubsub` (its slot
    /// moved to another master): subscribed again where it lives now.
    fn on_dropped(&self, link: &Link, pubsub: &str) {
        let Some(channel) = self.keys.channel_of(pubsub) else {
            return;
        };
        if !self.chans.borrow().get(channel).is_some_and(|c| c.active) {
            return; // our own SUNSUBSCRIBE
        }
        if let Some(q) = link.subq.borrow().as_ref() {
            let _ = q.send(SubOp::Subscribe(vec![pubsub.to_string()], None));
        }
    }

    /// Tells `channel`'s subscribers (2500) when its stream moved past
    /// `last` (what this node saw) or started anew; false when Redis did
    /// not answer.
    async fn check_position(&self, channel: &ChannelName, last: (Arc<str>, u64)) -> bool {
        let Ok((top, now, _)) = self.read(channel, None).await else {
            return false;
        };
        let (epoch, offset) = last;
        if *now != *epoch || top > offset {
            if let Some(c) = self.chans.borrow_mut().get_mut(channel) {
                c.last = Some((now.clone(), top));
            }
            self.insufficient(channel);
        }
        true
    }

    fn on_channel_msg(&self, channel: &str, payload: &[u8]) {
        let Ok(msg) = wire::parse_channel_msg(payload) else {
            tracing::warn!(channel, "malformed message from Redis dropped");
            return;
        };
        let Some(name) = self
            .chans
            .borrow()
            .get_key_value(channel)
            .map(|(n, _)| n.clone())
        else {
            return;
        };
        match msg {
            ChannelMsg::Publication {
                offset,
                epoch,
                object,
            } => {
                // Arrived at this node: each delivery's latency counts
                // from here.
                let since = stamp();
                if offset > 0 {
                    match self.arrived(&name, offset, epoch) {
                        Arrival::Again => return,
                        Arrival::AfterGap => self.insufficient(&name),
                        Arrival::Next => {}
                    }
                }
                let frame = push::publication_push(&name, &wire::with_offset(object, offset));
                let delta = self.delta_frames(&name, object, offset, epoch);
                for dst in self.shards_of(&name) {
                    let (n, f, d) = (name.clone(), frame.clone(), delta.clone());
                    self.run_on(dst, move |h| {
                        h.deliver_publication(&n, offset, &f, d, since)
                    });
                }
            }
            ChannelMsg::Join(info) | ChannelMsg::Leave(info) => {
                let join = matches!(msg, ChannelMsg::Join(_));
                let frame = push::join_leave_frame(&name, join, info);
                for dst in self.shards_of(&name) {
                    let (n, f) = (name.clone(), frame.clone());
                    self.run_on(dst, move |h| h.deliver_frame(&n, &f));
                }
            }
        }
    }

    /// What the delta subscribers of `channel` get of a publication (None
    /// when its namespace has no deltas); a positioned one becomes the
    /// next base.
    fn delta_frames(
        &self,
        channel: &str,
        object: &[u8],
        offset: u64,
        epoch: &str,
    ) -> Option<Arc<delta::DeltaFrames>> {
        let mut chans = self.chans.borrow_mut();
        let c = chans.get_mut(channel).filter(|c| c.fossil)?;
        let delta::Parts { data, fields, .. } = delta::parts(object)?;
        let base = c
            .delta_base
            .as_ref()
            .filter(|(e, _)| **e == *epoch)
            .map(|(_, b)| b);
        let df = delta::frames(channel, data, fields, offset, base, c.delta_publish);
        if offset > 0 {
            c.delta_base = Some((
                epoch.into(),
                delta::Base {
                    offset,
                    data: Bytes::copy_from_slice(data),
                },
            ));
        }
        Some(Arc::new(df))
    }

    /// A positioned publication came over PUB/SUB for `channel`: a second
    /// copy, one after a gap, or the next.
    fn arrived(&self, channel: &str, offset: u64, epoch: &str) -> Arrival {
        let mut chans = self.chans.borrow_mut();
        let Some(c) = chans.get_mut(channel) else {
            return Arrival::Next;
        };
        if c.seen_before(epoch, offset) {
            return Arrival::Again;
        }
        if c.gap(offset, epoch) {
            Arrival::AfterGap
        } else {
            Arrival::Next
        }
    }

    fn on_control(self: &Rc<Self>, payload: &[u8]) {
        match wire::parse_control(payload) {
            Ok(ControlMsg::Heartbeat { node, json }) if node != &*self.node => {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) {
                    self.shared.heard(node, v);
                }
            }
            Ok(ControlMsg::Question { node, json }) if node != &*self.node => {
                self.answer(node, json)
            }
            Ok(ControlMsg::Answer { node, json }) if node != &*self.node => {
                self.on_answer(node, json)
            }
            Ok(ControlMsg::Action { node, json }) if node != &*self.node => {
                match serde_json::from_slice::<Control>(json) {
                    Ok(c) => {
                        for dst in 0..self.mesh.shards() {
                            let (c, f) = (c.clone(), self.control.clone());
                            self.run_on(dst, move |h| f(h, &c));
                        }
                    }
                    Err(e) => tracing::warn!("control action not understood: {e}"),
                }
            }
            Ok(_) => {}
            Err(_) => tracing::warn!("malformed control message dropped"),
        }
    }
}

/// After a (re)connect: every history channel whose stream moved past what
/// this node saw, or whose epoch changed (Redis lost its data), tells its
/// subscribers (2500) so they recover.
async fn check_positions(st: Rc<State>, link: Rc<Link>) {
    let chans: Vec<(ChannelName, Arc<str>, u64)> = st
        .chans
        .borrow()
        .iter()
        .filter(|(c, ch)| ch.history && server_of(c, st.links.len()) == link.idx)
        .filter_map(|(c, ch)| ch.last.as_ref().map(|(e, o)| (c.clone(), e.clone(), *o)))
        .collect();
    for (channel, epoch, offset) in chans {
        if !st.check_position(&channel, (epoch, offset)).await {
            return;
        }
    }
}

/// Publishes the probe every second and declares the link dead when the
/// probe has not come back over PUB/SUB within the deadline.
async fn probe(st: Rc<State>, link: Rc<Link>) {
    let channel = st.keys.probe(&st.node);
    let mut down_since: Option<Instant> = None;
    loop {
        // A Cluster link that is down looks four times as often: back up
        // within a quarter second of the failover.
        let down = st.cluster && !link.up.get();
        tokio::time::sleep(if down { PROBE_EVERY / 4 } else { PROBE_EVERY }).await;
        if st.cluster {
            probe_cluster(&st, &link, &channel, &mut down_since).await;
            continue;
        }
        if !link.up.get() {
            continue;
        }
        if link.probe_seen.get().elapsed() > PROBE_DEADLINE {
            st.kill(&link, "liveness probe did not come back over PUB/SUB");
            continue;
        }
        let _ = st
            .command::<i64>(&link, redis::cmd("PUBLISH").arg(&channel).arg("p"))
            .await;
    }
}

/// A Cluster's probe (cluster.rs): every master answers over the
/// connection the cluster client routes its slots to, that connection holds
/// as many sharded subscriptions as the node has there, and the node's probe
/// message comes back over PUB/SUB. While not, the link is down (/health
/// red; the healthy masters' channels keep working). When all answer again
/// after a node's connection dropped, every channel is subscribed again (a
/// promoted replica has none of our subscriptions) and its position
/// checked; a connection short of subscriptions gets its master's channels
/// subscribed again. Down for longer than `CLUSTER_REBUILD`, the cluster
/// client is dropped and built anew.
async fn probe_cluster(
    st: &Rc<State>,
    link: &Rc<Link>,
    channel: &str,
    down_since: &mut Option<Instant>,
) {
    let Some(Conn::Cluster(mut c)) = link.cmd.borrow().clone() else {
        *down_since = None;
        return;
    };
    let active: Vec<(u16, ChannelName)> = if st.sharded.get() {
        st.chans
            .borrow()
            .iter()
            .filter(|(_, ch)| ch.active)
            .map(|(name, ch)| (ch.slot, name.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let back = link.probe_back.notified();
    tokio::pin!(back);
    back.as_mut().enable();
    let answered = tokio::time::timeout(st.timeout, async {
        let found = cluster::check(&c, &active).await?;
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg("p")
            .query_async::<i64>(&mut c)
            .await?;
        Ok::<_, redis::RedisError>(found)
    })
    .await;
    let mut missing = Vec::new();
    let why = match answered {
        Ok(Ok(found)) if !found.down.is_empty() => Some(format!(
            "a master does not answer: {}",
            found.down.join("; ")
        )),
        Ok(Ok(found)) => {
            missing = found.missing.iter().map(|c| st.keys.pubsub(c)).collect();
            // Back after an outage, the last probe seen is old: this
            // round's must come back.
            let fresh = link.probe_seen.get().elapsed() <= PROBE_DEADLINE
                || tokio::time::timeout(st.timeout, back).await.is_ok();
            (!fresh).then(|| "liveness probe did not come back over PUB/SUB".to_string())
        }
        Ok(Err(e)) => Some(format!("a master does not answer: {e}")),
        Err(_) => Some("a master does not answer: timed out".to_string()),
    };
    match why {
        None => {
            *down_since = None;
            if link.resyncing.get() || link.up.get() && !link.resync.get() && missing.is_empty() {
                return;
            }
            // Back (or a node of the cluster reconnected): every channel
            // subscribed again where its slot lives now, then checked. Or a
            // master's connection lost some: its channels subscribed again.
            // The link is up once that worked; a failure is retried next
            // round.
            let all = link.resync.replace(false);
            if !missing.is_empty() {
                tracing::warn!(
                    channels = missing.len(),
                    "redis cluster: a master's connection lost sharded subscriptions: subscribing its channels again"
                );
            }
            link.resyncing.set(true);
            let (st, link) = (st.clone(), link.clone());
            tokio::task::spawn_local(async move {
                let r = if all {
                    resubscribe(&st, &link).await
                } else {
                    subscribe_again(&st, &link, missing).await
                };
                link.resyncing.set(false);
                match r {
                    Ok(()) => {
                        if !link.up.replace(true) {
                            st.shared.links[link.idx].set_up();
                            st.shared.metrics.count_reconnect();
                            tracing::info!(
                                "redis cluster: every master answers, channels subscribed again"
                            );
                        }
                        check_positions(st, link).await;
                    }
                    Err(e) => {
                        link.resync.set(true);
                        st.warn_limited(&format!("redis cluster: resubscribe: {e}"));
                    }
                }
            });
        }
        Some(why) => {
            let since = *down_since.get_or_insert_with(Instant::now);
            if link.up.get() {
                // Probe answers from before the outage are stale now.
                link.probe_seen.set(Instant::now());
            }
            st.mark_down(link, &why);
            if since.elapsed() > CLUSTER_REBUILD {
                *down_since = None;
                st.kill(link, "down for too long: the cluster client is built anew");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_copy_of_a_publication_is_dropped() {
        let mut c = super::Chan {
            shards: vec![1],
            total: 1,
            last: None,
            delivered: None,
            slot: 0,
            history: true,
            active: true,
            fossil: false,
            delta_publish: false,
            delta_base: None,
        };
        assert!(!c.seen_before("e1", 1));
        assert!(!c.seen_before("e1", 2));
        assert!(c.seen_before("e1", 2), "the same publication again");
        assert!(c.seen_before("e1", 1), "an older one");
        assert!(!c.seen_before("e1", 5), "a gap is not a copy");
        // A new epoch (Redis lost the stream) starts over.
        assert!(!c.seen_before("e2", 1));
        assert!(c.seen_before("e2", 1));
        assert!(!c.seen_before("e2", 2));
    }

    use super::*;

    fn entry(offset: u64, payload: &str) -> Value {
        Value::Array(vec![
            Value::BulkString(format!("{offset}-0").into_bytes()),
            Value::Array(vec![
                Value::BulkString(b"d".to_vec()),
                Value::BulkString(payload.as_bytes().to_vec()),
            ]),
        ])
    }

    #[test]
    fn read_replies_parse() {
        let v = Value::Array(vec![
            Value::Int(7),
            Value::BulkString(b"EpOcH".to_vec()),
            Value::Array(vec![entry(6, r#"{"data":1}"#), entry(7, r#"{"data":2}"#)]),
        ]);
        let (top, epoch, entries) = parse_read(v).unwrap();
        assert_eq!((top, &*epoch), (7, "EpOcH"));
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1], (7, Bytes::from_static(br#"{"data":2}"#)));
        assert!(parse_read(Value::Array(vec![Value::Int(1)])).is_none());
        assert!(parse_read(Value::Nil).is_none());
        let bad_id = Value::Array(vec![
            Value::Int(1),
            Value::BulkString(b"e".to_vec()),
            Value::Array(vec![Value::Array(vec![
                Value::BulkString(b"x-0".to_vec()),
                Value::Array(vec![]),
            ])]),
        ]);
        assert!(parse_read(bad_id).is_none());
    }

    #[test]
    fn recovery_is_exact_or_refused() {
        let e = |o: u64| (o, Bytes::from(format!("{{\"data\":{o}}}")));
        // Everything after 4 up to the top 7: recovered, with offsets.
        match recovery(4, "E", 7, "E", vec![e(5), e(6), e(7)]) {
            Recovery::Recovered(p) => {
                assert_eq!(&p[0][..], br#"{"data":5,"offset":5}"#);
                assert_eq!(p.len(), 3);
            }
            r => panic!("{r:?}"),
        }
        assert_eq!(
            recovery(7, "E", 7, "E", vec![]),
            Recovery::Recovered(vec![])
        );
        // The window starts after the client's position: a hole.
        assert_eq!(
            recovery(2, "E", 7, "E", vec![e(5), e(6), e(7)]),
            Recovery::Unrecoverable
        );
        // Another epoch (Redis lost its data), or a position from the future.
        assert_eq!(
            recovery(4, "OLD", 7, "E", vec![e(5), e(6), e(7)]),
            Recovery::Unrecoverable
        );
        assert_eq!(recovery(9, "E", 7, "E", vec![]), Recovery::Unrecoverable);
        // The stream expired while the meta lived on.
        assert_eq!(recovery(4, "E", 7, "E", vec![]), Recovery::Unrecoverable);
    }

    #[test]
    fn presence_replies() {
        let members: Vec<(&[u8], &[u8])> = vec![
            (b"c1", br#"{"user":"u1","client":"c1"}"#),
            (b"c2", br#"{"user":"u1","client":"c2"}"#),
            (b"c3", br#"{"user":"u2","client":"c3"}"#),
        ];
        assert_eq!(
            &presence_fields(&members, true)[..],
            br#""num_clients":3,"num_users":2"#
        );
        let full = presence_fields(&members[..1], false);
        assert_eq!(
            &full[..],
            br#""presence":{"c1":{"user":"u1","client":"c1"}}"#
        );
        // Junk in Redis is skipped, not passed to clients.
        let junk: Vec<(&[u8], &[u8])> = vec![(b"c9", b"{not json")];
        assert_eq!(&presence_fields(&junk, false)[..], br#""presence":{}"#);
    }
}

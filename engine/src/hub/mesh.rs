//! The mesh between shards: one lock-free queue per (source, destination)
//! pair carrying batches of messages, and one waker per destination. A shard
//! collects what it sends during a scheduler pass in per-destination outboxes
//! and pushes each as one batch with one wake-up.

use std::sync::Arc;

use bytes::Bytes;
use crossbeam_queue::SegQueue;
use futures_util::task::AtomicWaker;

use crate::protocol::tags::FilterNode;

/// Channel names are shared, immutable strings.
pub type ChannelName = Arc<str>;

/// Where a reply goes: a connection (or, later, an API request) on a shard,
/// and the command id it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    pub shard: u16,
    pub conn: u64,
    pub id: u32,
}

/// A subscriber's identity as the channel owner keeps it for presence.
#[derive(Debug, Clone)]
pub struct Member {
    pub client: Arc<str>,
    pub user: Arc<str>,
    /// `ClientInfo` JSON, encoded once per connection.
    pub info: Bytes,
}

/// Work to run on another shard, with that shard's hub.
pub type Job = Box<dyn FnOnce(&super::Hub) + Send>;

pub enum MeshMsg {
    // To the channel's owner (the memory broker).
    Subscribe(Box<SubscribeReq>),
    Unsubscribe {
        channel: ChannelName,
        shard: u16,
    },
    Publish {
        channel: ChannelName,
        /// The publication's `data`, raw JSON.
        data: Bytes,
        info: Option<Bytes>,
        /// Its `tags`, a JSON object of strings.
        tags: Option<Bytes>,
        done: Done,
    },
    // From the owner.
    /// An encoded push frame for every local subscriber of `channel`: a
    /// publication (which tags filters apply to; in a namespace with deltas
    /// `delta` is what the delta subscribers get), or another push (join,
    /// leave) that everyone gets.
    Deliver {
        channel: ChannelName,
        frame: Bytes,
        publication: bool,
        delta: Option<Arc<crate::protocol::delta::DeltaFrames>>,
        /// When the owner accepted the publication (`latency::NO_STAMP`
        /// for other pushes): each delivery's latency is taken from it.
        since: crate::shard::latency::Stamp,
    },
    /// The owner accepted a subscription at this stream position. `reply.id`
    /// 0 marks a server-side subscription (answered with a push).
    Subscribed {
        channel: ChannelName,
        reply: ReplyTo,
        epoch: Arc<str>,
        offset: u64,
        recoverable: bool,
        /// Present when recovery was asked for.
        recovery: Option<Recovery>,
        expires_at: u64,
        /// Handed back for presence, once the subscription is active.
        member: Option<Member>,
        reject_unrecovered: bool,
        delta: bool,
        filter: Option<Arc<crate::protocol::tags::FilterNode>>,
    },
    /// A client publish's result, for its connection.
    Published {
        reply: ReplyTo,
        result: Result<Position, crate::protocol::codes::ClientError>,
    },
    /// Anything else: API calls, queries, metrics gathering (see `Hub::call`).
    Run(Job),
}

pub struct Mesh {
    shards: usize,
    /// Sources: the shards, then threads outside them (the Redis broker's).
    sources: usize,
    queues: Box<[SegQueue<Vec<MeshMsg>>]>,
    wakers: Box<[AtomicWaker]>,
}

impl Mesh {
    pub fn new(shards: usize) -> Arc<Mesh> {
        Self::with_external(shards, 0)
    }

    /// A mesh with `external` more sources (threads that are not shards,
    /// numbered from `shards`), each with its own FIFO queue to every shard.
    pub fn with_external(shards: usize, external: usize) -> Arc<Mesh> {
        let sources = shards + external;
        Arc::new(Mesh {
            shards,
            sources,
            queues: (0..sources * shards).map(|_| SegQueue::new()).collect(),
            wakers: (0..shards).map(|_| AtomicWaker::new()).collect(),
        })
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Hands a batch from `src` to `dst` and wakes `dst`.
    pub fn push(&self, src: usize, dst: usize, batch: Vec<MeshMsg>) {
        self.queues[src * self.shards + dst].push(batch);
        self.wakers[dst].wake();
    }

    /// Registers `dst`'s receiver for wake-ups.
    pub fn register(&self, dst: usize, waker: &std::task::Waker) {
        self.wakers[dst].register(waker);
    }

    /// Whether anything waits for `dst`.
    pub fn has_pending(&self, dst: usize) -> bool {
        (0..self.sources).any(|src| !self.queues[src * self.shards + dst].is_empty())
    }

    /// Takes one batch for `dst` from each source, in source order.
    pub fn pop_round(&self, dst: usize, mut f: impl FnMut(Vec<MeshMsg>)) -> usize {
        let mut n = 0;
        for src in 0..self.sources {
            if let Some(batch) = self.queues[src * self.shards + dst].pop() {
                n += 1;
                f(batch);
            }
        }
        n
    }

    /// Batches queued for `dst` (approximate; for metrics).
    pub fn depth(&self, dst: usize) -> usize {
        (0..self.sources)
            .map(|src| self.queues[src * self.shards + dst].len())
            .sum()
    }
}

/// The owner shard of a channel: a stable hash of the name (FNV-1a), so every
/// shard and every restart agree.
pub fn owner_of(channel: &str, shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in channel.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % shards as u64) as usize
}

// ---- The data the broker seam (seam.rs) and the mesh's messages share ----

/// What a subscriber recovering from (offset, epoch) gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Everything after the client's offset, in order.
    Recovered(Vec<Bytes>),
    /// The window no longer covers the gap, or the epoch changed.
    Unrecoverable,
}

/// A stream position: (epoch, offset). Offset 0 with an empty epoch: the
/// publication started no stream (a channel without history nobody holds).
pub type Position = (Arc<str>, u64);

/// Where a publish's result goes, on the shard that published.
#[derive(Debug, Clone, Copy)]
pub enum Done {
    /// A client's publish command: an empty result or an error reply.
    Client(ReplyTo),
    /// A waiting call on `shard` (server API, TCP publishers).
    Call { shard: u16, id: u64 },
    /// Nobody waits.
    None,
}

/// A client's subscription as it goes to the broker.
pub struct SubscribeReq {
    pub channel: ChannelName,
    /// Who subscribes, for presence (`None` where the channel keeps none).
    pub member: Option<Member>,
    /// The connection and command id; id 0 marks a server-side subscription.
    pub reply: ReplyTo,
    /// The subscriber wants a recoverable stream position back.
    pub recoverable: bool,
    /// Recover from this (offset, epoch).
    pub recover: Option<(u64, Arc<str>)>,
    /// Unix seconds when the subscription token expires (0: never).
    pub expires_at: u64,
    /// An unrecoverable position is an error 112, not a subscription.
    pub reject_unrecovered: bool,
    /// The subscriber takes fossil deltas (its namespace allows them).
    pub delta: bool,
    /// The subscriber's tags filter.
    pub filter: Option<Arc<FilterNode>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_arrive_in_order_per_source() {
        let mesh = Mesh::new(2);
        for i in 0..3u32 {
            mesh.push(
                0,
                1,
                vec![MeshMsg::Published {
                    reply: ReplyTo {
                        shard: 1,
                        conn: 1,
                        id: i,
                    },
                    result: Ok(("".into(), 0)),
                }],
            );
        }
        assert!(mesh.has_pending(1));
        assert!(!mesh.has_pending(0));
        let mut ids = vec![];
        while mesh.pop_round(1, |b| {
            for m in b {
                if let MeshMsg::Published { reply, .. } = m {
                    ids.push(reply.id);
                }
            }
        }) > 0
        {}
        assert_eq!(ids, vec![0, 1, 2]);
    }

    #[test]
    fn owners_spread_and_are_stable() {
        let mut counts = [0; 4];
        for i in 0..1000 {
            counts[owner_of(&format!("chan-{i}"), 4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
        // FNV-1a 64 of the name, modulo the shards (values computed apart
        // from this code): the same owners in every process and release.
        assert_eq!(owner_of("news", 4), 2);
        assert_eq!(owner_of("chat:1", 4), 2);
        assert_eq!(owner_of("a", 4), 0);
    }
}

//! A link's connections, to one Redis server or to a whole Redis Cluster,
//! behind one face: `Conn` runs commands, `SubSink` (un)subscribes channels,
//! `SubStream` yields what PUB/SUB delivers.
//!
//! One server: a multiplexed command connection plus a RESP2 PUB/SUB
//! connection, channels in classic PUB/SUB. A Cluster: redis-rs's cluster
//! client on RESP3, where pushes share the per-node connections with the
//! commands; a ringcast channel is SSUBSCRIBEd on the master of its slot
//! (sharded PUB/SUB, Redis 7), the control and probe channels stay classic
//! (the cluster bus carries those to every node). A cluster whose servers
//! lack sharded PUB/SUB (Redis 6) gets classic PUB/SUB for everything.

use futures_util::future::join_all;
use futures_util::StreamExt;
use redis::aio::{ConnectionLike, MultiplexedConnection, PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, PushInfo, PushKind, RedisFuture, RedisResult, Value};
use tokio::sync::mpsc;

#[derive(Clone)]
pub(super) enum Conn {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Subscribes: a ringcast channel's PUB/SUB name (`sharded`) or the node's
/// own channels (control, probe).
pub(super) enum SubSink {
    Node(PubSubSink),
    /// `true`: the servers have sharded PUB/SUB.
    Cluster(ClusterConnection, bool),
}

impl SubSink {
    /// Subscribes `names`. In a Cluster each sharded channel is its own
    /// SSUBSCRIBE (several channels in one must share a slot), all sent at
    /// once.
    pub async fn subscribe(&mut self, names: Vec<String>, sharded: bool) -> RedisResult<()> {
        match self {
            SubSink::Node(s) => s.subscribe(names).await,
            SubSink::Cluster(c, true) if sharded => each(c, names, Op::SSubscribe).await,
            SubSink::Cluster(c, _) if sharded => each(c, names, Op::Subscribe).await,
            SubSink::Cluster(c, _) => c.subscribe(names).await,
        }
    }

    pub async fn unsubscribe(&mut self, names: Vec<String>) -> RedisResult<()> {
        match self {
            SubSink::Node(s) => s.unsubscribe(names).await,
            SubSink::Cluster(c, true) => each(c, names, Op::SUnsubscribe).await,
            SubSink::Cluster(c, false) => each(c, names, Op::Unsubscribe).await,
        }
    }
}

#[derive(Clone, Copy)]
enum Op {
    Subscribe,
    Unsubscribe,
    SSubscribe,
    SUnsubscribe,
}

/// One command per channel, all sent at once.
async fn each(c: &ClusterConnection, names: Vec<String>, op: Op) -> RedisResult<()> {
    let all = names.into_iter().map(|n| {
        let mut c = c.clone();
        async move {
            match op {
                Op::Subscribe => c.subscribe(n).await,
                Op::Unsubscribe => c.unsubscribe(n).await,
                Op::SSubscribe => c.ssubscribe(n).await,
                Op::SUnsubscribe => c.sunsubscribe(n).await,
            }
        }
    });
    join_all(all).await.into_iter().collect()
}

/// Whether the cluster's servers have sharded PUB/SUB (SPUBLISH is a
/// known command: Redis 7 or newer, not renamed away).
pub(super) async fn has_sharded_pubsub(c: &mut ClusterConnection) -> RedisResult<bool> {
    let info: Vec<Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("SPUBLISH")
        .query_async(c)
        .await?;
    Ok(!matches!(info.first(), None | Some(Value::Nil)))
}

/// What arrives over PUB/SUB.
pub(super) enum Pushed {
    Msg(redis::Msg),
    /// The server confirmed a (re)subscription of a sharded channel: after
    /// the cluster client reconnected a node, or after our own SSUBSCRIBE.
    Subscribed(String),
    /// The server dropped a sharded subscription (its slot moved: failover,
    /// resharding).
    Unsubscribed(String),
    /// One node's connection of the cluster client dropped; the client
    /// reconnects it and subscribes its channels again.
    NodeLost,
    Other,
}

pub(super) enum SubStream {
    Node(PubSubStream),
    Cluster(mpsc::UnboundedReceiver<PushInfo>),
}

impl SubStream {
    /// The next push; None when the connection is gone.
    pub async fn next(&mut self) -> Option<Pushed> {
        match self {
            SubStream::Node(s) => s.next().await.map(Pushed::Msg),
            SubStream::Cluster(rx) => {
                let p = rx.recv().await?;
                let first = |p: &PushInfo| match p.data.first() {
                    Some(Value::BulkString(b)) => String::from_utf8(b.clone()).ok(),
                    _ => None,
                };
                Some(match p.kind {
                    PushKind::Message | PushKind::SMessage => {
                        redis::Msg::from_push_info(p).map_or(Pushed::Other, Pushed::Msg)
                    }
                    PushKind::SSubscribe => first(&p).map_or(Pushed::Other, Pushed::Subscribed),
                    PushKind::SUnsubscribe => first(&p).map_or(Pushed::Other, Pushed::Unsubscribed),
                    PushKind::Disconnection => Pushed::NodeLost,
                    _ => Pushed::Other,
                })
            }
        }
    }
}

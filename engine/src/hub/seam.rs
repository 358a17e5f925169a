//! The broker seam as the hub sees it: the `Broker` and `PresenceManager`
//! traits and what travels through them. The implementations live in
//! `crate::broker` (memory, redis), which re-exports all of this; the hub
//! knows only the traits.

use std::sync::Arc;

use bytes::Bytes;

use super::mesh::{ChannelName, Member, MeshMsg};
pub use super::mesh::{Done, Position, Recovery, SubscribeReq};
use super::Hub;
use crate::protocol::codes::ClientError;

/// A continuation run on the shard that asked, with its hub.
pub type Then<T> = Box<dyn FnOnce(&Hub, T) + Send>;

/// A history read: publications after `since` (from the start when `None`),
/// at most `limit` (all when negative), newest first when `reverse`.
pub struct HistoryQuery {
    pub channel: ChannelName,
    pub since: Option<(u64, String)>,
    pub limit: i64,
    pub reverse: bool,
}

/// Publications (encoded objects), and the stream's epoch and top offset.
pub type HistoryResult = Result<(Vec<Bytes>, Arc<str>, u64), ClientError>;

/// A control action for every node (the memory broker has only this one).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Control {
    Disconnect {
        user: String,
        client: Option<String>,
        code: u16,
        reason: String,
    },
    Unsubscribe {
        user: String,
        client: Option<String>,
        channel: String,
    },
    Subscribe {
        user: String,
        client: Option<String>,
        channel: String,
    },
    /// Commands for the HTTP-transport session `session`, wherever it is
    /// (`/emulation` on a node that does not hold it).
    Emulate {
        session: String,
        data: String,
        /// `data` is base64 (the protobuf protocol's binary commands).
        #[serde(default)]
        base64: bool,
    },
}

/// Applies a control action from another node on one shard (set by the layer
/// that owns sessions).
pub type ControlHandler = Arc<dyn Fn(&Hub, &Control) + Send + Sync>;

/// Who is in a channel: presence entries, and the join and leave pushes
/// that go with them (for channels with `presence` or `join_leave`). One
/// instance per shard, beside the broker; every method returns at once.
pub trait PresenceManager {
    /// `member` is subscribed to `channel` now (after the broker accepted
    /// the subscription): add it, and push a join where `join_leave` is on.
    fn add(&self, hub: &Hub, channel: ChannelName, member: Member);

    /// The client left `channel`: remove it, push a leave.
    fn remove(&self, hub: &Hub, channel: ChannelName, client: Arc<str>);

    /// Presence as reply JSON fields: `"presence":{..}` or
    /// `"num_clients":N,"num_users":M`.
    fn get(
        &self,
        hub: &Hub,
        channel: ChannelName,
        stats: bool,
        then: Then<Result<Bytes, ClientError>>,
    );

    /// Starts per-shard tasks (refreshes), on the shard's runtime.
    fn start(&self, _hub: &std::rc::Rc<Hub>) {}
}

/// The seam. One instance per shard; every method returns at once and
/// completes later on this shard.
pub trait Broker {
    /// "memory" or "redis" (for /health and logs).
    fn name(&self) -> &'static str;

    /// Starts the broker's per-shard tasks (on the shard's runtime).
    fn start(&self, _hub: &std::rc::Rc<Hub>) {}

    /// A message for this broker from another shard (what a broker sends
    /// itself over the mesh: the memory broker's owner requests).
    fn receive(&self, _hub: &Hub, _msg: MeshMsg) {
        tracing::warn!("a broker message for a broker that sends none: dropped");
    }

    /// Channels whose stream this shard keeps (memory broker: the ones it
    /// owns), for /metrics.
    fn owned_count(&self) -> usize {
        0
    }

    /// The broker itself (for its own code reaching it through a hub).
    fn as_any(&self) -> &dyn std::any::Any;

    /// Publishes `data` (raw JSON) with optional `info` (ClientInfo JSON)
    /// and `tags` (a JSON object of strings).
    fn publish(
        &self,
        hub: &Hub,
        channel: ChannelName,
        data: Bytes,
        info: Option<Bytes>,
        tags: Option<Bytes>,
        done: Done,
    );

    /// Publishes to the current subscribers only: no offset, nothing kept
    /// in history (the publish proxy's `skip_history`).
    fn publish_without_history(
        &self,
        hub: &Hub,
        channel: ChannelName,
        data: Bytes,
        info: Option<Bytes>,
        tags: Option<Bytes>,
        done: Done,
    );

    /// Publishes at once, on this shard, when the broker can (the TCP
    /// publisher's fast path); `None`: use `publish`.
    fn publish_here(&self, _hub: &Hub, _channel: &str, _data: &[u8]) -> Option<Position> {
        None
    }

    /// This shard's part of the `channels` API: channels with their
    /// subscriber counts.
    fn channel_counts(&self, hub: &Hub) -> Vec<(ChannelName, u64)> {
        hub.local_channel_counts()
    }

    /// Counts a subscriber and answers with the stream position (and what
    /// it missed, when recovering) through `Hub::on_subscribed`, or an
    /// error through `Hub::on_subscribe_failed`.
    fn subscribe(&self, hub: &Hub, req: SubscribeReq);

    /// A subscriber of this shard left `channel`.
    fn unsubscribe(&self, hub: &Hub, channel: ChannelName, client: Arc<str>);

    fn history(&self, hub: &Hub, q: HistoryQuery, then: Then<HistoryResult>);

    /// Sends a control action to the other nodes (this node applies it
    /// itself).
    fn control(&self, _hub: &Hub, _c: Control) {}

    /// `Err(reason)` while the broker cannot serve (for /health).
    fn health(&self) -> Result<(), String> {
        Ok(())
    }

    /// Announces this node (its `info` API object) to the others; called
    /// every couple of seconds by the API layer.
    fn heartbeat(&self, _info: serde_json::Value) {}

    /// Every other live node's channels with their client counts (asked
    /// when the `channels` API is called; nothing for one node).
    fn other_channels(&self, hub: &Hub, then: Then<std::collections::BTreeMap<String, u64>>) {
        then(hub, Default::default());
    }

    /// Every other live node, as `info` API JSON objects.
    fn other_nodes(&self) -> Vec<serde_json::Value> {
        Vec::new()
    }

    /// Broker metrics in Prometheus text (once per node, from shard 0).
    fn render_metrics(&self, _out: &mut String) {}
}

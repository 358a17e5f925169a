//! The Redis broker: many ringcast nodes share channels through Redis, with
//! Centrifugo's semantics (docs/architecture.md, "Many nodes").
//!
//! - `link.rs`: the Redis thread (connections, scripts, PUB/SUB, probes).
//! - `conn.rs`: one server's or a whole Cluster's connections behind one face.
//! - `cluster.rs`: a Cluster's masters checked every second (who answers for
//!   which slots, which sharded subscriptions each connection holds).
//! - `keys.rs`: the key layout and which Redis server holds a channel.
//! - `scripts.rs`: the Lua scripts.
//! - `wire.rs`: what nodes send each other (no I/O, fuzzed).
//!
//! This file is the shard side: `RedisBroker` turns each call into a request
//! for the Redis thread and returns at once; `Shared` is what the shards and
//! the thread both see (link health, metrics, the other nodes).

pub mod cluster;
mod conn;
pub mod keys;
mod link;
pub mod scripts;
pub mod wire;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use self::link::Req;
use super::{
    Broker, Control, ControlHandler, Done, HistoryQuery, HistoryResult, PresenceManager,
    SubscribeReq, Then,
};
use crate::config::Config;
use crate::hub::mesh::{ChannelName, Member, Mesh};
use crate::hub::{Accepted, Hub};
use crate::protocol::codes::{self, ClientError};

/// A node not heard from for this long is no longer listed.
const NODE_EXPIRY: Duration = Duration::from_secs(7);

/// One Redis server's link state, for /health and /metrics.
pub struct LinkHealth {
    pub addr: String,
    up: AtomicBool,
    error: Mutex<String>,
}

impl LinkHealth {
    fn set_up(&self) {
        self.up.store(true, Ordering::Release);
        self.error.lock().expect("link error").clear();
    }

    fn set_down(&self, why: &str) {
        self.up.store(false, Ordering::Release);
        *self.error.lock().expect("link error") = why.to_string();
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }
}

/// Publish round-trip buckets (seconds), for the Prometheus histogram.
const BUCKETS: [f64; 12] = [
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Default)]
pub struct Metrics {
    publish_buckets: [AtomicU64; BUCKETS.len()],
    publish_count: AtomicU64,
    publish_sum_us: AtomicU64,
    errors: AtomicU64,
    reconnects: AtomicU64,
    resubscribed: AtomicU64,
    insufficient: AtomicU64,
    messages: AtomicU64,
}

impl Metrics {
    fn publish_done(&self, took: Duration) {
        let s = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.publish_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.publish_count.fetch_add(1, Ordering::Relaxed);
        self.publish_sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }
    fn count_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    fn count_resubscribed(&self, n: u64) {
        self.resubscribed.fetch_add(n, Ordering::Relaxed);
    }
    fn count_insufficient(&self) {
        self.insufficient.fetch_add(1, Ordering::Relaxed);
    }
    fn count_message(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }
}

/// What every shard and the Redis thread share.
pub struct Shared {
    pub node_uid: Arc<str>,
    pub links: Vec<LinkHealth>,
    /// One link for a whole Cluster: down while any master is unreachable,
    /// but the other masters' channels keep working.
    cluster: bool,
    pub metrics: Metrics,
    nodes: Mutex<HashMap<String, (serde_json::Value, Instant)>>,
    tx: mpsc::UnboundedSender<Req>,
}

impl Shared {
    /// Hands a request to the Redis thread (it lives as long as the process).
    fn ask(&self, req: Req) {
        let _ = self.tx.send(req);
    }

    /// Whether the Redis server holding `channel` is reachable now.
    fn up(&self, channel: &str) -> bool {
        self.cluster || self.links[keys::server_of(channel, self.links.len())].is_up()
    }

    /// The uids of the other nodes heard from recently.
    fn live_nodes(&self) -> std::collections::HashSet<String> {
        let nodes = self.nodes.lock().expect("nodes");
        nodes
            .iter()
            .filter(|(_, (_, at))| at.elapsed() < NODE_EXPIRY)
            .map(|(uid, _)| uid.clone())
            .collect()
    }

    fn heard(&self, node: &str, info: serde_json::Value) {
        self.nodes
            .lock()
            .expect("nodes")
            .insert(node.to_string(), (info, Instant::now()));
    }
}

/// Starts the Redis thread for a node; the result builds each shard's
/// broker. Call before the shards start.
pub fn start(
    cfg: Arc<Config>,
    mesh: Arc<Mesh>,
    node_uid: Arc<str>,
    control: ControlHandler,
) -> anyhow::Result<Arc<Shared>> {
    let b = &cfg.broker;
    // One link per Redis server; one for a Sentinel-watched master; one for
    // a whole Cluster (the cluster client routes each channel to its slot's
    // master).
    let names: Vec<String> = if !b.cluster_addresses.is_empty() {
        let seeds: Vec<String> = b.cluster_addresses.iter().map(|a| redact(a)).collect();
        vec![format!("cluster {}", seeds.join(","))]
    } else if !b.sentinel_addresses.is_empty() {
        vec![format!("sentinel master {}", b.sentinel_master)]
    } else {
        b.addresses.iter().map(|a| redact(a)).collect()
    };
    let names = if names.is_empty() {
        vec!["redis://127.0.0.1:6379".to_string()]
    } else {
        names
    };
    // The thread needs the shared state and the shared state its sender:
    // build the channel first.
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        node_uid,
        links: names
            .into_iter()
            .map(|addr| LinkHealth {
                addr,
                up: AtomicBool::new(false),
                error: Mutex::new("connecting".into()),
            })
            .collect(),
        cluster: !b.cluster_addresses.is_empty(),
        metrics: Metrics::default(),
        nodes: Mutex::default(),
        tx,
    });
    link::start(shared.clone(), cfg, mesh, control, rx)?;
    Ok(shared)
}

pub use crate::config::redact;

/// One shard's handle on the Redis broker.
pub struct RedisBroker {
    shared: Arc<Shared>,
}

impl RedisBroker {
    pub fn new(shared: Arc<Shared>) -> Self {
        RedisBroker { shared }
    }

    fn ask(&self, req: Req) {
        self.shared.ask(req);
    }

    fn up(&self, channel: &str) -> bool {
        self.shared.up(channel)
    }
}

impl Broker for RedisBroker {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    fn heartbeat(&self, info: serde_json::Value) {
        if let Ok(json) = serde_json::to_vec(&info) {
            self.ask(Req::Control {
                heartbeat: true,
                json,
            });
        }
    }

    fn publish(
        &self,
        hub: &Hub,
        channel: ChannelName,
        data: Bytes,
        info: Option<Bytes>,
        tags: Option<Bytes>,
        done: Done,
    ) {
        self.publish_to(hub, channel, data, (info, tags), done, true)
    }

    fn publish_without_history(
        &self,
        hub: &Hub,
        channel: ChannelName,
        data: Bytes,
        info: Option<Bytes>,
        tags: Option<Bytes>,
        done: Done,
    ) {
        self.publish_to(hub, channel, data, (info, tags), done, false)
    }

    fn subscribe(&self, hub: &Hub, req: SubscribeReq) {
        let SubscribeReq {
            channel,
            member,
            reply,
            recoverable,
            recover,
            expires_at,
            reject_unrecovered,
            delta,
            filter,
        } = req;
        if !self.up(&channel) {
            return hub.on_subscribe_failed(&channel, reply, codes::INTERNAL);
        }
        let history = hub
            .channel_opts(&channel)
            .is_some_and(|o| o.history_enabled());
        hub.catchup_open(&channel);
        let name = channel.clone();
        self.ask(Req::Subscribe {
            shard: hub.shard as u16,
            channel,
            history,
            recover: recover.filter(|_| history),
            then: Box::new(move |h: &Hub, r| match r {
                Ok(read) => {
                    let a = Accepted {
                        epoch: &read.epoch,
                        offset: read.top,
                        recoverable: recoverable && history,
                        expires_at,
                        recovery: read.recovery,
                        member,
                        reject_unrecovered,
                        delta,
                        filter,
                    };
                    let conn = h.on_subscribed(name.clone(), reply, a);
                    if !h.catchup_close(&name, read.top, conn.as_ref()) {
                        // More arrived meanwhile than the buffer keeps.
                        h.insufficient_state(&name);
                    }
                }
                Err(e) => {
                    h.catchup_close(&name, u64::MAX, None);
                    h.on_subscribe_failed(&name, reply, e);
                }
            }),
        });
    }

    fn unsubscribe(&self, hub: &Hub, channel: ChannelName, _client: Arc<str>) {
        self.ask(Req::Unsubscribe {
            shard: hub.shard as u16,
            channel,
        });
    }

    fn history(&self, hub: &Hub, q: HistoryQuery, then: Then<HistoryResult>) {
        if !self.up(&q.channel) {
            return then(hub, Err(codes::INTERNAL));
        }
        self.ask(Req::History {
            shard: hub.shard as u16,
            q,
            then,
        });
    }

    fn control(&self, _hub: &Hub, c: Control) {
        match serde_json::to_vec(&c) {
            Ok(json) => self.ask(Req::Control {
                heartbeat: false,
                json,
            }),
            Err(e) => tracing::warn!("control action not encoded: {e}"),
        }
    }

    fn health(&self) -> Result<(), String> {
        match self.shared.links.iter().find(|l| !l.is_up()) {
            None => Ok(()),
            Some(l) => Err(format!(
                "redis {}: {}",
                l.addr,
                l.error.lock().expect("link error")
            )),
        }
    }

    fn other_channels(&self, hub: &Hub, then: Then<std::collections::BTreeMap<String, u64>>) {
        self.ask(Req::Channels {
            shard: hub.shard as u16,
            then,
        });
    }

    fn other_nodes(&self) -> Vec<serde_json::Value> {
        let mut nodes = self.shared.nodes.lock().expect("nodes");
        nodes.retain(|_, (_, at)| at.elapsed() < NODE_EXPIRY);
        let mut v: Vec<serde_json::Value> = nodes.values().map(|(i, _)| i.clone()).collect();
        v.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        v
    }

    fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let m = &self.shared.metrics;
        let _ = writeln!(out, "# HELP ringcast_broker_link_up Whether the link to a Redis server is up (1) or down (0).\n# TYPE ringcast_broker_link_up gauge");
        for l in &self.shared.links {
            let _ = writeln!(
                out,
                "ringcast_broker_link_up{{address=\"{}\"}} {}",
                l.addr.replace('"', "'"),
                l.is_up() as u8
            );
        }
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        counter(
            out,
            "ringcast_broker_errors_total",
            "Broker commands that failed.",
            &m.errors,
        );
        counter(
            out,
            "ringcast_broker_reconnects_total",
            "Times a Redis link came back after being down.",
            &m.reconnects,
        );
        counter(
            out,
            "ringcast_broker_resubscribed_channels_total",
            "Channels subscribed again after a reconnect.",
            &m.resubscribed,
        );
        counter(
            out,
            "ringcast_broker_insufficient_state_total",
            "Times subscribers were told they missed publications (2500).",
            &m.insufficient,
        );
        counter(
            out,
            "ringcast_broker_messages_total",
            "Messages received over Redis PUB/SUB for channels.",
            &m.messages,
        );
        let _ = writeln!(out, "# HELP ringcast_broker_publish_seconds Publish round trip through Redis.\n# TYPE ringcast_broker_publish_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "ringcast_broker_publish_seconds_bucket{{le=\"{b}\"}} {}",
                m.publish_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = m.publish_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "ringcast_broker_publish_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "ringcast_broker_publish_seconds_sum {}",
            m.publish_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "ringcast_broker_publish_seconds_count {count}");
    }
}

/// Presence with the Redis broker: a hash (client → info) and a sorted set
/// (client → expiry) per channel, refreshed by each node for its own
/// clients; join and leave travel on the channel's PUB/SUB channel.
pub struct RedisPresence {
    shared: Arc<Shared>,
    cfg: Arc<Config>,
}

impl RedisPresence {
    pub fn new(shared: Arc<Shared>, cfg: Arc<Config>) -> Self {
        RedisPresence { shared, cfg }
    }
}

impl PresenceManager for RedisPresence {
    fn add(&self, _hub: &Hub, channel: ChannelName, member: Member) {
        self.shared.ask(Req::PresenceAdd {
            channel,
            client: member.client,
            info: member.info,
        });
    }

    fn remove(&self, _hub: &Hub, channel: ChannelName, client: Arc<str>) {
        self.shared.ask(Req::PresenceRemove { channel, client });
    }

    fn get(
        &self,
        hub: &Hub,
        channel: ChannelName,
        stats: bool,
        then: Then<Result<Bytes, ClientError>>,
    ) {
        if !self.shared.up(&channel) {
            return then(hub, Err(codes::INTERNAL));
        }
        self.shared.ask(Req::Presence {
            shard: hub.shard as u16,
            channel,
            stats,
            then,
        });
    }

    fn start(&self, hub: &Rc<Hub>) {
        let every = Duration::from_secs_f64((self.cfg.broker.presence_ttl / 3.0).max(0.5));
        monoio::spawn(touch_loop(hub.clone(), self.shared.clone(), every));
    }
}

/// Refreshes the presence entries of this shard's clients, so a dead node's
/// entries (and only those) expire.
async fn touch_loop(hub: Rc<Hub>, shared: Arc<Shared>, every: Duration) {
    loop {
        monoio::time::sleep(every).await;
        let entries = hub.presence_members();
        if !entries.is_empty() {
            let _ = shared.tx.send(Req::Touch(entries));
        }
    }
}

impl RedisBroker {
    /// A publish, kept in the channel's stream (`history`) or only
    /// delivered.
    fn publish_to(
        &self,
        hub: &Hub,
        channel: ChannelName,
        data: Bytes,
        (info, tags): (Option<Bytes>, Option<Bytes>),
        done: Done,
        history: bool,
    ) {
        hub.stats.publications.set(hub.stats.publications.get() + 1);

        if !self.up(&channel) {
            // Fail fast: nothing would be queued behind a dead link.
            if let Some((dst, msg)) = Hub::publish_result_msg(done, Err(codes::INTERNAL)) {
                hub.send(dst, msg);
            }
            return;
        }
        let object = wire::publication(
            &data,
            crate::protocol::push::Fields {
                info: info.as_deref(),
                tags: tags.as_deref(),
            },
        );
        self.ask(Req::Publish {
            channel,
            object,
            done,
            history,
        });
    }
}

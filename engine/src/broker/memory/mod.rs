//! The memory broker: one node, every channel owned by one shard. The owner
//! assigns offsets, keeps the history window and presence, encodes each push
//! once and sends that buffer to every shard with subscribers. Shards reach
//! owners over the mesh; each (source, destination) queue is FIFO, so a
//! subscriber counted by the owner receives every later publication after
//! its subscribe reply, and none before.

pub mod history;
pub mod owner;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use self::owner::{empty_presence, OwnedChannel};
use super::{
    Broker, Done, HistoryQuery, HistoryResult, PresenceManager, Recovery, SubscribeReq, Then,
};
use crate::hub::mesh::{ChannelName, Member, MeshMsg};
use crate::hub::{stamp, Hub, NO_STAMP};
use crate::protocol::codes::{self, ClientError};
use crate::protocol::push;

thread_local! {
    /// The epoch reported for a publication that created no stream.
    static NO_EPOCH: Arc<str> = Arc::from("");
}

/// The memory broker on one shard: the channels this shard owns.
#[derive(Default)]
pub struct MemoryBroker {
    owned: RefCell<HashMap<ChannelName, OwnedChannel, ahash::RandomState>>,
}

impl Broker for MemoryBroker {
    fn name(&self) -> &'static str {
        "memory"
    }

    /// Expires history and forgets idle channels, every second.
    fn start(&self, hub: &Rc<Hub>) {
        let hub = hub.clone();
        monoio::spawn(async move {
            loop {
                monoio::time::sleep(std::time::Duration::from_secs(1)).await;
                MemoryBroker::of(&hub).expire_owned();
            }
        });
    }

    /// The owner's side of a subscribe, an unsubscribe or a publish.
    fn receive(&self, hub: &Hub, msg: MeshMsg) {
        match msg {
            MeshMsg::Subscribe(req) => self.owner_subscribe(hub, *req),
            MeshMsg::Unsubscribe { channel, shard } => {
                self.owner_unsubscribe(channel, shard as usize)
            }
            MeshMsg::Publish {
                channel,
                data,
                info,
                tags,
                done,
            } => {
                let fields = push::Fields {
                    info: info.as_deref(),
                    tags: tags.as_deref(),
                };
                self.owner_publish(hub, channel, &data, fields, done);
            }
            _ => tracing::warn!("memory broker: not an owner message"),
        }
    }

    fn owned_count(&self) -> usize {
        self.owned_channels().len()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
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
        hub.send(
            hub.owner_of(&channel),
            MeshMsg::Publish {
                channel,
                data,
                info,
                tags,
                done,
            },
        );
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
        hub.send(
            hub.owner_of(&channel),
            MeshMsg::Run(Box::new(move |owner: &Hub| {
                let fields = push::Fields {
                    info: info.as_deref(),
                    tags: tags.as_deref(),
                };
                MemoryBroker::of(owner).owner_publish_transient(owner, channel, &data, fields, done)
            })),
        );
    }

    /// When this shard owns `channel`: no travel.
    fn publish_here(&self, hub: &Hub, channel: &str, data: &[u8]) -> Option<super::Position> {
        (hub.owner_of(channel) == hub.shard).then(|| {
            self.owner_publish(
                hub,
                channel.into(),
                data,
                push::Fields::default(),
                Done::None,
            )
        })
    }

    /// The channels this shard owns (each counted once, by its owner).
    fn channel_counts(&self, _hub: &Hub) -> Vec<(ChannelName, u64)> {
        self.owned_channels()
    }

    fn subscribe(&self, hub: &Hub, req: SubscribeReq) {
        hub.send(
            hub.owner_of(&req.channel),
            MeshMsg::Subscribe(Box::new(req)),
        );
    }

    fn unsubscribe(&self, hub: &Hub, channel: ChannelName, _client: Arc<str>) {
        let owner = hub.owner_of(&channel);
        hub.send(
            owner,
            MeshMsg::Unsubscribe {
                channel,
                shard: hub.shard as u16,
            },
        );
    }

    fn history(&self, hub: &Hub, q: HistoryQuery, then: Then<HistoryResult>) {
        let origin = hub.shard;
        hub.send(
            hub.owner_of(&q.channel),
            MeshMsg::Run(Box::new(move |owner: &Hub| {
                let r = MemoryBroker::of(owner)
                    .history_query(owner, &q.channel, q.since, q.limit, q.reverse);
                owner.send(origin, MeshMsg::Run(Box::new(move |h: &Hub| then(h, r))));
            })),
        );
    }
}

/// Presence with the memory broker: kept by the channel's owner shard.
pub struct MemoryPresence;

impl PresenceManager for MemoryPresence {
    fn add(&self, hub: &Hub, channel: ChannelName, member: Member) {
        hub.send(
            hub.owner_of(&channel),
            MeshMsg::Run(Box::new(move |owner: &Hub| {
                MemoryBroker::of(owner).owner_presence_add(owner, channel, member)
            })),
        );
    }

    fn remove(&self, hub: &Hub, channel: ChannelName, client: Arc<str>) {
        hub.send(
            hub.owner_of(&channel),
            MeshMsg::Run(Box::new(move |owner: &Hub| {
                MemoryBroker::of(owner).owner_presence_remove(owner, channel, &client)
            })),
        );
    }

    fn get(
        &self,
        hub: &Hub,
        channel: ChannelName,
        stats: bool,
        then: Then<Result<Bytes, ClientError>>,
    ) {
        let origin = hub.shard;
        hub.send(
            hub.owner_of(&channel),
            MeshMsg::Run(Box::new(move |owner: &Hub| {
                let fields = MemoryBroker::of(owner).presence_fields(&channel, stats);
                owner.send(
                    origin,
                    MeshMsg::Run(Box::new(move |h: &Hub| then(h, Ok(fields)))),
                );
            })),
        );
    }
}

/// The owner side, run on the channel's owner shard.
impl MemoryBroker {
    /// The memory broker of the shard `hub` runs on.
    pub fn of(hub: &Hub) -> &MemoryBroker {
        hub.broker()
            .as_any()
            .downcast_ref()
            .expect("the memory broker")
    }

    /// Counts a subscriber of shard `req.reply.shard` and answers it with the
    /// stream position (and, when recovering, what it missed).
    fn owner_subscribe(&self, hub: &Hub, req: SubscribeReq) {
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
        let mut owned = self.owned.borrow_mut();
        let ch = owned
            .entry(channel.clone())
            .or_insert_with(|| new_channel(hub, &channel));
        ch.per_shard[reply.shard as usize] += 1;
        ch.total += 1;
        // Computed at the moment the subscriber is counted: every later
        // publication reaches it live, every earlier one is in this set.
        let (top, current) = (ch.offset, ch.epoch.clone());
        let recovery = recover.map(|(since, epoch)| match ch.history.as_mut() {
            // An empty epoch: from the start of the current stream (an
            // app's own state said "nothing yet": getState).
            Some(h) if epoch.is_empty() || *epoch == *current => {
                h.expire(Instant::now());
                h.recover(since, top)
            }
            _ => Recovery::Unrecoverable,
        });
        let recoverable = recoverable && ch.history.is_some();
        hub.send(
            reply.shard as usize,
            MeshMsg::Subscribed {
                channel: channel.clone(),
                reply,
                epoch: ch.epoch.clone(),
                offset: ch.offset,
                recoverable,
                recovery,
                expires_at,
                member,
                reject_unrecovered,
                delta,
                filter,
            },
        );
    }

    fn owner_unsubscribe(&self, channel: ChannelName, shard: usize) {
        let mut owned = self.owned.borrow_mut();
        let Some(ch) = owned.get_mut(&channel) else {
            return;
        };
        if ch.per_shard[shard] > 0 {
            ch.per_shard[shard] -= 1;
            ch.total -= 1;
        }
        if ch.is_idle() {
            owned.remove(&channel);
        }
    }

    /// Adds a member to an owned channel's presence; pushes its join.
    fn owner_presence_add(&self, hub: &Hub, channel: ChannelName, member: Member) {
        let mut owned = self.owned.borrow_mut();
        let ch = owned
            .entry(channel.clone())
            .or_insert_with(|| new_channel(hub, &channel));
        if ch.join_leave {
            let frame = push::join_leave_frame(&channel, true, &member.info);
            Self::deliver_from_owner(hub, ch, &channel, frame);
        }
        if ch.presence_on || ch.join_leave {
            ch.presence.insert(member.client.clone(), member);
        }
    }

    /// Removes a client from an owned channel's presence; pushes its leave.
    fn owner_presence_remove(&self, hub: &Hub, channel: ChannelName, client: &str) {
        let mut owned = self.owned.borrow_mut();
        let Some(ch) = owned.get_mut(&channel) else {
            return;
        };
        if let Some(m) = ch.presence.remove(client) {
            if ch.join_leave {
                let frame = push::join_leave_frame(&channel, false, &m.info);
                Self::deliver_from_owner(hub, ch, &channel, frame);
            }
        }
        if ch.is_idle() {
            owned.remove(&channel);
        }
    }

    /// Sends a push frame to every shard with subscribers of `channel`.
    fn deliver_from_owner(hub: &Hub, ch: &OwnedChannel, channel: &ChannelName, frame: Bytes) {
        for s in ch.shards_with_subscribers() {
            hub.send(
                s,
                MeshMsg::Deliver {
                    channel: channel.clone(),
                    frame: frame.clone(),
                    publication: false,
                    delta: None,
                    since: NO_STAMP,
                },
            );
        }
    }

    /// Assigns the next offset, encodes the push once, and sends it to every
    /// shard with subscribers. Returns (epoch, offset); (empty, 0) when the
    /// channel has no stream and would keep nothing. The result goes to
    /// `done` (queued before the deliveries, so the publisher's connection
    /// is flushed first and can send more while the fan-out is on the wire).
    fn owner_publish(
        &self,
        hub: &Hub,
        channel: ChannelName,
        data: &[u8],
        fields: push::Fields<'_>,
        done: Done,
    ) -> (Arc<str>, u64) {
        let mut owned = self.owned.borrow_mut();
        hub.stats.publications.set(hub.stats.publications.get() + 1);
        if !owned.contains_key(&channel)
            && !hub
                .channel_opts(&channel)
                .is_some_and(|o| o.history_enabled())
        {
            // Nobody subscribed and nothing to keep: the publication reaches
            // no one. No stream is created (and none thrown away again), so
            // there is no offset: 0 and an empty epoch.
            let position = (NO_EPOCH.with(Arc::clone), 0);
            complete_publish(hub, done, Ok(position.clone()));
            return position;
        }
        let ch = owned
            .entry(channel.clone())
            .or_insert_with(|| new_channel(hub, &channel));
        ch.offset += 1;
        // Accepted: each delivery's latency counts from here.
        let since = stamp();
        let (epoch, offset) = (ch.epoch.clone(), ch.offset);
        complete_publish(hub, done, Ok((epoch.clone(), offset)));
        let delta = ch.delta_frames(&channel, data, fields, offset);
        if ch.total > 0 || ch.history.is_some() {
            let object = push::publication_object_with(data, fields, offset);
            if ch.total > 0 {
                let frame = push::publication_push(&channel, &object);
                for s in ch.shards_with_subscribers() {
                    hub.send(
                        s,
                        MeshMsg::Deliver {
                            channel: channel.clone(),
                            frame: frame.clone(),
                            publication: true,
                            delta: delta.clone(),
                            since,
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

    /// A publication for the current subscribers only: no offset (the
    /// stream does not move, so recovery stays exact), nothing in history.
    fn owner_publish_transient(
        &self,
        hub: &Hub,
        channel: ChannelName,
        data: &[u8],
        fields: push::Fields<'_>,
        done: Done,
    ) {
        hub.stats.publications.set(hub.stats.publications.get() + 1);
        let mut owned = self.owned.borrow_mut();
        let position = (NO_EPOCH.with(Arc::clone), 0);
        complete_publish(hub, done, Ok(position));
        let Some(ch) = owned.get_mut(&channel).filter(|ch| ch.total > 0) else {
            return;
        };
        let since = stamp();
        let delta = ch.delta_frames(&channel, data, fields, 0);
        let object = push::publication_object_with(data, fields, 0);
        let frame = push::publication_push(&channel, &object);
        for s in ch.shards_with_subscribers() {
            hub.send(
                s,
                MeshMsg::Deliver {
                    channel: channel.clone(),
                    frame: frame.clone(),
                    publication: true,
                    delta: delta.clone(),
                    since,
                },
            );
        }
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

    /// History of a channel this shard owns: (publications, epoch, offset).
    /// `since` with another epoch is an unrecoverable position (112).
    fn history_query(
        &self,
        hub: &Hub,
        channel: &str,
        since: Option<(u64, String)>,
        limit: i64,
        reverse: bool,
    ) -> HistoryResult {
        let mut owned = self.owned.borrow_mut();
        let ch = owned
            .entry(channel.into())
            .or_insert_with(|| new_channel(hub, channel));
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

    /// Channels this shard owns, with their subscriber counts.
    pub fn owned_channels(&self) -> Vec<(ChannelName, u64)> {
        self.owned
            .borrow()
            .iter()
            .filter(|(_, c)| c.total > 0)
            .map(|(n, c)| (n.clone(), c.total))
            .collect()
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
}

fn new_channel(hub: &Hub, channel: &str) -> OwnedChannel {
    let default = crate::config::ChannelOptions::default();
    OwnedChannel::new(hub.shards(), hub.channel_opts(channel).unwrap_or(&default))
}

/// Sends a publish's result to where it is awaited (from the owner).
fn complete_publish(hub: &Hub, done: Done, result: Result<super::Position, ClientError>) {
    if let Some((dst, msg)) = Hub::publish_result_msg(done, result) {
        hub.send(dst, msg);
    }
}

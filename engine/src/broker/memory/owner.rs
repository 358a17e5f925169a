//! What a channel's owner shard keeps: the stream position (epoch and offset),
//! how many subscribers each shard has, and presence.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};

use super::history::History;
use crate::config::ChannelOptions;
use crate::hub::mesh::Member;
use crate::protocol::delta::{self, Base, DeltaFrames};
use crate::protocol::json::{put_str, put_u64};

pub struct OwnedChannel {
    pub epoch: Arc<str>,
    pub offset: u64,
    /// Subscribers per shard; a publication goes to shards with a non-zero count.
    pub per_shard: Box<[u32]>,
    pub total: u64,
    /// client id → member, when presence is on.
    pub presence: HashMap<Arc<str>, Member, ahash::RandomState>,
    /// The history window, when the channel's namespace keeps one.
    pub history: Option<History>,
    pub presence_on: bool,
    pub join_leave: bool,
    /// Subscribers may take fossil deltas: the last payload is kept
    /// (`delta_base`) and every publication is also encoded for them.
    pub fossil: bool,
    /// Publications are sent to them as deltas (`delta_publish`).
    pub delta_publish: bool,
    pub delta_base: Option<Base>,
}

impl OwnedChannel {
    pub fn new(shards: usize, opts: &ChannelOptions) -> Self {
        OwnedChannel {
            epoch: new_epoch(),
            offset: 0,
            per_shard: vec![0; shards].into_boxed_slice(),
            total: 0,
            presence: HashMap::default(),
            history: opts.history_enabled().then(|| {
                History::new(
                    opts.history_size,
                    std::time::Duration::from_secs_f64(opts.history_ttl),
                )
            }),
            presence_on: opts.presence,
            join_leave: opts.join_leave,
            fossil: opts.fossil_allowed(),
            delta_publish: opts.delta_on(),
            delta_base: None,
        }
    }

    /// Nothing left worth keeping: no subscribers, presence or history. (A
    /// stream with history outlives its subscribers until the history expires,
    /// so returning clients can recover.)
    pub fn is_idle(&self) -> bool {
        self.total == 0
            && self.presence.is_empty()
            && self.history.as_ref().is_none_or(History::is_empty)
    }

    pub fn shards_with_subscribers(&self) -> impl Iterator<Item = usize> + '_ {
        self.per_shard
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, _)| i)
    }

    /// What the delta subscribers get of a publication (None when the
    /// namespace has no deltas); a positioned one becomes the next base.
    pub fn delta_frames(
        &mut self,
        channel: &str,
        data: &[u8],
        fields: crate::protocol::push::Fields<'_>,
        offset: u64,
    ) -> Option<Arc<DeltaFrames>> {
        if !self.fossil {
            return None;
        }
        let df = (self.total > 0).then(|| {
            Arc::new(delta::frames(
                channel,
                data,
                fields,
                offset,
                self.delta_base.as_ref(),
                self.delta_publish,
            ))
        });
        if offset > 0 {
            self.delta_base = Some(Base {
                offset,
                data: bytes::Bytes::copy_from_slice(data),
            });
        }
        df
    }

    /// `"presence":{"<client>":<info>,...}` body for a presence reply.
    pub fn presence_json(&self, out: &mut BytesMut) {
        out.put_slice(b"\"presence\":{");
        for (i, (client, m)) in self.presence.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            put_str(out, client);
            out.put_u8(b':');
            out.put_slice(&m.info);
        }
        out.put_u8(b'}');
    }

    /// `"num_clients":N,"num_users":M`
    pub fn presence_stats_json(&self, out: &mut BytesMut) {
        let mut users: Vec<&str> = self.presence.values().map(|m| &*m.user).collect();
        users.sort_unstable();
        users.dedup();
        out.put_slice(b"\"num_clients\":");
        put_u64(out, self.presence.len() as u64);
        out.put_slice(b",\"num_users\":");
        put_u64(out, users.len() as u64);
    }
}

/// A fresh stream epoch: it changes whenever a channel's stream starts anew, so
/// a client can tell that its offset belongs to an earlier stream.
pub fn new_epoch() -> Arc<str> {
    epoch_string().into()
}

/// A fresh epoch as an owned string (where it is only written out).
pub fn epoch_string() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..8)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

/// Empty presence list bytes for channels the owner does not know.
pub fn empty_presence(out: &mut BytesMut, stats: bool) {
    if stats {
        out.put_slice(b"\"num_clients\":0,\"num_users\":0");
    } else {
        out.put_slice(b"\"presence\":{}");
    }
}

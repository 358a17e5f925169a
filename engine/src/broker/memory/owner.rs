//! What a channel's owner shard keeps: the stream position (epoch and offset),
//! how many subscribers each shard has, and presence.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};

use super::history::History;
use crate::config::ChannelOptions;
use crate::hub::mesh::Member;
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

//! Channel registry: channel name -> subscribers, each a connection's outbound queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc::UnboundedSender;
use tokio_tungstenite::tungstenite::Message;

/// Outbound queue of one connection; its writer task drains it.
pub type Outbox = UnboundedSender<Message>;

#[derive(Default)]
struct Channel {
    offset: u64,
    subscribers: HashMap<u64, Outbox>,
}

/// Shared state. The map lock is only held for look-ups; each channel has its
/// own mutex so publishes to different channels do not contend, while
/// publishes to one channel are serialised (offsets reach everyone in order).
#[derive(Default)]
pub struct Hub {
    channels: RwLock<HashMap<String, Arc<Mutex<Channel>>>>,
}

#[derive(Serialize)]
struct Push<'a> {
    push: PushBody<'a>,
}

#[derive(Serialize)]
struct PushBody<'a> {
    channel: &'a str,
    #[serde(rename = "pub")]
    publication: Publication<'a>,
}

#[derive(Serialize)]
struct Publication<'a> {
    data: &'a RawValue,
    offset: u64,
}

impl Hub {
    /// Adds `conn` to `channel`; false if it was already subscribed.
    pub fn subscribe(&self, channel: &str, conn: u64, outbox: &Outbox) -> bool {
        let read = self.channels.read().unwrap();
        if let Some(ch) = read.get(channel) {
            // Holding the read lock keeps `unsubscribe` from dropping this channel meanwhile.
            return insert(ch, conn, outbox);
        }
        drop(read);
        let mut write = self.channels.write().unwrap();
        let ch = write.entry(channel.to_owned()).or_default();
        insert(ch, conn, outbox)
    }

    pub fn unsubscribe(&self, channel: &str, conn: u64) {
        let mut write = self.channels.write().unwrap();
        let Some(ch) = write.get(channel) else { return };
        let mut ch = ch.lock().unwrap();
        ch.subscribers.remove(&conn);
        if ch.subscribers.is_empty() {
            drop(ch);
            write.remove(channel);
        }
    }

    /// Serialises the push once and queues the same frame to every subscriber.
    /// Returns the number of subscribers it was queued to.
    pub fn publish(&self, channel: &str, data: &RawValue) -> usize {
        let Some(ch) = self.channels.read().unwrap().get(channel).cloned() else {
            return 0;
        };
        let mut ch = ch.lock().unwrap();
        ch.offset += 1;
        let push = Push {
            push: PushBody {
                channel,
                publication: Publication {
                    data,
                    offset: ch.offset,
                },
            },
        };
        let frame = Message::text(serde_json::to_string(&push).expect("push serialises"));
        for outbox in ch.subscribers.values() {
            // Message::Text holds `Bytes`: cloning it is a refcount bump, not a copy.
            // A failed send means that connection is closing; it unsubscribes itself.
            let _ = outbox.send(frame.clone());
        }
        ch.subscribers.len()
    }
}

fn insert(ch: &Mutex<Channel>, conn: u64, outbox: &Outbox) -> bool {
    let mut ch = ch.lock().unwrap();
    if ch.subscribers.contains_key(&conn) {
        return false;
    }
    ch.subscribers.insert(conn, outbox.clone());
    true
}

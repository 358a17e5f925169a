//! Where a channel lives in Redis. Every key and the PUB/SUB channel of a
//! ringcast channel carry the channel name as a hash tag (`{name}`), so in a
//! Redis Cluster they share one slot; with several independent Redis
//! servers a channel's server is chosen by a consistent hash of its name.
//!
//! ```text
//! P.pub.{C}               PUB/SUB: publications, join, leave (wire.rs)
//! P.stream.{C}            stream: history, entry id = offset, field d
//! P.meta.{C}              hash: e = epoch, s = top offset
//! P.presence.data.{C}     hash: client id -> ClientInfo JSON
//! P.presence.expire.{C}   sorted set: client id -> expiry (unix seconds)
//! P.control               PUB/SUB: heartbeats and control actions
//! P.probe.<node uid>      PUB/SUB: the liveness probe of one node's link
//! ```

pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    fn key(&self, kind: &str, channel: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + kind.len() + channel.len() + 4);
        k.push_str(&self.prefix);
        k.push('.');
        k.push_str(kind);
        k.push_str(".{");
        k.push_str(channel);
        k.push('}');
        k
    }

    pub fn pubsub(&self, channel: &str) -> String {
        self.key("pub", channel)
    }

    /// The ringcast channel of a PUB/SUB channel name, if it is one of ours.
    pub fn channel_of<'a>(&self, pubsub: &'a str) -> Option<&'a str> {
        pubsub
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(".pub.{")?
            .strip_suffix('}')
    }

    pub fn stream(&self, channel: &str) -> String {
        self.key("stream", channel)
    }

    pub fn meta(&self, channel: &str) -> String {
        self.key("meta", channel)
    }

    pub fn presence_data(&self, channel: &str) -> String {
        self.key("presence.data", channel)
    }

    pub fn presence_expire(&self, channel: &str) -> String {
        self.key("presence.expire", channel)
    }

    pub fn control(&self) -> String {
        format!("{}.control", self.prefix)
    }

    pub fn probe(&self, node: &str) -> String {
        format!("{}.probe.{node}", self.prefix)
    }
}

/// The Redis server (of `n`) that holds `channel`: jump consistent hash of
/// FNV-1a of the name, so adding a server moves only ~1/n of the channels.
pub fn server_of(channel: &str, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in channel.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm".
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < n as i64 {
        b = j;
        h = h.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((h >> 33) + 1) as f64)) as i64;
    }
    b as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_reverse() {
        let k = Keys::new("rc");
        assert_eq!(k.pubsub("chat:1"), "rc.pub.{chat:1}");
        assert_eq!(k.stream("chat:1"), "rc.stream.{chat:1}");
        assert_eq!(k.channel_of("rc.pub.{chat:1}"), Some("chat:1"));
        assert_eq!(k.channel_of("rc.pub.{a}b}"), Some("a}b"));
        assert_eq!(k.channel_of("rcx.pub.{a}"), None);
        assert_eq!(k.channel_of("rc.control"), None);
    }

    #[test]
    fn servers_spread_and_move_little() {
        let mut counts = [0usize; 3];
        let mut moved = 0;
        for i in 0..3000 {
            let c = format!("chan-{i}");
            let s3 = server_of(&c, 3);
            counts[s3] += 1;
            let s4 = server_of(&c, 4);
            if s4 != s3 {
                assert_eq!(s4, 3, "a channel only ever moves to the new server");
                moved += 1;
            }
        }
        assert!(counts.iter().all(|&n| n > 800), "{counts:?}");
        assert!((500..1000).contains(&moved), "{moved} of 3000 moved");
        assert_eq!(server_of("x", 1), 0);
    }
}

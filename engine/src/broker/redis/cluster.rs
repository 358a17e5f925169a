//! A Redis Cluster as the node checks it every second: which masters own
//! which slots (as a live node tells), and whether the cluster client's
//! connection to each master is really there and holds this node's sharded
//! subscriptions.
//!
//! Why the check exists (redis-rs 1.8, learned from a failing failover
//! test):
//! - The cluster client routes by its own slot map, refreshed only when a
//!   command is answered MOVED. A node that only subscribes sends no keyed
//!   commands, so after a failover it keeps routing the dead master's slots
//!   to nowhere; and a fan-out over "all masters" silently skips a master
//!   it has no connection to, so a PING to all of them succeeds.
//! - When it reconnects a node it subscribes that node's sharded channels
//!   again in one SSUBSCRIBE, which the server refuses (CROSSSLOT) as soon
//!   as they span two slots: the subscriptions are gone without a word.
//!
//! So each master is asked, over the connection the client routes its
//! slots to, who it is (CLUSTER MYID, compared with CLUSTER SLOTS) and how
//! many sharded channels that connection holds (CLIENT INFO, `ssub`). A
//! master that does not answer, or another node answering for it, gets a
//! keyed command routed the same way: the MOVED it earns makes the client
//! read the slot map again.
//!
//! The reply parsers (`parse_slots`, `ssub_of`, `slot_of`) do no I/O and are
//! fuzzed (fuzz/fuzz_targets/redis_message.rs).

use futures_util::future::join_all;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{RedisResult, Value};

const SLOTS: u16 = 16384;

/// A master and the slot ranges it serves.
#[derive(Debug, PartialEq)]
pub struct Master {
    pub id: String,
    pub addr: String,
    pub ranges: Vec<(u16, u16)>,
}

impl Master {
    pub fn owns(&self, slot: u16) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= slot && slot <= b)
    }
}

/// What one round found.
#[derive(Debug)]
pub(super) struct Check<N> {
    /// Masters that did not answer over the connection routed to them,
    /// each with why.
    pub down: Vec<String>,
    /// Sharded channels to subscribe again: their master's connection
    /// holds fewer sharded subscriptions than the node has.
    pub missing: Vec<N>,
}

/// The slot of a key (CRC16-XMODEM of its hash tag, or of the whole key).
pub fn slot_of(key: &[u8]) -> u16 {
    let tag = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .map(|close| &rest[..close])
        })
        .filter(|t| !t.is_empty());
    crc16::State::<crc16::XMODEM>::calculate(tag.unwrap_or(key)) % SLOTS
}

/// The masters in a CLUSTER SLOTS reply as it came over the wire (RESP2
/// or RESP3 bytes): what the fuzzer drives.
pub fn parse_slots_reply(resp: &[u8]) -> Option<Vec<Master>> {
    parse_slots(&redis::parse_redis_value(resp).ok()?)
}

/// The masters in a CLUSTER SLOTS reply (ranges of one master merged).
pub fn parse_slots(v: &Value) -> Option<Vec<Master>> {
    let Value::Array(ranges) = v else {
        return None;
    };
    let mut out: Vec<Master> = Vec::new();
    for r in ranges {
        let Value::Array(f) = r else {
            return None;
        };
        let (Some(Value::Int(a)), Some(Value::Int(b)), Some(Value::Array(node))) =
            (f.first(), f.get(1), f.get(2))
        else {
            return None;
        };
        let (Some(host), Some(Value::Int(port)), Some(id)) = (
            node.first().and_then(text),
            node.get(1),
            node.get(2).and_then(text),
        ) else {
            return None;
        };
        let range = (u16::try_from(*a).ok()?, u16::try_from(*b).ok()?);
        match out.iter_mut().find(|m| m.id == id) {
            Some(m) => m.ranges.push(range),
            None => out.push(Master {
                addr: format!("{host}:{port}"),
                id,
                ranges: vec![range],
            }),
        }
    }
    Some(out)
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// The `ssub` field of a CLIENT INFO line (Redis 7: sharded subscriptions
/// of that connection).
pub fn ssub_of(info: &str) -> Option<u32> {
    info.split_ascii_whitespace()
        .find_map(|kv| kv.strip_prefix("ssub="))
        .and_then(|n| n.parse().ok())
}

/// A key of one of `m`'s slots, and that slot (a few tries for a usual
/// master; about 16,000 for one that serves a single slot).
fn key_of(m: &Master) -> Option<(String, u16)> {
    (0..1 << 20).find_map(|i| {
        let key = format!("{{ringcast-route-{i}}}");
        let slot = slot_of(key.as_bytes());
        m.owns(slot).then_some((key, slot))
    })
}

/// Checks every master. `active`: the sharded channels this node holds,
/// each with its PUB/SUB name's slot (empty without sharded PUB/SUB).
pub(super) async fn check<N: Clone>(
    c: &ClusterConnection,
    active: &[(u16, N)],
) -> RedisResult<Check<N>> {
    let slots: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut c.clone())
        .await?;
    let masters = parse_slots(&slots).ok_or_else(|| {
        redis::RedisError::from((redis::ErrorKind::Parse, "unexpected CLUSTER SLOTS reply"))
    })?;
    let each = masters.iter().map(|m| {
        let mut c = c.clone();
        let mine: Vec<&N> = active
            .iter()
            .filter(|(s, _)| m.owns(*s))
            .map(|(_, n)| n)
            .collect();
        async move {
            let Some((key, slot)) = key_of(m) else {
                return Err(format!("{}: no slot found", m.addr));
            };
            let route = || {
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
                    slot,
                    SlotAddr::Master,
                )))
            };
            let who = c
                .route_command(redis::cmd("CLUSTER").arg("MYID").clone(), route())
                .await;
            let why = match who.as_ref().ok().and_then(text) {
                Some(id) if id == m.id => None,
                Some(_) => Some(format!("{}: another node answers for its slots", m.addr)),
                None => Some(format!(
                    "{}: {}",
                    m.addr,
                    who.err().map_or("no answer".into(), |e| e.to_string())
                )),
            };
            if let Some(why) = why {
                // Answered MOVED, this makes the client read the slot map
                // again; its own answer does not matter.
                let _ = c
                    .route_command(redis::cmd("EXISTS").arg(&key).clone(), route())
                    .await;
                return Err(why);
            }
            if mine.is_empty() {
                return Ok(Vec::new());
            }
            let info = c
                .route_command(redis::cmd("CLIENT").arg("INFO").clone(), route())
                .await;
            match info.as_ref().ok().and_then(text).and_then(|t| ssub_of(&t)) {
                Some(n) if n as usize >= mine.len() => Ok(Vec::new()),
                Some(_) => Ok(mine.into_iter().cloned().collect()),
                None => Err(format!("{}: CLIENT INFO without ssub", m.addr)),
            }
        }
    });
    let mut out = Check {
        down: Vec::new(),
        missing: Vec::new(),
    };
    for r in join_all(each).await {
        match r {
            Ok(names) => out.missing.extend(names),
            Err(why) => out.down.push(why),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn node(port: i64, id: &str) -> Value {
        Value::Array(vec![bulk("127.0.0.1"), Value::Int(port), bulk(id)])
    }

    #[test]
    fn slots_known_values() {
        // CLUSTER KEYSLOT answers (Redis documentation's examples).
        assert_eq!(slot_of(b"somekey"), 11058);
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(slot_of(b"foo{}{bar}"), slot_of(b"foo{}{bar}"));
        assert_ne!(slot_of(b"foo{}{bar}"), slot_of(b"bar"));
        assert_eq!(slot_of(b"foo{{bar}}zap"), slot_of(b"{bar"));
    }

    #[test]
    fn slots_reply_merges_a_masters_ranges() {
        let v = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node(7000, "a"),
                node(7003, "r"),
            ]),
            Value::Array(vec![Value::Int(5461), Value::Int(10922), node(7001, "b")]),
            Value::Array(vec![Value::Int(10923), Value::Int(16383), node(7000, "a")]),
        ]);
        let m = parse_slots(&v).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].addr, "127.0.0.1:7000");
        assert_eq!(m[0].ranges, vec![(0, 5460), (10923, 16383)]);
        assert!(m[0].owns(16383) && !m[0].owns(5461) && m[1].owns(5461));
        assert!(parse_slots(&Value::Array(vec![Value::Int(1)])).is_none());
        // The same from RESP bytes, as a server sends it.
        let resp = b"*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$1\r\na\r\n";
        let m = parse_slots_reply(resp).unwrap();
        assert_eq!(
            (m[0].addr.as_str(), m[0].ranges.as_slice()),
            ("127.0.0.1:7000", &[(0, 16383)][..])
        );
        assert!(parse_slots_reply(b"*1\r\n:").is_none());
        assert!(parse_slots(&bulk("x")).is_none());
    }

    #[test]
    fn a_key_for_every_master() {
        let m = Master {
            id: "a".into(),
            addr: "x:1".into(),
            ranges: vec![(100, 100)],
        };
        let (key, slot) = key_of(&m).unwrap();
        assert_eq!((slot, slot_of(key.as_bytes())), (100, 100));
    }

    #[test]
    fn client_info_ssub() {
        let line = "id=7 addr=127.0.0.1:5 laddr=127.0.0.1:7000 fd=9 name= age=3 sub=2 psub=0 ssub=4 multi=-1\n";
        assert_eq!(ssub_of(line), Some(4));
        assert_eq!(ssub_of("id=7 sub=1"), None);
        assert_eq!(ssub_of("ssub=x"), None);
    }
}

//! The bench's use of the JSON client protocol. The protocol itself (command
//! encoders, the line splitter, the reply and push classifier) is the
//! engine's `ringcast::protocol::client`, the one codec the server's own
//! tests and fuzz targets check; what is here is the bench's payload: the
//! stamp a publisher writes into `data` and every subscriber reads back.

use std::io::Write as _;

use ringcast::protocol::client::{self as proto, Data, SubscribeOpts};
use serde_json::Value;

pub use ringcast::protocol::client::{find, find_byte, lines, pub_offset};

pub fn connect_cmd(id: u64, token: Option<&str>) -> Vec<u8> {
    proto::connect(id, token)
}

pub fn subscribe_cmd(id: u64, channel: &str) -> Vec<u8> {
    proto::subscribe(id, channel, SubscribeOpts::default())
}

/// A subscribe asking for fossil deltas.
pub fn subscribe_delta_cmd(id: u64, channel: &str) -> Vec<u8> {
    let delta = Some("fossil");
    proto::subscribe(
        id,
        channel,
        SubscribeOpts {
            delta,
            ..Default::default()
        },
    )
}

/// A subscribe asking for a recoverable subscription; with `recover`
/// (offset, epoch) it asks for the publications missed since that position.
pub fn subscribe_recover_cmd(id: u64, channel: &str, recover: Option<(u64, &str)>) -> Vec<u8> {
    let opts = SubscribeOpts {
        recoverable: true,
        recover,
        ..Default::default()
    };
    proto::subscribe(id, channel, opts)
}

/// Appends a publish command whose `data` is a bench payload.
pub fn publish_cmd(out: &mut Vec<u8>, id: u64, channel: &str, data: &[u8]) {
    proto::publish(out, id, channel, data)
}

/// A fossil subscriber's publication push: `data` is a string, the
/// payload or a delta against `base` (the last payload, updated here).
/// Returns our stamp in the payload.
pub fn delta_stamp(line: &[u8], base: &mut Vec<u8>) -> Option<Stamp> {
    proto::apply_delta_push(line, base)?;
    stamp_of(&serde_json::from_slice(base).ok()?)
}

/// The payload a publisher sends: send time (CLOCK_MONOTONIC ns), sequence
/// number in its stream, publisher and channel index, then padding so the
/// whole `data` object is about `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub t: u64,
    pub s: u64,
    pub p: u32,
    pub c: u32,
}

pub fn write_data(out: &mut Vec<u8>, stamp: Stamp, size: usize) {
    let start = out.len();
    let _ = write!(
        out,
        "{{\"t\":{},\"s\":{},\"p\":{},\"c\":{},\"x\":\"",
        stamp.t, stamp.s, stamp.p, stamp.c
    );
    let used = out.len() - start + 2;
    out.resize(out.len() + size.saturating_sub(used), b'x');
    out.extend_from_slice(b"\"}");
}

/// One JSON object from a server frame, as the bench needs it.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// `{}`: a server ping, to be answered with `{}`.
    Ping,
    /// A reply to command `id`; `error` when it carries an error object.
    Reply {
        id: u64,
        error: bool,
    },
    /// A push: a publication (with our stamp when it is one of ours) or
    /// another push kind.
    Push {
        stamp: Option<Stamp>,
    },
    Other,
}

pub fn classify(line: &[u8]) -> Line {
    match proto::classify(line) {
        proto::Line::Ping => Line::Ping,
        proto::Line::Reply { id, error } => Line::Reply { id, error },
        proto::Line::Push { data } => Line::Push {
            stamp: data.as_ref().and_then(stamp_in),
        },
        proto::Line::Other => Line::Other,
    }
}

/// Our stamp in a publication's `data`: read in place when it starts the
/// way `write_data` writes it (`{"t":…,"s":…,"p":…,"c":…`), without reading
/// the padding; otherwise from a parse of the value.
fn stamp_in(data: &Data<'_>) -> Option<Stamp> {
    let fast = || {
        let rest = data.raw()?.strip_prefix(b"{\"t\":")?;
        let (t, rest) = proto::number(rest)?;
        let (s, rest) = proto::number(rest.strip_prefix(b",\"s\":")?)?;
        let (p, rest) = proto::number(rest.strip_prefix(b",\"p\":")?)?;
        let (c, _) = proto::number(rest.strip_prefix(b",\"c\":")?)?;
        Some(Stamp {
            t,
            s,
            p: p as u32,
            c: c as u32,
        })
    };
    fast().or_else(|| stamp_of(&data.value()?))
}

/// What a subscribe reply said about the stream and recovery, with the
/// recovered publications' stamps.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SubscribeReply {
    pub epoch: Option<String>,
    pub offset: Option<u64>,
    pub was_recovering: bool,
    pub recovered: bool,
    /// Publications the reply carried (recovered), with their offsets.
    pub publications: Vec<(Option<Stamp>, Option<u64>)>,
}

/// Parses `{"id":N,"subscribe":{…}}` (`None`: not a subscribe result).
pub fn subscribe_reply(line: &[u8]) -> Option<SubscribeReply> {
    let r = proto::subscribe_reply(line)?;
    Some(SubscribeReply {
        epoch: r.epoch,
        offset: r.offset,
        was_recovering: r.was_recovering,
        recovered: r.recovered,
        publications: r
            .publications
            .iter()
            .map(|(data, offset)| (stamp_of(data), *offset))
            .collect(),
    })
}

/// Our stamp in a publication's `data`, if it is one of ours.
fn stamp_of(data: &Value) -> Option<Stamp> {
    let field = |k: &str| data.get(k).and_then(Value::as_u64);
    Some(Stamp {
        t: field("t")?,
        s: field("s")?,
        p: field("p")? as u32,
        c: field("c")? as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_padded_to_size() {
        let stamp = Stamp {
            t: 123456789,
            s: 7,
            p: 2,
            c: 9,
        };
        for size in [0, 10, 64, 100, 1000] {
            let mut d = vec![];
            write_data(&mut d, stamp, size);
            let v: Value = serde_json::from_slice(&d).unwrap();
            assert_eq!(v["s"], 7);
            if size >= 64 {
                assert_eq!(d.len(), size);
            }
        }
    }

    #[test]
    fn stamps_are_read_fast_and_slow() {
        let stamp = Stamp {
            t: 1,
            s: 2,
            p: 3,
            c: 4,
        };
        let mut data = vec![];
        write_data(&mut data, stamp, 80);
        let data = String::from_utf8(data).unwrap();
        let push = format!(r#"{{"push":{{"channel":"ch","pub":{{"data":{data},"offset":2}}}}}}"#);
        assert_eq!(classify(push.as_bytes()), Line::Push { stamp: Some(stamp) });
        // Keys in another order, in the push and in the payload.
        let reordered = format!(
            r#"{{"push":{{"pub":{{"offset":2,"data":{}}},"channel":"ch"}}}}"#,
            data.replace(r#""t":1,"s":2"#, r#""s":2,"t":1"#)
        );
        assert_eq!(
            classify(reordered.as_bytes()),
            Line::Push { stamp: Some(stamp) }
        );
        // Somebody else's publication.
        assert_eq!(
            classify(br#"{"push":{"channel":"ch","pub":{"data":{"a":1}}}}"#),
            Line::Push { stamp: None }
        );
        assert_eq!(
            classify(br#"{"id":5,"error":{"code":107}}"#),
            Line::Reply { id: 5, error: true }
        );
        let r = subscribe_reply(
            br#"{"id":2,"subscribe":{"recoverable":true,"epoch":"xyz","offset":9,"was_recovering":true,"recovered":true,"publications":[{"data":{"t":5,"s":8,"p":0,"c":1,"x":""},"offset":8},{"data":{"a":1},"offset":9}]}}"#,
        )
        .unwrap();
        let stamp = Stamp {
            t: 5,
            s: 8,
            p: 0,
            c: 1,
        };
        assert_eq!(
            r.publications,
            vec![(Some(stamp), Some(8)), (None, Some(9))]
        );
        assert_eq!(
            subscribe_recover_cmd(2, "s:1", None),
            br#"{"id":2,"subscribe":{"channel":"s:1","recoverable":true}}"#
        );
    }
}
